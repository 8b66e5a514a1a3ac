"""The response figures the agency sells: per brand, client and agent, for a month counted in
the agency's time zone; first response times in the client's business hours and in all hours;
a member sees the brands they are assigned to; the client's monthly report carries them in its
"community" section, in the client's language, and its contacts read them there (never the
items themselves)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from inbox.models import InboxItem, ResponsePolicyRow
from inbox.sla import ResponsePolicy
from social.connectors.types import InboxKind
from social.report_pdf import format_duration
from tests.support.factories import Person, add_person, login, new_world
from tests.support.inbox import inbound, store
from tests.support.pdf import read
from tests.support.publishing import sandbox_account
from tests.support.worker import run_due_jobs

# Montréal is UTC-4 in May (EDT). The client's policy: a first answer within one business
# hour, Monday to Friday 9:00-17:00, Québec holidays.
SETUP = datetime(2027, 5, 3, 12, 0, tzinfo=UTC)
FRIDAY_1659 = datetime(2027, 5, 7, 20, 59, tzinfo=UTC)
MONDAY_0929 = datetime(2027, 5, 10, 13, 29, tzinfo=UTC)  # 1 min on Friday + 29 on Monday
TUESDAY_1000 = datetime(2027, 5, 11, 14, 0, tzinfo=UTC)
TUESDAY_1200 = datetime(2027, 5, 11, 16, 0, tzinfo=UTC)  # two hours: late
WEDNESDAY_1400 = datetime(2027, 5, 12, 18, 0, tzinfo=UTC)  # never answered
THURSDAY_0900 = datetime(2027, 5, 13, 13, 0, tzinfo=UTC)
THURSDAY_0910 = datetime(2027, 5, 13, 13, 10, tzinfo=UTC)  # the member answers through us
LAST_EVENING_OF_MAY = datetime(2027, 6, 1, 3, 30, tzinfo=UTC)  # 31 May 23:30 in Montréal
LAST_EVENING_OF_APRIL = datetime(2027, 5, 1, 3, 30, tzinfo=UTC)  # 30 April 23:30 in Montréal
# 1 June, 08:00 in Montréal: the 31 May comment is not due yet (10:00), the others are.
NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Month:
    world: object
    member: Person
    contact: Person
    items: dict[str, InboxItem]


async def _received(clock, db, world, account, external, when, text, **kw) -> InboxItem:
    clock.set(when, tick=False)
    [item] = await store(
        db, world.tenant_id, account, inbound(external, text, created_at=when, **kw)
    )
    return item


async def _answered_on_the_platform(clock, db, world, account, external, item, when) -> None:
    """The brand answered on the platform itself; the reply comes back as the account's own."""
    clock.set(when, tick=False)
    await store(
        db,
        world.tenant_id,
        account,
        inbound(
            external,
            "Merci de votre message, on s'en occupe!",
            kind=InboxKind.reply,
            parent=item.external_id,
            from_account=True,
            author_id="the-brand",
            created_at=when,
        ),
    )


async def _external(client, world, account: uuid.UUID) -> str:
    response = await client.get(f"/v1/social-accounts/{account}", headers=world.boss)
    return str(response.json()["external_id"])


async def _month(client, db, resources, settings, clock) -> Month:
    clock.set(SETUP)
    world = await new_world(
        client,
        customer={"name": "Fromagerie Lavoie", "locale": "fr-CA"},
        brands={"cafe": {"name": "Café Soleil"}, "shop": {"name": "Boutique Lune"}},
    )
    cafe = uuid.UUID(await sandbox_account(client, world, "cafe"))
    shop = uuid.UUID(await sandbox_account(client, world, "shop"))
    cafe_ext, shop_ext = await _external(client, world, cafe), await _external(client, world, shop)
    policy = ResponsePolicy(
        first_response_minutes=60, next_response_minutes=120, timezone="America/Montreal"
    )
    async with db.tenant_transaction(world.tenant_id) as session:
        session.add(
            ResponsePolicyRow(
                tenant_id=world.tenant_id,
                client_id=uuid.UUID(world.customer["id"]),
                policy=policy.to_json(),
            )
        )
    member = await add_person(
        client, db, resources.passwords, world.agency, "member", name="Léa Gagnon"
    )
    assigned = await client.post(
        "/v1/assignments",
        json={
            "brand_id": world.brands["shop"]["id"],
            "user_id": str(member.user_id),
            "role": "analyst",
            "start_date": "2027-01-01",
        },
        headers=world.boss,
    )
    assert assigned.status_code == 201, assigned.text
    contact = await add_person(
        client,
        db,
        resources.passwords,
        world.agency,
        "client",
        client_id=uuid.UUID(world.customer["id"]),
    )

    items: dict[str, InboxItem] = {}
    seen = (clock, db, world)
    items["april"] = await _received(
        *seen, shop, shop_ext, LAST_EVENING_OF_APRIL, "Allo, vous êtes ouverts?"
    )
    items["friday"] = await _received(
        *seen, cafe, cafe_ext, FRIDAY_1659, "Service horrible, je suis fâché"
    )
    await _answered_on_the_platform(*seen, cafe, cafe_ext, items["friday"], MONDAY_0929)
    items["tuesday"] = await _received(
        *seen,
        cafe,
        cafe_ext,
        TUESDAY_1000,
        "Bonjour, pouvez-vous m'aider avec ma commande?",
        kind=InboxKind.message,
        thread="dm-1",
    )
    await _answered_on_the_platform(*seen, cafe, cafe_ext, items["tuesday"], TUESDAY_1200)
    items["wednesday"] = await _received(
        *seen,
        cafe,
        cafe_ext,
        WEDNESDAY_1400,
        "J'adore ce café, merci pour l'accueil!",
        kind=InboxKind.mention,
    )
    items["thursday"] = await _received(
        *seen, shop, shop_ext, THURSDAY_0900, "Est-ce que vous livrez à Laval?"
    )
    items["may31"] = await _received(
        *seen, shop, shop_ext, LAST_EVENING_OF_MAY, "Super boutique, bravo!"
    )

    # The owner gives Wednesday's mention to the member; the member answers Thursday's
    # comment through us, ten minutes after it came.
    clock.set(THURSDAY_0910, tick=False)
    owner = await login(client, world.owner.email, tenant=world.agency.slug)
    world.agency.owner.access_token = owner["access_token"]
    given = await client.post(
        f"/v1/inbox/{items['wednesday'].id}/assign",
        json={"assignee_id": str(member.user_id)},
        headers=world.boss,
    )
    assert given.status_code == 200, given.text
    member.access_token = (await login(client, member.email))["access_token"]
    sent = await client.post(
        f"/v1/inbox/{items['thursday'].id}/reply",
        json={"text": "Oui, nous livrons à Laval le mardi!"},
        headers=member.headers,
    )
    assert sent.status_code == 202, sent.text
    await run_due_jobs(settings)

    clock.set(NOW)
    for person in (world.owner, member, contact):
        person.access_token = (await login(client, person.email, tenant=world.agency.slug))[
            "access_token"
        ]
    return Month(world, member, contact, items)


@pytest.fixture
async def may(client, db, resources, settings, clock) -> Month:
    return await _month(client, db, resources, settings, clock)


async def _stats(http, headers, /, **params) -> dict:
    response = await http.get("/v1/inbox/stats", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _mood(items: list[InboxItem]) -> dict[str, int]:
    mix = {"negative": 0, "neutral": 0, "positive": 0, "unknown": 0}
    for item in items:
        mix[item.sentiment or "unknown"] += 1
    return mix


async def test_per_brand_the_month_in_montreal_business_hours_and_all_hours(client, may):
    world, items = may.world, may.items
    stats = await _stats(client, world.boss, month="2027-05", by="brand")
    assert stats["timezone"] == "America/Montreal"
    assert stats["starts_at"].startswith("2027-05-01T04:00:00")
    by_name = {g["name"]: g for g in stats["groups"]}
    assert list(by_name) == ["Boutique Lune", "Café Soleil"]
    cafe, shop = by_name["Café Soleil"], by_name["Boutique Lune"]

    # The Café: a comment, a private message and a mention; our own replies are not counted.
    assert cafe["volume"] == {
        "total": 3,
        "comment": 1,
        "reply": 0,
        "mention": 1,
        "message": 1,
        "review": 0,
    }
    assert (cafe["needing_reply"], cafe["answered"], cafe["response_rate"]) == (3, 2, 0.6667)
    # Friday 16:59 answered Monday 9:29 is 30 business minutes but 2 days 16 h 30 in all;
    # Tuesday's message waited 120 minutes either way.
    assert cafe["first_response_business_hours"] == {"median_minutes": 75.0, "p90_minutes": 111.0}
    assert cafe["first_response_all_hours"] == {"median_minutes": 1995.0, "p90_minutes": 3495.0}
    # Friday's was in time; Tuesday's late; Wednesday's never answered.
    assert (cafe["target_due"], cafe["within_target"], cafe["breaches"]) == (3, 1, 2)
    assert cafe["within_target_share"] == 0.3333
    assert cafe["sentiment"] == _mood([items["friday"], items["tuesday"], items["wednesday"]])
    assert cafe["sentiment"]["negative"] >= 1

    # The Boutique: April's last evening is April's in Montréal although May's in UTC; 31 May
    # 23:30 is May's, and not due yet, so it is neither in nor out of target.
    assert shop["volume"]["total"] == 2
    assert (shop["needing_reply"], shop["answered"], shop["response_rate"]) == (2, 1, 0.5)
    assert shop["first_response_business_hours"] == {"median_minutes": 10.0, "p90_minutes": 10.0}
    assert (shop["target_due"], shop["within_target"], shop["breaches"]) == (1, 1, 0)
    assert shop["within_target_share"] == 1.0

    # The totals pool the response times rather than average the brands'.
    totals = stats["totals"]
    assert totals["volume"]["total"] == 5
    assert totals["response_rate"] == 0.6
    assert totals["first_response_business_hours"] == {"median_minutes": 30.0, "p90_minutes": 102.0}
    assert totals["first_response_all_hours"] == {"median_minutes": 120.0, "p90_minutes": 3120.0}
    assert (totals["target_due"], totals["within_target"], totals["breaches"]) == (4, 2, 2)

    april = await _stats(client, world.boss, month="2027-04", by="brand")
    [only] = april["groups"]
    assert (only["name"], only["volume"]["total"]) == ("Boutique Lune", 1)


async def test_per_client_and_filtered_to_one_brand(client, may):
    world = may.world
    stats = await _stats(client, world.boss, month="2027-05", by="client")
    [group] = stats["groups"]
    assert (group["id"], group["name"]) == (world.customer["id"], "Fromagerie Lavoie")
    assert group["volume"]["total"] == 5 and group["answered"] == 3

    one = await _stats(client, world.boss, month="2027-05", brand=world.brands["cafe"]["id"])
    assert [g["name"] for g in one["groups"]] == ["Café Soleil"]
    other = await _stats(client, world.boss, month="2027-05", client=str(uuid.uuid4()))
    assert other["groups"] == [] and other["totals"]["volume"]["total"] == 0
    assert other["totals"]["response_rate"] is None


async def test_the_team_view_counts_an_item_for_who_answered_it_or_holds_it(client, may):
    world, member = may.world, may.member
    stats = await _stats(client, world.boss, month="2027-05", by="agent")
    [lea, nobody] = stats["groups"]
    assert (lea["id"], lea["name"]) == (str(member.user_id), "Léa Gagnon")
    # Thursday's comment she answered in ten minutes; Wednesday's mention she holds, late.
    assert (lea["volume"]["total"], lea["answered"]) == (2, 1)
    assert lea["first_response_business_hours"]["median_minutes"] == 10.0
    assert (lea["target_due"], lea["within_target_share"]) == (2, 0.5)
    # The rest: answered on the platform itself, or by nobody yet.
    assert (nobody["id"], nobody["name"]) == (None, None)
    assert (nobody["volume"]["total"], nobody["answered"]) == (3, 2)


async def test_a_member_sees_only_the_brands_assigned_and_a_client_contact_none(client, may):
    world, member = may.world, may.member
    mine = await _stats(client, member.headers, month="2027-05", by="brand")
    assert [g["name"] for g in mine["groups"]] == ["Boutique Lune"]
    assert mine["totals"]["volume"]["total"] == 2
    team = await _stats(client, member.headers, month="2027-05", by="agent")
    assert sum(g["volume"]["total"] for g in team["groups"]) == 2
    # Asking for the other brand by name gives nothing rather than its figures.
    hidden = await _stats(client, member.headers, month="2027-05", brand=world.brands["cafe"]["id"])
    assert hidden["groups"] == []

    refused = await client.get(
        "/v1/inbox/stats", params={"month": "2027-05"}, headers=may.contact.headers
    )
    assert refused.status_code == 403, refused.text


@pytest.mark.parametrize(
    "params",
    [{}, {"month": "2027-13"}, {"month": "May 2027"}, {"month": "2027-05", "by": "planet"}],
)
async def test_bad_queries_are_refused(client, clock, params):
    clock.set(NOW)
    world = await new_world(client)
    response = await client.get("/v1/inbox/stats", params=params, headers=world.boss)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_report_has_a_community_section_in_french_that_contacts_read(client, may):
    world, contact = may.world, may.contact
    path = f"/v1/clients/{world.customer['id']}/reports/2027-05"

    # The client's contact reads the figures in the report (and only there).
    report = await client.get(path, headers=contact.headers)
    assert report.status_code == 200, report.text
    community = report.json()["community"]
    assert community["totals"]["volume"]["total"] == 5
    assert community["totals"]["first_response_business_hours"]["median_minutes"] == 30.0
    assert [b["name"] for b in community["brands"]] == ["Boutique Lune", "Café Soleil"]
    assert community["brands"][1]["figures"]["breaches"] == 2
    items = await client.get("/v1/inbox", headers=contact.headers)
    assert items.status_code in (403, 404), items.text

    pdf = await client.get(f"{path}/pdf", headers=contact.headers)
    assert pdf.status_code == 200, pdf.text
    _, text = read(pdf.content)
    for sentence in (
        "Communauté",
        "Messages reçus",
        "Taux de réponse 60,0 %",
        "Délai médian de réponse (heures ouvrables) 30 min",
        "Délai médian de réponse (toutes heures) 2 h 00 min",
        "Réponses dans les délais 50,0 %",
        "Délais dépassés 2",
        "Commentaires : 3",
        "Messages privés : 1",
        "Tonalité :",
        "Marque Reçus Répondus",
    ):
        assert sentence in text, (sentence, text)
    assert "Community" not in text


@pytest.mark.parametrize(
    ("minutes", "language", "shown"),
    [
        (None, "fr", "—"),
        (0.2, "en", "< 1 min"),
        (42.4, "fr", "42 min"),
        (59.6, "en", "1 h 00 min"),
        (85, "fr", "1 h 25 min"),
        (3870, "en", "64 h 30 min"),
        (60 * 1500, "en", "1,500 h 00 min"),
        (60 * 1500, "fr", "1\u202f500 h 00 min"),
    ],
)
def test_response_times_read_in_hours_and_minutes(minutes, language, shown):
    assert format_duration(minutes, language) == shown
