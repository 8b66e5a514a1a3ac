"""Publications end to end: scheduled through the API, published by the real worker at their
time on the sandbox and on the simulated platforms, listed, retried, canceled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.factories import new_world
from tests.support.publishing import (
    approved_item,
    publication,
    sandbox_account,
    schedule,
)
from tests.support.worker import run_due_jobs

T0 = datetime(2027, 5, 4, 8, 0, tzinfo=UTC)


async def test_a_scheduled_post_goes_out_on_the_sandbox_at_its_time(client, settings, clock):
    clock.set(T0)
    world = await new_world(client)
    account = await sandbox_account(client, world)
    item = await approved_item(client, world, [account], variants={"instagram": "Bonjour"})
    planned = T0 + timedelta(minutes=1, seconds=30)
    await schedule(client, world, item, planned)

    before = await publication(client, world, item)
    assert (before["status"], before["planned_at"]) == (
        "scheduled",
        planned.isoformat().replace("+00:00", "Z"),
    )
    await run_due_jobs(settings)
    assert (await publication(client, world, item))["status"] == "scheduled"  # not yet its time

    clock.set(planned)
    await run_due_jobs(settings)
    done = await publication(client, world, item)
    assert done["status"] == "published", done
    assert 0 <= done["lateness_seconds"] < 5
    assert [a["outcome"] for a in done["attempts"]] == ["published"]
    posts = await client.get(f"/v1/social-accounts/{account}/posts", headers=world.boss)
    [post] = posts.json()["items"]
    assert (post["text"], post["external_post_id"]) == ("Bonjour", done["external_post_id"])
