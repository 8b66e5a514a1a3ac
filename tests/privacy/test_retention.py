"""Retention: each kind of raw record goes once past its setting's period, in every agency,
and not a day sooner; a closed agency's invoice archive goes at its `keep_until`."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from billing.subscription.models import StripeEvent
from inbox.models import InboxItem, PlatformEvent
from partners.models import WebhookDelivery, WebhookEndpoint
from privacy import jobs
from privacy.models import InvoiceArchive
from social.models import SocialAccount
from tests.support.factories import new_world

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


def around(days: int) -> tuple[datetime, datetime]:
    """A moment a day past the period, and one a day within it."""
    return NOW - timedelta(days=days + 1), NOW - timedelta(days=days - 1)


async def seed_raw(db, settings) -> dict[str, tuple[object, object]]:
    """One old and one young raw event of each kind: (id of the old, id of the young)."""
    old, young = around(settings.retention_raw_events_days)
    made: dict[str, tuple[object, object]] = {}
    async with db.session() as session, session.begin():
        pair = []
        for at in (old, young):
            event = PlatformEvent(
                platform="meta",
                digest=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
                body={"entry": []},
                received_at=at,
                processed_at=at,
            )
            session.add(event)
            pair.append(event.id)
        made["platform_events"] = (pair[0], pair[1])
        pair = []
        for at in (old, young):
            stripe_event = StripeEvent(
                id=f"evt_{uuid.uuid4().hex}",
                type="invoice.paid",
                created=int(at.timestamp()),
                received_at=at,
                processed_at=at,
            )
            session.add(stripe_event)
            pair.append(stripe_event.id)
        made["stripe_events"] = (pair[0], pair[1])
    return made


async def seed_tenant(db, settings, world) -> dict[str, tuple[object, object]]:
    tenant_id = world.agency.tenant_id
    made: dict[str, tuple[object, object]] = {}
    async with db.tenant_transaction(tenant_id) as session:
        endpoint = WebhookEndpoint(
            tenant_id=tenant_id, url="https://example.com/hook", secret=b"sealed"
        )
        account = SocialAccount(
            tenant_id=tenant_id,
            brand_id=uuid.UUID(world.brands["brand"]["id"]),
            platform="sandbox",
            external_id=f"acct-{uuid.uuid4().hex[:8]}",
        )
        session.add_all([endpoint, account])
        await session.flush()
        pair = []
        for at in around(settings.retention_webhook_deliveries_days):
            delivery = WebhookDelivery(
                tenant_id=tenant_id,
                endpoint_id=endpoint.id,
                event_id=uuid.uuid4(),
                event_type="content.approved",
                status="succeeded",
                created_at=at,
            )
            session.add(delivery)
            pair.append(delivery.id)
        made["webhook_deliveries"] = (pair[0], pair[1])
        # A delivery still pending is kept however old: it is work, not a log.
        pending = WebhookDelivery(
            tenant_id=tenant_id,
            endpoint_id=endpoint.id,
            event_id=uuid.uuid4(),
            event_type="content.approved",
            status="pending",
            created_at=NOW - timedelta(days=3650),
        )
        session.add(pending)
        made["pending_delivery"] = (None, pending.id)
        pair = []
        for at in around(settings.retention_inbox_items_days):
            item = InboxItem(
                tenant_id=tenant_id,
                social_account_id=account.id,
                brand_id=uuid.UUID(world.brands["brand"]["id"]),
                client_id=uuid.UUID(world.customer["id"]),
                platform="sandbox",
                kind="comment",
                external_id=f"c-{uuid.uuid4().hex}",
                author_id="someone",
                text="Bonjour",
                platform_created_at=at,
                received_at=at,
            )
            session.add(item)
            pair.append(item.id)
        made["inbox_items"] = (pair[0], pair[1])
        pair = []
        for keep_until in (NOW - timedelta(days=1), NOW + timedelta(days=1)):
            archive = InvoiceArchive(
                tenant_id=tenant_id,
                invoice_id=uuid.uuid4(),
                number="F-1",
                month=date(2025, 1, 1),
                client_name="Client",
                keep_until=keep_until,
            )
            session.add(archive)
            pair.append(archive.id)
        made["invoice_archives"] = (pair[0], pair[1])
    return made


async def exists(db, tenant_id, table: str, key) -> bool:
    column = "id"
    if tenant_id is None:
        async with db.session() as session:
            found = await session.scalar(
                text(f"SELECT count(*) FROM {table} WHERE {column} = :k"),
                {"k": key},
            )
    else:
        async with db.tenant_transaction(tenant_id) as session:
            found = await session.scalar(
                text(f"SELECT count(*) FROM {table} WHERE {column} = :k"),
                {"k": key},
            )
    return bool(found)


async def test_retention_deletes_what_is_past_its_period(client, db, settings, clock):
    worlds = [await new_world(client), await new_world(client)]
    raw = await seed_raw(db, settings)
    seeded = [await seed_tenant(db, settings, world) for world in worlds]
    clock.set(NOW)

    counts = await jobs.apply_retention({"db": db, "settings": settings})

    for table, (old, young) in raw.items():
        assert not await exists(db, None, table, old), table
        assert await exists(db, None, table, young), table
    for world, made in zip(worlds, seeded, strict=True):
        for table, (old, young) in made.items():
            name = "webhook_deliveries" if table == "pending_delivery" else table
            if old is not None:
                assert not await exists(db, world.agency.tenant_id, name, old), table
            assert await exists(db, world.agency.tenant_id, name, young), table
    for table in ("webhook_deliveries", "inbox_items", "invoice_archives"):
        assert counts[table] >= 2, (table, counts)

    # A second pass finds nothing more of these.
    again = await jobs.apply_retention({"db": db, "settings": settings})
    assert again["invoice_archives"] == 0 and again["inbox_items"] == 0
