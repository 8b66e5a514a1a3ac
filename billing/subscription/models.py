"""Database shape of the agency's Passerelle subscription and the Stripe events received."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime
from sqlmodel import Field, SQLModel

from infra.clock import utcnow
from infra.models import TenantScoped, tz_field


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
