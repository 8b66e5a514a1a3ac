"""Time entries, timers and weekly timesheets over HTTP: who logs what, on which day, how the
week locks, how approval freezes rates, and what invoiced time refuses.

"Now" is the real clock, read in the agency's timezone (America/Montreal). Where a test needs
a precise stop time for a timer, it freezes the clock of the entries service only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

import billing.service.entries as entries_service
from billing.models import TimeEntry, Timer
from infra.pagination import encode_cursor
from tests.support.factories import (
    Agency,
    Person,
    add_person,
    make_brand,
    make_client,
    make_post,
    new_agency,
    walk,
)
from tests.support.problems import assert_field_refused, assert_problem

MTL = ZoneInfo("America/Montreal")
ASSIGNED_FROM = "2026-01-01"
RETAINER_FROM = "2026-01"
FALL_BACK = date(2026, 11, 1)  # the clocks go back: 25 hours
SPRING_FORWARD = date(2026, 3, 8)  # the clocks go forward: 23 hours


# ---------------------------------------------------------------------------------------------
# Helpers


def today() -> date:
    return datetime.now(UTC).astimezone(MTL).date()


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=MTL)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def last_week() -> list[date]:
    """Monday to Sunday of the previous ISO week: every day of it has begun."""
    monday = monday_of(today()) - timedelta(days=7)
    return [monday + timedelta(days=i) for i in range(7)]


@dataclass
class World:
    agency: Agency
    owner: Person
    manager: Person
    member: Person
    acme: dict
    brand: dict

    @property
    def boss(self) -> dict[str, str]:
        return self.owner.headers


async def assign(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    user_id: uuid.UUID,
    brand_id: str,
    start: str = ASSIGNED_FROM,
    end: str | None = None,
) -> dict:
    response = await client.post(
        "/v1/assignments",
        json={
            "brand_id": brand_id,
            "user_id": str(user_id),
            "role": "community_manager",
            "start_date": start,
            "end_date": end,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def make_retainer(
    client: httpx.AsyncClient, headers: dict[str, str], client_id: str, start: str = RETAINER_FROM
) -> dict:
    response = await client.post(
        "/v1/retainers",
        json={
            "client_id": client_id,
            "start_month": start,
            "monthly_minutes": 6000,
            "fee_minor": 100000,
            "overage": {"policy": "bill_at_rate", "rate_minor": 9000},
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def setup(
    client, db, resources, *, retainer: bool = True, timezone: str = "America/Montreal"
) -> World:
    """An agency with one client and brand; a member assigned to it since January; a manager
    who is not assigned to anything; a retainer covering the whole year."""
    agency = await new_agency(client, timezone=timezone)
    owner = agency.owner
    acme = await make_client(client, owner.headers, name="Acme")
    brand = await make_brand(client, owner.headers, acme["id"], name="Acme Brand")
    member = await add_person(client, db, resources.passwords, agency, "member", name="Camille")
    manager = await add_person(client, db, resources.passwords, agency, "manager", name="Mona")
    await assign(client, owner.headers, member.user_id, brand["id"])
    if retainer:
        await make_retainer(client, owner.headers, acme["id"])
    return World(agency, owner, manager, member, acme, brand)


def entry_body(brand: dict | str, day: date | None, minutes: int = 60, **extra: Any) -> dict:
    body: dict[str, Any] = {
        "brand_id": brand if isinstance(brand, str) else brand["id"],
        "minutes": minutes,
        "activity": "moderation",
    }
    if day is not None:
        body["date"] = day.isoformat()
    body.update(extra)
    return body


async def post_entry(
    client: httpx.AsyncClient,
    person: Person,
    brand: dict | str,
    day: date | None,
    minutes: int = 60,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        "/v1/time-entries",
        json=entry_body(brand, day, minutes, **extra),
        headers=person.headers,
    )


async def log(
    client: httpx.AsyncClient,
    person: Person,
    brand: dict | str,
    day: date | None,
    minutes: int = 60,
    **extra: Any,
) -> dict:
    response = await post_entry(client, person, brand, day, minutes, **extra)
    assert response.status_code == 201, response.text
    return response.json()


async def read_entry(client: httpx.AsyncClient, headers: dict[str, str], entry_id: str) -> dict:
    response = await client.get(f"/v1/time-entries/{entry_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def count_entries(db, tenant_id: uuid.UUID) -> int:
    async with db.tenant_transaction(tenant_id) as session:
        return int(await session.scalar(select(func.count()).select_from(TimeEntry)) or 0)


async def move_timer_start(db, world: World, person: Person, started_at: datetime) -> None:
    async with db.tenant_transaction(world.agency.tenant_id) as session:
        result = await session.execute(
            update(Timer)
            .where(Timer.membership_id == person.membership_id)  # type: ignore[arg-type]
            .values(started_at=started_at)
        )
        assert result.rowcount == 1


def freeze_entries_clock(monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
    """The timer's stop time, exactly: only the entries service reads this clock."""
    monkeypatch.setattr(entries_service, "utcnow", lambda: at.astimezone(UTC))


async def timesheet_action(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    user_id: uuid.UUID,
    week: str,
    action: str,
    body: dict | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/timesheets/{user_id}/{week}/{action}",
        json=body,
        headers=headers,
    )


async def submit(client, person: Person, week: str) -> dict:
    response = await timesheet_action(client, person.headers, person.user_id, week, "submit")
    assert response.status_code == 200, response.text
    return response.json()


async def approve(client, headers: dict[str, str], user_id: uuid.UUID, week: str) -> dict:
    response = await timesheet_action(client, headers, user_id, week, "approve")
    assert response.status_code == 200, response.text
    return response.json()


async def get_sheet(client, headers: dict[str, str], user_id: uuid.UUID, week: str) -> dict:
    response = await client.get(f"/v1/timesheets/{user_id}/{week}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


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
    assert entry["client_id"] == world.acme["id"]
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
    other = await make_brand(client, world.boss, world.acme["id"], name="Other Brand")
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
    second = await make_brand(client, world.boss, world.acme["id"], name="Second")
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
    await make_retainer(client, world.boss, world.acme["id"], start="2026-06")
    response = await post_entry(client, world.member, world.brand, date(2026, 5, 29), 30)
    assert_problem(response, 422, "no-retainer")
    await log(client, world.member, world.brand, date(2026, 6, 1), 30)
    response = await client.patch(
        f"/v1/time-entries/{entry['id']}", json={"billable": True}, headers=world.member.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["billable"] is True


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
        client_id=uuid.UUID(world.acme["id"]),
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
        client_id=uuid.UUID(world.acme["id"]),
    )
    week = iso_week(today() - timedelta(days=7))
    response = await client.get(f"/v1/timesheets/{contact.user_id}/{week}", headers=world.boss)
    assert_problem(response, 404, "member-not-found")
    response = await client.get(f"/v1/timesheets/{uuid.uuid4()}/{week}", headers=world.boss)
    assert_problem(response, 404, "member-not-found")


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
    assert await ids(boss, client_id=world.acme["id"]) == {a["id"], c["id"], d["id"]}
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
        "acme": {"rate_minor": 10000, "client_id": world.acme["id"]},
        "camille_on_acme": {
            "rate_minor": 12000,
            "client_id": world.acme["id"],
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


# ---------------------------------------------------------------------------------------------
# Timers


async def start_timer(
    client: httpx.AsyncClient, person: Person, brand: dict, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/timers/start",
        json={"brand_id": brand["id"], "activity": "community_animation", **extra},
        headers=person.headers,
    )


async def stop_timer(client: httpx.AsyncClient, person: Person) -> dict:
    response = await client.post("/v1/timers/stop", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def current(client: httpx.AsyncClient, person: Person) -> dict | None:
    response = await client.get("/v1/timers/current", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()["timer"]  # type: ignore[no-any-return]


async def test_one_timer_at_a_time(client, db, resources):
    world = await setup(client, db, resources)
    assert await current(client, world.member) is None
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    assert_problem(response, 409, "no-running-timer")
    response = await client.delete("/v1/timers/current", headers=world.member.headers)
    assert_problem(response, 409, "no-running-timer")

    before = datetime.now(UTC)
    response = await start_timer(client, world.member, world.brand, note="Live", billable=False)
    assert response.status_code == 201, response.text
    timer = response.json()
    assert timer["brand_id"] == world.brand["id"]
    assert timer["activity"] == "community_animation"
    assert timer["billable"] is False
    assert timer["note"] == "Live"
    assert timer["elapsed_minutes"] == 0
    assert before - timedelta(seconds=5) <= utc(timer["started_at"]) <= datetime.now(UTC)
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
    other = await make_brand(client, world.boss, world.acme["id"])
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
    started = datetime.now(UTC) - timedelta(minutes=45)
    await move_timer_start(db, world, world.member, started)
    assert (await current(client, world.member))["elapsed_minutes"] == 45

    stopped = await stop_timer(client, world.member)
    assert stopped["flagged"] is False
    entries = stopped["entries"]
    assert sum(e["minutes"] for e in entries) == 45
    # One entry per local day the 45 minutes touched (two only just after midnight).
    days = sorted({started.astimezone(MTL).date(), datetime.now(MTL).date()})
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


async def test_a_timer_across_midnight_logs_one_entry_per_day(client, db, resources, monkeypatch):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=3)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, local(day, 22, 30))
    freeze_entries_clock(monkeypatch, local(day + timedelta(days=1), 1, 15))

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


async def test_a_timer_over_the_night_the_clocks_go_back(client, db, resources, monkeypatch):
    world = await setup(client, db, resources)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    # 23:00 on 31 October (EDT) to 03:00 on 1 November (EST): five real hours.
    await move_timer_start(db, world, world.member, local(FALL_BACK - timedelta(days=1), 23))
    freeze_entries_clock(monkeypatch, local(FALL_BACK, 3))
    stopped = await stop_timer(client, world.member)
    assert stopped["flagged"] is False
    assert [(e["date"], e["minutes"]) for e in stopped["entries"]] == [
        ("2026-10-31", 60),
        ("2026-11-01", 240),
    ]


async def test_a_forgotten_timer_stops_at_twelve_hours_and_is_flagged(client, db, resources):
    world = await setup(client, db, resources)
    now = datetime.now(UTC)
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


async def test_a_timer_stop_is_held_to_the_length_of_the_day(client, db, resources, monkeypatch):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=2)
    await log(client, world.member, world.brand, day, 1400)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, local(day, 10))
    freeze_entries_clock(monkeypatch, local(day, 11))
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    body = assert_problem(response, 422, "day-overfull")
    assert body["logged_minutes"] == 1400
    assert await count_entries(db, world.agency.tenant_id) == 1
    assert await current(client, world.member) is not None


async def test_a_timer_stopped_at_exactly_twelve_hours_is_not_flagged(
    client, db, resources, monkeypatch
):
    world = await setup(client, db, resources)
    day = today() - timedelta(days=4)
    for stop, flagged in ((timedelta(hours=12), False), (timedelta(hours=12, seconds=1), True)):
        response = await start_timer(client, world.member, world.brand)
        assert response.status_code == 201, response.text
        await move_timer_start(db, world, world.member, local(day, 6))
        freeze_entries_clock(monkeypatch, local(day, 6) + stop)
        stopped = await stop_timer(client, world.member)
        assert stopped["flagged"] is flagged
        assert [(e["date"], e["minutes"]) for e in stopped["entries"]] == [(day.isoformat(), 720)]
        reason = "forgotten_timer" if flagged else None
        assert stopped["entries"][0]["flagged_reason"] == reason
        day -= timedelta(days=1)


async def test_a_timer_of_a_few_seconds_logs_nothing(client, db, resources, monkeypatch):
    world = await setup(client, db, resources)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    started = utc(response.json()["started_at"])
    freeze_entries_clock(monkeypatch, started + timedelta(seconds=20))
    stopped = await stop_timer(client, world.member)
    assert stopped == {"entries": [], "flagged": False}
    assert await current(client, world.member) is None
    assert await count_entries(db, world.agency.tenant_id) == 0
    # Half a minute counts as a minute.
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    started = utc(response.json()["started_at"])
    freeze_entries_clock(monkeypatch, started + timedelta(seconds=30))
    stopped = await stop_timer(client, world.member)
    assert [e["minutes"] for e in stopped["entries"]] == [1]


async def test_a_timer_over_the_night_the_clocks_go_forward(client, db, resources, monkeypatch):
    world = await setup(client, db, resources)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    # 23:00 on 7 March (EST) to 04:00 on 8 March (EDT): four real hours.
    await move_timer_start(db, world, world.member, local(SPRING_FORWARD - timedelta(days=1), 23))
    freeze_entries_clock(monkeypatch, local(SPRING_FORWARD, 4))
    stopped = await stop_timer(client, world.member)
    assert stopped["flagged"] is False
    assert [(e["date"], e["minutes"]) for e in stopped["entries"]] == [
        ("2026-03-07", 60),
        ("2026-03-08", 180),
    ]


async def test_a_timer_logs_no_time_on_a_day_after_the_assignment_ended(
    client, db, resources, monkeypatch
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
    freeze_entries_clock(monkeypatch, local(last + timedelta(days=1), 1, 15))
    response = await client.post("/v1/timers/stop", headers=world.member.headers)
    if response.status_code == 200:
        assert {e["date"] for e in response.json()["entries"]} <= {last.isoformat()}
    else:
        assert_problem(response, 422, "not-assigned")
    logged = await walk(client, "/v1/time-entries", world.boss)
    assert {e["date"] for e in logged} <= {last.isoformat()}, logged


async def test_a_brand_of_another_agency_cannot_be_timed(client, db, resources):
    world = await setup(client, db, resources)
    elsewhere = await setup(client, db, resources)
    response = await start_timer(client, world.member, elsewhere.brand)
    assert_field_refused(response, "/brand_id", "brand-not-found")
    assert await current(client, world.member) is None
    assert await current(client, elsewhere.member) is None


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
    await move_timer_start(db, world, world.member, datetime.now(UTC) - timedelta(minutes=30))
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


async def test_a_timer_that_cannot_be_logged_is_kept(client, db, resources):
    """Stopping a billable timer on a client without a retainer is refused; the running time is
    not lost: the timer stays until it is discarded."""
    world = await setup(client, db, resources, retainer=False)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    timer = response.json()
    await move_timer_start(db, world, world.member, datetime.now(UTC) - timedelta(minutes=20))
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
    await move_timer_start(db, world, world.member, datetime.now(UTC) - timedelta(minutes=20))
    stopped = await stop_timer(client, world.member)
    assert sum(e["minutes"] for e in stopped["entries"]) == 20
    assert {e["billable"] for e in stopped["entries"]} == {False}


# ---------------------------------------------------------------------------------------------
# Other timezones: the agency's clock, never the server's nor Montreal's


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata"])
async def test_days_are_the_agencys_days(client, db, resources, zone):
    tz = ZoneInfo(zone)
    world = await setup(client, db, resources, timezone=zone)
    here = datetime.now(UTC).astimezone(tz).date()
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


async def test_a_timer_splits_at_the_agencys_midnight(client, db, resources, monkeypatch):
    zone = ZoneInfo("Asia/Kolkata")  # UTC+05:30: midnight is at 18:30 UTC
    world = await setup(client, db, resources, timezone="Asia/Kolkata")
    day = datetime.now(UTC).astimezone(zone).date() - timedelta(days=3)
    response = await start_timer(client, world.member, world.brand)
    assert response.status_code == 201, response.text
    await move_timer_start(db, world, world.member, datetime.combine(day, time(23, 0), tzinfo=zone))
    freeze_entries_clock(
        monkeypatch, datetime.combine(day + timedelta(days=1), time(1, 0), tzinfo=zone)
    )
    stopped = await stop_timer(client, world.member)
    assert [(e["date"], e["minutes"]) for e in stopped["entries"]] == [
        (day.isoformat(), 60),
        ((day + timedelta(days=1)).isoformat(), 60),
    ]
