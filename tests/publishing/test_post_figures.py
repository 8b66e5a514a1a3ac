"""A published post's own figures, end to end: read by the real worker an hour after the post
went out (queued by the sweep), then daily for PUBLISHING_FIGURES_DAYS days and no longer, shown
on the item's publications and on the account's posts; a 429 from the platform puts the read
off by an hour and keeps the figures already read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devtools.platforms.x import post_figures as x_figures
from infra.queue import create_queue
from publishing.jobs import sweep_publications
from tests.support.factories import login, new_world
from tests.support.publishing import (
    approved_item,
    platform_account,
    publication,
    sandbox_account,
    schedule,
)
from tests.support.worker import run_due_jobs

T0 = datetime(2027, 6, 8, 9, 0, tzinfo=UTC)
ENGAGING = ("like_count", "retweet_count", "reply_count", "quote_count")


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def move(client, world, clock, at: datetime) -> datetime:
    """The clock at `at`, held there, and the owner logged in again (their access token of
    before has expired since)."""
    clock.set(at, tick=False)
    world.owner.access_token = (await login(client, world.owner.email))["access_token"]
    return at


async def sweep_and_run(settings, db) -> None:
    """What the worker's per-minute cron and its job runner do, once."""
    queue = await create_queue(str(settings.redis_url))
    try:
        await sweep_publications({"redis": queue, "db": db})
    finally:
        await queue.aclose()
    await run_due_jobs(settings)


async def post_of(client, world, account: str) -> dict:
    response = await client.get(f"/v1/social-accounts/{account}/posts", headers=world.boss)
    assert response.status_code == 200, response.text
    [post] = response.json()["items"]
    return dict(post)


async def test_a_sandbox_posts_figures_are_read_after_an_hour_then_daily_for_its_window(
    client, db, settings, clock
):
    clock.set(T0)
    world = await new_world(client)
    account = await sandbox_account(client, world)
    item = await approved_item(client, world, [account], variants={"instagram": "Du pain"})
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)
    out = await publication(client, world, item)
    assert out["status"] == "published", out
    went_out = datetime.fromisoformat(out["published_at"])
    assert out["figures"] is None  # nothing read yet
    assert (await post_of(client, world, account))["figures"] is None

    # Not before its hour.
    await move(client, world, clock, went_out + timedelta(minutes=30))
    await sweep_and_run(settings, db)
    assert (await publication(client, world, item))["figures"] is None

    first_read = await move(client, world, clock, went_out + timedelta(hours=1, minutes=1))
    await sweep_and_run(settings, db)
    figures = (await publication(client, world, item))["figures"]
    assert figures is not None
    assert figures["read_at"] == iso(first_read)
    assert figures["impressions"] > 0
    assert 0 <= figures["engagements"] <= figures["impressions"]
    assert 0 <= figures["reach"] <= figures["impressions"]
    assert (await post_of(client, world, account))["figures"] == figures

    # Read again the next day, not twice the same day.
    await move(client, world, clock, first_read + timedelta(hours=12))
    await sweep_and_run(settings, db)
    assert (await publication(client, world, item))["figures"]["read_at"] == iso(first_read)
    next_day = await move(client, world, clock, first_read + timedelta(days=1, minutes=1))
    await sweep_and_run(settings, db)
    assert (await publication(client, world, item))["figures"]["read_at"] == iso(next_day)

    # The read on its last day (of 30) is its last one.
    last_day = await move(client, world, clock, went_out + timedelta(days=29, hours=12))
    await sweep_and_run(settings, db)
    assert (await publication(client, world, item))["figures"]["read_at"] == iso(last_day)
    for later in (timedelta(days=30, hours=13), timedelta(days=45)):
        await move(client, world, clock, went_out + later)
        await sweep_and_run(settings, db)
        shown = (await publication(client, world, item))["figures"]
        assert shown["read_at"] == iso(last_day)
    assert (await post_of(client, world, account))["figures"]["read_at"] == iso(last_day)


async def test_an_x_posts_figures_are_x_own_and_a_429_puts_the_read_off_an_hour(
    client, db, resources, platforms, settings, clock
):
    clock.set(T0)
    # Refreshed tokens outlive the test, so each read below makes one call: the figures'.
    platforms.token_ttl = 90 * 86_400
    world = await new_world(client)
    account, _ = await platform_account(db, resources, platforms, world, "x")
    item = await approved_item(client, world, [account], variants={"x": "Croissants chauds"})
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)
    out = await publication(client, world, item)
    assert out["status"] == "published", out
    went_out = datetime.fromisoformat(out["published_at"])

    first_read = await move(client, world, clock, went_out + timedelta(hours=1, minutes=1))
    await sweep_and_run(settings, db)
    shown = await publication(client, world, item)
    on_x = x_figures(shown["external_post_id"])
    expected = {
        "impressions": on_x["impression_count"],
        "reach": None,  # X gives no reach for a post
        "engagements": sum(on_x[f] for f in ENGAGING),
        "video_views": None,  # no video
        "read_at": iso(first_read),
    }
    assert shown["figures"] == expected
    assert (await post_of(client, world, account))["figures"] == expected

    # The next day X answers 429: the figures already read stay, and the read comes back an
    # hour later rather than the next day.
    platforms.rate_limit("x", n=1, retry_after=1)
    refused = first_read + timedelta(days=1, minutes=1)
    await move(client, world, clock, refused)
    calls = platforms.count("x", path_contains="/2/tweets/")
    await sweep_and_run(settings, db)
    assert platforms.count("x", path_contains="/2/tweets/") == calls + 1  # it did ask
    assert (await publication(client, world, item))["figures"] == expected

    await move(client, world, clock, refused + timedelta(minutes=59))
    await sweep_and_run(settings, db)
    assert (await publication(client, world, item))["figures"] == expected

    again = await move(client, world, clock, refused + timedelta(hours=1, minutes=1))
    await sweep_and_run(settings, db)
    assert (await publication(client, world, item))["figures"] == expected | {"read_at": iso(again)}


async def test_a_refused_token_does_not_keep_reading_past_the_window(
    client, db, resources, platforms, settings, clock
):
    clock.set(T0)
    world = await new_world(client)
    account, x_id = await platform_account(db, resources, platforms, world, "x")
    item = await approved_item(client, world, [account], variants={"x": "Pain aux noix"})
    await schedule(client, world, item, T0 + timedelta(minutes=2))
    clock.set(T0 + timedelta(minutes=2))
    await run_due_jobs(settings)
    out = await publication(client, world, item)
    assert out["status"] == "published", out
    went_out = datetime.fromisoformat(out["published_at"])
    # The person removed our app on X: every read is refused from now on.
    platforms.revoke("x", x_id)

    def asked() -> int:
        return platforms.count("x", path_contains="/2/")

    for after in (timedelta(hours=1, minutes=1), timedelta(days=30, hours=12)):
        before = asked()
        await move(client, world, clock, went_out + after)
        await sweep_and_run(settings, db)
        assert asked() > before  # tried (and refused)
        assert (await publication(client, world, item))["figures"] is None
    before = asked()
    for after in (timedelta(days=32), timedelta(days=40)):
        await move(client, world, clock, went_out + after)
        await sweep_and_run(settings, db)
    assert asked() == before  # past its window (and a day's grace), nobody asks X any more
