"""Webhook endpoints and their deliveries, as the agency and its partner apps see them.

Owners and admins manage every endpoint of the agency; a partner app (scope
`webhooks:manage`) manages only the endpoints it created, and sees only their deliveries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.pagination import Keyset, Page, SortKey, id_key
from infra.queue import enqueue_after_commit
from infra.ssrf import Target, UnsafeUrl, parse_networks, resolve
from infra.vault import TokenVault
from partners import errors
from partners.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from partners.schemas import (
    DeliveryAttempt,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)
from partners.signing import new_webhook_secret
from tenants.errors import PermissionDenied
from tenants.models import Role
from tenants.principal import Principal
from tenants.service.common import check_version, load_readable, record_audit, record_update

DELIVER_JOB = "deliver_webhook"


def delivery_job_id(delivery_id: uuid.UUID, attempt: int) -> str:
    return f"webhook:{delivery_id}:{attempt}"


def _require_manager(principal: Principal) -> None:
    if principal.kind == "partner":
        return  # the route's scope (webhooks:manage) was checked before the route ran
    if principal.role not in (Role.owner, Role.admin):
        raise PermissionDenied("Only the agency's owners and admins manage webhooks.")


def _visible(principal: Principal) -> Any:
    """Endpoints this principal reaches: its own for a partner app, all for admins."""
    where = col(WebhookEndpoint.tenant_id) == principal.tenant_id
    if principal.kind == "partner":
        where = and_(where, col(WebhookEndpoint.partner_app_id) == principal.app_id)
    return where


def readable_endpoints(principal: Principal) -> Select[Any]:
    """The endpoints a webhook manager reaches (see _visible)."""
    _require_manager(principal)
    return select(WebhookEndpoint).where(_visible(principal))


def read_endpoint(endpoint: WebhookEndpoint) -> WebhookEndpointRead:
    return WebhookEndpointRead.model_validate(endpoint, from_attributes=True)


# The generic guard's words, as partners have always read them for webhooks.
_WEBHOOK_WORDING = {
    "private": (
        "The URL resolves to a private, loopback, link-local or reserved address; webhooks "
        "go to public addresses only."
    ),
    "scheme": "Webhook URLs use http or https.",
}


async def resolve_webhook_url(url: str, settings: Any) -> Target:
    """The checked address to deliver to; UnsafeWebhookUrl (422) when the URL may not be
    reached (see infra.ssrf)."""
    try:
        return await resolve(url, parse_networks(settings.webhook_allowed_networks))
    except UnsafeUrl as exc:
        raise errors.UnsafeWebhookUrl(_WEBHOOK_WORDING.get(exc.reason, exc.message)) from None


async def _check_url(url: str, settings: Any) -> None:
    await resolve_webhook_url(url, settings)


async def create_endpoint(
    session: AsyncSession,
    principal: Principal,
    vault: TokenVault,
    settings: Any,
    data: WebhookEndpointCreate,
) -> WebhookEndpointWithSecret:
    _require_manager(principal)
    await _check_url(data.url, settings)
    secret = new_webhook_secret()
    endpoint = WebhookEndpoint(
        tenant_id=principal.tenant_id,
        url=data.url,
        description=data.description,
        event_types=[e.value for e in data.event_types],
        secret=vault.encrypt(secret) or b"",
        created_by=principal.user_id if principal.kind == "user" else None,
        partner_app_id=principal.app_id,
    )
    session.add(endpoint)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="webhook_endpoint.created",
        subject_type="webhook_endpoint",
        subject_id=endpoint.id,
        changes={"url": endpoint.url, "event_types": endpoint.event_types},
    )
    await session.flush()
    return WebhookEndpointWithSecret(**read_endpoint(endpoint).model_dump(), secret=secret)


async def get_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint: WebhookEndpoint = await load_readable(
        session,
        readable_endpoints(principal).where(col(WebhookEndpoint.id) == endpoint_id),
        missing=errors.WebhookEndpointNotFound("No such webhook endpoint in this agency."),
    )
    return endpoint


ENDPOINT_ORDER = Keyset(
    "endpoints",
    (
        SortKey(col(WebhookEndpoint.created_at), lambda e: e.created_at, datetime.fromisoformat),
        SortKey(col(WebhookEndpoint.id), lambda e: e.id, uuid.UUID),
    ),
)


async def list_endpoints(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> Page[WebhookEndpointRead]:
    """Oldest first."""
    query = ENDPOINT_ORDER.apply(readable_endpoints(principal), cursor=cursor, limit=limit)
    rows, next_page = ENDPOINT_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[read_endpoint(e) for e in rows], next_cursor=next_page)


async def update_endpoint(
    session: AsyncSession,
    principal: Principal,
    settings: Any,
    endpoint_id: uuid.UUID,
    data: WebhookEndpointUpdate,
    if_match: int | None,
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, principal, endpoint_id)
    check_version(endpoint.version, if_match)
    changes: dict[str, Any] = {}
    if data.url is not None and data.url != endpoint.url:
        await _check_url(data.url, settings)
        changes["url"] = endpoint.url = data.url
    if data.event_types is not None:
        types = [e.value for e in data.event_types]
        if types != endpoint.event_types:
            changes["event_types"] = endpoint.event_types = types
    if "description" in data.model_fields_set and data.description != endpoint.description:
        changes["description"] = endpoint.description = data.description
    if data.status is not None and data.status != endpoint.status:
        changes["status"] = endpoint.status = data.status
        if data.status == EndpointStatus.enabled:
            endpoint.disabled_at = None
            endpoint.disabled_reason = None
        else:
            endpoint.disabled_at = utcnow()
            endpoint.disabled_reason = "Disabled by the agency."
    if changes:
        record_update(
            session,
            principal,
            endpoint,
            action="webhook_endpoint.updated",
            subject_type="webhook_endpoint",
            changes=changes,
        )
        await session.flush()
    return endpoint


async def rotate_secret(
    session: AsyncSession,
    principal: Principal,
    vault: TokenVault,
    endpoint_id: uuid.UUID,
    if_match: int | None,
) -> WebhookEndpointWithSecret:
    endpoint = await get_endpoint(session, principal, endpoint_id)
    check_version(endpoint.version, if_match)
    secret = new_webhook_secret()
    endpoint.secret = vault.encrypt(secret) or b""
    record_update(
        session,
        principal,
        endpoint,
        action="webhook_endpoint.secret_rotated",
        subject_type="webhook_endpoint",
    )
    await session.flush()
    return WebhookEndpointWithSecret(**read_endpoint(endpoint).model_dump(), secret=secret)


async def delete_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID, if_match: int | None
) -> None:
    """Deleting an endpoint deletes its delivery history with it."""
    endpoint = await get_endpoint(session, principal, endpoint_id)
    check_version(endpoint.version, if_match)
    await session.execute(
        delete(WebhookDelivery).where(
            col(WebhookDelivery.tenant_id) == principal.tenant_id,
            col(WebhookDelivery.endpoint_id) == endpoint.id,
        )
    )
    await session.delete(endpoint)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="webhook_endpoint.deleted",
        subject_type="webhook_endpoint",
        subject_id=endpoint.id,
        changes={"url": endpoint.url},
    )
    await session.flush()


# ---------------------------------------------------------------------------------------------
# Deliveries


def read_delivery(delivery: WebhookDelivery) -> WebhookDeliveryRead:
    return WebhookDeliveryRead(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at
        if delivery.status == DeliveryStatus.pending
        else None,
        last_attempt_at=delivery.last_attempt_at,
        response_status=delivery.response_status,
        last_error=delivery.last_error,
        replay_of=delivery.replay_of,
        created_at=delivery.created_at,
        attempt_log=[DeliveryAttempt.model_validate(a) for a in delivery.attempt_log],
    )


def _deliveries_of_visible(principal: Principal) -> Any:
    return (
        select(WebhookDelivery)
        .join(
            WebhookEndpoint,
            and_(
                col(WebhookEndpoint.tenant_id) == col(WebhookDelivery.tenant_id),
                col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id),
            ),
        )
        .where(_visible(principal))
    )


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    *,
    endpoint_id: uuid.UUID | None,
    status: str | None,
    event_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Page[WebhookDeliveryRead]:
    """Newest first."""
    _require_manager(principal)
    query = _deliveries_of_visible(principal)
    if endpoint_id is not None:
        query = query.where(col(WebhookDelivery.endpoint_id) == endpoint_id)
    if status is not None:
        query = query.where(col(WebhookDelivery.status) == status)
    if event_id is not None:
        query = query.where(col(WebhookDelivery.event_id) == event_id)
    rows = (await session.scalars(DELIVERY_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, after = DELIVERY_ORDER.page(rows, limit=limit)
    return Page(items=[read_delivery(d) for d in page], next_cursor=after)


DELIVERY_ORDER = Keyset(
    "newest",
    [
        SortKey(
            col(WebhookDelivery.created_at),
            lambda d: d.created_at,
            datetime.fromisoformat,
            descending=True,
        ),
        id_key(col(WebhookDelivery.id), descending=True),
    ],
)


async def get_delivery(
    session: AsyncSession, principal: Principal, delivery_id: uuid.UUID
) -> WebhookDelivery:
    _require_manager(principal)
    delivery = await session.scalar(
        _deliveries_of_visible(principal).where(col(WebhookDelivery.id) == delivery_id)
    )
    if delivery is None:
        raise errors.WebhookDeliveryNotFound("No such webhook delivery in this agency.")
    assert isinstance(delivery, WebhookDelivery)
    return delivery


async def replay_delivery(
    session: AsyncSession, principal: Principal, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Sends the same event again (same `webhook-id`, fresh timestamp and signature) as a
    new delivery with its own attempts; the original stays as it was."""
    original = await get_delivery(session, principal, delivery_id)
    endpoint = await get_endpoint(session, principal, original.endpoint_id)
    if endpoint.status != EndpointStatus.enabled:
        raise errors.EndpointDisabled(
            "This endpoint is disabled; enable it (PATCH status=enabled) to replay."
        )
    now = utcnow()
    replay = WebhookDelivery(
        tenant_id=original.tenant_id,
        endpoint_id=original.endpoint_id,
        event_id=original.event_id,
        event_type=original.event_type,
        payload=original.payload,
        next_attempt_at=now,
        replay_of=original.id,
    )
    session.add(replay)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="webhook_delivery.replayed",
        subject_type="webhook_delivery",
        subject_id=original.id,
        changes={"replay_id": str(replay.id)},
    )
    await session.flush()
    enqueue_after_commit(
        session,
        DELIVER_JOB,
        str(replay.tenant_id),
        str(replay.id),
        job_id=delivery_job_id(replay.id, 1),
    )
    return replay
