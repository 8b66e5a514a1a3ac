"""Shared rules of the directory's services: authorization, audit, optimistic versions."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import PreconditionFailed
from tenants import errors
from tenants.models import (
    AuditEvent,
)
from tenants.permissions import Action, can
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
) -> None:
    session.add(
        AuditEvent(
            tenant_id=tenant_id,
            actor_type=actor.kind if actor else ("user" if actor_id else "system"),
            actor_id=actor.user_id if actor else actor_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            changes=changes or {},
            request_id=actor.request_id if actor else request_id,
        )
    )


def check_version(current: int, if_match: int | None) -> None:
    if if_match is not None and if_match != current:
        raise PreconditionFailed(
            f"You edited version {if_match}; the current version is {current}.",
            current_version=current,
        )
