"""Database shape of the directory. `tenants` and `users` are global; the rest is tenant-owned."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
)
from sqlmodel import Field, SQLModel

from infra.clock import utcnow
from infra.ids import new_id
from infra.models import TenantScoped, jsonb_field, tz_field


class TenantStatus(StrEnum):
    active = "active"
    past_due = "past_due"
    suspended = "suspended"
    canceled = "canceled"
    closed = "closed"
    """The agency's contract ended: its data is deleted (`privacy.closure`); nobody signs in."""


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    manager = "manager"
    member = "member"
    client = "client"


class MembershipStatus(StrEnum):
    invited = "invited"
    active = "active"
    disabled = "disabled"


class InvitationStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    revoked = "revoked"


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    slug: str = Field(max_length=63, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64)
    locale: str = Field(max_length=8)
    currency: str = Field(max_length=3)
    status: str = Field(default=TenantStatus.active, sa_column=Column(String(16), nullable=False))
    plan_id: str = Field(default="starter", max_length=32)
    """An entry of the plan catalogue in configuration (`infra.plans`)."""
    stripe_customer_id: str | None = Field(default=None, max_length=255)
    past_due_since: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    stripe_account_id: str | None = Field(default=None, max_length=255)
    """The agency's own (connected) Stripe account, on which its client invoices are made."""
    next_invoice_number: int = 1
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class User(SQLModel, table=True):
    """One identity across agencies: freelancers work for several."""

    __tablename__ = "users"
    __table_args__ = (Index("ux_users_email_lower", func.lower(Column("email")), unique=True),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    password_hash: str | None = None
    locale: str = Field(max_length=8, default="en")
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Membership(TenantScoped, table=True):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", name="uq_memberships_user"),
        CheckConstraint("role <> 'client' OR client_id IS NOT NULL", name="ck_memberships_client"),
        Index("ix_memberships_user", "user_id"),
    )

    user_id: uuid.UUID = Field(foreign_key="users.id")
    role: str = Field(sa_column=Column(String(16), nullable=False))
    status: str = Field(
        default=MembershipStatus.active, sa_column=Column(String(16), nullable=False)
    )
    client_id: uuid.UUID | None = None
    monthly_capacity_minutes: int = 0
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class AuthSession(TenantScoped, table=True):
    """One login: a family of refresh tokens. Revoking it ends every token of the family."""

    __tablename__ = "auth_sessions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "membership_id"], ["memberships.tenant_id", "memberships.id"]
        ),
    )

    user_id: uuid.UUID = Field(foreign_key="users.id")
    membership_id: uuid.UUID
    revoked_at: datetime | None = tz_field()
    revoked_reason: str | None = Field(default=None, max_length=32)
    user_agent: str | None = Field(default=None, max_length=300)


class RefreshToken(TenantScoped, table=True):
    __tablename__ = "refresh_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["auth_sessions.tenant_id", "auth_sessions.id"]
        ),
        Index("ix_refresh_tokens_session", "tenant_id", "session_id"),
    )

    session_id: uuid.UUID
    token_hash: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    used_at: datetime | None = tz_field()


class Invitation(TenantScoped, table=True):
    __tablename__ = "invitations"
    __table_args__ = (
        Index(
            "ux_invitations_pending_email",
            "tenant_id",
            func.lower(Column("email")),
            unique=True,
            postgresql_where="status = 'pending'",
        ),
    )

    email: str = Field(max_length=254)
    role: str = Field(sa_column=Column(String(16), nullable=False))
    client_id: uuid.UUID | None = None
    invited_by: uuid.UUID = Field(foreign_key="users.id")
    status: str = Field(
        default=InvitationStatus.pending, sa_column=Column(String(16), nullable=False)
    )
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    accepted_at: datetime | None = tz_field()


class AuditEvent(TenantScoped, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_subject", "tenant_id", "subject_type", "subject_id"),
        Index("ix_audit_created", "tenant_id", "created_at"),
    )

    actor_type: str = Field(max_length=16)
    actor_id: uuid.UUID | None = None
    action: str = Field(max_length=64)
    subject_type: str = Field(max_length=32)
    subject_id: uuid.UUID
    changes: dict[str, Any] = jsonb_field()
    request_id: str | None = Field(default=None, max_length=128)


class ClientStatus(StrEnum):
    active = "active"
    archived = "archived"


class Client(TenantScoped, table=True):
    """A paying customer of the agency."""

    __tablename__ = "clients"
    __table_args__ = (Index("ix_clients_name", "tenant_id", func.lower(Column("name"))),)

    name: str = Field(max_length=200)
    legal_name: str | None = Field(default=None, max_length=200)
    billing_email: str | None = Field(default=None, max_length=254)
    locale: str = Field(max_length=8)
    currency: str = Field(max_length=3)
    notes: str | None = None
    status: str = Field(default=ClientStatus.active, sa_column=Column(String(16), nullable=False))
    archived_at: datetime | None = tz_field()
    stripe_customer_id: str | None = Field(default=None, max_length=255)
    """The client as a customer of the agency's connected Stripe account."""
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Brand(TenantScoped, table=True):
    __tablename__ = "brands"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"]),
        UniqueConstraint("tenant_id", "slug", name="uq_brands_slug"),
        Index("ix_brands_client", "tenant_id", "client_id"),
        Index("ix_brands_name", "tenant_id", func.lower(Column("name"))),
    )

    client_id: uuid.UUID
    name: str = Field(max_length=200)
    slug: str = Field(max_length=63)
    timezone: str = Field(max_length=64)
    default_language: str = Field(max_length=8)
    guidelines: dict[str, Any] = jsonb_field()
    status: str = Field(default=ClientStatus.active, sa_column=Column(String(16), nullable=False))
    archived_at: datetime | None = tz_field()
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class AssignmentRole(StrEnum):
    lead = "lead"
    community_manager = "community_manager"
    content_creator = "content_creator"
    analyst = "analyst"


class Assignment(TenantScoped, table=True):
    """A staff member on a brand, in a role, for some hours a month, between two dates."""

    __tablename__ = "assignments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "brand_id"], ["brands.tenant_id", "brands.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "membership_id"], ["memberships.tenant_id", "memberships.id"]
        ),
        Index("ix_assignments_brand", "tenant_id", "brand_id"),
        Index("ix_assignments_membership", "tenant_id", "membership_id"),
    )

    brand_id: uuid.UUID
    membership_id: uuid.UUID
    user_id: uuid.UUID = Field(foreign_key="users.id")
    role: str = Field(sa_column=Column(String(24), nullable=False))
    monthly_minutes: int = 0
    start_date: date
    end_date: date | None = None
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class AgencyBranding(SQLModel, table=True):
    """The agency's logo and the address of its own client-facing app: one row per agency at
    most (keyed by the tenant alone), made on its first change."""

    __tablename__ = "agency_branding"
    __table_args__ = (
        # A logo is all of its parts or none of them.
        CheckConstraint(
            "(logo IS NULL) = (logo_content_type IS NULL) AND (logo IS NULL) = "
            "(logo_sha256 IS NULL) AND (logo IS NULL) = (logo_size IS NULL)",
            name="ck_agency_branding_logo_whole",
        ),
        CheckConstraint(
            "logo_content_type IN ('image/png', 'image/jpeg', 'image/webp')",
            name="ck_agency_branding_logo_type",
        ),
        CheckConstraint(
            "logo_size BETWEEN 1 AND 262144 AND logo_size = octet_length(logo)",
            name="ck_agency_branding_logo_size",
        ),
    )

    tenant_id: uuid.UUID = Field(primary_key=True, foreign_key="tenants.id")
    logo: bytes | None = Field(default=None, sa_type=LargeBinary)
    logo_content_type: str | None = Field(default=None, max_length=32)
    logo_sha256: str | None = Field(default=None, max_length=64)
    logo_size: int | None = None
    app_base_url: str | None = Field(default=None, max_length=2048)
    """Where client-facing e-mail links point instead of PUBLIC_BASE_URL (the agency's own
    portal); None: this project's pages."""
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
