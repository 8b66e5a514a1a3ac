"""The agency a page speaks for: its name (and logo) head every page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from tenants.models import Tenant


@dataclass(frozen=True)
class Agency:
    name: str
    logo_url: str | None = None


async def agency_of(session: AsyncSession, tenant_id: uuid.UUID) -> Agency:
    name = await session.scalar(select(col(Tenant.name)).where(col(Tenant.id) == tenant_id))
    return Agency(name=name or "Passerelle")
