"""Outbox handlers and jobs of time budgets: threshold e-mails and the forgotten-timer sweep."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from arq import Retry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.models import StripeEvent, Timer
from billing.service import invoice_push, invoices, subscriptions
from billing.service.entries import Worker, close_timer
from billing.stripe_gateway import TRANSIENT, describe, gateway
from billing.timekeeping import FORGOTTEN_AFTER
from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.errors import ProblemError
from infra.i18n import language as language_of
from infra.logging import get_logger
from infra.mail import Mail, send_mail
from infra.outbox import Event
from infra.sweep import due_tenants, for_each_tenant
from tenants.models import (
    Assignment,
    AssignmentRole,
    Brand,
    Client,
    Membership,
    MembershipStatus,
    Tenant,
    User,
)
from tenants.policy import local_date
from tenants.service.common import record_audit

log = get_logger(__name__)

_THRESHOLD = {
    "fr": (
        "{client} : {threshold} % du forfait de {month} utilisé",
        "Bonjour,\n\nLe forfait de {client} pour {month} a atteint {threshold} % : "
        "{used} h sur {available} h utilisées.\n\nVoir le budget :\n{link}\n",
    ),
    "en": (
        "{client}: {threshold}% of the {month} retainer used",
        "Hello,\n\n{client}'s retainer for {month} has reached {threshold}%: "
        "{used} h of {available} h used.\n\nSee the budget:\n{link}\n",
    ),
}


def _hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}".rstrip("0").rstrip(".")


@outbox.handler("budget.threshold_crossed")
async def mail_brand_leads(ctx: dict[str, Any], event: Event) -> None:
    """The client's brand leads learn of it by e-mail, each in their own language."""
    payload = event.payload
    client_id = uuid.UUID(payload["client_id"])
    async with ctx["db"].tenant_transaction(event.tenant_id) as session:
        tenant = await session.get(Tenant, event.tenant_id)
        client = await session.get(Client, (event.tenant_id, client_id))
        assert tenant is not None
        today = local_date(tenant.timezone, utcnow())
        leads = (
            await session.execute(
                select(User.email, User.locale)
                .join(Assignment, col(Assignment.user_id) == col(User.id))
                .join(
                    Brand,
                    (col(Brand.tenant_id) == col(Assignment.tenant_id))
                    & (col(Brand.id) == col(Assignment.brand_id)),
                )
                .join(
                    Membership,
                    (col(Membership.tenant_id) == col(Assignment.tenant_id))
                    & (col(Membership.id) == col(Assignment.membership_id)),
                )
                .where(
                    Assignment.tenant_id == event.tenant_id,
                    Brand.client_id == client_id,
                    Assignment.role == AssignmentRole.lead,
                    col(Assignment.start_date) <= today,
                    col(Assignment.end_date).is_(None) | (col(Assignment.end_date) >= today),
                    Membership.status == MembershipStatus.active,
                )
                .distinct()
            )
        ).all()
    if client is None:
        return
    link = f"{ctx['settings'].app_base_url}/clients/{client_id}/budget?month={payload['month']}"
    values = {
        "client": client.name,
        "month": payload["month"],
        "threshold": payload["threshold"],
        "used": _hours(payload["used_minutes"]),
        "available": _hours(payload["available_minutes"]),
        "link": link,
    }
    for email, locale in leads:
        language = language_of(locale)
        subject, body = _THRESHOLD[language]
        await send_mail(
            ctx["settings"],
            Mail(
                to=email,
                subject=subject.format(**values),
                text=body.format(**values),
                language=language,
            ),
        )


async def stop_forgotten_timers(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """arq cron: timers running for over 12 hours are stopped at 12 hours and flagged.

    Each timer closes in its own savepoint; one that cannot be logged (a locked week, a
    capped retainer, a full day) is discarded and the audit trail says why.
    """
    db: Database = ctx["db"]
    now = now or utcnow()
    cutoff = now - FORGOTTEN_AFTER
    rows = await due_tenants(
        db, text("SELECT due_tenant_id FROM overdue_timer_tenants(:cutoff)"), {"cutoff": cutoff}
    )

    async def stop(session: AsyncSession, tenant_id: uuid.UUID) -> int:
        stopped = 0
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        timers = (
            await session.scalars(
                select(Timer)
                .where(Timer.tenant_id == tenant_id, col(Timer.started_at) < cutoff)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for timer in timers:
            worker = Worker(tenant_id, timer.membership_id, timer.user_id, tenant.timezone)
            changes: dict[str, Any]
            try:
                async with session.begin_nested():
                    entries, _ = await close_timer(session, worker, timer, now=now, request_id=None)
                action, changes = "timer.stopped", {"entries": [str(e.id) for e in entries]}
            except ProblemError as exc:
                await session.delete(timer)
                action, changes = "timer.discarded", {"reason": exc.type_slug}
            record_audit(
                session,
                tenant_id=tenant_id,
                actor=None,
                action=action,
                subject_type="timer",
                subject_id=timer.id,
                changes={**changes, "forgotten": True},
                actor_id=None,
            )
            stopped += 1
        return stopped

    done = await for_each_tenant(
        db, (tenant_id for (tenant_id,) in rows), stop, failed="timers.forgotten_failed"
    )
    stopped = sum(count for _, count in done)
    if stopped:
        log.info("timers.forgotten_stopped", count=stopped)
    return stopped


# Stripe: webhooks, seats, client invoices on the agency's connected account


def _backoff(ctx: dict[str, Any]) -> timedelta:
    base = ctx["settings"].job_retry_base_seconds
    return timedelta(seconds=min(base * 2 ** (ctx.get("job_try", 1) - 1), 3600))


def _final_try(ctx: dict[str, Any]) -> bool:
    return int(ctx.get("job_try", 1)) >= MAX_TRIES


MAX_TRIES = 8


async def process_stripe_event(ctx: dict[str, Any], event_id: str) -> str:
    """arq job: apply one stored Stripe event (idempotent: a processed event is skipped)."""
    db: Database = ctx["db"]
    try:
        stripe_api = gateway(ctx["settings"])
    except ProblemError:
        return "stripe not configured"
    try:
        outcome, tenant_id = await subscriptions.process_event(db, stripe_api, event_id)
    except TRANSIENT as exc:
        await subscriptions.record_event_failure(db, event_id, describe(exc))
        if _final_try(ctx):
            log.warning("stripe.event_gave_up", event_id=event_id)
            return "gave up"
        raise Retry(defer=_backoff(ctx)) from exc
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
        final = _final_try(ctx)
        await subscriptions.finish_seat_sync(db, tid, quantity, error=describe(exc), final=final)
        if final:
            return "gave up"
        raise Retry(defer=_backoff(ctx)) from exc
    except stripe.StripeError as exc:
        await subscriptions.finish_seat_sync(db, tid, quantity, error=describe(exc), final=True)
        return "refused"
    await subscriptions.finish_seat_sync(db, tid, quantity, error=None, final=False)
    return f"seats={quantity}"


@outbox.handler("invoice.finalized")
async def push_finalized_invoice(ctx: dict[str, Any], event: Event) -> None:
    if event.payload.get("mode") == "stripe":
        await ctx["redis"].enqueue_job(
            "push_invoice",
            str(event.tenant_id),
            event.payload["invoice_id"],
            _job_id=f"invoice-push:{event.payload['invoice_id']}",
        )


@outbox.handler("invoice.voided")
async def void_on_stripe(ctx: dict[str, Any], event: Event) -> None:
    if event.payload.get("mode") == "stripe":
        await ctx["redis"].enqueue_job(
            "void_stripe_invoice",
            str(event.tenant_id),
            event.payload["invoice_id"],
            _job_id=f"invoice-void:{event.payload['invoice_id']}",
        )


async def push_invoice(ctx: dict[str, Any], tenant_id: str, invoice_id: str) -> str:
    """arq job: create and finalize the invoice on the agency's connected Stripe account.

    Every call carries an idempotency key derived from our ids, so a retry after a timeout
    or a crash finds the objects the first try made instead of making them twice."""
    db: Database = ctx["db"]
    tid, iid = uuid.UUID(tenant_id), uuid.UUID(invoice_id)
    try:
        stripe_api = gateway(ctx["settings"])
        return await invoice_push.push(db, stripe_api, tid, iid)
    except TRANSIENT as exc:
        final = _final_try(ctx)
        await invoice_push.record_failure(db, tid, iid, describe(exc), final=final)
        if final:
            return "gave up"
        raise Retry(defer=_backoff(ctx)) from exc
    except (stripe.StripeError, ProblemError, invoice_push.NoAccount) as exc:
        await invoice_push.record_failure(db, tid, iid, describe(exc), final=True)
        return "refused"


async def void_stripe_invoice(ctx: dict[str, Any], tenant_id: str, invoice_id: str) -> str:
    db: Database = ctx["db"]
    tid, iid = uuid.UUID(tenant_id), uuid.UUID(invoice_id)
    try:
        stripe_api = gateway(ctx["settings"])
        outcome = await invoice_push.void(db, stripe_api, tid, iid)
    except TRANSIENT as exc:
        if _final_try(ctx):
            return "gave up"
        raise Retry(defer=_backoff(ctx)) from exc
    if outcome == "wait":
        if _final_try(ctx):
            return "gave up"
        raise Retry(defer=_backoff(ctx))
    return outcome


async def build_due_invoices(db: Database, now: datetime) -> list[uuid.UUID]:
    """Drafts for the month that just closed, for every agency whose local date is the 1st."""
    rows = await due_tenants(
        db, select(Tenant.id, Tenant.timezone).where(Tenant.status != "canceled")
    )
    today_of = {tenant_id: local_date(timezone, now) for tenant_id, timezone in rows}

    async def build(session: AsyncSession, tenant_id: uuid.UUID) -> list[uuid.UUID]:
        tenant = (await session.scalars(select(Tenant).where(Tenant.id == tenant_id))).one()
        return await invoices.build_month(
            session, tenant, invoices.previous_month(today_of[tenant_id])
        )

    due = [tenant_id for tenant_id, today in today_of.items() if today.day == 1]
    done = await for_each_tenant(db, due, build, failed="invoices.monthly_failed")
    return [invoice_id for _, created in done for invoice_id in created]


async def build_monthly_invoices(ctx: dict[str, Any]) -> int:
    """arq cron (hourly): see build_due_invoices. Idempotent: a client's month has one invoice."""
    # Their `invoice.draft_created` events leave through the outbox sweeper.
    return len(await build_due_invoices(ctx["db"], utcnow()))


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
