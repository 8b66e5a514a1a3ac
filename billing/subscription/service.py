"""The agency's Passerelle subscription: checkout, customer portal, what it shows, its seats,
and the state Stripe's events put it in.

Stripe is the source of truth. Events only tell us *that* something changed: the job re-reads
the subscription from Stripe and applies what it reads, so duplicate, late and out-of-order
events all end in Stripe's current state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.subscription import errors
from billing.subscription.models import SeatSync, StripeEvent, Subscription
from billing.subscription.schemas import (
    CheckoutCreate,
    ConnectedAccountRead,
    ConnectedAccountSet,
    LimitUse,
    PlanRead,
    RedirectRead,
    SeatsRead,
    SubscriptionRead,
)
from billing.subscription.stripe_gateway import TRANSIENT, StripeGateway, gateway
from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.plans import Plan
from infra.settings import Settings
from social.service.accounts import count_accounts
from tenants.models import Brand, ClientStatus, Membership, MembershipStatus, Role, Tenant
from tenants.policy import Resource, Verb
from tenants.principal import Principal
from tenants.service.common import bump, record_audit, require_scope
from tenants.standing import Standing, grace_ends_at, standing_of, tenant_status_for

STAFF_ROLES = tuple(r.value for r in Role if r is not Role.client)


def plan_read(plan_id: str, plan: Plan) -> PlanRead:
    return PlanRead(
        id=plan_id,
        name=plan.name,
        currency=plan.currency,
        seat_price_minor=plan.seat_price_minor,
        max_active_brands=plan.max_active_brands,
        max_social_accounts=plan.max_social_accounts,
        max_staff_seats=plan.max_staff_seats,
        features=sorted(f.value for f in plan.features),
    )


async def active_staff(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """Seats follow active staff memberships: client contacts are free."""
    count = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.tenant_id == tenant_id,
            Membership.status == MembershipStatus.active,
            col(Membership.role).in_(STAFF_ROLES),
        )
    )
    return int(count or 0)


async def _tenant(session: AsyncSession, tenant_id: uuid.UUID, *, lock: bool = False) -> Tenant:
    query = select(Tenant).where(Tenant.id == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).one()


async def _subscription(
    session: AsyncSession, tenant_id: uuid.UUID, *, lock: bool = False
) -> Subscription | None:
    query = select(Subscription).where(Subscription.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def get_subscription(
    session: AsyncSession, principal: Principal, settings: Settings
) -> SubscriptionRead:
    require_scope(principal, Resource.subscription, Verb.read)
    tenant = await _tenant(session, principal.tenant_id)
    sub = await _subscription(session, principal.tenant_id)
    plan = settings.plan(tenant.plan_id)
    grace = timedelta(days=settings.billing_grace_days)
    staff = await active_staff(session, principal.tenant_id)
    brands = await session.scalar(
        select(func.count())
        .select_from(Brand)
        .where(Brand.tenant_id == principal.tenant_id, Brand.status == ClientStatus.active)
    )
    social_accounts = await count_accounts(session, principal.tenant_id)
    return SubscriptionRead(
        stripe_configured=settings.stripe_configured,
        plan=plan_read(
            tenant.plan_id if tenant.plan_id in settings.plans else settings.default_plan, plan
        ),
        status=standing_of(tenant.status, tenant.past_due_since, utcnow(), grace).value,
        stripe_status=sub.status if sub else None,
        grace_ends_at=grace_ends_at(tenant.past_due_since, grace)
        if tenant.status == Standing.past_due
        else None,
        current_period_end=sub.current_period_end if sub else None,
        cancel_at_period_end=sub.cancel_at_period_end if sub else False,
        seats=SeatsRead(
            billed=sub.seats,
            active_staff=staff,
            sync=sub.seat_sync_status,
            error=sub.seat_sync_error,
        )
        if sub
        else None,
        limits={
            "active_brands": LimitUse(used=int(brands or 0), limit=plan.max_active_brands),
            "staff_seats": LimitUse(used=staff, limit=plan.max_staff_seats),
            "social_accounts": LimitUse(
                used=int(social_accounts or 0), limit=plan.max_social_accounts
            ),
        },
    )


async def _ensure_customer(
    session: AsyncSession, principal: Principal, stripe_api: StripeGateway
) -> tuple[Tenant, str]:
    # The tenant row lock makes concurrent first checkouts wait for one customer; the
    # idempotency key makes a retry after a lost answer find the same customer.
    tenant = await _tenant(session, principal.tenant_id, lock=True)
    if tenant.stripe_customer_id:
        return tenant, tenant.stripe_customer_id
    try:
        customer = await stripe_api.create_customer(
            {
                # The same parameters whoever clicks: a retry by another admin must match
                # the first try for its idempotency key. Checkout collects the e-mail.
                "name": tenant.name,
                "preferred_locales": [tenant.locale],
                "metadata": {"tenant_id": str(tenant.id), "slug": tenant.slug},
            },
            key=f"agency-customer-{tenant.id}",
        )
    except TRANSIENT as exc:
        raise errors.StripeUnavailable() from exc
    tenant.stripe_customer_id = customer["id"]
    session.add(tenant)
    await session.flush()
    return tenant, customer["id"]


async def start_checkout(
    session: AsyncSession, principal: Principal, data: CheckoutCreate, settings: Settings
) -> RedirectRead:
    require_scope(principal, Resource.subscription, Verb.update)
    stripe_api = gateway(settings)
    plan = settings.plans.get(data.plan_id)
    if plan is None:
        raise errors.UnknownPlan(
            f"Choose one of: {', '.join(sorted(settings.plans))}.", plans=sorted(settings.plans)
        )
    tenant, customer_id = await _ensure_customer(session, principal, stripe_api)
    current = await _subscription(session, principal.tenant_id)
    if current is not None and current.status not in ("canceled", "incomplete_expired"):
        raise errors.SubscriptionExists(
            "Change plan, seats or payment method in the customer portal: "
            "POST /v1/billing/portal-session."
        )
    seats = max(await active_staff(session, principal.tenant_id), 1)
    base = settings.app_base_url.rstrip("/")
    try:
        checkout = await stripe_api.checkout_session(
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": str(tenant.id),
                "line_items": [
                    {"price": plan.price_id, "quantity": 1},
                    {"price": plan.seat_price_id, "quantity": seats},
                ],
                "success_url": f"{base}/settings/billing?checkout=done",
                "cancel_url": f"{base}/settings/billing?checkout=canceled",
                "metadata": {"tenant_id": str(tenant.id), "plan_id": data.plan_id},
                "subscription_data": {
                    "metadata": {"tenant_id": str(tenant.id), "plan_id": data.plan_id}
                },
            },
            # One open checkout per agency, plan and seat count at a time: a double click
            # gets the same page back.
            key=f"checkout-{tenant.id}-{data.plan_id}-{seats}-{utcnow():%Y%m%d%H}",
        )
    except TRANSIENT as exc:
        raise errors.StripeUnavailable() from exc
    return RedirectRead(url=checkout["url"])


async def open_portal(
    session: AsyncSession, principal: Principal, settings: Settings
) -> RedirectRead:
    require_scope(principal, Resource.subscription, Verb.update)
    stripe_api = gateway(settings)
    tenant = await _tenant(session, principal.tenant_id)
    if not tenant.stripe_customer_id:
        raise errors.NoBillingAccount(
            "Subscribe first: POST /v1/billing/checkout-session makes the Stripe customer."
        )
    try:
        portal = await stripe_api.portal_session(
            {
                "customer": tenant.stripe_customer_id,
                "return_url": f"{settings.app_base_url.rstrip('/')}/settings/billing",
            }
        )
    except TRANSIENT as exc:
        raise errors.StripeUnavailable() from exc
    return RedirectRead(url=portal["url"])


async def get_connected_account(
    session: AsyncSession, principal: Principal
) -> ConnectedAccountRead:
    require_scope(principal, Resource.subscription, Verb.read)
    tenant = await _tenant(session, principal.tenant_id)
    return ConnectedAccountRead(account_id=tenant.stripe_account_id)


async def set_connected_account(
    session: AsyncSession,
    principal: Principal,
    data: ConnectedAccountSet | None,
    settings: Settings,
) -> ConnectedAccountRead:
    """Client invoices go to this account; None disconnects it (invoices become external)."""
    require_scope(principal, Resource.subscription, Verb.update)
    account_id = data.account_id if data else None
    if account_id is not None:
        stripe_api = gateway(settings)
        try:
            await stripe_api.retrieve_account(account_id)
        except TRANSIENT as exc:
            raise errors.StripeUnavailable() from exc
        except stripe.StripeError as exc:
            raise errors.UnknownStripeAccount(
                "Stripe does not know this account, or it is not connected to Passerelle."
            ) from exc
    tenant = await _tenant(session, principal.tenant_id, lock=True)
    if tenant.stripe_account_id != account_id:
        record_audit(
            session,
            tenant_id=tenant.id,
            actor=principal,
            action="billing.connected_account_changed",
            subject_type="tenant",
            subject_id=tenant.id,
            changes={"stripe_account_id": [tenant.stripe_account_id, account_id]},
            request_id=principal.request_id,
        )
        tenant.stripe_account_id = account_id
        tenant.updated_at = utcnow()
        session.add(tenant)
        await session.flush()
    return ConnectedAccountRead(account_id=account_id)


# Webhooks


async def receive_webhook(
    session: AsyncSession, payload: bytes, signature: str | None, settings: Settings
) -> tuple[str, bool]:
    """Verify, store the event id once, and return (event id, was it already stored)."""
    if settings.stripe_webhook_secret is None:
        raise errors.StripeNotConfigured("Set STRIPE_WEBHOOK_SECRET to receive Stripe webhooks.")
    try:
        event = stripe.Webhook.construct_event(
            payload,
            signature,
            settings.stripe_webhook_secret.get_secret_value(),
            tolerance=settings.stripe_webhook_tolerance_seconds,
        )
    except stripe.SignatureVerificationError as exc:
        reason = "missing" if not signature else "wrong or too old"
        raise errors.InvalidStripeSignature(
            f"The Stripe-Signature header is {reason}; nothing was stored."
        ) from exc
    except ValueError as exc:
        raise errors.InvalidStripeSignature("The body is not a Stripe event.") from exc
    raw = event.to_dict()
    obj = (raw.get("data") or {}).get("object") or {}
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    inserted = await session.scalar(
        insert(StripeEvent)
        .values(
            id=raw["id"],
            type=raw["type"],
            account=raw.get("account"),
            object_id=obj.get("id"),
            customer_id=customer,
            created=int(raw["created"]),
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(col(StripeEvent.id))
    )
    return str(raw["id"]), inserted is None


SUBSCRIPTION_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.payment_succeeded",
    }
)


class EventOutcome:
    applied = "applied"
    ignored = "ignored"
    done = "already processed"


async def process_event(
    db: Database, stripe_api: StripeGateway, settings: Settings, event_id: str
) -> tuple[str, uuid.UUID | None]:
    """Apply one stored event: re-read its subscription from Stripe and take that state.

    Raises the gateway's transient errors for the job to retry. Returns the outcome and the
    tenant whose seats may need a sync."""
    async with db.session() as session, session.begin():
        event = await session.get(StripeEvent, event_id)
        if event is None or event.processed_at is not None:
            return EventOutcome.done, None
        tenant_id = (
            await session.scalar(
                select(Tenant.id).where(Tenant.stripe_customer_id == event.customer_id)
            )
            if event.customer_id
            else None
        )
    if event.account is not None or event.type not in SUBSCRIPTION_EVENTS or tenant_id is None:
        # Connected-account events and other types are not ours to act on (yet).
        await _mark(db, event_id, tenant_id, error=None)
        return EventOutcome.ignored, None
    subscription_id = await _subscription_id_of(db, stripe_api, event, tenant_id)
    if subscription_id is None:
        await _mark(db, event_id, tenant_id, error=None)
        return EventOutcome.ignored, None
    remote = await stripe_api.retrieve_subscription(subscription_id)
    await apply_subscription(db, tenant_id, remote, settings, seen_at=event.created)
    await _mark(db, event_id, tenant_id, error=None)
    return EventOutcome.applied, tenant_id


async def _subscription_id_of(
    db: Database, stripe_api: StripeGateway, event: StripeEvent, tenant_id: uuid.UUID
) -> str | None:
    if event.type.startswith("customer.subscription."):
        return event.object_id
    if event.type == "checkout.session.completed" and event.object_id:
        checkout = await stripe_api.retrieve_checkout_session(event.object_id)
        sub = checkout.get("subscription")
        return sub if isinstance(sub, str) or sub is None else sub.get("id")
    async with db.tenant_transaction(tenant_id) as session:
        current = await _subscription(session, tenant_id)
        return current.stripe_subscription_id if current else None


async def _mark(
    db: Database, event_id: str, tenant_id: uuid.UUID | None, *, error: str | None
) -> None:
    async with db.session() as session, session.begin():
        values: dict[str, Any] = {"agency_id": tenant_id, "last_error": error}
        if error is None:
            values["processed_at"] = utcnow()
        else:
            values["attempts"] = StripeEvent.attempts + 1
        await session.execute(
            update(StripeEvent).where(col(StripeEvent.id) == event_id).values(**values)
        )


async def record_event_failure(db: Database, event_id: str, error: str) -> None:
    await _mark(db, event_id, None, error=error)


def _plan_of(remote: dict[str, Any], settings_plans: dict[str, Plan]) -> str | None:
    wanted = (remote.get("metadata") or {}).get("plan_id")
    if wanted in settings_plans:
        return str(wanted)
    prices = {i["price"]["id"] for i in remote["items"]["data"]}
    for plan_id, plan in settings_plans.items():
        if plan.price_id in prices:
            return plan_id
    return None


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


async def apply_subscription(
    db: Database, tenant_id: uuid.UUID, remote: dict[str, Any], settings: Settings, *, seen_at: int
) -> None:
    """Take Stripe's subscription as read into our row and the agency's standing."""
    async with db.tenant_transaction(tenant_id) as session:
        tenant = await _tenant(session, tenant_id, lock=True)
        row = await _subscription(session, tenant_id, lock=True)
        if (
            row is not None
            and row.stripe_subscription_id != remote["id"]
            and row.status not in ("canceled", "incomplete_expired")
            and remote["status"] in ("canceled", "incomplete_expired")
        ):
            return  # an old, ended subscription must not override the live one
        plan_id = _plan_of(remote, settings.plans) or (row.plan_id if row else tenant.plan_id)
        plan = settings.plan(plan_id)
        items = remote["items"]["data"]
        seat = next((i for i in items if i["price"]["id"] == plan.seat_price_id), None)
        base = next((i for i in items if i["price"]["id"] == plan.price_id), None)
        period_end = max((int(i.get("current_period_end") or 0) for i in items), default=0)
        if row is None or row.stripe_subscription_id != remote["id"]:
            if row is not None:
                await session.delete(row)
                await session.flush()
            row = Subscription(
                tenant_id=tenant_id,
                stripe_subscription_id=remote["id"],
                stripe_customer_id=str(remote["customer"]),
                plan_id=plan_id,
                status=remote["status"],
                seats_wanted=seat["quantity"] if seat else 0,
            )
        row.plan_id = plan_id
        row.status = remote["status"]
        row.base_item_id = base["id"] if base else None
        row.seat_item_id = seat["id"] if seat else None
        row.seats = int(seat["quantity"]) if seat else 0
        row.current_period_end = _ts(period_end)
        row.cancel_at_period_end = bool(remote.get("cancel_at_period_end"))
        row.stripe_created = max(row.stripe_created, seen_at)
        row.synced_at = utcnow()
        bump(row)
        session.add(row)

        before = (tenant.status, tenant.plan_id)
        standing = tenant_status_for(remote["status"])
        if standing == Standing.past_due:
            # Grace counts from when Stripe said so, not from when we processed it.
            since = _ts(seen_at) or utcnow()
            if tenant.past_due_since is None or tenant.status != Standing.past_due:
                tenant.past_due_since = since
            else:  # a late "fell past due" event moves the start back, never forward
                tenant.past_due_since = min(tenant.past_due_since, since)
        else:
            tenant.past_due_since = None
        tenant.status = standing.value
        tenant.plan_id = plan_id
        tenant.updated_at = utcnow()
        session.add(tenant)
        if before != (tenant.status, tenant.plan_id):
            record_audit(
                session,
                tenant_id=tenant_id,
                actor=None,
                actor_type="stripe",
                action="subscription.changed",
                subject_type="tenant",
                subject_id=tenant_id,
                changes={"status": [before[0], tenant.status], "plan_id": [before[1], plan_id]},
            )
            outbox.record_event(
                session,
                tenant_id=tenant_id,
                type="subscription.updated",
                aggregate_type="tenant",
                aggregate_id=tenant_id,
                payload={"status": tenant.status, "plan_id": plan_id},
            )
        await session.flush()


# Seats


async def prepare_seat_sync(db: Database, tenant_id: uuid.UUID) -> tuple[str, int, int] | None:
    """Count the seats; when Stripe bills another number, mark the sync pending and return
    (item id, quantity, round) for the call. The round names the idempotency key, so retries
    of one count reuse it and a later, different count gets a fresh one."""
    async with db.tenant_transaction(tenant_id) as session:
        row = await _subscription(session, tenant_id, lock=True)
        if (
            row is None
            or row.seat_item_id is None
            or row.status in ("canceled", "incomplete_expired")
        ):
            return None
        wanted = max(await active_staff(session, tenant_id), 1)
        if wanted == row.seats:
            if row.seat_sync_status != SeatSync.synced or row.seats_wanted != wanted:
                row.seats_wanted = wanted
                row.seat_sync_status = SeatSync.synced
                row.seat_sync_error = None
                session.add(row)
            return None
        if wanted != row.seats_wanted or row.seat_sync_status == SeatSync.synced:
            row.seat_sync_round += 1
        row.seats_wanted = wanted
        row.seat_sync_status = SeatSync.pending
        row.updated_at = utcnow()
        session.add(row)
        return row.seat_item_id, wanted, row.seat_sync_round


async def finish_seat_sync(
    db: Database, tenant_id: uuid.UUID, quantity: int, *, error: str | None, final: bool
) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        row = await _subscription(session, tenant_id, lock=True)
        if row is None:
            return
        if error is None:
            row.seats = quantity
            row.seat_sync_error = None
            row.seat_sync_status = (
                SeatSync.synced if row.seats_wanted == quantity else SeatSync.pending
            )
        else:
            row.seat_sync_error = error
            row.seat_sync_status = SeatSync.failed if final else SeatSync.pending
        row.updated_at = utcnow()
        session.add(row)


# An operator's plan, without Stripe


@dataclass(frozen=True)
class PlanChange:
    tenant_id: uuid.UUID
    before: str
    after: str
    billed_by_stripe: bool
    """A live Stripe subscription names its own plan: Stripe's next event sets it back."""


async def set_plan_by_operator(
    db: Database, settings: Settings, *, slug: str, plan_id: str
) -> PlanChange:
    """Put the agency at `slug` on `plan_id`, as the install's operator (a self-hosted
    install without Stripe, a trial, a demo). Audited as the operator's act."""
    if plan_id not in settings.plans:
        known = ", ".join(sorted(settings.plans))
        raise errors.UnknownPlan(f"No plan {plan_id!r} in the catalogue; plans: {known}.")
    async with db.session() as session:
        # The directory's own table: an agency is found by its address before entering it.
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise errors.UnknownAgency(f"No agency has the address {slug!r}.")
    async with db.tenant_transaction(tenant_id) as session:
        tenant = await _tenant(session, tenant_id, lock=True)
        row = await _subscription(session, tenant_id)
        billed = row is not None and row.status not in ("canceled", "incomplete_expired")
        before = tenant.plan_id
        if before != plan_id:
            tenant.plan_id = plan_id
            bump(tenant)
            session.add(tenant)
            record_audit(
                session,
                tenant_id=tenant_id,
                actor=None,
                actor_type="operator",
                action="plan.set",
                subject_type="tenant",
                subject_id=tenant_id,
                changes={"plan_id": [before, plan_id]},
            )
            outbox.record_event(
                session,
                tenant_id=tenant_id,
                type="subscription.updated",
                aggregate_type="tenant",
                aggregate_id=tenant_id,
                payload={"status": tenant.status, "plan_id": plan_id},
            )
            await session.flush()
    return PlanChange(tenant_id, before, plan_id, billed)
