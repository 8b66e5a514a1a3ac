"""Calendar arithmetic of time tracking, pure, in the agency's timezone.

A day is a local calendar day: it has 23 or 25 hours when the clocks change, and a timer
running across midnight belongs to two days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

_ISO_WEEK = re.compile(r"([0-9]{4})-W(0[1-9]|[1-4][0-9]|5[0-3])")

FORGOTTEN_AFTER = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class DayPiece:
    day: date
    started_at: datetime
    minutes: int


def local_midnight(day: date, timezone: str) -> datetime:
    """In UTC: aware datetimes sharing one tzinfo subtract as wall-clock times, which would
    make every day 24 hours long."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def day_minutes(day: date, timezone: str) -> int:
    """How many minutes the local day really has (1380, 1440 or 1500 where DST applies)."""
    start = local_midnight(day, timezone)
    end = local_midnight(day + timedelta(days=1), timezone)
    return int((end - start).total_seconds() // 60)


def local_day(at: datetime, timezone: str) -> date:
    return at.astimezone(ZoneInfo(timezone)).date()


def split_by_local_day(start: datetime, end: datetime, timezone: str) -> list[DayPiece]:
    """Cut [start, end) at each local midnight. Minutes are rounded on the whole span so the
    pieces add up to the rounded total; a piece that rounds to nothing is dropped."""
    if end <= start:
        return []
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    cuts = [start]
    day = local_day(start, timezone) + timedelta(days=1)
    while True:
        midnight = local_midnight(day, timezone)
        if midnight >= end:
            break
        cuts.append(midnight)
        day += timedelta(days=1)
    cuts.append(end)

    def rounded(at: datetime) -> int:  # half a minute counts, as money rounds half up
        return (2 * int((at - start).total_seconds()) + 60) // 120

    pieces: list[DayPiece] = []
    for begin, finish in pairwise(cuts):
        minutes = rounded(finish) - rounded(begin)
        if minutes > 0:
            pieces.append(DayPiece(local_day(begin, timezone), begin, minutes))
    return pieces


def parse_iso_week(value: str) -> tuple[date, date]:
    """'2026-W47' -> (Monday, Sunday). Refuses weeks a year does not have (W53)."""
    match = _ISO_WEEK.fullmatch(value)
    if not match:
        raise ValueError("expected an ISO week such as 2026-W47")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError as exc:
        raise ValueError(f"{year} has no week {week}") from exc
    return monday, monday + timedelta(days=6)


def iso_week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
