"""Database shape of time budgets. Every table is tenant-owned."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field

from infra.clock import utcnow
from infra.models import TenantScoped, tz_field


class Activity(StrEnum):
    community_animation = "community_animation"
    moderation = "moderation"
    content_creation = "content_creation"
    reporting = "reporting"
    crisis = "crisis"
    meeting = "meeting"
    other = "other"


class EntryStatus(StrEnum):
    open = "open"
    submitted = "submitted"
    approved = "approved"
    invoiced = "invoiced"


class TimesheetStatus(StrEnum):
    submitted = "submitted"
    approved = "approved"
    returned = "returned"


class Retainer(TenantScoped, table=True):
    """A client's monthly retainer over a span of months; its terms live in `retainer_terms`."""

    __tablename__ = "retainers"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"]),
        Index("ix_retainers_client", "tenant_id", "client_id"),
    )

    client_id: uuid.UUID
    currency: str = Field(max_length=3)
    start_month: date
    end_month: date | None = None
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class RetainerTerms(TenantScoped, table=True):
    """The terms in force from `effective_month` until the next terms row: past months keep
    the terms they had because a change only ever adds a row from a month on."""

    __tablename__ = "retainer_terms"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "retainer_id"], ["retainers.tenant_id", "retainers.id"]),
        UniqueConstraint("tenant_id", "retainer_id", "effective_month", name="uq_terms_month"),
    )

    retainer_id: uuid.UUID
    effective_month: date
    monthly_minutes: int
    fee_minor: int = Field(sa_type=BigInteger)
    brand_ids: list[uuid.UUID] | None = Field(
        default=None, sa_column=Column(ARRAY(UUID(as_uuid=True)), nullable=True)
    )
    rollover_max_minutes: int = 0
    rollover_max_months: int = 0
    overage_policy: str = Field(sa_column=Column(String(16), nullable=False))
    overage_rate_minor: int | None = Field(default=None, sa_type=BigInteger)
    thresholds: list[int] = Field(sa_column=Column(ARRAY(Integer), nullable=False))
    created_by: uuid.UUID | None = None


class Rate(TenantScoped, table=True):
    """An hourly rate: for one member on one client, a client, a role, or the default."""

    __tablename__ = "rates"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "membership_id"], ["memberships.tenant_id", "memberships.id"]
        ),
    )

    membership_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    """The member's person, as the API names people; the membership keeps the row in-tenant."""
    client_id: uuid.UUID | None = None
    role: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    rate_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class TimeEntry(TenantScoped, table=True):
    __tablename__ = "time_entries"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "brand_id"], ["brands.tenant_id", "brands.id"]),
        ForeignKeyConstraint(["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "membership_id"], ["memberships.tenant_id", "memberships.id"]
        ),
        Index("ix_time_entries_client_date", "tenant_id", "client_id", "work_date"),
        Index("ix_time_entries_person_date", "tenant_id", "membership_id", "work_date"),
    )

    membership_id: uuid.UUID
    user_id: uuid.UUID = Field(foreign_key="users.id")
    brand_id: uuid.UUID
    client_id: uuid.UUID
    """The brand's client, kept on the row so budgets aggregate without a join."""
    work_date: date
    started_at: datetime | None = tz_field()
    minutes: int
    activity: str = Field(sa_column=Column(String(24), nullable=False))
    billable: bool = True
    note: str | None = None
    content_item_id: uuid.UUID | None = None
    inbox_item_id: uuid.UUID | None = None
    """The community item this time answered (replying through the inbox logs it)."""
    invoice_id: uuid.UUID | None = None
    """Set when a finalized invoice bills this entry: from then on it is locked."""
    status: str = Field(default=EntryStatus.open, sa_column=Column(String(16), nullable=False))
    rate_minor: int | None = Field(default=None, sa_type=BigInteger)
    rate_currency: str | None = Field(default=None, max_length=3)
    source: str = Field(default="manual", max_length=16)
    flagged_reason: str | None = Field(default=None, max_length=64)
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Timer(TenantScoped, table=True):
    """A running timer; at most one per person (unique on the membership)."""

    __tablename__ = "timers"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "brand_id"], ["brands.tenant_id", "brands.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "membership_id"], ["memberships.tenant_id", "memberships.id"]
        ),
        UniqueConstraint("tenant_id", "membership_id", name="uq_timers_person"),
    )

    membership_id: uuid.UUID
    user_id: uuid.UUID = Field(foreign_key="users.id")
    brand_id: uuid.UUID
    activity: str = Field(sa_column=Column(String(24), nullable=False))
    billable: bool = True
    note: str | None = None
    content_item_id: uuid.UUID | None = None
    started_at: datetime = Field(sa_type=DateTime(timezone=True))


class Timesheet(TenantScoped, table=True):
    __tablename__ = "timesheets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "membership_id"], ["memberships.tenant_id", "memberships.id"]
        ),
        UniqueConstraint("tenant_id", "membership_id", "week_start", name="uq_timesheets_week"),
    )

    membership_id: uuid.UUID
    user_id: uuid.UUID = Field(foreign_key="users.id")
    week_start: date
    status: str = Field(sa_column=Column(String(16), nullable=False))
    reason: str | None = None
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = tz_field()
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class BudgetAlert(TenantScoped, table=True):
    """One row per client, month and threshold: the unique key is what makes the alert fire
    exactly once, however many entries land at the same moment."""

    __tablename__ = "budget_alerts"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"]),
        UniqueConstraint(
            "tenant_id", "client_id", "month", "threshold", name="uq_budget_alerts_once"
        ),
    )

    client_id: uuid.UUID
    month: date
    threshold: int
    used_minutes: int
    available_minutes: int
