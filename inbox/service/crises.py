"""Crisis early warning, with the database: every few minutes, each agency's brands (and each
of their accounts) that received items in the last hours are judged by the pure detector
(`inbox.crisis`) against their own last two weeks; a new episode becomes an `inbox_crises` row,
pins the items behind it to the top of the inbox, and tells the people concerned through the
outbox (`inbox.crisis_suspected`).

Episodes. A crisis lasts hours and the detector finds it at every scan. The latest crisis row
of the brand (or account) carries `last_signal_at`, moved on every signal, warned or not; a
signal warns only when that row is older than the detector's quiet hours (`new_episode`). An
account's signal continues a brand-wide episode (a row without account) and the brand's signal
continues any episode of its accounts: a burst on a brand's only account is one warning, not
one for the account and one for the brand. Items that arrive while an episode goes on are
pinned to it too, silently.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import and_, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from inbox import crisis as detector
from inbox.models import Crisis, InboxItem
from inbox.rules import mentions_any
from inbox.schemas import CrisisFigures, CrisisRead
from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.logging import get_logger
from infra.pagination import Keyset, Page, SortKey, id_key
from infra.sweep import due_tenants, for_each_tenant
from social.models import SocialAccount
from tenants.models import Brand, Tenant, TenantStatus
from tenants.policy import Resource, Verb
from tenants.principal import Principal
from tenants.service.common import require_scope
from tenants.service.directory import brand_visibility, today_for

log = get_logger(__name__)

CRISIS_SUSPECTED = "inbox.crisis_suspected"

PIN_FOR = timedelta(hours=24)
"""How long a crisis keeps its items at the top of the inbox: a working day for the team to
answer them, whatever the hour the warning came."""

MAX_ITEMS = 500
"""Items tied to one crisis at most (the newest): enough to work on, and a viral post's
thousands of comments do not bury the rest of the inbox for a day."""

WINDOW_ITEMS_LIMIT = 20_000
"""Items of the window read back to look for watch-list words and to pin (counts come from
SQL and are exact): a bound on the memory one agency's scan may take."""


# --- reading the window and the history --------------------------------------------------------


@dataclass(frozen=True)
class WindowItem:
    id: uuid.UUID
    brand_id: uuid.UUID
    account_id: uuid.UUID
    negative: bool
    keywords: tuple[str, ...]
    """Watch-list words the item used."""
    crisis_id: uuid.UUID | None


@dataclass
class Watched:
    """What one brand (account_id None) or one of its accounts is judged on."""

    brand: Brand
    account_id: uuid.UUID | None
    since: datetime
    hours: dict[datetime, list[int]] = field(default_factory=dict)
    """hour -> [total, negative]"""
    items: list[WindowItem] = field(default_factory=list)

    def add(self, hour: datetime, total: int, negative: int) -> None:
        counts = self.hours.setdefault(hour, [0, 0])
        counts[0] += total
        counts[1] += negative

    def series(self) -> list[detector.HourCount]:
        return [detector.HourCount(h, t, n) for h, (t, n) in sorted(self.hours.items())]


def _keywords(text_: str, watch_list: Sequence[str]) -> tuple[str, ...]:
    if not watch_list or not mentions_any(text_, watch_list):
        return ()
    return tuple(word for word in watch_list if mentions_any(text_, (word,)))


async def _window_items(
    session: AsyncSession, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> list[Any]:
    """The window's items, newest first; the brand's own posts and replies do not count."""
    rows = await session.execute(
        select(
            col(InboxItem.id),
            col(InboxItem.brand_id),
            col(InboxItem.social_account_id),
            col(InboxItem.sentiment),
            col(InboxItem.text),
            col(InboxItem.crisis_id),
        )
        .where(
            col(InboxItem.tenant_id) == tenant_id,
            col(InboxItem.received_at) >= start,
            col(InboxItem.received_at) < end,
            col(InboxItem.from_account).is_(False),
        )
        .order_by(col(InboxItem.received_at).desc(), col(InboxItem.id).desc())
        .limit(WINDOW_ITEMS_LIMIT)
    )
    return list(rows.all())


async def _hourly_counts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    brand_ids: Sequence[uuid.UUID],
    start: datetime,
    end: datetime,
) -> list[Any]:
    """(brand, account, hour, total, negative) of these brands from `start` to `end`, in one
    statement. Hours are cut in UTC whatever the session's time zone, as the detector wants."""
    hour = func.date_trunc("hour", col(InboxItem.received_at), "UTC").label("hour")
    rows = await session.execute(
        select(
            col(InboxItem.brand_id),
            col(InboxItem.social_account_id),
            hour,
            func.count().label("total"),
            func.count().filter(col(InboxItem.sentiment) == "negative").label("negative"),
        )
        .where(
            col(InboxItem.tenant_id) == tenant_id,
            col(InboxItem.brand_id).in_(brand_ids),
            col(InboxItem.received_at) >= start,
            col(InboxItem.received_at) < end,
            col(InboxItem.from_account).is_(False),
        )
        .group_by(col(InboxItem.brand_id), col(InboxItem.social_account_id), hour)
    )
    return list(rows.all())


async def _watched(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime, window: int
) -> list[Watched]:
    """The brands and accounts that received items in the window, with their series."""
    current = now.replace(minute=0, second=0, microsecond=0)
    start = current - (window - 1) * detector.HOUR
    end = current + detector.HOUR
    rows = await _window_items(session, tenant_id, start, end)
    if not rows:
        return []
    brand_ids = sorted({row.brand_id for row in rows})
    brands = {
        b.id: b
        for b in (
            await session.scalars(
                select(Brand).where(col(Brand.tenant_id) == tenant_id, col(Brand.id).in_(brand_ids))
            )
        ).all()
    }
    connected: dict[uuid.UUID, tuple[uuid.UUID, datetime]] = {
        a.id: (a.brand_id, a.connected_at)
        for a in (
            await session.execute(
                select(
                    col(SocialAccount.id),
                    col(SocialAccount.brand_id),
                    col(SocialAccount.connected_at),
                ).where(
                    col(SocialAccount.tenant_id) == tenant_id,
                    col(SocialAccount.brand_id).in_(brand_ids),
                )
            )
        ).all()
    }
    history_start = start - detector.HISTORY_DAYS * detector.DAY
    by_brand: dict[uuid.UUID, Watched] = {}
    by_account: dict[uuid.UUID, Watched] = {}
    accounts_of: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for brand_id, account_id, hour, total, negative in await _hourly_counts(
        session, tenant_id, brand_ids, history_start, end
    ):
        brand = brands[brand_id]
        if brand_id not in by_brand:
            # A brand has been watched since its first account was connected.
            first = min(at for b, at in connected.values() if b == brand_id)
            by_brand[brand_id] = Watched(brand, None, first)
        if account_id not in by_account:
            by_account[account_id] = Watched(brand, account_id, connected[account_id][1])
        by_brand[brand_id].add(hour, total, negative)
        by_account[account_id].add(hour, total, negative)
        accounts_of[brand_id].add(account_id)
    for row in rows:
        if row.social_account_id not in by_account:
            continue  # gone between the two reads (its account was removed): nothing to judge
        watch_list = [str(w) for w in brands[row.brand_id].guidelines.get("watch_list") or []]
        item = WindowItem(
            id=row.id,
            brand_id=row.brand_id,
            account_id=row.social_account_id,
            negative=row.sentiment == "negative",
            keywords=_keywords(row.text or "", watch_list),
            crisis_id=row.crisis_id,
        )
        by_brand[row.brand_id].items.append(item)
        by_account[row.social_account_id].items.append(item)
    watched = [w for w in by_account.values() if w.items]
    # The brand as a whole only when it is more than one account: a surge spread over its
    # accounts that none of them shows alone. With one account, it is that account.
    watched += [w for b, w in by_brand.items() if len(accounts_of[b]) > 1]
    return watched


# --- judging and recording --------------------------------------------------------------------


def _figures(figures: detector.Figures | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {
        "observed": figures.observed,
        "median": figures.median,
        "mad": figures.mad,
        "score": round(figures.score, 3),
        "surge": figures.surge,
    }


def _behind(signal: detector.CrisisSignal, items: Sequence[WindowItem]) -> list[WindowItem]:
    """The items that made the signal, the most telling first (watch-list words, then negative,
    then the rest of a surge), newest first within each; at most MAX_ITEMS."""
    groups: list[Iterable[WindowItem]] = []
    if "keyword" in signal.triggers:
        groups.append(i for i in items if i.keywords)
    if "negative" in signal.triggers or "volume" in signal.triggers:
        groups.append(i for i in items if i.negative)
    if "volume" in signal.triggers:
        groups.append(items)
    chosen: dict[uuid.UUID, WindowItem] = {}
    for group in groups:
        for item in group:
            chosen.setdefault(item.id, item)
    return list(chosen.values())[:MAX_ITEMS]


def figures_of(signal: detector.CrisisSignal, items: Sequence[WindowItem]) -> dict[str, Any]:
    """What a crisis row keeps (and the event carries) of the signal that opened it."""
    words = sorted({w for i in items for w in i.keywords})
    return {
        "triggers": list(signal.triggers),
        "window_start": signal.window_start.isoformat(),
        "window_end": signal.window_end.isoformat(),
        "negative": _figures(signal.negative),
        "volume": _figures(signal.volume),
        "keyword_hits": signal.keyword_hits,
        "keywords": words,
    }


async def _recent_crises(
    session: AsyncSession, tenant_id: uuid.UUID, brand_ids: Iterable[uuid.UUID], now: datetime
) -> list[Crisis]:
    """Crises of these brands that may still be going on (a signal within the quiet hours),
    locked: two scans of one agency never open the same episode twice."""
    quiet = timedelta(hours=detector.QUIET_HOURS)
    return list(
        (
            await session.scalars(
                select(Crisis)
                .where(
                    col(Crisis.tenant_id) == tenant_id,
                    col(Crisis.brand_id).in_(list(brand_ids)),
                    col(Crisis.last_signal_at) > now - quiet,
                )
                .order_by(col(Crisis.last_signal_at).desc(), col(Crisis.id).desc())
                .with_for_update()
            )
        ).all()
    )


def _ongoing(crises: Sequence[Crisis], watched: Watched, now: datetime) -> Crisis | None:
    """The latest crisis this signal continues, or None if it starts a new episode."""
    candidates = [
        c
        for c in crises
        if c.brand_id == watched.brand.id
        and (
            watched.account_id is None
            or c.social_account_id is None
            or c.social_account_id == watched.account_id
        )
    ]
    last = max(candidates, key=lambda c: c.last_signal_at, default=None)
    if last is None or detector.new_episode(last.last_signal_at, now):
        return None
    return last


async def _pin(
    session: AsyncSession,
    crisis: Crisis,
    items: Sequence[WindowItem],
    now: datetime,
) -> list[uuid.UUID]:
    """Ties the items not yet in a crisis to this one and pins them; answers those tied. Their
    version moves: an agent who saw them before the warning is told (412) before acting."""
    free = [i.id for i in items if i.crisis_id is None]
    if not free:
        return []
    tied = (
        await session.scalars(
            update(InboxItem)
            .where(
                col(InboxItem.tenant_id) == crisis.tenant_id,
                col(InboxItem.id).in_(free),
                col(InboxItem.crisis_id).is_(None),
            )
            .values(
                crisis_id=crisis.id,
                pinned_until=now + PIN_FOR,
                version=InboxItem.version + 1,
                updated_at=now,
            )
            .returning(col(InboxItem.id))
        )
    ).all()
    return list(tied)


def crisis_payload(crisis: Crisis, client_id: uuid.UUID) -> dict[str, Any]:
    """What `inbox.crisis_suspected` says: partners and the e-mail read the same."""
    return {
        "crisis_id": str(crisis.id),
        "brand_id": str(crisis.brand_id),
        "client_id": str(client_id),
        "social_account_id": str(crisis.social_account_id) if crisis.social_account_id else None,
        "trigger": crisis.trigger,
        "started_at": crisis.started_at.isoformat(),
        "figures": crisis.figures,
        "item_ids": list(crisis.item_ids),
    }


async def scan_tenant(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    now: datetime,
    *,
    window: int = detector.WINDOW,
) -> list[Crisis]:
    """Judge one agency's watched brands and accounts at `now`; answers the crises it opened
    (each warned through the outbox). Runs in the agency's transaction; never commits."""
    # One scan of an agency at a time: the second waits and then sees the first one's rows.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"inbox-crises:{tenant_id}"},
    )
    watched = await _watched(session, tenant_id, now, window)
    if not watched:
        return []
    crises = await _recent_crises(session, tenant_id, {w.brand.id for w in watched}, now)
    opened: list[Crisis] = []
    # Accounts first: a burst on one account is reported as that account's, with its figures.
    watched.sort(key=lambda w: (w.brand.id, w.account_id is None, w.account_id or w.brand.id))
    for subject in watched:
        keyword_hits = sum(1 for i in subject.items if i.keywords)
        signal = detector.detect(
            subject.series(),
            now=now,
            window=window,
            keyword_hits=keyword_hits,
            since=subject.since,
        )
        if signal is None:
            continue
        behind = _behind(signal, subject.items)
        ongoing = _ongoing(crises, subject, now)
        if ongoing is not None:
            # The same episode: remember the signal, pin what arrived since, warn nobody.
            ongoing.last_signal_at = max(ongoing.last_signal_at, now)
            tied = await _pin(session, ongoing, behind, now)
            if tied and len(ongoing.item_ids) < MAX_ITEMS:
                ongoing.item_ids = [*ongoing.item_ids, *map(str, tied)][:MAX_ITEMS]
            continue
        crisis = Crisis(
            tenant_id=tenant_id,
            brand_id=subject.brand.id,
            social_account_id=subject.account_id,
            trigger=signal.trigger,
            started_at=now,
            last_signal_at=now,
            figures=figures_of(signal, behind),
            item_ids=[str(i.id) for i in behind],
        )
        session.add(crisis)
        await session.flush()
        await _pin(session, crisis, behind, now)
        outbox.record_event(
            session,
            tenant_id=tenant_id,
            type=CRISIS_SUSPECTED,
            aggregate_type="inbox_crisis",
            aggregate_id=crisis.id,
            payload=crisis_payload(crisis, subject.brand.client_id),
        )
        log.info(
            "inbox.crisis_suspected",
            tenant_id=str(tenant_id),
            brand_id=str(crisis.brand_id),
            trigger=crisis.trigger,
        )
        crises.append(crisis)
        opened.append(crisis)
    return opened


_TENANTS = select(col(Tenant.id)).where(col(Tenant.status) != TenantStatus.canceled.value)


async def scan(db: Database, *, now: datetime | None = None, queue: ArqRedis | None = None) -> int:
    """Every agency in turn, each in its own transaction (one's failure does not stop the
    others); answers how many crises were opened. With a queue, their e-mails leave now rather
    than at the next outbox sweep.

    Agencies come straight from the `tenants` table rather than from a function listing those
    with recent items: a quiet agency costs one short transaction whose first query (the
    window's items, on `ix_inbox_items_received`) finds nothing, every five minutes."""
    now = now or utcnow()
    tenants = [row[0] for row in await due_tenants(db, _TENANTS)]

    async def work(session: AsyncSession, tenant_id: uuid.UUID) -> int:
        return len(await scan_tenant(session, tenant_id, now))

    opened = 0
    for tenant_id, count in await for_each_tenant(
        db, tenants, work, failed="inbox.crisis_scan_failed"
    ):
        opened += count
        if count and queue is not None:
            await outbox.enqueue_delivery(queue, tenant_id, job_key=f"crises-{now.isoformat()}")
    return opened


# --- the list -----------------------------------------------------------------------------------

_ORDER = Keyset(
    "inbox-crises",
    [
        SortKey(col(Crisis.started_at), lambda r: r.started_at, datetime.fromisoformat, True),
        id_key(col(Crisis.id), descending=True),
    ],
)


def crisis_read(crisis: Crisis) -> CrisisRead:
    figures = crisis.figures or {}

    def measured(key: str) -> CrisisFigures | None:
        found = figures.get(key)
        return CrisisFigures.model_validate(found) if found else None

    return CrisisRead(
        id=crisis.id,
        brand_id=crisis.brand_id,
        social_account_id=crisis.social_account_id,
        trigger=crisis.trigger,
        triggers=figures.get("triggers") or [crisis.trigger],
        started_at=crisis.started_at,
        last_signal_at=crisis.last_signal_at,
        window_start=figures.get("window_start") or crisis.started_at,
        window_end=figures.get("window_end") or crisis.started_at,
        negative=measured("negative"),
        volume=measured("volume"),
        keyword_hits=int(figures.get("keyword_hits") or 0),
        keywords=list(figures.get("keywords") or []),
        item_ids=[uuid.UUID(str(i)) for i in crisis.item_ids],
    )


async def list_crises(
    session: AsyncSession,
    principal: Principal,
    *,
    brand_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None,
) -> Page[CrisisRead]:
    """Suspected crises of the brands this principal's inbox reaches, newest first."""
    scope = require_scope(principal, Resource.inbox, Verb.read)
    query = (
        select(Crisis)
        .join(
            Brand,
            and_(
                col(Brand.tenant_id) == col(Crisis.tenant_id), col(Brand.id) == col(Crisis.brand_id)
            ),
        )
        .where(
            col(Crisis.tenant_id) == principal.tenant_id,
            brand_visibility(principal, scope, today_for(principal)),
        )
    )
    if brand_id is not None:
        query = query.where(col(Crisis.brand_id) == brand_id)
    rows, after = _ORDER.page(
        (await session.scalars(_ORDER.apply(query, cursor=cursor, limit=limit))).all(),
        limit=limit,
    )
    return Page(items=[crisis_read(r) for r in rows], next_cursor=after)
