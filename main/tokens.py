"""Every column the token vault encrypts, gathered from the domains that own them, for the key
rotation (`passerelle tokens rotate`)."""

from __future__ import annotations

from sqlmodel import select

from infra.db import Database
from infra.rotation import EncryptedColumns, Rotated
from infra.rotation import rotate_tokens as rotate_columns
from infra.vault import TokenVault
from partners.models import ENCRYPTED_COLUMNS as PARTNER_COLUMNS
from social.models import ENCRYPTED_COLUMNS as SOCIAL_COLUMNS
from tenants.models import Tenant

ENCRYPTED_COLUMNS: tuple[EncryptedColumns, ...] = (*SOCIAL_COLUMNS, *PARTNER_COLUMNS)


async def rotate_tokens(db: Database, vault: TokenVault) -> Rotated:
    """Every agency's secrets under the vault's first key."""
    async with db.session() as session:
        tenant_ids = (await session.scalars(select(Tenant.id))).all()
    return await rotate_columns(db, vault, tenant_ids, ENCRYPTED_COLUMNS)
