"""Crisis early warning, pure, on synthetic hourly series: a burst on a quiet account, daily and
weekly rhythms that are not news, a new account, a volume spike without negatives, the floors,
and one warning per episode."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from inbox.crisis import (
    HISTORY_DAYS,
    CrisisSignal,
    HourCount,
    detect,
    new_episode,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# A Tuesday, 20:30 UTC: the default window is 18:00, 19:00 and 20:00 (half gone).
NOW = datetime(2026, 11, 17, 20, 30, tzinfo=UTC)
WINDOW_START = datetime(2026, 11, 17, 18, tzinfo=UTC)

Shape = Callable[[datetime], tuple[int, int]]
"""(total, negative) for an hour."""


def series(
    usual: Shape, *, days: int = HISTORY_DAYS, now: datetime = NOW, current: Shape | None = None
) -> list[HourCount]:
    """`days` days of the usual shape before the 3-hour window ending at `now`'s hour, then
    the window shaped by `current` (the usual shape if None). Empty hours are left out, as a
    GROUP BY would."""
    last = now.replace(minute=0)
    start = last - 2 * HOUR
    counts = []
    hour = start - days * DAY
    while hour <= last:
        shape = current if current is not None and hour >= start else usual
        total, negative = shape(hour)
        if total:
            counts.append(HourCount(hour, total, negative))
        hour += HOUR
    return counts


def flat(total: int, negative: int = 0) -> Shape:
    return lambda _hour: (total, negative)


def evenings(hour: datetime) -> tuple[int, int]:
    """Quiet nights, a lunch bump and busy evenings, every day."""
    if 18 <= hour.hour < 23:
        return 20 + hour.day % 3, 2
    if 11 <= hour.hour < 14:
        return 8, 1
    return (1, 0) if 7 <= hour.hour < 23 else (0, 0)


def tuesday_show(hour: datetime) -> tuple[int, int]:
    """A live show every Tuesday 18:00-21:00 UTC draws a crowd (some of it grumpy)."""
    if hour.weekday() == 1 and 18 <= hour.hour < 21:
        return 100 + hour.day % 5, 15
    return 5, hour.hour % 2


def triggers(signal: CrisisSignal | None) -> tuple[str, ...]:
    return () if signal is None else signal.triggers


CASES = [
    # (name, hours, keyword hits, expected triggers)
    ("quiet and flat, nothing happens", series(flat(2)), 0, ()),
    (
        "flat then a burst of negative comments",
        series(flat(2), current=flat(12, 10)),
        0,
        ("negative", "volume"),
    ),
    (
        "13 negatives in 3 hours, none usually: below the floor",
        series(flat(6), current=lambda h: (6, 5 if h.hour < 20 else 3)),
        0,
        (),
    ),
    (
        "14 negatives in 3 hours, none usually: a burst",
        series(flat(6), current=lambda h: (6, 5 if h.hour < 20 else 4)),
        0,
        ("negative",),
    ),
    ("busy evenings every day are not news", series(evenings), 0, ()),
    (
        "an evening three times busier is",
        series(evenings, current=lambda h: (65, 3)),
        0,
        ("volume",),
    ),
    ("a weekly show is not news", series(tuesday_show), 0, ()),
    (
        "a show five times bigger than usual is",
        series(tuesday_show, current=lambda h: (500, 80)),
        0,
        ("negative", "volume"),
    ),
    ("volume spike with no negatives", series(flat(10, 1), current=flat(60, 0)), 0, ("volume",)),
    ("negatives up, volume as usual", series(flat(40, 2), current=flat(40, 20)), 0, ("negative",)),
    ("a watch-list keyword alone", series(flat(2)), 1, ("keyword",)),
    (
        "a burst and a keyword",
        series(flat(2), current=flat(12, 10)),
        2,
        ("negative", "volume", "keyword"),
    ),
    (
        "a new account's burst: too little history",
        series(flat(2), days=6, current=flat(30, 25)),
        0,
        (),
    ),
    (
        "a new account's keyword still counts",
        series(flat(2), days=3, current=flat(30, 25)),
        1,
        ("keyword",),
    ),
    (
        "a week of history is enough",
        series(flat(2), days=7, current=flat(30, 25)),
        0,
        ("negative", "volume"),
    ),
]


@pytest.mark.parametrize(
    ("hours", "keyword_hits", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_detect(hours: list[HourCount], keyword_hits: int, expected: tuple[str, ...]) -> None:
    assert triggers(detect(hours, now=NOW, keyword_hits=keyword_hits)) == expected


def test_the_figures_of_a_burst() -> None:
    signal = detect(series(flat(2), current=flat(12, 10)), now=NOW)
    assert signal is not None
    assert (signal.window_start, signal.window_end) == (WINDOW_START, WINDOW_START + 3 * HOUR)
    assert signal.trigger == "negative"
    # Previous days' 18:00-21:00: 0 negatives, 6 items, every day. MAD 0, so the scale is the
    # floor of 3: z = (30 - 0) / 3 and (36 - 6) / 3.
    assert signal.negative is not None and signal.volume is not None
    negative, volume = signal.negative, signal.volume
    assert (negative.observed, negative.median, negative.mad, negative.score) == (30, 0, 0, 10)
    assert (volume.observed, volume.median, volume.mad, volume.score) == (36, 6, 0, 10)
    assert negative.surge and volume.surge


def test_a_keyword_signal_on_a_new_account_has_no_figures() -> None:
    signal = detect(series(flat(2), days=2), now=NOW, keyword_hits=1)
    assert signal is not None
    assert (signal.trigger, signal.negative, signal.volume, signal.keyword_hits) == (
        "keyword",
        None,
        None,
        1,
    )


def test_3_am_is_compared_with_3_am() -> None:
    # What is an ordinary evening is a surge in the middle of the night.
    night = datetime(2026, 11, 17, 4, 10, tzinfo=UTC)
    signal = detect(series(evenings, now=night, current=lambda h: (21, 2)), now=night)
    assert triggers(signal) == ("volume",)
    assert signal is not None and signal.volume is not None
    assert signal.volume.median == 0


def test_the_weekly_show_moved_to_wednesday_is_news() -> None:
    wednesday = NOW + DAY
    show = series(tuesday_show, now=wednesday, current=lambda h: (100, 15))
    assert triggers(detect(show, now=wednesday)) == ("negative", "volume")


def test_a_dormant_account_is_quiet_not_new_when_told_when_it_was_connected() -> None:
    # No item for weeks, then a burst: only the burst's hours are in the series.
    burst = series(flat(0), current=flat(30, 25))
    assert detect(burst, now=NOW) is None  # nothing says the silence before was watched
    connected = NOW - 60 * DAY
    signal = detect(burst, now=NOW, since=connected)
    assert triggers(signal) == ("negative", "volume")
    # Connected only five days ago: the silence is too short a history.
    assert detect(burst, now=NOW, since=NOW - 5 * DAY) is None


def test_hours_older_than_the_history_do_not_weigh() -> None:
    old = [HourCount(WINDOW_START - 20 * DAY + n * HOUR, 500, 400) for n in range(24)]
    signal = detect([*old, *series(flat(2), current=flat(12, 10))], now=NOW)
    assert signal is not None and signal.negative is not None
    assert (signal.negative.median, signal.negative.mad) == (0, 0)


def test_the_current_partial_hour_counts() -> None:
    # The burst started at 20:00; at 20:10 its first ten minutes already tip the balance.
    early = NOW.replace(minute=10)
    hours = series(flat(2), now=early, current=lambda h: (40, 38) if h.hour == 20 else (2, 0))
    assert triggers(detect(hours, now=early)) == ("negative", "volume")


def test_a_longer_window() -> None:
    # Six hours of 3 negatives each (18) on a silent account: in a 3-hour window that is 9,
    # below the floor; judged over 6 hours it is a burst.
    now = NOW + 3 * HOUR
    hours = series(flat(2), now=now, current=flat(5, 3))
    hours += [HourCount(WINDOW_START + n * HOUR, 5, 3) for n in range(3)]
    hours = sorted({h.hour: h for h in hours}.values(), key=lambda h: h.hour)
    assert detect(hours, now=now) is None
    assert triggers(detect(hours, now=now, window=6)) == ("negative", "volume")


def test_a_steady_noisy_account_raises_no_alarm() -> None:
    # Four weeks of ordinary noise, judged every hour of the last two.
    rng = random.Random(18)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    counts = []
    for n in range(28 * 24):
        hour = start + n * HOUR
        busy = 9 <= hour.hour < 23
        total = rng.randint(3, 12) if busy else rng.randint(0, 3)
        counts.append(HourCount(hour, total, rng.randint(0, min(total, 2))))
    alarms = []
    for n in range(14 * 24, 28 * 24):
        now = start + n * HOUR + timedelta(minutes=59)
        if (signal := detect(counts[: n + 1], now=now)) is not None:
            alarms.append((now, signal.triggers))
    assert alarms == []


BAD_SERIES = [
    # (name, hours, detect's arguments, words of the error)
    ("naive hour", [HourCount(datetime(2026, 11, 17, 18), 1, 0)], {}, "no time zone"),
    (
        "hour not on the hour",
        [HourCount(WINDOW_START + timedelta(minutes=5), 1, 0)],
        {},
        "not on the hour",
    ),
    ("more negatives than items", [HourCount(WINDOW_START, 1, 2)], {}, "negative <= total"),
    ("negative count", [HourCount(WINDOW_START, -1, -1)], {}, "negative <= total"),
    (
        "hour given twice",
        [HourCount(WINDOW_START, 1, 0), HourCount(WINDOW_START, 2, 0)],
        {},
        "twice",
    ),
    ("an hour after now", [HourCount(WINDOW_START + 3 * HOUR, 1, 0)], {}, "after now"),
    ("window of 0 hours", [], {"window": 0}, "1 to 24"),
    ("window of 25 hours", [], {"window": 25}, "1 to 24"),
    ("negative keyword hits", [], {"keyword_hits": -1}, "keyword_hits"),
    ("naive now", [], {"now": datetime(2026, 11, 17, 20)}, "no time zone"),
]


@pytest.mark.parametrize(
    ("hours", "arguments", "message"),
    [case[1:] for case in BAD_SERIES],
    ids=[case[0] for case in BAD_SERIES],
)
def test_malformed_series_are_refused(
    hours: list[HourCount], arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        detect(hours, **{"now": NOW, **arguments})  # type: ignore[arg-type]


# --- episodes -------------------------------------------------------------------------------------

EPISODES = [
    # (name, last signal, now, quiet hours, new episode?)
    ("never warned", None, NOW, 6, True),
    ("found a minute ago: same crisis", NOW - timedelta(minutes=1), NOW, 6, False),
    ("found 5 h 59 ago: same crisis", NOW - timedelta(hours=5, minutes=59), NOW, 6, False),
    ("quiet for 6 hours: a new one", NOW - 6 * HOUR, NOW, 6, True),
    ("quiet for 2 days", NOW - 2 * DAY, NOW, 6, True),
    ("a longer quiet period asked", NOW - 7 * HOUR, NOW, 12, False),
    ("found 'later' by a worker with a faster clock", NOW + timedelta(seconds=3), NOW, 6, False),
]


@pytest.mark.parametrize(
    ("last", "now", "quiet", "expected"),
    [case[1:] for case in EPISODES],
    ids=[case[0] for case in EPISODES],
)
def test_new_episode(last: datetime | None, now: datetime, quiet: float, expected: bool) -> None:
    assert new_episode(last, now, quiet_hours=quiet) is expected


def test_one_warning_per_episode() -> None:
    # A job runs every 10 minutes through a crisis that lasts 4 hours, then calm for 6 hours,
    # then a second crisis: two warnings, one at the start of each.
    quiet, burst = flat(2), flat(12, 10)
    last_signal_at: datetime | None = None
    warned = []
    start = NOW
    for step in range(0, 16 * 6):
        now = start + step * timedelta(minutes=10)
        in_crisis = now < start + 4 * HOUR or now >= start + 12 * HOUR
        hours = series(quiet, now=now, current=burst if in_crisis else quiet)
        if detect(hours, now=now) is None:
            continue
        if new_episode(last_signal_at, now):
            warned.append(now)
        last_signal_at = now
    assert warned == [start, start + 12 * HOUR]


def test_quiet_hours_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        new_episode(None, NOW, quiet_hours=0)
