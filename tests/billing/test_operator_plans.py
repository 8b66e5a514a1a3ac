"""Plans without Stripe: DEFAULT_PLAN for new agencies, `passerelle plans set` for the
operator, and a demo agency with every feature."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from asgi_lifespan import LifespanManager
from sqlmodel import select
from typer.testing import CliRunner, Result

from api.app import create_app
from infra.plans import Feature
from main.cli import app as cli
from tenants.models import Tenant
from tests.support.factories import Agency, Person, login, new_agency
from tests.support.partners import create_partner_app, request_token


async def passerelle(*args: str) -> Result:
    """The CLI as an operator runs it (its own event loop, hence a thread)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def token_status(client: httpx.AsyncClient, agency) -> int:
    app = await create_partner_app(client, agency, ["brands:read"])
    return (await request_token(client, app.client_id, app.client_secret)).status_code


async def plan_of(db, agency) -> str:
    async with db.tenant_transaction(agency.tenant_id) as session:
        query = select(Tenant.plan_id).where(Tenant.id == agency.tenant_id)
        return (await session.scalars(query)).one()


async def test_default_plan_is_the_plan_of_a_new_agency(settings, client):
    # This install's DEFAULT_PLAN is the catalogue's default (starter): no public API.
    assert await token_status(client, await new_agency(client)) == 400

    application = create_app(settings.model_copy(update={"default_plan": "agency"}))
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.8", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            agency = await new_agency(other)
            assert await token_status(other, agency) == 200
            billing = await other.get("/v1/billing/subscription", headers=agency.owner.headers)
    assert billing.status_code == 200, billing.text
    assert billing.json()["plan"]["id"] == "agency"


async def test_plans_set_changes_what_the_agency_can_do(client, db):
    agency = await new_agency(client)
    assert await token_status(client, agency) == 400

    result = await passerelle("plans", "set", agency.slug, "agency")
    assert result.exit_code == 0, result.output
    assert f"{agency.slug}: plan starter -> agency" in result.output
    assert await token_status(client, agency) == 200

    audit = await client.get(
        "/v1/audit-events", params={"subject_type": "tenant"}, headers=agency.owner.headers
    )
    set_by_operator = [e for e in audit.json()["items"] if e["action"] == "plan.set"]
    assert len(set_by_operator) == 1, audit.text
    assert set_by_operator[0]["actor_type"] == "operator"
    assert set_by_operator[0]["changes"] == {"plan_id": ["starter", "agency"]}

    result = await passerelle("plans", "set", agency.slug, "growth")
    assert result.exit_code == 0, result.output
    assert await token_status(client, agency) == 400

    again = await passerelle("plans", "set", agency.slug, "growth")
    assert again.exit_code == 0
    assert "already on growth" in again.output


async def test_plans_set_refuses_an_unknown_agency_or_plan(client, db):
    agency = await new_agency(client)

    unknown_plan = await passerelle("plans", "set", agency.slug, "platinum")
    assert unknown_plan.exit_code == 1
    assert "No plan 'platinum'" in unknown_plan.output
    assert "agency, growth, starter" in unknown_plan.output
    assert await plan_of(db, agency) == "starter"

    unknown_agency = await passerelle("plans", "set", "nobody-has-this-slug", "agency")
    assert unknown_agency.exit_code == 1
    assert "No agency has the address 'nobody-has-this-slug'" in unknown_agency.output
    assert "Traceback" not in unknown_agency.output


async def test_the_demo_agency_has_every_feature(client, settings):
    from tenants.demo import DEMO_SLUG, load_demo

    await load_demo(settings)
    # An operator's change, or a demo loaded before this rule: the next load restores it.
    assert (await passerelle("plans", "set", DEMO_SLUG, "starter")).exit_code == 0
    logins = await load_demo(settings)

    email, password = next((e, p) for role, e, p in logins if role == "owner")
    tokens = await login(client, email, password, tenant=DEMO_SLUG)
    owner = Agency(
        tenant_id=uuid.UUID(tokens["tenant"]["id"]),
        slug=DEMO_SLUG,
        owner=Person(
            user_id=uuid.uuid4(),
            email=email,
            role="owner",
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        ),
    )
    billing = await client.get("/v1/billing/subscription", headers=owner.owner.headers)
    assert set(billing.json()["plan"]["features"]) == {f.value for f in Feature}
    assert await token_status(client, owner) == 200
