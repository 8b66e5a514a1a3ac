"""Steps past their due time: remind, escalate, approve by agreement, or expire.

Idempotent by construction: each run handles an item only when its `next_deadline_at` has
come, and moves that deadline (or clears it) in the same transaction as the events it
writes. A second run at the same moment finds nothing due; two workers skip each other's
locked rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.db import Database
from infra.errors import ProblemError
from infra.logging import get_logger
from infra.outbox import enqueue_delivery
from infra.sweep import due_tenants, for_each_tenant
from tenants.models import Brand, Tenant
from workflows import engine
from workflows.engine import Action, Decision, TimeoutKind
from workflows.models import ApprovalLink, ContentItem
from workflows.service.access import audit, timeout_step, touch, user_key
from workflows.service.flow import Actor, emit, end_review, move, record_decision

log = get_logger(__name__)

AUTO_APPROVER = "system:auto_approve"


async def run_due_steps(
    db: Database, *, now: datetime, link_ttl: timedelta, queue: ArqRedis | None = None
) -> int:
    rows = await due_tenants(
        db, text("SELECT due_tenant_id FROM due_approval_tenants(:now)"), {"now": now}
    )

    async def work(session: AsyncSession, tenant_id: uuid.UUID) -> int:
        return await _due_steps(session, tenant_id, now=now, link_ttl=link_ttl)

    handled = 0
    for tenant_id, count in await for_each_tenant(
        db, (tenant_id for (tenant_id,) in rows), work, failed="approvals.timeouts_failed"
    ):
        handled += count
        if count and queue is not None:
            # Like a request after commit: deliver the e-mails now, not at the next sweep.
            await enqueue_delivery(queue, tenant_id, job_key=f"timeouts-{now.isoformat()}")
    if handled:
        log.info("approvals.timeouts_handled", count=handled)
    return handled


async def run_tenant_due_steps(
    db: Database, tenant_id: uuid.UUID, *, now: datetime, link_ttl: timedelta
) -> int:
    async with db.tenant_transaction(tenant_id) as session:
        return await _due_steps(session, tenant_id, now=now, link_ttl=link_ttl)


async def _due_steps(
    session: AsyncSession, tenant_id: uuid.UUID, *, now: datetime, link_ttl: timedelta
) -> int:
    handled = 0
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    items = (
        await session.scalars(
            select(ContentItem)
            .where(
                ContentItem.tenant_id == tenant_id,
                col(ContentItem.next_deadline_at) <= now,
            )
            .order_by(col(ContentItem.next_deadline_at))
            .limit(500)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for item in items:
        if item.step_index is None or item.step_started_at is None:
            item.next_deadline_at = None
            continue
        step = item.workflow["steps"][item.step_index]
        plan = engine.timeout_action(
            timeout_step(step),
            started_at=item.step_started_at,
            done=item.timeouts_done,
            client_agreed=bool(item.workflow.get("client_agreed_auto_approve")),
        )
        if plan is None:
            item.next_deadline_at = None
            continue
        item.timeouts_done += 1
        item.next_deadline_at = plan.next_at
        brand = await session.get(Brand, (tenant_id, item.brand_id))
        assert brand is not None
        try:
            async with session.begin_nested():
                await _apply(
                    session, item, brand, step, plan.action, tenant.timezone, now, link_ttl
                )
        except ProblemError as exc:
            # One item that cannot move (its next step lost every approver, say) must not
            # hold back the others, nor fail again every minute: it waits for a person,
            # and its history says why.
            await session.refresh(item)
            item.next_deadline_at = None
            audit(
                session,
                None,
                item,
                "approval.timeout_failed",
                {
                    "step_index": item.step_index,
                    "action": plan.action,
                    "reason": exc.type_slug,
                    "detail": str(exc),
                },
            )
            log.warning("approvals.timeout_failed", content_id=str(item.id), reason=exc.type_slug)
        touch(item)
        handled += 1
    return handled


async def _extend_links(
    session: AsyncSession, item: ContentItem, index: int, now: datetime, link_ttl: timedelta
) -> None:
    """A reminder carries the same link; it must still work for as long as a new one would."""
    until = now + link_ttl
    await session.execute(
        update(ApprovalLink)
        .where(
            col(ApprovalLink.tenant_id) == item.tenant_id,
            col(ApprovalLink.content_item_id) == item.id,
            col(ApprovalLink.round) == item.round,
            col(ApprovalLink.step_index) == index,
            col(ApprovalLink.used_at).is_(None),
            col(ApprovalLink.expires_at) < until,
        )
        .values(expires_at=until)
    )


async def _apply(
    session: AsyncSession,
    item: ContentItem,
    brand: Brand,
    step: dict[str, Any],
    action: TimeoutKind,
    timezone: str,
    now: datetime,
    link_ttl: timedelta,
) -> None:
    assert item.step_index is not None
    index = item.step_index
    approvers = list(item.step_approvers.get(str(index), []))
    decided = set(item.step_approvers.get(f"{index}:decided", []))
    pending = [k for k in approvers if k not in decided]
    if action is TimeoutKind.remind:
        await _extend_links(session, item, index, now, link_ttl)
        emit(
            session,
            item,
            "approval.reminder_sent",
            None,
            step_index=index,
            step_name=step["name"],
            reminder=item.timeouts_done,
            pending=pending,
        )
        audit(
            session, None, item, "approval.reminder_sent", {"step_index": index, "pending": pending}
        )
    elif action is TimeoutKind.escalate:
        timeout = step.get("timeout") or {}
        target = user_key(uuid.UUID(str(timeout["escalate_to"])))
        if target not in approvers:
            item.step_approvers = {
                **item.step_approvers,
                str(index): [*approvers, target],
                f"{index}:escalated": [target],
            }
        emit(
            session,
            item,
            "approval.escalated",
            None,
            step_index=index,
            step_name=step["name"],
            escalated_to=target,
            pending=pending,
        )
        audit(session, None, item, "approval.escalated", {"step_index": index, "to": target})
    elif action is TimeoutKind.auto_approve:
        actor = Actor(key=AUTO_APPROVER, actor_type="system", channel="system")
        await record_decision(
            session,
            item,
            brand,
            actor,
            Decision.approve,
            "Approved by agreement: no answer by the due time.",
            timezone=timezone,
            now=now,
            link_ttl=link_ttl,
            request_id=None,
        )
    else:
        move(item, Action.expire)
        end_review(item)
        item.status_reason = f"No decision on step {step['name']!s} by its due time."
        item.reason_for_client = step["kind"] == "client"
        audit(session, None, item, "approval.expired", {"step_index": index, "pending": pending})
        emit(session, item, "approval.expired", None, step_index=index, pending=pending)
