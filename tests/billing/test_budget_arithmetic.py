"""Retainer budget arithmetic: rollover lots, the carry-in cap, overage and its amount.

Every expected figure is worked out by hand in the tables (comments show the working).
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from billing.budgets.budget import (
    MonthBudget,
    Terms,
    add_months,
    crossed_thresholds,
    fits_under_cap,
    month_history,
    months_between,
    overage_amount,
    projected_minutes,
    risk,
)

JAN, FEB, MAR, APR, MAY = (date(2026, m, 1) for m in range(1, 6))
MONTHS = (JAN, FEB, MAR, APR, MAY)
RATE = 12_000  # 120.00 per hour: 200 minor units per minute

FLAT = Terms(included_minutes=600, overage_rate_minor=RATE)
ROLL = Terms(  # carry up to 300 minutes, each lot for at most 2 later months
    included_minutes=600, rollover_max_minutes=300, rollover_max_months=2, overage_rate_minor=RATE
)
ROLL_ONLY = Terms(  # nothing included: only carried minutes are available
    included_minutes=0, rollover_max_minutes=300, rollover_max_months=2, overage_rate_minor=RATE
)
ROLL_700 = Terms(
    included_minutes=600, rollover_max_minutes=700, rollover_max_months=2, overage_rate_minor=RATE
)
ROLL_700_SMALL = Terms(
    included_minutes=100, rollover_max_minutes=700, rollover_max_months=2, overage_rate_minor=RATE
)
ROLL_1000 = Terms(
    included_minutes=600, rollover_max_minutes=1000, rollover_max_months=2, overage_rate_minor=RATE
)
ONE_MONTH = Terms(
    included_minutes=600, rollover_max_minutes=1000, rollover_max_months=1, overage_rate_minor=RATE
)
CAP_250 = Terms(
    included_minutes=600, rollover_max_minutes=250, rollover_max_months=2, overage_rate_minor=RATE
)
BIGGER = Terms(
    included_minutes=900, rollover_max_minutes=300, rollover_max_months=2, overage_rate_minor=RATE
)
NO_MONTHS = Terms(
    included_minutes=600, rollover_max_minutes=300, rollover_max_months=0, overage_rate_minor=RATE
)
NO_MINUTES = Terms(
    included_minutes=600, rollover_max_minutes=0, rollover_max_months=3, overage_rate_minor=RATE
)
HARD_CAP = Terms(included_minutes=600, overage="hard_cap", overage_rate_minor=RATE)
NO_RATE = Terms(included_minutes=600)
ODD_RATE = Terms(included_minutes=600, overage_rate_minor=10_000)


def figures(budget: MonthBudget) -> tuple[int, int, int, int, int, int]:
    return (
        budget.rolled_in_minutes,
        budget.available_minutes,
        budget.remaining_minutes,
        budget.overage_minutes,
        budget.overage_amount_minor,
        budget.carried_out_minutes,
    )


# Each expected row: (rolled in, available, remaining, overage, overage amount, carried out).
@pytest.mark.parametrize(
    ("months", "expected"),
    [
        pytest.param([(FLAT, 450)], [(0, 600, 150, 0, 0, 0)], id="under-the-included-minutes"),
        pytest.param([(FLAT, 600)], [(0, 600, 0, 0, 0, 0)], id="exactly-the-included-minutes"),
        pytest.param(
            [(FLAT, 690)],
            [(0, 600, 0, 90, 18_000, 0)],  # 90 min x 200
            id="overage-billed-at-the-rate",
        ),
        pytest.param([(FLAT, 0)], [(0, 600, 600, 0, 0, 0)], id="nothing-used"),
        pytest.param(
            [(FLAT, 100), (FLAT, 700)],
            [(0, 600, 500, 0, 0, 0), (0, 600, 0, 100, 20_000, 0)],
            id="without-rollover-unused-minutes-are-lost",
        ),
        pytest.param(
            [(ROLL, 400), (ROLL, 700)],
            # Feb spends the 200 carried first, then 500 of its own: 100 of its own are left.
            [(0, 600, 200, 0, 0, 200), (200, 800, 100, 0, 0, 100)],
            id="carried-minutes-are-spent-before-own-minutes",
        ),
        pytest.param(
            [(ROLL, 400), (ROLL, 900)],
            # Feb: 200 carried + 600 own = 800 available, 900 used: 100 over.
            [(0, 600, 200, 0, 0, 200), (200, 800, 0, 100, 20_000, 0)],
            id="overage-after-using-carried-minutes",
        ),
        pytest.param(
            [(ROLL, 100), (ROLL, 0)],
            # Jan leaves 500 but only 300 may be carried into Feb.
            [(0, 600, 500, 0, 0, 500), (300, 900, 900, 0, 0, 600)],
            id="carry-in-is-capped",
        ),
        pytest.param(
            [(ROLL, 500), (ROLL_ONLY, 0), (ROLL_ONLY, 0), (ROLL_ONLY, 50)],
            # Jan leaves 100, usable in Feb and Mar (2 months), gone in Apr: 50 over.
            [
                (0, 600, 100, 0, 0, 100),
                (100, 100, 100, 0, 0, 0),
                (100, 100, 100, 0, 0, 0),
                (0, 0, 0, 50, 10_000, 0),
            ],
            id="a-lot-expires-after-max-months",
        ),
        pytest.param(
            [(ONE_MONTH, 0), (ONE_MONTH, 0), (ONE_MONTH, 1300)],
            # Mar: Jan's lot has expired, only Feb's 600 come in: 1200 available, 100 over.
            [
                (0, 600, 600, 0, 0, 600),
                (600, 1200, 1200, 0, 0, 600),
                (600, 1200, 0, 100, 20_000, 0),
            ],
            id="one-month-rollover-keeps-only-last-months-lot",
        ),
        pytest.param(
            [(ROLL_700, 400), (ROLL_700, 0), (ROLL_700_SMALL, 0), (ROLL_700, 0)],
            # Mar: lots Jan 200 + Feb 600 = 800 > 700, so 100 of Jan's (oldest) are dropped.
            # Apr: Jan's lot has expired; Feb 600 + Mar 100 = 700 come in. Dropping Feb's
            # minutes instead would have left only 500 + 100 = 600 for April.
            [
                (0, 600, 200, 0, 0, 200),
                (200, 800, 800, 0, 0, 600),
                (700, 800, 800, 0, 0, 100),
                (700, 1300, 1300, 0, 0, 600),
            ],
            id="over-the-cap-the-oldest-minutes-are-dropped",
        ),
        pytest.param(
            [(ROLL_1000, 300), (ROLL_1000, 0), (ROLL_1000, 300), (ROLL_1000, 0)],
            # Mar: lots Jan 300 + Feb 600; the 300 used come out of Jan's (expiring) lot.
            # Apr: Feb 600 + Mar 600 = 1200, capped to 1000. Spending Feb's lot in March
            # instead would have left 300 + 600 = 900 for April.
            [
                (0, 600, 300, 0, 0, 300),
                (300, 900, 900, 0, 0, 600),
                (900, 1500, 1200, 0, 0, 600),
                (1000, 1600, 1600, 0, 0, 600),
            ],
            id="oldest-lot-is-spent-first",
        ),
        pytest.param(
            [(ROLL, 0), (FLAT, 0), (ROLL, 0)],
            # Feb has no rollover: Jan's lot is discarded for good, even though by age it
            # could still have been used in March.
            [(0, 600, 600, 0, 0, 600), (0, 600, 600, 0, 0, 0), (0, 600, 600, 0, 0, 600)],
            id="a-month-without-rollover-discards-all-lots",
        ),
        pytest.param(
            [(NO_MONTHS, 0), (NO_MONTHS, 0)],
            [(0, 600, 600, 0, 0, 0), (0, 600, 600, 0, 0, 0)],
            id="rollover-off-when-max-months-is-zero",
        ),
        pytest.param(
            [(NO_MINUTES, 0), (NO_MINUTES, 0)],
            [(0, 600, 600, 0, 0, 0), (0, 600, 600, 0, 0, 0)],
            id="rollover-off-when-max-minutes-is-zero",
        ),
        pytest.param(
            [(ROLL_700, 0), (CAP_250, 0)],
            [(0, 600, 600, 0, 0, 600), (250, 850, 850, 0, 0, 600)],
            id="the-cap-in-force-that-month-applies",
        ),
        pytest.param(
            [(ROLL, 500), (BIGGER, 1100)],
            # Feb: 100 carried + 900 own = 1000 available, 1100 used: 100 over.
            [(0, 600, 100, 0, 0, 100), (100, 1000, 0, 100, 20_000, 0)],
            id="included-minutes-in-force-that-month-apply",
        ),
        pytest.param(
            [(HARD_CAP, 660)],
            [(0, 600, 0, 60, 0, 0)],
            id="hard-cap-shows-overage-minutes-but-bills-nothing",
        ),
        pytest.param(
            [(NO_RATE, 700)], [(0, 600, 0, 100, 0, 0)], id="no-overage-rate-bills-nothing"
        ),
        pytest.param(
            [(ODD_RATE, 607)],
            [(0, 600, 0, 7, 1167, 0)],  # 7 x 10000 / 60 = 1166.67
            id="overage-amount-rounded-to-the-unit",
        ),
    ],
)
def test_month_history(months: list[tuple[Terms, int]], expected: list[tuple[int, ...]]) -> None:
    history = month_history([(MONTHS[i], terms, used) for i, (terms, used) in enumerate(months)])

    assert [b.month for b in history] == list(MONTHS[: len(months)])
    assert [b.included_minutes for b in history] == [t.included_minutes for t, _ in months]
    assert [b.used_minutes for b in history] == [used for _, used in months]
    assert [figures(b) for b in history] == expected


def test_month_history_of_nothing_is_empty() -> None:
    assert month_history([]) == []


@pytest.mark.parametrize(
    ("minutes", "rate", "expected"),
    [
        pytest.param(0, RATE, 0, id="no-minutes"),
        pytest.param(-5, RATE, 0, id="negative-minutes"),
        pytest.param(1, RATE, 200, id="one-minute"),
        pytest.param(30, RATE, 6_000, id="half-an-hour"),
        pytest.param(60, RATE, 12_000, id="one-hour"),
        pytest.param(90, 12_500, 18_750, id="ninety-minutes"),
        pytest.param(7, 10_000, 1_167, id="rounds-up-above-half"),
        pytest.param(1, 100, 2, id="1.67-rounds-to-2"),
        pytest.param(1, 29, 0, id="0.48-rounds-to-0"),
        pytest.param(1, 30, 1, id="half-rounds-up-0.5"),
        pytest.param(1, 150, 3, id="half-rounds-up-2.5"),
        pytest.param(3, 10, 1, id="half-rounds-up-three-minutes"),
        pytest.param(5, None, 0, id="no-rate"),
        pytest.param(5, 0, 0, id="zero-rate"),
    ],
)
def test_overage_amount(minutes: int, rate: int | None, expected: int) -> None:
    assert overage_amount(minutes, rate) == expected


@pytest.mark.parametrize(
    ("available", "used", "extra", "expected"),
    [
        pytest.param(600, 500, 100, True, id="exactly-reaches-the-cap"),
        pytest.param(600, 500, 101, False, id="one-minute-over"),
        pytest.param(600, 0, 600, True, id="all-at-once"),
        pytest.param(600, 600, 0, True, id="at-the-cap-adding-nothing"),
        pytest.param(600, 600, 1, False, id="at-the-cap-adding-one"),
        pytest.param(600, 700, 0, False, id="already-over"),
        pytest.param(0, 0, 1, False, id="nothing-available"),
    ],
)
def test_fits_under_cap(available: int, used: int, extra: int, expected: bool) -> None:
    assert fits_under_cap(available, used, extra) is expected


STANDARD = (50, 80, 100)


@pytest.mark.parametrize(
    ("thresholds", "used", "available", "expected"),
    [
        pytest.param(STANDARD, 0, 600, [], id="nothing-used"),
        pytest.param(STANDARD, 299, 600, [], id="just-under-half"),
        pytest.param(STANDARD, 300, 600, [50], id="exactly-half"),
        pytest.param(STANDARD, 479, 600, [50], id="just-under-80"),
        pytest.param(STANDARD, 480, 600, [50, 80], id="exactly-80"),
        pytest.param(STANDARD, 599, 600, [50, 80], id="one-minute-left"),
        pytest.param(STANDARD, 600, 600, [50, 80, 100], id="all-used"),
        pytest.param(STANDARD, 900, 600, [50, 80, 100], id="over"),
        pytest.param((100, 50, 120, 80), 720, 600, [50, 80, 100, 120], id="unsorted-120-percent"),
        pytest.param((100, 50, 120, 80), 719, 600, [50, 80, 100], id="unsorted-just-under-120"),
        pytest.param((33,), 1, 3, [33], id="one-third-reaches-33"),
        pytest.param((34,), 1, 3, [], id="one-third-misses-34"),
        pytest.param((66, 67), 2, 3, [66], id="two-thirds-exact-integers"),
        pytest.param(STANDARD, 1, 0, [50, 80, 100], id="any-use-of-nothing-crosses-all"),
        pytest.param(STANDARD, 0, 0, [], id="no-use-of-nothing"),
    ],
)
def test_crossed_thresholds(
    thresholds: tuple[int, ...], used: int, available: int, expected: list[int]
) -> None:
    assert crossed_thresholds(thresholds, used, available) == expected


NOV = date(2026, 11, 1)  # 30 days


@pytest.mark.parametrize(
    ("used", "month", "today", "expected"),
    [
        pytest.param(300, NOV, date(2026, 11, 10), 900, id="a-third-of-the-month"),
        pytest.param(45, NOV, date(2026, 11, 1), 1350, id="first-day"),
        pytest.param(300, NOV, date(2026, 11, 30), 300, id="last-day"),
        pytest.param(0, NOV, date(2026, 11, 15), 0, id="nothing-used-yet"),
        pytest.param(1, NOV, date(2026, 11, 4), 8, id="7.5-rounds-up"),
        pytest.param(1, NOV, date(2026, 11, 7), 4, id="4.29-rounds-down"),
        pytest.param(310, date(2026, 12, 1), date(2026, 12, 10), 961, id="31-day-month"),
        pytest.param(100, date(2027, 2, 1), date(2027, 2, 14), 200, id="28-day-february"),
        pytest.param(100, date(2028, 2, 1), date(2028, 2, 10), 290, id="29-day-february"),
        pytest.param(300, date(2026, 11, 15), date(2026, 11, 10), 900, id="month-given-mid-month"),
        pytest.param(700, date(2026, 10, 1), date(2026, 11, 5), 700, id="past-month"),
        pytest.param(300, date(2025, 11, 1), date(2026, 11, 10), 300, id="same-month-last-year"),
        pytest.param(50, date(2026, 12, 1), date(2026, 11, 20), 50, id="future-month"),
    ],
)
def test_projected_minutes(used: int, month: date, today: date, expected: int) -> None:
    assert projected_minutes(used, month, today) == expected


@pytest.mark.parametrize(
    ("projected", "available", "expected"),
    [
        pytest.param(900, 600, 1.5, id="half-again-over"),
        pytest.param(600, 600, 1.0, id="exactly-all"),
        pytest.param(300, 600, 0.5, id="half"),
        pytest.param(0, 600, 0.0, id="nothing"),
        pytest.param(0, 0, 0.0, id="nothing-of-nothing"),
        pytest.param(1, 0, math.inf, id="anything-of-nothing"),
    ],
)
def test_risk(projected: int, available: int, expected: float) -> None:
    assert risk(projected, available) == expected


@pytest.mark.parametrize(
    ("month", "count", "expected"),
    [
        pytest.param(date(2026, 1, 1), 1, date(2026, 2, 1), id="next-month"),
        pytest.param(date(2026, 12, 1), 1, date(2027, 1, 1), id="into-next-year"),
        pytest.param(date(2026, 1, 1), -1, date(2025, 12, 1), id="into-previous-year"),
        pytest.param(date(2026, 1, 1), 11, date(2026, 12, 1), id="to-december"),
        pytest.param(date(2026, 1, 1), 24, date(2028, 1, 1), id="two-years"),
        pytest.param(date(2026, 3, 1), -14, date(2025, 1, 1), id="fourteen-back"),
        pytest.param(date(2026, 11, 15), 0, date(2026, 11, 1), id="zero-gives-the-first"),
        pytest.param(date(2026, 1, 31), 1, date(2026, 2, 1), id="from-the-31st"),
    ],
)
def test_add_months(month: date, count: int, expected: date) -> None:
    assert add_months(month, count) == expected


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        pytest.param(
            date(2026, 11, 1),
            date(2027, 2, 1),
            [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)],
            id="across-new-year",
        ),
        pytest.param(date(2026, 11, 1), date(2026, 11, 1), [date(2026, 11, 1)], id="one-month"),
        pytest.param(
            date(2026, 11, 15), date(2026, 11, 20), [date(2026, 11, 1)], id="within-one-month"
        ),
        pytest.param(
            date(2026, 11, 20),
            date(2027, 1, 5),
            [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)],
            id="mid-month-bounds",
        ),
        pytest.param(date(2026, 12, 1), date(2026, 11, 1), [], id="last-before-first"),
    ],
)
def test_months_between(first: date, last: date, expected: list[date]) -> None:
    assert months_between(first, last) == expected
