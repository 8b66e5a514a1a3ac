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
from sqlmodel import Field, SQLModel

from infra.clock import utcnow
from infra.models import TenantScoped, jsonb_field, tz_field


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


class SeatSync(StrEnum):
    synced = "synced"
    pending = "pending"
    failed = "failed"


class Subscription(TenantScoped, table=True):
    """The agency's Passerelle subscription, as last read from Stripe."""

    __tablename__ = "subscriptions"

    stripe_subscription_id: str = Field(max_length=255)
    stripe_customer_id: str = Field(max_length=255)
    plan_id: str = Field(max_length=32)
    status: str = Field(max_length=24)
    """Stripe's own status: active, trialing, past_due, unpaid, canceled, incomplete..."""
    base_item_id: str | None = Field(default=None, max_length=255)
    seat_item_id: str | None = Field(default=None, max_length=255)
    seats: int = 0
    """The seat quantity Stripe bills."""
    seats_wanted: int = 0
    """Active staff memberships when last counted; differs from `seats` while a sync is due."""
    seat_sync_status: str = Field(default=SeatSync.synced, max_length=16)
    seat_sync_error: str | None = None
    seat_sync_round: int = 0
    """Bumped for every new seat count: the idempotency key of that count's Stripe update."""
    current_period_end: datetime | None = tz_field()
    cancel_at_period_end: bool = False
    stripe_created: int = Field(default=0, sa_type=BigInteger)
    synced_at: datetime | None = tz_field()
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class StripeEvent(SQLModel, table=True):
    """A webhook event received from Stripe, stored once by its id. Not tenant-owned."""

    __tablename__ = "stripe_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    account: str | None = Field(default=None, max_length=255)
    object_id: str | None = Field(default=None, max_length=255)
    customer_id: str | None = Field(default=None, max_length=255)
    created: int = Field(sa_type=BigInteger)
    received_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    processed_at: datetime | None = tz_field()
    attempts: int = 0
    last_error: str | None = None
    agency_id: uuid.UUID | None = None


class InvoiceStatus(StrEnum):
    draft = "draft"
    finalized = "finalized"
    void = "void"


class InvoiceMode(StrEnum):
    stripe = "stripe"
    external = "external"


class StripeSync(StrEnum):
    pending = "pending"
    synced = "synced"
    failed = "failed"


class LineKind(StrEnum):
    retainer_fee = "retainer_fee"
    overage = "overage"
    manual = "manual"


class Invoice(TenantScoped, table=True):
    """An agency's invoice to one client for one month: at most one per client and month."""

    __tablename__ = "invoices"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"]),
    )

    client_id: uuid.UUID
    month: date
    number: str | None = Field(default=None, max_length=32)
    status: str = Field(default=InvoiceStatus.draft, max_length=16)
    currency: str = Field(max_length=3)
    locale: str = Field(max_length=8)
    mode: str | None = Field(default=None, max_length=16)
    subtotal_minor: int = Field(default=0, sa_type=BigInteger)
    approved_minutes: int = 0
    """Approved billable minutes of the month when the lines were computed: finalizing after
    more were approved asks for a refresh first."""
    credited_minor: int = Field(default=0, sa_type=BigInteger)
    notes: str | None = None
    due_days: int = 30
    stripe_invoice_id: str | None = Field(default=None, max_length=255)
    stripe_status: str | None = Field(default=None, max_length=16)
    stripe_error: str | None = None
    stripe_hosted_url: str | None = None
    finalized_at: datetime | None = tz_field()
    voided_at: datetime | None = tz_field()
    void_reason: str | None = None
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class InvoiceLine(TenantScoped, table=True):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"]),
    )

    invoice_id: uuid.UUID
    position: int
    kind: str = Field(max_length=16)
    description: str
    quantity_minutes: int | None = None
    unit_amount_minor: int | None = Field(default=None, sa_type=BigInteger)
    amount_minor: int = Field(sa_type=BigInteger)
    computation: dict = jsonb_field()  # type: ignore[type-arg]


class CreditNote(TenantScoped, table=True):
    """Money given back on a finalized invoice. Append-only for the application role."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"]),
    )

    invoice_id: uuid.UUID
    number: str = Field(max_length=40)
    amount_minor: int = Field(sa_type=BigInteger)
    reason: str
    created_by: uuid.UUID = Field(foreign_key="users.id")
