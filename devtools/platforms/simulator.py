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
  out: 403 ``quotaExceeded``), Analytics ``/v2/reports`` (its own quota, not counted);
  ``/youtube/v3/videos`` and the resumable ``/upload/youtube/v3/videos`` (1,600 units; a daily
  quota of 10,000 by default, ``youtube_daily_quota`` in ``/_sim/config``). See ``youtube``.
* tiktok: ``/v2/user/info/`` (GET, POST accepted too), ``POST /v2/video/list/`` (cursor = create
  time in ms), error envelope ``{"error": {"code": ...}}``; the Content Posting API's direct post
  (creator info, init at 6 a minute per token, chunked upload, status fetch) and
  ``/v2/video/query/``. See ``tiktok``.

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

Run alone (the benchmark does): ``python -m devtools.platforms --port N --latency 0.1
[--accounts-from-seed]``. With ``--accounts-from-seed`` any token ``sim-<platform>-<external
id>`` is valid (as access and as refresh token) and its account is made on first use. Clients
come from ``--clients`` or ``SOCIAL_CLIENTS`` (JSON as in the settings); without either, any
client is accepted. ``GET /_sim/stats`` answers request counts, the posts created per platform
and how many of them were duplicates (and the same for replies, with the webhooks sent),
``POST /_sim/config`` sets ``latency``, ``token_ttl``, ``youtube_daily_quota`` and ``webhook_url``.

The community inbox: ``add_community_item`` (or ``POST /_sim/community``) puts a comment, a
reply, a mention or a private message on an account; the platform's own endpoints serve it
and take replies and moderation (see each dialect), and the simulator keeps the account's
replies (``replies_of``, ``duplicate_replies``). Platforms that push (Meta) sign a webhook for
each new item (``webhook_payload`` gives body and headers; with ``set_webhook_target(url)``
they are POSTed to ``{url}/v1/platform-webhooks/{platform}``, one at a time, in order, from
the simulator's loop); ``webhook_faults`` duplicates, reorders or mis-signs the next ones,
``wait_webhooks`` waits until all were answered, ``webhook_deliveries`` lists them. Faults
``reply_timeout`` and ``reply_500_after_create`` (``fault``) make the next reply and lose its
answer.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devtools.platforms.community import Community
from devtools.platforms.core import (
    CODE_TTL,
    INBOX_FAULTS,
    PUBLISH_FAULTS,
    ROTATES_REFRESH_TOKENS,
    TOKEN_PREFIX,
    AccessToken,
    CommunityItem,
    CreatedPost,
    Ctx,
    Dialect,
    Grant,
    Json,
    RefreshToken,
    Reply,
    SimRequest,
    json_response,
    s256,
)
from devtools.platforms.figures import (
    SEED_ANCHOR,
    Account,
    b64id,
    today_utc,
    unit_of,
)
from devtools.platforms.linkedin import LinkedInDialect
from devtools.platforms.meta import InstagramDialect, MetaDialect
from devtools.platforms.tiktok import TikTokDialect
from devtools.platforms.x import XDialect
from devtools.platforms.youtube import YouTubeDialect

DIALECTS: dict[str, type[Dialect]] = {
    "facebook_page": MetaDialect,
    "instagram_business": InstagramDialect,
    "linkedin_organization": LinkedInDialect,
    "x": XDialect,
    "youtube": YouTubeDialect,
    "tiktok": TikTokDialect,
}

DEFAULT_APP_SECRET = "sim-app-secret"
"""Webhooks' signing secret when the simulator accepts any client."""
HOLD_SECONDS = 2.0
"""How long an out-of-order push waits for the push meant to overtake it."""


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook POST the simulator made, and the status it got (None: no answer)."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None


# ---------------------------------------------------------------- the simulator


_BINARY_BODIES = ("multipart/", "application/octet-stream", "image/", "video/")
"""Media uploads: kept whole in Ctx.raw, never parsed as a form."""


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
        self._families = {p: cls(self, p) for p, cls in DIALECTS.items()}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        """The server's event loop: webhook pushes are sent from it."""
        self._webhook_client: httpx.AsyncClient | None = None
        self._webhook_lock: asyncio.Lock | None = None
        self._webhook_idle = threading.Condition(self._lock)
        self.webhook_url: str | None = None
        self.app = Starlette(
            routes=[
                Route("/_sim/health", self._health, methods=["GET"]),
                Route("/_sim/stats", self._stats, methods=["GET"]),
                Route("/_sim/config", self._config, methods=["POST"]),
                Route("/_sim/community", self._add_community, methods=["POST"]),
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
            self._loop = loop
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
            self._tokens: dict[str, AccessToken] = {}
            self._refresh: dict[str, RefreshToken] = {}
            self._grants: dict[str, Grant] = {}
            self._authorize_as: dict[str, str] = {}
            self._deny: Counter[str] = Counter()
            self._deprecated: dict[str, set[str]] = {}
            self._fail: dict[str, deque[int]] = {}
            self._throttle: dict[str, deque[tuple[float | None, str | None]]] = {}
            self._usage: dict[str, tuple[int, int]] = {}
            self._remaining: dict[str, tuple[int, float, int]] = {}
            self._x_windows: dict[tuple[str, str], list[float]] = {}
            self._meta_calls: Counter[tuple[str, str, float]] = Counter()
            self._meta_last_object: dict[str, str] = {}
            self.created_posts: list[CreatedPost] = []
            self._faults: dict[str, deque[str]] = {}
            self.hang_seconds = 30.0
            self._reset_community()
            for family in self._families.values():
                family.reset()

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
                anchor=today_utc(),
            )
            return external_id

    def dialect(self, platform: str) -> Dialect:
        """One platform's dialect, for its own test controls (YouTube's upload sessions...)."""
        self._check_platform(platform)
        return self._families[platform]

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
                    account.followers, account.anchor = followers, today_utc()
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

    def rate_limit(
        self,
        platform: str,
        n: int = 1,
        retry_after: float | None = 30.0,
        *,
        token: str | None = None,
    ) -> None:
        """The next n requests are refused the platform's way for too many calls: a 429 with
        Retry-After (LinkedIn, X, YouTube, TikTok), Graph's code 80001/80002 with
        estimated_time_to_regain_access in minutes (Meta). With `token`, only requests bearing
        it count: another caller of the shared simulator cannot take the refusal."""
        with self._lock:
            self._throttle.setdefault(platform, deque()).extend([(retry_after, token)] * n)

    def _take_throttle(self, platform: str, bearer: str | None) -> tuple[bool, float | None]:
        throttles = self._throttle.get(platform, deque())
        for index, (retry_after, token) in enumerate(throttles):
            if token is None or token == bearer:
                del throttles[index]
                return True, retry_after
        return False, None

    def usage(self, platform: str, percent: int | None, *, regain_minutes: int = 0) -> None:
        """Meta: every answer's X-App-Usage and X-Business-Use-Case-Usage say `percent` (and
        estimated_time_to_regain_access); None goes back to the real count."""
        with self._lock:
            if percent is None:
                self._usage.pop(platform, None)
            else:
                self._usage[platform] = (percent, regain_minutes)

    def set_remaining(
        self, platform: str, remaining: int, reset_in: float = 60.0, *, token: str | None = None
    ) -> None:
        """X: the shared rate-limit window has `remaining` calls left until `reset_in` seconds
        from now (headers say so; once spent, 429). YouTube: `remaining` Data API quota units
        until then (once spent, 403 quotaExceeded). With `token` (X only), the window is that
        token's alone: another caller of the shared simulator cannot spend its calls."""
        with self._lock:
            limit = 900 if platform == "x" else 10_000
            key = platform if token is None else f"{platform}:{token}"
            self._remaining[key] = (remaining, time.time() + reset_in, limit)

    # --- what happened

    # --- publishing (test controls and what the dialects call)

    def fault(self, platform: str, kind: str, n: int = 1) -> None:
        """Queue a fault for the platform's next `n` publications (PUBLISH_FAULTS) or replies
        (INBOX_FAULTS; error_before_create and rate_limited strike replies too)."""
        if kind not in PUBLISH_FAULTS + INBOX_FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {PUBLISH_FAULTS + INBOX_FAULTS}")
        self._check_platform(platform)
        with self._lock:
            self._faults.setdefault(platform, deque()).extend([kind] * n)

    def take_fault(self, platform: str, *kinds: str) -> str | None:
        """The next queued fault if it is one of `kinds` (a dialect asks at the step where each
        kind strikes), consumed; None otherwise."""
        with self._lock:
            queued = self._faults.get(platform)
            if queued and queued[0] in kinds:
                return queued.popleft()
            return None

    def record_post(
        self,
        platform: str,
        account: str,
        post_id: str,
        text: str,
        *,
        media: tuple[str, ...] = (),
        permalink: str = "",
        marker: str | None = None,
    ) -> CreatedPost:
        post = CreatedPost(platform, account, post_id, text, media, time.time(), permalink, marker)
        with self._lock:
            self.created_posts.append(post)
        return post

    def posts_of(self, platform: str, account: str) -> list[CreatedPost]:
        with self._lock:
            return [p for p in self.created_posts if (p.platform, p.account) == (platform, account)]

    def duplicates(self) -> list[CreatedPost]:
        """Posts made again on the same account with the same text and media."""
        with self._lock:
            return self._duplicates_locked()

    def _duplicates_locked(self) -> list[CreatedPost]:
        seen: set[tuple[str, str, str, tuple[str, ...]]] = set()
        again: list[CreatedPost] = []
        for post in self.created_posts:
            key = (post.platform, post.account, post.text, post.media)
            if key in seen:
                again.append(post)
            seen.add(key)
        return again

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
        today = today_utc()
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
        if platform not in DIALECTS:
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
        size = unit_of(platform, external_id, "size")
        account = Account(
            platform=platform,
            external_id=external_id,
            handle=f"seed_{b64id(8, platform, external_id).lower()}",
            name=f"Seed {external_id[-6:]}",
            followers=int(100 * 1000 ** (size**2)),  # skewed: most small, some very large
            anchor=SEED_ANCHOR,
        )
        self._accounts[(platform, external_id)] = account
        return account

    def _scopes(self, platform: str) -> tuple[str, ...]:
        """What a token issued without the OAuth dance is granted: reading and publishing."""
        return {
            "facebook_page": (
                "pages_show_list",
                "pages_read_engagement",
                "read_insights",
                "pages_manage_posts",
                "pages_read_user_content",
                "pages_manage_engagement",
                "pages_messaging",
            ),
            "instagram_business": (
                "instagram_basic",
                "instagram_manage_insights",
                "instagram_content_publish",
                "instagram_manage_comments",
                "instagram_manage_messages",
            ),
            "linkedin_organization": (
                "r_organization_admin",
                "r_organization_social",
                "w_organization_social",
            ),
            "x": ("tweet.read", "users.read", "offline.access", "tweet.write", "media.write"),
            "youtube": (
                "https://www.googleapis.com/auth/youtube.readonly",
                "https://www.googleapis.com/auth/youtube.upload",
            ),
            "tiktok": ("user.info.basic", "video.list", "video.publish"),
        }[platform]

    def _new_access(
        self, platform: str, external_id: str, scope: str, ttl: float | None = None
    ) -> AccessToken:
        prefix = TOKEN_PREFIX[platform][0]
        value = prefix + secrets.token_urlsafe(32)
        token = AccessToken(
            value, platform, external_id, time.time() + (ttl or self.token_ttl), scope
        )
        self._tokens[value] = token
        return token

    def _new_refresh(self, platform: str, external_id: str, scope: str) -> str | None:
        prefix = TOKEN_PREFIX[platform][1]
        if prefix is None:
            return None
        value = prefix + secrets.token_urlsafe(40)
        self._refresh[value] = RefreshToken(value, platform, external_id, scope)
        return value

    def _seed_token(self, platform: str, value: str | None) -> tuple[str, str] | None:
        if not self.accounts_from_seed or not value:
            return None
        prefix = f"sim-{platform}-"
        if value.startswith(prefix) and len(value) > len(prefix):
            return platform, value[len(prefix) :]
        return None

    def _account_for(self, platform: str, value: str | None, family: Dialect) -> Account:
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

    def _authorize(self, ctx: Ctx) -> Response:
        q = ctx.query
        client = q.get("client_id") or q.get("client_key")
        if not self._client_ok(ctx.platform, client):
            raise Reply(400, {"error": "invalid_client", "error_description": "Unknown client"})
        redirect = q.get("redirect_uri")
        if not redirect or q.get("response_type") != "code":
            raise Reply(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "redirect_uri and response_type=code needed",
                },
            )
        if not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
            raise Reply(
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
        self._grants[code] = Grant(
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

    def _token(self, ctx: Ctx) -> Json:
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
        elif grant == "fb_exchange_token" and isinstance(family, MetaDialect):
            value = params.get("fb_exchange_token")
            try:
                account = self._account_for(ctx.platform, value, family)
            except Reply:
                raise family.token_error("invalid_grant", "Invalid OAuth access token.") from None
            scope = self._tokens[value].scope if value in self._tokens else ""
            access, refresh = self._new_access(ctx.platform, account.external_id, scope), None
        else:
            raise family.token_error("unsupported_grant_type", f"Unsupported grant: {grant}")
        return family.token_body(access, refresh, grant, self.refresh_ttl)

    def _exchange_code(
        self, ctx: Ctx, family: Dialect, params: dict[str, str], client_id: str
    ) -> tuple[AccessToken, str | None]:
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
        if not verifier or not secrets.compare_digest(s256(verifier), grant.challenge):
            raise family.token_error("invalid_grant", "code_verifier does not match.")
        access = self._new_access(ctx.platform, grant.external_id, grant.scope)
        return access, self._new_refresh(ctx.platform, grant.external_id, grant.scope)

    def _exchange_refresh(
        self, ctx: Ctx, family: Dialect, value: str | None
    ) -> tuple[AccessToken, str | None]:
        if isinstance(family, MetaDialect):
            raise family.token_error("unsupported_grant_type", "Meta has no refresh tokens.")
        seeded = self._seed_token(ctx.platform, value)
        if seeded is not None:
            self._lookup(*seeded)
            access = AccessToken(
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
        return json_response(200, {"ok": True})

    async def _stats(self, request: Request) -> Response:
        with self._lock:
            return json_response(
                200,
                {
                    "requests": dict(self._counts),
                    "accounts": len(self._accounts),
                    "quota_units_used": self.quota_units_used,
                    # What the publishing benchmark counts: posts made, and posts made again.
                    "posts_created": dict(Counter(p.platform for p in self.created_posts)),
                    "duplicates": len(self._duplicates_locked()),
                    # What the inbox benchmark and crash tests count.
                    "community_items": len(self._community),
                    "replies_created": sum(1 for i in self._community.values() if i.target),
                    "duplicate_replies": len(self.duplicate_replies()),
                    "webhooks_sent": len(self.webhook_deliveries),
                    "webhooks_pending": self._webhook_pending,
                },
            )

    async def _config(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self._loop = asyncio.get_running_loop()  # serve_forever: pushes leave from here
            if "webhook_url" in body:
                self.webhook_url = body["webhook_url"] or None
            if "latency" in body:
                self.latency = float(body["latency"])
            if "token_ttl" in body:
                self.token_ttl = int(body["token_ttl"])
            if "youtube_daily_quota" in body:
                youtube = self._families["youtube"]
                assert isinstance(youtube, YouTubeDialect)
                youtube.daily_quota = int(body["youtube_daily_quota"])
        return json_response(
            200,
            {"latency": self.latency, "token_ttl": self.token_ttl, "webhook_url": self.webhook_url},
        )

    async def _add_community(self, request: Request) -> Response:
        """``POST /_sim/community`` {platform, account, kind, text, author_id, author_name?,
        parent?, thread?, push?}: add_community_item for a simulator in its own process."""
        self._loop = asyncio.get_running_loop()
        try:
            body = await request.json()
            item_id = self.add_community_item(
                body["platform"],
                body["account"],
                body["kind"],
                body["text"],
                author_id=body["author_id"],
                author_name=body.get("author_name"),
                parent=body.get("parent"),
                thread=body.get("thread"),
                push=bool(body.get("push", True)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return json_response(400, {"error": f"bad community item: {exc}"})
        return json_response(200, {"id": item_id})

    async def _handle(self, request: Request) -> Response:
        platform = request.path_params["platform"]
        family = self._families.get(platform)
        if family is None:
            return json_response(404, {"error": f"no platform {platform!r} here"})
        raw = await request.body()
        kind = request.headers.get("content-type", "")
        form: dict[str, str] = {}
        body: Json = None
        if raw and "json" in kind:
            try:
                body = json.loads(raw)
            except ValueError:
                return json_response(400, {"error": "invalid_json"})
        elif raw and not kind.startswith(_BINARY_BODIES):
            form = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
        now = time.time()
        ctx = Ctx(
            platform=platform,
            method=request.method,
            path="/" + request.path_params["path"],
            query=dict(request.query_params),
            form=form,
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            now=now,
            raw=raw,
        )
        with self._lock:
            self._counts[platform] += 1
            if self._record:
                self.requests.append(SimRequest(ctx.method, ctx.path, platform, now, ctx.query))
            delay = self.latency
        if delay > 0:
            await asyncio.sleep(delay)
        with self._lock:
            response = self._dispatch(family, ctx)
        if ctx.hang:
            await asyncio.sleep(self.hang_seconds)
        return response

    def _dispatch(self, family: Dialect, ctx: Ctx) -> Response:
        route = family.match(ctx.method, ctx.path)
        try:
            if route is None:
                raise family.not_found(ctx)
            name, handler, groups = route
            if isinstance(family, MetaDialect) and name not in {
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
                throttled, retry_after = self._take_throttle(ctx.platform, ctx.bearer)
                if throttled:
                    raise family.throttled(retry_after)
                family.before(ctx, name)
            answer = handler(ctx, *groups)
            if isinstance(answer, Response):
                return answer
            status, body, extra = 200, answer, {}
        except Reply as reply:
            status, body, extra = reply.status, reply.body, reply.headers
        headers = {**family.usage_headers(ctx), **ctx.out, **extra}
        return json_response(status, body, headers)

    # --- the community inbox (test controls and what the dialects call)

    def _reset_community(self) -> None:
        self.webhook_url = None
        self._community: dict[tuple[str, str], CommunityItem] = {}
        self._by_account: dict[tuple[str, str], list[CommunityItem]] = {}
        """The same items per (platform, account), in the order they were kept."""
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._webhook_pending = 0
        self._webhook_faults: Counter[str] = Counter()
        self._held: tuple[str, bytes, dict[str, str]] | None = None
        self._held_timer: concurrent.futures.Future[None] | None = None

    def add_community_item(
        self,
        platform: str,
        account_external_id: str,
        kind: str,
        text: str,
        *,
        author_id: str,
        author_name: str | None = None,
        parent: str | None = None,
        thread: str | None = None,
        push: bool = True,
        created_at: datetime | None = None,
    ) -> str:
        """Someone comments on one of the account's posts, replies to a comment (`parent`),
        mentions the account or writes to it in private (kind comment | reply | mention |
        message); returns the item's id. A comment without `thread` goes under the account's
        latest post, a message into its conversation with the author; a reply takes its
        parent's thread. `push`: announced to the webhook target, if one is set."""
        self._check_platform(platform)
        if kind not in {"comment", "reply", "mention", "message"}:
            raise ValueError(f"unknown kind {kind!r}")
        family = self._families[platform]
        if isinstance(getattr(family, "community", None), Community):
            # LinkedIn, YouTube, X and TikTok keep their own (devtools/platforms/community.py).
            return family.add_community_item(  # type: ignore[attr-defined, no-any-return]
                account_external_id,
                kind,
                text,
                author_id=author_id,
                author_name=author_name,
                parent=parent,
                thread=thread,
                push=push,
                created_at=created_at,
            )
        with self._lock:
            account = self._lookup(platform, account_external_id)
            if account is None:
                raise KeyError(f"no account {account_external_id!r} on {platform}")
            above = self._community.get((platform, parent)) if parent else None
            if parent is not None and above is None:
                raise KeyError(f"no item {parent!r} on {platform}")
            item = CommunityItem(
                platform=platform,
                account=account_external_id,
                id=family.community_id(account, kind),
                kind=kind,
                text=text,
                author_id=author_id,
                author_name=author_name,
                created_at=(created_at.timestamp() if created_at else time.time()),
                parent=parent,
                thread=thread or (above.thread if above else None),
            )
            if item.thread is None:
                item.thread = family.community_thread(account, item)
            self._keep(item)
        if push:
            self.push_items(platform, [item.id])
        return item.id

    def community_item(self, platform: str, external_id: str) -> CommunityItem:
        with self._lock:
            return self._community[(platform, external_id)]

    def community(self, platform: str, account: str) -> list[CommunityItem]:
        """The account's items, deleted ones included, oldest first."""
        with self._lock:
            return sorted(self._by_account.get((platform, account), ()), key=lambda i: i.created_at)

    def _keep(self, item: CommunityItem) -> None:
        self._community[(item.platform, item.id)] = item
        self._by_account.setdefault((item.platform, item.account), []).append(item)

    def record_reply(self, item: CommunityItem) -> CommunityItem:
        """What a dialect calls when the API made a reply or a message of the account: kept,
        and announced to the webhook target as the platform would (an echo)."""
        with self._lock:
            self._keep(item)
        self.push_items(item.platform, [item.id])
        return item

    def replies_of(self, platform: str, account: str) -> list[Any]:
        """The replies and messages the API made for the account, oldest first."""
        own = getattr(self._families[platform], "community", None)
        if isinstance(own, Community):
            with self._lock:
                return own.replies_of(account)
        return [i for i in self.community(platform, account) if i.target is not None]

    def duplicate_replies(self) -> list[CommunityItem]:
        """Replies sent again: the same text to the same item (what exactly-once forbids)."""
        seen: set[tuple[str, str, str, str, bool]] = set()
        again: list[CommunityItem] = []
        with self._lock:
            replies = sorted(
                (i for i in self._community.values() if i.target is not None),
                key=lambda i: i.created_at,
            )
        for reply in replies:
            key = (reply.platform, reply.account, reply.target or "", reply.text, reply.private)
            if key in seen:
                again.append(reply)
            seen.add(key)
        with self._lock:
            for family in self._families.values():
                own = getattr(family, "community", None)
                if isinstance(own, Community):
                    again.extend(own.duplicate_replies())
        return again

    def app_secret(self, platform: str) -> str:
        """The secret webhooks are signed with: the platform client's secret."""
        if self._clients is not None and platform in self._clients:
            return self._clients[platform][1]
        return DEFAULT_APP_SECRET

    def webhook_payload(
        self, platform: str, items: Sequence[str], *, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The webhook the platform sends for `items` (ids): its body and its headers, signed
        with the app secret (or `secret`). For tests that post it themselves."""
        family = self._families[platform]
        own = getattr(family, "community", None)
        with self._lock:
            if isinstance(own, Community):  # LinkedIn's items live in its dialect's community
                found = [own.items[i] for i in items]
            else:
                found = [self._community[(platform, i)] for i in items]
            body = family.webhook_body(found)
        if body is None:
            raise ValueError(f"{platform} sends no webhooks")
        headers = {
            "Content-Type": "application/json",
            **family.webhook_headers(body, secret or self.app_secret(platform)),
        }
        return body, headers

    def set_webhook_target(self, url: str | None) -> None:
        """Pushes go to `{url}/v1/platform-webhooks/{platform}` (None: no pushes)."""
        with self._lock:
            self.webhook_url = url.rstrip("/") if url else None

    def webhook_faults(
        self, *, duplicate: int = 0, out_of_order: int = 0, bad_signature: int = 0
    ) -> None:
        """The next n pushes are sent twice (duplicate), held back until the push after them
        has gone (out_of_order: a parent comment arrives after its reply), or signed with a
        wrong secret (bad_signature)."""
        with self._lock:
            self._webhook_faults.update(
                duplicate=duplicate, out_of_order=out_of_order, bad_signature=bad_signature
            )

    def wait_webhooks(self, timeout: float = 10.0) -> bool:
        """Blocks until every push has been answered (or `timeout`): True when all were."""
        deadline = time.monotonic() + timeout
        with self._webhook_idle:
            while self._webhook_pending or self._held is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._webhook_idle.wait(left)
            return True

    def push_items(self, platform: str, items: Sequence[str]) -> None:
        """Announce `items` to the webhook target (nothing without one, or on a polled
        platform); sent from the simulator's loop, the caller does not wait."""
        with self._lock:
            if self.webhook_url is None:
                return
            try:
                body, headers = self.webhook_payload(platform, items)
            except ValueError:
                return  # the platform is polled
            faults = self._webhook_faults
            if faults["bad_signature"] > 0:
                faults["bad_signature"] -= 1
                body, headers = self.webhook_payload(platform, items, secret="not-the-app-secret")
            url = f"{self.webhook_url}/v1/platform-webhooks/{platform}"
            sends = [(url, body, headers)]
            if faults["duplicate"] > 0:
                faults["duplicate"] -= 1
                sends.append((url, body, headers))
            if self._held is not None:
                sends.append(self._held)
                self._held = None
                if self._held_timer is not None:
                    self._held_timer.cancel()  # no stray task left sleeping on the loop
                    self._held_timer = None
            elif faults["out_of_order"] > 0:
                faults["out_of_order"] -= 1
                held = sends.pop(0)
                self._held = held
                self._held_timer = self._schedule(self._release_held(held))
            for send in sends:
                self._webhook_pending += 1
                self._schedule(self._send_webhook(*send))

    def _schedule(self, coroutine: Any) -> concurrent.futures.Future[None]:
        if self._loop is None or self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("the simulator is not running: no loop to push webhooks from")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _release_held(self, held: tuple[str, bytes, dict[str, str]]) -> None:
        """A held push goes anyway when no other push follows it within HOLD_SECONDS."""
        await asyncio.sleep(HOLD_SECONDS)
        with self._lock:
            if self._held is not held:
                return
            self._held = None
            self._held_timer = None
            self._webhook_pending += 1
        await self._send_webhook(*held)

    async def _send_webhook(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        # One at a time, in the order scheduled (asyncio.Lock is fair): order is a fault's
        # business, never an accident.
        if self._webhook_lock is None:
            self._webhook_lock = asyncio.Lock()
        if self._webhook_client is None:
            self._webhook_client = httpx.AsyncClient(timeout=10.0)
        status: int | None = None
        try:
            async with self._webhook_lock:
                try:
                    answer = await self._webhook_client.post(url, content=body, headers=headers)
                    status = answer.status_code
                except httpx.HTTPError:
                    status = None
        finally:
            with self._webhook_idle:
                self.webhook_deliveries.append(WebhookDelivery(url, body, headers, status))
                self._webhook_pending -= 1
                self._webhook_idle.notify_all()


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
