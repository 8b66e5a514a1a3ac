"""The response-time clock, pure: deadlines and elapsed business time for a Montréal client
across weekends, Québec's holidays and Toronto's clock changes; nights and weekends counted or
not; the states an agent sees (79 %, 80 %, 100 %, answered in time or late); the stored JSON and
its validation; the monthly percentiles; and a property test that deadlines and elapsed time
agree. All dates are literal (2026: 24 June is a Wednesday, the clocks change on 8 March and
1 November)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inbox.sla import (
    DEFAULT_HOURS,
    ResponsePolicy,
    SlaState,
    business_elapsed,
    due_at,
    median_and_p90,
    sla_state,
)

MONTREAL = ZoneInfo("America/Toronto")  # Montréal keeps Toronto's clock


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A Montréal wall-clock time as the UTC instant the application stores."""
    return datetime(y, mo, d, h, mi, tzinfo=MONTREAL).astimezone(UTC)


def hours(**days: list[tuple[str, str]]) -> tuple[tuple[tuple[time, time], ...], ...]:
    """Weekly hours from e.g. mon=[("09:00", "17:00")]; "24:00" ends at midnight."""

    def parse(text: str) -> time:
        return time(0) if text == "24:00" else time.fromisoformat(text)

    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return tuple(tuple((parse(s), parse(e)) for s, e in days.get(n, [])) for n in names)


OFFICE = ResponsePolicy(60, 240, "America/Toronto")  # Québec holidays, Mon-Fri 09:00-17:00
NIGHTS = replace(OFFICE, count_nights=True)
WEEKENDS = replace(OFFICE, count_weekends=True)
ALWAYS = replace(OFFICE, count_nights=True, count_weekends=True)
ONTARIO = replace(OFFICE, holidays_subdivision="ON")
NO_HOLIDAYS = replace(OFFICE, holidays_country=None, holidays_subdivision=None)
WEEKDAY = [("09:00", "17:00")]
LUNCH = replace(
    OFFICE, hours=hours(**{d: [("09:00", "12:00"), ("13:00", "17:00")] for d in ("mon", "tue")})
)
# Hours that straddle the small hours when the clocks change (a Sunday night shift).
SMALL_HOURS = replace(OFFICE, hours=hours(mon=WEEKDAY, tue=WEEKDAY, sun=[("01:00", "04:00")]))
OPENS_IN_SKIPPED_HOUR = replace(OFFICE, hours=hours(mon=WEEKDAY, sun=[("02:30", "04:00")]))


DUE_CASES = [
    # (id, policy, arrival (local), target minutes, due (local))
    ("friday 16:59 due monday 09:59", OFFICE, (2026, 12, 4, 16, 59), 60, (2026, 12, 7, 9, 59)),
    ("friday 16:59 before labour day", OFFICE, (2026, 9, 4, 16, 59), 60, (2026, 9, 8, 9, 59)),
    ("fete nationale skipped", OFFICE, (2026, 6, 23, 16, 30), 60, (2026, 6, 25, 9, 30)),
    ("24 june works in ontario", ONTARIO, (2026, 6, 23, 16, 30), 60, (2026, 6, 24, 9, 30)),
    ("canada day skipped", OFFICE, (2026, 6, 30, 16, 0), 120, (2026, 7, 2, 10, 0)),
    ("christmas and weekend skipped", OFFICE, (2026, 12, 24, 16, 0), 120, (2026, 12, 28, 10, 0)),
    ("patriotes day skipped", OFFICE, (2026, 5, 15, 16, 0), 120, (2026, 5, 19, 10, 0)),
    ("no holiday calendar", NO_HOLIDAYS, (2026, 6, 23, 16, 30), 60, (2026, 6, 24, 9, 30)),
    ("saturday arrival waits", OFFICE, (2026, 12, 5, 10, 0), 60, (2026, 12, 7, 10, 0)),
    ("early arrival waits", OFFICE, (2026, 12, 1, 7, 0), 30, (2026, 12, 1, 9, 30)),
    ("evening arrival next morning", OFFICE, (2026, 12, 1, 20, 0), 60, (2026, 12, 2, 10, 0)),
    ("ends at closing time", OFFICE, (2026, 12, 1, 9, 0), 3 * 480, (2026, 12, 3, 17, 0)),
    ("3 days over christmas", OFFICE, (2026, 12, 23, 12, 0), 3 * 480, (2026, 12, 29, 12, 0)),
    ("lunch not counted", LUNCH, (2026, 12, 1, 11, 30), 60, (2026, 12, 1, 13, 30)),
    ("nights: evening", NIGHTS, (2026, 12, 1, 20, 0), 60, (2026, 12, 1, 21, 0)),
    ("nights: friday 16:59", NIGHTS, (2026, 12, 4, 16, 59), 60, (2026, 12, 4, 17, 59)),
    ("nights: not weekend", NIGHTS, (2026, 12, 4, 23, 30), 60, (2026, 12, 7, 0, 30)),
    ("weekends: friday 16:59", WEEKENDS, (2026, 12, 4, 16, 59), 60, (2026, 12, 5, 9, 59)),
    ("weekends: saturday", WEEKENDS, (2026, 12, 5, 8, 0), 60, (2026, 12, 5, 10, 0)),
    ("weekends: holiday counts", WEEKENDS, (2026, 6, 23, 16, 30), 60, (2026, 6, 24, 9, 30)),
    ("24/7: friday 16:59", ALWAYS, (2026, 12, 4, 16, 59), 60, (2026, 12, 4, 17, 59)),
    ("24/7: saturday", ALWAYS, (2026, 12, 5, 10, 0), 60, (2026, 12, 5, 11, 0)),
    ("24/7: christmas", ALWAYS, (2026, 12, 24, 23, 0), 120, (2026, 12, 25, 1, 0)),
    ("dst spring: fri to mon", OFFICE, (2026, 3, 6, 16, 0), 120, (2026, 3, 9, 10, 0)),
    ("dst autumn: fri to mon", OFFICE, (2026, 10, 30, 16, 0), 120, (2026, 11, 2, 10, 0)),
    ("dst spring: 24/7 loses 1h", ALWAYS, (2026, 3, 7, 23, 0), 240, (2026, 3, 8, 4, 0)),
    ("dst autumn: 24/7 gains 1h", ALWAYS, (2026, 10, 31, 23, 0), 240, (2026, 11, 1, 2, 0)),
    ("dst spring: sunday 8h", WEEKENDS, (2026, 3, 8, 9, 0), 480, (2026, 3, 8, 17, 0)),
    ("dst autumn: sunday 8h", WEEKENDS, (2026, 11, 1, 9, 0), 480, (2026, 11, 1, 17, 0)),
]


@pytest.mark.parametrize(
    ("policy", "arrival", "minutes", "due"),
    [pytest.param(*case[1:], id=case[0]) for case in DUE_CASES],
)
def test_due_at(
    policy: ResponsePolicy,
    arrival: tuple[int, ...],
    minutes: int,
    due: tuple[int, ...],
) -> None:
    deadline = due_at(policy, local(*arrival), minutes)
    assert deadline.tzinfo is UTC
    wall = deadline.astimezone(MONTREAL)  # what the agent's screen shows
    assert (wall.year, wall.month, wall.day, wall.hour, wall.minute) == due
    assert deadline == local(*due)


ELAPSED_CASES = [
    # (id, policy, start (local), end (local), business hours)
    ("ordinary week", OFFICE, (2026, 11, 30), (2026, 12, 7), 40),
    ("fete nationale week", OFFICE, (2026, 6, 22), (2026, 6, 29), 32),
    ("canada day week", OFFICE, (2026, 6, 29), (2026, 7, 6), 32),
    ("labour day week", OFFICE, (2026, 9, 7), (2026, 9, 14), 32),
    ("christmas week", OFFICE, (2026, 12, 21), (2026, 12, 28), 32),
    ("ontario works 24 june", ONTARIO, (2026, 6, 22), (2026, 6, 29), 40),
    ("no holiday calendar", NO_HOLIDAYS, (2026, 12, 21), (2026, 12, 28), 40),
    ("weekend", OFFICE, (2026, 12, 4, 17), (2026, 12, 7, 9), 0),
    ("saturday to monday 10:00", OFFICE, (2026, 12, 5, 10), (2026, 12, 7, 10), 1),
    ("nights counted: tuesday", NIGHTS, (2026, 12, 1), (2026, 12, 2), 24),
    ("nights not counted: tuesday", OFFICE, (2026, 12, 1), (2026, 12, 2), 8),
    ("nights counted: not weekend", NIGHTS, (2026, 12, 4), (2026, 12, 7), 24),
    ("nights counted: not holiday", NIGHTS, (2026, 6, 24), (2026, 6, 25), 0),
    ("weekends counted", WEEKENDS, (2026, 12, 4), (2026, 12, 7), 24),
    ("weekends not counted", OFFICE, (2026, 12, 4), (2026, 12, 7), 8),
    ("weekends counted: holiday", WEEKENDS, (2026, 6, 24), (2026, 6, 25), 8),
    ("24/7 week", ALWAYS, (2026, 11, 30), (2026, 12, 7), 168),
    ("lunch break", LUNCH, (2026, 12, 1), (2026, 12, 2), 7),
    ("dst spring: fri to mon", OFFICE, (2026, 3, 6, 16), (2026, 3, 9, 10), 2),
    ("dst spring: 24/7 sunday 23h", ALWAYS, (2026, 3, 8), (2026, 3, 9), 23),
    ("dst autumn: 24/7 sunday 25h", ALWAYS, (2026, 11, 1), (2026, 11, 2), 25),
    ("dst spring: sunday 09-17 8h", WEEKENDS, (2026, 3, 8), (2026, 3, 9), 8),
    ("dst autumn: sunday 09-17 8h", WEEKENDS, (2026, 11, 1), (2026, 11, 2), 8),
    ("dst spring: 01-04 is 2h", SMALL_HOURS, (2026, 3, 8), (2026, 3, 9), 2),
    ("dst autumn: 01-04 is 4h", SMALL_HOURS, (2026, 11, 1), (2026, 11, 2), 4),
    ("dst spring: opens in skipped hour", OPENS_IN_SKIPPED_HOUR, (2026, 3, 8), (2026, 3, 9), 1),
    ("ordinary sunday: 01-04 is 3h", SMALL_HOURS, (2026, 3, 15), (2026, 3, 16), 3),
    ("end before start", OFFICE, (2026, 12, 2), (2026, 12, 1), 0),
]


@pytest.mark.parametrize(
    ("policy", "start", "end", "expected_hours"),
    [pytest.param(*case[1:], id=case[0]) for case in ELAPSED_CASES],
)
def test_business_elapsed(
    policy: ResponsePolicy,
    start: tuple[int, ...],
    end: tuple[int, ...],
    expected_hours: int,
) -> None:
    assert business_elapsed(policy, local(*start), local(*end)) == timedelta(hours=expected_hours)


def test_a_year_of_business_days() -> None:
    """2026 in Québec: 261 weekdays less the 8 holidays that fall on one (New Year, Good Friday,
    Patriotes, Fête nationale, Canada Day, Labour Day, Thanksgiving, Christmas). A whole year of
    business time is reached at closing time on 31 December, in days and not minutes of work."""
    year = business_elapsed(OFFICE, local(2026, 1, 1), local(2027, 1, 1))
    assert year == timedelta(hours=8 * 253)
    assert due_at(OFFICE, local(2026, 1, 1), 253 * 480) == local(2026, 12, 31, 17, 0)


# Target 100 minutes: 79 minutes used is 79 %, and so on.
TUESDAY_9 = (2026, 12, 1, 9, 0)
FRIDAY_1630 = (2026, 12, 4, 16, 30)
STATE_CASES = [
    # (id, started (local), now (local), answered (local) or None, state)
    ("79 % within", TUESDAY_9, (2026, 12, 1, 10, 19), None, SlaState.within),
    ("80 % at risk", TUESDAY_9, (2026, 12, 1, 10, 20), None, SlaState.at_risk),
    ("99 % at risk", TUESDAY_9, (2026, 12, 1, 10, 39), None, SlaState.at_risk),
    ("100 % breached", TUESDAY_9, (2026, 12, 1, 10, 40), None, SlaState.breached),
    ("long breached", TUESDAY_9, (2026, 12, 20), None, SlaState.breached),
    ("before arrival", TUESDAY_9, (2026, 12, 1, 8, 0), None, SlaState.within),
    ("weekend keeps it within", FRIDAY_1630, (2026, 12, 6, 23, 0), None, SlaState.within),
    ("monday 79 %", FRIDAY_1630, (2026, 12, 7, 9, 49), None, SlaState.within),
    ("monday 80 %", FRIDAY_1630, (2026, 12, 7, 9, 50), None, SlaState.at_risk),
    ("monday 100 %", FRIDAY_1630, (2026, 12, 7, 10, 10), None, SlaState.breached),
    ("answered in time", TUESDAY_9, (2026, 12, 1, 10, 0), (2026, 12, 1, 9, 50), "met"),
    ("answered at deadline", TUESDAY_9, (2026, 12, 2), (2026, 12, 1, 10, 40), "met"),
    ("answered late", TUESDAY_9, (2026, 12, 2), (2026, 12, 1, 10, 41), "missed"),
    ("met stays met", TUESDAY_9, (2027, 1, 15), (2026, 12, 1, 9, 5), "met"),
    ("answered on saturday", FRIDAY_1630, (2026, 12, 9), (2026, 12, 5, 20, 0), "met"),
    ("answered monday late", FRIDAY_1630, (2026, 12, 9), (2026, 12, 7, 10, 11), "missed"),
]


@pytest.mark.parametrize(
    ("started", "now", "answered", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in STATE_CASES],
)
def test_sla_state(
    started: tuple[int, ...],
    now: tuple[int, ...],
    answered: tuple[int, ...] | None,
    expected: str,
) -> None:
    state = sla_state(
        OFFICE,
        local(*started),
        100,
        now=local(*now),
        answered_at=local(*answered) if answered else None,
    )
    assert state == SlaState(expected)


def test_the_breach_job_finds_the_item_breached_at_its_deadline() -> None:
    """A job deferred to `due_at` must see the breach; a moment earlier it is only at risk."""
    started = local(*FRIDAY_1630)
    deadline = due_at(OFFICE, started, 100)
    assert sla_state(OFFICE, started, 100, now=deadline) is SlaState.breached
    before = deadline - timedelta(microseconds=1)
    assert sla_state(OFFICE, started, 100, now=before) is SlaState.at_risk


def test_a_custom_at_risk_ratio() -> None:
    cautious = replace(OFFICE, at_risk_ratio=0.5)
    started = local(*TUESDAY_9)
    assert sla_state(cautious, started, 100, now=local(2026, 12, 1, 9, 49)) is SlaState.within
    assert sla_state(cautious, started, 100, now=local(2026, 12, 1, 9, 50)) is SlaState.at_risk


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        business_elapsed(OFFICE, datetime(2026, 12, 1, 9), local(2026, 12, 1, 10))
    with pytest.raises(ValueError, match="aware"):
        due_at(OFFICE, datetime(2026, 12, 1, 9), 60)


# --- Storage and validation -------------------------------------------------------------------

STORED_DEFAULT = {
    "first_response_minutes": 60,
    "next_response_minutes": 240,
    "timezone": "America/Toronto",
    "hours": {
        "mon": [["09:00", "17:00"]],
        "tue": [["09:00", "17:00"]],
        "wed": [["09:00", "17:00"]],
        "thu": [["09:00", "17:00"]],
        "fri": [["09:00", "17:00"]],
        "sat": [],
        "sun": [],
    },
    "holidays_country": "CA",
    "holidays_subdivision": "QC",
    "count_nights": False,
    "count_weekends": False,
    "at_risk_ratio": 0.8,
}


def test_default_policy_is_stored_readably() -> None:
    assert OFFICE.hours == DEFAULT_HOURS
    assert OFFICE.to_json() == STORED_DEFAULT


@pytest.mark.parametrize(
    "policy",
    [OFFICE, NIGHTS, WEEKENDS, ALWAYS, ONTARIO, NO_HOLIDAYS, LUNCH, SMALL_HOURS],
    ids=["office", "nights", "weekends", "24/7", "ontario", "no holidays", "lunch", "sunday"],
)
def test_json_round_trip(policy: ResponsePolicy) -> None:
    stored = json.loads(json.dumps(policy.to_json()))  # as a JSONB column gives it back
    assert ResponsePolicy.from_json(stored) == policy


def test_json_whole_day_and_partial_input() -> None:
    """ "24:00" ends a day; days left out are closed; unspecified settings take the defaults."""
    policy = ResponsePolicy.from_json(
        {
            "first_response_minutes": 30,
            "next_response_minutes": 30,
            "timezone": "America/Vancouver",
            "hours": {"sat": [["00:00", "24:00"]], "mon": [["13:00", "17:00"], ["08:00", "12:00"]]},
            "holidays_subdivision": "BC",
        }
    )
    assert policy.hours[0] == ((time(8), time(12)), (time(13), time(17)))  # sorted
    assert policy.to_json()["hours"]["sat"] == [["00:00", "24:00"]]
    vancouver = ZoneInfo("America/Vancouver")
    saturday = datetime(2026, 12, 5, tzinfo=vancouver).astimezone(UTC)
    assert business_elapsed(policy, saturday, saturday + timedelta(days=1)) == timedelta(hours=24)


def stored(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(STORED_DEFAULT))
    for key, value in changes.items():
        if value is DROP:
            del data[key]
        else:
            data[key] = value
    return data


DROP = object()
INVALID_CASES = [
    ("unknown time zone", stored(timezone="America/Montreal_"), "unknown time zone"),
    ("empty time zone", stored(timezone=""), "unknown time zone"),
    ("end before start", stored(hours={"mon": [["17:00", "09:00"]]}), "not after start"),
    ("empty interval", stored(hours={"mon": [["09:00", "09:00"]]}), "not after start"),
    (
        "overlapping intervals",
        stored(hours={"tue": [["09:00", "12:00"], ["11:30", "17:00"]]}),
        "overlap",
    ),
    ("not a time", stored(hours={"mon": [["9h", "17h"]]}), "not a time"),
    ("24:00 as a start", stored(hours={"mon": [["24:00", "24:00"]]}), "not a time"),
    ("unknown weekday", stored(hours={"monday": [["09:00", "17:00"]]}), "unknown weekdays"),
    ("no hours at all", stored(hours={}), "at least one day"),
    ("unknown country", stored(holidays_country="XX"), "unknown holidays country"),
    ("unknown subdivision", stored(holidays_subdivision="ZZ"), "unknown holidays subdivision"),
    (
        "subdivision without country",
        stored(holidays_country=None),
        "needs a holidays_country",
    ),
    ("negative first response", stored(first_response_minutes=-1), "must not be negative"),
    ("negative next response", stored(next_response_minutes=-5), "must not be negative"),
    ("minutes not whole", stored(first_response_minutes=1.5), "whole number"),
    ("at-risk ratio above 1", stored(at_risk_ratio=1.5), "at_risk_ratio"),
    ("nights not a boolean", stored(count_nights="yes"), "true or false"),
    ("misspelt field", stored(count_night=True), "unknown response policy fields"),
    ("missing time zone", stored(timezone=DROP), "missing response policy fields: timezone"),
]


@pytest.mark.parametrize(
    ("data", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID_CASES],
)
def test_invalid_policies_say_why(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResponsePolicy.from_json(data)


def test_hours_given_in_python_are_checked_too() -> None:
    with pytest.raises(ValueError, match="overlap"):
        replace(OFFICE, hours=hours(mon=[("09:00", "13:00"), ("12:00", "17:00")]))
    with pytest.raises(ValueError, match="7 entries"):
        replace(OFFICE, hours=DEFAULT_HOURS[:5])


# --- Monthly figures --------------------------------------------------------------------------

PERCENTILE_CASES = [
    # (id, values, median, p90) — numpy.percentile's default (linear) gives the same.
    ("none", [], None, None),
    ("one", [42.0], 42.0, 42.0),
    ("two", [1.0, 2.0], 1.5, 1.9),
    ("ten", [float(v) for v in range(1, 11)], 5.5, 9.1),
    ("unsorted", [10.0, 1.0, 3.0], 3.0, 8.6),
    ("mostly instant", [0.0, 0.0, 0.0, 60.0], 0.0, 42.0),
    ("odd count", [5.0, 15.0, 25.0, 35.0, 45.0], 25.0, 41.0),
]


@pytest.mark.parametrize(
    ("values", "median", "p90"),
    [pytest.param(*case[1:], id=case[0]) for case in PERCENTILE_CASES],
)
def test_median_and_p90(values: list[float], median: float | None, p90: float | None) -> None:
    got_median, got_p90 = median_and_p90(values)
    assert got_median == pytest.approx(median)
    assert got_p90 == pytest.approx(p90)


# --- Deadlines and elapsed time agree ---------------------------------------------------------

POLICIES = st.sampled_from(
    [OFFICE, NIGHTS, WEEKENDS, ALWAYS, LUNCH, SMALL_HOURS, OPENS_IN_SKIPPED_HOUR]
)
INSTANTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(policy=POLICIES, start=INSTANTS, minutes=st.integers(0, 60 * 24 * 40))
def test_due_at_is_the_first_instant_with_that_much_business_time(
    policy: ResponsePolicy, start: datetime, minutes: int
) -> None:
    deadline = due_at(policy, start, minutes)
    assert business_elapsed(policy, start, deadline) == timedelta(minutes=minutes)
    if minutes:
        earlier = deadline - timedelta(microseconds=1)
        assert business_elapsed(policy, start, earlier) < timedelta(minutes=minutes)


@settings(max_examples=300, deadline=None)
@given(
    policy=POLICIES,
    start=INSTANTS,
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
)
def test_elapsed_time_leads_back_to_a_deadline_no_later(
    policy: ResponsePolicy, start: datetime, span: timedelta
) -> None:
    end = start + span
    elapsed = business_elapsed(policy, start, end)
    minutes = elapsed // timedelta(minutes=1)
    deadline = due_at(policy, start, minutes)
    assert deadline <= end
    # Time adds up: what remains after the deadline is the leftover fraction of a minute.
    assert business_elapsed(policy, deadline, end) == elapsed - timedelta(minutes=minutes)
