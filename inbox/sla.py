"""The response-time clock, pure: business time under a client's response policy.

An agency sells "a first answer within 2 business hours": the clock must only run while the
client's business is open, in the client's time zone, and stop on its public holidays. Nothing
here reads the clock or does I/O: `now` is always an argument, so the inbox, the breach job and
the monthly figures all agree on the same arithmetic.

Working time is built day by day (local calendar days in the policy's time zone), so its cost is
O(days) whatever the target: a target of three days across a long holiday does not loop per
minute. Each counted day contributes its windows:

- a working day (a weekday with business hours that is not a public holiday) counts its business
  hours, or the whole day when nights count (`count_nights`);
- a day off (a weekday without hours, or a public holiday) counts nothing, unless weekends count
  (`count_weekends`): then it counts like a working day, with its own hours if it has some (a
  holiday Monday keeps Monday's) or else the first hours of the week (Monday's, usually).

Hours are local wall-clock hours: 09:00-17:00 is eight hours on the days the clocks change too,
and a whole day is 23 or 25 hours on those days. A wall-clock time maps to the first instant at
which the clock reads it or later: a time skipped in spring (02:30 in Toronto) is the instant of
the jump, and a time repeated in autumn is its first occurrence.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

Interval = tuple[time, time]
"""Business hours within one day, local wall clock. An end of 00:00 means midnight at the end of
the day (written "24:00" in JSON), since `time` has no 24:00."""

DayHours = tuple[Interval, ...]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""JSON keys of `hours`, Monday first like `date.weekday()`."""

_OFFICE: DayHours = ((time(9), time(17)),)
DEFAULT_HOURS: tuple[DayHours, ...] = (_OFFICE,) * 5 + ((), ())
"""Monday to Friday, 09:00 to 17:00."""

_MIDNIGHT = time(0)
_DAY = timedelta(days=1)

MAX_SEARCH_DAYS = 366 * 20
"""How far `due_at` looks for working time before giving up: a validated policy always has some
each week, so only an absurd target (decades of business time) gets this far."""


def _end_of(interval: Interval) -> timedelta:
    """The interval's end as time since local midnight (00:00 as an end is 24:00)."""
    end = interval[1]
    if end == _MIDNIGHT:
        return _DAY
    return timedelta(hours=end.hour, minutes=end.minute, seconds=end.second) + timedelta(
        microseconds=end.microsecond
    )


def _since_midnight(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


@functools.lru_cache(maxsize=64)
def _check_holiday_calendar(country: str, subdivision: str | None) -> None:
    """Raise a clear ValueError when the `holidays` library does not know the calendar."""
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"unknown holidays country {country!r} (an ISO 3166 code such as 'CA')")
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country]) or "none"
        raise ValueError(
            f"unknown holidays subdivision {subdivision!r} for {country} (known: {known})"
        )


@functools.lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """A year's public holidays; the library computes a calendar per call, so it is cached."""
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


@dataclass(frozen=True)
class ResponsePolicy:
    """A client's response targets and the business time they are measured in.

    `hours` has one entry per weekday, Monday first: a tuple of (start, end) local times, sorted
    and non-overlapping (they are sorted here). A weekday without intervals is a day off.
    """

    first_response_minutes: int
    next_response_minutes: int
    timezone: str
    hours: tuple[DayHours, ...] = DEFAULT_HOURS
    holidays_country: str | None = "CA"
    holidays_subdivision: str | None = "QC"
    count_nights: bool = False
    count_weekends: bool = False
    at_risk_ratio: float = 0.8
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("first_response_minutes", "next_response_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number of minutes, not {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative (got {value})")
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(
                f"unknown time zone {self.timezone!r} (an IANA name such as 'America/Toronto')"
            ) from None
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "hours", _checked_hours(self.hours))
        if self.holidays_country is None:
            if self.holidays_subdivision is not None:
                raise ValueError("holidays_subdivision needs a holidays_country")
        else:
            _check_holiday_calendar(self.holidays_country, self.holidays_subdivision)
        ratio = self.at_risk_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
            raise ValueError(f"at_risk_ratio must be a fraction in (0, 1], not {ratio!r}")

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResponsePolicy:
        """The policy stored by `to_json` (a JSONB column, an API body); ValueError if invalid."""
        if not isinstance(data, Mapping):
            raise ValueError("a response policy must be a JSON object")
        known = {
            "first_response_minutes",
            "next_response_minutes",
            "timezone",
            "hours",
            "holidays_country",
            "holidays_subdivision",
            "count_nights",
            "count_weekends",
            "at_risk_ratio",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown response policy fields: {', '.join(unknown)}")
        missing = [
            name
            for name in ("first_response_minutes", "next_response_minutes", "timezone")
            if name not in data
        ]
        if missing:
            raise ValueError(f"missing response policy fields: {', '.join(missing)}")
        for name in ("count_nights", "count_weekends"):
            if name in data and not isinstance(data[name], bool):
                raise ValueError(f"{name} must be true or false, not {data[name]!r}")
        for name in ("timezone", "holidays_country", "holidays_subdivision"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string, not {value!r}")
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k != "hours"}
        if "hours" in data:
            kwargs["hours"] = _hours_from_json(data["hours"])
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        return {
            "first_response_minutes": self.first_response_minutes,
            "next_response_minutes": self.next_response_minutes,
            "timezone": self.timezone,
            "hours": {
                day: [[_time_to_json(s, end=False), _time_to_json(e, end=True)] for s, e in spans]
                for day, spans in zip(WEEKDAYS, self.hours, strict=True)
            },
            "holidays_country": self.holidays_country,
            "holidays_subdivision": self.holidays_subdivision,
            "count_nights": self.count_nights,
            "count_weekends": self.count_weekends,
            "at_risk_ratio": self.at_risk_ratio,
        }


def _checked_hours(hours: Any) -> tuple[DayHours, ...]:
    if not isinstance(hours, Sequence) or len(hours) != 7:
        raise ValueError("hours needs one entry per weekday, Monday to Sunday (7 entries)")
    checked: list[DayHours] = []
    for day, spans in zip(WEEKDAYS, hours, strict=True):
        if not isinstance(spans, Sequence):
            raise ValueError(f"hours on {day}: a sequence of (start, end) intervals")
        intervals: list[Interval] = []
        for span in spans:
            if (
                not isinstance(span, Sequence)
                or len(span) != 2
                or not all(isinstance(t, time) for t in span)
            ):
                raise ValueError(f"hours on {day}: each interval is a (start, end) pair of times")
            start, end = span
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(f"hours on {day}: local times, without a time zone")
            if _end_of((start, end)) <= _since_midnight(start):
                raise ValueError(
                    f"hours on {day}: end {_time_to_json(end, end=True)} is not after start "
                    f"{_time_to_json(start, end=False)}"
                )
            intervals.append((start, end))
        intervals.sort(key=lambda i: _since_midnight(i[0]))
        for before, after in itertools.pairwise(intervals):
            if _since_midnight(after[0]) < _end_of(before):
                raise ValueError(
                    f"hours on {day}: intervals overlap ({_span_text(before)} and "
                    f"{_span_text(after)})"
                )
        checked.append(tuple(intervals))
    if not any(checked):
        raise ValueError("hours must give at least one day some business hours")
    return tuple(checked)


def _span_text(span: Interval) -> str:
    return f"{_time_to_json(span[0], end=False)}-{_time_to_json(span[1], end=True)}"


def _time_to_json(t: time, *, end: bool) -> str:
    if end and t == _MIDNIGHT:
        return "24:00"
    if t.second == 0 and t.microsecond == 0:
        return t.isoformat("minutes")
    return t.isoformat()


def _time_from_json(value: Any, *, day: str, end: bool) -> time:
    if not isinstance(value, str):
        raise ValueError(f"hours on {day}: times are strings like '09:00', not {value!r}")
    if end and value in ("24:00", "24:00:00"):
        return _MIDNIGHT
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"hours on {day}: {value!r} is not a time like '09:00'") from None


def _hours_from_json(value: Any) -> tuple[DayHours, ...]:
    if not isinstance(value, Mapping):
        raise ValueError("hours must be an object keyed by weekday ('mon' to 'sun')")
    unknown = sorted(set(value) - set(WEEKDAYS))
    if unknown:
        raise ValueError(f"unknown weekdays in hours: {', '.join(map(str, unknown))}")
    days: list[DayHours] = []
    for day in WEEKDAYS:
        spans = value.get(day, [])
        if not isinstance(spans, list) or not all(
            isinstance(s, list) and len(s) == 2 for s in spans
        ):
            raise ValueError(f"hours on {day}: a list of [start, end] pairs")
        days.append(
            tuple(
                (_time_from_json(s, day=day, end=False), _time_from_json(e, day=day, end=True))
                for s, e in spans
            )
        )
    return tuple(days)


# --- Working time -----------------------------------------------------------------------------


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which the clock in `zone` reads `local` (naive) or later."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first  # it exists; fold=0 is its first occurrence when it is repeated
    # Skipped by a spring change: the clock reads `local` or later from the jump onward. fold=1
    # reads it with the later offset (an instant before the jump), fold=0 with the earlier one
    # (after the jump); the jump lies between, found to the second (tzdata changes are whole).
    before = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = before, first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).replace(tzinfo=None) >= local:
            high = middle
        else:
            low = middle
    return high


def _is_day_off(policy: ResponsePolicy, day: date) -> bool:
    if not policy.hours[day.weekday()]:
        return True
    if policy.holidays_country is None:
        return False
    return day in _holidays(policy.holidays_country, policy.holidays_subdivision, day.year)


def _windows(policy: ResponsePolicy, day: date) -> list[tuple[datetime, datetime]]:
    """The day's counted time as increasing, non-overlapping UTC (start, end) pairs."""
    if _is_day_off(policy, day) and not policy.count_weekends:
        return []
    if policy.count_nights:
        spans: DayHours = ((_MIDNIGHT, _MIDNIGHT),)
    else:
        spans = policy.hours[day.weekday()] or next(h for h in policy.hours if h)
    midnight = datetime.combine(day, _MIDNIGHT)
    windows: list[tuple[datetime, datetime]] = []
    for span in spans:
        start = _to_utc(midnight + _since_midnight(span[0]), policy.zone)
        end = _to_utc(midnight + _end_of(span), policy.zone)
        # Around a change two wall times can land on one instant: never count it twice.
        if windows:
            start = max(start, windows[-1][1])
        if end > start:
            windows.append((start, end))
    return windows


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), not a naive one")
    return moment.astimezone(UTC)


def business_elapsed(policy: ResponsePolicy, start: datetime, end: datetime) -> timedelta:
    """The working time between two aware instants (zero when `end` is not after `start`)."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        return timedelta(0)
    total = timedelta(0)
    # A day's windows lie within its local midnights; the day before is read in case a
    # repeated hour puts `start` before its own day's midnight.
    day = start.astimezone(policy.zone).date() - _DAY
    last = end.astimezone(policy.zone).date()
    while day <= last:
        for window_start, window_end in _windows(policy, day):
            overlap = min(window_end, end) - max(window_start, start)
            if overlap > timedelta(0):
                total += overlap
        day += _DAY
    return total


def due_at(policy: ResponsePolicy, start: datetime, minutes: int) -> datetime:
    """The instant (UTC) at which `minutes` of working time have passed since `start`.

    With 0 minutes it is `start` itself; otherwise it always falls inside working time (an
    item at 16:59 on a Friday with a 60-minute target is due on Monday at 09:59, local).
    """
    if minutes < 0:
        raise ValueError(f"minutes must not be negative (got {minutes})")
    start = _utc(start, "start")
    remaining = timedelta(minutes=minutes)
    if not remaining:
        return start
    first_day = start.astimezone(policy.zone).date() - _DAY
    for offset in range(MAX_SEARCH_DAYS):
        for window_start, window_end in _windows(policy, first_day + offset * _DAY):
            window_start = max(window_start, start)
            available = window_end - window_start
            if available <= timedelta(0):
                continue
            if remaining <= available:
                return window_start + remaining
            remaining -= available
    raise ValueError(f"no {minutes} minutes of working time within {MAX_SEARCH_DAYS} days")


# --- Response states ---------------------------------------------------------------------------


class SlaState(StrEnum):
    within = "within"
    """Unanswered, less than the at-risk share of the target used."""
    at_risk = "at_risk"
    """Unanswered, at least the at-risk share (80 %) of the target used."""
    breached = "breached"
    """Unanswered and the whole target used: the deadline has come."""
    met = "met"
    """Answered in time (at the deadline itself counts as in time)."""
    missed = "missed"
    """Answered after the deadline."""


def sla_state(
    policy: ResponsePolicy,
    started_at: datetime,
    target_minutes: int,
    now: datetime,
    answered_at: datetime | None = None,
) -> SlaState:
    """Where an item's clock stands: `started_at` is when it arrived (or the last reply that
    awaits an answer), `target_minutes` the policy's first or next response target.

    Breached at exactly 100 %: a job scheduled for `due_at` must find the item breached.
    """
    target = timedelta(minutes=target_minutes)
    if answered_at is not None:
        taken = business_elapsed(policy, started_at, answered_at)
        return SlaState.met if taken <= target else SlaState.missed
    used = business_elapsed(policy, started_at, now)
    if used >= target:
        return SlaState.breached
    if used / target >= policy.at_risk_ratio:
        return SlaState.at_risk
    return SlaState.within


# --- Monthly figures ---------------------------------------------------------------------------


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default method)."""
    position = (len(ordered) - 1) * fraction
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    weight = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * weight


def median_and_p90(values: Sequence[float]) -> tuple[float | None, float | None]:
    """The median and 90th percentile of response times (None, None when there are none)."""
    ordered = sorted(float(v) for v in values if not math.isnan(v))
    if not ordered:
        return None, None
    return _percentile(ordered, 0.5), _percentile(ordered, 0.9)
