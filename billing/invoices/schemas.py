"""Request and response models of client invoices. Money is integer minor units."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from tenants.schemas import Month, Patch, Strict

MonthStr = Month  # the shared type: the range the API serves is said in the schema
Amount = Annotated[
    int, Field(ge=-(10**12), le=10**12, description="Minor units; may be negative for a discount")
]
Description = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]


class InvoiceCreate(Strict):
    client_id: uuid.UUID
    month: MonthStr


class InvoiceUpdate(Patch):
    clearable = frozenset({"notes"})

    notes: Annotated[str, StringConstraints(max_length=2000)] | None = None
    due_days: Annotated[int, Field(ge=0, le=365)] | None = None


class LineCreate(Strict):
    description: Description
    amount_minor: Amount


class LineUpdate(Patch):
    description: Description | None = None
    amount_minor: Amount | None = None


class InvoiceVoid(Strict):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True)]


class CreditNoteCreate(Strict):
    amount_minor: Annotated[int, Field(ge=1, le=10**12)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True)]


class InvoiceLineRead(BaseModel):
    id: uuid.UUID
    position: int
    kind: Literal["retainer_fee", "overage", "manual"]
    description: str
    quantity_minutes: int | None
    unit_amount_minor: int | None
    amount_minor: int
    computation: dict[str, object]
    """How the line was reached: the figures and rule behind it, and any edit made to it."""


class CreditNoteRead(BaseModel):
    id: uuid.UUID
    number: str
    amount_minor: int
    reason: str
    created_by: uuid.UUID
    created_at: datetime


class InvoiceRead(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    client_name: str
    month: str
    number: str | None
    status: Literal["draft", "finalized", "void"]
    currency: str
    locale: str
    mode: Literal["stripe", "external"] | None
    """Set at finalization: on the agency's connected Stripe account, or external (export)."""
    subtotal_minor: int
    credited_minor: int
    total_minor: int
    notes: str | None
    due_days: int
    stripe_status: Literal["pending", "synced", "failed"] | None
    stripe_error: str | None
    stripe_invoice_id: str | None
    stripe_hosted_url: str | None
    unapproved_minutes: int
    """Billable minutes of the month not yet approved, so not on this invoice."""
    finalized_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None
    version: int
    lines: list[InvoiceLineRead]
    credit_notes: list[CreditNoteRead]


class InvoiceSummary(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    client_name: str
    month: str
    number: str | None
    status: Literal["draft", "finalized", "void"]
    currency: str
    mode: Literal["stripe", "external"] | None
    total_minor: int
    stripe_status: Literal["pending", "synced", "failed"] | None


class InvoiceBuildResult(BaseModel):
    month: str
    created: list[uuid.UUID]
