"""Request and response models of the agency's Passerelle subscription."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from tenants.schemas import Patch, Strict

PlanId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]


class CheckoutCreate(Strict):
    plan_id: PlanId


class RedirectRead(BaseModel):
    url: str
    """Where to send the browser: Stripe's hosted page."""


class PlanRead(BaseModel):
    id: str
    name: str
    currency: str
    seat_price_minor: int
    max_active_brands: int | None
    max_social_accounts: int | None
    max_staff_seats: int | None
    features: list[str]


class LimitUse(BaseModel):
    used: int | None
    """None where the thing is not counted."""
    limit: int | None


class SeatsRead(BaseModel):
    billed: int
    """The quantity Stripe bills."""
    active_staff: int
    sync: Literal["synced", "pending", "failed"]
    error: str | None = None


class SubscriptionRead(BaseModel):
    stripe_configured: bool
    plan: PlanRead
    status: Literal["active", "past_due", "suspended", "canceled"]
    """The agency's standing: suspended agencies read but do not write."""
    stripe_status: str | None
    grace_ends_at: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    seats: SeatsRead | None
    limits: dict[str, LimitUse]


class ConnectedAccountSet(Patch):
    account_id: Annotated[str, StringConstraints(pattern=r"^acct_[A-Za-z0-9]{1,64}$")]


class ConnectedAccountRead(BaseModel):
    account_id: str | None


class WebhookReceived(BaseModel):
    received: bool
    duplicate: bool
