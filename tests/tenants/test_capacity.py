"""Capacity arithmetic: what share of an assignment's monthly minutes falls in a month."""

from __future__ import annotations

from datetime import date

import pytest

from tenants.capacity import allocated_minutes, parse_month

NOV = (date(2026, 11, 1), date(2026, 11, 30))  # 30 days
DEC = (date(2026, 12, 1), date(2026, 12, 31))  # 31 days
FEB_LEAP = (date(2028, 2, 1), date(2028, 2, 29))  # 29 days
FEB = (date(2027, 2, 1), date(2027, 2, 28))  # 28 days


@pytest.mark.parametrize(
    ("monthly", "start", "end", "month", "expected"),
    [
        pytest.param(
            6000, date(2026, 11, 1), date(2026, 11, 30), NOV, 6000, id="exactly-the-month"
        ),
        pytest.param(6000, date(2026, 11, 1), None, NOV, 6000, id="open-ended-from-the-first"),
        pytest.param(6000, date(2025, 1, 1), None, NOV, 6000, id="open-ended-from-long-ago"),
        pytest.param(
            6000, date(2026, 10, 15), date(2027, 1, 15), NOV, 6000, id="spans-the-whole-month"
        ),
        pytest.param(6000, date(2026, 11, 16), None, NOV, 3000, id="starts-mid-month"),
        pytest.param(6000, date(2026, 10, 1), date(2026, 11, 15), NOV, 3000, id="ends-mid-month"),
        pytest.param(
            6000, date(2026, 11, 11), date(2026, 11, 20), NOV, 2000, id="inside-the-month"
        ),
        pytest.param(6000, date(2026, 11, 10), date(2026, 11, 10), NOV, 200, id="single-day"),
        pytest.param(6000, date(2026, 10, 1), date(2026, 11, 1), NOV, 200, id="ends-on-the-first"),
        pytest.param(6000, date(2026, 11, 30), None, NOV, 200, id="starts-on-the-last-day"),
        pytest.param(6000, date(2026, 10, 1), date(2026, 10, 31), NOV, 0, id="ends-before"),
        pytest.param(6000, date(2026, 12, 1), None, NOV, 0, id="starts-after"),
        pytest.param(6000, date(2026, 12, 1), date(2026, 12, 31), NOV, 0, id="next-month-only"),
        pytest.param(0, date(2026, 11, 1), None, NOV, 0, id="no-minutes"),
        pytest.param(3100, date(2026, 12, 1), None, DEC, 3100, id="31-day-month"),
        pytest.param(3100, date(2026, 12, 17), None, DEC, 1500, id="31-day-month-from-the-17th"),
        pytest.param(100, date(2026, 12, 5), date(2026, 12, 5), DEC, 3, id="rounds-down"),
        pytest.param(100, date(2026, 12, 5), date(2026, 12, 7), DEC, 10, id="rounds-up"),
        pytest.param(2900, date(2028, 2, 1), None, FEB_LEAP, 2900, id="february-leap-whole"),
        pytest.param(2900, date(2028, 2, 15), None, FEB_LEAP, 1500, id="february-leap-from-15th"),
        pytest.param(
            2900, date(2028, 2, 29), date(2028, 2, 29), FEB_LEAP, 100, id="february-29th-only"
        ),
        pytest.param(2800, date(2027, 2, 15), None, FEB, 1400, id="february-common-from-15th"),
        pytest.param(44640, date(2026, 12, 1), None, DEC, 44640, id="largest-allowed-figure"),
    ],
)
def test_allocated_minutes(monthly, start, end, month, expected):
    first, last = month
    assert allocated_minutes(monthly, start, end, first, last) == expected


def test_allocations_over_consecutive_months_add_up_to_the_figure_per_month():
    """An open assignment gives the full figure in each whole month it covers."""
    months = [parse_month(f"2026-{m:02d}") for m in range(1, 13)]
    assert [allocated_minutes(4500, date(2026, 1, 1), None, f, la) for f, la in months] == [
        4500
    ] * 12


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11", (date(2026, 11, 1), date(2026, 11, 30))),
        ("2026-12", (date(2026, 12, 1), date(2026, 12, 31))),
        ("2026-01", (date(2026, 1, 1), date(2026, 1, 31))),
        ("2028-02", (date(2028, 2, 1), date(2028, 2, 29))),
        ("2027-02", (date(2027, 2, 1), date(2027, 2, 28))),
        ("2100-02", (date(2100, 2, 1), date(2100, 2, 28))),  # not a leap year
        ("2000-02", (date(2000, 2, 1), date(2000, 2, 29))),  # a leap year
        ("2026-04", (date(2026, 4, 1), date(2026, 4, 30))),
    ],
)
def test_parse_month_gives_the_first_and_last_day(value, expected):
    assert parse_month(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2026-13",
        "2026-00",
        "2026-1",
        "2026-011",
        "26-11",
        "02026-11",
        "2026/11",
        "2026-11-01",
        "11-2026",
        "2026",
        "",
        " 2026-11",
        "2026-11 ",
        "2026-11\n",
        "abcd-ef",
        "0000-01",
        "\uff12\uff10\uff12\uff16-11",  # full-width digits
    ],
    ids=repr,
)
def test_parse_month_refuses_anything_but_yyyy_mm(value):
    with pytest.raises(ValueError):
        parse_month(value)
