"""What every platform connector speaks: the figures, the tokens, and the ways a call fails.

A connector turns one platform's endpoints into these types; nothing above it knows a
platform's URLs or response shapes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


class Platform(StrEnum):
    facebook_page = "facebook_page"
    instagram_business = "instagram_business"
    linkedin_organization = "linkedin_organization"
    x = "x"
    youtube = "youtube"
    tiktok = "tiktok"
    sandbox = "sandbox"


METRICS: tuple[str, ...] = (
    "followers",
    "follower_change",
    "impressions",
    "reach",
    "engagements",
    "posts_published",
    "video_views",
)
"""The daily figures we keep. A platform that lacks one leaves it empty (None)."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    """When the access token stops working (UTC); None when the platform does not say."""
    scope: str | None = None


@dataclass(frozen=True)
class Profile:
    external_id: str
    handle: str | None = None
    display_name: str | None = None
    followers: int | None = None


@dataclass
class DailyMetrics:
    """Figures per day and metric; a metric that failed is in `errors`, not in `days`."""

    days: dict[date, dict[str, int | None]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    """metric -> why it is missing this time (for example "deprecated: ...")."""

    def put(self, day: date, metric: str, value: int | None) -> None:
        self.days.setdefault(day, {})[metric] = value


class ConnectorError(Exception):
    """A call to a platform failed; the message is safe to show (no token in it)."""


class RateLimited(ConnectorError):
    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TokenInvalid(ConnectorError):
    """The platform refuses the token (revoked, expired beyond refresh): a person must
    reconnect the account."""


class PlatformUnavailable(ConnectorError):
    """5xx, timeouts, connection errors: worth retrying later."""


class Budget(Protocol):
    """A shared request budget (see social.ratebudget.RateBudget)."""

    async def acquire(self, key: str, *, cost: float = 1.0) -> None: ...

    async def pause(self, key: str, seconds: float) -> None: ...


class Connector(Protocol):
    platform: Platform
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    backfill_days: int
    """How far back the platform lets us read daily figures (at most 90 are asked)."""

    async def profile(self, token: TokenSet, external_id: str | None) -> Profile: ...

    async def daily_metrics(
        self, token: TokenSet, external_id: str, since: date, until: date
    ) -> DailyMetrics: ...

    async def refresh(self, refresh_token: str) -> TokenSet: ...


# --- publishing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaFile:
    """One media file of a post, downloaded by the worker to a temporary file: connectors read
    it in chunks and never hold a whole video in memory."""

    path: Path
    kind: str
    """image | video | gif | document (the item's own media type)."""
    content_type: str
    size: int
    alt_text: str = ""
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    """Seconds, for a video whose length could be read."""
    source_url: str | None = None
    """Where the item's media lives: platforms that pull media themselves (Instagram) take
    this instead of an upload."""

    def chunks(self, size: int) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            while block := handle.read(size):
                yield block


@dataclass(frozen=True)
class PostDraft:
    """What to publish on one account: the approved revision's text for this platform, its
    media, and when it was planned (reconciliation matches posts near that time)."""

    text: str
    media: Sequence[MediaFile]
    title: str
    """The item's title: YouTube's video title."""
    planned_at: datetime
    link: str | None = None
    """The first link of the text (Facebook and LinkedIn show it as a card)."""


@dataclass(frozen=True)
class PublishedPost:
    external_id: str
    permalink: str | None = None
    published_at: datetime | None = None


class PublishRejected(ConnectorError):
    """The platform definitely refused the post (a 4xx on the create call, a container in
    ERROR, a spent quota): nothing was published, and a person has to act on `reason`."""

    def __init__(self, reason: str, *, code: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        """A short key: rejected, quota_spent, media_rejected, media_expired..."""


class OutcomeUnknown(ConnectorError):
    """The create call was sent and no definite answer came back (a timeout, a dropped
    connection, a 5xx on the create call itself): the post may be live. Never retried;
    reconciliation (`Publisher.find`) looks for it."""


Remember = Callable[[dict[str, Any]], Awaitable[None]]
"""Saves (commits) values in the attempt's state before the connector goes on: an id the
platform handed out mid-flow (TikTok's publish id) that reconciliation will need."""


class Publisher(Protocol):
    """The publishing side of a connector, in two phases around the one call that makes a post
    visible.

    - `prepare` does everything that publishes nothing (media uploads, Instagram containers,
      a YouTube upload session) and may be retried freely; it returns a JSON-able `state` that
      is committed before `create` runs. `state` holds what an earlier attempt prepared, so a
      retry may reuse it.
    - `create` makes the post. A definite refusal raises PublishRejected; a 429 or a connection
      that never opened raises RateLimited / PlatformUnavailable (definitely not posted, worth
      retrying); anything that may have posted raises OutcomeUnknown.
    - `find` is reconciliation: the post if the account shows it (matched on an id kept in
      `state`, or on the text and a time after `since`), None if it does not (yet).
    - `resumable(state)`: True when `create` can run again on this state without any chance of
      a second post (a YouTube upload session makes at most one video).
    """

    async def prepare(
        self, token: TokenSet, external_id: str, draft: PostDraft, state: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def create(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        remember: Remember,
    ) -> PublishedPost: ...

    async def find(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        since: datetime,
    ) -> PublishedPost | None: ...

    def resumable(self, state: dict[str, Any]) -> bool: ...


@dataclass(frozen=True)
class PostFigures:
    """One published post's figures so far (None: the platform does not give it)."""

    impressions: int | None = None
    reach: int | None = None
    engagements: int | None = None
    video_views: int | None = None


class PostReader(Protocol):
    """Post-level figures of posts we published."""

    async def post_figures(
        self, token: TokenSet, external_id: str, post_id: str
    ) -> PostFigures: ...


# --- the community inbox ----------------------------------------------------------------------


class InboxKind(StrEnum):
    comment = "comment"
    """On one of the account's posts."""
    reply = "reply"
    """To a comment (ours or someone else's)."""
    mention = "mention"
    """The account named in someone else's post or comment."""
    message = "message"
    """Private (Messenger, Instagram Direct, X DM)."""
    review = "review"


@dataclass(frozen=True)
class InboundItem:
    """One thing the community said to or about an account, as a platform reports it (from a
    webhook or a poll). Times are UTC. The same platform item reported twice has the same
    (`account_external_id`, `external_id`): that pair is what dedupes."""

    account_external_id: str
    """Our connected account it reached (page id, Instagram user id, organization id, channel
    id...)."""
    external_id: str
    kind: InboxKind
    text: str
    author_id: str
    created_at: datetime
    author_handle: str | None = None
    author_name: str | None = None
    parent_external_id: str | None = None
    """The comment it answers (kind reply); None for a top-level comment."""
    thread_external_id: str | None = None
    """The post a comment is under, or the conversation a private message belongs to."""
    media_urls: tuple[str, ...] = ()
    removed: bool = False
    """The platform reports it was deleted (by its author or a moderator)."""
    hidden: bool | None = None
    """The platform reports it hidden (True) or shown again (False); None: not said."""
    from_account: bool = False
    """Written by the account itself (our own reply coming back): not a new item to answer."""


@dataclass(frozen=True)
class ItemRef:
    """What a connector needs to act on an inbox item."""

    external_id: str
    kind: InboxKind
    author_id: str
    thread_external_id: str | None = None
    parent_external_id: str | None = None


@dataclass(frozen=True)
class SentReply:
    external_id: str
    permalink: str | None = None
    created_at: datetime | None = None


class Moderation(StrEnum):
    hide = "hide"
    unhide = "unhide"
    delete = "delete"


class InboxConnector(Protocol):
    """The inbox side of a connector.

    - `fetch_items`: polling, for platforms without push (and the catch-up after a webhook gap):
      what reached the account since `since` (None: the platform's default recent window),
      oldest first.
    - `reply` sends one reply; `private=True` answers a public comment in private where the
      platform allows it (`can_reply_privately`). A definite refusal raises PublishRejected; a
      429 / a connection that never opened RateLimited / PlatformUnavailable (not sent); any
      unclear answer OutcomeUnknown (it may be live: never sent again, `find_reply` looks).
    - `find_reply`: reconciliation: our reply to `item` whose text is `text`, written after
      `since`, if the platform shows it; None if it does not (yet).
    - `moderate`: hide, unhide or delete the item; raises PublishRejected when the platform
      does not allow it on that kind.
    """

    can_reply_privately: bool
    moderations: frozenset[Moderation]

    async def fetch_items(
        self, token: TokenSet, external_id: str, since: datetime | None
    ) -> list[InboundItem]: ...

    async def reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, *, private: bool
    ) -> SentReply: ...

    async def find_reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, since: datetime
    ) -> SentReply | None: ...

    async def moderate(
        self, token: TokenSet, external_id: str, item: ItemRef, action: Moderation
    ) -> None: ...
