"""What every platform connector speaks: the figures, the tokens, and the ways a call fails.

A connector turns one platform's endpoints into these types; nothing above it knows a
platform's URLs or response shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol


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
