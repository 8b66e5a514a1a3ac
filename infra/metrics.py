"""Prometheus metrics: what the API, the jobs and the platforms' traffic are doing.

Multi-process: `passerelle serve --workers N` runs N processes and every worker is one more, so
the metrics are kept in prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is
set (the `serve` and `worker` commands set it, before this module is imported, whenever they
serve metrics); the endpoint then adds up every process's files. The endpoint is its own HTTP
server on METRICS_PORT, never a route of the public API.

Labels are bounded: a route's template (never its path), a job's function, a platform's name.
"""

from __future__ import annotations

import asyncio
import os
import time
from types import TracebackType
from typing import Any

from arq.worker import Retry, RetryJob
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "passerelle_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "passerelle_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ADMISSION_WAITING = Gauge(
    "passerelle_http_requests_waiting",
    "Requests waiting for one of the API_CONCURRENCY places of their process (api.admission).",
    multiprocess_mode="livesum",
)
JOBS_QUEUED = Counter("passerelle_jobs_queued", "Jobs put in the queue, by function.", ["function"])
JOBS_RUNNING = Gauge(
    "passerelle_jobs_running",
    "Jobs running now, by function.",
    ["function"],
    multiprocess_mode="livesum",
)
JOBS_FINISHED = Counter(
    "passerelle_jobs_finished",
    "Job runs ended, by function and outcome (succeeded, failed, retried, cancelled).",
    ["function", "outcome"],
)
JOB_DURATION = Histogram(
    "passerelle_job_duration_seconds",
    "How long a job run took, by function.",
    ["function"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
_LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
OUTBOX_LAG = Histogram(
    "passerelle_outbox_lag_seconds",
    "Time from an outbox event's commit to its delivery.",
    buckets=_LAG_BUCKETS,
)
SYNC_LAG = Histogram(
    "passerelle_social_sync_lag_seconds",
    "Time from an account's scheduled sync to the sync's start, by platform.",
    ["platform"],
    buckets=_LAG_BUCKETS,
)
PUBLICATION_LATENESS = Histogram(
    "passerelle_publication_lateness_seconds",
    "Time from a publication's planned time to its publication, by platform.",
    ["platform"],
    buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 86400.0),
)
INBOX_SLA_BREACHES = Counter(
    "passerelle_inbox_sla_breaches", "Inbox items whose response target passed unanswered."
)
RATE_BUDGET_WAIT = Histogram(
    "passerelle_rate_budget_wait_seconds",
    "Time spent waiting for a platform's request budget before calling it, by platform.",
    ["platform"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"
"""The route label of a request no route matched: its path would make one series per probe."""

_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One counter and one histogram observation; the labelled children are looked up once per
    (route, method, status), since `labels()` costs more than the observations themselves."""
    key = (route, method, status)
    children = _http_children.get(key)
    if children is None:
        if method not in _METHODS:
            method = "other"
        children = (
            HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_DURATION.labels(route, method),
        )
        _http_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


class JobRun:
    """Counts one job run: running while inside, then its outcome and duration."""

    __slots__ = ("function", "started")

    def __init__(self, function: str) -> None:
        self.function = function
        self.started = 0.0

    def __enter__(self) -> JobRun:
        JOBS_RUNNING.labels(self.function).inc()
        self.started = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        JOB_DURATION.labels(self.function).observe(time.perf_counter() - self.started)
        JOBS_RUNNING.labels(self.function).dec()
        JOBS_FINISHED.labels(self.function, _outcome(kind)).inc()


def _outcome(kind: type[BaseException] | None) -> str:
    if kind is None:
        return "succeeded"
    if issubclass(kind, Retry | RetryJob):
        return "retried"
    if issubclass(kind, asyncio.CancelledError):
        return "cancelled"  # a timeout, or a worker stopping: arq decides whether it runs again
    return "failed"


def registry() -> CollectorRegistry:
    """What the endpoint exports: every process's files in multiprocess mode, else this one's."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    collected = CollectorRegistry()
    _multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


def serve_metrics(port: int, host: str) -> None:
    """The `/metrics` endpoint on its own port, in a thread of this process."""
    start_http_server(port, addr=host, registry=registry())


def process_ended(pid: int | None = None) -> None:
    """Drops a finished process's running-jobs gauge (its counters and histograms stay summed)."""
    if os.environ.get(MULTIPROC_ENV):
        _multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
