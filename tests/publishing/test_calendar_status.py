"""The calendar shows where each item's publications stand: how many went out, failed or are
still waiting, counted per target account, for every item of the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.factories import new_world
from tests.support.publishing import (
    approved_item,
    platform_account,
    publications,
    sandbox_account,
    schedule,
)
from tests.support.worker import run_due_jobs

T0 = datetime(2027, 5, 11, 13, 0, tzinfo=UTC)
NONE = {"scheduled": 0, "publishing": 0, "published": 0, "failed": 0, "unconfirmed": 0}


async def calendar(client, world, **params) -> dict:
    response = await client.get(
        "/v1/calendar",
        params={
            "from": T0.isoformat(),
            "to": (T0 + timedelta(days=7)).isoformat(),
            **params,
        },
        headers=world.boss,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_item_shows_its_published_and_failed_publications(
    client, db, resources, platforms, settings, clock
):
    clock.set(T0)
    world = await new_world(client)
    sandbox = await sandbox_account(client, world)
    x, x_id = await platform_account(db, resources, platforms, world, "x")
    both = await approved_item(
        client, world, [sandbox, x], variants={"x": "Nouveau pain ce matin"}, title="Out"
    )
    later = await approved_item(client, world, [sandbox], title="Later")
    draft = await client.post(
        f"/v1/brands/{world.brand['id']}/content",
        json={
            "title": "Idea",
            "variants": {"x": "Un jour"},
            "planned_at": (T0 + timedelta(days=1)).isoformat(),
        },
        headers=world.boss,
    )
    assert draft.status_code == 201, draft.text
    planned = T0 + timedelta(minutes=2)
    await schedule(client, world, both, planned)
    await schedule(client, world, later, T0 + timedelta(days=3))

    page = await calendar(client, world)
    counts = {item["title"]: item["publications"] for item in page["items"]}
    assert counts["Out"] == NONE | {"scheduled": 2}
    assert counts["Later"] == NONE | {"scheduled": 1}

    # The X account's access was withdrawn on X's side after scheduling: its post fails, the
    # sandbox's goes out.
    platforms.revoke("x", x_id)
    clock.set(planned)
    await run_due_jobs(settings)
    statuses = sorted(p["status"] for p in await publications(client, world, both))
    assert statuses == ["failed", "published"]

    page = await calendar(client, world)
    counts = {item["title"]: item["publications"] for item in page["items"]}
    assert counts["Out"] == NONE | {"published": 1, "failed": 1}
    assert counts["Later"] == NONE | {"scheduled": 1}
    assert counts["Idea"] == NONE  # planned, not scheduled: nothing to publish yet

    # Page by page, each item keeps its own counts.
    first = await calendar(client, world, limit=1)
    second = await calendar(client, world, limit=1, cursor=first["next_cursor"])
    paged = {item["title"]: item["publications"] for item in first["items"] + second["items"]}
    assert paged["Out"] == counts["Out"]
