"""`/readyz`: ready only when the database, Redis and the database's migrations are the ones
this code needs; otherwise a 503 problem that says what is missing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

from infra.db import migration_heads


@asynccontextmanager
async def owner() -> AsyncIterator[asyncpg.Connection]:
    url = make_url(os.environ["DATABASE_OWNER_URL"])
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        yield conn
    finally:
        await conn.close()


async def test_ready_when_the_database_is_at_the_codes_migrations(client):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}
    async with owner() as conn:
        assert {await conn.fetchval("SELECT version_num FROM alembic_version")} == set(
            migration_heads()
        )


async def test_not_ready_while_the_database_is_behind(client):
    """A deploy whose `passerelle migrate` has not run: the new code must not take traffic."""
    (head,) = migration_heads()
    async with owner() as conn:
        await conn.execute("UPDATE alembic_version SET version_num = '0013'")
        try:
            response = await client.get("/readyz")
        finally:
            await conn.execute("UPDATE alembic_version SET version_num = $1", head)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 503
    assert "passerelle migrate" in problem["detail"]
    assert (await client.get("/readyz")).status_code == 200
