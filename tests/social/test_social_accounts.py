"""Social accounts through the HTTP API: connecting with OAuth (PKCE + signed state) against the
platform simulator and the sandbox, reconnecting, plan limits, syncing and the statistics a
person reads, asking for a sync now, who may see and do what, monthly client reports (JSON and
PDF), pausing and disconnecting, and another agency's objects."""

from __future__ import annotations

import asyncio
import calendar
import io
import itertools
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import func
from sqlmodel import col, select

from infra.vault import TokenVault
from social.connectors import sandbox
from social.models import DailyStat, SocialAccount, SocialConnection
from tests.support.factories import (
    Agency,
    add_person,
    make_brand,
    make_client,
    new_world,
    walk,
)
from tests.support.problems import assert_problem
from tests.support.worker import run_worker

METRICS = (
    "followers",
    "follower_change",
    "impressions",
    "reach",
    "engagements",
    "posts_published",
    "video_views",
)
FLOWS = tuple(m for m in METRICS if m != "followers")
FRENCH_MONTHS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]

# ---------------------------------------------------------------------------------------------
# Helpers


def yesterday() -> date:
    """The last day a sync stores (platforms report complete days, in UTC)."""
    return datetime.now(UTC).date() - timedelta(days=1)


def last_month() -> date:
    """The first day of the previous calendar month: always inside the 90-day backfill."""
    first_of_this = datetime.now(UTC).date().replace(day=1)
    return (first_of_this - timedelta(days=1)).replace(day=1)


def month_after(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


async def setup(client) -> tuple[Agency, dict[str, str], dict, dict]:
    world = await new_world(
        client,
        customer={"name": f"Acme {uuid.uuid4().hex[:6]}"},
        brands={"brand": {"name": "Acme Brand"}},
    )
    return world.agency, world.boss, world.customer, world.brand


async def start(client, headers, brand_id: str, platform: str) -> httpx.Response:
    return await client.post(
        f"/v1/brands/{brand_id}/social-accounts/connect",
        params={"platform": platform},
        headers=headers,
    )


async def start_ok(client, headers, brand_id: str, platform: str) -> httpx.URL:
    response = await start(client, headers, brand_id, platform)
    assert response.status_code == 200, response.text
    body = response.json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(minutes=16)
    return httpx.URL(body["authorization_url"])


async def consent(authorization_url: httpx.URL) -> httpx.URL:
    """The person's browser on the platform (the simulator): where it is sent back to."""
    async with httpx.AsyncClient() as browser:
        response = await browser.get(authorization_url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return httpx.URL(response.headers["location"])


async def back(client, url: httpx.URL, **params: str | None) -> httpx.Response:
    """The browser arriving at our callback (path and query of the platform's redirect);
    `params` replace (or, when None, drop) query parameters."""
    query = {**dict(url.params), **params}
    return await client.get(url.path, params={k: v for k, v in query.items() if v is not None})


async def returned_url(client, headers, brand_id: str, platform: str) -> httpx.URL:
    """Started and consented: the callback URL the platform sends the browser to."""
    url = await start_ok(client, headers, brand_id, platform)
    return url if platform == "sandbox" else await consent(url)


async def connect(client, headers, brand_id: str, platform: str = "sandbox") -> dict:
    response = await back(client, await returned_url(client, headers, brand_id, platform))
    assert response.status_code == 200, response.text
    return response.json()


async def list_accounts(client, headers, brand_id: str) -> list[dict]:
    return await walk(client, f"/v1/brands/{brand_id}/social-accounts", headers)


async def account_row(db, tenant_id: uuid.UUID, account_id: str) -> dict[str, Any]:
    async with db.tenant_transaction(tenant_id) as session:
        row = await session.get(SocialAccount, (tenant_id, uuid.UUID(account_id)))
        assert row is not None
        return row.model_dump()


async def account_count(db, tenant_id: uuid.UUID) -> int:
    async with db.tenant_transaction(tenant_id) as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(SocialAccount)
                .where(SocialAccount.tenant_id == tenant_id)
            )
            or 0
        )


async def stat_rows(
    db, tenant_id: uuid.UUID, account_ids: list[str], first: date, last: date
) -> list[dict[str, Any]]:
    async with db.tenant_transaction(tenant_id) as session:
        rows = (
            await session.scalars(
                select(DailyStat)
                .where(
                    DailyStat.tenant_id == tenant_id,
                    col(DailyStat.account_id).in_([uuid.UUID(a) for a in account_ids]),
                    col(DailyStat.day) >= first,
                    col(DailyStat.day) <= last,
                )
                .order_by(col(DailyStat.day), col(DailyStat.account_id))
            )
        ).all()
        return [r.model_dump() for r in rows]


async def open_connection(db, tenant_id: uuid.UUID, brand_id: str) -> uuid.UUID:
    """The one connection of the brand started and not yet completed."""
    async with db.tenant_transaction(tenant_id) as session:
        ids = (
            await session.scalars(
                select(SocialConnection.id).where(
                    SocialConnection.tenant_id == tenant_id,
                    SocialConnection.brand_id == uuid.UUID(brand_id),
                    col(SocialConnection.used_at).is_(None),
                )
            )
        ).all()
    assert len(ids) == 1, ids
    return ids[0]


async def change_connection(db, tenant_id: uuid.UUID, connection_id: uuid.UUID, **values) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        connection = await session.get(SocialConnection, (tenant_id, connection_id))
        assert connection is not None
        for name, value in values.items():
            setattr(connection, name, value)


def vault(settings) -> TokenVault:
    return TokenVault.from_secret(settings.token_encryption_keys)


async def queued_syncs(resources, account_id: str) -> list[str]:
    keys = await resources.redis.keys(f"arq:job:social-sync:{account_id}:*")
    return sorted(k.decode() if isinstance(k, bytes) else k for k in keys)


def bucket_of(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def expected_points(rows: list[dict[str, Any]], granularity: str) -> list[dict[str, Any]]:
    """What the API must answer, worked out from the stored days: per account and bucket,
    flows are summed and followers is the bucket's last known count; then accounts add up.
    A metric no account has in a bucket stays None (not 0)."""
    per_account: dict[tuple[date, Any], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        per_account[(bucket_of(row["day"], granularity), row["account_id"])].append(row)
    totals: dict[date, dict[str, Any]] = {}
    for (bucket, _), days in sorted(per_account.items(), key=lambda kv: kv[0][0]):
        days.sort(key=lambda r: r["day"])
        point = totals.setdefault(bucket, {"start": bucket.isoformat(), **dict.fromkeys(METRICS)})
        known_followers = [r["followers"] for r in days if r["followers"] is not None]
        values = {"followers": known_followers[-1] if known_followers else None}
        for metric in FLOWS:
            known = [r[metric] for r in days if r[metric] is not None]
            values[metric] = sum(known) if known else None
        for metric, value in values.items():
            if value is not None:
                point[metric] = (point[metric] or 0) + value
    return [totals[b] for b in sorted(totals)]


async def stats(client, headers, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers=headers)


async def assign(client, owner: dict[str, str], user_id: uuid.UUID, brand_id: str) -> None:
    response = await client.post(
        "/v1/assignments",
        json={
            "brand_id": brand_id,
            "user_id": str(user_id),
            "role": "community_manager",
            "monthly_minutes": 0,
            "start_date": str(date.today() - timedelta(days=30)),
            "end_date": None,
        },
        headers=owner,
    )
    assert response.status_code == 201, response.text


# ---------------------------------------------------------------------------------------------
# 1. OAuth with PKCE and state


NETWORK_CASES = [
    # platform, external id, handle, display name, whether the platform gives a refresh token
    # (Meta gives none: its long-lived access token is what gets exchanged for a new one)
    ("x", "1790000000000000001", "acme_qc", "Acme Québec", True),
    ("linkedin_organization", "73451234", "acme-quebec", "Acme Québec Inc.", True),
    ("youtube", "UCacmeQuebec000000000001", "acmequebec", "Acme TV", True),
    ("facebook_page", "104512345678901", "acmequebec", "Acme Québec", False),
]


@pytest.mark.parametrize(
    ("platform", "external_id", "handle", "name", "has_refresh"),
    NETWORK_CASES,
    ids=[c[0] for c in NETWORK_CASES],
)
async def test_connecting_a_network_account_with_pkce_and_state(
    client,
    db,
    resources,
    settings,
    platforms,
    mailbox,
    platform,
    external_id,
    handle,
    name,
    has_refresh,
):
    agency, owner, _, brand = await setup(client)
    platforms.authorize_as(platform, external_id, handle=handle, name=name)

    url = await start_ok(client, owner, brand["id"], platform)
    assert str(url).startswith(platforms.base_url(platform))
    query = dict(url.params)
    assert query["response_type"] == "code"
    assert query.get("client_id", query.get("client_key")) == f"cid-{platform}"
    assert query["redirect_uri"] == f"{settings.public_base_url}/v1/oauth/callback/{platform}"
    assert query["code_challenge_method"] == "S256"
    assert 43 <= len(query["code_challenge"]) <= 128
    assert set(query["code_challenge"]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert "code_verifier" not in query
    assert len(query["state"]) >= 20
    # Two starts never share a state or a challenge.
    other = dict((await start_ok(client, owner, brand["id"], platform)).params)
    assert other["state"] != query["state"]
    assert other["code_challenge"] != query["code_challenge"]

    returned = await consent(url)
    assert returned.path == f"/v1/oauth/callback/{platform}"
    assert returned.params["state"] == query["state"]
    response = await back(client, returned)
    assert response.status_code == 200, response.text
    account = response.json()
    assert account["platform"] == platform
    assert account["brand_id"] == brand["id"]
    assert account["external_id"] == external_id
    assert (account["handle"], account["display_name"]) == (handle, name)
    assert account["status"] == "connected"
    assert account["last_success_at"] is None
    assert await list_accounts(client, owner, brand["id"]) == [account]

    # Its first sync (the 90-day backfill) is queued.
    assert await queued_syncs(resources, account["id"])

    # The tokens are encrypted at rest, and what they decrypt to is what the platform gave.
    row = await account_row(db, agency.tenant_id, account["id"])
    access = vault(settings).decrypt(row["access_token"])
    assert access
    assert access.encode() not in row["access_token"]
    refresh = vault(settings).decrypt(row["refresh_token"])
    assert refresh
    assert refresh.encode() not in row["refresh_token"]
    if has_refresh:
        assert refresh != access
    else:
        assert refresh == access
    assert row["token_expires_at"] > datetime.now(UTC) + timedelta(minutes=30)

    # The stored token is the one that works: the queued sync succeeds with it.
    await run_worker(settings)
    synced = (await client.get(f"/v1/social-accounts/{account['id']}", headers=owner)).json()
    assert synced["status"] == "connected", synced
    assert synced["last_success_at"] is not None


async def test_a_browser_is_sent_back_to_the_app(client, settings, platforms):
    _agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], "x")
    response = await client.get(
        returned.path, params=dict(returned.params), headers={"Accept": "text/html"}
    )
    assert response.status_code == 303, response.text
    [account] = await list_accounts(client, owner, brand["id"])
    assert response.headers["location"] == (
        f"{settings.app_base_url}/brands/{brand['id']}/social-accounts?connected={account['id']}"
    )


def flip(text: str, at: int) -> str:
    replacement = "A" if text[at] != "A" else "B"
    return text[:at] + replacement + text[at + 1 :]


async def test_a_tampered_state_is_refused_and_stores_nothing(client, db, platforms):
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], "x")
    state = returned.params["state"]
    for at in (len(state) // 3, len(state) // 2, len(state) - 5):
        response = await back(client, returned, state=flip(state, at))
        assert_problem(response, 400, "invalid-oauth-state")
    for hostile in ("", "null", "a.b.c", "x" * 4096, "' OR 1=1 --"):
        assert_problem(await back(client, returned, state=hostile), 400)
    assert_problem(await back(client, returned, state="x" * 5000), 422, "validation-error")
    assert await list_accounts(client, owner, brand["id"]) == []
    assert await account_count(db, agency.tenant_id) == 0
    # The genuine answer still completes: the refusals burnt nothing.
    response = await back(client, returned)
    assert response.status_code == 200, response.text


async def test_a_state_for_another_platform_is_refused(client, db, platforms):
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], "x")
    for other in ("linkedin_organization", "sandbox"):
        response = await client.get(f"/v1/oauth/callback/{other}", params=dict(returned.params))
        assert_problem(response, 400, "invalid-oauth-state")
    assert await account_count(db, agency.tenant_id) == 0
    assert_problem(
        await client.get("/v1/oauth/callback/myspace", params=dict(returned.params)),
        422,
        "validation-error",
    )


@pytest.mark.parametrize("platform", ["x", "sandbox"])
async def test_a_state_works_once(client, db, platforms, platform):
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], platform)
    first = await back(client, returned)
    assert first.status_code == 200, first.text
    assert_problem(await back(client, returned), 400, "invalid-oauth-state")
    assert [a["id"] for a in await list_accounts(client, owner, brand["id"])] == [
        first.json()["id"]
    ]
    assert await account_count(db, agency.tenant_id) == 1


@pytest.mark.parametrize("platform", ["x", "sandbox"])
async def test_a_state_works_once_even_when_it_comes_back_twice_at_once(
    client, db, platforms, platform
):
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], platform)
    answers = await asyncio.gather(*(back(client, returned) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400], [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 400:
            assert_problem(answer, 400, "invalid-oauth-state")
    assert await account_count(db, agency.tenant_id) == 1


async def test_an_expired_connection_is_refused(client, db, platforms):
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], "x")
    connection = await open_connection(db, agency.tenant_id, brand["id"])
    await change_connection(
        db, agency.tenant_id, connection, expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    body = assert_problem(await back(client, returned), 400, "invalid-oauth-state")
    assert "expired" in body["detail"]
    assert await account_count(db, agency.tenant_id) == 0


MISSING_CASES = [
    ("no code", {"code": None}, "invalid-oauth-state"),
    ("empty code", {"code": ""}, "invalid-oauth-state"),
    ("no state", {"state": None}, "invalid-oauth-state"),
    ("nothing at all", {"code": None, "state": None}, "invalid-oauth-state"),
]


@pytest.mark.parametrize(
    ("params", "slug"), [c[1:] for c in MISSING_CASES], ids=[c[0] for c in MISSING_CASES]
)
async def test_a_callback_without_code_or_state_is_refused(client, db, platforms, params, slug):
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], "x")
    assert_problem(await back(client, returned, **params), 400, slug)
    assert await account_count(db, agency.tenant_id) == 0


@pytest.mark.parametrize("platform", ["x", "linkedin_organization"])
async def test_a_person_who_says_no_connects_nothing(client, db, platforms, platform):
    agency, owner, _, brand = await setup(client)
    platforms.deny_next(platform)
    returned = await returned_url(client, owner, brand["id"], platform)
    assert returned.params["error"] == "access_denied"
    assert "code" not in returned.params
    body = assert_problem(await back(client, returned), 400, "oauth-denied")
    assert "access_denied" in body["detail"]
    assert await account_count(db, agency.tenant_id) == 0
    # The refused connection is over: the same state cannot be used again with a code.
    assert_problem(
        await back(client, returned, error=None, code="forged"), 400, "invalid-oauth-state"
    )
    assert await account_count(db, agency.tenant_id) == 0


async def test_a_wrong_code_verifier_is_refused_by_the_platform(client, db, settings, platforms):
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], "x")
    connection = await open_connection(db, agency.tenant_id, brand["id"])
    await change_connection(
        db, agency.tenant_id, connection, code_verifier=vault(settings).encrypt("v" * 64)
    )
    body = assert_problem(await back(client, returned), 400, "oauth-exchange-failed")
    assert "invalid_grant" in body["detail"]
    assert "v" * 64 not in str(body)
    assert await account_count(db, agency.tenant_id) == 0


async def test_a_forged_authorization_code_is_refused(client, db, platforms):
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], "x")
    assert_problem(await back(client, returned, code="forged-code"), 400, "oauth-exchange-failed")
    assert await account_count(db, agency.tenant_id) == 0


# ---------------------------------------------------------------------------------------------
# 2. Reconnecting, accounts on other brands, plan limits


async def test_reconnecting_updates_the_same_account_with_new_tokens(
    client, db, settings, platforms
):
    agency, owner, _, brand = await setup(client)
    platforms.authorize_as("x", "1790000000000000042", handle="acme", name="Acme")
    first = await connect(client, owner, brand["id"], "x")
    before = await account_row(db, agency.tenant_id, first["id"])

    platforms.authorize_as("x", "1790000000000000042", handle="acme_new", name="Acme New")
    second = await connect(client, owner, brand["id"], "x")
    after = await account_row(db, agency.tenant_id, first["id"])

    assert second["id"] == first["id"]
    assert second["version"] > first["version"]
    assert (second["handle"], second["display_name"]) == ("acme_new", "Acme New")
    assert second["status"] == "connected"
    assert await account_count(db, agency.tenant_id) == 1
    tokens = vault(settings)
    assert tokens.decrypt(after["access_token"]) != tokens.decrypt(before["access_token"])
    # X gives a new refresh token on every consent: the new one is kept.
    assert tokens.decrypt(after["refresh_token"]) != tokens.decrypt(before["refresh_token"])


async def test_a_refresh_that_brings_no_refresh_token_keeps_the_old_one(
    client, db, settings, platforms, mailbox
):
    """Google hands out a refresh token at consent only: refreshing the access token before
    it expires must keep the one we hold, and a reconnect that brings one stores it."""
    agency, owner, _, brand = await setup(client)
    platforms.authorize_as("youtube", "UCacmeRefresh00000000001", name="Acme TV")
    account = await connect(client, owner, brand["id"], "youtube")
    await run_worker(settings)
    tokens = vault(settings)
    before = await account_row(db, agency.tenant_id, account["id"])
    async with db.tenant_transaction(agency.tenant_id) as session:
        row = await session.get(SocialAccount, (agency.tenant_id, uuid.UUID(account["id"])))
        assert row is not None
        row.token_expires_at = datetime.now(UTC) + timedelta(minutes=2)  # about to expire

    synced = await client.post(f"/v1/social-accounts/{account['id']}/sync", headers=owner)
    assert synced.status_code == 202, synced.text
    await run_worker(settings)
    after = await account_row(db, agency.tenant_id, account["id"])
    assert tokens.decrypt(after["access_token"]) != tokens.decrypt(before["access_token"])
    assert after["token_expires_at"] > datetime.now(UTC) + timedelta(minutes=30)
    assert tokens.decrypt(after["refresh_token"]) == tokens.decrypt(before["refresh_token"])
    seen = (await client.get(f"/v1/social-accounts/{account['id']}", headers=owner)).json()
    assert seen["status"] == "connected", seen
    assert datetime.fromisoformat(seen["last_success_at"]) > before["last_success_at"]

    again = await connect(client, owner, brand["id"], "youtube")
    reconnected = await account_row(db, agency.tenant_id, account["id"])
    assert again["id"] == account["id"]
    new_refresh = tokens.decrypt(reconnected["refresh_token"])
    assert new_refresh and new_refresh != tokens.decrypt(after["refresh_token"])


async def test_an_account_already_on_another_brand_is_refused(client, db, platforms):
    agency, owner, acme, brand = await setup(client)
    other = await make_brand(client, owner, acme["id"], name="Other Brand")
    platforms.authorize_as("x", "1790000000000000077")
    account = await connect(client, owner, brand["id"], "x")

    response = await back(client, await returned_url(client, owner, other["id"], "x"))
    assert_problem(response, 409, "social-account-taken")
    assert await list_accounts(client, owner, other["id"]) == []
    [still] = await list_accounts(client, owner, brand["id"])
    assert still["id"] == account["id"]
    assert await account_count(db, agency.tenant_id) == 1


async def test_the_plan_limits_social_accounts(client, db, settings):
    """The starter plan allows 30 accounts: the 31st connection is refused, reconnecting one
    already counted is not a new account, and a slot freed by a disconnect can be taken."""
    limit = settings.plan("starter").max_social_accounts
    assert limit == 30
    agency, owner, _, brand = await setup(client)
    first_url = await returned_url(client, owner, brand["id"], "sandbox")
    first = await back(client, first_url)
    assert first.status_code == 200, first.text
    accounts = [first.json()] + [
        await connect(client, owner, brand["id"]) for _ in range(limit - 2)
    ]
    # Two people take the last slot at once: one gets it.
    racing = [await returned_url(client, owner, brand["id"], "sandbox") for _ in range(2)]
    answers = await asyncio.gather(*(back(client, url) for url in racing))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 200:
            accounts.append(answer.json())
        else:
            body = assert_problem(answer, 409, "plan-limit")
            assert str(limit) in body["detail"]
    assert len({a["id"] for a in accounts}) == limit

    response = await back(client, await returned_url(client, owner, brand["id"], "sandbox"))
    assert_problem(response, 409, "plan-limit")
    assert await account_count(db, agency.tenant_id) == limit
    assert len(await list_accounts(client, owner, brand["id"])) == limit

    # The sandbox's consent for the first account again (its code), in a new connection.
    again_url = await returned_url(client, owner, brand["id"], "sandbox")
    again = await back(client, again_url, code=first_url.params["code"])
    assert again.status_code == 200, again.text
    assert again.json()["id"] == accounts[0]["id"]

    deleted = await client.delete(f"/v1/social-accounts/{accounts[0]['id']}", headers=owner)
    assert deleted.status_code == 204, deleted.text
    await connect(client, owner, brand["id"])
    assert await account_count(db, agency.tenant_id) == limit


# ---------------------------------------------------------------------------------------------
# 3. Sync and statistics


async def synced_sandbox_brand(client, db, settings, n: int = 2):
    agency, owner, acme, brand = await setup(client)
    accounts = [await connect(client, owner, brand["id"]) for _ in range(n)]
    await run_worker(settings)
    for account in accounts:
        seen = (await client.get(f"/v1/social-accounts/{account['id']}", headers=owner)).json()
        assert seen["status"] == "connected", seen
        assert seen["last_success_at"] is not None
        assert seen["metric_errors"] == {}
    return agency, owner, acme, brand, accounts


async def test_a_sync_stores_the_sandbox_figures_for_the_last_90_days(client, db, settings):
    agency, owner, _, _brand, [account] = await synced_sandbox_brand(client, db, settings, n=1)
    row = await account_row(db, agency.tenant_id, account["id"])
    end = yesterday()
    rows = await stat_rows(
        db, agency.tenant_id, [account["id"]], date(2000, 1, 1), end + timedelta(1)
    )
    days = [r["day"] for r in rows]
    backfill = settings.social_backfill_days
    assert backfill == 90
    assert days == [end - timedelta(days=n) for n in range(backfill - 1, -1, -1)]
    for r in rows:
        assert {m: r[m] for m in METRICS} == sandbox.figures(row["external_id"], r["day"])

    # A second sync rewrites the last days without duplicating any.
    response = await client.post(f"/v1/social-accounts/{account['id']}/sync", headers=owner)
    assert response.status_code == 202, response.text
    await run_worker(settings)
    again = await stat_rows(db, agency.tenant_id, [account["id"]], date(2000, 1, 1), end)
    assert [r["day"] for r in again] == days


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
async def test_brand_stats_add_up_the_accounts_figures(client, db, settings, granularity):
    agency, owner, _, brand, accounts = await synced_sandbox_brand(client, db, settings)
    end = yesterday()
    first = end - timedelta(days=59)
    response = await stats(
        client,
        owner,
        f"/v1/brands/{brand['id']}/stats",
        **{"from": first.isoformat(), "to": end.isoformat(), "granularity": granularity},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["brand_id"], body["account_id"]) == (brand["id"], None)
    assert (body["from_date"], body["to_date"]) == (first.isoformat(), end.isoformat())
    assert body["granularity"] == granularity

    rows = await stat_rows(db, agency.tenant_id, [a["id"] for a in accounts], first, end)
    assert len(rows) == 2 * 60
    assert body["points"] == expected_points(rows, granularity)

    starts = [date.fromisoformat(p["start"]) for p in body["points"]]
    if granularity == "day":
        assert starts == [first + timedelta(days=n) for n in range(60)]
    elif granularity == "week":
        assert all(s.weekday() == 0 for s in starts)  # ISO weeks start on Monday
        assert starts == sorted(starts)
        assert all(b - a == timedelta(days=7) for a, b in itertools.pairwise(starts))
        assert starts[0] <= first < starts[0] + timedelta(days=7)
    else:
        assert all(s.day == 1 for s in starts)
        assert starts[0] == first.replace(day=1)

    if granularity != "day":
        # By hand for one full bucket: flows summed, followers the last day's count.
        bucket = body["points"][1]
        start = date.fromisoformat(bucket["start"])
        inside = [r for r in rows if bucket_of(r["day"], granularity) == start]
        last_day = max(r["day"] for r in inside)
        assert bucket["impressions"] == sum(r["impressions"] for r in inside)
        assert bucket["posts_published"] == sum(r["posts_published"] for r in inside)
        assert bucket["followers"] == sum(r["followers"] for r in inside if r["day"] == last_day)


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
async def test_account_stats_are_the_accounts_own(client, db, settings, granularity):
    agency, owner, _, brand, accounts = await synced_sandbox_brand(client, db, settings)
    account = accounts[1]
    end = yesterday()
    first = end - timedelta(days=44)
    response = await stats(
        client,
        owner,
        f"/v1/social-accounts/{account['id']}/stats",
        **{"from": first.isoformat(), "to": end.isoformat(), "granularity": granularity},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["brand_id"], body["account_id"]) == (brand["id"], account["id"])
    rows = await stat_rows(db, agency.tenant_id, [account["id"]], first, end)
    assert body["points"] == expected_points(rows, granularity)
    external_id = (await account_row(db, agency.tenant_id, account["id"]))["external_id"]
    if granularity == "day":
        for point in body["points"]:
            day = date.fromisoformat(point["start"])
            assert {m: point[m] for m in METRICS} == sandbox.figures(external_id, day)


async def test_stats_default_to_the_last_30_days(client, db, settings):
    _, owner, _, brand, _ = await synced_sandbox_brand(client, db, settings, n=1)
    body = (await stats(client, owner, f"/v1/brands/{brand['id']}/stats")).json()
    assert body["to_date"] == yesterday().isoformat()
    assert body["from_date"] == (yesterday() - timedelta(days=29)).isoformat()
    assert body["granularity"] == "day"
    assert len(body["points"]) == 30


async def test_a_metric_the_platform_lacks_stays_empty(client, db, settings, platforms, mailbox):
    """X gives no reach nor video views: they stay null (not 0), alone and added to a sandbox
    account's figures; a brand without accounts has no points at all."""
    agency, owner, acme, brand = await setup(client)
    platforms.authorize_as("x", "1790000000000000099", followers=5000)
    x_account = await connect(client, owner, brand["id"], "x")
    await run_worker(settings)
    end = yesterday()
    first = end - timedelta(days=13)
    window = {"from": first.isoformat(), "to": end.isoformat()}

    alone = await stats(client, owner, f"/v1/social-accounts/{x_account['id']}/stats", **window)
    assert alone.status_code == 200, alone.text
    points = alone.json()["points"]
    assert len(points) == 14
    assert all(p["reach"] is None and p["video_views"] is None for p in points)
    rows = await stat_rows(db, agency.tenant_id, [x_account["id"]], first, end)
    assert points == expected_points(rows, "day")
    for p in points:
        day = date.fromisoformat(p["start"])
        wanted = platforms.expected("x", "1790000000000000099", day)
        assert p["impressions"] == wanted["impressions"]
        assert p["posts_published"] == wanted["posts_published"]

    sandbox_account = await connect(client, owner, brand["id"])
    await run_worker(settings)
    sandbox_id = (await account_row(db, agency.tenant_id, sandbox_account["id"]))["external_id"]
    both = (await stats(client, owner, f"/v1/brands/{brand['id']}/stats", **window)).json()
    for p in both["points"]:
        day = date.fromisoformat(p["start"])
        assert p["reach"] == sandbox.figures(sandbox_id, day)["reach"]

    empty = await make_brand(client, owner, acme["id"], name="Empty")
    body = (await stats(client, owner, f"/v1/brands/{empty['id']}/stats", **window)).json()
    assert body["points"] == []


BAD_RANGES = [
    ("from after to", {"from": "2026-10-10", "to": "2026-10-09"}, "invalid-range"),
    ("732 days", {"from": "2024-01-01", "to": "2026-01-01"}, "invalid-range"),
    ("granularity year", {"granularity": "year"}, "validation-error"),
    ("granularity empty", {"granularity": ""}, "validation-error"),
    ("impossible date", {"from": "2026-02-30"}, "validation-error"),
    ("not a date", {"to": "yesterday"}, "validation-error"),
    (
        "hostile date",
        {"from": "2026-01-01'; DROP TABLE social_stats_daily; --"},
        "validation-error",
    ),
    ("huge year", {"to": "99999-01-01"}, "validation-error"),
    # Days the API serves run from 2000 to 2099.
    ("before the year one", {"to": "0001-01-10"}, "validation-error"),
    ("before 2000", {"from": "1999-12-31", "to": "2000-01-10"}, "validation-error"),
]


@pytest.mark.parametrize(
    ("params", "slug"), [c[1:] for c in BAD_RANGES], ids=[c[0] for c in BAD_RANGES]
)
async def test_bad_ranges_are_refused(client, params, slug):
    _, owner, _, brand = await setup(client)
    account = await connect(client, owner, brand["id"])
    paths = [f"/v1/brands/{brand['id']}/stats", f"/v1/social-accounts/{account['id']}/stats"]
    if "granularity" not in params:
        paths.append(f"/v1/brands/{brand['id']}/anomalies")
    for path in paths:
        assert_problem(await stats(client, owner, path, **params), 422, slug)


async def test_731_days_is_the_longest_range(client):
    _, owner, _, brand = await setup(client)
    ok = await stats(
        client,
        owner,
        f"/v1/brands/{brand['id']}/stats",
        **{"from": "2024-01-01", "to": "2025-12-31"},
    )
    assert ok.status_code == 200, ok.text


# ---------------------------------------------------------------------------------------------
# 4. Sync now


async def test_sync_now_is_limited_per_account(client, db, settings):
    _agency, owner, _, brand = await setup(client)
    account = await connect(client, owner, brand["id"])
    other = await connect(client, owner, brand["id"])
    path = f"/v1/social-accounts/{account['id']}/sync"
    answers = [await client.post(path, headers=owner) for _ in range(3)]
    for response in answers:
        assert response.status_code == 202, response.text
        assert response.json()["account_id"] == account["id"]
    assert answers[0].json()["queued"] is True

    refused = await client.post(path, headers=owner)
    body = assert_problem(refused, 429, "rate-limited")
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= 600
    assert str(retry_after) in body["detail"]
    # The limit is per account.
    fine = await client.post(f"/v1/social-accounts/{other['id']}/sync", headers=owner)
    assert fine.status_code == 202, fine.text


async def test_a_paused_account_cannot_be_synced(client):
    _, owner, _, brand = await setup(client)
    account = await connect(client, owner, brand["id"])
    paused = await client.patch(
        f"/v1/social-accounts/{account['id']}", json={"status": "paused"}, headers=owner
    )
    assert paused.status_code == 200, paused.text
    response = await client.post(f"/v1/social-accounts/{account['id']}/sync", headers=owner)
    assert_problem(response, 409, "account-not-syncable")


async def test_an_account_needing_reconnection_cannot_be_synced_or_resumed(
    client, db, settings, platforms, mailbox
):
    _agency, owner, _, brand = await setup(client)
    platforms.authorize_as("x", "1790000000000000123")
    account = await connect(client, owner, brand["id"], "x")
    platforms.revoke("x", "1790000000000000123")
    await run_worker(settings)
    seen = (await client.get(f"/v1/social-accounts/{account['id']}", headers=owner)).json()
    assert seen["status"] == "needs_reauth", seen
    assert seen["last_error"]

    response = await client.post(f"/v1/social-accounts/{account['id']}/sync", headers=owner)
    body = assert_problem(response, 409, "account-not-syncable")
    assert "connect it again" in body["detail"]
    resumed = await client.patch(
        f"/v1/social-accounts/{account['id']}", json={"status": "connected"}, headers=owner
    )
    assert_problem(resumed, 409, "reconnect-needed")

    # Connecting it again is the way back.
    again = await connect(client, owner, brand["id"], "x")
    assert (again["id"], again["status"]) == (account["id"], "connected")
    assert again["last_error"] is None
    ok = await client.post(f"/v1/social-accounts/{account['id']}/sync", headers=owner)
    assert ok.status_code == 202, ok.text


# ---------------------------------------------------------------------------------------------
# 5. Who may see and do what


async def test_a_member_reaches_only_the_brands_assigned_to_them(client, db, resources):
    agency, owner, acme, brand = await setup(client)
    account = await connect(client, owner, brand["id"])
    member = await add_person(client, db, resources.passwords, agency, "member")
    headers = member.headers
    connect_path = f"/v1/brands/{brand['id']}/social-accounts/connect"
    paths = [
        ("GET", f"/v1/brands/{brand['id']}/social-accounts", "brand-not-found"),
        ("GET", f"/v1/brands/{brand['id']}/stats", "brand-not-found"),
        ("POST", f"{connect_path}?platform=sandbox", "brand-not-found"),
        ("GET", f"/v1/social-accounts/{account['id']}", "social-account-not-found"),
        ("GET", f"/v1/social-accounts/{account['id']}/stats", "social-account-not-found"),
        ("POST", f"/v1/social-accounts/{account['id']}/sync", "social-account-not-found"),
        ("DELETE", f"/v1/social-accounts/{account['id']}", "social-account-not-found"),
    ]
    for method, path, slug in paths:
        assert_problem(await client.request(method, path, headers=headers), 404, slug)
    patched = await client.patch(
        f"/v1/social-accounts/{account['id']}", json={"status": "paused"}, headers=headers
    )
    assert_problem(patched, 404, "social-account-not-found")

    await assign(client, owner, member.user_id, brand["id"])
    assert [a["id"] for a in await list_accounts(client, headers, brand["id"])] == [account["id"]]
    mine = await connect(client, headers, brand["id"])
    assert mine["brand_id"] == brand["id"]
    paused = await client.patch(
        f"/v1/social-accounts/{mine['id']}", json={"status": "paused"}, headers=headers
    )
    assert paused.status_code == 200, paused.text
    synced = await client.post(f"/v1/social-accounts/{account['id']}/sync", headers=headers)
    assert synced.status_code == 202, synced.text
    assert (await stats(client, headers, f"/v1/brands/{brand['id']}/stats")).status_code == 200

    # Another brand of the same client stays out of reach.
    other = await make_brand(client, owner, acme["id"], name="Not theirs")
    assert_problem(await start(client, headers, other["id"], "sandbox"), 404, "brand-not-found")


async def test_a_client_contact_reads_only_their_own_brands(client, db, resources, settings):
    agency, owner, acme, brand = await setup(client)
    rival = await make_client(client, owner, name="Rival")
    rival_brand = await make_brand(client, owner, rival["id"], name="Rival Brand")
    account = await connect(client, owner, brand["id"])
    rival_account = await connect(client, owner, rival_brand["id"])
    await run_worker(settings)
    contact = await add_person(
        client, db, resources.passwords, agency, "client", client_id=uuid.UUID(acme["id"])
    )
    headers = contact.headers
    month = last_month().strftime("%Y-%m")

    assert [a["id"] for a in await list_accounts(client, headers, brand["id"])] == [account["id"]]
    seen = await client.get(f"/v1/social-accounts/{account['id']}", headers=headers)
    assert seen.status_code == 200, seen.text
    for path in (f"/v1/brands/{brand['id']}/stats", f"/v1/social-accounts/{account['id']}/stats"):
        answer = await stats(client, headers, path)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["points"]) == 30
    report = await client.get(f"/v1/clients/{acme['id']}/reports/{month}", headers=headers)
    assert report.status_code == 200, report.text
    assert [b["id"] for b in report.json()["brands"]] == [brand["id"]]
    pdf = await client.get(f"/v1/clients/{acme['id']}/reports/{month}/pdf", headers=headers)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"

    not_theirs = [
        (f"/v1/brands/{rival_brand['id']}/social-accounts", "brand-not-found"),
        (f"/v1/brands/{rival_brand['id']}/stats", "brand-not-found"),
        (f"/v1/brands/{rival_brand['id']}/anomalies", "brand-not-found"),
        (f"/v1/social-accounts/{rival_account['id']}", "social-account-not-found"),
        (f"/v1/social-accounts/{rival_account['id']}/stats", "social-account-not-found"),
        (f"/v1/clients/{rival['id']}/reports/{month}", "client-not-found"),
        (f"/v1/clients/{rival['id']}/reports/{month}/pdf", "client-not-found"),
    ]
    for path, slug in not_theirs:
        assert_problem(await client.get(path, headers=headers), 404, slug)

    assert_problem(await start(client, headers, brand["id"], "sandbox"), 403, "permission-denied")
    patched = await client.patch(
        f"/v1/social-accounts/{account['id']}", json={"status": "paused"}, headers=headers
    )
    assert_problem(patched, 403, "permission-denied")
    for method in ("DELETE", "POST"):
        path = f"/v1/social-accounts/{account['id']}" + ("/sync" if method == "POST" else "")
        assert_problem(
            await client.request(method, path, headers=headers), 403, "permission-denied"
        )
    assert (await client.get(f"/v1/social-accounts/{account['id']}", headers=owner)).json()[
        "status"
    ] == "connected"


async def test_the_routes_need_a_signed_in_person(client):
    _, owner, _, brand = await setup(client)
    account = await connect(client, owner, brand["id"])
    for method, path in (
        ("GET", f"/v1/brands/{brand['id']}/social-accounts"),
        ("POST", f"/v1/brands/{brand['id']}/social-accounts/connect?platform=sandbox"),
        ("GET", f"/v1/social-accounts/{account['id']}"),
        ("GET", f"/v1/social-accounts/{account['id']}/stats"),
        ("POST", f"/v1/social-accounts/{account['id']}/sync"),
        ("DELETE", f"/v1/social-accounts/{account['id']}"),
    ):
        assert_problem(await client.request(method, path), 401)


# ---------------------------------------------------------------------------------------------
# 6. Monthly client reports


def totals_from(rows: list[dict[str, Any]], account_ids: list[str], first: date) -> dict[str, Any]:
    """The month's totals worked out from the stored days of these accounts: followers from
    the last count before the month to the last count in it, flows summed over the month."""
    mine = [r for r in rows if str(r["account_id"]) in account_ids]
    month = [r for r in mine if r["day"] >= first]
    starts, ends = [], []
    for account_id in account_ids:
        known = sorted(
            (r["day"], r["followers"])
            for r in mine
            if str(r["account_id"]) == account_id and r["followers"] is not None
        )
        before = [f for d, f in known if d < first]
        during = [f for d, f in known if d >= first]
        if during:
            starts.append(before[-1] if before else during[0])
            ends.append(during[-1])
    flows = {}
    for metric in FLOWS:
        if metric == "follower_change":
            continue
        known = [r[metric] for r in month if r[metric] is not None]
        flows[metric] = sum(known) if known else None
    rate = round(flows["engagements"] / flows["impressions"], 4) if flows["impressions"] else None
    start, end = (sum(starts), sum(ends)) if starts else (None, None)
    return {
        "followers_start": start,
        "followers_end": end,
        "follower_change": None if start is None or end is None else end - start,
        **flows,
        "engagement_rate": rate,
    }


async def test_the_monthly_report_adds_up_the_clients_accounts(client, db, settings):
    agency, owner, acme, brand = await setup(client)
    second = await make_brand(client, owner, acme["id"], name="Zed Brand")
    other_client = await make_client(client, owner, name="Someone else")
    elsewhere = await make_brand(client, owner, other_client["id"])
    a1 = await connect(client, owner, brand["id"])
    a2 = await connect(client, owner, brand["id"])
    a3 = await connect(client, owner, second["id"])
    await connect(client, owner, elsewhere["id"])
    await run_worker(settings)

    first = last_month()
    last = month_after(first) - timedelta(days=1)
    month = first.strftime("%Y-%m")
    response = await client.get(f"/v1/clients/{acme['id']}/reports/{month}", headers=owner)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["client_id"] == acme["id"]
    assert report["client_name"] == acme["name"]
    assert report["month"] == month
    assert report["language"] == "fr"

    ids = [a1["id"], a2["id"], a3["id"]]
    opened = (first - timedelta(days=1)).replace(day=1)
    rows = await stat_rows(db, agency.tenant_id, ids, opened, last)
    assert len([r for r in rows if r["day"] >= first]) == 3 * last.day
    assert report["totals"] == totals_from(rows, ids, first)
    assert report["totals"]["impressions"] == sum(
        r["impressions"] for r in rows if r["day"] >= first
    )

    assert [b["id"] for b in report["brands"]] == [brand["id"], second["id"]]
    brand_report, second_report = report["brands"]
    assert brand_report["totals"] == totals_from(rows, [a1["id"], a2["id"]], first)
    assert second_report["totals"] == totals_from(rows, [a3["id"]], first)
    assert sorted(a["id"] for a in brand_report["accounts"]) == sorted([a1["id"], a2["id"]])
    for account in brand_report["accounts"] + second_report["accounts"]:
        assert account["totals"] == totals_from(rows, [account["id"]], first)
        assert [d["day"] for d in account["daily"]] == [
            (first + timedelta(days=n)).isoformat() for n in range(last.day)
        ]
        by_day = {r["day"].isoformat(): r for r in rows if str(r["account_id"]) == account["id"]}
        for d in account["daily"]:
            assert d["followers"] == by_day[d["day"]]["followers"]
            assert d["engagements"] == by_day[d["day"]]["engagements"]
            assert d["impressions"] == by_day[d["day"]]["impressions"]


async def test_a_month_without_figures_has_empty_totals(client):
    _, owner, acme, brand = await setup(client)
    await connect(client, owner, brand["id"])  # never synced
    response = await client.get(f"/v1/clients/{acme['id']}/reports/2025-01", headers=owner)
    assert response.status_code == 200, response.text
    totals = response.json()["totals"]
    assert all(value is None for value in totals.values()), totals


@pytest.mark.parametrize(
    ("locale", "title", "months"),
    [
        ("fr-CA", "Rapport mensuel", FRENCH_MONTHS),
        ("en", "Monthly report", list(calendar.month_name)[1:]),
    ],
)
async def test_the_pdf_report_is_in_the_clients_language(client, settings, locale, title, months):
    _agency, owner, _, _ = await setup(client)
    name = f"Boulangerie Éloïse {uuid.uuid4().hex[:4]}"
    customer = await make_client(client, owner, name=name, locale=locale)
    brand = await make_brand(client, owner, customer["id"])
    await connect(client, owner, brand["id"])
    await run_worker(settings)
    first = last_month()
    response = await client.get(
        f"/v1/clients/{customer['id']}/reports/{first:%Y-%m}/pdf", headers=owner
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert name in text
    assert title in text
    assert f"{months[first.month - 1]} {first.year}" in text
    json_report = (
        await client.get(f"/v1/clients/{customer['id']}/reports/{first:%Y-%m}", headers=owner)
    ).json()
    assert json_report["language"] == locale[:2]


async def test_bad_or_future_report_months_are_refused(client):
    _, owner, acme, _ = await setup(client)
    future = month_after(datetime.now(UTC).date().replace(day=1))
    cases = [
        (f"{future:%Y-%m}", "invalid-month"),
        ("2026-13", "validation-error"),
        ("2026-00", "validation-error"),
        ("2026-1", "validation-error"),
        ("26-10", "validation-error"),
        ("octobre", "validation-error"),
    ]
    for month, slug in cases:
        for suffix in ("", "/pdf"):
            path = f"/v1/clients/{acme['id']}/reports/{month}{suffix}"
            assert_problem(await client.get(path, headers=owner), 422, slug)
    unknown = f"/v1/clients/{uuid.uuid4()}/reports/2026-01"
    assert_problem(await client.get(unknown, headers=owner), 404, "client-not-found")


# ---------------------------------------------------------------------------------------------
# 7. Pause, resume, disconnect


async def test_pausing_and_resuming_honour_if_match(client):
    _, owner, _, brand = await setup(client)
    account = await connect(client, owner, brand["id"])
    path = f"/v1/social-accounts/{account['id']}"
    read = await client.get(path, headers=owner)
    etag = read.headers["ETag"]
    assert etag == f'"{account["version"]}"'

    for stale in (f'"{account["version"] + 1}"', f'"{account["version"] - 1}"', '"abc"'):
        response = await client.patch(
            path, json={"status": "paused"}, headers={**owner, "If-Match": stale}
        )
        assert_problem(response, 412, "precondition-failed")
    assert (await client.get(path, headers=owner)).json()["status"] == "connected"

    paused = await client.patch(
        path, json={"status": "paused"}, headers={**owner, "If-Match": etag}
    )
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["status"] == "paused"
    assert body["next_sync_at"] is None
    assert body["version"] == account["version"] + 1
    assert paused.headers["ETag"] == f'"{body["version"]}"'
    assert (await client.get(path, headers=owner)).json()["status"] == "paused"

    # The old ETag is stale now.
    stale = await client.patch(
        path, json={"status": "connected"}, headers={**owner, "If-Match": etag}
    )
    assert_problem(stale, 412, "precondition-failed")
    resumed = await client.patch(
        path, json={"status": "connected"}, headers={**owner, "If-Match": paused.headers["ETag"]}
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "connected"
    assert resumed.json()["next_sync_at"] is not None

    for bad in ({"status": "error"}, {"status": "needs_reauth"}, {}, {"status": "paused", "x": 1}):
        assert_problem(await client.patch(path, json=bad, headers=owner), 422, "validation-error")


async def test_disconnecting_deletes_the_account_and_its_history(client, db, settings):
    agency, owner, _, brand, [account, kept] = await synced_sandbox_brand(client, db, settings)
    everything = (date(2000, 1, 1), yesterday())
    assert await stat_rows(db, agency.tenant_id, [account["id"]], *everything)

    response = await client.delete(f"/v1/social-accounts/{account['id']}", headers=owner)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(
        await client.get(f"/v1/social-accounts/{account['id']}", headers=owner),
        404,
        "social-account-not-found",
    )
    assert_problem(
        await client.delete(f"/v1/social-accounts/{account['id']}", headers=owner),
        404,
        "social-account-not-found",
    )
    assert [a["id"] for a in await list_accounts(client, owner, brand["id"])] == [kept["id"]]
    assert await stat_rows(db, agency.tenant_id, [account["id"]], *everything) == []
    assert await stat_rows(db, agency.tenant_id, [kept["id"]], *everything)


# ---------------------------------------------------------------------------------------------
# 8. Another agency's objects


async def test_another_agencys_accounts_and_brands_are_not_found(client, db, settings):
    _, owner, _acme, _brand = await setup(client)
    b_agency, b_owner, b_client, b_brand = await setup(client)
    b_account = await connect(client, b_owner, b_brand["id"])
    await run_worker(settings)
    theirs = f"/v1/social-accounts/{b_account['id']}"
    month = last_month().strftime("%Y-%m")

    for method, path, body in (
        ("GET", theirs, None),
        ("PATCH", theirs, {"status": "paused"}),
        ("DELETE", theirs, None),
        ("POST", f"{theirs}/sync", None),
        ("GET", f"{theirs}/stats", None),
    ):
        response = await client.request(method, path, json=body, headers=owner)
        assert_problem(response, 404, "social-account-not-found")
    for method, path in (
        ("POST", f"/v1/brands/{b_brand['id']}/social-accounts/connect?platform=sandbox"),
        ("POST", f"/v1/brands/{b_brand['id']}/social-accounts/connect?platform=x"),
        ("GET", f"/v1/brands/{b_brand['id']}/social-accounts"),
        ("GET", f"/v1/brands/{b_brand['id']}/stats"),
        ("GET", f"/v1/brands/{b_brand['id']}/anomalies"),
    ):
        assert_problem(await client.request(method, path, headers=owner), 404, "brand-not-found")
    for suffix in ("", "/pdf"):
        path = f"/v1/clients/{b_client['id']}/reports/{month}{suffix}"
        assert_problem(await client.get(path, headers=owner), 404, "client-not-found")

    # Untouched on their side.
    still = await client.get(theirs, headers=b_owner)
    assert still.status_code == 200
    assert still.json()["status"] == "connected"
    assert await account_count(db, b_agency.tenant_id) == 1


async def test_a_state_from_another_agency_cannot_land_in_mine(client, db, platforms):
    """The state names the agency that started the connection: completing it stores the
    account there, whoever's browser comes back with it."""
    a_agency, a_owner, _, _a_brand = await setup(client)
    b_agency, b_owner, _, b_brand = await setup(client)
    returned = await returned_url(client, b_owner, b_brand["id"], "sandbox")
    response = await client.get(returned.path, params=dict(returned.params), headers=a_owner)
    assert response.status_code == 200, response.text
    assert response.json()["brand_id"] == b_brand["id"]
    assert await account_count(db, a_agency.tenant_id) == 0
    assert await account_count(db, b_agency.tenant_id) == 1


async def test_an_archived_brand_connects_nothing_and_the_document_says_so(client, db, app):
    agency, owner, _, brand = await setup(client)
    archived = await client.patch(
        f"/v1/brands/{brand['id']}",
        json={"status": "archived"},
        headers={**owner, "If-Match": f'"{brand["version"]}"'},
    )
    assert archived.status_code == 200, archived.text
    assert_problem(await start(client, owner, brand["id"], "x"), 409, "brand-archived")
    declared = app.openapi()["paths"]["/v1/brands/{brand_id}/social-accounts/connect"]["post"]
    assert "409" in declared["responses"]
    assert await account_count(db, agency.tenant_id) == 0


async def test_a_callback_code_that_no_platform_would_send_is_refused_first(client, db, platforms):
    # RFC 6749: code and state are visible ASCII; bounded, so that a valid callback URL stays
    # far below what the HTTP server reads.
    agency, owner, _, brand = await setup(client)
    returned = await returned_url(client, owner, brand["id"], "x")
    for code in ("caf\u00e9", "c" * 4097):
        response = await back(client, returned, code=code)
        assert response.status_code == 422, response.text
    assert await account_count(db, agency.tenant_id) == 0
    response = await back(client, returned)
    assert response.status_code == 200, response.text
