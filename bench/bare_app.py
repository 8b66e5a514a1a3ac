"""The baseline of the API benchmark: the least an endpoint can do to answer
GET /v1/members?limit=50 as the full stack does.

Plain Starlette + a raw asyncpg pool, served by uvicorn with the settings `passerelle serve`
uses (one process, uvicorn's automatic loop/http choice: uvloop + httptools when installed,
no access log). No JWT verification, no middleware, no dependency injection, no response
model validation: the principal's ids come from the environment. Per request it runs the
statements the full stack runs, in one transaction:

    BEGIN
    SELECT set_config('app.tenant_id', $1, true)
    <principal query: memberships JOIN auth_sessions, as tenants.service.load_principal>
    <list query: memberships JOIN users ORDER BY memberships.id LIMIT 51, as list_members>
    COMMIT

and answers the same JSON ({"items": [...], "next_cursor": ...}).

Run by bench/api.py:  python bench/bare_app.py --host 127.0.0.1 --port N
Environment: BARE_DSN (postgresql://, the application role), BARE_POOL_SIZE, and the
principal: BARE_TENANT_ID, BARE_MEMBERSHIP_ID, BARE_USER_ID, BARE_SESSION_ID.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.bare_serve import serve

# The text SQLAlchemy sends for the full stack (echo=True), statement for statement.
SET_TENANT = "SELECT set_config('app.tenant_id', $1, true)"

PRINCIPAL = (
    "SELECT memberships.role, memberships.client_id, tenants.timezone \n"
    "FROM memberships JOIN auth_sessions ON auth_sessions.tenant_id = memberships.tenant_id "
    "AND auth_sessions.membership_id = memberships.id "
    "JOIN tenants ON tenants.id = memberships.tenant_id \n"
    "WHERE memberships.tenant_id = $1::UUID AND memberships.id = $2::UUID "
    "AND memberships.user_id = $3::UUID AND memberships.status = $4::VARCHAR "
    "AND auth_sessions.id = $5::UUID AND auth_sessions.revoked_at IS NULL"
)

LIST_MEMBERS = (
    "SELECT users.id AS user_id, users.email, users.name, memberships.role, "
    "memberships.status, memberships.client_id, memberships.monthly_capacity_minutes, "
    "memberships.version, memberships.created_at, memberships.updated_at, "
    "memberships.id AS membership_id \n"
    "FROM memberships JOIN users ON users.id = memberships.user_id \n"
    "WHERE memberships.tenant_id = $1::UUID ORDER BY memberships.id \n"
    " LIMIT $2::INTEGER"
)

LIMIT = 50


def _uuid_env(name: str) -> uuid.UUID:
    return uuid.UUID(os.environ[name])


TENANT_ID = _uuid_env("BARE_TENANT_ID")
MEMBERSHIP_ID = _uuid_env("BARE_MEMBERSHIP_ID")
USER_ID = _uuid_env("BARE_USER_ID")
SESSION_ID = _uuid_env("BARE_SESSION_ID")
POOL_SIZE = int(os.environ.get("BARE_POOL_SIZE", "10"))


async def _no_reset(_: asyncpg.Connection) -> None:
    """The full stack's pool sends nothing when a connection comes back (the transaction is
    already committed); asyncpg's default reset would add a round trip, so skip it."""


def _iso(value: Any) -> str | None:
    # Pydantic writes UTC datetimes with a "Z".
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _cursor(value: Any) -> str:
    # As infra.pagination.encode_cursor: the ordering's name, then the key.
    raw = json.dumps(["members", str(value)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(
        os.environ["BARE_DSN"],
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        reset=_no_reset,
        server_settings={"application_name": "passerelle_bench_bare"},
    )
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


async def list_members(request: Request) -> JSONResponse:
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        await conn.fetchrow(SET_TENANT, str(TENANT_ID))
        principal = await conn.fetchrow(
            PRINCIPAL, TENANT_ID, MEMBERSHIP_ID, USER_ID, "active", SESSION_ID
        )
        if principal is None:
            return JSONResponse({"detail": "session ended"}, status_code=401)
        rows = await conn.fetch(LIST_MEMBERS, TENANT_ID, LIMIT + 1)
    items = [
        {
            "user_id": str(r["user_id"]),
            "email": r["email"],
            "name": r["name"],
            "role": r["role"],
            "status": r["status"],
            "client_id": None if r["client_id"] is None else str(r["client_id"]),
            "monthly_capacity_minutes": r["monthly_capacity_minutes"],
            "version": r["version"],
            "created_at": _iso(r["created_at"]),
            "updated_at": _iso(r["updated_at"]),
        }
        for r in rows[:LIMIT]
    ]
    next_cursor = _cursor(rows[LIMIT - 1]["membership_id"]) if len(rows) > LIMIT else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


async def readyz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ready"})


app = Starlette(
    routes=[Route("/v1/members", list_members), Route("/readyz", readyz)],
    lifespan=lifespan,
)


def main() -> None:
    serve(app, __doc__.splitlines()[0], import_string="bench.bare_app:app")


if __name__ == "__main__":
    main()
