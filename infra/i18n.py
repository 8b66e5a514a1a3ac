"""The languages our messages are written in, and the month names they use."""

from __future__ import annotations

from datetime import date
from typing import Literal

MONTHS: dict[str, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
}


Language = Literal["fr", "en"]


def language(locale: str | None) -> Language:
    """The one place that decides: 'fr-CA', 'FR', 'fr' -> 'fr'; anything else, no locale
    included, is written in English."""
    return "fr" if (locale or "").lower().startswith("fr") else "en"


def month_name(month: date, locale: str) -> str:
    """'novembre 2026', 'November 2026'."""
    return f"{MONTHS[language(locale)][month.month - 1]} {month.year}"
