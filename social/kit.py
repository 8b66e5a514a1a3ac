"""What social code needs from the process: settings, the HTTP pools, the shared request
budget, the token vault, and a connector per platform."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import httpx
from redis.asyncio import Redis

from infra.resources import Resources, platform_client
from infra.settings import Settings
from infra.vault import TokenVault
from social.connectors import build_connector
from social.connectors.types import Connector, Platform
from social.errors import PlatformNotConfigured
from social.pools import ShardedTransport
from social.ratebudget import Rate, RateBudget

CALLS_AT_ONCE = 3
"""The most requests one job sends a platform at once (a sync's metric calls, gathered)."""
IN_FLIGHT_SECONDS = 0.5
"""A platform's answer takes about this long: at its budget's rate, so many seconds' worth of
requests are in flight."""
POOL_FLOOR = 8
POOL_CEILING = 256
"""Requests in flight to one platform, at most: beyond, a request waits for a free slot. The
pools are sharded (social.pools), so a request's cost does not grow with this."""


@dataclass
class SocialKit:
    settings: Settings
    http: httpx.AsyncClient
    """The process's shared client (the API's calls to the platforms)."""
    redis: Redis
    platform_http: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    """A worker's own pool per platform, sized to what it sends that platform at once."""

    @cached_property
    def budget(self) -> RateBudget:
        rates = {key: Rate.parse(value) for key, value in self.settings.social_rates.items()}
        return RateBudget(self.redis, rates)

    @cached_property
    def vault(self) -> TokenVault:
        """Raises TokenEncryptionNotConfigured (503) when TOKEN_ENCRYPTION_KEYS is unset."""
        return TokenVault.from_secret(self.settings.token_encryption_keys)

    def connector(self, platform: Platform | str) -> Connector:
        try:
            return build_connector(
                Platform(platform),
                http=self.platform_http.get(str(platform), self.http),
                budget=self.budget,
                settings=self.settings,
            )
        except KeyError:
            raise PlatformNotConfigured(
                f"Set SOCIAL_CLIENTS for {platform} to connect its accounts."
            ) from None


def kit_of(resources: Resources) -> SocialKit:
    """One kit per process resources (API app or worker)."""
    return resources.extension(SocialKit, _build)


def _build(resources: Resources) -> SocialKit:
    return SocialKit(settings=resources.settings, http=resources.http, redis=resources.redis)


def pool_size(rate: Rate | None, max_jobs: int) -> int:
    """Connections a worker keeps for one platform: what its jobs can send at once, no more
    than its budget lets through in IN_FLIGHT_SECONDS, within [POOL_FLOOR, POOL_CEILING]."""
    at_once = max_jobs * CALLS_AT_ONCE
    if rate is not None:
        at_once = min(at_once, math.ceil(rate.per_second * IN_FLIGHT_SECONDS))
    return max(POOL_FLOOR, min(POOL_CEILING, at_once))


def open_worker_kit(resources: Resources) -> SocialKit:
    """The worker's kit: one client per platform, `pool_size` requests in flight at most, over
    small pools (social.pools), so that a request's cost stays flat however many jobs run.
    Registered as the resources' kit, so every job of the process uses it; `close_worker_kit`
    closes its clients."""

    def build(resources: Resources) -> SocialKit:
        settings = resources.settings
        clients = {}
        tls = httpx.create_ssl_context()  # one for every platform's pools
        for platform in Platform:
            raw = settings.social_rates.get(platform.value)
            size = pool_size(Rate.parse(raw) if raw else None, settings.worker_max_jobs)
            clients[platform.value] = platform_client(
                settings, transport=ShardedTransport(size, tls=tls)
            )
        return SocialKit(
            settings=settings, http=resources.http, redis=resources.redis, platform_http=clients
        )

    return resources.extension(SocialKit, build)


async def close_worker_kit(resources: Resources) -> None:
    for client in kit_of(resources).platform_http.values():
        await client.aclose()
