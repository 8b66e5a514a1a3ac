"""Retention: raw records are deleted once past the period their setting gives.

Raw webhook events (platforms' and Stripe's, once processed) are not tenant-owned; the logs of
partner webhook deliveries and the inbox's items are, and go in each agency's own transaction.
A closed agency's invoice archive goes once its `keep_until` has passed. Deletions run in
batches, each its own transaction, so a large backlog never holds locks for long.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.subscription.models import StripeEvent
from inbox.models import InboxAction, InboxItem, PlatformEvent
from infra.clock import utcnow
from infra.db import Database
from infra.logging import get_logger
from infra.settings import Settings
from infra.sweep import due_tenants
from partners.models import DeliveryStatus, WebhookDelivery
from privacy.models import InvoiceArchive
from tenants.models import Tenant

log = get_logger(__name__)

BATCH = 1000


@asynccontextmanager
async def _transaction(db: Database, tenant_id: uuid.UUID | None) -> AsyncIterator[AsyncSession]:
    if tenant_id is not None:
        async with db.tenant_transaction(tenant_id) as session:
            yield session
        return
    async with db.session() as session, session.begin():
        yield session


async def _delete_batches(
    db: Database,
    table: Table,
    where: ColumnElement[bool],
    key: list[Any],
    tenant_id: uuid.UUID | None = None,
    before: Callable[[AsyncSession, list[Any]], Any] | None = None,
) -> int:
    """Deletes the matching rows, BATCH at a time, each batch in its own transaction."""
    total = 0
    while True:
        async with _transaction(db, tenant_id) as session:
            found = await session.execute(select(*key).where(where).limit(BATCH))
            keys = [tuple(row) for row in found.all()]
            if keys:
                if before is not None:
                    await before(session, keys)
                await session.execute(delete(table).where(tuple_(*key).in_(keys)))
        total += len(keys)
        if len(keys) < BATCH:
            return total


async def apply_retention(db: Database, settings: Settings) -> dict[str, int]:
    """One pass over every retention rule; answers the rows deleted per table."""
    now = utcnow()

    def days_ago(days: int) -> datetime:
        return now - timedelta(days=days)

    raw_cutoff = days_ago(settings.retention_raw_events_days)
    counts = {
        "platform_events": await _delete_batches(
            db,
            PlatformEvent.__table__,  # type: ignore[attr-defined]
            (
                (col(PlatformEvent.received_at) < raw_cutoff)
                & col(PlatformEvent.processed_at).is_not(None)
            ),
            [col(PlatformEvent.id)],
        ),
        "stripe_events": await _delete_batches(
            db,
            StripeEvent.__table__,  # type: ignore[attr-defined]
            (
                (col(StripeEvent.received_at) < raw_cutoff)
                & col(StripeEvent.processed_at).is_not(None)
            ),
            [col(StripeEvent.id)],
        ),
        "webhook_deliveries": 0,
        "inbox_items": 0,
        "invoice_archives": 0,
    }
    deliveries_cutoff = days_ago(settings.retention_webhook_deliveries_days)
    items_cutoff = days_ago(settings.retention_inbox_items_days)
    tenants = await due_tenants(db, select(Tenant.id))

    async def drop_actions(session: AsyncSession, keys: list[Any]) -> None:
        await session.execute(
            delete(InboxAction).where(
                tuple_(col(InboxAction.tenant_id), col(InboxAction.item_id)).in_(keys)
            )
        )

    for (tenant_id,) in tenants:
        try:
            counts["webhook_deliveries"] += await _delete_batches(
                db,
                WebhookDelivery.__table__,  # type: ignore[attr-defined]
                (
                    (col(WebhookDelivery.tenant_id) == tenant_id)
                    & (col(WebhookDelivery.created_at) < deliveries_cutoff)
                    & (col(WebhookDelivery.status) != DeliveryStatus.pending.value)
                ),
                [col(WebhookDelivery.tenant_id), col(WebhookDelivery.id)],
                tenant_id,
            )
            counts["inbox_items"] += await _delete_batches(
                db,
                InboxItem.__table__,  # type: ignore[attr-defined]
                (
                    (col(InboxItem.tenant_id) == tenant_id)
                    & (col(InboxItem.received_at) < items_cutoff)
                ),
                [col(InboxItem.tenant_id), col(InboxItem.id)],
                tenant_id,
                before=drop_actions,
            )
            counts["invoice_archives"] += await _delete_batches(
                db,
                InvoiceArchive.__table__,  # type: ignore[attr-defined]
                (
                    (col(InvoiceArchive.tenant_id) == tenant_id)
                    & (col(InvoiceArchive.keep_until) < now)
                ),
                [col(InvoiceArchive.tenant_id), col(InvoiceArchive.id)],
                tenant_id,
            )
        except Exception:
            log.exception("privacy.retention_failed", tenant_id=str(tenant_id))
    log.info("privacy.retention", **counts)
    return counts
