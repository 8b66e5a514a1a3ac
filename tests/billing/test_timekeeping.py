"""Time-tracking calendar arithmetic in the agency's timezone: real day lengths across DST,
timer spans cut at local midnight, ISO weeks.

2026 clock changes: America/Montreal 8 March (EST -5 -> EDT -4) and 1 November (back to EST);
Europe/Paris 29 March (CET +1 -> CEST +2) and 25 October (back to CET).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from billing.budgets.timekeeping import (
    day_minutes,
    iso_week_of,
    local_day,
    parse_iso_week,
    split_by_local_day,
)

MTL = "America/Montreal"
PARIS = "Europe/Paris"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "timezone", "expected"),
    [
        pytest.param(date(2026, 3, 7), MTL, 1440, id="montreal-day-before-spring-forward"),
        pytest.param(date(2026, 3, 8), MTL, 1380, id="montreal-spring-forward-23h"),
        pytest.param(date(2026, 3, 9), MTL, 1440, id="montreal-day-after-spring-forward"),
        pytest.param(date(2026, 7, 1), MTL, 1440, id="montreal-summer"),
        pytest.param(date(2026, 10, 31), MTL, 1440, id="montreal-day-before-fall-back"),
        pytest.param(date(2026, 11, 1), MTL, 1500, id="montreal-fall-back-25h"),
        pytest.param(date(2026, 11, 2), MTL, 1440, id="montreal-day-after-fall-back"),
        pytest.param(date(2026, 3, 29), PARIS, 1380, id="paris-spring-forward-23h"),
        pytest.param(date(2026, 10, 25), PARIS, 1500, id="paris-fall-back-25h"),
        pytest.param(date(2026, 3, 8), PARIS, 1440, id="paris-on-montreals-change"),
        pytest.param(date(2026, 11, 1), PARIS, 1440, id="paris-on-montreals-fall-back"),
        pytest.param(date(2026, 3, 29), MTL, 1440, id="montreal-on-paris-change"),
        pytest.param(date(2026, 3, 8), "UTC", 1440, id="utc-never-changes"),
    ],
)
def test_day_minutes(day: date, timezone: str, expected: int) -> None:
    assert day_minutes(day, timezone) == expected


@pytest.mark.parametrize(
    ("at", "timezone", "expected"),
    [
        pytest.param(utc(2026, 11, 1, 3, 30), MTL, date(2026, 10, 31), id="2330-on-oct-31-mtl"),
        pytest.param(utc(2026, 11, 1, 4, 30), MTL, date(2026, 11, 1), id="0030-on-nov-1-mtl"),
        pytest.param(utc(2026, 1, 1, 4, 59), MTL, date(2025, 12, 31), id="2359-new-years-eve"),
        pytest.param(utc(2026, 1, 1, 5, 0), MTL, date(2026, 1, 1), id="midnight-new-year-mtl"),
        pytest.param(utc(2026, 3, 31, 22, 30), PARIS, date(2026, 4, 1), id="0030-apr-1-paris"),
        pytest.param(utc(2026, 2, 28, 23, 30), PARIS, date(2026, 3, 1), id="0030-mar-1-paris"),
        pytest.param(utc(2026, 12, 31, 22, 59), PARIS, date(2026, 12, 31), id="2359-dec-31-paris"),
        pytest.param(
            datetime(2026, 10, 31, 23, 30, tzinfo=ZoneInfo(MTL)),
            MTL,
            date(2026, 10, 31),
            id="montreal-wall-clock-input",
        ),
        pytest.param(
            datetime(2026, 10, 31, 23, 30, tzinfo=ZoneInfo(MTL)),
            PARIS,
            date(2026, 11, 1),
            id="same-instant-is-next-day-in-paris",
        ),
    ],
)
def test_local_day(at: datetime, timezone: str, expected: date) -> None:
    assert local_day(at, timezone) == expected


# Each expected piece: (local day, started at, minutes).
@pytest.mark.parametrize(
    ("start", "end", "timezone", "expected"),
    [
        pytest.param(
            utc(2026, 11, 10, 19),  # 14:00 EST
            utc(2026, 11, 10, 20, 30),  # 15:30 EST
            MTL,
            [(date(2026, 11, 10), utc(2026, 11, 10, 19), 90)],
            id="within-one-day",
        ),
        pytest.param(
            utc(2026, 11, 11, 4),  # 10 Nov 23:00 EST
            utc(2026, 11, 11, 6, 30),  # 11 Nov 01:30 EST
            MTL,
            [
                (date(2026, 11, 10), utc(2026, 11, 11, 4), 60),
                (date(2026, 11, 11), utc(2026, 11, 11, 5), 90),
            ],
            id="across-midnight",
        ),
        pytest.param(
            utc(2026, 11, 1, 3, 30),  # 31 Oct 23:30 EDT
            utc(2026, 11, 1, 4, 45),  # 1 Nov 00:45 EDT
            MTL,
            [
                (date(2026, 10, 31), utc(2026, 11, 1, 3, 30), 30),
                (date(2026, 11, 1), utc(2026, 11, 1, 4), 45),
            ],
            id="across-month-end-montreal",
        ),
        pytest.param(
            datetime(2026, 10, 31, 23, 30, tzinfo=ZoneInfo(MTL)),
            datetime(2026, 11, 1, 0, 45, tzinfo=ZoneInfo(MTL)),
            MTL,
            [
                (date(2026, 10, 31), utc(2026, 11, 1, 3, 30), 30),
                (date(2026, 11, 1), utc(2026, 11, 1, 4), 45),
            ],
            id="wall-clock-inputs",
        ),
        pytest.param(
            utc(2026, 11, 1, 4, 30),  # 00:30 EDT
            utc(2026, 11, 1, 8, 30),  # 03:30 EST: the clock showed 01:xx twice
            MTL,
            [(date(2026, 11, 1), utc(2026, 11, 1, 4, 30), 240)],
            id="through-fall-back-counts-real-time",
        ),
        pytest.param(
            utc(2026, 11, 1, 4),  # 1 Nov 00:00 EDT
            utc(2026, 11, 2, 5),  # 2 Nov 00:00 EST
            MTL,
            [(date(2026, 11, 1), utc(2026, 11, 1, 4), 1500)],
            id="whole-25-hour-day",
        ),
        pytest.param(
            utc(2026, 3, 8, 5),  # 8 Mar 00:00 EST
            utc(2026, 3, 9, 4),  # 9 Mar 00:00 EDT
            MTL,
            [(date(2026, 3, 8), utc(2026, 3, 8, 5), 1380)],
            id="whole-23-hour-day",
        ),
        pytest.param(
            utc(2026, 3, 8, 3),  # 7 Mar 22:00 EST
            utc(2026, 3, 8, 8),  # 8 Mar 04:00 EDT
            MTL,
            [
                (date(2026, 3, 7), utc(2026, 3, 8, 3), 120),
                (date(2026, 3, 8), utc(2026, 3, 8, 5), 180),
            ],
            id="across-midnight-and-spring-forward",
        ),
        pytest.param(
            utc(2026, 11, 10, 3),  # 9 Nov 22:00 EST
            utc(2026, 11, 12, 7),  # 12 Nov 02:00 EST
            MTL,
            [
                (date(2026, 11, 9), utc(2026, 11, 10, 3), 120),
                (date(2026, 11, 10), utc(2026, 11, 10, 5), 1440),
                (date(2026, 11, 11), utc(2026, 11, 11, 5), 1440),
                (date(2026, 11, 12), utc(2026, 11, 12, 5), 120),
            ],
            id="several-days",
        ),
        pytest.param(
            utc(2026, 10, 24, 21),  # 24 Oct 23:00 CEST
            utc(2026, 10, 26, 0),  # 26 Oct 01:00 CET
            PARIS,
            [
                (date(2026, 10, 24), utc(2026, 10, 24, 21), 60),
                (date(2026, 10, 25), utc(2026, 10, 24, 22), 1500),
                (date(2026, 10, 26), utc(2026, 10, 25, 23), 60),
            ],
            id="paris-across-fall-back",
        ),
        pytest.param(
            utc(2026, 3, 28, 22, 30),  # 28 Mar 23:30 CET
            utc(2026, 3, 29, 1, 30),  # 29 Mar 03:30 CEST
            PARIS,
            [
                (date(2026, 3, 28), utc(2026, 3, 28, 22, 30), 30),
                (date(2026, 3, 29), utc(2026, 3, 28, 23), 150),
            ],
            id="paris-across-spring-forward",
        ),
        pytest.param(
            utc(2026, 12, 31, 22, 50),  # 31 Dec 23:50 CET
            utc(2026, 12, 31, 23, 20),  # 1 Jan 00:20 CET
            PARIS,
            [
                (date(2026, 12, 31), utc(2026, 12, 31, 22, 50), 10),
                (date(2027, 1, 1), utc(2026, 12, 31, 23), 20),
            ],
            id="paris-new-year",
        ),
        pytest.param(
            utc(2026, 11, 11, 3),  # 10 Nov 22:00 EST
            utc(2026, 11, 11, 5),  # 11 Nov 00:00 EST
            MTL,
            [(date(2026, 11, 10), utc(2026, 11, 11, 3), 120)],
            id="ending-exactly-at-midnight",
        ),
        pytest.param(
            utc(2026, 11, 11, 5),  # 11 Nov 00:00 EST
            utc(2026, 11, 11, 6),
            MTL,
            [(date(2026, 11, 11), utc(2026, 11, 11, 5), 60)],
            id="starting-exactly-at-midnight",
        ),
        pytest.param(
            utc(2026, 11, 11, 4, 59, 20),  # 40 s before midnight
            utc(2026, 11, 11, 5, 0, 40),  # 40 s after: 80 s round to 1 minute, not 1 + 1
            MTL,
            [(date(2026, 11, 10), utc(2026, 11, 11, 4, 59, 20), 1)],
            id="rounded-on-the-whole-span",
        ),
        pytest.param(
            utc(2026, 11, 11, 4, 0, 20),  # 10 Nov 23:00:20 EST
            utc(2026, 11, 11, 5, 29, 55),  # 11 Nov 00:29:55: 89 min 35 s -> 90
            MTL,
            [
                (date(2026, 11, 10), utc(2026, 11, 11, 4, 0, 20), 60),  # 59 min 40 s
                (date(2026, 11, 11), utc(2026, 11, 11, 5), 30),
            ],
            id="pieces-add-up-to-the-rounded-total",
        ),
        pytest.param(
            utc(2026, 11, 10, 19), utc(2026, 11, 10, 19, 0, 20), MTL, [], id="twenty-seconds"
        ),
        pytest.param(utc(2026, 11, 10, 19), utc(2026, 11, 10, 19), MTL, [], id="zero-span"),
        pytest.param(utc(2026, 11, 10, 20), utc(2026, 11, 10, 19), MTL, [], id="negative-span"),
    ],
)
def test_split_by_local_day(
    start: datetime,
    end: datetime,
    timezone: str,
    expected: list[tuple[date, datetime, int]],
) -> None:
    pieces = split_by_local_day(start, end, timezone)

    assert [(p.day, p.started_at, p.minutes) for p in pieces] == expected


@pytest.mark.parametrize(
    ("value", "monday", "sunday"),
    [
        pytest.param("2026-W47", date(2026, 11, 16), date(2026, 11, 22), id="2026-W47"),
        pytest.param("2026-W10", date(2026, 3, 2), date(2026, 3, 8), id="2026-W10"),
        pytest.param("2026-W01", date(2025, 12, 29), date(2026, 1, 4), id="W01-starts-in-2025"),
        pytest.param("2026-W53", date(2026, 12, 28), date(2027, 1, 3), id="2026-has-a-W53"),
        pytest.param("2020-W53", date(2020, 12, 28), date(2021, 1, 3), id="2020-has-a-W53"),
        pytest.param("2025-W01", date(2024, 12, 30), date(2025, 1, 5), id="2025-W01"),
        pytest.param("2027-W01", date(2027, 1, 4), date(2027, 1, 10), id="2027-W01"),
        pytest.param("2028-W09", date(2028, 2, 28), date(2028, 3, 5), id="across-leap-day"),
    ],
)
def test_parse_iso_week(value: str, monday: date, sunday: date) -> None:
    assert parse_iso_week(value) == (monday, sunday)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("2025-W53", "2025 has no week 53", id="2025-has-no-W53"),
        pytest.param("2027-W53", "2027 has no week 53", id="2027-has-no-W53"),
        pytest.param("2026-W00", "expected an ISO week", id="week-zero"),
        pytest.param("2026-W54", "expected an ISO week", id="week-54"),
        pytest.param("2026-W7", "expected an ISO week", id="one-digit-week"),
        pytest.param("2026W47", "expected an ISO week", id="no-dash"),
        pytest.param("2026-w47", "expected an ISO week", id="lower-case-w"),
        pytest.param("2026-47", "expected an ISO week", id="no-W"),
        pytest.param("26-W47", "expected an ISO week", id="two-digit-year"),
        pytest.param("2026-W47-1", "expected an ISO week", id="with-weekday"),
        pytest.param(" 2026-W47", "expected an ISO week", id="leading-space"),
        pytest.param("2026-W47\n", "expected an ISO week", id="trailing-newline"),
        pytest.param("2026-W4a", "expected an ISO week", id="letter-in-week"),
        pytest.param("２０２６-W47", "expected an ISO week", id="full-width-digits"),
        pytest.param("", "expected an ISO week", id="empty"),
        pytest.param("0000-W01", "has no week 1", id="year-zero"),
    ],
)
def test_parse_iso_week_refuses(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_iso_week(value)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(date(2026, 11, 16), "2026-W47", id="monday"),
        pytest.param(date(2026, 11, 22), "2026-W47", id="sunday"),
        pytest.param(date(2026, 3, 2), "2026-W10", id="zero-padded-no-more"),
        pytest.param(date(2026, 1, 4), "2026-W01", id="zero-padded"),
        pytest.param(date(2025, 12, 29), "2026-W01", id="december-in-next-years-W01"),
        pytest.param(date(2026, 1, 1), "2026-W01", id="new-years-day-2026"),
        pytest.param(date(2026, 12, 28), "2026-W53", id="W53-monday"),
        pytest.param(date(2027, 1, 3), "2026-W53", id="january-in-last-years-W53"),
        pytest.param(date(2027, 1, 4), "2027-W01", id="2027-W01-monday"),
        pytest.param(date(2024, 12, 31), "2025-W01", id="new-years-eve-2024"),
    ],
)
def test_iso_week_of(day: date, expected: str) -> None:
    assert iso_week_of(day) == expected
