"""Re-encrypt every stored token (platform tokens, PKCE verifiers in flight, webhook signing
secrets) under the first TOKEN_ENCRYPTION_KEYS key, agency by agency, so that the old key can
then be removed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from infra.db import Database
from partners.models import WebhookEndpoint
from social.models import SocialAccount, SocialConnection
from social.vault import TokenVault
from tenants.models import Tenant


@dataclass
class Rotated:
    tenants: int = 0
    tokens: int = 0


async def rotate_tokens(db: Database, vault: TokenVault) -> Rotated:
    done = Rotated()
    async with db.session() as session:
        tenant_ids = (await session.scalars(select(Tenant.id))).all()
    for tenant_id in tenant_ids:
        # One transaction per agency: a failure leaves every agency either all old or all new,
        # and both keys still decrypt while the rotation runs.
        async with db.tenant_transaction(tenant_id) as session:
            accounts = (
                await session.scalars(
                    select(SocialAccount)
                    .where(SocialAccount.tenant_id == tenant_id)
                    .with_for_update()
                )
            ).all()
            for account in accounts:
                for field in ("access_token", "refresh_token"):
                    value = getattr(account, field)
                    if value is not None:
                        setattr(account, field, vault.rotate(value))
                        done.tokens += 1
            connections = (
                await session.scalars(
                    select(SocialConnection).where(
                        SocialConnection.tenant_id == tenant_id,
                        col(SocialConnection.used_at).is_(None),
                    )
                )
            ).all()
            for connection in connections:
                connection.code_verifier = vault.rotate(connection.code_verifier) or b""
                done.tokens += 1
            endpoints = (
                await session.scalars(
                    select(WebhookEndpoint)
                    .where(WebhookEndpoint.tenant_id == tenant_id)
                    .with_for_update()
                )
            ).all()
            for endpoint in endpoints:
                endpoint.secret = vault.rotate(endpoint.secret) or b""
                done.tokens += 1
        done.tenants += 1
    return done
