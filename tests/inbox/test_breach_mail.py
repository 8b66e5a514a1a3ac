"""A response target missed: the per-minute sweep marks the item breached once, emits
`inbox.sla_breached` once, and the assignee and the brand's lead each get one e-mail in their
own language, even when the outbox delivers the event again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import func
from sqlmodel import col, select

from devtools.smtp import text_of
from inbox.jobs import mail_sla_breached, sweep_inbox
from inbox.models import InboxItem, ResponsePolicyRow
from inbox.sla import ResponsePolicy
from infra.outbox import Event
from tests.support.factories import add_person, login, new_world
from tests.support.inbox import inbound, store
from tests.support.publishing import sandbox_account
from tests.support.worker import deliver_events

# A Friday, 16:59 in Montréal (EDT): a one-business-hour target runs out on Monday at 9:59.
# Before any date the other tests' inboxes use (the demo's is today's): the sweep walks every
# agency of the shared database, and only this test's item may be due.
FRIDAY_1659 = datetime(2026, 5, 8, 20, 59, tzinfo=UTC)
DUE = datetime(2026, 5, 11, 13, 59, tzinfo=UTC)


async def _minute(db, resources, settings, tenant_id) -> None:
    """What the worker does each minute for the inbox and the outbox."""
    ctx = {"db": db, "redis": resources.queue, "settings": settings}
    await sweep_inbox(ctx)
    await deliver_events(resources, settings, tenant_id)


async def _breached_at(db, world, item: InboxItem) -> datetime | None:
    async with db.tenant_transaction(world.tenant_id) as session:
        found = await session.get(InboxItem, (world.tenant_id, item.id))
        assert found is not None
        return found.sla_breached_at


async def test_a_breach_is_marked_once_and_mailed_to_the_assignee_and_the_lead(
    client, db, resources, settings, clock, mailbox
):
    clock.set(FRIDAY_1659 - timedelta(minutes=5))
    world = await new_world(client, brands={"cafe": {"name": "Café Soleil"}})
    account = uuid.UUID(await sandbox_account(client, world, "cafe"))
    external = (await client.get(f"/v1/social-accounts/{account}", headers=world.boss)).json()[
        "external_id"
    ]
    async with db.tenant_transaction(world.tenant_id) as session:
        session.add(
            ResponsePolicyRow(
                tenant_id=world.tenant_id,
                client_id=uuid.UUID(world.customer["id"]),
                policy=ResponsePolicy(
                    first_response_minutes=60,
                    next_response_minutes=120,
                    timezone="America/Montreal",
                ).to_json(),
            )
        )
    # The owner (who writes French) leads the brand; the member (English) will hold the item;
    # a manager who is neither hears nothing.
    lead = await client.post(
        "/v1/assignments",
        json={
            "brand_id": world.brands["cafe"]["id"],
            "user_id": str(world.owner.user_id),
            "role": "lead",
            "start_date": "2026-01-01",
        },
        headers=world.boss,
    )
    assert lead.status_code == 201, lead.text
    member = await add_person(client, db, resources.passwords, world.agency, "member")
    manager = await add_person(client, db, resources.passwords, world.agency, "manager")

    clock.set(FRIDAY_1659, tick=False)
    [item] = await store(
        db,
        world.tenant_id,
        account,
        inbound(
            external,
            "Ma commande n'est jamais arrivée, c'est inacceptable",
            author_handle="marie.t",
            created_at=FRIDAY_1659,
        ),
    )
    given = await client.post(
        f"/v1/inbox/{item.id}/assign",
        json={"assignee_id": str(member.user_id)},
        headers=world.boss,
    )
    assert given.status_code == 200, given.text

    def breaches() -> float:  # the operator's count (infra/metrics.py), in this process
        return REGISTRY.get_sample_value("passerelle_inbox_sla_breaches_total") or 0.0

    # A minute before the deadline: nothing is breached, nobody is told.
    clock.set(DUE - timedelta(minutes=1), tick=False)
    counted = breaches()
    await _minute(db, resources, settings, world.tenant_id)
    assert await _breached_at(db, world, item) is None
    assert mailbox.to(member.email) == [] and mailbox.to(world.owner.email) == []
    assert breaches() == counted

    clock.set(DUE, tick=False)
    await _minute(db, resources, settings, world.tenant_id)
    assert await _breached_at(db, world, item) == DUE
    assert breaches() == counted + 1

    [to_member] = await mailbox.wait_for(member.email)
    assert to_member["Content-Language"] == "en"
    assert str(to_member["Subject"]) == "Response target missed: Café Soleil on Sandbox"
    body = text_of(to_member)
    assert "A comment from @marie.t on Café Soleil's Sandbox account" in body
    assert "2026-05-11 09:59 (America/Montreal)" in body
    assert "Ma commande n'est jamais arrivée" in body
    assert f"/inbox/{item.id}" in body

    [to_lead] = await mailbox.wait_for(world.owner.email)
    assert to_lead["Content-Language"] == "fr"
    assert str(to_lead["Subject"]) == "Délai de réponse dépassé : Café Soleil sur Sandbox"
    assert "Un commentaire de @marie.t sur le compte Sandbox de Café Soleil" in text_of(to_lead)
    assert mailbox.to(manager.email) == []

    # Minutes later the sweep finds nothing new to mark; and should the outbox deliver the
    # event again (a later handler failed), nobody gets a second e-mail.
    clock.set(DUE + timedelta(minutes=3), tick=False)
    await _minute(db, resources, settings, world.tenant_id)
    assert breaches() == counted + 1
    async with db.tenant_transaction(world.tenant_id) as session:
        events = (
            await session.scalars(
                select(Event).where(
                    Event.tenant_id == world.tenant_id,
                    Event.type == "inbox.sla_breached",
                    Event.aggregate_id == item.id,
                )
            )
        ).all()
        pending = await session.scalar(
            select(func.count()).where(
                col(Event.tenant_id) == world.tenant_id, col(Event.status) == "pending"
            )
        )
    [event] = events
    assert event.status == "delivered" and pending == 0
    await mail_sla_breached({"db": db, "redis": resources.queue, "settings": settings}, event)
    assert len(mailbox.to(member.email)) == 1
    assert len(mailbox.to(world.owner.email)) == 1

    world.agency.owner.access_token = (
        await login(client, world.owner.email, tenant=world.agency.slug)
    )["access_token"]
    seen = (await client.get(f"/v1/inbox/{item.id}", headers=world.boss)).json()
    assert seen["sla"] == "breached"
