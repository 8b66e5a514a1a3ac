"""The real arq worker, run in burst mode by tests that need jobs done."""

from __future__ import annotations

from arq.worker import Worker

from infra.queue import redis_settings
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
