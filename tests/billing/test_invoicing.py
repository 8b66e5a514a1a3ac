"""Invoice arithmetic, pure: the lines a client's month makes, half-up overage, rollover,
hard caps, money in currencies of 0, 2 and 3 decimals, French and English wording, and what
may still be credited."""

from __future__ import annotations

from datetime import date

import pytest

from billing.budgets.budget import MonthBudget, Terms, month_history
from billing.invoices.invoicing import (
    amount_due,
    credit_room,
    draft_lines,
    exponent,
    format_minutes,
    format_money,
    language,
    month_name,
)

NNBSP = "\u202f"  # French thousands separator
SEP, OCT = date(2026, 9, 1), date(2026, 10, 1)


def budget(terms: Terms, *used: int, start: date = SEP) -> MonthBudget:
    """The last month of a retainer whose consecutive months used `used` minutes."""
    months = []
    year, month = start.year, start.month
    for minutes in used:
        months.append((date(year, month, 1), terms, minutes))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return month_history(months)[-1]


def by_kind(lines) -> dict:
    kinds = [line.kind for line in lines]
    assert len(kinds) == len(set(kinds)), kinds
    return {line.kind: line for line in lines}


# ---------------------------------------------------------------------------------------------
# Lines


def test_a_month_within_the_retainer_is_the_fee_alone():
    terms = Terms(included_minutes=600, fee_minor=100_000, overage_rate_minor=6_000)
    lines = draft_lines(SEP, "CAD", terms, budget(terms, 599), "en-CA")
    assert [line.kind for line in lines] == ["retainer_fee"]
    fee = lines[0]
    assert fee.amount_minor == 100_000
    assert fee.description == "Monthly retainer — September 2026"
    assert fee.quantity_minutes is None and fee.unit_amount_minor is None
    assert fee.computation["fee_minor"] == 100_000
    assert fee.computation["included_minutes"] == 600
    assert fee.computation["used_minutes"] == 599
    assert fee.computation["rolled_over_minutes"] == 0


def test_exactly_the_included_minutes_is_no_overage():
    terms = Terms(included_minutes=600, fee_minor=100_000, overage_rate_minor=6_000)
    lines = draft_lines(SEP, "CAD", terms, budget(terms, 600), "en")
    assert [line.kind for line in lines] == ["retainer_fee"]


def test_no_fee_and_no_overage_makes_no_line():
    terms = Terms(included_minutes=600, fee_minor=0, overage_rate_minor=6_000)
    assert draft_lines(SEP, "CAD", terms, budget(terms, 100), "en") == []


def test_overage_is_billed_at_the_hourly_rate_with_its_working():
    terms = Terms(included_minutes=600, fee_minor=100_000, overage_rate_minor=6_000)
    lines = by_kind(draft_lines(SEP, "CAD", terms, budget(terms, 690), "en"))
    assert list(lines) == ["retainer_fee", "overage"]
    overage = lines["overage"]
    assert overage.amount_minor == 9_000  # 90 minutes at 60.00/h
    assert overage.quantity_minutes == 90
    assert overage.unit_amount_minor == 6_000
    assert overage.description == "Hours beyond the retainer — September 2026"
    work = overage.computation
    assert work["used_minutes"] == 690
    assert work["included_minutes"] == 600
    assert work["available_minutes"] == 600
    assert work["overage_minutes"] == 90
    assert work["rate_minor_per_hour"] == 6_000
    assert work["explanation"] == (
        "11 h 30 used - 10 h 00 available (10 h 00 included + 0 h 00 rolled over) = "
        "1 h 30 x CAD 60.00/h = CAD 90.00"
    )


@pytest.mark.parametrize(
    ("overage_minutes", "rate", "expected"),
    [
        (1, 30, 1),  # 0.5 rounds up
        (1, 29, 0),  # 0.483 rounds down
        (1, 31, 1),  # 0.517 rounds up
        (1, 90, 2),  # 1.5 rounds up
        (1, 150, 3),  # 2.5 rounds up, not to even
        (7, 9_999, 1_167),  # 1166.55
        (13, 7_777, 1_685),  # 1685.01...
        (45, 12_345, 9_259),  # 9258.75
        (90, 6_000, 9_000),  # exact
    ],
)
def test_overage_is_rounded_half_up_once_on_the_line(overage_minutes, rate, expected):
    terms = Terms(included_minutes=600, fee_minor=50_000, overage_rate_minor=rate)
    lines = by_kind(draft_lines(SEP, "CAD", terms, budget(terms, 600 + overage_minutes), "en"))
    assert lines["overage"].amount_minor == expected
    assert lines["overage"].quantity_minutes == overage_minutes


def test_rollover_reduces_the_overage():
    rolling = Terms(
        included_minutes=600,
        fee_minor=100_000,
        overage_rate_minor=6_000,
        rollover_max_minutes=300,
        rollover_max_months=2,
    )
    october = budget(rolling, 400, 900)  # September leaves 200 minutes for October
    assert october.rolled_in_minutes == 200
    lines = by_kind(draft_lines(OCT, "CAD", rolling, october, "en"))
    assert lines["overage"].quantity_minutes == 100
    assert lines["overage"].amount_minor == 10_000
    assert lines["overage"].computation["rolled_over_minutes"] == 200
    assert lines["overage"].computation["available_minutes"] == 800
    assert lines["retainer_fee"].computation["rolled_over_minutes"] == 200
    assert "(10 h 00 included + 3 h 20 rolled over)" in lines["overage"].computation["explanation"]

    flat = Terms(included_minutes=600, fee_minor=100_000, overage_rate_minor=6_000)
    without = by_kind(draft_lines(OCT, "CAD", flat, budget(flat, 400, 900), "en"))
    assert without["overage"].quantity_minutes == 300
    assert without["overage"].amount_minor == 30_000


def test_rollover_that_covers_everything_leaves_the_fee_alone():
    rolling = Terms(
        included_minutes=600,
        fee_minor=100_000,
        overage_rate_minor=6_000,
        rollover_max_minutes=300,
        rollover_max_months=1,
    )
    october = budget(rolling, 0, 850)  # 300 carried (capped), 850 <= 900
    assert [line.kind for line in draft_lines(OCT, "CAD", rolling, october, "en")] == [
        "retainer_fee"
    ]


def test_a_hard_cap_never_bills_overage():
    capped = Terms(included_minutes=600, fee_minor=100_000, overage="hard_cap")
    month = budget(capped, 700)
    assert month.overage_minutes == 100  # time beyond the cap can exist (e.g. terms changed)
    lines = draft_lines(SEP, "CAD", capped, month, "en")
    assert [line.kind for line in lines] == ["retainer_fee"]
    assert sum(line.amount_minor for line in lines) == 100_000


def test_a_hard_cap_with_a_rate_still_bills_no_overage():
    capped = Terms(
        included_minutes=600, fee_minor=100_000, overage="hard_cap", overage_rate_minor=6_000
    )
    lines = draft_lines(SEP, "CAD", capped, budget(capped, 900), "en")
    assert [line.kind for line in lines] == ["retainer_fee"]


@pytest.mark.parametrize(
    ("locale", "fee", "overage"),
    [
        ("fr-CA", "Forfait mensuel — août 2026", "Heures au-delà du forfait — août 2026"),
        ("fr", "Forfait mensuel — août 2026", "Heures au-delà du forfait — août 2026"),
        ("FR-fr", "Forfait mensuel — août 2026", "Heures au-delà du forfait — août 2026"),
        ("en-CA", "Monthly retainer — August 2026", "Hours beyond the retainer — August 2026"),
        ("de-DE", "Monthly retainer — August 2026", "Hours beyond the retainer — August 2026"),
    ],
)
def test_line_descriptions_speak_the_clients_language(locale, fee, overage):
    terms = Terms(included_minutes=60, fee_minor=1_000, overage_rate_minor=6_000)
    august = date(2026, 8, 1)
    lines = by_kind(draft_lines(august, "EUR", terms, budget(terms, 90, start=august), locale))
    assert lines["retainer_fee"].description == fee
    assert lines["overage"].description == overage


def test_overage_in_a_currency_without_decimals():
    terms = Terms(included_minutes=600, fee_minor=150_000, overage_rate_minor=12_000)
    lines = by_kind(draft_lines(SEP, "JPY", terms, budget(terms, 645), "en"))
    assert lines["overage"].amount_minor == 9_000  # 45 minutes at ¥12,000/h
    assert lines["overage"].computation["explanation"].endswith("JPY 12,000/h = JPY 9,000")


def test_overage_in_a_currency_with_three_decimals():
    terms = Terms(included_minutes=60, fee_minor=250_000, overage_rate_minor=25_000)
    lines = by_kind(draft_lines(SEP, "KWD", terms, budget(terms, 61), "en"))
    assert lines["overage"].amount_minor == 417  # 416.67 fils
    assert lines["overage"].computation["explanation"].endswith("KWD 25.000/h = KWD 0.417")


# ---------------------------------------------------------------------------------------------
# Money, minutes and months


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "text"),
    [
        (12_345, "EUR", "en", "EUR 123.45"),
        (12_345, "EUR", "fr-CA", "123,45 EUR"),
        (123_456_789, "CAD", "en-CA", "CAD 1,234,567.89"),
        (123_456_789, "CAD", "fr-CA", f"1{NNBSP}234{NNBSP}567,89 CAD"),
        (5, "usd", "en", "USD 0.05"),
        (0, "EUR", "fr", "0,00 EUR"),
        (-5, "EUR", "en", "EUR -0.05"),
        (-123_456, "EUR", "fr", f"-1{NNBSP}234,56 EUR"),
        # JPY: exponent 0
        (12_345, "JPY", "en", "JPY 12,345"),
        (12_345, "jpy", "fr", f"12{NNBSP}345 JPY"),
        (7, "JPY", "en", "JPY 7"),
        (-1_500, "JPY", "en", "JPY -1,500"),
        # KWD: exponent 3
        (12_345, "KWD", "en", "KWD 12.345"),
        (12_345, "KWD", "fr", "12,345 KWD"),
        (5, "KWD", "en", "KWD 0.005"),
        (1_234_567, "kwd", "fr-CA", f"1{NNBSP}234,567 KWD"),
        (-50, "KWD", "en", "KWD -0.050"),
    ],
)
def test_format_money(minor, currency, locale, text):
    assert format_money(minor, currency, locale) == text


def test_format_money_defaults_to_english():
    assert format_money(100_000, "CAD") == "CAD 1,000.00"


@pytest.mark.parametrize(
    ("currency", "places"),
    [("JPY", 0), ("jpy", 0), ("KRW", 0), ("KWD", 3), ("bhd", 3), ("CAD", 2), ("EUR", 2)],
)
def test_currency_exponents(currency, places):
    assert exponent(currency) == places


@pytest.mark.parametrize(
    ("minutes", "text"), [(0, "0 h 00"), (5, "0 h 05"), (60, "1 h 00"), (665, "11 h 05")]
)
def test_format_minutes(minutes, text):
    assert format_minutes(minutes) == text


@pytest.mark.parametrize(
    ("month", "locale", "text"),
    [
        (date(2026, 1, 1), "fr-CA", "janvier 2026"),
        (date(2026, 2, 1), "fr", "février 2026"),
        (date(2026, 8, 1), "fr-FR", "août 2026"),
        (date(2026, 12, 1), "fr-CA", "décembre 2026"),
        (date(2026, 1, 1), "en", "January 2026"),
        (date(2026, 8, 1), "en-CA", "August 2026"),
        (date(2026, 12, 1), "es", "December 2026"),
    ],
)
def test_month_names(month, locale, text):
    assert month_name(month, locale) == text


@pytest.mark.parametrize(
    ("locale", "lang"), [("fr", "fr"), ("fr-CA", "fr"), ("FR", "fr"), ("en-US", "en"), ("it", "en")]
)
def test_language(locale, lang):
    assert language(locale) == lang


# ---------------------------------------------------------------------------------------------
# Credits


@pytest.mark.parametrize(
    ("subtotal", "credited", "room", "due"),
    [
        (10_000, 0, 10_000, 10_000),
        (10_000, 2_500, 7_500, 7_500),
        (10_000, 10_000, 0, 0),
        (10_000, 12_000, 0, -2_000),
        (0, 0, 0, 0),
        (-500, 0, 0, -500),
    ],
)
def test_credit_room_and_amount_due(subtotal, credited, room, due):
    assert credit_room(subtotal, credited) == room
    assert amount_due(subtotal, credited) == due
