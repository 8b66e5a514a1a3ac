"""Budget status: a client's month in figures, the team's view sorted by risk, the portal's.

The month's figures come from one SQL statement (`BUDGET_SQL`): billable minutes per month and
brand since the retainer began (for rollover), and, for the month asked about only, the same
minutes broken down by person, activity and content item, with names joined in.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from billing.budgets import errors
from billing.budgets.budget import crossed_thresholds, projected_minutes, risk
from billing.budgets.models import Rate
from billing.budgets.rates import RateRule, resolve_rate
from billing.budgets.schemas import ActivityBreakdown, Breakdown, BudgetRead, BudgetSummary
from billing.budgets.service.ledger import (
    RetainerView,
    budget_at,
    month_end,
    retainers_of,
    usage_of,
)
from infra.pagination import InvalidCursor, Page, decode_cursor, encode_cursor
from tenants.capacity import parse_month
from tenants.errors import ClientNotFound, InvalidMonth
from tenants.models import Client
from tenants.policy import Resource, Scope, Verb, sees_money
from tenants.principal import Principal
from tenants.service.common import require_scope
from tenants.service.directory import client_visibility, today_for

# Grouping-set bits (person, activity, content): 7 = month and brand only, 3 = by person,
# 5 = by activity, 6 = by content item. The breakdown columns are NULL outside the month asked
# about, so earlier months cost one row per brand.
BUDGET_SQL = """
WITH e AS (
  SELECT date_trunc('month', work_date)::date AS month, brand_id, minutes, billable, rate_minor,
         CASE WHEN work_date >= :first THEN membership_id END AS person,
         CASE WHEN work_date >= :first THEN activity END AS activity,
         CASE WHEN work_date >= :first THEN content_item_id END AS content
  FROM time_entries
  WHERE tenant_id = :tenant_id AND client_id = :client_id
    AND work_date >= :since AND work_date <= :until
), agg AS (
  SELECT month, brand_id, person, activity, content,
         GROUPING(person, activity, content) AS g,
         coalesce(sum(minutes) FILTER (WHERE billable), 0) AS billable,
         coalesce(sum(minutes) FILTER (WHERE NOT billable), 0) AS non_billable,
         coalesce(sum(minutes * rate_minor)
                  FILTER (WHERE billable AND rate_minor IS NOT NULL), 0) AS frozen_value,
         coalesce(sum(minutes) FILTER (WHERE billable AND rate_minor IS NULL), 0) AS unrated
  FROM e
  GROUP BY GROUPING SETS ((month, brand_id), (month, brand_id, person),
                          (month, brand_id, activity), (month, brand_id, content))
)
SELECT agg.*, b.name AS brand_name, u.name AS person_name, m.role AS person_role,
       m.user_id AS person_user_id
FROM agg
LEFT JOIN brands b ON b.tenant_id = :tenant_id AND b.id = agg.brand_id
LEFT JOIN memberships m ON m.tenant_id = :tenant_id AND m.id = agg.person
LEFT JOIN users u ON u.id = m.user_id
"""
_BUDGET = text(BUDGET_SQL)


def _month(value: str) -> date:
    try:
        return parse_month(value)[0]
    except ValueError as exc:
        raise InvalidMonth() from exc


def _fmt(month: date) -> str:
    return month.strftime("%Y-%m")


async def _visible_client(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, scope: Scope
) -> Client:
    client = (
        await session.scalars(
            select(Client).where(
                Client.tenant_id == principal.tenant_id,
                Client.id == client_id,
                client_visibility(principal, scope, today_for(principal)),
            )
        )
    ).first()
    if client is None:
        raise ClientNotFound()
    return client


async def _status(
    session: AsyncSession,
    principal: Principal,
    client: Client,
    month: date,
    *,
    money: bool,
) -> BudgetRead:
    views = await retainers_of(session, principal.tenant_id, [client.id], month)
    view = views.get(client.id)
    if view is None:
        raise errors.BudgetNotFound(f"{client.name} has no retainer for {_fmt(month)}.")
    rows = (
        await session.execute(
            _BUDGET,
            {
                "tenant_id": principal.tenant_id,
                "client_id": client.id,
                "since": view.retainer.start_month,
                "until": month_end(month),
                "first": month,
            },
        )
    ).all()
    usage: dict[tuple[date, uuid.UUID], int] = {}
    people: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0, 0])
    activities: dict[str, int] = defaultdict(int)
    contents: dict[uuid.UUID | None, int] = defaultdict(int)
    brands: dict[uuid.UUID, int] = defaultdict(int)
    non_billable = 0
    names: dict[uuid.UUID, tuple[str, str | None]] = {}
    user_ids: dict[uuid.UUID, uuid.UUID] = {}
    for row in rows:
        if row.g == 7:
            usage[(row.month, row.brand_id)] = int(row.billable)
            names[row.brand_id] = (row.brand_name, None)
        elif row.g == 3 and row.person is not None:
            names[row.person] = (row.person_name, row.person_role)
            user_ids[row.person] = row.person_user_id
        if row.month != month or not view.counts(month, row.brand_id):
            continue
        if row.g == 7:
            brands[row.brand_id] += int(row.billable)
            non_billable += int(row.non_billable)
        elif row.g == 3:
            person = people[row.person]
            person[0] += int(row.billable)
            person[1] += int(row.frozen_value)
            person[2] += int(row.unrated)
        elif row.g == 5:
            activities[row.activity] += int(row.billable)
        elif row.g == 6:
            contents[row.content] += int(row.billable)
    budget = budget_at(view, usage, month)
    terms = view.terms_for(month)
    amounts: dict[uuid.UUID, int | None] = {}
    if money:
        rules = [
            RateRule(r.id, r.rate_minor, r.currency, r.membership_id, r.client_id, r.role)
            for r in (
                await session.scalars(select(Rate).where(Rate.tenant_id == principal.tenant_id))
            ).all()
        ]
        for person_id, (_, frozen_value, unrated) in people.items():
            role = names.get(person_id, ("", None))[1] or ""
            rule = resolve_rate(rules, membership_id=person_id, client_id=client.id, role=role)
            value = frozen_value + unrated * (rule.rate_minor if rule else 0)
            amounts[person_id] = (value * 2 + 60) // 120
    today = today_for(principal)
    used = budget.used_minutes
    percent = round(used * 100 / budget.available_minutes, 1) if budget.available_minutes else 0.0

    def by_minutes(items: list[Any]) -> list[Any]:
        return sorted(items, key=lambda b: (-b.minutes, str(getattr(b, "id", b))))

    return BudgetRead(
        client_id=client.id,
        client_name=client.name,
        month=_fmt(month),
        retainer_id=view.retainer.id,
        currency=view.retainer.currency,
        included_minutes=budget.included_minutes,
        rolled_over_minutes=budget.rolled_in_minutes,
        available_minutes=budget.available_minutes,
        used_minutes=used,
        remaining_minutes=budget.remaining_minutes,
        projected_minutes=projected_minutes(used, month, today),
        overage_minutes=budget.overage_minutes,
        non_billable_minutes=non_billable,
        percent_used=percent,
        overage_policy=terms.overage_policy,
        thresholds_crossed=crossed_thresholds(terms.thresholds, used, budget.available_minutes),
        fee_minor=terms.fee_minor if money else None,
        overage_amount_minor=budget.overage_amount_minor if money else None,
        by_brand=by_minutes(
            [
                Breakdown(id=b, name=names.get(b, ("?", None))[0], minutes=m)
                for b, m in brands.items()
                if m
            ]
        ),
        by_person=by_minutes(
            [
                Breakdown(
                    id=user_ids.get(p, p),
                    name=names.get(p, ("?", None))[0],
                    minutes=v[0],
                    amount_minor=amounts.get(p) if money else None,
                )
                for p, v in people.items()
                if v[0]
            ]
        ),
        by_activity=sorted(
            (ActivityBreakdown(activity=a, minutes=m) for a, m in activities.items() if m),
            key=lambda a: (-a.minutes, a.activity),
        ),
        by_content_item=by_minutes([Breakdown(id=c, minutes=m) for c, m in contents.items() if m]),
    )


async def client_budget(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, month: str
) -> BudgetRead:
    scope = require_scope(principal, Resource.budget, Verb.read)
    target = _month(month)
    client = await _visible_client(session, principal, client_id, scope)
    return await _status(session, principal, client, target, money=sees_money(principal.role))


async def portal_budget(session: AsyncSession, principal: Principal, month: str) -> BudgetRead:
    """The client contact's own client: hours, no fees, rates or amounts."""
    scope = require_scope(principal, Resource.budget, Verb.read)
    if scope is not Scope.own_client or principal.client_id is None:
        from tenants.errors import PermissionDenied

        raise PermissionDenied(
            "The portal is for client contacts; staff use /v1/clients/{id}/budget."
        )
    target = _month(month)
    client = await _visible_client(session, principal, principal.client_id, scope)
    return await _status(session, principal, client, target, money=False)


async def team_budgets(
    session: AsyncSession,
    principal: Principal,
    month: str,
    *,
    limit: int,
    cursor: str | None,
) -> Page[BudgetSummary]:
    """Every visible client with a retainer this month, the likeliest overrun first."""
    scope = require_scope(principal, Resource.budget, Verb.read)
    target = _month(month)
    clients = {
        c.id: c
        for c in (
            await session.scalars(
                select(Client).where(
                    Client.tenant_id == principal.tenant_id,
                    client_visibility(principal, scope, today_for(principal)),
                )
            )
        ).all()
    }
    views = await retainers_of(session, principal.tenant_id, list(clients), target)
    summaries: list[BudgetSummary] = []
    if views:
        since = min(v.retainer.start_month for v in views.values())
        usage = await usage_of(session, principal.tenant_id, list(views), since, month_end(target))
        today = today_for(principal)
        for client_id, view in views.items():
            budget = budget_at(view, usage.get(client_id, {}), target)
            projected = projected_minutes(budget.used_minutes, target, today)
            available = budget.available_minutes
            summaries.append(
                BudgetSummary(
                    client_id=client_id,
                    client_name=clients[client_id].name,
                    retainer_id=view.retainer.id,
                    available_minutes=available,
                    used_minutes=budget.used_minutes,
                    projected_minutes=projected,
                    overage_minutes=budget.overage_minutes,
                    percent_used=(
                        round(budget.used_minutes * 100 / available, 1) if available else 0.0
                    ),
                    projected_percent=round(min(risk(projected, available), 99.99) * 100, 1),
                    overage_policy=view.terms_for(target).overage_policy,
                )
            )
    summaries.sort(key=lambda s: (-s.projected_percent, s.client_name.lower(), str(s.client_id)))
    # The list is ranked by a computed figure, so the cursor is a position in that ranking.
    start = 0
    if cursor is not None:
        name, raw = decode_cursor(cursor, size=2)
        if name != f"risk:{_fmt(target)}" or not (raw.isascii() and raw.isdigit()):
            raise InvalidCursor("This cursor belongs to another list.")
        start = int(raw)
    page = summaries[start : start + limit]
    more = start + limit < len(summaries)
    return Page(
        items=page,
        next_cursor=encode_cursor(f"risk:{_fmt(target)}", str(start + limit)) if more else None,
    )


__all__ = ["BUDGET_SQL", "RetainerView", "client_budget", "portal_budget", "team_budgets"]
