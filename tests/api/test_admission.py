"""Admission (api/admission.py): a process works on API_CONCURRENCY requests at a time, the
others wait in the order they came; a request waiting on its client or already answering
holds no place; /healthz is never held up.

The gate's order is checked on its own; what a client notices, on the real app served by a
real uvicorn with one place."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import StreamingResponse

from api.admission import AdmissionMiddleware, Gate
from tests.support.served import served

# ---------------------------------------------------------------------------------------------
# The gate


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _entering(gate: Gate, order: list[str], name: str, *, first: bool = False) -> asyncio.Task:
    async def enter() -> None:
        await gate.enter(first=first)
        order.append(name)

    return asyncio.create_task(enter())


async def test_places_go_to_waiters_in_the_order_they_came_and_newcomers_queue_behind():
    gate, order = Gate(1), []
    await gate.enter()
    waiters = [_entering(gate, order, name) for name in ("b", "c", "d")]
    await _settle()
    assert gate.waiting() == 3 and order == []

    gate.leave()
    # A newcomer in the same turn: the place is already b's.
    late = _entering(gate, order, "late")
    await _settle()
    assert order == ["b"]
    for _ in range(3):
        gate.leave()
        await _settle()
    assert order == ["b", "c", "d", "late"]
    await asyncio.gather(*waiters, late)


async def test_a_request_taking_its_place_back_goes_ahead_of_those_waiting():
    gate, order = Gate(1), []
    await gate.enter()
    queued = _entering(gate, order, "queued")
    await _settle()
    back = _entering(gate, order, "back", first=True)
    await _settle()
    gate.leave()
    await _settle()
    gate.leave()
    await _settle()
    assert order == ["back", "queued"]
    await asyncio.gather(queued, back)


@pytest.mark.parametrize("handed_over_first", [False, True])
async def test_a_cancelled_waiter_loses_no_place(handed_over_first):
    gate, order = Gate(1), []
    await gate.enter()
    gone = _entering(gate, order, "gone")
    after = _entering(gate, order, "after")
    await _settle()
    if handed_over_first:
        gate.leave()  # the place is handed to "gone", which is cancelled before it runs
    gone.cancel()
    if not handed_over_first:
        gate.leave()
    await _settle()
    assert gone.cancelled()
    assert order == ["after"]
    gate.leave()
    assert gate.free == 1 and gate.waiting() == 0
    await after


# ---------------------------------------------------------------------------------------------
# The real app, one place


@dataclass
class Served:
    url: str
    admission: AdmissionMiddleware
    release: asyncio.Event


def _admission_of(app: FastAPI) -> AdmissionMiddleware:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, AdmissionMiddleware):
        layer = getattr(layer, "app", None)
    assert layer is not None, "AdmissionMiddleware is not in the app's stack"
    return layer


@pytest.fixture
async def one_place(settings) -> AsyncIterator[Served]:
    from api.app import create_app

    application = create_app(settings.model_copy(update={"api_concurrency": 1}))
    release = asyncio.Event()

    async def working() -> dict[str, bool]:
        await release.wait()
        return {"done": True}

    async def streaming() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first,"
            await release.wait()
            yield b"last"

        return StreamingResponse(chunks(), media_type="text/plain")

    application.add_api_route("/test-only/working", working, methods=["GET"])
    application.add_api_route("/test-only/streaming", streaming, methods=["GET"])
    async with served(application) as url:
        try:
            yield Served(url, _admission_of(application), release)
        finally:
            release.set()  # before the server stops: it waits for the requests in flight


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {what}")


async def test_a_request_waits_for_the_place_while_healthz_answers_at_once(one_place):
    gate = one_place.admission.gate
    async with httpx.AsyncClient(base_url=one_place.url, timeout=30) as client:
        working = asyncio.create_task(client.get("/test-only/working"))
        await _until(lambda: gate.free == 0, "the first request holds the place")
        ready = asyncio.create_task(client.get("/readyz"))
        await _until(lambda: gate.waiting() == 1, "the second request waits")

        alive = await client.get("/healthz")
        assert alive.status_code == 200
        assert not ready.done()

        one_place.release.set()
        assert (await working).json() == {"done": True}
        assert (await ready).status_code == 200
    assert gate.free == 1 and gate.waiting() == 0


async def test_a_body_still_arriving_holds_no_place(one_place):
    host, port = one_place.url.removeprefix("http://").split(":")
    # A login whose body never finishes arriving (as from a slow upload, or on purpose).
    slow = socket.create_connection((host, int(port)))
    try:
        slow.sendall(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 500\r\n\r\n{"email": '
        )
        async with httpx.AsyncClient(base_url=one_place.url, timeout=30) as client:
            ready = await asyncio.wait_for(client.get("/readyz"), 20)
        assert ready.status_code == 200
    finally:
        slow.close()
    await _until(lambda: one_place.admission.gate.free == 1, "the place is free again")


async def test_an_answer_being_streamed_holds_no_place(one_place):
    async with httpx.AsyncClient(base_url=one_place.url, timeout=30) as client:
        async with client.stream("GET", "/test-only/streaming") as streaming:
            assert streaming.status_code == 200
            chunks = streaming.aiter_bytes()
            assert (await anext(chunks)).startswith(b"first,")
            # The stream is not finished, and another request is answered meanwhile.
            ready = await asyncio.wait_for(client.get("/readyz"), 20)
            assert ready.status_code == 200
            one_place.release.set()
            rest = b"".join([chunk async for chunk in chunks])
        assert rest.endswith(b"last")


@pytest.mark.parametrize(("configured", "places"), [(None, 7), (3, 3)])
def test_places_are_api_concurrency_else_the_pool_size(settings, configured, places):
    from api.app import create_app

    app = create_app(
        settings.model_copy(update={"database_pool_size": 7, "api_concurrency": configured})
    )
    app.middleware_stack = app.build_middleware_stack()
    assert _admission_of(app).gate.free == places
