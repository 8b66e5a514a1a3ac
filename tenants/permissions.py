"""Who may do what: one table, role × action, read by every service.

Rules that depend on the object (an admin cannot touch an owner, the last owner cannot
leave) live in the service; this table answers only "may this role ever do this".
"""

from __future__ import annotations

from enum import StrEnum

from tenants.models import Role


class Action(StrEnum):
    tenant_read = "tenant:read"
    members_read = "members:read"
    members_invite = "members:invite"
    members_update = "members:update"
    members_manage_owners = "members:manage_owners"
    audit_read = "audit:read"


_ALL = frozenset(Action)

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.owner: _ALL,
    Role.admin: _ALL - {Action.members_manage_owners},
    Role.manager: frozenset({Action.tenant_read, Action.members_read, Action.audit_read}),
    Role.member: frozenset({Action.tenant_read, Action.members_read}),
    Role.client: frozenset({Action.tenant_read}),
}


def can(role: Role | str, action: Action) -> bool:
    return action in PERMISSIONS.get(Role(role), frozenset())
