"""The agency a page speaks for: its name and logo head every page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.settings import Settings, get_settings
from tenants.models import Tenant
from tenants.service.branding import logo_url_of


@dataclass(frozen=True)
class Agency:
    name: str
    logo_url: str | None = None


async def agency_of(
    session: AsyncSession, tenant_id: uuid.UUID, *, settings: Settings | None = None
) -> Agency:
    """The logo's address is absolute, on PUBLIC_BASE_URL (the one e-mails show too): pass the
    app's settings when they may differ from the environment's (a test server's own)."""
    name = await session.scalar(select(col(Tenant.name)).where(col(Tenant.id) == tenant_id))
    if name is None:
        return Agency(name="Passerelle")
    logo = await logo_url_of(session, settings or get_settings(), tenant_id)
    return Agency(name=name, logo_url=logo)
