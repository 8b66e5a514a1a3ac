"""Staff assignments on brands, and the capacity views built on them."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.support.factories import (
    Agency,
    add_person,
    make_brand,
    make_client,
    new_agency,
    new_world,
    walk,
)
from tests.support.problems import assert_field_refused, assert_problem

NOV = "2026-11"


# ---------------------------------------------------------------------------------------------
# Helpers


def assignment_body(
    user_id: uuid.UUID | str,
    brand_id: str,
    start: date | str,
    end: date | str | None = None,
    role: str = "community_manager",
    minutes: int = 0,
) -> dict[str, Any]:
    return {
        "brand_id": brand_id,
        "user_id": str(user_id),
        "role": role,
        "monthly_minutes": minutes,
        "start_date": str(start),
        "end_date": None if end is None else str(end),
    }


async def post_assignment(client, headers, **kwargs: Any) -> httpx.Response:
    return await client.post("/v1/assignments", json=assignment_body(**kwargs), headers=headers)


async def assign(client, headers, **kwargs: Any) -> dict:
    response = await post_assignment(client, headers, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


async def set_capacity(client, headers, user_id, minutes: int) -> None:
    response = await client.patch(
        f"/v1/members/{user_id}", json={"monthly_capacity_minutes": minutes}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["monthly_capacity_minutes"] == minutes


async def setup(client) -> tuple[Agency, dict[str, str], dict, dict]:
    world = await new_world(
        client, customer={"name": "Acme"}, brands={"brand": {"name": "Acme Brand"}}
    )
    return world.agency, world.boss, world.customer, world.brand


# ---------------------------------------------------------------------------------------------
# Creating


@pytest.mark.parametrize("role", ["owner", "admin", "manager", "member"])
async def test_active_staff_can_be_assigned(client, db, resources, role):
    agency, owner, _, brand = await setup(client)
    person = (
        agency.owner
        if role == "owner"
        else await add_person(client, db, resources.passwords, agency, role)
    )
    response = await post_assignment(
        client,
        owner,
        user_id=person.user_id,
        brand_id=brand["id"],
        start="2026-11-01",
        end="2026-12-31",
        role="lead",
        minutes=1200,
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    body = response.json()
    expected = {
        "brand_id": brand["id"],
        "user_id": str(person.user_id),
        "role": "lead",
        "monthly_minutes": 1200,
        "start_date": "2026-11-01",
        "end_date": "2026-12-31",
        "version": 1,
    }
    assert {k: body[k] for k in expected} == expected

    seen = await client.get(f"/v1/assignments/{body['id']}", headers=owner)
    assert seen.status_code == 200, seen.text
    assert seen.json() == body
    listed = await walk(client, "/v1/assignments", owner, brand_id=brand["id"])
    assert [a["id"] for a in listed] == [body["id"]]


async def test_only_active_staff_of_the_agency_can_be_assigned(client, db, resources):
    agency, owner, acme, brand = await setup(client)
    contact = await add_person(
        client, db, resources.passwords, agency, "client", client_id=uuid.UUID(acme["id"])
    )
    disabled = await add_person(client, db, resources.passwords, agency, "member")
    response = await client.patch(
        f"/v1/members/{disabled.user_id}", json={"status": "disabled"}, headers=owner
    )
    assert response.status_code == 200, response.text
    elsewhere = await new_agency(client)

    for person in (contact, disabled):
        response = await post_assignment(
            client, owner, user_id=person.user_id, brand_id=brand["id"], start="2026-11-01"
        )
        assert_problem(response, 422, "not-staff")
    for stranger in (uuid.uuid4(), elsewhere.owner.user_id):
        response = await post_assignment(
            client, owner, user_id=stranger, brand_id=brand["id"], start="2026-11-01"
        )
        assert_field_refused(response, "/user_id", "member-not-found")
    assert await walk(client, "/v1/assignments", owner) == []


async def test_an_unknown_or_foreign_brand_is_not_found(client, db, resources):
    agency, owner, _, _ = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    elsewhere = await new_agency(client)
    theirs = await make_brand(
        client, elsewhere.owner.headers, (await make_client(client, elsewhere.owner.headers))["id"]
    )
    for brand_id in (str(uuid.uuid4()), theirs["id"]):
        response = await post_assignment(
            client, owner, user_id=person.user_id, brand_id=brand_id, start="2026-11-01"
        )
        assert_field_refused(response, "/brand_id", "brand-not-found")
    assert await walk(client, "/v1/assignments", owner) == []


async def test_the_end_cannot_come_before_the_start(client, db, resources):
    agency, owner, _, brand = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    response = await post_assignment(
        client,
        owner,
        user_id=person.user_id,
        brand_id=brand["id"],
        start="2026-11-10",
        end="2026-11-09",
    )
    assert_problem(response, 422, "invalid-dates")
    assert await walk(client, "/v1/assignments", owner) == []

    # A single day is fine.
    await assign(
        client,
        owner,
        user_id=person.user_id,
        brand_id=brand["id"],
        start="2026-11-10",
        end="2026-11-10",
    )


BASE = {"start": "2026-11-01", "end": "2026-11-30", "role": "community_manager"}


@pytest.mark.parametrize(
    ("other", "status"),
    [
        ({"start": "2026-11-15", "end": "2026-12-15"}, 409),
        ({"start": "2026-10-01", "end": "2026-11-01"}, 409),  # shares the first day
        ({"start": "2026-11-30", "end": None}, 409),  # shares the last day, open-ended
        ({"start": "2026-10-01", "end": None}, 409),
        ({"start": "2026-11-10", "end": "2026-11-12"}, 409),  # inside
        ({"start": "2026-11-01", "end": "2026-11-30"}, 409),  # the same
        ({"start": "2026-12-01", "end": "2026-12-31"}, 201),  # right after
        ({"start": "2026-10-01", "end": "2026-10-31"}, 201),  # right before
        ({"start": "2026-11-01", "end": "2026-11-30", "role": "analyst"}, 201),
        ({"start": "2026-11-01", "end": "2026-11-30", "brand": "other"}, 201),
        ({"start": "2026-11-01", "end": "2026-11-30", "person": "other"}, 201),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else str(v),
)
async def test_the_same_person_role_and_brand_never_overlap(client, db, resources, other, status):
    agency, owner, acme, brand = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    first = await assign(client, owner, user_id=person.user_id, brand_id=brand["id"], **BASE)

    brand_id = brand["id"]
    if other.get("brand") == "other":
        brand_id = (await make_brand(client, owner, acme["id"]))["id"]
    user_id = person.user_id
    if other.get("person") == "other":
        user_id = (await add_person(client, db, resources.passwords, agency, "member")).user_id
    response = await post_assignment(
        client,
        owner,
        user_id=user_id,
        brand_id=brand_id,
        start=other["start"],
        end=other["end"],
        role=other.get("role", BASE["role"]),
    )
    listed = await walk(client, "/v1/assignments", owner)
    if status == 409:
        assert_problem(response, 409, "assignment-overlap")
        assert [a["id"] for a in listed] == [first["id"]]
    else:
        assert response.status_code == 201, response.text
        assert {a["id"] for a in listed} == {first["id"], response.json()["id"]}


@pytest.mark.parametrize(
    ("target", "change"),
    [
        ("first", {"end_date": "2026-12-05"}),
        ("first", {"end_date": None}),
        ("second", {"start_date": "2026-11-20"}),
        ("second", {"start_date": "2026-11-30", "end_date": "2026-11-30"}),
    ],
    ids=str,
)
async def test_a_patch_cannot_create_an_overlap(client, db, resources, target, change):
    agency, owner, _, brand = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    common = {"user_id": person.user_id, "brand_id": brand["id"]}
    made = {
        "first": await assign(client, owner, **common, start="2026-11-01", end="2026-11-30"),
        "second": await assign(client, owner, **common, start="2026-12-01", end="2026-12-31"),
    }
    path = f"/v1/assignments/{made[target]['id']}"
    response = await client.patch(path, json=change, headers=owner)
    assert_problem(response, 409, "assignment-overlap")
    assert (await client.get(path, headers=owner)).json() == made[target]

    # A change that keeps them apart is fine.
    response = await client.patch(
        f"/v1/assignments/{made['first']['id']}", json={"end_date": "2026-11-29"}, headers=owner
    )
    assert response.status_code == 200, response.text


async def test_no_assignment_on_an_archived_brand_or_client(client, db, resources):
    agency, owner, _, brand = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    response = await client.patch(
        f"/v1/brands/{brand['id']}", json={"status": "archived"}, headers=owner
    )
    assert response.status_code == 200, response.text
    response = await post_assignment(
        client, owner, user_id=person.user_id, brand_id=brand["id"], start="2026-11-01"
    )
    assert_problem(response, 409, "brand-archived")

    other = await make_client(client, owner)
    live_brand = await make_brand(client, owner, other["id"])
    response = await client.patch(
        f"/v1/clients/{other['id']}", json={"status": "archived"}, headers=owner
    )
    assert response.status_code == 200, response.text
    response = await post_assignment(
        client, owner, user_id=person.user_id, brand_id=live_brand["id"], start="2026-11-01"
    )
    assert_problem(response, 409, "client-archived")
    assert await walk(client, "/v1/assignments", owner) == []


# ---------------------------------------------------------------------------------------------
# Reading


async def test_a_member_sees_only_their_own_assignments(client, db, resources):
    agency, owner, acme, brand = await setup(client)
    me = await add_person(client, db, resources.passwords, agency, "member")
    colleague = await add_person(client, db, resources.passwords, agency, "member")
    other_brand = await make_brand(client, owner, acme["id"])
    mine = [
        await assign(client, owner, user_id=me.user_id, brand_id=brand["id"], start="2026-11-01"),
        await assign(
            client, owner, user_id=me.user_id, brand_id=other_brand["id"], start="2026-11-01"
        ),
    ]
    theirs = await assign(
        client, owner, user_id=colleague.user_id, brand_id=brand["id"], start="2026-11-01"
    )

    listed = await walk(client, "/v1/assignments", me.headers)
    assert sorted(a["id"] for a in listed) == sorted(a["id"] for a in mine)
    # Asking for someone else's by filter gives nothing rather than theirs.
    assert await walk(client, "/v1/assignments", me.headers, user_id=str(colleague.user_id)) == []

    response = await client.get(f"/v1/assignments/{mine[0]['id']}", headers=me.headers)
    assert response.status_code == 200, response.text
    response = await client.get(f"/v1/assignments/{theirs['id']}", headers=me.headers)
    assert_problem(response, 404, "assignment-not-found")

    # Members neither create nor change assignments, not even their own.
    response = await post_assignment(
        client,
        me.headers,
        user_id=me.user_id,
        brand_id=brand["id"],
        start="2027-01-01",
        role="analyst",
    )
    assert_problem(response, 403, "permission-denied")
    response = await client.patch(
        f"/v1/assignments/{mine[0]['id']}", json={"monthly_minutes": 99}, headers=me.headers
    )
    assert_problem(response, 403, "permission-denied")
    assert (await client.get(f"/v1/assignments/{mine[0]['id']}", headers=owner)).json() == mine[0]
    assert len(await walk(client, "/v1/assignments", owner)) == 3

    # The whole team is visible to a manager.
    manager = await add_person(client, db, resources.passwords, agency, "manager")
    assert len(await walk(client, "/v1/assignments", manager.headers)) == 3


async def test_client_contacts_see_no_assignments(client, db, resources):
    agency, owner, acme, brand = await setup(client)
    contact = await add_person(
        client, db, resources.passwords, agency, "client", client_id=uuid.UUID(acme["id"])
    )
    staff = await add_person(client, db, resources.passwords, agency, "member")
    made = await assign(
        client, owner, user_id=staff.user_id, brand_id=brand["id"], start="2026-11-01"
    )
    response = await client.get("/v1/assignments", headers=contact.headers)
    assert_problem(response, 403, "permission-denied")
    response = await client.get(f"/v1/assignments/{made['id']}", headers=contact.headers)
    assert_problem(response, 403, "permission-denied")


async def test_assignments_filter_and_page(client, db, resources):
    agency, owner, acme, brand = await setup(client)
    other_brand = await make_brand(client, owner, acme["id"])
    a = await add_person(client, db, resources.passwords, agency, "member")
    b = await add_person(client, db, resources.passwords, agency, "member")
    made = {
        "a-brand-nov": await assign(
            client,
            owner,
            user_id=a.user_id,
            brand_id=brand["id"],
            start="2026-11-01",
            end="2026-11-30",
        ),
        "a-other-dec": await assign(
            client, owner, user_id=a.user_id, brand_id=other_brand["id"], start="2026-12-01"
        ),
        "b-brand-open": await assign(
            client, owner, user_id=b.user_id, brand_id=brand["id"], start="2026-10-15"
        ),
        "b-other-oct": await assign(
            client,
            owner,
            user_id=b.user_id,
            brand_id=other_brand["id"],
            start="2026-10-01",
            end="2026-10-31",
        ),
        "b-brand-analyst": await assign(
            client,
            owner,
            user_id=b.user_id,
            brand_id=brand["id"],
            start="2026-11-30",
            end="2026-11-30",
            role="analyst",
        ),
    }
    ids = {v["id"]: k for k, v in made.items()}

    async def found(**params: Any) -> set[str]:
        return {ids[a["id"]] for a in await walk(client, "/v1/assignments", owner, **params)}

    assert await found() == set(made)
    assert await found(brand_id=brand["id"]) == {"a-brand-nov", "b-brand-open", "b-brand-analyst"}
    assert await found(user_id=str(a.user_id)) == {"a-brand-nov", "a-other-dec"}
    assert await found(active_on="2026-11-30") == {"a-brand-nov", "b-brand-open", "b-brand-analyst"}
    assert await found(active_on="2026-12-01") == {"a-other-dec", "b-brand-open"}
    assert await found(active_on="2026-10-01") == {"b-other-oct"}
    assert await found(user_id=str(b.user_id), brand_id=other_brand["id"]) == {"b-other-oct"}

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(10):
        response = await client.get("/v1/assignments", params=params, headers=owner)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [x["id"] for x in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == set(ids)


# ---------------------------------------------------------------------------------------------
# Changing


async def test_ending_an_assignment_is_audited(client, db, resources):
    agency, owner, _, brand = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    made = await assign(
        client, owner, user_id=person.user_id, brand_id=brand["id"], start="2026-11-01", minutes=600
    )
    path = f"/v1/assignments/{made['id']}"

    response = await client.patch(path, json={"monthly_minutes": 900}, headers=owner)
    assert response.status_code == 200, response.text
    response = await client.patch(
        path, json={"end_date": "2026-12-31"}, headers={**owner, "If-Match": '"2"'}
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"3"'
    body = response.json()
    assert (body["end_date"], body["monthly_minutes"], body["version"]) == ("2026-12-31", 900, 3)

    events = await walk(client, "/v1/audit-events", owner, subject_id=made["id"])
    assert [e["action"] for e in events] == [
        "assignment.ended",
        "assignment.updated",
        "assignment.created",
    ]
    assert events[0]["changes"]["end_date"] == [None, "2026-12-31"]
    assert events[0]["actor_id"] == str(agency.owner.user_id)
    assert events[0]["subject_type"] == "assignment"


async def test_a_stale_if_match_is_refused_and_changes_nothing(client, db, resources):
    agency, owner, _, brand = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    made = await assign(
        client, owner, user_id=person.user_id, brand_id=brand["id"], start="2026-11-01"
    )
    path = f"/v1/assignments/{made['id']}"
    response = await client.patch(
        path, json={"monthly_minutes": 60}, headers={**owner, "If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text

    response = await client.patch(
        path, json={"monthly_minutes": 120}, headers={**owner, "If-Match": '"1"'}
    )
    assert_problem(response, 412, "precondition-failed")
    seen = (await client.get(path, headers=owner)).json()
    assert (seen["monthly_minutes"], seen["version"]) == (60, 2)
    assert len(await walk(client, "/v1/audit-events", owner, subject_id=made["id"])) == 2


@pytest.mark.parametrize(
    "change",
    [{"end_date": "2026-10-31"}, {"start_date": "2026-12-01"}, {"start_date": None}],
    ids=str,
)
async def test_a_patch_cannot_put_the_end_before_the_start(client, db, resources, change):
    agency, owner, _, brand = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    made = await assign(
        client,
        owner,
        user_id=person.user_id,
        brand_id=brand["id"],
        start="2026-11-01",
        end="2026-11-30",
    )
    path = f"/v1/assignments/{made['id']}"
    response = await client.patch(path, json=change, headers=owner)
    if None in change.values():  # a start date cannot be cleared
        assert_field_refused(response, "/start_date", "null_not_allowed")
    else:
        assert_problem(response, 422, "invalid-dates")
    assert (await client.get(path, headers=owner)).json() == made


# ---------------------------------------------------------------------------------------------
# Capacity


async def capacity(client, headers, user_id, month: str = NOV) -> httpx.Response:
    return await client.get(
        f"/v1/staff/{user_id}/capacity", params={"month": month}, headers=headers
    )


async def test_staff_capacity_sums_prorated_allocations(client, db, resources):
    agency, owner, acme, _ = await setup(client)
    person = await add_person(client, db, resources.passwords, agency, "member", name="Camille")
    await set_capacity(client, owner, person.user_id, 6000)
    brands = {
        n: await make_brand(client, owner, acme["id"], name=n) for n in ("X", "Y", "Z", "W", "V")
    }

    def on(name: str, **kwargs: Any) -> dict[str, Any]:
        return {"user_id": person.user_id, "brand_id": brands[name]["id"], **kwargs}

    x = await assign(client, owner, **on("X", start="2026-10-01", minutes=3000))  # whole month
    y = await assign(client, owner, **on("Y", start="2026-11-16", minutes=2400))  # 15 of 30 days
    await assign(client, owner, **on("Z", start="2026-09-01", end="2026-10-31", minutes=5000))
    await assign(client, owner, **on("W", start="2026-12-01", minutes=5000))

    response = await capacity(client, owner, person.user_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["user_id"], body["name"], body["month"]) == (str(person.user_id), "Camille", NOV)
    assert (body["capacity_minutes"], body["allocated_minutes"], body["over_allocated"]) == (
        6000,
        4200,
        False,
    )
    lines = {
        (
            line["assignment_id"],
            line["brand_name"],
            line["monthly_minutes"],
            line["allocated_minutes"],
        )
        for line in body["allocations"]
    }
    assert lines == {(x["id"], "X", 3000, 3000), (y["id"], "Y", 2400, 1200)}

    # Another 2000 (4000 a month, for 15 days) puts it over 6000.
    await assign(
        client, owner, **on("V", start="2026-11-01", end="2026-11-15", minutes=4000, role="analyst")
    )
    body = (await capacity(client, owner, person.user_id)).json()
    assert (body["allocated_minutes"], body["over_allocated"]) == (6200, True)
    assert len(body["allocations"]) == 3

    # Exactly at capacity is not over.
    await set_capacity(client, owner, person.user_id, 6200)
    body = (await capacity(client, owner, person.user_id)).json()
    assert (body["capacity_minutes"], body["allocated_minutes"], body["over_allocated"]) == (
        6200,
        6200,
        False,
    )

    # Another month counts its own days: December has only W and X (whole month each).
    body = (await capacity(client, owner, person.user_id, "2026-12")).json()
    assert body["allocated_minutes"] == 3000 + 2400 + 5000
    assert {line["brand_name"] for line in body["allocations"]} == {"X", "Y", "W"}


async def test_who_may_read_a_staff_members_capacity(client, db, resources):
    agency, owner, acme, brand = await setup(client)
    me = await add_person(client, db, resources.passwords, agency, "member")
    colleague = await add_person(client, db, resources.passwords, agency, "member")
    manager = await add_person(client, db, resources.passwords, agency, "manager")
    contact = await add_person(
        client, db, resources.passwords, agency, "client", client_id=uuid.UUID(acme["id"])
    )
    await set_capacity(client, owner, me.user_id, 3000)
    await assign(
        client, owner, user_id=me.user_id, brand_id=brand["id"], start="2026-11-01", minutes=600
    )

    response = await capacity(client, me.headers, me.user_id)
    assert response.status_code == 200, response.text
    assert (response.json()["capacity_minutes"], response.json()["allocated_minutes"]) == (
        3000,
        600,
    )
    response = await capacity(client, manager.headers, me.user_id)
    assert response.status_code == 200, response.text

    response = await capacity(client, me.headers, colleague.user_id)
    assert_problem(response, 404, "member-not-found")
    response = await capacity(client, contact.headers, me.user_id)
    assert_problem(response, 403, "permission-denied")
    response = await capacity(client, contact.headers, contact.user_id)
    assert_problem(response, 403, "permission-denied")

    # Client contacts, strangers and other agencies' staff have no capacity here.
    elsewhere = await new_agency(client)
    for user_id in (contact.user_id, uuid.uuid4(), elsewhere.owner.user_id):
        response = await capacity(client, owner, user_id)
        assert_problem(response, 404, "member-not-found")


@pytest.mark.parametrize(
    "month",
    [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-11",
        "2026/11",
        "2026-11-01",
        "",
        "2026-11\n",
        "２０２６-11",
    ],
    ids=repr,
)
async def test_a_bad_month_is_a_clear_422(client, month):
    agency = await new_agency(client)
    for path in (f"/v1/staff/{agency.owner.user_id}/capacity", "/v1/team/capacity"):
        response = await client.get(path, params={"month": month}, headers=agency.owner.headers)
        body = assert_problem(response, 422)
        assert body["type"].rsplit("/", 1)[1] in {"validation-error", "invalid-month"}, body


async def test_the_month_is_required(client):
    agency = await new_agency(client)
    response = await client.get("/v1/team/capacity", headers=agency.owner.headers)
    assert_problem(response, 422, "validation-error")


async def test_team_capacity_lists_every_active_staff_member(client, db, resources):
    agency, owner, acme, brand = await setup(client)
    admin = await add_person(client, db, resources.passwords, agency, "admin", name="Admin")
    manager = await add_person(client, db, resources.passwords, agency, "manager", name="Manager")
    busy = await add_person(client, db, resources.passwords, agency, "member", name="Busy")
    idle = await add_person(client, db, resources.passwords, agency, "member", name="Idle")
    gone = await add_person(client, db, resources.passwords, agency, "member", name="Gone")
    contact = await add_person(
        client, db, resources.passwords, agency, "client", client_id=uuid.UUID(acme["id"])
    )
    response = await client.patch(
        f"/v1/members/{gone.user_id}", json={"status": "disabled"}, headers=owner
    )
    assert response.status_code == 200, response.text
    await set_capacity(client, owner, busy.user_id, 1000)
    await set_capacity(client, owner, idle.user_id, 1000)
    await assign(
        client, owner, user_id=busy.user_id, brand_id=brand["id"], start="2026-11-01", minutes=1500
    )
    await assign(
        client, owner, user_id=idle.user_id, brand_id=brand["id"], start="2026-11-16", minutes=600
    )

    rows = await walk(client, "/v1/team/capacity", owner, month=NOV)
    by_user = {row["user_id"]: row for row in rows}
    expected_users = {
        agency.owner.user_id,
        admin.user_id,
        manager.user_id,
        busy.user_id,
        idle.user_id,
    }
    assert set(by_user) == {str(u) for u in expected_users}
    assert len(rows) == 5
    assert str(contact.user_id) not in by_user and str(gone.user_id) not in by_user
    assert {
        k: by_user[str(busy.user_id)][k]
        for k in ("name", "role", "capacity_minutes", "allocated_minutes", "over_allocated")
    } == {
        "name": "Busy",
        "role": "member",
        "capacity_minutes": 1000,
        "allocated_minutes": 1500,
        "over_allocated": True,
    }
    assert (
        by_user[str(idle.user_id)]["allocated_minutes"],
        by_user[str(idle.user_id)]["over_allocated"],
    ) == (300, False)
    assert by_user[str(admin.user_id)]["role"] == "admin"
    assert by_user[str(admin.user_id)]["allocated_minutes"] == 0

    # Pages of two walk everyone exactly once.
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 2, "month": NOV}
    while True:
        response = await client.get("/v1/team/capacity", params=params, headers=owner)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert 1 <= len(page["items"]) <= 2
        seen += [row["user_id"] for row in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
        assert pages < 10, "the cursor never ends"
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == set(by_user)

    # The team view is for owners, admins and managers.
    response = await client.get("/v1/team/capacity", params={"month": NOV}, headers=manager.headers)
    assert response.status_code == 200, response.text
    for person in (busy, contact):
        response = await client.get(
            "/v1/team/capacity", params={"month": NOV}, headers=person.headers
        )
        assert_problem(response, 403, "permission-denied")


async def test_team_capacity_does_not_query_once_per_person(client, db, resources):
    agency, owner, acme, brand = await setup(client)
    other_brand = await make_brand(client, owner, acme["id"])
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    async def staff_member() -> None:
        person = await add_person(client, db, resources.passwords, agency, "member")
        for b in (brand, other_brand):
            await assign(
                client,
                owner,
                user_id=person.user_id,
                brand_id=b["id"],
                start="2026-11-01",
                minutes=300,
            )

    async def measure(expected_rows: int) -> int:
        statements.clear()
        engine = resources.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            response = await client.get("/v1/team/capacity", params={"month": NOV}, headers=owner)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 200, response.text
        rows = response.json()["items"]
        assert len(rows) == expected_rows
        assert sum(r["allocated_minutes"] for r in rows) == (expected_rows - 1) * 600
        return len(statements)

    for _ in range(2):
        await staff_member()
    small = await measure(3)
    for _ in range(9):
        await staff_member()
    large = await measure(12)
    assert small > 0
    assert large == small, (small, large)
