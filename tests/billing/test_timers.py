"""Timers over HTTP: one at a time, split at the agency's midnight and over clock changes,
forgotten timers, and timers whose time cannot be logged.

Where a timer must stop at a precise moment, the test sets the application clock there and signs
the person in again (`at_moment`): a token issued at the real time is not yet valid earlier."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from infra.clock import utcnow
from tests.support.factories import (
    make_brand,
    walk,
)
from tests.support.problems import assert_field_refused, assert_problem
from tests.support.time_entries import (
    FALL_BACK,
    MTL,
    SPRING_FORWARD,
    assign,
    at_moment,
    count_entries,
    current,
    iso_week,
    last_week,
    local,
    log,
    move_timer_start,
    post_entry,
    read_entry,
    setup,
    start_timer,
    stop_timer,
    submit,
    today,
    utc,
)

# ---------------------------------------------------------------------------------------------
# Timers


async def test_one_timer_at_a_time(client, db, resources):
    world = await setup(client, db, resources)
    assert await current(client, world.member) is None
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    assert_problem(response, 409, "no-running-timer")
    response = await client.delete("/v1/timers/current", headers=world.member.headers)
    assert_problem(response, 409, "no-running-timer")

    before = utcnow()
    response = await start_timer(client, world.member, world.brand, note="Live", billable=False)
    assert response.status_code == 201, response.text
    timer = response.json()
    assert timer["brand_id"] == world.brand["id"]
    assert timer["activity"] == "community_animation"
    assert timer["billable"] is False
    assert timer["note"] == "Live"
    assert timer["elapsed_minutes"] == 0
    assert before - timedelta(seconds=5) <= utc(timer["started_at"]) <= utcnow()
    assert await current(client, world.member) == timer

    response = await start_timer(client, world.member, world.brand)
    body = assert_problem(response, 409, "timer-running")
    assert body["timer_id"] == timer["id"]
    # Each person has their own.
    await assign(client, world.boss, world.manager.user_id, world.brand["id"])
    assert await current(client, world.manager) is None
    response = await start_timer(client, world.manager, world.brand)
    assert response.status_code == 201, response.text

    response = await client.delete("/v1/timers/current", headers=world.member.headers)
    assert response.status_code == 204, response.text
    assert await current(client, world.member) is None
    assert await current(client, world.manager) is not None
    assert await count_entries(db, world.agency.tenant_id) == 0

    # Starting needs a brand assigned today, and a valid body.
    other = await make_brand(client, world.boss, world.customer["id"])
    assert_problem(await start_timer(client, world.member, other), 422, "not-assigned")
    response = await start_timer(client, world.member, world.brand, activity="napping")
    assert_problem(response, 422, "validation-error")
    response = await start_timer(client, world.member, world.brand, started_at=before.isoformat())
    assert_problem(response, 422, "validation-error")
    assert await current(client, world.member) is None


async def test_stopping_a_timer_logs_its_time(client, db, resources):
    world = await setup(client, db, resources)
    response = await start_timer(client, world.member, world.brand, note="Replies")
    assert response.status_code == 201, response.text
    started = utcnow() - timedelta(minutes=45)
    await move_timer_start(db, world, world.member, started)
    assert (await current(client, world.member))["elapsed_minutes"] == 45

    stopped = await stop_timer(client, world.member)
    assert stopped["flagged"] is False
    entries = stopped["entries"]
    assert sum(e["minutes"] for e in entries) == 45
    # One entry per local day the 45 minutes touched (two only just after midnight).
    days = sorted({started.astimezone(MTL).date(), utcnow().astimezone(MTL).date()})
    dates = [e["date"] for e in entries]
    assert dates == sorted(set(dates))
    assert dates[0] == days[0].isoformat()
    assert set(dates) <= {d.isoformat() for d in days}
    assert utc(entries[0]["started_at"]) == started
    for entry in entries:
        assert entry["source"] == "timer"
        assert entry["activity"] == "community_animation"
        assert entry["note"] == "Replies"
        assert entry["flagged_reason"] is None
        assert entry["status"] == "open"
        assert entry["user_id"] == str(world.member.user_id)
        assert await read_entry(client, world.member.headers, entry["id"]) == entry
    assert await current(client, world.member) is None
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    assert_problem(response, 409, "no-running-timer")


async def test_a_timer_across_midnight_logs_one_entry_per_day(client, db, resources, clock):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=3)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, local(day, 22, 30))
    await at_moment(client, clock, world.member, local(day + timedelta(days=1), 1, 15))

    stopped = await stop_timer(client, world.member)
    assert stopped["flagged"] is False
    entries = stopped["entries"]
    assert [(e["date"], e["minutes"]) for e in entries] == [
        (day.isoformat(), 90),
        ((day + timedelta(days=1)).isoformat(), 75),
    ]
    assert utc(entries[0]["started_at"]) == local(day, 22, 30).astimezone(UTC)
    assert utc(entries[1]["started_at"]) == local(day + timedelta(days=1)).astimezone(UTC)
    assert {e["source"] for e in entries} == {"timer"}
    assert {e["flagged_reason"] for e in entries} == {None}
    listed = await walk(client, "/v1/time-entries", world.member.headers)
    assert [(e["date"], e["minutes"]) for e in listed] == [
        (e["date"], e["minutes"]) for e in entries
    ]


async def test_a_timer_over_the_night_the_clocks_go_back(client, db, resources, clock):
    world = await setup(client, db, resources)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    # 23:00 on 31 October (EDT) to 03:00 on 1 November (EST): five real hours.
    await move_timer_start(db, world, world.member, local(FALL_BACK - timedelta(days=1), 23))
    await at_moment(client, clock, world.member, local(FALL_BACK, 3))
    stopped = await stop_timer(client, world.member)
    assert stopped["flagged"] is False
    assert [(e["date"], e["minutes"]) for e in stopped["entries"]] == [
        ("2026-10-31", 60),
        ("2026-11-01", 240),
    ]


async def test_a_forgotten_timer_stops_at_twelve_hours_and_is_flagged(client, db, resources):
    world = await setup(client, db, resources)
    now = utcnow()
    midnight = local(now.astimezone(MTL).date())
    if now - midnight < timedelta(hours=12, minutes=5):
        midnight = local(now.astimezone(MTL).date() - timedelta(days=1))
    started = midnight - timedelta(minutes=90)  # 22:30 the day before that midnight
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, started)

    stopped = await stop_timer(client, world.member)
    assert stopped["flagged"] is True
    entries = stopped["entries"]
    assert sum(e["minutes"] for e in entries) == 720
    assert [(e["date"], e["minutes"]) for e in entries] == [
        (started.astimezone(MTL).date().isoformat(), 90),
        (midnight.date().isoformat(), 630),
    ]
    assert {e["flagged_reason"] for e in entries} == {"forgotten_timer"}
    assert {e["source"] for e in entries} == {"timer"}
    for entry in entries:
        assert (await read_entry(client, world.member.headers, entry["id"]))[
            "flagged_reason"
        ] == "forgotten_timer"
    assert await current(client, world.member) is None


async def test_a_timer_cannot_log_into_a_locked_week(client, db, resources):
    world = await setup(client, db, resources)
    day = last_week()[2]
    await log(client, world.member, world.brand, day, 30)
    await submit(client, world.member, iso_week(day))
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    timer = response.json()
    await move_timer_start(db, world, world.member, local(day, 10))
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    assert_problem(response, 409, "week-locked")
    # Nothing was logged and the timer is still there to discard.
    assert await count_entries(db, world.agency.tenant_id) == 1
    running = await current(client, world.member)
    assert running is not None and running["id"] == timer["id"]
    response = await client.delete("/v1/timers/current", headers=world.member.headers)
    assert response.status_code == 204, response.text


async def test_a_timer_stop_is_held_to_the_length_of_the_day(client, db, resources, clock):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=2)
    await log(client, world.member, world.brand, day, 1400)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, local(day, 10))
    await at_moment(client, clock, world.member, local(day, 11))
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    body = assert_problem(response, 422, "day-overfull")
    assert body["logged_minutes"] == 1400
    assert await count_entries(db, world.agency.tenant_id) == 1
    assert await current(client, world.member) is not None


async def test_a_timer_stopped_at_exactly_twelve_hours_is_not_flagged(client, db, resources, clock):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=4)
    for stop, flagged in ((timedelta(hours=12), False), (timedelta(hours=12, seconds=1), True)):
        response = await start_timer(client, world.member, world.brand)
        assert response.status_code == 201, response.text
        await move_timer_start(db, world, world.member, local(day, 6))
        await at_moment(client, clock, world.member, local(day, 6) + stop)
        stopped = await stop_timer(client, world.member)
        assert stopped["flagged"] is flagged
        assert [(e["date"], e["minutes"]) for e in stopped["entries"]] == [(day.isoformat(), 720)]
        reason = "forgotten_timer" if flagged else None
        assert stopped["entries"][0]["flagged_reason"] == reason
        day -= timedelta(days=1)


async def test_a_timer_of_a_few_seconds_logs_nothing(client, db, resources, clock):
    world = await setup(client, db, resources)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    started = utc(response.json()["started_at"])
    await at_moment(client, clock, world.member, started + timedelta(seconds=20))
    stopped = await stop_timer(client, world.member)
    assert stopped == {"entries": [], "flagged": False}
    assert await current(client, world.member) is None
    assert await count_entries(db, world.agency.tenant_id) == 0
    # Half a minute counts as a minute.
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    started = utc(response.json()["started_at"])
    await at_moment(client, clock, world.member, started + timedelta(seconds=30))
    stopped = await stop_timer(client, world.member)
    assert [e["minutes"] for e in stopped["entries"]] == [1]


async def test_a_timer_over_the_night_the_clocks_go_forward(client, db, resources, clock):
    world = await setup(client, db, resources)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    # 23:00 on 7 March (EST) to 04:00 on 8 March (EDT): four real hours.
    await move_timer_start(db, world, world.member, local(SPRING_FORWARD - timedelta(days=1), 23))
    await at_moment(client, clock, world.member, local(SPRING_FORWARD, 4))
    stopped = await stop_timer(client, world.member)
    assert stopped["flagged"] is False
    assert [(e["date"], e["minutes"]) for e in stopped["entries"]] == [
        ("2026-03-07", 60),
        ("2026-03-08", 180),
    ]


async def test_a_timer_logs_no_time_on_a_day_after_the_assignment_ended(
    client, db, resources, clock
):
    """The assignment ends on `last`; a timer running past that midnight must not put time on
    the next day (whether the stop is refused or cut at the end of the assignment)."""
    world = await setup(client, db, resources)
    last = today() - timedelta(days=3)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    assignments = await walk(
        client, "/v1/assignments", world.boss, user_id=str(world.member.user_id)
    )
    assert len(assignments) == 1
    response = await client.patch(
        f"/v1/assignments/{assignments[0]['id']}",
        json={"end_date": last.isoformat()},
        headers=world.boss,
    )
    assert response.status_code == 200, response.text
    # By hand, the day after is refused.
    response = await post_entry(client, world.member, world.brand, last + timedelta(days=1), 75)
    assert_problem(response, 422, "not-assigned")

    await move_timer_start(db, world, world.member, local(last, 22, 30))
    await at_moment(client, clock, world.member, local(last + timedelta(days=1), 1, 15))
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    if response.status_code == 200:
        assert {e["date"] for e in response.json()["entries"]} <= {last.isoformat()}
    else:
        assert_problem(response, 422, "not-assigned")
    logged = await walk(client, "/v1/time-entries", world.member.headers)
    assert {e["date"] for e in logged} <= {last.isoformat()}, logged


async def test_a_brand_of_another_agency_cannot_be_timed(client, db, resources):
    world = await setup(client, db, resources)
    elsewhere = await setup(client, db, resources)
    response = await start_timer(client, world.member, elsewhere.brand)
    assert_field_refused(response, "/brand_id", "brand-not-found")
    assert await current(client, world.member) is None
    assert await current(client, elsewhere.member) is None


async def test_a_timer_that_cannot_be_logged_is_kept(client, db, resources):
    """Stopping a billable timer on a client without a retainer is refused; the running time is
    not lost: the timer stays until it is discarded."""
    world = await setup(client, db, resources, retainer=False)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    timer = response.json()
    await move_timer_start(db, world, world.member, utcnow() - timedelta(minutes=20))
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    assert_problem(response, 422, "no-retainer")
    assert await count_entries(db, world.agency.tenant_id) == 0
    running = await current(client, world.member)
    assert running is not None and running["id"] == timer["id"]
    response = await client.delete("/v1/timers/current", headers=world.member.headers)
    assert response.status_code == 204, response.text
    # A non-billable timer needs no retainer.
    response = await start_timer(client, world.member, world.brand, billable=False)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, utcnow() - timedelta(minutes=20))
    stopped = await stop_timer(client, world.member)
    assert sum(e["minutes"] for e in stopped["entries"]) == 20
    assert {e["billable"] for e in stopped["entries"]} == {False}


async def test_a_timer_splits_at_the_agencys_midnight(client, db, resources, clock):
    zone = ZoneInfo("Asia/Kolkata")  # UTC+05:30: midnight is at 18:30 UTC
    world = await setup(client, db, resources, timezone="Asia/Kolkata")
    day = utcnow().astimezone(zone).date() - timedelta(days=3)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, datetime.combine(day, time(23, 0), tzinfo=zone))
    await at_moment(
        client,
        clock,
        world.member,
        datetime.combine(day + timedelta(days=1), time(1, 0), tzinfo=zone),
    )
    stopped = await stop_timer(client, world.member)
    assert [(e["date"], e["minutes"]) for e in stopped["entries"]] == [
        (day.isoformat(), 60),
        ((day + timedelta(days=1)).isoformat(), 60),
    ]
