"""Database shape of the inbox (see migration 0010 for RLS and the functions that read across
agencies). Everything is tenant-owned except `PlatformEvent`, stored before its agency is known."""

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
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from infra.clock import utcnow
from infra.ids import new_id
from infra.models import TenantScoped, jsonb_field, tz_field


def _fk(column: str, table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])


class ItemStatus(StrEnum):
    new = "new"
    assigned = "assigned"
    waiting = "waiting"
    """Answered; waiting for the person to come back."""
    done = "done"


class ModerationState(StrEnum):
    visible = "visible"
    hidden = "hidden"
    deleted = "deleted"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


PRIORITY_RANK = {p: n for n, p in enumerate(Priority)}


class ActionKind(StrEnum):
    reply = "reply"
    private_reply = "private_reply"
    hide = "hide"
    unhide = "unhide"
    delete = "delete"


class ActionStatus(StrEnum):
    awaiting_approval = "awaiting_approval"
    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    unconfirmed = "unconfirmed"
    canceled = "canceled"


OPEN_ACTIONS = (ActionStatus.queued, ActionStatus.sending, ActionStatus.unconfirmed)


class PlatformEvent(SQLModel, table=True):
    """A platform's webhook delivery as it came, verified, before anything reads it."""

    __tablename__ = "platform_events"
    __table_args__ = (UniqueConstraint("platform", "digest", name="uq_platform_events_digest"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    platform: str = Field(max_length=32)
    digest: str = Field(max_length=64)
    """SHA-256 of the raw body: a platform delivering the same body again is stored once."""
    body: dict[str, Any] = jsonb_field()
    received_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    processed_at: datetime | None = tz_field()
    attempts: int = 0
    last_error: str | None = None


class InboxThread(TenantScoped, table=True):
    """A post whose comments we hold, or a private conversation."""

    __tablename__ = "inbox_threads"
    __table_args__ = (
        _fk("social_account_id", "social_accounts"),
        _fk("brand_id", "brands"),
        UniqueConstraint("tenant_id", "social_account_id", "external_id", name="uq_inbox_threads"),
    )

    social_account_id: uuid.UUID
    brand_id: uuid.UUID
    kind: str = Field(max_length=16)
    external_id: str = Field(max_length=255)
    participant_id: str | None = Field(default=None, max_length=255)
    participant_name: str | None = Field(default=None, max_length=255)
    last_item_at: datetime | None = tz_field()


class InboxItem(TenantScoped, table=True):
    __tablename__ = "inbox_items"
    __table_args__ = (
        _fk("social_account_id", "social_accounts"),
        _fk("brand_id", "brands"),
        _fk("client_id", "clients"),
        _fk("thread_id", "inbox_threads"),
        ForeignKeyConstraint(["assignee_id"], ["users.id"]),
        UniqueConstraint("tenant_id", "social_account_id", "external_id", name="uq_inbox_items"),
        Index("ix_inbox_items_brand_received", "tenant_id", "brand_id", "received_at"),
        Index("ix_inbox_items_received", "tenant_id", "received_at", "id"),
        Index("ix_inbox_items_thread", "tenant_id", "thread_id"),
        Index(
            "ix_inbox_items_orphans",
            "tenant_id",
            "social_account_id",
            "parent_external_id",
            postgresql_where=text("parent_external_id IS NOT NULL AND parent_id IS NULL"),
        ),
    )

    social_account_id: uuid.UUID
    brand_id: uuid.UUID
    client_id: uuid.UUID
    platform: str = Field(max_length=32)
    external_id: str = Field(max_length=255)
    kind: str = Field(max_length=16)
    thread_id: uuid.UUID | None = None
    parent_external_id: str | None = Field(default=None, max_length=255)
    parent_id: uuid.UUID | None = None
    """Set when the parent is here: a reply may arrive before the comment it answers."""
    author_id: str = Field(max_length=255)
    author_handle: str | None = Field(default=None, max_length=255)
    author_name: str | None = Field(default=None, max_length=255)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    media: list[Any] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    platform_created_at: datetime = Field(sa_type=DateTime(timezone=True))
    received_at: datetime = Field(sa_type=DateTime(timezone=True))
    language: str | None = Field(default=None, max_length=8)
    sentiment: str | None = Field(default=None, max_length=8)
    sentiment_score: float | None = None
    from_account: bool = False
    """Written by the brand's own account (our replies coming back): nothing to answer."""
    needs_reply: bool = True
    status: str = Field(default=ItemStatus.new, sa_column=Column(String(16), nullable=False))
    assignee_id: uuid.UUID | None = None
    """A user of the agency (people are named by user id across the API)."""
    labels: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(String(40)), nullable=False, server_default="{}"),
    )
    priority: str = Field(default=Priority.normal, sa_column=Column(String(8), nullable=False))
    moderation: str = Field(
        default=ModerationState.visible, sa_column=Column(String(8), nullable=False)
    )
    pinned_until: datetime | None = tz_field()
    """A suspected crisis pins its items to the top of the inbox until then."""
    crisis_id: uuid.UUID | None = None
    rules_applied: list[Any] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    response_due_at: datetime | None = tz_field()
    """When the response target runs out, in business time (None: no target applies)."""
    first_response_at: datetime | None = tz_field()
    first_response_by: uuid.UUID | None = None
    last_response_at: datetime | None = tz_field()
    sla_breached_at: datetime | None = tz_field()
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class InboxAction(TenantScoped, table=True):
    """A reply or a moderation sent to the platform, exactly once (like a publication)."""

    __tablename__ = "inbox_actions"
    __table_args__ = (
        _fk("item_id", "inbox_items"),
        _fk("social_account_id", "social_accounts"),
        Index("ix_inbox_actions_item", "tenant_id", "item_id"),
    )

    item_id: uuid.UUID
    social_account_id: uuid.UUID
    kind: str = Field(max_length=16)
    text: str | None = None
    status: str = Field(sa_column=Column(String(20), nullable=False))
    requested_by: uuid.UUID | None = None
    approved_by: uuid.UUID | None = None
    minutes_spent: int | None = None
    attempts: int = 0
    claimed_until: datetime | None = tz_field()
    next_attempt_at: datetime | None = tz_field()
    create_started_at: datetime | None = tz_field()
    """Committed before the platform call: from then on, an unclear outcome is reconciled."""
    sent_at: datetime | None = tz_field()
    external_id: str | None = Field(default=None, max_length=255)
    permalink: str | None = Field(default=None, max_length=2000)
    error_code: str | None = Field(default=None, max_length=40)
    error: str | None = None
    unconfirmed_at: datetime | None = tz_field()
    next_check_at: datetime | None = tz_field()
    checks: int = 0
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SavedReply(TenantScoped, table=True):
    __tablename__ = "saved_replies"
    __table_args__ = (
        _fk("brand_id", "brands"),
        Index("ix_saved_replies_brand", "tenant_id", "brand_id"),
    )

    brand_id: uuid.UUID | None = None
    """None: the whole agency's."""
    name: str = Field(max_length=120)
    language: str = Field(max_length=8)
    body: str
    created_by: uuid.UUID | None = None
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class InboxRule(TenantScoped, table=True):
    __tablename__ = "inbox_rules"
    __table_args__ = (
        _fk("brand_id", "brands"),
        Index("ix_inbox_rules_brand", "tenant_id", "brand_id", "position"),
    )

    brand_id: uuid.UUID
    name: str = Field(max_length=120)
    position: int
    enabled: bool = True
    stop_processing: bool = False
    condition: dict[str, Any] = jsonb_field()
    action: dict[str, Any] = jsonb_field()
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ResponsePolicyRow(TenantScoped, table=True):
    __tablename__ = "response_policies"
    __table_args__ = (
        _fk("client_id", "clients"),
        UniqueConstraint("tenant_id", "client_id", name="uq_response_policies_client"),
    )

    client_id: uuid.UUID
    policy: dict[str, Any] = jsonb_field()
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Crisis(TenantScoped, table=True):
    """One suspected crisis episode of a brand (or one of its accounts)."""

    __tablename__ = "inbox_crises"
    __table_args__ = (
        _fk("brand_id", "brands"),
        _fk("social_account_id", "social_accounts"),
        Index("ix_inbox_crises_brand", "tenant_id", "brand_id", "started_at"),
    )

    brand_id: uuid.UUID
    social_account_id: uuid.UUID | None = None
    trigger: str = Field(max_length=24)
    started_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_signal_at: datetime = Field(sa_type=DateTime(timezone=True))
    figures: dict[str, Any] = jsonb_field()
    item_ids: list[Any] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )


class InboxCursor(TenantScoped, table=True):
    __tablename__ = "inbox_cursors"
    __table_args__ = (
        _fk("social_account_id", "social_accounts"),
        UniqueConstraint("tenant_id", "social_account_id", name="uq_inbox_cursors_account"),
    )

    social_account_id: uuid.UUID
    polled_at: datetime | None = tz_field()
    polled_through: datetime | None = tz_field()
    next_poll_at: datetime | None = tz_field()
    last_push_at: datetime | None = tz_field()
    last_error: str | None = None
