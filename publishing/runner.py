"""One publication's attempt, and the reconciliation of an unknown outcome.

At most once, by construction: the attempt is claimed under the publication's row lock, and
the moment before the platform's create call is committed (`create_started_at`) by the one
attempt that holds the claim. Whoever later finds an attempt that reached that moment without
an answer (a timeout, a killed worker) never posts again: the publication becomes
`unconfirmed` and reconciliation reads the account to find the post. Everything before that
moment (token refresh, media downloads, uploads, containers) is retried freely.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.logging import get_logger
from infra.metrics import PUBLICATION_LATENESS
from infra.settings import Settings
from publishing.machine import PubEvent, PubStatus, can, step
from publishing.models import Publication, PublicationAttempt
from publishing.rules import text_for
from social.connectors.types import (
    ConnectorError,
    MediaFile,
    OutcomeUnknown,
    PlatformUnavailable,
    PostDraft,
    PublishedPost,
    Publisher,
    PublishRejected,
    RateLimited,
    Remember,
    TokenInvalid,
    TokenSet,
)
from social.kit import SocialKit
from social.models import SYNCABLE, AccountStatus, SocialAccount
from social.sync import fresh_tokens, mark_needs_reauth
from tenants.service.common import bump
from workflows.models import ContentItem, ContentRevision

log = get_logger(__name__)

EARLY = timedelta(seconds=1)
"""A job may wake this much before its time (clock granularity) and still start."""
MAX_WAIT = timedelta(minutes=15)
CHECK_FIRST = timedelta(seconds=20)
CHECK_MAX = timedelta(minutes=10)
FIRST_FIGURES = timedelta(hours=1)
"""A post's own figures are first read this long after it went out, then daily."""
FIND_SLACK = timedelta(minutes=2)
"""Reconciliation accepts a post made this long before the create call was sent (clocks)."""

MediaFetcher = Callable[[Sequence[dict[str, Any]], Path], Awaitable[list[MediaFile]]]
Enqueue = Callable[[str, Publication, datetime], Awaitable[None]]
"""(job kind, publication, when): a follow-up job, after the state that asks for it commits."""


@dataclass(frozen=True)
class Deps:
    db: Database
    kit: SocialKit
    settings: Settings
    fetch_media: MediaFetcher
    enqueue: Enqueue


@dataclass(frozen=True)
class Claim:
    publication_id: uuid.UUID
    tenant_id: uuid.UUID
    attempt_id: uuid.UUID
    account_id: uuid.UUID
    platform: str
    external_id: str
    draft_text: str
    title: str
    media: list[dict[str, Any]]
    planned_at: datetime
    state: dict[str, Any]
    resume: bool
    """The create call already ran on a state that cannot make a second post (YouTube's
    upload session): go straight back to it."""

    @classmethod
    def of(
        cls,
        publication: Publication,
        account: SocialAccount,
        revision: ContentRevision,
        attempt_id: uuid.UUID,
        *,
        resume: bool = False,
    ) -> Claim:
        return cls(
            publication_id=publication.id,
            tenant_id=publication.tenant_id,
            attempt_id=attempt_id,
            account_id=account.id,
            platform=account.platform,
            external_id=account.external_id,
            draft_text=text_for(account.platform, revision.variants) or "",
            title=revision.title,
            media=list(revision.media),
            planned_at=publication.planned_at,
            state=dict(publication.state),
            resume=resume,
        )


def publisher_of(kit: SocialKit, platform: str) -> Publisher:
    return cast(Publisher, kit.connector(platform))


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=15 * 2 ** max(attempts - 1, 0)), MAX_WAIT)


# --- transactions ----------------------------------------------------------------------------


async def _locked(
    session: AsyncSession, tenant_id: uuid.UUID, publication_id: uuid.UUID
) -> Publication | None:
    return (
        await session.scalars(
            select(Publication)
            .where(Publication.tenant_id == tenant_id, Publication.id == publication_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()


async def _attempt(session: AsyncSession, publication: Publication) -> PublicationAttempt | None:
    if publication.current_attempt_id is None:
        return None
    return await session.get(
        PublicationAttempt,
        (publication.tenant_id, publication.current_attempt_id),
        populate_existing=True,
    )


def _payload(publication: Publication, account: SocialAccount | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "publication_id": str(publication.id),
        "content_id": str(publication.content_item_id),
        "brand_id": str(publication.brand_id),
        "social_account_id": str(publication.social_account_id),
        "platform": publication.platform,
        "planned_at": publication.planned_at.isoformat(),
        "status": publication.status,
    }
    if publication.published_at is not None:
        payload |= {
            "published_at": publication.published_at.isoformat(),
            "permalink": publication.permalink,
            "external_post_id": publication.external_post_id,
            "lateness_seconds": publication.lateness_seconds,
        }
    if publication.error is not None:
        payload |= {"error_code": publication.error_code, "error": publication.error}
    if account is not None:
        payload["handle"] = account.handle or account.display_name
    return payload


def _emit(session: AsyncSession, publication: Publication, type: str) -> None:
    outbox.record_event(
        session,
        tenant_id=publication.tenant_id,
        type=type,
        aggregate_type="publication",
        aggregate_id=publication.id,
        payload=_payload(publication),
    )


def _finish(
    attempt: PublicationAttempt | None, outcome: str, error: str | None, now: datetime
) -> None:
    if attempt is not None and attempt.finished_at is None:
        attempt.finished_at = now
        attempt.outcome = outcome
        attempt.error = error[:2000] if error else None


def _fail(
    session: AsyncSession,
    publication: Publication,
    attempt: PublicationAttempt | None,
    *,
    code: str,
    error: str,
    outcome: str,
    now: datetime,
    event: PubEvent = PubEvent.refused,
) -> None:
    publication.status = step(publication.status, event)
    publication.error_code = code
    publication.error = error[:2000]
    publication.claimed_until = publication.next_attempt_at = None
    publication.next_check_at = None
    _finish(attempt, outcome, error, now)
    bump(publication, at=now)
    _emit(session, publication, "content.publish_failed")


def _unconfirm(
    session: AsyncSession,
    publication: Publication,
    attempt: PublicationAttempt | None,
    *,
    reason: str,
    outcome: str,
    now: datetime,
) -> None:
    publication.status = step(publication.status, PubEvent.unknown)
    publication.unconfirmed_at = now
    publication.next_check_at = now + CHECK_FIRST
    publication.checks = 0
    publication.claimed_until = publication.next_attempt_at = None
    publication.error_code = "unconfirmed"
    publication.error = (
        f"{reason[:500]} — the post may be live; we are checking the account and will never "
        "post it again on our own."
    )
    _finish(attempt, outcome, reason, now)
    bump(publication, at=now)
    _emit(session, publication, "publication.unconfirmed")


async def claim(deps: Deps, tenant_id: uuid.UUID, publication_id: uuid.UUID) -> Claim | str:
    """Start (or resume) an attempt, or say why not: skip, unconfirmed, failed."""
    answer = await _claim(deps, tenant_id, publication_id)
    if isinstance(answer, tuple):
        # Queued once the unconfirmed state is committed, so the check finds it.
        publication, at = answer
        await deps.enqueue("reconcile", publication, at)
        return "unconfirmed"
    return answer


async def _claim(
    deps: Deps, tenant_id: uuid.UUID, publication_id: uuid.UUID
) -> Claim | str | tuple[Publication, datetime]:
    settings = deps.settings
    async with deps.db.tenant_transaction(tenant_id) as session:
        publication = await _locked(session, tenant_id, publication_id)
        if publication is None:
            return "skip"
        now = utcnow()
        status = PubStatus(publication.status)
        resume = False
        if status == PubStatus.scheduled:
            if publication.planned_at > now + EARLY:
                return "skip"  # replanned later: the new time has its own job
        elif status == PubStatus.publishing:
            if publication.claimed_until is not None and publication.claimed_until > now:
                return "skip"  # another attempt holds it
            if (
                publication.next_attempt_at is not None
                and publication.next_attempt_at > now + EARLY
            ):
                return "skip"  # waiting out a transient failure; its job is deferred
            attempt = await _attempt(session, publication)
            if attempt is not None and attempt.finished_at is None:
                # Its worker died (or overran its lease) in the middle of the attempt.
                if attempt.create_started_at is None:
                    _finish(attempt, "crashed", "the attempt stopped before the post", now)
                elif publisher_of(deps.kit, publication.platform).resumable(publication.state):
                    _finish(attempt, "crashed", "resumed: the upload session is kept", now)
                    resume = True
                else:
                    _unconfirm(
                        session,
                        publication,
                        attempt,
                        reason="The worker stopped after sending the post",
                        outcome="crashed",
                        now=now,
                    )
                    await session.flush()
                    return publication, publication.next_check_at or now
        else:
            return "skip"
        if now > publication.deadline_at and not resume:
            attempt = await _attempt(session, publication)
            last = attempt.error if attempt is not None else None
            if status == PubStatus.scheduled:
                publication.status = step(status, PubEvent.start)
            _fail(
                session,
                publication,
                attempt if attempt is not None and attempt.finished_at is None else None,
                code="deadline_passed",
                error="Not published by its deadline"
                + (f"; the last try said: {last}" if last else " (no worker reached it in time)."),
                outcome="deadline",
                now=now,
            )
            return "failed"
        account = await session.get(SocialAccount, (tenant_id, publication.social_account_id))
        item = await session.get(ContentItem, (tenant_id, publication.content_item_id))
        revision = await session.get(ContentRevision, (tenant_id, publication.revision_id))
        assert account is not None and item is not None and revision is not None  # FKs
        publication.status = step(publication.status, PubEvent.start)
        publication.attempts += 1
        attempt = PublicationAttempt(
            tenant_id=tenant_id,
            publication_id=publication.id,
            number=publication.attempts,
            started_at=now,
            create_started_at=now if resume else None,
        )
        session.add(attempt)
        publication.current_attempt_id = attempt.id
        publication.claimed_until = now + timedelta(seconds=settings.publishing_lease_seconds)
        publication.next_attempt_at = None
        publication.started_at = publication.started_at or now
        bump(publication, at=now)
        if account.status not in SYNCABLE:
            name = account.handle or account.external_id
            paused = account.status == AccountStatus.paused
            _fail(
                session,
                publication,
                attempt,
                code="account_paused" if paused else "needs_reauth",
                error=f"Resume the {account.platform} account {name}, then retry."
                if paused
                else f"Reconnect the {account.platform} account {name}, then retry.",
                outcome="refused" if paused else "needs_reauth",
                now=now,
            )
            return "failed"
        return Claim.of(publication, account, revision, attempt.id, resume=resume)


async def _settle(
    deps: Deps,
    c: Claim,
    apply: Callable[[AsyncSession, Publication, PublicationAttempt | None, datetime], Any],
    *,
    owned: bool = True,
) -> Any:
    """Write an outcome under the row lock, if this attempt still holds the publication
    (`owned`); a post that went out is written whoever holds it now."""
    async with deps.db.tenant_transaction(c.tenant_id) as session:
        publication = await _locked(session, c.tenant_id, c.publication_id)
        if publication is None:
            return None
        if owned and publication.current_attempt_id != c.attempt_id:
            return None
        attempt = await session.get(
            PublicationAttempt, (c.tenant_id, c.attempt_id), populate_existing=True
        )
        result = apply(session, publication, attempt, utcnow())
        await session.flush()
        return (publication, result)


async def _published(deps: Deps, c: Claim, post: PublishedPost) -> None:
    def apply(
        session: AsyncSession,
        publication: Publication,
        attempt: PublicationAttempt | None,
        now: datetime,
    ) -> Any:
        if publication.status == PubStatus.published:
            return
        event = PubEvent.found if publication.status == PubStatus.unconfirmed else PubEvent.posted
        publication.status = step(publication.status, event)
        publication.external_post_id = post.external_id[:200]
        publication.permalink = (post.permalink or None) and post.permalink[:2000]
        publication.published_at = post.published_at or now
        publication.lateness_seconds = round(
            (publication.published_at - publication.planned_at).total_seconds(), 3
        )
        PUBLICATION_LATENESS.labels(c.platform).observe(max(publication.lateness_seconds, 0.0))
        publication.error_code = publication.error = None
        publication.claimed_until = publication.next_attempt_at = publication.next_check_at = None
        publication.next_figures_at = publication.published_at + FIRST_FIGURES
        _finish(attempt, "published", None, now)
        bump(publication, at=now)
        _emit(session, publication, "content.published")

    await _settle(deps, c, apply, owned=False)


async def _transient(deps: Deps, c: Claim, exc: ConnectorError) -> str:
    reason = str(exc) or type(exc).__name__

    def apply(
        session: AsyncSession,
        publication: Publication,
        attempt: PublicationAttempt | None,
        now: datetime,
    ) -> Any:
        wait = backoff(publication.attempts)
        if isinstance(exc, RateLimited):
            wait = max(wait, timedelta(seconds=exc.retry_after))
        at = now + wait
        if at > publication.deadline_at:
            _fail(
                session,
                publication,
                attempt,
                code="deadline_passed",
                error=f"Not published by its deadline; the last try said: {reason}",
                outcome="deadline",
                now=now,
            )
            return None
        publication.next_attempt_at = at
        publication.claimed_until = None
        publication.error_code = "retrying"
        publication.error = f"Retrying at {at.isoformat()}: {reason}"[:2000]
        _finish(attempt, "transient", reason, now)
        bump(publication, at=now)
        return at

    done = await _settle(deps, c, apply)
    if done is None:
        return "skip"
    publication, at = done
    if at is None:
        return "failed"
    await deps.enqueue("publish", publication, at)
    return "retry"


async def _refused(deps: Deps, c: Claim, *, code: str, error: str, outcome: str) -> str:
    def apply(
        session: AsyncSession,
        publication: Publication,
        attempt: PublicationAttempt | None,
        now: datetime,
    ) -> Any:
        _fail(session, publication, attempt, code=code, error=error, outcome=outcome, now=now)

    await _settle(deps, c, apply)
    return "failed"


async def _needs_reauth(deps: Deps, c: Claim, exc: TokenInvalid) -> str:
    await mark_needs_reauth(deps.db, c.tenant_id, c.account_id, str(exc) or "token refused")
    return await _refused(
        deps,
        c,
        code="needs_reauth",
        error=f"The platform refused our access to the account: reconnect it, then retry. ({exc})",
        outcome="needs_reauth",
    )


async def _unknown(deps: Deps, c: Claim, reason: str) -> str:
    def apply(
        session: AsyncSession,
        publication: Publication,
        attempt: PublicationAttempt | None,
        now: datetime,
    ) -> Any:
        if not can(publication.status, PubEvent.unknown):
            return None
        _unconfirm(session, publication, attempt, reason=reason, outcome="unknown", now=now)
        return publication.next_check_at

    done = await _settle(deps, c, apply)
    if done is not None and done[1] is not None:
        await deps.enqueue("reconcile", done[0], done[1])
    return "unconfirmed"


async def _mark_create(deps: Deps, c: Claim, state: dict[str, Any]) -> bool:
    """Commit the prepared state and the moment of the create call. False: this attempt lost
    the publication meanwhile (its lease ran out and another took it), so it must not post."""

    def apply(
        session: AsyncSession,
        publication: Publication,
        attempt: PublicationAttempt | None,
        now: datetime,
    ) -> Any:
        if publication.status != PubStatus.publishing or attempt is None:
            return False
        publication.state = state
        publication.claimed_until = now + timedelta(seconds=deps.settings.publishing_lease_seconds)
        attempt.create_started_at = now
        bump(publication, at=now)
        return True

    done = await _settle(deps, c, apply)
    return bool(done and done[1])


def _remember(deps: Deps, c: Claim, state: dict[str, Any]) -> Remember:
    async def remember(values: dict[str, Any]) -> None:
        state.update(values)

        def apply(
            session: AsyncSession,
            publication: Publication,
            attempt: PublicationAttempt | None,
            now: datetime,
        ) -> Any:
            publication.state = {**publication.state, **values}

        await _settle(deps, c, apply, owned=False)

    return remember


async def publish(deps: Deps, tenant_id: uuid.UUID, publication_id: uuid.UUID) -> str:
    """Run one attempt; answers what happened (published, retry, failed, unconfirmed, skip)."""
    c = await claim(deps, tenant_id, publication_id)
    if isinstance(c, str):
        return c
    publisher = publisher_of(deps.kit, c.platform)
    with tempfile.TemporaryDirectory(prefix="passerelle-media-") as folder:
        try:
            tokens = await fresh_tokens(deps.db, deps.kit, tenant_id, c.account_id, utcnow())
            if tokens is None:
                return await _refused(
                    deps,
                    c,
                    code="needs_reauth",
                    error="The account is not connected: reconnect it, then retry.",
                    outcome="needs_reauth",
                )
            media = await deps.fetch_media(c.media, Path(folder))
            draft = PostDraft(
                text=c.draft_text, media=media, title=c.title, planned_at=c.planned_at
            )
            state = c.state
            if not c.resume:
                state = await publisher.prepare(tokens, c.external_id, draft, dict(c.state))
                if not await _mark_create(deps, c, state):
                    return "skip"
        except TokenInvalid as exc:
            return await _needs_reauth(deps, c, exc)
        except PublishRejected as exc:
            return await _refused(deps, c, code=exc.code, error=exc.reason, outcome="refused")
        except (RateLimited, PlatformUnavailable) as exc:
            return await _transient(deps, c, exc)
        except ConnectorError as exc:
            return await _refused(
                deps, c, code="rejected", error=str(exc) or "refused", outcome="refused"
            )
        # From here on the post may exist: nothing below posts again on its own.
        try:
            post = await publisher.create(
                tokens, c.external_id, draft, state, _remember(deps, c, state)
            )
        except PublishRejected as exc:
            return await _refused(deps, c, code=exc.code, error=exc.reason, outcome="refused")
        except TokenInvalid as exc:
            return await _needs_reauth(deps, c, exc)
        except (RateLimited, PlatformUnavailable) as exc:
            return await _transient(deps, c, exc)
        except OutcomeUnknown as exc:
            return await _unknown(deps, c, str(exc) or "no definite answer from the platform")
        except Exception as exc:
            log.exception("publishing.create_failed", publication_id=str(publication_id))
            return await _unknown(deps, c, f"{type(exc).__name__} during the post")
    await _published(deps, c, post)
    return "published"


# --- reconciliation --------------------------------------------------------------------------


async def reconcile(deps: Deps, tenant_id: uuid.UUID, publication_id: uuid.UUID) -> str:
    """Look for an unconfirmed post on its account: found -> published; not found by the end
    of the window -> failed, "outcome unknown"; else look again later."""
    async with deps.db.tenant_transaction(tenant_id) as session:
        publication = await _locked(session, tenant_id, publication_id)
        if publication is None or publication.status != PubStatus.unconfirmed:
            return "skip"
        now = utcnow()
        if publication.next_check_at is not None and publication.next_check_at > now + EARLY:
            return "skip"
        attempt = await _attempt(session, publication)
        account = await session.get(SocialAccount, (tenant_id, publication.social_account_id))
        revision = await session.get(ContentRevision, (tenant_id, publication.revision_id))
        assert account is not None and revision is not None
        sent = attempt.create_started_at if attempt and attempt.create_started_at else now
        c = Claim.of(publication, account, revision, publication.current_attempt_id or uuid.uuid4())
    found: PublishedPost | None = None
    problem: str | None = None
    try:
        tokens: TokenSet | None = await fresh_tokens(
            deps.db, deps.kit, tenant_id, c.account_id, utcnow()
        )
        if tokens is None:
            problem = "the account is not connected"
        else:
            draft = PostDraft(text=c.draft_text, media=[], title=c.title, planned_at=c.planned_at)
            found = await publisher_of(deps.kit, c.platform).find(
                tokens, c.external_id, draft, c.state, sent - FIND_SLACK
            )
    except ConnectorError as exc:
        problem = str(exc) or type(exc).__name__
    if found is not None:
        await _published(deps, c, found)
        return "published"
    window = timedelta(minutes=deps.settings.publishing_reconcile_minutes)

    def apply(
        session: AsyncSession,
        publication: Publication,
        attempt: PublicationAttempt | None,
        now: datetime,
    ) -> Any:
        if publication.status != PubStatus.unconfirmed:
            return None
        publication.checks += 1
        if now >= (publication.unconfirmed_at or now) + window:
            _fail(
                session,
                publication,
                None,
                code="outcome_unknown",
                error="Outcome unknown, check the account before retrying: the platform did "
                "not confirm the post and we could not find it"
                + (f" ({problem})" if problem else "")
                + ".",
                outcome="unknown",
                now=now,
                event=PubEvent.not_found,
            )
            return None
        wait = min(CHECK_FIRST * 2**publication.checks, CHECK_MAX)
        publication.next_check_at = now + wait
        bump(publication, at=now)
        return publication.next_check_at

    done = await _settle(deps, c, apply, owned=False)
    if done is None:
        return "skip"
    publication, at = done
    if at is None:
        return "failed"
    await deps.enqueue("reconcile", publication, at)
    return "checking"
