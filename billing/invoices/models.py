"""Database shape of client invoices. Every table is tenant-owned."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKeyConstraint
from sqlmodel import Field

from infra.clock import utcnow
from infra.models import TenantScoped, jsonb_field, tz_field


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
