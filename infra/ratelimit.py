"""Sliding-window rate limits shared by every process through Redis."""

from __future__ import annotations

import hashlib
import ipaddress
import math
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
        self._admit = redis.register_script(_ADMIT_CHECK)

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

    async def admit_check(
        self, scope: str, *, subject: str, address: str, limits: FailureLimits
    ) -> CheckAdmission:
        """Before comparing a credential for `subject` presented from `address` (see
        `address_key`): refused while that pair, that address or that subject has failed too
        often. Decided before anything is looked up, so the answer is the same whether or not
        the subject exists."""
        digest = hashlib.sha256(subject.encode()).hexdigest()
        keys = (
            f"{self._prefix}:{scope}:pair:{digest}:{address}",
            f"{self._prefix}:{scope}:address:{address}",
            f"{self._prefix}:{scope}:subject:{digest}",
        )
        now = time.time()
        member = f"{now}:{uuid.uuid4().hex}"
        per_address = limits.per_address or (0, 1)
        per_subject = limits.per_subject or (0, 1)
        allowed, wait, reason = await self._admit(
            keys=list(keys),
            args=[
                now,
                member,
                *limits.per_pair,
                *per_address,
                *per_subject,
                limits.max_delay_seconds,
            ],
        )
        return CheckAdmission(
            self._redis,
            keys,
            member,
            address_window=per_address[1] if limits.per_address else 0,
            retry_after=0 if allowed else max(1, math.ceil(float(wait))),
            reason=reason.decode() if isinstance(reason, bytes) else str(reason),
        )


# Guessing a credential is throttled by counting failures, never successes (OWASP Authentication
# Cheat Sheet, "Protect against automated attacks"), in three sorted sets of failure times:
# KEYS[1] one subject (an e-mail, a client id) from one address, KEYS[2] one address whatever the
# subject, KEYS[3] one subject from anywhere. An admitted check is written at once as a failure
# of its pair and its subject, so parallel guesses at one account cannot all pass before the
# first is counted; a success takes it back and clears the pair. The address counts only
# failures already known, so a whole office signing in at once is never refused. The subject's
# count never refuses an address that has not failed on it: it only spaces out, by a doubling
# delay, the attempts of addresses that have.
_ADMIT_CHECK = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local pair_limit, pair_window = tonumber(ARGV[3]), tonumber(ARGV[4])
local address_limit, address_window = tonumber(ARGV[5]), tonumber(ARGV[6])
local free, subject_window = tonumber(ARGV[7]), tonumber(ARGV[8])
local max_delay = tonumber(ARGV[9])

local function count(key, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  return redis.call('ZCARD', key)
end
local function score(key, index)
  return tonumber(redis.call('ZRANGE', key, index, index, 'WITHSCORES')[2])
end
local function add(key, window)
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
end

local pair = count(KEYS[1], pair_window)
if pair >= pair_limit then
  return {0, tostring(score(KEYS[1], 0) + pair_window - now), 'pair'}
end
if address_limit > 0 and count(KEYS[2], address_window) >= address_limit then
  return {0, tostring(score(KEYS[2], 0) + address_window - now), 'address'}
end
if free > 0 then
  local failures = count(KEYS[3], subject_window)
  if pair > 0 and failures >= free then
    local wait = score(KEYS[3], -1) + math.min(2 ^ (failures - free), max_delay) - now
    if wait > 0 then
      return {0, tostring(wait), 'subject'}
    end
  end
end
add(KEYS[1], pair_window)
if free > 0 then
  add(KEYS[3], math.max(subject_window, max_delay))
end
return {1, '0', ''}
"""


@dataclass(frozen=True)
class FailureLimits:
    """How many failed checks of a credential are tolerated, each as (count, window seconds)."""

    per_pair: tuple[int, int]
    """Failures on one subject from one address; a success there clears them."""
    per_address: tuple[int, int] | None = None
    """Failures from one address, whatever the subject."""
    per_subject: tuple[int, int] | None = None
    """Failures on one subject from anywhere before addresses that failed on it are slowed."""
    max_delay_seconds: int = 300
    """The longest wait the per-subject slowdown imposes (it doubles from 1 s)."""


def address_key(host: str | None) -> str:
    """The unit an address limit counts: an IPv4 address, or the /64 an IPv6 host is given
    (one subscriber holds the whole /64, so counting single addresses would count nothing)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class CheckAdmission:
    """The answer to "may this credential be checked now?"; once checked, say how it went."""

    def __init__(
        self,
        redis: Redis,
        keys: tuple[str, str, str],
        member: str,
        *,
        address_window: int,
        retry_after: int,
        reason: str,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._member = member
        self._address_window = address_window
        self.allowed = retry_after == 0
        self.retry_after = retry_after
        """Seconds until this subject may be tried again from this address (0 when allowed)."""
        self.reason = reason
        """Which limit refused: 'pair', 'address' or 'subject' ('' when allowed)."""

    async def failed(self) -> None:
        """The credential was wrong: the address counts it too (pair and subject already do)."""
        if not self._address_window:
            return
        address = self._keys[1]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(address, {self._member: time.time()})
            pipe.pexpire(address, self._address_window * 1000)
            await pipe.execute()

    async def succeeded(self) -> None:
        """The credential was right: this attempt was no failure, and the pair starts afresh."""
        pair, _, subject = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(pair)
            pipe.zrem(subject, self._member)
            await pipe.execute()

    async def not_checked(self) -> None:
        """The request stopped before the credential was compared: nothing to count."""
        pair, _, subject = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(pair, self._member)
            pipe.zrem(subject, self._member)
            await pipe.execute()
