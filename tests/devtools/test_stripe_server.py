"""The local Stripe server, driven by the real stripe SDK (async methods over httpx)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import httpx
import pytest
import stripe
from stripe._encode import _api_encode

from devtools.stripe_server import (
    StripeServer,
    deliver,
    deliver_in_order,
    deliver_late,
    deliver_twice,
    event_payload,
    parse_form,
    sign,
)

# stripe.HTTPXClient hands httpx its form body as `data=<str>`, which httpx 0.28 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

KEY = "sk_test_passerelle"
SECRET = "whsec_test_secret"


@pytest.fixture(scope="module")
def server() -> Iterator[StripeServer]:
    srv = StripeServer(api_key=KEY).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _fresh(server: StripeServer) -> None:
    server.reset()


@asynccontextmanager
async def sdk(
    server: StripeServer, *, key: str = KEY, http_timeout: float = 5
) -> AsyncIterator[stripe.StripeClient]:
    """The way the application talks to Stripe: async httpx, no SDK retries."""
    http = stripe.HTTPXClient(timeout=http_timeout)
    try:
        yield stripe.StripeClient(
            key, base_addresses={"api": server.url}, max_network_retries=0, http_client=http
        )
    finally:
        await http.close_async()


@pytest.fixture
async def client(server: StripeServer) -> AsyncIterator[stripe.StripeClient]:
    async with sdk(server) as stripe_client:
        yield stripe_client


async def subscribed(client: stripe.StripeClient, server: StripeServer, **options):
    customer = await client.v1.customers.create_async({"email": "a@b.c"}, options)
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": "price_seat", "quantity": 3}, {"price": "price_base"}],
            "success_url": "https://app.test/ok",
            "cancel_url": "https://app.test/cancel",
            "client_reference_id": "tenant-1",
            "subscription_data": {"metadata": {"tenant": "t1"}},
        },
        options,
    )
    sub, events = server.complete_checkout(session.id)
    return customer, session, sub, events


def test_parse_form_matches_sdk_encoding() -> None:
    params = {
        "items": [{"id": "si_1", "quantity": 2}, {"price": "p", "deleted": True}],
        "metadata": {"k": "v", "0": "zero"},
        "expand": ["a", "b"],
        "empty": "",
    }
    body = urlencode(list(_api_encode(params))).replace("%5B", "[").replace("%5D", "]")
    assert "items[0][id]=si_1" in body and "expand[1]=b" in body
    assert parse_form(body) == {
        "items": [{"id": "si_1", "quantity": "2"}, {"price": "p", "deleted": "true"}],
        "metadata": {"k": "v", "0": "zero"},
        "expand": ["a", "b"],
        "empty": "",
    }
    assert parse_form("expand[]=x&expand[]=y") == {"expand": ["x", "y"]}


async def test_customer_create_and_retrieve(client, server) -> None:
    created = await client.v1.customers.create_async(
        {"email": "a@b.c", "name": "Ada", "metadata": {"tenant": "t1"}, "preferred_locales": ["fr"]}
    )
    assert created.id.startswith("cus_") and created.livemode is False
    again = await client.v1.customers.retrieve_async(created.id)
    assert (again.email, again.metadata["tenant"], again.preferred_locales) == (
        "a@b.c",
        "t1",
        ["fr"],
    )
    call = server.calls_to("POST", "/v1/customers")[0]
    assert (
        call.params["metadata"] == {"tenant": "t1"} and call.idempotency_key
    )  # SDK always sets one
    assert created.last_response.headers["Request-Id"].startswith("req_")
    snapshot = server.make_event("customer.updated", again)  # SDK objects are accepted too
    assert snapshot["data"]["object"]["metadata"] == {"tenant": "t1"}


async def test_checkout_and_completion(client, server) -> None:
    customer, session, sub, events = await subscribed(client, server)
    assert session.url == f"{server.url}/pay/checkout/{session.id}" and session.status == "open"
    assert session.id.startswith("cs_test_") and session.client_reference_id == "tenant-1"
    assert [(i["price"]["id"], i["quantity"]) for i in sub["items"]["data"]] == [
        ("price_seat", 3),
        ("price_base", 1),
    ]
    assert sub["customer"] == customer.id and sub["metadata"] == {"tenant": "t1"}
    assert [e["type"] for e in events] == [
        "checkout.session.completed",
        "customer.subscription.created",
    ]
    assert events[0]["created"] < events[1]["created"]
    assert events[0]["data"]["object"]["subscription"] == sub["id"]
    fetched = await client.v1.subscriptions.retrieve_async(sub["id"])
    assert fetched.items.data[0].current_period_end > time.time() + 29 * 86400
    event = await client.v1.events.retrieve_async(events[1]["id"])
    assert event.type == "customer.subscription.created" and event.data.object.id == sub["id"]
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (done.status, done.subscription, done.customer) == ("complete", sub["id"], customer.id)
    assert done.customer_details.email == "a@b.c"
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(session.url)).status_code == 200


async def test_portal_session(client, server) -> None:
    customer = await client.v1.customers.create_async({"email": "a@b.c"})
    portal = await client.v1.billing_portal.sessions.create_async(
        {"customer": customer.id, "return_url": "https://app.test/billing"}
    )
    assert portal.id.startswith("bps_") and portal.url == f"{server.url}/pay/portal/{portal.id}"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.billing_portal.sessions.create_async({"customer": "cus_nope"})
    assert (missing.value.code, missing.value.param) == ("resource_missing", "customer")


async def test_idempotent_item_update_replays(client, server) -> None:
    _, _, sub, _ = await subscribed(client, server)
    item_id = sub["items"]["data"][0]["id"]
    options = {"idempotency_key": "seats-5"}
    first = await client.v1.subscription_items.update_async(
        item_id, {"quantity": 5, "proration_behavior": "none"}, options
    )
    second = await client.v1.subscription_items.update_async(
        item_id, {"quantity": 5, "proration_behavior": "none"}, options
    )
    assert first.quantity == second.quantity == 5
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert [c.replayed for c in server.calls_to("POST", "/v1/subscription_items")] == [False, True]
    assert server.subscription(sub["id"])["items"]["data"][0]["quantity"] == 5
    updates = server.events("customer.subscription.updated")
    assert len(updates) == 1 and updates[0]["request"]["idempotency_key"] == "seats-5"
    assert updates[0]["data"]["previous_attributes"]["items"]["data"][0]["quantity"] == 3

    with pytest.raises(stripe.IdempotencyError):
        await client.v1.subscription_items.update_async(item_id, {"quantity": 6}, options)
    assert server.subscription(sub["id"])["items"]["data"][0]["quantity"] == 5


async def test_idempotent_create_creates_once(client, server) -> None:
    options = {"idempotency_key": "cust-1"}
    a = await client.v1.customers.create_async({"email": "a@b.c"}, options)
    b = await client.v1.customers.create_async({"email": "a@b.c"}, options)
    assert a.id == b.id and len(server.customers()) == 1
    assert json.loads(str(a.last_response.body)) == json.loads(str(b.last_response.body))


async def test_subscription_update_items_and_metadata(client, server) -> None:
    _, _, sub, _ = await subscribed(client, server)
    seat, base = (i["id"] for i in sub["items"]["data"])
    updated = await client.v1.subscriptions.update_async(
        sub["id"],
        {
            "metadata": {"plan": "pro", "tenant": ""},
            "items": [{"id": seat, "quantity": 7}, {"id": base, "deleted": True}, {"price": "p3"}],
            "proration_behavior": "create_prorations",
            "cancel_at_period_end": True,
        },
    )
    assert updated.metadata.to_dict() == {"plan": "pro"} and updated.cancel_at_period_end is True
    assert [(i.price.id, i.quantity) for i in updated.items.data] == [("price_seat", 7), ("p3", 1)]
    item = await client.v1.subscription_items.retrieve_async(seat)
    assert item.quantity == 7
    with pytest.raises(stripe.InvalidRequestError) as bad:
        await client.v1.subscriptions.update_async(sub["id"], {"proration_behavior": "sometimes"})
    assert bad.value.param == "proration_behavior"


async def test_invoice_flow(client, server) -> None:
    customer = await client.v1.customers.create_async({"email": "a@b.c", "name": "Ada"})
    pending = await client.v1.invoice_items.create_async(
        {"customer": customer.id, "amount": 500, "currency": "eur", "description": "setup"}
    )
    invoice = await client.v1.invoices.create_async(
        {
            "customer": customer.id,
            "currency": "eur",
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "auto_advance": False,
            "metadata": {"period": "2025-01"},
            "pending_invoice_items_behavior": "include",
        }
    )
    assert (
        invoice.status == "draft" and invoice.total == 500 and invoice.lines.data[0].amount == 500
    )
    await client.v1.invoice_items.create_async(
        {"customer": customer.id, "amount": 1500, "currency": "eur", "invoice": invoice.id}
    )
    fetched = await client.v1.invoices.retrieve_async(invoice.id)
    assert (fetched.total, fetched.amount_due, len(fetched.lines.data)) == (2000, 2000, 2)
    assert fetched.lines.data[0].parent.invoice_item_details.invoice_item == pending.id
    final = await client.v1.invoices.finalize_invoice_async(invoice.id)
    assert final.status == "open" and final.number.endswith("-0001")
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.invoices.finalize_invoice_async(invoice.id)
    voided = await client.v1.invoices.void_invoice_async(invoice.id)
    assert voided.status == "void" and [i["status"] for i in server.invoices()] == ["void"]
    assert [e["type"] for e in server.events()] == ["invoice.finalized", "invoice.voided"]


async def test_stripe_account_scoping(client, server) -> None:
    account = server.add_account()
    on_account = {"stripe_account": account}
    theirs = await client.v1.customers.create_async({"email": "c@d.e"}, on_account)
    ours = await client.v1.customers.create_async({"email": "a@b.c"})
    assert (await client.v1.customers.retrieve_async(theirs.id, None, on_account)).id == theirs.id
    for cid, options in ((theirs.id, None), (ours.id, on_account)):
        with pytest.raises(stripe.InvalidRequestError) as missing:
            await client.v1.customers.retrieve_async(cid, None, options)
        assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert [c["id"] for c in server.customers(account)] == [theirs.id]
    assert server.calls[0].account == account
    with pytest.raises(stripe.PermissionError):
        await client.v1.customers.create_async({}, {"stripe_account": "acct_unknown"})
    assert (await client.v1.accounts.retrieve_async(account)).charges_enabled is True

    _, _, sub, events = await subscribed(client, server, stripe_account=account)
    assert all(e["account"] == account for e in events)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.retrieve_async(sub["id"])
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.events.retrieve_async(events[0]["id"])
    assert (await client.v1.events.retrieve_async(events[0]["id"], None, on_account)).account


async def test_idempotency_keys_are_per_account(client, server) -> None:
    account = server.add_account()
    a = await client.v1.customers.create_async({}, {"idempotency_key": "k"})
    b = await client.v1.customers.create_async(
        {}, {"idempotency_key": "k", "stripe_account": account}
    )
    assert a.id != b.id


async def test_fail_next_changes_nothing_then_succeeds(client, server) -> None:
    server.fail_next(1, status=500)
    with pytest.raises(stripe.APIError) as failed:
        await client.v1.customers.create_async({"email": "a@b.c"}, {"idempotency_key": "k1"})
    assert failed.value.http_status == 500 and server.customers() == []
    created = await client.v1.customers.create_async({"email": "a@b.c"}, {"idempotency_key": "k1"})
    assert "Idempotent-Replayed" not in created.last_response.headers
    assert [(c.status, c.replayed) for c in server.calls] == [(500, False), (200, False)]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, stripe.RateLimitError),
        (402, stripe.CardError),
        (409, stripe.APIError),
        (401, stripe.AuthenticationError),
        (503, stripe.APIError),
    ],
)
async def test_injected_statuses_raise_sdk_errors(client, server, status, error) -> None:
    server.fail_next(status=status)
    with pytest.raises(error):
        await client.v1.customers.create_async({})


async def test_delayed_request_still_applies(server) -> None:
    async with sdk(server, http_timeout=0.3) as impatient:
        server.delay_next(1, seconds=1.0)
        with pytest.raises(stripe.APIConnectionError):
            await impatient.v1.customers.create_async({"email": "a@b.c"}, {"idempotency_key": "d"})
        for _ in range(100):
            if server.customers():
                break
            await asyncio.sleep(0.02)
        [created] = server.customers()
        retried = await impatient.v1.customers.create_async(
            {"email": "a@b.c"}, {"idempotency_key": "d"}
        )
        assert retried.id == created["id"] and len(server.customers()) == 1
        assert retried.last_response.headers["Idempotent-Replayed"] == "true"


async def test_bad_key_unknown_url_and_unknown_param(server, client) -> None:
    async with sdk(server, key="sk_test_wrong") as wrong:
        with pytest.raises(stripe.AuthenticationError):
            await wrong.v1.customers.create_async({})
    with pytest.raises(stripe.InvalidRequestError, match="Unrecognized request URL"):
        await client.v1.products.create_async({"name": "x"})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.customers.create_async({"emial": "a@b.c"})
    assert unknown.value.param == "emial" and unknown.value.code == "parameter_unknown"


async def test_set_subscription_events(client, server) -> None:
    _, _, sub, _ = await subscribed(client, server)
    past_due = server.set_subscription(sub["id"], status="past_due")
    assert past_due["type"] == "customer.subscription.updated"
    assert past_due["data"]["previous_attributes"] == {"status": "active"}
    canceled = server.set_subscription(sub["id"], status="canceled")
    assert canceled["type"] == "customer.subscription.deleted"
    assert canceled["data"]["object"]["canceled_at"] and past_due["created"] < canceled["created"]
    assert (await client.v1.subscriptions.retrieve_async(sub["id"])).status == "canceled"


def test_signature_verified_by_sdk(server) -> None:
    event = server.make_event("invoice.paid", {"id": "in_1", "object": "invoice"}, account="acct_1")
    payload = event_payload(event)
    header = sign(payload, SECRET)
    verified = stripe.Webhook.construct_event(payload, header, SECRET)
    assert verified.id == event["id"] and verified.account == "acct_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(
            payload, sign(payload, SECRET, int(time.time()) - 600), SECRET
        )


def webhook_app(received: list[str]):
    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        try:
            event = stripe.Webhook.construct_event(
                body, headers[b"stripe-signature"].decode(), SECRET
            )
            received.append(f"{scope['path']} {event.type}")
            status = 200
        except stripe.SignatureVerificationError:
            status = 400
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def test_delivery_helpers(server) -> None:
    received: list[str] = []
    transport = httpx.ASGITransport(app=webhook_app(received))
    first = server.make_event("a.one", {"id": "x"})
    second = server.make_event("a.two", {"id": "y"})
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as app:
        twice = await deliver_twice(app, first, secret=SECRET)
        ordered = await deliver_in_order(app, [second, first], secret=SECRET, path="/hook")
        late = await deliver_late(app, first, 3600, secret=SECRET)
        forged = await deliver(app, first, secret=SECRET, signature="t=1,v1=00")
    assert [r.status_code for r in [*twice, *ordered, late, forged]] == [200] * 4 + [400, 400]
    assert received == [
        "/v1/billing/stripe/webhook a.one",
        "/v1/billing/stripe/webhook a.one",
        "/hook a.two",
        "/hook a.one",
    ]


def test_reset_keeps_port(server) -> None:
    url = server.url
    server.add_account("acct_x")
    server.fail_next(3)
    server.reset()
    assert server.url == url
    response = httpx.get(f"{url}/v1/accounts/acct_x", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing"
