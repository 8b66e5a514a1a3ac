"""A client's monthly audience report: every brand and account of the client, their month's
totals and daily series, and the anomalies found; as JSON or as a PDF in the client's
language."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.i18n import language
from social.connectors.types import METRICS, Platform
from social.models import DailyStat, SocialAccount
from social.schemas import ClientReport, ReportAccount, ReportBrand, ReportDay, ReportTotals
from social.service.stats import anomalies_of
from tenants.errors import ClientNotFound, InvalidMonth
from tenants.models import Brand, Client, Tenant
from tenants.policy import Resource, Verb
from tenants.principal import Principal
from tenants.service.common import require_scope
from tenants.service.directory import brand_visibility, client_visibility, today_for

_FLOWS = tuple(m for m in METRICS if m not in ("followers", "follower_change"))
"""Figures of a period (summed over days); followers, a stock, is read at the month's bounds."""


def parse_report_month(month: str) -> tuple[date, date]:
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise InvalidMonth("Write the month as YYYY-MM, for example 2026-10.") from None
    if first > utcnow().date():
        raise InvalidMonth("This month has not started yet.")
    last = date(year, number, calendar.monthrange(year, number)[1])
    return first, last


def _sum(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def follower_bounds(
    before: int | None, counts: Sequence[int | None]
) -> tuple[int | None, int | None]:
    """One account's followers at the start and at the end of the month.

    `counts` are its daily counts of the month in order (None for a day without one); `before`
    is its last count of the previous month, if it has any. Followers is a stock, so:

    * the end is the last count of the month (the last day's, or the last one known before it
      when days are missing, or the latest so far in the month under way);
    * the start is the count the month opened with: the last count of the previous month; an
      account without one (connected this month, or with a whole month missing) starts at its
      first count of the month, so only the change seen this month is counted;
    * an account with no count in the month has neither: it is left out of the follower figures
      of its brand and of the client rather than reported with a stale count.

    Both are known or neither is, so follower change = end - start holds for every account and,
    summed, for every brand and the client.
    """
    known = [c for c in counts if c is not None]
    if not known:
        return None, None
    return (known[0] if before is None else before), known[-1]


def account_totals(stats: Sequence[DailyStat], before: int | None) -> ReportTotals:
    """One account's month: followers at its bounds (see `follower_bounds`), flows summed over
    the days it reported."""
    ordered = sorted(stats, key=lambda s: s.day)
    start, end = follower_bounds(before, [s.followers for s in ordered])
    flows = {m: _sum([getattr(s, m) for s in ordered]) for m in _FLOWS}
    return _with_rate(start, end, flows)


def sum_totals(parts: Sequence[ReportTotals]) -> ReportTotals:
    """A brand's or the client's totals: every figure is the sum of its accounts' (None when
    none has it), so the report adds up at every level; the rate is recomputed from the sums."""
    start = _sum([p.followers_start for p in parts])
    end = _sum([p.followers_end for p in parts])
    flows = {m: _sum([getattr(p, m) for p in parts]) for m in _FLOWS}
    return _with_rate(start, end, flows)


def _with_rate(start: int | None, end: int | None, flows: dict[str, int | None]) -> ReportTotals:
    impressions, engagements = flows["impressions"], flows["engagements"]
    rate = round(engagements / impressions, 4) if impressions and engagements is not None else None
    return ReportTotals(
        followers_start=start,
        followers_end=end,
        follower_change=None if start is None or end is None else end - start,
        engagement_rate=rate,
        **flows,
    )


async def _closing_counts(
    session: AsyncSession, tenant_id: uuid.UUID, account_ids: list[uuid.UUID], first: date
) -> dict[uuid.UUID, int]:
    """Each account's last follower count of the month before `first`."""
    if not account_ids or first == date.min:
        return {}
    opened = (first - timedelta(days=1)).replace(day=1)
    rows = await session.execute(
        select(DailyStat.account_id, DailyStat.followers)
        .where(
            DailyStat.tenant_id == tenant_id,
            col(DailyStat.account_id).in_(account_ids),
            col(DailyStat.day) >= opened,
            col(DailyStat.day) < first,
            col(DailyStat.followers).is_not(None),
        )
        .ext(distinct_on(col(DailyStat.account_id)))
        .order_by(col(DailyStat.account_id), col(DailyStat.day).desc())
    )
    return {account_id: int(followers) for account_id, followers in rows.all()}


async def client_report(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, month: str
) -> ClientReport:
    first, last = parse_report_month(month)
    scope = require_scope(principal, Resource.report, Verb.read)
    today = today_for(principal)
    client = (
        await session.scalars(
            select(Client).where(
                Client.tenant_id == principal.tenant_id,
                Client.id == client_id,
                client_visibility(principal, scope, today),
            )
        )
    ).first()
    if client is None:
        raise ClientNotFound()
    tenant = await session.get(Tenant, principal.tenant_id)
    brands = (
        await session.scalars(
            select(Brand)
            .where(
                Brand.tenant_id == principal.tenant_id,
                Brand.client_id == client.id,
                brand_visibility(principal, scope, today),
            )
            .order_by(col(Brand.name), col(Brand.id))
        )
    ).all()
    brand_ids = [b.id for b in brands]
    accounts = (
        (
            await session.scalars(
                select(SocialAccount)
                .where(
                    SocialAccount.tenant_id == principal.tenant_id,
                    col(SocialAccount.brand_id).in_(brand_ids),
                )
                .order_by(col(SocialAccount.platform), col(SocialAccount.handle))
            )
        ).all()
        if brand_ids
        else []
    )
    stats = (
        (
            await session.scalars(
                select(DailyStat)
                .where(
                    DailyStat.tenant_id == principal.tenant_id,
                    col(DailyStat.account_id).in_([a.id for a in accounts]),
                    col(DailyStat.day) >= first,
                    col(DailyStat.day) <= last,
                )
                .order_by(col(DailyStat.day))
            )
        ).all()
        if accounts
        else []
    )
    by_account: dict[uuid.UUID, list[DailyStat]] = {a.id: [] for a in accounts}
    for s in stats:
        by_account[s.account_id].append(s)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    closing = await _closing_counts(session, principal.tenant_id, list(by_account), first)
    own_totals = {a.id: account_totals(by_account[a.id], closing.get(a.id)) for a in accounts}

    report_brands: list[ReportBrand] = []
    for brand in brands:
        mine = [a for a in accounts if a.brand_id == brand.id]
        report_accounts = []
        for account in mine:
            on = {s.day: s for s in by_account[account.id]}
            report_accounts.append(
                ReportAccount(
                    id=account.id,
                    platform=Platform(account.platform),
                    handle=account.handle,
                    display_name=account.display_name,
                    totals=own_totals[account.id],
                    daily=[
                        ReportDay(
                            day=d,
                            followers=on[d].followers if d in on else None,
                            engagements=on[d].engagements if d in on else None,
                            impressions=on[d].impressions if d in on else None,
                        )
                        for d in days
                    ],
                )
            )
        report_brands.append(
            ReportBrand(
                id=brand.id,
                name=brand.name,
                totals=sum_totals([own_totals[a.id] for a in mine]),
                accounts=report_accounts,
            )
        )
    return ClientReport(
        client_id=client.id,
        client_name=client.name,
        agency_name=tenant.name if tenant else "",
        # strftime's %Y drops the zeros of a year before 1000, which the PDF could not read.
        month=f"{first.year:04d}-{first.month:02d}",
        language=language(client.locale),
        generated_at=utcnow(),
        totals=sum_totals(list(own_totals.values())),
        brands=report_brands,
        anomalies=await anomalies_of(session, principal.tenant_id, brand_ids, first, last),
    )
