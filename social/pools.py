"""A worker's HTTP pools for one platform: several small httpcore pools instead of one large.

httpcore (1.0) walks every connection of a pool on each request and on each release, and for
each idle connection counts the whole pool again (encode/httpcore#1035): a pass over N
connections costs about N² steps plus a socket poll per connection. A worker with dozens of
requests in flight paid milliseconds per request. Shards of SHARD connections keep each pass
short; a request goes to the least busy shard, and waits here (cheaply, in order) rather than
in a shard's queue, where every release would hand the connection to all of its waiters.
The shards share one TLS context: each context httpx makes loads the CA store again, about 10 ms
of CPU and its own copy in memory, which a worker paid for every shard of every platform.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import AsyncIterator, Callable

import httpx

SHARD = 8
"""Connections per httpcore pool."""


class _ReleasedOnClose(httpx.AsyncByteStream):
    """The answer's body; closing it gives the connection's slot back."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._release()


class ShardedTransport(httpx.AsyncBaseTransport):
    """At most `size` requests in flight, over ceil(size / SHARD) pools of SHARD connections."""

    def __init__(self, size: int, *, tls: ssl.SSLContext | None = None) -> None:
        count = max(1, math.ceil(size / SHARD))
        limits = httpx.Limits(max_connections=SHARD, max_keepalive_connections=SHARD)
        tls = tls or httpx.create_ssl_context()
        self._shards = [httpx.AsyncHTTPTransport(verify=tls, limits=limits) for _ in range(count)]
        self._busy = [0] * count
        self._slots = asyncio.Semaphore(count * SHARD)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        wait = request.extensions.get("timeout", {}).get("pool")
        try:
            await asyncio.wait_for(self._slots.acquire(), wait)
        except TimeoutError:
            raise httpx.PoolTimeout("no connection free in time", request=request) from None
        # The slots count every shard's connections: one has a free connection.
        shard = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[shard] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._busy[shard] -= 1
                self._slots.release()

        try:
            response = await self._shards[shard].handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasedOnClose(response.stream, release)
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
