"""Partner apps and the OAuth2 token endpoint, end to end through HTTP: who may manage apps,
what the token carries, every way a token request fails, rotation, revocation, scope changes,
plan changes, the token endpoint's rate limit and the audit trail."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from infra.security import hash_secret
from partners.scopes import ALL_SCOPES
from tests.support.factories import add_person, make_client, new_agency, unique
from tests.support.partners import (
    PartnerApp,
    basic,
    create_partner_app,
    enable_public_api,
    partner_headers,
    request_token,
    set_plan,
)
from tests.support.problems import assert_problem

TOKEN = "/v1/oauth/token"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jwt_payload(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without verifying it (what any partner can see)."""
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict:
    """An RFC 6749 §5.2 error that is also an RFC 9457 problem document."""
    body = assert_problem(response, status, f"oauth-{error.replace('_', '-')}")
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"], body
    assert "no-store" in response.headers.get("cache-control", ""), response.headers
    if status == 401:
        assert response.headers.get("www-authenticate", "").lower().startswith("basic"), (
            response.headers
        )
    return body


def assert_invalid_client(response: httpx.Response, *, as_form: bool) -> dict:
    """RFC 6749 §5.2: 401 with WWW-Authenticate when the client tried HTTP Basic; a client
    that sent its credentials in the form may get 400 or 401."""
    if as_form:
        assert response.status_code in (400, 401), response.text
        return assert_oauth_error(response, response.status_code, "invalid_client")
    return assert_oauth_error(response, 401, "invalid_client")


async def list_apps(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict]:
    response = await client.get("/v1/partner-apps", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()["items"]


async def fresh_app(
    client: httpx.AsyncClient, db, scopes: list[str] | None = None
) -> tuple[Any, PartnerApp]:
    agency = await new_agency(client)
    await enable_public_api(db, agency)
    app = await create_partner_app(
        client, agency, scopes or ["brands:read", "clients:read"], name=unique("app")
    )
    return agency, app


async def get_app(client: httpx.AsyncClient, agency, app_id: str) -> httpx.Response:
    response = await client.get(f"/v1/partner-apps/{app_id}", headers=agency.owner.headers)
    assert response.status_code == 200, response.text
    return response


# ---------------------------------------------------------------------------------------------
# Managing partner apps


async def test_owner_creates_an_app_and_sees_its_secret_only_once(client, db, resources):
    agency = await new_agency(client)
    response = await client.post(
        "/v1/partner-apps",
        json={
            "name": "  Reporting tool  ",
            "scopes": ["brands:read", "clients:read", "brands:read"],
        },
        headers=agency.owner.headers,
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    assert "no-store" in response.headers["cache-control"]
    created = response.json()
    secret = created["client_secret"]
    assert secret.startswith("pas_") and len(secret) > 30
    assert created["name"] == "Reporting tool"
    assert created["scopes"] == ["brands:read", "clients:read"]
    assert created["status"] == "active"
    assert created["revoked_at"] is None and created["last_token_at"] is None
    assert created["client_id"] == f"pa_{agency.tenant_id.hex}_{uuid.UUID(created['id']).hex}"

    digest = hash_secret(secret)
    read = await get_app(client, agency, created["id"])
    assert read.headers["etag"] == '"1"'
    listed = await client.get("/v1/partner-apps", headers=agency.owner.headers)
    assert listed.status_code == 200, listed.text
    assert [a["id"] for a in listed.json()["items"]] == [created["id"]]
    for response in (read, listed):
        assert secret not in response.text and digest not in response.text
        assert "client_secret" not in response.text and "secret_hash" not in response.text
    assert {k: v for k, v in created.items() if k != "client_secret"} == read.json()

    # An admin manages apps too, and sees the owner's.
    admin = await add_person(client, db, resources.passwords, agency, "admin")
    by_admin = await client.post(
        "/v1/partner-apps", json={"name": "CRM", "scopes": ["time:read"]}, headers=admin.headers
    )
    assert by_admin.status_code == 201, by_admin.text
    assert {a["id"] for a in await list_apps(client, admin.headers)} == {
        created["id"],
        by_admin.json()["id"],
    }


@pytest.mark.parametrize("role", ["manager", "member", "client"])
async def test_only_owners_and_admins_manage_partner_apps(client, db, resources, role):
    agency = await new_agency(client)
    app = await create_partner_app(client, agency, ["brands:read"])
    person = await add_person(client, db, resources.passwords, agency, role)
    h = person.headers
    for response in (
        await client.post(
            "/v1/partner-apps", json={"name": "x", "scopes": ["brands:read"]}, headers=h
        ),
        await client.get("/v1/partner-apps", headers=h),
        await client.get(f"/v1/partner-apps/{app.id}", headers=h),
        await client.patch(f"/v1/partner-apps/{app.id}", json={"name": "y"}, headers=h),
        await client.post(f"/v1/partner-apps/{app.id}/rotate-secret", json={}, headers=h),
        await client.delete(f"/v1/partner-apps/{app.id}", headers=h),
    ):
        assert_problem(response, 403, "permission-denied")
    # Nothing changed: no new app, same name and version, not revoked.
    read = (await get_app(client, agency, app.id)).json()
    assert (read["name"], read["version"], read["status"]) == (app.body["name"], 1, "active")
    assert await list_apps(client, agency.owner.headers) == [read]


async def test_another_agency_cannot_see_or_touch_the_app(client):
    agency = await new_agency(client)
    app = await create_partner_app(client, agency, ["brands:read"])
    other = await new_agency(client)
    h = other.owner.headers
    for response in (
        await client.get(f"/v1/partner-apps/{app.id}", headers=h),
        await client.patch(f"/v1/partner-apps/{app.id}", json={"name": "stolen"}, headers=h),
        await client.post(f"/v1/partner-apps/{app.id}/rotate-secret", json={}, headers=h),
        await client.delete(f"/v1/partner-apps/{app.id}", headers=h),
    ):
        assert_problem(response, 404, "partner-app-not-found")
    assert await list_apps(client, h) == []
    read = (await get_app(client, agency, app.id)).json()
    assert (read["name"], read["version"], read["status"]) == (app.body["name"], 1, "active")


async def test_list_pages_through_every_app_once(client):
    agency = await new_agency(client)
    made = [
        (await create_partner_app(client, agency, ["brands:read"], name=f"app {i}")).id
        for i in range(3)
    ]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in range(10):
        response = await client.get("/v1/partner-apps", params=params, headers=agency.owner.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) == 1
        seen += [a["id"] for a in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert sorted(seen) == sorted(made)
    assert len(seen) == 3


def _raw(content: str, content_type: str) -> dict[str, Any]:
    return {"content": content.encode(), "headers": {"Content-Type": content_type}}


BAD_BODIES: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    (
        "empty name",
        {"json": {"name": "", "scopes": ["brands:read"]}},
        422,
        "validation-error",
        "/name",
    ),
    (
        "blank name",
        {"json": {"name": "   ", "scopes": ["brands:read"]}},
        422,
        "validation-error",
        "/name",
    ),
    (
        "long name",
        {"json": {"name": "x" * 101, "scopes": ["brands:read"]}},
        422,
        "validation-error",
        "/name",
    ),
    ("no name", {"json": {"scopes": ["brands:read"]}}, 422, "validation-error", "/name"),
    ("empty scopes", {"json": {"name": "App", "scopes": []}}, 422, "validation-error", "/scopes"),
    (
        "unknown scope",
        {"json": {"name": "App", "scopes": ["nope:x"]}},
        422,
        "validation-error",
        "/scopes/0",
    ),
    (
        "scopes as a string",
        {"json": {"name": "App", "scopes": "brands:read"}},
        422,
        "validation-error",
        "/scopes",
    ),
    (
        "name as a number",
        {"json": {"name": 5, "scopes": ["brands:read"]}},
        422,
        "validation-error",
        "/name",
    ),
    (
        "extra field",
        {"json": {"name": "App", "scopes": ["brands:read"], "secret": "mine"}},
        422,
        "validation-error",
        "/secret",
    ),
    (
        "body is a list",
        {"json": [{"name": "App", "scopes": ["brands:read"]}]},
        422,
        "validation-error",
        None,
    ),
    (
        "plain text",
        _raw("name=App&scopes=brands:read", "text/plain"),
        415,
        "unsupported-media-type",
        None,
    ),
    (
        "form",
        _raw("name=App&scopes=brands:read", "application/x-www-form-urlencoded"),
        415,
        "unsupported-media-type",
        None,
    ),
    (
        "broken JSON",
        _raw('{"name": "App", "scopes": [', "application/json"),
        400,
        "malformed-json",
        None,
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "slug", "pointer"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_bad_input_is_refused_and_creates_nothing(client, body, status, slug, pointer):
    agency = await new_agency(client)
    body = dict(body)
    headers = {**agency.owner.headers, **body.pop("headers", {})}
    response = await client.post("/v1/partner-apps", headers=headers, **body)
    problem = assert_problem(response, status, slug)
    if pointer is not None:
        pointers = [e["pointer"] for e in problem["errors"]]
        assert any(p == pointer or p.startswith(pointer + "/") for p in pointers), problem
    assert await list_apps(client, agency.owner.headers) == []


async def test_bad_updates_change_nothing(client):
    agency = await new_agency(client)
    app = await create_partner_app(client, agency, ["brands:read"])
    for body in (
        {"scopes": []},
        {"scopes": ["nope:x"]},
        {"name": ""},
        {"client_id": "pa_mine"},
        {"status": "revoked"},
    ):
        response = await client.patch(
            f"/v1/partner-apps/{app.id}", json=body, headers=agency.owner.headers
        )
        assert_problem(response, 422, "validation-error")
    read = (await get_app(client, agency, app.id)).json()
    assert read == {k: v for k, v in app.body.items() if k != "client_secret"}


# ---------------------------------------------------------------------------------------------
# The token endpoint: successes


@pytest.mark.parametrize("as_form", [False, True], ids=["basic", "client_secret_post"])
async def test_token_carries_the_agency_and_every_scope_of_the_app(client, db, as_form):
    agency, app = await fresh_app(client, db, ["brands:read", "clients:read", "time:read"])
    response = await request_token(client, app.client_id, app.client_secret, as_form=as_form)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["scope"].split(" ") == ["brands:read", "clients:read", "time:read"]
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}

    claims = jwt_payload(body["access_token"])
    assert claims["tid"] == str(agency.tenant_id)
    assert set(claims["scope"].split(" ")) == {"brands:read", "clients:read", "time:read"}
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    token_text = json.dumps(claims)
    assert app.client_secret not in token_text and app.client_secret not in body["access_token"]
    assert hash_secret(app.client_secret) not in token_text
    assert not any("secret" in key for key in claims)

    # The token works, and the app now shows when it last got a token.
    brands = await client.get("/v1/brands", headers=bearer(body["access_token"]))
    assert brands.status_code == 200, brands.text
    assert (await get_app(client, agency, app.id)).json()["last_token_at"] is not None


async def test_a_requested_subset_narrows_the_token(client, db):
    _, app = await fresh_app(client, db, ["brands:read", "clients:read"])
    response = await request_token(client, app.client_id, app.client_secret, scope="brands:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "brands:read"
    assert jwt_payload(body["access_token"])["scope"] == "brands:read"
    headers = bearer(body["access_token"])
    assert (await client.get("/v1/brands", headers=headers)).status_code == 200
    problem = assert_problem(
        await client.get("/v1/clients", headers=headers), 403, "insufficient-scope"
    )
    assert problem["required_scope"] == "clients:read"


# ---------------------------------------------------------------------------------------------
# The token endpoint: failures


async def test_wrong_secret_unknown_and_malformed_client_ids_are_invalid_client(client, db):
    agency, app = await fresh_app(client, db)
    unknown_app = f"pa_{agency.tenant_id.hex}_{uuid.uuid4().hex}"
    unknown_tenant = f"pa_{uuid.uuid4().hex}_{uuid.UUID(app.id).hex}"
    cases = [
        ("wrong secret", app.client_id, "pas_" + "x" * 40),
        ("other app's secret shape", app.client_id, app.client_secret + "x"),
        ("empty secret", app.client_id, ""),
        ("unknown app", unknown_app, app.client_secret),
        ("unknown tenant", unknown_tenant, app.client_secret),
        ("malformed id", "pa_nothex_reallynot", app.client_secret),
        ("not ours at all", "some-client", app.client_secret),
    ]
    descriptions = set()
    for name, client_id, secret in cases:
        for as_form in (False, True):
            response = await request_token(client, client_id, secret, as_form=as_form)
            body = assert_invalid_client(response, as_form=as_form)
            descriptions.add(body["error_description"])
            assert "access_token" not in body, name
    # One answer for all: nothing tells an attacker which part was wrong.
    assert len(descriptions) == 1
    assert (await get_app(client, agency, app.id)).json()["last_token_at"] is None


async def test_garbage_basic_headers_are_invalid_client(client, db, app):
    _, partner = await fresh_app(client, db)
    form = {"grant_type": "client_credentials"}
    # A crash must show as the 500 a partner would get, not as an exception in the test.
    transport = httpx.ASGITransport(app=app.state.asgi, raise_app_exceptions=False)
    answers: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as plain:
        for header in (
            "Basic !!!not-base64!!!",
            "Basic " + base64.b64encode(b"no-colon-here").decode(),
            "Basic " + base64.b64encode(f"{partner.client_id}".encode()).decode(),
            "Basic",
            "Bearer " + partner.client_secret,
            "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),  # not UTF-8
            "Basic " + base64.b64encode(b"pa_\xff:" + partner.client_secret.encode()).decode(),
        ):
            response = await plain.post(TOKEN, data=form, headers={"Authorization": header})
            answers[header] = response
    assert {h: r.status_code for h, r in answers.items()} == dict.fromkeys(answers, 401)
    for response in answers.values():
        assert_oauth_error(response, 401, "invalid_client")


async def test_revoking_an_app_refuses_tokens_and_ends_those_already_issued(client, db):
    agency, app = await fresh_app(client, db)
    headers = await partner_headers(client, app)
    assert (await client.get("/v1/brands", headers=headers)).status_code == 200
    # A budget is read on the driver transaction (api.deps.get_reader): admitted, then refused.
    budget = f"/v1/clients/{uuid.uuid4()}/budget?month=2026-11"
    assert_problem(await client.get(budget, headers=headers), 404, "client-not-found")

    response = await client.delete(f"/v1/partner-apps/{app.id}", headers=agency.owner.headers)
    assert response.status_code == 204, response.text

    for path in ("/v1/brands", budget):
        assert_problem(await client.get(path, headers=headers), 401, "invalid-token")
    for as_form in (False, True):
        response = await request_token(client, app.client_id, app.client_secret, as_form=as_form)
        assert_invalid_client(response, as_form=as_form)
    read = (await get_app(client, agency, app.id)).json()
    assert read["status"] == "revoked" and read["revoked_at"] is not None
    assert read["version"] == 2

    # A revoked app cannot change nor get a new secret; revoking again changes nothing.
    for response in (
        await client.patch(
            f"/v1/partner-apps/{app.id}", json={"name": "again"}, headers=agency.owner.headers
        ),
        await client.post(
            f"/v1/partner-apps/{app.id}/rotate-secret", json={}, headers=agency.owner.headers
        ),
    ):
        assert_problem(response, 409, "partner-app-revoked")
    again = await client.delete(f"/v1/partner-apps/{app.id}", headers=agency.owner.headers)
    assert again.status_code == 204, again.text
    assert (await get_app(client, agency, app.id)).json() == read


async def test_scope_errors(client, db):
    _, app = await fresh_app(client, db, ["brands:read"])
    cases = [
        ("nope:x", "invalid_scope"),
        ("brands:read nope:x", "invalid_scope"),
        ("clients:read", "invalid_scope"),  # a real scope the app was not granted
        ("brands:read brands:write", "invalid_scope"),
    ]
    for scope, error in cases:
        for as_form in (False, True):
            response = await request_token(
                client, app.client_id, app.client_secret, scope=scope, as_form=as_form
            )
            assert_oauth_error(response, 400, error)
    response = await request_token(client, app.client_id, app.client_secret, scope="clients:read")
    assert "clients:read" in response.json()["error_description"]


def _form(**fields: str) -> str:
    return "&".join(f"{k}={v}" for k, v in fields.items())


async def test_malformed_token_requests(client, db):
    _, app = await fresh_app(client, db)
    auth = basic(app.client_id, app.client_secret)
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (
            "password grant",
            {"data": {"grant_type": "password", "username": "u", "password": "p"}},
            400,
            "unsupported_grant_type",
        ),
        (
            "authorization code grant",
            {"data": {"grant_type": "authorization_code", "code": "abc"}},
            400,
            "unsupported_grant_type",
        ),
        ("unknown grant", {"data": {"grant_type": "magic"}}, 400, "unsupported_grant_type"),
        ("JSON body", {"json": {"grant_type": "client_credentials"}}, 400, "invalid_request"),
        (
            "no content type",
            {"content": b"grant_type=client_credentials"},
            400,
            "invalid_request",
        ),
        (
            "huge form",
            {
                "content": ("grant_type=client_credentials&pad=" + "x" * 10_000).encode(),
                "headers": form_type,
            },
            400,
            "invalid_request",
        ),
        (
            "not UTF-8",
            {"content": b"grant_type=client_credentials&scope=\xff\xfe", "headers": form_type},
            400,
            "invalid_request",
        ),
    ]
    for name, request, status, error in cases:
        headers = {**auth, **request.pop("headers", {})}
        response = await client.post(TOKEN, headers=headers, **request)
        body = assert_oauth_error(response, status, error)
        assert "access_token" not in body, name


async def test_a_token_request_without_grant_type_is_invalid(client, db):
    """RFC 6749 §5.2: a request missing a required parameter is `invalid_request`; §3.1: a
    parameter sent without a value counts as omitted."""
    _, app = await fresh_app(client, db)
    answers = {}
    for name, form in [
        ("empty form", {}),
        ("scope only", {"scope": "brands:read"}),
        ("empty grant_type", {"grant_type": ""}),
    ]:
        answers[name] = await client.post(
            TOKEN, data=form, headers=basic(app.client_id, app.client_secret)
        )
    seen = {name: (r.status_code, r.json().get("error")) for name, r in answers.items()}
    assert seen == dict.fromkeys(answers, (400, "invalid_request"))
    for response in answers.values():
        assert_oauth_error(response, 400, "invalid_request")


async def test_duplicated_parameters_are_refused(client, db):
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once."""
    _, app = await fresh_app(client, db, ["brands:read", "clients:read"])
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    auth = basic(app.client_id, app.client_secret)
    answers = {}
    for name, raw, headers in [
        (
            "grant_type twice",
            "grant_type=client_credentials&grant_type=client_credentials",
            auth,
        ),
        ("grant_type disagrees", "grant_type=client_credentials&grant_type=password", auth),
        (
            "scope twice",
            "grant_type=client_credentials&scope=brands:read&scope=clients:read",
            auth,
        ),
        (
            "client_secret twice",
            f"grant_type=client_credentials&client_id={app.client_id}"
            f"&client_secret=wrong&client_secret={app.client_secret}",
            {},
        ),
        (
            "client_id twice",
            f"grant_type=client_credentials&client_id={app.client_id}"
            f"&client_id=pa_other&client_secret={app.client_secret}",
            {},
        ),
    ]:
        answers[name] = await client.post(
            TOKEN, content=raw.encode(), headers={**headers, **form_type}
        )
    seen = {name: (r.status_code, r.json().get("error")) for name, r in answers.items()}
    assert seen == dict.fromkeys(answers, (400, "invalid_request"))
    for response in answers.values():
        assert_oauth_error(response, 400, "invalid_request")


# ---------------------------------------------------------------------------------------------
# Rotation


async def test_rotation_with_an_overlap_keeps_the_old_secret_for_that_long(client, db):
    agency, app = await fresh_app(client, db)
    response = await client.post(
        f"/v1/partner-apps/{app.id}/rotate-secret",
        json={"overlap_seconds": 2},
        headers={**agency.owner.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert "no-store" in response.headers["cache-control"]
    rotated = response.json()
    new_secret = rotated["client_secret"]
    assert new_secret.startswith("pas_") and new_secret != app.client_secret
    assert rotated["client_id"] == app.client_id
    assert rotated["previous_secret_expires_at"] is not None
    read = (await get_app(client, agency, app.id)).text
    assert new_secret not in read and hash_secret(new_secret) not in read

    for secret in (app.client_secret, new_secret):
        response = await request_token(client, app.client_id, secret)
        assert response.status_code == 200, response.text

    await asyncio.sleep(2.1)
    assert_oauth_error(
        await request_token(client, app.client_id, app.client_secret), 401, "invalid_client"
    )
    assert_invalid_client(
        await request_token(client, app.client_id, app.client_secret, as_form=True), as_form=True
    )
    assert (await request_token(client, app.client_id, new_secret)).status_code == 200


async def test_rotation_without_overlap_ends_the_old_secret_at_once(client, db):
    agency, app = await fresh_app(client, db)
    response = await client.post(
        f"/v1/partner-apps/{app.id}/rotate-secret",
        json={"overlap_seconds": 0},
        headers=agency.owner.headers,
    )
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["previous_secret_expires_at"] is None
    assert_oauth_error(
        await request_token(client, app.client_id, app.client_secret), 401, "invalid_client"
    )
    assert (await request_token(client, app.client_id, rotated["client_secret"])).status_code == 200


async def test_rotation_by_default_keeps_the_old_secret_for_a_day(client, db, settings):
    agency, app = await fresh_app(client, db)
    response = await client.post(
        f"/v1/partner-apps/{app.id}/rotate-secret", headers=agency.owner.headers
    )
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert settings.partner_secret_overlap_seconds == 86400
    until = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    created = datetime.fromisoformat(rotated["created_at"])
    assert 86000 < (until - created).total_seconds() < 86400 + 600
    for secret in (app.client_secret, rotated["client_secret"]):
        assert (await request_token(client, app.client_id, secret)).status_code == 200

    # A second rotation replaces the overlap: the very first secret is then gone.
    again = await client.post(
        f"/v1/partner-apps/{app.id}/rotate-secret", json={}, headers=agency.owner.headers
    )
    assert again.status_code == 200, again.text
    assert_oauth_error(
        await request_token(client, app.client_id, app.client_secret), 401, "invalid_client"
    )
    for secret in (rotated["client_secret"], again.json()["client_secret"]):
        assert (await request_token(client, app.client_id, secret)).status_code == 200


async def test_rotation_and_update_with_a_stale_etag_are_refused(client, db):
    agency, app = await fresh_app(client, db)
    renamed = await client.patch(
        f"/v1/partner-apps/{app.id}",
        json={"name": "Renamed"},
        headers={**agency.owner.headers, "If-Match": '"1"'},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.headers["etag"] == '"2"'
    stale = {**agency.owner.headers, "If-Match": '"1"'}
    for response in (
        await client.post(
            f"/v1/partner-apps/{app.id}/rotate-secret", json={"overlap_seconds": 0}, headers=stale
        ),
        await client.patch(f"/v1/partner-apps/{app.id}", json={"name": "Other"}, headers=stale),
        await client.delete(f"/v1/partner-apps/{app.id}", headers=stale),
    ):
        assert_problem(response, 412, "precondition-failed")
    read = (await get_app(client, agency, app.id)).json()
    assert (read["name"], read["version"], read["status"]) == ("Renamed", 2, "active")
    assert (await request_token(client, app.client_id, app.client_secret)).status_code == 200


# ---------------------------------------------------------------------------------------------
# Scope changes and plans


async def test_narrowing_scopes_takes_effect_on_tokens_already_issued(client, db):
    agency, app = await fresh_app(client, db, ["brands:read", "clients:read"])
    headers = await partner_headers(client, app)
    assert (await client.get("/v1/clients", headers=headers)).status_code == 200

    response = await client.patch(
        f"/v1/partner-apps/{app.id}",
        json={"scopes": ["brands:read"]},
        headers=agency.owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["scopes"] == ["brands:read"]
    assert response.headers["etag"] == '"2"'

    problem = assert_problem(
        await client.get("/v1/clients", headers=headers), 403, "insufficient-scope"
    )
    assert problem["required_scope"] == "clients:read"
    assert (await client.get("/v1/brands", headers=headers)).status_code == 200
    # New tokens can no longer ask for it either.
    assert_oauth_error(
        await request_token(client, app.client_id, app.client_secret, scope="clients:read"),
        400,
        "invalid_scope",
    )
    fresh = await request_token(client, app.client_id, app.client_secret)
    assert fresh.json()["scope"] == "brands:read"

    # Widening again does not widen a token issued with fewer scopes.
    response = await client.patch(
        f"/v1/partner-apps/{app.id}",
        json={"scopes": ["brands:read", "clients:read"]},
        headers=agency.owner.headers,
    )
    assert response.status_code == 200, response.text
    narrow = bearer(fresh.json()["access_token"])
    assert_problem(await client.get("/v1/clients", headers=narrow), 403, "insufficient-scope")


async def test_an_agency_off_the_public_api_plan_gets_no_tokens(client, db):
    agency, app = await fresh_app(client, db)
    headers = await partner_headers(client, app)
    await set_plan(db, agency, "growth")

    body = assert_oauth_error(
        await request_token(client, app.client_id, app.client_secret), 400, "unauthorized_client"
    )
    assert "plan" in body["error_description"]
    problem = assert_problem(
        await client.get("/v1/brands", headers=headers), 403, "feature-not-in-plan"
    )
    assert problem["feature"] == "public_api"

    await enable_public_api(db, agency)
    assert (await client.get("/v1/brands", headers=headers)).status_code == 200


async def test_a_new_agency_starts_without_the_public_api(client):
    agency = await new_agency(client)
    app = await create_partner_app(client, agency, ["brands:read"])
    assert_oauth_error(
        await request_token(client, app.client_id, app.client_secret), 400, "unauthorized_client"
    )


async def test_partner_tokens_cannot_manage_partner_apps(client, db):
    agency, app = await fresh_app(client, db, sorted(ALL_SCOPES))
    headers = await partner_headers(client, app)
    for response in (
        await client.get("/v1/partner-apps", headers=headers),
        await client.post(
            "/v1/partner-apps", json={"name": "child", "scopes": ["brands:read"]}, headers=headers
        ),
        await client.post(f"/v1/partner-apps/{app.id}/rotate-secret", json={}, headers=headers),
        await client.delete(f"/v1/partner-apps/{app.id}", headers=headers),
    ):
        assert_problem(response, 403, "not-for-partner-apps")
    assert len(await list_apps(client, agency.owner.headers)) == 1
    assert (await get_app(client, agency, app.id)).json()["status"] == "active"


# ---------------------------------------------------------------------------------------------
# The token endpoint's own rate limit


async def test_token_endpoint_slows_down_guessing_secrets(client, db, settings):
    assert settings.partner_token_rate == "30/60"
    agency, app = await fresh_app(client, db)
    wrong = "pas_" + "y" * 40
    for _ in range(30):
        assert_oauth_error(await request_token(client, app.client_id, wrong), 401, "invalid_client")
    response = await request_token(client, app.client_id, wrong)
    assert_oauth_error(response, 429, "slow_down")
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= 60
    # Even the right secret waits now, by Basic or in the form.
    for as_form in (False, True):
        response = await request_token(client, app.client_id, app.client_secret, as_form=as_form)
        assert_oauth_error(response, 429, "slow_down")
        assert int(response.headers["retry-after"]) > 0

    # The limit is per client id: another app of the same agency is not slowed.
    other = await create_partner_app(client, agency, ["brands:read"], name=unique("other"))
    assert (await request_token(client, other.client_id, other.client_secret)).status_code == 200


# ---------------------------------------------------------------------------------------------
# Audit


async def test_audit_names_the_owner_for_app_changes_and_the_app_for_its_writes(client, db):
    agency, app = await fresh_app(client, db, ["brands:write", "brands:read"])
    owner = agency.owner
    rotated = await client.post(
        f"/v1/partner-apps/{app.id}/rotate-secret",
        json={"overlap_seconds": 60},
        headers=owner.headers,
    )
    assert rotated.status_code == 200, rotated.text
    headers = await partner_headers(client, app)
    customer = await make_client(client, owner.headers)
    brand = await client.post(
        "/v1/brands",
        json={"client_id": customer["id"], "name": "Partner brand", "slug": unique("brand")},
        headers=headers,
    )
    assert brand.status_code == 201, brand.text
    revoked = await client.delete(f"/v1/partner-apps/{app.id}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text

    response = await client.get(
        "/v1/audit-events",
        params={"subject_type": "partner_app", "subject_id": app.id, "limit": 50},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    rows = response.json()["items"]
    assert [r["action"] for r in rows] == [
        "partner_app.revoked",
        "partner_app.secret_rotated",
        "partner_app.created",
    ]
    assert all(r["actor_type"] == "user" for r in rows), rows
    assert all(r["actor_id"] == str(owner.user_id) for r in rows), rows
    created = rows[-1]["changes"]
    assert created == {"name": app.body["name"], "scopes": ["brands:read", "brands:write"]}
    assert rows[1]["changes"] == {"overlap_seconds": 60}
    assert app.client_secret not in response.text
    assert hash_secret(app.client_secret) not in response.text
    assert rotated.json()["client_secret"] not in response.text

    response = await client.get(
        "/v1/audit-events",
        params={"subject_type": "brand", "subject_id": brand.json()["id"]},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    brand_rows = response.json()["items"]
    assert [r["action"] for r in brand_rows] == ["brand.created"]
    assert brand_rows[0]["actor_type"] == "partner"
    assert brand_rows[0]["actor_id"] == app.id

    by_app = await client.get(
        "/v1/audit-events", params={"actor_id": app.id}, headers=owner.headers
    )
    assert by_app.status_code == 200, by_app.text
    assert [(r["action"], r["subject_id"]) for r in by_app.json()["items"]] == [
        ("brand.created", brand.json()["id"])
    ]
