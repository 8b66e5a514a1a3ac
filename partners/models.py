"""Tables of partner apps, webhook endpoints and webhook deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from infra.clock import utcnow
from infra.models import TenantScoped, jsonb_field, tz_field
from infra.rotation import EncryptedColumns


def _jsonb_list() -> Any:
    return Field(sa_column=Column(JSONB, nullable=False), default_factory=list)


class AppStatus(StrEnum):
    active = "active"
    revoked = "revoked"


class PartnerApp(TenantScoped, table=True):
    __tablename__ = "partner_apps"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "created_by_membership"], ["memberships.tenant_id", "memberships.id"]
        ),
        # The client id embeds the tenant (`pa_<tenant>_<app>`): unique within it is unique.
        UniqueConstraint("tenant_id", "client_id", name="uq_partner_apps_client_id"),
    )

    name: str = Field(max_length=100)
    client_id: str = Field(max_length=80)
    scopes: list[str] = _jsonb_list()
    secret_hash: str = Field(max_length=64)
    previous_secret_hash: str | None = Field(default=None, max_length=64)
    previous_secret_expires_at: datetime | None = tz_field()
    status: str = Field(default=AppStatus.active, sa_column=Column(String(16), nullable=False))
    revoked_at: datetime | None = tz_field()
    created_by: uuid.UUID
    created_by_membership: uuid.UUID
    last_token_at: datetime | None = tz_field()
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class EndpointStatus(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class WebhookEndpoint(TenantScoped, table=True):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "partner_app_id"], ["partner_apps.tenant_id", "partner_apps.id"]
        ),
    )

    url: str = Field(max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = _jsonb_list()
    secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(
        default=EndpointStatus.enabled, sa_column=Column(String(16), nullable=False)
    )
    disabled_reason: str | None = None
    disabled_at: datetime | None = tz_field()
    last_success_at: datetime | None = tz_field()
    last_failure_at: datetime | None = tz_field()
    created_by: uuid.UUID | None = None
    partner_app_id: uuid.UUID | None = None
    """The partner app that made the endpoint; that app sees and manages only its own."""
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class WebhookDelivery(TenantScoped, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"], ["webhook_endpoints.tenant_id", "webhook_endpoints.id"]
        ),
        Index(
            "uq_webhook_deliveries_event",
            "tenant_id",
            "endpoint_id",
            "event_id",
            unique=True,
            postgresql_where=text("replay_of IS NULL"),
        ),
        Index("ix_webhook_deliveries_recent", "tenant_id", "created_at", "id"),
        Index(
            "ix_webhook_deliveries_due",
            "tenant_id",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    """The outbox event's id, sent as `webhook-id`: the same on every retry and replay."""
    event_type: str = Field(max_length=100)
    payload: dict[str, Any] = jsonb_field()
    status: str = Field(
        default=DeliveryStatus.pending, sa_column=Column(String(16), nullable=False)
    )
    attempts: int = 0
    attempt_log: list[dict[str, Any]] = _jsonb_list()
    next_attempt_at: datetime | None = tz_field()
    last_attempt_at: datetime | None = tz_field()
    response_status: int | None = None
    last_error: str | None = None
    replay_of: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


ENCRYPTED_COLUMNS = (EncryptedColumns(WebhookEndpoint, ("secret",)),)
"""What the token vault encrypts here, for the key rotation (`passerelle tokens rotate`)."""
