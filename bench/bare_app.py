"""The baseline of the API benchmark: the least an endpoint can do to answer
GET /v1/members?limit=50 as the full stack does.

Plain Starlette + a raw asyncpg pool, served by uvicorn with the settings `passerelle serve`
uses (one process, uvicorn's automatic loop/http choice: uvloop + httptools when installed,
no access log). No JWT verification, no middleware, no dependency injection, no response
model validation: the principal's ids come from the environment. Per request it runs the
statements the full stack runs, in one transaction:

    BEGIN
    SELECT … FROM enter_tenant_as_member($1, $2, $3, $4)   (sets the tenant, reads the member)
    <list query: memberships JOIN users ORDER BY m.id LIMIT 51, as tenants.service.list_members>
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

# The statements the full stack sends (infra.db.enter_tenant_as_member, then
# tenants.service.members.list_members), text for text.
ENTER_AS_MEMBER = (
    "SELECT role, client_id, timezone, tenant_status, past_due_since "
    "FROM enter_tenant_as_member($1, $2, $3, $4)"
)

LIST_MEMBERS = (
    "SELECT u.id AS user_id, u.email, u.name, m.role, m.status, m.client_id, "
    "m.monthly_capacity_minutes, m.version, m.created_at, m.updated_at, m.id AS membership_id "
    "FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 "
    "ORDER BY m.id LIMIT $2"
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
        principal = await conn.fetchrow(
            ENTER_AS_MEMBER, TENANT_ID, MEMBERSHIP_ID, USER_ID, SESSION_ID
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
