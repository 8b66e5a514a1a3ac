"""Request and response models of the directory."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

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

# What the API serves: months, weeks and days from 2000 to 2099, said in the OpenAPI schema.
# Far enough for any agency's history and plans; near enough that every computation on them
# (a month's last day, a week's Sunday, a report in the agency's time zone) stays valid.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
Month = Annotated[
    str,
    StringConstraints(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$"),
    Field(description="A month, YYYY-MM, from 2000-01 to 2099-12", examples=["2026-11"]),
]
IsoWeek = Annotated[
    str,
    StringConstraints(pattern=r"^20[0-9]{2}-W(0[1-9]|[1-4][0-9]|5[0-3])$"),
    Field(
        description="An ISO 8601 week, YYYY-Www, from 2000-W01 to 2099-W53 (W53 only in the "
        "years that have one)",
        examples=["2026-W47"],
    ),
]
Day = Annotated[
    date,
    Field(
        ge=FIRST_DAY, le=LAST_DAY, description="A day, YYYY-MM-DD, from 2000-01-01 to 2099-12-31"
    ),
]
Instant = Annotated[
    AwareDatetime,
    Field(
        ge=datetime(2000, 1, 1, tzinfo=UTC),
        lt=datetime(2100, 1, 1, tzinfo=UTC),
        description="A moment with its UTC offset, from 2000-01-01 to 2099-12-31 (UTC)",
    ),
]


def _make_scalars_strict(node: Any) -> None:
    """Every int and bool validator of a model's core schema, at any depth (lists, unions,
    nested models), refuses the lax conversions (bool -> int, 1 -> True, "3" -> 3)."""
    if isinstance(node, dict):
        if node.get("type") in ("int", "bool"):
            node["strict"] = True
        for value in node.values():
            _make_scalars_strict(value)
    elif isinstance(node, list):
        for value in node:
            _make_scalars_strict(value)


class Strict(BaseModel):
    """Request bodies refuse unknown fields: a typo must not pass silently. Integers and
    booleans are strict: `true` is not a number of minutes, `1` or `"yes"` not a yes."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema = handler(source)
        _make_scalars_strict(schema)
        return schema


class Patch(Strict):
    """A partial update: a field left out stays as it is, and `null` is accepted only by the
    fields listed in `clearable` (it clears them); elsewhere it is a 422 naming the field.
    The JSON schema says the same: only clearable fields are nullable."""

    clearable: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        unknown = cls.clearable - set(cls.model_fields)
        if unknown:
            raise TypeError(f"{cls.__name__}.clearable names no field: {sorted(unknown)}")

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.clearable:
            raise PydanticCustomError(
                "null_not_allowed", "cannot be null; leave the field out to keep it as it is"
            )
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        for name, prop in target.get("properties", {}).items():
            if name not in cls.clearable:
                _drop_null(prop)
        return schema


def _drop_null(prop: dict[str, Any]) -> None:
    options = prop.get("anyOf")
    if not options:
        return
    kept = [o for o in options if o.get("type") != "null"]
    if len(kept) == len(options):
        return
    del prop["anyOf"]
    if len(kept) == 1:
        prop.update(kept[0])
    else:
        prop["anyOf"] = kept
    if "default" in prop and prop["default"] is None:
        del prop["default"]


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


class MemberUpdate(Patch):
    clearable = frozenset({"client_id"})

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


class ClientUpdate(Patch):
    clearable = frozenset({"legal_name", "billing_email", "notes"})

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
    watch_list: Annotated[list[Word], Field(max_length=200)] = Field(
        default_factory=list,
        description="Inbox: authors (handle or platform id) and keywords to watch; an item "
        "from or with one can trigger rules and the crisis warning",
    )
    reply_approval: bool = Field(
        default=False, description="Inbox: a manager approves replies before they go out"
    )
    crisis_notify_client: bool = Field(
        default=False, description="Inbox: a suspected crisis is e-mailed to the client too"
    )


class BrandCreate(Strict):
    client_id: uuid.UUID
    name: Name
    slug: Slug
    timezone: TimeZone = "America/Montreal"
    default_language: Literal["fr", "en"] = "fr"
    guidelines: Guidelines = Field(default_factory=Guidelines)


class BrandUpdate(Patch):
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
    start_date: Day
    end_date: Day | None = Field(default=None, description="Last day with access (inclusive)")


class AssignmentUpdate(Patch):
    clearable = frozenset({"end_date"})

    monthly_minutes: Minutes | None = None
    start_date: Day | None = None
    end_date: Day | None = None


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


# ---------------------------------------------------------------------------------------------
# The agency's branding


class BrandingRead(BaseModel):
    logo_url: str | None = Field(
        description="The logo's public address (it changes with the image, so it can be cached "
        "forever); null when the agency has none"
    )
    logo_content_type: str | None
    logo_size: int | None = Field(description="Bytes")
    app_base_url: str | None = Field(
        description="Where links in e-mails to clients and external approvers point; null: "
        "this service's own pages (PUBLIC_BASE_URL)"
    )
    version: int
    updated_at: datetime | None


class BrandingUpdate(Patch):
    clearable: ClassVar[frozenset[str]] = frozenset({"app_base_url"})

    app_base_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = Field(
        default=None,
        description="The agency's own client-facing app (https; http only on loopback in "
        "development); null: links point at this service's pages again",
    )
