"""Anomaly detection, pure: robust z against the previous 28 days on synthetic series; only a
follower drop or an engagement spike is news, flat and short histories, missing days, weekly
rhythms and the window's edges."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta

import pytest

from social import anomalies
from social.anomalies import MIN_HISTORY, THRESHOLD, WATCHED, Anomaly, judge, scan

DAY = date(2026, 8, 20)  # a Thursday

# 40, 45, 50 (x3), 55, 60 each week: median 50, MAD 5 (worked out in test_figures_by_hand).
WEEK = [40, 50, 60, 45, 55, 50, 50]
STEADY = WEEK * 4
# Engagements 90..120: median 105, MAD 10.
BUSY = [100, 120, 90, 110, 105, 95, 115] * 4


# The same weeks with every Tuesday missing.
GAPPY: list[int | None] = [40, None, 60, 45, 55, 50, 50] * 4


CASES = [
    # (name, metric, value, history, expected direction or None)
    ("steady day", "follower_change", 47, STEADY, None),
    ("noisy but usual low", "follower_change", 30, STEADY, None),
    ("sharp follower drop", "follower_change", -20, STEADY, "drop"),
    ("follower loss below zero", "follower_change", -5, STEADY, "drop"),
    ("follower gain is not news", "follower_change", 500, STEADY, None),
    ("engagements as usual", "engagements", 125, BUSY, None),
    ("engagement spike", "engagements", 400, BUSY, "spike"),
    ("engagement dip is not news", "engagements", 0, BUSY, None),
    ("flat zero then one lost", "follower_change", -1, [0] * 28, None),
    ("flat zero then one engagement", "engagements", 1, [0] * 28, None),
    ("flat zero then 13 lost: small in absolute terms", "follower_change", -13, [0] * 28, None),
    ("flat zero then 14 lost", "follower_change", -14, [0] * 28, "drop"),
    ("flat 100 then 140: 40 %, small in relative terms", "engagements", 140, [100] * 28, None),
    ("flat 100 then 150", "engagements", 150, [100] * 28, "spike"),
    ("flat then the same", "engagements", 100, [100] * 28, None),
    ("no figure today", "follower_change", None, STEADY, None),
    ("missing days are ignored", "follower_change", -20, GAPPY, "drop"),
    ("20 known days: too little", "follower_change", -500, [None] * 8 + [50] * 20, None),
    ("21 known days: enough", "follower_change", -500, [None] * 7 + [50] * 21, "drop"),
    ("nothing known", "engagements", 10_000, [None] * 28, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "value", "history", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_judge(
    metric: str, value: int | None, history: list[int | None], expected: str | None
) -> None:
    found = judge(metric, DAY, value, history)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found.direction == expected == WATCHED[metric]
        assert (found.metric, found.day, found.value) == (metric, DAY, value)
        assert abs(found.score) >= THRESHOLD


def figures(anomaly: Anomaly) -> tuple[float, float, float]:
    return anomaly.median, anomaly.mad, round(anomaly.score, 4)


def test_figures_by_hand() -> None:
    # Sorted, the 28 days are 40 x4, 45 x4, 50 x12, 55 x4, 60 x4: the 14th and 15th are 50.
    # Deviations from 50: 0 x12, 5 x8, 10 x8: the 14th and 15th are 5, so MAD = 5.
    # scale = max(1.4826 x 5 = 7.413, 10 % of 50 = 5, 3) = 7.413; z = (-20 - 50) / 7.413.
    found = judge("follower_change", DAY, -20, STEADY)
    assert found is not None
    assert (found.metric, found.day, found.value, found.direction) == (
        "follower_change",
        DAY,
        -20,
        "drop",
    )
    assert figures(found) == (50.0, 5.0, -9.4429)


def test_spike_figures_by_hand() -> None:
    # 90, 95, 100, 105, 110, 115, 120 x4: median 105; deviations 0 x4, 5 x8, 10 x8, 15 x8: MAD 10.
    # scale = max(14.826, 10.5, 3) = 14.826; z = (400 - 105) / 14.826.
    found = judge("engagements", DAY, 400, BUSY)
    assert found is not None
    assert figures(found) == (105.0, 10.0, 19.8975)


def test_flat_history_uses_the_floors() -> None:
    # MAD 0: the scale is 10 % of the median (or 3 when the median is small).
    flat = judge("engagements", DAY, 150, [100] * 28)
    assert flat is not None
    assert figures(flat) == (100.0, 0.0, 5.0)
    zero = judge("follower_change", DAY, -30, [0] * 28)
    assert zero is not None
    assert figures(zero) == (0.0, 0.0, -10.0)


def test_missing_days_do_not_count_towards_the_median() -> None:
    # Without the four 40s the 24 known days are 45 x4, 50 x12, 55 x4, 60 x4: the 12th and 13th
    # are 50; deviations 0 x12, 5 x8, 10 x4: MAD (0 + 5) / 2 = 2.5 (with the 40s counted as 0
    # it would be 5). scale = max(1.4826 x 2.5 = 3.7065, 5, 3) = 5; z = -70 / 5.
    history: list[int | None] = list(STEADY)
    for index in (0, 7, 14, 21):
        history[index] = None
    found = judge("follower_change", DAY, -20, history)
    assert found is not None
    assert figures(found) == (50.0, 2.5, -14.0)


def test_thresholds_can_be_tuned() -> None:
    assert judge("follower_change", DAY, 20, STEADY) is None
    assert judge("follower_change", DAY, 20, STEADY, threshold=3.0) is not None
    short = [50] * 5
    assert judge("follower_change", DAY, -500, short) is None
    assert judge("follower_change", DAY, -500, short, min_history=5) is not None


def test_an_unwatched_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="impressions"):
        judge("impressions", DAY, 1, STEADY)


# --- scan: the series by date ---------------------------------------------------------------


def series_of(
    start: date, figures: dict[str, Sequence[int | None]]
) -> dict[date, dict[str, int | None]]:
    length = max(len(values) for values in figures.values())
    return {
        start + timedelta(days=offset): {
            metric: values[offset] for metric, values in figures.items() if offset < len(values)
        }
        for offset in range(length)
    }


def test_a_steady_noisy_series_raises_no_alarm() -> None:
    rng = random.Random(7)
    start = date(2026, 1, 1)
    days = 150
    series = series_of(
        start,
        {
            "follower_change": [15 + rng.randint(-8, 8) for _ in range(days)],
            "engagements": [200 + rng.randint(-40, 40) for _ in range(days)],
        },
    )
    assert scan(series, [start + timedelta(days=n) for n in range(days)]) == []


def test_scan_flags_the_bad_days_in_order() -> None:
    start = DAY - timedelta(days=28)
    followers = [*STEADY, -20, *STEADY[:3], -300]
    engagements = [*BUSY, 110, *BUSY[:3], 2_000]
    series = series_of(start, {"follower_change": followers, "engagements": engagements})
    drop_day, both_day = DAY, DAY + timedelta(days=4)
    found = scan(series, [both_day, drop_day, both_day, DAY + timedelta(days=1)])
    assert [(a.day, a.metric, a.direction) for a in found] == [
        (drop_day, "follower_change", "drop"),
        (both_day, "engagements", "spike"),
        (both_day, "follower_change", "drop"),
    ]


def test_scan_of_days_without_figures_is_empty() -> None:
    assert scan({}, [DAY, DAY + timedelta(days=1)]) == []
    series = series_of(DAY - timedelta(days=28), {"engagements": BUSY})
    assert scan(series, [DAY]) == []


def test_weekly_rhythm_is_not_news() -> None:
    # Posts on Tuesdays and Thursdays: 300 engagements those days, about 50 otherwise.
    start = DAY - timedelta(days=28)
    posting = [(start + timedelta(days=n)).weekday() in (1, 3) for n in range(28)]
    history = [300 + n % 3 if posts else 50 + n % 5 for n, posts in enumerate(posting)]
    thursday, next_wednesday = DAY, DAY + timedelta(days=6)

    def on(day: date, value: int) -> list[Anomaly]:
        series = series_of(start, {"engagements": history})
        series[day] = {"engagements": value}
        return scan(series, [day])

    assert (thursday.weekday(), next_wednesday.weekday()) == (3, 2)
    assert on(thursday, 310) == []  # an ordinary posting day
    spike = on(thursday, 1_200)  # far above even the posting days
    assert [(a.day, a.direction) for a in spike] == [(thursday, "spike")]
    # Judged against the whole window alone it would have been flagged: the rhythm vetoes it.
    assert spike[0].median < 100
    assert on(next_wednesday, 300)[0].direction == "spike"  # 300 is not a Wednesday's figure


def test_weekend_seasonality_is_not_news() -> None:
    start = date(2026, 3, 2)  # a Monday
    days = 120
    rng = random.Random(3)
    engagements = [
        (160 if (start + timedelta(days=n)).weekday() >= 5 else 100) + rng.randint(-5, 5)
        for n in range(days)
    ]
    followers = [
        (-4 if (start + timedelta(days=n)).weekday() >= 5 else 12) + rng.randint(-2, 2)
        for n in range(days)
    ]
    series = series_of(start, {"engagements": engagements, "follower_change": followers})
    assert scan(series, [start + timedelta(days=n) for n in range(days)]) == []


def test_the_window_is_the_28_days_before(monkeypatch: pytest.MonkeyPatch) -> None:
    start = DAY - timedelta(days=60)
    values = list(range(1, 62))  # day D-60 is 1, ..., DAY is 61
    series = series_of(start, {"follower_change": values})
    seen: list[tuple[str, date, int | None, list[int | None]]] = []

    def spy(metric: str, day: date, value: int | None, history: Sequence[int | None]) -> None:
        seen.append((metric, day, value, list(history)))

    monkeypatch.setattr(anomalies, "judge", spy)
    scan(series, [DAY])
    by_metric = {metric: (day, value, history) for metric, day, value, history in seen}
    assert by_metric["follower_change"] == (DAY, 61, list(range(33, 61)))  # D-28 .. D-1
    assert by_metric["engagements"] == (DAY, None, [None] * 28)


@pytest.mark.parametrize(
    ("first_known", "expected"),
    [(28, True), (29, False)],
    ids=["21 days from D-28 count", "the 29th day before does not"],
)
def test_window_edge(first_known: int, expected: bool) -> None:
    # Three weeks of known days starting `first_known` days before DAY, then nothing until DAY.
    start = DAY - timedelta(days=first_known)
    series = series_of(start, {"follower_change": [50] * MIN_HISTORY})
    series[DAY] = {"follower_change": -500}
    assert bool(scan(series, [DAY])) is expected


def test_old_history_does_not_weigh() -> None:
    # A month of huge figures more than 28 days back would move the median if it counted.
    start = DAY - timedelta(days=60)
    series = series_of(start, {"follower_change": [5_000] * 32 + STEADY + [-20]})
    assert max(series) == DAY
    (found,) = scan(series, [DAY])
    assert (found.median, found.mad) == (50.0, 5.0)
    # And the day judged is not part of its own baseline.
    series[DAY] = {"follower_change": -5_000}
    (found,) = scan(series, [DAY])
    assert (found.median, found.mad, found.value) == (50.0, 5.0, -5_000)
