"""A client's retainer for a month and what it allows: the rules every write and read shares.

`budget_at` is the one place that turns stored terms and usage into the pure arithmetic of
`billing.budgets.budget`. Writes that change a retainer client's billable time take the
retainer's row lock first, so a hard cap and the once-only alerts hold under concurrent requests.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.budgets.budget import (
    MonthBudget,
    Terms,
    crossed_thresholds,
    month_days,
    month_history,
    months_between,
)
from billing.budgets.models import BudgetAlert, Retainer, RetainerTerms
from infra import outbox
from infra.ids import new_id


class RetainerFacts(Protocol):
    """What the budget rules read of a retainer: its row, or a plain row from a read path that
    loads no ORM object (the budget view)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def currency(self) -> str: ...
    @property
    def start_month(self) -> date: ...
    @property
    def end_month(self) -> date | None: ...


class TermsFacts(Protocol):
    """What the budget rules read of a retainer's terms (see `RetainerFacts`)."""

    @property
    def effective_month(self) -> date: ...
    @property
    def monthly_minutes(self) -> int: ...
    @property
    def fee_minor(self) -> int: ...
    @property
    def brand_ids(self) -> Sequence[uuid.UUID] | None: ...
    @property
    def rollover_max_minutes(self) -> int: ...
    @property
    def rollover_max_months(self) -> int: ...
    @property
    def overage_policy(self) -> str: ...
    @property
    def overage_rate_minor(self) -> int | None: ...
    @property
    def thresholds(self) -> Sequence[int]: ...


@dataclass(slots=True)
class RetainerView:
    retainer: RetainerFacts
    terms: Sequence[TermsFacts]
    """Oldest first."""

    def terms_for(self, month: date) -> TermsFacts:
        chosen = self.terms[0]
        for row in self.terms:
            if row.effective_month <= month:
                chosen = row
        return chosen

    def covers(self, month: date) -> bool:
        r = self.retainer
        return r.start_month <= month and (r.end_month is None or month <= r.end_month)

    def counts(self, month: date, brand_id: uuid.UUID) -> bool:
        brands = self.terms_for(month).brand_ids
        return brands is None or brand_id in brands


def pure_terms(row: TermsFacts) -> Terms:
    return Terms(
        included_minutes=row.monthly_minutes,
        fee_minor=row.fee_minor,
        rollover_max_minutes=row.rollover_max_minutes,
        rollover_max_months=row.rollover_max_months,
        overage=row.overage_policy,  # type: ignore[arg-type]
        overage_rate_minor=row.overage_rate_minor,
        thresholds=tuple(row.thresholds),
    )


async def retainers_of(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    client_ids: list[uuid.UUID] | None,
    month: date,
) -> dict[uuid.UUID, RetainerView]:
    """The retainer covering `month` of each client (all clients when `client_ids` is None),
    with its terms, in one query."""
    query = (
        select(Retainer, RetainerTerms)
        .join(
            RetainerTerms,
            (col(RetainerTerms.tenant_id) == col(Retainer.tenant_id))
            & (col(RetainerTerms.retainer_id) == col(Retainer.id)),
        )
        .where(
            Retainer.tenant_id == tenant_id,
            col(Retainer.start_month) <= month,
            col(Retainer.end_month).is_(None) | (col(Retainer.end_month) >= month),
        )
        .order_by(col(RetainerTerms.effective_month))
    )
    if client_ids is not None:
        query = query.where(col(Retainer.client_id).in_(client_ids))
    found: dict[uuid.UUID, tuple[Retainer, list[RetainerTerms]]] = {}
    for retainer, terms in (await session.execute(query)).all():
        found.setdefault(retainer.client_id, (retainer, []))[1].append(terms)
    return {client_id: RetainerView(*pair) for client_id, pair in found.items()}


async def lock_retainer(
    session: AsyncSession, tenant_id: uuid.UUID, client_id: uuid.UUID, month: date
) -> RetainerView | None:
    """The retainer covering this client's month, row-locked until the transaction ends."""
    retainer = (
        await session.scalars(
            select(Retainer)
            .where(
                Retainer.tenant_id == tenant_id,
                Retainer.client_id == client_id,
                col(Retainer.start_month) <= month,
                col(Retainer.end_month).is_(None) | (col(Retainer.end_month) >= month),
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if retainer is None:
        return None
    terms = list(
        (
            await session.scalars(
                select(RetainerTerms)
                .where(
                    RetainerTerms.tenant_id == tenant_id,
                    RetainerTerms.retainer_id == retainer.id,
                )
                .order_by(col(RetainerTerms.effective_month))
            )
        ).all()
    )
    return RetainerView(retainer, terms)


_USAGE = text(
    """
    SELECT client_id, date_trunc('month', work_date)::date AS month, brand_id,
           sum(minutes) AS minutes
    FROM time_entries
    WHERE tenant_id = :tenant_id AND client_id = ANY(:client_ids) AND billable
      AND work_date >= :since AND work_date <= :until
    GROUP BY 1, 2, 3
    """
)

Usage = dict[tuple[date, uuid.UUID], int]
"""Billable minutes by (month, brand)."""


async def usage_of(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    client_ids: list[uuid.UUID],
    since: date,
    until: date,
) -> dict[uuid.UUID, Usage]:
    rows = await session.execute(
        _USAGE,
        {
            "tenant_id": tenant_id,
            "client_ids": client_ids,
            "since": since,
            "until": until,
        },
    )
    usage: dict[uuid.UUID, Usage] = defaultdict(dict)
    for client_id, month, brand_id, minutes in rows.all():
        usage[client_id][(month, brand_id)] = int(minutes)
    return usage


def budget_at(view: RetainerView, usage: Usage, month: date) -> MonthBudget:
    """The month's budget, rollover included, from the retainer's first month on."""
    history = []
    for current in months_between(view.retainer.start_month, month):
        used = sum(
            minutes
            for (m, brand_id), minutes in usage.items()
            if m == current and view.counts(current, brand_id)
        )
        history.append((current, pure_terms(view.terms_for(current)), used))
    return month_history(history)[-1]


def month_end(month: date) -> date:
    return month.replace(day=month_days(month))


async def record_crossings(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    client_id: uuid.UUID,
    view: RetainerView,
    budget: MonthBudget,
    request_id: str | None,
) -> list[int]:
    """Write an alert row for each threshold newly reached; the unique key makes a second
    writer's insert do nothing, so each alert (and its event) exists exactly once."""
    thresholds = view.terms_for(budget.month).thresholds
    crossed = crossed_thresholds(thresholds, budget.used_minutes, budget.available_minutes)
    if not crossed:
        return []
    inserted = await session.scalars(
        insert(BudgetAlert)
        .values(
            [
                {
                    "tenant_id": tenant_id,
                    "id": new_id(),
                    "client_id": client_id,
                    "month": budget.month,
                    "threshold": threshold,
                    "used_minutes": budget.used_minutes,
                    "available_minutes": budget.available_minutes,
                }
                for threshold in crossed
            ]
        )
        .on_conflict_do_nothing(constraint="uq_budget_alerts_once")
        .returning(col(BudgetAlert.threshold))
    )
    fresh = sorted(inserted.all())
    for threshold in fresh:
        payload: dict[str, Any] = {
            "client_id": str(client_id),
            "retainer_id": str(view.retainer.id),
            "month": budget.month.strftime("%Y-%m"),
            "threshold": threshold,
            "used_minutes": budget.used_minutes,
            "available_minutes": budget.available_minutes,
        }
        outbox.record_event(
            session,
            tenant_id=tenant_id,
            type="budget.threshold_crossed",
            aggregate_type="client",
            aggregate_id=client_id,
            payload=payload,
            request_id=request_id,
        )
    return fresh
