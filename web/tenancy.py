"""Where a page enters its tenant: the one place in `web/` that sets it (`api/tenancy.py` is
the API's). A page enters the tenant that a verified signature names: an approval link, a
sign-in link, an invitation, or the portal cookie's login, after the owning service checked it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import enter_tenant_as_member, set_tenant
from infra.settings import Settings
from tenants import service
from tenants.principal import Principal


async def enter_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope the rest of the page's transaction to `tenant_id`: row-level security then shows
    only its rows."""
    await set_tenant(session, tenant_id)


async def enter_as_member(
    session: AsyncSession,
    claims: Mapping[str, object],
    settings: Settings,
    *,
    request_id: str | None,
) -> Principal:
    """Enter the tenant of a portal login the cookie names and read who the person is now
    (still active, login still open), in one round trip, as the API does (`api.tenancy.Door`)."""
    return await service.admit_member(
        partial(enter_tenant_as_member, session), claims, settings, request_id=request_id
    )
