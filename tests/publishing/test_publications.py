"""Publications end to end: scheduled through the API, published by the real worker at their
time on the sandbox and on the simulated platforms, listed, retried, canceled."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from tests.support.factories import new_world
from tests.support.publishing import (
    approved_item,
    minute,
    platform_account,
    publication,
    publications,
    relogin,
    sandbox_account,
    schedule,
)
from tests.support.worker import deliver_events as deliver_tenant_events
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

    platform = (await client.get(f"/v1/social-accounts/{account}", headers=world.boss)).json()[
        "platform"
    ]

    def published(suffix: str) -> float:  # the operator's lateness histogram (infra/metrics.py)
        name = f"passerelle_publication_lateness_seconds_{suffix}"
        return REGISTRY.get_sample_value(name, {"platform": platform}) or 0.0

    counted = published("count")
    clock.set(planned)
    await run_due_jobs(settings)
    done = await publication(client, world, item)
    assert done["status"] == "published", done
    assert 0 <= done["lateness_seconds"] < 5
    # At least this one (the run's other agencies may have posts due on this platform too).
    assert published("count") >= counted + 1
    assert [a["outcome"] for a in done["attempts"]] == ["published"]
    posts = await client.get(f"/v1/social-accounts/{account}/posts", headers=world.boss)
    [post] = posts.json()["items"]
    assert (post["text"], post["external_post_id"]) == ("Bonjour", done["external_post_id"])


# --- helpers --------------------------------------------------------------------------------


async def deliver_events(db, resources, settings, tenant_id) -> None:
    await deliver_tenant_events(resources, settings, tenant_id)


async def x_item(client, db, resources, platforms, world, text="Hello from Montréal"):
    account, external_id = await platform_account(db, resources, platforms, world, "x")
    item = await approved_item(client, world, [account], variants={"x": text})
    return account, external_id, item


async def retry(client, world, publication_id, body=None, expect=200):
    response = await client.post(
        f"/v1/publications/{publication_id}/retry", json=body or {}, headers=world.boss
    )
    assert response.status_code == expect, response.text
    return response.json()


# --- on the simulated platforms -------------------------------------------------------------


async def test_one_item_goes_out_once_on_each_of_its_accounts(
    client, db, resources, settings, platforms, clock
):
    clock.set(T0)
    world = await new_world(client)
    x_account, x_external, _ = await x_item(client, db, resources, platforms, world)
    sandbox = await sandbox_account(client, world)
    item = await approved_item(
        client, world, [x_account, sandbox], variants={"x": "Two places at once"}
    )
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)
    await run_due_jobs(settings)  # nothing more to do: a second pass posts nothing again

    rows = await publications(client, world, item)
    assert sorted(p["platform"] for p in rows) == ["sandbox", "x"]
    assert {p["status"] for p in rows} == {"published"}
    [post] = platforms.posts_of("x", x_external)
    assert post.text == "Two places at once"
    assert {p["external_post_id"] for p in rows if p["platform"] == "x"} == {post.post_id}
    assert platforms.duplicates() == []


async def test_a_timeout_after_the_post_is_settled_by_reconciliation_never_by_posting_again(
    client, db, resources, settings, platforms, clock, mailbox
):
    clock.set(T0)
    world = await new_world(client)
    _, external_id, item = await x_item(client, db, resources, platforms, world)
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    platforms.fault("x", "timeout_after_create")
    platforms.hang_seconds = 5.0  # past the client's 3 s timeout (SOCIAL_HTTP_TIMEOUT_SECONDS)
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)

    unsure = await publication(client, world, item)
    assert unsure["status"] == "unconfirmed", unsure
    assert "may be live" in unsure["error"]
    assert [a["outcome"] for a in unsure["attempts"]] == ["unknown"]
    assert unsure["attempts"][0]["create_started_at"] is not None
    await deliver_events(db, resources, settings, world.tenant_id)
    [message] = await mailbox.wait_for(world.owner.email)
    assert message["Content-Language"] == "fr"  # the owner's language
    assert "peut-être en ligne" in str(message["Subject"])

    # The check runs a little later, finds the post on the account: published, once.
    clock.advance(timedelta(minutes=1))
    await run_due_jobs(settings)
    found = await publication(client, world, item)
    assert found["status"] == "published", found
    [post] = platforms.posts_of("x", external_id)
    assert found["external_post_id"] == post.post_id
    assert platforms.duplicates() == []


async def test_an_unknown_outcome_not_found_fails_and_is_retried_only_on_a_persons_word(
    client, db, resources, settings, platforms, clock
):
    clock.set(T0)
    world = await new_world(client)
    _, external_id, item = await x_item(client, db, resources, platforms, world)
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    platforms.fail_next("x", status=502)  # the create call's answer: nothing was posted
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)
    assert (await publication(client, world, item))["status"] == "unconfirmed"

    # Looked for during the reconciliation window, never found.
    for _ in range(8):
        clock.advance(timedelta(minutes=5))
        await run_due_jobs(settings)
    await relogin(client, world)
    failed = await publication(client, world, item)
    assert (failed["status"], failed["error_code"]) == ("failed", "outcome_unknown")
    assert "check the account before retrying" in failed["error"]
    assert platforms.posts_of("x", external_id) == []

    refused = await retry(client, world, failed["id"], expect=422)
    assert "confirm_not_published" in refused["detail"]
    assert (await publication(client, world, item))["status"] == "failed"

    again = await retry(client, world, failed["id"], {"confirm_not_published": True})
    assert again["status"] == "scheduled"
    await run_due_jobs(settings)
    done = await publication(client, world, item)
    assert done["status"] == "published", done
    assert len(platforms.posts_of("x", external_id)) == 1


async def test_an_unconfirmed_publication_is_not_retried_without_confirmation(
    client, db, resources, settings, platforms, clock
):
    clock.set(T0)
    world = await new_world(client)
    _, external_id, item = await x_item(client, db, resources, platforms, world)
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    platforms.fail_next("x", status=503)
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)
    unsure = await publication(client, world, item)
    assert unsure["status"] == "unconfirmed"
    await retry(client, world, unsure["id"], expect=422)
    await retry(client, world, unsure["id"], {"confirm_not_published": False}, expect=422)
    confirmed = await retry(client, world, unsure["id"], {"confirm_not_published": True})
    assert confirmed["status"] == "scheduled"
    await run_due_jobs(settings)
    assert (await publication(client, world, item))["status"] == "published"
    assert len(platforms.posts_of("x", external_id)) == 1


async def test_a_rate_limited_post_waits_and_goes_out(
    client, db, resources, settings, platforms, clock
):
    clock.set(T0)
    world = await new_world(client)
    _, external_id, item = await x_item(client, db, resources, platforms, world)
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    # A 429 asking to wait a second (the pause it sets on the budget is real time).
    platforms.rate_limit("x", 1, retry_after=1.0)
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)
    waiting = await publication(client, world, item)
    assert (waiting["status"], waiting["error_code"]) == ("publishing", "retrying")
    assert [a["outcome"] for a in waiting["attempts"]] == ["transient"]
    assert platforms.posts_of("x", external_id) == []

    await asyncio.sleep(1.1)
    clock.advance(timedelta(minutes=2))
    await run_due_jobs(settings)
    done = await publication(client, world, item)
    assert done["status"] == "published", done
    assert [a["outcome"] for a in done["attempts"]] == ["transient", "published"]
    assert done["lateness_seconds"] >= 15  # the backoff


async def test_a_post_whose_deadline_passed_fails_instead_of_going_out_late(
    client, db, resources, settings, platforms, clock
):
    clock.set(T0)
    world = await new_world(client)
    _, external_id, item = await x_item(client, db, resources, platforms, world)
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    # No worker ran for three hours (the deadline is two hours after the planned time).
    clock.set(T0 + timedelta(hours=3))
    await run_due_jobs(settings)
    await relogin(client, world)
    late = await publication(client, world, item)
    assert (late["status"], late["error_code"]) == ("failed", "deadline_passed")
    assert platforms.posts_of("x", external_id) == []


async def test_a_revoked_token_fails_the_post_and_asks_for_a_reconnection(
    client, db, resources, settings, platforms, clock
):
    clock.set(T0)
    world = await new_world(client)
    account, external_id, item = await x_item(client, db, resources, platforms, world)
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    platforms.revoke("x", external_id)
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)
    await relogin(client, world)
    failed = await publication(client, world, item)
    assert (failed["status"], failed["error_code"]) == ("failed", "needs_reauth")
    assert "reconnect" in failed["error"]
    read = await client.get(f"/v1/social-accounts/{account}", headers=world.boss)
    assert read.json()["status"] == "needs_reauth"
    assert platforms.posts_of("x", external_id) == []


# --- scheduling ----------------------------------------------------------------------------


async def test_scheduling_checks_name_every_problem_with_its_platform_and_change_nothing(
    client, db, resources, settings, platforms, media_server, clock
):
    clock.set(T0)
    world = await new_world(client)
    x_account, _ = await platform_account(db, resources, platforms, world, "x")
    insta, _ = await platform_account(db, resources, platforms, world, "instagram_business")
    wide = media_server.url + "/image.png?w=3000&h=1000"  # 3:1: wider than Instagram takes
    item = await approved_item(
        client,
        world,
        [x_account, insta],
        variants={"x": "x" * 300},
        media=[{"url": wide, "type": "image", "alt_text": "A panorama"}],
    )
    response = await schedule(client, world, item, T0 + timedelta(hours=1), expect=422)
    problems = response.json()["problems"]
    by_platform = {(p["platform"], p["field"]) for p in problems}
    assert ("x", "text") in by_platform
    assert ("instagram_business", "text") in by_platform  # no Instagram variant
    assert ("instagram_business", "media") in by_platform  # the aspect ratio
    read = await client.get(f"/v1/content/{item}", headers=world.boss)
    assert read.json()["status"] == "approved"
    assert await publications(client, world, item) == []


async def test_unscheduling_cancels_what_has_not_started_and_scheduling_again_replans(
    client, settings, clock
):
    clock.set(T0)
    world = await new_world(client)
    account = await sandbox_account(client, world)
    item = await approved_item(client, world, [account])
    await schedule(client, world, item, T0 + timedelta(hours=1))
    response = await client.post(f"/v1/content/{item}/unschedule", headers=world.boss)
    assert response.status_code == 200, response.text
    [canceled] = await publications(client, world, item)
    assert canceled["status"] == "canceled"

    await schedule(client, world, item, T0 + timedelta(hours=2))
    rows = await publications(client, world, item)
    assert sorted(p["status"] for p in rows) == ["canceled", "scheduled"]
    [live] = [p for p in rows if p["status"] == "scheduled"]
    # Publish-now on the scheduled item moves that same publication to now.
    response = await client.post(f"/v1/content/{item}/publish-now", headers=world.boss)
    assert response.status_code == 200, response.text
    [moved] = response.json()
    assert moved["id"] == live["id"]
    assert moved["planned_at"].startswith("2027-05-04T08:00:0")  # now, not in two hours

    await run_due_jobs(settings)
    [post] = (await client.get(f"/v1/social-accounts/{account}/posts", headers=world.boss)).json()[
        "items"
    ]
    assert post["publication_id"] == live["id"]  # the canceled one never went out


async def test_publish_now_sends_an_approved_item_at_once(client, settings, clock):
    clock.set(T0)
    world = await new_world(client)
    account = await sandbox_account(client, world)
    item = await approved_item(client, world, [account])
    response = await client.post(f"/v1/content/{item}/publish-now", headers=world.boss)
    assert response.status_code == 200, response.text
    [started] = response.json()
    assert started["status"] == "scheduled"
    await run_due_jobs(settings)
    done = await publication(client, world, item)
    assert done["status"] == "published"
    assert done["lateness_seconds"] < 5
    read = await client.get(f"/v1/content/{item}", headers=world.boss)
    assert read.json()["status"] == "scheduled"


async def test_publish_now_refuses_an_item_that_is_not_approved(client):
    world = await new_world(client)
    account = await sandbox_account(client, world)
    response = await client.post(
        f"/v1/brands/{world.brand['id']}/content",
        json={"title": "Draft", "variants": {"x": "Draft"}, "social_account_ids": [account]},
        headers=world.boss,
    )
    item = response.json()["id"]
    response = await client.post(f"/v1/content/{item}/publish-now", headers=world.boss)
    assert response.status_code == 409, response.text
    assert await publications(client, world, item) == []


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2027, 3, 14), 13),  # clocks go forward at 2:00: 09:00 EDT is 13:00 UTC
        (date(2027, 11, 7), 14),  # clocks go back at 2:00: 09:00 EST is 14:00 UTC
    ],
)
async def test_nine_in_montreal_is_nine_in_montreal_on_the_days_the_clocks_change(
    client, db, resources, settings, clock, day, utc_hour
):
    montreal = ZoneInfo("America/Montreal")
    clock.set(datetime.combine(day, time(0, 30), montreal))
    world = await new_world(client)
    account = await sandbox_account(client, world)
    item = await approved_item(client, world, [account])
    planned = datetime.combine(day, time(9, 0), montreal)
    await schedule(client, world, item, planned)
    scheduled = await publication(client, world, item)
    assert datetime.fromisoformat(scheduled["planned_at"]).hour == utc_hour

    clock.set(planned - timedelta(minutes=1, seconds=10))
    await minute(db, resources, settings)  # queued for its time, not run
    await relogin(client, world)
    assert (await publication(client, world, item))["status"] == "scheduled"
    clock.set(planned)
    await run_due_jobs(settings)
    await relogin(client, world)
    done = await publication(client, world, item)
    published = datetime.fromisoformat(done["published_at"])
    assert done["status"] == "published"
    assert published.astimezone(montreal).strftime("%H:%M") == "09:00"


async def test_the_publications_list_filters_by_status_brand_and_time(client, settings, clock):
    clock.set(T0)
    world = await new_world(client, brands={"one": {}, "two": {}})
    one = await sandbox_account(client, world, "one")
    two = await sandbox_account(client, world, "two")
    early = await approved_item(client, world, [one], brand="one")
    late = await approved_item(client, world, [two], brand="two")
    await schedule(client, world, early, T0 + timedelta(minutes=2))
    await schedule(client, world, late, T0 + timedelta(days=2))
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)

    async def listed(**params) -> list[str]:
        response = await client.get("/v1/publications", params=params, headers=world.boss)
        assert response.status_code == 200, response.text
        return [p["content_id"] for p in response.json()["items"]]

    assert await listed() == [early, late]
    assert await listed(status="published") == [early]
    assert await listed(status="scheduled") == [late]
    assert await listed(brand=world.brands["two"]["id"]) == [late]
    window = {"from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}
    assert await listed(**window) == [early]
    response = await client.get(
        "/v1/publications",
        params={"from": T0.isoformat(), "to": T0.isoformat()},
        headers=world.boss,
    )
    assert response.status_code == 400


async def test_a_publication_left_days_behind_by_a_stopped_worker_fails_its_deadline(
    client, db, resources, settings, clock
):
    clock.set(T0)
    world = await new_world(client)
    account = await sandbox_account(client, world)
    item = await approved_item(client, world, [account])
    await schedule(client, world, item, T0 + timedelta(hours=1))  # queued by the sweep, later
    # No worker for three days: the first sweep after it still queues it (its time long gone),
    # and the job says why it did not go out.
    clock.set(T0 + timedelta(days=3))
    await minute(db, resources, settings)
    await relogin(client, world)
    late = await publication(client, world, item)
    assert (late["status"], late["error_code"]) == ("failed", "deadline_passed")


async def test_a_due_job_a_killed_worker_had_taken_goes_out_at_the_next_minute(
    client, db, resources, settings, clock
):
    clock.set(T0)
    world = await new_world(client)
    account = await sandbox_account(client, world)
    item = await approved_item(client, world, [account])
    planned = T0 + timedelta(seconds=90)
    await schedule(client, world, item, planned)  # due soon: its job is queued now
    scheduled = await publication(client, world, item)
    # What a worker SIGKILLed just after taking the job leaves in Redis: arq's in-progress mark,
    # which keeps every worker off that job id for the longest job timeout (minutes).
    job_id = f"publish:{scheduled['id']}:{int(planned.timestamp())}:0"
    assert await resources.redis.exists(f"arq:job:{job_id}")
    await resources.redis.psetex(f"arq:in-progress:{job_id}", 310_000, b"1")

    clock.set(planned + timedelta(seconds=5))
    await minute(db, resources, settings)  # not late yet: the taken job is left to its worker
    await relogin(client, world)
    assert (await publication(client, world, item))["status"] == "scheduled"
    clock.set(planned + timedelta(seconds=50))
    await minute(db, resources, settings)
    await relogin(client, world)
    done = await publication(client, world, item)
    assert done["status"] == "published", done
    assert [a["outcome"] for a in done["attempts"]] == ["published"]
