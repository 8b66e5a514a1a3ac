"""The demo agency's social accounts: two sandbox accounts per demo brand (idempotent). The
worker started by `make run` backfills their last 90 days within a minute."""

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


async def load_social_demo(settings: Settings) -> None:
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
            if (await session.scalars(select(SocialAccount.id).limit(1))).first() is not None:
                return
            now = utcnow()
            for brand_id, _client, _name, slug, _language in DEMO_BRANDS:
                for channel in ("instagram", "facebook"):
                    tokens = await sandbox.exchange(f"sandbox-demo-{slug}-{channel}")  # type: ignore[attr-defined]
                    profile = await sandbox.profile(tokens, None)
                    session.add(
                        SocialAccount(
                            tenant_id=tenant_id,
                            brand_id=brand_id,
                            platform=Platform.sandbox.value,
                            external_id=profile.external_id,
                            handle=profile.handle,
                            display_name=profile.display_name,
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
