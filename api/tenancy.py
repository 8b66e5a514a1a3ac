"""Where a request enters its tenant: the one place in the API that sets it.

Two doors lead in, and both are here so that no domain service sets the tenant as a side
effect. A signed-in request (a person's access token or a partner app's) enters the tenant its
verified token names, before the principal is loaded (`enter_claimed_tenant`, used by
`api.deps.get_principal`). A signed link or a login flow (approval links, invitations, OAuth
callbacks, login, refresh, sign-up) first has the owning service verify what the link names,
then enters that tenant here (`enter_tenant`), then lets the service continue.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import set_tenant
from tenants import errors


async def enter_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope the rest of the request's transaction to `tenant_id`, which a signature vouched
    for (or which the request is creating): row-level security then shows only its rows."""
    await set_tenant(session, tenant_id)


async def enter_claimed_tenant(session: AsyncSession, claims: Mapping[str, object]) -> uuid.UUID:
    """Enter the tenant a verified access token names (`tid`); a token without a valid one
    is not one of ours."""
    try:
        tenant_id = uuid.UUID(str(claims["tid"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise errors.InvalidToken() from exc
    await enter_tenant(session, tenant_id)
    return tenant_id
