"""The transactional outbox against the real database and a real arq worker: rolled-back
events never leave, delivery is ordered per aggregate, failures retry and are finally given up."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest
from arq import Retry
from sqlalchemy import select, update

from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.ids import new_id
from infra.outbox import Event
from tests.support.factories import new_agency
from tests.support.worker import run_worker

# What the test handlers saw, per test run: run id -> names of the events delivered, in order.
DELIVERED: dict[str, list[str]] = defaultdict(list)
# How many times each event was attempted (by event id).
ATTEMPTS: dict[uuid.UUID, int] = defaultdict(int)


@outbox.handler("test.step")
async def _step(ctx, event: Event) -> None:
    """Fails the first `fail` attempts of an event (`fail: -1` fails for ever), then records it."""
    ATTEMPTS[event.id] += 1
    fail = event.payload.get("fail", 0)
    if fail < 0 or ATTEMPTS[event.id] <= fail:
        raise RuntimeError(f"boom {event.payload['name']} #{ATTEMPTS[event.id]}")
    DELIVERED[event.payload["run"]].append(event.payload["name"])


# Per run: set by the gated handler once it runs; set by the test to let it finish.
ENTERED: dict[str, asyncio.Event] = {}
GATES: dict[str, asyncio.Event] = {}


@outbox.handler("test.gate")
async def _gate(ctx, event: Event) -> None:
    run = event.payload["run"]
    ENTERED[run].set()
    await GATES[run].wait()
    DELIVERED[run].append(event.payload["name"])


@pytest.fixture
def ctx(db, settings, resources):
    return {"db": db, "settings": settings, "signer": resources.signer, "redis": resources.queue}


async def queued_tenants(resources) -> set[str]:
    jobs = await resources.queue.queued_jobs()
    return {job.args[0] for job in jobs if job.function == "deliver_outbox"}


async def record(db, tenant_id, run: str, steps: list[tuple[uuid.UUID, str, int]]) -> dict:
    """Record `(aggregate, name, fail)` events in one committed transaction; name -> event id."""
    ids = {}
    async with db.tenant_transaction(tenant_id) as session:
        for aggregate, name, fail in steps:
            event = outbox.record_event(
                session,
                tenant_id=tenant_id,
                type="test.step",
                aggregate_type="test",
                aggregate_id=aggregate,
                payload={"run": run, "name": name, "fail": fail},
            )
            ids[name] = event.id
            await session.flush()  # one flush per event: seq follows the order of recording
    return ids


async def events_of(db, tenant_id) -> dict[str, Event]:
    async with db.tenant_transaction(tenant_id) as session:
        rows = (
            await session.scalars(
                select(Event).where(Event.tenant_id == tenant_id).order_by(Event.seq)
            )
        ).all()
    return {row.payload.get("name", str(row.id)): row for row in rows}


async def make_due(db, tenant_id, event_id) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        await session.execute(
            update(Event)
            .where(Event.tenant_id == tenant_id, Event.id == event_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


async def test_an_event_of_a_rolled_back_transaction_is_never_delivered(
    client, db, settings, resources, ctx
):
    agency = await new_agency(client)
    run = str(new_id())

    with pytest.raises(RuntimeError, match="changed my mind"):
        async with db.tenant_transaction(agency.tenant_id) as session:
            outbox.record_event(
                session,
                tenant_id=agency.tenant_id,
                type="test.step",
                aggregate_type="test",
                aggregate_id=new_id(),
                payload={"run": run, "name": "ghost"},
            )
            await session.flush()
            raise RuntimeError("changed my mind")

    await outbox.sweep_outbox(ctx)
    assert str(agency.tenant_id) not in await queued_tenants(resources)
    await run_worker(settings)
    assert await outbox.deliver_pending(ctx, agency.tenant_id) == 0
    assert DELIVERED[run] == []
    assert await events_of(db, agency.tenant_id) == {}


async def test_delivery_is_ordered_per_aggregate_and_retries(client, db, ctx):
    agency = await new_agency(client)
    run = str(new_id())
    a, b = new_id(), new_id()
    ids = await record(db, agency.tenant_id, run, [(a, "a1", 1), (a, "a2", 0), (b, "b1", 0)])

    # a1 fails: it stays pending and holds a2 back; b1, of another aggregate, goes through.
    assert await outbox.deliver_pending(ctx, agency.tenant_id) == 1
    assert DELIVERED[run] == ["b1"]
    rows = await events_of(db, agency.tenant_id)
    assert (rows["a1"].status, rows["a1"].attempts) == ("pending", 1)
    assert rows["a1"].last_error.startswith("RuntimeError: boom a1")
    assert rows["a1"].next_attempt_at > utcnow()
    assert (rows["a2"].status, rows["a2"].attempts) == ("pending", 0)
    assert rows["b1"].status == "delivered" and rows["b1"].delivered_at is not None

    # Not due yet: nothing moves, and a2 does not overtake a1.
    assert await outbox.deliver_pending(ctx, agency.tenant_id) == 0
    assert DELIVERED[run] == ["b1"]

    await make_due(db, agency.tenant_id, ids["a1"])
    assert await outbox.deliver_pending(ctx, agency.tenant_id) == 2
    assert DELIVERED[run] == ["b1", "a1", "a2"]
    rows = await events_of(db, agency.tenant_id)
    assert {name: row.status for name, row in rows.items()} == {
        "a1": "delivered",
        "a2": "delivered",
        "b1": "delivered",
    }
    assert (rows["a1"].attempts, rows["a1"].last_error) == (1, None)


async def test_an_event_is_given_up_after_max_attempts(client, db, ctx):
    agency = await new_agency(client)
    run = str(new_id())
    x = new_id()
    ids = await record(db, agency.tenant_id, run, [(x, "x1", -1), (x, "x2", 0)])

    for attempt in range(1, outbox.MAX_ATTEMPTS):
        await outbox.deliver_pending(ctx, agency.tenant_id)
        rows = await events_of(db, agency.tenant_id)
        assert (rows["x1"].status, rows["x1"].attempts) == ("pending", attempt)
        assert rows["x2"].status == "pending"
        await make_due(db, agency.tenant_id, ids["x1"])

    # The last attempt gives x1 up, which releases the events queued behind it.
    await outbox.deliver_pending(ctx, agency.tenant_id)
    rows = await events_of(db, agency.tenant_id)
    assert (rows["x1"].status, rows["x1"].attempts) == ("dead", outbox.MAX_ATTEMPTS)
    assert rows["x1"].last_error == f"RuntimeError: boom x1 #{outbox.MAX_ATTEMPTS}"
    assert rows["x1"].next_attempt_at is None
    assert rows["x2"].status == "delivered"
    assert DELIVERED[run] == ["x2"]

    # A dead event is never tried again.
    await outbox.deliver_pending(ctx, agency.tenant_id)
    assert ATTEMPTS[ids["x1"]] == outbox.MAX_ATTEMPTS


async def test_the_sweeper_enqueues_tenants_with_due_events(client, db, settings, resources, ctx):
    due = await new_agency(client)
    waiting = await new_agency(client)
    run = str(new_id())
    await record(db, due.tenant_id, run, [(new_id(), "due", 0)])
    later = await record(db, waiting.tenant_id, run, [(new_id(), "later", 0)])
    async with db.tenant_transaction(waiting.tenant_id) as session:
        await session.execute(
            update(Event)
            .where(Event.tenant_id == waiting.tenant_id, Event.id == later["later"])
            .values(next_attempt_at=utcnow() + timedelta(hours=1))
        )

    assert await outbox.sweep_outbox(ctx) >= 1
    queued = await queued_tenants(resources)
    assert str(due.tenant_id) in queued
    assert str(waiting.tenant_id) not in queued

    await run_worker(settings)
    assert DELIVERED[run] == ["due"]
    assert (await events_of(db, due.tenant_id))["due"].status == "delivered"
    assert (await events_of(db, waiting.tenant_id))["later"].status == "pending"


async def test_more_deliveries_at_once_than_pooled_connections_all_go_through(
    client, settings, ctx
):
    # A worker runs more jobs than its pool has connections. Six deliveries at once on a pool
    # of two must all finish, not wait on each other until the pool times out.
    agencies = [await new_agency(client) for _ in range(6)]
    run = str(new_id())
    small = Database(settings.sqlalchemy_url, pool_size=2)
    try:
        for agency in agencies:
            await record(small, agency.tenant_id, run, [(new_id(), str(agency.tenant_id), 0)])
        worker_ctx = {**ctx, "db": small}
        async with asyncio.timeout(8):  # under the pool's 10 s timeout: a deadlock fails here
            counts = await asyncio.gather(
                *(outbox.deliver_pending(worker_ctx, a.tenant_id) for a in agencies)
            )
    finally:
        await small.dispose()
    assert counts == [1] * 6
    assert sorted(DELIVERED[run]) == sorted(str(a.tenant_id) for a in agencies)


SEEN_BY_ALL: list[str] = []


@outbox.handler("test.refused")
async def _refuses(ctx, event: Event) -> None:
    raise outbox.Refused(f"550 no such mailbox: {event.payload['name']}")


@outbox.handler("test.refused")
async def _also_runs(ctx, event: Event) -> None:
    SEEN_BY_ALL.append(event.payload["name"])


async def test_a_refused_event_is_recorded_once_and_releases_its_aggregate(client, db, ctx):
    agency = await new_agency(client)
    run = str(new_id())
    x = new_id()
    async with db.tenant_transaction(agency.tenant_id) as session:
        refused = outbox.record_event(
            session,
            tenant_id=agency.tenant_id,
            type="test.refused",
            aggregate_type="test",
            aggregate_id=x,
            payload={"name": f"r-{run}"},
        )
        await session.flush()
    await record(db, agency.tenant_id, run, [(x, "after", 0)])

    # The refusal is final at once: no retry, the event's other handlers ran, and the events
    # queued behind it on its aggregate go through.
    assert await outbox.deliver_pending(ctx, agency.tenant_id) == 1
    rows = await events_of(db, agency.tenant_id)
    row = rows[f"r-{run}"]
    assert (row.status, row.attempts, row.next_attempt_at) == ("refused", 1, None)
    assert row.last_error == f"550 no such mailbox: r-{run}"
    assert SEEN_BY_ALL.count(f"r-{run}") == 1
    assert rows["after"].status == "delivered" and DELIVERED[run] == ["after"]

    await outbox.deliver_pending(ctx, agency.tenant_id)
    assert SEEN_BY_ALL.count(f"r-{run}") == 1
    assert refused.id == row.id


async def test_one_delivery_per_agency_at_a_time_across_workers(client, db, ctx):
    # The lease is in Redis, not a session lock on a database connection (which pgbouncer's
    # transaction mode cannot keep): a second worker is turned away until the first is done.
    agency = await new_agency(client)
    run = str(new_id())
    ENTERED[run], GATES[run] = asyncio.Event(), asyncio.Event()
    async with db.tenant_transaction(agency.tenant_id) as session:
        outbox.record_event(
            session,
            tenant_id=agency.tenant_id,
            type="test.gate",
            aggregate_type="test",
            aggregate_id=new_id(),
            payload={"run": run, "name": "only"},
        )
    first = asyncio.create_task(outbox.deliver_pending(ctx, agency.tenant_id))
    await asyncio.wait_for(ENTERED[run].wait(), 10)
    other_worker = {**ctx, "db": Database(ctx["settings"].sqlalchemy_url, pool_size=1)}
    try:
        with pytest.raises(Retry):
            await outbox.deliver_pending(other_worker, agency.tenant_id)
    finally:
        GATES[run].set()
        await other_worker["db"].dispose()
    assert await first == 1
    assert await outbox.deliver_pending(ctx, agency.tenant_id) == 0  # the lease is free again
    assert DELIVERED[run] == ["only"]
