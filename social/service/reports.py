"""A client's monthly audience report: every brand and account of the client, their month's
totals and daily series, and the anomalies found; as JSON or as a PDF in the client's
language."""

from __future__ import annotations

import calendar
import uuid
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
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

_FLOWS = tuple(m for m in METRICS if m not in ("followers",))


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


def totals_of(daily_by_account: list[list[DailyStat]]) -> ReportTotals:
    """Followers at start and end add up each account's first and last known count; flows
    add up every day of every account."""
    starts: list[int | None] = []
    ends: list[int | None] = []
    flows: dict[str, list[int | None]] = {m: [] for m in _FLOWS}
    for stats in daily_by_account:
        known = [s.followers for s in stats if s.followers is not None]
        starts.append(known[0] if known else None)
        ends.append(known[-1] if known else None)
        for m in _FLOWS:
            flows[m].extend(getattr(s, m) for s in stats)
    summed = {m: _sum(flows[m]) for m in _FLOWS}
    impressions, engagements = summed["impressions"], summed["engagements"]
    rate = round(engagements / impressions, 4) if impressions and engagements is not None else None
    return ReportTotals(
        followers_start=_sum(starts),
        followers_end=_sum(ends),
        engagement_rate=rate,
        **summed,
    )


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
                    totals=totals_of([by_account[account.id]]),
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
                totals=totals_of([by_account[a.id] for a in mine]),
                accounts=report_accounts,
            )
        )
    return ClientReport(
        client_id=client.id,
        client_name=client.name,
        agency_name=tenant.name if tenant else "",
        month=f"{first:%Y-%m}",
        language="fr" if client.locale.lower().startswith("fr") else "en",
        generated_at=utcnow(),
        totals=totals_of(list(by_account.values())),
        brands=report_brands,
        anomalies=await anomalies_of(session, principal.tenant_id, brand_ids, first, last),
    )
