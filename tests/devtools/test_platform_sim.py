"""The platform simulator itself: the OAuth dance as authlib does it, its controls, its
figures, its concurrency, and its command line."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from devtools.platforms import PlatformSimulator
from devtools.smtp import free_port
from infra.settings import Settings
from social.connectors import build_connector
from social.connectors.types import TokenInvalid, TokenSet
from tests.support.worker import stop_process

NETWORK = (
    "facebook_page",
    "instagram_business",
    "linkedin_organization",
    "x",
    "youtube",
    "tiktok",
)
REDIRECT = "https://app.passerelle.test/v1/oauth/callback/x"


class _NoBudget:
    async def acquire(self, key: str, *, cost: float = 1.0) -> None:
        return None

    async def pause(self, key: str, seconds: float) -> None:
        return None


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def connector(platform: str, http: httpx.AsyncClient, settings: Settings) -> Any:
    return build_connector(platform, http=http, budget=_NoBudget(), settings=settings)


def oauth_client(platform: str, settings: Settings, scope: str, redirect: str = REDIRECT) -> Any:
    app = settings.social_clients[platform]
    return AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret.get_secret_value(),
        scope=scope,
        redirect_uri=redirect,
        code_challenge_method="S256",
    )


async def authorize(
    http: httpx.AsyncClient, url: str, state: str = "the-state"
) -> dict[str, list[str]]:
    response = await http.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    answer = parse_qs(urlsplit(location).query)
    assert answer["state"] == [state]
    return answer


# ---------------------------------------------------------------- OAuth


@pytest.mark.parametrize("platform", NETWORK)
async def test_authorization_code_with_pkce_through_authlib(
    platforms: PlatformSimulator, http: httpx.AsyncClient, settings: Settings, platform: str
) -> None:
    external_id = platforms.authorize_as(platform, None) or platforms.add_account(platform)
    platforms.authorize_as(platform, external_id, handle="atelier_sable", name="Atelier Sable")
    conn = connector(platform, http, settings)
    client = oauth_client(platform, settings, " ".join(conn.scopes))
    verifier = "v" * 64
    url, _ = client.create_authorization_url(
        conn.authorize_url, state="the-state", code_verifier=verifier, **conn.extra_authorize_params
    )
    code = (await authorize(http, url))["code"][0]
    token = await client.fetch_token(
        conn.token_url, code=code, code_verifier=verifier, **conn.extra_token_params
    )
    assert token["access_token"] and token["expires_at"] > time.time() + 3000
    if platform in {"facebook_page", "instagram_business"}:
        assert "refresh_token" not in token
    else:
        assert token["refresh_token"]
    profile = await conn.profile(TokenSet(access_token=token["access_token"]), None)
    assert (profile.external_id, profile.handle) == (external_id, "atelier_sable")
    with pytest.raises(OAuthError):  # a code works once
        await client.fetch_token(conn.token_url, code=code, code_verifier=verifier)
    await client.aclose()


@pytest.mark.parametrize(
    "tamper",
    ["verifier", "redirect_uri", "secret", "unknown code"],
)
async def test_token_endpoint_refuses_a_tampered_exchange(
    platforms: PlatformSimulator, http: httpx.AsyncClient, settings: Settings, tamper: str
) -> None:
    conn = connector("x", http, settings)
    client = oauth_client("x", settings, "tweet.read")
    url, _ = client.create_authorization_url(
        conn.authorize_url, state="the-state", code_verifier="a" * 64
    )
    code = (await authorize(http, url))["code"][0]
    verifier = "b" * 64 if tamper == "verifier" else "a" * 64
    if tamper == "redirect_uri":
        client = oauth_client("x", settings, "tweet.read", redirect=REDIRECT + "/elsewhere")
    if tamper == "secret":
        client = AsyncOAuth2Client(client_id="cid-x", client_secret="wrong", redirect_uri=REDIRECT)
    if tamper == "unknown code":
        code = "made-up"
    with pytest.raises(OAuthError) as error:
        await client.fetch_token(conn.token_url, code=code, code_verifier=verifier)
    assert error.value.error == ("invalid_client" if tamper == "secret" else "invalid_grant")
    await client.aclose()


async def test_authorize_refuses_unknown_clients_and_missing_pkce(
    platforms: PlatformSimulator, http: httpx.AsyncClient
) -> None:
    base = platforms.base_url("x") + "/i/oauth2/authorize"
    query = {
        "response_type": "code",
        "client_id": "cid-x",
        "redirect_uri": REDIRECT,
        "state": "s",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }
    assert (await http.get(base, params=query)).status_code == 302
    assert (await http.get(base, params={**query, "client_id": "nobody"})).status_code == 400
    assert (
        await http.get(base, params={**query, "code_challenge_method": "plain"})
    ).status_code == 400
    no_pkce = {k: v for k, v in query.items() if k != "code_challenge"}
    assert (await http.get(base, params=no_pkce)).status_code == 400


async def test_a_person_who_says_no_comes_back_with_access_denied(
    platforms: PlatformSimulator, http: httpx.AsyncClient, settings: Settings
) -> None:
    conn = connector("linkedin_organization", http, settings)
    client = oauth_client("linkedin_organization", settings, "r_organization_admin")
    url, _ = client.create_authorization_url(conn.authorize_url, state="st", code_verifier="c" * 64)
    platforms.deny_next("linkedin_organization")
    answer = await authorize(http, url, state="st")
    assert answer["error"] == ["access_denied"] and "code" not in answer
    assert "code" in await authorize(http, url, state="st")


async def test_authorize_as_sticks_until_cleared(
    platforms: PlatformSimulator, http: httpx.AsyncClient, settings: Settings
) -> None:
    conn = connector("tiktok", http, settings)
    client = oauth_client("tiktok", settings, "user.info.basic,video.list")

    async def connect_once() -> str:
        verifier = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
        url, _ = client.create_authorization_url(
            conn.authorize_url, state="s", code_verifier=verifier, **conn.extra_authorize_params
        )
        code = (await authorize(http, url, state="s"))["code"][0]
        token = await client.fetch_token(conn.token_url, code=code, code_verifier=verifier)
        assert token["open_id"]
        return str(token["open_id"])

    chosen = platforms.authorize_as("tiktok", "-000chosen", followers=42)
    assert await connect_once() == chosen == await connect_once()
    platforms.authorize_as("tiktok", None)
    first, second = await connect_once(), await connect_once()
    assert len({chosen, first, second}) == 3
    assert platforms.followers("tiktok", chosen, datetime.now(UTC).date()) == 42
    await client.aclose()


async def test_access_tokens_live_token_ttl_seconds(
    platforms: PlatformSimulator, http: httpx.AsyncClient, settings: Settings
) -> None:
    platforms.token_ttl = 2
    conn = connector("youtube", http, settings)
    external_id = platforms.add_account("youtube")
    tokens = TokenSet(**platforms.issue_token("youtube", external_id, expires_in=3600))
    assert tokens.refresh_token
    fresh = await conn.refresh(tokens.refresh_token)
    assert fresh.expires_at is not None
    assert (fresh.expires_at - datetime.now(UTC)).total_seconds() <= 2.5
    assert (await conn.profile(fresh, None)).external_id == external_id
    await asyncio.sleep(2.2)
    with pytest.raises(TokenInvalid):
        await conn.profile(fresh, None)


# ---------------------------------------------------------------- controls and figures


async def test_requests_are_logged_and_counted(
    platforms: PlatformSimulator, http: httpx.AsyncClient, settings: Settings
) -> None:
    external_id = platforms.add_account("x")
    tokens = TokenSet(**platforms.issue_token("x", external_id))
    conn = connector("x", http, settings)
    day = datetime.now(UTC).date() - timedelta(days=1)
    await conn.profile(tokens, None)
    await conn.daily_metrics(tokens, external_id, day, day)
    assert platforms.count("x") == 2 == platforms.count()
    assert platforms.count("x", "/tweets") == 1
    assert platforms.count("youtube") == 0
    first = platforms.requests[0]
    assert (first.method, first.path, first.platform) == ("GET", "/2/users/me", "x")
    assert first.query == {"user.fields": "public_metrics"}
    assert time.time() - first.time < 10


async def test_every_answer_carries_usage_headers(
    platforms: PlatformSimulator, http: httpx.AsyncClient
) -> None:
    page = platforms.add_account("facebook_page")
    token = platforms.issue_token("facebook_page", page)["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    answer = await http.get(f"{platforms.base_url('facebook_page')}/v21.0/{page}", headers=auth)
    assert answer.status_code == 200
    assert set(answer.json()) == {"id", "name"}
    assert '"call_count"' in answer.headers["x-app-usage"]
    assert page in answer.headers["x-business-use-case-usage"]
    user = platforms.add_account("x")
    token = platforms.issue_token("x", user)["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    first = await http.get(f"{platforms.base_url('x')}/2/users/me", headers=auth)
    second = await http.get(f"{platforms.base_url('x')}/2/users/me", headers=auth)
    assert first.headers["x-rate-limit-limit"] == "75"
    assert int(first.headers["x-rate-limit-remaining"]) == 74
    assert int(second.headers["x-rate-limit-remaining"]) == 73
    assert int(first.headers["x-rate-limit-reset"]) > time.time()
    unauthorized = await http.get(f"{platforms.base_url('x')}/2/users/me")
    assert unauthorized.status_code == 401


async def test_reset_forgets_everything_but_the_clients(
    platforms: PlatformSimulator, http: httpx.AsyncClient, settings: Settings
) -> None:
    external_id = platforms.add_account("x")
    tokens = TokenSet(**platforms.issue_token("x", external_id))
    platforms.fail_next("x", 5)
    platforms.latency = 0.3
    platforms.reset()
    assert platforms.count() == 0 and platforms.latency == 0
    with pytest.raises(KeyError):
        platforms.account("x", external_id)
    conn = connector("x", http, settings)
    with pytest.raises(TokenInvalid):
        await conn.profile(tokens, None)
    again = platforms.add_account("x")
    fresh = TokenSet(**platforms.issue_token("x", again))
    assert (await conn.profile(fresh, None)).external_id == again  # no failure left over


def test_figures_are_deterministic_and_plausible(platforms: PlatformSimulator) -> None:
    today = datetime.now(UTC).date()
    external_id = platforms.add_account("facebook_page", followers=10_000)
    days = [today - timedelta(days=n) for n in range(1, 60)]
    first = [platforms.expected("facebook_page", external_id, d) for d in days]
    assert first == [platforms.expected("facebook_page", external_id, d) for d in days]
    assert len({f["impressions"] for f in first}) > 30
    for day, figures in zip(days, first, strict=True):
        assert figures["reach"] < figures["impressions"]
        assert figures["engagements"] < figures["impressions"] * 0.07
        before = platforms.followers("facebook_page", external_id, day - timedelta(days=1))
        assert figures["follower_change"] == figures["followers"] - before
    weekday = [f["impressions"] for d, f in zip(days, first, strict=True) if d.weekday() < 5]
    weekend = [f["impressions"] for d, f in zip(days, first, strict=True) if d.weekday() >= 5]
    assert sum(weekday) / len(weekday) > sum(weekend) / len(weekend)
    assert platforms.expected("facebook_page", external_id, today + timedelta(days=1)) == {}
    assert platforms.followers("facebook_page", external_id, today) == 10_000
    assert platforms.followers("facebook_page", external_id, today - timedelta(days=59)) < 10_000


async def test_latency_is_waited_concurrently(
    platforms: PlatformSimulator, http: httpx.AsyncClient
) -> None:
    platforms.latency = 0.5
    user = platforms.add_account("tiktok")
    token = platforms.issue_token("tiktok", user)["access_token"]
    url = f"{platforms.base_url('tiktok')}/v2/user/info/?fields=open_id"
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(client.get(url, headers={"Authorization": f"Bearer {token}"}) for _ in range(100))
        )
        elapsed = time.monotonic() - started
    assert all(a.status_code == 200 for a in answers)
    # One after the other: 50 s. Waited together, the rest is the client's own overhead.
    assert 0.5 <= elapsed < 8


# ---------------------------------------------------------------- seed mode and command line


async def test_seed_mode_accepts_well_formed_tokens(http: httpx.AsyncClient) -> None:
    sim = PlatformSimulator(accounts_from_seed=True).start()
    try:
        auth = {"Authorization": "Bearer sim-x-1234567890"}
        me = await http.get(f"{sim.base_url('x')}/2/users/me", headers=auth)
        assert me.status_code == 200 and me.json()["data"]["id"] == "1234567890"
        again = await http.get(f"{sim.base_url('x')}/2/users/1234567890", headers=auth)
        assert again.json() == me.json()
        bad = await http.get(
            f"{sim.base_url('x')}/2/users/me", headers={"Authorization": "Bearer x"}
        )
        assert bad.status_code == 401
        refreshed = await http.post(
            f"{sim.base_url('youtube')}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "sim-youtube-UCabc",
                "client_id": "any",
                "client_secret": "any",
            },
        )
        assert refreshed.json()["access_token"] == "sim-youtube-UCabc"
        day = datetime.now(UTC).date() - timedelta(days=1)
        assert sim.expected("x", "1234567890", day) == sim.expected("x", "1234567890", day)
    finally:
        sim.stop()


def test_command_line_serves_the_simulator() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.platforms",
            "--port",
            str(port),
            "--latency",
            "0.01",
            "--accounts-from-seed",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SOCIAL_CLIENTS": ""},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/_sim/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, process.stderr.read1() if process.stderr else b""
            time.sleep(0.1)
        auth = {"Authorization": "Bearer sim-tiktok-open123"}
        answer = httpx.get(
            f"{base}/tiktok/v2/user/info/?fields=open_id,follower_count", headers=auth
        )
        assert answer.json()["data"]["user"]["open_id"] == "open123"
        stats = httpx.get(f"{base}/_sim/stats").json()
        assert stats["requests"] == {"tiktok": 1} and stats["accounts"] == 1
        assert httpx.post(f"{base}/_sim/config", json={"latency": 0}).json()["latency"] == 0
    finally:
        stop_process(process)


def test_s256_is_the_rfc_7636_example() -> None:
    from devtools.platforms.core import s256

    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).decode().rstrip("=") == s256(verifier)
