"""Weekly timesheets over HTTP: submitting locks a week, approval freezes rates, a returned
week reopens, and invoiced time never changes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from billing.budgets.models import TimeEntry
from tests.support.factories import (
    add_person,
    make_brand,
    make_client,
)
from tests.support.problems import assert_problem
from tests.support.time_entries import (
    World,
    approve,
    assign,
    count_entries,
    get_sheet,
    iso_week,
    last_week,
    log,
    make_retainer,
    post_entry,
    read_entry,
    setup,
    submit,
    timesheet_action,
    today,
)

# ---------------------------------------------------------------------------------------------
# Timesheets


async def test_submitting_a_week_locks_its_time(client, db, resources):
    world = await setup(client, db, resources)
    week = last_week()
    name = iso_week(week[0])
    monday, sunday = week[0], week[6]
    a = await log(client, world.member, world.brand, monday, 60)
    b = await log(client, world.member, world.brand, sunday, 90)
    c = await log(client, world.member, world.brand, sunday, 15)
    before = await log(client, world.member, world.brand, monday - timedelta(days=1), 30)
    after = await log(client, world.member, world.brand, sunday + timedelta(days=1), 30)

    sheet = await get_sheet(client, world.member.headers, world.member.user_id, name)
    assert sheet["status"] == "open"
    assert sheet["submitted_at"] is None
    assert sheet["total_minutes"] == 165

    sheet = await submit(client, world.member, name)
    assert sheet["user_id"] == str(world.member.user_id)
    assert sheet["week"] == name
    assert sheet["status"] == "submitted"
    assert sheet["submitted_at"] is not None
    assert sheet["reason"] is None and sheet["decided_by"] is None
    assert sheet["total_minutes"] == 165
    assert [d["date"] for d in sheet["days"]] == [d.isoformat() for d in week]
    assert [d["minutes"] for d in sheet["days"]] == [60, 0, 0, 0, 0, 0, 105]
    sunday_ids = sorted([b["id"], c["id"]], key=uuid.UUID)
    assert [e["id"] for e in sheet["entries"]] == [a["id"], *sunday_ids]
    assert {e["status"] for e in sheet["entries"]} == {"submitted"}
    for entry in (a, b, c):
        read = await read_entry(client, world.member.headers, entry["id"])
        assert read["status"] == "submitted"
        assert read["version"] == entry["version"] + 1
    # Only that week.
    for entry in (before, after):
        assert (await read_entry(client, world.member.headers, entry["id"]))["status"] == "open"
    assert await get_sheet(client, world.manager.headers, world.member.user_id, name) == sheet

    # Nothing new in a locked week, by hand or by timer; the weeks around it are still open.
    for day in week:
        response = await post_entry(client, world.member, world.brand, day, 10)
        assert_problem(response, 409, "week-locked")
    await log(client, world.member, world.brand, monday - timedelta(days=1), 10)
    await log(client, world.member, world.brand, sunday + timedelta(days=1), 10)
    assert await count_entries(db, world.agency.tenant_id) == 7


async def submitted_entry(client, db, resources) -> tuple[World, dict, str]:
    world = await setup(client, db, resources)
    day = last_week()[1]
    entry = await log(client, world.member, world.brand, day, 60)
    await submit(client, world.member, iso_week(day))
    return world, await read_entry(client, world.member.headers, entry["id"]), iso_week(day)


@pytest.mark.parametrize("who", ["member", "manager", "owner"])
async def test_a_submitted_entry_cannot_be_corrected(client, db, resources, who):
    world, entry, _ = await submitted_entry(client, db, resources)
    person = {"member": world.member, "manager": world.manager, "owner": world.owner}[who]
    response = await client.patch(
        f"/v1/time-entries/{entry['id']}", json={"minutes": 5}, headers=person.headers
    )
    body = assert_problem(response, 409, "time-entry-locked")
    assert body["status"] == 409
    assert await read_entry(client, world.member.headers, entry["id"]) == entry


@pytest.mark.parametrize("who", ["member", "manager", "owner"])
async def test_a_submitted_entry_cannot_be_deleted(client, db, resources, who):
    world, entry, _ = await submitted_entry(client, db, resources)
    person = {"member": world.member, "manager": world.manager, "owner": world.owner}[who]
    response = await client.delete(f"/v1/time-entries/{entry['id']}", headers=person.headers)
    body = assert_problem(response, 409, "time-entry-locked")
    assert body["status"] == 409
    assert await read_entry(client, world.member.headers, entry["id"]) == entry


async def test_a_week_is_submitted_once(client, db, resources):
    world, _, name = await submitted_entry(client, db, resources)
    response = await timesheet_action(
        client, world.member.headers, world.member.user_id, name, "submit"
    )
    body = assert_problem(response, 409, "timesheet-state")
    assert body["status"] == 409
    await approve(client, world.manager.headers, world.member.user_id, name)
    response = await timesheet_action(
        client, world.member.headers, world.member.user_id, name, "submit"
    )
    body = assert_problem(response, 409, "timesheet-state")
    assert body["status"] == 409
    sheet = await get_sheet(client, world.member.headers, world.member.user_id, name)
    assert sheet["status"] == "approved"
    assert [e["status"] for e in sheet["entries"]] == ["approved"]


async def test_the_current_week_can_be_submitted_but_not_next_week(client, db, resources):
    world = await setup(client, db, resources)
    await log(client, world.member, world.brand, today(), 30)
    sheet = await submit(client, world.member, iso_week(today()))
    assert sheet["status"] == "submitted"
    assert sheet["total_minutes"] == 30

    response = await timesheet_action(
        client,
        world.member.headers,
        world.member.user_id,
        iso_week(today() + timedelta(days=7)),
        "submit",
    )
    assert_problem(response, 422, "invalid-week")


@pytest.mark.parametrize(
    ("week", "slug"),
    [
        ("2026-47", "validation-error"),
        ("2026-w47", "validation-error"),
        ("26-W47", "validation-error"),
        ("2026-W7", "validation-error"),
        ("2026-W00", "validation-error"),
        ("2025-W53", "invalid-week"),  # 2025 has 52 weeks
        ("2026-W54", "validation-error"),
    ],
)
async def test_malformed_weeks_are_refused(client, db, resources, week, slug):
    world = await setup(client, db, resources)
    response = await client.get(
        f"/v1/timesheets/{world.member.user_id}/{week}", headers=world.member.headers
    )
    assert_problem(response, 422, slug)
    response = await timesheet_action(
        client, world.member.headers, world.member.user_id, week, "submit"
    )
    assert_problem(response, 422, slug)


async def test_only_the_person_submits_their_week(client, db, resources):
    world = await setup(client, db, resources)
    colleague = await add_person(client, db, resources.passwords, world.agency, "member")
    day = last_week()[2]
    entry = await log(client, world.member, world.brand, day, 30)
    name = iso_week(day)
    # Those who see the week may not submit it for the person.
    for person in (world.manager, world.owner):
        response = await timesheet_action(
            client, person.headers, world.member.user_id, name, "submit"
        )
        assert_problem(response, 403, "permission-denied")
    # A colleague does not even see it; nor does another agency.
    elsewhere = await setup(client, db, resources)
    for person in (colleague, elsewhere.owner, elsewhere.member):
        response = await timesheet_action(
            client, person.headers, world.member.user_id, name, "submit"
        )
        assert_problem(response, 404, "member-not-found")
        response = await client.get(
            f"/v1/timesheets/{world.member.user_id}/{name}", headers=person.headers
        )
        assert_problem(response, 404, "member-not-found")
    assert (await read_entry(client, world.member.headers, entry["id"]))["status"] == "open"
    sheet = await get_sheet(client, world.boss, world.member.user_id, name)
    assert sheet["status"] == "open"


async def test_approval_is_for_managers_and_not_for_ones_own_week(client, db, resources):
    world = await setup(client, db, resources)
    day = last_week()[1]
    name = iso_week(day)
    await log(client, world.member, world.brand, day, 30)

    # Not submitted yet.
    response = await timesheet_action(
        client, world.manager.headers, world.member.user_id, name, "approve"
    )
    assert_problem(response, 409, "timesheet-state")
    await submit(client, world.member, name)

    # A member approves nothing, not even their own week.
    response = await timesheet_action(
        client, world.member.headers, world.member.user_id, name, "approve"
    )
    assert_problem(response, 403, "permission-denied")

    # A manager does not approve their own week; another manager, or the owner, does.
    await assign(client, world.boss, world.manager.user_id, world.brand["id"])
    await log(client, world.manager, world.brand, day, 30)
    await submit(client, world.manager, name)
    response = await timesheet_action(
        client, world.manager.headers, world.manager.user_id, name, "approve"
    )
    assert_problem(response, 403, "self-approval")
    admin = await add_person(client, db, resources.passwords, world.agency, "admin")
    await assign(client, world.boss, admin.user_id, world.brand["id"])
    await log(client, admin, world.brand, day, 30)
    await submit(client, admin, name)
    response = await timesheet_action(client, admin.headers, admin.user_id, name, "approve")
    assert_problem(response, 403, "self-approval")
    sheet = await approve(client, admin.headers, world.manager.user_id, name)
    assert sheet["status"] == "approved"
    assert sheet["decided_by"] == str(admin.user_id)

    sheet = await approve(client, world.manager.headers, world.member.user_id, name)
    assert sheet["status"] == "approved"
    assert sheet["decided_by"] == str(world.manager.user_id)
    assert sheet["decided_at"] is not None
    assert {e["status"] for e in sheet["entries"]} == {"approved"}
    response = await timesheet_action(
        client, world.manager.headers, world.member.user_id, name, "approve"
    )
    assert_problem(response, 409, "timesheet-state")
    # An approved week is locked too.
    response = await post_entry(client, world.member, world.brand, day, 10)
    assert_problem(response, 409, "week-locked")

    # The owner may approve their own week.
    await assign(client, world.boss, world.owner.user_id, world.brand["id"])
    await log(client, world.owner, world.brand, day, 30)
    await submit(client, world.owner, name)
    sheet = await approve(client, world.boss, world.owner.user_id, name)
    assert sheet["status"] == "approved"


async def test_approval_freezes_the_most_specific_rate(client, db, resources):
    world = await setup(client, db, resources)
    boss = world.boss
    globex = await make_client(client, boss, name="Globex")
    rocket = await make_brand(client, boss, globex["id"], name="Rocket")
    await make_retainer(client, boss, globex["id"])
    colleague = await add_person(client, db, resources.passwords, world.agency, "member")
    await assign(client, boss, world.member.user_id, rocket["id"])
    for person in (colleague, world.manager):
        for brand in (world.brand, rocket):
            await assign(client, boss, person.user_id, brand["id"])

    rates: dict[str, dict] = {}
    for name, body in {
        "default": {"rate_minor": 8000},
        "member": {"rate_minor": 9000, "role": "member"},
        "acme": {"rate_minor": 10000, "client_id": world.customer["id"]},
        "camille_on_acme": {
            "rate_minor": 12000,
            "client_id": world.customer["id"],
            "user_id": str(world.member.user_id),
        },
    }.items():
        response = await client.post("/v1/rates", json=body, headers=boss)
        assert response.status_code == 201, response.text
        rates[name] = response.json()

    day = last_week()[4]
    week = iso_week(day)
    on_acme = await log(client, world.member, world.brand, day, 60)
    on_globex = await log(client, world.member, rocket, day, 60)
    colleague_on_acme = await log(client, colleague, world.brand, day, 60)
    colleague_on_globex = await log(client, colleague, rocket, day, 60)
    manager_on_globex = await log(client, world.manager, rocket, day, 60)
    manager_on_acme = await log(client, world.manager, world.brand, day, 60)
    for person in (world.member, colleague, world.manager):
        await submit(client, person, week)
    for person in (world.member, colleague, world.manager):
        await approve(client, boss, person.user_id, week)

    expected = {
        on_acme["id"]: 12000,  # this member on this client
        on_globex["id"]: 9000,  # the member role
        colleague_on_acme["id"]: 10000,  # the client
        colleague_on_globex["id"]: 9000,  # the member role
        manager_on_acme["id"]: 10000,  # the client
        manager_on_globex["id"]: 8000,  # no manager rate: the default
    }
    for entry_id, rate in expected.items():
        entry = await read_entry(client, boss, entry_id)
        assert entry["status"] == "approved"
        assert (entry["rate_minor"], entry["rate_currency"]) == (rate, "CAD"), entry_id

    # Rates change later; approved time keeps the rate it was approved at.
    for rate in rates.values():
        response = await client.patch(
            f"/v1/rates/{rate['id']}",
            json={"rate_minor": rate["rate_minor"] + 1},
            headers={**boss, "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
    response = await client.delete(f"/v1/rates/{rates['camille_on_acme']['id']}", headers=boss)
    assert response.status_code == 204, response.text
    for entry_id, rate in expected.items():
        assert (await read_entry(client, boss, entry_id))["rate_minor"] == rate


async def test_a_returned_week_reopens_its_time(client, db, resources):
    world = await setup(client, db, resources)
    response = await client.post("/v1/rates", json={"rate_minor": 8000}, headers=world.boss)
    assert response.status_code == 201, response.text
    day = last_week()[0]
    name = iso_week(day)
    entry = await log(client, world.member, world.brand, day, 60)
    m = world.manager.headers

    # Only a submitted or approved week goes back.
    response = await timesheet_action(
        client, m, world.member.user_id, name, "return", {"reason": "why"}
    )
    assert_problem(response, 409, "timesheet-state")
    await submit(client, world.member, name)
    response = await timesheet_action(
        client, world.member.headers, world.member.user_id, name, "return", {"reason": "x"}
    )
    assert_problem(response, 403, "permission-denied")
    for body in ({"reason": "   "}, {}, {"reason": "x", "extra": 1}):
        response = await timesheet_action(client, m, world.member.user_id, name, "return", body)
        assert_problem(response, 422, "validation-error")

    approved = await approve(client, m, world.member.user_id, name)
    assert approved["entries"][0]["rate_minor"] == 8000

    sheet = (
        await timesheet_action(
            client, m, world.member.user_id, name, "return", {"reason": "  Split the crisis  "}
        )
    ).json()
    assert sheet["status"] == "returned"
    assert sheet["reason"] == "Split the crisis"
    assert sheet["decided_by"] == str(world.manager.user_id)
    assert sheet["total_minutes"] == 60
    reopened = await read_entry(client, world.member.headers, entry["id"])
    assert reopened["status"] == "open"
    assert reopened["rate_minor"] is None and reopened["rate_currency"] is None
    assert await get_sheet(client, world.member.headers, world.member.user_id, name) == sheet
    # A returned week is not approved until it is submitted again.
    response = await timesheet_action(client, m, world.member.user_id, name, "approve")
    assert_problem(response, 409, "timesheet-state")
    response = await timesheet_action(
        client, m, world.member.user_id, name, "return", {"reason": "again"}
    )
    assert_problem(response, 409, "timesheet-state")

    # The week is open again: the member corrects it and adds to it.
    response = await client.patch(
        f"/v1/time-entries/{entry['id']}", json={"minutes": 45}, headers=world.member.headers
    )
    assert response.status_code == 200, response.text
    added = await log(client, world.member, world.brand, day + timedelta(days=1), 15)

    sheet = await submit(client, world.member, name)
    assert sheet["status"] == "submitted"
    assert sheet["reason"] is None
    assert sheet["decided_by"] is None and sheet["decided_at"] is None
    assert sheet["total_minutes"] == 60
    assert {e["id"]: e["status"] for e in sheet["entries"]} == {
        entry["id"]: "submitted",
        added["id"]: "submitted",
    }
    sheet = await approve(client, m, world.member.user_id, name)
    assert {e["rate_minor"] for e in sheet["entries"]} == {8000}


# ---------------------------------------------------------------------------------------------
# Invoiced time


async def invoiced_week(client, db, resources) -> tuple[World, dict, dict, str]:
    """An approved week of two entries, one of which is then invoiced (in the database: no
    route invoices time yet)."""
    world = await setup(client, db, resources)
    day = last_week()[3]
    name = iso_week(day)
    invoiced = await log(client, world.member, world.brand, day, 60)
    other = await log(client, world.member, world.brand, day, 30)
    await submit(client, world.member, name)
    await approve(client, world.manager.headers, world.member.user_id, name)
    async with db.tenant_transaction(world.agency.tenant_id) as session:
        await session.execute(
            update(TimeEntry)
            .where(TimeEntry.id == uuid.UUID(invoiced["id"]))  # type: ignore[arg-type]
            .values(status="invoiced")
        )
    seen = await read_entry(client, world.boss, invoiced["id"])
    assert seen["status"] == "invoiced"
    assert seen["rate_minor"] is None  # no rates in this agency
    return world, seen, await read_entry(client, world.boss, other["id"]), name


@pytest.mark.parametrize("who", ["member", "manager", "owner"])
async def test_the_api_never_changes_invoiced_time(client, db, resources, who):
    world, invoiced, _, _ = await invoiced_week(client, db, resources)
    person = {"member": world.member, "manager": world.manager, "owner": world.owner}[who]
    url = f"/v1/time-entries/{invoiced['id']}"
    response = await client.patch(url, json={"note": "x"}, headers=person.headers)
    assert_problem(response, 409, "time-entry-locked")
    response = await client.delete(url, headers=person.headers)
    assert_problem(response, 409, "time-entry-locked")
    assert await read_entry(client, world.boss, invoiced["id"]) == invoiced


async def test_a_week_with_invoiced_time_is_not_returned(client, db, resources):
    world, invoiced, other, name = await invoiced_week(client, db, resources)
    response = await timesheet_action(
        client, world.manager.headers, world.member.user_id, name, "return", {"reason": "no"}
    )
    assert_problem(response, 409, "time-entry-locked")
    sheet = await get_sheet(client, world.boss, world.member.user_id, name)
    assert sheet["status"] == "approved"
    assert sheet["reason"] is None
    assert {e["id"]: e["status"] for e in sheet["entries"]} == {
        invoiced["id"]: "invoiced",
        other["id"]: "approved",
    }
    assert await read_entry(client, world.boss, other["id"]) == other


async def test_the_database_never_changes_invoiced_time(client, db, resources):
    world, invoiced, other, _ = await invoiced_week(client, db, resources)
    target = uuid.UUID(invoiced["id"])
    for statement in (
        update(TimeEntry).where(TimeEntry.id == target).values(minutes=1),  # type: ignore[arg-type]
        update(TimeEntry).where(TimeEntry.id == target).values(status="open"),  # type: ignore[arg-type]
        delete(TimeEntry).where(TimeEntry.id == target),  # type: ignore[arg-type]
    ):
        with pytest.raises((IntegrityError, DBAPIError)) as raised:
            async with db.tenant_transaction(world.agency.tenant_id) as session:
                await session.execute(statement)
        assert "invoiced and cannot change" in str(raised.value)
    # Other rows of the table still change.
    async with db.tenant_transaction(world.agency.tenant_id) as session:
        await session.execute(
            update(TimeEntry)
            .where(TimeEntry.id == uuid.UUID(other["id"]))  # type: ignore[arg-type]
            .values(note="fine")
        )
    assert await read_entry(client, world.boss, invoiced["id"]) == invoiced
    assert (await read_entry(client, world.boss, other["id"]))["note"] == "fine"
