"""Outbound webhooks over HTTP, against a real receiver on loopback.

Endpoints (who manages them, what they accept), the SSRF guard, and deliveries end to end: an
API change writes an outbox event, the real worker fans it out and sends it, signed; the
signature is checked with the `standardwebhooks` package from PyPI (which we did not write).
Then retries, auto-disable with its e-mail, replay, redirects, timeouts, a rolled-back change,
and the deliveries list. The test settings allow loopback targets and retry after 0.1, 0.2 and
0.3 s (four attempts in all), with a 2 s timeout.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devtools.smtp import text_of
from devtools.webhook_receiver import Answer, Received, Receiver, redirect
from infra.outbox import Event, enqueue_delivery, record_event
from partners.events import PUBLISHED
from partners.models import WebhookDelivery, WebhookEndpoint
from tests.support.factories import (
    Agency,
    World,
    add_person,
    make_post,
    new_world,
    walk,
)
from tests.support.partners import create_partner_app, partner_for, partner_headers
from tests.support.problems import assert_problem
from tests.support.worker import run_worker

SUBMITTED = "content.submitted"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------
# Helpers


async def new_shop(client: httpx.AsyncClient) -> World:
    """An agency with one client brand and its workflow template (ids["template"])."""
    world = await new_world(client)
    # A workflow without steps: a submission needs nobody to review it.
    flow = await client.post(
        "/v1/workflow-templates",
        json={"name": "Straight through", "steps": []},
        headers=world.boss,
    )
    assert flow.status_code == 201, flow.text
    world.ids["template"] = flow.json()["id"]
    return world


async def add_endpoint(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    url: str,
    event_types: list[str] | None = None,
    **fields: Any,
) -> dict:
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "event_types": event_types or [SUBMITTED], **fields},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def submit_a_post(client: httpx.AsyncClient, shop: World) -> dict:
    """A new post submitted to its workflow: the API records a content.submitted event."""
    post = await make_post(client, shop.boss, shop.brand["id"], template_id=shop.ids["template"])
    response = await client.post(f"/v1/content/{post['id']}/submit", json={}, headers=shop.boss)
    assert response.status_code == 200, response.text
    return response.json()


async def deliveries(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict]:
    return await walk(client, "/v1/webhook-deliveries", headers, **params)


async def endpoint_of(client: httpx.AsyncClient, headers: dict[str, str], endpoint_id: str) -> dict:
    response = await client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def verified(secret: str, request: Received) -> dict:
    """The body, once the Standard Webhooks signature is checked by the PyPI package."""
    return Webhook(secret).verify(request.body, request.headers)


def statuses(delivery: dict) -> list[int | None]:
    return [a["response_status"] for a in delivery["attempt_log"]]


async def tenant_deliveries(db, agency: Agency) -> list[WebhookDelivery]:
    async with db.tenant_transaction(agency.tenant_id) as session:
        rows = await session.scalars(
            select(WebhookDelivery).where(col(WebhookDelivery.tenant_id) == agency.tenant_id)
        )
        return list(rows.all())


# ---------------------------------------------------------------------------------------------
# Endpoints


async def test_an_owner_creates_reads_changes_rotates_and_deletes_an_endpoint(client, receiver):
    shop = await new_shop(client)
    inbox = receiver.inbox()
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": inbox.url, "event_types": [SUBMITTED], "description": "CRM"},
        headers=shop.boss,
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["secret"].startswith("whsec_")
    Webhook(created["secret"])  # a secret the Standard Webhooks library accepts
    assert created["url"] == inbox.url
    assert created["event_types"] == [SUBMITTED]
    assert created["description"] == "CRM"
    assert created["status"] == "enabled" and created["disabled_reason"] is None
    path = f"/v1/webhook-endpoints/{created['id']}"

    # The secret is shown once: reads never carry it.
    read = await client.get(path, headers=shop.boss)
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    listed = await client.get("/v1/webhook-endpoints", headers=shop.boss)
    assert [e["id"] for e in listed.json()["items"]] == [created["id"]]
    for body in (read.json(), *listed.json()["items"]):
        assert "secret" not in body
        assert created["secret"] not in json.dumps(body)

    other = receiver.inbox()
    changed = await client.patch(
        path,
        json={"url": other.url, "event_types": ["invoice.finalized", SUBMITTED, SUBMITTED]},
        headers={**shop.boss, "If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"2"'
    assert changed.json()["url"] == other.url
    assert changed.json()["event_types"] == sorted({"invoice.finalized", SUBMITTED})
    assert changed.json()["version"] == 2

    stale = await client.patch(
        path, json={"description": "late"}, headers={**shop.boss, "If-Match": '"1"'}
    )
    assert_problem(stale, 412, "precondition-failed")
    assert (await endpoint_of(client, shop.boss, created["id"]))["description"] == "CRM"

    disabled = await client.patch(path, json={"status": "disabled"}, headers=shop.boss)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["status"] == "disabled"
    assert disabled.json()["disabled_reason"] and disabled.json()["disabled_at"]
    enabled = await client.patch(path, json={"status": "enabled"}, headers=shop.boss)
    assert enabled.json()["status"] == "enabled"
    assert enabled.json()["disabled_reason"] is None and enabled.json()["disabled_at"] is None
    version = enabled.json()["version"]

    stale_rotation = await client.post(
        f"{path}/rotate-secret", headers={**shop.boss, "If-Match": f'"{version - 1}"'}
    )
    assert_problem(stale_rotation, 412, "precondition-failed")
    rotated = await client.post(
        f"{path}/rotate-secret", headers={**shop.boss, "If-Match": f'"{version}"'}
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    assert rotated.json()["version"] == version + 1
    assert "secret" not in (await endpoint_of(client, shop.boss, created["id"]))

    stale_delete = await client.delete(path, headers={**shop.boss, "If-Match": f'"{version}"'})
    assert_problem(stale_delete, 412, "precondition-failed")
    deleted = await client.delete(path, headers={**shop.boss, "If-Match": f'"{version + 1}"'})
    assert deleted.status_code == 204, deleted.text
    assert_problem(await client.get(path, headers=shop.boss), 404, "webhook-endpoint-not-found")
    assert (await client.get("/v1/webhook-endpoints", headers=shop.boss)).json()["items"] == []


@pytest.mark.parametrize(("role", "allowed"), [("admin", True), ("manager", False)])
async def test_only_owners_and_admins_manage_endpoints(
    client, db, resources, receiver, role, allowed
):
    shop = await new_shop(client)
    person = await add_person(client, db, resources.passwords, shop.agency, role)
    owned = await add_endpoint(client, shop.boss, receiver.inbox().url)
    path = f"/v1/webhook-endpoints/{owned['id']}"
    attempts = [
        ("GET", "/v1/webhook-endpoints", None),
        (
            "POST",
            "/v1/webhook-endpoints",
            {"url": receiver.inbox().url, "event_types": [SUBMITTED]},
        ),
        ("GET", path, None),
        ("PATCH", path, {"description": "changed"}),
        ("POST", f"{path}/rotate-secret", None),
        ("GET", "/v1/webhook-deliveries", None),
        ("DELETE", path, None),
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=person.headers)
        if allowed:
            assert response.status_code < 300, (method, url, response.text)
        else:
            assert_problem(response, 403, "permission-denied")
    left = (await client.get("/v1/webhook-endpoints", headers=shop.boss)).json()["items"]
    if allowed:
        assert len(left) == 1 and left[0]["id"] != owned["id"]  # deleted one, made one
    else:
        assert [(e["id"], e["description"]) for e in left] == [(owned["id"], None)]


async def test_another_agency_cannot_see_or_touch_an_endpoint(client, receiver):
    shop, stranger = await new_shop(client), await new_shop(client)
    endpoint = await add_endpoint(client, shop.boss, receiver.inbox().url)
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    for method, url, body in [
        ("GET", path, None),
        ("PATCH", path, {"url": receiver.inbox().url}),
        ("POST", f"{path}/rotate-secret", None),
        ("DELETE", path, None),
    ]:
        response = await client.request(method, url, json=body, headers=stranger.boss)
        assert_problem(response, 404, "webhook-endpoint-not-found")
    assert (await client.get("/v1/webhook-endpoints", headers=stranger.boss)).json()["items"] == []
    unchanged = await endpoint_of(client, shop.boss, endpoint["id"])
    assert unchanged["version"] == 1 and unchanged["url"] == endpoint["url"]
    filtered = await client.get(
        "/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"]}, headers=stranger.boss
    )
    assert filtered.status_code == 200 and filtered.json()["items"] == []


async def test_a_partner_app_manages_only_the_endpoints_it_created(client, db, settings, receiver):
    shop = await new_shop(client)
    app, partner = await partner_for(client, db, shop.agency, ["webhooks:manage"])
    _, other_partner = await partner_for(client, db, shop.agency, ["webhooks:manage"])
    owners = await add_endpoint(client, shop.boss, receiver.inbox().url)
    partner_inbox = receiver.inbox()
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": partner_inbox.url, "event_types": [SUBMITTED]},
        headers=partner,
    )
    assert response.status_code == 201, response.text
    mine = response.json()
    assert mine["secret"].startswith("whsec_")

    listed = await client.get("/v1/webhook-endpoints", headers=partner)
    assert [e["id"] for e in listed.json()["items"]] == [mine["id"]]
    assert (await client.get("/v1/webhook-endpoints", headers=other_partner)).json()["items"] == []
    every = await client.get("/v1/webhook-endpoints", headers=shop.boss)
    assert {e["id"] for e in every.json()["items"]} == {owners["id"], mine["id"]}

    for headers, endpoint in [(partner, owners), (other_partner, mine)]:
        path = f"/v1/webhook-endpoints/{endpoint['id']}"
        for method, body in [("GET", None), ("PATCH", {"description": "x"}), ("DELETE", None)]:
            refused = await client.request(method, path, json=body, headers=headers)
            assert_problem(refused, 404, "webhook-endpoint-not-found")

    # The audit trail names the app that made the endpoint.
    audit = await client.get(
        "/v1/audit-events",
        params={"subject_type": "webhook_endpoint", "subject_id": mine["id"]},
        headers=shop.boss,
    )
    [created] = [a for a in audit.json()["items"] if a["action"] == "webhook_endpoint.created"]
    assert (created["actor_type"], created["actor_id"]) == ("partner", app.id)

    # Its deliveries are the only ones it sees; the owner sees every endpoint's.
    await submit_a_post(client, shop)
    await run_worker(settings)
    assert len(partner_inbox.requests) == 1
    seen = await deliveries(client, partner)
    assert [d["endpoint_id"] for d in seen] == [mine["id"]]
    assert await deliveries(client, other_partner) == []
    assert {d["endpoint_id"] for d in await deliveries(client, shop.boss)} == {
        owners["id"],
        mine["id"],
    }
    refused = await client.get(f"/v1/webhook-deliveries/{seen[0]['id']}", headers=other_partner)
    assert_problem(refused, 404, "webhook-delivery-not-found")

    # A token without webhooks:manage reaches none of it.
    reader = await create_partner_app(client, shop.agency, ["content:read"], name="reader")
    headers = await partner_headers(client, reader)
    body = assert_problem(
        await client.get("/v1/webhook-endpoints", headers=headers), 403, "insufficient-scope"
    )
    assert body["required_scope"] == "webhooks:manage"

    deleted = await client.delete(f"/v1/webhook-endpoints/{mine['id']}", headers=partner)
    assert deleted.status_code == 204, deleted.text
    assert [
        e["id"]
        for e in (await client.get("/v1/webhook-endpoints", headers=shop.boss)).json()["items"]
    ] == [owners["id"]]


BAD_INPUT = [
    ("unknown event type", {"event_types": ["content.exploded"]}, "validation-error"),
    ("an internal event type", {"event_types": ["webhook_endpoint.disabled"]}, "validation-error"),
    ("no event types", {"event_types": []}, "validation-error"),
    ("event types not a list", {"event_types": SUBMITTED}, "validation-error"),
    ("no url", {"url": None}, "validation-error"),
    ("empty url", {"url": "   "}, "validation-error"),
    ("ftp scheme", {"url": "ftp://127.0.0.1/hook"}, "unsafe-webhook-url"),
    ("no scheme", {"url": "127.0.0.1/hook"}, "unsafe-webhook-url"),
    ("user and password", {"url": "http://user:pass@127.0.0.1/hook"}, "unsafe-webhook-url"),
    ("no host", {"url": "http:///hook"}, "unsafe-webhook-url"),
    ("a fragment", {"url": "http://127.0.0.1/hook#part"}, "unsafe-webhook-url"),
    ("a bad port", {"url": "http://127.0.0.1:99999/hook"}, "unsafe-webhook-url"),
    ("too long", {"url": "http://127.0.0.1/" + "a" * 2048}, "validation-error"),
    ("extra field", {"secret": "whsec_bWluZQ=="}, "validation-error"),
    ("description too long", {"description": "d" * 501}, "validation-error"),
]


@pytest.mark.parametrize(
    ("change", "slug"), [(c, s) for _, c, s in BAD_INPUT], ids=[n for n, _, _ in BAD_INPUT]
)
async def test_bad_endpoint_input_is_refused_and_creates_nothing(client, receiver, change, slug):
    shop = await new_shop(client)
    body = {"url": receiver.inbox().url, "event_types": [SUBMITTED], **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await client.post("/v1/webhook-endpoints", json=body, headers=shop.boss)
    assert_problem(response, 422, slug)
    assert (await client.get("/v1/webhook-endpoints", headers=shop.boss)).json()["items"] == []

    # The same values are refused when changing an existing endpoint, which stays as it was.
    endpoint = await add_endpoint(client, shop.boss, receiver.inbox().url)
    patch = {k: v for k, v in change.items() if v is not None} or {"url": None}
    refused = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json=patch, headers=shop.boss
    )
    assert_problem(refused, 422, slug)  # a url cannot be null: leave it out to keep it
    after = await endpoint_of(client, shop.boss, endpoint["id"])
    assert (after["url"], after["event_types"], after["version"]) == (
        endpoint["url"],
        endpoint["event_types"],
        1,
    )


async def test_every_published_event_type_can_be_subscribed_to(client, receiver):
    shop = await new_shop(client)
    endpoint = await add_endpoint(client, shop.boss, receiver.inbox().url, sorted(PUBLISHED))
    assert endpoint["event_types"] == sorted(PUBLISHED)
    assert SUBMITTED in PUBLISHED


# ---------------------------------------------------------------------------------------------
# SSRF


UNSAFE_URLS = [
    "http://10.0.0.5/",
    "http://192.168.1.1/",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "https://192.0.2.10/",
]


@pytest.mark.parametrize("url", UNSAFE_URLS)
async def test_private_and_link_local_targets_are_refused(client, receiver, url):
    shop = await new_shop(client)
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": url, "event_types": [SUBMITTED]}, headers=shop.boss
    )
    body = assert_problem(response, 422, "unsafe-webhook-url")
    assert body["detail"] == (
        "The URL resolves to a private, loopback, link-local or reserved address; webhooks "
        "go to public addresses only."
    )
    assert (await client.get("/v1/webhook-endpoints", headers=shop.boss)).json()["items"] == []

    endpoint = await add_endpoint(client, shop.boss, receiver.inbox().url)
    moved = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"url": url}, headers=shop.boss
    )
    assert_problem(moved, 422, "unsafe-webhook-url")
    assert (await endpoint_of(client, shop.boss, endpoint["id"]))["url"] == endpoint["url"]


async def test_a_name_that_does_not_resolve_is_refused(client):
    shop = await new_shop(client)
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://nonexistent.invalid/hook", "event_types": [SUBMITTED]},
        headers=shop.boss,
    )
    body = assert_problem(response, 422, "unsafe-webhook-url")
    assert "nonexistent.invalid" in body["detail"]
    assert (await client.get("/v1/webhook-endpoints", headers=shop.boss)).json()["items"] == []


# ---------------------------------------------------------------------------------------------
# Delivery


async def test_a_submitted_post_is_delivered_once_and_signed(client, settings, receiver):
    shop = await new_shop(client)
    inbox, elsewhere = receiver.inbox(), receiver.inbox()
    endpoint = await add_endpoint(client, shop.boss, inbox.url, [SUBMITTED])
    await add_endpoint(client, shop.boss, elsewhere.url, ["invoice.finalized"])

    post = await submit_a_post(client, shop)
    await run_worker(settings)

    [request] = inbox.requests
    assert request.method == "POST" and request.path == inbox.path
    assert request.headers["content-type"] == "application/json"
    body = verified(endpoint["secret"], request)
    assert set(body) == {"id", "type", "timestamp", "data"}
    assert body["type"] == SUBMITTED
    assert body["data"]["content_id"] == post["id"]
    assert request.headers["webhook-id"] == body["id"]
    datetime.fromisoformat(body["timestamp"])
    # Someone else's secret does not verify it.
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 44).verify(request.body, request.headers)
    assert elsewhere.requests == []  # not subscribed to content.submitted

    [delivery] = await deliveries(client, shop.boss)
    assert delivery["endpoint_id"] == endpoint["id"]
    assert delivery["event_id"] == body["id"]
    assert delivery["event_type"] == SUBMITTED
    assert (delivery["status"], delivery["response_status"], delivery["attempts"]) == (
        "succeeded",
        200,
        1,
    )
    assert delivery["last_error"] is None and delivery["next_attempt_at"] is None
    assert statuses(delivery) == [200]
    one = await client.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=shop.boss)
    assert one.json() == delivery
    assert (await endpoint_of(client, shop.boss, endpoint["id"]))["last_success_at"]

    # Nothing more is sent when the worker runs again.
    await run_worker(settings)
    assert len(inbox.requests) == 1
    assert len(await deliveries(client, shop.boss)) == 1


async def test_a_rotated_secret_signs_the_next_deliveries(client, settings, receiver):
    shop = await new_shop(client)
    inbox = receiver.inbox()
    endpoint = await add_endpoint(client, shop.boss, inbox.url)
    rotated = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=shop.boss
    )
    assert rotated.status_code == 200, rotated.text
    await submit_a_post(client, shop)
    await run_worker(settings)
    [request] = inbox.requests
    verified(rotated.json()["secret"], request)
    with pytest.raises(WebhookVerificationError):
        verified(endpoint["secret"], request)


async def test_a_failing_endpoint_is_retried_until_it_answers(client, settings, receiver):
    shop = await new_shop(client)
    inbox = receiver.inbox(Answer(500), Answer(500), then=Answer(200))
    endpoint = await add_endpoint(client, shop.boss, inbox.url)
    await submit_a_post(client, shop)
    await run_worker(settings)

    [delivery] = await deliveries(client, shop.boss)
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "succeeded",
        3,
        200,
    )
    assert statuses(delivery) == [500, 500, 200]
    assert [a["error"] is None for a in delivery["attempt_log"]] == [False, False, True]
    assert delivery["last_error"] is None

    requests = inbox.requests
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {delivery["event_id"]}
    bodies = [verified(endpoint["secret"], r) for r in requests]
    assert all(b == bodies[0] for b in bodies)
    # Each retry waits longer than the one before (0.1 s, then 0.2 s).
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19, gaps
    read = await endpoint_of(client, shop.boss, endpoint["id"])
    assert read["status"] == "enabled" and read["last_failure_at"] and read["last_success_at"]


async def test_an_endpoint_that_keeps_failing_is_disabled_and_the_admins_are_told(
    client, db, resources, settings, receiver, mailbox
):
    shop = await new_shop(client)
    admin = await add_person(client, db, resources.passwords, shop.agency, "admin")
    manager = await add_person(client, db, resources.passwords, shop.agency, "manager")
    inbox = receiver.inbox(then=Answer(503))
    endpoint = await add_endpoint(client, shop.boss, inbox.url)
    await submit_a_post(client, shop)
    await run_worker(settings)

    [delivery] = await deliveries(client, shop.boss)
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "failed",
        4,
        503,
    )
    assert statuses(delivery) == [503] * 4
    assert "503" in delivery["last_error"]
    assert len(inbox.requests) == 4
    read = await endpoint_of(client, shop.boss, endpoint["id"])
    assert read["status"] == "disabled"
    assert read["disabled_at"] and "503" in read["disabled_reason"]

    # The endpoint.disabled event was written by the job: the outbox delivers it (the
    # per-minute sweep would; we queue that delivery at once) and the mail goes out.
    await enqueue_delivery(resources.queue, shop.agency.tenant_id, job_key=uuid.uuid4().hex)
    await run_worker(settings)
    for person in (shop.agency.owner, admin):
        [message] = await mailbox.wait_for(person.email)
        assert inbox.url in str(message["Subject"])
        assert read["id"] in text_of(message)
    assert mailbox.to(manager.email) == []

    # Later events are not sent to a disabled endpoint.
    await submit_a_post(client, shop)
    await run_worker(settings)
    assert len(inbox.requests) == 4
    assert len(await deliveries(client, shop.boss)) == 1

    # Replaying onto a disabled endpoint is refused until it is enabled again.
    refused = await client.post(
        f"/v1/webhook-deliveries/{delivery['id']}/replay", headers=shop.boss
    )
    assert_problem(refused, 409, "webhook-endpoint-disabled")
    inbox.answer_next(then=Answer(204))
    enabled = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"status": "enabled"}, headers=shop.boss
    )
    assert enabled.json()["status"] == "enabled"
    replayed = await client.post(
        f"/v1/webhook-deliveries/{delivery['id']}/replay", headers=shop.boss
    )
    assert replayed.status_code == 202, replayed.text
    await run_worker(settings)
    assert len(inbox.requests) == 5
    verified(endpoint["secret"], inbox.requests[-1])


async def test_a_delivery_can_be_replayed_with_the_same_webhook_id(client, settings, receiver):
    shop, stranger = await new_shop(client), await new_shop(client)
    inbox = receiver.inbox()
    endpoint = await add_endpoint(client, shop.boss, inbox.url)
    await submit_a_post(client, shop)
    await run_worker(settings)
    [original] = await deliveries(client, shop.boss)

    response = await client.post(
        f"/v1/webhook-deliveries/{original['id']}/replay", headers=shop.boss
    )
    assert response.status_code == 202, response.text
    replay = response.json()
    assert replay["id"] != original["id"]
    assert replay["replay_of"] == original["id"]
    assert (replay["event_id"], replay["endpoint_id"]) == (original["event_id"], endpoint["id"])
    assert (replay["status"], replay["attempts"]) == ("pending", 0)

    await run_worker(settings)
    first, second = inbox.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == original["event_id"]
    assert verified(endpoint["secret"], second) == verified(endpoint["secret"], first)
    listed = {d["id"]: d for d in await deliveries(client, shop.boss)}
    assert listed.keys() == {original["id"], replay["id"]}
    assert listed[replay["id"]]["status"] == "succeeded"
    assert listed[original["id"]] == original  # the original stays as it was
    by_event = await deliveries(client, shop.boss, event_id=original["event_id"])
    assert {d["id"] for d in by_event} == {original["id"], replay["id"]}

    for who, delivery_id in [
        (stranger.boss, original["id"]),
        (shop.boss, str(uuid.uuid4())),
    ]:
        for method, path in [
            ("POST", f"/v1/webhook-deliveries/{delivery_id}/replay"),
            ("GET", f"/v1/webhook-deliveries/{delivery_id}"),
        ]:
            refused = await client.request(method, path, headers=who)
            assert_problem(refused, 404, "webhook-delivery-not-found")
    assert (await client.get("/v1/webhook-deliveries", headers=stranger.boss)).json()["items"] == []

    disabled = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"status": "disabled"}, headers=shop.boss
    )
    assert disabled.status_code == 200
    refused = await client.post(
        f"/v1/webhook-deliveries/{original['id']}/replay", headers=shop.boss
    )
    assert_problem(refused, 409, "webhook-endpoint-disabled")
    await run_worker(settings)
    assert len(inbox.requests) == 2


@pytest.mark.parametrize("where", ["metadata", "loopback"])
async def test_redirects_are_not_followed(client, settings, receiver, where):
    shop = await new_shop(client)
    target = (
        "http://169.254.169.254/latest/meta-data/"
        if where == "metadata"
        else f"{receiver.url}/elsewhere"  # a followed redirect would show up in `unrouted`
    )
    inbox = receiver.inbox(redirect(target), then=Answer(200))
    endpoint = await add_endpoint(client, shop.boss, inbox.url)
    unrouted_before = len(receiver.unrouted)
    await submit_a_post(client, shop)
    await run_worker(settings)

    [delivery] = await deliveries(client, shop.boss)
    first = delivery["attempt_log"][0]
    assert first["response_status"] == 302
    assert "redirect" in first["error"].lower()
    # The redirect counts as a failure: the delivery is retried, at the same URL.
    assert statuses(delivery) == [302, 200]
    assert delivery["status"] == "succeeded"
    assert [r.path for r in inbox.requests] == [inbox.path, inbox.path]
    assert len(receiver.unrouted) == unrouted_before
    assert (await endpoint_of(client, shop.boss, endpoint["id"]))["status"] == "enabled"


async def test_a_slow_endpoint_times_out_and_is_tried_again(client, settings, receiver):
    shop = await new_shop(client)
    slow = settings.webhook_timeout_seconds + 1
    inbox = receiver.inbox(Answer(200, delay=slow), then=Answer(200))
    endpoint = await add_endpoint(client, shop.boss, inbox.url)
    await submit_a_post(client, shop)
    await run_worker(settings)

    [delivery] = await deliveries(client, shop.boss)
    timed_out, answered = delivery["attempt_log"]
    assert timed_out["response_status"] is None
    assert "seconds" in timed_out["error"]
    timeout_ms = settings.webhook_timeout_seconds * 1000
    assert timeout_ms - 100 <= timed_out["duration_ms"] < slow * 1000
    assert (answered["response_status"], answered["error"]) == (200, None)
    assert delivery["status"] == "succeeded"
    first, second = inbox.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    verified(endpoint["secret"], second)


async def test_an_answer_body_that_trickles_in_does_not_hold_the_attempt(
    client, settings, receiver
):
    """Each byte of the body comes sooner than the timeout, the whole body later: the status
    line is the answer, so the attempt ends at once and the body is never waited for (an
    attempt that outlived its lease, timeout + 30 s, could be sent again by the sweeper)."""
    shop = await new_shop(client)
    timeout = settings.webhook_timeout_seconds
    body = b"x" * 4  # three pauses: 1.5 x the timeout in all
    inbox = receiver.inbox(Answer(200, body=body, trickle=timeout / 2), then=Answer(200))
    await add_endpoint(client, shop.boss, inbox.url)
    await submit_a_post(client, shop)
    await run_worker(settings)

    [delivery] = await deliveries(client, shop.boss)
    [attempt] = delivery["attempt_log"]
    assert attempt["duration_ms"] < timeout * 1000, attempt
    assert attempt["response_status"] == 200 and attempt["error"] is None
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 1


async def test_the_address_is_checked_again_when_sending(client, db, settings, receiver):
    """An endpoint whose address turned private since it was saved (its name now resolves
    elsewhere) is not contacted: the check runs again at each attempt."""
    shop = await new_shop(client)
    inbox = receiver.inbox()
    endpoint = await add_endpoint(client, shop.boss, inbox.url)
    async with db.tenant_transaction(shop.agency.tenant_id) as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(
                col(WebhookEndpoint.tenant_id) == shop.agency.tenant_id,
                col(WebhookEndpoint.id) == uuid.UUID(endpoint["id"]),
            )
            .values(url="http://169.254.169.254/latest/meta-data/")
        )
    unrouted_before = len(receiver.unrouted)
    await submit_a_post(client, shop)
    await run_worker(settings)

    [delivery] = await deliveries(client, shop.boss)
    assert delivery["status"] == "failed"
    assert statuses(delivery) == [None] * 4
    assert all("private" in a["error"] for a in delivery["attempt_log"])
    assert all(a["duration_ms"] < 1000 for a in delivery["attempt_log"])
    assert inbox.requests == [] and len(receiver.unrouted) == unrouted_before
    assert (await endpoint_of(client, shop.boss, endpoint["id"]))["status"] == "disabled"


async def test_a_rolled_back_change_sends_nothing(client, db, resources, settings, receiver):
    shop = await new_shop(client)
    inbox = receiver.inbox()
    await add_endpoint(client, shop.boss, inbox.url)
    tenant = shop.agency.tenant_id

    def write_event(session, content_id: uuid.UUID) -> None:
        record_event(
            session,
            tenant_id=tenant,
            type=SUBMITTED,
            aggregate_type="content",
            aggregate_id=content_id,
            payload={"content_id": str(content_id)},
        )

    rolled_back = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with db.tenant_transaction(tenant) as session:
            write_event(session, rolled_back)
            await session.flush()
            raise RuntimeError("the change fails after its event was written")
    await enqueue_delivery(resources.queue, tenant, job_key=uuid.uuid4().hex)
    await run_worker(settings)
    assert inbox.requests == []
    assert await tenant_deliveries(db, shop.agency) == []
    async with db.tenant_transaction(tenant) as session:
        events = await session.scalars(select(Event).where(col(Event.tenant_id) == tenant))
        assert rolled_back not in {e.aggregate_id for e in events.all()}

    # The same event, committed, is sent: the worker was not simply idle.
    committed = uuid.uuid4()
    async with db.tenant_transaction(tenant) as session:
        write_event(session, committed)
    await enqueue_delivery(resources.queue, tenant, job_key=uuid.uuid4().hex)
    await run_worker(settings)
    [request] = inbox.requests
    assert json.loads(request.body)["data"] == {"content_id": str(committed)}
    assert len(await tenant_deliveries(db, shop.agency)) == 1


async def test_the_deliveries_list_filters_and_pages_newest_first(client, settings, receiver):
    shop = await new_shop(client)
    good_inbox, bad_inbox = receiver.inbox(), receiver.inbox(then=Answer(410))
    good = await add_endpoint(client, shop.boss, good_inbox.url)
    bad = await add_endpoint(client, shop.boss, bad_inbox.url)
    for _ in range(3):
        await submit_a_post(client, shop)
    await run_worker(settings)

    everything = await deliveries(client, shop.boss)
    assert len(everything) == 6 and len({d["id"] for d in everything}) == 6
    keys = [(d["created_at"], d["id"]) for d in everything]
    assert keys == sorted(keys, reverse=True)

    paged, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/webhook-deliveries", params=params, headers=shop.boss)).json()
        pages += 1
        assert len(page["items"]) <= 4
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert [d["id"] for d in paged] == [d["id"] for d in everything]

    succeeded = await deliveries(client, shop.boss, status="succeeded")
    failed = await deliveries(client, shop.boss, status="failed")
    assert {d["endpoint_id"] for d in succeeded} == {good["id"]} and len(succeeded) == 3
    assert {d["endpoint_id"] for d in failed} == {bad["id"]} and len(failed) == 3
    assert await deliveries(client, shop.boss, status="pending") == []
    only_good = await deliveries(client, shop.boss, endpoint_id=good["id"])
    assert {d["id"] for d in only_good} == {d["id"] for d in succeeded}
    event_id = everything[0]["event_id"]
    same_event = await deliveries(client, shop.boss, event_id=event_id)
    assert {d["endpoint_id"] for d in same_event} == {good["id"], bad["id"]}
    combined = await deliveries(
        client, shop.boss, event_id=event_id, endpoint_id=bad["id"], status="failed"
    )
    assert len(combined) == 1

    for params, status, slug in [
        ({"cursor": "not-a-cursor"}, 400, "invalid-cursor"),
        ({"cursor": "WyJhIl0"}, 400, "invalid-cursor"),  # a list of one value
        ({"status": "lost"}, 422, "validation-error"),
        ({"limit": 0}, 422, "validation-error"),
        ({"limit": 201}, 422, "validation-error"),
        ({"endpoint_id": "nope"}, 422, "validation-error"),
    ]:
        response = await client.get("/v1/webhook-deliveries", params=params, headers=shop.boss)
        assert_problem(response, status, slug)
