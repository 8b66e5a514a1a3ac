"""Database shape of publishing: one publication per target account of a scheduled item, and
one attempt row per try at it. Both tenant-owned (see the migration for RLS)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKeyConstraint, Index, String, text
from sqlmodel import Field

from infra.clock import utcnow
from infra.models import TenantScoped, jsonb_field, tz_field
from publishing.machine import PubStatus


def _fk(column: str, table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])


class Publication(TenantScoped, table=True):
    __tablename__ = "publications"
    __table_args__ = (
        _fk("content_item_id", "content_items"),
        _fk("revision_id", "content_revisions"),
        _fk("brand_id", "brands"),
        _fk("social_account_id", "social_accounts"),
        # One live publication per item, revision and account: scheduling twice, or a retry,
        # never makes a second one (a canceled one does not count).
        Index(
            "uq_publications_target",
            "tenant_id",
            "content_item_id",
            "revision_id",
            "social_account_id",
            unique=True,
            postgresql_where=text("status <> 'canceled'"),
        ),
        Index("ix_publications_planned", "tenant_id", "planned_at", "id"),
        Index("ix_publications_item", "tenant_id", "content_item_id"),
        Index(
            "ix_publications_brand_published",
            "tenant_id",
            "brand_id",
            "published_at",
            postgresql_where=text("status = 'published'"),
        ),
    )

    content_item_id: uuid.UUID
    revision_id: uuid.UUID
    """The approved revision this publication posts; never a later draft."""
    brand_id: uuid.UUID
    social_account_id: uuid.UUID
    platform: str = Field(max_length=32)
    planned_at: datetime = Field(sa_type=DateTime(timezone=True))
    deadline_at: datetime = Field(sa_type=DateTime(timezone=True))
    """Transient failures retry until then; after it the publication fails."""
    status: str = Field(default=PubStatus.scheduled, sa_column=Column(String(16), nullable=False))
    attempts: int = 0
    current_attempt_id: uuid.UUID | None = None
    claimed_until: datetime | None = tz_field()
    """The running attempt's lease: past it, the attempt is presumed dead (a killed worker)."""
    next_attempt_at: datetime | None = tz_field()
    state: dict[str, Any] = jsonb_field()
    """What the connector prepared (containers, uploaded media, an upload session, the publish
    id it was handed): reused by a retry, read by reconciliation."""
    external_post_id: str | None = Field(default=None, max_length=200)
    permalink: str | None = Field(default=None, max_length=2000)
    started_at: datetime | None = tz_field()
    published_at: datetime | None = tz_field()
    lateness_seconds: float | None = None
    """When it went live minus when it was planned."""
    error_code: str | None = Field(default=None, max_length=40)
    error: str | None = None
    """What a person can act on (never a token)."""
    unconfirmed_at: datetime | None = tz_field()
    next_check_at: datetime | None = tz_field()
    checks: int = 0
    impressions: int | None = None
    reach: int | None = None
    engagements: int | None = None
    video_views: int | None = None
    figures_at: datetime | None = tz_field()
    next_figures_at: datetime | None = tz_field()
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PublicationAttempt(TenantScoped, table=True):
    __tablename__ = "publication_attempts"
    __table_args__ = (
        _fk("publication_id", "publications"),
        Index("ix_publication_attempts_pub", "tenant_id", "publication_id", "number"),
    )

    publication_id: uuid.UUID
    number: int
    started_at: datetime = Field(sa_type=DateTime(timezone=True))
    create_started_at: datetime | None = tz_field()
    """Set and committed before the platform's create call: the at-most-once marker."""
    finished_at: datetime | None = tz_field()
    outcome: str | None = Field(default=None, max_length=24)
    """published | refused | transient | unknown | crashed | needs_reauth | deadline"""
    error: str | None = None
