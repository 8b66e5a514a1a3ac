"""Syncing social accounts with the real arq worker against the platform simulator: backfill
and upserts, figures end to end, per-metric failures, token refresh, the needs_reauth e-mail,
rate limits and retries, fair scheduling, and a worker killed with SIGKILL mid-sync."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from arq.jobs import Job, JobStatus
from prometheus_client import REGISTRY
from sqlalchemy import func
from sqlmodel import col, select

from infra.clock import utcnow
from infra.outbox import Event
from infra.queue import deserialize, job_exists
from infra.settings import DEFAULT_SOCIAL_RATES
from social.connectors.types import METRICS
from social.jobs import MAX_TRIES, due_accounts, enqueue_due
from social.kit import kit_of
from social.models import AccountStatus, DailyStat, SocialAccount
from social.service.accounts import sync_job_id
from social.sync import REVISED_DAYS, sync_account
from tests.support.factories import World, add_person, new_world
from tests.support.worker import deliver_events, run_worker, start_worker_process

NETWORK = (
    "facebook_page",
    "instagram_business",
    "linkedin_organization",
    "x",
    "youtube",
    "tiktok",
)


# --- helpers --------------------------------------------------------------------------------


async def connect(client: httpx.AsyncClient, shop: World, platform: str) -> dict:
    """The OAuth dance as a person's browser does it: our connect URL, the platform's consent
    (the simulator's, for a network platform), back to our callback."""
    started = await client.post(
        f"/v1/brands/{shop.brand['id']}/social-accounts/connect",
        params={"platform": platform},
        headers=shop.boss,
    )
    assert started.status_code == 200, started.text
    url = started.json()["authorization_url"]
    if platform != "sandbox":
        async with httpx.AsyncClient() as browser:
            consent = await browser.get(url, follow_redirects=False)
        assert consent.status_code == 302, consent.text
        url = consent.headers["location"]
    back = httpx.URL(url)
    response = await client.get(back.path, params=back.params)
    assert response.status_code == 200, response.text
    return response.json()


async def read_account(client: httpx.AsyncClient, shop: World, account_id: str) -> dict:
    response = await client.get(f"/v1/social-accounts/{account_id}", headers=shop.boss)
    assert response.status_code == 200, response.text
    return response.json()


async def stored_account(db, tenant_id: uuid.UUID, account_id: str | uuid.UUID) -> SocialAccount:
    async with db.tenant_transaction(tenant_id) as session:
        account = await session.get(SocialAccount, (tenant_id, uuid.UUID(str(account_id))))
        assert account is not None
        return account


async def stored_days(db, tenant_id: uuid.UUID, account_id: str | uuid.UUID) -> list[DailyStat]:
    async with db.tenant_transaction(tenant_id) as session:
        rows = await session.scalars(
            select(DailyStat)
            .where(
                DailyStat.tenant_id == tenant_id,
                DailyStat.account_id == uuid.UUID(str(account_id)),
            )
            .order_by(col(DailyStat.day))
        )
        return list(rows.all())


async def row_counts(db, tenant_id: uuid.UUID, account_id: str | uuid.UUID) -> tuple[int, int]:
    """(rows, distinct days) of an account's daily figures."""
    async with db.tenant_transaction(tenant_id) as session:
        rows, days = (
            await session.execute(
                select(func.count(), func.count(func.distinct(DailyStat.day))).where(
                    DailyStat.tenant_id == tenant_id,
                    DailyStat.account_id == uuid.UUID(str(account_id)),
                )
            )
        ).one()
        return rows, days


def yesterday() -> date:
    return utcnow().date() - timedelta(days=1)


def every_day(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def backfill_start(settings) -> date:
    """The first day a new account gets: the last `social_backfill_days` days through
    yesterday (every connector allows 90)."""
    return yesterday() - timedelta(days=min(settings.social_backfill_days, 90) - 1)


async def sync_now(client: httpx.AsyncClient, shop: World, account_id: str) -> None:
    response = await client.post(f"/v1/social-accounts/{account_id}/sync", headers=shop.boss)
    assert response.status_code == 202, response.text
    assert response.json() == {"account_id": account_id, "queued": True}


async def insert_accounts(
    db,
    vault,
    tenant_id: uuid.UUID,
    brand_id: str,
    tokens: list[tuple[str, str, dict]],
    due: datetime,
) -> list[uuid.UUID]:
    """Accounts written straight into the agency (as the app role, in its transaction), their
    tokens encrypted like the callback does, all due at `due` (one second apart, in order)."""
    ids = []
    async with db.tenant_transaction(tenant_id) as session:
        for n, (platform, external_id, token) in enumerate(tokens):
            account = SocialAccount(
                tenant_id=tenant_id,
                brand_id=uuid.UUID(brand_id),
                platform=platform,
                external_id=external_id,
                handle=f"h{n}",
                access_token=vault.encrypt(token["access_token"]),
                refresh_token=vault.encrypt(token.get("refresh_token")),
                token_expires_at=token.get("expires_at"),
                next_sync_at=due + timedelta(seconds=n),
            )
            session.add(account)
            ids.append(account.id)
    return ids


def sandbox_accounts(n: int) -> list[tuple[str, str, dict]]:
    """Sandbox accounts with the tokens the sandbox's own OAuth would have given them."""
    out = []
    for _ in range(n):
        external_id = f"sandbox-{uuid.uuid4().hex[:10]}"
        token = {
            "access_token": f"sandbox-at-{external_id}",
            "refresh_token": f"sandbox-rt-{external_id}",
            "expires_at": utcnow() + timedelta(days=30),
        }
        out.append(("sandbox", external_id, token))
    return out


async def set_account(db, tenant_id: uuid.UUID, account_id, **values) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        account = await session.get(SocialAccount, (tenant_id, uuid.UUID(str(account_id))))
        assert account is not None
        for name, value in values.items():
            setattr(account, name, value)


# --- backfill, upserts, figures ---------------------------------------------------------------


@pytest.mark.parametrize("platform", ["sandbox", "linkedin_organization"])
async def test_a_new_account_is_backfilled_and_a_later_sync_rewrites_only_its_last_days(
    client, db, settings, platforms, platform
):
    shop = await new_world(client)
    account = await connect(client, shop, platform)
    await run_worker(settings)

    first = await stored_days(db, shop.tenant_id, account["id"])
    assert [s.day for s in first] == every_day(backfill_start(settings), yesterday())
    read = await read_account(client, shop, account["id"])
    assert read["status"] == "connected"
    assert read["last_success_at"] is not None and read["last_error"] is None
    assert read["metric_errors"] == {}
    # The next sync is one interval away (plus a little jitter), not the next minute.
    next_sync = datetime.fromisoformat(read["next_sync_at"])
    interval = timedelta(minutes=settings.social_sync_interval_minutes)
    assert utcnow() + interval * 0.9 < next_sync < utcnow() + interval * 1.1

    fetched = {s.day: s.fetched_at for s in first}
    await sync_now(client, shop, account["id"])
    await run_worker(settings)

    again = await stored_days(db, shop.tenant_id, account["id"])
    # Nothing duplicated, nothing missing, and only the last days (which platforms revise)
    # fetched again.
    assert [s.day for s in again] == [s.day for s in first]
    assert await row_counts(db, shop.tenant_id, account["id"]) == (len(first), len(first))
    refetched = [s.day for s in again if s.fetched_at != fetched[s.day]]
    assert refetched == every_day(yesterday() - timedelta(days=REVISED_DAYS - 1), yesterday())
    assert (await stored_account(db, shop.tenant_id, account["id"])).synced_through == yesterday()


@pytest.mark.parametrize("platform", NETWORK)
async def test_stored_figures_are_the_platforms_figures(client, db, settings, platforms, platform):
    shop = await new_world(client)
    account = await connect(client, shop, platform)
    external_id = account["external_id"]
    await run_worker(settings)

    rows = await stored_days(db, shop.tenant_id, account["id"])
    assert [r.day for r in rows] == every_day(backfill_start(settings), yesterday())
    mismatches = []
    for row in rows:
        expected = platforms.expected(platform, external_id, row.day)
        for metric in METRICS:
            if metric == "followers" and "followers" not in expected:
                continue  # counted separately below: the platform keeps no history of it
            if getattr(row, metric) != expected.get(metric):
                mismatches.append((row.day, metric, getattr(row, metric), expected.get(metric)))
    assert mismatches == []
    read = await read_account(client, shop, account["id"])
    assert read["metric_errors"] == {}
    assert read["handle"] == platforms.account(platform, external_id).handle


@pytest.mark.parametrize("platform", ["instagram_business", "linkedin_organization", "youtube"])
async def test_follower_counts_rebuilt_from_daily_changes_match_each_day(
    client, db, settings, platforms, platform
):
    """Platforms that tell today's live total and daily gains (not a daily count): the count
    stored for a day is the count the platform showed that day, not the next day's. (X and
    TikTok tell only the live total: yesterday gets what the last sync saw.)"""
    shop = await new_world(client)
    # Large enough to gain followers every day, so that a day's shift shows.
    platforms.authorize_as(platform, platforms.add_account(platform, followers=80_000))
    account = await connect(client, shop, platform)
    await run_worker(settings)

    rows = await stored_days(db, shop.tenant_id, account["id"])
    assert rows[-1].followers is not None
    wrong = [
        (r.day, r.followers, platforms.followers(platform, account["external_id"], r.day))
        for r in rows
        if r.followers is not None
        and r.followers != platforms.followers(platform, account["external_id"], r.day)
    ]
    assert wrong == []


async def test_a_deprecated_metric_fails_alone_and_keeps_the_figures_already_stored(
    client, db, settings, platforms
):
    platform = "facebook_page"
    shop = await new_world(client)
    old = await connect(client, shop, platform)
    await run_worker(settings)
    before = {r.day: r for r in await stored_days(db, shop.tenant_id, old["id"])}
    assert all(r.impressions is not None for r in before.values())

    platforms.deprecate(platform, "page_impressions")
    await sync_now(client, shop, old["id"])
    new = await connect(client, shop, platform)  # connected after Meta retired the metric
    await run_worker(settings)

    for account in (old, new):
        read = await read_account(client, shop, account["id"])
        assert read["status"] == "connected", read
        assert read["last_error"] is None
        assert set(read["metric_errors"]) == {"impressions"}
        assert read["metric_errors"]["impressions"]["error"]

    # The account synced before keeps its impressions, also on the days fetched again.
    after = await stored_days(db, shop.tenant_id, old["id"])
    assert [r.day for r in after] == sorted(before)
    assert [r.impressions for r in after] == [before[r.day].impressions for r in after]
    # The new one has none, and every other metric as the platform says.
    for row in await stored_days(db, shop.tenant_id, new["id"]):
        assert row.impressions is None
        expected = platforms.expected(platform, new["external_id"], row.day)
        for metric in ("followers", "reach", "engagements", "posts_published", "video_views"):
            assert getattr(row, metric) == expected[metric], (row.day, metric)


# --- tokens -----------------------------------------------------------------------------------


TOKEN_PATHS = {
    "facebook_page": "/oauth/access_token",
    "instagram_business": "/oauth/access_token",
    "linkedin_organization": "/oauth/v2/accessToken",
    "x": "/2/oauth2/token",
    "youtube": "/token",
    "tiktok": "/v2/oauth/token/",
}
KEEPS_REFRESH_TOKEN = {"linkedin_organization", "youtube"}
"""LinkedIn answers the same refresh token, Google none (we keep ours); X and TikTok rotate."""


@pytest.mark.parametrize("platform", NETWORK)
async def test_a_token_about_to_expire_is_refreshed_before_the_calls(
    client, db, resources, settings, platforms, platform
):
    vault = kit_of(resources).vault
    shop = await new_world(client)
    platforms.token_ttl = 300  # under the 10 minutes ahead that a sync refreshes
    account = await connect(client, shop, platform)
    exchanged = platforms.count(platform, TOKEN_PATHS[platform])
    connected = await stored_account(db, shop.tenant_id, account["id"])

    await run_worker(settings)

    assert platforms.count(platform, TOKEN_PATHS[platform]) == exchanged + 1
    refreshed = await stored_account(db, shop.tenant_id, account["id"])
    assert refreshed.status == "connected" and refreshed.last_success_at is not None
    assert vault.decrypt(refreshed.access_token) != vault.decrypt(connected.access_token)
    assert refreshed.token_expires_at > connected.token_expires_at
    if platform in KEEPS_REFRESH_TOKEN:
        assert vault.decrypt(refreshed.refresh_token) == vault.decrypt(connected.refresh_token)
    elif connected.refresh_token is not None:
        assert vault.decrypt(refreshed.refresh_token) != vault.decrypt(connected.refresh_token)
    # The calls after the refresh used the new token: the platform answered them.
    assert refreshed.metric_errors == {}


async def test_two_concurrent_syncs_refresh_a_token_once(client, db, resources, platforms):
    platform = "x"  # X rotates refresh tokens: a second refresh with the old one would fail
    vault = kit_of(resources).vault
    shop = await new_world(client)
    account = await connect(client, shop, platform)

    # Two syncs at once on a token that expires soon: one refresh, both use the new token.
    soon = platforms.issue_token(platform, account["external_id"], expires_in=120)
    await set_account(
        db,
        shop.tenant_id,
        account["id"],
        access_token=vault.encrypt(soon["access_token"]),
        refresh_token=vault.encrypt(soon["refresh_token"]),
        token_expires_at=soon["expires_at"],
    )
    refreshes = platforms.count(platform, TOKEN_PATHS[platform])
    kit = kit_of(resources)
    outcomes = await asyncio.gather(
        sync_account(db, kit, shop.tenant_id, uuid.UUID(account["id"])),
        sync_account(db, kit, shop.tenant_id, uuid.UUID(account["id"])),
    )
    assert [o.status for o in outcomes] == ["synced", "synced"]
    assert platforms.count(platform, TOKEN_PATHS[platform]) == refreshes + 1
    stored = await stored_account(db, shop.tenant_id, account["id"])
    assert stored.status == "connected"
    assert vault.decrypt(stored.access_token) != soon["access_token"]
    assert stored.token_expires_at > utcnow() + timedelta(minutes=30)


async def _needs_reauth_events(db, tenant_id: uuid.UUID, account_id: str) -> list[Event]:
    async with db.tenant_transaction(tenant_id) as session:
        rows = await session.scalars(
            select(Event).where(
                Event.tenant_id == tenant_id,
                Event.type == "social_account.needs_reauth",
                Event.aggregate_id == uuid.UUID(account_id),
            )
        )
        return list(rows.all())


async def _deliver_events(db, resources, settings, tenant_id) -> None:
    await deliver_events(resources, settings, tenant_id, run=run_worker)


async def test_a_refused_token_asks_the_brand_lead_to_reconnect_once(
    client, db, resources, settings, platforms, mailbox
):
    platform = "linkedin_organization"
    shop = await new_world(client)
    lead = await add_person(client, db, resources.passwords, shop.agency, "member")
    assigned = await client.post(
        "/v1/assignments",
        json={
            "brand_id": shop.brand["id"],
            "user_id": str(lead.user_id),
            "role": "lead",
            "monthly_minutes": 0,
            "start_date": str(utcnow().date() - timedelta(days=7)),
            "end_date": None,
        },
        headers=shop.boss,
    )
    assert assigned.status_code == 201, assigned.text
    account = await connect(client, shop, platform)
    await run_worker(settings)
    assert (await read_account(client, shop, account["id"]))["status"] == "connected"

    platforms.revoke(platform, account["external_id"])
    await sync_now(client, shop, account["id"])
    await run_worker(settings)

    read = await read_account(client, shop, account["id"])
    assert read["status"] == "needs_reauth"
    assert read["last_error"]
    [event] = await _needs_reauth_events(db, shop.tenant_id, account["id"])
    assert event.payload["account_id"] == account["id"]
    assert event.payload["brand_id"] == shop.brand["id"]
    assert event.payload["platform"] == platform

    # A delivery that found its agency's outbox lock taken retries later: sweep again then.
    for _ in range(3):
        await _deliver_events(db, resources, settings, shop.tenant_id)
        if mailbox.to(lead.email):
            break
    [message] = await mailbox.wait_for(lead.email)
    assert account["handle"] in str(message["Subject"])
    assert mailbox.to(shop.agency.owner.email) == []  # the brand has a lead: only the lead

    # The scheduler keeps running every minute: the account is never queued again, so the
    # lead is not told again.
    for _ in range(3):
        await set_account(
            db, shop.tenant_id, account["id"], next_sync_at=utcnow() - timedelta(hours=1)
        )
        due = await due_accounts(db, utcnow())
        assert uuid.UUID(account["id"]) not in {account_id for _, account_id, _ in due}
        await enqueue_due(db, resources.queue, utcnow())
        await run_worker(settings)
        await _deliver_events(db, resources, settings, shop.tenant_id)
    await asyncio.sleep(0.3)
    assert len(mailbox.to(lead.email)) == 1
    assert len(await _needs_reauth_events(db, shop.tenant_id, account["id"])) == 1
    refused = await client.post(f"/v1/social-accounts/{account['id']}/sync", headers=shop.boss)
    assert refused.status_code == 409, refused.text

    # Connecting it again resumes syncing.
    platforms.authorize_as(platform, account["external_id"])
    again = await connect(client, shop, platform)
    assert again["id"] == account["id"]
    assert again["status"] == "connected"
    await run_worker(settings)
    read = await read_account(client, shop, account["id"])
    assert read["status"] == "connected" and read["last_error"] is None


# --- rate limits and failures ---------------------------------------------------------------


async def _sync_job(resources, account_id: str) -> Job:
    keys = await resources.queue.keys(f"arq:job:social-sync:{account_id}:*")
    assert len(keys) == 1, keys
    key = keys[0].decode() if isinstance(keys[0], bytes) else keys[0]
    return Job(key.removeprefix("arq:job:"), resources.queue, _deserializer=deserialize)


async def test_a_429_defers_the_job_and_pauses_the_platform_without_failing_the_account(
    client, db, resources, settings, platforms
):
    platform = "linkedin_organization"
    shop = await new_world(client)
    account = await connect(client, shop, platform)  # queues the account's first sync
    platforms.rate_limit(platform, n=1, retry_after=2)
    pause_key = f"social:budget:pause:{platform}"

    worker = asyncio.create_task(run_worker(settings))
    try:
        async with asyncio.timeout(10):
            while (await resources.redis.pttl(pause_key)) <= 0:  # noqa: ASYNC110 (Redis)
                await asyncio.sleep(0.02)
        # Paused for every process, for about what the platform said.
        assert 0 < await resources.redis.pttl(pause_key) <= 2000
        job = await _sync_job(resources, account["id"])
        assert await job.status() in (JobStatus.deferred, JobStatus.in_progress)
        read = await read_account(client, shop, account["id"])
        assert read["status"] == "connected"
        assert read["last_error"] is None and read["last_success_at"] is None
        await asyncio.wait_for(asyncio.shield(worker), 30)
    finally:
        if not worker.done():
            worker.cancel()

    # Done, and no result kept (keep_result=0): the job id is free for the next due time.
    assert await job.status() == JobStatus.not_found
    read = await read_account(client, shop, account["id"])
    assert read["status"] == "connected" and read["last_success_at"] is not None
    days = await stored_days(db, shop.tenant_id, account["id"])
    assert [d.day for d in days] == every_day(backfill_start(settings), yesterday())


async def test_a_platform_down_on_every_try_shows_the_account_in_error_and_tries_later(
    client, db, resources, settings, platforms
):
    platform = "tiktok"
    shop = await new_world(client)
    account = await connect(client, shop, platform)
    platforms.fail_next(platform, n=1000, status=503)
    calls = platforms.count(platform)

    await run_worker(settings)

    assert platforms.count(platform) - calls == MAX_TRIES  # one call a try, then it gives up
    read = await read_account(client, shop, account["id"])
    assert read["status"] == "error"
    assert read["last_error"].startswith(f"{platform}: ")
    assert read["last_error_at"] is not None and read["last_success_at"] is None
    next_sync = datetime.fromisoformat(read["next_sync_at"])
    assert next_sync > utcnow() + timedelta(minutes=10)
    assert await stored_days(db, shop.tenant_id, account["id"]) == []
    # It is scheduled again when that time comes, not before.
    ids = {a for _, a, _ in await due_accounts(db, utcnow())}
    assert uuid.UUID(account["id"]) not in ids
    ids = {a for _, a, _ in await due_accounts(db, next_sync + timedelta(seconds=1))}
    assert uuid.UUID(account["id"]) in ids


# --- scheduling -------------------------------------------------------------------------------


async def test_the_scheduler_serves_a_small_agency_as_soon_as_a_large_one(
    client, db, resources, settings
):
    vault = kit_of(resources).vault
    large, small = await new_world(client), await new_world(client)
    due = utcnow() - timedelta(hours=1)
    large_ids = await insert_accounts(
        db, vault, large.tenant_id, large.brand["id"], sandbox_accounts(60), due
    )
    # The small agency's accounts have waited less than most of the large one's.
    small_ids = await insert_accounts(
        db,
        vault,
        small.tenant_id,
        small.brand["id"],
        sandbox_accounts(2),
        due + timedelta(minutes=30),
    )
    # Neither paused nor needs_reauth accounts are scheduled.
    idle = await insert_accounts(
        db, vault, small.tenant_id, small.brand["id"], sandbox_accounts(2), due
    )
    await set_account(db, small.tenant_id, idle[0], status=AccountStatus.paused)
    await set_account(db, small.tenant_id, idle[1], status=AccountStatus.needs_reauth)

    now = utcnow()
    mine = {large.tenant_id, small.tenant_id}
    order = [(t, a) for t, a, _ in await due_accounts(db, now) if t in mine]
    assert {a for _, a in order} == set(large_ids) | set(small_ids)
    assert [t for t, _ in order[:4]] == [large.tenant_id, small.tenant_id] * 2
    assert [a for t, a in order if t == large.tenant_id] == large_ids  # oldest first
    capped = [(t, a) for t, a, _ in await due_accounts(db, now, per_tenant=10) if t in mine]
    assert [a for t, a in capped if t == large.tenant_id] == large_ids[:10]
    assert [a for t, a in capped if t == small.tenant_id] == small_ids

    # Job ids make a second scheduling of the same due accounts a no-op.
    assert await enqueue_due(db, resources.queue, now) >= len(large_ids) + len(small_ids)
    assert await enqueue_due(db, resources.queue, now) == 0

    await run_worker(settings)
    synced = []
    for shop, ids in ((large, large_ids), (small, small_ids)):
        for account_id in ids:
            account = await stored_account(db, shop.tenant_id, account_id)
            assert account.last_success_at is not None, account
            synced.append((account.last_success_at, account_id))
    # The queue followed that order: the small agency's syncs started among the first.
    first_started = {account_id for _, account_id in sorted(synced)[:10]}
    assert set(small_ids) <= first_started
    for account_id in idle:
        assert (await stored_account(db, small.tenant_id, account_id)).last_success_at is None


async def test_each_pass_queues_an_agencys_next_accounts_not_the_ones_still_queued(
    client, db, resources, settings
):
    """A large agency's backlog enters the queue a cap at a time, up to twice the cap waiting:
    a pass that offered the same oldest accounts again (still queued) would leave the worker
    idle once the others' work is done."""
    shop = await new_world(client)
    due = utcnow() - timedelta(hours=1)
    ids = await insert_accounts(
        db, kit_of(resources).vault, shop.tenant_id, shop.brand["id"], sandbox_accounts(25), due
    )
    job_ids = [sync_job_id(a, due + timedelta(seconds=n)) for n, a in enumerate(ids)]

    async def queued() -> list[uuid.UUID]:
        return [
            a for a, j in zip(ids, job_ids, strict=True) if await job_exists(resources.queue, j)
        ]

    await enqueue_due(db, resources.queue, utcnow(), per_tenant=10)
    assert await queued() == ids[:10]
    await enqueue_due(db, resources.queue, utcnow(), per_tenant=10)
    assert await queued() == ids[:20]
    await enqueue_due(db, resources.queue, utcnow(), per_tenant=10)
    assert await queued() == ids[:20]  # twice the cap waits already

    await run_worker(settings)
    await enqueue_due(db, resources.queue, utcnow(), per_tenant=10)
    assert await queued() == ids[20:]


async def test_a_job_queued_late_for_an_account_synced_meanwhile_does_nothing(
    client, db, resources, settings, platforms
):
    """A scheduler pass that ran late queues an account another job synced in between: the
    job carries the due time it was queued for and skips, asking the platform nothing."""
    platform = "linkedin_organization"
    shop = await new_world(client)
    tokens = []
    for _ in range(2):
        external_id = platforms.add_account(platform, followers=500)
        tokens.append((platform, external_id, platforms.issue_token(platform, external_id)))
    vault = kit_of(resources).vault
    ids = await insert_accounts(
        db, vault, shop.tenant_id, shop.brand["id"], tokens, utcnow() - timedelta(minutes=5)
    )
    assert await enqueue_due(db, resources.queue, utcnow()) >= 2
    # Meanwhile the first account is synced by someone else: its next sync moves on.
    done = await sync_account(db, kit_of(resources), shop.tenant_id, ids[0])
    assert done.status == "synced", done
    synced_at = (await stored_account(db, shop.tenant_id, ids[0])).last_success_at
    asked_before = sum(tokens[0][1] in r.path for r in list(platforms.requests))

    await run_worker(settings)

    assert sum(tokens[0][1] in r.path for r in list(platforms.requests)) == asked_before
    assert (await stored_account(db, shop.tenant_id, ids[0])).last_success_at == synced_at
    # The other account, still due, was synced by its job.
    assert (await stored_account(db, shop.tenant_id, ids[1])).last_success_at is not None


async def test_a_sync_started_late_shows_its_lag_to_the_operator(client, db, resources, platforms):
    """The job of an account due 40 s ago starts now: the operator's sync-lag histogram
    (infra/metrics.py, by platform) gains one observation of 40 s."""
    platform = "linkedin_organization"
    shop = await new_world(client)
    external_id = platforms.add_account(platform, followers=500)
    token = platforms.issue_token(platform, external_id)
    due = utcnow() - timedelta(seconds=40)
    [account] = await insert_accounts(
        db,
        kit_of(resources).vault,
        shop.tenant_id,
        shop.brand["id"],
        [(platform, external_id, token)],
        due,
    )

    def lag(suffix: str) -> float:
        name = f"passerelle_social_sync_lag_seconds_{suffix}"
        return REGISTRY.get_sample_value(name, {"platform": platform}) or 0.0

    count, total = lag("count"), lag("sum")
    done = await sync_account(
        db, kit_of(resources), shop.tenant_id, account, now=due + timedelta(seconds=40), due_at=due
    )
    assert done.status == "synced", done
    assert lag("count") == count + 1
    assert lag("sum") - total == pytest.approx(40)


# --- the crash test ---------------------------------------------------------------------------


def _start_worker(log: Path) -> subprocess.Popen:
    env = {
        # About its own crash, not the inbox: no reads of every account the shared database
        # holds (the other tests' sandbox accounts), which would take the worker's slots.
        "INBOX_READS": "false",
        # A killed job's in-progress mark lasts job_timeout + 10 s (arq), then another worker
        # runs it again.
        "SOCIAL_SYNC_TIMEOUT_SECONDS": "5",
        "WORKER_MAX_JOBS": "4",
        # This test is about crashes, not about request budgets (other tests spend them).
        "SOCIAL_RATES": json.dumps({**DEFAULT_SOCIAL_RATES, "facebook_page": "100000/60"}),
    }
    return start_worker_process(log, env)


async def _synced(db, accounts: list[tuple[uuid.UUID, uuid.UUID]]) -> dict[uuid.UUID, datetime]:
    out: dict[uuid.UUID, datetime] = {}
    for tenant_id in {t for t, _ in accounts}:
        ids = [a for t, a in accounts if t == tenant_id]
        async with db.tenant_transaction(tenant_id) as session:
            rows = await session.execute(
                select(SocialAccount.id, SocialAccount.last_success_at).where(
                    SocialAccount.tenant_id == tenant_id,
                    col(SocialAccount.id).in_(ids),
                    col(SocialAccount.last_success_at).is_not(None),
                )
            )
            out.update({account_id: at for account_id, at in rows.all()})
    return out


def _cut_off(
    platforms,
    external: dict[uuid.UUID, str],
    synced,
    before: float | None = None,
    since: float | None = None,
) -> set[uuid.UUID]:
    """Accounts whose figures the platform was asked for (between `since` and `before`) but
    that are not stored."""
    asked = {
        r.path
        for r in list(platforms.requests)
        if (before is None or r.time < before) and (since is None or r.time > since)
    }
    return {
        account_id
        for account_id, external_id in external.items()
        if account_id not in synced and any(external_id in path for path in asked)
    }


async def test_a_worker_killed_mid_sync_leaves_every_account_synced_once_by_another(
    client, db, resources, settings, platforms, tmp_path
):
    platform = "facebook_page"
    vault = kit_of(resources).vault
    shops = [await new_world(client), await new_world(client)]
    external: dict[uuid.UUID, str] = {}
    accounts: list[tuple[uuid.UUID, uuid.UUID]] = []
    for n, shop in enumerate(shops):
        tokens = []
        for k in range(10):
            external_id = platforms.add_account(platform, followers=300 + 250 * (n * 10 + k))
            tokens.append((platform, external_id, platforms.issue_token(platform, external_id)))
        ids = await insert_accounts(
            db, vault, shop.tenant_id, shop.brand["id"], tokens, utcnow() - timedelta(minutes=5)
        )
        accounts += [(shop.tenant_id, account_id) for account_id in ids]
        external.update({a: e for a, (_, e, _) in zip(ids, tokens, strict=True)})
    # Each answer takes 0.8 s: a question asked less than 0.3 s ago is still unanswered, so
    # its sync still has nothing stored, when the kill lands a moment later.
    platforms.latency = 0.8
    log = tmp_path / "worker.log"
    workers: list[subprocess.Popen] = []
    try:
        workers.append(_start_worker(log))
        # A worker starting on a loaded machine (CI runs two test processes) can take a
        # while to import everything; the moment to kill comes once it works.
        async with asyncio.timeout(180):
            # Kill once some accounts are synced, most are not, and some are halfway: the
            # platform has been asked for their figures and nothing is stored yet.
            while True:
                assert workers[0].poll() is None, log.read_text()[-3000:]
                synced = await _synced(db, accounts)
                in_flight = _cut_off(platforms, external, synced, since=time.time() - 0.3)
                if 2 <= len(synced) <= len(accounts) - 6 and in_flight:
                    break
                await asyncio.sleep(0.02)
        os.kill(workers[0].pid, signal.SIGKILL)
        killed_at = time.time()
        workers[0].wait(timeout=10)
        synced = await _synced(db, accounts)
        assert len(synced) < len(accounts)
        cut_off = _cut_off(platforms, external, synced, before=killed_at)
        assert cut_off, "the worker was not killed in the middle of a sync"

        workers.append(_start_worker(log))
        try:
            async with asyncio.timeout(180):
                while len(synced := await _synced(db, accounts)) < len(accounts):
                    assert workers[1].poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(
                f"{len(synced)} of {len(accounts)} synced; the workers said:\n"
                + log.read_text()[-4000:]
            ) from None
        # The syncs cut off were run again, by the second worker.
        assert all(synced[account_id].timestamp() > killed_at for account_id in cut_off)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()

    for tenant_id, account_id in accounts:
        rows = await stored_days(db, tenant_id, account_id)
        assert [r.day for r in rows] == every_day(backfill_start(settings), yesterday()), (
            account_id in cut_off
        )
        assert await row_counts(db, tenant_id, account_id) == (len(rows), len(rows))
        for row in rows[:: len(rows) // 5] + rows[-3:]:
            expected = platforms.expected(platform, external[account_id], row.day)
            assert {m: getattr(row, m) for m in expected} == expected, row.day
        account = await stored_account(db, tenant_id, account_id)
        assert account.status == "connected" and account.synced_through == yesterday()
