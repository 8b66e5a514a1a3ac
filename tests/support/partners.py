"""Partner apps and their tokens, made through the API as an agency's owner would."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import update

from infra.db import Database
from tenants.models import Tenant
from tests.support.factories import Agency


@dataclass
class PartnerApp:
    id: str
    client_id: str
    client_secret: str
    scopes: list[str]
    body: dict[str, Any]


async def set_plan(db: Database, agency: Agency, plan_id: str) -> None:
    async with db.tenant_transaction(agency.tenant_id) as session:
        await session.execute(
            update(Tenant).where(Tenant.id == agency.tenant_id).values(plan_id=plan_id)
        )


async def enable_public_api(db: Database, agency: Agency) -> None:
    """The "agency" plan is the one with the public API."""
    await set_plan(db, agency, "agency")


async def create_partner_app(
    client: httpx.AsyncClient, agency: Agency, scopes: list[str], name: str = "Reporting tool"
) -> PartnerApp:
    response = await client.post(
        "/v1/partner-apps", json={"name": name, "scopes": scopes}, headers=agency.owner.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return PartnerApp(body["id"], body["client_id"], body["client_secret"], body["scopes"], body)


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def request_token(
    client: httpx.AsyncClient,
    client_id: str,
    secret: str,
    scope: str | None = None,
    *,
    as_form: bool = False,
) -> httpx.Response:
    """POST /v1/oauth/token with HTTP Basic (or, as_form, the secret in the form)."""
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    if as_form:
        form.update(client_id=client_id, client_secret=secret)
        return await client.post("/v1/oauth/token", data=form)
    return await client.post("/v1/oauth/token", data=form, headers=basic(client_id, secret))


async def partner_headers(
    client: httpx.AsyncClient, app: PartnerApp, scope: str | None = None
) -> dict[str, str]:
    response = await request_token(client, app.client_id, app.client_secret, scope)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def partner_for(
    client: httpx.AsyncClient, db: Database, agency: Agency, scopes: list[str]
) -> tuple[PartnerApp, dict[str, str]]:
    """An agency on the plan with the public API, a partner app with these scopes, and
    headers carrying a token with all of them."""
    await enable_public_api(db, agency)
    app = await create_partner_app(client, agency, scopes, name=f"app-{uuid.uuid4().hex[:6]}")
    return app, await partner_headers(client, app)
