"""Who sees what in the directory: one policy, role × resource × action -> scope.

A scope says which rows a role reaches: every row of the tenant, only what the person is
currently assigned to, only their own client's, only their own, or nothing. Services turn the
scope into a query filter, so lists and single reads obey the same rule.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from tenants.models import Role


class Resource(StrEnum):
    client = "client"
    brand = "brand"
    assignment = "assignment"
    capacity = "capacity"
    audit = "audit"
    retainer = "retainer"
    rate = "rate"
    time_entry = "time_entry"
    timesheet = "timesheet"
    budget = "budget"
    content = "content"
    workflow_template = "workflow_template"
    subscription = "subscription"
    invoice = "invoice"
    social_account = "social_account"
    """Connected accounts and their statistics."""
    report = "report"
    """A client's monthly audience report."""
    inbox = "inbox"
    """The community's items, and the replies and moderation sent on them."""
    inbox_settings = "inbox_settings"
    """Saved replies, inbox rules and response policies."""


class Verb(StrEnum):
    read = "read"  # lists and single reads alike
    create = "create"
    update = "update"
    approve = "approve"


class Scope(StrEnum):
    all = "all"
    assigned = "assigned"
    """Brands with a current assignment of the person, and those brands' clients."""
    own_client = "own_client"
    own = "own"
    none = "none"


_STAFF_MANAGER = {
    Resource.client: {Verb.read: Scope.all, Verb.create: Scope.all, Verb.update: Scope.all},
    Resource.brand: {Verb.read: Scope.all, Verb.create: Scope.all, Verb.update: Scope.all},
    Resource.assignment: {Verb.read: Scope.all, Verb.create: Scope.all, Verb.update: Scope.all},
    Resource.capacity: {Verb.read: Scope.all, Verb.create: Scope.none, Verb.update: Scope.all},
    Resource.audit: {Verb.read: Scope.all, Verb.create: Scope.none, Verb.update: Scope.none},
    Resource.retainer: {Verb.read: Scope.all, Verb.create: Scope.all, Verb.update: Scope.all},
    Resource.rate: {Verb.read: Scope.all, Verb.create: Scope.all, Verb.update: Scope.all},
    # Time is always logged by the person who spent it; managers correct and approve it.
    Resource.time_entry: {Verb.read: Scope.all, Verb.create: Scope.own, Verb.update: Scope.all},
    Resource.timesheet: {
        Verb.read: Scope.all,
        Verb.create: Scope.own,
        Verb.approve: Scope.all,
    },
    Resource.budget: {Verb.read: Scope.all},
    Resource.content: {Verb.read: Scope.all, Verb.create: Scope.all, Verb.update: Scope.all},
    Resource.workflow_template: {
        Verb.read: Scope.all,
        Verb.create: Scope.all,
        Verb.update: Scope.all,
    },
    Resource.social_account: {
        Verb.read: Scope.all,
        Verb.create: Scope.all,
        Verb.update: Scope.all,
    },
    Resource.report: {Verb.read: Scope.all},
    Resource.inbox: {Verb.read: Scope.all, Verb.update: Scope.all, Verb.approve: Scope.all},
    Resource.inbox_settings: {
        Verb.read: Scope.all,
        Verb.create: Scope.all,
        Verb.update: Scope.all,
    },
}

_MANAGER = {
    **_STAFF_MANAGER,
    # Managers see the plan and prepare client invoices; money leaves with an admin's approval.
    Resource.subscription: {Verb.read: Scope.all},
    Resource.invoice: {Verb.read: Scope.all, Verb.create: Scope.all, Verb.update: Scope.all},
}
_ADMIN = {
    **_MANAGER,
    Resource.subscription: {Verb.read: Scope.all, Verb.update: Scope.all},
    Resource.invoice: {
        Verb.read: Scope.all,
        Verb.create: Scope.all,
        Verb.update: Scope.all,
        Verb.approve: Scope.all,
    },
}

POLICY: dict[Role, dict[Resource, dict[Verb, Scope]]] = {
    Role.owner: _ADMIN,
    Role.admin: _ADMIN,
    Role.manager: _MANAGER,
    Role.member: {
        Resource.client: {Verb.read: Scope.assigned},
        Resource.brand: {Verb.read: Scope.assigned},
        Resource.assignment: {Verb.read: Scope.own},
        Resource.capacity: {Verb.read: Scope.own},
        Resource.time_entry: {Verb.read: Scope.own, Verb.create: Scope.own, Verb.update: Scope.own},
        Resource.timesheet: {Verb.read: Scope.own, Verb.create: Scope.own},
        # Hours only, for the clients they work on: fees and rates stay with managers.
        Resource.budget: {Verb.read: Scope.assigned},
        Resource.content: {
            Verb.read: Scope.assigned,
            Verb.create: Scope.assigned,
            Verb.update: Scope.assigned,
        },
        # Members pick a template for an item; managers shape the agency's workflows.
        Resource.workflow_template: {Verb.read: Scope.all},
        # Community managers connect and look after the accounts of the brands they run.
        Resource.social_account: {
            Verb.read: Scope.assigned,
            Verb.create: Scope.assigned,
            Verb.update: Scope.assigned,
        },
        Resource.report: {Verb.read: Scope.assigned},
        # Community managers answer the brands they run; settings are the managers'.
        Resource.inbox: {Verb.read: Scope.assigned, Verb.update: Scope.assigned},
        Resource.inbox_settings: {Verb.read: Scope.all},
    },
    Role.client: {
        Resource.client: {Verb.read: Scope.own_client},
        Resource.brand: {Verb.read: Scope.own_client},
        Resource.budget: {Verb.read: Scope.own_client},
        # Only what was sent to them, as it was sent (see workflows.service.access).
        Resource.content: {Verb.read: Scope.own_client},
        # Their brands' audience and monthly reports, read-only, in the portal.
        Resource.social_account: {Verb.read: Scope.own_client},
        Resource.report: {Verb.read: Scope.own_client},
    },
}


def scope_of(role: Role | str, resource: Resource, verb: Verb) -> Scope:
    return POLICY.get(Role(role), {}).get(resource, {}).get(verb, Scope.none)


def sees_internal_client_fields(role: Role | str) -> bool:
    """Notes, legal name and billing e-mail are for the agency's managers only."""
    return scope_of(role, Resource.client, Verb.update) is Scope.all


def sees_money(role: Role | str) -> bool:
    """Fees, rates and amounts are for those who manage retainers."""
    return scope_of(role, Resource.retainer, Verb.read) is Scope.all


def local_date(timezone: str, at: datetime) -> date:
    """The calendar day at `at` in the tenant's timezone: access ends with that day."""
    return at.astimezone(ZoneInfo(timezone)).date()
