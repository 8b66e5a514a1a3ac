"""The short way in for a platform's delivery (`DeliveryLane`), the busiest write there is."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api import problems
from api.middleware import replay_then_pass
from api.routes.platform_webhooks import (
    TooLarge,
    accept_delivery,
    receive_platform_webhook,
)
from inbox.service import webhooks
from infra.errors import ProblemError

_PLATFORM = re.compile(r"^/v1/platform-webhooks/([a-z_]{1,40})$")
_JSON_MEDIA = re.compile(rb"^\s*application/json\s*(;|$)", re.IGNORECASE)


class DeliveryLane:
    """Pure ASGI, just inside the request-context middleware (request id, access log, metric):
    a platform's delivery goes straight to `accept_delivery`, past the layers that have nothing
    to do for it: the body limit (the receiver has its own, smaller), idempotency keys (the
    platforms send none; their retries are deduplicated by digest), the NUL check (done here),
    FastAPI's routing, dependency solving and response handling. Those layers were over a third
    of a delivery's CPU (bench/inbox.py). What the lane cannot answer as simply (no JSON media
    type, a NUL, an Idempotency-Key, a platform name the path pattern refuses) goes on to the
    route above, so every answer stays the one the route gives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: APIRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _PLATFORM.match(scope["path"])
        if match is None or not self._plain_json(scope["headers"]):
            await self.app(scope, receive, send)
            return
        # Named from the start: a delivery refused as too large counts under the route too.
        scope["route"] = self._route(scope)
        request = Request(scope, receive)
        resources = scope["app"].state.resources
        # The app's own limit too, should an operator have set it lower than the receiver's.
        limit = min(webhooks.MAX_BODY, resources.settings.max_body_bytes)
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise TooLarge(f"A delivery is at most {limit} bytes.")
            body = await _read_at_most(receive, limit)
            if b"\\u0000" in body:
                # The NUL middleware names the field; PostgreSQL's jsonb refuses it anyway.
                await self.app(scope, replay_then_pass(body, receive), send)
                return
            answer = await accept_delivery(resources, match[1], body, request.headers)
        except ClientDisconnect:
            return  # no one to answer
        except ProblemError as error:
            await (await problems.on_problem(request, error))(scope, receive, send)
            return
        await Response(answer, media_type="application/json")(scope, receive, send)

    @staticmethod
    def _plain_json(headers: list[tuple[bytes, bytes]]) -> bool:
        media: bool | None = None
        for name, value in headers:
            if name == b"idempotency-key":
                return False
            if name == b"content-type" and media is None:  # the first, as Starlette reads it
                media = _JSON_MEDIA.match(value) is not None
        return bool(media)

    def _route(self, scope: Scope) -> APIRoute | None:
        # The route this lane stands in for: the metric and the access log name its template.
        if self.route is None:
            self.route = next(
                (
                    r
                    for r in scope["app"].routes
                    if isinstance(r, APIRoute) and r.endpoint is receive_platform_webhook
                ),
                None,  # a tree of routers (`create_app(flat=False)`): the metric says unmatched
            )
        return self.route


async def _read_at_most(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"A delivery is at most {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
