"""Prometheus metrics as a scraper reads them: from the real `passerelle serve` and
`passerelle worker` programs, on their own metrics port, added up across processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from arq.jobs import Job, JobResult
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from devtools.smtp import free_port
from infra import outbox
from infra.outbox import Event
from infra.queue import create_queue

ROOT = Path(__file__).resolve().parents[2]


def _start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from main.cli import app; app()", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(url: str, process: subprocess.Popen, log: Path, *, limit: float = 240.0) -> None:
    """Long: on a machine busy with other suites, the app's imports alone take a minute."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered:\n{log.read_text()}")


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the metrics endpoint, by name and labels."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def _finished(job: Job) -> JobResult:
    while True:
        info = await job.result_info()
        if info is not None:
            return info
        await asyncio.sleep(0.1)


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        _stop(process)


def test_two_api_processes_add_up_on_one_metrics_endpoint(settings, processes, tmp_path):
    """Two `serve` processes write to one multiprocess directory; the one with a metrics port
    exports both. Requests are counted by route template, never by path, and the metrics are no
    route of the API itself."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    log = tmp_path / "serve.log"
    first, second, metrics_port = free_port(), free_port(), free_port()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    processes.append(
        _start(["serve", "--port", str(first), "--metrics-port", str(metrics_port)], log, **env)
    )
    processes.append(_start(["serve", "--port", str(second)], log, **env))
    for port, process in ((first, processes[0]), (second, processes[1])):
        _wait_for(f"http://127.0.0.1:{port}/healthz", process, log)
    before = scrape(metrics_port)

    for _ in range(5):
        assert httpx.get(f"http://127.0.0.1:{first}/healthz").status_code == 200
    for _ in range(7):
        assert httpx.get(f"http://127.0.0.1:{second}/healthz").status_code == 200
    brands = [f"http://127.0.0.1:{second}/v1/brands/{uuid.uuid4()}" for _ in range(3)]
    for url in brands:  # three paths, one route
        assert httpx.get(url).status_code == 401
    assert httpx.get(f"http://127.0.0.1:{first}/no/such/{uuid.uuid4()}").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{first}/static/{uuid.uuid4()}.css").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{first}/metrics").status_code == 404

    after = scrape(metrics_port)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert (
        grew("passerelle_http_requests_total", route="/healthz", method="GET", status="200") == 12
    )
    assert (
        grew("passerelle_http_request_duration_seconds_count", route="/healthz", method="GET") == 12
    )
    assert (
        grew(
            "passerelle_http_requests_total",
            route="/v1/brands/{brand_id}",
            method="GET",
            status="401",
        )
        == 3
    )
    assert (
        grew("passerelle_http_requests_total", route="(unmatched)", method="GET", status="404") == 2
    )
    routes = {dict(labels).get("route") for (name, labels) in after}
    assert not any(route and "/no/such/" in route for route in routes)
    assert {f.name.split(".")[0].rsplit("_", 1)[-1] for f in shared.iterdir()} >= {
        str(processes[0].pid),
        str(processes[1].pid),
    }


async def test_a_workers_jobs_are_counted_by_function_and_outcome(settings, processes, tmp_path):
    """The worker serves its own metrics: a job that ran, one that failed, and the queue's count
    of jobs put in by this process."""
    log = tmp_path / "worker.log"
    shared = tmp_path / "metrics"
    shared.mkdir()
    metrics_port = free_port()
    queued_before = REGISTRY.get_sample_value(
        "passerelle_jobs_queued_total", {"function": "deliver_outbox"}
    )
    queue = await create_queue(str(settings.redis_url))
    try:
        fine = await queue.enqueue_job("deliver_outbox", str(uuid.uuid4()))
        broken = await queue.enqueue_job("deliver_outbox", "not-a-tenant-id")
        assert fine is not None and broken is not None
        processes.append(
            _start(
                ["worker", "--metrics-port", str(metrics_port)],
                log,
                PROMETHEUS_MULTIPROC_DIR=str(shared),
                INBOX_READS="false",
            )
        )
        assert await asyncio.wait_for(fine.result(poll_delay=0.1), 90) == 0
        failed = await asyncio.wait_for(_finished(broken), 30)
        assert failed.success is False
    finally:
        await queue.aclose()
    assert (
        REGISTRY.get_sample_value("passerelle_jobs_queued_total", {"function": "deliver_outbox"})
        == (queued_before or 0) + 2
    )

    samples = scrape(metrics_port)
    outcome = "passerelle_jobs_finished_total"
    # At least: the worker also runs what earlier tests of the session left in this Redis.
    assert value(samples, outcome, function="deliver_outbox", outcome="succeeded") >= 1
    assert value(samples, outcome, function="deliver_outbox", outcome="failed") >= 1
    assert value(samples, "passerelle_job_duration_seconds_count", function="deliver_outbox") >= 2
    # Back to none running once the queue is drained (the start-up sweep may queue deliveries
    # of other tests' agencies, still running at the first scrape).
    deadline = time.monotonic() + 60
    while value(samples, "passerelle_jobs_running", function="deliver_outbox") != 0:
        assert time.monotonic() < deadline, "a deliver_outbox job still counted as running"
        await asyncio.sleep(0.5)
        samples = scrape(metrics_port)
    # Its crons run at start-up too, under their own names.
    deadline = time.monotonic() + 60
    while not value(samples, outcome, function="cron:sweep_outbox", outcome="succeeded"):
        assert time.monotonic() < deadline, sorted({dict(k[1]).get("function") for k in samples})
        await asyncio.sleep(0.5)
        samples = scrape(metrics_port)


async def test_a_job_runs_outcome_is_what_arq_does_with_it():
    """The worker's wrapper (main.worker.observed), run in this process: returned, raised, asked
    for a retry, cut by a timeout."""
    from arq.worker import Retry

    from main.worker import observed

    def finished(outcome: str) -> float:
        labels = {"function": "probe", "outcome": outcome}
        return REGISTRY.get_sample_value("passerelle_jobs_finished_total", labels) or 0.0

    async def probe(ctx: dict, how: str) -> str:
        if how == "raise":
            raise LookupError(how)
        if how == "retry":
            raise Retry(defer=1)
        if how == "hang":
            await asyncio.sleep(60)
        return how

    run = observed("probe", probe)
    before = {o: finished(o) for o in ("succeeded", "failed", "retried", "cancelled")}
    assert await run({"job_id": "j1"}, "fine") == "fine"
    with pytest.raises(LookupError):
        await run({"job_id": "j2"}, "raise")
    with pytest.raises(Retry):
        await run({"job_id": "j3"}, "retry")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(run({"job_id": "j4"}, "hang"), 0.05)
    assert {o: finished(o) - before[o] for o in before} == {
        "succeeded": 1,
        "failed": 1,
        "retried": 1,
        "cancelled": 1,
    }
    running = REGISTRY.get_sample_value("passerelle_jobs_running", {"function": "probe"})
    assert running == 0


@outbox.handler("test.metrics_lag")
async def _delivered(ctx, event: Event) -> None:
    DELIVERED_FOR_LAG.append(event.id)


DELIVERED_FOR_LAG: list[uuid.UUID] = []


async def test_delivered_outbox_events_show_their_lag(client, db, resources, settings, clock):
    """Two events of one agency, delivered 90 s after their commit: two observations of the
    time from commit to delivery, in the 90 s range. Delivered directly (not by a worker that
    would also run the rest of the run's queue), so only these two count."""
    from tests.support.factories import new_agency

    def sample(suffix: str, **labels: str) -> float:
        name = f"passerelle_outbox_lag_seconds_{suffix}"
        return REGISTRY.get_sample_value(name, labels or None) or 0.0

    agency = await new_agency(client)
    async with db.tenant_transaction(agency.tenant_id) as session:
        events = [
            outbox.record_event(
                session,
                tenant_id=agency.tenant_id,
                type="test.metrics_lag",
                aggregate_type="test",
                aggregate_id=uuid.uuid4(),
                payload={},
            )
            for _ in range(2)
        ]
    clock.advance(timedelta(seconds=90))
    count, total = sample("count"), sample("sum")
    ctx = {"db": db, "settings": settings, "signer": resources.signer, "redis": resources.queue}
    assert await outbox.deliver_pending(ctx, agency.tenant_id) == 2
    assert {e.id for e in events} <= set(DELIVERED_FOR_LAG)
    assert sample("count") - count == 2
    assert 180 <= sample("sum") - total < 200
