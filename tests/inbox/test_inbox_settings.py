"""The inbox's settings over HTTP: saved replies, inbox rules and response policies.

Each test builds its agency through the API: two clients, each with a brand ("Lune" and
"Soleil"), a manager, a member assigned to Lune only, and a client contact. Items reach the inbox
through the inbox's own ingest, on a sandbox account connected through the real OAuth routes.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlmodel import select

from inbox.models import InboxItem
from tests.support.factories import Agency, Person, add_person, new_agency, unique
from tests.support.factories import walk as walk_pages
from tests.support.inbox import seed_item
from tests.support.problems import assert_field_refused, assert_problem

GREETING = "Bonjour {first_name}, merci d'avoir écrit à {brand}! — {agent_first_name}"


async def connect_sandbox(client: httpx.AsyncClient, agency: Agency, brand_id: str) -> str:
    """A sandbox social account of the brand, connected through the real OAuth routes."""
    started = await client.post(
        f"/v1/brands/{brand_id}/social-accounts/connect",
        params={"platform": "sandbox"},
        headers=agency.owner.headers,
    )
    assert started.status_code == 200, started.text
    url = httpx.URL(started.json()["authorization_url"])
    response = await client.get(url.path, params=dict(url.params))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def receive_item(db, agency: Agency, account_id: str, **fields: Any) -> str:
    """An item the account received, stored by the inbox's ingest; answers its id."""
    item = await seed_item(db, agency.tenant_id, uuid.UUID(account_id), **fields)
    return str(item.id)


@dataclass
class Shop:
    agency: Agency
    client_lune: str
    client_soleil: str
    lune: str
    soleil: str
    manager: Person
    member: Person
    contact: Person

    @property
    def owner(self) -> dict[str, str]:
        return self.agency.owner.headers


async def _post(client: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str]) -> dict:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def shop(client, db, resources) -> Shop:
    agency = await new_agency(client)
    owner = agency.owner.headers
    client_lune = (await _post(client, "/v1/clients", {"name": unique("Lune inc")}, owner))["id"]
    client_soleil = (await _post(client, "/v1/clients", {"name": unique("Soleil")}, owner))["id"]
    lune = await _post(
        client,
        "/v1/brands",
        {
            "client_id": client_lune,
            "name": "Lune",
            "slug": unique("lune"),
            "guidelines": {"banned_words": ["gratuit"]},
        },
        owner,
    )
    soleil = await _post(
        client,
        "/v1/brands",
        {"client_id": client_soleil, "name": "Soleil", "slug": unique("soleil")},
        owner,
    )
    passwords = resources.passwords
    manager = await add_person(client, db, passwords, agency, "manager", name="Sophie Gagnon")
    member = await add_person(client, db, passwords, agency, "member", name="Luc Côté")
    contact = await add_person(
        client, db, passwords, agency, "client", client_id=uuid.UUID(client_lune)
    )
    await _post(
        client,
        "/v1/assignments",
        {
            "brand_id": lune["id"],
            "user_id": str(member.user_id),
            "role": "analyst",
            "start_date": "2026-01-01",
        },
        owner,
    )
    return Shop(
        agency, client_lune, client_soleil, lune["id"], soleil["id"], manager, member, contact
    )


async def _saved_reply(client, shop: Shop, **fields: Any) -> dict:
    body = {"name": unique("Merci"), "language": "fr", "body": GREETING, **fields}
    return await _post(client, "/v1/saved-replies", body, shop.manager.headers)


def _rule_body(brand_id: str, **fields: Any) -> dict:
    return {
        "brand_id": brand_id,
        "name": unique("Remboursements"),
        "condition": {"keywords": ["remboursement"]},
        "action": {"labels": ["facturation"], "priority": "high"},
        **fields,
    }


POLICY = {
    "first_response_minutes": 60,
    "next_response_minutes": 240,
    "timezone": "America/Montreal",
}


# ---------------------------------------------------------------------------------------------
# Saved replies


async def test_saved_replies_are_listed_by_name_and_filtered(client, shop):
    agency_wide = await _saved_reply(client, shop, name="B agency", language="en", body="Thanks!")
    for_lune = await _saved_reply(client, shop, name="A lune", brand_id=shop.lune)
    for_soleil = await _saved_reply(
        client, shop, name="C soleil", brand_id=shop.soleil, body="Un remboursement suivra."
    )
    assert for_lune["variables"] == ["agent_first_name", "brand", "first_name"]
    assert agency_wide["brand_id"] is None and agency_wide["variables"] == []

    def names(items: list[dict]) -> list[str]:
        return [i["name"] for i in items]

    headers = shop.manager.headers
    assert names(await walk_pages(client, "/v1/saved-replies", headers)) == [
        "A lune",
        "B agency",
        "C soleil",
    ]
    cases = [
        ({"brand_id": shop.lune}, ["A lune", "B agency"]),
        ({"language": "en"}, ["B agency"]),
        ({"q": "REMBOURSEMENT"}, ["C soleil"]),
        ({"q": "soleil"}, ["C soleil"]),
        ({"q": "100%_"}, []),
    ]
    for params, expected in cases:
        assert names(await walk_pages(client, "/v1/saved-replies", headers, **params)) == expected

    # One at a time: every reply once, in the same order.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/saved-replies", params=params, headers=headers)).json()
        seen += names(page["items"])
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ["A lune", "B agency", "C soleil"]

    response = await client.get(f"/v1/saved-replies/{for_soleil['id']}", headers=headers)
    assert response.status_code == 200 and response.headers["etag"] == '"1"'
    assert response.json()["body"] == "Un remboursement suivra."


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("Bonjour {prenom}!", "{prenom}"),
        ("Hi {first_name}, from {company} and {brand_name}", "{brand_name}, {company}"),
    ],
    ids=["french-name", "two-unknown"],
)
async def test_a_saved_reply_with_unknown_variables_is_refused(client, shop, db, body, named):
    response = await client.post(
        "/v1/saved-replies",
        json={"name": "Oops", "language": "fr", "body": body},
        headers=shop.manager.headers,
    )
    problem = assert_field_refused(response, "/body", "unknown-variable")
    assert named in problem["errors"][0]["message"]
    assert await walk_pages(client, "/v1/saved-replies", shop.manager.headers) == []


@pytest.mark.parametrize("body", ["Bonjour {first_name", "Bonjour {0}", "{first_name.__class__}"])
async def test_a_saved_reply_with_malformed_braces_is_refused(client, shop, body):
    response = await client.post(
        "/v1/saved-replies",
        json={"name": "Oops", "language": "fr", "body": body},
        headers=shop.manager.headers,
    )
    assert_field_refused(response, "/body")


async def test_a_saved_reply_for_another_agencys_brand_is_refused(client, shop):
    other = await new_agency(client)
    theirs = await _post(client, "/v1/clients", {"name": "Theirs"}, other.owner.headers)
    brand = await _post(
        client,
        "/v1/brands",
        {"client_id": theirs["id"], "name": "Theirs", "slug": unique("t")},
        other.owner.headers,
    )
    for brand_id in (brand["id"], str(uuid.uuid4())):
        response = await client.post(
            "/v1/saved-replies",
            json={"brand_id": brand_id, "name": "X", "language": "fr", "body": "Hi"},
            headers=shop.manager.headers,
        )
        assert_field_refused(response, "/brand_id", "brand-not-found")


async def test_saved_reply_changes_honour_if_match(client, shop):
    reply = await _saved_reply(client, shop)
    path = f"/v1/saved-replies/{reply['id']}"
    headers = shop.manager.headers

    changed = await client.patch(
        path, json={"name": "Renamed"}, headers={**headers, "If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Renamed" and changed.json()["version"] == 2
    assert changed.headers["etag"] == '"2"'

    stale = await client.patch(path, json={"body": "Late"}, headers={**headers, "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition-failed")
    bad = await client.patch(path, json={"body": "Hi {nom}"}, headers=headers)
    assert_field_refused(bad, "/body", "unknown-variable")
    null = await client.patch(path, json={"name": None}, headers=headers)
    assert_field_refused(null, "/name")
    assert (await client.get(path, headers=headers)).json()["body"] == GREETING

    # Without If-Match the last writer wins (the SPA always sends it).
    rewritten = await client.patch(path, json={"body": "Salut {first_name}"}, headers=headers)
    assert rewritten.json()["variables"] == ["first_name"] and rewritten.json()["version"] == 3

    stale_delete = await client.delete(path, headers={**headers, "If-Match": '"2"'})
    assert_problem(stale_delete, 412)
    assert (await client.delete(path, headers={**headers, "If-Match": '"3"'})).status_code == 204
    assert_problem(await client.get(path, headers=headers), 404, "saved-reply-not-found")


async def test_render_fills_the_variables_and_runs_the_pre_send_check(client, db, shop):
    account = await connect_sandbox(client, shop.agency, shop.lune)
    item = await receive_item(db, shop.agency, account, author_name="Marie-Ève Tremblay")
    reply = await _saved_reply(
        client, shop, brand_id=shop.lune, body=GREETING + " L'échange est gratuit."
    )

    response = await client.post(
        f"/v1/saved-replies/{reply['id']}/render",
        json={"item_id": item},
        headers=shop.manager.headers,
    )
    assert response.status_code == 200, response.text
    rendered = response.json()
    assert rendered["text"] == (
        "Bonjour Marie-Ève, merci d'avoir écrit à Lune! — Sophie L'échange est gratuit."
    )
    assert [w["kind"] for w in rendered["warnings"]] == ["banned_word"], rendered

    # The member who runs Lune renders it with their own first name.
    response = await client.post(
        f"/v1/saved-replies/{reply['id']}/render",
        json={"item_id": item},
        headers=shop.member.headers,
    )
    assert response.status_code == 200, response.text
    assert "— Luc " in response.json()["text"]

    # Rendering writes nothing: the item is as it was.
    async with db.tenant_transaction(shop.agency.tenant_id) as session:
        stored = (
            await session.scalars(select(InboxItem).where(InboxItem.id == uuid.UUID(item)))
        ).one()
        assert stored.version == 1 and stored.first_response_at is None


async def test_render_refuses_an_item_it_cannot_answer(client, db, shop):
    lune_item = await receive_item(
        db, shop.agency, await connect_sandbox(client, shop.agency, shop.lune)
    )
    soleil_item = await receive_item(
        db, shop.agency, await connect_sandbox(client, shop.agency, shop.soleil)
    )
    for_lune = await _saved_reply(client, shop, brand_id=shop.lune)
    agency_wide = await _saved_reply(client, shop)

    cases = [
        (shop.manager, for_lune, soleil_item, "saved-reply-other-brand"),
        (shop.manager, for_lune, str(uuid.uuid4()), "inbox-item-not-found"),
        # The member does not run Soleil: its items do not exist for them.
        (shop.member, agency_wide, soleil_item, "inbox-item-not-found"),
    ]
    for person, reply, item, code in cases:
        response = await client.post(
            f"/v1/saved-replies/{reply['id']}/render",
            json={"item_id": item},
            headers=person.headers,
        )
        assert_field_refused(response, "/item_id", code)

    response = await client.post(
        f"/v1/saved-replies/{agency_wide['id']}/render",
        json={"item_id": lune_item},
        headers=shop.member.headers,
    )
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------------------------------------
# Rules


async def test_rules_run_in_the_order_listed_by_brand(client, shop):
    headers = shop.manager.headers
    first = await _post(client, "/v1/inbox-rules", _rule_body(shop.lune, name="first"), headers)
    second = await _post(client, "/v1/inbox-rules", _rule_body(shop.lune, name="second"), headers)
    early = await _post(
        client, "/v1/inbox-rules", _rule_body(shop.lune, name="early", position=0), headers
    )
    await _post(client, "/v1/inbox-rules", _rule_body(shop.soleil, name="sun"), headers)
    assert (first["position"], second["position"]) == (0, 1)
    assert first["condition"]["keywords"] == ["remboursement"]
    assert first["action"]["priority"] == "high" and first["version"] == 1

    lune = await walk_pages(client, "/v1/inbox-rules", headers, brand_id=shop.lune)
    # Same position: the older rule first.
    assert [r["name"] for r in lune] == ["first", "early", "second"]
    everything = await walk_pages(client, "/v1/inbox-rules", headers)
    assert len(everything) == 4
    brands = [r["brand_id"] for r in everything]
    assert brands == sorted(brands)

    moved = await client.patch(
        f"/v1/inbox-rules/{early['id']}",
        json={"position": 5, "enabled": False},
        headers={**headers, "If-Match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["enabled"] is False and moved.headers["etag"] == '"2"'
    lune = await walk_pages(client, "/v1/inbox-rules", headers, brand_id=shop.lune)
    assert [r["name"] for r in lune] == ["first", "second", "early"]

    everything = await walk_pages(client, "/v1/inbox-rules", headers)
    paged = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/inbox-rules", params=params, headers=headers)).json()
        paged += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert [r["id"] for r in paged] == [r["id"] for r in everything]


async def test_rule_changes_honour_if_match_and_deletion(client, shop):
    headers = shop.manager.headers
    rule = await _post(client, "/v1/inbox-rules", _rule_body(shop.lune), headers)
    path = f"/v1/inbox-rules/{rule['id']}"
    changed = await client.patch(
        path,
        json={"condition": {"sentiments": ["negative"], "contains_link": True}},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["condition"]["sentiments"] == ["negative"]
    assert changed.json()["condition"]["keywords"] == []  # a condition is replaced whole
    stale = await client.patch(path, json={"name": "x"}, headers={**headers, "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition-failed")
    assert (await client.get(path, headers=headers)).json()["version"] == 2

    assert (await client.delete(path, headers={**headers, "If-Match": '"2"'})).status_code == 204
    assert_problem(await client.get(path, headers=headers), 404, "inbox-rule-not-found")


async def test_a_rule_names_only_the_agencys_active_staff(client, db, resources, shop):
    other = await new_agency(client)
    stranger = await add_person(client, db, resources.passwords, other, "member")
    headers = shop.manager.headers
    action = {
        "assign_to": str(stranger.user_id),
        "notify": [
            str(shop.member.user_id),
            str(shop.contact.user_id),
            str(uuid.uuid4()),
        ],
    }
    response = await client.post(
        "/v1/inbox-rules", json=_rule_body(shop.lune, action=action), headers=headers
    )
    problem = assert_problem(response, 422, "validation-error")
    assert {e["pointer"] for e in problem["errors"]} == {
        "/action/assign_to",
        "/action/notify/1",
        "/action/notify/2",
    }
    assert await walk_pages(client, "/v1/inbox-rules", headers) == []

    good = {
        "assign_to": str(shop.member.user_id),
        "notify": [str(shop.manager.user_id)],
    }
    rule = await _post(client, "/v1/inbox-rules", _rule_body(shop.lune, action=good), headers)
    assert rule["action"]["assign_to"] == str(shop.member.user_id)

    response = await client.patch(
        f"/v1/inbox-rules/{rule['id']}",
        json={"action": {"notify": [str(stranger.user_id)]}},
        headers=headers,
    )
    assert_field_refused(response, "/action/notify/0", "unknown-reference")

    response = await client.post(
        "/v1/inbox-rules", json=_rule_body(str(uuid.uuid4())), headers=headers
    )
    assert_field_refused(response, "/brand_id", "brand-not-found")


# ---------------------------------------------------------------------------------------------
# Response policies


async def test_a_response_policy_is_set_replaced_and_removed(client, shop):
    path = f"/v1/clients/{shop.client_lune}/response-policy"
    headers = shop.manager.headers
    assert_problem(await client.get(path, headers=headers), 404, "response-policy-not-found")
    assert_problem(await client.put(path, json=POLICY, headers={**headers, "If-Match": '"1"'}), 412)

    created = await client.put(path, json=POLICY, headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    policy = created.json()
    assert policy["client_id"] == shop.client_lune
    # What was left out is the default: Monday to Friday, 9 to 5, Québec's holidays.
    assert policy["hours"]["mon"] == [{"start": "09:00", "end": "17:00"}]
    assert policy["hours"]["sat"] == []
    assert (policy["holidays_country"], policy["holidays_subdivision"]) == ("CA", "QC")
    assert (await client.get(path, headers=headers)).json() == policy

    weekends = {
        **POLICY,
        "hours": {"sat": [{"start": "10:00", "end": "23:59"}]},
        "holidays_country": None,
        "holidays_subdivision": None,
        "count_weekends": True,
    }
    stale = await client.put(path, json=weekends, headers={**headers, "If-Match": '"7"'})
    assert_problem(stale, 412, "precondition-failed")
    replaced = await client.put(path, json=weekends, headers={**headers, "If-Match": '"1"'})
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["etag"] == '"2"'
    body = replaced.json()
    assert body["hours"]["sat"] == [{"start": "10:00", "end": "23:59"}]
    assert body["hours"]["mon"] == [] and body["holidays_country"] is None
    assert body["count_weekends"] is True

    assert_problem(await client.delete(path, headers={**headers, "If-Match": '"1"'}), 412)
    assert (await client.delete(path, headers=headers)).status_code == 204
    assert_problem(await client.get(path, headers=headers), 404, "response-policy-not-found")
    assert_problem(await client.delete(path, headers=headers), 404, "response-policy-not-found")


async def test_two_first_policies_at_once_make_one_then_replace_it(client, shop):
    """Two managers set a client's first policy at the same moment: one creates it, the other
    waits and replaces it; neither gets a server error, and one policy remains."""
    path = f"/v1/clients/{shop.client_lune}/response-policy"
    bodies = [{**POLICY, "first_response_minutes": m} for m in (30, 90)]
    answers = await asyncio.gather(
        *(client.put(path, json=b, headers=shop.manager.headers) for b in bodies)
    )
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    last = next(a for a in answers if a.status_code == 200).json()
    assert last["version"] == 2
    assert (await client.get(path, headers=shop.manager.headers)).json() == last


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "/timezone"),
        ({"hours": {"mon": [{"start": "17:00", "end": "09:00"}]}}, "/hours/mon"),
        (
            {
                "hours": {
                    "tue": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "15:00"}]
                }
            },
            "/hours/tue",
        ),
        ({"hours": {}}, "/hours"),
        ({"holidays_country": "ZZ"}, "/holidays_country"),
        ({"holidays_subdivision": "XX"}, "/holidays_subdivision"),
        ({"first_response_minutes": 0}, "/first_response_minutes"),
        ({"timezone": None}, "/timezone"),
    ],
    ids=[
        "unknown-zone",
        "end-before-start",
        "overlap",
        "no-hours-at-all",
        "unknown-country",
        "unknown-subdivision",
        "zero-minutes",
        "null-zone",
    ],
)
async def test_an_invalid_response_policy_is_refused_naming_the_field(
    client, shop, change, pointer
):
    path = f"/v1/clients/{shop.client_lune}/response-policy"
    response = await client.put(path, json={**POLICY, **change}, headers=shop.manager.headers)
    assert_field_refused(response, pointer)
    assert_problem(await client.get(path, headers=shop.manager.headers), 404)


async def test_new_items_are_measured_with_the_policy_set_through_the_api(client, db, shop, clock):
    """16:59 on a Friday in Montréal with a one-hour target: due at 09:59 on Monday."""
    response = await client.put(
        f"/v1/clients/{shop.client_lune}/response-policy",
        json=POLICY,
        headers=shop.manager.headers,
    )
    assert response.status_code == 201, response.text
    account = await connect_sandbox(client, shop.agency, shop.lune)
    clock.set(datetime(2026, 11, 6, 21, 59, tzinfo=UTC), tick=False)  # 16:59 EST, a Friday
    item = await receive_item(db, shop.agency, account)
    async with db.tenant_transaction(shop.agency.tenant_id) as session:
        stored = (
            await session.scalars(select(InboxItem).where(InboxItem.id == uuid.UUID(item)))
        ).one()
    assert stored.response_due_at == datetime(2026, 11, 9, 14, 59, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Who may do what


async def test_a_member_reads_what_their_brands_reach_and_changes_nothing(client, shop):
    lune_reply = await _saved_reply(client, shop, brand_id=shop.lune, name="lune")
    soleil_reply = await _saved_reply(client, shop, brand_id=shop.soleil, name="soleil")
    await _saved_reply(client, shop, name="agency")
    lune_rule = await _post(client, "/v1/inbox-rules", _rule_body(shop.lune), shop.manager.headers)
    soleil_rule = await _post(
        client, "/v1/inbox-rules", _rule_body(shop.soleil), shop.manager.headers
    )
    for client_id in (shop.client_lune, shop.client_soleil):
        response = await client.put(
            f"/v1/clients/{client_id}/response-policy", json=POLICY, headers=shop.manager.headers
        )
        assert response.status_code == 201, response.text

    member = shop.member.headers
    replies = await walk_pages(client, "/v1/saved-replies", member)
    assert sorted(r["name"] for r in replies) == ["agency", "lune"]
    rules = await walk_pages(client, "/v1/inbox-rules", member)
    assert [r["id"] for r in rules] == [lune_rule["id"]]

    reads = [
        (f"/v1/saved-replies/{lune_reply['id']}", 200),
        (f"/v1/saved-replies/{soleil_reply['id']}", 404),
        (f"/v1/inbox-rules/{lune_rule['id']}", 200),
        (f"/v1/inbox-rules/{soleil_rule['id']}", 404),
        (f"/v1/clients/{shop.client_lune}/response-policy", 200),
        (f"/v1/clients/{shop.client_soleil}/response-policy", 404),
    ]
    for path, status in reads:
        assert (await client.get(path, headers=member)).status_code == status, path

    writes = [
        ("POST", "/v1/saved-replies", {"name": "x", "language": "fr", "body": "Hi"}),
        ("PATCH", f"/v1/saved-replies/{lune_reply['id']}", {"name": "x"}),
        ("DELETE", f"/v1/saved-replies/{lune_reply['id']}", None),
        ("POST", "/v1/inbox-rules", _rule_body(shop.lune)),
        ("PATCH", f"/v1/inbox-rules/{lune_rule['id']}", {"enabled": False}),
        ("DELETE", f"/v1/inbox-rules/{lune_rule['id']}", None),
        ("PUT", f"/v1/clients/{shop.client_lune}/response-policy", POLICY),
        ("DELETE", f"/v1/clients/{shop.client_lune}/response-policy", None),
    ]
    for method, path, body in writes:
        response = await client.request(method, path, json=body, headers=member)
        assert_problem(response, 403, "permission-denied")
    assert (await client.get(f"/v1/inbox-rules/{lune_rule['id']}", headers=member)).json()[
        "enabled"
    ] is True


@pytest.mark.parametrize("role", ["owner", "manager", "member", "client"])
async def test_who_may_read_and_write_the_settings(client, shop, role):
    headers = {
        "owner": shop.owner,
        "manager": shop.manager.headers,
        "member": shop.member.headers,
        "client": shop.contact.headers,
    }[role]
    may_read, may_write = role != "client", role in ("owner", "manager")

    for path in ("/v1/saved-replies", "/v1/inbox-rules"):
        response = await client.get(path, headers=headers)
        assert response.status_code == (200 if may_read else 403), (path, response.text)

    made = await client.post(
        "/v1/saved-replies",
        json={"name": "x", "language": "en", "body": "Hi {first_name}"},
        headers=headers,
    )
    assert made.status_code == (201 if may_write else 403), made.text
    made = await client.post("/v1/inbox-rules", json=_rule_body(shop.lune), headers=headers)
    assert made.status_code == (201 if may_write else 403), made.text
    made = await client.put(
        f"/v1/clients/{shop.client_lune}/response-policy", json=POLICY, headers=headers
    )
    assert made.status_code == (201 if may_write else 403), made.text


async def test_another_agencys_settings_do_not_exist(client, shop):
    reply = await _saved_reply(client, shop)
    rule = await _post(client, "/v1/inbox-rules", _rule_body(shop.lune), shop.manager.headers)
    await client.put(
        f"/v1/clients/{shop.client_lune}/response-policy",
        json=POLICY,
        headers=shop.manager.headers,
    )
    other = (await new_agency(client)).owner.headers
    for method, path, body in [
        ("GET", f"/v1/saved-replies/{reply['id']}", None),
        ("PATCH", f"/v1/saved-replies/{reply['id']}", {"name": "Mine now"}),
        ("DELETE", f"/v1/inbox-rules/{rule['id']}", None),
        ("GET", f"/v1/clients/{shop.client_lune}/response-policy", None),
        ("PUT", f"/v1/clients/{shop.client_lune}/response-policy", POLICY),
    ]:
        assert_problem(await client.request(method, path, json=body, headers=other), 404)
    assert await walk_pages(client, "/v1/saved-replies", other) == []
    assert await walk_pages(client, "/v1/inbox-rules", other) == []
    response = await client.get(f"/v1/saved-replies/{reply['id']}", headers=shop.owner)
    assert response.json()["name"] == reply["name"]
