"""Early warning, pure: a day whose figure is far outside the account's recent behaviour.

A community manager wants to hear about a follower drop or an engagement spike before the client
does, and not about ordinary noise. "Recent behaviour" is measured robustly, with the median and
the median absolute deviation (MAD) of the previous 28 days, so that one earlier bad day (or a
previous crisis) does not hide the next one the way a mean and standard deviation would.

    robust z = (value - median) / scale,  scale = max(1.4826 * MAD, 10 % of |median|, 3)

1.4826 * MAD estimates the standard deviation of normal noise. The two floors keep a flat series
(MAD 0) from turning every small move into an alarm: a move must be large both in absolute terms
(with z >= 4.5, a move of 13 or less is never news) and relative to the usual level (45 % of it).

Weekly rhythms are not news either: many accounts post on set days, so engagements are high every
Tuesday. A day that is exceptional against the whole window is therefore also judged against the
same weekday of the previous weeks, and is only reported when it is exceptional against both.
The figures reported (median, MAD, score) are those of the whole window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median
from typing import Literal

Direction = Literal["drop", "spike"]

WATCHED: dict[str, Direction] = {"follower_change": "drop", "engagements": "spike"}
"""The metrics judged and the only direction that is news for each: gaining followers or losing
engagement is not an emergency."""

WINDOW = 28
"""Days of history: four whole weeks, so each weekday weighs the same in the median."""

THRESHOLD = 4.5
"""|robust z| from which a day is an anomaly. Iglewicz and Hoaglin's 3.5 is meant for labelling
outliers in one sample; here the median and MAD come from only 28 points, so the scale is often
underestimated and 3.5 fires far more often than the normal tail suggests. Simulated Gaussian and
Poisson accounts gave 17 to 31 false alarms per 10,000 days per metric at 3.5 and 3 to 6 at
4.5 (once in five to nine years per account and metric), while a real crisis (a loss of hundreds
of followers, engagements several times the usual) scores well above 10."""

MIN_HISTORY = 21
"""Known days needed before judging (a new account, a failed backfill): three weeks, so that one
unusual week cannot be the median and each weekday has been seen the SAME_WEEKDAY_MIN times the
weekly-rhythm check needs; with two weeks, a new account's first quiet weekend was an alarm."""

MAD_TO_SIGMA = 1.4826
"""1 / Φ⁻¹(3/4): makes the MAD estimate the standard deviation of normally distributed noise."""

RELATIVE_FLOOR = 0.10
"""The scale is at least this fraction of |median|: on a flat series, a move must be close to half
the usual level (THRESHOLD x 10 % = 45 %) before it is flagged."""

ABSOLUTE_FLOOR = 3.0
"""The scale is at least this many units: a flat zero history followed by a handful of followers
lost or engagements gained is not an alarm; thirteen or fewer never is (THRESHOLD x 3 = 13.5)."""

SAME_WEEKDAY_MIN = 3
"""Same-weekday points needed to call a figure "the usual for this weekday": seen on at least
three of the last four such days it is a rhythm, not a coincidence."""


@dataclass(frozen=True)
class Anomaly:
    metric: str
    day: date
    value: int
    median: float
    """Of the known values of the window before `day`."""
    mad: float
    """Median absolute deviation from `median`, same values (not scaled by 1.4826)."""
    score: float
    """Robust z: (value - median) / scale; negative for a drop."""
    direction: Direction


@dataclass(frozen=True)
class Spread:
    """The usual level of a set of figures and how far they usually stray from it."""

    median: float
    mad: float
    """Median absolute deviation from `median` (not scaled by 1.4826)."""
    scale: float
    """max(1.4826 x MAD, RELATIVE_FLOOR x |median|, ABSOLUTE_FLOOR): what one unit of z is."""

    def score(self, value: float) -> float:
        """Robust z of `value`: (value - median) / scale."""
        return (value - self.median) / self.scale


def spread(values: Sequence[int]) -> Spread:
    """Median, MAD and floored scale of `values` (at least one). Public so that other early
    warnings (the inbox's crisis detector, on hourly counts) judge with the same arithmetic."""
    centre = float(median(values))
    mad = float(median(abs(v - centre) for v in values))
    scale = max(MAD_TO_SIGMA * mad, RELATIVE_FLOOR * abs(centre), ABSOLUTE_FLOOR)
    return Spread(centre, mad, scale)


def _beyond(score: float, direction: Direction, threshold: float) -> bool:
    return score <= -threshold if direction == "drop" else score >= threshold


def judge(
    metric: str,
    day: date,
    value: int | None,
    history: Sequence[int | None],
    *,
    threshold: float = THRESHOLD,
    min_history: int = MIN_HISTORY,
) -> Anomaly | None:
    """Whether `value` of `metric` on `day` is an anomaly in the metric's watched direction.

    `history` holds one entry per day for the days just before `day`, oldest first, the last
    being the day before; None marks a day with no figure. Positions matter (they give the
    weekday), so keep the None entries rather than dropping missing days. All of `history` is
    used: pass the window you mean (`scan` passes 28 days).

    Raises ValueError for a metric that is not in WATCHED.
    """
    if metric not in WATCHED:
        raise ValueError(f"{metric!r} is not a watched metric ({', '.join(WATCHED)})")
    direction = WATCHED[metric]
    known = [v for v in history if v is not None]
    if value is None or len(known) < min_history:
        return None
    window = spread(known)
    score = window.score(value)
    if not _beyond(score, direction, threshold):
        return None
    # Exceptional against the month but ordinary for this weekday (a posting day) is a rhythm,
    # not news. history[-7] is a week before `day`, history[-14] two weeks, ...
    same_weekday = [v for v in history[::-1][6::7] if v is not None]
    if len(same_weekday) >= SAME_WEEKDAY_MIN:
        usual = spread(same_weekday)
        if not _beyond(usual.score(value), direction, threshold):
            return None
    return Anomaly(
        metric=metric,
        day=day,
        value=value,
        median=window.median,
        mad=window.mad,
        score=score,
        direction=direction,
    )


def scan(
    series: Mapping[date, Mapping[str, int | None]],
    days: Iterable[date],
    *,
    window: int = WINDOW,
) -> list[Anomaly]:
    """Judge each watched metric of each of `days` against the `window` days before it.

    `series` maps a day to its figures by metric; a day or metric absent from it counts as
    missing. The result is ordered by day, then metric name.
    """
    found: list[Anomaly] = []
    none: Mapping[str, int | None] = {}
    metrics = sorted(WATCHED)
    for day in sorted(set(days)):
        # The window's days looked up once for all metrics: the sync judges every account.
        before = [series.get(day - timedelta(days=offset), none) for offset in range(window, 0, -1)]
        figures = series.get(day, none)
        for metric in metrics:
            history = [row.get(metric) for row in before]
            anomaly = judge(metric, day, figures.get(metric), history)
            if anomaly is not None:
                found.append(anomaly)
    return found
