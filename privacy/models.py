"""Tables of the clients' data rights."""

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
    String,
    UniqueConstraint,
)
from sqlmodel import Field

from infra.clock import utcnow
from infra.models import TenantScoped, jsonb_field, tz_field

# ---------------------------------------------------------------------------------------------
# Exports


class ExportStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    expired = "expired"


class DataExport(TenantScoped, table=True):
    """One export of the whole agency (no client) or of one client: its progress while the
    job writes it, then the ZIP's place, size and digest until it expires."""

    __tablename__ = "data_exports"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"]),
    )

    client_id: uuid.UUID | None = None
    status: str = Field(default=ExportStatus.queued, sa_column=Column(String(16), nullable=False))
    requested_by: uuid.UUID
    kinds_total: int = 0
    kinds_done: int = 0
    rows_written: int = Field(default=0, sa_type=BigInteger)
    media_files: int = 0
    attempts: int = 0
    claimed_until: datetime | None = tz_field()
    """The running attempt's lease: past it, the sweep takes the export over (a dead worker)."""
    started_at: datetime | None = tz_field()
    finished_at: datetime | None = tz_field()
    expires_at: datetime | None = tz_field()
    size_bytes: int | None = Field(default=None, sa_type=BigInteger)
    sha256: str | None = Field(default=None, max_length=64)
    manifest: dict[str, Any] = jsonb_field()
    error: str | None = None
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


# ---------------------------------------------------------------------------------------------
# Erasures and closures


class Erasure(TenantScoped, table=True):
    """A person erased on request. The person is named only by a keyed digest of who they were
    (so that asking twice finds the same record) and by the pseudonym that replaced them."""

    __tablename__ = "erasures"
    __table_args__ = (
        UniqueConstraint("tenant_id", "subject", "subject_digest", name="uq_erasures_subject"),
    )

    subject: str = Field(sa_column=Column(String(24), nullable=False))
    subject_digest: str = Field(max_length=64)
    pseudonym: str = Field(max_length=40)
    requested_by: uuid.UUID | None = None
    counts: dict[str, Any] = jsonb_field()
    """Rows changed per kind, the last time the erasure ran."""
    scope: str = Field(max_length=16)
    """`global` when the person's account itself was anonymized, `tenant` when it belongs to
    other agencies too and only this agency's traces went."""
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class ClosureStep:
    """The steps of an agency's closure, in order; each one is committed before the next."""

    requested = "requested"
    archived = "archived"
    tokens_revoked = "tokens_revoked"
    subscription_canceled = "subscription_canceled"
    closed = "closed"

    ORDER = (requested, archived, tokens_revoked, subscription_canceled, closed)


class AgencyClosure(TenantScoped, table=True):
    """The end of an agency's contract. Kept after the closure, like the invoice archive."""

    __tablename__ = "agency_closures"
    __table_args__ = (UniqueConstraint("tenant_id", name="uq_agency_closures_tenant"),)

    requested_by: uuid.UUID | None = None
    step: str = Field(default=ClosureStep.requested, max_length=24)
    archived_invoices: int = 0
    revoked_accounts: int = 0
    stripe_subscription_id: str | None = Field(default=None, max_length=255)
    deleted_rows: int = 0
    attempts: int = 0
    last_error: str | None = None
    closed_at: datetime | None = tz_field()
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class InvoiceArchive(TenantScoped, table=True):
    """A closed agency's invoice as the law asks it be kept: the invoice, its lines and credit
    notes, and the client's billing identity, until `keep_until`."""

    __tablename__ = "invoice_archives"
    __table_args__ = (
        UniqueConstraint("tenant_id", "invoice_id", name="uq_invoice_archives_invoice"),
        Index("ix_invoice_archives_keep_until", "keep_until"),
    )

    invoice_id: uuid.UUID
    number: str | None = Field(default=None, max_length=32)
    month: date
    client_name: str = Field(max_length=200)
    client_legal_name: str | None = Field(default=None, max_length=200)
    client_billing_email: str | None = Field(default=None, max_length=254)
    document: dict[str, Any] = jsonb_field()
    """The invoice row, its lines and its credit notes, as they were."""
    keep_until: datetime = Field(sa_type=DateTime(timezone=True))


RETAINED_AFTER_CLOSURE = frozenset({AgencyClosure.__tablename__, InvoiceArchive.__tablename__})
"""The tenant tables whose rows outlive the agency's closure (what the law requires, and the
record of the closure itself)."""
