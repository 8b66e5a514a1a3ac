"""OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

Off, nothing is instrumented and nothing here runs on a request: the checks are one module
flag. On, a request's trace continues into the jobs it queues (the W3C traceparent rides in the
job's payload, see infra.queue) and into their database, Redis and platform (httpx) calls.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from infra.security import redact_path

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

    from infra.settings import Settings

enabled = False
JOB_KWARG = "_traceparent"
"""The keyword a job's traced payload carries its parent's context under (the worker's wrapper
takes it out before calling the job)."""

_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None
_exporters: list[SpanExporter] = []


def configure_tracing(settings: Settings, *, exporter: SpanExporter | None = None) -> bool:
    """Installs the SDK and the instrumentations when an endpoint (or, in tests, an exporter)
    is given; answers whether tracing is on."""
    global enabled, _tracer
    if enabled:
        return True
    if exporter is None and not settings.otel_exporter_otlp_endpoint:
        return False
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # set once per process, as the API requires
        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.otel_service_name})
        )
        trace.set_tracer_provider(provider)
    if exporter is not None:
        if exporter not in _exporters:  # on again after `disable`: the same exporter, once
            _exporters.append(exporter)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = str(settings.otel_exporter_otlp_endpoint).rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    HTTPXClientInstrumentor().instrument(
        request_hook=_client_request, async_request_hook=_async_client_request
    )
    RedisInstrumentor().instrument()
    _tracer = trace.get_tracer("passerelle")
    enabled = True
    return True


def disable() -> None:
    """Removes the instrumentations (tests that turned tracing on, then go on without it)."""
    global enabled
    if not enabled:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    enabled = False


def instrument_app(app: Any) -> None:
    if enabled:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # Probes would make a trace every few seconds and tell nothing.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="/healthz,/readyz", server_request_hook=_server_request
        )


def instrument_engine(engine: AsyncEngine) -> None:
    """Per engine: the instrumentor's own `instrument(engine=...)` takes only the first one."""
    if enabled:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import get_meter

        name = "opentelemetry.instrumentation.sqlalchemy"
        # No meter provider is set: the pool's usage counter is a no-op, traces are the point.
        usage = get_meter(name).create_up_down_counter("db.client.connections.usage")
        EngineTracer(trace.get_tracer(name), engine.sync_engine, usage)  # type: ignore[no-untyped-call]
        from sqlalchemy import event

        # SQLAlchemy's tracer sees only what goes through it; the hottest reads run straight
        # on the driver connection (`infra.db.driver_connection`, `Database.read_transaction`).
        event.listen(engine.sync_engine.pool, "connect", _trace_driver_statements)


def _trace_driver_statements(dbapi_connection: Any, _record: Any) -> None:
    """Each new pooled connection reports its driver-level statements to a span. asyncpg's
    query logger reports those (and not SQLAlchemy's, which run as prepared statements and
    have their own spans) through `call_soon`, which carries the context of the statement's
    caller: the span is the request's or the job's child. asyncpg runs every transaction's
    BEGIN and COMMIT that way too, SQLAlchemy's included, so those round trips show as well."""
    dbapi_connection.driver_connection.add_query_logger(_driver_span)


_DRIVER_TRACER = "infra.db.driver"


def _driver_span(query: Any) -> None:
    ended = time.time_ns()
    statement = " ".join(str(query.query).split())
    span = trace.get_tracer(_DRIVER_TRACER).start_span(
        statement.split(" ", 1)[0].rstrip(";").upper() or "SQL",
        kind=trace.SpanKind.CLIENT,
        start_time=ended - int(query.elapsed * 1e9),
        attributes={"db.system": "postgresql", "db.statement": statement},
    )
    if query.exception is not None:
        span.record_exception(query.exception)
        span.set_status(trace.Status(trace.StatusCode.ERROR))
    span.end(end_time=ended)


_SECRET_PARAMS = re.compile(r"token|secret|code|signature|sig|key|password|state", re.IGNORECASE)
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")


def _redacted_url(url: str) -> str:
    """A URL fit for a span: approval-link tokens out of the path, no credentials, and no value
    of a query parameter that may carry a secret (an OAuth code, an access token)."""
    parts = urlsplit(url)
    path = redact_path(parts.path)
    if "@" not in parts.netloc and path == parts.path and not _SECRET_PARAMS.search(parts.query):
        return url
    query = urlencode(
        [
            (name, "REDACTED" if _SECRET_PARAMS.search(name) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def _redact_span(span: Any) -> None:
    if span is None or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        if name in attributes:
            span.set_attribute(name, _redacted_url(str(attributes[name])))
    if "url.path" in attributes:
        span.set_attribute("url.path", redact_path(str(attributes["url.path"])))
    if "url.query" in attributes:
        span.set_attribute("url.query", _redacted_url("?" + str(attributes["url.query"]))[1:])


def _server_request(span: Any, scope: dict[str, Any]) -> None:
    _redact_span(span)


def _client_request(span: Any, request: Any) -> None:
    _redact_span(span)


async def _async_client_request(span: Any, request: Any) -> None:
    _redact_span(span)


def current_traceparent() -> str | None:
    """The active span's W3C traceparent, for a job queued now; None without one."""
    if not enabled:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def job_span(function: str, traceparent: str | None, job_id: str | None) -> Iterator[None]:
    """The span of one job run, a child of the request (or job) that queued it."""
    if _tracer is None or not enabled:
        yield
        return
    parent = _propagator.extract({"traceparent": traceparent}) if traceparent else None
    token = context.attach(parent) if parent is not None else None
    try:
        with _tracer.start_as_current_span(
            f"job {function}",
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "arq", "messaging.operation.name": "process"}
            | ({"messaging.message.id": job_id} if job_id else {}),
        ):
            yield
    finally:
        if token is not None:
            context.detach(token)


def log_ids(_: object, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the active span's ids in each log line."""
    if enabled:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            event_dict["trace_id"] = format(span.trace_id, "032x")
            event_dict["span_id"] = format(span.span_id, "016x")
    return event_dict
