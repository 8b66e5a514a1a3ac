"""Request and response models of the directory."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal
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


# The pattern every IANA name follows, so that the document says what a zone looks like; the
# validator then refuses a well-formed name that is not in the time zone database.
TimeZone = Annotated[
    str,
    StringConstraints(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"),
    AfterValidator(_check_timezone),
]


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


class BillingBanner(BaseModel):
    """What the app shows across the top while the subscription needs attention."""

    status: Literal["past_due", "suspended", "canceled"]
    message: str
    grace_ends_at: datetime | None
    read_only: bool


class MeResponse(BaseModel):
    user: UserRead
    tenant: TenantRead
    role: Role
    client_id: uuid.UUID | None
    billing_banner: BillingBanner | None = Field(
        default=None, description="Set while the agency is past due, suspended or canceled"
    )
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
    monthly_capacity_minutes: int
    version: int
    created_at: datetime
    updated_at: datetime


class MemberUpdate(Strict):
    monthly_capacity_minutes: Annotated[int, Field(ge=0, le=744 * 60)] | None = None
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


# ---------------------------------------------------------------------------------------------
# Clients, brands, assignments, capacity, audit

ClientStatusLiteral = Literal["active", "archived"]
ListStatus = Literal["active", "archived", "all"]
SortOrder = Literal["name", "created_at"]
Minutes = Annotated[int, Field(ge=0, le=744 * 60, description="Whole minutes")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ClientCreate(Strict):
    name: Name
    legal_name: ShortText | None = None
    billing_email: EmailStr | None = None
    locale: Locale = "fr-CA"
    currency: Currency = "CAD"
    notes: Annotated[str, StringConstraints(max_length=10_000)] | None = None


class ClientUpdate(Strict):
    name: Name | None = None
    legal_name: ShortText | None = None
    billing_email: EmailStr | None = None
    locale: Locale | None = None
    currency: Currency | None = None
    notes: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    status: ClientStatusLiteral | None = None


class ClientRead(BaseModel):
    id: uuid.UUID
    name: str
    locale: str
    currency: str
    status: ClientStatusLiteral
    legal_name: str | None = Field(description="Only for owners, admins and managers")
    billing_email: str | None = Field(description="Only for owners, admins and managers")
    notes: str | None = Field(description="Only for owners, admins and managers")
    version: int
    created_at: datetime
    updated_at: datetime


class Guidelines(Strict):
    """What the team writes for a brand; content is checked against it before approval."""

    tone_of_voice: Annotated[str, StringConstraints(max_length=5_000)] = ""
    netiquette: Annotated[str, StringConstraints(max_length=5_000)] = ""
    banned_words: Annotated[list[Word], Field(max_length=500)] = Field(default_factory=list)
    hashtags: Annotated[list[Word], Field(max_length=200)] = Field(default_factory=list)


class BrandCreate(Strict):
    client_id: uuid.UUID
    name: Name
    slug: Slug
    timezone: TimeZone = "America/Montreal"
    default_language: Literal["fr", "en"] = "fr"
    guidelines: Guidelines = Field(default_factory=Guidelines)


class BrandUpdate(Strict):
    name: Name | None = None
    slug: Slug | None = None
    timezone: TimeZone | None = None
    default_language: Literal["fr", "en"] | None = None
    guidelines: Guidelines | None = None
    status: ClientStatusLiteral | None = None


class BrandRead(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    name: str
    slug: str
    timezone: str
    default_language: str
    guidelines: Guidelines
    status: ClientStatusLiteral
    version: int
    created_at: datetime
    updated_at: datetime


AssignmentRoleLiteral = Literal["lead", "community_manager", "content_creator", "analyst"]


class AssignmentCreate(Strict):
    brand_id: uuid.UUID
    user_id: uuid.UUID
    role: AssignmentRoleLiteral
    monthly_minutes: Minutes = 0
    start_date: date
    end_date: date | None = Field(default=None, description="Last day with access (inclusive)")


class AssignmentUpdate(Strict):
    monthly_minutes: Minutes | None = None
    start_date: date | None = None
    end_date: date | None = None


class AssignmentRead(BaseModel):
    id: uuid.UUID
    brand_id: uuid.UUID
    user_id: uuid.UUID
    role: AssignmentRoleLiteral
    monthly_minutes: int
    start_date: date
    end_date: date | None
    version: int
    created_at: datetime
    updated_at: datetime


class AllocationLine(BaseModel):
    assignment_id: uuid.UUID
    brand_id: uuid.UUID
    brand_name: str
    role: AssignmentRoleLiteral
    monthly_minutes: int
    allocated_minutes: int = Field(description="Prorated by the days of the month assigned")


class StaffCapacity(BaseModel):
    user_id: uuid.UUID
    name: str
    month: str
    capacity_minutes: int
    allocated_minutes: int
    over_allocated: bool
    allocations: list[AllocationLine]


class TeamCapacityRow(BaseModel):
    user_id: uuid.UUID
    name: str
    role: Role
    capacity_minutes: int
    allocated_minutes: int
    over_allocated: bool


class AuditEventRead(BaseModel):
    id: uuid.UUID
    actor_type: str
    actor_id: uuid.UUID | None
    action: str
    subject_type: str
    subject_id: uuid.UUID
    changes: dict[str, Any]
    request_id: str | None
    created_at: datetime
