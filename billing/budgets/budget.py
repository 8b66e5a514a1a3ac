"""Budget arithmetic, pure: what a retainer allows in a month and how much of it is used.

Unused included minutes of a month form a *lot* that later months may use, for at most
`rollover_max_months` months, with at most `rollover_max_minutes` carried into any month.
A month spends carried lots first, oldest first (they expire soonest), then its own minutes.
Whatever exceeds what is available is overage.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

OveragePolicy = Literal["bill_at_rate", "hard_cap"]
DEFAULT_THRESHOLDS = (50, 80, 100)


@dataclass(frozen=True, slots=True)
class Terms:
    included_minutes: int
    fee_minor: int = 0
    rollover_max_minutes: int = 0
    rollover_max_months: int = 0
    overage: OveragePolicy = "bill_at_rate"
    overage_rate_minor: int | None = None
    """Per hour, in the retainer's currency."""
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS

    @property
    def rolls_over(self) -> bool:
        return self.rollover_max_minutes > 0 and self.rollover_max_months > 0


@dataclass(frozen=True, slots=True)
class MonthBudget:
    month: date
    included_minutes: int
    rolled_in_minutes: int
    available_minutes: int
    used_minutes: int
    remaining_minutes: int
    overage_minutes: int
    overage_amount_minor: int
    carried_out_minutes: int
    """Of this month's own minutes, how many are left for later months."""


@dataclass(slots=True)
class _Lot:
    origin: int
    minutes: int


@dataclass(slots=True)
class _Ledger:
    lots: list[_Lot] = field(default_factory=list)


def overage_amount(minutes: int, rate_minor_per_hour: int | None) -> int:
    """Minutes × hourly rate, in minor units, rounded half up to the nearest unit."""
    if minutes <= 0 or not rate_minor_per_hour:
        return 0
    return (minutes * rate_minor_per_hour * 2 + 60) // 120


def month_history(months: Sequence[tuple[date, Terms, int]]) -> list[MonthBudget]:
    """Each month of a retainer in order, from its first: (month, terms in force, minutes used).

    Months must be consecutive; the last one is usually the month asked about.
    """
    ledger = _Ledger()
    result: list[MonthBudget] = []
    for index, (month, terms, used) in enumerate(months):
        if terms.rolls_over:
            valid = [
                lot
                for lot in ledger.lots
                if index - lot.origin <= terms.rollover_max_months and lot.minutes > 0
            ]
            # Over the cap, the oldest minutes go first: they would expire first anyway.
            excess = sum(lot.minutes for lot in valid) - terms.rollover_max_minutes
            for lot in valid:
                if excess <= 0:
                    break
                cut = min(lot.minutes, excess)
                lot.minutes -= cut
                excess -= cut
            ledger.lots = [lot for lot in valid if lot.minutes > 0]
        else:
            ledger.lots = []
        rolled_in = sum(lot.minutes for lot in ledger.lots)
        available = terms.included_minutes + rolled_in

        to_spend = used
        for lot in ledger.lots:  # oldest first
            spent = min(lot.minutes, to_spend)
            lot.minutes -= spent
            to_spend -= spent
        own_left = max(terms.included_minutes - to_spend, 0)
        ledger.lots = [lot for lot in ledger.lots if lot.minutes > 0]
        carried_out = own_left if terms.rolls_over else 0
        if carried_out:
            ledger.lots.append(_Lot(origin=index, minutes=carried_out))

        overage = max(used - available, 0)
        result.append(
            MonthBudget(
                month=month,
                included_minutes=terms.included_minutes,
                rolled_in_minutes=rolled_in,
                available_minutes=available,
                used_minutes=used,
                remaining_minutes=max(available - used, 0),
                overage_minutes=overage,
                overage_amount_minor=(
                    overage_amount(overage, terms.overage_rate_minor)
                    if terms.overage == "bill_at_rate"
                    else 0
                ),
                carried_out_minutes=carried_out,
            )
        )
    return result


def fits_under_cap(available: int, used: int, extra: int) -> bool:
    """Whether `extra` more minutes stay within a hard cap."""
    return used + extra <= available


def crossed_thresholds(thresholds: Sequence[int], used: int, available: int) -> list[int]:
    """Thresholds (percent of available) that `used` has reached; exact integer arithmetic."""
    if used <= 0:
        return []
    if available <= 0:
        return sorted(thresholds)
    return sorted(t for t in thresholds if used * 100 >= t * available)


def month_days(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def projected_minutes(used: int, month: date, today: date) -> int:
    """Use at month end if the pace so far goes on; past months are what they are."""
    first = month.replace(day=1)
    days = month_days(first)
    if today < first:
        return used
    if (today.year, today.month) != (first.year, first.month):
        return used
    return (used * days * 2 + today.day) // (2 * today.day)


def risk(projected: int, available: int) -> float:
    """How far the projection goes past what is available (1.0 = exactly all of it)."""
    if available <= 0:
        return float("inf") if projected > 0 else 0.0
    return projected / available


def add_months(month: date, count: int) -> date:
    total = month.year * 12 + (month.month - 1) + count
    return date(total // 12, total % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """Every first-of-month from `first` to `last`, both included."""
    out: list[date] = []
    current = first.replace(day=1)
    while current <= last:
        out.append(current)
        current = add_months(current, 1)
    return out
