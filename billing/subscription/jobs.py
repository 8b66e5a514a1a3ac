"""Jobs of the agency's subscription: Stripe's events applied, seats kept in step with active
staff, and the sweep that re-enqueues events whose enqueue was lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from arq import Retry
from sqlmodel import col, select

from billing.subscription import service as subscriptions
from billing.subscription.models import StripeEvent
from billing.subscription.stripe_gateway import TRANSIENT, describe, gateway
from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.errors import ProblemError
from infra.logging import get_logger
from infra.outbox import Event
from infra.retry import backoff, final_try

log = get_logger(__name__)


# Every job that calls Stripe (the invoice jobs too) tries this many times.
MAX_TRIES = 8


async def process_stripe_event(ctx: dict[str, Any], event_id: str) -> str:
    """arq job: apply one stored Stripe event (idempotent: a processed event is skipped)."""
    db: Database = ctx["db"]
    try:
        stripe_api = gateway(ctx["settings"])
    except ProblemError:
        return "stripe not configured"
    try:
        outcome, tenant_id = await subscriptions.process_event(
            db, stripe_api, ctx["settings"], event_id
        )
    except TRANSIENT as exc:
        await subscriptions.record_event_failure(db, event_id, describe(exc))
        if final_try(ctx, MAX_TRIES):
            log.warning("stripe.event_gave_up", event_id=event_id)
            return "gave up"
        raise Retry(defer=backoff(ctx)) from exc
    if tenant_id is not None:
        await enqueue_seat_sync(ctx["redis"], ctx["settings"], tenant_id, reason=event_id)
    return outcome


async def enqueue_seat_sync(
    queue: Any, settings: Any, tenant_id: uuid.UUID, *, reason: str
) -> None:
    """Debounced: changes within one window share a job that runs when the window closes and
    reads the count then, so a burst of invitations is one subscription update."""
    delay = settings.seat_sync_delay_seconds
    if delay <= 0:
        await queue.enqueue_job("sync_seats", str(tenant_id), _job_id=f"seats:{tenant_id}:{reason}")
        return
    now = utcnow().timestamp()
    window_end = (int(now) // delay + 1) * delay
    await queue.enqueue_job(
        "sync_seats",
        str(tenant_id),
        _job_id=f"seats:{tenant_id}:{window_end}",
        _defer_until=datetime.fromtimestamp(window_end, UTC),
    )


@outbox.handler("member.joined")
@outbox.handler("member.updated")
async def seats_follow_members(ctx: dict[str, Any], event: Event) -> None:
    if ctx["settings"].stripe_configured:
        await enqueue_seat_sync(
            ctx["redis"], ctx["settings"], event.tenant_id, reason=str(event.id)
        )


async def sync_seats(ctx: dict[str, Any], tenant_id: str) -> str:
    """arq job: make Stripe bill as many seats as there are active staff."""
    db: Database = ctx["db"]
    tid = uuid.UUID(tenant_id)
    try:
        stripe_api = gateway(ctx["settings"])
    except ProblemError:
        return "stripe not configured"
    plan = await subscriptions.prepare_seat_sync(db, tid)
    if plan is None:
        return "in sync"
    item_id, quantity, round_ = plan
    try:
        await stripe_api.set_item_quantity(item_id, quantity, key=f"seats-{item_id}-{round_}")
    except TRANSIENT as exc:
        final = final_try(ctx, MAX_TRIES)
        await subscriptions.finish_seat_sync(db, tid, quantity, error=describe(exc), final=final)
        if final:
            return "gave up"
        raise Retry(defer=backoff(ctx)) from exc
    except stripe.StripeError as exc:
        await subscriptions.finish_seat_sync(db, tid, quantity, error=describe(exc), final=True)
        return "refused"
    await subscriptions.finish_seat_sync(db, tid, quantity, error=None, final=False)
    return f"seats={quantity}"


async def sweep_stripe_events(ctx: dict[str, Any]) -> int:
    """arq cron: re-enqueue stored events whose after-commit enqueue was lost."""
    db: Database = ctx["db"]
    async with db.session() as session:
        ids = (
            await session.scalars(
                select(StripeEvent.id)
                .where(
                    col(StripeEvent.processed_at).is_(None),
                    col(StripeEvent.received_at) < utcnow() - timedelta(minutes=1),
                    col(StripeEvent.attempts) < MAX_TRIES,
                )
                .limit(500)
            )
        ).all()
    for event_id in ids:
        await ctx["redis"].enqueue_job(
            "process_stripe_event", event_id, _job_id=f"stripe-event:{event_id}"
        )
    return len(ids)
