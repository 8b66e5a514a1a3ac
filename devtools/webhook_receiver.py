"""A real HTTP server on loopback that receives webhooks, records them and answers from a script.

``Receiver().start()`` serves from a daemon thread (Starlette under uvicorn, with its own event
loop, as ``devtools.platforms`` does), on a free port of 127.0.0.1. Each test takes its own inbox,
``receiver.inbox()``, which has its own path (so tests and endpoints never see each other's
requests) and its own script of answers::

    inbox = receiver.inbox(Answer(500), Answer(500), then=Answer(200))
    inbox.url            # http://127.0.0.1:<port>/hooks/<random>
    inbox.requests       # every request received, in order: method, path, headers, body

An answer is a status, optional headers and body, and an optional delay before answering
(to outlast the sender's timeout). Once the script is spent, every request gets ``then``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    """Seconds to wait before answering."""
    trickle: float = 0.0
    """When set, the body is sent one byte at a time, this many seconds apart (each wait
    shorter than a read timeout, the whole answer longer)."""


def redirect(location: str, status: int = 302) -> Answer:
    return Answer(status, headers={"Location": location})


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names (HTTP header names are case-insensitive)."""
    body: bytes
    at: float
    """time.monotonic() when it arrived."""


async def _trickle(body: bytes, pause: float) -> AsyncIterator[bytes]:
    for index in range(len(body)):
        if index:
            await asyncio.sleep(pause)
        yield body[index : index + 1]


class Inbox:
    def __init__(self, receiver: Receiver, name: str, script: list[Answer], then: Answer) -> None:
        self._receiver = receiver
        self.name = name
        self._script = list(script)
        self._then = then
        self._requests: list[Received] = []

    @property
    def path(self) -> str:
        return f"/hooks/{self.name}"

    @property
    def url(self) -> str:
        return f"{self._receiver.url}{self.path}"

    @property
    def requests(self) -> list[Received]:
        with self._receiver.lock:
            return list(self._requests)

    def answer_next(self, *answers: Answer, then: Answer | None = None) -> None:
        """Replace what the inbox answers from now on."""
        with self._receiver.lock:
            self._script = list(answers)
            if then is not None:
                self._then = then

    def _take(self, request: Received) -> Answer:
        with self._receiver.lock:
            self._requests.append(request)
            return self._script.pop(0) if self._script else self._then


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._inboxes: dict[str, Inbox] = {}
        self.unrouted: list[Received] = []
        """Requests to any path that is not an inbox (a followed redirect would land here)."""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                )
            ]
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def inbox(self, *script: Answer, then: Answer | None = None) -> Inbox:
        """A new inbox answering `script` in order, then `then` (200 unless told)."""
        name = uuid.uuid4().hex
        box = Inbox(self, name, list(script), then or Answer(200))
        with self.lock:
            self._inboxes[name] = box
        return box

    async def _handle(self, request: Request) -> Response:
        received = Received(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            at=time.monotonic(),
        )
        parts = request.url.path.strip("/").split("/")
        with self.lock:
            box = self._inboxes.get(parts[1]) if len(parts) == 2 and parts[0] == "hooks" else None
            if box is None:
                self.unrouted.append(received)
        answer = box._take(received) if box is not None else Answer(404)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.trickle:
            return StreamingResponse(
                _trickle(answer.body, answer.trickle),
                status_code=answer.status,
                headers=answer.headers,
            )
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    # --- lifecycle

    def start(self) -> Receiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="webhook-receiver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
