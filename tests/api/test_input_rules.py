"""Input that must never be a 500 (issue 15): each class of bad input has one rule, and each
rule is walked over the application's own OpenAPI document, so that a new route or field is
covered the day it is added.

* NUL (U+0000) in any body string or key, query parameter, path parameter or form field: 422
  naming the field.
* `null` to a PATCH/PUT field that cannot be cleared: 422 naming it; the schema says which can.
* Integers and booleans are strict: `true` is not a number, `1` not a boolean.
* Months, ISO weeks, days and instants outside 2000-2099: 422, the same for JSON and PDF.
* A 405 lists every method of the path in `Allow`.
* The body is validated before If-Match is compared.
* Every id a body names is an object of the caller's agency, else 422 naming the field.
* After a 500, the keep-alive connection still serves the next request (a real server).
* Idempotency keys compare parsed JSON, not bytes.

The seeding and the valid bodies come from the HTTP-contract registries (tests/support/contract.py).
"""

from __future__ import annotations

import copy
import itertools
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import Request

from infra.clock import utcnow
from tenants.schemas import Patch
from tests.support import walk
from tests.support.contract import (
    ID_PROVIDERS,
    REQUIRED_QUERY,
    VALID_BODIES,
    Ctx,
    owner_post,
)
from tests.support.factories import Agency, World, new_agency, unique
from tests.support.inbox import seed_item as seed_inbox_item
from tests.support.partners import basic, partner_for
from tests.support.problems import assert_problem
from tests.support.served import served

_APP = walk.route_table_app()
DOCUMENT = _APP.openapi()
SCHEMAS = DOCUMENT["components"]["schemas"]
METHODS = ("get", "put", "post", "delete", "patch")


# ---------------------------------------------------------------------------------------------
# Reading the OpenAPI document


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    spec: dict[str, Any] = field(compare=False, hash=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def params(self, where: str) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", []) if p["in"] == where]

    @property
    def body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return None if schema is None else deref(schema)

    @property
    def form_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        schema = content.get("application/x-www-form-urlencoded", {}).get("schema")
        return None if schema is None else deref(schema)


def deref(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if "anyOf" in schema and len(options) == 1:
        return deref(options[0])
    return schema


def kinds(schema: dict[str, Any]) -> set[str]:
    """The JSON types a property schema accepts."""
    schema = schema if "$ref" not in schema else deref(schema)
    if "anyOf" in schema:
        return set().union(*(kinds(o) for o in schema["anyOf"]))
    declared = schema.get("type")
    if declared is None:
        return {"any"}
    return set(declared) if isinstance(declared, list) else {declared}


def all_ops() -> list[Op]:
    return [
        Op(method.upper(), path, spec)
        for path, item in DOCUMENT["paths"].items()
        for method, spec in item.items()
        if method in METHODS
    ]


def fill(path: str, value: str) -> str:
    return re.sub(r"{[^}]+}", value, path)


def _fill_each(path: str, values: dict[str, str], default: str | None = None) -> str:
    return re.sub(r"{([^}]+)}", lambda m: values.get(m.group(1), default) or "", path)


def op_id(op: Op) -> str:
    return op.id


def pointers(problem: dict[str, Any]) -> set[str]:
    return {e["pointer"] for e in problem.get("errors") or []}


OPS = all_ops()
BODY_OPS = [op for op in OPS if op.body_schema is not None]
PATCH_OPS = [op for op in BODY_OPS if op.method in ("PATCH", "PUT")]
QUERY_OPS = [op for op in OPS if op.params("query")]
PATH_OPS = [op for op in OPS if op.params("path")]


@pytest.fixture(scope="module")
async def owner(client) -> Agency:
    """An agency's owner: authenticated requests reach body validation."""
    return await new_agency(client)


def _valid_body(op: Op) -> dict[str, Any]:
    factory = VALID_BODIES.get((op.method, op.path))
    assert factory is not None, f"register {op.id} in VALID_BODIES (tests/support/contract.py)"
    return dict(factory())


# ---------------------------------------------------------------------------------------------
# 1. NUL characters


def _string_leaves(value: Any, pointer: str = "") -> Iterator[str]:
    if isinstance(value, str):
        yield pointer
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves(item, f"{pointer}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, f"{pointer}/{index}")


def _with_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value[:1] + "\u0000" + value[1:]
    if isinstance(value, dict):
        return {k: _with_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_nul(v) for v in value]
    return value


@pytest.mark.parametrize("op", BODY_OPS, ids=op_id)
async def test_nul_in_any_body_string_is_a_422_naming_each_field(op, client, owner):
    body = _valid_body(op)
    # Every string property of the schema, given or not, plus one nested object key.
    schema = op.body_schema or {}
    for name, prop in schema.get("properties", {}).items():
        if name not in body and kinds(prop) & {"string", "any"}:
            body[name] = "x"
    expected = set(_string_leaves(body))
    hostile = _with_nul(body)
    hostile["nested\u0000key"] = {"inner\u0000": 1}
    expected |= {"/nested\u0000key", "/nested\u0000key/inner\u0000"}
    response = await client.request(
        op.method, fill(op.path, str(uuid.uuid4())), json=hostile, headers=owner.owner.headers
    )
    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem) == expected
    assert {e["code"] for e in problem["errors"]} == {"string_nul"}


@pytest.mark.parametrize("op", QUERY_OPS, ids=op_id)
async def test_nul_in_any_query_parameter_is_a_422_naming_it(op, client, owner):
    for name in op.params("query"):
        response = await client.request(
            op.method,
            fill(op.path, str(uuid.uuid4())) + f"?{name}=a%00b",
            headers=owner.owner.headers,
        )
        problem = assert_problem(response, 422, "validation-error")
        assert pointers(problem) == {f"query:{name}"}, name


@pytest.mark.parametrize("op", PATH_OPS, ids=op_id)
async def test_nul_in_any_path_parameter_is_a_422_naming_it(op, client, owner):
    for name in op.params("path"):
        path = _fill_each(op.path, {name: "a%00b"}, default=str(uuid.uuid4()))
        response = await client.request(op.method, path, headers=owner.owner.headers)
        problem = assert_problem(response, 422, "validation-error")
        assert pointers(problem) == {f"path:{name}"}, name


def test_every_form_body_is_known():
    forms = {op.id for op in OPS if op.form_schema is not None}
    assert forms == {"POST /v1/oauth/token"}


async def test_nul_in_a_form_field_is_a_422_naming_it(client, db):
    agency = await new_agency(client)
    app, _ = await partner_for(client, db, agency, ["brands:read"])
    before = await walk.tenant_snapshot(db, agency.tenant_id)
    response = await client.post(
        "/v1/oauth/token",
        headers={
            **basic(app.client_id, app.client_secret),
            "content-type": "application/x-www-form-urlencoded",
        },
        content=b"grant_type=client_credentials&scope=brands%3Aread%00",
    )
    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem) == {"/scope"}
    assert await walk.tenant_snapshot(db, agency.tenant_id) == before, "a token was issued"


# ---------------------------------------------------------------------------------------------
# 2. null in a PATCH or PUT


def _nullable(prop: dict[str, Any]) -> bool:
    return "null" in kinds(prop)


@pytest.mark.parametrize("op", PATCH_OPS, ids=op_id)
def test_patch_schema_says_exactly_which_fields_null_clears(op):
    info = next(r for r in walk.api_routes(_APP) if r.path == op.path and op.method in r.methods)
    model = info.body_annotation
    assert isinstance(model, type) and issubclass(model, Patch), f"{op.id}: make it a Patch"
    schema = op.body_schema or {}
    nullable = {n for n, p in schema.get("properties", {}).items() if _nullable(p)}
    assert nullable == model.clearable


@pytest.mark.parametrize("op", PATCH_OPS, ids=op_id)
async def test_null_to_a_field_that_cannot_be_cleared_is_a_422_naming_it(op, client, owner):
    schema = op.body_schema or {}
    refused = [n for n, p in schema.get("properties", {}).items() if not _nullable(p)]
    for name in refused:
        body = {**_valid_body(op), name: None}
        response = await client.request(
            op.method, fill(op.path, str(uuid.uuid4())), json=body, headers=owner.owner.headers
        )
        problem = assert_problem(response, 422, "validation-error")
        assert pointers(problem) == {f"/{name}"}, name


# ---------------------------------------------------------------------------------------------
# 3. Strict integers and booleans


def _scalar_fields(schema: dict[str, Any], pointer: str = "") -> Iterator[tuple[str, str]]:
    """(pointer, "integer" | "boolean") of each scalar field, nested objects included; an
    array's items at index 0."""
    for name, prop in schema.get("properties", {}).items():
        here = f"{pointer}/{name}"
        found = kinds(prop)
        target = deref(prop)
        if found & {"integer", "boolean"} and not found & {"string", "object", "array"}:
            yield here, "integer" if "integer" in found else "boolean"
        elif "object" in kinds(target) and "properties" in target:
            yield from _scalar_fields(target, here)
        elif "array" in found and "items" in target:
            items = deref(target["items"])
            item_kinds = kinds(items)
            if item_kinds & {"integer"} and not item_kinds & {"string", "object"}:
                yield f"{here}/0", "integer"
            elif "properties" in items:
                yield from _scalar_fields(items, f"{here}/0")


def _set_pointer(body: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with `value` at `pointer`, creating objects and one-item lists on the
    way (so that a nested field can be reached from a body that leaves its parent out)."""
    result = copy.deepcopy(body)
    parts = pointer.strip("/").split("/")
    node: Any = result
    for part, after in itertools.pairwise(parts):
        key: Any = int(part) if isinstance(node, list) else part
        if isinstance(node, list):
            while len(node) <= key:
                node.append({} if not after.isdigit() else [])
            node = node[key]
        else:
            if key not in node or not isinstance(node[key], (dict, list)):
                node[key] = [] if after.isdigit() else {}
            node = node[key]
    last: Any = parts[-1]
    if isinstance(node, list):
        index = int(last)
        while len(node) <= index:
            node.append(None)
        node[index] = value
    else:
        node[last] = value
    return result


@pytest.mark.parametrize(
    "op", [op for op in BODY_OPS if list(_scalar_fields(op.body_schema or {}))], ids=op_id
)
async def test_numbers_and_booleans_are_strict(op, client, owner):
    path = fill(op.path, str(uuid.uuid4()))
    for pointer, kind in _scalar_fields(op.body_schema or {}):
        for wrong in [True, "7", 7.5] if kind == "integer" else [1, "true"]:
            body = _set_pointer(_valid_body(op), pointer, wrong)
            response = await client.request(op.method, path, json=body, headers=owner.owner.headers)
            problem = assert_problem(response, 422)
            assert pointer in pointers(problem), (pointer, wrong, problem)


# ---------------------------------------------------------------------------------------------
# 4. Months, weeks, days and instants the API serves

_MONTH_PARAMS = [
    (op, where)
    for op in OPS
    for p in op.spec.get("parameters", [])
    if p["name"] == "month" and (where := p["in"])
]


def test_every_month_parameter_says_its_range():
    assert _MONTH_PARAMS, "no route takes a month any more?"
    for op, _ in _MONTH_PARAMS:
        [param] = [p for p in op.spec["parameters"] if p["name"] == "month"]
        schema = deref(param["schema"])
        assert schema["pattern"] == r"^20[0-9]{2}-(0[1-9]|1[0-2])$", op.id
        assert "2000-01 to 2099-12" in schema["description"], op.id


@pytest.mark.parametrize("month", ["0563-05", "1999-12", "2100-01", "9999-12", "2026-13"])
async def test_a_month_out_of_range_is_a_422_for_json_and_pdf_alike(month, client, db, resources):
    agency = await new_agency(client)
    client_id = await ID_PROVIDERS["client_id"](Ctx(client, db, resources), agency, {})
    for op, where in _MONTH_PARAMS:
        ids = {"client_id": client_id, "user_id": str(agency.owner.user_id), "month": month}
        path = _fill_each(op.path, ids)
        params = {**REQUIRED_QUERY.get(op.path, {})}
        if where == "query":
            params["month"] = month
        response = await client.request(
            op.method, path, params=params, headers=agency.owner.headers
        )
        problem = assert_problem(response, 422, "validation-error")
        assert pointers(problem) == {f"{where}:month"}, op.id


@pytest.mark.parametrize("week", ["0563-W05", "1999-W52", "2100-W01", "2026-W00", "2026-W54"])
async def test_a_week_out_of_range_is_a_422(week, client, owner):
    response = await client.get(
        f"/v1/timesheets/{owner.owner.user_id}/{week}", headers=owner.owner.headers
    )
    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem) == {"path:iso_week"}


async def test_a_week_the_year_lacks_is_a_422(client, owner):
    response = await client.get(
        f"/v1/timesheets/{owner.owner.user_id}/2027-W53", headers=owner.owner.headers
    )
    assert_problem(response, 422, "invalid-week")


def test_every_date_of_a_request_says_its_range():
    """Days and instants in bodies and queries carry 2000-2099 in their description."""
    wrong = []
    for op in OPS:
        fields = [
            (f"{p['in']}:{p['name']}", deref(p["schema"])) for p in op.spec.get("parameters", [])
        ]
        schema = op.body_schema or {}
        fields += [(f"/{n}", deref(p)) for n, p in schema.get("properties", {}).items()]
        for where, declared in fields:
            is_date = declared.get("format") in ("date", "date-time")
            if is_date and "2000-01-01 to 2099-12-31" not in declared.get("description", ""):
                wrong.append(f"{op.id} {where}")
    assert wrong == []


# ---------------------------------------------------------------------------------------------
# 5. A 500 does not cost the keep-alive connection


@pytest.fixture
async def crashing_server(settings) -> AsyncIterator[str]:
    """A real uvicorn on loopback serving the app plus two test-only routes."""
    from api.app import create_app

    application = create_app(settings)

    async def explode() -> None:
        raise RuntimeError("secret detail")

    async def peer(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    application.add_api_route("/test-only/explode", explode, methods=["GET"])
    application.add_api_route("/test-only/peer", peer, methods=["GET"])
    async with served(application) as url:
        yield url


async def test_after_a_500_the_same_connection_serves_the_next_request(crashing_server, caplog):
    import structlog

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with structlog.testing.capture_logs(), caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(base_url=crashing_server, limits=limits, timeout=60) as c:
            first = await c.get("/test-only/peer")
            failed = await c.get("/test-only/explode")
            after = await c.get("/test-only/peer")
    assert first.status_code == 200, first.text
    assert_problem(failed, 500, "internal-error")
    assert "secret detail" not in failed.text
    assert failed.headers.get("connection", "").lower() != "close"
    assert after.status_code == 200, after.text
    # The same client port: the server kept the connection rather than closing it.
    assert after.json()["port"] == first.json()["port"]
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


# ---------------------------------------------------------------------------------------------
# 6. 405 and Allow


@pytest.mark.parametrize("path", sorted(DOCUMENT["paths"]))
async def test_a_missing_method_is_a_405_listing_every_method_of_the_path(path, client):
    documented = {m.upper() for m in DOCUMENT["paths"][path] if m in METHODS}
    concrete = fill(path, str(uuid.uuid4()))
    for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - documented:
        response = await client.request(method, concrete)
        assert_problem(response, 405, "method-not-allowed")
        allow = {m.strip() for m in response.headers["allow"].split(",")}
        assert allow == documented, (method, allow)


# ---------------------------------------------------------------------------------------------
# 7. The body before If-Match

IF_MATCH_OPS = [op for op in PATCH_OPS if "if-match" in {p.lower() for p in op.params("header")}]


def test_if_match_routes_are_found():
    assert {op.id for op in IF_MATCH_OPS} >= {
        "PATCH /v1/clients/{client_id}",
        "PATCH /v1/members/{user_id}",
    }


@pytest.mark.parametrize("op", IF_MATCH_OPS, ids=op_id)
@pytest.mark.parametrize("etag", ['"999999"', '"not-an-etag"', "garbage"])
async def test_an_invalid_body_is_a_422_whatever_the_if_match(op, etag, client, owner):
    response = await client.request(
        op.method,
        fill(op.path, str(uuid.uuid4())),
        json={"no_such_field": 1},
        headers={**owner.owner.headers, "If-Match": etag},
    )
    problem = assert_problem(response, 422, "validation-error")
    assert "/no_such_field" in pointers(problem)


async def test_an_unknown_etag_with_a_valid_body_is_a_412_and_changes_nothing(client, db):
    agency = await new_agency(client)
    made = await owner_post(_ctx(client, db), agency, "/v1/clients", {"name": "Before"})
    before = await walk.tenant_snapshot(db, agency.tenant_id)
    response = await client.patch(
        f"/v1/clients/{made}",
        json={"name": "After"},
        headers={**agency.owner.headers, "If-Match": '"not-an-etag"'},
    )
    assert_problem(response, 412, "precondition-failed")
    assert await walk.tenant_snapshot(db, agency.tenant_id) == before


def _ctx(client: httpx.AsyncClient, db: Any) -> Ctx:
    return Ctx(client, db, None)


# ---------------------------------------------------------------------------------------------
# 8. Ids named in bodies


def _uuid_pointers(schema: dict[str, Any], pointer: str = "", seen: tuple = ()) -> Iterator[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name not in seen:
            yield from _uuid_pointers(SCHEMAS[name], pointer, (*seen, name))
        return
    if schema.get("format") == "uuid":
        yield pointer
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from _uuid_pointers(option, pointer, seen)
    for name, prop in schema.get("properties", {}).items():
        yield from _uuid_pointers(prop, f"{pointer}/{name}", seen)
    if "items" in schema:
        yield from _uuid_pointers(schema["items"], f"{pointer}/0", seen)


REFERENCES = sorted(
    {(op, p) for op in BODY_OPS for p in _uuid_pointers(op.body_schema or {})},
    key=lambda x: (x[0].id, x[1]),
)

# What kind of object each body reference names (by its last field name).
KIND_OF = {
    "client_id": "client",
    "brand_id": "brand",
    "brand_ids": "brand",
    "user_id": "member",
    "user_ids": "member",
    "escalate_to": "member",
    "content_item_id": "content",
    "social_account_ids": "account",
    "social_account_id": "account",
    "template_id": "template",
    "revision_id": "revision",
    "parent_id": "comment",
    "inbox_item_id": "inbox_item",
    "item_id": "inbox_item",
    # People are named by user id across the API (assignments, members, the inbox).
    "assignee_id": "member",
    "assign_to": "member",
    "notify": "member",
}


def _kind(pointer: str) -> str:
    return KIND_OF[next(p for p in reversed(pointer.split("/")) if not p.isdigit())]


async def _world(ctx: Ctx) -> World:
    """One agency with one object of each kind a body can name (their ids by kind)."""
    agency = await new_agency(ctx.client)
    h = agency.owner.headers
    client_ = await owner_post(ctx, agency, "/v1/clients", {"name": unique("Client")})
    brand = await owner_post(
        ctx, agency, "/v1/brands", {"client_id": client_, "name": "B", "slug": unique("b")}
    )
    owner = str(agency.owner.user_id)
    await owner_post(
        ctx,
        agency,
        "/v1/assignments",
        {"brand_id": brand, "user_id": owner, "role": "lead", "start_date": "2000-01-01"},
    )
    member = await ID_PROVIDERS["user_id"](ctx, agency, {})
    template = await owner_post(
        ctx, agency, "/v1/workflow-templates", {"name": unique("W"), "steps": []}
    )
    content = await ctx.client.post(
        f"/v1/brands/{brand}/content", json={"title": "Post"}, headers=h
    )
    assert content.status_code == 201, content.text
    content_id, revision = content.json()["id"], content.json()["revision"]["id"]
    comment = await owner_post(
        ctx, agency, f"/v1/content/{content_id}/comments", {"body": "Hi", "visibility": "internal"}
    )
    account = await ID_PROVIDERS["account_id"](ctx, agency, {"brand_id": brand})
    retainer = await owner_post(
        ctx,
        agency,
        "/v1/retainers",
        {
            "client_id": client_,
            "start_month": "2000-01",
            "monthly_minutes": 600,
            "fee_minor": 1000,
            "overage": {"policy": "hard_cap"},
        },
    )
    day = (utcnow() - timedelta(days=2)).date().isoformat()
    entry = await owner_post(
        ctx,
        agency,
        "/v1/time-entries",
        {"brand_id": brand, "date": day, "minutes": 15, "activity": "other"},
    )
    item = await seed_inbox_item(ctx.db, agency.tenant_id, uuid.UUID(account))
    saved_reply = await owner_post(
        ctx, agency, "/v1/saved-replies", {"name": "Merci", "language": "fr", "body": "Merci!"}
    )
    rule = await owner_post(
        ctx,
        agency,
        "/v1/inbox-rules",
        {"brand_id": brand, "name": "Rule", "condition": {}, "action": {}},
    )
    ids = {
        "inbox_item": str(item.id),
        "saved_reply": saved_reply,
        "rule": rule,
        "client": client_,
        "brand": brand,
        "member": member,
        "owner": owner,
        "template": template,
        "content": content_id,
        "revision": revision,
        "comment": comment,
        "account": account,
        "retainer": retainer,
        "entry": entry,
        "day": day,
    }
    return World(agency, ids=ids)


def _reference_body(op: Op, w: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The path and a body naming real objects of the world, for each operation whose body
    names objects."""
    template_body = {
        "name": unique("W"),
        "steps": [
            {
                "name": "Review",
                "kind": "internal",
                "user_ids": [w["member"]],
                "timeout": {"policy": "escalate", "escalate_to": w["owner"]},
            }
        ],
        "brand_ids": [w["brand"]],
    }
    bodies: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
        ("PATCH", "/v1/members/{user_id}"): (
            f"/v1/members/{w['member']}",
            {"role": "client", "client_id": w["client"]},
        ),
        ("POST", "/v1/invitations"): (
            "/v1/invitations",
            {"email": f"{unique('i')}@example.com", "role": "client", "client_id": w["client"]},
        ),
        ("POST", "/v1/brands"): (
            "/v1/brands",
            {"client_id": w["client"], "name": "B", "slug": unique("b")},
        ),
        ("POST", "/v1/assignments"): (
            "/v1/assignments",
            {
                "brand_id": w["brand"],
                "user_id": w["member"],
                "role": "analyst",
                "start_date": "2026-01-01",
            },
        ),
        ("POST", "/v1/retainers"): (
            "/v1/retainers",
            {
                "client_id": w["client"],
                "start_month": "2099-01",
                "monthly_minutes": 600,
                "fee_minor": 1000,
                "overage": {"policy": "hard_cap"},
                "brand_ids": [w["brand"]],
            },
        ),
        ("PATCH", "/v1/retainers/{retainer_id}"): (
            f"/v1/retainers/{w['retainer']}",
            {
                **VALID_BODIES[("PATCH", "/v1/retainers/{retainer_id}")](),
                "brand_ids": [w["brand"]],
            },
        ),
        ("POST", "/v1/rates"): (
            "/v1/rates",
            {"rate_minor": 8000, "client_id": w["client"], "user_id": w["member"]},
        ),
        ("POST", "/v1/time-entries"): (
            "/v1/time-entries",
            {
                "brand_id": w["brand"],
                "date": w["day"],
                "minutes": 15,
                "activity": "other",
                "content_item_id": w["content"],
                "inbox_item_id": w["inbox_item"],
            },
        ),
        ("POST", "/v1/inbox/{item_id}/assign"): (
            f"/v1/inbox/{w['inbox_item']}/assign",
            {"assignee_id": w["member"]},
        ),
        ("PATCH", "/v1/time-entries/{entry_id}"): (
            f"/v1/time-entries/{w['entry']}",
            {"content_item_id": w["content"]},
        ),
        ("POST", "/v1/timers/start"): (
            "/v1/timers/start",
            {"brand_id": w["brand"], "activity": "other", "content_item_id": w["content"]},
        ),
        ("POST", "/v1/workflow-templates"): ("/v1/workflow-templates", template_body),
        ("PUT", "/v1/workflow-templates/{template_id}"): (
            f"/v1/workflow-templates/{w['template']}",
            template_body,
        ),
        ("POST", "/v1/brands/{brand_id}/content"): (
            f"/v1/brands/{w['brand']}/content",
            {
                "title": "Post",
                "social_account_ids": [w["account"]],
                "template_id": w["template"],
            },
        ),
        ("PATCH", "/v1/content/{content_id}"): (
            f"/v1/content/{w['content']}",
            {"social_account_ids": [w["account"]], "template_id": w["template"]},
        ),
        ("POST", "/v1/content/{content_id}/submit"): (
            f"/v1/content/{w['content']}/submit",
            {"revision_id": w["revision"]},
        ),
        ("POST", "/v1/content/{content_id}/decisions"): (
            f"/v1/content/{w['content']}/decisions",
            {"revision_id": w["revision"], "decision": "approve"},
        ),
        ("POST", "/v1/content/{content_id}/comments"): (
            f"/v1/content/{w['content']}/comments",
            {
                "body": "Reply",
                "visibility": "internal",
                "parent_id": w["comment"],
                "anchor": {"revision_id": w["revision"], "start": 0, "end": 1},
            },
        ),
        ("POST", "/v1/invoices"): ("/v1/invoices", {"client_id": w["client"], "month": "2026-01"}),
        ("POST", "/v1/saved-replies"): (
            "/v1/saved-replies",
            {"brand_id": w["brand"], "name": "Merci", "language": "fr", "body": "Merci!"},
        ),
        ("POST", "/v1/saved-replies/{saved_reply_id}/render"): (
            f"/v1/saved-replies/{w['saved_reply']}/render",
            {"item_id": w["inbox_item"]},
        ),
        ("POST", "/v1/inbox-rules"): (
            "/v1/inbox-rules",
            {
                "brand_id": w["brand"],
                "name": "Rule",
                "condition": {},
                "action": {"assign_to": w["member"], "notify": [w["member"]]},
            },
        ),
        ("PATCH", "/v1/inbox-rules/{rule_id}"): (
            f"/v1/inbox-rules/{w['rule']}",
            {"action": {"assign_to": w["member"], "notify": [w["member"]]}},
        ),
        ("POST", "/v1/exports"): ("/v1/exports", {"client_id": w["client"]}),
        # Both ids at once: each one, from elsewhere, is refused on its own.
        ("POST", "/v1/erasures"): (
            "/v1/erasures",
            {"subject": "inbox_author", "social_account_id": w["account"], "author_id": "a-1"},
        ),
    }
    found = bodies.get((op.method, op.path))
    assert found is not None, f"{op.id} names ids in its body: add it to _reference_body"
    return found


def test_every_id_in_a_body_has_a_kind():
    unknown = [f"{op.id} {p}" for op, p in REFERENCES if _kind_or_none(p) is None]
    assert unknown == []


def _kind_or_none(pointer: str) -> str | None:
    try:
        return _kind(pointer)
    except KeyError:
        return None


@pytest.fixture(scope="module")
async def worlds(client, db, resources) -> tuple[World, World]:
    ctx = Ctx(client, db, resources)
    return await _world(ctx), await _world(ctx)


@pytest.mark.parametrize(("op", "pointer"), REFERENCES, ids=[f"{o.id} {p}" for o, p in REFERENCES])
@pytest.mark.parametrize("whose", ["another-agency", "nobody"])
async def test_an_id_in_a_body_names_an_object_of_the_callers_agency(
    op, pointer, whose, client, worlds
):
    mine, theirs = worlds
    path, body = _reference_body(op, mine.ids)
    stranger = theirs.ids[_kind(pointer)] if whose == "another-agency" else str(uuid.uuid4())
    body = _set_pointer(body, pointer, stranger)
    response = await client.request(op.method, path, json=body, headers=mine.agency.owner.headers)
    problem = assert_problem(response, 422)
    assert pointer in pointers(problem), problem


async def test_an_id_of_another_agency_changes_nothing(client, worlds, db):
    mine, theirs = worlds
    before = await walk.tenant_snapshot(db, mine.agency.tenant_id)
    response = await client.post(
        f"/v1/brands/{mine.ids['brand']}/content",
        json={"title": "Leak", "social_account_ids": [theirs.ids["account"]]},
        headers=mine.agency.owner.headers,
    )
    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem) == {"/social_account_ids/0"}
    assert await walk.tenant_snapshot(db, mine.agency.tenant_id) == before


# ---------------------------------------------------------------------------------------------
# 9. Idempotency keys compare parsed JSON


async def test_the_same_object_with_its_keys_reordered_is_the_same_request(client, db):
    agency = await new_agency(client)
    headers = {
        **agency.owner.headers,
        "Idempotency-Key": unique("idem"),
        "content-type": "application/json",
    }
    name = unique("Client")
    first = await client.post(
        "/v1/clients", content=f'{{"name": "{name}", "locale": "en"}}', headers=headers
    )
    second = await client.post(
        "/v1/clients", content=f'{{ "locale":"en",\n "name":"{name}" }}', headers=headers
    )
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json()["id"] == first.json()["id"]
    other = await client.post(
        "/v1/clients", content=f'{{"name": "{name}", "locale": "fr"}}', headers=headers
    )
    assert_problem(other, 422, "idempotency-key-reused")


# ---------------------------------------------------------------------------------------------
# The reproductions of issue 15, each leaving the agency as it was


@dataclass(frozen=True)
class Repro:
    name: str
    method: str
    path: str  # {client}, {member}, {brand}, {entry}, {content} are the world's
    body: Any
    status: int
    pointer: str | None
    headers: dict[str, str] | None = None


REPRODUCTIONS = [
    Repro("client-name-nul", "POST", "/v1/clients", {"name": "a\u0000b"}, 422, "/name"),
    Repro("client-search-nul", "GET", "/v1/clients?q=a%00b", None, 422, "query:q"),
    Repro(
        "brand-name-nul",
        "POST",
        "/v1/brands",
        {"client_id": "{client}", "name": "a\u0000b", "slug": "nul-brand"},
        422,
        "/name",
    ),
    Repro(
        "entry-note-nul",
        "PATCH",
        "/v1/time-entries/{entry}",
        {"note": "a\u0000b"},
        422,
        "/note",
    ),
    Repro(
        "variant-nul",
        "PATCH",
        "/v1/content/{content}",
        {"variants": {"x": "a\u0000b"}},
        422,
        "/variants/x",
    ),
    Repro(
        "label-nul",
        "PATCH",
        "/v1/content/{content}",
        {"labels": ["ok", "a\u0000b"]},
        422,
        "/labels/1",
    ),
    Repro(
        "comment-nul",
        "POST",
        "/v1/content/{content}/comments",
        {"body": "a\u0000b", "visibility": "internal"},
        422,
        "/body",
    ),
    Repro(
        "partner-app-nul",
        "POST",
        "/v1/partner-apps",
        {"name": "a\u0000b", "scopes": ["brands:read"]},
        422,
        "/name",
    ),
    Repro(
        "invoice-line-nul",
        "POST",
        "/v1/invoices/{nobody}/lines",
        {"description": "a\u0000b", "amount_minor": 100},
        422,
        "/description",
    ),
    Repro(
        "client-name-null",
        "PATCH",
        "/v1/clients/{client}",
        {"name": None},
        422,
        "/name",
        {"If-Match": '"1"'},
    ),
    Repro("member-role-null", "PATCH", "/v1/members/{member}", {"role": None}, 422, "/role"),
    Repro(
        "minutes-true",
        "PATCH",
        "/v1/time-entries/{entry}",
        {"minutes": True},
        422,
        "/minutes",
    ),
    Repro("report-month", "GET", "/v1/clients/{client}/reports/0563-05", None, 422, "path:month"),
    Repro(
        "report-pdf-month",
        "GET",
        "/v1/clients/{client}/reports/0563-05/pdf",
        None,
        422,
        "path:month",
    ),
    Repro(
        "planned-at-year-1",
        "PATCH",
        "/v1/content/{content}",
        {"planned_at": "0001-01-01T00:00:00+05:00"},
        422,
        "/planned_at",
    ),
    Repro(
        "entry-date-9999",
        "POST",
        "/v1/time-entries",
        {"brand_id": "{brand}", "date": "9999-12-31", "minutes": 5, "activity": "other"},
        422,
        "/date",
    ),
    Repro("put-client", "PUT", "/v1/clients/{client}", None, 405, None),
    Repro(
        "content-foreign-account",
        "PATCH",
        "/v1/content/{content}",
        {"social_account_ids": ["{foreign_account}"]},
        422,
        "/social_account_ids/0",
    ),
]


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    return value


@pytest.mark.parametrize("case", REPRODUCTIONS, ids=lambda c: c.name)
async def test_issue_15_reproductions(case, client, db, worlds):
    mine, theirs = worlds
    ids = {**mine.ids, "foreign_account": theirs.ids["account"], "nobody": str(uuid.uuid4())}
    before = await walk.tenant_snapshot(db, mine.agency.tenant_id)
    response = await client.request(
        case.method,
        _substitute(case.path, ids),
        json=_substitute(case.body, ids),
        headers={**mine.agency.owner.headers, **(case.headers or {})},
    )
    problem = assert_problem(response, case.status)
    if case.pointer is not None:
        assert case.pointer in pointers(problem), problem
    if case.status == 405:
        assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH"}
    assert await walk.tenant_snapshot(db, mine.agency.tenant_id) == before
