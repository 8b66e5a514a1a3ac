"""Admission: how many requests a process works on at once, and in what order.

An API process runs on one core. Past a few requests in flight, more concurrency buys no
throughput, only a longer line everywhere: each request's steps queue behind every other
request's steps in the event loop, each holds its database connection for longer, and the
connection pool becomes a second line. Measured under bench/api.py's load (32 connections,
one process): admitting 10 or 6 at a time rather than all 32 raised throughput and cut the p99
(figures in the README).

`AdmissionMiddleware` lets `API_CONCURRENCY` requests work at a time; the others wait for a
place in the order they came. A request gives its place back

- while it waits on its client (a body still arriving), so a slow upload, or a client sending
  its body a byte at a time on purpose, cannot hold places others need; it takes its place
  back at the head of the line;
- as soon as its answer starts: what follows is sending (a file export streams from disk),
  which needs no place.

`/healthz` is never held in the line: it says the process is alive, however busy it is.
`/readyz` waits like any request, as a load balancer should see it. A platform's delivery
(`api.delivery_lane`) is answered before the line: one insert, on its own short path.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.handoff import Line
from infra.metrics import ADMISSION_WAITING

ALWAYS_ADMITTED = frozenset({"/healthz"})


class Gate:
    """`places` places, handed out first come, first served: a place given back goes straight
    to the oldest waiter, so nobody who arrives meanwhile can take it first
    (`infra.handoff.Line`)."""

    def __init__(self, places: int) -> None:
        self.free = places
        self._line: Line[None] = Line()

    def waiting(self) -> int:
        return self._line.waiting()

    async def enter(self, *, first: bool = False) -> None:
        """Wait for a place; `first` goes ahead of everyone waiting (a request taking back a
        place it gave up for a while)."""
        # Free places and waiters never coexist: a place given back goes to a waiter first.
        if self.free:
            self.free -= 1
            return
        ADMISSION_WAITING.inc()
        try:
            await self._line.wait(first=first, give_back=self._pass_on)
        finally:
            ADMISSION_WAITING.dec()

    def leave(self) -> None:
        if not self._line.hand_over(None):
            self.free += 1

    def _pass_on(self, _: None) -> None:
        self.leave()


class _Place:
    """One request's place: held while it works, lent while it waits on its client, given
    back for good once its answer starts."""

    __slots__ = ("answered", "gate", "holding")

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.holding = True
        self.answered = False

    def give_back(self) -> None:
        if self.holding:
            self.holding = False
            self.gate.leave()

    def receiving(self, receive: Receive) -> Receive:
        async def admitted_receive() -> Message:
            if not self.holding:
                return await receive()
            lent = False

            def lend() -> None:
                # Scheduled, then cancelled if `receive` answers without waiting (the body is
                # usually in the same packets as the headers): only real waits lend the place.
                nonlocal lent
                if self.holding:
                    lent = True
                    self.give_back()

            handle = asyncio.get_running_loop().call_soon(lend)
            try:
                message = await receive()
            finally:
                handle.cancel()
            if lent and not self.answered:
                await self.gate.enter(first=True)
                self.holding = True
            return message

        return admitted_receive

    def sending(self, send: Send) -> Send:
        async def admitted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.answered = True
                self.give_back()
            await send(message)

        return admitted_send


class AdmissionMiddleware:
    """Pure ASGI: at most `places` HTTP requests of this process work at a time."""

    def __init__(self, app: ASGIApp, *, places: int) -> None:
        self.app = app
        self.gate = Gate(places)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ALWAYS_ADMITTED:
            await self.app(scope, receive, send)
            return
        await self.gate.enter()
        place = _Place(self.gate)
        try:
            await self.app(scope, place.receiving(receive), place.sending(send))
        finally:
            place.give_back()
