"""arq jobs of social accounts: the per-minute scheduler, one sync per account, and the
e-mail to the brand's lead when an account needs to be connected again."""

from __future__ import annotations

import html
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.i18n import language as language_of
from infra.logging import get_logger
from infra.mail import Mail, MailBatch
from infra.outbox import Event
from infra.queue import NewJob, enqueue_many
from infra.retry import backoff, final_try
from infra.sweep import due_tenants, for_each_tenant
from social.kit import SocialKit, kit_of
from social.models import SYNCABLE, SocialAccount
from social.service.accounts import SYNC_JOB, sync_job_id
from social.sync import mark_error, sync_account
from tenants.models import (
    Assignment,
    AssignmentRole,
    Brand,
    Membership,
    MembershipStatus,
    Role,
    Tenant,
    User,
)
from tenants.policy import local_date

log = get_logger(__name__)

MAX_TRIES = 6
PER_TENANT_PER_TICK = 1000
"""At most this many of one agency's accounts are queued per minute, and at most twice as many
wait in the queue at once: a large agency's backlog waits in the database, where it cannot
stand in front of a small agency's accounts, while the queue always holds its next minute's
work (a pass that re-offered the same oldest accounts, still queued, left the worker idle)."""


def _kit(ctx: dict[str, Any]) -> SocialKit:
    return kit_of(ctx["resources"])


async def due_accounts(
    db: Database, now: datetime, *, per_tenant: int = PER_TENANT_PER_TICK
) -> list[tuple[uuid.UUID, uuid.UUID, datetime]]:
    """Due accounts of every agency, interleaved one agency at a time (round robin), so that
    the queue serves agencies in turn whatever their size."""
    tenants = await due_tenants(db, select(Tenant.id).where(Tenant.status != "canceled"))

    async def accounts(
        session: AsyncSession, tenant_id: uuid.UUID
    ) -> Sequence[Row[uuid.UUID, Any]]:
        return (
            await session.execute(
                select(SocialAccount.id, SocialAccount.next_sync_at)
                .where(
                    SocialAccount.tenant_id == tenant_id,
                    col(SocialAccount.status).in_([s.value for s in SYNCABLE]),
                    col(SocialAccount.next_sync_at) <= now,
                )
                .order_by(col(SocialAccount.next_sync_at))
                .limit(per_tenant)
            )
        ).all()

    lanes: list[deque[tuple[uuid.UUID, uuid.UUID, datetime]]] = []
    for tenant_id, rows in await for_each_tenant(
        db, (tenant_id for (tenant_id,) in tenants), accounts, failed="social.due_failed"
    ):
        if rows:
            lanes.append(deque((tenant_id, account_id, due) for account_id, due in rows))
    # The agency that has waited longest goes first in each round: a stable, fair order.
    lanes.sort(key=lambda lane: lane[0][2])
    ordered: list[tuple[uuid.UUID, uuid.UUID, datetime]] = []
    while lanes:
        for lane in list(lanes):
            ordered.append(lane.popleft())
            if not lane:
                lanes.remove(lane)
    return ordered


async def _queued(queue: ArqRedis, job_ids: list[str]) -> list[bool]:
    """Which of these jobs wait in the queue or run now (one round trip)."""
    async with queue.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(job_key_prefix + job_id)
        return [bool(found) for found in await pipe.execute()]


async def enqueue_due(
    db: Database, queue: ArqRedis, now: datetime, *, per_tenant: int = PER_TENANT_PER_TICK
) -> int:
    due = await due_accounts(db, now, per_tenant=2 * per_tenant)
    job_ids = [sync_job_id(account_id, at) for _, account_id, at in due]
    queued = await _queued(queue, job_ids)
    waiting = Counter(t for (t, _, _), held in zip(due, queued, strict=True) if held)
    room = {t: min(per_tenant, 2 * per_tenant - waiting[t]) for t, _, _ in due}
    new: list[NewJob] = []
    for (tenant_id, account_id, at), job_id, held in zip(due, job_ids, queued, strict=True):
        if held or room[tenant_id] <= 0:
            continue
        room[tenant_id] -= 1
        # The due time travels with the job: a job queued by a pass that ran late finds the
        # account already synced (next sync moved on) and does nothing.
        new.append(NewJob(SYNC_JOB, (str(tenant_id), str(account_id), at.isoformat()), job_id))
    return await enqueue_many(queue, new)


async def schedule_social_syncs(ctx: dict[str, Any]) -> int:
    """arq cron (every minute): one job per due account; job ids make repeats no-ops."""
    return await enqueue_due(ctx["db"], ctx["redis"], utcnow())


async def sync_social_account(
    ctx: dict[str, Any], tenant_id: str, account_id: str, due_at: str | None = None
) -> str:
    """`due_at` is set for scheduled syncs, not for one a person asked for."""
    kit = _kit(ctx)
    tenant, account = uuid.UUID(tenant_id), uuid.UUID(account_id)
    due = datetime.fromisoformat(due_at) if due_at else None
    try:
        outcome = await sync_account(ctx["db"], kit, tenant, account, due_at=due)
    except Exception as exc:
        # Anything unexpected (a token no key decrypts, a database error) must show on the
        # account, never only in a log; marking it also moves its next sync, hence its job id.
        log.exception("social.sync_failed", account_id=account_id)
        await mark_error(ctx["db"], kit, tenant, account, f"internal error ({type(exc).__name__})")
        return "error"
    if outcome.status != "retry":
        return f"{outcome.status}:{outcome.days}"
    if final_try(ctx, MAX_TRIES):
        await mark_error(ctx["db"], kit, tenant, account, outcome.reason or "platform error")
        return "error"
    raise Retry(defer=max(outcome.retry_after, backoff(ctx).total_seconds()))


# --- needs_reauth e-mail --------------------------------------------------------------------

_WORDS = {
    "en": {
        "subject": "Reconnect {platform} account {handle} for {brand}",
        "body": "{platform} no longer accepts our access to {handle} ({brand}), so its "
        "statistics have stopped updating. Connect it again from the brand's page:",
        "reason": "What the platform said",
    },
    "fr": {
        "subject": "Reconnectez le compte {platform} {handle} de {brand}",
        "body": "{platform} n'accepte plus notre accès à {handle} ({brand}) : ses statistiques "
        "ne sont plus mises à jour. Reconnectez-le depuis la page de la marque :",
        "reason": "Réponse de la plateforme",
    },
}


async def brand_lead_recipients(
    ctx: dict[str, Any], tenant_id: uuid.UUID, brand_id: uuid.UUID
) -> tuple[str, list[tuple[str, str]]]:
    """The brand's current leads; the agency's owners and admins when it has none."""
    async with ctx["db"].tenant_transaction(tenant_id) as session:
        brand = await session.get(Brand, (tenant_id, brand_id))
        tenant = await session.get(Tenant, tenant_id)
        if brand is None or tenant is None:
            return "", []
        today = local_date(tenant.timezone, utcnow())
        people = select(User.email, User.locale).join(
            Membership, col(Membership.user_id) == col(User.id)
        )
        leads = (
            await session.execute(
                people.join(
                    Assignment,
                    (col(Assignment.tenant_id) == col(Membership.tenant_id))
                    & (col(Assignment.membership_id) == col(Membership.id)),
                ).where(
                    Assignment.tenant_id == tenant_id,
                    Assignment.brand_id == brand_id,
                    Assignment.role == AssignmentRole.lead,
                    col(Assignment.start_date) <= today,
                    col(Assignment.end_date).is_(None) | (col(Assignment.end_date) >= today),
                    Membership.status == MembershipStatus.active,
                )
            )
        ).all()
        if not leads:
            leads = (
                await session.execute(
                    people.where(
                        Membership.tenant_id == tenant_id,
                        col(Membership.role).in_([Role.owner, Role.admin]),
                        Membership.status == MembershipStatus.active,
                    )
                )
            ).all()
        return brand.name, [(email, locale) for email, locale in leads]


@outbox.handler("social_account.needs_reauth")
async def mail_needs_reauth(ctx: dict[str, Any], event: Event) -> None:
    payload = event.payload
    brand_id = uuid.UUID(payload["brand_id"])
    brand, recipients = await brand_lead_recipients(ctx, event.tenant_id, brand_id)
    settings = ctx["settings"]
    url = f"{settings.app_base_url}/brands/{brand_id}/social-accounts"
    batch = MailBatch(settings)
    for email, locale in sorted(set(recipients)):
        language = language_of(locale)
        words = _WORDS[language]
        values = {
            "platform": payload["platform"],
            "handle": payload.get("handle") or payload["account_id"],
            "brand": brand,
        }
        body = words["body"].format(**values)
        reason = payload.get("reason") or ""
        text = f"{body}\n\n{url}\n\n{words['reason']}: {reason}\n"
        markup = (
            f'<p>{html.escape(body)}</p><p><a href="{html.escape(url)}">{html.escape(url)}</a>'
            f"</p><p><small>{html.escape(words['reason'])}: {html.escape(reason)}</small></p>"
        )
        await batch.send(
            Mail(
                to=email,
                subject=words["subject"].format(**values),
                text=text,
                html=markup,
                language=language,
            ),
        )
    batch.raise_refused()
