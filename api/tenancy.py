"""Where a request enters its tenant: the one place in the API that sets it.

Two doors lead in, and both are here so that no domain service sets the tenant as a side
effect. A signed-in request enters the tenant its verified token names: a person's token
together with reading who they are, in one round trip (`Door.enter_as_member`), a partner app's
before its principal is loaded (`enter_claimed_tenant`); both are used by
`api.deps.get_principal`. The hottest reads run on a driver-level read transaction rather
than a session and enter the same way on it (`Door`, used by `api.deps.get_reader`). A signed
link or a login flow (approval links, invitations, OAuth callbacks, login, refresh, sign-up)
first has the owning service verify what the link names, then enters that tenant here
(`enter_tenant`), then lets the service continue.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import (
    enter_tenant_as_member,
    enter_tenant_as_member_on_driver,
    enter_tenant_on_driver,
    set_tenant,
)
from partners.service import tokens
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


@dataclass(frozen=True)
class Door:
    """A request's way into its tenant, bound to its transaction: the request's session, or a
    read transaction's driver connection (`session_door`, `driver_door`). The same steps and
    the same principal either way; `api.deps` takes one or the other."""

    enter_claimed_tenant: Callable[[Mapping[str, object]], Awaitable[uuid.UUID]]
    load_partner: Callable[..., Awaitable[Principal]]
    """(tenant_id, claims, settings, *, request_id): the partner app's principal."""
    enter_as_member: Callable[..., Awaitable[Principal]]
    """(claims, settings, *, request_id): a person's principal, in the first statement."""


def session_door(session: AsyncSession) -> Door:
    return Door(
        partial(enter_claimed_tenant, session),
        partial(tokens.load_partner_principal, session),
        partial(service.admit_member, partial(enter_tenant_as_member, session)),
    )


def driver_door(connection: asyncpg.Connection) -> Door:
    return Door(
        partial(enter_claimed_tenant_on_driver, connection),
        partial(tokens.load_partner_principal_on_driver, connection),
        partial(service.admit_member, partial(enter_tenant_as_member_on_driver, connection)),
    )
