"""Webhook delivery: outbox events fan out to the endpoints subscribed to them, and each
delivery is sent, signed, until it succeeds or its retries (about a day) run out.

A delivery is claimed by moving its `next_attempt_at` forward (a lease) before the request,
so the retry job and the sweeper never send the same attempt twice while it is in flight.
An endpoint whose delivery exhausts every retry, with no success since that delivery began,
is disabled and the agency's owners and admins get an e-mail.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Row, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.i18n import language as language_of
from infra.ids import new_id
from infra.logging import get_logger
from infra.mail import Mail, MailBatch
from infra.outbox import Event, record_event
from infra.settings import Settings
from infra.sweep import due_tenants, for_each_tenant
from infra.vault import TokenVault
from partners.errors import UnsafeWebhookUrl
from partners.events import PUBLISHED
from partners.models import DeliveryStatus, EndpointStatus, WebhookDelivery, WebhookEndpoint
from partners.service.webhooks import DELIVER_JOB, delivery_job_id, resolve_webhook_url
from partners.signing import signed_headers
from tenants.models import Membership, MembershipStatus, Role, Tenant, User
from tenants.service.common import bump

log = get_logger(__name__)

MAX_LOGGED_ATTEMPTS = 20
ENDPOINT_DISABLED = "webhook_endpoint.disabled"


def envelope(event: Event) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.type,
        "timestamp": event.created_at.isoformat(),
        "data": event.payload,
    }


async def _subscriptions(
    ctx: dict[str, Any], tenant_id: uuid.UUID
) -> list[tuple[uuid.UUID, list[str]]]:
    """The agency's enabled endpoints with the event types each takes: read once per batch of
    events (see `outbox.BATCH_MEMO`), not in a transaction per event. An endpoint disabled
    since is still skipped: each delivery checks its endpoint before sending."""
    memo: dict[Any, Any] | None = ctx.get(outbox.BATCH_MEMO)
    key = ("partners.subscriptions", tenant_id)
    if memo is not None and key in memo:
        return memo[key]  # type: ignore[no-any-return]
    db: Database = ctx["db"]
    async with db.tenant_transaction(tenant_id) as session:
        rows = (
            await session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
                    col(WebhookEndpoint.tenant_id) == tenant_id,
                    col(WebhookEndpoint.status) == EndpointStatus.enabled.value,
                )
            )
        ).all()
    found = [(endpoint_id, list(types)) for endpoint_id, types in rows]
    if memo is not None:
        memo[key] = found
    return found


@outbox.handler("*")
async def fan_out(ctx: dict[str, Any], event: Event) -> None:
    """One delivery per subscribed, enabled endpoint; a repeated event makes none twice."""
    if event.type not in PUBLISHED:
        return
    endpoint_ids = [
        endpoint_id
        for endpoint_id, types in await _subscriptions(ctx, event.tenant_id)
        if event.type in types
    ]
    if not endpoint_ids:
        return
    db: Database = ctx["db"]
    async with db.tenant_transaction(event.tenant_id) as session:
        now = utcnow()
        created = (
            await session.scalars(
                insert(WebhookDelivery)
                .values(
                    [
                        {
                            "tenant_id": event.tenant_id,
                            "id": new_id(),
                            "endpoint_id": endpoint_id,
                            "event_id": event.id,
                            "event_type": event.type,
                            "payload": envelope(event),
                            "status": DeliveryStatus.pending.value,
                            "next_attempt_at": now,
                            "attempt_log": [],
                            # Compared with the endpoint's last success (application time)
                            # when the delivery fails: not the database's clock.
                            "created_at": now,
                        }
                        for endpoint_id in endpoint_ids
                    ]
                )
                .on_conflict_do_nothing(
                    index_elements=["tenant_id", "endpoint_id", "event_id"],
                    index_where=text("replay_of IS NULL"),
                )
                .returning(col(WebhookDelivery.id))
            )
        ).all()
    for delivery_id in created:
        await ctx["redis"].enqueue_job(
            DELIVER_JOB,
            str(event.tenant_id),
            str(delivery_id),
            _job_id=delivery_job_id(delivery_id, 1),
        )


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.webhook_timeout_seconds + 30)


async def deliver_webhook(ctx: dict[str, Any], tenant_id: str, delivery_id: str) -> str:
    """arq job: one attempt of one delivery. Answers what happened (for logs and tests)."""
    settings: Settings = ctx["settings"]
    db: Database = ctx["db"]
    tenant, ident = uuid.UUID(tenant_id), uuid.UUID(delivery_id)
    now = utcnow()
    async with db.tenant_transaction(tenant) as session:
        claimed = (
            await session.execute(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.tenant_id) == tenant,
                    col(WebhookDelivery.id) == ident,
                    col(WebhookDelivery.status) == DeliveryStatus.pending.value,
                    col(WebhookDelivery.next_attempt_at) <= now,
                )
                .values(next_attempt_at=now + _lease(settings))
                .returning(col(WebhookDelivery.endpoint_id))
            )
        ).first()
        if claimed is None:
            return "not-due"
        delivery = await session.get(WebhookDelivery, (tenant, ident))
        endpoint = await session.get(WebhookEndpoint, (tenant, claimed.endpoint_id))
        assert delivery is not None and endpoint is not None
        url, status = endpoint.url, endpoint.status
        secret_box = endpoint.secret
        payload, event_id, attempt = delivery.payload, delivery.event_id, delivery.attempts + 1
        created_at = delivery.created_at
    if status != EndpointStatus.enabled:
        await _finish(
            ctx, tenant, ident, attempt, None, "The endpoint is disabled.", 0, give_up=True
        )
        return "endpoint-disabled"

    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    started = time.monotonic()
    response_status: int | None = None
    error: str | None = None
    try:
        target = await resolve_webhook_url(url, settings)
        secret = TokenVault.from_secret(settings.token_encryption_keys).decrypt(secret_box)
        assert secret is not None
        headers = signed_headers(secret, str(event_id), int(utcnow().timestamp()), body)
        headers["host"] = target.host_header
        headers["user-agent"] = "Passerelle-Webhooks/1.0"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client: httpx.AsyncClient = ctx["webhook_http"]
        # One deadline for the whole attempt (httpx's timeout bounds each read, so a
        # receiver trickling bytes could hold it past the lease); the answer's body is
        # never read, so its size does not matter.
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            async with client.stream(
                "POST", target.pinned_url, content=body, headers=headers, extensions=extensions
            ) as response:
                response_status = response.status_code
        if 300 <= response_status < 400:
            error = "The endpoint answered a redirect; redirects are not followed."
        elif not 200 <= response_status < 300:
            error = f"The endpoint answered HTTP {response_status}."
    except UnsafeWebhookUrl as exc:
        error = exc.detail or exc.title
    except (httpx.TimeoutException, TimeoutError):
        response_status = None
        error = f"No answer within {settings.webhook_timeout_seconds:g} seconds."
    except httpx.HTTPError as exc:
        error = f"Could not reach the endpoint ({type(exc).__name__})."
    duration_ms = int((time.monotonic() - started) * 1000)
    outcome = await _finish(
        ctx, tenant, ident, attempt, response_status, error, duration_ms, created_at=created_at
    )
    return outcome


async def _finish(
    ctx: dict[str, Any],
    tenant: uuid.UUID,
    ident: uuid.UUID,
    attempt: int,
    response_status: int | None,
    error: str | None,
    duration_ms: int,
    *,
    give_up: bool = False,
    created_at: Any = None,
) -> str:
    settings: Settings = ctx["settings"]
    db: Database = ctx["db"]
    schedule = settings.webhook_retry_schedule
    now = utcnow()
    retry_in: float | None = None
    async with db.tenant_transaction(tenant) as session:
        delivery = await session.get(WebhookDelivery, (tenant, ident), with_for_update=True)
        if delivery is None:  # the endpoint was deleted meanwhile
            return "gone"
        endpoint = await session.get(WebhookEndpoint, (tenant, delivery.endpoint_id))
        log_entry = {
            "at": now.isoformat(),
            "response_status": response_status,
            "error": error,
            "duration_ms": duration_ms,
        }
        delivery.attempt_log = [*delivery.attempt_log, log_entry][-MAX_LOGGED_ATTEMPTS:]
        delivery.attempts = attempt
        delivery.last_attempt_at = now
        delivery.response_status = response_status
        delivery.last_error = error
        delivery.updated_at = now
        if error is None:
            delivery.status = DeliveryStatus.succeeded
            delivery.next_attempt_at = None
            if endpoint is not None:
                endpoint.last_success_at = now
            outcome = "succeeded"
        elif not give_up and attempt <= len(schedule):
            retry_in = schedule[attempt - 1]
            delivery.next_attempt_at = now + timedelta(seconds=retry_in)
            if endpoint is not None:
                endpoint.last_failure_at = now
            outcome = "retrying"
        else:
            delivery.status = DeliveryStatus.failed
            delivery.next_attempt_at = None
            outcome = "failed"
            if endpoint is not None:
                endpoint.last_failure_at = now
                healthy_since = endpoint.last_success_at
                if (
                    not give_up
                    and endpoint.status == EndpointStatus.enabled
                    and (healthy_since is None or healthy_since < (created_at or now))
                ):
                    _disable(session, endpoint, now, error or "")
                    outcome = "failed-endpoint-disabled"
    if outcome == "failed-endpoint-disabled":
        # The e-mail's outbox event leaves now rather than on the next minute's sweep.
        await outbox.enqueue_delivery(ctx["redis"], tenant, job_key=f"webhook-disabled-{ident}")
    if retry_in is not None:
        await ctx["redis"].enqueue_job(
            DELIVER_JOB,
            str(tenant),
            str(ident),
            _job_id=delivery_job_id(ident, attempt + 1),
            _defer_by=timedelta(seconds=retry_in),
        )
    return outcome


def _disable(session: Any, endpoint: WebhookEndpoint, now: Any, error: str) -> None:
    endpoint.status = EndpointStatus.disabled
    endpoint.disabled_at = now
    endpoint.disabled_reason = (
        "Every retry of a delivery failed over about a day, with no success since. "
        f"Last error: {error}"
    )[:1000]
    bump(endpoint, at=now)
    record_event(
        session,
        tenant_id=endpoint.tenant_id,
        type=ENDPOINT_DISABLED,
        aggregate_type="webhook_endpoint",
        aggregate_id=endpoint.id,
        payload={"endpoint_id": str(endpoint.id), "url": endpoint.url, "reason": error},
    )


@outbox.handler(ENDPOINT_DISABLED)
async def mail_endpoint_disabled(ctx: dict[str, Any], event: Event) -> None:
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    async with db.tenant_transaction(event.tenant_id) as session:
        tenant = await session.get(Tenant, event.tenant_id)
        admins = (
            await session.execute(
                select(User.email, User.locale)
                .join(Membership, col(Membership.user_id) == col(User.id))
                .where(
                    col(Membership.tenant_id) == event.tenant_id,
                    col(Membership.role).in_([Role.owner, Role.admin]),
                    col(Membership.status) == MembershipStatus.active,
                )
            )
        ).all()
    agency = tenant.name if tenant else ""
    url = event.payload["url"]
    manage = f"{settings.app_base_url}/settings/webhooks/{event.payload['endpoint_id']}"
    batch = MailBatch(settings)
    for email, locale in sorted(set(admins)):
        lang = language_of(locale)
        if lang == "fr":
            subject = f"Webhook désactivé : {url}"
            body = (
                f"Les livraisons vers {url} ({agency}) échouent depuis environ un jour : "
                "le point de terminaison est désactivé. Réactivez-le une fois corrigé ; "
                "les livraisons manquées peuvent être rejouées."
            )
        else:
            subject = f"Webhook disabled: {url}"
            body = (
                f"Deliveries to {url} ({agency}) have failed for about a day, so the endpoint "
                "is disabled. Enable it again once it is fixed; missed deliveries can be "
                "replayed."
            )
        reason = str(event.payload.get("reason") or "")
        await batch.send(
            Mail(
                to=email,
                subject=subject,
                text=f"{body}\n\n{manage}\n\n{reason}\n",
                html=f'<p>{html.escape(body)}</p><p><a href="{html.escape(manage)}">'
                f"{html.escape(manage)}</a></p><p><small>{html.escape(reason)}</small></p>",
                language=lang,
            ),
        )
    batch.raise_refused()


async def sweep_webhooks(ctx: dict[str, Any]) -> int:
    """arq cron: re-queues due deliveries whose job was lost (a crash, a full queue)."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    cutoff = utcnow() - timedelta(seconds=30)
    tenants = await due_tenants(
        db, text("SELECT due_tenant_id FROM webhook_due_tenants(:cutoff)"), {"cutoff": cutoff}
    )

    async def pending(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[Row[uuid.UUID, int]]:
        return (
            await session.execute(
                select(WebhookDelivery.id, WebhookDelivery.attempts)
                .where(
                    col(WebhookDelivery.tenant_id) == tenant_id,
                    col(WebhookDelivery.status) == DeliveryStatus.pending.value,
                    col(WebhookDelivery.next_attempt_at) <= cutoff,
                )
                .limit(500)
            )
        ).all()

    queued = 0
    for tenant_id, due in await for_each_tenant(
        db, (tenant_id for (tenant_id,) in tenants), pending, failed="webhooks.sweep_failed"
    ):
        for delivery_id, attempts in due:
            job = await ctx["redis"].enqueue_job(
                DELIVER_JOB,
                str(tenant_id),
                str(delivery_id),
                _job_id=f"{delivery_job_id(delivery_id, attempts + 1)}:sweep",
            )
            queued += job is not None
    del settings
    return queued


def webhook_client(settings: Settings) -> httpx.AsyncClient:
    # No redirects, no proxies from the environment, bounded time: the target is untrusted.
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
    )
