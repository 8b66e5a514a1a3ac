"""The agency's team: listing, reading, changing roles and status, and the audit trail."""

from __future__ import annotations

import asyncio
import base64

import pytest
from sqlalchemy import select, text

from tenants.models import AuditEvent, Membership
from tests.support.factories import add_person, new_agency, unique
from tests.support.problems import assert_field_refused, assert_problem


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def member(client, agency, user_id, headers=None) -> dict:
    response = await client.get(f"/v1/members/{user_id}", headers=headers or agency.owner.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def list_all(client, headers, **params) -> list[dict]:
    response = await client.get("/v1/members", params={"limit": 200, **params}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()["items"]


# ---------------------------------------------------------------------------------------------
# Listing


async def test_cursor_pagination_walks_every_member_exactly_once(client, db, resources):
    agency = await new_agency(client)
    people = [
        await add_person(client, db, resources.passwords, agency, role)
        for role in ("admin", "manager", "member", "member")
    ]
    expected = {str(agency.owner.user_id)} | {str(p.user_id) for p in people}

    seen: list[str] = []
    pages = 0
    params: dict[str, str | int] = {"limit": 2}
    while True:
        response = await client.get("/v1/members", params=params, headers=agency.owner.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert 1 <= len(page["items"]) <= 2
        seen += [item["user_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
        assert pages < 10, "the cursor never ends"

    assert pages == 3
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen)) == 5


async def _team(client, db, resources):
    agency = await new_agency(client)
    team = {
        "owner": agency.owner.user_id,
        "admin": (await add_person(client, db, resources.passwords, agency, "admin")).user_id,
        "manager": (await add_person(client, db, resources.passwords, agency, "manager")).user_id,
        "member": (await add_person(client, db, resources.passwords, agency, "member")).user_id,
        "disabled": (await add_person(client, db, resources.passwords, agency, "member")).user_id,
    }
    response = await client.patch(
        f"/v1/members/{team['disabled']}", json={"status": "disabled"}, headers=agency.owner.headers
    )
    assert response.status_code == 200, response.text
    invitee = f"{unique('invitee')}@example.com"
    response = await client.post(
        "/v1/invitations", json={"email": invitee, "role": "member"}, headers=agency.owner.headers
    )
    assert response.status_code == 201, response.text
    return agency, team, invitee


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"role": "member"}, {"member", "disabled", "invited"}),
        ({"role": "manager"}, {"manager"}),
        ({"role": "owner"}, {"owner"}),
        ({"status": "disabled"}, {"disabled"}),
        ({"status": "invited"}, {"invited"}),
        ({"status": "active"}, {"owner", "admin", "manager", "member"}),
        ({"role": "member", "status": "active"}, {"member"}),
        ({"role": "client"}, set()),
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
async def test_list_filters_by_role_and_status(client, db, resources, params, expected):
    agency, team, invitee = await _team(client, db, resources)
    items = await list_all(client, agency.owner.headers, **params)
    names = {str(uid): name for name, uid in team.items()}
    found = {
        names.get(item["user_id"], "invited" if item["email"] == invitee else "?") for item in items
    }
    assert found == expected
    assert len(items) == len(expected)
    for item in items:
        assert all(item[k] == v for k, v in params.items())


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of('["not-a-uuid"]'),
        cursor_of('{"after": "x"}'),
        cursor_of("[1]"),
        cursor_of('["0190b3f4-0000-7000-8000-000000000000", "extra"]'),
        cursor_of("not json at all"),
        "garbage!!",
        "@@@@",
    ],
)
async def test_an_invalid_cursor_is_a_clear_400(client, cursor):
    agency = await new_agency(client)
    response = await client.get(
        "/v1/members", params={"cursor": cursor}, headers=agency.owner.headers
    )
    assert_problem(response, 400, "invalid-cursor")


# ---------------------------------------------------------------------------------------------
# Reading and optimistic concurrency


async def test_a_member_is_read_with_its_etag(client, db, resources):
    agency = await new_agency(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    response = await client.get(f"/v1/members/{person.user_id}", headers=person.headers)
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert (body["email"], body["role"], body["status"], body["version"]) == (
        person.email,
        "member",
        "active",
        1,
    )


async def test_patch_honours_if_match(client, db, resources):
    agency = await new_agency(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    url = f"/v1/members/{person.user_id}"
    etag = (await client.get(url, headers=agency.owner.headers)).headers["etag"]

    first = await client.patch(
        url, json={"role": "manager"}, headers=agency.owner.headers | {"If-Match": etag}
    )
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2 and first.json()["role"] == "manager"
    assert first.headers["etag"] == '"2"'

    stale = await client.patch(
        url, json={"role": "admin"}, headers=agency.owner.headers | {"If-Match": etag}
    )
    body = assert_problem(stale, 412, "precondition-failed")
    assert body["current_version"] == 2

    current = await client.get(url, headers=agency.owner.headers)
    assert current.headers["etag"] == '"2"'
    assert (current.json()["role"], current.json()["version"]) == ("manager", 2)

    fresh = await client.patch(
        url, json={"role": "admin"}, headers=agency.owner.headers | {"If-Match": '"2"'}
    )
    assert fresh.status_code == 200, fresh.text
    assert (fresh.json()["role"], fresh.json()["version"], fresh.headers["etag"]) == (
        "admin",
        3,
        '"3"',
    )


async def test_a_malformed_if_match_is_refused(client, db, resources):
    agency = await new_agency(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    response = await client.patch(
        f"/v1/members/{person.user_id}",
        json={"role": "manager"},
        headers=agency.owner.headers | {"If-Match": "yesterday"},
    )
    assert_problem(response, 412, "precondition-failed")
    assert (await member(client, agency, person.user_id))["role"] == "member"


# ---------------------------------------------------------------------------------------------
# Who may change whom


@pytest.mark.parametrize("actor_role", ["manager", "member", "client"])
async def test_roles_below_admin_cannot_change_members(client, db, resources, actor_role):
    agency = await new_agency(client)
    actor = await add_person(client, db, resources.passwords, agency, actor_role)
    target = await add_person(client, db, resources.passwords, agency, "member")
    response = await client.patch(
        f"/v1/members/{target.user_id}", json={"role": "admin"}, headers=actor.headers
    )
    assert_problem(response, 403, "permission-denied")
    after = await member(client, agency, target.user_id)
    assert (after["role"], after["version"]) == ("member", 1)


@pytest.mark.parametrize(
    ("target_role", "change", "status", "slug"),
    [
        ("owner", {"role": "member"}, 403, "permission-denied"),
        ("owner", {"role": "admin"}, 403, "permission-denied"),
        ("owner", {"status": "disabled"}, 403, "permission-denied"),
        ("member", {"role": "owner"}, 403, "permission-denied"),
        ("member", {"role": "manager"}, 200, None),
        ("member", {"status": "disabled"}, 200, None),
    ],
)
async def test_an_admin_cannot_touch_owners(
    client, db, resources, target_role, change, status, slug
):
    agency = await new_agency(client)
    admin = await add_person(client, db, resources.passwords, agency, "admin")
    target = (
        await add_person(client, db, resources.passwords, agency, target_role)
        if target_role != "owner"
        else agency.owner
    )
    before = await member(client, agency, target.user_id)

    response = await client.patch(
        f"/v1/members/{target.user_id}", json=change, headers=admin.headers
    )
    after = await member(client, agency, target.user_id)
    if slug is None:
        assert response.status_code == status, response.text
        assert all(after[k] == v for k, v in change.items())
        assert after["version"] == before["version"] + 1
    else:
        assert_problem(response, status, slug)
        assert after == before


@pytest.mark.parametrize("change", [{"role": "admin"}, {"status": "disabled"}])
async def test_the_last_owner_cannot_leave(client, change):
    agency = await new_agency(client)
    response = await client.patch(
        f"/v1/members/{agency.owner.user_id}", json=change, headers=agency.owner.headers
    )
    assert_problem(response, 409, "last-owner")
    me = await client.get("/v1/me", headers=agency.owner.headers)
    assert me.status_code == 200 and me.json()["role"] == "owner"
    after = await member(client, agency, agency.owner.user_id)
    assert (after["role"], after["status"], after["version"]) == ("owner", "active", 1)


async def test_an_owner_can_step_down_when_another_owner_remains(client, db, resources):
    agency = await new_agency(client)
    other = await add_person(client, db, resources.passwords, agency, "owner")
    response = await client.patch(
        f"/v1/members/{agency.owner.user_id}", json={"role": "admin"}, headers=agency.owner.headers
    )
    assert response.status_code == 200, response.text
    assert (await client.get("/v1/me", headers=agency.owner.headers)).json()["role"] == "admin"
    owners = await list_all(client, other.headers, role="owner", status="active")
    assert [o["user_id"] for o in owners] == [str(other.user_id)]


async def _wait_for_lock_waiters(db, count: int) -> None:
    """Wait until `count` transactions of this test database are waiting for a lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        async with db.engine.connect() as conn:  # a fresh transaction: a fresh stats snapshot
            if await conn.scalar(query) >= count:
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} requests never queued behind the lock")


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(client, db, resources):
    """Both requests pass authorization before either commits (held at the owners' row locks,
    then released together): real concurrent transactions, yet exactly one may win."""
    agency = await new_agency(client)
    first = agency.owner
    second = await add_person(client, db, resources.passwords, agency, "owner")

    async with db.tenant_transaction(agency.tenant_id) as barrier:
        await barrier.execute(
            select(Membership.id)
            .where(Membership.tenant_id == agency.tenant_id, Membership.role == "owner")
            .with_for_update()
        )
        requests = asyncio.gather(
            client.patch(
                f"/v1/members/{second.user_id}", json={"role": "admin"}, headers=first.headers
            ),
            client.patch(
                f"/v1/members/{first.user_id}", json={"role": "admin"}, headers=second.headers
            ),
            return_exceptions=True,
        )
        await _wait_for_lock_waiters(db, 2)
    responses = await requests

    assert not [r for r in responses if isinstance(r, BaseException)], responses
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], [r.text for r in responses]
    assert_problem(next(r for r in responses if r.status_code != 200), 409, "last-owner")
    winner = first if responses[0].status_code == 200 else second
    owners = await list_all(client, winner.headers, role="owner", status="active")
    assert [o["user_id"] for o in owners] == [str(winner.user_id)]


async def test_a_client_contact_needs_a_client_id(client, db, resources):
    agency = await new_agency(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    url = f"/v1/members/{person.user_id}"

    refused = await client.patch(url, json={"role": "client"}, headers=agency.owner.headers)
    assert_problem(refused, 422, "invalid-role-change")
    assert (await member(client, agency, person.user_id))["role"] == "member"

    unknown = await client.patch(
        url,
        json={"role": "client", "client_id": "0190b3f4-1234-7000-8000-00000000c11e"},
        headers=agency.owner.headers,
    )
    assert_field_refused(unknown, "/client_id", "client-not-found")

    created = await client.post(
        "/v1/clients", json={"name": "Client"}, headers=agency.owner.headers
    )
    client_id = created.json()["id"]
    accepted = await client.patch(
        url, json={"role": "client", "client_id": client_id}, headers=agency.owner.headers
    )
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["role"], accepted.json()["client_id"]) == ("client", client_id)


async def test_an_unknown_member_is_404(client):
    agency = await new_agency(client)
    other = await new_agency(client)
    for user_id in (other.owner.user_id, "0190b3f4-0000-7000-8000-000000000000"):
        response = await client.patch(
            f"/v1/members/{user_id}", json={"role": "admin"}, headers=agency.owner.headers
        )
        assert_problem(response, 404, "member-not-found")
    assert (await member(client, other, other.owner.user_id))["role"] == "owner"


# ---------------------------------------------------------------------------------------------
# Audit


async def test_every_change_writes_an_audit_row(client, db, resources):
    agency = await new_agency(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    url = f"/v1/members/{person.user_id}"

    promoted = await client.patch(url, json={"role": "manager"}, headers=agency.owner.headers)
    disabled = await client.patch(
        url, json={"status": "disabled"}, headers=agency.owner.headers | {"X-Request-ID": "req-42"}
    )
    unchanged = await client.patch(url, json={"role": "manager"}, headers=agency.owner.headers)
    assert [r.status_code for r in (promoted, disabled, unchanged)] == [200, 200, 200]
    assert disabled.headers["x-request-id"] == "req-42"

    async with db.tenant_transaction(agency.tenant_id) as session:
        rows = (
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.tenant_id == agency.tenant_id,
                    AuditEvent.action == "member.updated",
                )
                .order_by(AuditEvent.created_at, AuditEvent.id)
            )
        ).all()

    assert [
        (r.actor_type, r.actor_id, r.subject_type, r.subject_id, r.changes, r.request_id)
        for r in rows
    ] == [
        (
            "user",
            agency.owner.user_id,
            "membership",
            person.membership_id,
            {"role": ["member", "manager"]},
            promoted.headers["x-request-id"],
        ),
        (
            "user",
            agency.owner.user_id,
            "membership",
            person.membership_id,
            {"status": ["active", "disabled"]},
            "req-42",
        ),
    ]
