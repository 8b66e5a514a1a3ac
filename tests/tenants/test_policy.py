"""The directory's visibility policy, written out in full, and the tenant's calendar day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tenants.models import Role
from tenants.policy import (
    POLICY,
    Resource,
    Scope,
    Verb,
    local_date,
    scope_of,
    sees_internal_client_fields,
    sees_money,
)

# ---------------------------------------------------------------------------------------------
# The matrix: every role × resource × verb, written by hand. A change to the policy must be a
# change to this table too.

#            resource      read        create  update  approve
_MANAGERS = {
    "client": ("all", "all", "all", "none"),
    "brand": ("all", "all", "all", "none"),
    "assignment": ("all", "all", "all", "none"),
    "capacity": ("all", "none", "all", "none"),
    "audit": ("all", "none", "none", "none"),
    "retainer": ("all", "all", "all", "none"),
    "rate": ("all", "all", "all", "none"),
    # Time is logged by whoever spent it, so even a manager creates only their own.
    "time_entry": ("all", "own", "all", "none"),
    "timesheet": ("all", "own", "none", "all"),
    "budget": ("all", "none", "none", "none"),
    "content": ("all", "all", "all", "none"),
    "workflow_template": ("all", "all", "all", "none"),
    "social_account": ("all", "all", "all", "none"),
    "report": ("all", "none", "none", "none"),
    # Replies a brand wants approved are approved by a manager.
    "inbox": ("all", "none", "all", "all"),
    "inbox_settings": ("all", "all", "all", "none"),
}
# Managers prepare client invoices; only owners and admins issue them and manage the plan.
_MANAGER_ONLY = {
    **_MANAGERS,
    "subscription": ("all", "none", "none", "none"),
    "invoice": ("all", "all", "all", "none"),
}
_ADMINS = {
    **_MANAGERS,
    "subscription": ("all", "none", "all", "none"),
    "invoice": ("all", "all", "all", "all"),
}
EXPECTED: dict[str, dict[str, tuple[str, str, str]]] = {
    "owner": _ADMINS,
    "admin": _ADMINS,
    "manager": _MANAGER_ONLY,
    "member": {
        "client": ("assigned", "none", "none", "none"),
        "brand": ("assigned", "none", "none", "none"),
        "assignment": ("own", "none", "none", "none"),
        "capacity": ("own", "none", "none", "none"),
        "audit": ("none", "none", "none", "none"),
        "retainer": ("none", "none", "none", "none"),
        "rate": ("none", "none", "none", "none"),
        "time_entry": ("own", "own", "own", "none"),
        "timesheet": ("own", "own", "none", "none"),
        "budget": ("assigned", "none", "none", "none"),
        "content": ("assigned", "assigned", "assigned", "none"),
        "workflow_template": ("all", "none", "none", "none"),
        "subscription": ("none", "none", "none", "none"),
        "invoice": ("none", "none", "none", "none"),
        "social_account": ("assigned", "assigned", "assigned", "none"),
        "report": ("assigned", "none", "none", "none"),
        "inbox": ("assigned", "none", "assigned", "none"),
        "inbox_settings": ("all", "none", "none", "none"),
    },
    "client": {
        "client": ("own_client", "none", "none", "none"),
        "brand": ("own_client", "none", "none", "none"),
        "assignment": ("none", "none", "none", "none"),
        "capacity": ("none", "none", "none", "none"),
        "audit": ("none", "none", "none", "none"),
        "retainer": ("none", "none", "none", "none"),
        "rate": ("none", "none", "none", "none"),
        "time_entry": ("none", "none", "none", "none"),
        "timesheet": ("none", "none", "none", "none"),
        "budget": ("own_client", "none", "none", "none"),
        "content": ("own_client", "none", "none", "none"),
        "workflow_template": ("none", "none", "none", "none"),
        "subscription": ("none", "none", "none", "none"),
        "invoice": ("none", "none", "none", "none"),
        "social_account": ("own_client", "none", "none", "none"),
        "report": ("own_client", "none", "none", "none"),
        # Only the figures, in their report.
        "inbox": ("none", "none", "none", "none"),
        "inbox_settings": ("none", "none", "none", "none"),
    },
}
VERBS = ("read", "create", "update", "approve")

CASES = [
    (role, resource, verb, EXPECTED[role][resource][i])
    for role in EXPECTED
    for resource in EXPECTED[role]
    for i, verb in enumerate(VERBS)
]


def test_the_expected_matrix_covers_every_role_resource_and_verb():
    assert set(EXPECTED) == {r.value for r in Role}
    for role in EXPECTED:
        assert set(EXPECTED[role]) == {r.value for r in Resource}
    assert set(VERBS) == {v.value for v in Verb}
    assert len(CASES) == len(Role) * len(Resource) * len(Verb) == 360


@pytest.mark.parametrize(("role", "resource", "verb", "expected"), CASES, ids=lambda v: str(v))
def test_scope_of_matches_the_matrix(role, resource, verb, expected):
    assert scope_of(role, Resource(resource), Verb(verb)) is Scope(expected)
    assert scope_of(Role(role), Resource(resource), Verb(verb)) is Scope(expected)


def test_policy_table_holds_nothing_beyond_the_matrix():
    """Every explicit entry in POLICY agrees with the matrix; absent entries mean none."""
    for role, resources in POLICY.items():
        for resource, verbs in resources.items():
            for verb, scope in verbs.items():
                assert EXPECTED[role.value][resource.value][VERBS.index(verb.value)] == scope.value


def test_an_unknown_role_is_refused_rather_than_granted():
    with pytest.raises(ValueError):
        scope_of("superuser", Resource.brand, Verb.read)


@pytest.mark.parametrize(
    ("role", "sees"),
    [("owner", True), ("admin", True), ("manager", True), ("member", False), ("client", False)],
)
def test_only_managers_see_internal_client_fields(role, sees):
    assert sees_internal_client_fields(role) is sees


@pytest.mark.parametrize(
    ("role", "sees"),
    [("owner", True), ("admin", True), ("manager", True), ("member", False), ("client", False)],
)
def test_only_managers_see_fees_rates_and_amounts(role, sees):
    assert sees_money(role) is sees


# ---------------------------------------------------------------------------------------------
# The tenant's calendar day: access ends with the last day in the agency's timezone.


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "at", "expected"),
    [
        # Montréal in winter is UTC-5.
        ("America/Montreal", utc(2026, 12, 1, 4, 30), date(2026, 11, 30)),  # 23:30 on 30 Nov
        ("America/Montreal", utc(2026, 12, 1, 5, 30), date(2026, 12, 1)),  # 00:30 on 1 Dec
        ("America/Montreal", utc(2026, 12, 1, 4, 59, 59), date(2026, 11, 30)),
        ("America/Montreal", utc(2026, 12, 1, 5, 0), date(2026, 12, 1)),
        # Paris in winter is UTC+1.
        ("Europe/Paris", utc(2026, 11, 30, 22, 59), date(2026, 11, 30)),  # 23:59 local
        ("Europe/Paris", utc(2026, 11, 30, 23, 30), date(2026, 12, 1)),  # 00:30 local
        ("UTC", utc(2026, 12, 1, 4, 30), date(2026, 12, 1)),
        # Montréal springs forward on 8 March 2026 (UTC-5 -> UTC-4).
        ("America/Montreal", utc(2026, 3, 8, 4, 30), date(2026, 3, 7)),  # 23:30 EST
        ("America/Montreal", utc(2026, 3, 9, 3, 30), date(2026, 3, 8)),  # 23:30 EDT
        ("America/Montreal", utc(2026, 3, 9, 4, 30), date(2026, 3, 9)),  # 00:30 EDT
        # Montréal falls back on 1 November 2026 (UTC-4 -> UTC-5).
        ("America/Montreal", utc(2026, 11, 1, 3, 30), date(2026, 10, 31)),  # 23:30 EDT
        ("America/Montreal", utc(2026, 11, 1, 4, 30), date(2026, 11, 1)),  # 00:30 EDT
        ("America/Montreal", utc(2026, 11, 2, 4, 30), date(2026, 11, 1)),  # 23:30 EST
        # Paris springs forward on 29 March 2026 (UTC+1 -> UTC+2).
        ("Europe/Paris", utc(2026, 3, 28, 23, 30), date(2026, 3, 29)),  # 00:30 CET
        ("Europe/Paris", utc(2026, 3, 29, 21, 30), date(2026, 3, 29)),  # 23:30 CEST
        ("Europe/Paris", utc(2026, 3, 29, 22, 30), date(2026, 3, 30)),  # 00:30 CEST
        # Paris falls back on 25 October 2026 (UTC+2 -> UTC+1).
        ("Europe/Paris", utc(2026, 10, 24, 22, 30), date(2026, 10, 25)),  # 00:30 CEST
        ("Europe/Paris", utc(2026, 10, 25, 22, 30), date(2026, 10, 25)),  # 23:30 CET
        ("Europe/Paris", utc(2026, 10, 25, 23, 30), date(2026, 10, 26)),  # 00:30 CET
        # An aware time in another offset means the same instant.
        (
            "America/Montreal",
            datetime(2026, 12, 1, 13, 30, tzinfo=timezone(timedelta(hours=9))),
            date(2026, 11, 30),
        ),
    ],
)
def test_local_date_is_the_calendar_day_in_the_tenant_timezone(tz, at, expected):
    assert local_date(tz, at) == expected
