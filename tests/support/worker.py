"""The real arq worker, run by tests that need jobs done (only those due now or very soon)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

from arq.constants import default_queue_name, in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

from infra import outbox
from infra.queue import create_queue, redis_settings
from main.worker import WorkerSettings, shutdown, startup

ROOT = Path(__file__).resolve().parents[2]


async def run_worker(settings, *, soon: float = 10.0, limit: float = 180.0) -> None:
    """Run every queued job that is due now or within `soon` seconds (a job's own short retry),
    with the production start-up, then stop.

    arq's burst mode would also wait for jobs deferred further out, such as a publication
    planned next week (or, once a test's clock has moved back to today, one planned in a
    test's 2027): it would never stop."""
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
                waiting = await _waiting(queue, timestamp_ms() + soon * 1000)
                quiet = quiet + 1 if waiting == 0 and not worker.tasks else 0
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()
        await queue.aclose()


async def _waiting(queue, horizon_ms: float) -> int:
    """Jobs due by the horizon that this worker could take: not those still marked in progress
    by another worker (a worker a test killed leaves its jobs marked until their timeout)."""
    job_ids = await queue.zrangebyscore(default_queue_name, 0, horizon_ms)
    if not job_ids:
        return 0
    held = await asyncio.gather(
        *(queue.exists(in_progress_key_prefix + job_id.decode()) for job_id in job_ids)
    )
    return sum(1 for marked in held if not marked)


async def run_due_jobs(settings, *, limit: float = 60.0) -> None:
    """Run the queued jobs whose time has come, then stop (none deferred, however soon)."""
    await run_worker(settings, soon=0.0, limit=limit)


async def deliver_events(resources, settings, tenant_id: uuid.UUID, *, run=None) -> None:
    """What the worker's outbox sweep does for one agency, then the delivery it queues. Only
    that agency's: the database is shared by the whole run, and the others' events (an inbox
    fills with them) belong to other tests."""
    await outbox.enqueue_delivery(resources.queue, tenant_id, job_key=f"test-{uuid.uuid4()}")
    await (run or run_due_jobs)(settings)


def start_worker_process(log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A real `passerelle worker` of this checkout, in its own process (for the tests that
    SIGKILL one mid-job), with the run's settings plus `env`; its output is appended to `log`,
    which a failing test shows."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "passerelle"), "worker"],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "INFO", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_process(process: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """SIGTERM (a worker finishes or hands back its jobs), then SIGKILL after `grace` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
