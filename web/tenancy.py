"""Where a page enters its tenant: the one place in `web/` that sets it (`api/tenancy.py` is
the API's). A page enters the tenant that a verified signature names: an approval link, a
sign-in link, an invitation, or the portal cookie's login, after the owning service checked it.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import set_tenant


async def enter_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope the rest of the page's transaction to `tenant_id`: row-level security then shows
    only its rows."""
    await set_tenant(session, tenant_id)
