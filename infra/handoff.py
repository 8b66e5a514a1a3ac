"""First come, first served hand-off: what the connection pool (`infra.pool.FairQueue`) and
the API's admission gate (`api.admission.Gate`) both do with what they hand out.

An `asyncio.Queue` or `Semaphore` that is given back an item wakes its oldest waiter but keeps
the item until that waiter runs; a caller that arrives in between takes it without waiting,
and the woken waiter goes to the back of the line. Under load that barging lets some callers
lose again and again. Here an item given back goes straight to the oldest caller still
waiting, and a caller that gives up (timed out, cancelled) in the very turn it was handed one
passes it on rather than lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Line(Generic[T]):
    """Callers waiting for an item, oldest first."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[T]] = deque()

    def waiting(self) -> int:
        return sum(not waiter.done() for waiter in self._waiters)

    def hand_over(self, item: T) -> bool:
        """Give `item` to the oldest caller still waiting; False if nobody waits (the item
        stays with whoever gave it)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # one that timed out or was cancelled is skipped
                waiter.set_result(item)
                return True
        return False

    async def wait(
        self,
        *,
        give_back: Callable[[T], None],
        first: bool = False,
        within: float | None = None,
    ) -> T:
        """Wait for an item handed over, at most `within` seconds (TimeoutError). `first`
        goes ahead of everyone waiting. An item handed over as this caller gives up goes to
        `give_back`."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if first:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            if within is None:
                return await waiter
            async with asyncio.timeout(within):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                give_back(waiter.result())
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
