"""Crisis early warning, pure: is the community of an account (or a brand) suddenly boiling?

Three triggers, judged on the last `window` hours (3 by default, the current partial hour
included so that a surge is seen within minutes rather than at the next whole hour):

- **negative**: many more negative items than usual for these hours;
- **volume**: many more items of any kind than usual (a post gone viral, for good or bad:
  the community manager wants to know either way);
- **keyword**: an item used one of the brand's watch-list words ("boycott", "intoxication").

"Usual" is the series' own recent past, judged with the robust arithmetic of the daily anomaly
detector (`social.anomalies.spread`: median, MAD, floored scale, and its THRESHOLD), so the two
early warnings agree on what "far outside normal" means. The reference is the same hours of the
day on each of the previous 14 days: comments follow a daily rhythm (quiet at night, busy at
lunch and in the evening), so 3 a.m. is compared with 3 a.m. Weekly rhythms (a show every Tuesday
evening that always draws a crowd) are handled like the daily detector handles its posting days:
a window exceptional against the previous days must also be exceptional against the same hours
of the same weekday in the previous weeks (7 and 14 days before), when those are known.

The floors matter even more here than for daily figures: on a small account with no negative
comment in weeks, it takes 14 negative comments within the window (THRESHOLD x ABSOLUTE_FLOOR
= 13.5) before anyone is woken up, and on a busy one about 45 % more than usual (RELATIVE_FLOOR).

Hours are UTC: "the same hours" are 24 hours apart, so for the day after a daylight-saving change
the local rhythm is off by an hour, which the MAD absorbs.

Episodes: a crisis lasts hours, and the detector keeps finding it every time it runs. The caller
records when it last found one (`last_signal_at`, updated on every signal, warned or not), and
warns only when `new_episode` says the series had been quiet for `quiet_hours` before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from social.anomalies import THRESHOLD, Spread, spread

Trigger = Literal["negative", "volume", "keyword"]
TRIGGERS: tuple[Trigger, ...] = ("negative", "volume", "keyword")
"""In the order they are reported: a surge of negative items says the most about a crisis."""

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

HISTORY_DAYS = 14
"""Days of past the current window is compared with: two weeks, recent enough to be "how this
account behaves now", long enough to see each weekday twice."""

MIN_HISTORY_DAYS = 7
"""Previous days needed before surges are judged (a new account, a brand just connected): a
whole week, so that a quiet weekend or one busy day cannot be the whole baseline. Until then
only a watch-list keyword raises a warning."""

WINDOW = 3
"""Hours judged by default: long enough that two angry comments in the same minute are not a
burst, short enough to call the lead while the fire is still small."""

QUIET_HOURS = 6
"""Hours without a signal after which a new one is a new episode, warned again."""


@dataclass(frozen=True)
class HourCount:
    """Items received in one hour (UTC, on the hour) on the account or brand watched."""

    hour: datetime
    total: int
    negative: int
    """Of `total`, the items whose sentiment is negative."""


@dataclass(frozen=True)
class Figures:
    """One measure of the window against the same hours of the previous days."""

    observed: int
    """Items in the window."""
    median: float
    """Usual count for these hours: median over the previous days."""
    mad: float
    """Median absolute deviation of the previous days from `median` (not scaled)."""
    score: float
    """Robust z of `observed` against the previous days."""
    surge: bool
    """Beyond THRESHOLD against the previous days and against the same weekday's, if known."""


@dataclass(frozen=True)
class CrisisSignal:
    triggers: tuple[Trigger, ...]
    """What fired, never empty, in the order of TRIGGERS."""
    window_start: datetime
    """First hour of the window (the items behind the signal arrived from here...)."""
    window_end: datetime
    """...to here, exclusive: the end of the current hour."""
    negative: Figures | None
    """None while the history is too short to judge (MIN_HISTORY_DAYS)."""
    volume: Figures | None
    keyword_hits: int

    @property
    def trigger(self) -> Trigger:
        """The main reason, for a one-line message."""
        return self.triggers[0]


def _on_the_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _checked_hours(hours: Sequence[HourCount]) -> dict[datetime, HourCount]:
    by_hour: dict[datetime, HourCount] = {}
    for count in hours:
        if count.hour.tzinfo is None:
            raise ValueError(f"hour {count.hour} has no time zone")
        if count.hour != _on_the_hour(count.hour):
            raise ValueError(f"hour {count.hour.isoformat()} is not on the hour")
        if not 0 <= count.negative <= count.total:
            raise ValueError(
                f"hour {count.hour.isoformat()}: need 0 <= negative <= total, "
                f"got {count.negative} of {count.total}"
            )
        if count.hour in by_hour:
            raise ValueError(f"hour {count.hour.isoformat()} is given twice")
        by_hour[count.hour] = count
    return by_hour


def _judge(observed: int, daily: Sequence[int], weekly: Sequence[int]) -> Figures:
    usual: Spread = spread(daily)
    score = usual.score(observed)
    surge = score >= THRESHOLD and (not weekly or spread(weekly).score(observed) >= THRESHOLD)
    return Figures(observed, usual.median, usual.mad, score, surge)


def detect(
    hours: Sequence[HourCount],
    *,
    now: datetime,
    window: int = WINDOW,
    keyword_hits: int = 0,
    since: datetime | None = None,
) -> CrisisSignal | None:
    """Whether the last `window` hours up to `now` look like the start of a crisis.

    `hours` holds the counts of the past HISTORY_DAYS days and of the window; an hour that is
    absent had no item (a GROUP BY leaves those out). Older hours are ignored. `since` is when
    counting began (the account's connection): hours before it are unknown, not quiet; by
    default it is the first hour given. `keyword_hits` is how many items of the window used a
    watch-list word. Raises ValueError for a malformed series (naive or unrounded hours,
    repeated hours, negative counts) or a window outside 1..24 hours.
    """
    if now.tzinfo is None:
        raise ValueError("now has no time zone")
    if not 1 <= window <= 24:
        raise ValueError(f"the window is 1 to 24 hours, not {window}")
    if keyword_hits < 0:
        raise ValueError(f"keyword_hits cannot be negative ({keyword_hits})")
    by_hour = _checked_hours(hours)
    current = _on_the_hour(now)
    if any(hour > current for hour in by_hour):
        raise ValueError(f"counts after now ({now.isoformat()}) were given")
    start = current - (window - 1) * HOUR
    first = _on_the_hour(since) if since is not None else min(by_hour, default=start)

    def sums(offset: timedelta) -> tuple[int, int]:
        counts = [by_hour.get(start - offset + n * HOUR) for n in range(window)]
        return (
            sum(c.negative for c in counts if c is not None),
            sum(c.total for c in counts if c is not None),
        )

    # Previous days whose whole window lies after counting began, nearest first.
    known_days = [d for d in range(1, HISTORY_DAYS + 1) if start - d * DAY >= first]
    negative = volume = None
    if len(known_days) >= MIN_HISTORY_DAYS:
        observed_negative, observed_total = sums(timedelta(0))
        past = {d: sums(d * DAY) for d in known_days}
        weeks = [d for d in known_days if d % 7 == 0]
        negative = _judge(
            observed_negative, [past[d][0] for d in known_days], [past[d][0] for d in weeks]
        )
        volume = _judge(
            observed_total, [past[d][1] for d in known_days], [past[d][1] for d in weeks]
        )

    fired = {
        "negative": negative is not None and negative.surge,
        "volume": volume is not None and volume.surge,
        "keyword": keyword_hits > 0,
    }
    triggers = tuple(t for t in TRIGGERS if fired[t])
    if not triggers:
        return None
    return CrisisSignal(
        triggers=triggers,
        window_start=start,
        window_end=current + HOUR,
        negative=negative,
        volume=volume,
        keyword_hits=keyword_hits,
    )


def new_episode(
    last_signal_at: datetime | None, now: datetime, quiet_hours: float = QUIET_HOURS
) -> bool:
    """Whether a signal found at `now` starts a new episode, i.e. deserves a warning.

    `last_signal_at` is when a signal was last found for the same account or brand (None:
    never). Record it on every signal, warned or not, so that a crisis that goes on for a day
    is one warning, and a new one after `quiet_hours` of calm is another. A `last_signal_at`
    after `now` (clocks of two workers) is the same episode.
    """
    if quiet_hours <= 0:
        raise ValueError(f"quiet_hours must be positive, not {quiet_hours}")
    return last_signal_at is None or now - last_signal_at >= timedelta(hours=quiet_hours)
