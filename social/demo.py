"""The demo agency's social accounts: two sandbox accounts per demo brand, named after it
(idempotent). The worker started by `make run` backfills their last 90 days within a minute."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis
from sqlmodel import select

from infra.clock import utcnow
from infra.db import Database
from infra.settings import Settings
from social.connectors.types import Platform
from social.kit import SocialKit
from social.models import SocialAccount
from tenants.demo import DEMO_BRANDS, DEMO_SLUG
from tenants.models import Tenant

DEMO_CHANNELS = ("instagram", "facebook")
"""Each demo brand shows two sandbox accounts, standing for its Instagram and Facebook."""


def demo_account_names(brand: str, slug: str, channel: str) -> tuple[str, str]:
    """(handle, display name) of a demo brand's sandbox account: the brand's own name, so the
    demo's reports and lists read like a real client's ("Pains du Plateau (Instagram)")."""
    return f"{slug.replace('-', '')}_{channel}", f"{brand} ({channel.capitalize()})"


async def load_social_demo(settings: Settings) -> None:
    """Add the sandbox accounts that are missing (idempotent); earlier ones get their names."""
    if settings.token_encryption_keys is None:
        return  # nothing can be connected without a key; the rest of the demo stands
    db = Database.from_settings(settings)
    redis = Redis.from_url(str(settings.redis_url))
    http = httpx.AsyncClient()
    try:
        kit = SocialKit(settings=settings, http=http, redis=redis)
        sandbox = kit.connector(Platform.sandbox)
        async with db.session() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
        if tenant_id is None:
            return
        async with db.tenant_transaction(tenant_id) as session:
            existing = {
                a.external_id: a
                for a in (
                    await session.scalars(
                        select(SocialAccount).where(
                            SocialAccount.tenant_id == tenant_id,
                            SocialAccount.platform == Platform.sandbox.value,
                        )
                    )
                ).all()
            }
            now = utcnow()
            for brand_id, _client, name, slug, _language in DEMO_BRANDS:
                for channel in DEMO_CHANNELS:
                    tokens = await sandbox.exchange(f"sandbox-demo-{slug}-{channel}")  # type: ignore[attr-defined]
                    profile = await sandbox.profile(tokens, None)
                    handle, display_name = demo_account_names(name, slug, channel)
                    account = existing.get(profile.external_id)
                    if account is not None:
                        # A demo loaded before accounts carried their brand's name is renamed.
                        account.handle, account.display_name = handle, display_name
                        continue
                    session.add(
                        SocialAccount(
                            tenant_id=tenant_id,
                            brand_id=brand_id,
                            platform=Platform.sandbox.value,
                            external_id=profile.external_id,
                            handle=handle,
                            display_name=display_name,
                            access_token=kit.vault.encrypt(tokens.access_token),
                            refresh_token=kit.vault.encrypt(tokens.refresh_token),
                            token_expires_at=tokens.expires_at,
                            next_sync_at=now,
                        )
                    )
    finally:
        await http.aclose()
        await redis.aclose()
        await db.dispose()
