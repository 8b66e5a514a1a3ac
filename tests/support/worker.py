"""The real arq worker, run in burst mode by tests that need jobs done."""

from __future__ import annotations

import asyncio
import contextlib

from arq.constants import default_queue_name
from arq.utils import timestamp_ms
from arq.worker import Worker

from infra.queue import create_queue, redis_settings
from main.worker import WorkerSettings, shutdown, startup


async def run_worker(settings) -> None:
    """Run every queued job (with the production start-up), then stop."""
    worker = Worker(
        functions=WorkerSettings.functions,
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=redis_settings(str(settings.redis_url)),
        job_serializer=WorkerSettings.job_serializer,
        job_deserializer=WorkerSettings.job_deserializer,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
    )
    try:
        await worker.main()
    finally:
        await worker.close()


async def run_due_jobs(settings, *, limit: float = 60.0) -> None:
    """Run the queued jobs whose time has come, then stop. (Burst mode waits for every job,
    deferred ones included: a publication planned next week would hold it.)"""
    worker = Worker(
        functions=WorkerSettings.functions,
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=redis_settings(str(settings.redis_url)),
        job_serializer=WorkerSettings.job_serializer,
        job_deserializer=WorkerSettings.job_deserializer,
        poll_delay=0.05,
        handle_signals=False,
    )
    queue = await create_queue(str(settings.redis_url))
    running = asyncio.create_task(worker.main())
    try:
        async with asyncio.timeout(limit):
            quiet = 0
            while quiet < 4:
                await asyncio.sleep(0.05)
                assert not running.done(), running.exception()
                ready = await queue.zcount(default_queue_name, 0, timestamp_ms())
                quiet = quiet + 1 if ready == 0 and not worker.tasks else 0
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()
        await queue.aclose()
