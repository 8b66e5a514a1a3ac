"""What each platform lets a page do on an item, as its connector declares it."""

from __future__ import annotations

from social.connectors import PLATFORMS
from social.connectors.types import Moderation, Platform


def _connector_class(platform: str) -> type | None:
    try:
        return PLATFORMS[Platform(platform)]  # type: ignore[return-value]
    except (KeyError, ValueError):
        return None


def can_reply_privately(platform: str) -> bool:
    return bool(getattr(_connector_class(platform), "can_reply_privately", False))


def can_moderate(platform: str, action: Moderation) -> bool:
    return action in getattr(_connector_class(platform), "moderations", frozenset())
