"""arq plumbing: Redis settings, JSON (not pickle) serialization, the enqueueing pool."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix, result_key_prefix

from infra.clock import utcnow


def redis_settings(url: str) -> RedisSettings:
    # arq connects with a 1 s timeout and gives up on the first timed-out command: a busy
    # moment on Redis's host (seen once in CI, mid-job) must not fail a job. 5 s, and retry.
    return replace(RedisSettings.from_dsn(url), conn_timeout=5, retry_on_timeout=True)


def serialize(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, default=str, separators=(",", ":")).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    return json.loads(data)  # type: ignore[no-any-return]


async def create_queue(url: str) -> ArqRedis:
    return await create_pool(
        redis_settings(url), job_serializer=serialize, job_deserializer=deserialize
    )


def enqueue_after_commit(
    session: Any, function: str, *args: Any, job_id: str, defer_until: datetime | None = None
) -> None:
    """Remember a job for when this session's transaction has committed: a rolled-back
    request enqueues nothing. The request's session dependency enqueues them."""
    session.info.setdefault("after_commit_jobs", []).append((function, args, job_id, defer_until))


def not_before(at: datetime | None) -> datetime | None:
    """`_defer_until` for arq: None once the time has come. arq keeps a deferred job's key for
    a day past its time, so a time more than a day gone (a worker down that long) would make an
    expiry below zero, which Redis refuses."""
    if at is None or at <= utcnow():
        return None
    return at


async def job_exists(queue: ArqRedis, job_id: str) -> bool:
    """Whether arq would refuse this job id now: a job under it is waiting or running, or its
    result is kept (the same keys `enqueue_job` checks)."""
    return bool(await queue.exists(job_key_prefix + job_id, result_key_prefix + job_id))


async def run_after_commit(session: Any, queue: ArqRedis) -> None:
    for function, args, job_id, defer_until in session.info.pop("after_commit_jobs", []):
        await queue.enqueue_job(
            function, *args, _job_id=job_id, _defer_until=not_before(defer_until)
        )
