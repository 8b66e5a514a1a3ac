"""Where a request enters its tenant: the one place in the API that sets it.

Two doors lead in, and both are here so that no domain service sets the tenant as a side
effect. A signed-in request enters the tenant its verified token names: a person's token
together with reading who they are, in one round trip (`enter_as_member`), a partner app's
before its principal is loaded (`enter_claimed_tenant`); both are used by
`api.deps.get_principal`. The hottest reads run on a driver-level read transaction rather
than a session and enter through the `*_on_driver` twins (`api.deps.get_reader`). A signed
link or a login flow (approval links, invitations, OAuth callbacks, login, refresh, sign-up)
first has the owning service verify what the link names, then enters that tenant here
(`enter_tenant`), then lets the service continue.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import (
    enter_tenant_as_member,
    enter_tenant_as_member_on_driver,
    enter_tenant_on_driver,
    set_tenant,
)
from infra.settings import Settings
from tenants import errors, service
from tenants.principal import Principal


async def enter_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope the rest of the request's transaction to `tenant_id`, which a signature vouched
    for (or which the request is creating): row-level security then shows only its rows."""
    await set_tenant(session, tenant_id)


def _claimed_tenant(claims: Mapping[str, object]) -> uuid.UUID:
    """The tenant a verified access token names (`tid`); a token without a valid one is not
    one of ours."""
    try:
        return uuid.UUID(str(claims["tid"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise errors.InvalidToken() from exc


async def enter_claimed_tenant(session: AsyncSession, claims: Mapping[str, object]) -> uuid.UUID:
    """Enter the tenant a verified access token names."""
    tenant_id = _claimed_tenant(claims)
    await enter_tenant(session, tenant_id)
    return tenant_id


async def enter_claimed_tenant_on_driver(
    connection: asyncpg.Connection, claims: Mapping[str, object]
) -> uuid.UUID:
    """`enter_claimed_tenant` for a driver-level read transaction."""
    tenant_id = _claimed_tenant(claims)
    await enter_tenant_on_driver(connection, tenant_id)
    return tenant_id


async def enter_as_member(
    session: AsyncSession,
    claims: Mapping[str, object],
    settings: Settings,
    *,
    request_id: str | None,
) -> Principal:
    """Enter the tenant a person's verified access token names and read who they are now
    (still active, login still open, their role) in the transaction's first statement."""
    who = service.signed_in(claims)
    row = await enter_tenant_as_member(
        session,
        who.tenant_id,
        membership_id=who.membership_id,
        user_id=who.user_id,
        session_id=who.session_id,
    )
    return service.member_principal(who, row, settings, request_id=request_id)


async def enter_as_member_on_driver(
    connection: asyncpg.Connection,
    claims: Mapping[str, object],
    settings: Settings,
    *,
    request_id: str | None,
) -> Principal:
    """`enter_as_member` for a driver-level read transaction: the same SQL function, the same
    principal."""
    who = service.signed_in(claims)
    row = await enter_tenant_as_member_on_driver(
        connection,
        who.tenant_id,
        membership_id=who.membership_id,
        user_id=who.user_id,
        session_id=who.session_id,
    )
    return service.member_principal(who, row, settings, request_id=request_id)
