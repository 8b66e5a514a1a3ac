"""The time-budget day, end to end: a retainer, time logged against it, its status."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support.factories import add_person, make_brand, make_client, new_agency
from tests.support.problems import assert_problem


async def test_time_logged_shows_in_the_budget(client, db, resources):
    agency = await new_agency(client)
    boss = agency.owner.headers
    acme = await make_client(client, boss)
    brand = await make_brand(client, boss, acme["id"])
    cm = await add_person(client, db, resources.passwords, agency, "member", name="Camille")
    r = await client.post(
        "/v1/assignments",
        json={
            "brand_id": brand["id"],
            "user_id": str(cm.user_id),
            "role": "community_manager",
            "start_date": "2026-01-01",
        },
        headers=boss,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/retainers",
        json={
            "client_id": acme["id"],
            "start_month": "2026-10",
            "monthly_minutes": 600,
            "fee_minor": 150000,
            "overage": {"policy": "hard_cap"},
        },
        headers=boss,
    )
    assert r.status_code == 201, r.text
    retainer = r.json()
    assert retainer["terms"][0]["thresholds"] == [50, 80, 100]

    for day, minutes in ((date(2026, 11, 2), 240), (date(2026, 11, 3), 120)):
        r = await client.post(
            "/v1/time-entries",
            json={
                "brand_id": brand["id"],
                "date": day.isoformat(),
                "minutes": minutes,
                "activity": "moderation",
            },
            headers=cm.headers,
        )
        assert r.status_code == 201, r.text

    r = await client.post(
        "/v1/time-entries",
        json={"brand_id": brand["id"], "date": "2026-11-04", "minutes": 241, "activity": "crisis"},
        headers=cm.headers,
    )
    assert_problem(r, 409, "budget-exhausted")

    r = await client.get(
        f"/v1/clients/{acme['id']}/budget", params={"month": "2026-11"}, headers=boss
    )
    assert r.status_code == 200, r.text
    budget = r.json()
    assert budget["used_minutes"] == 360
    assert budget["available_minutes"] == 600
    assert budget["thresholds_crossed"] == [50]
    assert budget["by_person"][0]["name"] == "Camille"
    assert budget["fee_minor"] == 150000

    r = await client.get(
        f"/v1/clients/{acme['id']}/budget", params={"month": "2026-11"}, headers=cm.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["fee_minor"] is None

    r = await client.get("/v1/budgets", params={"month": "2026-11"}, headers=boss)
    assert r.status_code == 200, r.text
    assert [b["client_id"] for b in r.json()["items"]] == [acme["id"]]


async def test_the_demo_agency_has_retainers_and_time_in_its_budgets(client, settings):
    from billing.budgets.demo import load_time_demo
    from tenants.demo import DEMO_CLIENT_ID, load_demo

    logins = await load_demo(settings)
    await load_time_demo(settings)
    await load_time_demo(settings)  # idempotent: a second load adds nothing
    owner_email, owner_password = logins[0][1], logins[0][2]
    r = await client.post("/v1/auth/login", json={"email": owner_email, "password": owner_password})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    today = datetime.now(ZoneInfo("America/Montreal")).date()
    month = f"{today.year}-{today.month:02d}"
    r = await client.get("/v1/budgets", params={"month": month}, headers=headers)
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    assert len(rows) == 2
    assert all(row["used_minutes"] > 0 for row in rows)
    r = await client.get(
        f"/v1/clients/{DEMO_CLIENT_ID}/budget", params={"month": month}, headers=headers
    )
    assert r.status_code == 200, r.text
    budget = r.json()
    assert budget["by_person"] and budget["by_activity"]
    assert budget["used_minutes"] == sum(p["minutes"] for p in budget["by_person"])
    entries = await client.get("/v1/time-entries", params={"limit": 200}, headers=headers)
    assert entries.status_code == 200 and entries.json()["items"]


async def test_the_worker_stops_forgotten_timers_and_leaves_running_ones(client, db, resources):
    from sqlalchemy import update
    from sqlmodel import select

    from billing.budgets.jobs import stop_forgotten_timers
    from billing.budgets.models import TimeEntry, Timer

    async def agency_with_timer():
        agency = await new_agency(client)
        boss = agency.owner.headers
        acme = await make_client(client, boss)
        brand = await make_brand(client, boss, acme["id"])
        r = await client.post(
            "/v1/assignments",
            json={
                "brand_id": brand["id"],
                "user_id": str(agency.owner.user_id),
                "role": "lead",
                "start_date": "2026-01-01",
            },
            headers=boss,
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            "/v1/timers/start",
            json={"brand_id": brand["id"], "activity": "moderation", "billable": False},
            headers=boss,
        )
        assert r.status_code == 201, r.text
        return agency, r.json()

    forgotten, timer = await agency_with_timer()
    running, _ = await agency_with_timer()
    async with db.tenant_transaction(forgotten.tenant_id) as session:
        await session.execute(
            update(Timer)
            .where(Timer.tenant_id == forgotten.tenant_id)
            .values(started_at=Timer.started_at - timedelta(hours=13))
        )

    assert await stop_forgotten_timers({"db": db}) >= 1  # other tests may have left some
    assert await stop_forgotten_timers({"db": db}) == 0  # nothing left to stop

    async with db.tenant_transaction(forgotten.tenant_id) as session:
        entries = (await session.scalars(select(TimeEntry))).all()
        assert await session.scalar(select(Timer.id)) is None
    assert sum(e.minutes for e in entries) == 12 * 60
    assert {e.flagged_reason for e in entries} == {"forgotten_timer"}
    r = await client.get("/v1/timers/current", headers=forgotten.owner.headers)
    assert r.json() == {"timer": None}
    r = await client.get("/v1/timers/current", headers=running.owner.headers)
    assert r.json()["timer"] is not None
    assert timer["id"] != r.json()["timer"]["id"]
