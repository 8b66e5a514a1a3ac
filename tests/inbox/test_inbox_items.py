"""What agents see and do in the inbox, through the API: the list and its filters, who sees
which brand's items, colleagues' changes caught by If-Match (412 with what changed), who else
has an item open, time logged with a reply, replies waiting for a manager, and replies the
brand or the platform refuses."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inbox.models import ResponsePolicyRow
from inbox.sla import ResponsePolicy
from social.connectors.types import InboxKind
from tests.support.factories import Person, World, add_person, new_world, walk
from tests.support.inbox import inbound, store
from tests.support.problems import assert_field_refused, assert_problem
from tests.support.publishing import platform_account, relogin, sandbox_account
from tests.support.time_entries import make_retainer
from tests.support.worker import run_due_jobs

# A Tuesday, 10:00 in Montréal (EDT): business hours, far from any holiday.
TUESDAY = datetime(2027, 5, 4, 14, 0, tzinfo=UTC)
ASSIGNED_FROM = "2027-01-01"


@dataclass
class Team:
    world: World
    accounts: dict[str, tuple[uuid.UUID, str]]
    """brand key -> (our account id, its external id), sandbox accounts."""
    member: Person
    """A community manager assigned to "brand" only."""
    manager: Person


async def _assign(client, world: World, person: Person, brand: str) -> None:
    response = await client.post(
        "/v1/assignments",
        json={
            "brand_id": world.brands[brand]["id"],
            "user_id": str(person.user_id),
            "role": "community_manager",
            "start_date": ASSIGNED_FROM,
        },
        headers=world.boss,
    )
    assert response.status_code == 201, response.text


async def _team(client, db, resources, brands: dict[str, dict[str, Any]] | None = None) -> Team:
    world = await new_world(client, brands=brands or {"brand": {}, "other": {}})
    accounts = {}
    for key in world.brands:
        account = uuid.UUID(await sandbox_account(client, world, key))
        found = await client.get(f"/v1/social-accounts/{account}", headers=world.boss)
        accounts[key] = (account, found.json()["external_id"])
    member = await add_person(client, db, resources.passwords, world.agency, "member")
    manager = await add_person(client, db, resources.passwords, world.agency, "manager")
    await _assign(client, world, member, "brand")
    return Team(world, accounts, member, manager)


async def _seed(db, team: Team, brand: str, text: str, **kw: Any) -> dict[str, Any]:
    account, external = team.accounts[brand]
    [item] = await store(db, team.world.tenant_id, account, inbound(external, text, **kw))
    return {"id": str(item.id), "brand": brand, "text": text}


async def _detail(client, headers: dict[str, str], item_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/inbox/{item_id}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == f'"{response.json()["version"]}"'
    return dict(response.json())


def _ids(items: list[dict[str, Any]]) -> set[str]:
    return {i["id"] for i in items}


async def test_the_list_filters_by_what_an_agent_looks_for_and_pages_through_all(
    client, db, resources, clock
):
    clock.set(TUESDAY)
    team = await _team(client, db, resources)
    world, boss = team.world, team.world.boss
    # Before the client has a response policy: no clock on this one.
    unpoliced = await _seed(db, team, "other", "Vous avez des cartes-cadeaux?")
    async with db.tenant_transaction(world.tenant_id) as session:
        session.add(
            ResponsePolicyRow(
                tenant_id=world.tenant_id,
                client_id=uuid.UUID(world.customer["id"]),
                policy=ResponsePolicy(
                    first_response_minutes=60,
                    next_response_minutes=120,
                    timezone="America/Montreal",
                ).to_json(),
            )
        )
    late = await _seed(db, team, "brand", "Service horrible, je suis fâché", author_handle="fache")
    clock.set(TUESDAY + timedelta(minutes=70))  # 11:10: the first is 10 minutes late
    risky = await _seed(db, team, "brand", "I love this place, thank you!", author_handle="emwalsh")
    mention = await _seed(
        db, team, "brand", "Allez voir @brand pour le brunch", kind=InboxKind.mention
    )
    message = await _seed(
        db, team, "other", "Bonjour, ma commande 4411 est en retard", kind=InboxKind.message
    )
    clock.set(TUESDAY + timedelta(minutes=120))  # 12:00: the 11:10 one is at 50 of 60 minutes
    await relogin(client, world)  # the owner's access token has expired meanwhile
    boss = world.boss

    # Agents change a few: assigned to the member, labelled, done.
    seen = await _detail(client, boss, risky["id"])
    assigned = await client.post(
        f"/v1/inbox/{risky['id']}/assign",
        json={"assignee_id": str(team.member.user_id)},
        headers={**boss, "If-Match": f'"{seen["version"]}"'},
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assigned"
    labelled = await client.post(
        f"/v1/inbox/{mention['id']}/labels",
        json={"add": ["brunch", "presse"], "remove": []},
        headers=boss,
    )
    assert labelled.status_code == 200, labelled.text
    done = await client.post(
        f"/v1/inbox/{message['id']}/status", json={"status": "done"}, headers=boss
    )
    assert done.status_code == 200, done.text

    everything = await walk(client, "/v1/inbox", boss)
    assert _ids(everything) == _ids([unpoliced, late, risky, mention, message])
    # Newest first.
    assert [i["id"] for i in everything][:2] in (
        [message["id"], mention["id"]],
        [mention["id"], message["id"]],
    )
    assert everything[-1]["id"] == unpoliced["id"]

    cases: list[tuple[dict[str, str], list[dict[str, Any]]]] = [
        ({"brand": world.brands["brand"]["id"]}, [late, risky, mention]),
        ({"brand": world.brands["other"]["id"]}, [unpoliced, message]),
        ({"account": str(team.accounts["other"][0])}, [unpoliced, message]),
        ({"status": "done"}, [message]),
        ({"status": "assigned"}, [risky]),
        ({"status": "new"}, [unpoliced, late, mention]),
        ({"assignee": str(team.member.user_id)}, [risky]),
        ({"unassigned": "true"}, [unpoliced, late, mention, message]),
        ({"kind": "mention"}, [mention]),
        ({"kind": "message"}, [message]),
        ({"kind": "comment"}, [unpoliced, late, risky]),
        ({"sentiment": "negative"}, [late]),
        ({"label": "presse"}, [mention]),
        ({"label": "absent"}, []),
        ({"sla": "none"}, [unpoliced]),
        ({"sla": "breached"}, [late]),
        # Done is not answered: its clock still shows.
        ({"sla": "at_risk"}, [risky, mention, message]),
        ({"sla": "within"}, []),
        ({"sla": "met"}, []),
        ({"q": "FÂCHÉ"}, [late]),
        ({"q": "emwalsh"}, [risky]),  # the author's handle
        ({"q": "100%_"}, []),  # LIKE's wildcards are text here
        ({"kind": "comment", "brand": world.brands["brand"]["id"]}, [late, risky]),
    ]
    for params, expected in cases:
        found = await walk(client, "/v1/inbox", boss, **params)
        assert _ids(found) == _ids(expected), (params, [i["text"] for i in found])
    # `client` is also walk()'s first argument: asked directly.
    response = await client.get(
        "/v1/inbox", params={"client": world.customer["id"], "limit": 50}, headers=boss
    )
    assert _ids(response.json()["items"]) == _ids(everything)
    other = await client.get("/v1/inbox", params={"client": str(uuid.uuid4())}, headers=boss)
    assert other.json()["items"] == []
    by_id = {i["id"]: i for i in everything}
    assert by_id[late["id"]]["sla"] == "breached"
    assert by_id[risky["id"]]["sla"] == "at_risk"
    assert by_id[unpoliced["id"]]["sla"] == "none"

    # Two at a time: every item once, in the same order as the whole list.
    pages, cursor = [], None
    while True:
        query: dict[str, Any] = {"limit": 2}
        if cursor:
            query["cursor"] = cursor
        response = await client.get("/v1/inbox", params=query, headers=boss)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        pages += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i["id"] for i in pages] == [i["id"] for i in everything]

    for bad in (
        {"status": "closed"},
        {"kind": "tweet"},
        {"sla": "late"},
        {"brand": "not-a-uuid"},
        {"limit": "0"},
        {"cursor": "garbage"},
        {"q": ""},
        {"label": "x" * 41},
    ):
        response = await client.get("/v1/inbox", params=bad, headers=boss)
        assert response.status_code in (400, 422), (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_members_see_their_brands_clients_see_no_inbox_and_other_agencies_see_nothing(
    client, db, resources, clock
):
    clock.set(TUESDAY)
    team = await _team(client, db, resources)
    mine = await _seed(db, team, "brand", "Allo, vous ouvrez à quelle heure?")
    theirs = await _seed(db, team, "other", "Hello, are you open on Sunday?")

    listed = await walk(client, "/v1/inbox", team.member.headers)
    assert _ids(listed) == {mine["id"]}
    assert (await client.get(f"/v1/inbox/{mine['id']}", headers=team.member.headers)).is_success
    for path, body in (
        ("", None),
        ("/status", {"status": "done"}),
        ("/assign", {"assignee_id": None}),
        ("/labels", {"add": ["x"], "remove": []}),
        ("/reply", {"text": "Bonjour!"}),
        ("/hide", {"hidden": True}),
    ):
        url = f"/v1/inbox/{theirs['id']}{path}"
        response = await (
            client.get(url, headers=team.member.headers)
            if body is None
            else client.post(url, json=body, headers=team.member.headers)
        )
        assert_problem(response, 404, "inbox-item-not-found")

    # A client contact has no inbox: the figures reach them in their report.
    contact = await add_person(
        client,
        db,
        resources.passwords,
        team.world.agency,
        "client",
        client_id=uuid.UUID(team.world.customer["id"]),
    )
    assert_problem(await client.get("/v1/inbox", headers=contact.headers), 403)
    assert_problem(await client.get(f"/v1/inbox/{mine['id']}", headers=contact.headers), 403)

    # Another agency: not found, whoever asks, whatever the verb.
    stranger = await new_world(client)
    assert (await walk(client, "/v1/inbox", stranger.boss)) == []
    assert_problem(
        await client.get(f"/v1/inbox/{mine['id']}", headers=stranger.boss),
        404,
        "inbox-item-not-found",
    )
    response = await client.post(
        f"/v1/inbox/{mine['id']}/reply", json={"text": "Bonjour"}, headers=stranger.boss
    )
    assert_problem(response, 404, "inbox-item-not-found")
    assert_problem(await client.get(f"/v1/inbox/{uuid.uuid4()}", headers=team.world.boss), 404)


@pytest.mark.parametrize(
    ("path", "body", "changed"),
    [
        ("assign", "manager", lambda d, t: d["assignee_id"] == str(t.manager.user_id)),
        ("status", {"status": "done"}, lambda d, t: d["status"] == "done"),
        ("labels", {"add": ["urgent"], "remove": []}, lambda d, t: d["labels"] == ["urgent"]),
    ],
    ids=["assign", "status", "labels"],
)
async def test_a_change_on_a_stale_version_answers_412_with_what_changed(
    path, body, changed, client, db, resources, clock
):
    clock.set(TUESDAY)
    team = await _team(client, db, resources)
    boss = team.world.boss
    item = await _seed(db, team, "brand", "Est-ce que vous livrez à Laval?")
    if body == "manager":
        body = {"assignee_id": str(team.manager.user_id)}
    # Both open it; the member answers first.
    seen_by_boss = await _detail(client, boss, item["id"])
    seen_by_member = await _detail(client, team.member.headers, item["id"])
    answered = await client.post(
        f"/v1/inbox/{item['id']}/reply",
        json={"text": "Oui, partout à Laval!"},
        headers={**team.member.headers, "If-Match": f'"{seen_by_member["version"]}"'},
    )
    assert answered.status_code == 202, answered.text

    stale = await client.post(
        f"/v1/inbox/{item['id']}/{path}",
        json=body,
        headers={**boss, "If-Match": f'"{seen_by_boss["version"]}"'},
    )
    problem = assert_problem(stale, 412, "inbox-item-changed")
    assert problem["current"]["status"] == "waiting"
    assert problem["current"]["assignee_id"] == str(team.member.user_id)
    [action] = problem["recent_actions"]
    assert (action["kind"], action["text"], action["requested_by"]) == (
        "reply",
        "Oui, partout à Laval!",
        str(team.member.user_id),
    )
    after = await _detail(client, boss, item["id"])
    assert not changed(after, team), "the stale change was applied"

    # Read again: the change goes through, and the version moves on.
    fresh = await client.post(
        f"/v1/inbox/{item['id']}/{path}",
        json=body,
        headers={**boss, "If-Match": f'"{after["version"]}"'},
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["version"] > after["version"]
    assert fresh.headers["ETag"] == f'"{fresh.json()["version"]}"'

    # An ETag this API never gave is refused, never taken for "any version".
    for bad in ('"abc"', '"-3"', "W/", '"99999999999999999999"'):
        response = await client.post(
            f"/v1/inbox/{item['id']}/{path}", json=body, headers={**boss, "If-Match": bad}
        )
        assert response.status_code in (400, 412), (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_two_agents_answering_at_once_one_reply_goes_the_other_learns_why(
    client, db, resources, clock
):
    clock.set(TUESDAY)
    team = await _team(client, db, resources)
    item = await _seed(db, team, "brand", "Votre site est en panne?")
    seen = await _detail(client, team.world.boss, item["id"])
    tag = {"If-Match": f'"{seen["version"]}"'}
    answers = await asyncio.gather(
        client.post(
            f"/v1/inbox/{item['id']}/reply",
            json={"text": "On regarde ça tout de suite."},
            headers={**team.world.boss, **tag},
        ),
        client.post(
            f"/v1/inbox/{item['id']}/reply",
            json={"text": "Oui, désolés, c'est réglé d'ici une heure."},
            headers={**team.member.headers, **tag},
        ),
    )
    assert sorted(a.status_code for a in answers) == [202, 412], [a.text for a in answers]
    [won] = [a.json() for a in answers if a.status_code == 202]
    [lost] = [a.json() for a in answers if a.status_code == 412]
    assert [r["text"] for r in lost["recent_actions"]] == [won["action"]["text"]]
    detail = await _detail(client, team.world.boss, item["id"])
    assert [a["text"] for a in detail["actions"]] == [won["action"]["text"]]


async def test_colleagues_see_who_else_has_the_item_open(client, db, resources, clock):
    clock.set(TUESDAY)
    team = await _team(client, db, resources)
    await _assign(client, team.world, team.manager, "brand")
    item = await _seed(db, team, "brand", "Avez-vous des options sans gluten?")

    alone = await _detail(client, team.member.headers, item["id"])
    assert alone["viewers"] == []
    second = await _detail(client, team.manager.headers, item["id"])
    assert [v["user_id"] for v in second["viewers"]] == [str(team.member.user_id)]
    first_again = await _detail(client, team.member.headers, item["id"])
    assert [v["user_id"] for v in first_again["viewers"]] == [str(team.manager.user_id)]
    # An opening is forgotten after INBOX_VIEWER_SECONDS.
    clock.set(TUESDAY + timedelta(seconds=resources.settings.inbox_viewer_seconds + 5))
    later = await _detail(client, team.manager.headers, item["id"])
    assert later["viewers"] == []


async def test_time_spent_on_a_reply_is_logged_against_the_client_with_the_item(
    client, db, resources, settings, clock
):
    clock.set(TUESDAY)
    team = await _team(client, db, resources)
    await make_retainer(client, team.world.boss, team.world.customer["id"], "2027-01")
    item = await _seed(db, team, "brand", "Je peux réserver pour 12 personnes samedi?")
    seen = await _detail(client, team.member.headers, item["id"])
    sent = await client.post(
        f"/v1/inbox/{item['id']}/reply",
        json={"text": "Oui! Écrivez-nous en privé.", "minutes_spent": 7},
        headers={**team.member.headers, "If-Match": f'"{seen["version"]}"'},
    )
    assert sent.status_code == 202, sent.text

    entries = await walk(
        client, "/v1/time-entries", team.member.headers, brand_id=team.world.brands["brand"]["id"]
    )
    [entry] = entries
    assert (entry["minutes"], entry["activity"], entry["inbox_item_id"]) == (
        7,
        "community_animation",
        item["id"],
    )
    assert entry["client_id"] == team.world.customer["id"]
    assert entry["date"] == "2027-05-04"

    # Time can only be logged on a brand one works on: the reply is refused whole.
    outsider = await add_person(client, db, resources.passwords, team.world.agency, "manager")
    again = await _detail(client, outsider.headers, item["id"])
    refused = await client.post(
        f"/v1/inbox/{item['id']}/reply",
        json={"text": "Un autre mot", "minutes_spent": 3},
        headers={**outsider.headers, "If-Match": f'"{again["version"]}"'},
    )
    assert_problem(refused, 422, "not-assigned")
    after = await _detail(client, team.world.boss, item["id"])
    assert [a["text"] for a in after["actions"]] == ["Oui! Écrivez-nous en privé."]
    assert after["version"] == again["version"]


async def test_a_brand_that_wants_approval_holds_a_members_reply_until_a_manager_approves(
    client, db, resources, settings, clock
):
    clock.set(TUESDAY)
    team = await _team(
        client, db, resources, brands={"brand": {"guidelines": {"reply_approval": True}}}
    )
    item = await _seed(db, team, "brand", "C'est quoi vos heures pendant les fêtes?")
    seen = await _detail(client, team.member.headers, item["id"])
    asked = await client.post(
        f"/v1/inbox/{item['id']}/reply",
        json={"text": "On est ouverts de 9 h à 17 h."},
        headers={**team.member.headers, "If-Match": f'"{seen["version"]}"'},
    )
    assert asked.status_code == 202, asked.text
    action = asked.json()["action"]
    assert action["status"] == "awaiting_approval"

    await run_due_jobs(settings)
    waiting = await _detail(client, team.world.boss, item["id"])
    assert [a["status"] for a in waiting["actions"]] == ["awaiting_approval"]
    assert waiting["first_response_at"] is None

    # The member cannot approve their own reply.
    url = f"/v1/inbox/{item['id']}/replies/{action['id']}/approve"
    assert_problem(await client.post(url, headers=team.member.headers), 403)
    approved = await client.post(url, headers=team.manager.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["action"]["status"] == "queued"
    assert approved.json()["action"]["approved_by"] == str(team.manager.user_id)
    # Twice is a conflict, not a second reply.
    assert_problem(await client.post(url, headers=team.manager.headers), 409)
    assert_problem(
        await client.post(
            f"/v1/inbox/{item['id']}/replies/{uuid.uuid4()}/approve", headers=team.manager.headers
        ),
        404,
    )

    clock.set(TUESDAY + timedelta(minutes=1))
    await run_due_jobs(settings)
    sent = await _detail(client, team.world.boss, item["id"])
    [done] = sent["actions"]
    assert (done["status"], done["approved_by"]) == ("sent", str(team.manager.user_id))
    assert done["external_id"].startswith("sbx-out-")
    assert sent["first_response_at"] is not None

    # A manager's own reply on that brand goes straight out.
    own = await client.post(
        f"/v1/inbox/{item['id']}/reply",
        json={"text": "Et joyeuses fêtes!"},
        headers={**team.manager.headers, "If-Match": f'"{sent["version"]}"'},
    )
    assert own.status_code == 202, own.text
    assert own.json()["action"]["status"] == "queued"


async def test_replies_the_platform_or_the_brand_would_refuse_are_refused_before_they_leave(
    client, db, resources, platforms, clock
):
    clock.set(TUESDAY)
    team = await _team(
        client,
        db,
        resources,
        brands={"brand": {"guidelines": {"banned_words": ["gratuit"]}}, "other": {}},
    )
    boss = team.world.boss
    item = await _seed(db, team, "brand", "Est-ce que la livraison est gratuite?")
    seen = await _detail(client, boss, item["id"])

    banned = await client.post(
        f"/v1/inbox/{item['id']}/reply",
        json={"text": "Oui, c'est GRATUIT pour vous!"},
        headers={**boss, "If-Match": f'"{seen["version"]}"'},
    )
    assert_field_refused(banned, "/text", "banned-word")

    # LinkedIn lets a page answer a comment publicly only.
    account, external = await platform_account(
        db, resources, platforms, team.world, "linkedin_organization", brand="other"
    )
    [on_linkedin] = await store(
        db,
        team.world.tenant_id,
        uuid.UUID(account),
        inbound(external, "Great news, congratulations to the team!"),
    )
    private = await client.post(
        f"/v1/inbox/{on_linkedin.id}/reply",
        json={"text": "Thank you!", "private": True},
        headers=boss,
    )
    assert_problem(private, 422, "inbox-not-allowed-on-platform")
    # Nor can a page hide a member's comment there.
    hidden = await client.post(f"/v1/inbox/{on_linkedin.id}/hide", json={}, headers=boss)
    assert_problem(hidden, 422, "inbox-not-allowed-on-platform")
    linkedin = await _detail(client, boss, str(on_linkedin.id))
    assert (linkedin["actions"], linkedin["moderation"]) == ([], "visible")

    for bad in (
        {},
        {"text": ""},
        {"text": "x" * 8001},
        {"text": "ok", "minutes_spent": 0},
        {"text": "ok", "minutes_spent": 601},
        {"text": "ok", "unknown": 1},
        {"text": 5},
    ):
        response = await client.post(f"/v1/inbox/{item['id']}/reply", json=bad, headers=boss)
        assert_problem(response, 422)
    # Nothing of the refused ones was queued, and the item did not move.
    after = await _detail(client, boss, item["id"])
    assert after["actions"] == []
    assert (after["status"], after["version"]) == ("new", seen["version"])


async def test_bad_changes_are_refused_whole_with_the_field_named(client, db, resources, clock):
    clock.set(TUESDAY)
    team = await _team(client, db, resources)
    boss = team.world.boss
    item = await _seed(db, team, "brand", "Vous faites des gâteaux sans noix?")
    stranger = await new_world(client)
    seen = await _detail(client, boss, item["id"])

    cases: list[tuple[str, Any, str | None]] = [
        ("assign", {"assignee_id": str(uuid.uuid4())}, "/assignee_id"),
        # A member of another agency is no member of this one.
        ("assign", {"assignee_id": str(stranger.owner.user_id)}, "/assignee_id"),
        ("assign", {"assignee_id": "nobody"}, "/assignee_id"),
        ("assign", {}, "/assignee_id"),
        ("status", {"status": "closed"}, "/status"),
        ("status", {"status": None}, "/status"),
        ("labels", {"add": ["x" * 41], "remove": []}, None),
        ("labels", {"add": [f"l{n}" for n in range(31)], "remove": []}, "/add"),
        ("labels", {"add": "urgent"}, None),
        ("hide", {"hidden": "maybe"}, "/hidden"),
        ("reply", {"text": "ok", "done": "later"}, "/done"),
    ]
    for path, body, pointer in cases:
        response = await client.post(f"/v1/inbox/{item['id']}/{path}", json=body, headers=boss)
        problem = assert_problem(response, 422)
        if pointer is not None:
            assert pointer in {e["pointer"] for e in problem["errors"]}, (path, body, problem)
    response = await client.post(
        f"/v1/inbox/{item['id']}/status",
        content=b"status=done",
        headers={**boss, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415, response.text
    after = await _detail(client, boss, item["id"])
    assert after["version"] == seen["version"]
    assert (after["status"], after["assignee_id"], after["labels"], after["actions"]) == (
        "new",
        None,
        [],
        [],
    )
