"""Moving an item through its workflow: approvers, steps, decisions and their outcome.

Every function here runs with the item's row locked (`load_item(..., lock=True)` or the
timeout sweep's `FOR UPDATE`), so two decisions at the same moment are applied one after the
other and only the first can move the item.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.outbox import record_event
from tenants.models import (
    Assignment,
    Brand,
    Membership,
    MembershipStatus,
    Role,
)
from tenants.policy import local_date
from tenants.principal import Principal
from workflows import engine, errors
from workflows.engine import Action, Decision, Outcome, StepKind
from workflows.models import ApprovalDecision, ApprovalLink, ContentItem
from workflows.service.access import audit, email_key, timeout_step, touch, user_key

STAFF_ROLES = (Role.owner, Role.admin, Role.manager, Role.member)


@dataclass(frozen=True)
class Actor:
    """Who decides: a user (staff or client contact), a link recipient, or the system."""

    key: str
    actor_type: str
    channel: str
    principal: Principal | None = None
    user_id: uuid.UUID | None = None
    email: str | None = None
    link_id: uuid.UUID | None = None


def move(item: ContentItem, action: Action) -> None:
    try:
        item.status = engine.transition(item.status, action)
    except engine.TransitionRefused as exc:
        raise errors.InvalidTransition(str(exc), item_status=item.status) from exc


# ---------------------------------------------------------------------------------------------
# Approvers


async def resolve_approvers(
    session: AsyncSession,
    item: ContentItem,
    brand: Brand,
    step: dict[str, Any],
    *,
    timezone: str,
    now: datetime,
) -> list[str]:
    """The step's approvers as of now, in a stable order; self-approval removed if refused."""
    tenant_id = item.tenant_id
    keys: list[str] = []
    if step["kind"] == StepKind.internal:
        query = select(Membership.user_id).where(
            Membership.tenant_id == tenant_id,
            Membership.status == MembershipStatus.active,
            col(Membership.role).in_(STAFF_ROLES),
        )
        named = [uuid.UUID(u) for u in step.get("user_ids") or []]
        if step.get("assignment_role"):
            today = local_date(timezone, now)
            holders = select(Assignment.membership_id).where(
                Assignment.tenant_id == tenant_id,
                Assignment.brand_id == brand.id,
                Assignment.role == step["assignment_role"],
                col(Assignment.start_date) <= today,
                col(Assignment.end_date).is_(None) | (col(Assignment.end_date) >= today),
            )
            by_role = query.where(col(Membership.id).in_(holders))
            found = set((await session.scalars(by_role)).all())
        else:
            found = set()
        if named:
            found |= set(
                (await session.scalars(query.where(col(Membership.user_id).in_(named)))).all()
            )
        ordered = [u for u in named if u in found] + sorted(u for u in found if u not in named)
        keys = [user_key(u) for u in ordered]
        if not item.workflow.get("allow_self_approval") and item.submitted_by is not None:
            keys = [k for k in keys if k != user_key(item.submitted_by)]
    else:
        contacts = select(Membership.user_id).where(
            Membership.tenant_id == tenant_id,
            Membership.status == MembershipStatus.active,
            Membership.role == Role.client,
            Membership.client_id == brand.client_id,
        )
        named = [uuid.UUID(u) for u in step.get("user_ids") or []]
        emails = [email_key(e) for e in step.get("emails") or []]
        if named:
            contacts = contacts.where(col(Membership.user_id).in_(named))
        if named or not emails:
            found_contacts = set((await session.scalars(contacts)).all())
            ordered = [u for u in named if u in found_contacts] or sorted(found_contacts)
            keys = [user_key(u) for u in ordered]
        keys += list(dict.fromkeys(emails))
    return keys


async def check_all_steps(
    session: AsyncSession, item: ContentItem, brand: Brand, *, timezone: str, now: datetime
) -> None:
    """Refuse a submission that would stall on a step nobody can decide."""
    for index, step in enumerate(item.workflow["steps"]):
        if not await resolve_approvers(session, item, brand, step, timezone=timezone, now=now):
            raise errors.NoApprover(
                f"Step {index + 1} ({step['name']}) has no approver: nobody holds the role, "
                "the named people are inactive, or the only approver is the submitter.",
                step_index=index,
            )


# ---------------------------------------------------------------------------------------------
# Steps


async def start_step(
    session: AsyncSession,
    item: ContentItem,
    brand: Brand,
    index: int,
    *,
    timezone: str,
    now: datetime,
    link_ttl: timedelta,
    request_id: str | None,
) -> None:
    step = item.workflow["steps"][index]
    approvers = await resolve_approvers(session, item, brand, step, timezone=timezone, now=now)
    if not approvers:
        raise errors.NoApprover(
            f"Step {index + 1} ({step['name']}) has no approver any more.", step_index=index
        )
    item.step_index = index
    item.step_started_at = now
    item.step_approvers = {**item.step_approvers, str(index): approvers, f"{index}:decided": []}
    item.timeouts_done = 0
    item.next_deadline_at = engine.next_deadline(timeout_step(step), now)
    if step["kind"] == StepKind.client:
        item.client_revision_id = item.current_revision_id
        assert item.current_revision_id is not None
        for key in approvers:
            if key.startswith("email:"):
                session.add(
                    ApprovalLink(
                        tenant_id=item.tenant_id,
                        content_item_id=item.id,
                        revision_id=item.current_revision_id,
                        round=item.round,
                        step_index=index,
                        email=key.removeprefix("email:"),
                        expires_at=now + link_ttl,
                    )
                )
        audit(
            session,
            None,
            item,
            "content.sent_to_client",
            {"step": step["name"], "revision_id": str(item.current_revision_id)},
            client_visible=True,
        )
    record_event(
        session,
        tenant_id=item.tenant_id,
        type="approval.requested",
        aggregate_type="content_item",
        aggregate_id=item.id,
        payload=_payload(item, step_index=index, step_name=step["name"], kind=step["kind"]),
        request_id=request_id,
    )


def _payload(item: ContentItem, **extra: Any) -> dict[str, Any]:
    return {
        "content_id": str(item.id),
        "brand_id": str(item.brand_id),
        "revision_id": str(item.current_revision_id),
        "round": item.round,
        "status": item.status,
        **extra,
    }


def end_review(item: ContentItem) -> None:
    item.step_index = None
    item.step_started_at = None
    item.next_deadline_at = None
    item.timeouts_done = 0


def emit(
    session: AsyncSession, item: ContentItem, type_: str, request_id: str | None, **extra: Any
) -> None:
    record_event(
        session,
        tenant_id=item.tenant_id,
        type=type_,
        aggregate_type="content_item",
        aggregate_id=item.id,
        payload=_payload(item, **extra),
        request_id=request_id,
    )


async def begin_round(
    session: AsyncSession,
    item: ContentItem,
    brand: Brand,
    *,
    submitter: uuid.UUID,
    timezone: str,
    now: datetime,
    link_ttl: timedelta,
    request_id: str | None,
) -> None:
    """A submission: a new round, then the first step (or approval at once with none)."""
    steps = item.workflow["steps"]
    item.round += 1
    item.submitted_by = submitter
    item.submitted_at = now
    item.status_reason, item.reason_for_client = None, False
    item.step_approvers = {}
    await check_all_steps(session, item, brand, timezone=timezone, now=now)
    move(item, engine.submit_action(steps[0]["kind"] if steps else None))
    emit(session, item, "content.submitted", request_id, steps=len(steps))
    if steps:
        await start_step(
            session,
            item,
            brand,
            0,
            timezone=timezone,
            now=now,
            link_ttl=link_ttl,
            request_id=request_id,
        )
    else:
        emit(session, item, "content.approved", request_id, without_approval=True)


# ---------------------------------------------------------------------------------------------
# Decisions


def approver_check(item: ContentItem, actor: Actor) -> None:
    """Whether this actor may decide the current step, with the precise reason if not."""
    index = item.step_index
    if index is None or not engine.is_reviewing(item.status):
        raise errors.StepClosed("This item is not awaiting a decision.", item_status=item.status)
    approvers = item.step_approvers.get(str(index), [])
    decided = item.step_approvers.get(f"{index}:decided", [])
    if actor.key in decided:
        raise errors.AlreadyDecided("You already decided on this step of this revision.")
    if actor.key in approvers:
        return
    earlier = any(actor.key in item.step_approvers.get(str(i), []) for i in range(index))
    if earlier:
        raise errors.StepClosed("The step you were asked to decide on was already decided.")
    if (
        actor.user_id is not None
        and actor.user_id == item.submitted_by
        and not item.workflow.get("allow_self_approval")
    ):
        raise errors.SelfApproval()
    raise errors.NotAnApprover()


async def record_decision(
    session: AsyncSession,
    item: ContentItem,
    brand: Brand,
    actor: Actor,
    decision: Decision,
    comment: str | None,
    *,
    timezone: str,
    now: datetime,
    link_ttl: timedelta,
    request_id: str | None,
) -> ApprovalDecision:
    """Write one decision and apply what it means for the step and the item."""
    index = item.step_index
    assert index is not None and item.current_revision_id is not None
    step = item.workflow["steps"][index]
    if decision is Decision.request_changes and not (comment and comment.strip()):
        raise errors.ReasonRequired()
    row = ApprovalDecision(
        tenant_id=item.tenant_id,
        content_item_id=item.id,
        revision_id=item.current_revision_id,
        round=item.round,
        step_index=index,
        step_kind=step["kind"],
        approver=actor.key,
        decision=decision,
        comment=comment.strip() if comment else None,
        actor_type=actor.actor_type,
        user_id=actor.user_id,
        link_id=actor.link_id,
        email=actor.email,
        channel=actor.channel,
        created_at=now,
    )
    session.add(row)
    decided_key = f"{index}:decided"
    decided = [*item.step_approvers.get(decided_key, []), actor.key]
    item.step_approvers = {**item.step_approvers, decided_key: decided}
    client_step = step["kind"] == StepKind.client
    audit(
        session,
        actor.principal,
        item,
        "content.decided",
        {
            "decision": decision.value,
            "step": step["name"],
            "step_index": index,
            "revision_id": str(item.current_revision_id),
            "channel": actor.channel,
            "comment": row.comment,
            **({"email": actor.email} if actor.email else {}),
        },
        client_visible=client_step,
        actor_type=actor.actor_type if actor.principal is None else None,
    )
    # Earlier decisions on a still-open step can only have been approvals: anything else
    # would have ended it. The row lock orders them.
    history = [(key, Decision.approve) for key in decided[:-1]] + [(actor.key, decision)]
    # An escalation target is not one more approver to wait for: their decision is the step's.
    escalated = set(item.step_approvers.get(f"{index}:escalated", []))
    expected = [k for k in item.step_approvers[str(index)] if k not in escalated]
    outcome = engine.step_outcome(step["rule"], expected, history)
    await apply_outcome(
        session,
        item,
        brand,
        outcome,
        reason=row.comment,
        by_client=client_step,
        timezone=timezone,
        now=now,
        link_ttl=link_ttl,
        request_id=request_id,
    )
    touch(item)
    return row


async def apply_outcome(
    session: AsyncSession,
    item: ContentItem,
    brand: Brand,
    outcome: Outcome,
    *,
    reason: str | None,
    by_client: bool,
    timezone: str,
    now: datetime,
    link_ttl: timedelta,
    request_id: str | None,
) -> None:
    index = item.step_index
    assert index is not None
    steps = item.workflow["steps"]
    following = steps[index + 1]["kind"] if index + 1 < len(steps) else None
    action = engine.action_after(outcome, following)
    if action is None:
        return
    move(item, action)
    if action in (Action.advance_client, Action.advance_internal):
        await start_step(
            session,
            item,
            brand,
            index + 1,
            timezone=timezone,
            now=now,
            link_ttl=link_ttl,
            request_id=request_id,
        )
        return
    end_review(item)
    if action is Action.approve:
        audit(session, None, item, "content.approved", {}, client_visible=True)
        emit(session, item, "content.approved", request_id)
    elif action is Action.request_changes:
        item.status_reason, item.reason_for_client = reason, by_client
        audit(
            session,
            None,
            item,
            "content.changes_requested",
            {"reason": reason},
            client_visible=by_client,
        )
        emit(
            session,
            item,
            "content.changes_requested",
            request_id,
            reason=reason,
            by_client=by_client,
        )
    elif action is Action.reject:
        item.status_reason, item.reason_for_client = reason, by_client
        audit(session, None, item, "content.rejected", {"reason": reason}, client_visible=by_client)
        emit(session, item, "content.rejected", request_id, reason=reason, by_client=by_client)


def void_review(session: AsyncSession, principal: Principal, item: ContentItem) -> None:
    """An edit under review: what was pending on the old revision no longer counts."""
    index = item.step_index
    pending = []
    if index is not None:
        decided = set(item.step_approvers.get(f"{index}:decided", []))
        pending = [k for k in item.step_approvers.get(str(index), []) if k not in decided]
    details = {"round": item.round, "revision_id": str(item.current_revision_id)}
    audit(
        session,
        principal,
        item,
        "content.approvals_voided",
        {**details, "step_index": index, "pending": pending},
    )
    if index is not None and item.workflow["steps"][index]["kind"] == StepKind.client:
        # The client learns the request was withdrawn, not who else had been asked.
        audit(
            session, principal, item, "content.withdrawn_from_client", details, client_visible=True
        )
    end_review(item)
