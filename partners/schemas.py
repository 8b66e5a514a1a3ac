"""Request and response models of partner apps, tokens, webhook endpoints and deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from partners.events import EventType
from partners.scopes import ApiScope
from tenants.schemas import Patch, Strict

AppName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _unique_sorted(values: list[str]) -> list[str]:
    return sorted(set(values))


Scopes = Annotated[
    list[ApiScope], Field(min_length=1, max_length=20), AfterValidator(_unique_sorted)
]
EventTypes = Annotated[
    list[EventType], Field(min_length=1, max_length=50), AfterValidator(_unique_sorted)
]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]


class PartnerAppCreate(Strict):
    name: AppName
    scopes: Scopes


class PartnerAppUpdate(Patch):
    name: AppName | None = None
    scopes: Scopes | None = None


class SecretRotation(Strict):
    overlap_seconds: int | None = Field(default=None, ge=0, le=30 * 86400)
    """How long the current secret keeps working (default: PARTNER_SECRET_OVERLAP_SECONDS)."""


class PartnerAppRead(BaseModel):
    id: uuid.UUID
    name: str
    client_id: str
    scopes: list[str]
    status: Literal["active", "revoked"]
    created_at: datetime
    revoked_at: datetime | None
    last_token_at: datetime | None
    previous_secret_expires_at: datetime | None
    """While set and in the future, the secret before the last rotation still works."""
    version: int


class PartnerAppCreated(PartnerAppRead):
    client_secret: str
    """Shown once: only a digest is stored. Rotate the secret if it is lost."""


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str


class WebhookEndpointCreate(Strict):
    url: Url
    event_types: EventTypes
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class WebhookEndpointUpdate(Patch):
    clearable = frozenset({"description"})

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    status: Literal["enabled", "disabled"] | None = None
    """`enabled` turns a disabled endpoint back on."""


class WebhookEndpointRead(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    disabled_at: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    created_at: datetime
    version: int


class WebhookEndpointWithSecret(WebhookEndpointRead):
    secret: str
    """`whsec_…`: verify the `webhook-signature` header with it (Standard Webhooks)."""


class DeliveryAttempt(BaseModel):
    at: datetime
    response_status: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryRead(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    """The `webhook-id` header: the same on every retry and replay of the event."""
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    response_status: int | None
    last_error: str | None
    replay_of: uuid.UUID | None
    created_at: datetime
    attempt_log: list[DeliveryAttempt]
