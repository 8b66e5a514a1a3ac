"""Sliding-window rate limits shared by every process through Redis."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

# A sorted set of attempt timestamps per key: drop those outside the window, count, admit.
# One script, so concurrent callers on many processes cannot both take the last slot.
_SLIDING_WINDOW = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, count, tostring(oldest[2])}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return {1, count + 1, tostring(now)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int
    """Seconds until a slot frees up (0 when allowed)."""


class RateLimiter:
    def __init__(self, redis: Redis, *, prefix: str = "rl") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> Decision:
        now = time.time()
        allowed, count, oldest = await self._script(
            keys=[f"{self._prefix}:{key}"],
            args=[now, window_seconds, limit, f"{now}:{uuid.uuid4().hex}"],
        )
        if allowed:
            return Decision(True, limit, max(limit - int(count), 0), 0)
        retry_after = max(1, int(float(oldest) + window_seconds - now + 0.999))
        return Decision(False, limit, 0, retry_after)
