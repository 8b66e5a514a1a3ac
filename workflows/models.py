"""Database shape of content and approvals. Every table is tenant-owned.

Revisions, decisions and comments are append-only: the application role is granted no
UPDATE or DELETE on them (see the migration), so nobody can later rewrite who approved what.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlmodel import Field

from infra.clock import utcnow
from infra.models import TenantScoped, jsonb_field, tz_field
from workflows.engine import Status


def _fk(column: str, table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])


class WorkflowTemplate(TenantScoped, table=True):
    __tablename__ = "workflow_templates"

    name: str = Field(max_length=120)
    description: str | None = Field(default=None, max_length=1000)
    steps: list[dict[str, Any]] = jsonb_field()
    allow_self_approval: bool = False
    client_agreed_auto_approve: bool = False
    """The client agreed in writing that silence past a client step's due time approves."""
    blocking_checks: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String(32)), nullable=False)
    )
    is_tenant_default: bool = False
    archived_at: datetime | None = tz_field()
    created_by: uuid.UUID | None = None
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class BrandWorkflow(TenantScoped, table=True):
    """A brand's default template (at most one per brand)."""

    __tablename__ = "brand_workflows"
    __table_args__ = (
        _fk("brand_id", "brands"),
        _fk("template_id", "workflow_templates"),
        UniqueConstraint("tenant_id", "brand_id", name="uq_brand_workflows_brand"),
    )

    brand_id: uuid.UUID
    template_id: uuid.UUID


class ContentItem(TenantScoped, table=True):
    __tablename__ = "content_items"
    __table_args__ = (
        _fk("brand_id", "brands"),
        _fk("template_id", "workflow_templates"),
        Index("ix_content_brand_planned", "tenant_id", "brand_id", "planned_at"),
        Index("ix_content_brand_created", "tenant_id", "brand_id", "created_at", "id"),
    )

    brand_id: uuid.UUID
    title: str = Field(max_length=200)
    status: str = Field(default=Status.draft, sa_column=Column(String(24), nullable=False))
    status_reason: str | None = None
    reason_for_client: bool = False
    """Whether client contacts may read `status_reason` (an internal reviewer's is not theirs)."""
    planned_at: datetime | None = tz_field()
    campaign: str | None = Field(default=None, max_length=120)
    labels: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String(60)), nullable=False)
    )
    template_id: uuid.UUID | None = None
    """Chosen for this item; else the brand's default, else the agency's."""
    current_revision_id: uuid.UUID | None = None
    revision_number: int = 0
    client_revision_id: uuid.UUID | None = None
    """The revision last sent to the client: what client contacts see, never a later draft."""
    workflow: dict[str, Any] = jsonb_field()
    """The template as it was at submission, so that editing a template never changes an
    approval already under way."""
    round: int = 0
    """Counts submissions: decisions and links belong to one round."""
    step_index: int | None = None
    step_started_at: datetime | None = tz_field()
    step_approvers: dict[str, Any] = jsonb_field()
    """Approver keys ("user:<id>", "email:<address>") of each step started in this round."""
    next_deadline_at: datetime | None = tz_field()
    timeouts_done: int = 0
    submitted_by: uuid.UUID | None = None
    submitted_at: datetime | None = tz_field()
    created_by: uuid.UUID | None = None
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ContentRevision(TenantScoped, table=True):
    __tablename__ = "content_revisions"
    __table_args__ = (
        _fk("content_item_id", "content_items"),
        UniqueConstraint("tenant_id", "content_item_id", "number", name="uq_revisions_number"),
    )

    content_item_id: uuid.UUID
    number: int
    author_id: uuid.UUID | None = None
    title: str = Field(max_length=200)
    variants: dict[str, Any] = jsonb_field()
    media: list[dict[str, Any]] = jsonb_field()
    planned_at: datetime | None = tz_field()
    campaign: str | None = Field(default=None, max_length=120)
    labels: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String(60)), nullable=False)
    )
    social_account_ids: list[uuid.UUID] = Field(
        default_factory=list, sa_column=Column(ARRAY(UUID(as_uuid=True)), nullable=False)
    )


class ApprovalLink(TenantScoped, table=True):
    """An external approver's single-use link. The token itself is never stored: it is a
    signature over this row's id, made when the e-mail is sent."""

    __tablename__ = "approval_links"
    __table_args__ = (
        _fk("content_item_id", "content_items"),
        _fk("revision_id", "content_revisions"),
        UniqueConstraint(
            "tenant_id", "content_item_id", "round", "step_index", "email", name="uq_links_step"
        ),
    )

    content_item_id: uuid.UUID
    revision_id: uuid.UUID
    round: int
    step_index: int
    email: str = Field(max_length=254)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    used_at: datetime | None = tz_field()


class ApprovalDecision(TenantScoped, table=True):
    __tablename__ = "approval_decisions"
    __table_args__ = (
        _fk("content_item_id", "content_items"),
        _fk("revision_id", "content_revisions"),
        # One decision per approver per step per submission round (a round has one revision).
        UniqueConstraint(
            "tenant_id",
            "content_item_id",
            "round",
            "step_index",
            "approver",
            name="uq_decisions_approver",
        ),
        # The portal's history: one person's decisions, newest first.
        Index("ix_decisions_by_person", "tenant_id", "user_id", "created_at", "id"),
    )

    content_item_id: uuid.UUID
    revision_id: uuid.UUID
    round: int
    step_index: int
    step_kind: str = Field(max_length=16)
    approver: str = Field(max_length=300)
    decision: str = Field(max_length=24)
    comment: str | None = None
    actor_type: str = Field(max_length=16)
    """user, link (an external approver), or system (auto-approval by agreement)."""
    user_id: uuid.UUID | None = None
    link_id: uuid.UUID | None = None
    email: str | None = Field(default=None, max_length=254)
    channel: str = Field(max_length=16)


class ContentComment(TenantScoped, table=True):
    __tablename__ = "content_comments"
    __table_args__ = (
        _fk("content_item_id", "content_items"),
        Index("ix_comments_item", "tenant_id", "content_item_id", "created_at", "id"),
    )

    content_item_id: uuid.UUID
    parent_id: uuid.UUID | None = None
    revision_id: uuid.UUID | None = None
    anchor: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    visibility: str = Field(max_length=16)
    body: str
    author_type: str = Field(max_length=16)
    author_id: uuid.UUID | None = None
    author_email: str | None = Field(default=None, max_length=254)
    author_name: str = Field(max_length=200)
    mentions: list[uuid.UUID] = Field(
        default_factory=list, sa_column=Column(ARRAY(UUID(as_uuid=True)), nullable=False)
    )
