"""Shared rules of the directory's services: authorization, audit, optimistic versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from infra.clock import utcnow
from infra.errors import PreconditionFailed
from tenants import errors
from tenants.models import AuditEvent, Client
from tenants.permissions import Action, can
from tenants.policy import Resource, Scope, Verb, scope_of
from tenants.principal import Principal

# ---------------------------------------------------------------------------------------------
# Authorization and audit


def authorize(principal: Principal, action: Action) -> None:
    if not can(principal.role, action):
        raise errors.PermissionDenied(f"Role '{principal.role}' may not {action.value}.")


def record_audit(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    actor: Principal | None,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
    request_id: str | None = None,
    actor_id: uuid.UUID | None = None,
    actor_type: str | None = None,
) -> None:
    session.add(
        AuditEvent(
            tenant_id=tenant_id,
            actor_type=actor_type or (actor.kind if actor else ("user" if actor_id else "system")),
            actor_id=actor.actor_id if actor else actor_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            changes=changes or {},
            request_id=actor.request_id if actor else request_id,
        )
    )


def check_version(current: int, if_match: int | None) -> None:
    if if_match is not None and if_match < 0:
        raise PreconditionFailed('If-Match must be an ETag this API gave you, such as "3".')
    if if_match is not None and if_match != current:
        raise PreconditionFailed(
            f"You edited version {if_match}; the current version is {current}.",
            current_version=current,
        )


async def load_readable(
    session: AsyncSession,
    readable: Select[Any],
    *,
    missing: Exception,
    lock: bool = False,
    lock_of: Any = None,
) -> Any:
    """The one row of a resource's readable statement (already narrowed to an id), or the
    resource's 404: an object the principal may not see is, for them, an object that does not
    exist (never a 403, which would disclose it). `lock` takes the row for an update."""
    if lock:
        readable = readable.with_for_update(of=lock_of).execution_options(populate_existing=True)
    found = (await session.scalars(readable)).first()
    if found is None:
        raise missing
    return found


class Versioned(Protocol):
    id: uuid.UUID
    version: int
    updated_at: datetime


def bump(obj: Versioned, *, at: datetime | None = None) -> None:
    """The object changed: its next version (its next ETag) and when."""
    obj.version += 1
    obj.updated_at = at or utcnow()


def record_update(
    session: AsyncSession,
    principal: Principal,
    obj: Versioned,
    *,
    action: str,
    subject_type: str,
    changes: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """A person's change to a versioned object, after check_version let it through: the next
    version, and the audit row saying who changed what."""
    bump(obj, at=at)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action=action,
        subject_type=subject_type,
        subject_id=obj.id,
        changes=changes,
    )


async def ensure_client_exists(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> None:
    found = await session.scalar(
        select(Client.id).where(Client.tenant_id == principal.tenant_id, Client.id == client_id)
    )
    if found is None:
        raise errors.ClientNotFound(f"No client {client_id} in this agency.")


def require_scope(principal: Principal, resource: Resource, verb: Verb) -> Scope:
    """The rows this principal reaches for this action; refuses outright when none."""
    scope = scope_of(principal.role, resource, verb)
    if scope is Scope.none:
        raise errors.PermissionDenied(
            f"Role '{principal.role}' may not {verb.value} {resource.value}s."
        )
    return scope
