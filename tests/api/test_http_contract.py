"""The HTTP contract of DESIGN.md, walked over every route the application has.

Routes are discovered from the app, not listed: a new route is tried with another tenant's
ids, with malformed, oversized and hostile bodies, and against the OpenAPI rules the day it is
added. What the walk cannot guess (how to make an object of a kind, what a valid body looks
like) lives in the registries of tests/support/contract.py, and a route missing from them fails
with a message that says where to register it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from infra.errors import PROBLEM_BASE
from tests.support import walk
from tests.support.contract import (
    ID_PROVIDERS,
    NON_JSON_BODIES,
    NOT_TENANT_OBJECTS,
    REQUIRED_QUERY,
    VALID_BODIES,
    VALUE_PARAMS,
    Ctx,
    path_ids,
    registration_problems,
    require_registered,
    valid_body,
    walk_signup_body,
)
from tests.support.factories import new_agency, unique
from tests.support.partners import basic, partner_for, request_token
from tests.support.problems import PROBLEM_JSON, REQUEST_ID, assert_problem

TEN_MB = 10 * 1024 * 1024


# Collected once, from an application built only to read its route table.
_APP = walk.route_table_app()
CROSS_TENANT_OPS = [
    op for op in walk.operations_with_path_params(_APP) if op.path not in NOT_TENANT_OBJECTS
]
BODY_OPS = walk.operations_with_json_body(_APP)


def op_id(op: walk.Operation) -> str:
    return op.id


# ---------------------------------------------------------------------------------------------
# Helpers


def pointers(problem: dict) -> list[str]:
    return [e["pointer"] for e in problem.get("errors") or []]


async def send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    if body is None:
        return await client.request(method, path, headers=headers, params=params)
    return await client.request(method, path, headers=headers, json=body, params=params)


def comparable(problem: dict) -> dict:
    return {k: v for k, v in problem.items() if k not in ("instance", "request_id")}


# ---------------------------------------------------------------------------------------------
# The walk itself


def test_walk_sees_the_running_application(app):
    running = {op.id for op in walk.operations(app)}
    assert running == {op.id for op in walk.operations(_APP)}
    assert "GET /v1/members/{user_id}" in running
    assert any(op.id == "POST /v1/auth/signup" for op in BODY_OPS)


def test_walk_knows_which_routes_need_a_token():
    by_id = {op.id: op for op in walk.operations(_APP)}
    assert by_id["GET /v1/me"].info.needs_auth
    assert by_id["PATCH /v1/members/{user_id}"].info.needs_auth
    # The hottest reads authenticate through api.deps.get_reader, without a session.
    assert by_id["GET /v1/members"].info.needs_auth
    assert by_id["GET /v1/clients/{client_id}/budget"].info.needs_auth
    assert not by_id["POST /v1/auth/signup"].info.needs_auth
    assert not by_id["GET /healthz"].info.needs_auth
    # The partner authenticates with its client credentials, not with a bearer token.
    assert not by_id["POST /v1/oauth/token"].info.needs_auth


def test_every_route_with_a_path_parameter_or_body_is_registered():
    unregistered = [
        f"register {op.method} {op.path} in ID_PROVIDERS/VALID_BODIES"
        for op in walk.operations(_APP)
        if registration_problems(op)
    ]
    assert unregistered == []


def test_registries_name_only_existing_routes():
    ops = {(op.method, op.path) for op in walk.operations(_APP)}
    paths = {path for _, path in ops}
    params = {p for op in walk.operations(_APP) for p in op.info.path_params}
    assert set(VALID_BODIES) <= ops, set(VALID_BODIES) - ops
    assert set(NON_JSON_BODIES) <= ops, set(NON_JSON_BODIES) - ops
    json_bodies = {(op.method, op.path) for op in BODY_OPS}
    assert not set(NON_JSON_BODIES) & json_bodies, set(NON_JSON_BODIES) & json_bodies
    assert all(reason.strip() for reason in NON_JSON_BODIES.values())
    assert set(NOT_TENANT_OBJECTS) <= paths, set(NOT_TENANT_OBJECTS) - paths
    assert set(ID_PROVIDERS) <= params, set(ID_PROVIDERS) - params


# ---------------------------------------------------------------------------------------------
# Another tenant's object: 404, never 403, and untouched


@pytest.mark.parametrize("op", CROSS_TENANT_OPS, ids=op_id)
async def test_another_tenants_object_is_not_found(op, client, db, resources):
    require_registered(op)
    ctx = Ctx(client, db, resources)
    a, b = await new_agency(client), await new_agency(client)
    ids_a = await path_ids(ctx, op, a)
    ids_b = await path_ids(ctx, op, b)
    headers = a.owner.headers
    params = op.info.path_params
    before = await walk.tenant_snapshot(db, b.tenant_id)

    # B's objects, all of them, and (for nested paths) one at a time under A's parents.
    objects = [p for p in params if p not in VALUE_PARAMS]
    variants = {"*": ids_b}
    if len(objects) > 1:
        variants.update({p: {**ids_a, p: ids_b[p]} for p in objects})
    answers = {}
    for key, ids in variants.items():
        response = await send(
            client,
            op.method,
            op.info.fill(ids),
            headers=headers,
            body=valid_body(op),
            params=REQUIRED_QUERY.get(op.path),
        )
        answers[key] = assert_problem(response, 404)

    for name in objects:
        # An id of the right shape that exists nowhere: the same answer, so B's existence
        # is not disclosed.
        response = await send(
            client,
            op.method,
            op.info.fill({**ids_a, name: str(uuid.uuid4())}),
            headers=headers,
            body=valid_body(op),
            params=REQUIRED_QUERY.get(op.path),
        )
        unknown = assert_problem(response, 404)
        assert comparable(unknown) == comparable(answers.get(name, answers["*"]))

        if op.info.path_param_is_uuid(name):
            response = await send(
                client,
                op.method,
                op.info.fill({**ids_a, name: "not-a-uuid"}),
                headers=headers,
                body=valid_body(op),
                params=REQUIRED_QUERY.get(op.path),
            )
            problem = assert_problem(response, 422, "validation-error")
            assert any(name in pointer for pointer in pointers(problem)), problem

    assert await walk.tenant_snapshot(db, b.tenant_id) == before, "B's data changed"

    # The control: the same request on A's own object gets through, so the 404s above were
    # about the tenant, not about a broken route or body.
    response = await send(
        client,
        op.method,
        op.info.fill(ids_a),
        headers=headers,
        body=valid_body(op),
        params=REQUIRED_QUERY.get(op.path),
    )
    assert response.status_code != 404 and response.status_code < 500, response.text
    if response.status_code == 422:
        # Only the placeholder ids of the body (a revision of this item it cannot know) may be
        # refused: the request reached the service, which checked what the body names.
        named = response.json().get("errors") or []
        assert named and all(_is_reference_error(e) for e in named), response.text


def _is_reference_error(error: dict[str, str]) -> bool:
    return error["code"].endswith("-not-found") or error["code"] == "unknown-reference"


def test_not_tenant_objects_have_reasons():
    for path, reason in NOT_TENANT_OBJECTS.items():
        assert "{" in path and reason.strip(), path


# ---------------------------------------------------------------------------------------------
# Bad input, on every route that takes a JSON body: a clear 4xx problem, nothing written


async def _bad_input_setup(op: walk.Operation, client, db, resources):
    require_registered(op)
    agency = await new_agency(client)
    ids = await path_ids(Ctx(client, db, resources), op, agency)
    headers = dict(agency.owner.headers) if op.info.needs_auth else {}
    return agency, op.info.fill(ids), headers


@pytest.mark.parametrize("op", BODY_OPS, ids=op_id)
async def test_malformed_bodies_are_refused_and_change_nothing(op, client, db, resources):
    agency, path, headers = await _bad_input_setup(op, client, db, resources)
    json_headers = {**headers, "content-type": "application/json"}
    valid = valid_body(op)
    before = await walk.tenant_row_counts(db, agency.tenant_id)

    response = await client.request(op.method, path, headers=json_headers, content=b'{"oops": ')
    assert_problem(response, 400, "malformed-json")

    response = await client.request(
        op.method, path, headers=json_headers, content=json.dumps([valid]).encode()
    )
    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem), problem
    assert all(isinstance(p, str) and p for p in pointers(problem)), problem

    response = await send(
        client, op.method, path, headers=headers, body={**valid, "unexpected_field": 1}
    )
    problem = assert_problem(response, 422, "validation-error")
    assert "/unexpected_field" in pointers(problem), problem

    wrong = list(walk.wrong_type_values(op.info.body_json_schema()))
    assert wrong, f"{op.id}: no field of the body schema to send a wrong type to"
    for field_name, value in wrong:
        response = await send(
            client, op.method, path, headers=headers, body={**valid, field_name: value}
        )
        problem = assert_problem(response, 422, "validation-error")
        assert any(
            p == f"/{field_name}" or p.startswith(f"/{field_name}/") for p in pointers(problem)
        ), (field_name, problem)

    response = await client.request(
        op.method,
        path,
        headers={**headers, "content-type": "text/plain"},
        content=json.dumps(valid).encode(),
    )
    assert_problem(response, 415, "unsupported-media-type")

    assert await walk.tenant_row_counts(db, agency.tenant_id) == before


@pytest.mark.parametrize("op", BODY_OPS, ids=op_id)
async def test_oversized_body_is_refused_and_changes_nothing(op, client, db, resources):
    agency, path, headers = await _bad_input_setup(op, client, db, resources)
    before = await walk.tenant_row_counts(db, agency.tenant_id)
    payload = b'{"padding": "' + b"x" * TEN_MB + b'"}'
    response = await client.request(
        op.method,
        path,
        headers={**headers, "content-type": "application/json"},
        content=payload,
    )
    assert_problem(response, 413, "payload-too-large")
    assert await walk.tenant_row_counts(db, agency.tenant_id) == before


async def _chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    yield b'{"padding": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


@pytest.mark.parametrize("op", BODY_OPS, ids=op_id)
async def test_oversized_chunked_body_is_refused_and_changes_nothing(op, client, db, resources):
    """No Content-Length to refuse up front: the limit must hold while the body streams in."""
    agency, path, headers = await _bad_input_setup(op, client, db, resources)
    before = await walk.tenant_row_counts(db, agency.tenant_id)
    request = client.build_request(
        op.method,
        path,
        headers={**headers, "content-type": "application/json"},
        content=_chunks(TEN_MB),
    )
    assert "content-length" not in request.headers
    assert request.headers.get("transfer-encoding") == "chunked"
    response = await client.send(request)
    assert_problem(response, 413, "payload-too-large")
    assert await walk.tenant_row_counts(db, agency.tenant_id) == before


# The token endpoint takes a form (NON_JSON_BODIES): the same promises, in OAuth's words.
FORM = "application/x-www-form-urlencoded"
TOKEN_FORM = b"grant_type=client_credentials"
# (case, content type, body, status, RFC 6749 §5.2 error, or None for the plain problem)
TokenCase = tuple[str, str | None, bytes, int, str | None]
MALFORMED_TOKEN_REQUESTS: list[TokenCase] = [
    ("json", "application/json", b'{"grant_type": "client_credentials"}', 400, "invalid_request"),
    ("text-plain", "text/plain", TOKEN_FORM, 400, "invalid_request"),
    ("no-media-type", None, TOKEN_FORM, 400, "invalid_request"),
    ("not-utf8", FORM, TOKEN_FORM + b"&scope=caf\xe9", 400, "invalid_request"),
    ("bad-percent-escape", FORM, TOKEN_FORM + b"&scope=%zz", 400, "invalid_scope"),
    ("over-8-kb", FORM, TOKEN_FORM + b"&scope=" + b"x" * 9000, 400, "invalid_request"),
    ("10-mb", FORM, TOKEN_FORM + b"&scope=" + b"x" * TEN_MB, 413, None),
]
# RFC 6749 §5.2 invalid_request: "missing a required parameter, ... repeats a parameter,
# includes multiple credentials" (§3.2: parameters MUST NOT be sent more than once; §2.3: one
# authentication method per request).
INVALID_TOKEN_REQUESTS: list[TokenCase] = [
    ("no-grant-type", FORM, b"", 400, "invalid_request"),
    ("repeated-grant-type", FORM, TOKEN_FORM + b"&" + TOKEN_FORM, 400, "invalid_request"),
    ("repeated-scope", FORM, TOKEN_FORM + b"&scope=brands:read" * 2, 400, "invalid_request"),
]


async def _form_chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    yield TOKEN_FORM + b"&scope="
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


def _token_problem_mismatch(response: httpx.Response, status: int, error: str | None) -> str:
    """What is wrong with this answer to a token request that must fail ("" if nothing)."""
    try:
        assert response.status_code == status
        slug = "payload-too-large" if error is None else "oauth-" + error.replace("_", "-")
        problem = assert_problem(response, status, slug)
        assert "access_token" not in response.text
        if error is not None:
            assert problem["error"] == error and problem["error_description"], problem
            assert response.headers.get("cache-control") == "no-store", response.headers
    except AssertionError:
        body = response.json() if "json" in response.headers.get("content-type", "") else {}
        answer = body.get("error") or body.get("type", "")
        return f"wanted {status} {error}, got {response.status_code} {answer}"
    return ""


async def _refused_token_requests(client, db, cases, extra) -> None:
    """Each case, sent with the right client id and secret of an app whose agency has the
    public API, is the problem it should be, and no token is issued (the app's last token
    time does not move); then a well-formed request gets a token."""
    agency = await new_agency(client)
    app, _ = await partner_for(client, db, agency, ["brands:read"])
    credentials = basic(app.client_id, app.client_secret)
    before = await walk.tenant_snapshot(db, agency.tenant_id)

    answers = []
    for case, media, content, status, error in cases:
        headers = {**credentials, **({"content-type": media} if media else {})}
        response = await client.post("/v1/oauth/token", headers=headers, content=content)
        answers.append((case, response, status, error))
    answers += await extra(client, app, credentials)
    wrong = [
        f"{case}: {mismatch}"
        for case, response, status, error in answers
        if (mismatch := _token_problem_mismatch(response, status, error))
    ]
    assert not wrong, "\n".join(wrong)
    assert await walk.tenant_snapshot(db, agency.tenant_id) == before, "a token was issued"

    # The control: the same client with a well-formed request gets its token.
    response = await request_token(client, app.client_id, app.client_secret)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


async def test_token_endpoint_answers_problems_for_malformed_input(client, db):
    async def chunked(client, app, credentials):
        # No Content-Length: the body limit must hold while the form streams in.
        request = client.build_request(
            "POST",
            "/v1/oauth/token",
            headers={**credentials, "content-type": FORM},
            content=_form_chunks(TEN_MB),
        )
        assert request.headers.get("transfer-encoding") == "chunked"
        return [("10-mb-chunked", await client.send(request), 413, None)]

    await _refused_token_requests(client, db, MALFORMED_TOKEN_REQUESTS, chunked)


async def test_token_endpoint_refuses_what_rfc_6749_calls_an_invalid_request(client, db):
    async def two_methods(client, app, credentials):
        form = urlencode({"client_id": app.client_id, "client_secret": app.client_secret})
        response = await client.post(
            "/v1/oauth/token",
            headers={**credentials, "content-type": FORM},
            content=TOKEN_FORM + b"&" + form.encode(),
        )
        return [("basic-and-form-credentials", response, 400, "invalid_request")]

    await _refused_token_requests(client, db, INVALID_TOKEN_REQUESTS, two_methods)


# ---------------------------------------------------------------------------------------------
# Unknown paths, wrong methods, unexpected errors


async def test_unknown_path_is_a_404_problem(client):
    for path in ("/no-such-thing", "/v1/no-such-thing", "/v1/members/a/b/c"):
        response = await client.get(path)
        assert_problem(response, 404, "not-found")


async def test_wrong_method_is_a_405_problem_on_every_path(client):
    served: dict[str, set[str]] = {}
    routes: dict[str, walk.RouteInfo] = {}
    for info in walk.api_routes(_APP):
        served.setdefault(info.path, set()).update(info.methods)
        routes[info.path] = info
    for path, methods in served.items():
        method = next(m for m in ("DELETE", "PUT", "PATCH", "POST", "GET") if m not in methods)
        info = routes[path]
        filled = info.fill({p: str(uuid.uuid4()) for p in info.path_params})
        response = await client.request(method, filled)
        assert_problem(response, 405, "method-not-allowed")
        allow = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
        assert allow and allow <= methods | {"HEAD"}, (path, allow, methods)


@pytest.fixture
async def crashing_client(settings) -> AsyncIterator[httpx.AsyncClient]:
    """A separate application with one test-only route that fails unexpectedly."""
    from api.app import create_app

    application = create_app(settings)

    async def explode() -> None:
        raise RuntimeError("secret detail")

    application.add_api_route("/test-only/explode", explode, methods=["GET", "POST"])
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_unexpected_error_is_a_500_problem_without_details(crashing_client):
    response = await crashing_client.get("/test-only/explode")
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "internal-error"
    assert body["status"] == 500 and body["title"]
    for secret in ("secret detail", "RuntimeError", "Traceback", "explode"):
        assert secret not in response.text.replace("/test-only/explode", ""), secret


async def test_unexpected_error_response_carries_the_request_id(crashing_client):
    response = await crashing_client.get(
        "/test-only/explode", headers={"X-Request-ID": "support-ticket-42"}
    )
    assert response.status_code == 500
    assert response.json().get("request_id") == "support-ticket-42"
    assert response.headers.get("x-request-id") == "support-ticket-42"


# ---------------------------------------------------------------------------------------------
# Request ids


async def test_every_response_carries_a_request_id(client):
    agency = await new_agency(client)
    responses = [
        await client.get("/healthz"),
        await client.get("/v1/me", headers=agency.owner.headers),
        await client.get("/v1/me"),  # 401
        await client.get("/no-such-thing"),  # 404
        await client.delete("/v1/me"),  # 405
        await client.post(
            "/v1/auth/signup", content=b"{", headers={"content-type": "application/json"}
        ),  # 400
        await client.post(
            "/v1/auth/signup", content=b"x" * TEN_MB, headers={"content-type": "application/json"}
        ),  # 413, middleware
        await client.post("/v1/auth/signup", json={}, headers={"Idempotency-Key": "k" * 300}),
    ]
    seen = set()
    for response in responses:
        request_id = response.headers.get("x-request-id", "")
        assert REQUEST_ID.match(request_id), (response.status_code, response.headers)
        seen.add(request_id)
        if response.headers.get("content-type", "").startswith(PROBLEM_JSON):
            assert response.json()["request_id"] == request_id
    assert len(seen) == len(responses), "request ids must differ between requests"


async def test_valid_incoming_request_id_is_echoed(client):
    for given in ("req-123.abc:XYZ_9", "0" * 128):
        response = await client.get("/no-such-thing", headers={"X-Request-ID": given})
        assert response.headers["x-request-id"] == given
        assert response.json()["request_id"] == given


@pytest.mark.parametrize(
    "hostile",
    ["a" * 500, "a" * 129, 'abc"def', "abc\ndef", "abc\r\nSet-Cookie: x=1", "a b", "<script>"],
    ids=["500-chars", "129-chars", "quote", "newline", "crlf-injection", "space", "markup"],
)
async def test_hostile_incoming_request_id_is_replaced(client, hostile):
    response = await client.get("/no-such-thing", headers={"X-Request-ID": hostile})
    replaced = response.headers.get("x-request-id", "")
    assert replaced != hostile
    assert REQUEST_ID.match(replaced), replaced
    assert response.json()["request_id"] == replaced
    assert "set-cookie" not in response.headers


# ---------------------------------------------------------------------------------------------
# Idempotency keys


async def tenants_with_slug(db, slug: str) -> int:
    async with db.session() as session:
        return (
            await session.execute(text("SELECT count(*) FROM tenants WHERE slug = :s"), {"s": slug})
        ).scalar_one()


async def invitations_to(db, tenant_id: uuid.UUID, email: str) -> int:
    async with db.tenant_transaction(tenant_id) as session:
        return (
            await session.execute(
                text("SELECT count(*) FROM invitations WHERE lower(email) = lower(:e)"),
                {"e": email},
            )
        ).scalar_one()


async def test_signup_with_the_same_idempotency_key_is_replayed(client, db):
    body = walk_signup_body()
    key = unique("idem")
    first = await client.post("/v1/auth/signup", json=body, headers={"Idempotency-Key": key})
    second = await client.post("/v1/auth/signup", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert second.status_code == first.status_code
    assert second.json() == first.json()
    assert second.json()["tenant"]["id"] == first.json()["tenant"]["id"]
    assert second.headers.get("idempotent-replayed") == "true"
    assert await tenants_with_slug(db, body["slug"]) == 1


async def test_signup_idempotency_key_reused_with_another_body(client, db):
    body = walk_signup_body()
    key = unique("idem")
    first = await client.post("/v1/auth/signup", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    other = {**body, "owner_name": "Someone Else"}
    response = await client.post("/v1/auth/signup", json=other, headers={"Idempotency-Key": key})
    assert_problem(response, 422, "idempotency-key-reused")
    assert await tenants_with_slug(db, body["slug"]) == 1


@pytest.mark.parametrize("key", ["k" * 300, "has space", "é-accent"], ids=["300", "space", "utf8"])
async def test_signup_with_an_invalid_idempotency_key_is_refused(client, db, key):
    body = walk_signup_body()
    response = await client.post(
        "/v1/auth/signup", json=body, headers={"Idempotency-Key": key.encode()}
    )
    assert_problem(response, 400, "idempotency-key-invalid")
    assert await tenants_with_slug(db, body["slug"]) == 0


async def test_invitation_with_the_same_idempotency_key_is_replayed(client, db):
    agency = await new_agency(client)
    body = VALID_BODIES[("POST", "/v1/invitations")]()
    headers = {**agency.owner.headers, "Idempotency-Key": unique("idem")}
    first = await client.post("/v1/invitations", json=body, headers=headers)
    second = await client.post("/v1/invitations", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert await invitations_to(db, agency.tenant_id, body["email"]) == 1

    other = {**body, "role": "manager"}
    response = await client.post("/v1/invitations", json=other, headers=headers)
    assert_problem(response, 422, "idempotency-key-reused")
    assert await invitations_to(db, agency.tenant_id, body["email"]) == 1

    bad = {**agency.owner.headers, "Idempotency-Key": "k" * 300}
    fresh = VALID_BODIES[("POST", "/v1/invitations")]()
    response = await client.post("/v1/invitations", json=fresh, headers=bad)
    assert_problem(response, 400, "idempotency-key-invalid")
    assert await invitations_to(db, agency.tenant_id, fresh["email"]) == 0


async def test_idempotency_keys_are_scoped_to_the_caller(client, db):
    a, b = await new_agency(client), await new_agency(client)
    key = unique("idem")
    body = VALID_BODIES[("POST", "/v1/invitations")]()
    first = await client.post(
        "/v1/invitations", json=body, headers={**a.owner.headers, "Idempotency-Key": key}
    )
    other = await client.post(
        "/v1/invitations", json=body, headers={**b.owner.headers, "Idempotency-Key": key}
    )
    assert first.status_code == 201 and other.status_code == 201, other.text
    assert "idempotent-replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
    assert await invitations_to(db, b.tenant_id, body["email"]) == 1


# ---------------------------------------------------------------------------------------------
# Health


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


# ---------------------------------------------------------------------------------------------
# OpenAPI


async def test_openapi_document_is_complete(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    operation_ids: list[str] = []
    problems: list[str] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                continue
            where = f"{method.upper()} {path}"
            op_id_ = operation.get("operationId", "")
            operation_ids.append(op_id_)
            if not op_id_.isidentifier():
                problems.append(f"{where}: operationId {op_id_!r} is not an identifier")
            declared = operation.get("responses", {})
            wanted = ["422", "500"] if path.startswith("/v1/") else []
            if "{" in path:
                wanted.append("404")
            for status in wanted:
                content = declared.get(status, {}).get("content", {})
                if PROBLEM_JSON not in content:
                    problems.append(f"{where}: no {status} {PROBLEM_JSON} response")
    duplicates = {i for i in operation_ids if operation_ids.count(i) > 1}
    assert not duplicates, f"duplicate operationIds: {duplicates}"
    assert problems == []
    discovered = {
        (op.method.lower(), op.path)
        for op in walk.operations(_APP)
        if op.info.route.include_in_schema
    }
    documented = {(m, p) for p, item in document["paths"].items() for m in item}
    assert discovered <= documented, discovered - documented


# ---------------------------------------------------------------------------------------------
# Settings


def test_missing_setting_is_one_clear_line(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    executable = Path(sys.executable).parent / "passerelle"  # the venv running the tests
    result = subprocess.run(
        [str(executable), "migrate"],
        cwd=tmp_path,  # no .env to read
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr
    assert "migrated" not in result.stdout
