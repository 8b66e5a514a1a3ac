"""What social code needs from the process: settings, the HTTP pool, the shared request
budget, the token vault, and a connector per platform."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import httpx
from redis.asyncio import Redis

from infra.resources import Resources
from infra.settings import Settings
from infra.vault import TokenVault
from social.connectors import build_connector
from social.connectors.types import Connector, Platform
from social.errors import PlatformNotConfigured
from social.ratebudget import Rate, RateBudget


@dataclass
class SocialKit:
    settings: Settings
    http: httpx.AsyncClient
    redis: Redis

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
                Platform(platform), http=self.http, budget=self.budget, settings=self.settings
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
