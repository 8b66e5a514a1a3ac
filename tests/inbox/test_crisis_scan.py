"""The crisis scan on real items: two quiet weeks, then a burst of angry comments, is one
warning — a crisis listed, its items pinned at the top of the inbox, one event, one e-mail to
the brand's lead — and the scans that follow during the same episode add nothing. A watch-list
word warns without any history; the client's contacts hear of it only when the brand says so;
another agency sees none of it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from devtools.smtp import text_of
from inbox import jobs as inbox_jobs
from inbox.service.crises import CRISIS_SUSPECTED
from infra.outbox import Event
from tenants.models import User
from tests.support.factories import Person, World, add_person, login, new_agency, new_world
from tests.support.inbox import inbound, store
from tests.support.publishing import sandbox_account
from tests.support.worker import run_due_jobs

# A Wednesday afternoon; the window judged is 12:00 to 15:00 UTC.
NOW = datetime(2027, 3, 17, 14, 20, tzinfo=UTC)
CONNECTED = NOW - timedelta(days=15)
LATER = NOW + timedelta(hours=2)

QUIET = "Allo! Vous livrez à Laval?"
ANGRY = "Service horrible, je suis fâché, c'est honteux"
USUAL_PER_DAY = 3
"""Neutral comments at these hours on each quiet day: enough that a burst of 16 angry ones is a
surge of negative items (0 usually, 13.5 needed) but not of volume (3 usually, 16.5 needed)."""
BURST = 16


def _scan_ctx(db, settings, resources) -> dict[str, Any]:
    """What the worker's start-up gives its crons."""
    return {"db": db, "settings": settings, "redis": resources.queue}


async def _fresh(client, person: Person) -> Person:
    """A new login: the tokens made on the day the agency was set up have expired since."""
    person.access_token = (await login(client, person.email))["access_token"]
    return person


async def _agency(client, db, resources, *, guidelines: dict[str, Any] | None = None):
    """An agency set up on CONNECTED: a client, its brand (with these guidelines), a sandbox
    account on it, the brand's lead and a client contact who reads French."""
    world = await new_world(client, brands={"brand": {"guidelines": guidelines or {}}})
    account = uuid.UUID(await sandbox_account(client, world))
    external = (await client.get(f"/v1/social-accounts/{account}", headers=world.boss)).json()[
        "external_id"
    ]
    lead = await add_person(client, db, resources.passwords, world.agency, "member")
    response = await client.post(
        "/v1/assignments",
        json={
            "brand_id": world.brand["id"],
            "user_id": str(lead.user_id),
            "role": "lead",
            "start_date": "2027-03-01",
        },
        headers=world.boss,
    )
    assert response.status_code == 201, response.text
    contact = await add_person(
        client,
        db,
        resources.passwords,
        world.agency,
        "client",
        client_id=uuid.UUID(world.customer["id"]),
    )
    async with db.tenant_transaction(world.tenant_id) as session:
        user = await session.get(User, contact.user_id)
        assert user is not None
        user.locale = "fr-CA"
    world.people.update(lead=lead, contact=contact)
    return world, account, external


async def _events(db, world: World) -> list[Event]:
    async with db.tenant_transaction(world.tenant_id) as session:
        return list(
            (
                await session.scalars(
                    select(Event)
                    .where(Event.tenant_id == world.tenant_id, Event.type == CRISIS_SUSPECTED)
                    .order_by(col(Event.seq))
                )
            ).all()
        )


async def test_a_burst_of_angry_comments_after_two_quiet_weeks_is_one_warning(
    client, db, settings, resources, clock, mailbox
):
    clock.set(CONNECTED)
    world, account, external = await _agency(client, db, resources)
    for day in range(14, 0, -1):
        clock.set(NOW - timedelta(days=day, minutes=50))
        await store(
            db,
            world.tenant_id,
            account,
            *(inbound(external, QUIET) for _ in range(USUAL_PER_DAY)),
        )
    clock.set(NOW - timedelta(minutes=30))
    burst = await store(
        db, world.tenant_id, account, *(inbound(external, ANGRY) for _ in range(BURST))
    )
    assert {item.sentiment for item in burst} == {"negative"}
    clock.set(NOW)
    ctx = _scan_ctx(db, settings, resources)

    assert await inbox_jobs.scan_crises(ctx) >= 1
    await run_due_jobs(settings)

    boss = (await _fresh(client, world.owner)).headers
    [crisis] = (await client.get("/v1/inbox/crises", headers=boss)).json()["items"]
    assert crisis["brand_id"] == world.brand["id"]
    assert crisis["social_account_id"] == str(account)
    assert (crisis["trigger"], crisis["triggers"]) == ("negative", ["negative"])
    assert crisis["negative"]["observed"] == BURST
    assert crisis["negative"]["median"] == 0
    assert crisis["volume"]["observed"] == BURST and not crisis["volume"]["surge"]
    assert sorted(crisis["item_ids"]) == sorted(str(item.id) for item in burst)

    # A comment after the warning is the newest, yet the crisis's items stay above it.
    clock.set(NOW + timedelta(minutes=1))
    [later] = await store(db, world.tenant_id, account, inbound(external, QUIET))
    listed = (await client.get("/v1/inbox", params={"limit": BURST + 1}, headers=boss)).json()[
        "items"
    ]
    assert [i["pinned"] for i in listed] == [True] * BURST + [False]
    assert {i["id"] for i in listed[:BURST]} == {str(item.id) for item in burst}
    assert listed[BURST]["id"] == str(later.id)
    assert {i["crisis_id"] for i in listed[:BURST]} == {crisis["id"]}
    assert {i["version"] for i in listed[:BURST]} == {burst[0].version + 1}

    [event] = await _events(db, world)
    assert event.aggregate_type == "inbox_crisis"
    assert event.payload["trigger"] == "negative"
    assert event.payload["brand_id"] == world.brand["id"]
    assert len(event.payload["item_ids"]) == BURST
    assert event.payload["figures"]["negative"]["observed"] == BURST

    lead = world.people["lead"]
    [mail] = await mailbox.wait_for(lead.email)
    assert world.brand["name"] in str(mail["Subject"])
    assert "negative" in str(mail["Subject"])
    body = text_of(mail)
    assert f"{BURST} negative messages in the last 3 hours" in body
    assert f"/inbox?brand={world.brand['id']}" in body
    assert ANGRY in body
    assert mailbox.to(world.people["contact"].email) == []
    assert mailbox.to(world.owner.email) == []

    # Five minutes later the burst is still there, one more angry comment with it: the same
    # episode, no new crisis, event or e-mail; the newcomer joins the pinned ones.
    clock.set(NOW + timedelta(minutes=4))
    [newcomer] = await store(db, world.tenant_id, account, inbound(external, ANGRY))
    clock.set(NOW + timedelta(minutes=5))
    await inbox_jobs.scan_crises(ctx)
    await run_due_jobs(settings)
    [again] = (await client.get("/v1/inbox/crises", headers=boss)).json()["items"]
    assert again["id"] == crisis["id"]
    assert again["last_signal_at"] > crisis["last_signal_at"]
    assert str(newcomer.id) in again["item_ids"]
    pinned = (await client.get(f"/v1/inbox/{newcomer.id}", headers=boss)).json()
    assert (pinned["pinned"], pinned["crisis_id"]) == (True, crisis["id"])
    assert len(await _events(db, world)) == 1
    assert len(mailbox.to(lead.email)) == 1

    # Another agency sees none of it, not even by asking for the brand.
    other = await new_agency(client)
    for params in ({}, {"brand": world.brand["id"]}):
        seen = await client.get("/v1/inbox/crises", params=params, headers=other.owner.headers)
        assert seen.status_code == 200, seen.text
        assert seen.json()["items"] == []


@pytest.mark.parametrize("notify_client", [True, False], ids=["client told", "client not told"])
async def test_a_watch_list_word_warns_the_lead_and_the_client_only_if_the_brand_says_so(
    client, db, settings, resources, clock, mailbox, notify_client
):
    # Connected ten minutes ago: no history to judge surges against, a word is enough.
    clock.set(LATER - timedelta(minutes=10))
    world, account, external = await _agency(
        client,
        db,
        resources,
        guidelines={"watch_list": ["boycott", "@troll"], "crisis_notify_client": notify_client},
    )
    clock.set(LATER)
    await store(db, world.tenant_id, account, inbound(external, "Bonne journée à toute l'équipe!"))
    [used] = await store(
        db, world.tenant_id, account, inbound(external, "On organise un BOYCOTT de la marque")
    )

    await inbox_jobs.scan_crises(_scan_ctx(db, settings, resources))
    await run_due_jobs(settings)

    boss = (await _fresh(client, world.owner)).headers
    [crisis] = (
        await client.get("/v1/inbox/crises", params={"brand": world.brand["id"]}, headers=boss)
    ).json()["items"]
    assert (crisis["trigger"], crisis["keywords"]) == ("keyword", ["boycott"])
    assert crisis["keyword_hits"] == 1
    # No week of history yet: only the word could fire.
    assert crisis["negative"] is None and crisis["volume"] is None
    assert crisis["item_ids"] == [str(used.id)]
    [first, second] = (await client.get("/v1/inbox", headers=boss)).json()["items"]
    assert (first["id"], first["pinned"], second["pinned"]) == (str(used.id), True, False)

    [to_lead] = await mailbox.wait_for(world.people["lead"].email)
    assert "watch-list words" in str(to_lead["Subject"])
    assert "boycott" in text_of(to_lead)
    contact = world.people["contact"].email
    if notify_client:
        [to_contact] = await mailbox.wait_for(contact)
        assert str(to_contact["Subject"]).startswith("Crise possible pour")
        assert str(to_contact["Content-Language"]) == "fr"
        said = text_of(to_contact)
        assert "1 message emploie des mots de la liste de surveillance : boycott." in said
        # Contacts get the figures, not the comments themselves.
        assert "BOYCOTT de la marque" not in said
        # Under the agency's name, which the client knows (not Passerelle's).
        agency = (await client.get("/v1/me", headers=boss)).json()["tenant"]["name"]
        assert said.splitlines()[0] == agency
        markup = to_contact.get_body(preferencelist=("html",))
        assert markup is not None and f">{agency}</strong>" in str(markup.get_content())
    else:
        assert mailbox.to(contact) == []


async def test_a_surge_spread_over_a_brands_accounts_is_the_brands(
    client, db, settings, resources, clock, mailbox
):
    """Eight angry comments on each of two accounts: neither account alone is far enough from
    its quiet weeks (13.5 needed), the brand as a whole is."""
    clock.set(CONNECTED)
    world, first, first_external = await _agency(client, db, resources)
    second = uuid.UUID(await sandbox_account(client, world))
    second_external = (
        await client.get(f"/v1/social-accounts/{second}", headers=world.boss)
    ).json()["external_id"]
    clock.set(NOW - timedelta(minutes=20))
    for account, external in ((first, first_external), (second, second_external)):
        await store(
            db, world.tenant_id, account, *(inbound(external, ANGRY) for _ in range(BURST // 2))
        )
    clock.set(NOW)

    await inbox_jobs.scan_crises(_scan_ctx(db, settings, resources))
    await run_due_jobs(settings)

    boss = (await _fresh(client, world.owner)).headers
    [crisis] = (
        await client.get("/v1/inbox/crises", params={"brand": world.brand["id"]}, headers=boss)
    ).json()["items"]
    assert crisis["social_account_id"] is None
    assert crisis["trigger"] == "negative" and crisis["negative"]["observed"] == BURST
    assert len(crisis["item_ids"]) == BURST
    [mail] = await mailbox.wait_for(world.people["lead"].email)
    assert f"{BURST} negative messages" in text_of(mail)


async def test_who_sees_the_crises_and_bad_input(client, db, settings, resources, clock):
    clock.set(LATER - timedelta(minutes=10))
    world, account, external = await _agency(
        client, db, resources, guidelines={"watch_list": ["intoxication"]}
    )
    clock.set(LATER)
    await store(db, world.tenant_id, account, inbound(external, "Intoxication après le brunch"))
    await inbox_jobs.scan_crises(_scan_ctx(db, settings, resources))
    outsider = await add_person(client, db, resources.passwords, world.agency, "member")
    lead = await _fresh(client, world.people["lead"])
    contact = await _fresh(client, world.people["contact"])

    def listed(person: Person) -> Any:
        return client.get("/v1/inbox/crises", headers=person.headers)

    assert len((await listed(lead)).json()["items"]) == 1
    # A member not on the brand sees none; a client contact has no inbox at all.
    assert (await listed(outsider)).json()["items"] == []
    assert (await listed(contact)).status_code == 403
    inbox_cursor = (
        await client.get("/v1/inbox", params={"limit": 1}, headers=lead.headers)
    ).json()["next_cursor"]
    for params, status in (
        ({"brand": "not-a-uuid"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 1000}, 422),
        ({"cursor": "%%%"}, 400),
        ({"cursor": "x" * 3000}, 422),
        # A cursor of another list is refused, not misread.
        ({"cursor": inbox_cursor}, 400),
    ):
        response = await client.get("/v1/inbox/crises", params=params, headers=lead.headers)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
