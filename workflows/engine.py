"""The approval workflow as pure functions: no database, no clock, no I/O.

Three small things, each a table or a fold that tests can walk exhaustively:

- `TRANSITIONS`: which action moves a content item from which status to which;
- `step_outcome`: what the decisions recorded so far mean for one step (`any` or `all`);
- `timeout_action`: what a step's timeout policy does when its due time (or next reminder) comes.

Services load rows, call these, and write what they answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    draft = "draft"
    in_review = "in_review"
    awaiting_client = "awaiting_client"
    approved = "approved"
    scheduled = "scheduled"
    changes_requested = "changes_requested"
    rejected = "rejected"
    expired = "expired"


class Action(StrEnum):
    edit = "edit"
    """A new revision: whatever was under review starts over from draft."""
    submit_internal = "submit_internal"
    """Submission whose first step is internal."""
    submit_client = "submit_client"
    """Submission whose first step is a client step."""
    submit_no_approval = "submit_no_approval"
    """Submission under a template with no steps."""
    advance_internal = "advance_internal"
    """A step was approved and the next one is internal."""
    advance_client = "advance_client"
    """A step was approved and the next one is a client step."""
    approve = "approve"
    """The last step was approved."""
    request_changes = "request_changes"
    reject = "reject"
    expire = "expire"
    schedule = "schedule"
    unschedule = "unschedule"


class Decision(StrEnum):
    approve = "approve"
    request_changes = "request_changes"
    reject = "reject"


class Rule(StrEnum):
    any = "any"
    all = "all"


class StepKind(StrEnum):
    internal = "internal"
    client = "client"


class TimeoutPolicy(StrEnum):
    remind = "remind"
    escalate = "escalate"
    auto_approve = "auto_approve"
    expire = "expire"


_REVIEWING = (Status.in_review, Status.awaiting_client)
_SUBMITTABLE = (Status.draft, Status.changes_requested, Status.expired)
# Everything but a scheduled post goes back to draft when edited; a scheduled one must be
# unscheduled first, so that nobody rewrites a post minutes before it goes out unnoticed.
_EDITABLE = (*_SUBMITTABLE, *_REVIEWING, Status.approved, Status.rejected)

TRANSITIONS: dict[tuple[Status, Action], Status] = {
    **{(s, Action.edit): Status.draft for s in _EDITABLE},
    **{(s, Action.submit_internal): Status.in_review for s in _SUBMITTABLE},
    **{(s, Action.submit_client): Status.awaiting_client for s in _SUBMITTABLE},
    **{(s, Action.submit_no_approval): Status.approved for s in _SUBMITTABLE},
    **{(s, Action.advance_internal): Status.in_review for s in _REVIEWING},
    **{(s, Action.advance_client): Status.awaiting_client for s in _REVIEWING},
    **{(s, Action.approve): Status.approved for s in _REVIEWING},
    **{(s, Action.request_changes): Status.changes_requested for s in _REVIEWING},
    **{(s, Action.reject): Status.rejected for s in _REVIEWING},
    **{(s, Action.expire): Status.expired for s in _REVIEWING},
    (Status.approved, Action.schedule): Status.scheduled,
    (Status.scheduled, Action.unschedule): Status.approved,
}


class TransitionRefused(Exception):
    def __init__(self, status: Status, action: Action) -> None:
        super().__init__(f"A {status.value} item cannot {action.value.replace('_', ' ')}.")
        self.status = status
        self.action = action


def transition(status: Status | str, action: Action) -> Status:
    try:
        return TRANSITIONS[(Status(status), action)]
    except KeyError:
        raise TransitionRefused(Status(status), action) from None


def allowed_actions(status: Status | str) -> list[Action]:
    return [a for (s, a) in TRANSITIONS if s == Status(status)]


def is_reviewing(status: Status | str) -> bool:
    return Status(status) in _REVIEWING


# ---------------------------------------------------------------------------------------------
# Steps


class Outcome(StrEnum):
    pending = "pending"
    approved = "approved"
    changes_requested = "changes_requested"
    rejected = "rejected"


_DECISION_OUTCOME = {
    Decision.approve: Outcome.approved,
    Decision.request_changes: Outcome.changes_requested,
    Decision.reject: Outcome.rejected,
}


def step_outcome(
    rule: Rule | str, approvers: Iterable[str], decisions: Sequence[tuple[str, Decision | str]]
) -> Outcome:
    """Fold a step's decisions, in the order they were recorded, into its outcome.

    `approvers` are the keys of everyone who may decide; `decisions` are (approver key,
    decision) pairs. Under `any`, the first decision decides the step. Under `all`, every
    approver must approve; the first one who does not decides the step for everyone.
    Decisions from keys outside `approvers` (an escalation target under `all`, say) count
    as a decision of the whole step.
    """
    expected = set(approvers)
    approved: set[str] = set()
    for who, raw in decisions:
        decision = Decision(raw)
        if decision is not Decision.approve:
            return _DECISION_OUTCOME[decision]
        if Rule(rule) is Rule.any or who not in expected:
            return Outcome.approved
        approved.add(who)
        if expected <= approved:
            return Outcome.approved
    return Outcome.pending


def action_after(outcome: Outcome, next_step: StepKind | str | None) -> Action | None:
    """The item's transition once a step ends; None while the step is pending."""
    if outcome is Outcome.pending:
        return None
    if outcome is Outcome.changes_requested:
        return Action.request_changes
    if outcome is Outcome.rejected:
        return Action.reject
    if next_step is None:
        return Action.approve
    return (
        Action.advance_client if StepKind(next_step) is StepKind.client else Action.advance_internal
    )


def submit_action(first_step: StepKind | str | None) -> Action:
    if first_step is None:
        return Action.submit_no_approval
    return (
        Action.submit_client if StepKind(first_step) is StepKind.client else Action.submit_internal
    )


# ---------------------------------------------------------------------------------------------
# Timeouts


class TimeoutKind(StrEnum):
    remind = "remind"
    escalate = "escalate"
    auto_approve = "auto_approve"
    expire = "expire"


@dataclass(frozen=True, slots=True)
class TimeoutStep:
    """What the timeout machinery needs of a step."""

    kind: StepKind
    due_hours: int
    policy: TimeoutPolicy
    reminder_hours: tuple[int, ...] = (0,)
    """For `remind`: hours after the due time at which to remind, in order."""


@dataclass(frozen=True, slots=True)
class TimeoutPlan:
    action: TimeoutKind
    next_at: datetime | None
    """When to look at this step again; None when nothing more will happen."""


def first_deadline(step: TimeoutStep, started_at: datetime) -> datetime:
    return started_at + timedelta(hours=step.due_hours)


def timeout_action(
    step: TimeoutStep, *, started_at: datetime, done: int, client_agreed: bool
) -> TimeoutPlan | None:
    """What to do now that the step's next deadline has come; `done` counts earlier runs.

    Answers None when the policy has nothing (more) to do. `auto_approve` on a step where the
    client did not agree to it, or on an internal step, falls back to a reminder: an approval
    nobody gave is never invented.
    """
    due = first_deadline(step, started_at)
    policy = step.policy
    if policy is TimeoutPolicy.auto_approve and not (
        client_agreed and step.kind is StepKind.client
    ):
        policy = TimeoutPolicy.remind
    if policy is TimeoutPolicy.remind:
        schedule = sorted(set(step.reminder_hours)) or [0]
        if done >= len(schedule):
            return None
        later = schedule[done + 1] if done + 1 < len(schedule) else None
        next_at = due + timedelta(hours=later) if later is not None else None
        return TimeoutPlan(TimeoutKind.remind, next_at)
    if done >= 1:
        return None
    return TimeoutPlan(TimeoutKind(policy.value), None)


def next_deadline(step: TimeoutStep, started_at: datetime) -> datetime:
    """When the timeout machinery first looks at a step that just started."""
    due = first_deadline(step, started_at)
    if step.policy is TimeoutPolicy.remind and step.reminder_hours:
        return due + timedelta(hours=min(step.reminder_hours))
    return due


def approvers_left(approvers: Iterable[str], decided: Iterable[str]) -> list[str]:
    done = set(decided)
    return [a for a in approvers if a not in done]


def may_decide(
    approver: str, approvers: Iterable[str], decided: Mapping[str, object] | Iterable[str]
) -> bool:
    """Whether this approver still has a decision to give on the current step."""
    return approver in set(approvers) and approver not in set(decided)
