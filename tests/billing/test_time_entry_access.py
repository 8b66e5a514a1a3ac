"""Time entries over HTTP: bad input refused without writing anything, who sees and changes
whose time, and the paginated lists."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from infra.pagination import encode_cursor
from tests.support.factories import (
    add_person,
    make_brand,
    make_client,
    walk,
)
from tests.support.problems import assert_problem
from tests.support.time_entries import (
    assign,
    count_entries,
    entry_body,
    get_sheet,
    iso_week,
    log,
    make_retainer,
    read_entry,
    setup,
    submit,
    timesheet_action,
    today,
)

# ---------------------------------------------------------------------------------------------
# Bad input


BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("negative minutes", {"minutes": -5}),
    ("zero minutes", {"minutes": 0}),
    ("more than 25 hours", {"minutes": 1501}),
    ("minutes as words", {"minutes": "ten"}),
    ("fractional minutes", {"minutes": 12.5}),
    ("unknown activity", {"activity": "sleeping"}),
    ("brand not a uuid", {"brand_id": "not-a-uuid"}),
    ("impossible date", {"date": "2026-13-01"}),
    ("date in another format", {"date": "21/11/2026"}),
    ("start time not a time", {"started_at": "yesterday"}),
    ("content item not a uuid", {"content_item_id": "42"}),
    ("note too long", {"note": "x" * 2001}),
    ("billable not a boolean", {"billable": "perhaps"}),
    ("unknown field", {"user_id": "0192f000-0000-7000-8000-000000000003"}),
    ("status is not the caller's", {"status": "approved"}),
    ("no brand", {"brand_id": None}),
]


@pytest.mark.parametrize(("change", "fields"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
async def test_bad_entries_are_refused_and_nothing_is_written(
    client, db, resources, change, fields
):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=1)
    body = {**entry_body(world.brand, day, 30), **fields}
    if body.get("brand_id") is None:
        del body["brand_id"]
    response = await client.post("/v1/time-entries", json=body, headers=world.member.headers)
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"], problem
    assert await count_entries(db, world.agency.tenant_id) == 0


async def test_bodies_that_are_not_json_are_refused(client, db, resources):
    world = await setup(client, db, resources)
    body = json.dumps(entry_body(world.brand, today() - timedelta(days=1), 30))
    response = await client.post(
        "/v1/time-entries",
        content=body,
        headers={**world.member.headers, "Content-Type": "text/plain"},
    )
    assert_problem(response, 415, "unsupported-media-type")
    response = await client.post(
        "/v1/time-entries",
        content=body[:-3],
        headers={**world.member.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed-json")
    response = await client.post(
        "/v1/time-entries",
        content="[]",
        headers={**world.member.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "validation-error")
    assert await count_entries(db, world.agency.tenant_id) == 0


BAD_PATCHES: list[tuple[str, dict[str, Any]]] = [
    ("zero minutes", {"minutes": 0}),
    ("negative minutes", {"minutes": -1}),
    ("more than 25 hours", {"minutes": 1501}),
    ("unknown activity", {"activity": "sleeping"}),
    ("date cannot move", {"date": "2026-11-02"}),
    ("brand cannot move", {"brand_id": "0192f000-0000-7000-8000-000000000004"}),
    ("status is not editable", {"status": "approved"}),
    ("rate is not editable", {"rate_minor": 1}),
]


@pytest.mark.parametrize(("change", "fields"), BAD_PATCHES, ids=[c for c, _ in BAD_PATCHES])
async def test_bad_corrections_are_refused_and_nothing_changes(
    client, db, resources, change, fields
):
    world = await setup(client, db, resources)
    entry = await log(client, world.member, world.brand, today() - timedelta(days=1), 30)
    response = await client.patch(
        f"/v1/time-entries/{entry['id']}", json=fields, headers=world.member.headers
    )
    assert_problem(response, 422, "validation-error")
    assert await read_entry(client, world.member.headers, entry["id"]) == entry


async def test_ids_that_are_not_uuids_are_refused(client, db, resources):
    world = await setup(client, db, resources)
    h = world.member.headers
    assert_problem(await client.get("/v1/time-entries/12", headers=h), 422, "validation-error")
    response = await client.patch("/v1/time-entries/12", json={"minutes": 5}, headers=h)
    assert_problem(response, 422, "validation-error")
    assert_problem(await client.delete("/v1/time-entries/12", headers=h), 422, "validation-error")
    response = await client.get("/v1/time-entries", params={"brand_id": "12"}, headers=h)
    assert_problem(response, 422, "validation-error")
    response = await client.get("/v1/time-entries", params={"from": "yesterday"}, headers=h)
    assert_problem(response, 422, "validation-error")
    response = await client.get("/v1/time-entries", params={"activity": "sleeping"}, headers=h)
    assert_problem(response, 422, "validation-error")
    response = await client.get("/v1/time-entries", params={"status": "lost"}, headers=h)
    assert_problem(response, 422, "validation-error")
    response = await client.get(f"/v1/time-entries/{uuid.uuid4()}", headers=h)
    assert_problem(response, 404, "time-entry-not-found")


# ---------------------------------------------------------------------------------------------
# Who sees and changes what


async def test_members_see_and_change_only_their_own_time(client, db, resources):
    world = await setup(client, db, resources)
    colleague = await add_person(client, db, resources.passwords, world.agency, "member")
    await assign(client, world.boss, colleague.user_id, world.brand["id"])
    day = today() - timedelta(days=1)
    mine = await log(client, world.member, world.brand, day, 30)
    theirs = await log(client, colleague, world.brand, day, 45)

    url = f"/v1/time-entries/{theirs['id']}"
    assert_problem(await client.get(url, headers=world.member.headers), 404, "time-entry-not-found")
    response = await client.patch(url, json={"minutes": 1}, headers=world.member.headers)
    assert_problem(response, 404, "time-entry-not-found")
    response = await client.delete(url, headers=world.member.headers)
    assert_problem(response, 404, "time-entry-not-found")
    assert await read_entry(client, colleague.headers, theirs["id"]) == theirs

    listed = await walk(client, "/v1/time-entries", world.member.headers)
    assert [e["id"] for e in listed] == [mine["id"]]
    listed = await walk(
        client, "/v1/time-entries", world.member.headers, user_id=str(colleague.user_id)
    )
    assert listed == []


@pytest.mark.parametrize("role", ["owner", "admin", "manager"])
async def test_managers_see_and_correct_everyones_time(client, db, resources, role):
    world = await setup(client, db, resources)
    boss = (
        world.owner
        if role == "owner"
        else await add_person(client, db, resources.passwords, world.agency, role)
    )
    colleague = await add_person(client, db, resources.passwords, world.agency, "member")
    await assign(client, world.boss, colleague.user_id, world.brand["id"])
    day = today() - timedelta(days=1)
    mine = await log(client, world.member, world.brand, day, 30)
    theirs = await log(client, colleague, world.brand, day, 45)

    listed = await walk(client, "/v1/time-entries", boss.headers)
    assert {e["id"] for e in listed} == {mine["id"], theirs["id"]}
    listed = await walk(client, "/v1/time-entries", boss.headers, user_id=str(world.member.user_id))
    assert [e["id"] for e in listed] == [mine["id"]]
    assert await read_entry(client, boss.headers, theirs["id"]) == theirs

    response = await client.patch(
        f"/v1/time-entries/{mine['id']}",
        json={"minutes": 40, "note": "corrected"},
        headers={**boss.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    corrected = response.json()
    assert corrected["minutes"] == 40 and corrected["note"] == "corrected"
    assert corrected["version"] == 2
    # Still the member's time.
    assert corrected["user_id"] == str(world.member.user_id)
    assert await read_entry(client, world.member.headers, mine["id"]) == corrected

    response = await client.delete(f"/v1/time-entries/{theirs['id']}", headers=boss.headers)
    assert response.status_code == 204, response.text
    response = await client.get(f"/v1/time-entries/{theirs['id']}", headers=colleague.headers)
    assert_problem(response, 404, "time-entry-not-found")


async def test_client_contacts_have_no_time_routes(client, db, resources):
    world = await setup(client, db, resources)
    contact = await add_person(
        client,
        db,
        resources.passwords,
        world.agency,
        "client",
        client_id=uuid.UUID(world.customer["id"]),
    )
    entry = await log(client, world.member, world.brand, today() - timedelta(days=1), 30)
    h = contact.headers
    url = f"/v1/time-entries/{entry['id']}"
    week = iso_week(today() - timedelta(days=7))
    answers = [
        await client.get("/v1/time-entries", headers=h),
        await client.post("/v1/time-entries", json=entry_body(world.brand, today(), 5), headers=h),
        await client.get(url, headers=h),
        await client.patch(url, json={"minutes": 5}, headers=h),
        await client.delete(url, headers=h),
        await client.get("/v1/timers/current", headers=h),
        await client.post(
            "/v1/timers/start",
            json={"brand_id": world.brand["id"], "activity": "meeting"},
            headers=h,
        ),
        await client.post("/v1/timers/stop", headers=h),
        await client.delete("/v1/timers/current", headers=h),
        await client.get(f"/v1/timesheets/{contact.user_id}/{week}", headers=h),
        await client.get(f"/v1/timesheets/{world.member.user_id}/{week}", headers=h),
        await timesheet_action(client, h, contact.user_id, week, "submit"),
        await timesheet_action(client, h, world.member.user_id, week, "approve"),
        await timesheet_action(client, h, world.member.user_id, week, "return", {"reason": "no"}),
    ]
    for response in answers:
        assert_problem(response, 403, "permission-denied")
    assert await read_entry(client, world.member.headers, entry["id"]) == entry
    assert await count_entries(db, world.agency.tenant_id) == 1


async def test_another_agencys_time_is_not_found(client, db, resources):
    world = await setup(client, db, resources)
    other = await setup(client, db, resources)
    entry = await log(client, world.member, world.brand, today() - timedelta(days=1), 30)
    url = f"/v1/time-entries/{entry['id']}"
    for person in (other.owner, other.member):
        h = person.headers
        assert_problem(await client.get(url, headers=h), 404, "time-entry-not-found")
        response = await client.patch(url, json={"minutes": 5}, headers=h)
        assert_problem(response, 404, "time-entry-not-found")
        assert_problem(await client.delete(url, headers=h), 404, "time-entry-not-found")
        assert await walk(client, "/v1/time-entries", h) == []
    # Nor are its people's weeks, whatever the action.
    week = iso_week(today() - timedelta(days=1))
    await submit(client, world.member, week)
    response = await client.get(
        f"/v1/timesheets/{world.member.user_id}/{week}", headers=other.owner.headers
    )
    assert_problem(response, 404, "member-not-found")
    for action, body in (("approve", None), ("return", {"reason": "not yours"})):
        response = await timesheet_action(
            client, other.owner.headers, world.member.user_id, week, action, body
        )
        assert_problem(response, 404, "member-not-found")
    sheet = await get_sheet(client, world.boss, world.member.user_id, week)
    assert sheet["status"] == "submitted"
    assert sheet["decided_by"] is None


async def test_a_client_contact_has_no_timesheet(client, db, resources):
    world = await setup(client, db, resources)
    contact = await add_person(
        client,
        db,
        resources.passwords,
        world.agency,
        "client",
        client_id=uuid.UUID(world.customer["id"]),
    )
    week = iso_week(today() - timedelta(days=7))
    response = await client.get(f"/v1/timesheets/{contact.user_id}/{week}", headers=world.boss)
    assert_problem(response, 404, "member-not-found")
    response = await client.get(f"/v1/timesheets/{uuid.uuid4()}/{week}", headers=world.boss)
    assert_problem(response, 404, "member-not-found")


# ---------------------------------------------------------------------------------------------
# Lists


async def test_lists_come_in_pages_by_date_then_id(client, db, resources):
    world = await setup(client, db, resources)
    days = [today() - timedelta(days=n) for n in (1, 2, 3, 5, 8)]
    made: list[dict] = []
    for i in range(23):
        made.append(await log(client, world.member, world.brand, days[i % len(days)], 10 + i))
    expected = sorted(made, key=lambda e: (e["date"], uuid.UUID(e["id"])))

    seen: list[dict] = []
    params: dict[str, Any] = {"limit": 5}
    pages = 0
    while True:
        response = await client.get("/v1/time-entries", params=params, headers=world.member.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["items"]) <= 5
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        assert len(page["items"]) == 5
        params["cursor"] = page["next_cursor"]
        assert pages < 10
    assert pages == 5
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == 23
    assert ids == [e["id"] for e in expected]

    # The same walk twice gives the same order.
    again = await walk(client, "/v1/time-entries", world.member.headers, limit=7)
    assert [e["id"] for e in again] == ids
    # A page that holds exactly what is left has no next page.
    response = await client.get(
        "/v1/time-entries", params={"limit": 23}, headers=world.member.headers
    )
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()["items"]] == ids
    assert response.json()["next_cursor"] is None


async def test_list_filters_narrow_the_list(client, db, resources):
    world = await setup(client, db, resources)
    globex = await make_client(client, world.boss, name="Globex")
    rocket = await make_brand(client, world.boss, globex["id"], name="Rocket")
    await make_retainer(client, world.boss, globex["id"])
    await assign(client, world.boss, world.member.user_id, rocket["id"])
    colleague = await add_person(client, db, resources.passwords, world.agency, "member")
    await assign(client, world.boss, colleague.user_id, world.brand["id"])
    d1, d2, d3 = (today() - timedelta(days=n) for n in (9, 8, 7))

    a = await log(client, world.member, world.brand, d1, 10, activity="moderation")
    b = await log(client, world.member, rocket, d2, 20, activity="crisis")
    c = await log(client, world.member, world.brand, d3, 30, activity="crisis", billable=False)
    d = await log(client, colleague, world.brand, d2, 40, activity="meeting")

    async def ids(headers: dict[str, str], **params: Any) -> set[str]:
        return {e["id"] for e in await walk(client, "/v1/time-entries", headers, **params)}

    boss = world.boss
    assert await ids(boss) == {a["id"], b["id"], c["id"], d["id"]}
    assert await ids(boss, user_id=str(world.member.user_id)) == {a["id"], b["id"], c["id"]}
    assert await ids(boss, user_id=str(colleague.user_id)) == {d["id"]}
    assert await ids(boss, brand_id=rocket["id"]) == {b["id"]}
    assert await ids(boss, client_id=world.customer["id"]) == {a["id"], c["id"], d["id"]}
    assert await ids(boss, client_id=globex["id"]) == {b["id"]}
    assert await ids(boss, activity="crisis") == {b["id"], c["id"]}
    assert await ids(boss, **{"from": d2.isoformat()}) == {b["id"], c["id"], d["id"]}
    assert await ids(boss, to=d2.isoformat()) == {a["id"], b["id"], d["id"]}
    assert await ids(boss, **{"from": d2.isoformat(), "to": d2.isoformat()}) == {
        b["id"],
        d["id"],
    }
    assert await ids(boss, **{"from": d3.isoformat(), "to": d1.isoformat()}) == set()
    assert await ids(boss, status="open") == {a["id"], b["id"], c["id"], d["id"]}
    assert await ids(boss, status="submitted") == set()
    assert await ids(
        boss, user_id=str(world.member.user_id), activity="crisis", brand_id=world.brand["id"]
    ) == {c["id"]}
    # A member's filters work inside their own time only.
    assert await ids(world.member.headers, brand_id=world.brand["id"]) == {a["id"], c["id"]}
    assert await ids(colleague.headers, activity="crisis") == set()

    # Filters and cursors together.
    page = await client.get(
        "/v1/time-entries", params={"limit": 1, "activity": "crisis"}, headers=boss
    )
    assert page.status_code == 200, page.text
    first = page.json()
    assert [e["id"] for e in first["items"]] == [b["id"]]
    page = await client.get(
        "/v1/time-entries",
        params={"limit": 1, "activity": "crisis", "cursor": first["next_cursor"]},
        headers=boss,
    )
    second = page.json()
    assert [e["id"] for e in second["items"]] == [c["id"]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "bm90IGpzb24",  # "not json"
        encode_cursor("date", "2026-11-01"),  # too short
        encode_cursor(
            "name", "2026-11-01", "0192f000-0000-7000-8000-000000000001"
        ),  # another list's order
        encode_cursor("date", "yesterday", "0192f000-0000-7000-8000-000000000002"),
        encode_cursor("date", "2026-11-01", "not-a-uuid"),
    ],
)
async def test_a_bad_cursor_is_a_problem(client, db, resources, cursor):
    world = await setup(client, db, resources)
    response = await client.get(
        "/v1/time-entries", params={"cursor": cursor}, headers=world.member.headers
    )
    assert_problem(response, 400, "invalid-cursor")


async def test_list_limits_are_bounded(client, db, resources):
    world = await setup(client, db, resources)
    h = world.member.headers
    for limit in (0, -1, 201):
        response = await client.get("/v1/time-entries", params={"limit": limit}, headers=h)
        assert_problem(response, 422, "validation-error")
    response = await client.get("/v1/time-entries", params={"cursor": "a" * 513}, headers=h)
    assert_problem(response, 422, "validation-error")


async def test_listing_entries_does_not_query_once_per_entry(client, db, resources):
    world = await setup(client, db, resources)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    async def measure(headers: dict[str, str], expected: int) -> int:
        statements.clear()
        engine = resources.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            response = await client.get("/v1/time-entries", params={"limit": 100}, headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == expected
        return len(statements)

    for n in range(3):
        await log(client, world.member, world.brand, today() - timedelta(days=1 + n), 30)
    small = await measure(world.member.headers, 3)
    small_boss = await measure(world.boss, 3)
    for n in range(27):
        await log(client, world.member, world.brand, today() - timedelta(days=1 + n % 9), 20)
    large = await measure(world.member.headers, 30)
    large_boss = await measure(world.boss, 30)
    assert small > 0
    assert large == small, (small, large)
    assert large_boss == small_boss, (small_boss, large_boss)
