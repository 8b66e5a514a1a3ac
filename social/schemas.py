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


# The community section: the inbox's figures of the month. They are computed by the inbox, a
# layer above this one, and handed to the report by the edge (like the top posts), so the
# models live here where the report can name them and the inbox reuses them.


class CommunityVolume(BaseModel):
    """What the community sent: comments, replies, mentions, private messages and reviews
    received in the month (the brand's own replies are not counted)."""

    total: int
    comment: int
    reply: int
    mention: int
    message: int
    review: int


class ResponseTime(BaseModel):
    median_minutes: float | None
    p90_minutes: float | None = Field(description="90 % of first answers came within this")


class SentimentMix(BaseModel):
    negative: int
    neutral: int
    positive: int
    unknown: int = Field(description="Too short or in another language to tell")


class CommunityFigures(BaseModel):
    """How the community was answered over a month (items received in the month)."""

    volume: CommunityVolume
    needing_reply: int
    answered: int = Field(description="Items needing a reply that got a first answer")
    response_rate: float | None = Field(
        description="answered / needing_reply, as a fraction (None when nothing needed one)"
    )
    first_response_business_hours: ResponseTime = Field(
        description="Time to the first answer counted in the client's business hours (its "
        "response policy); None without a policy"
    )
    first_response_all_hours: ResponseTime = Field(
        description="Time to the first answer, every hour counted"
    )
    target_due: int = Field(
        description="Items with a response target that has come due: answered, or past their "
        "deadline unanswered"
    )
    within_target: int = Field(description="Answered by their deadline")
    within_target_share: float | None = Field(description="within_target / target_due")
    breaches: int = Field(description="Targets missed: answered late or not answered in time")
    sentiment: SentimentMix


class ReportCommunityBrand(BaseModel):
    id: uuid.UUID
    name: str
    figures: CommunityFigures


class ReportCommunity(BaseModel):
    totals: CommunityFigures
    brands: list[ReportCommunityBrand]


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
    community: ReportCommunity | None = None
    """The inbox's figures for the client's brands; filled by the edge from the inbox (a layer
    above this one), None when the caller did not ask for them."""
