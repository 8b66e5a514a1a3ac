"""What the API says about publications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tenants.schemas import Strict
from workflows.schemas import CalendarItem

PubStatusField = Literal[
    "scheduled", "publishing", "published", "failed", "unconfirmed", "canceled"
]


class AttemptRead(BaseModel):
    number: int
    started_at: datetime
    create_started_at: datetime | None = Field(
        description="When the platform's create call was sent (null: it never was)"
    )
    finished_at: datetime | None
    outcome: str | None = Field(
        description="published, refused, transient, unknown, crashed, needs_reauth or deadline"
    )
    error: str | None


class PostFiguresRead(BaseModel):
    impressions: int | None
    reach: int | None
    engagements: int | None
    video_views: int | None
    read_at: datetime | None


class PublicationRead(BaseModel):
    id: uuid.UUID
    content_id: uuid.UUID
    revision_id: uuid.UUID = Field(description="The approved revision this publishes")
    brand_id: uuid.UUID
    social_account_id: uuid.UUID
    platform: str
    status: PubStatusField
    planned_at: datetime
    deadline_at: datetime = Field(description="Transient failures are retried until then")
    attempts: list[AttemptRead]
    external_post_id: str | None
    permalink: str | None
    published_at: datetime | None
    lateness_seconds: float | None = Field(description="Published minus planned, in seconds")
    error_code: str | None = Field(
        description="needs_reauth, quota_spent, media_rejected, rejected, outcome_unknown, "
        "deadline_passed..."
    )
    error: str | None = Field(description="What went wrong, in words a person can act on")
    figures: PostFiguresRead | None = Field(
        description="The post's own figures, read daily for its first 30 days"
    )
    version: int
    created_at: datetime
    updated_at: datetime


class RetryRequest(Strict):
    confirm_not_published: bool = Field(
        default=False,
        description="Required for an unconfirmed publication (and one failed with an unknown "
        "outcome): you checked the account and the post is not there",
    )


class PostRead(BaseModel):
    """A post on an account, as published through us (the sandbox's feed)."""

    publication_id: uuid.UUID
    content_id: uuid.UUID
    external_post_id: str
    permalink: str | None
    text: str
    media: list[dict[str, Any]]
    published_at: datetime
    figures: PostFiguresRead | None


class PublicationSummary(BaseModel):
    """The calendar's view of an item's publications: how many are in each status."""

    scheduled: int = 0
    publishing: int = 0
    published: int = 0
    failed: int = 0
    unconfirmed: int = 0


class CalendarEntry(CalendarItem):
    """A calendar item with where its publications stand."""

    publications: PublicationSummary = Field(
        description="How many of the item's publications (one per target account) are in each "
        "status; all zero for an item not scheduled yet"
    )
