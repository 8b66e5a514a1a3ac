"""Pure ASGI middleware: request id and access log, body size limit, NUL characters,
idempotency keys.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request overhead small and streaming intact.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import matching_routes
from infra.errors import InvalidFields, ProblemError
from infra.ids import new_id
from infra.logging import get_logger
from infra.metrics import UNMATCHED, observe_request
from infra.security import InvalidToken, redact_path
from web.errors import PageError, render_page_error

log = get_logger("passerelle.access")
failures = get_logger("passerelle.errors")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class PayloadTooLarge(ProblemError, HTTPException):  # type: ignore[misc]
    """Also an HTTPException: FastAPI's body reader re-raises those instead of answering 400."""

    status = 413
    type_slug = "payload-too-large"
    title = "The request body is too large"

    def __init__(self, detail: str | None = None) -> None:
        ProblemError.__init__(self, detail)
        self.status_code = self.status


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else str(new_id())
        # A fresh dict: the lifespan state may be shared between concurrent requests.
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500
        started_response = False
        finished_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response, finished_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                headers = MutableHeaders(scope=message)
                headers.append("X-Request-ID", request_id)
                # Headers that dependencies decided on (rate limits, deprecation), also on
                # error responses, which routes never see.
                for name, value in scope["state"].get("response_headers", {}).items():
                    if name not in headers:
                        headers.append(name, value)
            elif message["type"] == "http.response.body":
                finished_response = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered, then logged once, here. Not raised again once a whole response is
            # sent: the server would close a keep-alive connection in a perfectly good state.
            if not started_response:
                await _send_problem(scope, send_with_id, InternalError())
            failures.exception("request.failed", path=redact_path(scope["path"]))
            if not finished_response:
                raise  # a response cut short: only closing the connection tells the client
        finally:
            elapsed = time.perf_counter() - started
            # The router leaves the matched route in the scope: its template (the app's routes
            # are flat, api/routing.py: prefixes included), not the path, keeps the metric's
            # series bounded.
            route = scope.get("route")
            if route is not None:
                template = route.path
            elif scope.get("root_path", "") != root_path:  # a mounted app (static files)
                template = scope["root_path"][len(root_path) :] + "/{path}"
            else:
                template = UNMATCHED
            observe_request(template, scope["method"], status, elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=redact_path(scope["path"]),
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


class InternalError(ProblemError):
    status = 500
    type_slug = "internal-error"
    title = "Something went wrong on our side"

    def __init__(self) -> None:
        super().__init__("The error was logged; quote the request id if you contact support.")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_problem(scope, send, PayloadTooLarge(self._detail()))
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self._detail())
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except PayloadTooLarge as exc:
            # Raised while an outer layer (idempotency) read the body, before any route ran.
            if started:
                raise
            await _send_problem(scope, send, exc)

    def _detail(self) -> str:
        return f"The limit is {self.max_bytes} bytes."


NUL = "\x00"
_NUL_MESSAGE = "must not contain the NUL character (U+0000)"
_NUL_CODE = "string_nul"
_FORM = "application/x-www-form-urlencoded"


class NulCharacterMiddleware:
    """NUL (U+0000) cannot be stored in a PostgreSQL text column, and no name, note or id ever
    needs it: it is refused with a 422 naming the field, wherever it comes, in a query
    parameter, a path parameter, a JSON body (values and keys, at any depth) or a form.

    Cheap for the requests that carry none: a byte test on the raw query string and body, and
    the body is parsed and walked only when that test finds an escaped NUL.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = [*_nul_in_path(scope), *_nul_in_query(scope.get("query_string", b""))]
        media = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        is_json = media == "application/json" or media.endswith("+json")
        if scope["method"] in ("POST", "PUT", "PATCH") and (is_json or media == _FORM):
            body = await _read_body(receive)
            fields += _nul_in_json(body) if is_json else _nul_in_form(body)
            receive = replay_then_pass(body, receive)
        if fields and _is_page(scope):
            # A page (web/): a person reads the answer, so it is a page too.
            page = await render_page_error(Request(scope), PageError(400, "error.bad_request"))
            await page(scope, receive, send)
            return
        if fields:
            errors = [{"pointer": f, "message": _NUL_MESSAGE, "code": _NUL_CODE} for f in fields]
            await _send_problem(scope, send, InvalidFields(errors))
            return
        await self.app(scope, receive, send)


def _is_page(scope: Scope) -> bool:
    """Whether the address is a page's (web/), or an API route's (/v1, and the few routes
    outside it such as the public agency logos): the route that takes it says; an address no
    route takes is a page's, unless under /v1."""
    path = str(scope["path"])
    if path.startswith("/v1/"):
        return False
    for context, _ in matching_routes(scope["app"], path):
        endpoint = getattr(getattr(context, "original_route", context), "endpoint", None)
        return str(getattr(endpoint, "__module__", "")).startswith("web.")
    return True


def _nul_in_query(query_string: bytes) -> list[str]:
    if b"%00" not in query_string and b"\x00" not in query_string:
        return []
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return [f"query:{name}" for name, value in pairs if NUL in name or NUL in value]


def _nul_in_path(scope: Scope) -> list[str]:
    path: str = scope["path"]
    if NUL not in path:
        return []
    # Name the parameter when a route's pattern takes the path; "path" for an unknown one.
    for _, match in matching_routes(scope["app"], path):
        return [f"path:{name}" for name, value in match.groupdict().items() if NUL in value]
    return ["path"]


def _nul_in_json(body: bytes) -> list[str]:
    # JSON can carry NUL only escaped (a raw control character is invalid JSON).
    if b"\\u0000" not in body:
        return []
    try:
        document = json.loads(body)
    except ValueError:
        return []  # malformed: the route answers that
    return list(_nul_pointers(document, ""))


def _nul_pointers(value: Any, pointer: str) -> Iterator[str]:
    if isinstance(value, str):
        if NUL in value:
            yield pointer or "/"
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{pointer}/{_escape_pointer(key)}"
            if NUL in key:
                yield child
            yield from _nul_pointers(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_pointers(item, f"{pointer}/{index}")


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")  # RFC 6901


def _nul_in_form(body: bytes) -> list[str]:
    if b"%00" not in body and b"\x00" not in body:
        return []
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    return sorted({f"/{_escape_pointer(name)}" for name, value in pairs if NUL in name + value})


def replay_then_pass(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the connection's own messages (a disconnect, later)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_problem(scope: Scope, send: Send, error: ProblemError) -> None:
    body: dict[str, Any] = {
        "type": error.type_uri,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": scope.get("path"),
        "request_id": scope.get("state", {}).get("request_id"),
    }
    body.update(error.extra)
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
    ] + [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class IdempotencyKeyInvalid(ProblemError):
    status = 400
    type_slug = "idempotency-key-invalid"
    title = "The Idempotency-Key header must be 1 to 255 visible ASCII characters"


class IdempotencyKeyInUse(ProblemError):
    status = 409
    type_slug = "idempotency-key-in-use"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyKeyReused(ProblemError):
    status = 422
    type_slug = "idempotency-key-reused"
    title = "This Idempotency-Key was used with a different request"


_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_PENDING_TTL = 60
_DONE_TTL = 24 * 3600


class IdempotencyMiddleware:
    """Same key + same request -> the first response again; same key + other body -> 422.

    Keys are scoped to the caller (tenant and user from a valid token, else the client
    address), so one caller can never read another's stored response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _KEY.match(key):
            await _send_problem(scope, send, IdempotencyKeyInvalid())
            return
        resources = scope["app"].state.resources
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(
            scope["path"].encode()
            + b"\0"
            + scope.get("query_string", b"")
            + b"\0"
            + _canonical_body(body, headers)
        ).hexdigest()
        redis_key = (
            "idem:"
            + hashlib.sha256(
                f"{self._scope_of(resources, headers, scope)}\0{key}".encode()
            ).hexdigest()
        )
        redis = resources.redis
        claimed = await redis.set(
            redis_key,
            json.dumps({"state": "pending", "fp": fingerprint}),
            nx=True,
            ex=_PENDING_TTL,
        )
        if not claimed:
            stored = await redis.get(redis_key)
            record = json.loads(stored) if stored else {"state": "pending", "fp": fingerprint}
            if record["fp"] != fingerprint:
                await _send_problem(scope, send, IdempotencyKeyReused())
            elif record["state"] == "pending":
                await _send_problem(scope, send, IdempotencyKeyInUse())
            else:
                await _replay(record, send)
            return

        captured: dict[str, Any] = {"body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in message["headers"]
                ]
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, _replay_receive(body), capture)
        except BaseException:
            await redis.delete(redis_key)
            raise
        status = captured.get("status", 500)
        if status >= 500 or status == 429:
            await redis.delete(redis_key)  # not a final answer: let the retry run again
            return
        record = {
            "state": "done",
            "fp": fingerprint,
            "status": status,
            "headers": [h for h in captured["headers"] if h[0].lower() != "x-request-id"],
            "body": base64.b64encode(captured["body"]).decode(),
        }
        await redis.set(redis_key, json.dumps(record), ex=_DONE_TTL)

    @staticmethod
    def _scope_of(resources: Any, headers: Headers, scope: Scope) -> str:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            try:
                claims = resources.signer.verify(
                    auth[7:].strip(), audience=resources.settings.jwt_audience
                )
                return f"{claims.get('tid')}:{claims.get('sub')}"
            except InvalidToken:
                pass
        client = scope.get("client") or ("unknown", 0)
        return f"anon:{client[0]}"


def _canonical_body(body: bytes, headers: Headers) -> bytes:
    """A JSON body as the API reads it: the same object with its keys in another order, or
    spaced otherwise, is the same request."""
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return body
    try:
        document = json.loads(body)
    except ValueError:
        return body
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay_receive(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _replay(record: dict[str, Any], send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record["headers"]]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": record["status"], "headers": headers})
    await send({"type": "http.response.body", "body": base64.b64decode(record["body"])})
