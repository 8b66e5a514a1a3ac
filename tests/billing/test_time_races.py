"""Time entries, timers and timesheets at the same moment: concurrent requests leave one
timer, log time once, never overfill a day or land in a locked week."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from infra.clock import utcnow
from tests.support.factories import (
    add_person,
    walk,
)
from tests.support.problems import assert_problem
from tests.support.time_entries import (
    current,
    get_sheet,
    iso_week,
    last_week,
    log,
    move_timer_start,
    post_entry,
    read_entry,
    setup,
    start_timer,
    submit,
    timesheet_action,
    today,
)

# ---------------------------------------------------------------------------------------------
# At the same moment


async def test_simultaneous_starts_leave_one_timer(client, db, resources):
    world = await setup(client, db, resources)
    responses = await asyncio.gather(
        *(start_timer(client, world.member, world.brand, note=str(i)) for i in range(5))
    )
    started = [r for r in responses if r.status_code == 201]
    assert len(started) == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert_problem(response, 409, "timer-running")
    running = await current(client, world.member)
    assert running is not None and running["id"] == started[0].json()["id"]


async def test_simultaneous_stops_log_the_time_once(client, db, resources):
    world = await setup(client, db, resources)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, utcnow() - timedelta(minutes=30))
    responses = await asyncio.gather(
        *(client.post("/v1/timers/stop", headers=world.member.headers) for _ in range(4))
    )
    stopped = [r for r in responses if r.status_code == 200]
    assert len(stopped) == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 409, "no-running-timer")
    logged = await walk(client, "/v1/time-entries", world.member.headers)
    assert sum(e["minutes"] for e in logged) == 30
    assert [e["id"] for e in logged] == [e["id"] for e in stopped[0].json()["entries"]]


async def test_simultaneous_entries_do_not_overfill_a_day(client, db, resources):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=2)
    responses = await asyncio.gather(
        *(post_entry(client, world.member, world.brand, day, 500) for _ in range(4))
    )
    made = [r for r in responses if r.status_code == 201]
    assert len(made) == 2, [r.text for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert_problem(response, 422, "day-overfull")
    logged = await walk(client, "/v1/time-entries", world.member.headers)
    assert sum(e["minutes"] for e in logged) == 1000


async def test_an_entry_racing_a_submission_does_not_land_in_the_locked_week(client, db, resources):
    world = await setup(client, db, resources)
    week = last_week()
    name = iso_week(week[0])
    await log(client, world.member, world.brand, week[0], 30)
    responses = await asyncio.gather(
        timesheet_action(client, world.member.headers, world.member.user_id, name, "submit"),
        *(post_entry(client, world.member, world.brand, week[i], 20) for i in range(1, 6)),
    )
    assert responses[0].status_code == 200, responses[0].text
    for response in responses[1:]:
        if response.status_code != 201:
            assert_problem(response, 409, "week-locked")
    sheet = await get_sheet(client, world.member.headers, world.member.user_id, name)
    assert sheet["status"] == "submitted"
    # Whatever won the race, no open time is left in a submitted week.
    assert {e["status"] for e in sheet["entries"]} == {"submitted"}
    made = sum(1 for r in responses[1:] if r.status_code == 201)
    assert len(sheet["entries"]) == 1 + made


async def test_a_correction_racing_new_time_does_not_overfill_the_day(client, db, resources):
    """The manager's correction takes the member's lock, not the manager's own."""
    world = await setup(client, db, resources)
    day = today() - timedelta(days=2)
    entry = await log(client, world.member, world.brand, day, 1000)
    for _ in range(3):
        created, corrected = await asyncio.gather(
            post_entry(client, world.member, world.brand, day, 440),
            client.patch(
                f"/v1/time-entries/{entry['id']}",
                json={"minutes": 1001},
                headers=world.manager.headers,
            ),
        )
        succeeded = [r for r in (created, corrected) if r.status_code in (200, 201)]
        assert len(succeeded) == 1, (created.text, corrected.text)
        for response in (created, corrected):
            if response.status_code not in (200, 201):
                assert_problem(response, 422, "day-overfull")
        logged = await walk(client, "/v1/time-entries", world.member.headers)
        assert sum(e["minutes"] for e in logged) <= 1440
        # Back to 1000 alone for the next round.
        for e in logged:
            if e["id"] != entry["id"]:
                response = await client.delete(
                    f"/v1/time-entries/{e['id']}", headers=world.member.headers
                )
                assert response.status_code == 204, response.text
        response = await client.patch(
            f"/v1/time-entries/{entry['id']}", json={"minutes": 1000}, headers=world.boss
        )
        assert response.status_code == 200, response.text


async def test_simultaneous_corrections_of_one_version_let_one_through(client, db, resources):
    world = await setup(client, db, resources)
    entry = await log(client, world.member, world.brand, today() - timedelta(days=1), 30)
    url = f"/v1/time-entries/{entry['id']}"
    responses = await asyncio.gather(
        *(
            client.patch(url, json={"minutes": 31 + i}, headers={**world.boss, "If-Match": '"1"'})
            for i in range(4)
        )
    )
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 412, "precondition-failed")
    assert await read_entry(client, world.boss, entry["id"]) == ok[0].json()


async def test_simultaneous_submissions_submit_once(client, db, resources):
    world = await setup(client, db, resources)
    day = last_week()[2]
    await log(client, world.member, world.brand, day, 30)
    name = iso_week(day)
    responses = await asyncio.gather(
        *(
            timesheet_action(client, world.member.headers, world.member.user_id, name, "submit")
            for _ in range(3)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409], [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "timesheet-state")
    sheet = await get_sheet(client, world.boss, world.member.user_id, name)
    assert sheet["status"] == "submitted"
    assert [e["version"] for e in sheet["entries"]] == [2]


async def test_simultaneous_approvals_approve_once(client, db, resources):
    world = await setup(client, db, resources)
    day = last_week()[2]
    await log(client, world.member, world.brand, day, 30)
    name = iso_week(day)
    await submit(client, world.member, name)
    admin = await add_person(client, db, resources.passwords, world.agency, "admin")
    responses = await asyncio.gather(
        *(
            timesheet_action(client, person.headers, world.member.user_id, name, "approve")
            for person in (world.manager, admin, world.owner)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409], [r.text for r in responses]
    sheet = await get_sheet(client, world.boss, world.member.user_id, name)
    assert sheet["status"] == "approved"
    assert [e["version"] for e in sheet["entries"]] == [3]
