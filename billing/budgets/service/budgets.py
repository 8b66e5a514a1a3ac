"""Budget status: a client's month in figures, the team's view sorted by risk, the portal's.

The month's figures come from one SQL statement (`BUDGET_SQL`): billable minutes per month and
brand since the retainer began (for rollover), and, for the month asked about only, the same
minutes broken down by person, activity and content item, with names joined in.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from functools import cache
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import bindparam, func, text
from sqlalchemy import select as sa_select  # Core: any columns, typed loosely
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.sqltypes import NullType
from sqlmodel import col, select

from billing.budgets import errors
from billing.budgets.budget import crossed_thresholds, projected_minutes, risk
from billing.budgets.models import Rate, Retainer, RetainerTerms
from billing.budgets.rates import RateRule, resolve_rate
from billing.budgets.schemas import BudgetRead, BudgetSummary
from billing.budgets.service.ledger import (
    RetainerView,
    budget_at,
    month_end,
    retainers_of,
    usage_of,
)
from infra.db import DriverStatement, driver_connection, for_driver
from infra.pagination import InvalidCursor, Page, decode_cursor, encode_cursor
from tenants.capacity import parse_month
from tenants.errors import ClientNotFound, InvalidMonth
from tenants.models import Client
from tenants.policy import Resource, Scope, Verb, sees_money
from tenants.principal import Principal
from tenants.service.common import require_scope
from tenants.service.directory import (
    client_visibility,
    client_visibility_template,
    today_for,
    viewer_values,
)

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
BUDGET = for_driver(text(BUDGET_SQL))
"""`BUDGET_SQL` as the endpoint sends it to asyncpg; the budget benchmark runs it too."""


def _month(value: str) -> date:
    try:
        return parse_month(value)[0]
    except ValueError as exc:
        raise InvalidMonth() from exc


def _fmt(month: date) -> str:
    return month.strftime("%Y-%m")


class _RetainerRow(NamedTuple):
    id: uuid.UUID
    currency: str
    start_month: date
    end_month: date | None


class _TermsRow(NamedTuple):
    effective_month: date
    monthly_minutes: int
    fee_minor: int
    brand_ids: list[uuid.UUID] | None
    rollover_max_minutes: int
    rollover_max_months: int
    overage_policy: str
    overage_rate_minor: int | None
    thresholds: list[int]


_TERMS_COLUMNS = tuple(col(getattr(RetainerTerms, name)) for name in _TermsRow._fields)
_RATE_FIELDS = ("id", "rate_minor", "currency", "membership_id", "client_id", "role")
"""In `RateRule`'s order: each rate comes back as one tuple of these."""


_TENANT: BindParameter[Any] = bindparam("tenant_id")
_CLIENT: BindParameter[Any] = bindparam("client_id")
_MONTH: BindParameter[Any] = bindparam("month")


@cache
def _facts_statement(scope: Scope, *, money: bool) -> DriverStatement:
    """The client as the principal may see it (the role's policy, RLS underneath), with the
    retainer covering the month and its terms (one row per terms row, oldest first; NULLs when
    there is no retainer) and, for those who see money, the rates that can apply to this client
    as one array: one statement, one round trip. Built once per scope with bind parameters
    (`_facts_values`), so a request neither builds it nor computes its cache key."""
    query = (
        sa_select(
            col(Client.name),
            col(Retainer.id),
            col(Retainer.currency),
            col(Retainer.start_month),
            col(Retainer.end_month),
            *_TERMS_COLUMNS,
        )
        .select_from(Client)
        .outerjoin(
            Retainer,
            (col(Retainer.tenant_id) == col(Client.tenant_id))
            & (col(Retainer.client_id) == col(Client.id))
            & (col(Retainer.start_month) <= _MONTH)
            & (col(Retainer.end_month).is_(None) | (col(Retainer.end_month) >= _MONTH)),
        )
        .outerjoin(
            RetainerTerms,
            (col(RetainerTerms.tenant_id) == col(Retainer.tenant_id))
            & (col(RetainerTerms.retainer_id) == col(Retainer.id)),
        )
        .where(
            col(Client.tenant_id) == _TENANT,
            col(Client.id) == _CLIENT,
            client_visibility_template(scope),
        )
        .order_by(col(RetainerTerms.effective_month))
    )
    if money:
        # Only rules that can apply to this client: resolve_rate ignores other clients' rates.
        rates = (
            sa_select(
                func.array_agg(
                    func.row(*(col(getattr(Rate, name)) for name in _RATE_FIELDS)),
                    type_=NullType(),
                )
            )
            .where(
                col(Rate.tenant_id) == _TENANT,
                col(Rate.client_id).is_(None) | (col(Rate.client_id) == _CLIENT),
            )
            .scalar_subquery()
        )
        query = query.add_columns(rates)
    return for_driver(query)


def _facts_values(
    principal: Principal, client_id: uuid.UUID, month: date, today: date
) -> dict[str, Any]:
    return {
        "tenant_id": principal.tenant_id,
        "client_id": client_id,
        "month": month,
        **viewer_values(principal, today),
    }


async def _status(
    connection: asyncpg.Connection,
    principal: Principal,
    client_id: uuid.UUID,
    scope: Scope,
    month: date,
    *,
    money: bool,
) -> dict[str, Any]:
    """`BudgetRead`'s fields as JSON-ready data, every key present (as the model dumps it)."""
    today = today_for(principal)
    # Both statements on the driver connection (the request's transaction, after its tenant
    # entry): a budget is 130-odd rows, and SQLAlchemy's result layer was a third of its cost.
    facts_statement = _facts_statement(scope, money=money)
    facts = await connection.fetch(
        facts_statement.sql,
        *facts_statement.args(_facts_values(principal, client_id, month, today)),
    )
    if not facts:
        raise ClientNotFound()
    first = facts[0]
    client_name: str = first[0]
    if first[1] is None:
        raise errors.BudgetNotFound(f"{client_name} has no retainer for {_fmt(month)}.")
    terms_end = 5 + len(_TermsRow._fields)
    view = RetainerView(_RetainerRow(*first[1:5]), [_TermsRow(*row[5:terms_end]) for row in facts])
    rows = await connection.fetch(
        BUDGET.sql,
        *BUDGET.args(
            {
                "tenant_id": principal.tenant_id,
                "client_id": client_id,
                "since": view.retainer.start_month,
                "until": month_end(month),
                "first": month,
            }
        ),
    )
    usage: dict[tuple[date, uuid.UUID], int] = {}
    people: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0, 0])
    activities: dict[str, int] = defaultdict(int)
    contents: dict[uuid.UUID | None, int] = defaultdict(int)
    brands: dict[uuid.UUID, int] = defaultdict(int)
    non_billable = 0
    names: dict[uuid.UUID, tuple[str, str | None]] = {}
    user_ids: dict[uuid.UUID, uuid.UUID] = {}
    for (
        row_month,
        brand_id,
        person,
        activity,
        content,
        g,
        billable,
        row_non_billable,
        frozen_value,
        unrated,
        brand_name,
        person_name,
        person_role,
        person_user_id,
    ) in rows:
        if g == 7:
            usage[(row_month, brand_id)] = int(billable)
            names[brand_id] = (brand_name, None)
        elif g == 3 and person is not None:
            names[person] = (person_name, person_role)
            user_ids[person] = person_user_id
        if row_month != month or not view.counts(month, brand_id):
            continue
        if g == 7:
            brands[brand_id] += int(billable)
            non_billable += int(row_non_billable)
        elif g == 3:
            figures = people[person]
            figures[0] += int(billable)
            figures[1] += int(frozen_value)
            figures[2] += int(unrated)
        elif g == 5:
            activities[activity] += int(billable)
        elif g == 6:
            contents[content] += int(billable)
    budget = budget_at(view, usage, month)
    terms = view.terms_for(month)
    amounts: dict[uuid.UUID, int | None] = {}
    if money:
        rules = [RateRule(*rate) for rate in first[-1] or ()]
        for person_id, (_, frozen_value, unrated) in people.items():
            role = names.get(person_id, ("", None))[1] or ""
            rule = resolve_rate(rules, membership_id=person_id, client_id=client_id, role=role)
            value = frozen_value + unrated * (rule.rate_minor if rule else 0)
            amounts[person_id] = (value * 2 + 60) // 120
    used = budget.used_minutes
    percent = round(used * 100 / budget.available_minutes, 1) if budget.available_minutes else 0.0

    def ranked(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(items, key=lambda b: (-b["minutes"], str(b["id"])))

    # Plain data the API writes straight to JSON (`BudgetRead` documents it); the portal's
    # pages validate it into the model.
    return {
        "client_id": client_id,
        "client_name": client_name,
        "month": _fmt(month),
        "retainer_id": view.retainer.id,
        "currency": view.retainer.currency,
        "included_minutes": budget.included_minutes,
        "rolled_over_minutes": budget.rolled_in_minutes,
        "available_minutes": budget.available_minutes,
        "used_minutes": used,
        "remaining_minutes": budget.remaining_minutes,
        "projected_minutes": projected_minutes(used, month, today),
        "overage_minutes": budget.overage_minutes,
        "non_billable_minutes": non_billable,
        "percent_used": percent,
        "overage_policy": terms.overage_policy,
        "thresholds_crossed": crossed_thresholds(terms.thresholds, used, budget.available_minutes),
        "fee_minor": terms.fee_minor if money else None,
        "overage_amount_minor": budget.overage_amount_minor if money else None,
        "by_brand": ranked(
            [
                {
                    "id": b,
                    "name": names.get(b, ("?", None))[0],
                    "minutes": m,
                    "amount_minor": None,
                }
                for b, m in brands.items()
                if m
            ]
        ),
        "by_person": ranked(
            [
                {
                    "id": user_ids.get(p, p),
                    "name": names.get(p, ("?", None))[0],
                    "minutes": v[0],
                    "amount_minor": amounts.get(p) if money else None,
                }
                for p, v in people.items()
                if v[0]
            ]
        ),
        "by_activity": sorted(
            ({"activity": a, "minutes": m} for a, m in activities.items() if m),
            key=lambda a: (-a["minutes"], a["activity"]),
        ),
        "by_content_item": ranked(
            [
                {"id": c, "name": None, "minutes": m, "amount_minor": None}
                for c, m in contents.items()
                if m
            ]
        ),
    }


async def client_budget(
    connection: asyncpg.Connection, principal: Principal, client_id: uuid.UUID, month: str
) -> dict[str, Any]:
    """`BudgetRead`'s fields as JSON-ready data: the hottest read of the budget, written
    straight to JSON by its route."""
    scope = require_scope(principal, Resource.budget, Verb.read)
    target = _month(month)
    return await _status(
        connection, principal, client_id, scope, target, money=sees_money(principal.role)
    )


async def portal_budget(session: AsyncSession, principal: Principal, month: str) -> BudgetRead:
    """The client contact's own client: hours, no fees, rates or amounts."""
    scope = require_scope(principal, Resource.budget, Verb.read)
    if scope is not Scope.own_client or principal.client_id is None:
        from tenants.errors import PermissionDenied

        raise PermissionDenied(
            "The portal is for client contacts; staff use /v1/clients/{id}/budget."
        )
    target = _month(month)
    connection = await driver_connection(session)
    figures = await _status(connection, principal, principal.client_id, scope, target, money=False)
    return BudgetRead.model_validate(figures)


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


__all__ = ["BUDGET", "BUDGET_SQL", "RetainerView", "client_budget", "portal_budget", "team_budgets"]
