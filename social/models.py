"""Tables of social accounts, their daily figures, OAuth connections in flight, anomalies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, col

from infra.clock import utcnow
from infra.models import TenantScoped, jsonb_field, tz_field
from infra.rotation import EncryptedColumns


class AccountStatus(StrEnum):
    connected = "connected"
    needs_reauth = "needs_reauth"
    error = "error"
    paused = "paused"


SYNCABLE = (AccountStatus.connected, AccountStatus.error)
"""An account in error is retried at its next sync; one that needs a person is not."""


class SocialAccount(TenantScoped, table=True):
    __tablename__ = "social_accounts"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "brand_id"], ["brands.tenant_id", "brands.id"]),
        UniqueConstraint("tenant_id", "platform", "external_id", name="uq_social_accounts"),
        Index("ix_social_accounts_brand", "tenant_id", "brand_id"),
        Index(
            "ix_social_accounts_due",
            "tenant_id",
            "next_sync_at",
            postgresql_where=text("status IN ('connected', 'error')"),
        ),
    )

    brand_id: uuid.UUID
    platform: str = Field(max_length=32)
    external_id: str = Field(max_length=255)
    handle: str | None = Field(default=None, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    status: str = Field(
        default=AccountStatus.connected, sa_column=Column(String(16), nullable=False)
    )
    access_token: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    refresh_token: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    token_expires_at: datetime | None = tz_field()
    token_scope: str | None = None
    last_success_at: datetime | None = tz_field()
    last_error: str | None = None
    last_error_at: datetime | None = tz_field()
    next_sync_at: datetime | None = tz_field()
    synced_through: date | None = None
    metric_errors: dict[str, Any] = jsonb_field()
    connected_by: uuid.UUID | None = None
    connected_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class DailyStat(TenantScoped, table=True):
    __tablename__ = "social_stats_daily"
    __table_args__ = (
        UniqueConstraint("tenant_id", "account_id", "day", name="uq_social_stats_daily_day"),
        ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["social_accounts.tenant_id", "social_accounts.id"],
            ondelete="CASCADE",
        ),
    )

    account_id: uuid.UUID
    day: date
    followers: int | None = Field(default=None, sa_type=BigInteger)
    follower_change: int | None = Field(default=None, sa_type=BigInteger)
    impressions: int | None = Field(default=None, sa_type=BigInteger)
    reach: int | None = Field(default=None, sa_type=BigInteger)
    engagements: int | None = Field(default=None, sa_type=BigInteger)
    posts_published: int | None = Field(default=None, sa_type=BigInteger)
    video_views: int | None = Field(default=None, sa_type=BigInteger)
    fetched_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SocialConnection(TenantScoped, table=True):
    """An authorization started by a person and not yet come back from the platform."""

    __tablename__ = "social_connections"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "brand_id"], ["brands.tenant_id", "brands.id"]),
    )

    brand_id: uuid.UUID
    platform: str = Field(max_length=32)
    membership_id: uuid.UUID
    code_verifier: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    redirect_uri: str
    expires_at: datetime = tz_field(nullable=False)
    used_at: datetime | None = tz_field()
    account_id: uuid.UUID | None = None


class Anomaly(TenantScoped, table=True):
    __tablename__ = "social_anomalies"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["social_accounts.tenant_id", "social_accounts.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("tenant_id", "account_id", "day", "metric", name="uq_social_anomalies"),
        Index("ix_social_anomalies_brand_day", "tenant_id", "brand_id", "day"),
    )

    account_id: uuid.UUID
    brand_id: uuid.UUID
    day: date
    metric: str = Field(max_length=32)
    value: int = Field(sa_type=BigInteger)
    median: float
    mad: float
    score: float
    direction: str = Field(max_length=8)


ENCRYPTED_COLUMNS = (
    EncryptedColumns(SocialAccount, ("access_token", "refresh_token")),
    # Only connections still in flight: a used one's verifier is never read again.
    EncryptedColumns(
        SocialConnection,
        ("code_verifier",),
        where=col(SocialConnection.used_at).is_(None),
        lock=False,
    ),
)
"""What the token vault encrypts here, for the key rotation (`passerelle tokens rotate`)."""
