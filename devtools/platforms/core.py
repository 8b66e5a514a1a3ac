"""What every simulated platform shares: the request context, the tokens and grants, the
replies, paging helpers, and ``Dialect``, the base of one platform's routes, error bodies and
rate-limit headers (``meta``, ``linkedin``, ``x``, ``youtube``, ``tiktok`` each subclass it)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from devtools.platforms.figures import (
    Account,
    Post,
)

if TYPE_CHECKING:
    from devtools.platforms.simulator import PlatformSimulator

CODE_TTL = 600.0
TOKEN_PREFIX = {
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


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    """The platform's own path (without the simulator's prefix)."""
    platform: str
    time: float
    query: dict[str, str]


@dataclass(frozen=True)
class CreatedPost:
    """A post the simulator made visible on an account: what tests and the benchmark count."""

    platform: str
    account: str
    """The account's external id."""
    post_id: str
    text: str
    media: tuple[str, ...]
    """The media ids or kinds the post carries."""
    created_at: float
    permalink: str
    marker: str | None = None
    """The id the flow handed out before the post existed (container, publish id, upload
    session), which reconciliation may look for."""


PUBLISH_FAULTS = (
    "timeout_after_create",
    "error_before_create",
    "rate_limited",
    "token_expires_mid_flow",
    "container_error",
    "quota_spent",
)
"""Faults a test can queue for a platform's next publication (see PlatformSimulator.fault)."""


@dataclass
class AccessToken:
    value: str
    platform: str
    external_id: str
    expires_at: float
    scope: str
    revoked: bool = False


@dataclass
class RefreshToken:
    value: str
    platform: str
    external_id: str
    scope: str
    revoked: bool = False


@dataclass
class Grant:
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
class Ctx:
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
    raw: bytes = b""
    """The request body as sent (media uploads; JSON and forms are parsed into body/form)."""
    hang: bool = False
    """Set by a route that created a post under the `timeout_after_create` fault: the answer
    is held back longer than any client waits."""

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


class Reply(Exception):
    def __init__(self, status: int, body: Json, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def json_response(status: int, body: Json, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def day_of(value: str) -> datetime:
    """A Graph-style time parameter: a Unix timestamp or a date (midnight UTC)."""
    if value.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rfc3339(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("o:"))
    except ValueError:
        return 0


def take_page(posts: Iterator[Post], offset: int, limit: int) -> tuple[list[Post], bool]:
    taken: list[Post] = []
    for i, post in enumerate(posts):
        if i < offset:
            continue
        if len(taken) == limit:
            return taken, True
        taken.append(post)
    return taken, False


def drop_fields(value: Json, names: set[str]) -> Json:
    """The answer without the fields a platform deprecated."""
    if not names:
        return value
    if isinstance(value, dict):
        return {k: drop_fields(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [drop_fields(v, names) for v in value]
    return value


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


Handler = Callable[..., Json]


class Dialect:
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
    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, {"error": "not_found", "path": ctx.path})

    def unauthorized(self, why: str) -> Reply:
        return Reply(401, {"error": "invalid_token", "error_description": why})

    def throttled(self, retry_after: float | None) -> Reply:
        headers = {"Retry-After": str(round(retry_after))} if retry_after is not None else {}
        return Reply(429, {"error": "rate_limited"}, headers)

    def server_error(self, status: int) -> Reply:
        return Reply(status, {"error": "server_error", "status": status})

    def token_error(self, error: str, description: str, status: int = 400) -> Reply:
        return Reply(status, {"error": error, "error_description": description})

    def token_body(
        self, access: AccessToken, refresh: str | None, grant: str, refresh_ttl: int
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

    def reset(self) -> None:
        """Forget the dialect's own publishing state (upload sessions...); sim.reset calls it."""

    def before(self, ctx: Ctx, name: str) -> None:
        """Rate accounting before a route runs (may answer instead)."""

    def usage_headers(self, ctx: Ctx) -> dict[str, str]:
        return {}

    def account(self, ctx: Ctx) -> Account:
        """The account the bearer token is for, or the platform's "bad token" answer."""
        return self.sim._account_for(ctx.platform, ctx.bearer, self)

    # --- the community inbox: a platform with one overrides these (see CommunityItem)

    def community_id(self, account: Account, kind: str) -> str:
        """A new id for an item of `kind` on `account`, in the platform's own format."""
        return str(1 + secrets.randbelow(9)) + str(secrets.randbelow(10**15)).rjust(15, "0")

    def community_thread(self, account: Account, item: CommunityItem) -> str | None:
        """The thread of an item added without one (the post a comment is under, the
        conversation a message belongs to); None: none."""
        return None

    def webhook_body(self, items: Sequence[CommunityItem]) -> bytes | None:
        """The platform's webhook body announcing `items` (one account's or several); None
        when the platform pushes nothing (it is polled)."""
        return None

    def webhook_headers(self, body: bytes, secret: str) -> dict[str, str]:
        """The headers that sign `body` the platform's way with the app's `secret`."""
        return {}


# ---------------------------------------------------------------- the community inbox


INBOX_FAULTS = ("reply_timeout", "reply_500_after_create")
"""Faults a test can queue for a platform's next reply (see PlatformSimulator.fault): the reply
is made, then its answer never comes (held past any client's timeout) or is a 500."""


@dataclass
class CommunityItem:
    """A comment, reply, mention or private message on an account, as the platform keeps it:
    what the polling endpoints serve, the webhooks announce, replies and moderation change."""

    platform: str
    account: str
    """The account's external id."""
    id: str
    kind: str
    """comment | reply | mention | message."""
    text: str
    author_id: str
    author_name: str | None
    created_at: float
    parent: str | None = None
    """The comment a reply answers."""
    thread: str | None = None
    """The post a comment is under; the conversation a message belongs to."""
    hidden: bool = False
    deleted: bool = False
    from_account: bool = False
    """Written by the account itself (its replies through the API)."""
    target: str | None = None
    """For a reply the API made: the item it answers (what duplicate_replies compares)."""
    private: bool = False
    """A private reply to a public comment."""
    recipient: str | None = None
    """For a message of the account: the person it went to."""
    verb: str = "add"
    """The last change a webhook would announce: add, edited, hide, unhide, remove."""
