"""Transactional outbox: domain events written in the caller's transaction, delivered by a job.

A rolled-back request leaves no event, so it sends nothing; a crashed worker leaves events
pending, so nothing is lost. Delivery is at least once and in order per aggregate: a failing
event holds back the later events of its aggregate until it succeeds or is given up.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError
from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    Index,
    String,
    UniqueConstraint,
    insert,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, col, select

from infra.clock import utcnow
from infra.db import Database
from infra.ids import new_id
from infra.logging import get_logger
from infra.metrics import OUTBOX_LAG
from infra.models import TenantScoped, jsonb_field, tz_field
from infra.sweep import due_tenants

log = get_logger(__name__)

MAX_ATTEMPTS = 12
BATCH = 100
# How long a delivery's lease lasts without renewal: above any one handler's longest call
# (WEBHOOK_TIMEOUT_SECONDS is at most 60).
LEASE_SECONDS = 120


class Refused(Exception):
    """A handler's permanent failure, such as a mail server's 5xx: retrying would only be refused
    again. The event's other handlers still run; the event is then marked `refused` with this
    message as its `last_error`, where it stays (no retry)."""


Handler = Callable[[dict[str, Any], "Event"], Awaitable[None]]
_handlers: dict[str, list[Handler]] = {}


class Event(TenantScoped, table=True):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_pending", "tenant_id", "seq", postgresql_where=text("status = 'pending'")),
        # With the tenant, as every unique key of a table distributed by tenant: seq orders one
        # tenant's events, never events across agencies.
        UniqueConstraint("tenant_id", "seq", name="uq_events_seq"),
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(always=True), nullable=False),
    )
    type: str = Field(max_length=100)
    aggregate_type: str = Field(max_length=50)
    aggregate_id: uuid.UUID
    payload: dict[str, Any] = jsonb_field()
    request_id: str | None = Field(default=None, max_length=128)
    status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    """pending, delivered, dead (given up after MAX_ATTEMPTS) or refused (a handler's `Refused`)."""
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

    One deliverer per tenant at a time (a lease in Redis), so order per aggregate holds even
    with many worker processes. A batch's delivered events are marked together once its
    handlers have run (a transaction per event cost more than most handlers): a crash re-sends
    at most the batch in flight, which handlers take as they take any repeat (at least once).
    """
    db: Database = ctx["db"]
    redis: Redis = ctx["redis"]
    # Not a session-level advisory lock: behind a transaction-mode pooler (pgbouncer) its
    # unlock may reach another server connection, leaving the lock held there for good. The
    # lease also holds no database connection while the handlers run. A crashed holder's
    # lease lapses after LEASE_SECONDS; the sweep then queues the tenant again.
    lease = redis.lock(f"outbox:lease:{tenant_id}", timeout=LEASE_SECONDS, blocking=False)
    if not await lease.acquire():
        raise Retry(defer=1)
    delivered = 0
    try:
        while True:
            batch_delivered, more = await _deliver_batch(ctx, db, tenant_id, lease)
            delivered += batch_delivered
            if not more:
                break
    finally:
        with contextlib.suppress(LockError):  # lapsed: someone else's now, or no one's
            await lease.release()
    return delivered


async def _deliver_batch(
    ctx: dict[str, Any], db: Database, tenant_id: uuid.UUID, lease: Lock
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
    refused: dict[uuid.UUID, str] = {}
    lags: list[float] = []
    progressed = False
    for event in events:
        if event.aggregate_id in blocked:
            continue
        if event.next_attempt_at is not None and event.next_attempt_at > now:
            blocked.add(event.aggregate_id)
            continue
        # Renewed before each event, so a lease outlives any one handler's timeouts; a lease
        # lost meanwhile (a stalled worker) stops this delivery before it runs anything more.
        await lease.reacquire()
        error: str | None = None
        refusal: str | None = None
        try:
            for fn in [*_handlers.get(event.type, []), *_handlers.get("*", [])]:
                try:
                    await fn(ctx, event)
                except Refused as exc:
                    refusal = refusal or str(exc)[:1000]
                    log.warning("outbox.refused", event_type=event.type, event_id=str(event.id))
        except Exception as exc:  # a handler's failure is recorded, never lost in a log
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("outbox.handler_failed", event_type=event.type, event_id=str(event.id))
        if error is None:
            if refusal is None:
                done.append(event.id)
                lags.append((now - event.created_at).total_seconds())
            else:
                refused[event.id] = refusal
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
        for lag in lags:
            OUTBOX_LAG.observe(max(lag, 0.0))
    if refused:
        async with db.tenant_transaction(tenant_id) as session:
            for event_id, reason in refused.items():
                await session.execute(
                    update(Event)
                    .where(col(Event.tenant_id) == tenant_id, col(Event.id) == event_id)
                    .values(status="refused", last_error=reason, attempts=Event.attempts + 1)
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
