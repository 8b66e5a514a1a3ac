"""One connector per platform behind the Connector protocol (social.connectors.types).

`build_connector(platform, http=, budget=, settings=)` makes one. A network platform needs its
OAuth app in `settings.social_clients` (KeyError otherwise); `settings.social_base_urls` moves
all of a platform's hosts (API, authorize, token) onto one base, keeping the real paths.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from infra.settings import Settings
from social.connectors.base import HttpConnector
from social.connectors.linkedin import LinkedInConnector
from social.connectors.meta import FacebookPageConnector, InstagramBusinessConnector
from social.connectors.sandbox import SandboxConnector
from social.connectors.tiktok import TikTokConnector
from social.connectors.types import Budget, Connector, Platform
from social.connectors.x import XConnector
from social.connectors.youtube import YouTubeConnector

PLATFORMS: dict[Platform, Callable[..., Connector]] = {
    Platform.facebook_page: FacebookPageConnector,
    Platform.instagram_business: InstagramBusinessConnector,
    Platform.linkedin_organization: LinkedInConnector,
    Platform.x: XConnector,
    Platform.youtube: YouTubeConnector,
    Platform.tiktok: TikTokConnector,
    Platform.sandbox: SandboxConnector,
}


def build_connector(
    platform: Platform | str, *, http: httpx.AsyncClient, budget: Budget, settings: Settings
) -> Connector:
    """KeyError for an unknown platform or a network platform without an OAuth app."""
    try:
        known = Platform(platform)
    except ValueError:
        raise KeyError(str(platform)) from None
    if known is Platform.sandbox:
        return SandboxConnector()
    return PLATFORMS[known](http=http, budget=budget, settings=settings)


__all__ = ["PLATFORMS", "HttpConnector", "SandboxConnector", "build_connector"]
