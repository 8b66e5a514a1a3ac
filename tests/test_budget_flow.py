"""The time-budget day, end to end: a retainer, time logged against it, its status."""

from __future__ import annotations

from datetime import date

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
