"""arq jobs of the inbox: a platform event stored by the receiver becomes items; accounts are
read (polled) where the platform has no push, and as a catch-up after a webhook gap; replies
and moderation go out (`inbox.sender`); a per-minute sweep queues what is due and marks
response targets breached (once: `inbox.sla_breached`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import text, update
from sqlmodel import col, select

from inbox import sender
from inbox.models import InboxAction, InboxCursor, InboxItem, ItemStatus, PlatformEvent
from inbox.service import ingest
from inbox.service.webhooks import LINKEDIN, META
from infra.clock import utcnow
from infra.logging import get_logger
from infra.queue import not_before
from infra.sweep import due_tenants
from social.connectors import linkedin, meta
from social.connectors.types import (
    ConnectorError,
    InboundItem,
    InboxConnector,
    InboxKind,
    RateLimited,
    TokenInvalid,
)
from social.kit import kit_of
from social.models import SocialAccount
from social.sync import fresh_tokens, mark_needs_reauth
from tenants.models import Tenant

log = get_logger(__name__)

PROCESS_JOB = "process_platform_event"
POLL_JOB = "poll_inbox_account"
SEND_JOB = "send_inbox_action"
RECONCILE_JOB = "reconcile_inbox_action"

FIRST_POLL = timedelta(days=2)
"""How far back an account's first read looks."""
POLL_OVERLAP = timedelta(minutes=5)
"""Each read starts this much before the last one ended: an item the platform indexed late is
not missed, and the one read twice is the same row."""
EVENT_RETRY_AFTER = timedelta(seconds=30)


def send_job_id(action: InboxAction) -> str:
    return f"inbox-send:{action.id}:{action.attempts}"


def sender_deps(ctx: dict[str, Any]) -> sender.Deps:
    found: sender.Deps | None = ctx.get("inbox")
    if found is not None:
        return found

    async def enqueue(kind: str, action: InboxAction, at: datetime) -> None:
        if kind == "send":
            await ctx["redis"].enqueue_job(
                SEND_JOB,
                str(action.tenant_id),
                str(action.id),
                _job_id=send_job_id(action),
                _defer_until=not_before(at),
            )
        else:
            await ctx["redis"].enqueue_job(
                RECONCILE_JOB,
                str(action.tenant_id),
                str(action.id),
                _job_id=f"inbox-reconcile:{action.id}:{action.checks}",
                _defer_until=not_before(at),
            )

    made = sender.Deps(
        db=ctx["db"], kit=kit_of(ctx["resources"]), settings=ctx["settings"], enqueue=enqueue
    )
    ctx["inbox"] = made
    return made


async def send_inbox_action(ctx: dict[str, Any], tenant_id: str, action_id: str) -> str:
    return await sender.send(sender_deps(ctx), uuid.UUID(tenant_id), uuid.UUID(action_id))


async def reconcile_inbox_action(ctx: dict[str, Any], tenant_id: str, action_id: str) -> str:
    return await sender.reconcile(sender_deps(ctx), uuid.UUID(tenant_id), uuid.UUID(action_id))


# --- ingestion --------------------------------------------------------------------------------

_OWNERS = text("SELECT * FROM inbox_account_owners(:platform, :external_id)")


async def _owners(
    ctx: dict[str, Any], platform: str, external_id: str
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    rows = await due_tenants(ctx["db"], _OWNERS, {"platform": platform, "external_id": external_id})
    return [(row[0], row[1]) for row in rows]


async def store_for_account(
    ctx: dict[str, Any],
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    items: list[InboundItem],
    *,
    pushed: bool,
) -> int:
    """Store one account's items in its agency's transaction; answers how many were new."""
    now = utcnow()
    async with ctx["db"].tenant_transaction(tenant_id) as session:
        account = await session.get(SocialAccount, (tenant_id, account_id))
        tenant = await session.get(Tenant, tenant_id)
        if account is None or tenant is None:
            return 0
        context = await ingest.context_for(session, account, now, tenant.timezone)
        if context is None:
            return 0
        stored = await ingest.store(session, context, items, now)
        if pushed:
            gap = timedelta(minutes=ctx["settings"].inbox_webhook_gap_minutes)
            await ingest.touch_cursor(session, account, pushed_at=now, next_poll_at=now + gap)
    return sum(s.new for s in stored)


async def _read_in_full(
    ctx: dict[str, Any],
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    platform: str,
    items: list[InboundItem],
) -> list[InboundItem]:
    """Webhooks only locate some items (Meta's mentions come without their text): the
    connector reads those with the account's token before they are stored, since a stored
    item's text is never written again by a later delivery. A transient failure raises, and the
    event is processed again later; a refused token keeps the item as it came."""

    def located(item: InboundItem) -> bool:
        return item.kind is InboxKind.mention and not item.text

    kit = kit_of(ctx["resources"])
    complete = getattr(kit.connector(platform), "complete_item", None)
    if complete is None or not any(located(i) for i in items):
        return items
    tokens = await fresh_tokens(ctx["db"], kit, tenant_id, account_id, utcnow())
    if tokens is None:
        return items
    read: list[InboundItem] = []
    for item in items:
        if not located(item):
            read.append(item)
            continue
        try:
            read.append(await complete(tokens, item.account_external_id, item))
        except TokenInvalid:
            read.append(item)
    return read


async def process_platform_event(ctx: dict[str, Any], event_id: str) -> int:
    """One stored webhook delivery into items (Meta) or reads of the accounts it names
    (LinkedIn's notifications carry no text). Answers how many items were new."""
    async with ctx["db"].session() as session:
        event = await session.get(PlatformEvent, uuid.UUID(event_id))
        if event is None or event.processed_at is not None:
            return 0
        platform, body = event.platform, dict(event.body)
    new = 0
    try:
        if platform in META:
            by_account: dict[str, list[InboundItem]] = defaultdict(list)
            for item in meta.parse_webhook(body):
                by_account[item.account_external_id].append(item)
            for external_id, items in by_account.items():
                for tenant_id, account_id in await _owners(ctx, platform, external_id):
                    read = await _read_in_full(ctx, tenant_id, account_id, platform, items)
                    new += await store_for_account(ctx, tenant_id, account_id, read, pushed=True)
        elif platform == LINKEDIN:
            for organization in linkedin.notified_organizations(body):
                for tenant_id, account_id in await _owners(ctx, platform, organization):
                    await ctx["redis"].enqueue_job(
                        POLL_JOB,
                        str(tenant_id),
                        str(account_id),
                        _job_id=f"inbox-poll:{account_id}:push:{event_id}",
                    )
    except Exception as exc:
        async with ctx["db"].session() as session:
            await session.execute(
                update(PlatformEvent)
                .where(col(PlatformEvent.id) == uuid.UUID(event_id))
                .values(attempts=PlatformEvent.attempts + 1, last_error=str(exc)[:2000])
            )
            await session.commit()
        raise
    async with ctx["db"].session() as session:
        await session.execute(
            update(PlatformEvent)
            .where(col(PlatformEvent.id) == uuid.UUID(event_id))
            .values(processed_at=utcnow(), attempts=PlatformEvent.attempts + 1, last_error=None)
        )
        await session.commit()
    return new


async def poll_inbox_account(ctx: dict[str, Any], tenant_id: str, account_id: str) -> int:
    """Read what reached one account since the last read; answers how many items were new."""
    tid, aid = uuid.UUID(tenant_id), uuid.UUID(account_id)
    settings = ctx["settings"]
    now = utcnow()
    async with ctx["db"].tenant_transaction(tid) as session:
        account = await session.get(SocialAccount, (tid, aid))
        cursor = (
            await session.scalars(
                select(InboxCursor).where(
                    InboxCursor.tenant_id == tid, InboxCursor.social_account_id == aid
                )
            )
        ).first()
        if account is None:
            return 0
        platform, external_id = account.platform, account.external_id
        since = cursor.polled_through if cursor and cursor.polled_through else now - FIRST_POLL
    push = platform in (*META, LINKEDIN)
    every = settings.inbox_webhook_gap_minutes if push else settings.inbox_poll_minutes
    next_at = now + timedelta(minutes=every)
    kit = kit_of(ctx["resources"])
    error: str | None = None
    items: list[InboundItem] = []
    try:
        tokens = await fresh_tokens(ctx["db"], kit, tid, aid, now)
        if tokens is None:
            error = "the account is not connected"
        else:
            connector = cast(InboxConnector, kit.connector(platform))
            items = await connector.fetch_items(tokens, external_id, since - POLL_OVERLAP)
    except TokenInvalid as exc:
        await mark_needs_reauth(ctx["db"], tid, aid, str(exc) or "token refused")
        error = str(exc) or "token refused"
    except RateLimited as exc:
        error = str(exc) or "rate limited"
        next_at = max(next_at, now + timedelta(seconds=exc.retry_after))
    except ConnectorError as exc:
        error = str(exc) or type(exc).__name__
    new = await store_for_account(ctx, tid, aid, items, pushed=False) if items else 0
    async with ctx["db"].tenant_transaction(tid) as session:
        account = await session.get(SocialAccount, (tid, aid))
        if account is not None:
            await ingest.touch_cursor(
                session,
                account,
                polled_at=now,
                polled_through=now if error is None else None,
                next_poll_at=next_at,
                error=error,
            )
    return new


# --- the sweep --------------------------------------------------------------------------------

_DUE = text("SELECT * FROM inbox_due(:due)")


async def _breach(ctx: dict[str, Any], tenant_id: uuid.UUID, item_id: uuid.UUID) -> bool:
    async with ctx["db"].tenant_transaction(tenant_id) as session:
        item = await session.get(InboxItem, (tenant_id, item_id), with_for_update=True)
        now = utcnow()
        if (
            item is None
            or item.sla_breached_at is not None
            or item.first_response_at is not None
            or item.status == ItemStatus.done
            or item.response_due_at is None
            or item.response_due_at > now
        ):
            return False
        item.sla_breached_at = now
        item.version += 1
        item.updated_at = now
        ingest.emit(session, item, "inbox.sla_breached", breached_at=now.isoformat())
    return True


async def sweep_inbox(ctx: dict[str, Any]) -> int:
    """arq cron (every minute): breached response targets, replies to send or reconcile
    (including those a dead worker left), accounts due for a read, and webhook deliveries a
    failed job left unprocessed. Job ids make a repeat a no-op."""
    now = utcnow()
    queue = ctx["redis"]
    done = 0
    minute = int(now.timestamp()) // 60
    for tenant_id, kind, object_id, at in await due_tenants(ctx["db"], _DUE, {"due": now}):
        if kind == "breach":
            done += await _breach(ctx, tenant_id, object_id)
            continue
        if kind == "poll":
            job = await queue.enqueue_job(
                POLL_JOB, str(tenant_id), str(object_id), _job_id=f"inbox-poll:{object_id}:{minute}"
            )
        else:
            job = await queue.enqueue_job(
                SEND_JOB if kind == "send" else RECONCILE_JOB,
                str(tenant_id),
                str(object_id),
                _job_id=f"inbox-{kind}:{object_id}:sweep:{minute}",
                _defer_until=not_before(at or now),
            )
        done += job is not None
    async with ctx["db"].session() as session:
        stale = (
            await session.scalars(
                select(PlatformEvent.id)
                .where(
                    col(PlatformEvent.processed_at).is_(None),
                    col(PlatformEvent.received_at) < now - EVENT_RETRY_AFTER,
                    col(PlatformEvent.attempts) < 10,
                )
                .order_by(col(PlatformEvent.received_at))
                .limit(500)
            )
        ).all()
    for event_id in stale:
        job = await queue.enqueue_job(
            PROCESS_JOB, str(event_id), _job_id=f"platform-event:{event_id}:{minute}"
        )
        done += job is not None
    return done
