"""What a platform sends becomes inbox items once each, under the right brand, with their
language, sentiment, rules and response deadline; replies leave through the worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from inbox.models import ResponsePolicyRow
from inbox.sla import ResponsePolicy
from social.connectors.types import InboxKind
from tests.support.factories import new_world
from tests.support.inbox import inbound, store
from tests.support.publishing import sandbox_account
from tests.support.worker import run_due_jobs

# A Friday, 16:59 in Montréal.
FRIDAY = datetime(2027, 5, 7, 20, 59, tzinfo=UTC)


async def _account(client, db, world) -> tuple[uuid.UUID, str]:
    account = uuid.UUID(await sandbox_account(client, world))
    response = await client.get(f"/v1/social-accounts/{account}", headers=world.boss)
    return account, response.json()["external_id"]


async def test_the_same_item_twice_is_one_and_a_reply_before_its_parent_is_attached(
    client, db, clock
):
    clock.set(FRIDAY)
    world = await new_world(client)
    account, external = await _account(client, db, world)
    reply = inbound(external, "Moi aussi!", kind=InboxKind.reply, parent="c-parent")
    parent = inbound(external, "C'est ouvert demain?", external_id="c-parent")
    await store(db, world.tenant_id, account, reply)
    await store(db, world.tenant_id, account, parent, parent, reply)
    listed = (await client.get("/v1/inbox", headers=world.boss)).json()["items"]
    assert sorted(i["external_id"] for i in listed) == sorted([reply.external_id, "c-parent"])
    by_id = {i["external_id"]: i for i in listed}
    assert by_id[reply.external_id]["parent_id"] == by_id["c-parent"]["id"]
    assert by_id["c-parent"]["language"] == "fr"


async def test_a_friday_1659_comment_is_due_monday_and_a_reply_goes_out_once(
    client, db, settings, clock
):
    clock.set(FRIDAY)
    world = await new_world(client)
    account, external = await _account(client, db, world)
    policy = ResponsePolicy(
        first_response_minutes=60, next_response_minutes=120, timezone="America/Montreal"
    )
    async with db.tenant_transaction(world.tenant_id) as session:
        session.add(
            ResponsePolicyRow(
                tenant_id=world.tenant_id,
                client_id=uuid.UUID(world.customer["id"]),
                policy=policy.to_json(),
            )
        )
    [item] = await store(
        db, world.tenant_id, account, inbound(external, "Service horrible, je suis fâché")
    )
    detail = (await client.get(f"/v1/inbox/{item.id}", headers=world.boss)).json()
    # One minute left on Friday, the other 59 on Monday from 9:00 (Montréal, EDT).
    due = datetime.fromisoformat(detail["response_due_at"])
    assert abs(due - datetime(2027, 5, 10, 13, 59, tzinfo=UTC)) < timedelta(seconds=5), due
    assert detail["sentiment"] == "negative"
    assert detail["sla"] == "within"

    stale = await client.post(
        f"/v1/inbox/{item.id}/status",
        json={"status": "done"},
        headers={**world.boss, "If-Match": '"99"'},
    )
    assert stale.status_code == 412, stale.text
    assert stale.json()["current"]["status"] == "new"

    sent = await client.post(
        f"/v1/inbox/{item.id}/reply",
        json={"text": "Nous sommes désolés, écrivez-nous en privé."},
        headers={**world.boss, "If-Match": f'"{detail["version"]}"'},
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["action"]["status"] == "queued"
    clock.set(FRIDAY + timedelta(minutes=1))
    await run_due_jobs(settings)
    after = (await client.get(f"/v1/inbox/{item.id}", headers=world.boss)).json()
    [action] = after["actions"]
    assert action["status"] == "sent", action
    assert after["first_response_at"] is not None
    assert after["sla"] == "met"


async def test_a_person_answered_once_runs_on_the_next_response_target(client, db, settings, clock):
    monday = datetime(2027, 5, 10, 14, 0, tzinfo=UTC)  # 10:00 in Montréal
    clock.set(monday)
    world = await new_world(client)
    account, external = await _account(client, db, world)
    policy = ResponsePolicy(
        first_response_minutes=30, next_response_minutes=240, timezone="America/Montreal"
    )
    async with db.tenant_transaction(world.tenant_id) as session:
        session.add(
            ResponsePolicyRow(
                tenant_id=world.tenant_id,
                client_id=uuid.UUID(world.customer["id"]),
                policy=policy.to_json(),
            )
        )
    first = inbound(external, "Avez-vous des billets pour samedi?", author_id="fan-1")
    [item] = await store(db, world.tenant_id, account, first)
    assert item.response_due_at is not None
    assert item.response_due_at - item.received_at < timedelta(minutes=31)
    answer = await client.post(
        f"/v1/inbox/{item.id}/reply", json={"text": "Oui, encore quelques-uns!"}, headers=world.boss
    )
    assert answer.status_code == 202, answer.text
    await run_due_jobs(settings)
    again = inbound(external, "Super, combien?", author_id="fan-1", thread=first.thread_external_id)
    stranger = inbound(
        external, "Et pour dimanche?", author_id="fan-2", thread=first.thread_external_id
    )
    follow_up, other = await store(db, world.tenant_id, account, again, stranger)
    assert follow_up.response_due_at is not None and other.response_due_at is not None
    assert follow_up.response_due_at - follow_up.received_at > timedelta(minutes=230)
    assert other.response_due_at - other.received_at < timedelta(minutes=31)


async def test_an_account_is_due_a_read_when_new_then_every_few_minutes(
    client, db, resources, settings, clock
):
    from sqlalchemy import text

    from inbox.jobs import poll_inbox_account
    from infra.sweep import due_tenants

    clock.set(FRIDAY, tick=False)
    world = await new_world(client)
    account, _ = await _account(client, db, world)

    async def due_reads(at: datetime) -> set[uuid.UUID]:
        rows = await due_tenants(db, text("SELECT * FROM inbox_due(:due, true)"), {"due": at})
        return {row[2] for row in rows if row[0] == world.tenant_id}

    assert await due_reads(FRIDAY) == {account}  # never read: due at once
    ctx = {"db": db, "settings": settings, "resources": resources, "redis": resources.queue}
    assert await poll_inbox_account(ctx, str(world.tenant_id), str(account)) > 0
    assert await due_reads(FRIDAY) == set()
    every = timedelta(minutes=settings.inbox_poll_minutes)
    assert await due_reads(FRIDAY + every - timedelta(seconds=1)) == set()
    assert await due_reads(FRIDAY + every) == {account}
