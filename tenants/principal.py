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
