"""Logging time over HTTP: on which day, on which brand, how long a day is, what a retainer
allows, versions of an entry, the audit trail, and days in the agency's own timezone."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from infra.clock import utcnow
from tests.support.factories import (
    add_person,
    make_brand,
    make_post,
    walk,
)
from tests.support.problems import assert_field_refused, assert_problem
from tests.support.time_entries import (
    FALL_BACK,
    SPRING_FORWARD,
    assign,
    count_entries,
    local,
    log,
    make_retainer,
    post_entry,
    read_entry,
    setup,
    today,
    utc,
)

# ---------------------------------------------------------------------------------------------
# Logging time


async def test_member_logs_time_and_reads_it_back(client, db, resources):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=1)
    response = await post_entry(
        client, world.member, world.brand, day, 95, activity="content_creation", note="Posts"
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    entry = response.json()
    assert entry["user_id"] == str(world.member.user_id)
    assert entry["brand_id"] == world.brand["id"]
    assert entry["client_id"] == world.customer["id"]
    assert entry["date"] == day.isoformat()
    assert entry["started_at"] is None
    assert entry["minutes"] == 95
    assert entry["activity"] == "content_creation"
    assert entry["billable"] is True
    assert entry["note"] == "Posts"
    assert entry["status"] == "open"
    assert entry["source"] == "manual"
    assert entry["flagged_reason"] is None
    assert entry["rate_minor"] is None and entry["rate_currency"] is None
    assert entry["version"] == 1

    response = await client.get(f"/v1/time-entries/{entry['id']}", headers=world.member.headers)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    assert response.json() == entry

    listed = await walk(client, "/v1/time-entries", world.member.headers)
    assert [e["id"] for e in listed] == [entry["id"]]
    assert await count_entries(db, world.agency.tenant_id) == 1


async def test_today_is_a_day_that_has_begun(client, db, resources):
    world = await setup(client, db, resources)
    entry = await log(client, world.member, world.brand, today(), 30)
    assert entry["date"] == today().isoformat()


async def test_the_start_time_gives_the_local_day(client, db, resources):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=3)
    # 23:30 in Montreal is already the next day in UTC: the agency's timezone decides.
    late = local(day, 23, 30).astimezone(UTC)
    assert late.date() == day + timedelta(days=1)
    entry = await log(client, world.member, world.brand, None, 20, started_at=late.isoformat())
    assert entry["date"] == day.isoformat()
    assert utc(entry["started_at"]) == late

    # Both given and agreeing is fine.
    early = local(day, 8, 0)
    entry = await log(client, world.member, world.brand, day, 20, started_at=early.isoformat())
    assert entry["date"] == day.isoformat()
    assert utc(entry["started_at"]) == early.astimezone(UTC)


async def test_a_date_the_start_time_contradicts_is_refused(client, db, resources):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=3)
    late = local(day, 23, 30).astimezone(UTC)
    before = await count_entries(db, world.agency.tenant_id)

    # The UTC calendar day of the start time is not the agency's day.
    response = await post_entry(
        client, world.member, world.brand, late.date(), 20, started_at=late.isoformat()
    )
    body = assert_problem(response, 422, "date-mismatch")
    assert day.isoformat() in body["detail"]

    response = await post_entry(
        client,
        world.member,
        world.brand,
        day - timedelta(days=1),
        20,
        started_at=local(day, 9).isoformat(),
    )
    assert_problem(response, 422, "date-mismatch")

    # Neither a date nor a start time: the entry has no day.
    response = await post_entry(client, world.member, world.brand, None, 20)
    assert_problem(response, 422, "date-mismatch")

    # A start time without an offset names no instant.
    response = await post_entry(
        client, world.member, world.brand, day, 20, started_at=f"{day.isoformat()}T09:00:00"
    )
    assert_problem(response, 422, "validation-error")
    assert await count_entries(db, world.agency.tenant_id) == before


async def test_days_that_have_not_begun_are_refused(client, db, resources):
    world = await setup(client, db, resources)
    tomorrow = today() + timedelta(days=1)
    response = await post_entry(client, world.member, world.brand, tomorrow, 30)
    assert_problem(response, 422, "future-date")
    response = await post_entry(
        client,
        world.member,
        world.brand,
        None,
        30,
        started_at=local(tomorrow, 0, 5).isoformat(),
    )
    assert_problem(response, 422, "future-date")
    response = await post_entry(client, world.member, world.brand, today() + timedelta(days=40))
    assert_problem(response, 422, "future-date")
    assert await count_entries(db, world.agency.tenant_id) == 0


# ---------------------------------------------------------------------------------------------
# Assignments


async def test_time_is_logged_only_on_brands_assigned_that_day(client, db, resources):
    world = await setup(client, db, resources)
    other = await make_brand(client, world.boss, world.customer["id"], name="Other Brand")
    day = today() - timedelta(days=10)

    response = await post_entry(client, world.member, other, day, 30)
    body = assert_problem(response, 422, "not-assigned")
    assert day.isoformat() in body["detail"]

    # An assignment from `start` to `end`, inclusive on both ends.
    start, end = day - timedelta(days=2), day + timedelta(days=2)
    await assign(client, world.boss, world.member.user_id, other["id"], str(start), str(end))
    for inside in (start, day, end):
        await log(client, world.member, other, inside, 30)
    for outside in (start - timedelta(days=1), end + timedelta(days=1)):
        response = await post_entry(client, world.member, other, outside, 30)
        assert_problem(response, 422, "not-assigned")
    assert await count_entries(db, world.agency.tenant_id) == 3


@pytest.mark.parametrize("role", ["owner", "admin", "manager"])
async def test_managers_and_owners_log_only_where_assigned_too(client, db, resources, role):
    world = await setup(client, db, resources)
    person = (
        world.owner
        if role == "owner"
        else await add_person(client, db, resources.passwords, world.agency, role)
    )
    day = today() - timedelta(days=1)
    response = await post_entry(client, person, world.brand, day, 30)
    assert_problem(response, 422, "not-assigned")
    response = await client.post(
        "/v1/timers/start",
        json={"brand_id": world.brand["id"], "activity": "meeting"},
        headers=person.headers,
    )
    assert_problem(response, 422, "not-assigned")
    assert await count_entries(db, world.agency.tenant_id) == 0

    await assign(client, world.boss, person.user_id, world.brand["id"])
    entry = await log(client, person, world.brand, day, 30)
    assert entry["user_id"] == str(person.user_id)


async def test_a_brand_of_another_agency_is_not_found(client, db, resources):
    world = await setup(client, db, resources)
    elsewhere = await setup(client, db, resources)
    response = await post_entry(
        client, world.member, elsewhere.brand, today() - timedelta(days=1), 30
    )
    assert_field_refused(response, "/brand_id", "brand-not-found")
    response = await post_entry(
        client, world.member, str(uuid.uuid4()), today() - timedelta(days=1), 30
    )
    assert_field_refused(response, "/brand_id", "brand-not-found")
    assert await count_entries(db, world.agency.tenant_id) == 0
    assert await count_entries(db, elsewhere.agency.tenant_id) == 0


# ---------------------------------------------------------------------------------------------
# The length of a day


async def test_a_day_holds_at_most_its_minutes(client, db, resources):
    world = await setup(client, db, resources)
    second = await make_brand(client, world.boss, world.customer["id"], name="Second")
    await assign(client, world.boss, world.member.user_id, second["id"])
    day = today() - timedelta(days=2)

    # One entry longer than an ordinary day is within 1..1500 but not within the day.
    response = await post_entry(client, world.member, world.brand, day, 1441)
    body = assert_problem(response, 422, "day-overfull")
    assert body["day_minutes"] == 1440
    assert body["logged_minutes"] == 0

    first = await log(client, world.member, world.brand, day, 1000)
    # Per person, across brands.
    await log(client, world.member, second, day, 440)
    response = await post_entry(client, world.member, second, day, 1)
    body = assert_problem(response, 422, "day-overfull")
    assert body["day_minutes"] == 1440
    assert body["logged_minutes"] == 1440

    # Growing an entry counts the others, not itself.
    response = await client.patch(
        f"/v1/time-entries/{first['id']}", json={"minutes": 1001}, headers=world.member.headers
    )
    assert_problem(response, 422, "day-overfull")
    assert (await read_entry(client, world.member.headers, first["id"]))["minutes"] == 1000
    response = await client.patch(
        f"/v1/time-entries/{first['id']}", json={"minutes": 900}, headers=world.member.headers
    )
    assert response.status_code == 200, response.text
    response = await client.patch(
        f"/v1/time-entries/{first['id']}", json={"minutes": 1000}, headers=world.member.headers
    )
    assert response.status_code == 200, response.text

    # Another day, and another person on the same day, are not affected.
    await log(client, world.member, world.brand, day - timedelta(days=1), 1440)
    await assign(client, world.boss, world.owner.user_id, world.brand["id"])
    await log(client, world.owner, world.brand, day, 1440)


async def test_a_manager_correcting_time_is_held_to_the_persons_day(client, db, resources):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=2)
    entry = await log(client, world.member, world.brand, day, 1400)
    # The manager logged nothing that day; the member's day is what counts.
    response = await client.patch(
        f"/v1/time-entries/{entry['id']}", json={"minutes": 1441}, headers=world.manager.headers
    )
    assert_problem(response, 422, "day-overfull")
    response = await client.patch(
        f"/v1/time-entries/{entry['id']}", json={"minutes": 1440}, headers=world.manager.headers
    )
    assert response.status_code == 200, response.text


async def test_the_day_the_clocks_go_back_has_25_hours(client, db, resources):
    world = await setup(client, db, resources)
    await log(client, world.member, world.brand, FALL_BACK, 1440)
    await log(client, world.member, world.brand, FALL_BACK, 60)
    response = await post_entry(client, world.member, world.brand, FALL_BACK, 1)
    body = assert_problem(response, 422, "day-overfull")
    assert body["day_minutes"] == 1500
    assert body["logged_minutes"] == 1500
    # The day after is an ordinary one.
    response = await post_entry(
        client, world.member, world.brand, FALL_BACK + timedelta(days=1), 1500
    )
    assert_problem(response, 422, "day-overfull")


async def test_the_day_the_clocks_go_forward_has_23_hours(client, db, resources):
    world = await setup(client, db, resources)
    response = await post_entry(client, world.member, world.brand, SPRING_FORWARD, 1381)
    body = assert_problem(response, 422, "day-overfull")
    assert body["day_minutes"] == 1380
    await log(client, world.member, world.brand, SPRING_FORWARD, 1380)
    response = await post_entry(client, world.member, world.brand, SPRING_FORWARD, 1)
    assert_problem(response, 422, "day-overfull")
    await log(client, world.member, world.brand, SPRING_FORWARD - timedelta(days=1), 1440)


# ---------------------------------------------------------------------------------------------
# Retainers


async def test_billable_time_needs_a_retainer_for_its_month(client, db, resources):
    world = await setup(client, db, resources, retainer=False)
    day = today() - timedelta(days=1)
    response = await post_entry(client, world.member, world.brand, day, 30)
    assert_problem(response, 422, "no-retainer")
    # Non-billable time needs none.
    entry = await log(client, world.member, world.brand, day, 30, billable=False)
    assert entry["billable"] is False
    # Making it billable is refused the same way, and the entry is left as it was.
    response = await client.patch(
        f"/v1/time-entries/{entry['id']}", json={"billable": True}, headers=world.member.headers
    )
    assert_problem(response, 422, "no-retainer")
    after = await read_entry(client, world.member.headers, entry["id"])
    assert after["billable"] is False
    assert after["version"] == 1
    assert await count_entries(db, world.agency.tenant_id) == 1

    # A retainer from June covers June, not May.
    await make_retainer(client, world.boss, world.customer["id"], start="2026-06")
    response = await post_entry(client, world.member, world.brand, date(2026, 5, 29), 30)
    assert_problem(response, 422, "no-retainer")
    await log(client, world.member, world.brand, date(2026, 6, 1), 30)
    response = await client.patch(
        f"/v1/time-entries/{entry['id']}", json={"billable": True}, headers=world.member.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["billable"] is True


# ---------------------------------------------------------------------------------------------
# Versions


async def test_stale_versions_are_refused(client, db, resources):
    world = await setup(client, db, resources)
    entry = await log(client, world.member, world.brand, today() - timedelta(days=1), 30)
    url = f"/v1/time-entries/{entry['id']}"
    h = world.member.headers

    response = await client.patch(url, json={"minutes": 35}, headers={**h, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert response.json()["version"] == 2

    response = await client.patch(url, json={"minutes": 99}, headers={**h, "If-Match": '"1"'})
    body = assert_problem(response, 412, "precondition-failed")
    assert body["current_version"] == 2
    response = await client.patch(url, json={"minutes": 99}, headers={**h, "If-Match": "nope"})
    assert_problem(response, 412, "precondition-failed")
    response = await client.delete(url, headers={**h, "If-Match": '"1"'})
    assert_problem(response, 412, "precondition-failed")
    current = await read_entry(client, h, entry["id"])
    assert current["minutes"] == 35 and current["version"] == 2

    # A weak ETag of the current version is accepted.
    response = await client.patch(url, json={"note": "n"}, headers={**h, "If-Match": 'W/"2"'})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 3
    response = await client.delete(url, headers={**h, "If-Match": '"3"'})
    assert response.status_code == 204, response.text
    assert_problem(await client.get(url, headers=h), 404, "time-entry-not-found")
    assert await count_entries(db, world.agency.tenant_id) == 0


async def test_a_correction_changes_only_what_it_names(client, db, resources):
    world = await setup(client, db, resources)
    entry = await log(
        client,
        world.member,
        world.brand,
        today() - timedelta(days=1),
        30,
        note="first",
        content_item_id=(await make_post(client, world.owner.headers, world.brand["id"]))["id"],
    )
    url = f"/v1/time-entries/{entry['id']}"
    response = await client.patch(url, json={"activity": "crisis"}, headers=world.member.headers)
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["activity"] == "crisis"
    for same in ("minutes", "note", "content_item_id", "billable", "date", "brand_id"):
        assert changed[same] == entry[same], same
    # Null clears the note; minutes cannot be null (leave them out to keep them).
    response = await client.patch(url, json={"minutes": None}, headers=world.member.headers)
    assert_field_refused(response, "/minutes", "null_not_allowed")
    response = await client.patch(url, json={"note": None}, headers=world.member.headers)
    assert response.status_code == 200, response.text
    assert response.json()["note"] is None
    assert response.json()["minutes"] == 30


# ---------------------------------------------------------------------------------------------
# The audit trail


async def test_changes_to_time_are_audited(client, db, resources):
    world = await setup(client, db, resources)
    entry = await log(client, world.member, world.brand, today() - timedelta(days=1), 30)
    url = f"/v1/time-entries/{entry['id']}"
    response = await client.patch(url, json={"minutes": 45}, headers=world.manager.headers)
    assert response.status_code == 200, response.text
    response = await client.delete(url, headers=world.member.headers)
    assert response.status_code == 204, response.text
    events = await walk(client, "/v1/audit-events", world.boss, subject_id=entry["id"])
    assert [e["action"] for e in events] == [
        "time_entry.deleted",
        "time_entry.updated",
        "time_entry.created",
    ]
    assert [e["actor_id"] for e in events] == [
        str(world.member.user_id),
        str(world.manager.user_id),
        str(world.member.user_id),
    ]
    assert all(e["subject_type"] == "time_entry" for e in events)
    assert events[1]["changes"]["minutes"] == 45


# ---------------------------------------------------------------------------------------------
# Other timezones: the agency's clock, never the server's nor Montreal's


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata"])
async def test_days_are_the_agencys_days(client, db, resources, zone):
    tz = ZoneInfo(zone)
    world = await setup(client, db, resources, timezone=zone)
    here = utcnow().astimezone(tz).date()
    await log(client, world.member, world.brand, here, 30)
    response = await post_entry(client, world.member, world.brand, here + timedelta(days=1), 30)
    assert_problem(response, 422, "future-date")
    # 23:30 of the day before, local: that day, whatever the UTC date.
    late = datetime.combine(here - timedelta(days=2), time(23, 30), tzinfo=tz)
    entry = await log(client, world.member, world.brand, None, 20, started_at=late.isoformat())
    assert entry["date"] == (here - timedelta(days=2)).isoformat()
    response = await post_entry(
        client,
        world.member,
        world.brand,
        here - timedelta(days=1),
        20,
        started_at=late.astimezone(UTC).isoformat(),
    )
    assert_problem(response, 422, "date-mismatch")
    # A day is 24 hours there (none of these zones changes its clocks in the last two days).
    await log(client, world.member, world.brand, here - timedelta(days=1), 1440)
    response = await post_entry(client, world.member, world.brand, here - timedelta(days=1), 1)
    assert_problem(response, 422, "day-overfull")
