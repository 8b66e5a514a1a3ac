"""Jobs of client invoices: the monthly drafts, and finalized or voided invoices pushed to the
agency's connected Stripe account."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import stripe
from arq import Retry
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from billing.invoices import push as invoice_push
from billing.invoices import service as invoices
from billing.subscription.jobs import MAX_TRIES
from billing.subscription.stripe_gateway import TRANSIENT, describe, gateway
from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.errors import ProblemError
from infra.outbox import Event
from infra.retry import backoff, final_try
from infra.sweep import due_tenants, for_each_tenant
from tenants.models import Tenant
from tenants.policy import local_date


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
        final = final_try(ctx, MAX_TRIES)
        await invoice_push.record_failure(db, tid, iid, describe(exc), final=final)
        if final:
            return "gave up"
        raise Retry(defer=backoff(ctx)) from exc
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
        if final_try(ctx, MAX_TRIES):
            return "gave up"
        raise Retry(defer=backoff(ctx)) from exc
    if outcome == "wait":
        if final_try(ctx, MAX_TRIES):
            return "gave up"
        raise Retry(defer=backoff(ctx))
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
