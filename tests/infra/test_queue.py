"""The batched enqueue the schedulers use: arq's own job, arq's refusal of a known id."""

from __future__ import annotations

import uuid

from arq.constants import default_queue_name, job_key_prefix
from arq.jobs import Job, JobStatus

from infra.queue import NewJob, deserialize, enqueue_many


async def test_enqueue_many_queues_what_enqueue_job_would_in_order(resources) -> None:
    queue = resources.queue
    ids = [f"test-enqueue-many:{uuid.uuid4()}" for _ in range(4)]
    try:
        assert await queue.enqueue_job("no_such_job", 0, _job_id=ids[0]) is not None
        jobs = [NewJob("no_such_job", (n,), job_id) for n, job_id in enumerate(ids)]

        assert await enqueue_many(queue, jobs) == 3  # the first id is known already
        assert await enqueue_many(queue, jobs) == 0
        assert await queue.enqueue_job("no_such_job", 9, _job_id=ids[2]) is None

        for n, job_id in enumerate(ids):
            job = Job(job_id, queue, _deserializer=deserialize)
            assert await job.status() == JobStatus.queued
            info = await job.info()
            assert info is not None and (info.function, info.args) == ("no_such_job", [n])  # JSON
        queued = [m.decode() for m in await queue.zrange(default_queue_name, 0, -1)]
        assert [m for m in queued if m in ids] == ids
    finally:
        await queue.zrem(default_queue_name, *ids)
        await queue.delete(*(job_key_prefix + job_id for job_id in ids))
