"""OpenTelemetry traces, read from the SDK's in-memory exporter: one trace from a request to
the job it queues to that job's calls to the platform (the simulator, over real HTTP), and the
trace's ids in the log lines written under it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from infra import tracing
from tests.support.factories import new_world
from tests.support.worker import run_worker

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans(settings) -> Iterator[InMemorySpanExporter]:
    tracing.configure_tracing(settings, exporter=_exporter)
    _exporter.clear()
    yield _exporter
    tracing.disable()  # the other tests of the session run untraced, as by default


@pytest.fixture
async def traced_client(spans, settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app made while tracing is on (the session's app was made without it)."""
    from api.app import create_app

    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def _connect(client: httpx.AsyncClient, world, platform: str) -> dict:
    started = await client.post(
        f"/v1/brands/{world.brand['id']}/social-accounts/connect",
        params={"platform": platform},
        headers=world.boss,
    )
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(started.json()["authorization_url"], follow_redirects=False)
    assert consent.status_code == 302, consent.text
    back = httpx.URL(consent.headers["location"])
    response = await client.get(back.path, params=back.params)
    assert response.status_code == 200, response.text
    return response.json()


def _url(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    # The stable name, or the older one (the default until OTEL_SEMCONV_STABILITY_OPT_IN).
    return str(attributes.get("url.full") or attributes.get("http.url") or "")


def tree(spans: list[ReadableSpan]) -> str:
    """The spans as an indented tree, parents first (what the closing note shows)."""
    children: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans}
    for s in sorted(spans, key=lambda s: s.start_time or 0):
        parent = s.parent.span_id if s.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(s)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in children.get(parent, []):
            where = f" {_url(s)}" if _url(s) else ""
            lines.append(f"{'  ' * depth}{s.name} [{s.kind.name.lower()}]{where}")
            walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


async def test_one_trace_from_the_request_to_the_job_to_the_platform(
    traced_client, spans, settings, platforms
):
    client = traced_client
    world = await new_world(client)
    account = await _connect(client, world, "linkedin_organization")
    await run_worker(settings)  # the first sync the connection queued
    # The OAuth callback's code and state are secrets: its span keeps their names only.
    callbacks = [
        _url(s)
        for s in spans.get_finished_spans()
        if s.kind is trace.SpanKind.SERVER and "/callback" in _url(s)
    ]
    assert callbacks and all("code=REDACTED" in url for url in callbacks), callbacks
    assert not any(f"code={secret}" in url for url in callbacks for secret in "0123456789")
    spans.clear()

    response = await client.post(f"/v1/social-accounts/{account['id']}/sync", headers=world.boss)
    assert response.status_code == 202, response.text
    await run_worker(settings)

    server, ours = _trace_of_request(spans, "/v1/social-accounts/{account_id}/sync")
    job = [s for s in ours if s.name == "job sync_social_account"]
    assert len(job) == 1, tree(ours)
    simulator = httpx.URL(platforms.base_url("linkedin_organization"))
    platform_calls = [
        s
        for s in ours
        if s.kind is trace.SpanKind.CLIENT
        and _url(s).startswith(f"http://{simulator.host}:{simulator.port}")
    ]
    assert platform_calls, tree(ours)
    # The platform calls are the job's, and the job is the request's.
    by_id = {s.context.span_id: s for s in ours}

    def ancestors(span: ReadableSpan) -> set[int]:
        found = set()
        while span.parent is not None and span.parent.span_id in by_id:
            found.add(span.parent.span_id)
            span = by_id[span.parent.span_id]
        return found

    assert all(job[0].context.span_id in ancestors(call) for call in platform_calls)
    assert server.context.span_id in ancestors(job[0])
    assert any(s.name.startswith(("SELECT", "INSERT", "UPDATE")) for s in ours)  # the database
    print("\n" + tree(ours))


def test_log_lines_carry_the_active_span_ids(spans):
    tracer = trace.get_tracer("test")
    assert tracing.log_ids(None, "info", {}) == {}
    with tracer.start_as_current_span("work") as span:
        line = tracing.log_ids(None, "info", {"event": "x"})
    context = span.get_span_context()
    assert line == {
        "event": "x",
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


async def test_off_by_default_no_trace_context_rides_with_jobs(app, settings):
    """Without OTEL_EXPORTER_OTLP_ENDPOINT nothing is instrumented and jobs carry nothing."""
    from infra.queue import deserialize, serialize

    assert settings.otel_exporter_otlp_endpoint is None
    assert not tracing.enabled
    payload = deserialize(serialize({"t": 1, "f": "deliver_outbox", "a": [], "k": {}, "et": 1}))
    assert payload["k"] == {}


async def test_the_hottest_reads_statements_are_spans_of_their_request(traced_client, spans):
    """`GET /v1/members` reads on the driver connection, past SQLAlchemy's tracer: its
    statements still show in the request's trace, the tenant entry and the list among them."""
    world = await new_world(traced_client)
    spans.clear()
    response = await traced_client.get("/v1/members", headers=world.boss)
    assert response.status_code == 200, response.text
    await asyncio.sleep(0)  # asyncpg reports a statement with call_soon: the COMMIT's is next
    _, ours = _trace_of_request(spans, "/v1/members")
    statements = [
        str((s.attributes or {}).get("db.statement", ""))
        for s in ours
        if s.kind is trace.SpanKind.CLIENT
    ]
    assert any("enter_tenant_as_member" in text for text in statements), tree(ours)
    assert any("FROM memberships" in text for text in statements), tree(ours)
    assert "BEGIN READ ONLY;" in statements and "COMMIT;" in statements, tree(ours)


def _trace_of_request(spans, route: str) -> tuple:
    """The server span of the one request served on `route`, and every finished span of its
    trace (its jobs' included)."""
    finished = list(spans.get_finished_spans())
    server = [
        s
        for s in finished
        if s.kind is trace.SpanKind.SERVER
        and s.attributes
        and s.attributes.get("http.route") == route
    ]
    assert len(server) == 1, [s.name for s in finished]
    return server[0], [s for s in finished if s.context.trace_id == server[0].context.trace_id]
