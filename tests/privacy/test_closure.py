"""The end of an agency's contract: every tenant row goes, invoices stay archived, platform
tokens and the Stripe subscription end, the other agency keeps everything."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
from sqlalchemy import text

from billing.invoices.models import Invoice, InvoiceLine
from privacy.models import RETAINED_AFTER_CLOSURE
from social.kit import kit_of
from social.models import SocialAccount
from tests.billing.test_billing_subscriptions import subscribe
from tests.support.factories import PASSWORD, add_person, new_world
from tests.support.problems import assert_problem
from tests.support.worker import run_worker


async def tenant_table_names(db) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT table_name FROM information_schema.columns WHERE column_name = "
                "'tenant_id' AND table_schema = 'public' ORDER BY table_name"
            )
        )
        return [name for (name,) in rows]


async def counts(db, tenant_id: uuid.UUID) -> dict[str, int]:
    found = {}
    async with db.tenant_transaction(tenant_id) as session:
        for name in await tenant_table_names(db):
            found[name] = await session.scalar(
                text(f"SELECT count(*) FROM {name} WHERE tenant_id = :t"),
                {"t": tenant_id},
            )
    return found


async def seed(db, world) -> None:
    """An issued invoice with a line, and a connected account holding tokens."""
    tenant_id = world.agency.tenant_id
    async with db.tenant_transaction(tenant_id) as session:
        invoice = Invoice(
            tenant_id=tenant_id,
            client_id=uuid.UUID(world.customer["id"]),
            month=date(2026, 10, 1),
            number="F-0001",
            status="finalized",
            currency="CAD",
            locale="fr-CA",
            subtotal_minor=12_000,
        )
        session.add(invoice)
        await session.flush()
        session.add(
            InvoiceLine(
                tenant_id=tenant_id,
                invoice_id=invoice.id,
                position=1,
                kind="retainer_fee",
                description="Forfait octobre",
                amount_minor=12_000,
            )
        )
        session.add(
            SocialAccount(
                tenant_id=tenant_id,
                brand_id=uuid.UUID(world.brands["brand"]["id"]),
                platform="sandbox",
                external_id=f"acct-{uuid.uuid4().hex[:8]}",
                access_token=b"sealed-access",
                refresh_token=b"sealed-refresh",
            )
        )


async def x_account(db, resources, platforms, world) -> str:
    """An X account connected with a token the simulator issued; answers that token."""
    external_id = platforms.add_account("x")
    token = platforms.issue_token("x", external_id)
    vault = kit_of(resources).vault
    async with db.tenant_transaction(world.agency.tenant_id) as session:
        session.add(
            SocialAccount(
                tenant_id=world.agency.tenant_id,
                brand_id=uuid.UUID(world.brands["brand"]["id"]),
                platform="x",
                external_id=external_id,
                access_token=vault.encrypt(token["access_token"]),
                refresh_token=vault.encrypt(token.get("refresh_token")),
            )
        )
    return str(token["access_token"])


async def token_works(settings, token: str) -> bool:
    async with httpx.AsyncClient(base_url=settings.social_base_urls["x"]) as http:
        response = await http.get("/2/users/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code == 200


async def test_closure_deletes_every_tenant_row_and_keeps_invoices(
    client, db, resources, settings, stripe_server, platforms
):
    closing, other = await new_world(client), await new_world(client)
    for world in (closing, other):
        await seed(db, world)
    closing_token = await x_account(db, resources, platforms, closing)
    other_token = await x_account(db, resources, platforms, other)
    assert await token_works(settings, closing_token)
    sub = await subscribe(client, settings, stripe_server, closing.agency)
    member = await add_person(client, db, resources.passwords, closing.agency, "admin")
    before_other = await counts(db, other.agency.tenant_id)
    owner = closing.agency.owner.headers

    refused = await client.post(
        "/v1/agency/closure", json={"confirm": "not-the-slug"}, headers=owner
    )
    assert_problem(refused, 422)
    by_admin = await client.post(
        "/v1/agency/closure", json={"confirm": closing.agency.slug}, headers=member.headers
    )
    assert by_admin.status_code == 403, by_admin.text

    asked = await client.post(
        "/v1/agency/closure", json={"confirm": closing.agency.slug}, headers=owner
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["step"] == "requested"
    again = await client.post(
        "/v1/agency/closure", json={"confirm": closing.agency.slug}, headers=owner
    )
    assert again.json()["id"] == asked.json()["id"]

    # A finished export of the agency, on disk: it goes with the rest.
    exports = settings.export_dir / str(closing.agency.tenant_id)
    exports.mkdir(parents=True, exist_ok=True)
    (exports / "an-export.zip").write_bytes(b"PK")

    await run_worker(settings)

    assert not exports.exists()
    after = await counts(db, closing.agency.tenant_id)
    left = {name: n for name, n in after.items() if n and name not in RETAINED_AFTER_CLOSURE}
    assert left == {}
    assert after["invoice_archives"] == 1
    assert after["agency_closures"] == 1
    assert await counts(db, other.agency.tenant_id) == before_other

    async with db.tenant_transaction(closing.agency.tenant_id) as session:
        archive = (await session.execute(text("SELECT * FROM invoice_archives"))).one()
        status = await session.scalar(
            text("SELECT status FROM tenants WHERE id = :t"), {"t": closing.agency.tenant_id}
        )
        closure = (await session.execute(text("SELECT * FROM agency_closures"))).one()
    assert archive.number == "F-0001"
    assert archive.client_name == closing.customer["name"]
    assert archive.document["lines"][0]["description"] == "Forfait octobre"
    assert archive.keep_until.year == archive.created_at.year + settings.invoice_retention_years
    assert status == "closed"
    assert closure.step == "closed"
    assert closure.revoked_accounts == 2
    # The platform itself revoked the agency's token (X has a revocation endpoint).
    assert not await token_works(settings, closing_token)
    assert await token_works(settings, other_token)
    assert closure.archived_invoices == 1

    assert stripe_server.subscription(sub["id"])["status"] == "canceled"
    assert len(stripe_server.calls_to("DELETE", f"/v1/subscriptions/{sub['id']}")) == 1

    # Nobody signs in any more; the owner's tokens are dead.
    login = await client.post(
        "/v1/auth/login", json={"email": closing.agency.owner.email, "password": PASSWORD}
    )
    assert login.status_code in (401, 403), login.text
    assert (await client.get("/v1/me", headers=owner)).status_code == 401
    # The other agency works as before.
    assert (await client.get("/v1/me", headers=other.agency.owner.headers)).status_code == 200
