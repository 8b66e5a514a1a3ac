"""Inbox items for tests, stored the way the worker stores what a platform sent: through the
ingest service, in the agency's own transaction (RLS on)."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

from inbox.jobs import SEND_JOB, send_job_id
from inbox.models import InboxItem
from inbox.service import ingest
from infra.clock import utcnow
from infra.queue import create_queue
from infra.settings import get_settings
from social.connectors.types import InboundItem, InboxKind
from social.models import SocialAccount
from tenants.models import Tenant

_serial = itertools.count(1)


def inbound(
    account_external_id: str,
    text: str = "Bonjour, est-ce que la boutique est ouverte dimanche?",
    *,
    kind: InboxKind = InboxKind.comment,
    external_id: str | None = None,
    author_id: str | None = None,
    author_name: str | None = "Marie Tremblay",
    author_handle: str | None = "marie.t",
    created_at: datetime | None = None,
    parent: str | None = None,
    thread: str | None = "post-1",
    **extra: Any,
) -> InboundItem:
    n = next(_serial)
    return InboundItem(
        account_external_id=account_external_id,
        external_id=external_id or f"c-{n}-{uuid.uuid4().hex[:8]}",
        kind=kind,
        text=text,
        author_id=author_id or f"u-{n}",
        author_name=author_name,
        author_handle=author_handle,
        created_at=created_at or utcnow(),
        parent_external_id=parent,
        thread_external_id=thread,
        **extra,
    )


async def store(
    db: Any, tenant_id: uuid.UUID, account_id: uuid.UUID, *items: InboundItem
) -> list[InboxItem]:
    """Store items on an account as the worker would; answers the rows (new or existing)."""
    now = utcnow()
    async with db.tenant_transaction(tenant_id) as session:
        account = await session.get(SocialAccount, (tenant_id, account_id))
        tenant = await session.get(Tenant, tenant_id)
        assert account is not None and tenant is not None
        context = await ingest.context_for(session, account, now, tenant.timezone)
        assert context is not None
        stored = await ingest.store(session, context, list(items), now)
        queued = ingest.queued_actions(session)
    if queued:
        # As the worker does once the items are stored: actions rules queued are sent.
        queue = await create_queue(str(get_settings().redis_url))
        try:
            for action in queued:
                await queue.enqueue_job(
                    SEND_JOB, str(action.tenant_id), str(action.id), _job_id=send_job_id(action)
                )
        finally:
            await queue.aclose()
    return [s.item for s in stored]


async def seed_item(
    db: Any, tenant_id: uuid.UUID, account_id: uuid.UUID, text: str | None = None, **kw: Any
) -> InboxItem:
    async with db.tenant_transaction(tenant_id) as session:
        account = await session.get(SocialAccount, (tenant_id, account_id))
        assert account is not None
        external = account.external_id
    [item] = await store(
        db, tenant_id, account_id, inbound(external, text or "Allo! Vous livrez à Laval?", **kw)
    )
    return item
