"""The registries of the HTTP-contract walk: what the walk cannot guess.

How to make an object of each kind a path names (ID_PROVIDERS), the query a route needs
(REQUIRED_QUERY), a valid body for each route that takes JSON (VALID_BODIES), and the routes
whose bodies are not JSON or whose path parameters are not tenant objects. The contract walk
(tests/api/test_http_contract.py), the input rules and the list pages all seed from here; a new
route with a path parameter or a JSON body fails their tests until it is registered here.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from partners.events import EventType
from tests.support import walk
from tests.support.factories import PASSWORD, Agency, add_person, signup_body, unique
from tests.support.inbox import seed_item as seed_inbox_item
from tests.support.worker import run_worker

# ---------------------------------------------------------------------------------------------
# Registries: what the walk cannot guess. A new route with a path parameter or a JSON body
# fails its tests until it is registered here.


@dataclass
class Ctx:
    client: httpx.AsyncClient
    db: Any
    resources: Any


IdProvider = Callable[[Ctx, Agency, dict[str, str]], Awaitable[str]]


async def owner_post(ctx: Ctx, agency: Agency, path: str, body: dict[str, Any]) -> str:
    response = await ctx.client.post(path, json=body, headers=agency.owner.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def client_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A client with a retainer, so that its budget exists too, and a response policy, so that
    the policy's routes find one."""
    made = await owner_post(ctx, agency, "/v1/clients", {"name": unique("Client")})
    await owner_post(ctx, agency, "/v1/retainers", _retainer_body(made))
    response = await ctx.client.put(
        f"/v1/clients/{made}/response-policy",
        json=_response_policy_body(),
        headers=agency.owner.headers,
    )
    assert response.status_code == 201, response.text
    return made


def _response_policy_body() -> dict[str, Any]:
    return {"first_response_minutes": 60, "next_response_minutes": 240}


def _retainer_body(client: str) -> dict[str, Any]:
    return {
        "client_id": client,
        "start_month": "2026-01",
        "monthly_minutes": 6000,
        "fee_minor": 100000,
        "overage": {"policy": "hard_cap"},
    }


def _this_month() -> str:
    return datetime.now(ZoneInfo("America/Montreal")).strftime("%Y-%m")


async def retainer_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    made = await owner_post(ctx, agency, "/v1/clients", {"name": unique("Client")})
    return await owner_post(ctx, agency, "/v1/retainers", _retainer_body(made))


async def rate_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    made = await owner_post(ctx, agency, "/v1/clients", {"name": unique("Client")})
    return await owner_post(ctx, agency, "/v1/rates", {"rate_minor": 9000, "client_id": made})


async def entry_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """An open entry of the owner's, on a brand the owner is assigned to."""
    brand = await brand_id(ctx, agency, ids)
    await owner_post(
        ctx,
        agency,
        "/v1/assignments",
        {
            "brand_id": brand,
            "user_id": str(agency.owner.user_id),
            "role": "lead",
            "start_date": "2026-01-01",
        },
    )
    return await owner_post(
        ctx,
        agency,
        "/v1/time-entries",
        {"brand_id": brand, "date": "2026-11-02", "minutes": 45, "activity": "reporting"},
    )


async def iso_week(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    return "2026-W45"


async def brand_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    parent = await client_id(ctx, agency, ids)
    return await owner_post(
        ctx, agency, "/v1/brands", {"client_id": parent, "name": "Brand", "slug": unique("b")}
    )


async def assignment_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    brand = await brand_id(ctx, agency, ids)
    person = await member_user_id(ctx, agency, ids)
    return await owner_post(
        ctx,
        agency,
        "/v1/assignments",
        {"brand_id": brand, "user_id": person, "role": "analyst", "start_date": "2026-01-01"},
    )


async def member_user_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A member (not the owner, so a leaked PATCH would succeed rather than hit owner rules)."""
    person = await add_person(ctx.client, ctx.db, ctx.resources.passwords, agency, "member")
    return str(person.user_id)


async def template_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    return await owner_post(ctx, agency, "/v1/workflow-templates", _template_body())


def _template_body() -> dict[str, Any]:
    return {"name": unique("Workflow"), "steps": []}


async def content_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A draft on a brand whose default workflow needs no approval, so it can be submitted."""
    brand = await brand_id(ctx, agency, ids)
    await owner_post(
        ctx, agency, "/v1/workflow-templates", {**_template_body(), "brand_ids": [brand]}
    )
    return await owner_post(
        ctx, agency, f"/v1/brands/{brand}/content", {"title": "Post", "variants": {"x": "Hi"}}
    )


async def revision_number(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    return "1"


def _closed_month() -> str:
    return "2026-01"


async def invoice_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A draft invoice of a client's closed month."""
    made = await owner_post(ctx, agency, "/v1/clients", {"name": unique("Client")})
    return await owner_post(
        ctx, agency, "/v1/invoices", {"client_id": made, "month": _closed_month()}
    )


async def line_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A manual line of the draft named to its left in the path."""
    response = await ctx.client.post(
        f"/v1/invoices/{ids['invoice_id']}/lines",
        json={"description": "Extra", "amount_minor": 1000},
        headers=agency.owner.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["lines"][-1]["id"])


async def account_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A sandbox social account, connected through the real OAuth routes."""
    brand = ids.get("brand_id") or await brand_id(ctx, agency, ids)
    started = await ctx.client.post(
        f"/v1/brands/{brand}/social-accounts/connect",
        params={"platform": "sandbox"},
        headers=agency.owner.headers,
    )
    assert started.status_code == 200, started.text
    url = httpx.URL(started.json()["authorization_url"])
    response = await ctx.client.get(url.path, params=dict(url.params))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def publication_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A scheduled publication: an item needing no approval, aimed at a sandbox account,
    submitted and scheduled far ahead."""
    brand = await brand_id(ctx, agency, ids)
    account = await account_id(ctx, agency, {"brand_id": brand})
    await owner_post(
        ctx, agency, "/v1/workflow-templates", {**_template_body(), "brand_ids": [brand]}
    )
    item = await owner_post(
        ctx,
        agency,
        f"/v1/brands/{brand}/content",
        {"title": "Post", "variants": {"x": "Hi"}, "social_account_ids": [account]},
    )
    for action, body in (("submit", {}), ("schedule", {"planned_at": "2099-01-01T09:00:00Z"})):
        response = await ctx.client.post(
            f"/v1/content/{item}/{action}", json=body, headers=agency.owner.headers
        )
        assert response.status_code == 200, response.text
    response = await ctx.client.get(
        f"/v1/content/{item}/publications", headers=agency.owner.headers
    )
    assert response.status_code == 200, response.text
    [publication] = response.json()["items"]
    return str(publication["id"])


async def inbox_item_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A comment on a sandbox account, stored as the worker stores what a platform sent."""
    account = await account_id(ctx, agency, ids)
    item = await seed_inbox_item(ctx.resources.db, agency.tenant_id, uuid.UUID(account))
    return str(item.id)


async def inbox_action_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A reply the owner queued on the item named to its left in the path."""
    response = await ctx.client.post(
        f"/v1/inbox/{ids['item_id']}/reply",
        json={"text": "Merci de nous écrire!"},
        headers=agency.owner.headers,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["action"]["id"])


def _saved_reply_body() -> dict[str, Any]:
    return {"name": unique("Merci"), "language": "fr", "body": "Merci {first_name}!"}


async def saved_reply_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """An agency-wide saved reply."""
    return await owner_post(ctx, agency, "/v1/saved-replies", _saved_reply_body())


def _rule_body(brand: str) -> dict[str, Any]:
    return {
        "brand_id": brand,
        "name": unique("Rule"),
        "condition": {"keywords": ["remboursement"]},
        "action": {"labels": ["billing"]},
    }


async def rule_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """An inbox rule of a new brand."""
    brand = await brand_id(ctx, agency, ids)
    return await owner_post(ctx, agency, "/v1/inbox-rules", _rule_body(brand))


async def report_month(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    return "2026-10"


def _partner_app_body() -> dict[str, Any]:
    return {"name": unique("Partner"), "scopes": ["brands:read", "content:read"]}


async def app_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A partner app, made by the owner."""
    return await owner_post(ctx, agency, "/v1/partner-apps", _partner_app_body())


async def _answer_no_content(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:[ \t]*(\d+)", head)
        if length:
            await reader.readexactly(int(length.group(1)))
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


_SINK: list[asyncio.Server] = []


async def _hook_url() -> str:
    """A loopback receiver (allowed in tests) that answers 204 to every webhook. Started once
    on the session's event loop and kept: a replay queued by one test is sent by the worker
    that a later test runs."""
    if not _SINK:
        _SINK.append(await asyncio.start_server(_answer_no_content, "127.0.0.1", 0))
    port = _SINK[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def _webhook_endpoint(ctx: Ctx, agency: Agency, event: EventType) -> str:
    body = {"url": await _hook_url(), "event_types": [event.value]}
    return await owner_post(ctx, agency, "/v1/webhook-endpoints", body)


async def endpoint_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """An enabled webhook endpoint, made by the owner."""
    return await _webhook_endpoint(ctx, agency, EventType.invoice_finalized)


async def delivery_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """A delivery made the way deliveries are made: a draft invoice's event, fanned out by the
    real worker to an endpoint subscribed to it, and sent (successfully) to a receiver."""
    endpoint = await _webhook_endpoint(ctx, agency, EventType.invoice_draft_created)
    await invoice_id(ctx, agency, ids)
    await run_worker(ctx.resources.settings)
    response = await ctx.client.get(
        "/v1/webhook-deliveries", params={"endpoint_id": endpoint}, headers=agency.owner.headers
    )
    assert response.status_code == 200, response.text
    [delivery] = response.json()["items"]
    assert delivery["status"] == "succeeded", delivery
    return str(delivery["id"])


async def export_id(ctx: Ctx, agency: Agency, ids: dict[str, str]) -> str:
    """An export of the agency, asked by the owner (queued: no worker runs it here)."""
    response = await ctx.client.post("/v1/exports", json={}, headers=agency.owner.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


# Path-parameter name -> an async function making an object of that kind in the given agency
# and returning its id. `ids` holds the ids already made for the parameters to its left in the
# path, so that a child can be made under its parent.
ID_PROVIDERS: dict[str, IdProvider] = {
    "user_id": member_user_id,
    "client_id": client_id,
    "brand_id": brand_id,
    "assignment_id": assignment_id,
    "retainer_id": retainer_id,
    "rate_id": rate_id,
    "entry_id": entry_id,
    "iso_week": iso_week,
    "template_id": template_id,
    "content_id": content_id,
    "base": revision_number,
    "head": revision_number,
    "invoice_id": invoice_id,
    "line_id": line_id,
    "account_id": account_id,
    "month": report_month,
    "app_id": app_id,
    "endpoint_id": endpoint_id,
    "delivery_id": delivery_id,
    "publication_id": publication_id,
    "item_id": inbox_item_id,
    "action_id": inbox_action_id,
    "saved_reply_id": saved_reply_id,
    "rule_id": rule_id,
    "export_id": export_id,
}

# Path parameters that are values, not objects: they name nothing another tenant could own.
VALUE_PARAMS = {"iso_week", "base", "head", "month"}

# Query parameters a route requires, so the request reaches the service.
REQUIRED_QUERY: dict[str, dict[str, str]] = {
    "/v1/staff/{user_id}/capacity": {"month": "2026-11"},
    "/v1/clients/{client_id}/budget": {"month": "2026-11"},
    "/v1/budgets": {"month": "2026-11"},
    "/v1/portal/budget": {"month": "2026-11"},
    "/v1/calendar": {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
    "/v1/brands/{brand_id}/social-accounts/connect": {"platform": "sandbox"},
    "/v1/inbox/stats": {"month": "2026-11"},
}


def walk_signup_body() -> dict[str, Any]:
    return signup_body(unique("walk"))


# (method, path) -> a function giving a valid JSON body, so that the request reaches the
# service (a 422 would hide a leak, and "an unknown field" needs a body that is otherwise valid).
VALID_BODIES: dict[tuple[str, str], Callable[[], Any]] = {
    ("POST", "/v1/auth/signup"): walk_signup_body,
    ("POST", "/v1/auth/login"): lambda: {"email": "nobody@example.com", "password": "x" * 12},
    ("POST", "/v1/auth/refresh"): lambda: {"refresh_token": "not.a-token"},
    ("POST", "/v1/auth/logout"): lambda: {},
    ("POST", "/v1/invitations"): lambda: {
        "email": f"{unique('invitee')}@example.com",
        "role": "member",
    },
    ("POST", "/v1/invitations/{token}/accept"): lambda: {
        "name": "New Person",
        "password": PASSWORD,
    },
    ("PATCH", "/v1/members/{user_id}"): lambda: {"role": "manager"},
    ("POST", "/v1/clients"): lambda: {"name": unique("Client")},
    ("PATCH", "/v1/clients/{client_id}"): lambda: {"name": "Renamed"},
    ("POST", "/v1/brands"): lambda: {
        "client_id": str(uuid.uuid4()),
        "name": "Brand",
        "slug": unique("b"),
    },
    ("PATCH", "/v1/brands/{brand_id}"): lambda: {"name": "Renamed"},
    ("POST", "/v1/assignments"): lambda: {
        "brand_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "role": "analyst",
        "start_date": "2026-01-01",
    },
    ("PATCH", "/v1/assignments/{assignment_id}"): lambda: {"monthly_minutes": 600},
    ("POST", "/v1/retainers"): lambda: _retainer_body(str(uuid.uuid4())),
    ("PATCH", "/v1/retainers/{retainer_id}"): lambda: {
        "effective_month": _this_month(),
        "monthly_minutes": 1200,
        "fee_minor": 200000,
        "overage": {"policy": "bill_at_rate", "rate_minor": 9000},
    },
    ("POST", "/v1/rates"): lambda: {"rate_minor": 8000, "role": "member"},
    ("PATCH", "/v1/rates/{rate_id}"): lambda: {"rate_minor": 8500},
    ("POST", "/v1/time-entries"): lambda: {
        "brand_id": str(uuid.uuid4()),
        "date": "2026-11-02",
        "minutes": 30,
        "activity": "moderation",
        "billable": False,
    },
    ("PATCH", "/v1/time-entries/{entry_id}"): lambda: {"note": "Corrected"},
    ("POST", "/v1/timers/start"): lambda: {"brand_id": str(uuid.uuid4()), "activity": "other"},
    ("POST", "/v1/timesheets/{user_id}/{iso_week}/return"): lambda: {"reason": "Friday?"},
    ("POST", "/v1/workflow-templates"): _template_body,
    ("PUT", "/v1/workflow-templates/{template_id}"): _template_body,
    ("POST", "/v1/brands/{brand_id}/content"): lambda: {"title": "Post"},
    ("PATCH", "/v1/content/{content_id}"): lambda: {"title": "Renamed"},
    ("POST", "/v1/content/{content_id}/submit"): lambda: {},
    ("POST", "/v1/content/{content_id}/schedule"): lambda: {
        "planned_at": "2099-01-01T09:00:00+00:00"
    },
    ("POST", "/v1/content/{content_id}/decisions"): lambda: {
        "revision_id": str(uuid.uuid4()),
        "decision": "approve",
    },
    ("POST", "/v1/content/{content_id}/comments"): lambda: {"body": "Nice", "visibility": "client"},
    ("POST", "/v1/approval-links/{token}"): lambda: {"decision": "approve"},
    ("POST", "/v1/billing/checkout-session"): lambda: {"plan_id": "growth"},
    ("PUT", "/v1/billing/connected-account"): lambda: {"account_id": "acct_1Unknown"},
    ("POST", "/v1/invoices"): lambda: {"client_id": str(uuid.uuid4()), "month": _closed_month()},
    ("PATCH", "/v1/invoices/{invoice_id}"): lambda: {"notes": "Thanks"},
    ("POST", "/v1/invoices/{invoice_id}/lines"): lambda: {
        "description": "Extra",
        "amount_minor": 1000,
    },
    ("PATCH", "/v1/invoices/{invoice_id}/lines/{line_id}"): lambda: {"amount_minor": 500},
    ("POST", "/v1/invoices/{invoice_id}/void"): lambda: {"reason": "Wrong month"},
    ("PATCH", "/v1/social-accounts/{account_id}"): lambda: {"status": "paused"},
    ("POST", "/v1/publications/{publication_id}/retry"): lambda: {"confirm_not_published": False},
    ("POST", "/v1/inbox/{item_id}/reply"): lambda: {"text": "Merci!"},
    ("POST", "/v1/inbox/{item_id}/assign"): lambda: {"assignee_id": None},
    ("POST", "/v1/inbox/{item_id}/status"): lambda: {"status": "done"},
    ("POST", "/v1/inbox/{item_id}/hide"): lambda: {"hidden": True},
    ("POST", "/v1/inbox/{item_id}/labels"): lambda: {"add": ["urgent"]},
    ("POST", "/v1/saved-replies"): _saved_reply_body,
    ("PATCH", "/v1/saved-replies/{saved_reply_id}"): lambda: {"name": "Renamed"},
    ("POST", "/v1/saved-replies/{saved_reply_id}/render"): lambda: {"item_id": str(uuid.uuid4())},
    ("POST", "/v1/inbox-rules"): lambda: _rule_body(str(uuid.uuid4())),
    ("PATCH", "/v1/inbox-rules/{rule_id}"): lambda: {"name": "Renamed"},
    ("PUT", "/v1/clients/{client_id}/response-policy"): _response_policy_body,
    ("POST", "/v1/invoices/{invoice_id}/credit-notes"): lambda: {
        "amount_minor": 100,
        "reason": "Goodwill",
    },
    ("POST", "/v1/partner-apps"): _partner_app_body,
    ("PATCH", "/v1/partner-apps/{app_id}"): lambda: {"name": "Renamed"},
    ("POST", "/v1/partner-apps/{app_id}/rotate-secret"): lambda: {"overlap_seconds": 60},
    ("POST", "/v1/webhook-endpoints"): lambda: {
        # Loopback: allowed by the test settings (WEBHOOK_ALLOWED_NETWORKS).
        "url": "http://127.0.0.1:9/hook",
        "event_types": [EventType.invoice_finalized.value],
    },
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): lambda: {"description": "Renamed"},
    ("PATCH", "/v1/agency/branding"): lambda: {"app_base_url": "https://portail.agence.example"},
    ("POST", "/v1/exports"): lambda: {},
    ("POST", "/v1/erasures"): lambda: {
        "subject": "external_approver",
        "email": f"{unique('approver')}@example.com",
    },
    # Not the agency's slug: the walk must not close its agencies (tests/privacy does).
    ("POST", "/v1/agency/closure"): lambda: {"confirm": "not-this-agency"},
}

# Routes that read a body that is not JSON (they declare no body model, so the JSON-body walks
# do not reach them; the test_token_endpoint_* tests below do): (method, path) -> why.
NON_JSON_BODIES: dict[tuple[str, str], str] = {
    ("POST", "/v1/oauth/token"): (
        "RFC 6749 §4.4: the client-credentials token request is application/x-www-form-urlencoded"
    ),
    ("PUT", "/v1/agency/logo"): (
        "the logo is the image itself (PNG, JPEG or WebP); tests/tenants/test_branding.py tries "
        "it with SVG, mismatched, empty, oversized and streamed bodies"
    ),
}

# Routes whose path parameters name no tenant object: path -> why.
NOT_TENANT_OBJECTS: dict[str, str] = {
    "/v1/invitations/{token}/accept": (
        "reached by a signed invitation token (which names its tenant), not by an object id"
    ),
    "/v1/approval-links/{token}": (
        "reached by a signed approval-link token (which names its tenant), not by an object id"
    ),
    "/v1/oauth/callback/{platform}": (
        "reached by a platform's redirect with a signed state (which names its tenant); the "
        "path names a platform, not an object"
    ),
    "/agency-logos/{tenant_id}/{sha256}": (
        "an agency's logo, public by design (e-mails show it): reached by its content hash, "
        "which only those sent it know; tests/tenants/test_branding.py checks that another "
        "agency's id or an old hash is a 404"
    ),
    "/v1/platform-webhooks/{platform}": (
        "a platform's webhook, authenticated by its signature over the body; the path names a "
        "platform, not an object, and the agency is found from the account the event names"
    ),
}


def registration_problems(op: walk.Operation) -> list[str]:
    missing = []
    if op.path not in NOT_TENANT_OBJECTS:
        missing += [f"ID_PROVIDERS[{p!r}]" for p in op.info.path_params if p not in ID_PROVIDERS]
    if op.info.takes_json_body and (op.method, op.path) not in VALID_BODIES:
        missing.append(f"VALID_BODIES[({op.method!r}, {op.path!r})]")
    return missing


def require_registered(op: walk.Operation) -> None:
    missing = registration_problems(op)
    if missing:
        pytest.fail(
            f"register {op.method} {op.path} in ID_PROVIDERS/VALID_BODIES (missing: "
            f"{', '.join(missing)})"
        )


async def path_ids(ctx: Ctx, op: walk.Operation, agency: Agency) -> dict[str, str]:
    """Ids of real objects of `agency` for every path parameter (placeholders for routes whose
    parameters are not tenant objects)."""
    ids: dict[str, str] = {}
    for name in op.info.path_params:
        if op.path in NOT_TENANT_OBJECTS:
            ids[name] = str(uuid.uuid4()) if op.info.path_param_is_uuid(name) else "placeholder"
        else:
            ids[name] = await ID_PROVIDERS[name](ctx, agency, dict(ids))
    return ids


def valid_body(op: walk.Operation) -> Any:
    factory = VALID_BODIES.get((op.method, op.path))
    return None if factory is None else factory()
