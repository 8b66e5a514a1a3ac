"""arq jobs of the inbox: a platform event stored by the receiver becomes items; accounts are
read (polled) where the platform has no push, and as a catch-up after a webhook gap; replies
and moderation go out (`inbox.sender`); a per-minute sweep queues what is due and marks
response targets breached (once: `inbox.sla_breached`)."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Text, text, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox import crisis_mail, notify_mail, sender
from inbox.models import InboxAction, InboxCursor, InboxItem, ItemStatus, PlatformEvent
from inbox.service import crises, ingest
from inbox.service.webhooks import LINKEDIN, META
from inbox.templates import CHECK_PLATFORMS
from infra import outbox
from infra.clock import utcnow
from infra.i18n import language as language_of
from infra.logging import get_logger
from infra.mail import Mail, MailBatch
from infra.metrics import INBOX_SLA_BREACHES
from infra.outbox import Event
from infra.queue import not_before
from infra.resources import Resources
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
from social.jobs import brand_lead_recipients
from social.kit import kit_of
from social.models import SocialAccount
from social.sync import fresh_tokens, mark_needs_reauth
from tenants.models import Membership, MembershipStatus, Tenant, User
from workflows.checks import PLATFORM_NAMES, platform_name

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

_OWNERS = text("SELECT * FROM inbox_account_owners(:platform, :external_ids)")


async def _owners(
    ctx: dict[str, Any], platform: str, external_ids: Collection[str]
) -> dict[str, list[tuple[uuid.UUID, uuid.UUID]]]:
    """For each platform account id, the (agency, account) pairs that connected it: one pass
    over the agencies for a whole batch."""
    owners: dict[str, list[tuple[uuid.UUID, uuid.UUID]]] = defaultdict(list)
    if not external_ids:
        return owners
    rows = await due_tenants(
        ctx["db"], _OWNERS, {"platform": platform, "external_ids": sorted(external_ids)}
    )
    for tenant_id, account_id, external_id in rows:
        owners[external_id].append((tenant_id, account_id))
    return owners


async def store_for_account(
    ctx: dict[str, Any],
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    items: list[InboundItem],
    *,
    pushed: bool,
) -> int:
    """Store one account's items in its agency's transaction; answers how many were new."""
    return await store_for_accounts(ctx, tenant_id, {account_id: items}, pushed=pushed)


async def store_for_accounts(
    ctx: dict[str, Any],
    tenant_id: uuid.UUID,
    received: dict[uuid.UUID, list[InboundItem]],
    *,
    pushed: bool,
) -> int:
    """Store what several accounts of one agency received, in one transaction of that agency;
    answers how many items were new. The outbox's delivery and the actions rules queued are
    asked for once it has committed."""
    now = utcnow()
    new = 0
    async with ctx["db"].tenant_transaction(tenant_id) as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            return 0
        # Accounts in a fixed order: two drains storing for the same accounts lock their rows
        # (cursors, threads) in the same order, so one waits rather than deadlocks.
        for account_id, items in sorted(received.items()):
            account = await session.get(SocialAccount, (tenant_id, account_id))
            if account is None:
                continue
            context = await ingest.context_for(session, account, now, tenant.timezone)
            if context is None:
                continue
            stored = await ingest.store(session, context, items, now)
            new += sum(s.new for s in stored)
            if pushed:
                gap = timedelta(minutes=ctx["settings"].inbox_webhook_gap_minutes)
                await ingest.touch_cursor(session, account, pushed_at=now, next_poll_at=now + gap)
        queued = ingest.queued_actions(session)
    await outbox.dispatch_after_commit(session, ctx["redis"])
    for action in queued:
        await sender_deps(ctx).enqueue("send", action, now)
    return new


async def _completed(
    ctx: dict[str, Any], tenant_id: uuid.UUID, account_id: uuid.UUID, items: list[InboundItem]
) -> list[InboundItem]:
    """Mentions as the platform shows them when read: Meta's webhook only locates them (no
    text, no author). Read with the owning agency's token; left as they are if that fails."""
    if not any(i.kind is InboxKind.mention and not i.text for i in items):
        return items
    kit = kit_of(ctx["resources"])
    async with ctx["db"].tenant_transaction(tenant_id) as session:
        account = await session.get(SocialAccount, (tenant_id, account_id))
        if account is None:
            return items
        platform, external_id = account.platform, account.external_id
    connector = kit.connector(platform)
    complete = getattr(connector, "complete_item", None)
    if complete is None:
        return items
    try:
        tokens = await fresh_tokens(ctx["db"], kit, tenant_id, account_id, utcnow())
        if tokens is None:
            return items
        return [await complete(tokens, external_id, item) for item in items]
    except ConnectorError:
        log.warning("inbox.mention_unread", account_id=str(account_id), exc_info=True)
        return items


DRAIN_JOB = "drain_platform_events"
DRAIN_BATCH = 500
"""Deliveries claimed together: their items are grouped per agency, so a busy page's burst is
one transaction per agency that connected it, not one per delivery."""
DRAIN_SPAN_S = 60.0
"""A drain that has worked this long hands over to a new job (well within arq's timeout)."""
DRAIN_IDLE_S = 1.0
"""How long a drain that finds nothing keeps looking, every DRAIN_LOOK_S: about the time to the
receiver's next ask under steady traffic."""
DRAIN_LOOK_S = 0.1
MAX_EVENT_TRIES = 10

DRAIN_DELAY = timedelta(milliseconds=200)
_last_drain: list[tuple[int, float]] = [(-1, 0.0)]


def drains_after(now: datetime) -> list[tuple[str, datetime | None]]:
    """The drains a receiving process asks for, as (job id, when): at the first delivery of
    each second, one now (a lone delivery is processed at once) and one just after the second
    ends (it finds every later delivery of that second committed). Nothing more that second:
    a burst of deliveries costs Redis two jobs a second, not one each."""
    second = int(now.timestamp())
    asked_second, asked_at = _last_drain[0]
    # Also by the monotonic clock: a test's frozen application clock may show the same second
    # again much later.
    if asked_second == second and time.monotonic() - asked_at < 1.0:
        return []
    _last_drain[0] = (second, time.monotonic())
    trailing = datetime.fromtimestamp(second + 1, tz=now.tzinfo) + DRAIN_DELAY
    return [(f"platform-events:{second}:first", None), (f"platform-events:{second}:last", trailing)]


@dataclass
class _Drain:
    """The process's drain: one at a time; a drain asked for while one runs only makes the
    running one look again before it stops."""

    running: bool = False
    asked: bool = False


def _drain_of(ctx: dict[str, Any]) -> _Drain:
    # On the process's resources: arq gives each job a fresh copy of its context.
    resources: Resources = ctx["resources"]
    return resources.extension(_Drain, lambda _: _Drain())


async def process_platform_event(ctx: dict[str, Any], event_id: str) -> int:
    """One stored webhook delivery (a retry of one that failed); answers the new items."""
    return await _drain_batch(ctx, only=uuid.UUID(event_id)) or 0


async def drain_platform_events(ctx: dict[str, Any], key: str = "") -> int:
    """Every delivery still unprocessed, in batches (the receiver asks for a drain twice a
    second at most); answers the new items. Each batch is claimed with its rows locked
    (SKIP LOCKED): drains in other processes take other deliveries, and a drain whose worker
    dies releases its batch with its connection, for the next drain to take again. A drain
    that finds nothing looks again a few times before it stops (DRAIN_IDLE_S): while deliveries
    keep coming, one lands in the next batch, not after the receiver's next ask."""
    drain = _drain_of(ctx)
    drain.asked = True
    if drain.running:
        return 0
    drain.running = True
    new = 0
    started = time.monotonic()
    idle_since: float | None = None
    try:
        while True:
            drain.asked = False
            done = await _drain_batch(ctx)
            now = time.monotonic()
            if done is not None:
                new += done
                idle_since = None
                if now - started > DRAIN_SPAN_S:
                    await ctx["redis"].enqueue_job(
                        DRAIN_JOB, "continued", _job_id=f"platform-events:continued:{uuid.uuid4()}"
                    )
                    return new
                continue
            if drain.asked:  # asked while it looked: what was committed since is not missed
                continue
            idle_since = idle_since or now
            if now - idle_since >= DRAIN_IDLE_S:
                return new
            await asyncio.sleep(DRAIN_LOOK_S)
    finally:
        drain.running = False


def _claim(only: uuid.UUID | None) -> Any:
    query = (
        select(
            col(PlatformEvent.id),
            col(PlatformEvent.platform),
            sql_cast(col(PlatformEvent.body), Text),
        )
        .where(
            col(PlatformEvent.processed_at).is_(None),
            col(PlatformEvent.attempts) < MAX_EVENT_TRIES,
        )
        .order_by(col(PlatformEvent.received_at))
        .limit(DRAIN_BATCH)
        .with_for_update(skip_locked=True)
    )
    return query if only is None else query.where(col(PlatformEvent.id) == only)


async def _drain_batch(ctx: dict[str, Any], *, only: uuid.UUID | None = None) -> int | None:
    """Claim a batch of unprocessed deliveries, store their items, mark them processed, all
    before the claim's transaction commits; answers the new items (None: nothing to claim)."""
    async with ctx["db"].session() as claim:
        rows = (await claim.execute(_claim(only))).all()
        if not rows:
            return None
        # The body as text, parsed here: faster than the driver's generic JSON decoding.
        batch = [(event_id, platform, orjson.loads(body)) for event_id, platform, body in rows]
        ids = [event_id for event_id, _, _ in batch]
        try:
            new, bad = await _process(ctx, batch)
        except Exception as exc:
            await _settle_events(claim, ids, error=str(exc) or type(exc).__name__)
            await claim.commit()
            raise
        await _settle_events(claim, [i for i in ids if i not in bad])
        for event_id, error in bad.items():
            # A body the platform would never send: kept for a person to read, never retried.
            await _settle_events(claim, [event_id], error=error, give_up=True)
        await claim.commit()
    return new


async def _process(
    ctx: dict[str, Any], batch: list[tuple[uuid.UUID, str, dict[str, Any]]]
) -> tuple[int, dict[uuid.UUID, str]]:
    """The items of a batch of deliveries, stored under each agency that connected their
    accounts; answers how many were new, and the deliveries no platform would send."""
    new = 0
    by_account: dict[tuple[str, str], list[InboundItem]] = defaultdict(list)
    polls: set[tuple[str, str]] = set()
    bad: dict[uuid.UUID, str] = {}
    for event_id, platform, body in batch:
        try:
            if platform in META:
                for item in meta.parse_webhook(body):
                    by_account[(platform, item.account_external_id)].append(item)
            elif platform == LINKEDIN:
                polls.update((platform, o) for o in linkedin.notified_organizations(body))
        except ValueError as exc:
            bad[event_id] = f"not an event of {platform}: {exc}"[:2000]
    by_tenant: dict[uuid.UUID, dict[uuid.UUID, list[InboundItem]]] = defaultdict(dict)
    for platform in {p for p, _ in by_account}:
        owners = await _owners(ctx, platform, {e for p, e in by_account if p == platform})
        for (of, external_id), items in by_account.items():
            if of != platform:
                continue
            for tenant_id, account_id in owners.get(external_id, []):
                complete = await _completed(ctx, tenant_id, account_id, items)
                by_tenant[tenant_id][account_id] = complete
    for tenant_id, received in by_tenant.items():
        new += await store_for_accounts(ctx, tenant_id, received, pushed=True)
    minute = int(utcnow().timestamp()) // 60
    notified = await _owners(ctx, LINKEDIN, {o for _, o in polls})
    for _, organization in polls:
        for tenant_id, account_id in notified.get(organization, []):
            await ctx["redis"].enqueue_job(
                POLL_JOB,
                str(tenant_id),
                str(account_id),
                _job_id=f"inbox-poll:{account_id}:push:{minute}",
            )
    return new, bad


async def _settle_events(
    session: AsyncSession,
    event_ids: list[uuid.UUID],
    *,
    error: str | None = None,
    give_up: bool = False,
) -> None:
    if not event_ids:
        return
    values: dict[str, Any] = {"attempts": PlatformEvent.attempts + 1, "last_error": error}
    if error is None:
        values["processed_at"] = utcnow()
    elif give_up:
        values["attempts"] = MAX_EVENT_TRIES
    await session.execute(
        update(PlatformEvent).where(col(PlatformEvent.id).in_(event_ids)).values(**values)
    )


async def poll_inbox_account(ctx: dict[str, Any], tenant_id: str, account_id: str) -> int:
    """Read what reached one account since the last read; answers how many items were new."""
    tid, aid = uuid.UUID(tenant_id), uuid.UUID(account_id)
    settings = ctx["settings"]
    now = utcnow()
    kit = kit_of(ctx["resources"])
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
        first = getattr(kit.connector(account.platform), "first_read", FIRST_POLL)
        since = cursor.polled_through if cursor and cursor.polled_through else now - first
    push = platform in (*META, LINKEDIN)
    every = settings.inbox_webhook_gap_minutes if push else settings.inbox_poll_minutes
    next_at = now + timedelta(minutes=every)
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


# --- e-mails on a missed response target ------------------------------------------------------

BREACHED = "inbox.sla_breached"
MAIL_MARK_SECONDS = 14 * 24 * 3600
"""How long a sent breach e-mail is remembered: well past the outbox's last retry."""

_KIND_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "comment": "A comment",
        "reply": "A reply",
        "mention": "A mention",
        "message": "A private message",
        "review": "A review",
    },
    "fr": {
        "comment": "Un commentaire",
        "reply": "Une réponse",
        "mention": "Une mention",
        "message": "Un message privé",
        "review": "Un avis",
    },
}

_BREACH_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Response target missed: {brand} on {platform}",
        "body": (
            "{what} from {author} on {brand}'s {platform} account was not answered by its "
            "deadline ({due})."
        ),
        "wrote": "They wrote",
        "open": "Answer it in the inbox",
        "someone": "someone",
    },
    "fr": {
        "subject": "Délai de réponse dépassé : {brand} sur {platform}",
        "body": (
            "{what} de {author} sur le compte {platform} de {brand} n'a pas reçu de réponse "
            "dans le délai prévu ({due})."
        ),
        "wrote": "Le message",
        "open": "Y répondre dans la boîte de réception",
        "someone": "quelqu'un",
    },
}


async def _breach_recipients(
    ctx: dict[str, Any], tenant_id: uuid.UUID, item_id: uuid.UUID, brand_id: uuid.UUID
) -> tuple[str, str, list[tuple[str, str]]]:
    """The brand's name, the agency's time zone, and who to tell: the item's assignee and the
    brand's lead (the owners and admins when the brand has none), each once."""
    brand, leads = await brand_lead_recipients(ctx, tenant_id, brand_id)
    async with ctx["db"].tenant_transaction(tenant_id) as session:
        tenant = await session.get(Tenant, tenant_id)
        assignee = (
            await session.execute(
                select(User.email, User.locale)
                .join(Membership, col(Membership.user_id) == col(User.id))
                .join(
                    InboxItem,
                    (col(InboxItem.tenant_id) == col(Membership.tenant_id))
                    & (col(InboxItem.assignee_id) == col(Membership.user_id)),
                )
                .where(
                    InboxItem.tenant_id == tenant_id,
                    InboxItem.id == item_id,
                    Membership.status == MembershipStatus.active,
                )
            )
        ).all()
    people: dict[str, str] = {}
    for email, locale in [*assignee, *leads]:
        people.setdefault(email.lower(), locale)
    timezone = tenant.timezone if tenant is not None else "UTC"
    return brand, timezone, sorted(people.items())


def _network(platform: str) -> str:
    """'facebook_page' -> 'Facebook': the names the content checks know, else capitalized."""
    name = platform_name(CHECK_PLATFORMS.get(platform, platform))
    return name if name in PLATFORM_NAMES.values() else name.capitalize()


@outbox.handler(BREACHED)
async def mail_sla_breached(ctx: dict[str, Any], event: Event) -> None:
    """Tell the assignee and the brand's lead, each in their language, that an item waited
    past its response target. The outbox may deliver an event again (a later handler failed):
    each e-mail is marked in Redis before it goes, so nobody gets it twice."""
    payload = event.payload
    brand, timezone, recipients = await _breach_recipients(
        ctx, event.tenant_id, uuid.UUID(payload["item_id"]), uuid.UUID(payload["brand_id"])
    )
    settings = ctx["settings"]
    url = f"{settings.app_base_url}/inbox/{payload['item_id']}"
    due = payload.get("response_due_at")
    due_text = (
        datetime.fromisoformat(due).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
        if due
        else "?"
    )
    batch = MailBatch(settings)
    for email, locale in recipients:
        mark = f"inbox:breach-mail:{event.id}:{email}"
        if not await ctx["redis"].set(mark, "1", nx=True, ex=MAIL_MARK_SECONDS):
            continue
        language = language_of(locale)
        words = _BREACH_WORDS[language]
        handle = payload.get("author_handle")
        values = {
            "what": _KIND_WORDS[language].get(payload["kind"], _KIND_WORDS[language]["comment"]),
            "author": f"@{handle.lstrip('@')}" if handle else words["someone"],
            "brand": brand,
            "platform": _network(payload["platform"]),
            "due": f"{due_text} ({timezone})",
        }
        said = words["body"].format(**values)
        quoted = " ".join((payload.get("text") or "").split())[:500]
        text = f"{said}\n\n{words['wrote']}: {quoted}\n\n{words['open']}: {url}\n"
        markup = (
            f"<p>{html.escape(said)}</p>"
            f"<blockquote>{html.escape(quoted)}</blockquote>"
            f'<p><a href="{html.escape(url)}">{html.escape(words["open"])}</a></p>'
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


# --- the sweep --------------------------------------------------------------------------------

_DUE = text("SELECT * FROM inbox_due(:due, :reads)")


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
    INBOX_SLA_BREACHES.inc()  # committed: a breach counts once
    return True


async def sweep_inbox(ctx: dict[str, Any]) -> int:
    """arq cron (every minute): breached response targets, replies to send or reconcile
    (including those a dead worker left), and webhook deliveries a failed job left
    unprocessed. Job ids make a repeat a no-op."""
    now = utcnow()
    queue = ctx["redis"]
    done = 0
    minute = int(now.timestamp()) // 60
    rows = await due_tenants(ctx["db"], _DUE, {"due": now, "reads": False})
    for tenant_id, kind, object_id, at in rows:
        if kind == "breach":
            done += await _breach(ctx, tenant_id, object_id)
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
        stale = await session.scalar(
            select(PlatformEvent.id)
            .where(
                col(PlatformEvent.processed_at).is_(None),
                col(PlatformEvent.received_at) < now - EVENT_RETRY_AFTER,
                col(PlatformEvent.attempts) < MAX_EVENT_TRIES,
            )
            .limit(1)
        )
    if stale is not None:
        # Deliveries a failed or lost drain left: drain again.
        job = await queue.enqueue_job(DRAIN_JOB, "sweep", _job_id=f"platform-events:sweep:{minute}")
        done += job is not None
    return done


async def schedule_inbox_reads(ctx: dict[str, Any]) -> int:
    """arq cron (every minute): a read of each account that is due one (every
    INBOX_POLL_MINUTES where the platform has no push; after INBOX_WEBHOOK_GAP_MINUTES without a
    webhook where it has). Answers how many reads were queued."""
    if not ctx["settings"].inbox_reads:
        return 0
    now = utcnow()
    minute = int(now.timestamp()) // 60
    queued = 0
    for tenant_id, _, account_id, _ in await due_tenants(
        ctx["db"], _DUE, {"due": now, "reads": True}
    ):
        job = await ctx["redis"].enqueue_job(
            POLL_JOB, str(tenant_id), str(account_id), _job_id=f"inbox-poll:{account_id}:{minute}"
        )
        queued += job is not None
    return queued


# --- crisis early warning ---------------------------------------------------------------------


async def scan_crises(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """arq cron (every 5 minutes): each agency's brands and accounts that received items in the
    last hours are judged against their own last two weeks; a new episode is warned once
    (`inbox.crisis_suspected`) and its items pinned. Answers how many crises were opened."""
    return await crises.scan(ctx["db"], now=now or utcnow(), queue=ctx.get("redis"))


@outbox.handler(crises.CRISIS_SUSPECTED)
async def mail_crisis_suspected(ctx: dict[str, Any], event: Event) -> None:
    await crisis_mail.mail_crisis(ctx, event)


@outbox.handler(ingest.NOTIFY)
async def mail_rule_notify(ctx: dict[str, Any], event: Event) -> None:
    await notify_mail.mail_notify(ctx, event)
