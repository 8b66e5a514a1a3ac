"""Health, readiness and the public signing keys."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import ResourcesDep
from api.problems import responses
from infra.db import migrations_at_head
from infra.errors import ServiceUnavailable

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses=responses(503),
    summary="Database and Redis answer, and the database's migrations are the code's",
)
async def readyz(resources: ResourcesDep) -> dict[str, str]:
    try:
        async with resources.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable("The database does not answer.") from exc
    try:
        await resources.redis.ping()
    except Exception as exc:
        raise ServiceUnavailable("Redis does not answer.") from exc
    try:
        at_head = await migrations_at_head(resources.db)
    except Exception as exc:
        raise ServiceUnavailable("The database's migration version cannot be read.") from exc
    if not at_head:
        raise ServiceUnavailable(
            "The database is not at this version's migrations: run `passerelle migrate`."
        )
    return {"status": "ready"}


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(resources: ResourcesDep) -> dict[str, Any]:
    return resources.signer.public_jwks()
