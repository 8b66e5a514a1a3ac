"""The platforms' webhooks: checked on the raw body, stored once, processed by a job.

Meta (Pages and Instagram) signs each delivery with the app secret
(`X-Hub-Signature-256: sha256=<hex>`) and verifies the subscription with a GET challenge
echoing `hub.challenge` when `hub.verify_token` is ours. LinkedIn signs with the app's client
secret (`X-LI-Signature: hmacsha256=<hex>`) and verifies with `challengeCode`, answered with
the code and its HMAC. A delivery whose signature fails stores nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson

from inbox import errors
from infra.clock import utcnow
from infra.ids import new_id
from infra.settings import Settings
from social.connectors import linkedin

META = ("facebook_page", "instagram_business")
LINKEDIN = "linkedin_organization"
PUSH_PLATFORMS = (*META, LINKEDIN)

_STORE = (
    "INSERT INTO platform_events (id, platform, digest, body, received_at) "
    "VALUES ($1, $2, $3, $4::jsonb, $5) "
    "ON CONFLICT ON CONSTRAINT uq_platform_events_digest DO NOTHING RETURNING id"
)
"""One statement, committed on its own: a delivery is stored whole or not at all, and there is
nothing else in its transaction."""

MAX_BODY = 1024 * 1024
"""Meta batches up to 1,000 changes a delivery; a megabyte is far above what they send."""


def _secret(settings: Settings, platform: str) -> str:
    if platform not in PUSH_PLATFORMS:
        raise errors.UnknownPlatform(
            f"Webhooks are received for {', '.join(PUSH_PLATFORMS)}; not for {platform}."
        )
    client = settings.social_clients.get(platform)
    if client is None:
        raise errors.WebhookNotConfigured(
            f"Set SOCIAL_CLIENTS for {platform} to receive its webhooks."
        )
    return client.client_secret.get_secret_value()


def meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_meta(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(meta_signature(secret, body), header.strip())


def challenge(settings: Settings, platform: str, params: Mapping[str, str]) -> str | dict[str, str]:
    """The answer to a platform's subscription check: Meta's `hub.challenge` as plain text,
    LinkedIn's JSON. A wrong verify token is a 403-like refusal (401 here: not ours)."""
    secret = _secret(settings, platform)
    if platform == LINKEDIN:
        code = params.get("challengeCode")
        if not code:
            raise errors.BadWebhookBody("LinkedIn's check carries a challengeCode.")
        return linkedin.notification_challenge(secret, code)
    expected = settings.platform_webhook_verify_token
    if expected is None:
        raise errors.WebhookNotConfigured(
            "Set PLATFORM_WEBHOOK_VERIFY_TOKEN to the value given to Meta's webhook settings."
        )
    token = params.get("hub.verify_token") or ""
    if params.get("hub.mode") != "subscribe" or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise errors.BadWebhookSignature("hub.verify_token is not the one we set.")
    answer = params.get("hub.challenge")
    if not answer:
        raise errors.BadWebhookBody("Meta's check carries a hub.challenge.")
    return answer


async def receive(
    connection: asyncpg.Connection,
    settings: Settings,
    platform: str,
    body: bytes,
    headers: Mapping[str, str],
) -> tuple[uuid.UUID | None, bool]:
    """Verify and store one delivery; answers its id and whether it was a duplicate. The
    insert runs on a connection outside any transaction (`Database.autocommit`), so it commits
    at once: the caller has nothing to commit."""
    secret = _secret(settings, platform)
    if platform == LINKEDIN:
        good = linkedin.verify_notification(secret, body, headers.get("x-li-signature"))
    else:
        good = verify_meta(secret, body, headers.get("x-hub-signature-256"))
    if not good:
        raise errors.BadWebhookSignature(
            "The signature does not match the body; nothing was stored."
        )
    try:
        payload: Any = orjson.loads(body)
    except ValueError:  # orjson's error is one; so is a body that is not UTF-8
        raise errors.BadWebhookBody("The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise errors.BadWebhookBody("The body is not a JSON object.")
    # The body as it came (valid UTF-8 JSON, checked above): PostgreSQL parses it into jsonb
    # itself, with no second encoding here.
    inserted: uuid.UUID | None = await connection.fetchval(
        _STORE, new_id(), platform, hashlib.sha256(body).hexdigest(), body.decode(), utcnow()
    )
    return inserted, inserted is None
