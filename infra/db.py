"""Async engine, sessions and the tenant-scoped transaction.

The tenant is set per transaction with `SET LOCAL app.tenant_id`, never with a session-level
`SET`: a pooled connection must not carry one tenant's setting into the next transaction.
`SET LOCAL` rather than `set_config(..., true)` because Citus forwards the former to its worker
nodes (with `citus.propagate_set_commands = 'local'`), not the latter, and the row-level
security policies there would see no tenant. A `SET` takes no bind parameter, so the statement
is run by the SQL functions `set_tenant(uuid)` and `set_acting_user(uuid)` (migration 0018):
one statement text for every tenant (prepared once per connection, like any other, where a
literal per tenant would be prepared again for each tenant and push the hot statements out of
asyncpg's per-connection cache), and a `uuid` argument, which PostgreSQL validates.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
from sqlalchemy import Row, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import greenlet_spawn

from infra import tracing
from infra.pool import FairAsyncPool
from infra.settings import Settings

_SET_TENANT = text("SELECT set_tenant(:tenant_id)")
_SET_USER = text("SELECT set_acting_user(:user_id)")
_ENTER_AS_MEMBER = text(
    "SELECT role, client_id, timezone, tenant_status, past_due_since "
    "FROM enter_tenant_as_member(:tenant_id, :membership_id, :user_id, :session_id)"
)


Pooler = Literal["none", "transaction"]


def _unnamed() -> str:
    return ""


def connect_args(pooler: Pooler) -> dict[str, Any]:
    """asyncpg's arguments for a direct connection or one through a transaction-mode pooler.

    Direct, statements are named and prepared once per connection (asyncpg's cache for the
    driver connection's reads, SQLAlchemy's for the rest): one round trip per execution.

    Through pgbouncer in transaction mode (1.18 has no prepared-statement support), a server
    connection serves many client connections of many processes, and a named statement is
    either missing there (prepared on another server connection) or already taken (asyncpg
    numbers names per process, so two processes both make `__asyncpg_stmt_1__`). So every
    statement is the unnamed one and none is kept: asyncpg's cache is off
    (`statement_cache_size=0`), SQLAlchemy's too (`prepared_statement_cache_size=0`), and
    SQLAlchemy's statements get the empty name. asyncpg then sends the Parse again with the
    Bind (it never takes an unnamed statement made without its cache as prepared), so a
    statement runs on whichever server connection pgbouncer picked and leaves nothing behind
    there: the next Parse replaces the unnamed statement. The price is a second round trip
    per statement (the Describe that reads its types) and the server's parse and plan each
    time."""
    args: dict[str, Any] = {"server_settings": {"application_name": "passerelle"}}
    if pooler == "transaction":
        args["statement_cache_size"] = 0
        args["prepared_statement_cache_size"] = 0
        args["prepared_statement_name_func"] = _unnamed
    return args


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, pooler: Pooler = "none") -> None:
        self.pool_size = pool_size
        self.pooler = pooler
        self.engine: AsyncEngine = create_async_engine(
            url,
            poolclass=FairAsyncPool,
            pool_size=pool_size,
            # No overflow: a connection opened under a burst and closed right after costs more
            # (connect, auth, type introspection) than waiting a moment for a pooled one.
            max_overflow=0,
            pool_timeout=10,
            pool_recycle=1800,
            connect_args=connect_args(pooler),
        )
        tracing.instrument_engine(self.engine)
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.sqlalchemy_url,
            pool_size=settings.database_pool_size,
            pooler=settings.database_pooler,
        )

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction the caller commits (or not)."""
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled driver connection outside any transaction: each statement commits on its
        own, with no tenant set. For a single write that needs neither (a platform's delivery,
        the busiest write there is): no session or transaction objects to build around it."""
        pooled = await self.engine.raw_connection()
        try:
            yield pooled.driver_connection
        finally:
            # Back to the pool, reset as any checkout is (in SQLAlchemy's greenlet, as its
            # reset may await the driver).
            await greenlet_spawn(pooled.close)

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled driver connection in a READ ONLY transaction, for the hottest reads of the
        API: no session, no SQLAlchemy transaction or result objects, only asyncpg's. The first
        statement must enter a tenant (`enter_tenant_on_driver`, or the member's entry);
        commits when the block ends, rolls back on an error."""
        async with self.autocommit() as connection, connection.transaction(readonly=True):
            yield connection

    @asynccontextmanager
    async def tenant_read_transaction(
        self, tenant_id: uuid.UUID
    ) -> AsyncIterator[asyncpg.Connection]:
        """A `read_transaction` entered into `tenant_id`: a job's short read on the driver
        connection, as `tenant_transaction` is its session."""
        async with self.read_transaction() as connection:
            await enter_tenant_on_driver(connection, tenant_id)
            yield connection

    @asynccontextmanager
    async def tenant_transaction(
        self, tenant_id: uuid.UUID, *, isolation: str | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One transaction scoped to a tenant; commits on success, rolls back on error.
        `isolation` ("REPEATABLE READ") gives a job that reads many tables one snapshot."""
        async with self.sessionmaker() as session, session.begin():
            if isolation is not None:
                # Before the connection is taken: it is set for this transaction only.
                await session.connection(execution_options={"isolation_level": isolation})
            await set_tenant(session, tenant_id)
            yield session


async def set_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    # On the connection: a bare statement needs none of the ORM session's bookkeeping.
    connection = await session.connection()
    await connection.execute(_SET_TENANT, {"tenant_id": tenant_id})


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


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled once into asyncpg's own SQL (`$1`, `$2` …) with the names of its
    parameters in order: run on `driver_connection`, asyncpg prepares it once per connection
    and its rows come back as asyncpg records, past SQLAlchemy's compile cache, parameter
    processing and result layers. For statements whose values need no SQLAlchemy type
    processing (UUIDs, dates, numbers, text, arrays of those: asyncpg's own codecs)."""

    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]
    """Values the statement itself holds (a literal compared with a column)."""

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] if name in values else self.fixed[name] for name in self.names]


_DRIVER_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


def for_driver(statement: ClauseElement) -> DriverStatement:
    """Compile `statement` (Core or `text()` with `:name` parameters) for `DriverStatement`.
    Expanding parameters (`IN` lists) are rendered per execution by SQLAlchemy, so a statement
    that has one is refused here rather than sent half-compiled."""
    compiled = statement.compile(dialect=_DRIVER_DIALECT)
    sql = str(compiled)
    names = getattr(compiled, "positiontup", None)  # a SQLCompiler's, for numbered styles
    if "POSTCOMPILE" in sql or names is None:
        raise ValueError("for_driver: the statement needs per-execution compilation")
    fixed = {name: value for name, value in compiled.params.items() if value is not None}
    return DriverStatement(sql, tuple(names), fixed)


class AttrRecord(asyncpg.Record):  # type: ignore[misc]
    """An asyncpg record whose columns also read as attributes, as SQLAlchemy's rows do, so
    code that takes a row takes either."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_ENTER_AS_MEMBER_ON_DRIVER = for_driver(_ENTER_AS_MEMBER)
_SET_TENANT_ON_DRIVER = for_driver(_SET_TENANT)


async def enter_tenant_on_driver(connection: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
    """`set_tenant` for a `read_transaction`."""
    await connection.execute(_SET_TENANT_ON_DRIVER.sql, tenant_id)


async def enter_tenant_as_member_on_driver(
    connection: asyncpg.Connection,
    tenant_id: uuid.UUID,
    *,
    membership_id: uuid.UUID,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
) -> AttrRecord | None:
    """`enter_tenant_as_member` for a `read_transaction`: the same SQL function, one round
    trip."""
    statement = _ENTER_AS_MEMBER_ON_DRIVER
    return await connection.fetchrow(  # type: ignore[no-any-return]
        statement.sql,
        *statement.args(
            {
                "tenant_id": tenant_id,
                "membership_id": membership_id,
                "user_id": user_id,
                "session_id": session_id,
            }
        ),
        record_class=AttrRecord,
    )


async def set_acting_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Lets the transaction read the user's own memberships across tenants (login, /me)."""
    connection = await session.connection()
    await connection.execute(_SET_USER, {"user_id": user_id})


MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
_VERSION = text("SELECT version_num FROM alembic_version")


@functools.cache
def migration_heads() -> frozenset[str]:
    """The revisions this code expects the database at (read once: files do not move)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


async def migrations_at_head(db: Database) -> bool:
    """Whether the database is at the code's migrations (the application role may read
    alembic_version since migration 0016)."""
    async with db.engine.connect() as conn:
        applied = frozenset((await conn.scalars(_VERSION)).all())
    return applied == migration_heads()
