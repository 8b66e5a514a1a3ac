"""Who is acting: resolved once per request (or job) and passed to every service."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tenants.models import Role


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    session_id: uuid.UUID
    role: Role
    client_id: uuid.UUID | None = None
    timezone: str = "UTC"
    """The tenant's timezone: days, months and access end dates are counted in it."""
    request_id: str | None = None
    kind: str = "user"
    standing: str = "active"
    """The agency's standing (`tenants.standing`): suspended or canceled agencies only read."""
    scopes: frozenset[str] | None = None
    """A partner token's scopes; None for people, whose role alone decides."""
    app_id: uuid.UUID | None = None
    """The partner app acting (kind "partner"). It acts with the manager's policy and the
    identity of the admin who created it, within its scopes."""

    @property
    def actor_id(self) -> uuid.UUID:
        """Who audit records name: the partner app, or the person."""
        return self.app_id or self.user_id
