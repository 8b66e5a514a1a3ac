"""The application's routes as one flat table, as `include_router` made them before FastAPI 0.137.

Since 0.137 (fastapi/fastapi#15745) an included router stays a node of the route tree, resolved
on every request: the request walks each node's effective routes, setting and restoring
per-candidate state in its scope, before it reaches its own route. With the 26 routers under
/v1 that was 35 µs to route a platform delivery (the first router) and 417 µs for
`GET /v1/agency/closure` (the last), on every request. As plain `APIRoute`s, built from the
same effective settings (path with prefixes, merged dependencies, responses, tags), the same
routes are matched in 9 µs and 195 µs, and the OpenAPI document is identical, which
tests/api/test_flat_routes.py checks."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter, iter_route_contexts
from starlette.routing import BaseRoute

# What an included route's effective settings hold, passed on as `add_api_route` takes them.
_SETTINGS = (
    "response_model",
    "status_code",
    "tags",
    "dependencies",
    "summary",
    "description",
    "response_description",
    "responses",
    "deprecated",
    "methods",
    "operation_id",
    "response_model_include",
    "response_model_exclude",
    "response_model_by_alias",
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
    "include_in_schema",
    "response_class",
    "name",
    "callbacks",
    "openapi_extra",
    "generate_unique_id_function",
    "strict_content_type",
)


def flatten_routes(app: FastAPI) -> None:
    """Replace the app's route tree by the flat list of the routes it serves, in the same order
    (the first match still wins)."""
    flat: list[BaseRoute] = []
    for node in app.router.routes:
        contexts = list(iter_route_contexts([node]))
        if [context.original_route for context in contexts] == [node]:  # added to the app itself
            flat.append(node)
            continue
        for context in contexts:  # an included router's routes, prefixes and settings applied
            route = context.original_route
            if not isinstance(route, APIRoute):
                kind = type(route).__name__
                raise TypeError(f"cannot flatten {kind} {context.path}: add it to the app itself")
            # (`add_api_route` on a scratch router builds the route exactly as the app would.)
            scratch = APIRouter()
            assert context.path is not None and context.endpoint is not None
            scratch.add_api_route(
                context.path,
                context.endpoint,
                **{name: getattr(context, name) for name in _SETTINGS},
            )
            flat.extend(scratch.routes)
    app.router.routes[:] = flat
