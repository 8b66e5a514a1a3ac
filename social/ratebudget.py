"""Request budgets per platform (and per token where the platform counts so), shared by every
worker process through Redis.

A token bucket per key: `rate` requests per second refill it up to `burst`. Before a request a
connector takes `cost` from the bucket (YouTube counts quota units, the others requests); when
the bucket is short it waits. A platform's own signal (a usage header near its ceiling, a 429
with `Retry-After`) pauses the key for every process at once.

Where a bucket refills fast (hundreds a second), a process takes a few tokens at once and
spends them over the next moments: one round trip to Redis serves several requests. What it
has not spent after HOLD_SECONDS is dropped, so a pause set elsewhere reaches it that soon.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

from infra.metrics import RATE_BUDGET_WAIT
from social.connectors.types import RateLimited

# Redis' own clock, so that processes on several machines share one notion of "now".
_TAKE = """
local bucket, pause = KEYS[1], KEYS[2]
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local paused = redis.call('PTTL', pause)
if paused > 0 then return tostring(paused / 1000) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HMGET', bucket, 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', bucket, math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


HOLD_SECONDS = 0.25
"""How long a process may keep tokens it took ahead."""
BATCH_SECONDS = 0.02
"""A process takes at once what the bucket refills in this long (one at a time below 100/s)."""
MAX_BATCH = 8


@dataclass
class _Held:
    """Tokens this process took ahead for one key."""

    tokens: float = 0.0
    until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: float

    @property
    def batch(self) -> float:
        return float(max(1, min(MAX_BATCH, math.floor(self.per_second * BATCH_SECONDS))))

    @classmethod
    def parse(cls, value: str) -> Rate:
        """'900/900' (count per seconds) -> a bucket of 900 refilled at 1/s."""
        count, seconds = value.split("/")
        return cls(per_second=float(count) / float(seconds), burst=float(count))


class RateBudget:
    def __init__(
        self,
        redis: Redis,
        rates: dict[str, Rate],
        *,
        max_wait_seconds: float = 10.0,
        prefix: str = "social:budget",
    ) -> None:
        self._redis = redis
        self._rates = rates
        self._max_wait = max_wait_seconds
        self._prefix = prefix
        self._take = redis.register_script(_TAKE)
        self._held: dict[str, _Held] = {}

    def _rate(self, key: str) -> Rate | None:
        # "x:token:abc" is governed by the "x:token" rate, "x" by "x".
        parts = key.split(":")
        for n in range(len(parts), 0, -1):
            rate = self._rates.get(":".join(parts[:n]))
            if rate is not None:
                return rate
        return None

    async def acquire(self, key: str, *, cost: float = 1.0) -> None:
        """Wait for `cost` from the key's bucket; a wait longer than `max_wait_seconds`
        raises RateLimited so that the job is deferred instead of holding a worker slot."""
        rate = self._rate(key)
        if rate is None:
            return
        if rate.batch <= cost:
            await self._wait_for(key, rate, cost)
            return
        held = self._held.setdefault(key, _Held())
        async with held.lock:  # one take at a time: the others spend what it brings
            if held.tokens < cost or time.monotonic() > held.until:
                await self._wait_for(key, rate, rate.batch)
                held.tokens, held.until = rate.batch, time.monotonic() + HOLD_SECONDS
            held.tokens -= cost

    async def _wait_for(self, key: str, rate: Rate, cost: float) -> None:
        waited = 0.0
        while True:
            wait = float(
                await self._take(
                    keys=[f"{self._prefix}:{key}", f"{self._prefix}:pause:{key}"],
                    args=[rate.per_second, rate.burst, cost],
                )
            )
            if wait <= 0:
                if waited:
                    RATE_BUDGET_WAIT.labels(key.split(":", 1)[0]).observe(waited)
                return
            if waited + wait > self._max_wait:
                if waited:
                    RATE_BUDGET_WAIT.labels(key.split(":", 1)[0]).observe(waited)
                raise RateLimited(f"request budget for {key} spent", retry_after=wait)
            await asyncio.sleep(wait)
            waited += wait

    async def pause(self, key: str, seconds: float) -> None:
        """Stop every process from calling under `key` for `seconds` (never shortens a
        longer pause already set)."""
        if seconds <= 0:
            return
        for held_key, held in self._held.items():  # what this process took ahead is void
            if held_key == key or held_key.startswith(f"{key}:"):
                held.tokens = 0.0
        name = f"{self._prefix}:pause:{key}"
        ms = int(seconds * 1000)
        current = await self._redis.pttl(name)
        if current is None or current < ms:
            await self._redis.set(name, b"1", px=ms)
