"""Async engine, sessions and the tenant-scoped transaction.

The tenant is set per transaction with `set_config(..., true)`, never with a session-level
`SET`: a pooled connection must not carry one tenant's setting into the next transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from infra.settings import Settings

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")
_SET_USER = text("SELECT set_config('app.user_id', :user_id, true)")
_ENTER_AS_MEMBER = text(
    "SELECT role, client_id, timezone, tenant_status, past_due_since "
    "FROM enter_tenant_as_member(:tenant_id, :membership_id, :user_id, :session_id)"
)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.pool_size = pool_size
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            # No overflow: a connection opened under a burst and closed right after costs more
            # (connect, auth, type introspection) than waiting a moment for a pooled one.
            max_overflow=0,
            pool_timeout=10,
            pool_recycle=1800,
            connect_args={"server_settings": {"application_name": "passerelle"}},
        )
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.sqlalchemy_url, pool_size=settings.database_pool_size)

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction the caller commits (or not)."""
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def tenant_transaction(self, tenant_id: uuid.UUID) -> AsyncIterator[AsyncSession]:
        """One transaction scoped to a tenant; commits on success, rolls back on error."""
        async with self.sessionmaker() as session, session.begin():
            await set_tenant(session, tenant_id)
            yield session


async def set_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    # On the connection: a bare statement needs none of the ORM session's bookkeeping.
    connection = await session.connection()
    await connection.execute(_SET_TENANT, {"tenant_id": str(tenant_id)})


async def enter_tenant_as_member(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    membership_id: uuid.UUID,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
) -> Row[tuple[str, uuid.UUID | None, str, str, object]] | None:
    """`set_tenant`, then the member's row if they are still active and this login still open
    (None otherwise), in one round trip (the SQL function of migration 0013 sets the tenant,
    then reads under row-level security). It is the transaction's first statement on every
    signed-in request."""
    connection = await session.connection()
    result = await connection.execute(
        _ENTER_AS_MEMBER,
        {
            "tenant_id": tenant_id,
            "membership_id": membership_id,
            "user_id": user_id,
            "session_id": session_id,
        },
    )
    return result.first()


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session's open transaction, for the hottest reads: a
    literal statement there is prepared once per connection by asyncpg and its rows skip
    SQLAlchemy's compilation and result layers. Use it after the transaction's first
    statement (the tenant entry): it runs in the same transaction, tenant and row-level
    security."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def set_acting_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Lets the transaction read the user's own memberships across tenants (login, /me)."""
    await session.execute(_SET_USER, {"user_id": str(user_id)})
