"""Clients and brands: who sees and changes what, archives, filters, pages, plan limits, audit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from tenants import errors, service
from tenants.models import Role
from tenants.principal import Principal
from tests.support.factories import (
    World,
    add_person,
    make_brand,
    make_client,
    new_agency,
    unique,
    walk,
)
from tests.support.problems import assert_problem

TZ = ZoneInfo("America/Montreal")  # the agencies' timezone (see signup_body)


def today() -> date:
    return datetime.now(TZ).date()


# ---------------------------------------------------------------------------------------------
# Helpers


async def assign(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    user_id: uuid.UUID,
    brand_id: str,
    *,
    start: date,
    end: date | None = None,
    role: str = "community_manager",
    minutes: int = 0,
) -> dict:
    response = await client.post(
        "/v1/assignments",
        json={
            "brand_id": brand_id,
            "user_id": str(user_id),
            "role": role,
            "monthly_minutes": minutes,
            "start_date": start.isoformat(),
            "end_date": end.isoformat() if end else None,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def names(client, path: str, headers, **params) -> set[str]:
    return {item["name"] for item in await walk(client, path, headers, **params)}


async def patch(client, path: str, headers, body: dict, if_match: str | None = None):
    extra = {"If-Match": if_match} if if_match else {}
    return await client.patch(path, json=body, headers={**headers, **extra})


async def audit(client, headers, **params) -> list[dict]:
    return await walk(client, "/v1/audit-events", headers, **params)


# ---------------------------------------------------------------------------------------------
# The visibility matrix


INTERNAL = {"legal_name", "billing_email", "notes"}


async def build_world(client, db, resources) -> World:
    """One agency: clients A and B; brands A1, A2 (of A) and B1 (of B); a member currently
    assigned to A1 only; a client contact of B; an admin and a manager."""
    agency = await new_agency(client)
    owner = agency.owner.headers
    world = World(agency=agency, people={"owner": agency.owner})
    for key in ("A", "B"):
        world.clients[key] = await make_client(
            client,
            owner,
            name=f"Client {key}",
            legal_name=f"Client {key} inc.",
            billing_email=f"billing-{key.lower()}@example.com",
            notes=f"Internal notes about {key}",
        )
    for key, of in (("A1", "A"), ("A2", "A"), ("B1", "B")):
        world.brands[key] = await make_brand(
            client, owner, world.clients[of]["id"], name=f"Brand {key}"
        )
    for role in ("admin", "manager", "member"):
        world.people[role] = await add_person(client, db, resources.passwords, agency, role)
    world.people["client"] = await add_person(
        client,
        db,
        resources.passwords,
        agency,
        "client",
        client_id=uuid.UUID(world.clients["B"]["id"]),
    )
    await assign(
        client,
        owner,
        world.people["member"].user_id,
        world.brands["A1"]["id"],
        start=today() - timedelta(days=30),
    )
    return world


STAFF = {"clients": {"A", "B"}, "brands": {"A1", "A2", "B1"}}
VISIBLE = {
    "owner": STAFF,
    "admin": STAFF,
    "manager": STAFF,
    "member": {"clients": {"A"}, "brands": {"A1"}},
    "client": {"clients": {"B"}, "brands": {"B1"}},
}
MAY_WRITE = {"owner", "admin", "manager"}
NOT_FOUND = {"clients": "client-not-found", "brands": "brand-not-found"}


@pytest.mark.parametrize("action", ["list", "read", "create", "update"])
@pytest.mark.parametrize("resource", ["clients", "brands"])
@pytest.mark.parametrize("role", ["owner", "admin", "manager", "member", "client"])
async def test_visibility_matrix(client, db, resources, role, resource, action):
    world = await build_world(client, db, resources)
    headers = world.people[role].headers
    objects = world.clients if resource == "clients" else world.brands
    visible = VISIBLE[role][resource]
    by_id = {obj["id"]: key for key, obj in objects.items()}

    if action == "list":
        items = await walk(client, f"/v1/{resource}", headers)
        assert {by_id.get(item["id"], item["name"]) for item in items} == visible
        assert len(items) == len(visible)
        if resource == "clients":
            for item in items:
                expected = objects[by_id[item["id"]]]
                for name in INTERNAL:
                    assert item[name] == (expected[name] if role in MAY_WRITE else None), name

    elif action == "read":
        for key, obj in objects.items():
            response = await client.get(f"/v1/{resource}/{obj['id']}", headers=headers)
            if key in visible:
                assert response.status_code == 200, (key, response.text)
                body = response.json()
                assert body["id"] == obj["id"]
                assert response.headers["etag"] == '"1"'
                if resource == "clients":
                    for name in INTERNAL:
                        assert body[name] == (obj[name] if role in MAY_WRITE else None), name
            else:
                assert_problem(response, 404, NOT_FOUND[resource])

    elif action == "create":
        before = await walk(client, f"/v1/{resource}", world.boss, status="all")
        if resource == "clients":
            body: dict[str, Any] = {"name": "New client"}
        else:
            own = next(iter(VISIBLE[role]["clients"]))
            body = {"client_id": world.clients[own]["id"], "name": "New brand", "slug": "new"}
        response = await client.post(f"/v1/{resource}", json=body, headers=headers)
        after = await walk(client, f"/v1/{resource}", world.boss, status="all")
        if role in MAY_WRITE:
            assert response.status_code == 201, response.text
            assert response.headers["etag"] == '"1"'
            assert response.json()["name"] == body["name"]
            assert len(after) == len(before) + 1
            assert body["name"] in {item["name"] for item in after}
        else:
            assert_problem(response, 403, "permission-denied")
            assert len(after) == len(before)

    else:  # update
        key = sorted(visible)[0]
        target = objects[key]
        path = f"/v1/{resource}/{target['id']}"
        response = await patch(client, path, headers, {"name": "Renamed"}, if_match='"1"')
        seen = (await client.get(path, headers=world.boss)).json()
        if role in MAY_WRITE:
            assert response.status_code == 200, response.text
            assert response.headers["etag"] == '"2"'
            assert (seen["name"], seen["version"]) == ("Renamed", 2)
        else:
            assert_problem(response, 403, "permission-denied")
            assert (seen["name"], seen["version"]) == (target["name"], 1)


async def test_only_current_assignments_give_access(client, db, resources):
    """Access ends after the end date (inclusive) and starts on the start date."""
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner, name="Acme")
    brand = await make_brand(client, owner, acme["id"], name="Acme Brand")
    ended = await add_person(client, db, resources.passwords, agency, "member")
    ending_today = await add_person(client, db, resources.passwords, agency, "member")
    future = await add_person(client, db, resources.passwords, agency, "member")
    start = today() - timedelta(days=30)
    await assign(client, owner, ended.user_id, brand["id"], start=start, end=today() - timedelta(1))
    await assign(client, owner, ending_today.user_id, brand["id"], start=start, end=today())
    await assign(client, owner, future.user_id, brand["id"], start=today() + timedelta(days=1))

    for person in (ended, future):
        assert await walk(client, "/v1/brands", person.headers) == []
        assert await walk(client, "/v1/clients", person.headers) == []
        response = await client.get(f"/v1/brands/{brand['id']}", headers=person.headers)
        assert_problem(response, 404, "brand-not-found")
        response = await client.get(f"/v1/clients/{acme['id']}", headers=person.headers)
        assert_problem(response, 404, "client-not-found")

    assert await names(client, "/v1/brands", ending_today.headers) == {"Acme Brand"}
    assert await names(client, "/v1/clients", ending_today.headers) == {"Acme"}
    response = await client.get(f"/v1/brands/{brand['id']}", headers=ending_today.headers)
    assert response.status_code == 200, response.text


async def test_an_assignment_ended_by_patch_removes_access_at_once(client, db, resources):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner)
    brand = await make_brand(client, owner, acme["id"], name="Patched")
    person = await add_person(client, db, resources.passwords, agency, "member")
    assignment = await assign(
        client, owner, person.user_id, brand["id"], start=today() - timedelta(days=10)
    )
    assert await names(client, "/v1/brands", person.headers) == {"Patched"}

    response = await patch(
        client,
        f"/v1/assignments/{assignment['id']}",
        owner,
        {"end_date": (today() - timedelta(days=1)).isoformat()},
    )
    assert response.status_code == 200, response.text
    assert await walk(client, "/v1/brands", person.headers) == []
    response = await client.get(f"/v1/brands/{brand['id']}", headers=person.headers)
    assert_problem(response, 404, "brand-not-found")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def test_access_ends_with_the_last_day_in_the_agency_timezone(client, db, resources):
    """An assignment ending 30 November: 23:30 that evening in Montréal (04:30 UTC on
    1 December) still has access; 00:30 on 1 December does not."""
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner, name="Acme")
    brand = await make_brand(client, owner, acme["id"], name="Acme Brand")
    person = await add_person(client, db, resources.passwords, agency, "member")
    await assign(
        client, owner, person.user_id, brand["id"], start=date(2026, 11, 1), end=date(2026, 11, 30)
    )
    assert person.membership_id is not None

    def principal(timezone: str) -> Principal:
        return Principal(
            tenant_id=agency.tenant_id,
            user_id=person.user_id,
            membership_id=person.membership_id,
            session_id=uuid.uuid4(),
            role=Role.member,
            timezone=timezone,
        )

    montreal = principal("America/Montreal")
    brand_id, client_id = uuid.UUID(brand["id"]), uuid.UUID(acme["id"])

    async def sees(who: Principal, at: datetime) -> tuple[set[str], set[str]]:
        async with db.tenant_transaction(agency.tenant_id) as session:
            brands = await service.list_brands(session, who, limit=50, at=at)
            clients = await service.list_clients(session, who, limit=50, at=at)
        return {b.name for b in brands.items}, {c.name for c in clients.items}

    # 23:30 on 30 November in Montréal.
    assert await sees(montreal, _utc(2026, 12, 1, 4, 30)) == ({"Acme Brand"}, {"Acme"})
    async with db.tenant_transaction(agency.tenant_id) as session:
        assert (
            await service.get_brand(session, montreal, brand_id, at=_utc(2026, 12, 1, 4, 30))
        ).name == "Acme Brand"
        assert (
            await service.get_client(session, montreal, client_id, at=_utc(2026, 12, 1, 4, 30))
        ).name == "Acme"

    # 00:30 on 1 December in Montréal.
    assert await sees(montreal, _utc(2026, 12, 1, 5, 30)) == (set(), set())
    async with db.tenant_transaction(agency.tenant_id) as session:
        with pytest.raises(errors.BrandNotFound):
            await service.get_brand(session, montreal, brand_id, at=_utc(2026, 12, 1, 5, 30))
        with pytest.raises(errors.ClientNotFound):
            await service.get_client(session, montreal, client_id, at=_utc(2026, 12, 1, 5, 30))

    # The same instant counted in UTC is already 1 December: the timezone is what decides.
    assert await sees(principal("UTC"), _utc(2026, 12, 1, 4, 30)) == (set(), set())

    # The start date is local too: 23:30 on 31 October (EDT) is before it, 00:30 on 1 November
    # is on it (Montréal falls back from EDT to EST later that night).
    assert await sees(montreal, _utc(2026, 11, 1, 3, 30)) == (set(), set())
    assert await sees(montreal, _utc(2026, 11, 1, 4, 30)) == ({"Acme Brand"}, {"Acme"})


# ---------------------------------------------------------------------------------------------
# Archiving


async def test_an_archived_client_is_hidden_by_default_and_kept(client):
    agency = await new_agency(client)
    owner = agency.owner.headers
    old = await make_client(client, owner, name="Old Client", notes="keep me")
    await make_client(client, owner, name="Live Client")
    brand = await make_brand(client, owner, old["id"], name="Old Brand")

    response = await patch(client, f"/v1/clients/{old['id']}", owner, {"status": "archived"})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["version"]) == ("archived", 2)

    assert await names(client, "/v1/clients", owner) == {"Live Client"}
    assert await names(client, "/v1/clients", owner, status="archived") == {"Old Client"}
    assert await names(client, "/v1/clients", owner, status="all") == {"Old Client", "Live Client"}

    response = await client.get(f"/v1/clients/{old['id']}", headers=owner)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["name"], body["notes"]) == ("archived", "Old Client", "keep me")

    # No new work on it, and nothing is half-written.
    before = await walk(client, "/v1/brands", owner, status="all")
    response = await client.post(
        "/v1/brands",
        json={"client_id": old["id"], "name": "Too late", "slug": unique("late")},
        headers=owner,
    )
    assert_problem(response, 409, "client-archived")
    assert await walk(client, "/v1/brands", owner, status="all") == before

    # Its existing brand is still there.
    response = await client.get(f"/v1/brands/{brand['id']}", headers=owner)
    assert response.status_code == 200, response.text

    # Unarchiving brings it back to the default list.
    response = await patch(client, f"/v1/clients/{old['id']}", owner, {"status": "active"})
    assert response.status_code == 200, response.text
    assert await names(client, "/v1/clients", owner) == {"Old Client", "Live Client"}


async def test_an_archived_brand_is_hidden_by_default_and_readable_by_id(client):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner)
    old = await make_brand(client, owner, acme["id"], name="Old")
    await make_brand(client, owner, acme["id"], name="Live")
    response = await patch(client, f"/v1/brands/{old['id']}", owner, {"status": "archived"})
    assert response.status_code == 200, response.text

    assert await names(client, "/v1/brands", owner) == {"Live"}
    assert await names(client, "/v1/brands", owner, status="archived") == {"Old"}
    assert await names(client, "/v1/brands", owner, status="all") == {"Old", "Live"}
    response = await client.get(f"/v1/brands/{old['id']}", headers=owner)
    assert response.status_code == 200
    assert response.json()["status"] == "archived"


async def test_a_brand_of_an_archived_client_cannot_be_unarchived(client):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner)
    brand = await make_brand(client, owner, acme["id"])
    assert (
        await patch(client, f"/v1/brands/{brand['id']}", owner, {"status": "archived"})
    ).status_code == 200
    assert (
        await patch(client, f"/v1/clients/{acme['id']}", owner, {"status": "archived"})
    ).status_code == 200

    response = await patch(client, f"/v1/brands/{brand['id']}", owner, {"status": "active"})
    assert_problem(response, 409, "client-archived")
    body = (await client.get(f"/v1/brands/{brand['id']}", headers=owner)).json()
    assert (body["status"], body["version"]) == ("archived", 2)


# ---------------------------------------------------------------------------------------------
# Filters and pagination


FILTER_NAMES_A = ["Cafe 100% Local", "Snake_case Co", "Percent Free", "Plain Name"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"Cafe 100% Local", "Snake_case Co", "Percent Free", "Other Brand"}),
        ({"q": "100%"}, {"Cafe 100% Local"}),
        ({"q": "%"}, {"Cafe 100% Local"}),
        ({"q": "_"}, {"Snake_case Co"}),
        ({"q": "e_c"}, {"Snake_case Co"}),
        ({"q": "PERCENT"}, {"Percent Free"}),
        ({"q": "zzz"}, set()),
        ({"client": "B"}, {"Other Brand"}),
        ({"client": "A", "q": "c"}, {"Cafe 100% Local", "Snake_case Co", "Percent Free"}),
        ({"status": "archived"}, {"Plain Name"}),
        ({"status": "archived", "q": "plain"}, {"Plain Name"}),
        ({"status": "archived", "client": "B"}, set()),
        ({"status": "all", "client": "A"}, set(FILTER_NAMES_A)),
        ({"status": "all", "q": "name"}, {"Plain Name"}),
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
async def test_brand_filters(client, params, expected):
    agency = await new_agency(client)
    owner = agency.owner.headers
    clients = {
        "A": await make_client(client, owner, name="A"),
        "B": await make_client(client, owner, name="B"),
    }
    brands = {
        name: await make_brand(client, owner, clients["A"]["id"], name=name)
        for name in FILTER_NAMES_A
    }
    await make_brand(client, owner, clients["B"]["id"], name="Other Brand")
    response = await patch(
        client, f"/v1/brands/{brands['Plain Name']['id']}", owner, {"status": "archived"}
    )
    assert response.status_code == 200, response.text

    query = {k: v for k, v in params.items() if k != "client"}
    if "client" in params:
        query["client_id"] = clients[params["client"]]["id"]
    items = await walk(client, "/v1/brands", owner, **query)
    assert {item["name"] for item in items} == expected
    assert len(items) == len(expected)


async def test_client_name_search_treats_wildcards_literally(client):
    agency = await new_agency(client)
    owner = agency.owner.headers
    for name in ("Fifty 50% Off", "Under_score", "Plain", "Underscore"):
        await make_client(client, owner, name=name)
    assert await names(client, "/v1/clients", owner, q="%") == {"Fifty 50% Off"}
    assert await names(client, "/v1/clients", owner, q="r_s") == {"Under_score"}
    assert await names(client, "/v1/clients", owner, q="UNDER") == {"Under_score", "Underscore"}


def _expected_order(items: list[dict], sort: str) -> list[str]:
    if sort == "name":
        key = lambda i: (i["name"].lower(), uuid.UUID(i["id"]))  # noqa: E731
    else:
        key = lambda i: (datetime.fromisoformat(i["created_at"]), uuid.UUID(i["id"]))  # noqa: E731
    return [i["id"] for i in sorted(items, key=key)]


PAGE_NAMES = ["delta", "Alpha", "alpha", "ALPHA", "Charlie", "bravo", "Echo", "echo", "Bravo"]


@pytest.mark.parametrize("sort", ["name", "created_at"])
@pytest.mark.parametrize("resource", ["brands", "clients"])
async def test_cursor_pagination_walks_every_row_once_in_order(client, resource, sort):
    agency = await new_agency(client)
    owner = agency.owner.headers
    if resource == "clients":
        created = [await make_client(client, owner, name=name) for name in PAGE_NAMES]
    else:
        acme = await make_client(client, owner)
        created = [await make_brand(client, owner, acme["id"], name=name) for name in PAGE_NAMES]

    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 2, "sort": sort}
    while True:
        response = await client.get(f"/v1/{resource}", params=params, headers=owner)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert 1 <= len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
        assert pages < 20, "the cursor never ends"

    assert pages == 5
    assert len(seen) == len(set(seen)) == len(PAGE_NAMES)
    assert seen == _expected_order(created, sort)


@pytest.mark.parametrize("resource", ["brands", "clients"])
@pytest.mark.parametrize(("first", "then"), [("name", "created_at"), ("created_at", "name")])
async def test_a_cursor_of_one_sort_order_is_refused_by_another(client, resource, first, then):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner)
    for _ in range(2):
        if resource == "clients":
            await make_client(client, owner)
        else:
            await make_brand(client, owner, acme["id"])
    response = await client.get(
        f"/v1/{resource}", params={"limit": 1, "sort": first}, headers=owner
    )
    cursor = response.json()["next_cursor"]
    assert cursor is not None
    response = await client.get(
        f"/v1/{resource}", params={"limit": 1, "sort": then, "cursor": cursor}, headers=owner
    )
    assert_problem(response, 400, "invalid-cursor")


# ---------------------------------------------------------------------------------------------
# Optimistic concurrency, slugs


@pytest.mark.parametrize("resource", ["clients", "brands"])
async def test_a_stale_if_match_is_refused_and_changes_nothing(client, resource):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner, name="Original")
    target = (
        acme
        if resource == "clients"
        else await make_brand(client, owner, acme["id"], name="Original")
    )
    path = f"/v1/{resource}/{target['id']}"

    response = await patch(client, path, owner, {"name": "First"}, if_match='"1"')
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'

    response = await patch(client, path, owner, {"name": "Second"}, if_match='"1"')
    assert_problem(response, 412, "precondition-failed")
    body = (await client.get(path, headers=owner)).json()
    assert (body["name"], body["version"]) == ("First", 2)

    response = await patch(client, path, owner, {"name": "Second"}, if_match='"2"')
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["version"]) == ("Second", 3)


async def test_a_brand_slug_is_unique_within_the_agency(client):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner)
    other = await make_client(client, owner)
    slug = unique("slug")
    first = await make_brand(client, owner, acme["id"], name="First", slug=slug)
    second = await make_brand(client, owner, acme["id"], name="Second")

    response = await client.post(
        "/v1/brands", json={"client_id": other["id"], "name": "Dup", "slug": slug}, headers=owner
    )
    assert_problem(response, 409, "brand-slug-taken")
    assert await names(client, "/v1/brands", owner, status="all") == {"First", "Second"}

    response = await patch(client, f"/v1/brands/{second['id']}", owner, {"slug": slug})
    assert_problem(response, 409, "brand-slug-taken")
    body = (await client.get(f"/v1/brands/{second['id']}", headers=owner)).json()
    assert (body["slug"], body["version"]) == (second["slug"], 1)
    assert (await client.get(f"/v1/brands/{first['id']}", headers=owner)).json()["slug"] == slug

    # Another agency may use the same slug.
    elsewhere = await new_agency(client)
    theirs = await make_client(client, elsewhere.owner.headers)
    await make_brand(client, elsewhere.owner.headers, theirs["id"], slug=slug)


# ---------------------------------------------------------------------------------------------
# Plan limit: the default plan 'starter' allows 10 active brands.

LIMIT = 10


async def _active_brands(client, headers) -> int:
    return len(await walk(client, "/v1/brands", headers))


async def test_the_plan_limits_active_brands(client):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner)
    brands = [await make_brand(client, owner, acme["id"]) for _ in range(LIMIT)]

    response = await client.post(
        "/v1/brands",
        json={"client_id": acme["id"], "name": "Eleventh", "slug": unique("eleventh")},
        headers=owner,
    )
    body = assert_problem(response, 409, "plan-limit")
    assert body["type"].endswith("plan-limit")
    assert body["limit"]["name"] == "max_active_brands"
    assert body["limit"]["value"] == LIMIT
    assert len(await walk(client, "/v1/brands", owner, status="all")) == LIMIT
    assert "Eleventh" not in await names(client, "/v1/brands", owner, status="all")

    # Archiving one frees a slot.
    archived = brands[0]
    response = await patch(client, f"/v1/brands/{archived['id']}", owner, {"status": "archived"})
    assert response.status_code == 200, response.text
    await make_brand(client, owner, acme["id"], name="Eleventh")
    assert await _active_brands(client, owner) == LIMIT

    # Unarchiving past the limit is refused, and the brand stays archived.
    response = await patch(client, f"/v1/brands/{archived['id']}", owner, {"status": "active"})
    body = assert_problem(response, 409, "plan-limit")
    assert body["limit"]["name"] == "max_active_brands"
    assert body["limit"]["value"] == LIMIT
    seen = (await client.get(f"/v1/brands/{archived['id']}", headers=owner)).json()
    assert (seen["status"], seen["version"]) == ("archived", 2)
    assert await _active_brands(client, owner) == LIMIT

    # Archived brands do not count; other agencies have their own limit.
    elsewhere = await new_agency(client)
    theirs = await make_client(client, elsewhere.owner.headers)
    await make_brand(client, elsewhere.owner.headers, theirs["id"])


async def _waiting_on_locks(session) -> int:
    await session.execute(text("SELECT pg_stat_clear_snapshot()"))  # a fresh look each time
    return await session.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
    )


async def test_concurrent_creations_cannot_exceed_the_plan(client, db):
    """Five creations race for the last slot. So that they really overlap, the test holds a
    lock that blocks writes to `brands` (not reads) until all five are waiting on a lock:
    without a guard each would count 9 active brands and all five would be created."""
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner)
    for _ in range(LIMIT - 1):
        await make_brand(client, owner, acme["id"])

    async with db.tenant_transaction(agency.tenant_id) as gate:
        await gate.execute(text("LOCK TABLE brands IN SHARE ROW EXCLUSIVE MODE"))
        racing = asyncio.gather(
            *(
                client.post(
                    "/v1/brands",
                    json={"client_id": acme["id"], "name": f"Racer {i}", "slug": unique("racer")},
                    headers=owner,
                )
                for i in range(5)
            )
        )
        for _ in range(1000):  # a bound, not a timing assertion
            if await _waiting_on_locks(gate) >= 5 or racing.done():
                break
            await asyncio.sleep(0.01)
        assert not racing.done(), "the requests did not wait for the gate"
        assert await _waiting_on_locks(gate) == 5
    responses = await racing

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "plan-limit")
    assert await _active_brands(client, owner) == LIMIT
    assert len(await walk(client, "/v1/brands", owner, status="all")) == LIMIT
    racers = {n for n in await names(client, "/v1/brands", owner) if n.startswith("Racer")}
    winner = next(r.json()["name"] for r in responses if r.status_code == 201)
    assert racers == {winner}


# ---------------------------------------------------------------------------------------------
# Audit


async def test_changes_to_clients_and_brands_are_audited(client):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner, name="Acme")
    assert (
        await patch(client, f"/v1/clients/{acme['id']}", owner, {"name": "Acme Corp"})
    ).status_code == 200
    brand = await make_brand(client, owner, acme["id"], name="Rocket")
    assert (
        await patch(client, f"/v1/brands/{brand['id']}", owner, {"name": "Rockets"})
    ).status_code == 200
    assert (
        await patch(client, f"/v1/brands/{brand['id']}", owner, {"status": "archived"})
    ).status_code == 200
    assert (
        await patch(client, f"/v1/clients/{acme['id']}", owner, {"status": "archived"})
    ).status_code == 200

    events = await audit(client, owner, subject_id=acme["id"])
    assert [e["action"] for e in events] == ["client.archived", "client.updated", "client.created"]
    assert all(e["subject_type"] == "client" for e in events)
    assert all(e["actor_id"] == str(agency.owner.user_id) for e in events)
    assert events[1]["changes"]["name"] == ["Acme", "Acme Corp"]

    events = await audit(client, owner, subject_id=brand["id"])
    assert [e["action"] for e in events] == ["brand.archived", "brand.updated", "brand.created"]
    assert events[1]["changes"]["name"] == ["Rocket", "Rockets"]
    assert events[0]["changes"]["status"] == ["active", "archived"]

    # A PATCH that changes nothing writes nothing.
    assert (
        await patch(client, f"/v1/brands/{brand['id']}", owner, {"name": "Rockets"})
    ).status_code == 200
    assert len(await audit(client, owner, subject_id=brand["id"])) == 3

    # A refused change writes nothing either.
    response = await patch(
        client, f"/v1/brands/{brand['id']}", owner, {"name": "X"}, if_match='"1"'
    )
    assert_problem(response, 412, "precondition-failed")
    assert len(await audit(client, owner, subject_id=brand["id"])) == 3


async def test_audit_filters_by_actor_and_time(client, db, resources):
    agency = await new_agency(client)
    owner = agency.owner.headers
    admin = await add_person(client, db, resources.passwords, agency, "admin")
    first = await make_client(client, owner, name="First")
    second = await make_client(client, admin.headers, name="Second")
    third = await make_client(client, owner, name="Third")

    by_admin = await audit(client, owner, actor_id=str(admin.user_id))
    assert [(e["action"], e["subject_id"]) for e in by_admin] == [("client.created", second["id"])]
    by_owner = await audit(client, owner, actor_id=str(agency.owner.user_id), subject_type="client")
    assert [e["subject_id"] for e in by_owner] == [third["id"], first["id"]]

    events = await audit(client, owner, subject_type="client")
    assert [e["subject_id"] for e in events] == [third["id"], second["id"], first["id"]]
    middle = events[1]["created_at"]
    since = await audit(client, owner, subject_type="client", since=middle)
    assert [e["subject_id"] for e in since] == [third["id"], second["id"]]
    until = await audit(client, owner, subject_type="client", until=middle)
    assert [e["subject_id"] for e in until] == [first["id"]]
    window = await audit(
        client, owner, subject_type="client", since=middle, until=events[0]["created_at"]
    )
    assert [e["subject_id"] for e in window] == [second["id"]]
    later = datetime.fromisoformat(events[0]["created_at"]) + timedelta(seconds=1)
    assert await audit(client, owner, since=later.isoformat()) == []


@pytest.mark.parametrize("role", ["member", "client"])
async def test_audit_is_not_for_members_or_client_contacts(client, db, resources, role):
    agency = await new_agency(client)
    acme = await make_client(client, agency.owner.headers)
    person = await add_person(
        client, db, resources.passwords, agency, role, client_id=uuid.UUID(acme["id"])
    )
    response = await client.get("/v1/audit-events", headers=person.headers)
    assert_problem(response, 403, "permission-denied")


async def test_audit_events_come_newest_first_over_pages(client):
    agency = await new_agency(client)
    owner = agency.owner.headers
    for i in range(5):
        await make_client(client, owner, name=f"Client {i}")
    everything = await audit(client, owner)
    assert len(everything) >= 5
    stamps = [datetime.fromisoformat(e["created_at"]) for e in everything]
    assert stamps == sorted(stamps, reverse=True)
    created = [e["changes"]["name"] for e in everything if e["action"] == "client.created"]
    assert created == [f"Client {i}" for i in reversed(range(5))]

    seen: list[dict] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(20):
        response = await client.get("/v1/audit-events", params=params, headers=owner)
        assert response.status_code == 200, response.text
        page = response.json()
        assert 1 <= len(page["items"]) <= 2
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [e["id"] for e in seen] == [e["id"] for e in everything]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Montreal time", "../etc/passwd"])
async def test_a_brand_time_zone_must_be_an_iana_zone(client, app, zone):
    agency = await new_agency(client)
    owner = agency.owner.headers
    acme = await make_client(client, owner)
    response = await client.post(
        "/v1/brands",
        json={"client_id": acme["id"], "name": "Zoned", "slug": unique("zoned"), "timezone": zone},
        headers=owner,
    )
    assert_problem(response, 422, "validation-error")
    assert await walk(client, "/v1/brands", owner) == []
    # The document shows the shape of a zone name, so clients and fuzzers can send one.
    schema = app.openapi()["components"]["schemas"]["BrandCreate"]["properties"]["timezone"]
    assert "pattern" in schema
