"""Request and response models of the directory."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from tenants.models import Role

Locale = Literal["fr-CA", "fr", "en"]
Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", max_length=63)
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("must be an IANA time zone such as America/Montreal")
    try:
        ZoneInfo(value)
    except ZoneInfoNotFoundError as exc:
        raise ValueError("unknown time zone") from exc
    return value


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_timezone)]


class Strict(BaseModel):
    """Request bodies refuse unknown fields: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid")


class SignupRequest(Strict):
    agency_name: Name
    slug: Slug
    timezone: TimeZone = "America/Montreal"
    locale: Locale = "fr-CA"
    currency: Currency = "CAD"
    owner_name: Name
    email: EmailStr
    password: Password


class LoginRequest(Strict):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    tenant: Slug | None = Field(default=None, description="Agency slug, when you belong to several")


class RefreshRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class LogoutRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None


class TenantSummary(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int
    refresh_token: str
    tenant: TenantSummary


class TenantRead(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    locale: str
    currency: str
    status: str


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    locale: str


class MembershipSummary(BaseModel):
    tenant: TenantSummary
    role: Role


class MeResponse(BaseModel):
    user: UserRead
    tenant: TenantRead
    role: Role
    client_id: uuid.UUID | None
    memberships: list[MembershipSummary] = Field(
        description="Every agency this person can switch to"
    )


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    status: Literal["invited", "active", "disabled"]
    client_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class MemberUpdate(Strict):
    role: Role | None = None
    status: Literal["active", "disabled"] | None = None
    client_id: uuid.UUID | None = None


class InvitationCreate(Strict):
    email: EmailStr
    role: Role
    client_id: uuid.UUID | None = None


class InvitationRead(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    status: str
    expires_at: datetime
    created_at: datetime


class InvitationAccept(Strict):
    name: Name | None = Field(default=None, description="Required when you have no account yet")
    password: Password
    locale: Locale | None = None
