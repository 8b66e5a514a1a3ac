"""Health, readiness and the public signing keys."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import ResourcesDep
from api.problems import responses
from infra.errors import ServiceUnavailable

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=responses(503), summary="Database and Redis answer")
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
    return {"status": "ready"}


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(resources: ResourcesDep) -> dict[str, Any]:
    return resources.signer.public_jwks()
