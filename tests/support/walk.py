"""Walk the application as it is, so that tests grow with the codebase.

* Routes: every `APIRoute` the app serves (also inside included routers), with its methods,
  path parameters, JSON body model and whether it needs an access token (depends on
  `api.deps.get_principal` or, for the hottest reads, `api.deps.get_reader`, at any depth).
* Tables: every SQLModel table of every domain package (each `models.py` is imported), and
  among them the tenant-owned ones (those with a `tenant_id` column).
* Snapshots: the rows a tenant can see, to prove that a request changed nothing.

Nothing here is specific to one route or one table: a new router or a new `models.py` is
picked up without anyone editing the tests.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from sqlalchemy import text

from infra.tables import all_tables

ROOT = Path(__file__).resolve().parents[2]

_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


# ---------------------------------------------------------------------------------------------
# Routes


@dataclass(frozen=True)
class RouteInfo:
    # An `APIRoute`, or FastAPI's `RouteContext` around one (same attributes, full path).
    route: Any = field(repr=False, compare=False)
    path: str
    methods: tuple[str, ...]
    path_params: tuple[str, ...]
    needs_auth: bool

    @property
    def name(self) -> str:
        return str(self.route.name)

    @property
    def takes_json_body(self) -> bool:
        return self.route.body_field is not None

    @property
    def body_annotation(self) -> Any:
        """The type of the JSON body (for example `SignupRequest` or `LogoutRequest | None`)."""
        body = self.route.body_field
        return None if body is None else body.field_info.annotation

    def body_json_schema(self) -> dict[str, Any]:
        """JSON schema of the body, with `$ref`s of the top-level model resolved."""
        if self.body_annotation is None:
            return {}
        return resolve_object_schema(TypeAdapter(self.body_annotation).json_schema())

    def path_param_annotation(self, name: str) -> Any:
        for param in self.route.dependant.path_params:
            if param.name == name:
                return param.field_info.annotation
        raise KeyError(name)

    def path_param_is_uuid(self, name: str) -> bool:
        return self.path_param_annotation(name) is uuid.UUID

    def fill(self, values: dict[str, str]) -> str:
        """The path with each `{param}` replaced by `values[param]`."""
        return _PATH_PARAM.sub(lambda m: str(values[m.group(1)]), self.path)


@dataclass(frozen=True)
class Operation:
    """One (method, route) pair: the unit that tests walk over."""

    method: str
    info: RouteInfo

    @property
    def path(self) -> str:
        return self.info.path

    @property
    def id(self) -> str:
        return f"{self.method} {self.info.path}"


def depends_on(dependant: Dependant, target: Any) -> bool:
    """Whether `target` is called anywhere in this dependency tree."""
    if dependant.call is target:
        return True
    return any(depends_on(sub, target) for sub in dependant.dependencies)


def route_entries(app: FastAPI) -> list[Any]:
    """Every APIRoute of the app as it is served: with its full path and the dependencies of
    the routers that include it.

    FastAPI >= 0.165 keeps included routers as `_IncludedRouter` entries in `app.routes` and
    exposes each served route through `fastapi.routing.iter_route_contexts` (a `RouteContext`
    that answers `.path`, `.methods`, `.dependant`, `.body_field`... with the router's prefix
    and dependencies applied). Older versions flatten `APIRoute`s into `app.routes`.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI
        return [r for r in app.routes if isinstance(r, APIRoute)]
    return [
        context
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def is_page(route: Any) -> bool:
    """A server-rendered page (`web/`): walked by tests/web/test_page_walk.py, which expects
    HTML pages rather than JSON problems."""
    endpoint = getattr(route, "original_route", route).endpoint
    return str(endpoint.__module__).startswith("web.")


def page_routes(app: FastAPI) -> list[RouteInfo]:
    return [
        RouteInfo(
            route=route,
            path=route.path,
            methods=tuple(sorted(route.methods or ())),
            path_params=tuple(_PATH_PARAM.findall(route.path)),
            needs_auth=False,
        )
        for route in route_entries(app)
        if is_page(route)
    ]


def api_routes(app: FastAPI) -> list[RouteInfo]:
    from api.deps import get_principal, get_reader

    found = []
    for route in route_entries(app):
        if is_page(route):
            continue
        found.append(
            RouteInfo(
                route=route,
                path=route.path,
                methods=tuple(sorted(route.methods or ())),
                path_params=tuple(_PATH_PARAM.findall(route.path)),
                needs_auth=any(
                    depends_on(route.dependant, door) for door in (get_principal, get_reader)
                ),
            )
        )
    return found


def operations(app: FastAPI) -> list[Operation]:
    return [Operation(method, info) for info in api_routes(app) for method in info.methods]


def operations_with_path_params(app: FastAPI) -> list[Operation]:
    return [op for op in operations(app) if op.info.path_params]


def operations_with_json_body(app: FastAPI) -> list[Operation]:
    return [op for op in operations(app) if op.info.takes_json_body]


@cache
def route_table_app() -> FastAPI:
    """An application built only to read its route table (at collection time, for
    parametrize). It is never started: no database or Redis connection is opened."""
    from api.app import create_app
    from infra.settings import Settings

    return create_app(Settings())


def resolve_object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a top-level `$ref` (and an `anyOf [model, null]` of an optional body)."""
    defs = schema.get("$defs", {})

    def deref(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if ref and ref.startswith("#/$defs/"):
            return {**defs[ref.removeprefix("#/$defs/")], "$defs": defs}
        return node

    node = deref(schema)
    if "properties" not in node:
        for option in node.get("anyOf", []):
            candidate = deref(option)
            if "properties" in candidate:
                return {**candidate, "$defs": defs}
    return {**node, "$defs": defs}


def _types_of(prop: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """The JSON types a property schema accepts ("any" when unconstrained)."""
    ref = prop.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return _types_of(defs[ref.removeprefix("#/$defs/")], defs)
    if "type" in prop:
        declared = prop["type"]
        return {str(k) for k in declared} if isinstance(declared, list) else {str(declared)}
    if "enum" in prop or "const" in prop:
        values = prop.get("enum", [prop.get("const")])
        return {_JSON_TYPE_OF.get(type(v), "any") for v in values}
    options = prop.get("anyOf") or prop.get("oneOf") or prop.get("allOf")
    if options:
        kinds: set[str] = set()
        for option in options:
            kinds |= _types_of(option, defs)
        return kinds
    return {"any"}


_JSON_TYPE_OF = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    list: "array",
    dict: "object",
}


def wrong_type_values(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """For each property of an object schema, a JSON value of a type it does not accept."""
    defs = schema.get("$defs", {})
    for name, prop in schema.get("properties", {}).items():
        kinds = _types_of(prop, defs)
        if "any" in kinds:
            continue
        if "object" not in kinds:
            yield name, {"nested": {"object": True}}
        elif not kinds & {"integer", "number"}:
            yield name, 12345


# ---------------------------------------------------------------------------------------------
# Tables


def tenant_tables() -> list[str]:
    """Names of the tenant-owned tables: those with a `tenant_id` column."""
    return sorted(name for name, table in all_tables().items() if "tenant_id" in table.c)


def quoted(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"unexpected table name {name!r}")
    return f'"{name}"'


async def tenant_row_counts(db: Any, tenant_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each tenant-owned table this tenant sees, plus the global
    `tenants` and `users` counts."""
    counts: dict[str, int] = {}
    async with db.tenant_transaction(tenant_id) as session:
        for table in [*tenant_tables(), "tenants", "users"]:
            counts[table] = (
                await session.execute(text(f"SELECT count(*) FROM {quoted(table)}"))
            ).scalar_one()
    return counts


async def tenant_snapshot(db: Any, tenant_id: uuid.UUID) -> dict[str, list[Any]]:
    """Every row of every tenant-owned table this tenant sees, the tenant's own row, and the
    users who are its members, as JSON: equal snapshots mean nothing changed."""
    snapshot: dict[str, list[Any]] = {}
    async with db.tenant_transaction(tenant_id) as session:
        for table in tenant_tables():
            rows = await session.execute(
                # Ordered by the whole row: not every table has an `id`.
                text(f"SELECT to_jsonb(t)::text AS r FROM {quoted(table)} t ORDER BY r")
            )
            snapshot[table] = [json.loads(r) for (r,) in rows]
        rows = await session.execute(
            text("SELECT to_jsonb(t)::text FROM tenants t WHERE t.id = :tid"),
            {"tid": tenant_id},
        )
        snapshot["tenants"] = [json.loads(r) for (r,) in rows]
        rows = await session.execute(
            text(
                "SELECT to_jsonb(u)::text FROM users u WHERE u.id IN "
                "(SELECT user_id FROM memberships WHERE tenant_id = :tid) ORDER BY u.id"
            ),
            {"tid": tenant_id},
        )
        snapshot["users"] = [json.loads(r) for (r,) in rows]
    return snapshot
