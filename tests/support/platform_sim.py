"""A loopback simulator of the social platforms our connectors call, for tests and benchmarks.

``PlatformSimulator(clients={platform: (client_id, client_secret)}).start()`` serves every
platform from one asynchronous server (Starlette under uvicorn, in a daemon thread with its own
event loop, so hundreds of slow requests wait concurrently). Each platform is mounted under its
own prefix followed by the platform's real path: ``{sim.base_url("x")}/2/users/me`` is X's
``https://api.x.com/2/users/me``, ``{sim.base_url("x")}/i/oauth2/authorize`` is
``https://x.com/i/oauth2/authorize``. Settings' ``SOCIAL_BASE_URLS`` point there.

What it speaks, per platform (real paths, real response shapes, real error bodies):

* facebook_page / instagram_business: Graph API ``/v21.0/...`` (any ``vNN.N``): ``me/accounts``,
  ``{id}?fields=``, ``{id}/insights?metric=&period=day&since=&until=`` (one data entry per
  metric, ``end_time`` = the end of the day at midnight Pacific), ``{page}/published_posts``,
  ``{ig-user}/media`` (cursor paging), ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` on
  every answer. A bad token is 400 code 190; a bad metric 400 code 100; too many calls 400
  code 80001 (pages) / 80002 (Instagram) with ``estimated_time_to_regain_access``. Page
  insights span at most 93 days a request, Instagram's 30; Instagram's ``follower_count``
  covers the last 30 days only.
* linkedin_organization: ``/rest/organizationAcls``, ``/rest/organizations/{id}``,
  ``/rest/networkSizes/{urn}``, ``/rest/organizationalEntityFollowerStatistics`` and
  ``/rest/organizationalEntityShareStatistics`` (Rest.li ``timeIntervals=(timeRange:(start:,
  end:),timeGranularityType:DAY)``), ``/rest/posts?q=author``; requires ``LinkedIn-Version``.
* x: ``/2/users/me``, ``/2/users/{id}``, ``/2/users/{id}/tweets`` (``start_time``/``end_time``,
  ``next_token`` paging); ``x-rate-limit-limit/remaining/reset`` per token and endpoint over
  15-minute windows (75 for users/me, 900 for the others), 429 once spent.
* youtube: Data API ``/youtube/v3/channels`` and ``/youtube/v3/playlistItems`` (1 quota unit
  each, counted in ``quota_units_used``; ``set_remaining("youtube", n)`` makes the quota run
  out: 403 ``quotaExceeded``), Analytics ``/v2/reports`` (its own quota, not counted).
* tiktok: ``/v2/user/info/`` (GET, POST accepted too), ``POST /v2/video/list/`` (cursor = create
  time in ms), error envelope ``{"error": {"code": ...}}``.

OAuth 2 (authorization code with PKCE S256 required, client authentication by HTTP Basic or in
the form, TikTok's ``client_key`` accepted for ``client_id``). Refresh tokens, roughly as the
platforms do: X and TikTok rotate them (the old one stops working); LinkedIn returns the same
one; Google (youtube) returns none on refresh (keep the old one); Meta has none at all: the
``fb_exchange_token`` grant trades a still-valid token for a new one. Access tokens live
``token_ttl`` seconds (3600 unless set), authorization codes 10 minutes and once.

Figures are deterministic per (platform, external id, day) for a given account: followers grow
slowly with noise (``followers`` is the count on the day the account was added), impressions
follow a weekday rhythm, reach < impressions, engagements are a few % of impressions, posts
come at a platform's pace with their own metrics. ``expected(platform, external_id, day)`` gives
exactly what the connector's ``daily_metrics`` must return for that day, in our metric names;
``followers(platform, external_id, day)`` the follower count a profile shows that day.

Run alone (the benchmark does): ``python -m tests.support.platform_sim --port N --latency 0.1
[--accounts-from-seed]``. With ``--accounts-from-seed`` any token ``sim-<platform>-<external
id>`` is valid (as access and as refresh token) and its account is made on first use. Clients
come from ``--clients`` or ``SOCIAL_CLIENTS`` (JSON as in the settings); without either, any
client is accepted. ``GET /_sim/stats`` answers request counts, ``POST /_sim/config`` sets
``latency`` and ``token_ttl``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PLATFORMS = (
    "facebook_page",
    "instagram_business",
    "linkedin_organization",
    "x",
    "youtube",
    "tiktok",
)
METRICS = (
    "followers",
    "follower_change",
    "impressions",
    "reach",
    "engagements",
    "posts_published",
    "video_views",
)
PACIFIC = ZoneInfo("America/Los_Angeles")
HISTORY_DAYS = 730
"""How far back an account has posts (listings stop there)."""
CODE_TTL = 600.0
SEED_ANCHOR = date(2025, 1, 1)
META_APP_CALLS_PER_HOUR = 200_000
"""The app's Graph budget behind X-App-Usage: a 10,000-account benchmark stays well under."""
META_OBJECT_CALLS_PER_HOUR = 4_800
X_WINDOW = 900.0
X_LIMITS = {"me": 75, "user": 900, "tweets": 900}
YOUTUBE_UNITS = {"channels": 1, "playlistItems": 1}
_POST_RATE = {
    "facebook_page": 1.5,
    "instagram_business": 1.0,
    "linkedin_organization": 0.8,
    "x": 3.0,
    "youtube": 0.4,
    "tiktok": 1.0,
}
_WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.95, 0.7, 0.6)
_TOKEN_PREFIX = {
    "facebook_page": ("EAAG", None),
    "instagram_business": ("EAAG", None),
    "linkedin_organization": ("AQV", "AQX"),
    "x": ("", ""),
    "youtube": ("ya29.", "1//"),
    "tiktok": ("act.", "rft."),
}
ROTATES_REFRESH_TOKENS = {"x": True, "tiktok": True}
"""Platforms whose refresh grant hands out a new refresh token and voids the old one."""

Json = Any


# ---------------------------------------------------------------- deterministic figures


def _h(*parts: object) -> int:
    raw = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def _u(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by its parts."""
    return _h(*parts) / 2**64


def _digits(n: int, *parts: object) -> str:
    value = _h(*parts)
    return str(1 + value % 9) + str(value).rjust(20, "0")[-(n - 1) :]


def _b64id(n: int, *parts: object) -> str:
    raw = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")[:n]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _today() -> date:
    return datetime.now(UTC).date()


class Post:
    """One published post; its figures are drawn when read (listings often need only dates)."""

    __slots__ = ("_account", "_base", "_day", "_i", "created_at", "id")

    def __init__(
        self, account: Account, day: date, i: int, created_at: datetime, base: float
    ) -> None:
        self._account, self._day, self._i, self._base = account, day, i, base
        self.created_at = created_at
        self.id = account._post_id(day, i)

    def _draw(self, what: int) -> float:
        return self._account._r(self._day, what, self._i)

    @property
    def impressions(self) -> int:
        return round(self._base * (0.3 + 1.4 * self._draw(_POST_IMP)))

    @property
    def likes(self) -> int:
        return round(self.impressions * (0.005 + 0.04 * self._draw(_LIKES)))

    @property
    def comments(self) -> int:
        return round(self.likes * (0.05 + 0.25 * self._draw(_COMMENTS)))

    @property
    def shares(self) -> int:
        return round(self.likes * (0.02 + 0.2 * self._draw(_SHARES)))

    @property
    def quotes(self) -> int:
        return round(self.shares * 0.4 * self._draw(_QUOTES))

    @property
    def views(self) -> int:
        return round(self.impressions * (0.4 + 0.8 * self._draw(_POST_VIEWS)))


@dataclass(frozen=True)
class Audience:
    impressions: int
    reach: int
    engagements: int
    video_views: int


_MASK = 2**64 - 1


def _mix(x: int) -> int:
    """splitmix64: cheap, well-spread, deterministic (figures are drawn by the thousand)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


# What a draw is for, so that two figures of one day differ.
(_JITTER, _LOST, _IMP, _REACH, _ENG, _VIEWS, _POSTS, _AT, _POST_IMP, _LIKES, _SHARES,
 _COMMENTS, _QUOTES, _POST_VIEWS, _PAID, _ID) = range(16)  # fmt: skip


@dataclass
class Account:
    platform: str
    external_id: str
    handle: str
    name: str
    followers: int
    """The follower count on `anchor`."""
    anchor: date

    def __post_init__(self) -> None:
        self._seed = _h(self.platform, self.external_id)

    def _key(self, *parts: object) -> float:
        return _u(self.platform, self.external_id, *parts)

    def _r(self, day: date, what: int, i: int = 0) -> float:
        """A uniform number in [0, 1) for (account, day, what, i): splitmix64 inlined, the
        simulator draws thousands of these a request."""
        x = (self._seed + (day.toordinal() << 16) + (what << 8) + i + 0x9E3779B97F4A7C15) & _MASK
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
        return (x ^ (x >> 31)) / 18446744073709551616

    def _jitter(self, day: date) -> int:
        amplitude = 1 + self.followers * 0.0004
        return round((self._r(day, _JITTER) - 0.5) * 2 * amplitude)

    def total(self, day: date) -> int:
        growth = 0.3 + self.followers * (0.0004 + 0.002 * (self._seed % 1000) / 1000)
        n = (day - self.anchor).days
        return max(
            0, self.followers + round(growth * n) + self._jitter(day) - self._jitter(self.anchor)
        )

    def change(self, day: date) -> int:
        return self.total(day) - self.total(day - timedelta(days=1))

    def gained_lost(self, day: date) -> tuple[int, int]:
        change = self.change(day)
        lost = max(round(self._r(day, _LOST) * (1 + self.total(day) * 0.0008)), -change)
        return change + lost, lost

    def audience(self, day: date) -> Audience:
        base = 40 + self.total(day) * 0.3
        impressions = round(base * _WEEKDAY[day.weekday()] * (0.7 + 0.6 * self._r(day, _IMP)))
        return Audience(
            impressions=impressions,
            reach=round(impressions * (0.5 + 0.3 * self._r(day, _REACH))),
            engagements=round(impressions * (0.01 + 0.05 * self._r(day, _ENG))),
            video_views=round(impressions * (0.05 + 0.25 * self._r(day, _VIEWS))),
        )

    def paid_gain(self, day: date) -> int:
        return round(max(self.change(day), 0) * 0.1 * self._r(day, _PAID))

    def engagement_parts(self, day: date) -> dict[str, int]:
        """The day's engagements split the way LinkedIn and YouTube count them."""
        total = self.audience(day).engagements
        likes, comments, shares = round(total * 0.5), round(total * 0.15), round(total * 0.1)
        return {
            "likes": likes,
            "comments": comments,
            "shares": shares,
            "clicks": total - likes - comments - shares,
        }

    def posts(self, day: date, now: datetime | None = None) -> list[Post]:
        """The posts published that day (none in the future), newest first."""
        if day < self.anchor - timedelta(days=HISTORY_DAYS):
            return []
        rate = _POST_RATE[self.platform] * _WEEKDAY[day.weekday()]
        count = int(rate * 2 * self._r(day, _POSTS) + 0.5)
        if not count:
            return []
        base = 20 + self.total(day) * 0.15
        limit = now or datetime.now(UTC)
        start = _midnight(day)
        posts = []
        for i in range(count):
            created = start + timedelta(seconds=int(86_400 * self._r(day, _AT, i)))
            if created <= limit:
                posts.append(Post(self, day, i, created, base))
        posts.sort(key=lambda p: (p.created_at, p.id), reverse=True)
        return posts

    def _post_id(self, day: date, i: int) -> str:
        raw = _mix(self._seed + (day.toordinal() << 16) + (_ID << 8) + i)
        digits = str(raw).rjust(20, "0")
        if self.platform == "facebook_page":
            return f"{self.external_id}_{1 + raw % 9}{digits[-15:]}"
        if self.platform == "instagram_business":
            return "179" + digits[-14:]
        if self.platform == "linkedin_organization":
            return f"urn:li:share:7{digits[-18:]}"
        if self.platform == "youtube":
            return base64.urlsafe_b64encode(raw.to_bytes(8, "big")).decode().rstrip("=")
        return f"1{digits[-18:]}"

    def posts_desc(
        self, newest: datetime, oldest: datetime | None = None, now: datetime | None = None
    ) -> Iterator[Post]:
        """Posts created in [oldest, newest), newest first."""
        floor = self.anchor - timedelta(days=HISTORY_DAYS)
        if oldest is not None:
            floor = max(floor, oldest.astimezone(UTC).date())
        day = min(newest.astimezone(UTC).date(), _today())
        while day >= floor:
            for post in self.posts(day, now):
                if post.created_at < newest and (oldest is None or post.created_at >= oldest):
                    yield post
            day -= timedelta(days=1)


# ---------------------------------------------------------------- requests, tokens, replies


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    """The platform's own path (without the simulator's prefix)."""
    platform: str
    time: float
    query: dict[str, str]


@dataclass
class _Token:
    value: str
    platform: str
    external_id: str
    expires_at: float
    scope: str
    revoked: bool = False


@dataclass
class _Refresh:
    value: str
    platform: str
    external_id: str
    scope: str
    revoked: bool = False


@dataclass
class _Grant:
    code: str
    platform: str
    external_id: str
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class _Ctx:
    platform: str
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    body: Json
    headers: dict[str, str]
    now: float
    out: dict[str, str] = field(default_factory=dict)
    """Headers to add to the answer, whatever it is."""
    object_id: str | None = None

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        if value[:7].lower() == "bearer ":
            return value[7:].strip()
        return None

    @property
    def basic(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if value[:6].lower() != "basic ":
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except ValueError:
            return None
        return user, password

    @property
    def params(self) -> dict[str, str]:
        return {**self.query, **self.form}


class _Reply(Exception):
    def __init__(self, status: int, body: Json, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _response(status: int, body: Json, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def _day_of(value: str) -> datetime:
    """A Graph-style time parameter: a Unix timestamp or a date (midnight UTC)."""
    if value.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _rfc3339(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("o:"))
    except ValueError:
        return 0


def _page(posts: Iterator[Post], offset: int, limit: int) -> tuple[list[Post], bool]:
    taken: list[Post] = []
    for i, post in enumerate(posts):
        if i < offset:
            continue
        if len(taken) == limit:
            return taken, True
        taken.append(post)
    return taken, False


def _drop(value: Json, names: set[str]) -> Json:
    """The answer without the fields a platform deprecated."""
    if not names:
        return value
    if isinstance(value, dict):
        return {k: _drop(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [_drop(v, names) for v in value]
    return value


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# ---------------------------------------------------------------- platforms

Handler = Callable[..., Json]


class _Family:
    """One platform's dialect: its routes, error bodies and usage headers."""

    authorize_path = ""
    token_path = ""
    routes_spec: tuple[tuple[str, str, str], ...] = ()
    """(methods, path regex, handler method name) for the API routes."""

    def __init__(self, sim: PlatformSimulator, platform: str) -> None:
        self.sim = sim
        self.platform = platform
        self.routes: list[tuple[frozenset[str], re.Pattern[str], str, Handler]] = [
            (
                frozenset({"GET"}),
                re.compile(self.authorize_path + "$"),
                "authorize",
                sim._authorize,
            ),
            (frozenset({"GET", "POST"}), re.compile(self.token_path + "$"), "token", sim._token),
        ]
        for methods, pattern, name in self.routes_spec:
            self.routes.append(
                (
                    frozenset(methods.split("|")),
                    re.compile(pattern + "$"),
                    name,
                    getattr(self, name),
                )
            )

    def match(self, method: str, path: str) -> tuple[str, Handler, tuple[str, ...]] | None:
        for methods, pattern, name, handler in self.routes:
            found = pattern.match(path)
            if found and method in methods:
                return name, handler, found.groups()
        return None

    # Every platform overrides the bodies below with its own.
    def not_found(self, ctx: _Ctx) -> _Reply:
        return _Reply(404, {"error": "not_found", "path": ctx.path})

    def unauthorized(self, why: str) -> _Reply:
        return _Reply(401, {"error": "invalid_token", "error_description": why})

    def throttled(self, retry_after: float | None) -> _Reply:
        headers = {"Retry-After": str(round(retry_after))} if retry_after is not None else {}
        return _Reply(429, {"error": "rate_limited"}, headers)

    def server_error(self, status: int) -> _Reply:
        return _Reply(status, {"error": "server_error", "status": status})

    def token_error(self, error: str, description: str, status: int = 400) -> _Reply:
        return _Reply(status, {"error": error, "error_description": description})

    def token_body(
        self, access: _Token, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        body: dict[str, Json] = {
            "access_token": access.value,
            "token_type": "bearer",
            "expires_in": round(access.expires_at - time.time()),
            "scope": access.scope,
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return body

    def before(self, ctx: _Ctx, name: str) -> None:
        """Rate accounting before a route runs (may answer instead)."""

    def usage_headers(self, ctx: _Ctx) -> dict[str, str]:
        return {}

    def account(self, ctx: _Ctx) -> Account:
        """The account the bearer token is for, or the platform's "bad token" answer."""
        return self.sim._account_for(ctx.platform, ctx.bearer, self)


class _Meta(_Family):
    authorize_path = r"/v\d+\.\d+/dialog/oauth"
    token_path = r"/v\d+\.\d+/oauth/access_token"
    routes_spec = (
        ("GET", r"/v\d+\.\d+/me/accounts", "me_accounts"),
        ("GET", r"/v\d+\.\d+/me", "me"),
        ("GET", r"/v\d+\.\d+/([^/]+)/insights", "insights"),
        ("GET", r"/v\d+\.\d+/([^/]+)/(published_posts|posts|media)", "posts"),
        ("GET", r"/v\d+\.\d+/([^/]+)", "node"),
    )
    page = True
    insight_metrics: frozenset[str] = frozenset(
        {
            "page_follows",
            "page_daily_follows_unique",
            "page_daily_unfollows_unique",
            "page_impressions",
            "page_impressions_unique",
            "page_post_engagements",
            "page_video_views",
        }
    )
    max_insight_days = 93

    def _error(self, status: int, code: int, message: str, **extra: Json) -> _Reply:
        error = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            **extra,
            "fbtrace_id": _b64id(22, time.time(), secrets.token_hex(4)),
        }
        return _Reply(status, {"error": error})

    def not_found(self, ctx: _Ctx) -> _Reply:
        return self._error(400, 2500, "Unknown path components: " + ctx.path)

    def unauthorized(self, why: str) -> _Reply:
        return self._error(400, 190, f"Error validating access token: {why}.", error_subcode=463)

    def throttled(self, retry_after: float | None) -> _Reply:
        code = 80001 if self.page else 80002
        what = "Page" if self.page else "Instagram"
        reply = self._error(
            400,
            code,
            f"There have been too many calls to this {what} account. Wait a bit "
            "and try again. For more info, please refer to "
            "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
        )
        minutes = max(1, -(-int(retry_after or 60) // 60))
        reply.headers["X-Business-Use-Case-Usage"] = self._buc(
            self.sim._meta_last_object.get(self.platform, "0"), 100, minutes
        )
        return reply

    def server_error(self, status: int) -> _Reply:
        reply = self._error(
            status, 1, "An unknown error occurred", error_subcode=99, is_transient=True
        )
        return reply

    def token_error(self, error: str, description: str, status: int = 400) -> _Reply:
        code = 191 if error == "invalid_client" else 100
        return self._error(400, code, description, error_subcode=36009)

    def token_body(
        self, access: _Token, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        return {
            "access_token": access.value,
            "token_type": "bearer",
            "expires_in": round(access.expires_at - time.time()),
        }

    def _buc(self, object_id: str, percent: int, regain_minutes: int) -> str:
        kind = "pages" if self.page else "instagram"
        entry = {
            "type": kind,
            "call_count": percent,
            "total_cputime": max(0, percent - 3),
            "total_time": max(0, percent - 1),
            "estimated_time_to_regain_access": regain_minutes,
        }
        return json.dumps({object_id: [entry]})

    def before(self, ctx: _Ctx, name: str) -> None:
        self.sim._meta_calls[(self.platform, "app", ctx.now // 3600)] += 1
        if ctx.object_id is not None:
            self.sim._meta_calls[(self.platform, ctx.object_id, ctx.now // 3600)] += 1

    def usage_headers(self, ctx: _Ctx) -> dict[str, str]:
        hour = ctx.now // 3600
        forced = self.sim._usage.get(self.platform)
        if forced is not None:
            app, regain = forced
        else:
            calls = self.sim._meta_calls[(self.platform, "app", hour)]
            app, regain = min(99, calls * 100 // META_APP_CALLS_PER_HOUR), 0
        headers = {
            "X-App-Usage": json.dumps(
                {"call_count": app, "total_cputime": max(0, app - 2), "total_time": app}
            ),
            "facebook-api-version": "v21.0",
            "x-fb-rev": "1018421711",
        }
        if ctx.object_id is not None:
            if forced is None:
                calls = self.sim._meta_calls[(self.platform, ctx.object_id, hour)]
                app = min(99, calls * 100 // META_OBJECT_CALLS_PER_HOUR)
            headers["X-Business-Use-Case-Usage"] = self._buc(ctx.object_id, app, regain)
        return headers

    # --- API

    def _own(self, ctx: _Ctx, object_id: str) -> Account:
        account = self.account(ctx)
        if object_id not in {account.external_id, "me"}:
            raise self._error(
                400,
                100,
                f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot "
                "be loaded due to missing permissions, or does not support this operation.",
                error_subcode=33,
            )
        return account

    def _fields(self, ctx: _Ctx, available: dict[str, Json]) -> dict[str, Json]:
        wanted = [f for f in ctx.query.get("fields", "id,name").split(",") if f]
        return {f: available[f] for f in wanted if f in available}

    def _node_fields(self, account: Account) -> dict[str, Json]:
        today = _today()
        if self.page:
            return {
                "id": account.external_id,
                "name": account.name,
                "username": account.handle,
                "followers_count": account.total(today),
                "fan_count": account.total(today),
                "link": f"https://www.facebook.com/{account.handle}",
                "category": "Brand",
            }
        return {
            "id": account.external_id,
            "username": account.handle,
            "name": account.name,
            "followers_count": account.total(today),
            "follows_count": 100 + int(400 * account._key("follows")),
            "media_count": 100 + int(500 * account._key("media")),
        }

    def me(self, ctx: _Ctx) -> Json:
        account = self.account(ctx)
        return {"id": _digits(16, account.external_id, "user"), "name": account.name}

    def me_accounts(self, ctx: _Ctx) -> Json:
        account = self.account(ctx)
        if self.page:
            entry = {
                **self._node_fields(account),
                "access_token": ctx.bearer,
                "tasks": ["ANALYZE", "ADVERTISE", "CREATE_CONTENT", "MODERATE"],
            }
        else:
            entry = {
                "id": _digits(15, account.external_id, "page"),
                "name": account.name,
                "instagram_business_account": self._node_fields(account),
            }
        return {"data": [entry], "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}

    def node(self, ctx: _Ctx, object_id: str) -> Json:
        return self._fields(ctx, self._node_fields(self._own(ctx, object_id)))

    def _span(self, ctx: _Ctx, default_days: int) -> tuple[datetime, datetime]:
        try:
            until = _day_of(ctx.query["until"]) if "until" in ctx.query else None
            since = _day_of(ctx.query["since"]) if "since" in ctx.query else None
        except ValueError:
            raise self._error(400, 100, "(#100) Invalid since or until parameter") from None
        until = until or _midnight(_today() + timedelta(days=1))
        since = since or until - timedelta(days=default_days)
        return since, until

    def _value(self, account: Account, metric: str, day: date) -> int:
        audience = account.audience(day)
        gained, lost = account.gained_lost(day)
        return {
            "page_follows": account.total(day),
            "page_daily_follows_unique": gained,
            "page_daily_unfollows_unique": lost,
            "page_impressions": audience.impressions,
            "page_impressions_unique": audience.reach,
            "page_post_engagements": audience.engagements,
            "page_video_views": audience.video_views,
            "impressions": audience.impressions,
            "reach": audience.reach,
            "follower_count": account.change(day),
            "profile_views": round(audience.reach * 0.04),
        }[metric]

    def insights(self, ctx: _Ctx, object_id: str) -> Json:
        account = self._own(ctx, object_id)
        metrics = [m for m in ctx.query.get("metric", "").split(",") if m]
        for metric in metrics:
            if metric not in self.insight_metrics or self.sim._is_deprecated(self.platform, metric):
                raise self._error(400, 100, "(#100) The value must be a valid insights metric")
        if not metrics:
            raise self._error(400, 100, "(#100) The parameter metric is required")
        if ctx.query.get("period", "day") != "day":
            raise self._error(400, 100, "(#100) period must be one of the following values: day")
        since, until = self._span(ctx, 2)
        if until - since > timedelta(days=self.max_insight_days):
            raise self._error(
                400,
                100,
                f"(#100) There cannot be more than {self.max_insight_days} days between since "
                "and until",
            )
        today = _today()
        first, last = since.date(), min(until.date() - timedelta(days=1), today)
        data = []
        for metric in metrics:
            start = first
            if metric == "follower_count":
                window = today - timedelta(days=29)
                if first < window - timedelta(days=1):
                    raise self._error(
                        400, 100, "(#100) follower_count is only available for the last 30 days"
                    )
                start = max(first, window)
            values = []
            day = start
            while day <= last:
                end = datetime.combine(day + timedelta(days=1), datetime.min.time(), PACIFIC)
                values.append(
                    {
                        "value": self._value(account, metric, day),
                        "end_time": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                    }
                )
                day += timedelta(days=1)
            data.append(
                {
                    "name": metric,
                    "period": "day",
                    "values": values,
                    "title": metric.replace("_", " ").title(),
                    "description": f"Daily: {metric.replace('_', ' ')}",
                    "id": f"{object_id}/insights/{metric}/day",
                }
            )
        return {"data": data, "paging": {"previous": "", "next": ""}}

    def posts(self, ctx: _Ctx, object_id: str, edge: str) -> Json:
        account = self._own(ctx, object_id)
        if (edge == "media") == self.page:
            raise self.not_found(ctx)
        since, until = self._span(ctx, 365 * 2)
        limit = max(1, min(100, int(ctx.query.get("limit", "25"))))
        offset = _offset(ctx.query.get("after"))
        posts, more = _page(account.posts_desc(until, since), offset, limit)
        data: list[dict[str, Json]] = []
        for post in posts:
            stamp = post.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000")
            item: dict[str, Json]
            if self.page:
                item = {"id": post.id, "created_time": stamp, "message": f"Post {post.id[-4:]}"}
            else:
                item = {
                    "id": post.id,
                    "timestamp": stamp,
                    "like_count": post.likes,
                    "comments_count": post.comments,
                    "media_type": "IMAGE" if int(post.id[-1]) % 3 else "VIDEO",
                    "permalink": f"https://www.instagram.com/p/{_b64id(11, post.id)}/",
                }
            data.append(self._fields(ctx, item) | {"id": post.id})
        paging: dict[str, Json] = {
            "cursors": {"before": _cursor(offset), "after": _cursor(offset + len(posts))}
        }
        if more:
            query = {**ctx.query, "after": _cursor(offset + len(posts))}
            paging["next"] = f"https://graph.facebook.com{ctx.path}?{urlencode(query)}"
        return {"data": data, "paging": paging}


class _Instagram(_Meta):
    page = False
    insight_metrics = frozenset({"reach", "impressions", "follower_count", "profile_views"})
    max_insight_days = 30


class _LinkedIn(_Family):
    authorize_path = r"/oauth/v2/authorization"
    token_path = r"/oauth/v2/accessToken"
    routes_spec = (
        ("GET", r"/rest/organizationAcls", "acls"),
        ("GET", r"/rest/organizations/([^/]+)", "organization"),
        ("GET", r"/rest/networkSizes/([^/]+)", "network_size"),
        ("GET", r"/rest/(organizationalEntityFollowerStatistics)", "statistics"),
        ("GET", r"/rest/(organizationalEntityShareStatistics)", "statistics"),
        ("GET", r"/rest/posts", "posts"),
    )

    def _error(self, status: int, code: str, message: str, service: int = 100) -> _Reply:
        return _Reply(
            status,
            {"status": status, "serviceErrorCode": service, "code": code, "message": message},
        )

    def not_found(self, ctx: _Ctx) -> _Reply:
        return self._error(404, "NOT_FOUND", "No virtual resource found", 0)

    def unauthorized(self, why: str) -> _Reply:
        return self._error(
            401, "EXPIRED_ACCESS_TOKEN", f"The token used in the request {why}", 65601
        )

    def throttled(self, retry_after: float | None) -> _Reply:
        reply = self._error(
            429,
            "TOO_MANY_REQUESTS",
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
            101,
        )
        if retry_after is not None:
            reply.headers["Retry-After"] = str(round(retry_after))
        return reply

    def server_error(self, status: int) -> _Reply:
        return self._error(status, "INTERNAL_SERVER_ERROR", "Internal Server Error", 0)

    def token_body(
        self, access: _Token, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        body = super().token_body(access, refresh, grant, refresh_ttl)
        if refresh is not None:
            body["refresh_token_expires_in"] = refresh_ttl
        return body

    def usage_headers(self, ctx: _Ctx) -> dict[str, str]:
        return {
            "x-li-uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
            "x-restli-protocol-version": "2.0.0",
            "x-li-responseorigin": "RGW",
        }

    def before(self, ctx: _Ctx, name: str) -> None:
        if name not in {"authorize", "token"} and not ctx.headers.get("linkedin-version"):
            raise self._error(
                400,
                "VERSION_MISSING",
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
            )

    def _org(self, ctx: _Ctx, urn_or_id: str) -> Account:
        account = self.account(ctx)
        org = urn_or_id.rsplit(":", 1)[-1]
        if org != account.external_id:
            raise self._error(
                403, "ACCESS_DENIED", f"Not enough permissions to access: {urn_or_id}"
            )
        return account

    def acls(self, ctx: _Ctx) -> Json:
        account = self.account(ctx)
        element = {
            "roleAssignee": f"urn:li:person:{_b64id(10, account.external_id)}",
            "state": "APPROVED",
            "role": "ADMINISTRATOR",
            "organization": f"urn:li:organization:{account.external_id}",
        }
        return {"paging": {"start": 0, "count": 10, "links": []}, "elements": [element]}

    def organization(self, ctx: _Ctx, org: str) -> Json:
        account = self._org(ctx, org)
        return {
            "id": int(account.external_id) if account.external_id.isdigit() else 0,
            "localizedName": account.name,
            "vanityName": account.handle,
            "name": {
                "localized": {"en_US": account.name},
                "preferredLocale": {"country": "US", "language": "en"},
            },
        }

    def network_size(self, ctx: _Ctx, urn: str) -> Json:
        if ctx.query.get("edgeType") != "COMPANY_FOLLOWED_BY_MEMBER":
            raise self._error(400, "ILLEGAL_ARGUMENT", "edgeType is required")
        if self.sim._is_deprecated(self.platform, "networkSizes"):
            raise self.not_found(ctx)
        return {"firstDegreeSize": self._org(ctx, urn).total(_today())}

    def statistics(self, ctx: _Ctx, resource: str) -> Json:
        if self.sim._is_deprecated(self.platform, resource):
            raise self.not_found(ctx)
        if ctx.query.get("q") != "organizationalEntity":
            raise self._error(400, "ILLEGAL_ARGUMENT", "q must be organizationalEntity")
        urn = ctx.query.get("organizationalEntity", "")
        account = self._org(ctx, urn)
        intervals = ctx.query.get("timeIntervals", "")
        found = re.search(r"timeRange:\(start:(\d+),end:(\d+)\)", intervals)
        if found is None or "timeGranularityType:DAY" not in intervals:
            raise self._error(400, "ILLEGAL_ARGUMENT", "timeIntervals with DAY granularity needed")
        start = datetime.fromtimestamp(int(found.group(1)) / 1000, UTC).date()
        end = datetime.fromtimestamp(int(found.group(2)) / 1000, UTC).date()
        elements = []
        day = start
        while day < end and day <= _today():
            span = {
                "start": int(_midnight(day).timestamp() * 1000),
                "end": int(_midnight(day + timedelta(days=1)).timestamp() * 1000),
            }
            element: dict[str, Json] = {"organizationalEntity": urn, "timeRange": span}
            if resource == "organizationalEntityFollowerStatistics":
                change, paid = account.change(day), account.paid_gain(day)
                element["followerGains"] = {
                    "organicFollowerGain": change - paid,
                    "paidFollowerGain": paid,
                }
            else:
                audience, parts = account.audience(day), account.engagement_parts(day)
                element["totalShareStatistics"] = {
                    "uniqueImpressionsCount": audience.reach,
                    "shareCount": parts["shares"],
                    "engagement": round(audience.engagements / max(1, audience.impressions), 6),
                    "clickCount": parts["clicks"],
                    "likeCount": parts["likes"],
                    "impressionCount": audience.impressions,
                    "commentCount": parts["comments"],
                }
            elements.append(element)
            day += timedelta(days=1)
        deprecated = self.sim._deprecated_names(self.platform)
        return _drop(
            {"paging": {"start": 0, "count": 10, "links": []}, "elements": elements}, deprecated
        )

    def posts(self, ctx: _Ctx) -> Json:
        if self.sim._is_deprecated(self.platform, "posts"):
            raise self.not_found(ctx)
        if ctx.query.get("q") != "author":
            raise self._error(400, "ILLEGAL_ARGUMENT", "q must be author")
        author = ctx.query.get("author", "")
        account = self._org(ctx, author)
        count = max(1, min(100, int(ctx.query.get("count", "10"))))
        start = max(0, int(ctx.query.get("start", "0")))
        posts, _ = _page(account.posts_desc(datetime.now(UTC)), start, count)
        elements = []
        for post in posts:
            ms = int(post.created_at.timestamp() * 1000)
            elements.append(
                {
                    "id": post.id,
                    "author": author,
                    "commentary": f"Post {post.id[-4:]}",
                    "visibility": "PUBLIC",
                    "lifecycleState": "PUBLISHED",
                    "publishedAt": ms,
                    "createdAt": ms,
                    "lastModifiedAt": ms,
                    "isReshareDisabledByAuthor": False,
                }
            )
        return {"paging": {"start": start, "count": count, "links": []}, "elements": elements}


class _X(_Family):
    authorize_path = r"/i/oauth2/authorize"
    token_path = r"/2/oauth2/token"
    routes_spec = (
        ("POST", r"/2/oauth2/revoke", "revoke"),
        ("GET", r"/2/users/me", "me"),
        ("GET", r"/2/users/([^/]+)/tweets", "tweets"),
        ("GET", r"/2/users/([^/]+)", "user"),
    )

    def not_found(self, ctx: _Ctx) -> _Reply:
        return _Reply(404, {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]})

    def unauthorized(self, why: str) -> _Reply:
        return _Reply(
            401,
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
        )

    def throttled(self, retry_after: float | None) -> _Reply:
        wait = X_WINDOW if retry_after is None else retry_after
        headers = {
            "x-rate-limit-limit": "900",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(time.time() + wait)),
        }
        if retry_after is not None:
            headers["Retry-After"] = str(round(retry_after))
        return _Reply(
            429,
            {
                "title": "Too Many Requests",
                "detail": "Too Many Requests",
                "type": "about:blank",
                "status": 429,
            },
            headers,
        )

    def server_error(self, status: int) -> _Reply:
        return _Reply(
            status,
            {
                "title": "Service Unavailable",
                "detail": "Service Unavailable",
                "type": "about:blank",
                "status": status,
            },
        )

    def before(self, ctx: _Ctx, name: str) -> None:
        if name in {"authorize", "token", "revoke"}:
            return
        group = {"me": "me", "user": "user", "tweets": "tweets"}[name]
        forced = self.sim._remaining.get(self.platform)
        if forced is not None and ctx.now < forced[1]:
            remaining, reset_at, limit = forced
        else:
            self.sim._remaining.pop(self.platform, None)
            key = (ctx.bearer or "", group)
            window = self.sim._x_windows.get(key)
            if window is None or ctx.now >= window[1]:
                window = [0, ctx.now + X_WINDOW]
                self.sim._x_windows[key] = window
            limit = X_LIMITS[group]
            remaining, reset_at = limit - int(window[0]), window[1]
            window[0] += 1
        ctx.out.update(
            {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": str(max(0, remaining - 1)),
                "x-rate-limit-reset": str(int(reset_at)),
            }
        )
        if remaining <= 0:
            reply = self.throttled(None)
            reply.headers.update({**ctx.out, "x-rate-limit-remaining": "0"})
            raise reply
        if forced is not None and ctx.now < forced[1]:
            self.sim._remaining[self.platform] = (remaining - 1, reset_at, limit)

    def usage_headers(self, ctx: _Ctx) -> dict[str, str]:
        return {"x-response-time": "42", "x-transaction-id": secrets.token_hex(8)}

    def _user(self, ctx: _Ctx, account: Account) -> Json:
        data: dict[str, Json] = {
            "id": account.external_id,
            "name": account.name,
            "username": account.handle,
        }
        if "public_metrics" in ctx.query.get("user.fields", ""):
            data["public_metrics"] = {
                "followers_count": account.total(_today()),
                "following_count": 100 + int(900 * account._key("following")),
                "tweet_count": 1000 + int(9000 * account._key("tweets")),
                "listed_count": int(50 * account._key("listed")),
                "like_count": 500 + int(5000 * account._key("likes")),
                "media_count": 100 + int(500 * account._key("media")),
            }
        return {"data": _drop(data, self.sim._deprecated_names(self.platform))}

    def _not_found(self, user_id: str) -> Json:
        return {
            "errors": [
                {
                    "value": user_id,
                    "detail": f"Could not find user with id: [{user_id}].",
                    "title": "Not Found Error",
                    "resource_type": "user",
                    "parameter": "id",
                    "resource_id": user_id,
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
            ]
        }

    def me(self, ctx: _Ctx) -> Json:
        return self._user(ctx, self.account(ctx))

    def user(self, ctx: _Ctx, user_id: str) -> Json:
        self.account(ctx)
        account = self.sim._lookup(self.platform, user_id)
        return self._not_found(user_id) if account is None else self._user(ctx, account)

    def revoke(self, ctx: _Ctx) -> Json:
        self.sim._revoke_value(ctx.params.get("token", ""))
        return {"revoked": True}

    def tweets(self, ctx: _Ctx, user_id: str) -> Json:
        self.account(ctx)
        account = self.sim._lookup(self.platform, user_id)
        if account is None:
            return self._not_found(user_id)
        now = datetime.now(UTC)
        try:
            end = _rfc3339(ctx.query["end_time"]) if "end_time" in ctx.query else now
            start = _rfc3339(ctx.query["start_time"]) if "start_time" in ctx.query else None
        except ValueError:
            raise _x_invalid("start_time", "Invalid 'start_time' or 'end_time'.") from None
        if end > now - timedelta(seconds=10):
            if "end_time" in ctx.query:
                raise _x_invalid(
                    "end_time",
                    f"Invalid 'end_time':'{ctx.query['end_time']}'. 'end_time' must be a "
                    "minimum of 10 seconds prior to the request time.",
                )
            end = now
        limit = int(ctx.query.get("max_results", "10"))
        if not 5 <= limit <= 100:
            raise _x_invalid(
                "max_results",
                f"The `max_results` query parameter value [{limit}] is not between 5 and 100",
            )
        offset = _offset(ctx.query.get("pagination_token"))
        posts, more = _page(account.posts_desc(end, start), offset, limit)
        fields = ctx.query.get("tweet.fields", "")
        data = []
        for post in posts:
            tweet: dict[str, Json] = {
                "id": post.id,
                "text": f"Post {post.id[-4:]}",
                "edit_history_tweet_ids": [post.id],
            }
            if "created_at" in fields:
                tweet["created_at"] = post.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            if "public_metrics" in fields:
                tweet["public_metrics"] = {
                    "retweet_count": post.shares,
                    "reply_count": post.comments,
                    "like_count": post.likes,
                    "quote_count": post.quotes,
                    "bookmark_count": post.quotes // 2,
                    "impression_count": post.impressions,
                }
            data.append(tweet)
        meta: dict[str, Json] = {"result_count": len(data)}
        if data:
            meta["newest_id"], meta["oldest_id"] = data[0]["id"], data[-1]["id"]
        if more:
            meta["next_token"] = _cursor(offset + len(posts))
        if offset:
            meta["previous_token"] = _cursor(max(0, offset - limit))
        body: dict[str, Json] = {"meta": meta}
        if data:
            body["data"] = _drop(data, self.sim._deprecated_names(self.platform))
        return body


def _x_invalid(parameter: str, message: str) -> _Reply:
    return _Reply(
        400,
        {
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )


class _YouTube(_Family):
    authorize_path = r"/o/oauth2/v2/auth"
    token_path = r"/token"
    routes_spec = (
        ("POST", r"/revoke", "revoke"),
        ("GET", r"/youtube/v3/(channels)", "data_api"),
        ("GET", r"/youtube/v3/(playlistItems)", "data_api"),
        ("GET", r"/v2/reports", "reports"),
    )
    analytics_metrics = frozenset(
        {
            "views",
            "likes",
            "dislikes",
            "comments",
            "shares",
            "subscribersGained",
            "subscribersLost",
            "estimatedMinutesWatched",
            "averageViewDuration",
        }
    )

    def _error(
        self, status: int, message: str, reason: str, domain: str = "global", **extra: Json
    ) -> _Reply:
        error = {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason, **extra}],
        }
        return _Reply(status, {"error": error})

    def not_found(self, ctx: _Ctx) -> _Reply:
        return self._error(404, "Not Found", "notFound")

    def unauthorized(self, why: str) -> _Reply:
        reply = self._error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            "authError",
            location="Authorization",
            locationType="header",
        )
        reply.body["error"]["status"] = "UNAUTHENTICATED"
        return reply

    def throttled(self, retry_after: float | None) -> _Reply:
        reply = _Reply(
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Resource has been exhausted (e.g. check quota).",
                    "status": "RESOURCE_EXHAUSTED",
                }
            },
        )
        if retry_after is not None:
            reply.headers["Retry-After"] = str(round(retry_after))
        return reply

    def server_error(self, status: int) -> _Reply:
        return self._error(status, "Backend Error", "backendError")

    def token_body(
        self, access: _Token, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        body = super().token_body(access, refresh, grant, refresh_ttl)
        body["token_type"] = "Bearer"
        if grant == "refresh_token":
            body.pop("refresh_token", None)  # Google keeps the refresh token it gave once
        return body

    def before(self, ctx: _Ctx, name: str) -> None:
        if name != "data_api":
            return
        cost = YOUTUBE_UNITS.get(ctx.path.rsplit("/", 1)[-1], 1)
        forced = self.sim._remaining.get(self.platform)
        if forced is not None:
            remaining, reset_at, limit = forced
            if ctx.now >= reset_at:
                remaining = limit
            if remaining < cost:
                self.sim._remaining[self.platform] = (remaining, reset_at, limit)
                raise self._error(
                    403,
                    'The request cannot be completed because you have exceeded your <a href="'
                    '/youtube/v3/getting-started#quota">quota</a>.',
                    "quotaExceeded",
                    "youtube.quota",
                )
            self.sim._remaining[self.platform] = (remaining - cost, reset_at, limit)
        self.sim.quota_units_used += cost

    def usage_headers(self, ctx: _Ctx) -> dict[str, str]:
        return {"server": "ESF", "x-xss-protection": "0"}

    def revoke(self, ctx: _Ctx) -> Json:
        self.sim._revoke_value(ctx.params.get("token", ""))
        return {}

    def data_api(self, ctx: _Ctx, resource: str) -> Json:
        account = self.account(ctx)
        if resource == "channels":
            return self._channels(ctx, account)
        return self._playlist_items(ctx, account)

    def _channels(self, ctx: _Ctx, account: Account) -> Json:
        parts = set(ctx.query.get("part", "").split(","))
        if not parts - {""}:
            raise self._error(
                400, "No filter selected.", "missingRequiredParameter", "youtube.parameter"
            )
        if ctx.query.get("mine") == "true":
            found = [account]
        else:
            ids = [i for i in ctx.query.get("id", "").split(",") if i]
            found = [a for a in (self.sim._lookup(self.platform, i) for i in ids) if a]
        items = []
        for channel in found:
            item: dict[str, Json] = {
                "kind": "youtube#channel",
                "etag": _b64id(27, channel.external_id, "etag"),
                "id": channel.external_id,
            }
            if "snippet" in parts:
                item["snippet"] = {
                    "title": channel.name,
                    "description": f"The channel of {channel.name}",
                    "customUrl": f"@{channel.handle}",
                    "publishedAt": "2019-03-04T10:00:00Z",
                    "country": "FR",
                }
            if "statistics" in parts:
                item["statistics"] = {
                    "viewCount": str(100_000 + int(1e6 * channel._key("views"))),
                    "subscriberCount": str(channel.total(_today())),
                    "hiddenSubscriberCount": False,
                    "videoCount": str(50 + int(300 * channel._key("videos"))),
                }
            if "contentDetails" in parts:
                uploads = "UU" + channel.external_id[2:]
                item["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": uploads}}
            items.append(_drop(item, self.sim._deprecated_names(self.platform)))
        return {
            "kind": "youtube#channelListResponse",
            "etag": _b64id(27, "list", len(items)),
            "pageInfo": {"totalResults": len(items), "resultsPerPage": 5},
            "items": items,
        }

    def _playlist_items(self, ctx: _Ctx, account: Account) -> Json:
        playlist = ctx.query.get("playlistId", "")
        owner = (
            self.sim._lookup(self.platform, "UC" + playlist[2:]) if playlist[:2] == "UU" else None
        )
        if owner is None:
            raise self._error(
                404,
                "The playlist identified with the request's <code>playlistId</code> parameter "
                "cannot be found.",
                "playlistNotFound",
                "youtube.playlistItem",
                location="playlistId",
                locationType="parameter",
            )
        limit = max(0, min(50, int(ctx.query.get("maxResults", "5"))))
        offset = _offset(ctx.query.get("pageToken"))
        posts, more = _page(owner.posts_desc(datetime.now(UTC)), offset, limit)
        items = [
            {
                "kind": "youtube#playlistItem",
                "etag": _b64id(27, post.id, "etag"),
                "id": _b64id(40, post.id, "item"),
                "contentDetails": {
                    "videoId": post.id,
                    "videoPublishedAt": post.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            }
            for post in posts
        ]
        body: dict[str, Json] = {
            "kind": "youtube#playlistItemListResponse",
            "etag": _b64id(27, playlist, offset),
            "items": items,
            "pageInfo": {
                "totalResults": 50 + int(300 * owner._key("videos")),
                "resultsPerPage": limit,
            },
        }
        if more:
            body["nextPageToken"] = _cursor(offset + len(posts))
        return body

    def reports(self, ctx: _Ctx) -> Json:
        account = self.account(ctx)
        ids = ctx.query.get("ids", "")
        if ids not in {"channel==MINE", f"channel=={account.external_id}"}:
            raise self._error(403, "Forbidden", "forbidden")
        metrics = [m for m in ctx.query.get("metrics", "").split(",") if m]
        if not metrics:
            raise self._error(400, "Required parameter: metrics", "required")
        for metric in metrics:
            if metric not in self.analytics_metrics or self.sim._is_deprecated(
                self.platform, metric
            ):
                raise self._error(
                    400,
                    f"Unknown identifier ({metric}) given in field parameters.metrics.",
                    "badRequest",
                )
        try:
            start = date.fromisoformat(ctx.query["startDate"])
            end = date.fromisoformat(ctx.query["endDate"])
        except (KeyError, ValueError):
            raise self._error(400, "Required parameter: startDate, endDate", "required") from None
        if ctx.query.get("dimensions") != "day":
            raise self._error(400, "The query is not supported.", "badRequest")
        rows = []
        day = start
        while day <= min(end, _today()):
            parts = account.engagement_parts(day)
            gained, lost = account.gained_lost(day)
            values = {
                "views": account.audience(day).video_views,
                "likes": parts["likes"],
                "dislikes": round(parts["likes"] * 0.03),
                "comments": parts["comments"],
                "shares": parts["shares"] + parts["clicks"],
                "subscribersGained": gained,
                "subscribersLost": lost,
                "estimatedMinutesWatched": account.audience(day).video_views * 3,
                "averageViewDuration": 95,
            }
            rows.append([day.isoformat(), *(values[m] for m in metrics)])
            day += timedelta(days=1)
        return {
            "kind": "youtubeAnalytics#resultTable",
            "columnHeaders": [
                {"name": "day", "columnType": "DIMENSION", "dataType": "STRING"},
                *({"name": m, "columnType": "METRIC", "dataType": "INTEGER"} for m in metrics),
            ],
            "rows": rows,
        }


class _TikTok(_Family):
    authorize_path = r"/v2/auth/authorize/"
    token_path = r"/v2/oauth/token/"
    routes_spec = (
        ("POST", r"/v2/oauth/revoke/", "revoke"),
        ("GET|POST", r"/v2/user/info/", "user_info"),
        ("POST", r"/v2/video/list/", "video_list"),
    )

    def _error(self, status: int, code: str, message: str) -> _Reply:
        return _Reply(
            status, {"error": {"code": code, "message": message, "log_id": secrets.token_hex(16)}}
        )

    def not_found(self, ctx: _Ctx) -> _Reply:
        return self._error(404, "invalid_params", "Path not found")

    def unauthorized(self, why: str) -> _Reply:
        return self._error(
            401, "access_token_invalid", "The access token is invalid or not found in the request."
        )

    def throttled(self, retry_after: float | None) -> _Reply:
        reply = self._error(
            429, "rate_limit_exceeded", "The API rate limit was exceeded. Please try again later."
        )
        if retry_after is not None:
            reply.headers["Retry-After"] = str(round(retry_after))
        return reply

    def server_error(self, status: int) -> _Reply:
        return self._error(status, "internal_error", "Something went wrong. Please try again.")

    def token_error(self, error: str, description: str, status: int = 400) -> _Reply:
        return _Reply(
            status,
            {"error": error, "error_description": description, "log_id": secrets.token_hex(16)},
        )

    def token_body(
        self, access: _Token, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        body = super().token_body(access, refresh, grant, refresh_ttl)
        body["token_type"] = "Bearer"
        body["open_id"] = access.external_id
        body["refresh_expires_in"] = refresh_ttl
        return body

    def usage_headers(self, ctx: _Ctx) -> dict[str, str]:
        return {"x-tt-logid": secrets.token_hex(16).upper()}

    def _ok(self, data: Json) -> Json:
        return {
            "data": data,
            "error": {"code": "ok", "message": "", "log_id": secrets.token_hex(16)},
        }

    def revoke(self, ctx: _Ctx) -> Json:
        self.sim._revoke_value(ctx.params.get("token", ""))
        return self._ok({})

    def user_info(self, ctx: _Ctx) -> Json:
        account = self.account(ctx)
        fields = [f for f in ctx.query.get("fields", "").split(",") if f]
        if not fields:
            raise self._error(400, "invalid_params", "The fields parameter is required.")
        today = _today()
        available = {
            "open_id": account.external_id,
            "union_id": _b64id(36, account.external_id, "union"),
            "avatar_url": f"https://p16-sign.tiktokcdn.com/{account.handle}.jpeg",
            "display_name": account.name,
            "username": account.handle,
            "bio_description": f"{account.name} on TikTok",
            "is_verified": False,
            "follower_count": account.total(today),
            "following_count": 50 + int(300 * account._key("following")),
            "likes_count": 1000 + int(1e5 * account._key("likes")),
            "video_count": 30 + int(200 * account._key("videos")),
        }
        user = {f: available[f] for f in fields if f in available}
        return self._ok({"user": _drop(user, self.sim._deprecated_names(self.platform))})

    def video_list(self, ctx: _Ctx) -> Json:
        account = self.account(ctx)
        fields = [f for f in ctx.query.get("fields", "").split(",") if f]
        if not fields:
            raise self._error(400, "invalid_params", "The fields parameter is required.")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        limit = int(body.get("max_count", 10))
        if not 1 <= limit <= 20:
            raise self._error(400, "invalid_params", "max_count must be between 1 and 20.")
        cursor = body.get("cursor")
        newest = datetime.fromtimestamp(int(cursor) / 1000, UTC) if cursor else datetime.now(UTC)
        posts, more = _page(account.posts_desc(newest), 0, limit)
        videos = []
        for post in posts:
            available: dict[str, Json] = {
                "id": post.id,
                "create_time": int(post.created_at.timestamp()),
                "title": f"Video {post.id[-4:]}",
                "video_description": f"Video {post.id[-4:]}",
                "duration": 15 + int(post.id[-2:]) % 45,
                "cover_image_url": f"https://p16-sign.tiktokcdn.com/{post.id}.jpeg",
                "share_url": f"https://www.tiktok.com/@{account.handle}/video/{post.id}",
                "view_count": post.views,
                "like_count": post.likes,
                "comment_count": post.comments,
                "share_count": post.shares,
            }
            videos.append({f: available[f] for f in fields if f in available})
        next_cursor = int(posts[-1].created_at.timestamp() * 1000) if posts else 0
        data = {"videos": videos, "cursor": next_cursor, "has_more": more}
        return self._ok(_drop(data, self.sim._deprecated_names(self.platform)))


_FAMILIES: dict[str, type[_Family]] = {
    "facebook_page": _Meta,
    "instagram_business": _Instagram,
    "linkedin_organization": _LinkedIn,
    "x": _X,
    "youtube": _YouTube,
    "tiktok": _TikTok,
}


# ---------------------------------------------------------------- the simulator


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it is, with uvicorn[standard]): a benchmark's hundreds of
    concurrent requests cost the simulator less."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class PlatformSimulator:
    def __init__(
        self,
        clients: dict[str, tuple[str, str]] | None = None,
        latency: float = 0.0,
        *,
        accounts_from_seed: bool = False,
        record_requests: bool = True,
    ) -> None:
        """`clients`: platform -> (client id, client secret); None accepts any client."""
        self._clients = dict(clients) if clients is not None else None
        self._initial_latency = latency
        self.accounts_from_seed = accounts_from_seed
        self._record = record_requests
        self._lock = threading.RLock()
        self._families = {p: cls(self, p) for p, cls in _FAMILIES.items()}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.app = Starlette(
            routes=[
                Route("/_sim/health", self._health, methods=["GET"]),
                Route("/_sim/stats", self._stats, methods=["GET"]),
                Route("/_sim/config", self._config, methods=["POST"]),
                Route(
                    "/{platform}/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "DELETE", "PUT"],
                ),
            ]
        )
        self.reset()

    # --- lifecycle

    def start(self, port: int = 0) -> PlatformSimulator:
        sock = self._bind(port)
        server = uvicorn.Server(self._config_for())
        self._server = server

        def run() -> None:
            loop = _new_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="platform-sim", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the platform simulator did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self, port: int) -> None:
        """Serve in the calling thread (the command line)."""
        sock = self._bind(port)
        server = uvicorn.Server(self._config_for(loop="auto"))
        self._server = server
        print(f"platform simulator on {self.url}", flush=True)
        server.run(sockets=[sock])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self._port = sock.getsockname()[1]
        return sock

    def _config_for(self, loop: str = "asyncio") -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop=loop,
            backlog=4096,
            timeout_keep_alive=30,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def base_url(self, platform: str) -> str:
        return f"{self.url}/{platform}"

    def reset(self) -> None:
        """Forget accounts, tokens, counters, failures and settings; keep the clients."""
        with self._lock:
            self.latency = self._initial_latency
            self.token_ttl = 3600
            self.refresh_ttl = 365 * 86_400
            self.quota_units_used = 0
            self.requests: deque[SimRequest] = deque(maxlen=200_000)
            self._counts: Counter[str] = Counter()
            self._accounts: dict[tuple[str, str], Account] = {}
            self._tokens: dict[str, _Token] = {}
            self._refresh: dict[str, _Refresh] = {}
            self._grants: dict[str, _Grant] = {}
            self._authorize_as: dict[str, str] = {}
            self._deny: Counter[str] = Counter()
            self._deprecated: dict[str, set[str]] = {}
            self._fail: dict[str, deque[int]] = {}
            self._throttle: dict[str, deque[float | None]] = {}
            self._usage: dict[str, tuple[int, int]] = {}
            self._remaining: dict[str, tuple[int, float, int]] = {}
            self._x_windows: dict[tuple[str, str], list[float]] = {}
            self._meta_calls: Counter[tuple[str, str, float]] = Counter()
            self._meta_last_object: dict[str, str] = {}

    # --- accounts and tokens (test controls)

    def add_account(
        self,
        platform: str,
        external_id: str | None = None,
        *,
        handle: str | None = None,
        name: str | None = None,
        followers: int = 1000,
    ) -> str:
        """An account on the platform (its id made up when None); returns its external id."""
        self._check_platform(platform)
        with self._lock:
            external_id = external_id or self._new_id(platform)
            suffix = re.sub(r"[^a-z0-9]", "", external_id.lower())[-6:] or "acct"
            self._accounts[(platform, external_id)] = Account(
                platform=platform,
                external_id=external_id,
                handle=handle or f"brand_{suffix}",
                name=name or f"Brand {suffix.upper()}",
                followers=followers,
                anchor=_today(),
            )
            return external_id

    def account(self, platform: str, external_id: str) -> Account:
        with self._lock:
            return self._accounts[(platform, external_id)]

    def issue_token(
        self, platform: str, external_id: str, expires_in: float = 3600
    ) -> dict[str, Any]:
        """Tokens for an account without the OAuth dance: access_token, refresh_token (None
        for Meta, which has none) and expires_at (UTC datetime), as a TokenSet takes them."""
        with self._lock:
            if (platform, external_id) not in self._accounts:
                self.add_account(platform, external_id)
            scope = " ".join(self._scopes(platform))
            access = self._new_access(platform, external_id, scope, expires_in)
            refresh = self._new_refresh(platform, external_id, scope)
            return {
                "access_token": access.value,
                "refresh_token": refresh,
                "expires_at": datetime.fromtimestamp(access.expires_at, UTC),
                "scope": scope,
            }

    def expire(self, access_token: str) -> None:
        with self._lock:
            self._tokens[access_token].expires_at = time.time() - 1

    def revoke(self, platform: str, external_id: str) -> None:
        """Every access and refresh token of the account stops working (the person removed
        the app, changed password, ...)."""
        with self._lock:
            for token in self._tokens.values():
                if (token.platform, token.external_id) == (platform, external_id):
                    token.revoked = True
            for refresh in self._refresh.values():
                if (refresh.platform, refresh.external_id) == (platform, external_id):
                    refresh.revoked = True

    def authorize_as(
        self,
        platform: str,
        external_id: str | None,
        *,
        handle: str | None = None,
        name: str | None = None,
        followers: int | None = None,
    ) -> str | None:
        """The account the platform's consent screen logs in as, for every authorization
        until changed (None: each authorization makes a new account). Made if unknown."""
        with self._lock:
            if external_id is None:
                self._authorize_as.pop(platform, None)
                return None
            if (platform, external_id) not in self._accounts:
                self.add_account(
                    platform, external_id, handle=handle, name=name, followers=followers or 1000
                )
            else:
                account = self._accounts[(platform, external_id)]
                account.handle = handle or account.handle
                account.name = name or account.name
                if followers is not None:
                    account.followers, account.anchor = followers, _today()
            self._authorize_as[platform] = external_id
            return external_id

    def deny_next(self, platform: str, n: int = 1) -> None:
        """The next n authorizations come back with error=access_denied (the person said no)."""
        with self._lock:
            self._deny[platform] += n

    # --- failures and limits (test controls)

    def deprecate(self, platform: str, metric_name: str) -> None:
        """The platform's own metric (or field, or statistics resource) goes away: Graph
        insights and YouTube Analytics answer their "invalid metric" 400, LinkedIn resources
        404, fields vanish from LinkedIn statistics, X public_metrics and TikTok videos."""
        with self._lock:
            self._deprecated.setdefault(platform, set()).add(metric_name)

    def fail_next(self, platform: str, n: int = 1, status: int = 500) -> None:
        """The next n requests to the platform (consent screen aside) answer `status`."""
        with self._lock:
            self._fail.setdefault(platform, deque()).extend([status] * n)

    def rate_limit(self, platform: str, n: int = 1, retry_after: float | None = 30.0) -> None:
        """The next n requests are refused the platform's way for too many calls: a 429 with
        Retry-After (LinkedIn, X, YouTube, TikTok), Graph's code 80001/80002 with
        estimated_time_to_regain_access in minutes (Meta)."""
        with self._lock:
            self._throttle.setdefault(platform, deque()).extend([retry_after] * n)

    def usage(self, platform: str, percent: int | None, *, regain_minutes: int = 0) -> None:
        """Meta: every answer's X-App-Usage and X-Business-Use-Case-Usage say `percent` (and
        estimated_time_to_regain_access); None goes back to the real count."""
        with self._lock:
            if percent is None:
                self._usage.pop(platform, None)
            else:
                self._usage[platform] = (percent, regain_minutes)

    def set_remaining(self, platform: str, remaining: int, reset_in: float = 60.0) -> None:
        """X: the shared rate-limit window has `remaining` calls left until `reset_in` seconds
        from now (headers say so; once spent, 429). YouTube: `remaining` Data API quota units
        until then (once spent, 403 quotaExceeded)."""
        with self._lock:
            limit = 900 if platform == "x" else 10_000
            self._remaining[platform] = (remaining, time.time() + reset_in, limit)

    # --- what happened

    def count(self, platform: str | None = None, path_contains: str | None = None) -> int:
        with self._lock:
            if path_contains is None:
                if platform is None:
                    return sum(self._counts.values())
                return self._counts[platform]
            return sum(
                1
                for r in self.requests
                if (platform is None or r.platform == platform) and path_contains in r.path
            )

    def followers(self, platform: str, external_id: str, day: date) -> int:
        """The follower count the platform shows for the account on `day`."""
        return self.account(platform, external_id).total(day)

    def expected(self, platform: str, external_id: str, day: date) -> dict[str, int]:
        """What `daily_metrics` must give for the day, in our metric names. Platforms without a
        follower history (all but Facebook) have no "followers" here: the profile has today's.
        Post-derived figures (X, Instagram engagements, TikTok) count the posts published that
        day with their lifetime figures."""
        account = self.account(platform, external_id)
        today = _today()
        if day > today:
            return {}
        audience = account.audience(day)
        posts = account.posts(day)
        out: dict[str, int] = {"posts_published": len(posts)}
        if platform == "facebook_page":
            out |= {
                "followers": account.total(day),
                "follower_change": account.change(day),
                "impressions": audience.impressions,
                "reach": audience.reach,
                "engagements": audience.engagements,
                "video_views": audience.video_views,
            }
        elif platform == "instagram_business":
            out |= {
                "impressions": audience.impressions,
                "reach": audience.reach,
                "engagements": sum(p.likes + p.comments for p in posts),
            }
            if day >= today - timedelta(days=29):
                out["follower_change"] = account.change(day)
        elif platform == "linkedin_organization":
            out |= {
                "follower_change": account.change(day),
                "impressions": audience.impressions,
                "reach": audience.reach,
                "engagements": audience.engagements,
            }
        elif platform == "x":
            out |= {
                "impressions": sum(p.impressions for p in posts),
                "engagements": sum(p.likes + p.shares + p.comments + p.quotes for p in posts),
            }
        elif platform == "youtube":
            out |= {
                "follower_change": account.change(day),
                "engagements": audience.engagements,
                "video_views": audience.video_views,
            }
        elif platform == "tiktok":
            out |= {
                "video_views": sum(p.views for p in posts),
                "engagements": sum(p.likes + p.comments + p.shares for p in posts),
            }
        return out

    # --- internals: accounts, tokens

    def _check_platform(self, platform: str) -> None:
        if platform not in _FAMILIES:
            raise KeyError(f"unknown platform {platform!r}")

    def _new_id(self, platform: str) -> str:
        while True:
            if platform == "facebook_page":
                candidate = str(100_000_000_000_000 + secrets.randbelow(10**14))
            elif platform == "instagram_business":
                candidate = "17841" + str(secrets.randbelow(10**12)).rjust(12, "0")
            elif platform == "linkedin_organization":
                candidate = str(10_000_000 + secrets.randbelow(90_000_000))
            elif platform == "x":
                candidate = str(10**18 + secrets.randbelow(9 * 10**18))
            elif platform == "youtube":
                candidate = "UC" + secrets.token_urlsafe(17)[:22]
            else:
                candidate = "-000" + uuid.uuid4().hex[:28]
            if (platform, candidate) not in self._accounts:
                return candidate

    def _lookup(self, platform: str, external_id: str) -> Account | None:
        account = self._accounts.get((platform, external_id))
        if account is None and self.accounts_from_seed:
            account = self._seed_account(platform, external_id)
        return account

    def _seed_account(self, platform: str, external_id: str) -> Account:
        size = _u(platform, external_id, "size")
        account = Account(
            platform=platform,
            external_id=external_id,
            handle=f"seed_{_b64id(8, platform, external_id).lower()}",
            name=f"Seed {external_id[-6:]}",
            followers=int(100 * 1000 ** (size**2)),  # skewed: most small, some very large
            anchor=SEED_ANCHOR,
        )
        self._accounts[(platform, external_id)] = account
        return account

    def _scopes(self, platform: str) -> tuple[str, ...]:
        return {
            "facebook_page": ("pages_show_list", "pages_read_engagement", "read_insights"),
            "instagram_business": ("instagram_basic", "instagram_manage_insights"),
            "linkedin_organization": ("r_organization_admin", "r_organization_social"),
            "x": ("tweet.read", "users.read", "offline.access"),
            "youtube": ("https://www.googleapis.com/auth/youtube.readonly",),
            "tiktok": ("user.info.basic", "video.list"),
        }[platform]

    def _new_access(
        self, platform: str, external_id: str, scope: str, ttl: float | None = None
    ) -> _Token:
        prefix = _TOKEN_PREFIX[platform][0]
        value = prefix + secrets.token_urlsafe(32)
        token = _Token(value, platform, external_id, time.time() + (ttl or self.token_ttl), scope)
        self._tokens[value] = token
        return token

    def _new_refresh(self, platform: str, external_id: str, scope: str) -> str | None:
        prefix = _TOKEN_PREFIX[platform][1]
        if prefix is None:
            return None
        value = prefix + secrets.token_urlsafe(40)
        self._refresh[value] = _Refresh(value, platform, external_id, scope)
        return value

    def _seed_token(self, platform: str, value: str | None) -> tuple[str, str] | None:
        if not self.accounts_from_seed or not value:
            return None
        prefix = f"sim-{platform}-"
        if value.startswith(prefix) and len(value) > len(prefix):
            return platform, value[len(prefix) :]
        return None

    def _account_for(self, platform: str, value: str | None, family: _Family) -> Account:
        seeded = self._seed_token(platform, value)
        if seeded is not None:
            return self._lookup(*seeded) or self._seed_account(*seeded)
        if not value:
            raise family.unauthorized("is missing")
        token = self._tokens.get(value)
        if token is None or token.platform != platform:
            raise family.unauthorized("is invalid")
        if token.revoked:
            raise family.unauthorized("has been revoked")
        if token.expires_at <= time.time():
            raise family.unauthorized("has expired")
        return self._accounts[(platform, token.external_id)]

    def _revoke_value(self, value: str) -> None:
        if value in self._tokens:
            self._tokens[value].revoked = True
        if value in self._refresh:
            self._refresh[value].revoked = True

    def _is_deprecated(self, platform: str, name: str) -> bool:
        return name in self._deprecated.get(platform, ())

    def _deprecated_names(self, platform: str) -> set[str]:
        return self._deprecated.get(platform, set())

    def _client_ok(self, platform: str, client_id: str | None, secret: str | None = None) -> bool:
        if self._clients is None:
            return bool(client_id)
        known = self._clients.get(platform)
        if known is None or client_id != known[0]:
            return False
        return secret is None or secrets.compare_digest(secret, known[1])

    # --- internals: OAuth

    def _authorize(self, ctx: _Ctx) -> Response:
        q = ctx.query
        client = q.get("client_id") or q.get("client_key")
        if not self._client_ok(ctx.platform, client):
            raise _Reply(400, {"error": "invalid_client", "error_description": "Unknown client"})
        redirect = q.get("redirect_uri")
        if not redirect or q.get("response_type") != "code":
            raise _Reply(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "redirect_uri and response_type=code needed",
                },
            )
        if not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
            raise _Reply(
                400, {"error": "invalid_request", "error_description": "PKCE with S256 is required"}
            )
        separator = "&" if "?" in redirect else "?"
        state = q.get("state")
        if self._deny[ctx.platform] > 0:
            self._deny[ctx.platform] -= 1
            answer = {"error": "access_denied", "error_description": "The user denied access"}
            if state is not None:
                answer["state"] = state
            return Response(
                status_code=302, headers={"location": redirect + separator + urlencode(answer)}
            )
        external_id = self._authorize_as.get(ctx.platform) or self.add_account(ctx.platform)
        code = secrets.token_urlsafe(24)
        scope = q.get("scope", "")
        self._grants[code] = _Grant(
            code=code,
            platform=ctx.platform,
            external_id=external_id,
            client_id=client or "",
            redirect_uri=redirect,
            challenge=q["code_challenge"],
            scope=" ".join(s for s in re.split(r"[ ,]+", scope) if s),
            expires_at=ctx.now + CODE_TTL,
        )
        answer = {"code": code}
        if state is not None:
            answer["state"] = state
        return Response(
            status_code=302, headers={"location": redirect + separator + urlencode(answer)}
        )

    def _token(self, ctx: _Ctx) -> Json:
        family = self._families[ctx.platform]
        params = ctx.params
        client_id, secret = ctx.basic or (None, None)
        client_id = client_id or params.get("client_id") or params.get("client_key")
        secret = secret or params.get("client_secret")
        if not self._client_ok(ctx.platform, client_id, secret or ""):
            raise family.token_error("invalid_client", "Client authentication failed.", 401)
        grant = params.get("grant_type") or ("authorization_code" if "code" in params else "")
        if grant == "authorization_code":
            access, refresh = self._exchange_code(ctx, family, params, client_id or "")
        elif grant == "refresh_token":
            access, refresh = self._exchange_refresh(ctx, family, params.get("refresh_token"))
        elif grant == "fb_exchange_token" and isinstance(family, _Meta):
            value = params.get("fb_exchange_token")
            try:
                account = self._account_for(ctx.platform, value, family)
            except _Reply:
                raise family.token_error("invalid_grant", "Invalid OAuth access token.") from None
            scope = self._tokens[value].scope if value in self._tokens else ""
            access, refresh = self._new_access(ctx.platform, account.external_id, scope), None
        else:
            raise family.token_error("unsupported_grant_type", f"Unsupported grant: {grant}")
        return family.token_body(access, refresh, grant, self.refresh_ttl)

    def _exchange_code(
        self, ctx: _Ctx, family: _Family, params: dict[str, str], client_id: str
    ) -> tuple[_Token, str | None]:
        grant = self._grants.get(params.get("code", ""))
        if grant is None or grant.platform != ctx.platform or grant.used:
            raise family.token_error("invalid_grant", "This authorization code has been used.")
        grant.used = True  # once, even when the rest is wrong: a stolen code is burnt
        if grant.expires_at <= ctx.now:
            raise family.token_error("invalid_grant", "The authorization code has expired.")
        if params.get("redirect_uri") != grant.redirect_uri:
            raise family.token_error("invalid_grant", "redirect_uri does not match.")
        if self._clients is not None and client_id != grant.client_id:
            raise family.token_error("invalid_grant", "The code was issued to another client.")
        verifier = params.get("code_verifier", "")
        if not verifier or not secrets.compare_digest(_s256(verifier), grant.challenge):
            raise family.token_error("invalid_grant", "code_verifier does not match.")
        access = self._new_access(ctx.platform, grant.external_id, grant.scope)
        return access, self._new_refresh(ctx.platform, grant.external_id, grant.scope)

    def _exchange_refresh(
        self, ctx: _Ctx, family: _Family, value: str | None
    ) -> tuple[_Token, str | None]:
        if isinstance(family, _Meta):
            raise family.token_error("unsupported_grant_type", "Meta has no refresh tokens.")
        seeded = self._seed_token(ctx.platform, value)
        if seeded is not None:
            self._lookup(*seeded)
            access = _Token(
                f"sim-{ctx.platform}-{seeded[1]}",
                ctx.platform,
                seeded[1],
                time.time() + self.token_ttl,
                "",
            )
            return access, value
        refresh = self._refresh.get(value or "")
        if refresh is None or refresh.platform != ctx.platform or refresh.revoked:
            raise family.token_error("invalid_grant", "Token has been expired or revoked.")
        access = self._new_access(ctx.platform, refresh.external_id, refresh.scope)
        if ROTATES_REFRESH_TOKENS.get(ctx.platform):
            refresh.revoked = True
            return access, self._new_refresh(ctx.platform, refresh.external_id, refresh.scope)
        return access, refresh.value

    # --- internals: HTTP

    async def _health(self, request: Request) -> Response:
        return _response(200, {"ok": True})

    async def _stats(self, request: Request) -> Response:
        with self._lock:
            return _response(
                200,
                {
                    "requests": dict(self._counts),
                    "accounts": len(self._accounts),
                    "quota_units_used": self.quota_units_used,
                },
            )

    async def _config(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            if "latency" in body:
                self.latency = float(body["latency"])
            if "token_ttl" in body:
                self.token_ttl = int(body["token_ttl"])
        return _response(200, {"latency": self.latency, "token_ttl": self.token_ttl})

    async def _handle(self, request: Request) -> Response:
        platform = request.path_params["platform"]
        family = self._families.get(platform)
        if family is None:
            return _response(404, {"error": f"no platform {platform!r} here"})
        raw = await request.body()
        kind = request.headers.get("content-type", "")
        form: dict[str, str] = {}
        body: Json = None
        if raw and "json" in kind:
            try:
                body = json.loads(raw)
            except ValueError:
                return _response(400, {"error": "invalid_json"})
        elif raw:
            form = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
        now = time.time()
        ctx = _Ctx(
            platform=platform,
            method=request.method,
            path="/" + request.path_params["path"],
            query=dict(request.query_params),
            form=form,
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            now=now,
        )
        with self._lock:
            self._counts[platform] += 1
            if self._record:
                self.requests.append(SimRequest(ctx.method, ctx.path, platform, now, ctx.query))
            delay = self.latency
        if delay > 0:
            await asyncio.sleep(delay)
        with self._lock:
            return self._dispatch(family, ctx)

    def _dispatch(self, family: _Family, ctx: _Ctx) -> Response:
        route = family.match(ctx.method, ctx.path)
        try:
            if route is None:
                raise family.not_found(ctx)
            name, handler, groups = route
            if isinstance(family, _Meta) and name not in {
                "authorize",
                "token",
                "me_accounts",
                "me",
            }:
                ctx.object_id = groups[0]
                self._meta_last_object[ctx.platform] = groups[0]
            if name != "authorize":
                failures = self._fail.get(ctx.platform)
                if failures:
                    raise family.server_error(failures.popleft())
                throttles = self._throttle.get(ctx.platform)
                if throttles:
                    raise family.throttled(throttles.popleft())
                family.before(ctx, name)
            answer = handler(ctx, *groups)
            if isinstance(answer, Response):
                return answer
            status, body, extra = 200, answer, {}
        except _Reply as reply:
            status, body, extra = reply.status, reply.body, reply.headers
        headers = {**family.usage_headers(ctx), **ctx.out, **extra}
        return _response(status, body, headers)


# ---------------------------------------------------------------- command line


def _clients_from(value: str | None) -> dict[str, tuple[str, str]] | None:
    if not value:
        return None
    raw = json.loads(value)
    clients: dict[str, tuple[str, str]] = {}
    for platform, client in raw.items():
        if isinstance(client, dict):
            clients[platform] = (client["client_id"], client["client_secret"])
        else:
            clients[platform] = (client[0], client[1])
    return clients


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the social platform simulator.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument(
        "--accounts-from-seed",
        action="store_true",
        help="accept any token sim-<platform>-<external id>; make accounts on first use",
    )
    parser.add_argument(
        "--clients",
        default=os.environ.get("SOCIAL_CLIENTS"),
        help='JSON {platform: {"client_id": ..., "client_secret": ...}} (default: '
        "SOCIAL_CLIENTS; none: any client)",
    )
    parser.add_argument("--token-ttl", type=int, default=3600)
    args = parser.parse_args(argv)
    sim = PlatformSimulator(
        clients=_clients_from(args.clients),
        latency=args.latency,
        accounts_from_seed=args.accounts_from_seed,
        record_requests=False,
    )
    sim.token_ttl = args.token_ttl
    sim.serve_forever(args.port)


if __name__ == "__main__":
    main()
