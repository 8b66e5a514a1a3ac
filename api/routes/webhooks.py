"""Outbound webhooks: endpoints (URL, event types, signing secret) and their deliveries."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, ResourcesDep, SessionDep, tagged
from api.pagination import Cursor
from api.problems import responses
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from partners.schemas import (
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)
from partners.service import webhooks
from social.kit import kit_of

router = APIRouter(tags=["webhooks"])


@router.get("/webhook-endpoints", summary="List webhook endpoints")
async def list_webhook_endpoints(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[WebhookEndpointRead]:
    return await webhooks.list_endpoints(session, principal, limit=limit, cursor=cursor)


@router.post(
    "/webhook-endpoints",
    status_code=status.HTTP_201_CREATED,
    responses=responses(503),
    summary="Add a webhook endpoint: answers its signing secret",
)
async def create_webhook_endpoint(
    body: WebhookEndpointCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
) -> WebhookEndpointWithSecret:
    created = await webhooks.create_endpoint(
        session, principal, kit_of(resources).vault, resources.settings, body
    )
    tagged(response, created)
    response.headers["Cache-Control"] = "no-store"
    return created


@router.get("/webhook-endpoints/{endpoint_id}", summary="Read a webhook endpoint")
async def get_webhook_endpoint(
    endpoint_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> WebhookEndpointRead:
    endpoint = await webhooks.get_endpoint(session, principal, endpoint_id)
    return tagged(response, webhooks.read_endpoint(endpoint))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    responses=responses(412),
    summary="Change a webhook endpoint, or enable/disable it",
)
async def update_webhook_endpoint(
    endpoint_id: uuid.UUID,
    body: WebhookEndpointUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
) -> WebhookEndpointRead:
    endpoint = await webhooks.update_endpoint(
        session, principal, resources.settings, endpoint_id, body, if_match
    )
    return tagged(response, webhooks.read_endpoint(endpoint))


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    responses=responses(412, 503),
    summary="Replace the endpoint's signing secret: answers the new one",
)
async def rotate_webhook_endpoint_secret(
    endpoint_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
) -> WebhookEndpointWithSecret:
    rotated = await webhooks.rotate_secret(
        session, principal, kit_of(resources).vault, endpoint_id, if_match
    )
    tagged(response, rotated)
    response.headers["Cache-Control"] = "no-store"
    return rotated


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(412),
    summary="Delete a webhook endpoint and its delivery history",
)
async def delete_webhook_endpoint(
    endpoint_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, if_match: IfMatch
) -> None:
    await webhooks.delete_endpoint(session, principal, endpoint_id, if_match)


@router.get("/webhook-deliveries", summary="Delivery attempts, newest first")
async def list_webhook_deliveries(
    principal: CurrentPrincipal,
    session: SessionDep,
    endpoint_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
    delivery_status: Annotated[
        Literal["pending", "succeeded", "failed"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[WebhookDeliveryRead]:
    return await webhooks.list_deliveries(
        session,
        principal,
        endpoint_id=endpoint_id,
        status=delivery_status,
        event_id=event_id,
        cursor=cursor,
        limit=limit,
    )


@router.get("/webhook-deliveries/{delivery_id}", summary="One delivery with its attempts")
async def get_webhook_delivery(
    delivery_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> WebhookDeliveryRead:
    return webhooks.read_delivery(await webhooks.get_delivery(session, principal, delivery_id))


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(409),
    summary="Send a delivery's event again (same webhook-id) as a new delivery",
)
async def replay_webhook_delivery(
    delivery_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> WebhookDeliveryRead:
    return webhooks.read_delivery(await webhooks.replay_delivery(session, principal, delivery_id))
