"""Request and response models of social accounts, statistics and client reports."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from social.connectors.types import Platform
from tenants.schemas import Patch

AccountStatusField = Literal["connected", "needs_reauth", "error", "paused"]
Granularity = Literal["day", "week", "month"]
MetricValue = Annotated[int, Field(description="None when the platform lacks the metric")] | None


class ConnectStart(BaseModel):
    authorization_url: str
    """Send the person's browser here; the platform comes back to /v1/oauth/callback/…"""
    expires_at: datetime


class MetricError(BaseModel):
    error: str
    at: datetime


class SocialAccountRead(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    platform: Platform
    external_id: str
    handle: str | None
    display_name: str | None
    status: AccountStatusField
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    next_sync_at: datetime | None
    metric_errors: dict[str, MetricError] = Field(
        description="Metrics that failed on the last sync, with why; the others were stored"
    )
    connected_at: datetime
    version: int


class SocialAccountUpdate(Patch):
    status: Literal["connected", "paused"]
    """Pause stops syncing (the history is kept); connected resumes it."""


class SyncRequested(BaseModel):
    account_id: uuid.UUID
    queued: bool
    """False when a sync of this account was already waiting (nothing new was queued)."""


class StatPoint(BaseModel):
    """One bucket (day, ISO week starting Monday, or month). Flows (impressions, …) are
    summed; followers is the last known count in the bucket."""

    start: date
    followers: int | None
    follower_change: int | None
    impressions: int | None
    reach: int | None
    engagements: int | None
    posts_published: int | None
    video_views: int | None


class StatsRead(BaseModel):
    brand_id: uuid.UUID
    account_id: uuid.UUID | None
    """Set when the figures are one account's; otherwise they add up the brand's accounts."""
    from_date: date
    to_date: date
    granularity: Granularity
    points: list[StatPoint]


class AnomalyRead(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    brand_id: uuid.UUID
    day: date
    metric: str
    value: int
    median: float
    mad: float
    score: float
    direction: Literal["drop", "spike"]
    detected_at: datetime


# --- the monthly client report ----------------------------------------------------------


class ReportTotals(BaseModel):
    """An account's month, or the sum of its accounts' for a brand and for the client: every
    figure of a brand or of the client is the sum of the same figure of its accounts."""

    followers_start: int | None
    """The count the month opened with: the account's last count of the previous month, or its
    first count of this month when it has none (connected during the month)."""
    followers_end: int | None
    """The account's last count of the month (the latest so far for the month under way). An
    account with no count in the month has neither start nor end and is left out of both."""
    follower_change: int | None
    """followers_end - followers_start, at every level."""
    impressions: int | None
    reach: int | None
    engagements: int | None
    posts_published: int | None
    video_views: int | None
    engagement_rate: float | None
    """Engagements per impression over the month, as a fraction (0.034 = 3.4 %)."""


class ReportDay(BaseModel):
    day: date
    followers: int | None
    engagements: int | None
    impressions: int | None


class ReportAccount(BaseModel):
    id: uuid.UUID
    platform: Platform
    handle: str | None
    display_name: str | None
    totals: ReportTotals
    daily: list[ReportDay]
    """Every day of the month, in order; days with no figures carry None."""


class TopPost(BaseModel):
    """One of the brand's most engaging posts of the month, published through us."""

    platform: str
    handle: str | None
    text: str
    permalink: str | None
    published_at: datetime
    impressions: int | None
    reach: int | None
    engagements: int | None
    video_views: int | None


class ReportBrand(BaseModel):
    id: uuid.UUID
    name: str
    totals: ReportTotals
    accounts: list[ReportAccount]
    top_posts: list[TopPost] = []
    """Filled by the edge from publishing (a layer above this one)."""


class ClientReport(BaseModel):
    client_id: uuid.UUID
    client_name: str
    agency_name: str
    month: str
    language: Literal["fr", "en"]
    generated_at: datetime
    totals: ReportTotals
    brands: list[ReportBrand]
    anomalies: list[AnomalyRead]
