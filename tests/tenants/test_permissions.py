"""The role × action table, written out in full: changing who may do what must change this file."""

from itertools import product

import pytest

from tenants.models import Role
from tenants.permissions import Action, can

ACTIONS = (
    Action.tenant_read,
    Action.members_read,
    Action.members_invite,
    Action.members_update,
    Action.members_manage_owners,
    Action.audit_read,
)

# One row per role, one column per action, in the order of ACTIONS.
#            tenant:read  members:read  invite  update  manage_owners  audit:read
EXPECTED = {
    Role.owner:   (True,  True,  True,  True,  True,  True),
    Role.admin:   (True,  True,  True,  True,  False, True),
    Role.manager: (True,  True,  False, False, False, True),
    Role.member:  (True,  True,  False, False, False, False),
    Role.client:  (True,  False, False, False, False, False),
}  # fmt: skip


def test_the_matrix_names_every_role_and_every_action():
    assert set(EXPECTED) == set(Role)
    assert set(ACTIONS) == set(Action) and len(ACTIONS) == len(Action)


@pytest.mark.parametrize(
    ("role", "action"),
    list(product(Role, ACTIONS)),
    ids=lambda v: v.value,
)
def test_role_may_do_exactly_what_the_matrix_says(role, action):
    allowed = EXPECTED[role][ACTIONS.index(action)]
    assert can(role, action) is allowed
    assert can(role.value, action) is allowed
