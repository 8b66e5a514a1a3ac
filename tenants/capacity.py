"""Capacity arithmetic, pure: how much of an assignment's monthly time falls in a month."""

from __future__ import annotations

import calendar
import re
from datetime import date

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def parse_month(value: str) -> tuple[date, date]:
    """'2026-11' -> (first day, last day)."""
    match = _MONTH.fullmatch(value)
    if not match:
        raise ValueError("expected YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def allocated_minutes(
    monthly_minutes: int, start: date, end: date | None, first: date, last: date
) -> int:
    """The assignment's monthly minutes, prorated by the days of the month it covers
    (both ends inclusive); a whole month gives exactly the monthly figure."""
    begin = max(start, first)
    finish = min(end, last) if end is not None else last
    if finish < begin:
        return 0
    covered = (finish - begin).days + 1
    days = (last - first).days + 1
    return round(monthly_minutes * covered / days)
