"""The agency's own Passerelle subscription: checkout, portal, Stripe's webhooks, standing
(past due, suspended, canceled) and seats following active staff, against the local Stripe
test server and the real worker."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
from arq import Retry
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from billing.subscription import jobs
from devtools.smtp import text_of
from devtools.stripe_server import deliver, deliver_in_order, deliver_late, deliver_twice
from infra.clock import utcnow
from tests.conftest import STRIPE_WEBHOOK_SECRET
from tests.support.factories import PASSWORD, add_person, make_client, new_agency, unique
from tests.support.problems import assert_problem
from tests.support.worker import run_worker

SECRET = STRIPE_WEBHOOK_SECRET
WEBHOOK = "/v1/billing/stripe/webhook"
INVITATION_LINK = re.compile(r"https://app\.passerelle\.test/invitations/([A-Za-z0-9._~-]+)")


# ---------------------------------------------------------------------------------------------
# Helpers


def _session_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def start_checkout(client, headers, plan: str = "starter") -> httpx.Response:
    return await client.post(
        "/v1/billing/checkout-session", json={"plan_id": plan}, headers=headers
    )


async def checkout_url(client, agency, plan: str = "starter") -> str:
    response = await start_checkout(client, agency.owner.headers, plan)
    assert response.status_code == 200, response.text
    return response.json()["url"]


async def subscribe(client, settings, stripe_server, agency, *, plan="starter", status="active"):
    """Checkout, pay it on Stripe, deliver Stripe's two events and let the worker apply them."""
    url = await checkout_url(client, agency, plan)
    sub, events = stripe_server.complete_checkout(_session_id(url), status=status)
    for event in events:
        response = await deliver(client, event, secret=SECRET)
        assert response.status_code == 200, response.text
    await run_worker(settings)
    return sub


async def stripe_changes(client, settings, stripe_server, sub_id: str, **fields) -> dict:
    """Change the subscription on Stripe, deliver its event, run the worker."""
    event = stripe_server.set_subscription(sub_id, **fields)
    response = await deliver(client, event, secret=SECRET)
    assert response.status_code == 200, response.text
    await run_worker(settings)
    return event


async def read_subscription(client, headers) -> dict:
    response = await client.get("/v1/billing/subscription", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def banner(client, headers) -> dict | None:
    response = await client.get("/v1/me", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["billing_banner"]


async def event_rows(db, event_id: str) -> list:
    async with db.session() as s:
        result = await s.execute(
            text(
                "select id, processed_at, attempts, last_error, agency_id "
                "from stripe_events where id = :i"
            ),
            {"i": event_id},
        )
        return list(result.all())


async def event_count(db, event_id: str) -> int:
    async with db.session() as s:
        result = await s.execute(
            text("select count(*) from stripe_events where id = :i"), {"i": event_id}
        )
        return int(result.scalar_one())


async def set_past_due_since(db, tenant_id, days_ago: int) -> None:
    async with db.session() as s:
        result = await s.execute(
            # The application's clock, not the database's: tests may run on another date.
            text("update tenants set past_due_since = :since where id = :t"),
            {"since": utcnow() - timedelta(days=days_ago), "t": tenant_id},
        )
        await s.commit()
    assert result.rowcount == 1


def seat_updates(stripe_server) -> list:
    """Quantity updates Stripe applied (not failed, not idempotent replays)."""
    return [
        c
        for c in stripe_server.calls_to("POST", "/v1/subscription_items")
        if c.status == 200 and not c.replayed
    ]


def seat_item(sub: dict) -> dict:
    return next(i for i in sub["items"]["data"] if i["price"]["id"] == "price_starter_seat")


async def invite_and_accept(client, settings, mailbox, headers, role: str = "member"):
    email = f"{unique('invitee')}@example.com"
    response = await client.post(
        "/v1/invitations", json={"email": email, "role": role}, headers=headers
    )
    assert response.status_code == 201, response.text
    await run_worker(settings)
    [message] = await mailbox.wait_for(email)
    token = INVITATION_LINK.search(text_of(message)).group(1)
    return await client.post(
        f"/v1/invitations/{token}/accept", json={"name": "Léa Gagnon", "password": PASSWORD}
    )


async def new_client_write(client, headers) -> httpx.Response:
    return await client.post("/v1/clients", json={"name": unique("Client")}, headers=headers)


# ---------------------------------------------------------------------------------------------
# Checkout


async def test_checkout_answers_the_stripe_page_for_the_plan(client, stripe_server):
    agency = await new_agency(client)
    url = await checkout_url(client, agency, "growth")

    assert url.startswith(f"{stripe_server.url}/pay/checkout/cs_test_")
    session = stripe_server.get(_session_id(url))
    [customer] = stripe_server.customers()
    assert session["customer"] == customer["id"]
    assert session["mode"] == "subscription"
    assert session["metadata"] == {"tenant_id": str(agency.tenant_id), "plan_id": "growth"}
    assert customer["metadata"]["tenant_id"] == str(agency.tenant_id)
    [call] = stripe_server.calls_to("POST", "/v1/checkout/sessions")
    assert [(li["price"], li["quantity"]) for li in call.params["line_items"]] == [
        ("price_growth_base", "1"),
        ("price_growth_seat", "1"),
    ]


async def test_checkout_bills_a_seat_per_active_staff_member(client, db, resources, stripe_server):
    agency = await new_agency(client)
    await add_person(client, db, resources.passwords, agency, "manager")
    await add_person(client, db, resources.passwords, agency, "member")
    await add_person(client, db, resources.passwords, agency, "client")  # contacts are free

    await checkout_url(client, agency)

    [call] = stripe_server.calls_to("POST", "/v1/checkout/sessions")
    assert call.params["line_items"][1] == {"price": "price_starter_seat", "quantity": "3"}


async def test_two_checkouts_make_one_customer_with_an_idempotency_key(client, stripe_server):
    agency = await new_agency(client)
    first = await checkout_url(client, agency)
    second = await checkout_url(client, agency)

    customers = stripe_server.calls_to("POST", "/v1/customers")
    assert len(customers) == 1
    assert customers[0].idempotency_key == f"agency-customer-{agency.tenant_id}"
    assert len(stripe_server.customers()) == 1
    assert first == second  # a double click gets the same Stripe page back


async def test_concurrent_checkouts_make_one_customer(client, stripe_server):
    agency = await new_agency(client)
    responses = await asyncio.gather(
        start_checkout(client, agency.owner.headers), start_checkout(client, agency.owner.headers)
    )
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert len(stripe_server.customers()) == 1
    sessions = {stripe_server.get(_session_id(r.json()["url"]))["customer"] for r in responses}
    assert sessions == {stripe_server.customers()[0]["id"]}


async def test_checkout_refuses_while_a_subscription_is_live(client, settings, stripe_server):
    agency = await new_agency(client)
    await subscribe(client, settings, stripe_server, agency)

    response = await start_checkout(client, agency.owner.headers, "growth")
    assert_problem(response, 409, "subscription-exists")
    assert len(stripe_server.calls_to("POST", "/v1/checkout/sessions")) == 1
    assert len(stripe_server.customers()) == 1


async def test_checkout_of_an_unknown_plan_is_422(client, stripe_server):
    agency = await new_agency(client)
    response = await start_checkout(client, agency.owner.headers, "platinum")
    assert_problem(response, 422, "unknown-plan")
    assert stripe_server.calls == []


async def test_only_owners_and_admins_manage_the_subscription(client, db, resources, stripe_server):
    agency = await new_agency(client)
    admin = await add_person(client, db, resources.passwords, agency, "admin")
    manager = await add_person(client, db, resources.passwords, agency, "manager")
    member = await add_person(client, db, resources.passwords, agency, "member")
    contact = await add_person(client, db, resources.passwords, agency, "client")

    for person in (manager, member, contact):
        assert_problem(await start_checkout(client, person.headers), 403)
        response = await client.post("/v1/billing/portal-session", headers=person.headers)
        assert_problem(response, 403)
    assert stripe_server.calls == []

    # Managers read the subscription; members and client contacts do not.
    assert (await read_subscription(client, manager.headers))["plan"]["id"] == "starter"
    for person in (member, contact):
        response = await client.get("/v1/billing/subscription", headers=person.headers)
        assert_problem(response, 403)

    response = await start_checkout(client, admin.headers)
    assert response.status_code == 200, response.text


async def test_a_new_agency_is_on_starter_without_subscription(client):
    agency = await new_agency(client)
    body = await read_subscription(client, agency.owner.headers)
    assert body["stripe_configured"] is True
    assert (body["plan"]["id"], body["status"], body["stripe_status"]) == (
        "starter",
        "active",
        None,
    )
    assert body["seats"] is None and body["current_period_end"] is None
    assert body["limits"]["staff_seats"] == {"used": 1, "limit": 5}
    assert await banner(client, agency.owner.headers) is None


# ---------------------------------------------------------------------------------------------
# Customer portal


async def test_the_portal_needs_a_checkout_first(client, stripe_server):
    agency = await new_agency(client)
    response = await client.post("/v1/billing/portal-session", headers=agency.owner.headers)
    assert_problem(response, 409, "no-billing-account")
    assert stripe_server.calls == []

    await checkout_url(client, agency)
    response = await client.post("/v1/billing/portal-session", headers=agency.owner.headers)
    assert response.status_code == 200, response.text
    assert response.json()["url"].startswith(f"{stripe_server.url}/pay/portal/bps_")
    [call] = stripe_server.calls_to("POST", "/v1/billing_portal/sessions")
    assert call.params["customer"] == stripe_server.customers()[0]["id"]


# ---------------------------------------------------------------------------------------------
# Stripe not configured


async def test_without_stripe_billing_routes_say_so_and_the_rest_works(
    client, db, settings, stripe_server
):
    from api.app import create_app

    agency = await new_agency(client)
    bare = settings.model_copy(update={"stripe_api_key": None, "stripe_webhook_secret": None})
    application = create_app(bare)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.8", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            headers = agency.owner.headers
            assert_problem(await start_checkout(other, headers), 503, "stripe-not-configured")
            response = await other.post("/v1/billing/portal-session", headers=headers)
            assert_problem(response, 503, "stripe-not-configured")

            body = await read_subscription(other, headers)
            assert body["stripe_configured"] is False
            assert (body["plan"]["id"], body["status"]) == ("starter", "active")

            event = stripe_server.make_event("customer.created", {"id": "cus_x"})
            response = await deliver(other, event, secret=SECRET)
            assert_problem(response, 503, "stripe-not-configured")

            assert (await other.get("/v1/me", headers=headers)).status_code == 200
            created = await make_client(other, headers)
            listed = await other.get("/v1/clients", headers=headers)
            assert listed.status_code == 200
            assert created["id"] in {c["id"] for c in listed.json()["items"]}
    assert stripe_server.calls == []
    assert await event_count(db, event["id"]) == 0


# ---------------------------------------------------------------------------------------------
# Webhook signatures


async def test_a_webhook_without_signature_is_refused_and_not_stored(client, db, stripe_server):
    event = stripe_server.make_event("customer.created", {"id": "cus_nobody"})
    response = await client.post(
        WEBHOOK,
        content=b'{"id": "' + event["id"].encode() + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid-stripe-signature")
    response = await deliver(client, event, secret=SECRET, signature="")
    assert_problem(response, 400, "invalid-stripe-signature")
    assert await event_count(db, event["id"]) == 0


async def test_a_webhook_signed_with_another_secret_is_refused(client, db, stripe_server):
    event = stripe_server.make_event("customer.created", {"id": "cus_nobody"})
    response = await deliver(client, event, secret="whsec_someone_else")
    assert_problem(response, 400, "invalid-stripe-signature")
    assert await event_count(db, event["id"]) == 0


async def test_a_tampered_webhook_body_is_refused(client, db, stripe_server):
    from devtools.stripe_server import event_payload, sign

    event = stripe_server.make_event("customer.created", {"id": "cus_nobody"})
    signature = sign(event_payload(event), SECRET)
    forged = dict(event, type="customer.subscription.deleted")
    response = await deliver(client, forged, secret=SECRET, signature=signature)
    assert_problem(response, 400, "invalid-stripe-signature")
    assert await event_count(db, event["id"]) == 0


async def test_a_webhook_signed_too_long_ago_is_refused(client, db, stripe_server):
    event = stripe_server.make_event("customer.created", {"id": "cus_nobody"})
    response = await deliver_late(client, event, 301, secret=SECRET)
    assert_problem(response, 400, "invalid-stripe-signature")
    response = await deliver_late(client, event, 3600, secret=SECRET)
    assert_problem(response, 400, "invalid-stripe-signature")
    assert await event_count(db, event["id"]) == 0

    # Within Stripe's five minutes it is accepted.
    response = await deliver_late(client, event, 60, secret=SECRET)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "duplicate": False}
    assert await event_count(db, event["id"]) == 1


# ---------------------------------------------------------------------------------------------
# Webhooks drive the subscription


async def test_a_paid_checkout_shows_plan_seats_and_period_end(
    client, db, resources, settings, stripe_server
):
    agency = await new_agency(client)
    await add_person(client, db, resources.passwords, agency, "member")
    url = await checkout_url(client, agency, "growth")
    sub, events = stripe_server.complete_checkout(_session_id(url))

    # Before the worker runs, nothing has changed yet.
    for event in events:
        response = await deliver(client, event, secret=SECRET)
        assert response.json() == {"received": True, "duplicate": False}
    assert (await read_subscription(client, agency.owner.headers))["stripe_status"] is None

    await run_worker(settings)

    body = await read_subscription(client, agency.owner.headers)
    assert (body["plan"]["id"], body["status"], body["stripe_status"]) == (
        "growth",
        "active",
        "active",
    )
    assert body["seats"] == {"billed": 2, "active_staff": 2, "sync": "synced", "error": None}
    period_end = max(i["current_period_end"] for i in sub["items"]["data"])
    assert _at(body["current_period_end"]) == _ts(period_end)
    assert body["grace_ends_at"] is None
    assert body["limits"]["staff_seats"] == {"used": 2, "limit": 25}
    for event in events:
        [row] = await event_rows(db, event["id"])
        assert row.processed_at is not None and row.agency_id == agency.tenant_id
    assert seat_updates(stripe_server) == []  # Stripe already bills the right count


async def test_the_same_event_twice_is_stored_and_applied_once(client, db, settings, stripe_server):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    event = stripe_server.set_subscription(sub["id"], status="past_due")

    first, second = await deliver_twice(client, event, secret=SECRET)
    assert first.json() == {"received": True, "duplicate": False}
    assert second.json() == {"received": True, "duplicate": True}
    assert await event_count(db, event["id"]) == 1
    reads_before = len(stripe_server.calls_to("GET", f"/v1/subscriptions/{sub['id']}"))

    await run_worker(settings)

    body = await read_subscription(client, agency.owner.headers)
    assert (body["status"], body["stripe_status"]) == ("past_due", "past_due")
    assert _at(body["grace_ends_at"]) == _ts(event["created"]) + timedelta(days=7)
    reads = stripe_server.calls_to("GET", f"/v1/subscriptions/{sub['id']}")
    assert len(reads) == reads_before + 1  # one job, one re-read

    third = await deliver(client, event, secret=SECRET)
    assert third.json() == {"received": True, "duplicate": True}
    await run_worker(settings)
    assert await event_count(db, event["id"]) == 1
    again = await read_subscription(client, agency.owner.headers)
    assert again["grace_ends_at"] == body["grace_ends_at"]


async def test_out_of_order_events_end_in_stripes_current_state(client, settings, stripe_server):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    went_past_due = stripe_server.set_subscription(sub["id"], status="past_due")
    recovered = stripe_server.set_subscription(sub["id"], status="active")

    responses = await deliver_in_order(client, [recovered, went_past_due], secret=SECRET)
    assert [r.status_code for r in responses] == [200, 200]
    await run_worker(settings)

    body = await read_subscription(client, agency.owner.headers)
    assert (body["status"], body["stripe_status"], body["grace_ends_at"]) == (
        "active",
        "active",
        None,
    )
    assert await banner(client, agency.owner.headers) is None


async def test_a_late_old_event_processed_alone_does_not_undo_the_current_state(
    client, settings, stripe_server
):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    went_past_due = stripe_server.set_subscription(sub["id"], status="past_due")
    recovered = stripe_server.set_subscription(sub["id"], status="active")

    await deliver(client, recovered, secret=SECRET)
    await run_worker(settings)
    await deliver(client, went_past_due, secret=SECRET)
    await run_worker(settings)

    body = await read_subscription(client, agency.owner.headers)
    assert (body["status"], body["stripe_status"]) == ("active", "active")
    assert (await new_client_write(client, agency.owner.headers)).status_code == 201
    assert await banner(client, agency.owner.headers) is None


async def test_stripe_failing_on_the_re_read_is_retried_until_applied(
    client, db, settings, stripe_server
):
    agency = await new_agency(client)
    url = await checkout_url(client, agency)
    _, events = stripe_server.complete_checkout(_session_id(url))
    for event in events:
        assert (await deliver(client, event, secret=SECRET)).status_code == 200

    stripe_server.fail_next(2)
    await run_worker(settings)

    failures = [c for c in stripe_server.calls if c.status >= 500]
    assert len(failures) == 2
    body = await read_subscription(client, agency.owner.headers)
    assert (body["status"], body["stripe_status"], body["plan"]["id"]) == (
        "active",
        "active",
        "starter",
    )
    assert body["seats"]["billed"] == 1
    rows = [row for event in events for row in await event_rows(db, event["id"])]
    assert len(rows) == 2
    assert all(row.processed_at is not None and row.last_error is None for row in rows)
    assert sum(row.attempts for row in rows) == 2


async def test_an_event_for_an_unknown_customer_changes_nobody(client, db, settings, stripe_server):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    stranger = dict(
        stripe_server.subscription(sub["id"]), customer="cus_stranger", status="canceled"
    )
    event = stripe_server.make_event("customer.subscription.deleted", stranger)

    assert (await deliver(client, event, secret=SECRET)).status_code == 200
    await run_worker(settings)

    [row] = await event_rows(db, event["id"])
    assert row.processed_at is not None and row.agency_id is None
    body = await read_subscription(client, agency.owner.headers)
    assert (body["status"], body["stripe_status"]) == ("active", "active")


# ---------------------------------------------------------------------------------------------
# Standing: past due, grace, suspension, cancellation


async def test_past_due_shows_a_banner_with_the_end_of_grace(client, settings, stripe_server):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    event = await stripe_changes(client, settings, stripe_server, sub["id"], status="past_due")

    grace_end = _ts(event["created"]) + timedelta(days=7)
    notice = await banner(client, agency.owner.headers)
    assert notice is not None
    assert (notice["status"], notice["read_only"]) == ("past_due", False)
    assert _at(notice["grace_ends_at"]) == grace_end
    assert notice["message"]
    body = await read_subscription(client, agency.owner.headers)
    assert (body["status"], _at(body["grace_ends_at"])) == ("past_due", grace_end)

    # Within the grace period everything still works.
    response = await new_client_write(client, agency.owner.headers)
    assert response.status_code == 201, response.text


async def test_unpaid_counts_as_past_due(client, settings, stripe_server):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    await stripe_changes(client, settings, stripe_server, sub["id"], status="unpaid")
    body = await read_subscription(client, agency.owner.headers)
    assert (body["status"], body["stripe_status"]) == ("past_due", "unpaid")


async def test_after_grace_writes_are_refused_until_stripe_is_paid(
    client, db, resources, settings, stripe_server
):
    agency = await new_agency(client)
    member = await add_person(client, db, resources.passwords, agency, "member")
    owner = agency.owner.headers
    existing = await make_client(client, owner)
    sub = await subscribe(client, settings, stripe_server, agency)
    await stripe_changes(client, settings, stripe_server, sub["id"], status="past_due")
    await set_past_due_since(db, agency.tenant_id, 8)

    notice = await banner(client, owner)
    assert (notice["status"], notice["read_only"], notice["grace_ends_at"]) == (
        "suspended",
        True,
        None,
    )
    assert (await read_subscription(client, owner))["status"] == "suspended"

    assert_problem(await new_client_write(client, owner), 402, "subscription-suspended")
    response = await client.patch(
        f"/v1/members/{member.user_id}", json={"role": "manager"}, headers=owner
    )
    assert_problem(response, 402, "subscription-suspended")
    listed = await client.get("/v1/clients", headers=owner)
    assert listed.status_code == 200
    assert existing["id"] in {c["id"] for c in listed.json()["items"]}
    assert (await client.get(f"/v1/clients/{existing['id']}", headers=owner)).status_code == 200
    portal = await client.post("/v1/billing/portal-session", headers=owner)
    assert portal.status_code == 200, portal.text

    # The agency pays in the portal; Stripe says active again.
    await stripe_changes(client, settings, stripe_server, sub["id"], status="active")

    assert await banner(client, owner) is None
    body = await read_subscription(client, owner)
    assert (body["status"], body["grace_ends_at"]) == ("active", None)
    response = await new_client_write(client, owner)
    assert response.status_code == 201, response.text


async def test_grace_counts_from_stripes_first_past_due_event_even_delivered_late(
    client, settings, stripe_server
):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    fell_past_due = stripe_server.set_subscription(sub["id"], status="past_due")
    still_past_due = stripe_server.set_subscription(sub["id"], metadata={"dunning": "retry-1"})
    assert fell_past_due["created"] < still_past_due["created"]

    # Stripe's retry of the first event arrives after the second was applied.
    for event in (still_past_due, fell_past_due):
        assert (await deliver(client, event, secret=SECRET)).status_code == 200
        await run_worker(settings)

    grace_end = _ts(fell_past_due["created"]) + timedelta(days=7)
    body = await read_subscription(client, agency.owner.headers)
    assert body["status"] == "past_due"
    assert _at(body["grace_ends_at"]) == grace_end
    assert _at((await banner(client, agency.owner.headers))["grace_ends_at"]) == grace_end


async def test_another_failed_payment_does_not_restart_the_grace_period(
    client, db, settings, stripe_server
):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    await stripe_changes(client, settings, stripe_server, sub["id"], status="past_due")
    await set_past_due_since(db, agency.tenant_id, 8)

    # Stripe retries the card and it fails again: still the same unpaid period.
    invoice = {"id": "in_retry", "object": "invoice", "customer": sub["customer"]}
    event = stripe_server.make_event("invoice.payment_failed", invoice)
    assert (await deliver(client, event, secret=SECRET)).status_code == 200
    await run_worker(settings)

    [row] = await event_rows(db, event["id"])
    assert row.processed_at is not None
    assert (await banner(client, agency.owner.headers))["status"] == "suspended"
    response = await new_client_write(client, agency.owner.headers)
    assert_problem(response, 402, "subscription-suspended")


async def test_six_days_past_due_is_still_within_grace(client, db, settings, stripe_server):
    agency = await new_agency(client)
    sub = await subscribe(client, settings, stripe_server, agency)
    await stripe_changes(client, settings, stripe_server, sub["id"], status="past_due")
    await set_past_due_since(db, agency.tenant_id, 6)

    assert (await banner(client, agency.owner.headers))["status"] == "past_due"
    response = await new_client_write(client, agency.owner.headers)
    assert response.status_code == 201, response.text


async def test_a_canceled_subscription_leaves_the_agency_read_only(client, settings, stripe_server):
    agency = await new_agency(client)
    owner = agency.owner.headers
    existing = await make_client(client, owner)
    sub = await subscribe(client, settings, stripe_server, agency)
    await stripe_changes(client, settings, stripe_server, sub["id"], status="canceled")

    body = await read_subscription(client, owner)
    assert (body["status"], body["stripe_status"]) == ("canceled", "canceled")
    notice = await banner(client, owner)
    assert (notice["status"], notice["read_only"]) == ("canceled", True)
    assert_problem(await new_client_write(client, owner), 402, "subscription-canceled")
    response = await client.get(f"/v1/clients/{existing['id']}", headers=owner)
    assert response.status_code == 200

    # Subscribing again is open to a canceled agency.
    response = await start_checkout(client, owner)
    assert response.status_code == 200, response.text


async def test_resubscribing_after_cancellation_restores_writes(client, settings, stripe_server):
    agency = await new_agency(client)
    owner = agency.owner.headers
    old = await subscribe(client, settings, stripe_server, agency)
    await stripe_changes(client, settings, stripe_server, old["id"], status="canceled")
    new = await subscribe(client, settings, stripe_server, agency, plan="growth")
    assert new["id"] != old["id"]

    body = await read_subscription(client, owner)
    assert (body["status"], body["plan"]["id"], body["stripe_status"]) == (
        "active",
        "growth",
        "active",
    )
    assert await banner(client, owner) is None
    assert (await new_client_write(client, owner)).status_code == 201
    assert len(stripe_server.customers()) == 1


async def test_a_late_event_of_the_old_subscription_does_not_cancel_the_new_one(
    client, settings, stripe_server
):
    agency = await new_agency(client)
    owner = agency.owner.headers
    old = await subscribe(client, settings, stripe_server, agency)
    await stripe_changes(client, settings, stripe_server, old["id"], status="canceled")
    await subscribe(client, settings, stripe_server, agency, plan="growth")

    late = stripe_server.make_event(
        "customer.subscription.updated", stripe_server.subscription(old["id"])
    )
    assert (await deliver(client, late, secret=SECRET)).status_code == 200
    await run_worker(settings)

    body = await read_subscription(client, owner)
    assert (body["status"], body["plan"]["id"], body["stripe_status"]) == (
        "active",
        "growth",
        "active",
    )
    assert (await new_client_write(client, owner)).status_code == 201


# ---------------------------------------------------------------------------------------------
# Seats follow active staff


async def test_seats_follow_joining_and_leaving_staff(client, settings, mailbox, stripe_server):
    agency = await new_agency(client)
    owner = agency.owner.headers
    sub = await subscribe(client, settings, stripe_server, agency)
    item_id = seat_item(sub)["id"]

    accepted = await invite_and_accept(client, settings, mailbox, owner)
    assert accepted.status_code == 200, accepted.text
    await run_worker(settings)

    assert seat_item(stripe_server.subscription(sub["id"]))["quantity"] == 2
    body = await read_subscription(client, owner)
    assert body["seats"] == {"billed": 2, "active_staff": 2, "sync": "synced", "error": None}

    joined = accepted.json()
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {joined['access_token']}"})
    user_id = me.json()["user"]["id"]
    response = await client.patch(
        f"/v1/members/{user_id}", json={"status": "disabled"}, headers=owner
    )
    assert response.status_code == 200, response.text
    await run_worker(settings)

    assert seat_item(stripe_server.subscription(sub["id"]))["quantity"] == 1
    body = await read_subscription(client, owner)
    assert body["seats"] == {"billed": 1, "active_staff": 1, "sync": "synced", "error": None}
    updates = seat_updates(stripe_server)
    assert [(c.path, c.params["quantity"]) for c in updates] == [
        (f"/v1/subscription_items/{item_id}", "2"),
        (f"/v1/subscription_items/{item_id}", "1"),
    ]
    assert len({c.idempotency_key for c in updates}) == 2


async def test_disabling_and_reactivating_staff_updates_seats_once_per_count(
    client, db, resources, settings, stripe_server
):
    agency = await new_agency(client)
    owner = agency.owner.headers
    people = [await add_person(client, db, resources.passwords, agency, "member") for _ in "ab"]
    sub = await subscribe(client, settings, stripe_server, agency)
    assert seat_item(sub)["quantity"] == 3

    url = f"/v1/members/{people[0].user_id}"
    assert (await client.patch(url, json={"status": "disabled"}, headers=owner)).status_code == 200
    await run_worker(settings)
    assert seat_item(stripe_server.subscription(sub["id"]))["quantity"] == 2

    # A change that does not touch the seat count calls Stripe for nothing.
    other = f"/v1/members/{people[1].user_id}"
    assert (await client.patch(other, json={"role": "manager"}, headers=owner)).status_code == 200
    await run_worker(settings)

    assert (await client.patch(url, json={"status": "active"}, headers=owner)).status_code == 200
    await run_worker(settings)

    assert seat_item(stripe_server.subscription(sub["id"]))["quantity"] == 3
    assert [c.params["quantity"] for c in seat_updates(stripe_server)] == ["2", "3"]
    body = await read_subscription(client, owner)
    assert body["seats"] == {"billed": 3, "active_staff": 3, "sync": "synced", "error": None}


async def test_a_burst_of_member_changes_updates_stripe_once(
    client, db, resources, settings, stripe_server
):
    agency = await new_agency(client)
    owner = agency.owner.headers
    people = [await add_person(client, db, resources.passwords, agency, "member") for _ in "ab"]
    sub = await subscribe(client, settings, stripe_server, agency)

    for person in people:
        response = await client.patch(
            f"/v1/members/{person.user_id}", json={"status": "disabled"}, headers=owner
        )
        assert response.status_code == 200, response.text
    await run_worker(settings)

    assert seat_item(stripe_server.subscription(sub["id"]))["quantity"] == 1
    assert [c.params["quantity"] for c in seat_updates(stripe_server)] == ["1"]
    body = await read_subscription(client, owner)
    assert body["seats"] == {"billed": 1, "active_staff": 1, "sync": "synced", "error": None}


async def test_client_contacts_take_no_seat(client, db, resources, settings, stripe_server):
    agency = await new_agency(client)
    owner = agency.owner.headers
    contact = await add_person(client, db, resources.passwords, agency, "client")
    sub = await subscribe(client, settings, stripe_server, agency)

    response = await client.patch(
        f"/v1/members/{contact.user_id}", json={"status": "disabled"}, headers=owner
    )
    assert response.status_code == 200, response.text
    await run_worker(settings)

    assert seat_updates(stripe_server) == []
    assert seat_item(stripe_server.subscription(sub["id"]))["quantity"] == 1
    body = await read_subscription(client, owner)
    assert body["seats"] == {"billed": 1, "active_staff": 1, "sync": "synced", "error": None}


async def test_stripe_failing_during_seat_sync_is_retried_with_one_key(
    client, db, resources, settings, stripe_server
):
    agency = await new_agency(client)
    owner = agency.owner.headers
    member = await add_person(client, db, resources.passwords, agency, "member")
    sub = await subscribe(client, settings, stripe_server, agency)
    item_id = seat_item(sub)["id"]

    response = await client.patch(
        f"/v1/members/{member.user_id}", json={"status": "disabled"}, headers=owner
    )
    assert response.status_code == 200, response.text
    stripe_server.fail_next(2, 503)
    await run_worker(settings)

    calls = stripe_server.calls_to("POST", f"/v1/subscription_items/{item_id}")
    assert [c.status for c in calls] == [503, 503, 200]
    assert len({c.idempotency_key for c in calls}) == 1
    assert [c.params["quantity"] for c in seat_updates(stripe_server)] == ["1"]
    assert seat_item(stripe_server.subscription(sub["id"]))["quantity"] == 1
    quantity_changes = [
        e
        for e in stripe_server.events("customer.subscription.updated")
        if "items" in e["data"].get("previous_attributes", {})
    ]
    assert len(quantity_changes) == 1
    body = await read_subscription(client, owner)
    assert body["seats"] == {"billed": 1, "active_staff": 1, "sync": "synced", "error": None}


async def test_a_failed_seat_sync_shows_pending_with_the_error_until_a_retry_succeeds(
    client, db, resources, settings, stripe_server
):
    agency = await new_agency(client)
    owner = agency.owner.headers
    member = await add_person(client, db, resources.passwords, agency, "member")
    sub = await subscribe(client, settings, stripe_server, agency)

    response = await client.patch(
        f"/v1/members/{member.user_id}", json={"status": "disabled"}, headers=owner
    )
    assert response.status_code == 200, response.text

    # One try of the real job, while Stripe answers 500.
    stripe_server.fail_next(1, 500)
    ctx = {"db": db, "settings": settings, "redis": resources.redis, "job_try": 1}
    try:
        await jobs.sync_seats(ctx, str(agency.tenant_id))
    except Retry:
        pass
    else:
        raise AssertionError("a 5xx from Stripe must make the job retry")

    body = await read_subscription(client, owner)
    assert (body["seats"]["billed"], body["seats"]["active_staff"]) == (2, 1)
    assert body["seats"]["sync"] == "pending"
    assert body["seats"]["error"]
    assert "sk_test" not in body["seats"]["error"]
    assert seat_item(stripe_server.subscription(sub["id"]))["quantity"] == 2

    await run_worker(settings)

    body = await read_subscription(client, owner)
    assert body["seats"] == {"billed": 1, "active_staff": 1, "sync": "synced", "error": None}
    calls = stripe_server.calls_to("POST", "/v1/subscription_items")
    assert len({c.idempotency_key for c in calls}) == 1
    assert [c.params["quantity"] for c in seat_updates(stripe_server)] == ["1"]


async def test_a_canceled_subscription_gets_no_seat_updates(
    client, db, resources, settings, stripe_server
):
    agency = await new_agency(client)
    member = await add_person(client, db, resources.passwords, agency, "member")
    sub = await subscribe(client, settings, stripe_server, agency)
    await stripe_changes(client, settings, stripe_server, sub["id"], status="canceled")

    # A canceled agency is read-only: its staff cannot change, and Stripe is not called.
    response = await client.patch(
        f"/v1/members/{member.user_id}",
        json={"status": "disabled"},
        headers=agency.owner.headers,
    )
    assert_problem(response, 402, "subscription-canceled")
    await run_worker(settings)
    assert seat_updates(stripe_server) == []


# ---------------------------------------------------------------------------------------------
# The staff seat limit


async def test_the_sixth_staff_member_hits_the_plan_limit(client, db, resources, settings, mailbox):
    agency = await new_agency(client)
    owner = agency.owner.headers
    members = [await add_person(client, db, resources.passwords, agency, "member") for _ in "abcd"]

    response = await client.post(
        "/v1/invitations",
        json={"email": f"{unique('sixth')}@example.com", "role": "member"},
        headers=owner,
    )
    body = assert_problem(response, 409, "plan-limit")
    assert body["limit"] == {"name": "max_staff_seats", "value": 5, "in_use": 5}

    # Freeing a seat allows an invitation; taking it back blocks the acceptance.
    url = f"/v1/members/{members[0].user_id}"
    assert (await client.patch(url, json={"status": "disabled"}, headers=owner)).status_code == 200
    await run_worker(settings)
    email = f"{unique('sixth')}@example.com"
    response = await client.post(
        "/v1/invitations", json={"email": email, "role": "member"}, headers=owner
    )
    assert response.status_code == 201, response.text
    await run_worker(settings)
    [message] = await mailbox.wait_for(email)
    token = INVITATION_LINK.search(text_of(message)).group(1)
    assert (await client.patch(url, json={"status": "active"}, headers=owner)).status_code == 200

    response = await client.post(
        f"/v1/invitations/{token}/accept", json={"name": "Sixth", "password": PASSWORD}
    )
    assert_problem(response, 409, "plan-limit")
    assert (await read_subscription(client, owner))["limits"]["staff_seats"] == {
        "used": 5,
        "limit": 5,
    }
    listed = await client.get("/v1/members", params={"limit": 200}, headers=owner)
    statuses = {m["email"]: m["status"] for m in listed.json()["items"]}
    assert statuses[email] == "invited"


async def test_client_contacts_can_be_invited_when_staff_seats_are_full(client, db, resources):
    agency = await new_agency(client)
    owner = agency.owner.headers
    for _ in "abcd":
        await add_person(client, db, resources.passwords, agency, "member")
    acme = await make_client(client, owner)

    response = await client.post(
        "/v1/invitations",
        json={
            "email": f"{unique('contact')}@example.com",
            "role": "client",
            "client_id": acme["id"],
        },
        headers=owner,
    )
    assert response.status_code == 201, response.text


async def test_a_bigger_plan_from_stripe_lifts_the_staff_seat_limit(
    client, db, resources, settings, stripe_server
):
    agency = await new_agency(client)
    owner = agency.owner.headers
    for _ in "abcd":
        await add_person(client, db, resources.passwords, agency, "member")
    sixth = {"email": f"{unique('sixth')}@example.com", "role": "member"}
    assert_problem(await client.post("/v1/invitations", json=sixth, headers=owner), 409)

    await subscribe(client, settings, stripe_server, agency, plan="growth")

    response = await client.post("/v1/invitations", json=sixth, headers=owner)
    assert response.status_code == 201, response.text
    body = await read_subscription(client, owner)
    assert body["limits"]["staff_seats"] == {"used": 5, "limit": 25}
    assert body["seats"]["billed"] == 5


async def test_reactivating_a_sixth_staff_member_hits_the_plan_limit(client, db, resources):
    agency = await new_agency(client)
    owner = agency.owner.headers
    members = [await add_person(client, db, resources.passwords, agency, "member") for _ in "abcd"]
    url = f"/v1/members/{members[0].user_id}"
    assert (await client.patch(url, json={"status": "disabled"}, headers=owner)).status_code == 200
    await add_person(client, db, resources.passwords, agency, "manager")  # takes the free seat

    response = await client.patch(url, json={"status": "active"}, headers=owner)
    assert_problem(response, 409, "plan-limit")
    member = (await client.get(url, headers=owner)).json()
    assert member["status"] == "disabled"


async def test_a_promoted_client_contact_needs_a_free_seat(client, db, resources):
    agency = await new_agency(client)
    owner = agency.owner.headers
    for _ in "abcd":
        await add_person(client, db, resources.passwords, agency, "member")
    contact = await add_person(client, db, resources.passwords, agency, "client")

    response = await client.patch(
        f"/v1/members/{contact.user_id}", json={"role": "member"}, headers=owner
    )
    assert_problem(response, 409, "plan-limit")


# ---------------------------------------------------------------------------------------------
# Agencies are isolated


async def test_one_agencys_webhooks_never_show_in_another(client, settings, stripe_server):
    first = await new_agency(client)
    second = await new_agency(client)
    bystander = await new_agency(client)
    first_sub = await subscribe(client, settings, stripe_server, first, plan="growth")
    await subscribe(client, settings, stripe_server, second)
    await stripe_changes(client, settings, stripe_server, first_sub["id"], status="past_due")

    one = await read_subscription(client, first.owner.headers)
    two = await read_subscription(client, second.owner.headers)
    three = await read_subscription(client, bystander.owner.headers)
    assert (one["status"], one["plan"]["id"], one["stripe_status"]) == (
        "past_due",
        "growth",
        "past_due",
    )
    assert (two["status"], two["plan"]["id"], two["stripe_status"]) == (
        "active",
        "starter",
        "active",
    )
    assert two["grace_ends_at"] is None
    assert (three["status"], three["plan"]["id"], three["stripe_status"], three["seats"]) == (
        "active",
        "starter",
        None,
        None,
    )
    assert three["current_period_end"] is None
    assert await banner(client, second.owner.headers) is None
    assert await banner(client, bystander.owner.headers) is None
    assert (await banner(client, first.owner.headers))["status"] == "past_due"
