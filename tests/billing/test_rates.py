"""Hourly rate resolution: member on this client > client > role > default.

Every rule has its own rate, so the figure resolved tells which rule won.
"""

from __future__ import annotations

import uuid

import pytest

from billing.budgets.rates import RateRule, resolve_rate

ME = uuid.UUID("00000000-0000-0000-0000-00000000000a")
COLLEAGUE = uuid.UUID("00000000-0000-0000-0000-00000000000b")
ACME = uuid.UUID("00000000-0000-0000-0000-0000000000c1")
GLOBEX = uuid.UUID("00000000-0000-0000-0000-0000000000c2")


def rule(
    rate: int,
    *,
    membership_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    role: str | None = None,
) -> RateRule:
    return RateRule(
        id=uuid.uuid4(),
        rate_minor=rate,
        currency="CAD",
        membership_id=membership_id,
        client_id=client_id,
        role=role,
    )


DEFAULT = rule(9_000)
EDITOR = rule(11_000, role="editor")
MANAGER = rule(15_000, role="manager")
ACME_RATE = rule(12_000, client_id=ACME)
GLOBEX_RATE = rule(20_000, client_id=GLOBEX)
ME_ON_ACME = rule(13_000, membership_id=ME, client_id=ACME)
ME_ON_GLOBEX = rule(21_000, membership_id=ME, client_id=GLOBEX)
COLLEAGUE_ON_ACME = rule(22_000, membership_id=COLLEAGUE, client_id=ACME)
# Not one of the four shapes (a member without a client): it must not pass for the default.
COLLEAGUE_ANYWHERE = rule(30_000, membership_id=COLLEAGUE)
COLLEAGUE_AS_EDITOR = rule(31_000, membership_id=COLLEAGUE, role="editor")

EVERYTHING = [
    DEFAULT,
    EDITOR,
    MANAGER,
    ACME_RATE,
    GLOBEX_RATE,
    ME_ON_ACME,
    ME_ON_GLOBEX,
    COLLEAGUE_ON_ACME,
]
NOT_FOR_ME_ON_ACME = [GLOBEX_RATE, ME_ON_GLOBEX, COLLEAGUE_ON_ACME]


@pytest.mark.parametrize(
    ("rules", "role", "expected"),
    [
        pytest.param(EVERYTHING, "editor", 13_000, id="member-on-this-client-beats-all"),
        pytest.param(EVERYTHING[::-1], "editor", 13_000, id="member-on-client-any-order"),
        pytest.param(
            [DEFAULT, EDITOR, ACME_RATE, *NOT_FOR_ME_ON_ACME],
            "editor",
            12_000,
            id="client-beats-role-and-default",
        ),
        pytest.param([ACME_RATE, EDITOR, DEFAULT], "editor", 12_000, id="client-any-order"),
        pytest.param(
            [DEFAULT, EDITOR, MANAGER, *NOT_FOR_ME_ON_ACME], "editor", 11_000, id="role-editor"
        ),
        pytest.param(
            [DEFAULT, EDITOR, MANAGER, *NOT_FOR_ME_ON_ACME], "manager", 15_000, id="role-manager"
        ),
        pytest.param([EDITOR, DEFAULT], "editor", 11_000, id="role-beats-default-any-order"),
        pytest.param(
            [DEFAULT, EDITOR, MANAGER, *NOT_FOR_ME_ON_ACME],
            "viewer",
            9_000,
            id="other-roles-fall-back-to-default",
        ),
        pytest.param([DEFAULT], "editor", 9_000, id="default-only"),
        pytest.param(
            [*NOT_FOR_ME_ON_ACME, MANAGER], "editor", None, id="nothing-applies-no-default"
        ),
        pytest.param([], "editor", None, id="no-rules"),
        pytest.param(
            [ME_ON_GLOBEX, DEFAULT], "editor", 9_000, id="my-rate-on-another-client-ignored"
        ),
        pytest.param([GLOBEX_RATE, DEFAULT], "editor", 9_000, id="another-clients-rate-ignored"),
        pytest.param(
            [COLLEAGUE_ON_ACME, DEFAULT], "editor", 9_000, id="colleagues-rate-on-client-ignored"
        ),
        pytest.param(
            [COLLEAGUE_ANYWHERE, DEFAULT],
            "editor",
            9_000,
            id="colleague-without-client-is-not-a-default",
        ),
        pytest.param(
            [COLLEAGUE_ANYWHERE], "editor", None, id="colleague-without-client-never-applies"
        ),
        pytest.param(
            [COLLEAGUE_AS_EDITOR, DEFAULT],
            "editor",
            9_000,
            id="colleague-with-role-is-not-a-role-rate",
        ),
    ],
)
def test_resolve_rate(rules: list[RateRule], role: str, expected: int | None) -> None:
    resolved = resolve_rate(rules, membership_id=ME, client_id=ACME, role=role)

    assert (resolved.rate_minor if resolved else None) == expected


@pytest.mark.parametrize(
    ("membership_id", "client_id", "role", "expected"),
    [
        pytest.param(ME, ACME, "editor", 13_000, id="me-on-acme"),
        pytest.param(ME, GLOBEX, "editor", 21_000, id="me-on-globex"),
        pytest.param(COLLEAGUE, ACME, "editor", 22_000, id="colleague-on-acme"),
        pytest.param(COLLEAGUE, GLOBEX, "editor", 20_000, id="colleague-on-globex"),
    ],
)
def test_same_rules_resolve_per_member_and_client(
    membership_id: uuid.UUID, client_id: uuid.UUID, role: str, expected: int
) -> None:
    resolved = resolve_rate(EVERYTHING, membership_id=membership_id, client_id=client_id, role=role)

    assert resolved is not None
    assert resolved.rate_minor == expected
