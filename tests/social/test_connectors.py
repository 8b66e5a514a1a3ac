"""The platform connectors against the platform simulator, with a real RateBudget on Redis;
and RateBudget itself (refill, cost, shared between processes, pauses, giving up)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from devtools.platforms import PlatformSimulator
from infra.settings import Settings
from social.connectors import PLATFORMS, build_connector
from social.connectors.base import json_body, token_key
from social.connectors.meta import usage_pause
from social.connectors.sandbox import external_id_for_code
from social.connectors.types import (
    METRICS,
    Connector,
    PlatformUnavailable,
    RateLimited,
    TokenInvalid,
    TokenSet,
)
from social.connectors.youtube import until_quota_reset
from social.ratebudget import RateBudget
from tests.support.connectors import account, budget_prefix, build, make_budget, redis_client

NETWORK = (
    "facebook_page",
    "instagram_business",
    "linkedin_organization",
    "x",
    "youtube",
    "tiktok",
)
ROTATING = {"x", "tiktok"}
"""Platforms whose refresh grant replaces the refresh token."""


def today() -> date:
    return datetime.now(UTC).date()


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    async with redis_client() as client:
        yield client


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    async with budget_prefix(redis, "budget") as name:
        yield name


@pytest.fixture
def budget(redis: Redis, prefix: str) -> RateBudget:
    return make_budget(redis, prefix)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def connect(http: httpx.AsyncClient, budget: RateBudget, settings: Settings) -> Any:
    """connect(platform, budget=None, **settings overrides) -> a connector."""

    def make(platform: str, *, budget: RateBudget = budget, **overrides: Any) -> Connector:
        return build(platform, http, budget, settings, **overrides)

    return make


def assert_clean(exc: BaseException, *secrets: str | None) -> None:
    for secret in secrets:
        if secret:
            assert secret not in str(exc)
            assert secret not in repr(exc)


async def paused_for(redis: Redis, prefix: str, key: str) -> float:
    """Seconds left on a budget key's pause (0 when not paused)."""
    ms = await redis.pttl(f"{prefix}:pause:{key}")
    return max(0, ms) / 1000


# ---------------------------------------------------------------- building


def test_every_platform_has_a_connector() -> None:
    assert {p.value for p in PLATFORMS} == {*NETWORK, "sandbox"}


async def test_unknown_or_unconfigured_platforms_are_key_errors(
    http: httpx.AsyncClient, budget: RateBudget, settings: Settings
) -> None:
    with pytest.raises(KeyError):
        build_connector("myspace", http=http, budget=budget, settings=settings)
    bare = settings.model_copy(update={"social_clients": {}})
    for platform in NETWORK:
        with pytest.raises(KeyError):
            build_connector(platform, http=http, budget=budget, settings=bare)
    sandbox = build_connector("sandbox", http=http, budget=budget, settings=bare)
    assert sandbox.authorize_url == "" and sandbox.token_url == ""


REAL_URLS = {
    "facebook_page": (
        "https://www.facebook.com/v21.0/dialog/oauth",
        "https://graph.facebook.com/v21.0/oauth/access_token",
    ),
    "instagram_business": (
        "https://www.facebook.com/v21.0/dialog/oauth",
        "https://graph.facebook.com/v21.0/oauth/access_token",
    ),
    "linkedin_organization": (
        "https://www.linkedin.com/oauth/v2/authorization",
        "https://www.linkedin.com/oauth/v2/accessToken",
    ),
    "x": ("https://x.com/i/oauth2/authorize", "https://api.x.com/2/oauth2/token"),
    "youtube": (
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
    ),
    "tiktok": (
        "https://www.tiktok.com/v2/auth/authorize/",
        "https://open.tiktokapis.com/v2/oauth/token/",
    ),
}


@pytest.mark.parametrize("platform", NETWORK)
def test_oauth_urls_are_the_real_ones_moved_onto_the_base_url(
    connect: Any, platforms: PlatformSimulator, platform: str
) -> None:
    authorize, token = REAL_URLS[platform]
    real = connect(platform, social_base_urls={})
    assert (real.authorize_url, real.token_url) == (authorize, token)
    moved = connect(platform)
    base = platforms.base_url(platform)
    assert moved.authorize_url == base + httpx.URL(authorize).path
    assert moved.token_url == base + httpx.URL(token).path
    assert moved.scopes and 1 <= moved.backfill_days <= 90


def test_tiktok_wants_its_client_key_and_google_an_offline_grant(connect: Any) -> None:
    tiktok = connect("tiktok")
    assert tiktok.extra_authorize_params == {"client_key": "cid-tiktok"}
    assert tiktok.scope_separator == ","
    youtube = connect("youtube")
    assert youtube.extra_authorize_params["access_type"] == "offline"
    assert youtube.extra_authorize_params["prompt"] == "consent"


# ---------------------------------------------------------------- profiles and figures


@pytest.mark.parametrize("platform", NETWORK)
async def test_profile_of_the_token_and_of_an_id(
    connect: Any, platforms: PlatformSimulator, platform: str
) -> None:
    external_id, token = account(
        platforms, platform, handle="maison_azur", name="Maison Azur", followers=12_345
    )
    connector = connect(platform)
    mine = await connector.profile(token, None)
    by_id = await connector.profile(token, external_id)
    assert mine == by_id
    assert mine.external_id == external_id
    assert (mine.handle, mine.display_name) == ("maison_azur", "Maison Azur")
    assert mine.followers == platforms.followers(platform, external_id, today()) == 12_345


@pytest.mark.parametrize("platform", NETWORK)
async def test_daily_metrics_of_a_90_day_backfill_are_the_platforms_figures(
    connect: Any, platforms: PlatformSimulator, platform: str
) -> None:
    external_id, token = account(platforms, platform, followers=25_000)
    connector = connect(platform)
    since, until = today() - timedelta(days=connector.backfill_days), today() - timedelta(days=1)
    result = await connector.daily_metrics(token, external_id, since, until)
    assert result.errors == {}
    expected = {
        since + timedelta(days=n): platforms.expected(platform, external_id, since + timedelta(n))
        for n in range((until - since).days + 1)
    }
    assert result.days == {day: figures for day, figures in expected.items() if figures}
    assert all(set(row) <= set(METRICS) for row in result.days.values())
    assert any(row.get("posts_published") for row in result.days.values())


@pytest.mark.parametrize("platform", NETWORK)
async def test_a_short_range_asks_only_for_its_days(
    connect: Any, platforms: PlatformSimulator, platform: str
) -> None:
    external_id, token = account(platforms, platform)
    day = today() - timedelta(days=3)
    result = await connect(platform).daily_metrics(token, external_id, day, day)
    assert result.days == {day: platforms.expected(platform, external_id, day)}


@pytest.mark.parametrize(
    ("platform", "platform_metric", "ours"),
    [
        ("facebook_page", "page_impressions", {"impressions"}),
        ("facebook_page", "page_daily_unfollows_unique", {"follower_change"}),
        ("instagram_business", "impressions", {"impressions"}),
        ("linkedin_organization", "uniqueImpressionsCount", {"reach"}),
        ("linkedin_organization", "likeCount", {"engagements"}),
        ("linkedin_organization", "organizationalEntityFollowerStatistics", {"follower_change"}),
        ("x", "impression_count", {"impressions"}),
        ("youtube", "views", {"video_views"}),
        ("youtube", "subscribersLost", {"follower_change"}),
        ("tiktok", "view_count", {"video_views"}),
    ],
)
async def test_a_deprecated_metric_fails_alone(
    connect: Any, platforms: PlatformSimulator, platform: str, platform_metric: str, ours: set[str]
) -> None:
    external_id, token = account(platforms, platform, followers=8_000)
    platforms.deprecate(platform, platform_metric)
    since, until = today() - timedelta(days=7), today() - timedelta(days=1)
    result = await connect(platform).daily_metrics(token, external_id, since, until)
    assert set(result.errors) == ours
    assert all(0 < len(reason) <= 200 for reason in result.errors.values())
    for n in range(7):
        day = since + timedelta(days=n)
        expected = platforms.expected(platform, external_id, day)
        assert result.days[day] == {k: v for k, v in expected.items() if k not in ours}


async def test_graph_says_why_a_metric_is_refused(
    connect: Any, platforms: PlatformSimulator
) -> None:
    external_id, token = account(platforms, "facebook_page")
    platforms.deprecate("facebook_page", "page_video_views")
    day = today() - timedelta(days=2)
    result = await connect("facebook_page").daily_metrics(token, external_id, day, day)
    assert "valid insights metric" in result.errors["video_views"]
    assert "video_views" not in result.days[day]


# ---------------------------------------------------------------- tokens


@pytest.mark.parametrize("platform", NETWORK)
@pytest.mark.parametrize("how", ["expired", "revoked", "unknown"])
async def test_a_dead_token_is_token_invalid(
    connect: Any, platforms: PlatformSimulator, platform: str, how: str
) -> None:
    external_id, token = account(platforms, platform)
    if how == "expired":
        platforms.expire(token.access_token)
    elif how == "revoked":
        platforms.revoke(platform, external_id)
    else:
        token = TokenSet(access_token="not-a-token-the-platform-knows")
    connector = connect(platform)
    with pytest.raises(TokenInvalid) as profile_error:
        await connector.profile(token, external_id)
    day = today() - timedelta(days=1)
    with pytest.raises(TokenInvalid) as metrics_error:
        await connector.daily_metrics(token, external_id, day - timedelta(days=5), day)
    for error in (profile_error.value, metrics_error.value):
        assert_clean(error, token.access_token, token.refresh_token)


@pytest.mark.parametrize("platform", sorted(set(NETWORK) - {"facebook_page", "instagram_business"}))
async def test_refresh_gives_a_working_token_and_never_loses_the_refresh_token(
    connect: Any, platforms: PlatformSimulator, platform: str
) -> None:
    external_id, token = account(platforms, platform)
    assert token.refresh_token is not None
    connector = connect(platform)
    platforms.expire(token.access_token)
    fresh = await connector.refresh(token.refresh_token)
    assert fresh.access_token != token.access_token
    assert fresh.expires_at is not None
    assert abs((fresh.expires_at - datetime.now(UTC)).total_seconds() - 3600) < 60
    assert (await connector.profile(fresh, None)).external_id == external_id
    assert fresh.refresh_token is not None
    if platform in ROTATING:
        assert fresh.refresh_token != token.refresh_token
        with pytest.raises(TokenInvalid) as reused:
            await connector.refresh(token.refresh_token)
        assert_clean(reused.value, token.refresh_token)
    else:
        # LinkedIn answers the same refresh token, Google none at all: the old one is kept.
        assert fresh.refresh_token == token.refresh_token
        again = await connector.refresh(fresh.refresh_token)
        assert (await connector.profile(again, None)).external_id == external_id


@pytest.mark.parametrize("platform", ["facebook_page", "instagram_business"])
async def test_meta_refreshes_by_exchanging_the_access_token(
    connect: Any, platforms: PlatformSimulator, platform: str
) -> None:
    external_id, token = account(platforms, platform)
    assert token.refresh_token is None  # Meta has no refresh tokens
    connector = connect(platform)
    assert connector.refresh_uses_access_token
    fresh = await connector.refresh(token.access_token)
    assert fresh.access_token != token.access_token
    assert fresh.refresh_token == fresh.access_token
    assert (await connector.profile(fresh, None)).external_id == external_id
    platforms.expire(fresh.access_token)
    with pytest.raises(TokenInvalid) as dead:
        await connector.refresh(fresh.access_token)
    assert_clean(dead.value, fresh.access_token)


@pytest.mark.parametrize("platform", sorted(set(NETWORK) - {"facebook_page", "instagram_business"}))
async def test_a_revoked_refresh_token_is_token_invalid(
    connect: Any, platforms: PlatformSimulator, platform: str
) -> None:
    external_id, token = account(platforms, platform)
    assert token.refresh_token is not None
    platforms.revoke(platform, external_id)
    with pytest.raises(TokenInvalid) as error:
        await connect(platform).refresh(token.refresh_token)
    assert_clean(error.value, token.refresh_token, "secret-" + platform)


# ---------------------------------------------------------------- outages


@pytest.mark.parametrize("platform", NETWORK)
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_platform_unavailable(
    connect: Any, platforms: PlatformSimulator, platform: str, status: int
) -> None:
    external_id, token = account(platforms, platform)
    connector = connect(platform)
    platforms.fail_next(platform, 1, status=status)
    with pytest.raises(PlatformUnavailable) as error:
        await connector.profile(token, external_id)
    assert_clean(error.value, token.access_token)
    platforms.fail_next(platform, 1, status=status)
    day = today() - timedelta(days=1)
    with pytest.raises(PlatformUnavailable):
        await connector.daily_metrics(token, external_id, day - timedelta(days=3), day)
    assert (await connector.profile(token, external_id)).external_id == external_id


@pytest.mark.parametrize("platform", NETWORK)
async def test_unreachable_or_slow_platforms_are_platform_unavailable(
    connect: Any, platforms: PlatformSimulator, platform: str
) -> None:
    external_id, token = account(platforms, platform)
    closed = connect(platform, social_base_urls={platform: "http://127.0.0.1:9"})
    with pytest.raises(PlatformUnavailable):
        await closed.profile(token, external_id)
    platforms.latency = 0.6
    slow = connect(platform, social_http_timeout_seconds=0.1)
    with pytest.raises(PlatformUnavailable) as error:
        await slow.profile(token, external_id)
    assert_clean(error.value, token.access_token)


# ---------------------------------------------------------------- rate limits


@pytest.mark.parametrize(
    ("platform", "paused_key"),
    [
        ("linkedin_organization", "linkedin_organization"),
        ("x", "x:token"),
        ("youtube", "youtube"),
        ("tiktok", "tiktok"),
    ],
)
async def test_429_with_retry_after_pauses_the_key_and_raises_rate_limited(
    connect: Any,
    platforms: PlatformSimulator,
    redis: Redis,
    prefix: str,
    budget: RateBudget,
    platform: str,
    paused_key: str,
) -> None:
    external_id, token = account(platforms, platform)
    key = token_key("x", token.access_token) if paused_key == "x:token" else paused_key
    connector = connect(platform)
    # Three, not one: a late request of an earlier test must not take the only 429.
    platforms.rate_limit(platform, 3, retry_after=30)
    with pytest.raises(RateLimited) as error:
        await connector.profile(token, external_id)
    assert error.value.retry_after == 30
    assert_clean(error.value, token.access_token)
    assert 25 < await paused_for(redis, prefix, key) <= 30
    # Every worker now waits: the budget refuses before any request leaves.
    asked = platforms.count(platform)
    with pytest.raises(RateLimited):
        await budget.acquire(key)
    with pytest.raises(RateLimited):
        await connector.profile(token, external_id)
    assert platforms.count(platform) == asked


async def test_x_pauses_only_the_users_token_on_429(
    connect: Any, platforms: PlatformSimulator, redis: Redis, prefix: str
) -> None:
    first_id, first = account(platforms, "x")
    second_id, second = account(platforms, "x")
    connector = connect("x")
    platforms.rate_limit("x", 1, retry_after=45, token=first.access_token)
    with pytest.raises(RateLimited):
        await connector.profile(first, first_id)
    assert await paused_for(redis, prefix, "x") == 0
    assert (await connector.profile(second, second_id)).external_id == second_id


async def test_x_rate_limit_remaining_zero_pauses_the_token_until_reset(
    connect: Any, platforms: PlatformSimulator, redis: Redis, prefix: str
) -> None:
    external_id, token = account(platforms, "x")
    connector = connect("x")
    # This token's window: a background call to the shared simulator cannot take its last call.
    platforms.set_remaining("x", 1, reset_in=120, token=token.access_token)
    # The last call of the window still answers; its headers say none is left.
    assert (await connector.profile(token, external_id)).external_id == external_id
    key = token_key("x", token.access_token)
    assert 110 < await paused_for(redis, prefix, key) <= 121
    asked = platforms.count("x")
    with pytest.raises(RateLimited) as error:
        await connector.profile(token, external_id)
    assert error.value.retry_after > 100
    assert platforms.count("x") == asked


@pytest.mark.parametrize("remaining", [None, 0])
async def test_x_429_without_retry_after_waits_for_the_window_reset(
    connect: Any, platforms: PlatformSimulator, redis: Redis, prefix: str, remaining: int | None
) -> None:
    external_id, token = account(platforms, "x")
    if remaining is None:
        # X's own 429: reset in 15 minutes.
        platforms.rate_limit("x", 3, retry_after=None, token=token.access_token)
        wait = 900
    else:
        # The window is already spent, for this token alone.
        platforms.set_remaining("x", remaining, reset_in=60, token=token.access_token)
        wait = 60
    with pytest.raises(RateLimited) as error:
        await connect("x").profile(token, external_id)
    assert error.value.retry_after == pytest.approx(wait, abs=2)
    key = token_key("x", token.access_token)
    assert await paused_for(redis, prefix, key) == pytest.approx(wait, abs=2)
    assert await paused_for(redis, prefix, "x") == 0


async def test_linkedin_profile_without_its_follower_count(
    connect: Any, platforms: PlatformSimulator
) -> None:
    external_id, token = account(platforms, "linkedin_organization", name="Acme")
    platforms.deprecate("linkedin_organization", "networkSizes")
    profile = await connect("linkedin_organization").profile(token, None)
    assert (profile.external_id, profile.display_name, profile.followers) == (
        external_id,
        "Acme",
        None,
    )


async def spent(redis: Redis, prefix: str, key: str, burst: float) -> float:
    """How much of a bucket is used (its refill over a test is negligible by construction)."""
    tokens = await redis.hget(f"{prefix}:{key}", "tokens")
    return burst - float(tokens) if tokens is not None else 0.0


async def test_x_counts_each_call_against_the_app_and_the_user(
    connect: Any, platforms: PlatformSimulator, redis: Redis, prefix: str
) -> None:
    budget = make_budget(redis, prefix, {"x": "100/1000000", "x:token": "50/1000000"})
    external_id, token = account(platforms, "x")
    connector = connect("x", budget=budget)
    await connector.profile(token, external_id)
    await connector.profile(token, None)
    assert await spent(redis, prefix, "x", 100) == pytest.approx(2, abs=0.01)
    assert await spent(redis, prefix, token_key("x", token.access_token), 50) == pytest.approx(
        2, abs=0.01
    )


@pytest.mark.parametrize(
    ("platform", "percent", "regain", "app_pause", "object_pause"),
    [
        ("facebook_page", 50, 0, 0.0, 0.0),
        ("facebook_page", 85, 0, usage_pause(85), usage_pause(85)),
        ("facebook_page", 99, 0, usage_pause(99), usage_pause(99)),
        ("instagram_business", 92, 0, usage_pause(92), usage_pause(92)),
        ("instagram_business", 60, 4, 0.0, 240.0),
    ],
)
async def test_meta_usage_near_the_ceiling_pauses_the_app_or_the_object(
    connect: Any,
    platforms: PlatformSimulator,
    redis: Redis,
    prefix: str,
    platform: str,
    percent: int,
    regain: int,
    app_pause: float,
    object_pause: float,
) -> None:
    external_id, token = account(platforms, platform)
    platforms.usage(platform, percent, regain_minutes=regain)
    profile = await connect(platform).profile(token, external_id)
    assert profile.external_id == external_id  # the answer itself is fine
    assert await paused_for(redis, prefix, platform) == pytest.approx(app_pause, abs=1.5)
    assert await paused_for(redis, prefix, f"{platform}:{external_id}") == pytest.approx(
        object_pause, abs=1.5
    )


def test_meta_pauses_longer_the_closer_to_the_ceiling() -> None:
    pauses = [usage_pause(p) for p in (0, 79, 80, 90, 99, 100, 120)]
    assert pauses[:2] == [0, 0]
    assert pauses[2:] == sorted(pauses[2:]) and pauses[2] > 0 and pauses[-1] >= 600


@pytest.mark.parametrize("platform", ["facebook_page", "instagram_business"])
async def test_meta_too_many_calls_pauses_the_object_for_the_regain_time(
    connect: Any, platforms: PlatformSimulator, redis: Redis, prefix: str, platform: str
) -> None:
    external_id, token = account(platforms, platform)
    other_id, other = account(platforms, platform)
    connector = connect(platform)
    platforms.rate_limit(platform, 1, retry_after=120)
    with pytest.raises(RateLimited) as error:
        await connector.profile(token, external_id)
    assert error.value.retry_after == 120
    assert_clean(error.value, token.access_token)
    assert 110 < await paused_for(redis, prefix, f"{platform}:{external_id}") <= 120
    assert await paused_for(redis, prefix, platform) == 0
    with pytest.raises(RateLimited):
        await connector.profile(token, external_id)
    assert (await connector.profile(other, other_id)).external_id == other_id


async def test_youtube_spends_quota_units_per_call(
    connect: Any, platforms: PlatformSimulator, redis: Redis, prefix: str
) -> None:
    rates = {"youtube": "1000/100000000"}
    connector = connect("youtube", budget=make_budget(redis, prefix, rates))
    external_id, token = account(platforms, "youtube", followers=50_000)
    await connector.profile(token, None)
    assert platforms.quota_units_used == 1
    assert await spent(redis, prefix, "youtube", 1000) == pytest.approx(1, abs=0.01)

    since, until = today() - timedelta(days=90), today() - timedelta(days=1)
    result = await connector.daily_metrics(token, external_id, since, until)
    assert result.errors == {}
    pages = platforms.count("youtube", "/youtube/v3/playlistItems")
    assert pages >= 1
    assert platforms.quota_units_used == 1 + pages
    assert await spent(redis, prefix, "youtube", 1000) == pytest.approx(1 + pages, abs=0.01)
    # Three Analytics reports, on the Analytics API's own quota.
    assert platforms.count("youtube", "/v2/reports") == 3
    assert await spent(redis, prefix, "youtube:analytics", 1000) == pytest.approx(3, abs=0.01)


async def test_youtube_quota_exceeded_waits_for_midnight_pacific(
    connect: Any, platforms: PlatformSimulator, redis: Redis, prefix: str
) -> None:
    external_id, token = account(platforms, "youtube")
    platforms.set_remaining("youtube", 0, reset_in=3600)
    with pytest.raises(RateLimited) as error:
        await connect("youtube").profile(token, external_id)
    assert error.value.retry_after == pytest.approx(until_quota_reset(), abs=5)
    assert await paused_for(redis, prefix, "youtube") == pytest.approx(until_quota_reset(), abs=5)
    assert await paused_for(redis, prefix, "youtube:analytics") == 0


def test_youtube_quota_resets_at_midnight_pacific() -> None:
    from zoneinfo import ZoneInfo

    pacific = ZoneInfo("America/Los_Angeles")
    assert until_quota_reset(datetime(2026, 3, 3, 23, 0, tzinfo=pacific)) == 3600
    assert until_quota_reset(datetime(2026, 3, 4, 7, 30, tzinfo=UTC)) == 30 * 60


# ---------------------------------------------------------------- secrets stay out


async def test_no_token_or_secret_in_any_message(
    platforms: PlatformSimulator, budget: RateBudget, settings: Settings
) -> None:
    """Even when a platform echoes the token back in its error text."""
    token = TokenSet(access_token="EAAGsecret-token-value-123456", refresh_token="rt-secret-987654")

    def echo(request: httpx.Request) -> httpx.Response:
        said = f"bad request for {request.headers.get('authorization')} secret-facebook_page"
        if request.url.path.endswith("/insights"):
            return httpx.Response(400, json={"error": {"message": said, "code": 100}})
        if request.url.path.endswith("/oauth/access_token"):
            body = request.content.decode()
            return httpx.Response(400, json={"error": {"message": body, "code": 100}})
        return httpx.Response(401, json={"error": {"message": said, "code": 0}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as http:
        connector = build_connector("facebook_page", http=http, budget=budget, settings=settings)
        day = today() - timedelta(days=1)
        with pytest.raises(TokenInvalid) as dead:
            await connector.daily_metrics(token, "123", day, day)
        assert_clean(dead.value, token.access_token, "secret-facebook_page")
        with pytest.raises(TokenInvalid) as refused:
            await connector.refresh(token.access_token)
        assert_clean(refused.value, token.access_token, "secret-facebook_page")
        with pytest.raises(TokenInvalid) as profile:
            await connector.profile(token, "123")
        assert_clean(profile.value, token.access_token)

    def only_insights_fail(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/insights"):
            said = f"no such metric for {request.headers.get('authorization')}"
            return httpx.Response(400, json={"error": {"message": said, "code": 100}})
        return httpx.Response(200, json={"data": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(only_insights_fail)) as http:
        connector = build_connector("facebook_page", http=http, budget=budget, settings=settings)
        result = await connector.daily_metrics(token, "123", day, day)
        assert set(result.errors) == set(METRICS) - {"posts_published"}
        for reason in result.errors.values():
            assert token.access_token not in reason and "[redacted]" in reason


# ---------------------------------------------------------------- sandbox


class _CountingBudget:
    def __init__(self) -> None:
        self.calls = 0

    async def acquire(self, key: str, *, cost: float = 1.0) -> None:
        self.calls += 1

    async def pause(self, key: str, seconds: float) -> None:
        self.calls += 1


async def test_sandbox_is_deterministic_plausible_and_offline(
    platforms: PlatformSimulator, settings: Settings
) -> None:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"the sandbox called {request.url}")

    budget = _CountingBudget()
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as http:
        bare = settings.model_copy(update={"social_clients": {}, "social_base_urls": {}})
        sandbox = build_connector("sandbox", http=http, budget=budget, settings=bare)
        tokens = await sandbox.exchange("sandbox-abc123")  # type: ignore[attr-defined]
        external_id = external_id_for_code("sandbox-abc123")
        assert external_id.startswith("sandbox-") and len(external_id) == 18
        assert tokens.access_token == f"sandbox-at-{external_id}"
        profile = await sandbox.profile(tokens, None)
        assert profile.external_id == external_id
        assert profile.handle and profile.display_name and profile.followers
        # Asked about a known account it names nobody: the account keeps the name it was given.
        by_id = await sandbox.profile(tokens, external_id)
        assert (by_id.external_id, by_id.followers) == (external_id, profile.followers)
        assert by_id.handle is None and by_id.display_name is None

        since, until = today() - timedelta(days=89), today()
        first = await sandbox.daily_metrics(tokens, external_id, since, until)
        again = await sandbox.daily_metrics(tokens, external_id, since, until)
        assert first.days == again.days and first.errors == {}
        assert len(first.days) == 90
        other = await sandbox.daily_metrics(tokens, "sandbox-0123456789", since, until)
        assert other.days != first.days

        refreshed = await sandbox.refresh(tokens.refresh_token or "")
        assert refreshed.access_token == tokens.access_token
        assert refreshed.refresh_token == tokens.refresh_token
        with pytest.raises(TokenInvalid):
            await sandbox.exchange("not-from-the-sandbox")  # type: ignore[attr-defined]

    rows = [first.days[d] for d in sorted(first.days)]
    assert all(set(row) == set(METRICS) for row in rows)
    for previous, row in itertools.pairwise(rows):
        assert row["follower_change"] == row["followers"] - previous["followers"]
    for row in rows:
        assert 0 < row["reach"] < row["impressions"]
        assert 0 < row["engagements"] < row["impressions"] * 0.1
        assert 0 <= row["video_views"] < row["impressions"]
        assert 0 <= row["posts_published"] <= 3
    assert rows[-1]["followers"] >= rows[0]["followers"]  # slow growth over three months
    weekdays = [first.days[d]["impressions"] for d in first.days if d.weekday() < 5]
    weekends = [first.days[d]["impressions"] for d in first.days if d.weekday() >= 5]
    assert sum(weekdays) / len(weekdays) > sum(weekends) / len(weekends)
    assert budget.calls == 0 and platforms.count() == 0


# ---------------------------------------------------------------- RateBudget


async def test_budget_refills_at_its_rate(redis: Redis, prefix: str) -> None:
    def waits(suffix: str) -> float:  # the operator's histogram (infra/metrics.py)
        name = f"passerelle_rate_budget_wait_seconds_{suffix}"
        return REGISTRY.get_sample_value(name, {"platform": "p"}) or 0.0

    count, total = waits("count"), waits("sum")
    # One a second: a burst slowed down by a busy machine (up to 0.5 s) still leaves the next
    # two to wait (at 10 a second, a slow burst had already earned the next one back).
    budget = make_budget(redis, prefix, {"p": "10/10"}, max_wait=2)
    started = time.monotonic()
    for _ in range(10):
        await budget.acquire("p")
    assert time.monotonic() - started < 0.5  # the burst is there at once
    assert waits("count") == count  # no wait, nothing observed
    await budget.acquire("p")
    await budget.acquire("p")
    assert time.monotonic() - started >= 1.9  # then one a second
    assert waits("count") == count + 2
    assert waits("sum") - total >= 1.4


async def test_budget_takes_the_cost(redis: Redis, prefix: str) -> None:
    budget = make_budget(redis, prefix, {"youtube": "100/1000000"}, max_wait=0.2)
    await budget.acquire("youtube", cost=60)
    await budget.acquire("youtube", cost=40)
    with pytest.raises(RateLimited) as error:
        await budget.acquire("youtube", cost=1)
    assert error.value.retry_after > 1000


async def test_budget_is_shared_between_processes(redis: Redis, prefix: str) -> None:
    other = Redis.from_url(os.environ["REDIS_URL"])
    try:
        one = make_budget(redis, prefix, {"x": "3/1000000"}, max_wait=0.2)
        two = make_budget(other, prefix, {"x": "3/1000000"}, max_wait=0.2)
        await one.acquire("x")
        await two.acquire("x")
        await one.acquire("x")
        with pytest.raises(RateLimited):
            await two.acquire("x")
        await one.pause("tiktok", 30)
        two_with_tiktok = make_budget(other, prefix, {"tiktok": "100/1"}, max_wait=0.2)
        with pytest.raises(RateLimited):
            await two_with_tiktok.acquire("tiktok")
    finally:
        await other.aclose()


async def test_a_fast_budget_is_taken_a_few_tokens_at_a_time_and_a_pause_voids_them(
    redis: Redis, prefix: str
) -> None:
    budget = make_budget(redis, prefix, {"p": "1000/1"}, max_wait=0.2)
    for _ in range(8):
        await budget.acquire("p")
    # One take of 8 from the shared bucket served the eight requests.
    assert float(await redis.hget(f"{prefix}:p", "tokens")) == 992
    await budget.acquire("p")
    await budget.pause("p", 30)
    with pytest.raises(RateLimited):  # the 7 taken ahead are not spent during the pause
        await budget.acquire("p")


async def test_a_token_key_has_its_own_bucket_at_the_token_rate(redis: Redis, prefix: str) -> None:
    budget = make_budget(redis, prefix, {"x": "100/1", "x:token": "1/1000000"}, max_wait=0.2)
    await budget.acquire("x:token:aaaa")
    with pytest.raises(RateLimited):
        await budget.acquire("x:token:aaaa")
    await budget.acquire("x:token:bbbb")
    await budget.acquire("x")


async def test_a_pause_is_never_shortened(redis: Redis, prefix: str) -> None:
    budget = make_budget(redis, prefix, {"linkedin_organization": "100/60"})
    await budget.pause("linkedin_organization", 30)
    await budget.pause("linkedin_organization", 1)
    assert await paused_for(redis, prefix, "linkedin_organization") > 29
    await budget.pause("linkedin_organization", 90)
    assert await paused_for(redis, prefix, "linkedin_organization") > 89


async def test_a_wait_beyond_the_maximum_is_rate_limited(redis: Redis, prefix: str) -> None:
    budget = make_budget(redis, prefix, {"tiktok": "100/1"}, max_wait=0.5)
    await budget.pause("tiktok", 10)
    started = time.monotonic()
    with pytest.raises(RateLimited) as error:
        await budget.acquire("tiktok")
    assert time.monotonic() - started < 0.3  # deferred at once, not after a wasted wait
    assert 9 < error.value.retry_after <= 10
    await budget.pause("x", 0.3)
    patient = make_budget(redis, prefix, {"x": "100/1"}, max_wait=1)
    await patient.acquire("x")  # a short pause is simply waited out


async def test_concurrent_acquires_never_overspend(redis: Redis, prefix: str) -> None:
    budget = make_budget(redis, prefix, {"p": "20/1000000"}, max_wait=0.1)
    results = await asyncio.gather(
        *(budget.acquire("p") for _ in range(50)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 20
    assert all(isinstance(r, RateLimited) for r in results if r is not None)


@pytest.mark.parametrize(
    ("body", "content_type", "read"),
    [
        (
            b'{"id": "17841400008460056", "followers": 1234}',
            "application/json",
            {"id": "17841400008460056", "followers": 1234},
        ),
        (b"[]", "application/json", []),
        (b"", "application/json", None),
        (b"<html>Bad gateway</html>", "text/html", None),
        # JSON is UTF-8 (RFC 8259), whatever the header says.
        (
            '{"name": "Café"}'.encode("latin-1"),
            "application/json; charset=iso-8859-1",
            None,
        ),
        # Not JSON to the letter, but what the standard library reads.
        (b'{"ratio": Infinity}', "application/json", {"ratio": float("inf")}),
        ('{"name": "Café"}'.encode("utf-16"), "application/json", {"name": "Café"}),
        # X's ids are 63-bit: read to the unit.
        (b'{"id": 1859283746501928374}', "application/json", {"id": 1859283746501928374}),
    ],
)
def test_a_platforms_answer_is_read_as_json_or_none(
    body: bytes, content_type: str, read: object
) -> None:
    response = httpx.Response(200, content=body, headers={"content-type": content_type})
    assert json_body(response) == read
