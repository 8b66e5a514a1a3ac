"""Who reaches which content item, and the shared loading and shaping of items."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from tenants.models import Brand, Role
from tenants.policy import Resource, Scope, Verb
from tenants.principal import Principal
from tenants.service.common import bump, load_readable, record_audit, require_scope
from tenants.service.directory import brand_visibility, today_for
from workflows import errors
from workflows.engine import StepKind, TimeoutPolicy, TimeoutStep, first_deadline
from workflows.models import ContentComment, ContentItem, ContentRevision
from workflows.schemas import ContentRead, RevisionRead, StepState

CLIENT_VISIBLE = "client"


def is_client(principal: Principal) -> bool:
    return principal.role == Role.client


def user_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def email_key(email: str) -> str:
    return f"email:{email.strip().lower()}"


def item_visibility(principal: Principal, verb: Verb) -> ColumnElement[bool]:
    """Items on brands the principal reaches; client contacts only once sent to them."""
    scope = require_scope(principal, Resource.content, verb)
    visible_brands = select(Brand.id).where(
        Brand.tenant_id == principal.tenant_id,
        brand_visibility(principal, scope, today_for(principal)),
    )
    condition: ColumnElement[bool] = col(ContentItem.brand_id).in_(visible_brands)
    if scope is Scope.own_client:
        condition = condition & col(ContentItem.client_revision_id).is_not(None)
    return condition


def readable_items(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """The content items this principal may `verb` (see item_visibility)."""
    return select(ContentItem).where(
        ContentItem.tenant_id == principal.tenant_id, item_visibility(principal, verb)
    )


async def load_item(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    verb: Verb = Verb.read,
    *,
    lock: bool = False,
) -> ContentItem:
    item: ContentItem = await load_readable(
        session,
        readable_items(principal, verb).where(col(ContentItem.id) == content_id),
        lock=lock,
        missing=errors.ContentNotFound(),
    )
    return item


async def load_revision(
    session: AsyncSession, tenant_id: uuid.UUID, item_id: uuid.UUID, revision_id: uuid.UUID
) -> ContentRevision:
    revision = await session.get(ContentRevision, (tenant_id, revision_id))
    if revision is None or revision.content_item_id != item_id:
        raise errors.RevisionNotFound()
    return revision


def shown_revision_id(principal: Principal, item: ContentItem) -> uuid.UUID | None:
    """Client contacts see the revision they were sent; staff see the latest."""
    return item.client_revision_id if is_client(principal) else item.current_revision_id


def revision_read(revision: ContentRevision) -> RevisionRead:
    return RevisionRead(
        id=revision.id,
        number=revision.number,
        author_id=revision.author_id,
        title=revision.title,
        variants=dict(revision.variants),
        media=list(revision.media),
        social_account_ids=list(revision.social_account_ids),
        planned_at=revision.planned_at,
        campaign=revision.campaign,
        labels=list(revision.labels),
        created_at=revision.created_at,
    )


def comment_visibility(principal: Principal) -> ColumnElement[bool]:
    if is_client(principal):
        return col(ContentComment.visibility) == CLIENT_VISIBLE
    return col(ContentComment.tenant_id) == principal.tenant_id


async def comment_count(session: AsyncSession, principal: Principal, item_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(ContentComment)
        .where(
            ContentComment.tenant_id == principal.tenant_id,
            ContentComment.content_item_id == item_id,
            comment_visibility(principal),
        )
    )
    return int(count or 0)


def timeout_step(step: dict[str, Any]) -> TimeoutStep:
    timeout = step.get("timeout") or {}
    return TimeoutStep(
        kind=StepKind(step["kind"]),
        due_hours=int(step["due_hours"]),
        policy=TimeoutPolicy(timeout.get("policy", "remind")),
        reminder_hours=tuple(timeout.get("reminder_hours") or (0,)),
    )


def step_due_at(item: ContentItem) -> datetime | None:
    if item.step_index is None or item.step_started_at is None:
        return None
    return first_deadline(
        timeout_step(item.workflow["steps"][item.step_index]), item.step_started_at
    )


def step_state(principal: Principal | None, item: ContentItem) -> StepState | None:
    if item.step_index is None:
        return None
    step = item.workflow["steps"][item.step_index]
    approvers = list(item.step_approvers.get(str(item.step_index), []))
    decided = list(item.step_approvers.get(f"{item.step_index}:decided", []))
    return StepState(
        index=item.step_index,
        name=step["name"],
        kind=step["kind"],
        rule=step["rule"],
        started_at=item.step_started_at,
        due_at=step_due_at(item),
        # A client contact has no business knowing the other approvers' addresses.
        approvers=[] if principal is not None and is_client(principal) else approvers,
        decided=[] if principal is not None and is_client(principal) else decided,
    )


async def content_read(
    session: AsyncSession, principal: Principal, item: ContentItem
) -> ContentRead:
    revision_id = shown_revision_id(principal, item)
    revision = (
        await session.get(ContentRevision, (item.tenant_id, revision_id)) if revision_id else None
    )
    client_view = is_client(principal)
    return ContentRead(
        id=item.id,
        brand_id=item.brand_id,
        title=revision.title if client_view and revision else item.title,
        status=item.status,
        status_reason=item.status_reason if item.reason_for_client or not client_view else None,
        planned_at=revision.planned_at if client_view and revision else item.planned_at,
        campaign=item.campaign,
        labels=[] if client_view else list(item.labels),
        template_id=None if client_view else item.template_id,
        revision=revision_read(revision) if revision else None,
        round=item.round,
        step=step_state(principal, item),
        submitted_at=item.submitted_at,
        comment_count=await comment_count(session, principal, item.id),
        version=item.version,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def audit(
    session: AsyncSession,
    principal: Principal | None,
    item: ContentItem,
    action: str,
    details: dict[str, Any] | None = None,
    *,
    client_visible: bool = False,
    actor_type: str | None = None,
    actor_id: uuid.UUID | None = None,
) -> None:
    """The item's history. `client_visible` entries are the ones client contacts see."""
    record_audit(
        session,
        tenant_id=item.tenant_id,
        actor=principal,
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        subject_type="content_item",
        subject_id=item.id,
        changes={**(details or {}), "audience": "client" if client_visible else "internal"},
    )


def touch(item: ContentItem) -> None:
    bump(item)
