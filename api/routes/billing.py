"""The agency's Passerelle subscription, and Stripe's webhooks."""

from fastapi import APIRouter, Header, Request, status

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from api.problems import responses
from billing.subscription import service as subscriptions
from billing.subscription.schemas import (
    CheckoutCreate,
    ConnectedAccountRead,
    ConnectedAccountSet,
    RedirectRead,
    SubscriptionRead,
    WebhookReceived,
)
from infra.queue import enqueue_after_commit

router = APIRouter(prefix="/billing", tags=["billing"])


@router.get("/subscription", summary="Plan, standing, seats, period end and limits in use")
async def get_subscription(
    principal: CurrentPrincipal, session: SessionDep, resources: ResourcesDep
) -> SubscriptionRead:
    return await subscriptions.get_subscription(session, principal, resources.settings)


@router.post(
    "/checkout-session",
    responses=responses(409, 502, 503),
    summary="Start a subscription: answers the URL of Stripe Checkout",
)
async def create_checkout_session(
    body: CheckoutCreate, principal: CurrentPrincipal, session: SessionDep, resources: ResourcesDep
) -> RedirectRead:
    return await subscriptions.start_checkout(session, principal, body, resources.settings)


@router.post(
    "/portal-session",
    responses=responses(409, 502, 503),
    summary="Manage the subscription: answers the URL of Stripe's customer portal",
)
async def create_portal_session(
    principal: CurrentPrincipal, session: SessionDep, resources: ResourcesDep
) -> RedirectRead:
    return await subscriptions.open_portal(session, principal, resources.settings)


@router.get("/connected-account", summary="The Stripe account client invoices are made on")
async def get_connected_account(
    principal: CurrentPrincipal, session: SessionDep
) -> ConnectedAccountRead:
    return await subscriptions.get_connected_account(session, principal)


@router.put(
    "/connected-account",
    responses=responses(502, 503),
    summary="Connect the agency's own Stripe account for client invoices",
)
async def set_connected_account(
    body: ConnectedAccountSet,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
) -> ConnectedAccountRead:
    return await subscriptions.set_connected_account(session, principal, body, resources.settings)


@router.delete(
    "/connected-account",
    summary="Disconnect it: client invoices become external (CSV and PDF)",
)
async def delete_connected_account(
    principal: CurrentPrincipal, session: SessionDep, resources: ResourcesDep
) -> ConnectedAccountRead:
    return await subscriptions.set_connected_account(session, principal, None, resources.settings)


@router.post(
    "/stripe/webhook",
    status_code=status.HTTP_200_OK,
    responses=responses(503),
    summary="Stripe's webhook: verified on the raw body, stored once, processed by a job",
)
async def stripe_webhook(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    stripe_signature: str | None = Header(default=None, alias="Stripe-Signature"),
) -> WebhookReceived:
    payload = await request.body()
    event_id, duplicate = await subscriptions.receive_webhook(
        session, payload, stripe_signature, resources.settings
    )
    if not duplicate:
        enqueue_after_commit(
            session, "process_stripe_event", event_id, job_id=f"stripe-event:{event_id}"
        )
    return WebhookReceived(received=True, duplicate=duplicate)
