"""arq plumbing: Redis settings, JSON (not pickle) serialization, the enqueueing pool."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from infra import metrics, tracing
from infra.clock import utcnow


def redis_settings(url: str) -> RedisSettings:
    # arq connects with a 1 s timeout and gives up on the first timed-out command: a busy
    # moment on Redis's host (seen once in CI, mid-job) must not fail a job. 5 s, and retry.
    return replace(RedisSettings.from_dsn(url), conn_timeout=5, retry_on_timeout=True)


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, default=str, separators=(",", ":")).encode()


def serialize(obj: dict[str, Any]) -> bytes:
    """arq's serializer for jobs and results. Every path that queues a job (a request's
    after-commit jobs, the worker's own, cron) goes through here: a job (no result "r" yet) is
    counted, and carries the active trace's context so that its run continues the trace."""
    if "r" not in obj:
        metrics.JOBS_QUEUED.labels(obj["f"]).inc()
        traceparent = tracing.current_traceparent()
        if traceparent is not None:
            obj = {**obj, "tp": traceparent}
    return _dump(obj)


def deserialize(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(data)
    traceparent = obj.pop("tp", None)
    if traceparent is not None:
        # arq passes on only the function, args and kwargs: the worker's wrapper takes it out.
        obj["k"] = {**obj.get("k", {}), tracing.JOB_KWARG: traceparent}
    return obj


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


# arq's enqueue_job in one step: refused when the id is queued, running or kept as a result
# (its WATCH/EXISTS), else the job and its place in the queue (its MULTI).
_ENQUEUE_NEW = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""
ENQUEUE_BATCH = 500


@dataclass(frozen=True)
class NewJob:
    function: str
    args: tuple[Any, ...]
    job_id: str


async def enqueue_many(queue: ArqRedis, jobs: Sequence[NewJob]) -> int:
    """What `enqueue_job` does for each job (same keys, same serialized job, same refusal of an
    id already known), one round trip per ENQUEUE_BATCH jobs instead of three per job: a
    scheduler queuing thousands must not cost the worker more than the jobs it queues. The
    jobs keep their order in the queue. Answers how many were new."""
    enqueue = queue.register_script(_ENQUEUE_NEW)
    traceparent = tracing.current_traceparent()
    added = 0
    for start in range(0, len(jobs), ENQUEUE_BATCH):
        batch = jobs[start : start + ENQUEUE_BATCH]
        now = timestamp_ms()
        async with queue.pipeline(transaction=False) as pipe:
            for n, job in enumerate(batch):
                # Counted below, once Redis said which were new.
                payload = serialize_job(
                    job.function,
                    job.args,
                    {tracing.JOB_KWARG: traceparent} if traceparent else {},
                    None,
                    now,
                    serializer=_dump,
                )
                await enqueue(
                    keys=[
                        job_key_prefix + job.job_id,
                        result_key_prefix + job.job_id,
                        queue.default_queue_name,
                    ],
                    # Scores a fraction of a millisecond apart: arq takes the queue in score
                    # order, and equal scores would come back in the ids' order instead.
                    args=[queue.expires_extra_ms, payload, now + n / len(batch), job.job_id],
                    client=pipe,
                )
            results = await pipe.execute()
        for job, new in zip(batch, results, strict=True):
            if new:
                metrics.JOBS_QUEUED.labels(job.function).inc()
        added += sum(results)
    return added


async def run_after_commit(session: Any, queue: ArqRedis) -> None:
    for function, args, job_id, defer_until in session.info.pop("after_commit_jobs", []):
        await queue.enqueue_job(
            function, *args, _job_id=job_id, _defer_until=not_before(defer_until)
        )
