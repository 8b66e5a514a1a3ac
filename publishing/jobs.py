"""arq jobs of publishing: one job per publication attempt (job id per publication, time and
attempt, so a duplicate enqueue does nothing), reconciliation of unknown outcomes, the
per-minute sweep that queues what is due and recovers what a dead worker left, the daily read
of a post's own figures, and the e-mails to the brand's lead."""

from __future__ import annotations

import asyncio
import html
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from infra import outbox
from infra.clock import utcnow
from infra.i18n import language as language_of
from infra.logging import get_logger
from infra.mail import Mail, MailBatch
from infra.outbox import Event
from infra.queue import not_before
from infra.settings import Settings
from infra.sweep import due_tenants
from publishing import figures, runner
from publishing.media import MediaError, MediaLimits, download
from publishing.models import Publication
from publishing.service import ENQUEUE_AHEAD, publish_job_id
from social.connectors.types import MediaFile, PlatformUnavailable, PublishRejected
from social.jobs import brand_lead_recipients
from social.kit import kit_of
from social.models import SocialAccount

log = get_logger(__name__)

PUBLISH_JOB = "publish_publication"
RECONCILE_JOB = "reconcile_publication"
FIGURES_JOB = "read_post_figures"


def reconcile_job_id(publication_id: uuid.UUID, checks: int) -> str:
    return f"reconcile:{publication_id}:{checks}"


def figures_job_id(publication_id: uuid.UUID, at: datetime) -> str:
    return f"post-figures:{publication_id}:{int(at.timestamp())}"


DOWNLOAD_TIMEOUT = 600.0
"""Seconds for one media file (a large video over a slow link included)."""


async def fetch_media(
    http: httpx.AsyncClient,
    settings: Settings,
    media: Sequence[dict[str, Any]],
    dest: Path,
) -> list[MediaFile]:
    """The item's media downloaded into `dest`, in order. A file that cannot be used fails the
    publication (PublishRejected, a person must fix it); a network hiccup or a 5xx of the
    media's host is worth another try (PlatformUnavailable)."""
    limits = MediaLimits.from_settings(settings)
    files = []
    for index, item in enumerate(media):
        try:
            async with asyncio.timeout(DOWNLOAD_TIMEOUT):
                file = await download(
                    http,
                    str(item["url"]),
                    kind=str(item["type"]),
                    dest=dest / f"media-{index}",
                    limits=limits,
                    allowed_networks=settings.publishing_media_allowed_networks,
                    alt_text=str(item.get("alt_text") or ""),
                )
        except TimeoutError:
            raise PlatformUnavailable(f"media {index + 1}: the download took too long") from None
        except MediaError as exc:
            if exc.retryable:
                raise PlatformUnavailable(f"media {index + 1}: {exc.message}") from None
            raise PublishRejected(
                f"Media {index + 1}: {exc.message}", code="media_rejected"
            ) from None
        files.append(replace(file, source_url=str(item["url"])))
    return files


def deps(ctx: dict[str, Any]) -> runner.Deps:
    found: runner.Deps | None = ctx.get("publishing")
    if found is not None:
        return found

    async def fetch(media: Sequence[dict[str, Any]], dest: Path) -> list[MediaFile]:
        return await fetch_media(ctx["resources"].http, ctx["settings"], media, dest)

    async def enqueue(kind: str, publication: Publication, at: datetime) -> None:
        if kind == "publish":
            await ctx["redis"].enqueue_job(
                PUBLISH_JOB,
                str(publication.tenant_id),
                str(publication.id),
                _job_id=publish_job_id(publication),
                _defer_until=not_before(at),
            )
        else:
            await ctx["redis"].enqueue_job(
                RECONCILE_JOB,
                str(publication.tenant_id),
                str(publication.id),
                _job_id=reconcile_job_id(publication.id, publication.checks),
                _defer_until=not_before(at),
            )

    made = runner.Deps(
        db=ctx["db"],
        kit=kit_of(ctx["resources"]),
        settings=ctx["settings"],
        fetch_media=fetch,
        enqueue=enqueue,
    )
    ctx["publishing"] = made
    return made


async def publish_publication(ctx: dict[str, Any], tenant_id: str, publication_id: str) -> str:
    return await runner.publish(deps(ctx), uuid.UUID(tenant_id), uuid.UUID(publication_id))


async def reconcile_publication(ctx: dict[str, Any], tenant_id: str, publication_id: str) -> str:
    return await runner.reconcile(deps(ctx), uuid.UUID(tenant_id), uuid.UUID(publication_id))


async def read_post_figures(ctx: dict[str, Any], tenant_id: str, publication_id: str) -> str:
    d = deps(ctx)
    return await figures.read(
        d.db, d.kit, d.settings, uuid.UUID(tenant_id), uuid.UUID(publication_id)
    )


_DUE = text("SELECT * FROM publishing_due(:due, :horizon)")
LATE = timedelta(seconds=30)
"""A due job not run this long after its time is presumed lost (a killed worker's): the sweep
queues another; the database lets only one attempt run."""


async def sweep_publications(ctx: dict[str, Any]) -> int:
    """arq cron (every minute): queue the publications due within ENQUEUE_AHEAD (deferred to
    their time), attempts whose worker died (lease passed), due reconciliations and figures.
    Job ids make a repeat a no-op; the database decides what each job still has to do."""
    now = utcnow()
    minute = int(now.timestamp()) // 60
    queue = ctx["redis"]
    queued = 0
    rows = await due_tenants(ctx["db"], _DUE, {"due": now, "horizon": now + ENQUEUE_AHEAD})
    for tenant_id, publication_id, kind, at, planned_at, n in rows:
        at = at or now
        # A job a dead worker had taken keeps its id (arq's in-progress mark) for the longest
        # job timeout, minutes after its time: a late one gets an id of its own each minute.
        late = f":late{minute}" if at < now - LATE else ""
        if kind in ("publish", "recover"):
            job_id = f"publish:{publication_id}:{int(planned_at.timestamp())}:{n}"
            if kind == "recover":
                # Left by a dead worker mid-attempt: its lease passed.
                job_id += f":r{minute}"
            else:
                job_id += late
            job = await queue.enqueue_job(
                PUBLISH_JOB,
                str(tenant_id),
                str(publication_id),
                _job_id=job_id,
                _defer_until=not_before(at),
            )
        elif kind == "reconcile":
            job = await queue.enqueue_job(
                RECONCILE_JOB,
                str(tenant_id),
                str(publication_id),
                _job_id=reconcile_job_id(publication_id, n) + late,
                _defer_until=not_before(at),
            )
        else:
            job = await queue.enqueue_job(
                FIGURES_JOB,
                str(tenant_id),
                str(publication_id),
                _job_id=figures_job_id(publication_id, at),
            )
        queued += job is not None
    return queued


# --- e-mails to the brand's lead ------------------------------------------------------------

_WORDS = {
    "en": {
        "content.publish_failed": (
            "A post for {brand} was not published on {platform}",
            "The post planned for {planned} on {platform} ({handle}) was not published.",
        ),
        "publication.unconfirmed": (
            "Check {platform} for {brand}: a post may or may not be live",
            "We sent the post planned for {planned} to {platform} ({handle}) but got no "
            "definite answer. We are looking for it on the account and will never post it "
            "again on our own.",
        ),
        "reason": "What happened",
        "open": "Open the post",
    },
    "fr": {
        "content.publish_failed": (
            "Une publication de {brand} n'est pas partie sur {platform}",
            "La publication prévue le {planned} sur {platform} ({handle}) n'a pas été publiée.",
        ),
        "publication.unconfirmed": (
            "Vérifiez {platform} pour {brand} : une publication est peut-être en ligne",
            "Nous avons envoyé la publication prévue le {planned} à {platform} ({handle}) sans "
            "réponse certaine. Nous la cherchons sur le compte et ne la republierons jamais "
            "de nous-mêmes.",
        ),
        "reason": "Ce qui s'est passé",
        "open": "Ouvrir la publication",
    },
}


async def _mail_lead(ctx: dict[str, Any], event: Event) -> None:
    payload = event.payload
    brand, recipients = await brand_lead_recipients(
        ctx, event.tenant_id, uuid.UUID(payload["brand_id"])
    )
    async with ctx["db"].tenant_transaction(event.tenant_id) as session:
        account = await session.get(
            SocialAccount, (event.tenant_id, uuid.UUID(payload["social_account_id"]))
        )
        handle = (account.handle or account.display_name) if account is not None else None
    settings = ctx["settings"]
    url = f"{settings.app_base_url}/content/{payload['content_id']}"
    batch = MailBatch(settings)
    for email, locale in sorted(set(recipients)):
        language = language_of(locale)
        words = _WORDS[language]
        subject, body = words[event.type]
        values = {
            "brand": brand,
            "platform": payload["platform"],
            "handle": handle or payload["social_account_id"],
            "planned": payload["planned_at"][:16].replace("T", " ") + " UTC",
        }
        said = body.format(**values)
        reason = payload.get("error") or ""
        await batch.send(
            Mail(
                to=email,
                subject=str(subject).format(**values),
                text=f"{said}\n\n{words['reason']}: {reason}\n\n{words['open']}: {url}\n",
                html=(
                    f"<p>{html.escape(said)}</p><p><small>{html.escape(str(words['reason']))}: "
                    f"{html.escape(reason)}</small></p>"
                    f'<p><a href="{html.escape(url)}">{html.escape(str(words["open"]))}</a></p>'
                ),
                language=language,
            ),
        )
    batch.raise_refused()


@outbox.handler("content.publish_failed")
async def mail_publish_failed(ctx: dict[str, Any], event: Event) -> None:
    await _mail_lead(ctx, event)


@outbox.handler("publication.unconfirmed")
async def mail_unconfirmed(ctx: dict[str, Any], event: Event) -> None:
    await _mail_lead(ctx, event)
