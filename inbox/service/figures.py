"""The response-time figures an agency sells: per client, brand or agent and month, how much the
community sent, how much of it was answered, how fast (in the client's business hours and in
all hours), how often within target, and in what mood.

An item belongs to the month it was received in, midnight to midnight in the agency's time
zone. The counting is one grouped statement; the response times need each answered item's
times (the business-hours clock is the client's policy, in Python: `inbox.sla`), read by a
second statement; the percentiles are `inbox.sla.median_and_p90`, the same arithmetic
everywhere.

Two callers: the `/v1/inbox/stats` route, which sees the items the principal may read (a member
sees the brands they are assigned to), and the monthly client report, whose brands were already
chosen by the report's own access rules (a client contact sees the figures of their brands
there, never the items).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Subquery, and_, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox import sla
from inbox.models import InboxItem, ResponsePolicyRow
from inbox.schemas import InboxStats, InboxStatsGroup
from inbox.service.items import readable_items
from infra.clock import utcnow
from social.schemas import (
    ClientReport,
    CommunityFigures,
    CommunityVolume,
    ReportCommunity,
    ReportCommunityBrand,
    ResponseTime,
    SentimentMix,
)
from tenants.capacity import parse_month
from tenants.models import Brand, Client, Membership, User
from tenants.principal import Principal

GroupBy = Literal["client", "brand", "agent"]
Key = uuid.UUID | None

KINDS = ("comment", "reply", "mention", "message", "review")
MOODS = ("negative", "neutral", "positive")


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in the agency's time zone (a comment at
    23:30 on 31 October in Montréal is October's although it is November in UTC)."""
    first, last = parse_month(month)
    zone = ZoneInfo(timezone)
    return (
        datetime.combine(first, time(0), tzinfo=zone),
        datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone),
    )


# --- the two statements -----------------------------------------------------------------------


def _key(items: Subquery, by: GroupBy) -> ColumnElement[Any]:
    if by == "client":
        return items.c.client_id
    if by == "brand":
        return items.c.brand_id
    # An item is the agent's who first answered it through us; until then, its assignee's.
    return func.coalesce(items.c.first_response_by, items.c.assignee_id)


@dataclass
class _Group:
    counts: dict[str, int] = field(default_factory=dict)
    business: list[float] = field(default_factory=list)
    """Minutes to the first answer, business hours (items of clients with a policy)."""
    all_hours: list[float] = field(default_factory=list)


async def _groups(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    items: Subquery,
    by: GroupBy,
    now: datetime,
) -> dict[Key, _Group]:
    key = _key(items, by).label("key")
    needs = items.c.needs_reply.is_(True)
    answered = and_(needs, items.c.first_response_at.is_not(None))
    due = items.c.response_due_at
    has_target = and_(needs, due.is_not(None))
    within = and_(has_target, items.c.first_response_at <= due)
    # A target counts once its outcome is known: answered, or its deadline passed (or the
    # sweep marked it breached) without an answer. An item still inside its target is neither.
    target_due = and_(
        has_target,
        or_(
            items.c.first_response_at.is_not(None),
            due <= now,
            items.c.sla_breached_at.is_not(None),
        ),
    )
    counted: dict[str, ColumnElement[Any]] = {
        "total": func.count(),
        **{kind: func.count().filter(items.c.kind == kind) for kind in KINDS},
        "needing_reply": func.count().filter(needs),
        "answered": func.count().filter(answered),
        "target_due": func.count().filter(target_due),
        "within_target": func.count().filter(within),
        **{mood: func.count().filter(items.c.sentiment == mood) for mood in MOODS},
    }
    rows = await session.execute(
        select(key, *(c.label(name) for name, c in counted.items())).group_by(key)
    )
    groups: dict[Key, _Group] = {}
    for row in rows.mappings():
        groups[row["key"]] = _Group(counts={name: int(row[name]) for name in counted})

    timed = await session.execute(
        select(key, items.c.client_id, items.c.received_at, items.c.first_response_at).where(
            answered
        )
    )
    answers = timed.all()
    policies = await _policies(session, tenant_id, {row.client_id for row in answers})
    for row in answers:
        group = groups.setdefault(row.key, _Group())
        # A native answer is dated by the platform and may precede our receipt: never negative.
        waited = max(row.first_response_at - row.received_at, timedelta(0))
        group.all_hours.append(waited / timedelta(minutes=1))
        policy = policies.get(row.client_id)
        if policy is not None:
            spent = sla.business_elapsed(policy, row.received_at, row.first_response_at)
            group.business.append(spent / timedelta(minutes=1))
    return groups


async def _policies(
    session: AsyncSession, tenant_id: uuid.UUID, client_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, sla.ResponsePolicy]:
    wanted = list(client_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(ResponsePolicyRow.client_id, ResponsePolicyRow.policy).where(
            ResponsePolicyRow.tenant_id == tenant_id, col(ResponsePolicyRow.client_id).in_(wanted)
        )
    )
    found: dict[uuid.UUID, sla.ResponsePolicy] = {}
    for client_id, stored in rows.all():
        try:
            found[client_id] = sla.ResponsePolicy.from_json(stored)
        except ValueError:
            continue  # validated when saved; one that no longer reads is left out, not fatal
    return found


# --- figures from the groups ------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _times(minutes: Sequence[float]) -> ResponseTime:
    median, p90 = sla.median_and_p90(minutes)
    return ResponseTime(
        median_minutes=None if median is None else round(median, 1),
        p90_minutes=None if p90 is None else round(p90, 1),
    )


def _figures(group: _Group) -> CommunityFigures:
    n = defaultdict(int, group.counts)
    return CommunityFigures(
        volume=CommunityVolume(total=n["total"], **{kind: n[kind] for kind in KINDS}),
        needing_reply=n["needing_reply"],
        answered=n["answered"],
        response_rate=_ratio(n["answered"], n["needing_reply"]),
        first_response_business_hours=_times(group.business),
        first_response_all_hours=_times(group.all_hours),
        target_due=n["target_due"],
        within_target=n["within_target"],
        within_target_share=_ratio(n["within_target"], n["target_due"]),
        breaches=n["target_due"] - n["within_target"],
        sentiment=SentimentMix(
            **{mood: n[mood] for mood in MOODS},
            unknown=n["total"] - sum(n[mood] for mood in MOODS),
        ),
    )


def _merged(groups: Iterable[_Group]) -> _Group:
    """All groups as one: counts add up; response times are pooled, not averaged."""
    total = _Group()
    for group in groups:
        for name, value in group.counts.items():
            total.counts[name] = total.counts.get(name, 0) + value
        total.business.extend(group.business)
        total.all_hours.extend(group.all_hours)
    return total


async def _names(
    session: AsyncSession, tenant_id: uuid.UUID, by: GroupBy, keys: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not keys:
        return {}
    if by == "client":
        query = select(Client.id, Client.name).where(
            Client.tenant_id == tenant_id, col(Client.id).in_(keys)
        )
    elif by == "brand":
        query = select(Brand.id, Brand.name).where(
            Brand.tenant_id == tenant_id, col(Brand.id).in_(keys)
        )
    else:
        # People are named by user id; the membership says they belong to this agency.
        query = (
            select(User.id, User.name)
            .join(Membership, col(User.id) == col(Membership.user_id))
            .where(Membership.tenant_id == tenant_id, col(User.id).in_(keys))
        )
    return {key: name for key, name in (await session.execute(query)).all()}


# --- the callers ------------------------------------------------------------------------------


async def inbox_stats(
    session: AsyncSession,
    principal: Principal,
    *,
    month: str,
    by: GroupBy = "brand",
    client_id: uuid.UUID | None = None,
    brand_id: uuid.UUID | None = None,
) -> InboxStats:
    """The month's figures per client, brand or agent, over the items this principal may read
    (a member: the brands they are assigned to; a client contact: refused, as for items)."""
    start, end = month_bounds(month, principal.timezone)
    query = readable_items(principal).where(
        col(InboxItem.from_account).is_(False),
        col(InboxItem.received_at) >= start,
        col(InboxItem.received_at) < end,
    )
    if client_id is not None:
        query = query.where(col(InboxItem.client_id) == client_id)
    if brand_id is not None:
        query = query.where(col(InboxItem.brand_id) == brand_id)
    groups = await _groups(session, principal.tenant_id, query.subquery(), by, utcnow())
    names = await _names(session, principal.tenant_id, by, [k for k in groups if k is not None])
    rows = [
        InboxStatsGroup(id=key, name=names.get(key) if key else None, **_figures(g).model_dump())
        for key, g in groups.items()
    ]
    # By name, the agent-less group last.
    rows.sort(key=lambda r: (r.id is None, (r.name or "").casefold(), str(r.id)))
    return InboxStats(
        month=month,
        by=by,
        timezone=principal.timezone,
        starts_at=start.astimezone(UTC),
        ends_at=end.astimezone(UTC),
        totals=_figures(_merged(groups.values())),
        groups=rows,
    )


async def community_figures(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    brand_ids: Sequence[uuid.UUID],
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
) -> tuple[CommunityFigures, dict[uuid.UUID, CommunityFigures]]:
    """The figures of these brands' items received in [start, end): in all and per brand (every
    brand named gets figures, zeros when it received nothing). The caller has decided that the
    brands may be shown."""
    query = select(InboxItem).where(
        InboxItem.tenant_id == tenant_id,
        col(InboxItem.brand_id).in_(list(brand_ids)),
        col(InboxItem.from_account).is_(False),
        col(InboxItem.received_at) >= start,
        col(InboxItem.received_at) < end,
    )
    groups: dict[Key, _Group] = {}
    if brand_ids:
        groups = await _groups(session, tenant_id, query.subquery(), "brand", now or utcnow())
    per_brand = {b: _figures(groups.get(b, _Group())) for b in brand_ids}
    return _figures(_merged(groups.values())), per_brand


async def add_community(
    session: AsyncSession, principal: Principal, report: ClientReport
) -> ClientReport:
    """The report with its community section: the figures of the brands the report shows, for
    its month in the agency's time zone. Whoever may read the report may read these figures (a
    client contact included): they say how the brand was answered, not what anyone wrote."""
    start, end = month_bounds(report.month, principal.timezone)
    brand_ids = [brand.id for brand in report.brands]
    totals, per_brand = await community_figures(session, principal.tenant_id, brand_ids, start, end)
    report.community = ReportCommunity(
        totals=totals,
        brands=[
            ReportCommunityBrand(id=brand.id, name=brand.name, figures=per_brand[brand.id])
            for brand in report.brands
        ],
    )
    return report
