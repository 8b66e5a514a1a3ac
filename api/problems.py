"""RFC 9457 problem responses for every error, including the framework's own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from infra.errors import PROBLEM_BASE, ProblemError
from infra.logging import get_logger
from infra.security import redact_path

log = get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    pointer: str = Field(description="JSON pointer (or query/header name) of the offending input")
    message: str
    code: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None

    model_config = {"extra": "allow"}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem(
    request: Request | None,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = redact_path(request.url.path)
        body["request_id"] = request.scope.get("state", {}).get("request_id")
    body.update({k: v for k, v in extra.items() if v is not None})
    return ProblemResponse(body, status_code=status, headers=headers)


def _pointer(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "/"
    where, *path = loc
    if where == "body":
        return "/" + "/".join(str(p) for p in path)
    return f"{where}:{'.'.join(str(p) for p in path)}"


async def on_problem(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)
    return problem(
        request,
        status=exc.status,
        slug=exc.type_slug,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        **exc.extra,
    )


async def _on_validation(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem(
            request,
            status=400,
            slug="malformed-json",
            title="The request body is not valid JSON",
        )
    fields = [
        {
            "pointer": _pointer(tuple(e.get("loc", ()))),
            "message": e.get("msg", ""),
            "code": e.get("type", "invalid"),
        }
        for e in errors
    ]
    return problem(
        request,
        status=422,
        slug="validation-error",
        title="Some fields are not valid",
        detail=f"{len(fields)} field(s) need attention.",
        errors=fields,
    )


async def _on_http(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem(
        request,
        status=exc.status_code,
        slug=slug,
        title=phrase,
        detail=detail,
        headers=headers,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. The router stops at the first route whose
    path matches, which knows only its own methods (GET of GET and PATCH /v1/clients/{id})."""
    methods: set[str] = set()
    for context, _ in matching_routes(request.app, request.scope["path"]):
        methods |= set(context.methods or ())
    return sorted(methods)


def matching_routes(app: Any, path: str) -> Iterator[tuple[RouteContext, re.Match[str]]]:
    """Every route whose path template takes this path, whatever its method."""
    for context in iter_route_contexts(app.routes):
        if context.path is not None and (match := compile_path(context.path)[0].match(path)):
            yield context, match


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("request.failed", path=request.url.path)
    return problem(
        request,
        status=500,
        slug="internal-error",
        title="Something went wrong on our side",
        detail="The error was logged; quote the request id if you contact support.",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the problems a route may answer."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
