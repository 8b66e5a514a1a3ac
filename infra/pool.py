"""A connection pool that serves its waiters in the order they came.

SQLAlchemy's asyncio pool keeps its idle connections in an `asyncio.Queue`. A connection
handed back wakes the oldest waiter, but stays in the queue until that waiter runs; a request
that arrives in between takes it without waiting, and the woken waiter, finding the queue
empty, goes to the back of the line. Under load (more requests in flight than connections, as
whenever the API is busy) that barging lets some requests lose again and again: the API
benchmark's full stack had a p99 five times its median, its latencies spread like an
exponential rather than around 32 connections ÷ throughput.

`FairQueue` hands a returned connection straight to the oldest waiter, and a newcomer waits
behind the waiters already there (`infra.handoff.Line`), so a checkout waits for the
connections that were asked for before it, and no more.
"""

from __future__ import annotations

from collections import deque
from typing import TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import Empty, Full, QueueCommon

from infra.handoff import Line

T = TypeVar("T")


class FairQueue(QueueCommon[T]):
    """First come, first served: the shape of SQLAlchemy's queues (`get` blocks in the
    greenlet the pool runs in), without barging."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[T] = deque()
        self._line: Line[T] = Line()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def waiting(self) -> int:
        return self._line.waiting()

    def put_nowait(self, item: T) -> None:
        if self._line.hand_over(item):
            return
        if self.full():
            raise Full()
        self._items.append(item)

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        # Never blocks: the pool only hands back connections it gave out, so there is room.
        self.put_nowait(item)

    def get_nowait(self) -> T:
        if not self._items:
            raise Empty()
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        # Items and waiters never coexist (a returned item goes to a waiter first), so an item
        # here means nobody is ahead of this caller.
        if self._items or not block:
            return self.get_nowait()
        try:
            return await_(self._line.wait(within=timeout, give_back=self.put_nowait))
        except TimeoutError as exc:
            raise Empty() from exc


class FairAsyncPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool with `FairQueue` for its idle connections."""

    _queue_class = FairQueue[ConnectionPoolEntry]
