"""The connection pool serves waiters in the order they came (`infra.pool`).

The scenario that matters: a connection comes back while one request waits, and in the same
turn of the loop a new request asks for one. The waiter must get it; the newcomer waits.
SQLAlchemy's own queue lets the newcomer barge in, which under load sent some requests to the
back of the line again and again (the API's p99 was five times its median)."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty, Full

from infra.db import Database
from infra.pool import FairAsyncPool, FairQueue


async def _take(queue, name: str, served: list[str], *, after: asyncio.Event | None = None):
    if after is not None:
        await after.wait()
    item = await greenlet_spawn(queue.get, True, 5)
    served.append(name)
    return item


async def _hand_back_then_newcomer(queue) -> list[str]:
    """A holds the only connection and B waits; then A hands it back and C asks for one in the
    same turn of the loop (both wake on one event, A first)."""
    queue.put_nowait("connection")
    served: list[str] = []
    held = await _take(queue, "A", served)
    waiting = asyncio.create_task(_take(queue, "B", served))
    await asyncio.sleep(0)  # B is in line now
    go = asyncio.Event()

    async def hand_back() -> None:
        await go.wait()
        queue.put_nowait(held)

    returner = asyncio.create_task(hand_back())
    newcomer = asyncio.create_task(_take(queue, "C", served, after=go))
    await asyncio.sleep(0)
    go.set()
    await returner
    await asyncio.wait({waiting, newcomer}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    queue.put_nowait("second connection")  # for whoever is still in line
    await asyncio.wait_for(asyncio.gather(waiting, newcomer), 5)
    return served


@pytest.mark.parametrize(
    ("queue_class", "order"),
    [
        # SQLAlchemy's queue: the newcomer takes the connection the woken waiter was given.
        (AsyncAdaptedQueue, ["A", "C", "B"]),
        (FairQueue, ["A", "B", "C"]),
    ],
)
async def test_a_returned_connection_goes_to_the_oldest_waiter(queue_class, order):
    assert await _hand_back_then_newcomer(queue_class(1)) == order


async def test_waiters_are_served_first_come_first_served():
    queue: FairQueue[str] = FairQueue(1)
    served: list[str] = []
    tasks = []
    for name in "BCDEF":
        tasks.append(asyncio.create_task(_take(queue, name, served)))
        await asyncio.sleep(0)
    assert queue.waiting() == 5
    for _ in tasks:
        queue.put_nowait("connection")
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert served == list("BCDEF")
    assert queue.waiting() == 0


async def test_a_wait_that_times_out_leaves_the_line_and_loses_nothing():
    queue: FairQueue[str] = FairQueue(1)
    with pytest.raises(Empty):
        await greenlet_spawn(queue.get, True, 0.01)
    assert queue.waiting() == 0
    queue.put_nowait("connection")
    # The connection went to the queue, not to the waiter that gave up.
    assert queue.qsize() == 1
    assert await greenlet_spawn(queue.get, True, 1) == "connection"


async def test_a_connection_handed_to_a_waiter_cancelled_in_the_same_turn_passes_on():
    queue: FairQueue[str] = FairQueue(1)
    served: list[str] = []
    cancelled = asyncio.create_task(_take(queue, "B", served))
    await asyncio.sleep(0)
    behind = asyncio.create_task(_take(queue, "C", served))
    await asyncio.sleep(0)
    queue.put_nowait("connection")  # handed to B …
    cancelled.cancel()  # … who gives up before running
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await asyncio.wait_for(behind, 5) == "connection"
    assert served == ["C"]


def test_a_put_without_waiters_refuses_more_than_the_pool_holds():
    queue: FairQueue[str] = FairQueue(1)
    queue.put_nowait("one")
    assert queue.full()
    with pytest.raises(Full):
        queue.put_nowait("two")


async def test_the_application_pool_is_the_fair_one(settings):
    db = Database(settings.sqlalchemy_url, pool_size=1)
    try:
        assert isinstance(db.engine.pool, FairAsyncPool)
        async with db.read_transaction() as connection:
            assert await connection.fetchval("SELECT 1") == 1
        async with db.read_transaction() as connection:  # the same connection, back and out
            assert await connection.fetchval("SELECT 2") == 2
    finally:
        await db.dispose()


async def _overtakes(engine, *, clients: int, rounds: int) -> int:
    """Closed-loop clients on a small pool, each checking a connection out and back in again
    and again (as requests do under load): how many checkouts were served before one that
    asked earlier."""
    asked = 0
    served_after: dict[int, int] = {}
    served = 0

    async def client() -> None:
        nonlocal asked, served
        for _ in range(rounds):
            ticket = asked
            asked += 1
            pooled = await engine.raw_connection()
            served_after[ticket] = served
            served += 1
            await asyncio.sleep(0)  # hold it for a turn of the loop
            await greenlet_spawn(pooled.close)

    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), 30)
    order = sorted(served_after, key=served_after.__getitem__)
    return sum(later < earlier for earlier, later in itertools.pairwise(order))


@pytest.mark.parametrize(
    ("poolclass", "fair"), [(AsyncAdaptedQueuePool, False), (FairAsyncPool, True)]
)
async def test_under_load_no_checkout_overtakes_an_earlier_one(settings, poolclass, fair):
    engine = create_async_engine(
        settings.sqlalchemy_url, poolclass=poolclass, pool_size=2, max_overflow=0
    )
    try:
        # Both connections opened first: the pool then only hands out and takes back.
        first, second = await asyncio.gather(engine.raw_connection(), engine.raw_connection())
        for pooled in (first, second):
            await greenlet_spawn(pooled.close)
        overtakes = await _overtakes(engine, clients=6, rounds=20)
    finally:
        await engine.dispose()
    assert (overtakes == 0) is fair, overtakes
