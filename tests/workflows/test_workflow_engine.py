"""The approval workflow's pure core (workflows/engine.py), walked exhaustively by tables.

No database, no clock: every status x action pair, every way a step can end, every timeout
policy. The expected tables are written out by hand here, independently of the engine's own.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from workflows.engine import (
    TRANSITIONS,
    Action,
    Decision,
    Outcome,
    Rule,
    Status,
    StepKind,
    TimeoutKind,
    TimeoutPlan,
    TimeoutPolicy,
    TimeoutStep,
    TransitionRefused,
    action_after,
    allowed_actions,
    approvers_left,
    first_deadline,
    is_reviewing,
    may_decide,
    next_deadline,
    step_outcome,
    submit_action,
    timeout_action,
    transition,
)
from workflows.service.access import timeout_step

S, A = Status, Action

# ---------------------------------------------------------------------------------------------
# Transitions: the whole table, by hand

_SUBMITS = {
    A.edit: S.draft,
    A.submit_internal: S.in_review,
    A.submit_client: S.awaiting_client,
    A.submit_no_approval: S.approved,
}
_REVIEW = {
    A.edit: S.draft,
    A.advance_internal: S.in_review,
    A.advance_client: S.awaiting_client,
    A.approve: S.approved,
    A.request_changes: S.changes_requested,
    A.reject: S.rejected,
    A.expire: S.expired,
}
EXPECTED: dict[Status, dict[Action, Status]] = {
    S.draft: _SUBMITS,
    S.changes_requested: _SUBMITS,
    S.expired: _SUBMITS,
    S.in_review: _REVIEW,
    S.awaiting_client: _REVIEW,
    S.approved: {A.edit: S.draft, A.schedule: S.scheduled},
    S.rejected: {A.edit: S.draft},
    # A scheduled post must be unscheduled before anyone edits it.
    S.scheduled: {A.unschedule: S.approved},
}

ALL_PAIRS = [
    pytest.param(status, action, id=f"{status.value}-{action.value}")
    for status, action in itertools.product(Status, Action)
]


def test_expected_table_covers_every_status() -> None:
    assert set(EXPECTED) == set(Status)


@pytest.mark.parametrize(("status", "action"), ALL_PAIRS)
def test_every_status_action_pair(status: Status, action: Action) -> None:
    expected = EXPECTED[status].get(action)
    if expected is not None:
        assert transition(status, action) is expected
        assert transition(status.value, action) is expected  # stored statuses are plain text
        assert TRANSITIONS[(status, action)] is expected
    else:
        with pytest.raises(TransitionRefused) as refused:
            transition(status, action)
        assert refused.value.status is status
        assert refused.value.action is action
        assert (status, action) not in TRANSITIONS


def test_table_has_nothing_beyond_the_expected_pairs() -> None:
    flat = {(s, a): to for s, row in EXPECTED.items() for a, to in row.items()}
    assert flat == TRANSITIONS


@pytest.mark.parametrize("status", [pytest.param(s, id=s.value) for s in Status])
def test_allowed_actions_are_the_row_of_the_table(status: Status) -> None:
    assert set(allowed_actions(status)) == set(EXPECTED[status])
    assert set(allowed_actions(status.value)) == set(EXPECTED[status])


@pytest.mark.parametrize("status", [pytest.param(s, id=s.value) for s in Status])
def test_only_in_review_and_awaiting_client_are_reviewing(status: Status) -> None:
    assert is_reviewing(status) is (status in (S.in_review, S.awaiting_client))


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        pytest.param(S.scheduled, A.edit, "A scheduled item cannot edit.", id="scheduled-edit"),
        pytest.param(
            S.draft, A.request_changes, "A draft item cannot request changes.", id="draft-rc"
        ),
        pytest.param(S.rejected, A.schedule, "A rejected item cannot schedule.", id="rej-sched"),
    ],
)
def test_refusal_says_what_was_refused(status: Status, action: Action, message: str) -> None:
    with pytest.raises(TransitionRefused, match=message):
        transition(status, action)


def test_unknown_status_is_not_a_refusal_but_an_error() -> None:
    with pytest.raises(ValueError):
        transition("published", A.edit)


# ---------------------------------------------------------------------------------------------
# Steps: how decisions end a step

AP, RC, RJ = Decision.approve, Decision.request_changes, Decision.reject
ABC = ["a", "b", "c"]

OUTCOMES = [
    # any: the first decision decides, whatever it is
    pytest.param("any", ABC, [], Outcome.pending, id="any-nothing-yet"),
    pytest.param("any", ABC, [("b", AP)], Outcome.approved, id="any-one-approves"),
    pytest.param("any", ABC, [("a", RC)], Outcome.changes_requested, id="any-one-asks-changes"),
    pytest.param("any", ABC, [("c", RJ)], Outcome.rejected, id="any-one-rejects"),
    pytest.param("any", ABC, [("a", AP), ("b", RJ)], Outcome.approved, id="any-first-wins-ap"),
    pytest.param("any", ABC, [("a", RJ), ("b", AP)], Outcome.rejected, id="any-first-wins-rj"),
    pytest.param("any", ["a"], [("a", AP)], Outcome.approved, id="any-single-approver"),
    # all: everyone must approve; the first who does not decides for everyone
    pytest.param("all", ABC, [], Outcome.pending, id="all-nothing-yet"),
    pytest.param("all", ABC, [("a", AP)], Outcome.pending, id="all-one-of-three"),
    pytest.param("all", ABC, [("a", AP), ("c", AP)], Outcome.pending, id="all-two-of-three"),
    pytest.param(
        "all", ABC, [("a", AP), ("b", AP), ("c", AP)], Outcome.approved, id="all-everyone"
    ),
    pytest.param(
        "all", ABC, [("c", AP), ("a", AP), ("b", AP)], Outcome.approved, id="all-any-order"
    ),
    pytest.param("all", ABC, [("a", AP), ("a", AP)], Outcome.pending, id="all-same-approver-twice"),
    pytest.param("all", ABC, [("a", RC)], Outcome.changes_requested, id="all-first-asks"),
    pytest.param(
        "all", ABC, [("a", AP), ("b", RC)], Outcome.changes_requested, id="all-second-asks"
    ),
    pytest.param("all", ABC, [("a", AP), ("b", RJ)], Outcome.rejected, id="all-second-rejects"),
    pytest.param(
        "all",
        ABC,
        [("a", AP), ("b", RJ), ("c", AP)],
        Outcome.rejected,
        id="all-rejection-ends-step",
    ),
    pytest.param(
        "all",
        ABC,
        [("a", RC), ("b", AP), ("c", AP)],
        Outcome.changes_requested,
        id="all-request-ends-step",
    ),
    pytest.param("all", ["a"], [("a", AP)], Outcome.approved, id="all-single-approver"),
    # a decision from outside the approver set decides the whole step
    pytest.param("all", ABC, [("user:boss", AP)], Outcome.approved, id="all-escalation-target"),
    pytest.param(
        "all", ABC, [("a", AP), ("system:auto_approve", AP)], Outcome.approved, id="all-system"
    ),
    pytest.param("any", ABC, [("user:boss", AP)], Outcome.approved, id="any-escalation-target"),
    pytest.param("all", ABC, [("user:boss", RJ)], Outcome.rejected, id="all-outsider-rejects"),
    pytest.param(
        "all", ABC, [("user:boss", RC)], Outcome.changes_requested, id="all-outsider-asks"
    ),
]


@pytest.mark.parametrize(("rule", "approvers", "decisions", "expected"), OUTCOMES)
def test_step_outcome(
    rule: str, approvers: list[str], decisions: list[tuple[str, Decision]], expected: Outcome
) -> None:
    assert step_outcome(rule, approvers, decisions) is expected
    # Stored values are plain text: the enum and the string mean the same.
    raw = [(who, d.value) for who, d in decisions]
    assert step_outcome(Rule(rule), iter(approvers), raw) is expected


def test_all_rule_walk_approves_only_on_the_last_approver() -> None:
    approvers = [f"user:{i}" for i in range(6)]
    for count in range(len(approvers) + 1):
        decided = [(who, AP) for who in approvers[:count]]
        expected = Outcome.approved if count == len(approvers) else Outcome.pending
        assert step_outcome("all", approvers, decided) is expected, count


# ---------------------------------------------------------------------------------------------
# What the item does once a step ends; what a submission does

AFTER = [
    pytest.param(Outcome.pending, None, None, id="pending-last"),
    pytest.param(Outcome.pending, "client", None, id="pending-before-client"),
    pytest.param(Outcome.pending, "internal", None, id="pending-before-internal"),
    pytest.param(Outcome.approved, None, A.approve, id="approved-last-step"),
    pytest.param(Outcome.approved, "internal", A.advance_internal, id="approved-then-internal"),
    pytest.param(Outcome.approved, "client", A.advance_client, id="approved-then-client"),
    pytest.param(
        Outcome.approved, StepKind.client, A.advance_client, id="approved-then-client-enum"
    ),
    pytest.param(Outcome.changes_requested, None, A.request_changes, id="changes-last"),
    pytest.param(Outcome.changes_requested, "client", A.request_changes, id="changes-not-last"),
    pytest.param(Outcome.rejected, None, A.reject, id="rejected-last"),
    pytest.param(Outcome.rejected, "internal", A.reject, id="rejected-not-last"),
]


@pytest.mark.parametrize(("outcome", "next_step", "expected"), AFTER)
def test_action_after(outcome: Outcome, next_step: str | None, expected: Action | None) -> None:
    assert action_after(outcome, next_step) is expected


@pytest.mark.parametrize(
    ("first_step", "expected"),
    [
        pytest.param(None, A.submit_no_approval, id="no-steps"),
        pytest.param("internal", A.submit_internal, id="internal"),
        pytest.param("client", A.submit_client, id="client"),
        pytest.param(StepKind.internal, A.submit_internal, id="internal-enum"),
        pytest.param(StepKind.client, A.submit_client, id="client-enum"),
    ],
)
def test_submit_action(first_step: str | None, expected: Action) -> None:
    assert submit_action(first_step) is expected


@pytest.mark.parametrize(
    ("outcome", "next_step", "from_status", "to_status"),
    [
        pytest.param(Outcome.approved, "client", S.in_review, S.awaiting_client, id="to-client"),
        pytest.param(Outcome.approved, None, S.awaiting_client, S.approved, id="last-approved"),
        pytest.param(Outcome.approved, "internal", S.awaiting_client, S.in_review, id="back-in"),
        pytest.param(
            Outcome.changes_requested, None, S.in_review, S.changes_requested, id="changes"
        ),
        pytest.param(Outcome.rejected, "client", S.in_review, S.rejected, id="rejected"),
    ],
)
def test_every_step_end_is_an_allowed_transition(
    outcome: Outcome, next_step: str | None, from_status: Status, to_status: Status
) -> None:
    action = action_after(outcome, next_step)
    assert action is not None
    assert transition(from_status, action) is to_status


@pytest.mark.parametrize(
    "first_step", [pytest.param(k, id=str(k)) for k in (None, "internal", "client")]
)
@pytest.mark.parametrize("status", [pytest.param(s, id=s.value) for s in Status])
def test_submission_is_allowed_exactly_from_draft_changes_requested_and_expired(
    first_step: str | None, status: Status
) -> None:
    action = submit_action(first_step)
    if status in (S.draft, S.changes_requested, S.expired):
        assert transition(status, action) in (S.in_review, S.awaiting_client, S.approved)
    else:
        with pytest.raises(TransitionRefused):
            transition(status, action)


# ---------------------------------------------------------------------------------------------
# Timeouts

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def hours(n: int) -> datetime:
    return START + timedelta(hours=n)


def step(
    policy: TimeoutPolicy,
    *,
    kind: StepKind = StepKind.client,
    due: int = 48,
    reminders: tuple[int, ...] = (0,),
) -> TimeoutStep:
    return TimeoutStep(kind=kind, due_hours=due, policy=policy, reminder_hours=reminders)


def walk_plans(s: TimeoutStep, *, client_agreed: bool, limit: int = 12) -> list[TimeoutPlan | None]:
    """Ask the engine with done = 0, 1, 2, ... until it answers None (the answer included)."""
    plans: list[TimeoutPlan | None] = []
    for done in range(limit):
        plan = timeout_action(s, started_at=START, done=done, client_agreed=client_agreed)
        plans.append(plan)
        if plan is None:
            return plans
    raise AssertionError(f"the policy never stops: {plans}")


R = TimeoutKind.remind

REMIND_WALKS = [
    pytest.param((0,), [TimeoutPlan(R, None), None], id="once-at-due"),
    pytest.param((0, 24), [TimeoutPlan(R, hours(48 + 24)), TimeoutPlan(R, None), None], id="0-24"),
    pytest.param(
        (0, 24, 72),
        [
            TimeoutPlan(R, hours(48 + 24)),
            TimeoutPlan(R, hours(48 + 72)),
            TimeoutPlan(R, None),
            None,
        ],
        id="0-24-72",
    ),
    pytest.param(
        (72, 0, 24),
        [
            TimeoutPlan(R, hours(48 + 24)),
            TimeoutPlan(R, hours(48 + 72)),
            TimeoutPlan(R, None),
            None,
        ],
        id="unsorted-is-sorted",
    ),
    pytest.param(
        (24, 0, 24), [TimeoutPlan(R, hours(48 + 24)), TimeoutPlan(R, None), None], id="duplicates"
    ),
    pytest.param((12,), [TimeoutPlan(R, None), None], id="single-late"),
    pytest.param((), [TimeoutPlan(R, None), None], id="empty-means-once-at-due"),
]


@pytest.mark.parametrize(("reminders", "expected"), REMIND_WALKS)
@pytest.mark.parametrize(
    "kind", [pytest.param(StepKind.internal, id="internal"), pytest.param(StepKind.client, id="c")]
)
def test_remind_walks_its_schedule_then_stops(
    reminders: tuple[int, ...], expected: list[TimeoutPlan | None], kind: StepKind
) -> None:
    s = step(TimeoutPolicy.remind, kind=kind, reminders=reminders)
    assert walk_plans(s, client_agreed=False) == expected
    assert walk_plans(s, client_agreed=True) == expected


@pytest.mark.parametrize(
    ("policy", "kind"),
    [
        pytest.param(TimeoutPolicy.escalate, StepKind.internal, id="escalate-internal"),
        pytest.param(TimeoutPolicy.escalate, StepKind.client, id="escalate-client"),
        pytest.param(TimeoutPolicy.expire, StepKind.internal, id="expire-internal"),
        pytest.param(TimeoutPolicy.expire, StepKind.client, id="expire-client"),
    ],
)
@pytest.mark.parametrize("agreed", [pytest.param(False, id="-"), pytest.param(True, id="agreed")])
def test_escalate_and_expire_happen_once(
    policy: TimeoutPolicy, kind: StepKind, agreed: bool
) -> None:
    s = step(policy, kind=kind, reminders=(0, 24))
    assert walk_plans(s, client_agreed=agreed) == [
        TimeoutPlan(TimeoutKind(policy.value), None),
        None,
    ]
    assert timeout_action(s, started_at=START, done=5, client_agreed=agreed) is None


def test_auto_approve_on_an_agreed_client_step_approves_once() -> None:
    s = step(TimeoutPolicy.auto_approve, kind=StepKind.client, reminders=(0, 24))
    assert walk_plans(s, client_agreed=True) == [TimeoutPlan(TimeoutKind.auto_approve, None), None]


@pytest.mark.parametrize(
    ("kind", "agreed"),
    [
        pytest.param(StepKind.client, False, id="client-not-agreed"),
        pytest.param(StepKind.internal, True, id="internal-agreed"),
        pytest.param(StepKind.internal, False, id="internal-not-agreed"),
    ],
)
def test_auto_approve_without_agreement_falls_back_to_reminders(
    kind: StepKind, agreed: bool
) -> None:
    """An approval nobody gave is never invented: the approvers are reminded instead."""
    s = step(TimeoutPolicy.auto_approve, kind=kind, reminders=(0, 24))
    plans = walk_plans(s, client_agreed=agreed)
    assert plans == [TimeoutPlan(R, hours(48 + 24)), TimeoutPlan(R, None), None]
    assert all(p is None or p.action is R for p in plans)


def test_auto_approve_works_on_a_step_read_from_a_stored_workflow() -> None:
    """Services build the step from the item's JSON workflow (`access.timeout_step`), where the
    kind is the plain string "client": the agreed auto-approval must still happen."""
    stored = {
        "name": "Client",
        "kind": "client",
        "rule": "any",
        "due_hours": 48,
        "timeout": {"policy": "auto_approve", "reminder_hours": [0, 24]},
    }
    plan = timeout_action(timeout_step(stored), started_at=START, done=0, client_agreed=True)
    assert plan == TimeoutPlan(TimeoutKind.auto_approve, None)


@pytest.mark.parametrize(
    ("policy", "reminders", "due", "expected"),
    [
        pytest.param(TimeoutPolicy.remind, (0, 24), 48, hours(48), id="remind-at-due"),
        pytest.param(TimeoutPolicy.remind, (24, 6), 48, hours(48 + 6), id="remind-earliest"),
        pytest.param(TimeoutPolicy.remind, (), 48, hours(48), id="remind-empty"),
        pytest.param(TimeoutPolicy.remind, (0,), 1, hours(1), id="remind-one-hour"),
        pytest.param(TimeoutPolicy.escalate, (24,), 72, hours(72), id="escalate-at-due"),
        pytest.param(TimeoutPolicy.expire, (24,), 24, hours(24), id="expire-at-due"),
        pytest.param(TimeoutPolicy.auto_approve, (24,), 48, hours(48), id="auto-at-due"),
    ],
)
def test_next_deadline(
    policy: TimeoutPolicy, reminders: tuple[int, ...], due: int, expected: datetime
) -> None:
    s = step(policy, due=due, reminders=reminders)
    assert first_deadline(s, START) == hours(due)
    assert next_deadline(s, START) == expected


@pytest.mark.parametrize(
    "reminders",
    [pytest.param(r, id="-".join(map(str, r))) for r in [(0,), (0, 24), (6, 24, 72), (72, 6)]],
)
def test_each_remind_plan_points_at_the_next_reminder(reminders: tuple[int, ...]) -> None:
    """The first look is at next_deadline; each plan's next_at is the next reminder time."""
    s = step(TimeoutPolicy.remind, reminders=reminders)
    times = [hours(48 + h) for h in sorted(set(reminders))]
    assert next_deadline(s, START) == times[0]
    plans = walk_plans(s, client_agreed=False)
    assert [p.next_at for p in plans if p is not None] == [*times[1:], None]


# ---------------------------------------------------------------------------------------------
# Who still has to decide


@pytest.mark.parametrize(
    ("approvers", "decided", "left"),
    [
        pytest.param(ABC, [], ABC, id="nobody-yet"),
        pytest.param(ABC, ["b"], ["a", "c"], id="keeps-order"),
        pytest.param(ABC, ["a", "b", "c"], [], id="everyone"),
        pytest.param(ABC, ["z"], ABC, id="outsider-ignored"),
    ],
)
def test_approvers_left(approvers: list[str], decided: list[str], left: list[str]) -> None:
    assert approvers_left(approvers, decided) == left


@pytest.mark.parametrize(
    ("who", "decided", "may"),
    [
        pytest.param("a", [], True, id="approver"),
        pytest.param("a", ["a"], False, id="already-decided"),
        pytest.param("a", {"a": "approve"}, False, id="already-decided-mapping"),
        pytest.param("z", [], False, id="outsider"),
    ],
)
def test_may_decide(who: str, decided: object, may: bool) -> None:
    assert may_decide(who, ABC, decided) is may  # type: ignore[arg-type]
