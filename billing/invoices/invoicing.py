"""Invoice arithmetic, pure: a client's closed month in invoice lines, each with its working.

The month's figures come from `billing.budgets.budget` (the same rollover and overage rules the
budget view shows), computed from approved time only. Amounts are integer minor units of the
retainer's currency; the overage is rounded half up to the minor unit, once, on the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from billing.budgets.budget import MonthBudget, Terms, overage_amount
from infra.i18n import language, month_name

# ISO 4217 minor units that are not 2; Stripe uses the same exponents.
_EXPONENTS = {
    "bif": 0, "clp": 0, "djf": 0, "gnf": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0, "pyg": 0,
    "rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
    "bhd": 3, "jod": 3, "kwd": 3, "omr": 3, "tnd": 3,
}  # fmt: skip

_WORDS = {
    "en": {
        "retainer": "Monthly retainer — {month}",
        "overage": "Hours beyond the retainer — {month}",
        "per_hour": "/h",
    },
    "fr": {
        "retainer": "Forfait mensuel — {month}",
        "overage": "Heures au-delà du forfait — {month}",
        "per_hour": "/h",
    },
}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.lower(), 2)


def format_money(minor: int, currency: str, locale: str = "en") -> str:
    """12345 EUR -> 'EUR 123.45' (en) or '123,45 EUR' (fr); JPY has no decimals."""
    places = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**places) if places else (abs(minor), 0)
    code = currency.upper()
    if language(locale) == "fr":
        digits = f"{whole:,}".replace(",", "\u202f")
        amount = f"{digits},{fraction:0{places}d}" if places else digits
        return f"{sign}{amount} {code}"
    digits = f"{whole:,}"
    amount = f"{digits}.{fraction:0{places}d}" if places else digits
    return f"{code} {sign}{amount}"


def format_minutes(minutes: int) -> str:
    """665 -> '11 h 05'."""
    return f"{minutes // 60} h {minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class DraftLine:
    kind: str
    description: str
    amount_minor: int
    quantity_minutes: int | None = None
    unit_amount_minor: int | None = None
    """Per hour, for time lines."""
    computation: dict[str, Any] = field(default_factory=dict)


def draft_lines(
    month: date, currency: str, terms: Terms, budget: MonthBudget, locale: str
) -> list[DraftLine]:
    """The retainer fee, then the overage at the hourly rate, each saying how it was reached."""
    words = _WORDS[language(locale)]
    label = month_name(month, locale)
    lines: list[DraftLine] = []
    if terms.fee_minor:
        lines.append(
            DraftLine(
                kind="retainer_fee",
                description=words["retainer"].format(month=label),
                amount_minor=terms.fee_minor,
                computation={
                    "rule": "the retainer's monthly fee for the month",
                    "fee_minor": terms.fee_minor,
                    "included_minutes": budget.included_minutes,
                    "rolled_over_minutes": budget.rolled_in_minutes,
                    "used_minutes": budget.used_minutes,
                },
            )
        )
    if budget.overage_minutes and terms.overage == "bill_at_rate":
        rate = terms.overage_rate_minor or 0
        amount = overage_amount(budget.overage_minutes, rate)
        explanation = (
            f"{format_minutes(budget.used_minutes)} used - "
            f"{format_minutes(budget.available_minutes)} available "
            f"({format_minutes(budget.included_minutes)} included + "
            f"{format_minutes(budget.rolled_in_minutes)} rolled over) = "
            f"{format_minutes(budget.overage_minutes)} x "
            f"{format_money(rate, currency)}{words['per_hour']} = {format_money(amount, currency)}"
        )
        lines.append(
            DraftLine(
                kind="overage",
                description=words["overage"].format(month=label),
                amount_minor=amount,
                quantity_minutes=budget.overage_minutes,
                unit_amount_minor=rate,
                computation={
                    "rule": "overage minutes x hourly rate / 60, rounded half up",
                    "used_minutes": budget.used_minutes,
                    "included_minutes": budget.included_minutes,
                    "rolled_over_minutes": budget.rolled_in_minutes,
                    "available_minutes": budget.available_minutes,
                    "overage_minutes": budget.overage_minutes,
                    "rate_minor_per_hour": rate,
                    "explanation": explanation,
                },
            )
        )
    return lines


def subtotal(amounts: Sequence[int]) -> int:
    return sum(amounts)


def amount_due(subtotal_minor: int, credited_minor: int) -> int:
    return subtotal_minor - credited_minor


def credit_room(subtotal_minor: int, credited_minor: int) -> int:
    """How much more may still be credited: never more than was invoiced."""
    return max(subtotal_minor - credited_minor, 0)
