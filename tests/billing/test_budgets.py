"""Retainers and budget status over HTTP: terms over time, the figures a client's month shows,
who sees them, the hard cap and the once-only alerts under real concurrency, month edges in the
agency's timezone, and a budget read that costs the same whatever the team's size."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text, update
from sqlmodel import select

from devtools.smtp import text_of
from infra.clock import utcnow
from infra.outbox import Event
from infra.pagination import encode_cursor
from tenants.models import Membership, MembershipStatus, User
from tests.support.factories import (
    Agency,
    Person,
    add_person,
    make_brand,
    make_client,
    make_post,
    new_agency,
    new_world,
    walk,
)
from tests.support.problems import assert_field_refused, assert_problem
from tests.support.statements import captured_statements
from tests.support.worker import run_worker

SEP, OCT, NOV = "2026-09", "2026-10", "2026-11"
# This file's story happens on a fixed day: September and October are closed months and
# November is the month in progress, whatever the real date.
STORY_DAY = datetime(2026, 11, 20, 12, 0, tzinfo=ZoneInfo("America/Montreal"))
THRESHOLD_EVENT = "budget.threshold_crossed"


# ---------------------------------------------------------------------------------------------
# Helpers


def terms(
    minutes: int = 600,
    *,
    fee: int = 100_000,
    policy: str = "bill_at_rate",
    rate: int | None = 6_000,
    **extra: Any,
) -> dict[str, Any]:
    overage: dict[str, Any] = {"policy": policy}
    if rate is not None and policy == "bill_at_rate":
        overage["rate_minor"] = rate
    return {"monthly_minutes": minutes, "fee_minor": fee, "overage": overage, **extra}


async def post_retainer(
    client: httpx.AsyncClient, headers: dict[str, str], client_id: str, start: str, **body: Any
) -> httpx.Response:
    payload = {"client_id": client_id, "start_month": start, **terms(), **body}
    return await client.post("/v1/retainers", json=payload, headers=headers)


async def make_retainer(
    client: httpx.AsyncClient, headers: dict[str, str], client_id: str, start: str, **body: Any
) -> dict:
    response = await post_retainer(client, headers, client_id, start, **body)
    assert response.status_code == 201, response.text
    return response.json()


async def assign(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    brand_id: str,
    person: Person,
    role: str = "community_manager",
    start: str = "2026-01-01",
    end: str | None = None,
) -> None:
    response = await client.post(
        "/v1/assignments",
        json={
            "brand_id": brand_id,
            "user_id": str(person.user_id),
            "role": role,
            "start_date": start,
            "end_date": end,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text


async def log(
    client: httpx.AsyncClient,
    person: Person,
    brand_id: str,
    day: str | None,
    minutes: int,
    activity: str = "moderation",
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"brand_id": brand_id, "minutes": minutes, "activity": activity}
    if day is not None:
        body["date"] = day
    body.update(extra)
    return await client.post("/v1/time-entries", json=body, headers=person.headers)


async def logged(
    client: httpx.AsyncClient,
    person: Person,
    brand_id: str,
    day: str,
    minutes: int,
    activity: str = "moderation",
    **extra: Any,
) -> dict:
    response = await log(client, person, brand_id, day, minutes, activity, **extra)
    assert response.status_code == 201, response.text
    return response.json()


async def budget_response(
    client: httpx.AsyncClient, headers: dict[str, str], client_id: str, month: str
) -> httpx.Response:
    return await client.get(
        f"/v1/clients/{client_id}/budget", params={"month": month}, headers=headers
    )


async def budget_of(
    client: httpx.AsyncClient, headers: dict[str, str], client_id: str, month: str
) -> dict:
    response = await budget_response(client, headers, client_id, month)
    assert response.status_code == 200, response.text
    return response.json()


def numbers_in(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in numbers_in(item)]
    if isinstance(value, list):
        return [n for item in value for n in numbers_in(item)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


def figures(budget: dict) -> dict[str, Any]:
    keys = (
        "included_minutes",
        "rolled_over_minutes",
        "available_minutes",
        "used_minutes",
        "remaining_minutes",
        "overage_minutes",
    )
    return {k: budget[k] for k in keys}


async def team(client: httpx.AsyncClient, headers: dict[str, str], month: str) -> list[dict]:
    return await walk(client, "/v1/budgets", headers, month=month)


@dataclass
class Shop:
    """An agency with one client ("Acme") of two brands and the people who work on it."""

    agency: Agency
    boss: dict[str, str]
    acme: dict
    brands: list[dict]
    people: list[Person] = field(default_factory=list)

    @property
    def acme_id(self) -> str:
        return str(self.acme["id"])


async def shop(client, db, resources, *, brands: int = 2, timezone: str | None = None) -> Shop:
    world = await new_world(
        client,
        customer={"name": f"Acme {uuid.uuid4().hex[:6]}"},
        brands={f"brand {i}": {"name": f"Acme brand {i}"} for i in range(brands)},
        **({"timezone": timezone} if timezone else {}),
    )
    made = list(world.brands.values())
    return Shop(agency=world.agency, boss=world.boss, acme=world.customer, brands=made)


async def staff(
    client, db, resources, s: Shop, name: str, *, on: list[dict], role: str = "community_manager"
) -> Person:
    person = await add_person(client, db, resources.passwords, s.agency, "member", name=name)
    for brand in on:
        await assign(client, s.boss, brand["id"], person, role=role)
    s.people.append(person)
    return person


async def threshold_events(db, tenant_id: uuid.UUID, client_id: str) -> list[Event]:
    async with db.tenant_transaction(tenant_id) as session:
        rows = (
            await session.scalars(
                select(Event)
                .where(
                    Event.tenant_id == tenant_id,
                    Event.type == THRESHOLD_EVENT,
                    Event.aggregate_id == uuid.UUID(client_id),
                )
                .order_by(Event.seq)  # type: ignore[arg-type]
            )
        ).all()
    return list(rows)


def montreal_today() -> datetime:
    return utcnow().astimezone(ZoneInfo("America/Montreal"))


@pytest.fixture(autouse=True)
async def on_the_story_day(clock, resources):
    # Jobs earlier tests left queued for their own "now" (a cron sweep) would never come due on
    # the story day, and a burst worker waits for every queued job.
    await resources.redis.delete("arq:queue")
    clock.set(STORY_DAY)


# ---------------------------------------------------------------------------------------------
# Retainers


async def test_a_retainer_is_created_read_and_listed(client, db, resources):
    s = await shop(client, db, resources)
    body = {
        "client_id": s.acme_id,
        "start_month": SEP,
        "end_month": "2027-08",
        "monthly_minutes": 1200,
        "fee_minor": 240_000,
        "currency": "EUR",
        "brand_ids": [s.brands[1]["id"], s.brands[0]["id"]],
        "rollover": {"max_minutes": 300, "max_months": 2},
        "overage": {"policy": "bill_at_rate", "rate_minor": 9_500},
        "thresholds": [90, 50, 75],
    }
    response = await client.post("/v1/retainers", json=body, headers=s.boss)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    created = response.json()
    assert (created["client_id"], created["currency"]) == (s.acme_id, "EUR")
    assert (created["start_month"], created["end_month"], created["version"]) == (
        SEP,
        "2027-08",
        1,
    )
    [first] = created["terms"]
    assert first == {
        "effective_month": SEP,
        "monthly_minutes": 1200,
        "fee_minor": 240_000,
        "brand_ids": sorted([s.brands[0]["id"], s.brands[1]["id"]]),
        "rollover": {"max_minutes": 300, "max_months": 2},
        "overage": {"policy": "bill_at_rate", "rate_minor": 9_500},
        "thresholds": [50, 75, 90],
    }

    response = await client.get(f"/v1/retainers/{created['id']}", headers=s.boss)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    assert response.json() == created

    # Defaults: the client's currency, every brand, no rollover, thresholds 50/80/100.
    globex = await make_client(client, s.boss, currency="USD")
    plain = await make_retainer(client, s.boss, globex["id"], OCT, **terms(600, policy="hard_cap"))
    assert (plain["currency"], plain["end_month"]) == ("USD", None)
    assert plain["terms"][0]["brand_ids"] is None
    assert plain["terms"][0]["rollover"] is None
    assert plain["terms"][0]["overage"] == {"policy": "hard_cap", "rate_minor": None}
    assert plain["terms"][0]["thresholds"] == [50, 80, 100]

    initech = await make_client(client, s.boss)
    third = await make_retainer(client, s.boss, initech["id"], NOV)

    everything = await walk(client, "/v1/retainers", s.boss)
    assert sorted(r["id"] for r in everything) == sorted([created["id"], plain["id"], third["id"]])
    one_by_one = await walk(client, "/v1/retainers", s.boss, limit=1)
    assert [r["id"] for r in one_by_one] == [r["id"] for r in everything]
    assert len({r["id"] for r in one_by_one}) == 3
    only_globex = await walk(client, "/v1/retainers", s.boss, client_id=globex["id"])
    assert [r["id"] for r in only_globex] == [plain["id"]]
    for forged in (
        encode_cursor("created", "yesterday", uuid.uuid4()),
        encode_cursor("name", "Acme", uuid.uuid4()),
        "not a cursor",
    ):
        response = await client.get("/v1/retainers", params={"cursor": forged}, headers=s.boss)
        assert_problem(response, 400, "invalid-cursor")


async def test_new_terms_apply_from_their_month_and_earlier_months_keep_theirs(
    client, db, resources
):
    s = await shop(client, db, resources)
    cm = await staff(client, db, resources, s, "Camille", on=s.brands)
    retainer = await make_retainer(
        client, s.boss, s.acme_id, SEP, **terms(600, fee=100_000, rate=6_000)
    )
    await logged(client, cm, s.brands[0]["id"], "2026-10-05", 60)
    await logged(client, cm, s.brands[0]["id"], "2026-11-05", 120)

    new_terms = terms(900, fee=150_000, policy="hard_cap", thresholds=[75, 100])
    response = await client.patch(
        f"/v1/retainers/{retainer['id']}",
        json={"effective_month": NOV, **new_terms},
        headers={**s.boss, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    patched = response.json()
    assert patched["version"] == 2
    assert [
        (t["effective_month"], t["monthly_minutes"], t["fee_minor"]) for t in patched["terms"]
    ] == [(SEP, 600, 100_000), (NOV, 900, 150_000)]
    assert patched["terms"][1]["overage"] == {"policy": "hard_cap", "rate_minor": None}

    october = await budget_of(client, s.boss, s.acme_id, OCT)
    assert (october["included_minutes"], october["fee_minor"], october["overage_policy"]) == (
        600,
        100_000,
        "bill_at_rate",
    )
    assert october["used_minutes"] == 60
    assert october["thresholds_crossed"] == []
    november = await budget_of(client, s.boss, s.acme_id, NOV)
    assert (november["included_minutes"], november["fee_minor"], november["overage_policy"]) == (
        900,
        150_000,
        "hard_cap",
    )
    assert (november["used_minutes"], november["remaining_minutes"]) == (120, 780)

    # Two changes made from the same version: one wins, the other is told it is stale.
    racing = await asyncio.gather(
        *(
            client.patch(
                f"/v1/retainers/{retainer['id']}",
                json={"effective_month": NOV, **new_terms},
                headers={**s.boss, "If-Match": '"2"'},
            )
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in racing) == [200, 412], [r.text for r in racing]

    # A stale version is refused and changes nothing.
    response = await client.patch(
        f"/v1/retainers/{retainer['id']}",
        json={"effective_month": NOV, **terms(60)},
        headers={**s.boss, "If-Match": '"1"'},
    )
    assert_problem(response, 412, "precondition-failed")
    assert (await budget_of(client, s.boss, s.acme_id, NOV))["included_minutes"] == 900

    # Terms planned for a later month give way to newer terms from an earlier month.
    response = await client.patch(
        f"/v1/retainers/{retainer['id']}",
        json={"effective_month": "2026-12", **terms(1000)},
        headers={**s.boss, "If-Match": '"3"'},
    )
    assert response.status_code == 200, response.text
    response = await client.patch(
        f"/v1/retainers/{retainer['id']}",
        json={"effective_month": NOV, **terms(720)},
        headers={**s.boss, "If-Match": '"4"'},
    )
    assert response.status_code == 200, response.text
    assert [(t["effective_month"], t["monthly_minutes"]) for t in response.json()["terms"]] == [
        (SEP, 600),
        (NOV, 720),
    ]
    got = await client.get(f"/v1/retainers/{retainer['id']}", headers=s.boss)
    assert got.headers["etag"] == '"5"'
    assert (await budget_of(client, s.boss, s.acme_id, "2026-12"))["included_minutes"] == 720
    assert (await budget_of(client, s.boss, s.acme_id, OCT))["included_minutes"] == 600


async def test_retainer_refusals(client, db, resources):
    s = await shop(client, db, resources)
    retainer = await make_retainer(client, s.boss, s.acme_id, SEP)
    url = f"/v1/retainers/{retainer['id']}"

    # One retainer per client for any month.
    assert_problem(
        await post_retainer(client, s.boss, s.acme_id, "2027-03"), 409, "retainer-overlap"
    )
    globex = await make_client(client, s.boss)
    await make_retainer(client, s.boss, globex["id"], SEP, end_month=OCT, **terms())
    assert_problem(await post_retainer(client, s.boss, globex["id"], OCT), 409, "retainer-overlap")
    after = await make_retainer(client, s.boss, globex["id"], NOV)  # right after: no overlap
    [before] = [
        r
        for r in await walk(client, "/v1/retainers", s.boss, client_id=globex["id"])
        if r["id"] != after["id"]
    ]
    body = {"effective_month": NOV, "end_month": "2027-01", **terms(900)}
    response = await client.patch(f"/v1/retainers/{before['id']}", json=body, headers=s.boss)
    assert_problem(response, 409, "retainer-overlap")
    got = (await client.get(f"/v1/retainers/{before['id']}", headers=s.boss)).json()
    assert (got["end_month"], got["version"], len(got["terms"])) == (OCT, 1, 1)

    # Bodies that do not hold together.
    response = await client.post(
        "/v1/retainers",
        json={"client_id": s.acme_id, "start_month": SEP, **terms(rate=None)},
        headers=s.boss,
    )
    assert_problem(response, 422, "invalid-terms")
    initech = await make_client(client, s.boss)
    response = await post_retainer(client, s.boss, initech["id"], NOV, end_month=OCT, **terms())
    assert_problem(response, 422, "invalid-terms")
    response = await post_retainer(client, s.boss, initech["id"], NOV, **terms(rate=None))
    assert_problem(response, 422, "invalid-terms")
    globex_brand = await make_brand(client, s.boss, globex["id"])
    response = await post_retainer(
        client, s.boss, initech["id"], NOV, brand_ids=[globex_brand["id"]], **terms()
    )
    assert_field_refused(response, "/brand_ids/0", "unknown-reference")
    assert await walk(client, "/v1/retainers", s.boss, client_id=initech["id"]) == []

    # Changing terms: only from the current month on, inside the retainer, coherent.
    body = {"effective_month": OCT, **terms(900)}
    assert_problem(await client.patch(url, json=body, headers=s.boss), 422, "past-month")
    body = {"effective_month": NOV, **terms(900, rate=None)}
    assert_problem(await client.patch(url, json=body, headers=s.boss), 422, "invalid-terms")
    body = {"effective_month": NOV, "brand_ids": [globex_brand["id"]], **terms(900)}
    response = await client.patch(url, json=body, headers=s.boss)
    assert_field_refused(response, "/brand_ids/0", "unknown-reference")
    ended = await make_retainer(client, s.boss, initech["id"], SEP, end_month=OCT, **terms())
    body = {"effective_month": NOV, **terms(900)}
    response = await client.patch(f"/v1/retainers/{ended['id']}", json=body, headers=s.boss)
    assert_problem(response, 422, "month-outside-retainer")
    hooli = await make_client(client, s.boss)
    later = await make_retainer(client, s.boss, hooli["id"], "2027-01")
    body = {"effective_month": "2026-12", **terms(900)}
    response = await client.patch(f"/v1/retainers/{later['id']}", json=body, headers=s.boss)
    assert_problem(response, 422, "month-outside-retainer")
    body = {"effective_month": "2027-02", "end_month": "2027-01", **terms(900)}
    response = await client.patch(f"/v1/retainers/{later['id']}", json=body, headers=s.boss)
    assert_problem(response, 422, "month-outside-retainer")
    body = {"effective_month": NOV, "end_month": OCT, **terms(900)}  # ending in a closed month
    response = await client.patch(url, json=body, headers=s.boss)
    assert_problem(response, 422, "month-outside-retainer")

    # Nothing of the refused changes stuck.
    got = (await client.get(url, headers=s.boss)).json()
    assert got["version"] == 1
    assert [(t["effective_month"], t["monthly_minutes"]) for t in got["terms"]] == [(SEP, 600)]
    assert (await budget_of(client, s.boss, s.acme_id, NOV))["included_minutes"] == 600


async def test_concurrent_overlapping_retainers_make_one(client, db, resources):
    s = await shop(client, db, resources)
    responses = await asyncio.gather(
        *(post_retainer(client, s.boss, s.acme_id, month) for month in (SEP, OCT, NOV, SEP))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409], [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "retainer-overlap")
    assert len(await walk(client, "/v1/retainers", s.boss, client_id=s.acme_id)) == 1


async def test_retainers_are_for_managers_of_the_agency(client, db, resources):
    s = await shop(client, db, resources)
    retainer = await make_retainer(client, s.boss, s.acme_id, SEP)
    url = f"/v1/retainers/{retainer['id']}"
    member = await staff(client, db, resources, s, "Mia", on=s.brands)
    contact = await add_person(
        client, db, resources.passwords, s.agency, "client", client_id=uuid.UUID(s.acme_id)
    )
    patch_body = {"effective_month": NOV, **terms(900)}
    for person in (member, contact):
        assert_problem(
            await post_retainer(client, person.headers, s.acme_id, "2030-01"),
            403,
            "permission-denied",
        )
        response = await client.get("/v1/retainers", headers=person.headers)
        assert_problem(response, 403, "permission-denied")
        assert_problem(await client.get(url, headers=person.headers), 403, "permission-denied")
        response = await client.patch(url, json=patch_body, headers=person.headers)
        assert_problem(response, 403, "permission-denied")

    manager = await add_person(client, db, resources.passwords, s.agency, "manager")
    response = await client.patch(url, json=patch_body, headers=manager.headers)
    assert response.status_code == 200, response.text

    other = await new_agency(client)
    theirs = other.owner.headers
    assert_problem(await client.get(url, headers=theirs), 404, "retainer-not-found")
    response = await client.patch(url, json=patch_body, headers=theirs)
    assert_problem(response, 404, "retainer-not-found")
    assert await walk(client, "/v1/retainers", theirs) == []
    assert await walk(client, "/v1/retainers", theirs, client_id=s.acme_id) == []
    response = await post_retainer(client, theirs, s.acme_id, "2030-01")
    assert_field_refused(response, "/client_id", "client-not-found")
    assert_problem(await budget_response(client, theirs, s.acme_id, OCT), 404, "client-not-found")
    got = (await client.get(url, headers=s.boss)).json()
    assert got["version"] == 2


# ---------------------------------------------------------------------------------------------
# Budget status


async def test_budget_status_shows_the_month_in_figures(client, db, resources):
    s = await shop(client, db, resources)
    cafe, boutique = s.brands
    alice = await staff(client, db, resources, s, "Alice Tremblay", on=[cafe])
    bruno = await staff(client, db, resources, s, "Bruno Gagnon", on=[cafe, boutique])
    await make_retainer(client, s.boss, s.acme_id, OCT, **terms(600, fee=120_000, rate=9_001))
    for body in (
        {"rate_minor": 6_000},
        {"rate_minor": 7_501, "user_id": str(bruno.user_id), "client_id": s.acme_id},
    ):
        response = await client.post("/v1/rates", json=body, headers=s.boss)
        assert response.status_code == 201, response.text
    post_x, post_y = [(await make_post(client, s.boss, cafe["id"]))["id"] for _ in range(2)]
    post_z = (await make_post(client, s.boss, boutique["id"]))["id"]
    await logged(client, alice, cafe["id"], "2026-10-05", 200, content_item_id=post_x)
    await logged(client, alice, cafe["id"], "2026-10-06", 100, "content_creation")
    await logged(
        client, bruno, boutique["id"], "2026-10-05", 250, "content_creation", content_item_id=post_z
    )
    await logged(client, bruno, cafe["id"], "2026-10-07", 140, "reporting", content_item_id=post_y)
    await logged(client, alice, cafe["id"], "2026-10-08", 90, "meeting", billable=False)
    # Another month and another client do not leak in.
    globex = await make_client(client, s.boss)
    await make_retainer(client, s.boss, globex["id"], OCT)
    globex_brand = await make_brand(client, s.boss, globex["id"])
    await assign(client, s.boss, globex_brand["id"], alice)
    await logged(client, alice, globex_brand["id"], "2026-10-09", 45)
    await logged(client, alice, cafe["id"], "2026-11-02", 30)

    budget = await budget_of(client, s.boss, s.acme_id, OCT)
    assert (budget["client_id"], budget["client_name"], budget["month"]) == (
        s.acme_id,
        s.acme["name"],
        OCT,
    )
    assert budget["currency"] == "CAD"
    assert figures(budget) == {
        "included_minutes": 600,
        "rolled_over_minutes": 0,
        "available_minutes": 600,
        "used_minutes": 690,
        "remaining_minutes": 0,
        "overage_minutes": 90,
    }
    assert budget["projected_minutes"] == 690  # a past month is what it is
    assert budget["non_billable_minutes"] == 90
    assert budget["percent_used"] == 115.0
    assert budget["thresholds_crossed"] == [50, 80, 100]
    assert budget["overage_policy"] == "bill_at_rate"
    assert budget["fee_minor"] == 120_000
    assert budget["overage_amount_minor"] == 13_502  # 90 min at 90.01/h = 135.015, half up
    assert [(b["id"], b["name"], b["minutes"]) for b in budget["by_brand"]] == [
        (cafe["id"], cafe["name"], 440),
        (boutique["id"], boutique["name"], 250),
    ]
    assert [(p["name"], p["minutes"], p["amount_minor"]) for p in budget["by_person"]] == [
        ("Bruno Gagnon", 390, 48_757),  # 390 min at 75.01/h = 487.565, half up
        ("Alice Tremblay", 300, 30_000),
    ]
    assert budget["by_activity"] == [
        {"activity": "content_creation", "minutes": 350},
        {"activity": "moderation", "minutes": 200},
        {"activity": "reporting", "minutes": 140},
    ]
    assert [(c["id"], c["minutes"]) for c in budget["by_content_item"]] == [
        (post_z, 250),
        (post_x, 200),
        (post_y, 140),
        (None, 100),
    ]

    # A member on one of the client's brands sees the hours, never the money.
    seen = await budget_of(client, alice.headers, s.acme_id, OCT)
    assert figures(seen) == figures(budget)
    assert seen["percent_used"] == 115.0
    assert seen["fee_minor"] is None
    assert seen["overage_amount_minor"] is None
    assert [(p["name"], p["minutes"], p["amount_minor"]) for p in seen["by_person"]] == [
        ("Bruno Gagnon", 390, None),
        ("Alice Tremblay", 300, None),
    ]
    assert "48757" not in (await budget_response(client, alice.headers, s.acme_id, OCT)).text

    outsider = await staff(client, db, resources, s, "Olivier", on=[globex_brand])
    response = await budget_response(client, outsider.headers, s.acme_id, OCT)
    assert_problem(response, 404, "client-not-found")

    # No retainer that month; months that are not months.
    assert_problem(await budget_response(client, s.boss, s.acme_id, SEP), 404, "budget-not-found")
    for month in ("2026-13", "2026-1", "202610", "october"):
        assert_problem(await budget_response(client, s.boss, s.acme_id, month), 422)
    response = await client.get(f"/v1/clients/{s.acme_id}/budget", headers=s.boss)
    assert_problem(response, 422)
    response = await budget_response(client, s.boss, str(uuid.uuid4()), OCT)
    assert_problem(response, 404, "client-not-found")


async def test_approved_time_keeps_the_rate_it_was_frozen_at(client, db, resources):
    s = await shop(client, db, resources, brands=1)
    [brand] = s.brands
    alice = await staff(client, db, resources, s, "Alice", on=[brand])
    await make_retainer(client, s.boss, s.acme_id, OCT, **terms(600))
    response = await client.post("/v1/rates", json={"rate_minor": 6_000}, headers=s.boss)
    assert response.status_code == 201, response.text
    rate = response.json()
    await logged(client, alice, brand["id"], "2026-10-05", 60)  # week 41
    await logged(client, alice, brand["id"], "2026-10-13", 30)  # week 42
    sheet = f"/v1/timesheets/{alice.user_id}/2026-W41"
    response = await client.post(f"{sheet}/submit", headers=alice.headers)
    assert response.status_code == 200, response.text
    response = await client.post(f"{sheet}/approve", headers=s.boss)
    assert response.status_code == 200, response.text

    response = await client.patch(
        f"/v1/rates/{rate['id']}", json={"rate_minor": 12_000}, headers=s.boss
    )
    assert response.status_code == 200, response.text
    budget = await budget_of(client, s.boss, s.acme_id, OCT)
    # 60 min frozen at 60.00/h, 30 open min at today's 120.00/h.
    assert [(p["minutes"], p["amount_minor"]) for p in budget["by_person"]] == [(90, 12_000)]
    assert budget["used_minutes"] == 90


async def test_by_person_names_people_as_the_rest_of_the_api_does(client, db, resources):
    """Everywhere else a person is their user id (members, assignments, time entries,
    timesheets): the budget's per-person line must link to the same person."""
    s = await shop(client, db, resources, brands=1)
    [brand] = s.brands
    cm = await staff(client, db, resources, s, "Camille", on=[brand])
    await make_retainer(client, s.boss, s.acme_id, OCT)
    entry = await logged(client, cm, brand["id"], "2026-10-05", 60)
    budget = await budget_of(client, s.boss, s.acme_id, OCT)
    [line] = budget["by_person"]
    assert line["name"] == "Camille"
    assert line["id"] == entry["user_id"] == str(cm.user_id)


async def test_only_the_retainers_brands_count(client, db, resources):
    s = await shop(client, db, resources, brands=3)
    counted, other, also_counted = s.brands
    cm = await staff(client, db, resources, s, "Camille", on=s.brands)
    await make_retainer(
        client,
        s.boss,
        s.acme_id,
        OCT,
        brand_ids=[counted["id"], also_counted["id"]],
        **terms(600),
    )
    await logged(client, cm, counted["id"], "2026-10-05", 240)
    await logged(client, cm, also_counted["id"], "2026-10-06", 60, "reporting")
    await logged(client, cm, other["id"], "2026-10-05", 500, "crisis")
    await logged(client, cm, other["id"], "2026-10-07", 30, billable=False)

    budget = await budget_of(client, s.boss, s.acme_id, OCT)
    assert (budget["used_minutes"], budget["remaining_minutes"]) == (300, 300)
    assert budget["percent_used"] == 50.0
    assert budget["thresholds_crossed"] == [50]
    assert budget["non_billable_minutes"] == 0
    assert [(b["id"], b["minutes"]) for b in budget["by_brand"]] == [
        (counted["id"], 240),
        (also_counted["id"], 60),
    ]
    assert [(p["name"], p["minutes"]) for p in budget["by_person"]] == [("Camille", 300)]
    assert [a["activity"] for a in budget["by_activity"]] == ["moderation", "reporting"]
    [summary] = await team(client, s.boss, OCT)
    assert (summary["used_minutes"], summary["percent_used"]) == (300, 50.0)


async def test_unused_minutes_roll_over_into_later_months(client, db, resources):
    s = await shop(client, db, resources, brands=1)
    [brand] = s.brands
    cm = await staff(client, db, resources, s, "Camille", on=[brand])
    # Expiring lots: September's leftover may only be used in October.
    await make_retainer(
        client,
        s.boss,
        s.acme_id,
        SEP,
        rollover={"max_minutes": 1000, "max_months": 1},
        **terms(600),
    )
    await logged(client, cm, brand["id"], "2026-09-15", 400)
    await logged(client, cm, brand["id"], "2026-10-15", 100)
    await logged(client, cm, brand["id"], "2026-11-03", 900)

    assert figures(await budget_of(client, s.boss, s.acme_id, SEP)) == {
        "included_minutes": 600,
        "rolled_over_minutes": 0,
        "available_minutes": 600,
        "used_minutes": 400,
        "remaining_minutes": 200,
        "overage_minutes": 0,
    }
    assert figures(await budget_of(client, s.boss, s.acme_id, OCT)) == {
        "included_minutes": 600,
        "rolled_over_minutes": 200,
        "available_minutes": 800,
        "used_minutes": 100,
        "remaining_minutes": 700,
        "overage_minutes": 0,
    }
    # October spent September's lot first: 100 of it expire, October's own 600 come along.
    november = await budget_of(client, s.boss, s.acme_id, NOV)
    assert figures(november) == {
        "included_minutes": 600,
        "rolled_over_minutes": 600,
        "available_minutes": 1200,
        "used_minutes": 900,
        "remaining_minutes": 300,
        "overage_minutes": 0,
    }
    assert november["percent_used"] == 75.0
    assert november["thresholds_crossed"] == [50]

    # A cap on what is carried into a month, lots kept for two months.
    globex = await make_client(client, s.boss)
    g_brand = await make_brand(client, s.boss, globex["id"])
    await assign(client, s.boss, g_brand["id"], cm)
    await make_retainer(
        client,
        s.boss,
        globex["id"],
        SEP,
        rollover={"max_minutes": 300, "max_months": 2},
        **terms(600, rate=6_000),
    )
    await logged(client, cm, g_brand["id"], "2026-09-16", 400)
    await logged(client, cm, g_brand["id"], "2026-10-16", 100)
    await logged(client, cm, g_brand["id"], "2026-11-04", 960)
    assert (await budget_of(client, s.boss, globex["id"], OCT))["rolled_over_minutes"] == 200
    november = await budget_of(client, s.boss, globex["id"], NOV)
    assert figures(november) == {
        "included_minutes": 600,
        "rolled_over_minutes": 300,
        "available_minutes": 900,
        "used_minutes": 960,
        "remaining_minutes": 0,
        "overage_minutes": 60,
    }
    assert november["overage_amount_minor"] == 6_000

    # Without rollover, nothing is carried.
    initech = await make_client(client, s.boss)
    i_brand = await make_brand(client, s.boss, initech["id"])
    await assign(client, s.boss, i_brand["id"], cm)
    await make_retainer(client, s.boss, initech["id"], SEP, **terms(600))
    await logged(client, cm, i_brand["id"], "2026-09-17", 100)
    assert (await budget_of(client, s.boss, initech["id"], OCT))["rolled_over_minutes"] == 0


async def test_the_portal_shows_a_contact_their_own_clients_hours(client, db, resources):
    s = await shop(client, db, resources, brands=1)
    [brand] = s.brands
    cm = await staff(client, db, resources, s, "Camille", on=[brand])
    await make_retainer(client, s.boss, s.acme_id, OCT, **terms(600, fee=99_000))
    response = await client.post("/v1/rates", json={"rate_minor": 6_000}, headers=s.boss)
    assert response.status_code == 201, response.text
    await logged(client, cm, brand["id"], "2026-10-05", 660)

    contact = await add_person(
        client, db, resources.passwords, s.agency, "client", client_id=uuid.UUID(s.acme_id)
    )
    response = await client.get("/v1/portal/budget", params={"month": OCT}, headers=contact.headers)
    assert response.status_code == 200, response.text
    mine = response.json()
    assert mine["client_id"] == s.acme_id
    assert figures(mine) == {
        "included_minutes": 600,
        "rolled_over_minutes": 0,
        "available_minutes": 600,
        "used_minutes": 660,
        "remaining_minutes": 0,
        "overage_minutes": 60,
    }
    assert mine["thresholds_crossed"] == [50, 80, 100]
    assert mine["fee_minor"] is None
    assert mine["overage_amount_minor"] is None
    assert [(p["minutes"], p["amount_minor"]) for p in mine["by_person"]] == [(660, None)]
    # Ids are random hex and may contain "6000", so look at the numbers, not the text.
    assert not {99_000, 6_000} & set(numbers_in(mine))
    response = await client.get(
        "/v1/portal/budget", params={"month": "2026-13"}, headers=contact.headers
    )
    assert_problem(response, 422)
    response = await client.get("/v1/portal/budget", params={"month": SEP}, headers=contact.headers)
    assert_problem(response, 404, "budget-not-found")

    for person in (s.agency.owner, cm):
        response = await client.get(
            "/v1/portal/budget", params={"month": OCT}, headers=person.headers
        )
        assert_problem(response, 403, "permission-denied")

    # A contact of another client sees theirs, never Acme's.
    globex = await make_client(client, s.boss)
    await make_retainer(client, s.boss, globex["id"], OCT, **terms(1200))
    stranger = await add_person(
        client, db, resources.passwords, s.agency, "client", client_id=uuid.UUID(globex["id"])
    )
    response = await client.get(
        "/v1/portal/budget", params={"month": OCT}, headers=stranger.headers
    )
    assert response.status_code == 200, response.text
    theirs = response.json()
    assert (theirs["client_id"], theirs["available_minutes"], theirs["used_minutes"]) == (
        globex["id"],
        1200,
        0,
    )
    assert_problem(
        await budget_response(client, stranger.headers, s.acme_id, OCT), 404, "client-not-found"
    )
    assert [b["client_id"] for b in await team(client, stranger.headers, OCT)] == [globex["id"]]
    nobody = await add_person(client, db, resources.passwords, s.agency, "client")
    response = await client.get("/v1/portal/budget", params={"month": OCT}, headers=nobody.headers)
    assert_problem(response, 404, "budget-not-found")


async def test_the_team_view_ranks_clients_by_risk(client, db, resources):
    s = await shop(client, db, resources, brands=1)
    cm = await staff(client, db, resources, s, "Camille", on=s.brands)
    named: dict[str, tuple[dict, dict]] = {"acme": (s.acme, s.brands[0])}
    for name in ("globex", "initech", "hooli", "umbrella"):
        made = await make_client(client, s.boss, name=f"{name} {uuid.uuid4().hex[:6]}")
        brand = await make_brand(client, s.boss, made["id"])
        await assign(client, s.boss, brand["id"], cm)
        named[name] = (made, brand)
    used = {"acme": 120, "globex": 540, "initech": 300}
    for name in used:
        await make_retainer(client, s.boss, named[name][0]["id"], OCT, **terms(600))
    await make_retainer(client, s.boss, named["hooli"][0]["id"], NOV, **terms(600))
    # umbrella has no retainer at all.
    for day, (name, minutes) in enumerate(used.items(), start=5):
        await logged(client, cm, named[name][1]["id"], f"2026-10-{day:02d}", minutes)
    await logged(client, cm, named["umbrella"][1]["id"], "2026-10-09", 30, billable=False)

    october = await team(client, s.boss, OCT)
    ids = {name: str(made["id"]) for name, (made, _) in named.items()}
    assert [b["client_id"] for b in october] == [ids["globex"], ids["initech"], ids["acme"]]
    assert [
        (b["used_minutes"], b["projected_minutes"], b["projected_percent"]) for b in october
    ] == [(540, 540, 90.0), (300, 300, 50.0), (120, 120, 20.0)]
    assert [b["percent_used"] for b in october] == [90.0, 50.0, 20.0]
    assert all(b["available_minutes"] == 600 for b in october)

    seen: list[str] = []
    cursor = None
    cursors: list[str] = []
    for _ in range(10):
        params: dict[str, Any] = {"month": OCT, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/budgets", params=params, headers=s.boss)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) == 1
        seen += [b["client_id"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        cursors.append(cursor)
    assert seen == [ids["globex"], ids["initech"], ids["acme"]]
    # A cursor belongs to its month's ranking.
    response = await client.get(
        "/v1/budgets", params={"month": NOV, "cursor": cursors[0]}, headers=s.boss
    )
    assert_problem(response, 400, "invalid-cursor")

    # The month in progress is projected at its pace so far.
    await logged(client, cm, named["hooli"][1]["id"], "2026-11-02", 200)
    today = montreal_today()
    november = {b["client_id"]: b for b in await team(client, s.boss, NOV)}
    assert set(november) == {ids["acme"], ids["globex"], ids["initech"], ids["hooli"]}
    projected = (200 * 30 * 2 + today.day) // (2 * today.day)
    assert november[ids["hooli"]]["projected_minutes"] == projected
    assert november[ids["hooli"]]["projected_percent"] == round(projected * 100 / 600, 1)
    assert next(iter(november)) == ids["hooli"]

    # Members see the clients they work on, and only those.
    mia = await staff(client, db, resources, s, "Mia", on=[named["initech"][1]])
    assert [b["client_id"] for b in await team(client, mia.headers, OCT)] == [ids["initech"]]
    loner = await staff(client, db, resources, s, "Lou", on=[])
    assert await team(client, loner.headers, OCT) == []


# ---------------------------------------------------------------------------------------------
# The hard cap and the alerts under concurrency


async def test_a_hard_cap_holds_under_concurrent_entries(client, db, resources):
    s = await shop(client, db, resources, brands=2)
    await make_retainer(client, s.boss, s.acme_id, OCT, **terms(300, policy="hard_cap"))
    people = [await staff(client, db, resources, s, f"Person {i}", on=s.brands) for i in range(5)]
    requests = [
        log(client, person, s.brands[i % 2]["id"], day, 60)
        for i, person in enumerate(people)
        for day in ("2026-10-05", "2026-10-06")
    ]
    responses = await asyncio.gather(*requests)
    accepted = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(accepted) == 5, [r.text for r in responses]
    assert len(refused) == 5
    for response in refused:
        body = assert_problem(response, 409, "budget-exhausted")
        assert body["remaining_minutes"] == 0

    budget = await budget_of(client, s.boss, s.acme_id, OCT)
    assert (budget["used_minutes"], budget["remaining_minutes"], budget["overage_minutes"]) == (
        300,
        0,
        0,
    )
    assert budget["overage_amount_minor"] == 0
    assert budget["thresholds_crossed"] == [50, 80, 100]
    entries = await walk(client, "/v1/time-entries", s.boss, client_id=s.acme_id)
    assert sum(e["minutes"] for e in entries) == 300
    # Non-billable time is never capped.
    response = await log(client, people[0], s.brands[0]["id"], "2026-10-07", 60, billable=False)
    assert response.status_code == 201, response.text


async def test_a_hard_cap_is_not_broken_by_back_dated_time(client, db, resources):
    """Time logged in October lowers what October leaves for November: a capped November that
    is already full must not end up over its cap."""
    s = await shop(client, db, resources, brands=1)
    [brand] = s.brands
    cm = await staff(client, db, resources, s, "Camille", on=[brand])
    await make_retainer(
        client,
        s.boss,
        s.acme_id,
        OCT,
        rollover={"max_minutes": 300, "max_months": 1},
        **terms(300, policy="hard_cap"),
    )
    await logged(client, cm, brand["id"], "2026-11-02", 600)  # 300 own + 300 from October
    november = await budget_of(client, s.boss, s.acme_id, NOV)
    assert (november["available_minutes"], november["used_minutes"]) == (600, 600)

    response = await log(client, cm, brand["id"], "2026-10-20", 60)
    november = await budget_of(client, s.boss, s.acme_id, NOV)
    assert november["overage_minutes"] == 0, (response.status_code, november)
    assert_problem(response, 409, "budget-exhausted")


async def test_a_hard_cap_holds_when_an_entry_is_corrected(client, db, resources):
    s = await shop(client, db, resources, brands=1)
    [brand] = s.brands
    cm = await staff(client, db, resources, s, "Camille", on=[brand])
    await make_retainer(client, s.boss, s.acme_id, OCT, **terms(300, policy="hard_cap"))
    entry = await logged(client, cm, brand["id"], "2026-10-05", 200)
    off_budget = await logged(client, cm, brand["id"], "2026-10-06", 120, billable=False)

    url = f"/v1/time-entries/{entry['id']}"
    response = await client.patch(url, json={"minutes": 301}, headers=cm.headers)
    assert_problem(response, 409, "budget-exhausted")
    response = await client.patch(
        f"/v1/time-entries/{off_budget['id']}", json={"billable": True}, headers=s.boss
    )
    assert_problem(response, 409, "budget-exhausted")
    response = await client.patch(url, json={"minutes": 300}, headers=cm.headers)
    assert response.status_code == 200, response.text
    budget = await budget_of(client, s.boss, s.acme_id, OCT)
    assert (budget["used_minutes"], budget["remaining_minutes"]) == (300, 0)
    assert budget["non_billable_minutes"] == 120


async def test_a_later_months_thresholds_are_alerted_when_earlier_time_uses_its_rollover(
    client, db, resources
):
    """Back-dated October time shrinks what rolls into November: when that pushes November past
    a threshold, its leads must hear of it (the status already shows it crossed)."""
    s = await shop(client, db, resources, brands=1)
    [brand] = s.brands
    cm = await staff(client, db, resources, s, "Camille", on=[brand])
    await make_retainer(
        client,
        s.boss,
        s.acme_id,
        OCT,
        rollover={"max_minutes": 300, "max_months": 1},
        **terms(300),
    )
    await logged(client, cm, brand["id"], "2026-11-02", 420)  # 420 of 600: 70 %
    events = await threshold_events(db, s.agency.tenant_id, s.acme_id)
    assert [(e.payload["month"], e.payload["threshold"]) for e in events] == [(NOV, 50)]

    await logged(client, cm, brand["id"], "2026-10-20", 180)  # October leaves 120, not 300
    november = await budget_of(client, s.boss, s.acme_id, NOV)
    assert (november["available_minutes"], november["used_minutes"]) == (420, 420)
    assert november["thresholds_crossed"] == [50, 80, 100]
    events = await threshold_events(db, s.agency.tenant_id, s.acme_id)
    alerted = sorted(e.payload["threshold"] for e in events if e.payload["month"] == NOV)
    assert alerted == [50, 80, 100]


async def test_each_threshold_is_crossed_once_and_mailed_to_brand_leads(
    client, db, resources, settings, mailbox
):
    s = await shop(client, db, resources, brands=2)
    cafe, boutique = s.brands
    lead_fr = await staff(client, db, resources, s, "Léa", on=[cafe], role="lead")
    lead_en = await staff(client, db, resources, s, "Liam", on=[cafe, boutique], role="lead")
    cms = [await staff(client, db, resources, s, f"CM {i}", on=s.brands) for i in range(4)]
    async with db.tenant_transaction(s.agency.tenant_id) as session:
        await session.execute(
            update(User).where(User.id == lead_fr.user_id).values(locale="fr-CA")  # type: ignore[arg-type]
        )
    globex = await make_client(client, s.boss)
    globex_brand = await make_brand(client, s.boss, globex["id"])
    other_lead = await staff(client, db, resources, s, "Gus", on=[globex_brand], role="lead")
    former_lead = await staff(client, db, resources, s, "Fred", on=[])
    await assign(client, s.boss, cafe["id"], former_lead, role="lead", end="2026-10-31")
    gone_lead = await staff(client, db, resources, s, "Gina", on=[boutique], role="lead")
    async with db.tenant_transaction(s.agency.tenant_id) as session:
        await session.execute(
            update(Membership)
            .where(Membership.id == gone_lead.membership_id)  # type: ignore[arg-type]
            .values(status=MembershipStatus.disabled)
        )
    await make_retainer(client, s.boss, s.acme_id, OCT, **terms(600))

    # 4 × 150 = 600: every threshold is crossed by requests landing at the same moment.
    responses = await asyncio.gather(
        *(log(client, cm, s.brands[i % 2]["id"], "2026-10-05", 150) for i, cm in enumerate(cms))
    )
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    events = await threshold_events(db, s.agency.tenant_id, s.acme_id)
    assert sorted(e.payload["threshold"] for e in events) == [50, 80, 100]
    assert {e.payload["month"] for e in events} == {OCT}
    assert all(e.payload["available_minutes"] == 600 for e in events)

    # More time, and time deleted then logged again, cross nothing anew.
    await logged(client, cms[0], cafe["id"], "2026-10-06", 60)
    entry = responses[1].json()
    response = await client.delete(f"/v1/time-entries/{entry['id']}", headers=cms[1].headers)
    assert response.status_code == 204, response.text
    assert (await budget_of(client, s.boss, s.acme_id, OCT))["used_minutes"] == 510
    more = await asyncio.gather(*(log(client, cm, cafe["id"], "2026-10-07", 75) for cm in cms[1:3]))
    assert [r.status_code for r in more] == [201, 201], [r.text for r in more]
    assert (await budget_of(client, s.boss, s.acme_id, OCT))["used_minutes"] == 660
    events = await threshold_events(db, s.agency.tenant_id, s.acme_id)
    assert sorted(e.payload["threshold"] for e in events) == [50, 80, 100]
    async with db.tenant_transaction(s.agency.tenant_id) as session:
        alerts = (
            (
                await session.execute(
                    text("SELECT threshold FROM budget_alerts WHERE client_id = :c ORDER BY 1"),
                    {"c": uuid.UUID(s.acme_id)},
                )
            )
            .scalars()
            .all()
        )
    assert list(alerts) == [50, 80, 100]

    await run_worker(settings)
    french = await mailbox.wait_for(lead_fr.email, count=3)
    english = await mailbox.wait_for(lead_en.email, count=3)
    assert len(mailbox.to(lead_fr.email)) == 3
    assert len(mailbox.to(lead_en.email)) == 3, [m["Subject"] for m in english]
    name = s.acme["name"]
    assert sorted(str(m["Subject"]) for m in french) == sorted(
        f"{name} : {t} % du forfait de {OCT} utilisé" for t in (50, 80, 100)
    )
    assert {str(m["Content-Language"]) for m in french} == {"fr"}
    assert all("Bonjour" in text_of(m) for m in french)
    assert sorted(str(m["Subject"]) for m in english) == sorted(
        f"{name}: {t}% of the {OCT} retainer used" for t in (50, 80, 100)
    )
    assert {str(m["Content-Language"]) for m in english} == {"en"}
    link = f"https://app.passerelle.test/clients/{s.acme_id}/budget?month={OCT}"
    assert all(link in text_of(m) for m in french + english)
    for person in (*cms, other_lead, former_lead, gone_lead):
        assert mailbox.to(person.email) == []


# ---------------------------------------------------------------------------------------------
# Month edges and the length of a day, in the agency's timezone


async def test_a_month_ends_at_local_midnight(client, db, resources):
    s = await shop(client, db, resources, brands=1)
    [brand] = s.brands
    cm = await staff(client, db, resources, s, "Camille", on=[brand])
    await make_retainer(client, s.boss, s.acme_id, OCT)
    # 23:30 on 31 October in Montréal is already 1 November in UTC.
    entry = await logged(client, cm, brand["id"], None, 60, started_at="2026-11-01T03:30:00Z")
    assert entry["date"] == "2026-10-31"
    assert (await budget_of(client, s.boss, s.acme_id, OCT))["used_minutes"] == 60
    assert (await budget_of(client, s.boss, s.acme_id, NOV))["used_minutes"] == 0

    paris = await shop(client, db, resources, brands=1, timezone="Europe/Paris")
    [p_brand] = paris.brands
    p_cm = await staff(client, db, resources, paris, "Chloé", on=[p_brand])
    await make_retainer(client, paris.boss, paris.acme_id, OCT)
    # 23:30 UTC on 31 October is 00:30 on 1 November in Paris.
    entry = await logged(
        client, p_cm, p_brand["id"], None, 60, started_at="2026-10-31T23:30:00+00:00"
    )
    assert entry["date"] == "2026-11-01"
    assert (await budget_of(client, paris.boss, paris.acme_id, OCT))["used_minutes"] == 0
    assert (await budget_of(client, paris.boss, paris.acme_id, NOV))["used_minutes"] == 60
    response = await log(
        client, p_cm, p_brand["id"], "2026-10-31", 60, started_at="2026-10-31T23:30:00+00:00"
    )
    assert_problem(response, 422, "date-mismatch")


async def test_a_day_holds_the_minutes_it_really_has(client, db, resources):
    async def fill(person: Person, brand: dict, day: str, length: int) -> None:
        for minutes in (1000, length - 1000):
            response = await log(client, person, brand["id"], day, minutes, billable=False)
            assert response.status_code == 201, (day, response.text)
        body = assert_problem(
            await log(client, person, brand["id"], day, 1, billable=False), 422, "day-overfull"
        )
        assert (body["day_minutes"], body["logged_minutes"]) == (length, length)

    s = await shop(client, db, resources, brands=1)
    cm = await staff(client, db, resources, s, "Camille", on=s.brands)
    await fill(cm, s.brands[0], "2026-11-01", 1500)  # clocks go back: 25 hours
    await fill(cm, s.brands[0], "2026-03-08", 1380)  # clocks go forward: 23 hours
    await fill(cm, s.brands[0], "2026-11-02", 1440)
    assert_problem(await log(client, cm, s.brands[0]["id"], "2026-11-03", 1501), 422)

    paris = await shop(client, db, resources, brands=1, timezone="Europe/Paris")
    p_cm = await staff(client, db, resources, paris, "Chloé", on=paris.brands)
    await fill(p_cm, paris.brands[0], "2026-10-25", 1500)
    await fill(p_cm, paris.brands[0], "2026-11-01", 1440)  # no change in Paris that day


# ---------------------------------------------------------------------------------------------
# Cost of a read


async def test_budget_status_costs_the_same_for_one_person_or_five(client, db, resources):
    s = await shop(client, db, resources, brands=3)
    await make_retainer(
        client, s.boss, s.acme_id, SEP, rollover={"max_minutes": 600, "max_months": 2}, **terms()
    )
    response = await client.post("/v1/rates", json={"rate_minor": 6_000}, headers=s.boss)
    assert response.status_code == 201, response.text

    async def measure(headers: dict[str, str], url: str, params: dict[str, str]) -> tuple[int, Any]:
        with captured_statements(resources) as statements:
            response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return len(statements), response.json()

    async def hire(name: str) -> Person:
        person = await staff(client, db, resources, s, name, on=s.brands)
        for i, brand in enumerate(s.brands):
            for day in ("2026-09-10", "2026-10-12", f"2026-11-0{2 + i}"):
                post = await make_post(client, s.boss, brand["id"])
                await logged(client, person, brand["id"], day, 10 + i, content_item_id=post["id"])
        return person

    first = await hire("Person 1")
    url = f"/v1/clients/{s.acme_id}/budget"
    small, budget = await measure(s.boss, url, {"month": NOV})
    assert len(budget["by_person"]) == 1 and budget["used_minutes"] == 33
    small_member, _ = await measure(first.headers, url, {"month": NOV})
    small_team, _ = await measure(s.boss, "/v1/budgets", {"month": NOV})
    for i in range(2, 6):
        await hire(f"Person {i}")
    large, budget = await measure(s.boss, url, {"month": NOV})
    assert len(budget["by_person"]) == 5 and budget["used_minutes"] == 165
    assert len(budget["by_brand"]) == 3 and len(budget["by_content_item"]) == 15
    assert all(p["amount_minor"] is not None for p in budget["by_person"])
    large_member, _ = await measure(first.headers, url, {"month": NOV})
    assert small > 0
    assert (large, large_member) == (small, small_member), (
        small,
        large,
        small_member,
        large_member,
    )
    for _ in range(3):
        other = await make_client(client, s.boss)
        await make_retainer(client, s.boss, other["id"], SEP)
    large_team, listed = await measure(s.boss, "/v1/budgets", {"month": NOV})
    assert len(listed["items"]) == 4
    assert large_team == small_team, (small_team, large_team)


async def test_a_budget_read_loads_its_facts_in_one_statement_and_aggregates_in_one(
    client, db, resources
):
    """Client, retainer, every terms row and the rates come in one statement and the figures in
    one more, whoever reads and however many terms, rates and rows there are: a budget read
    stays two statements of its own (the request's authentication and tenant setting aside)."""
    s = await shop(client, db, resources, brands=2)
    retainer = await make_retainer(client, s.boss, s.acme_id, SEP, **terms(600))
    for version, (month, minutes) in enumerate(((NOV, 700), ("2026-12", 800)), start=1):
        response = await client.patch(
            f"/v1/retainers/{retainer['id']}",
            json={"effective_month": month, **terms(minutes)},
            headers={**s.boss, "If-Match": f'"{version}"'},
        )
        assert response.status_code == 200, response.text
    people = [await staff(client, db, resources, s, f"P{i}", on=s.brands) for i in range(3)]
    rates: list[dict[str, Any]] = [
        {"rate_minor": 6_000},
        {"rate_minor": 7_000, "role": "member"},
        {"rate_minor": 8_000, "client_id": s.acme_id},
        *(
            {"rate_minor": 9_000 + i, "user_id": str(p.user_id), "client_id": s.acme_id}
            for i, p in enumerate(people)
        ),
    ]
    for body in rates:
        response = await client.post("/v1/rates", json=body, headers=s.boss)
        assert response.status_code == 201, response.text
    for person in people:
        for day in ("2026-09-10", "2026-10-12", "2026-11-03"):
            await logged(client, person, s.brands[0]["id"], day, 30)
    contact = await add_person(
        client, db, resources.passwords, s.agency, "client", client_id=uuid.UUID(s.acme_id)
    )

    async def budget_statements(headers: dict[str, str], url: str) -> list[str]:
        with captured_statements(resources) as statements:
            response = await client.get(url, params={"month": NOV}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["used_minutes"] == 90
        budget_tables = ("retainer", "rates", "time_entries")
        return [x for x in statements if any(t in x for t in budget_tables)]

    url = f"/v1/clients/{s.acme_id}/budget"
    for headers, path in (
        (s.boss, url),  # sees money: the rates come with the facts
        (people[0].headers, url),
        (contact.headers, "/v1/portal/budget"),
    ):
        facts, figures_ = await budget_statements(headers, path)
        assert "retainer_terms" in facts and "FROM clients" in facts, facts
        assert "time_entries" in figures_ and "GROUPING" in figures_, figures_


async def test_the_budget_body_is_exactly_what_its_model_writes(client, db, resources):
    """The client budget is written straight to JSON, past the response model: its body must
    be what `BudgetRead` itself would write (every key, null where it has no value, the same
    types), for a manager who sees money and a member who does not."""
    from billing.budgets.schemas import BudgetRead

    s = await shop(client, db, resources, brands=2)
    await make_retainer(client, s.boss, s.acme_id, SEP, **terms(600))
    person = await staff(client, db, resources, s, "P", on=s.brands)
    response = await client.post("/v1/rates", json={"rate_minor": 6_000}, headers=s.boss)
    assert response.status_code == 201, response.text
    for brand in s.brands:
        await logged(client, person, brand["id"], "2026-11-03", 45)
    await logged(client, person, s.brands[0]["id"], "2026-11-04", 15, billable=False)
    for headers in (s.boss, person.headers):
        response = await client.get(
            f"/v1/clients/{s.acme_id}/budget", params={"month": NOV}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == BudgetRead.model_validate(body).model_dump(mode="json")
        assert body["used_minutes"] == 90 and body["non_billable_minutes"] == 15
        assert [b["minutes"] for b in body["by_brand"]] == [45, 45]
        assert body["by_content_item"] == [
            {"id": None, "name": None, "minutes": 90, "amount_minor": None}
        ]
        amounts = [p["amount_minor"] for p in body["by_person"]]
        assert amounts == ([9_000] if headers is s.boss else [None])
