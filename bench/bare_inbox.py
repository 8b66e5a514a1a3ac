"""The baseline of the inbox benchmark: the least a webhook receiver can do to accept a Meta
delivery as the full stack does.

Plain Starlette + a raw asyncpg pool, served by uvicorn with the settings `passerelle serve`
uses (one process, uvicorn's automatic loop/http choice, no access log). Per request it reads
the raw body, checks `X-Hub-Signature-256` (HMAC-SHA256 of the body with the app secret,
compared in constant time), parses the JSON, and inserts the same raw row into the same table
as the full stack, in one statement (autocommit):

    INSERT INTO platform_events (id, platform, digest, body, received_at)
    VALUES (...) ON CONFLICT ON CONSTRAINT uq_platform_events_digest DO NOTHING RETURNING id

It answers the same JSON ({"received": true, "duplicate": ...}). No middleware, no dependency
injection, no response model, no job queued for the worker (the full stack queues one in Redis
after the commit: part of what the ratio measures).

Run by bench/inbox.py:  python bench/bare_inbox.py --host 127.0.0.1 --port N
Environment: BARE_DSN (postgresql://, the application role), BARE_POOL_SIZE, BARE_SECRET (the
app secret deliveries are signed with).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import uuid_utils
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.bare_serve import serve

INSERT = (
    "INSERT INTO platform_events (id, platform, digest, body, received_at) "
    "VALUES ($1, $2, $3, $4::jsonb, $5) "
    "ON CONFLICT ON CONSTRAINT uq_platform_events_digest DO NOTHING RETURNING id"
)
PLATFORMS = ("facebook_page", "instagram_business")
MAX_BODY = 1024 * 1024

SECRET = os.environ["BARE_SECRET"].encode()
POOL_SIZE = int(os.environ.get("BARE_POOL_SIZE", "10"))


async def _no_reset(_: asyncpg.Connection) -> None:
    """Nothing to reset: each statement commits on its own (see bench/bare_app.py)."""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(
        os.environ["BARE_DSN"],
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        reset=_no_reset,
        server_settings={"application_name": "passerelle_bench_bare_inbox"},
    )
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


async def receive(request: Request) -> JSONResponse:
    platform = request.path_params["platform"]
    if platform not in PLATFORMS:
        return JSONResponse({"detail": "unknown platform"}, status_code=404)
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"detail": "too large"}, status_code=413)
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    given = request.headers.get("x-hub-signature-256", "").strip()
    if not hmac.compare_digest(expected, given):
        return JSONResponse({"detail": "bad signature"}, status_code=401)
    try:
        payload = json.loads(body)
    except ValueError:
        return JSONResponse({"detail": "not JSON"}, status_code=400)
    if not isinstance(payload, dict):
        return JSONResponse({"detail": "not an object"}, status_code=400)
    pool: asyncpg.Pool = request.app.state.pool
    # The same time-ordered id as the full stack (infra.ids.new_id): a random one would spread
    # the inserts over the primary key's index and make the baseline slower than it need be.
    inserted = await pool.fetchval(
        INSERT,
        uuid.UUID(bytes=uuid_utils.uuid7().bytes),
        platform,
        hashlib.sha256(body).hexdigest(),
        json.dumps(payload),
        datetime.now(UTC),
    )
    return JSONResponse({"received": True, "duplicate": inserted is None})


async def readyz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ready"})


app = Starlette(
    routes=[
        Route("/v1/platform-webhooks/{platform}", receive, methods=["POST"]),
        Route("/readyz", readyz),
    ],
    lifespan=lifespan,
)


def main() -> None:
    serve(app, __doc__.splitlines()[0], import_string="bench.bare_inbox:app")


if __name__ == "__main__":
    main()
