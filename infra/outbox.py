"""Transactional outbox: domain events written in the caller's transaction, delivered by a job.

A rolled-back request leaves no event, so it sends nothing; a crashed worker leaves events
pending, so nothing is lost. Delivery is at least once and in order per aggregate: a failing
event holds back the later events of its aggregate until it succeeds or is given up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from sqlalchemy import BigInteger, Column, Identity, Index, String, func, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, col, select

from infra.clock import utcnow
from infra.db import Database
from infra.ids import new_id
from infra.logging import get_logger
from infra.models import TenantScoped, jsonb_field, tz_field
from infra.sweep import due_tenants

log = get_logger(__name__)

MAX_ATTEMPTS = 12
BATCH = 100

Handler = Callable[[dict[str, Any], "Event"], Awaitable[None]]
_handlers: dict[str, list[Handler]] = {}


class Event(TenantScoped, table=True):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_pending", "tenant_id", "seq", postgresql_where=text("status = 'pending'")),
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(always=True), nullable=False, unique=True),
    )
    type: str = Field(max_length=100)
    aggregate_type: str = Field(max_length=50)
    aggregate_id: uuid.UUID
    payload: dict[str, Any] = jsonb_field()
    request_id: str | None = Field(default=None, max_length=128)
    status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    attempts: int = 0
    next_attempt_at: datetime | None = tz_field()
    delivered_at: datetime | None = tz_field()
    last_error: str | None = None


_EVENTS = Event.metadata.tables["events"]

BATCH_MEMO = "outbox_batch_memo"
"""A dict in the handlers' context, new for each batch of events: a handler may keep there what
it read for one event and reuse it for the next. Every event of a batch was recorded before the
batch was read, so what a handler reads after that is at least as new as each event."""


def handler(event_type: str) -> Callable[[Handler], Handler]:
    """Register a function to run for every delivered event of this type ("*": of any type)."""

    def register(fn: Handler) -> Handler:
        _handlers.setdefault(event_type, []).append(fn)
        return fn

    return register


def record_event(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    type: str,
    aggregate_type: str,
    aggregate_id: uuid.UUID,
    payload: dict[str, Any],
    request_id: str | None = None,
) -> Event:
    event = Event(
        tenant_id=tenant_id,
        type=type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=payload,
        request_id=request_id,
    )
    session.add(event)
    pending: dict[uuid.UUID, uuid.UUID] = session.info.setdefault("outbox_tenants", {})
    pending.setdefault(tenant_id, event.id)
    return event


@dataclass(frozen=True)
class NewEvent:
    """An event for `record_events`: what `record_event` takes, for many at once."""

    tenant_id: uuid.UUID
    type: str
    aggregate_type: str
    aggregate_id: uuid.UUID
    payload: dict[str, Any]
    request_id: str | None = None


async def record_events(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    """`record_event` for a batch, in one statement, in the caller's transaction: for the
    worker's busy paths, where an `Event` object per row (SQLModel's checks, the unit of work's
    flush) would cost more than the rest of the work. Their sequence follows the list's order."""
    if not events:
        return
    now = utcnow()
    ids = [new_id() for _ in events]
    rows = [
        {
            "tenant_id": e.tenant_id,
            "id": event_id,
            "created_at": now,
            "type": e.type,
            "aggregate_type": e.aggregate_type,
            "aggregate_id": e.aggregate_id,
            "payload": e.payload,
            "request_id": e.request_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": None,
            "delivered_at": None,
            "last_error": None,
        }
        for e, event_id in zip(events, ids, strict=True)
    ]
    await session.execute(insert(_EVENTS), rows)
    pending: dict[uuid.UUID, uuid.UUID] = session.info.setdefault("outbox_tenants", {})
    for event, event_id in zip(events, ids, strict=True):
        pending.setdefault(event.tenant_id, event_id)


async def dispatch_after_commit(session: AsyncSession, queue: ArqRedis) -> None:
    """Enqueue delivery for the tenants this (now committed) transaction wrote events for."""
    pending: dict[uuid.UUID, uuid.UUID] = session.info.pop("outbox_tenants", {})
    for tenant_id, first_event in pending.items():
        await enqueue_delivery(queue, tenant_id, job_key=str(first_event))


async def enqueue_delivery(queue: ArqRedis, tenant_id: uuid.UUID, *, job_key: str) -> None:
    await queue.enqueue_job(
        "deliver_outbox", str(tenant_id), _job_id=f"outbox:{tenant_id}:{job_key}"
    )


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** (attempts - 1), 3600))


async def deliver_pending(ctx: dict[str, Any], tenant_id: uuid.UUID) -> int:
    """Deliver this tenant's due events; returns how many were delivered.

    One deliverer per tenant at a time (advisory lock), so order per aggregate holds even with
    many worker processes. A batch's delivered events are marked together once its handlers
    have run (a transaction per event cost more than most handlers): a crash re-sends at most
    the batch in flight, which handlers take as they take any repeat (at least once).
    """
    db: Database = ctx["db"]
    async with _delivery_slot(ctx, db):
        return await _deliver_locked(ctx, db, tenant_id)


def _delivery_slot(ctx: dict[str, Any], db: Database) -> asyncio.Semaphore:
    """A delivery holds its lock connection while each batch and handler takes another from the
    same pool. Unbounded, a worker running more jobs than its pool has connections lets every
    connection be held by a lock whose delivery waits for a second one, until the pool times out;
    at most half the pool in locks leaves each running delivery its second connection."""
    slots: asyncio.Semaphore | None = ctx.get("outbox_slots")
    if slots is None:
        slots = ctx["outbox_slots"] = asyncio.Semaphore(max(1, db.pool_size // 2))
    return slots


async def _deliver_locked(ctx: dict[str, Any], db: Database, tenant_id: uuid.UUID) -> int:
    lock_key = f"outbox:{tenant_id}"
    delivered = 0
    async with db.engine.connect() as lock_conn:
        got = await lock_conn.scalar(
            select(func.pg_try_advisory_lock(func.hashtextextended(lock_key, 0)))
        )
        await lock_conn.commit()
        if not got:
            raise Retry(defer=1)
        try:
            while True:
                batch_delivered, more = await _deliver_batch(ctx, db, tenant_id)
                delivered += batch_delivered
                if not more:
                    break
        finally:
            await lock_conn.scalar(
                select(func.pg_advisory_unlock(func.hashtextextended(lock_key, 0)))
            )
            await lock_conn.commit()
    return delivered


async def _deliver_batch(
    ctx: dict[str, Any], db: Database, tenant_id: uuid.UUID
) -> tuple[int, bool]:
    async with db.tenant_transaction(tenant_id) as session:
        result = await session.scalars(
            select(Event)
            .where(Event.tenant_id == tenant_id, Event.status == "pending")
            .order_by(Event.seq)  # type: ignore[arg-type]
            .limit(BATCH)
        )
        events = list(result.all())
    now = utcnow()
    ctx[BATCH_MEMO] = {}
    blocked: set[uuid.UUID] = set()
    done: list[uuid.UUID] = []
    progressed = False
    for event in events:
        if event.aggregate_id in blocked:
            continue
        if event.next_attempt_at is not None and event.next_attempt_at > now:
            blocked.add(event.aggregate_id)
            continue
        error: str | None = None
        try:
            for fn in [*_handlers.get(event.type, []), *_handlers.get("*", [])]:
                await fn(ctx, event)
        except Exception as exc:  # a handler's failure is recorded, never lost in a log
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("outbox.handler_failed", event_type=event.type, event_id=str(event.id))
        if error is None:
            done.append(event.id)
            progressed = True
            continue
        attempts = event.attempts + 1
        given_up = attempts >= MAX_ATTEMPTS
        progressed = progressed or given_up
        if not given_up:
            blocked.add(event.aggregate_id)
        async with db.tenant_transaction(tenant_id) as session:
            await session.execute(
                update(Event)
                .where(col(Event.tenant_id) == tenant_id, col(Event.id) == event.id)
                .values(
                    attempts=attempts,
                    last_error=error,
                    status="dead" if given_up else "pending",
                    next_attempt_at=None if given_up else utcnow() + _backoff(attempts),
                )
            )
    if done:
        async with db.tenant_transaction(tenant_id) as session:
            await session.execute(
                update(Event)
                .where(col(Event.tenant_id) == tenant_id, col(Event.id).in_(done))
                .values(status="delivered", delivered_at=utcnow(), last_error=None)
            )
    return len(done), progressed and len(events) == BATCH


async def deliver_outbox(ctx: dict[str, Any], tenant_id: str) -> int:
    """arq job: deliver one tenant's pending events."""
    return await deliver_pending(ctx, uuid.UUID(tenant_id))


async def sweep_outbox(ctx: dict[str, Any]) -> int:
    """arq cron: a safety net for deliveries whose after-commit enqueue was lost or backed off."""
    db: Database = ctx["db"]
    now = utcnow()
    rows = await due_tenants(
        db, text("SELECT due_tenant_id FROM outbox_due_tenants(:now)"), {"now": now}
    )
    minute = now.strftime("%Y%m%d%H%M")
    for (tenant_id,) in rows:
        await enqueue_delivery(ctx["redis"], tenant_id, job_key=f"sweep-{minute}")
    return len(rows)
