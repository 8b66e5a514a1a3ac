"""arq plumbing: Redis settings, JSON (not pickle) serialization, the enqueueing pool."""

from __future__ import annotations

import json
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def serialize(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, default=str, separators=(",", ":")).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    return json.loads(data)  # type: ignore[no-any-return]


async def create_queue(url: str) -> ArqRedis:
    return await create_pool(
        redis_settings(url), job_serializer=serialize, job_deserializer=deserialize
    )
