"""Partner tokens at the gate: the scope walk over every operation of the OpenAPI document,
rate limits under a burst, isolation between agencies, and a suspended agency's standing.

The walk is driven by the application's own OpenAPI document and `OPERATION_SCOPES`: a new
operation is walked the day it is added. What the walk cannot guess (a valid body, a required
query parameter) lives in the small registries below, and an operation missing from them
fails with a message that says where to register it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from infra.clock import utcnow
from infra.errors import PROBLEM_BASE
from partners.scopes import ALL_SCOPES, OPERATION_SCOPES
from tenants.models import Tenant
from tests.support import walk
from tests.support.factories import (
    Agency,
    make_brand,
    make_client,
    make_post,
    new_agency,
    unique,
)
from tests.support.factories import walk as walk_list
from tests.support.inbox import seed_item as seed_inbox_item
from tests.support.partners import (
    PartnerApp,
    create_partner_app,
    enable_public_api,
    partner_for,
    partner_headers,
)
from tests.support.problems import assert_problem

# ---------------------------------------------------------------------------------------------
# The operations, as the OpenAPI document describes them (collected once, from an application
# built only to read its route table).

_APP = walk.route_table_app()
_DOC = _APP.openapi()
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    secured: bool
    takes_body: bool
    path_params: tuple[tuple[str, bool], ...]  # (name, is a uuid)
    required_query: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} ({self.operation_id})"


def _ops(doc: dict[str, Any]) -> list[Op]:
    found = []
    for path, item in doc["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = op.get("parameters", [])
            found.append(
                Op(
                    method=method.upper(),
                    path=path,
                    operation_id=op["operationId"],
                    secured=bool(op.get("security")),
                    takes_body="requestBody" in op,
                    path_params=tuple(
                        (p["name"], p.get("schema", {}).get("format") == "uuid")
                        for p in params
                        if p["in"] == "path"
                    ),
                    required_query=tuple(
                        p["name"] for p in params if p["in"] == "query" and p.get("required")
                    ),
                )
            )
    return found


OPS = _ops(_DOC)
# Deletions last, so that the operations before them reach the seeded objects.
SCOPED_OPS = sorted(
    (op for op in OPS if op.operation_id in OPERATION_SCOPES), key=lambda op: op.method == "DELETE"
)
CLOSED_OPS = [op for op in OPS if op.secured and op.operation_id not in OPERATION_SCOPES]

# The /v1 operations anyone may call without an access token.
PUBLIC_V1 = {
    ("POST", "/v1/auth/signup"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/invitations/{token}/accept"),
    ("GET", "/v1/approval-links/{token}"),
    ("POST", "/v1/approval-links/{token}"),
    ("POST", "/v1/billing/stripe/webhook"),
    ("GET", "/v1/oauth/callback/{platform}"),
    ("GET", "/v1/platform-webhooks/{platform}"),
    ("POST", "/v1/platform-webhooks/{platform}"),
    ("POST", "/v1/oauth/token"),
    # An export's download: the signed, short-lived link in its query is the credential.
    ("GET", "/v1/export-files"),
}

GATE_PROBLEMS = {
    PROBLEM_BASE + slug
    for slug in ("insufficient-scope", "not-for-partner-apps", "feature-not-in-plan")
}

# Required query parameters, by name.
QUERY_SAMPLES = {
    "month": "2026-11",
    "from": "2026-11-01T00:00:00Z",
    "to": "2026-12-01T00:00:00Z",
    "platform": "sandbox",
}

# Path parameters that are values, not objects.
VALUE_SAMPLES = {"iso_week": "2026-W45", "base": "1", "head": "1", "month": "2026-10"}


def _bodies(ids: dict[str, str]) -> dict[str, Any]:
    """operationId -> a minimal valid body, for the scoped operations that take one."""
    return {
        "create_client": {"name": unique("Client")},
        "update_client": {"name": unique("Renamed")},
        "create_brand": {
            "client_id": ids["client_id"],
            "name": unique("Brand"),
            "slug": unique("brand"),
        },
        "update_brand": {"name": unique("Renamed")},
        "create_time_entry": {
            "brand_id": ids["brand_id"],
            "date": "2026-11-03",
            "minutes": 30,
            "activity": "moderation",
        },
        "update_time_entry": {"note": "Corrected by a partner"},
        "create_content": {"title": unique("Post")},
        "update_content": {"title": unique("Renamed")},
        "submit_content": {},
        "schedule_content": {"planned_at": "2099-01-01T09:00:00+00:00"},
        "decide": {"revision_id": str(uuid.uuid4()), "decision": "approve"},
        "add_comment": {"body": "Nice", "visibility": "client"},
        "create_webhook_endpoint": {
            "url": "http://127.0.0.1:9/hooks",
            "event_types": ["content.submitted"],
        },
        "update_webhook_endpoint": {"description": "Changed by a partner"},
        "retry_publication": {"confirm_not_published": False},
        "reply_to_item": {"text": "Merci!"},
        "assign_item": {"assignee_id": None},
        "set_item_status": {"status": "done"},
        "hide_item": {"hidden": True},
        "label_item": {"add": ["vip"]},
        "create_saved_reply": {"name": unique("Merci"), "language": "fr", "body": "Merci!"},
        "update_saved_reply": {"name": unique("Renamed")},
        "render_saved_reply": {"item_id": ids.get("item_id") or str(uuid.uuid4())},
        "create_inbox_rule": {
            "brand_id": ids["brand_id"],
            "name": unique("Rule"),
            "condition": {},
            "action": {"labels": ["partner"]},
        },
        "update_inbox_rule": {"enabled": False},
        "put_response_policy": {"first_response_minutes": 60, "next_response_minutes": 240},
    }


_BODY_NAMES = set(_bodies({"client_id": "x", "brand_id": "x"}))


def op_id(op: Op) -> str:
    return op.id


# ---------------------------------------------------------------------------------------------
# Seeding: one agency's objects, made by its owner through the API.


async def _owner_post(client: httpx.AsyncClient, agency: Agency, path: str, body: Any) -> dict:
    response = await client.post(path, json=body, headers=agency.owner.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _social_account(client: httpx.AsyncClient, agency: Agency, brand: str) -> str:
    """A sandbox account, connected through the real OAuth routes."""
    started = await client.post(
        f"/v1/brands/{brand}/social-accounts/connect",
        params={"platform": "sandbox"},
        headers=agency.owner.headers,
    )
    assert started.status_code == 200, started.text
    url = httpx.URL(started.json()["authorization_url"])
    response = await client.get(url.path, params=dict(url.params))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def seed(client: httpx.AsyncClient, agency: Agency, db: Any) -> dict[str, str]:
    """A client with a retainer, a brand with a workflow and a draft, an entry of the owner's,
    a draft invoice and a social account; keyed by the path parameters that name them."""
    owner = agency.owner.headers
    made = await make_client(client, owner)
    retainer = await _owner_post(
        client,
        agency,
        "/v1/retainers",
        {
            "client_id": made["id"],
            "start_month": "2026-01",
            "monthly_minutes": 6000,
            "fee_minor": 100000,
            "overage": {"policy": "hard_cap"},
        },
    )
    brand = await make_brand(client, owner, made["id"])
    template = await _owner_post(
        client,
        agency,
        "/v1/workflow-templates",
        {"name": unique("Workflow"), "steps": [], "brand_ids": [brand["id"]]},
    )
    post = await make_post(client, owner, brand["id"])
    await _owner_post(
        client,
        agency,
        "/v1/assignments",
        {
            "brand_id": brand["id"],
            "user_id": str(agency.owner.user_id),
            "role": "lead",
            "start_date": "2026-01-01",
        },
    )
    entry = await _owner_post(
        client,
        agency,
        "/v1/time-entries",
        {"brand_id": brand["id"], "date": "2026-11-02", "minutes": 45, "activity": "reporting"},
    )
    invoice = await _owner_post(
        client, agency, "/v1/invoices", {"client_id": made["id"], "month": "2026-01"}
    )
    account = await _social_account(client, agency, brand["id"])
    item = await seed_inbox_item(db, agency.tenant_id, uuid.UUID(account))
    reply = await client.post(
        f"/v1/inbox/{item.id}/reply", json={"text": "Bonjour!"}, headers=owner
    )
    assert reply.status_code == 202, reply.text
    saved_reply = await _owner_post(
        client, agency, "/v1/saved-replies", {"name": "Merci", "language": "fr", "body": "Merci!"}
    )
    rule = await _owner_post(
        client,
        agency,
        "/v1/inbox-rules",
        {"brand_id": brand["id"], "name": "Rule", "condition": {}, "action": {}},
    )
    return {
        "client_id": str(made["id"]),
        "retainer_id": str(retainer["id"]),
        "brand_id": str(brand["id"]),
        "template_id": str(template["id"]),
        "content_id": str(post["id"]),
        "entry_id": str(entry["id"]),
        "user_id": str(agency.owner.user_id),
        "invoice_id": str(invoice["id"]),
        "account_id": account,
        "item_id": str(item.id),
        "action_id": str(reply.json()["action"]["id"]),
        "saved_reply_id": str(saved_reply["id"]),
        "rule_id": str(rule["id"]),
    }


@dataclass
class Seeded:
    agency: Agency
    ids: dict[str, str]
    without_app: PartnerApp
    only_app: PartnerApp
    _tokens: dict[tuple[str, frozenset[str]], dict[str, str]] = field(default_factory=dict)

    async def headers(self, client: httpx.AsyncClient, app: PartnerApp, scopes: set[str]):
        """A token of `app` carrying exactly `scopes` (cached: the token endpoint is rate
        limited per client id)."""
        key = (app.id, frozenset(scopes))
        if key not in self._tokens:
            self._tokens[key] = await partner_headers(client, app, " ".join(sorted(scopes)))
        return self._tokens[key]


@pytest.fixture(scope="module")
async def seeded(client, db) -> Seeded:
    agency = await new_agency(client)
    await enable_public_api(db, agency)
    ids = await seed(client, agency, db)
    # Two apps with every scope, so that neither exceeds the token endpoint's limit: one
    # mints the tokens lacking a scope, the other the tokens holding only one.
    without_app = await create_partner_app(client, agency, sorted(ALL_SCOPES), "Without one")
    only_app = await create_partner_app(client, agency, sorted(ALL_SCOPES), "Only one")
    made = Seeded(agency, ids, without_app, only_app)
    # A partner app reaches only the webhook endpoints it made: the one walked is only_app's.
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "event_types": ["invoice.finalized"]},
        headers=await made.headers(client, only_app, {"webhooks:manage"}),
    )
    assert endpoint.status_code == 201, endpoint.text
    ids["endpoint_id"] = str(endpoint.json()["id"])
    return made


def fill(op: Op, ids: dict[str, str]) -> str:
    path = op.path
    for name, is_uuid in op.path_params:
        if name in ids:
            value = ids[name]
        elif name in VALUE_SAMPLES:
            value = VALUE_SAMPLES[name]
        elif is_uuid:
            value = str(uuid.uuid4())  # nothing cheap to make: an honest 404
        else:
            pytest.fail(f"add a sample for the path parameter {name!r} of {op.id}")
        path = path.replace("{" + name + "}", value)
    return path


def query(op: Op) -> dict[str, str]:
    missing = [q for q in op.required_query if q not in QUERY_SAMPLES]
    if missing:
        pytest.fail(f"add QUERY_SAMPLES for {missing} (required by {op.id})")
    return {q: QUERY_SAMPLES[q] for q in op.required_query}


def body(op: Op, ids: dict[str, str]) -> Any:
    if not op.takes_body:
        return None
    bodies = _bodies(ids)
    return bodies.get(op.operation_id, {})


async def send(
    client: httpx.AsyncClient, op: Op, ids: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    payload = body(op, ids)
    kwargs: dict[str, Any] = {"headers": headers, "params": query(op)}
    if payload is not None:
        kwargs["json"] = payload
    return await client.request(op.method, fill(op, ids), **kwargs)


# ---------------------------------------------------------------------------------------------
# The table and the document agree


def test_the_scope_table_names_only_existing_operations():
    by_id = {op.operation_id: op for op in OPS}
    assert len(by_id) == len(OPS), "operationIds must be unique"
    assert set(OPERATION_SCOPES) - set(by_id) == set()
    # Each of them is an operation that takes an access token.
    assert [name for name in OPERATION_SCOPES if not by_id[name].secured] == []
    # Each scope is used, and each is a known scope.
    assert {s.value for s in OPERATION_SCOPES.values()} == ALL_SCOPES


def test_operation_ids_are_the_route_names_the_gate_reads():
    """The gate looks the route's name up in the table; the document's operationId must be
    that same name, on the same method and path."""
    served = {(op.method, op.path): op.info.name for op in walk.operations(_APP)}
    documented = {(op.method, op.path): op.operation_id for op in OPS}
    assert documented.items() <= served.items()


def test_the_operations_without_a_token_are_the_public_ones():
    unsecured = {(op.method, op.path) for op in OPS if not op.secured and op.path.startswith("/v1")}
    assert unsecured == PUBLIC_V1


def test_every_body_in_the_registry_belongs_to_a_scoped_operation():
    with_body = {op.operation_id for op in SCOPED_OPS if op.takes_body}
    assert with_body == _BODY_NAMES


# ---------------------------------------------------------------------------------------------
# The scope walk


@pytest.mark.parametrize("op", SCOPED_OPS, ids=op_id)
async def test_a_scoped_operation_needs_its_scope_and_only_it(op, client, seeded):
    needed = OPERATION_SCOPES[op.operation_id].value

    # Every scope but the one it needs: refused, naming the scope.
    lacking = await seeded.headers(client, seeded.without_app, set(ALL_SCOPES) - {needed})
    response = await send(client, op, seeded.ids, lacking)
    problem = assert_problem(response, 403, "insufficient-scope")
    assert problem["required_scope"] == needed
    assert needed in problem["detail"]
    assert f'scope="{needed}"' in response.headers["www-authenticate"]

    # Only the scope it needs: the gate lets it through, whatever the handler then answers.
    only = await seeded.headers(client, seeded.only_app, {needed})
    response = await send(client, op, seeded.ids, only)
    assert response.status_code != 401, response.text
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["type"] not in GATE_PROBLEMS, response.text
    assert response.headers["ratelimit-limit"] == "600", response.headers


@pytest.mark.parametrize("op", CLOSED_OPS, ids=op_id)
async def test_an_operation_outside_the_table_is_closed_to_partner_tokens(op, client, seeded):
    everything = await seeded.headers(client, seeded.without_app, set(ALL_SCOPES))
    response = await send(client, op, seeded.ids, everything)
    problem = assert_problem(response, 403, "not-for-partner-apps")
    assert op.operation_id in problem["detail"]


# ---------------------------------------------------------------------------------------------
# Rate limits under a burst


@pytest.fixture(scope="module")
async def limited(settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with 5 partner requests per app and 8 per agency a minute."""
    from api.app import create_app

    application = create_app(
        settings.model_copy(
            update={"partner_rate_per_app": "5/60", "partner_rate_per_tenant": "8/60"}
        )
    )
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def assert_rate_limited(response: httpx.Response) -> dict:
    problem = assert_problem(response, 429, "rate-limited")
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-reset"]) >= 1
    return problem


async def test_a_burst_is_cut_at_the_apps_limit_then_at_the_agencys(client, db, limited):
    agency = await new_agency(client)
    _, first_headers = await partner_for(client, db, agency, ["brands:read"])

    for remaining in (4, 3, 2, 1, 0):
        response = await limited.get("/v1/brands", headers=first_headers)
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == "5"
        assert response.headers["ratelimit-remaining"] == str(remaining)
        assert int(response.headers["ratelimit-reset"]) >= 1
    problem = assert_rate_limited(await limited.get("/v1/brands", headers=first_headers))
    assert "partner app" in problem["detail"]

    # Another app of the same agency: three more, then the agency's 8 are spent.
    _, second_headers = await partner_for(client, db, agency, ["brands:read"])
    for remaining in (2, 1, 0):
        response = await limited.get("/v1/brands", headers=second_headers)
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == "8"
        assert response.headers["ratelimit-remaining"] == str(remaining)
    problem = assert_rate_limited(await limited.get("/v1/brands", headers=second_headers))
    assert "agency" in problem["detail"]
    assert "8 per 60 seconds" in problem["detail"]

    # The first app is still refused; an app of another agency is not affected.
    assert_rate_limited(await limited.get("/v1/brands", headers=first_headers))
    _, stranger = await partner_for(client, db, await new_agency(client), ["brands:read"])
    response = await limited.get("/v1/brands", headers=stranger)
    assert response.status_code == 200, response.text
    assert (response.headers["ratelimit-limit"], response.headers["ratelimit-remaining"]) == (
        "5",
        "4",
    )
    # Staff of the limited agency are not counted against partners.
    response = await limited.get("/v1/brands", headers=agency.owner.headers)
    assert response.status_code == 200, response.text
    assert "ratelimit-limit" not in response.headers


async def test_a_concurrent_burst_lets_exactly_the_limit_through(client, db, limited):
    _, headers = await partner_for(client, db, await new_agency(client), ["brands:read"])
    responses = await asyncio.gather(
        *(limited.get("/v1/brands", headers=headers) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 15, statuses
    for response in responses:
        if response.status_code == 429:
            assert_rate_limited(response)
    assert sorted(r.headers["ratelimit-remaining"] for r in responses if r.status_code == 200) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]


# ---------------------------------------------------------------------------------------------
# Isolation between agencies


def _comparable(problem: dict) -> dict:
    return {k: v for k, v in problem.items() if k not in ("instance", "request_id")}


async def test_a_partner_sees_and_changes_nothing_of_another_agency(client, db):
    a, b = await new_agency(client), await new_agency(client)
    ids_a, ids_b = await seed(client, a, db), await seed(client, b, db)
    _, partner = await partner_for(client, db, a, sorted(ALL_SCOPES))

    reads = [
        "/v1/clients/{client_id}",
        "/v1/brands/{brand_id}",
        "/v1/content/{content_id}",
        "/v1/invoices/{invoice_id}",
        "/v1/social-accounts/{account_id}",
        "/v1/brands/{brand_id}/content",
        "/v1/brands/{brand_id}/social-accounts",
        "/v1/time-entries/{entry_id}",
        "/v1/retainers/{retainer_id}",
    ]
    for template in reads:
        own = await client.get(template.format(**ids_a), headers=partner)
        assert own.status_code == 200, (template, own.text)
        foreign = assert_problem(await client.get(template.format(**ids_b), headers=partner), 404)
        # The same answer as for an id that exists nowhere: B's objects are not disclosed.
        nowhere = {k: str(uuid.uuid4()) for k in ids_b}
        unknown = assert_problem(await client.get(template.format(**nowhere), headers=partner), 404)
        assert _comparable(foreign) == _comparable(unknown), template

    # Lists show A's objects, as A's owner sees them, and none of B's.
    for path in ("/v1/clients", "/v1/brands", "/v1/invoices", "/v1/time-entries"):
        seen = {item["id"] for item in await walk_list(client, path, partner)}
        owners = {item["id"] for item in await walk_list(client, path, a.owner.headers)}
        theirs = {item["id"] for item in await walk_list(client, path, b.owner.headers)}
        assert seen == owners, path
        assert seen and not seen & theirs, path

    # Writes to B's objects: 404, and B's data is exactly as it was.
    before = await walk.tenant_snapshot(db, b.tenant_id)
    readable = {
        p.format(**ids_b): (await client.get(p.format(**ids_b), headers=b.owner.headers)).json()
        for p in ("/v1/clients/{client_id}", "/v1/brands/{brand_id}", "/v1/content/{content_id}")
    }
    writes = [
        ("PATCH", "/v1/clients/{client_id}", {"name": "Taken over"}),
        ("PATCH", "/v1/brands/{brand_id}", {"name": "Taken over"}),
        ("POST", "/v1/brands/{brand_id}/content", {"title": "Planted"}),
        ("PATCH", "/v1/content/{content_id}", {"title": "Taken over"}),
        ("POST", "/v1/content/{content_id}/submit", {}),
        ("POST", "/v1/content/{content_id}/comments", {"body": "Hi", "visibility": "client"}),
        ("POST", "/v1/content/{content_id}/schedule", {"planned_at": "2099-01-01T09:00:00Z"}),
        ("PATCH", "/v1/time-entries/{entry_id}", {"note": "Taken over"}),
        ("DELETE", "/v1/time-entries/{entry_id}", None),
    ]
    for method, template, payload in writes:
        kwargs: dict[str, Any] = {"headers": partner}
        if payload is not None:
            kwargs["json"] = payload
        response = await client.request(method, template.format(**ids_b), **kwargs)
        assert_problem(response, 404)
    assert await walk.tenant_snapshot(db, b.tenant_id) == before, "B's data changed"
    for path, was in readable.items():
        now = await client.get(path, headers=b.owner.headers)
        assert now.status_code == 200 and now.json() == was, path


# ---------------------------------------------------------------------------------------------
# A suspended agency's partner: reads, never writes


async def suspend(db, settings, agency: Agency) -> None:
    since = utcnow() - timedelta(days=settings.billing_grace_days + 1)
    async with db.tenant_transaction(agency.tenant_id) as session:
        result = await session.execute(
            update(Tenant)
            .where(Tenant.id == agency.tenant_id)
            .values(status="past_due", past_due_since=since)
        )
        assert result.rowcount == 1


async def test_a_suspended_agencys_partner_reads_but_cannot_write(client, db, settings):
    agency = await new_agency(client)
    made = await make_client(client, agency.owner.headers)
    brand = await make_brand(client, agency.owner.headers, made["id"])
    _, partner = await partner_for(client, db, agency, ["brands:read", "brands:write"])
    await suspend(db, settings, agency)

    listed = await client.get("/v1/brands", headers=partner)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [brand["id"]]
    one = await client.get(f"/v1/brands/{brand['id']}", headers=partner)
    assert one.status_code == 200, one.text

    body = {"client_id": made["id"], "name": "New", "slug": unique("brand")}
    staff = assert_problem(
        await client.post("/v1/brands", json=body, headers=agency.owner.headers),
        402,
        "subscription-suspended",
    )
    refused = assert_problem(
        await client.post("/v1/brands", json=body, headers=partner), 402, "subscription-suspended"
    )
    assert _comparable(refused) == _comparable(staff)
    # Nothing was made by either.
    listed = await client.get("/v1/brands", headers=agency.owner.headers)
    assert [item["id"] for item in listed.json()["items"]] == [brand["id"]]
