"""The agency a page speaks for: its name, and its logo at the address e-mails show."""

from __future__ import annotations

import uuid

import httpx

from tests.support.factories import new_agency
from tests.support.images import image_bytes
from web.agency import Agency, agency_of


async def test_a_page_shows_the_agencys_name_and_its_logo_once_set(client, db, settings):
    agency = await new_agency(client)
    name = (await client.get("/v1/me", headers=agency.owner.headers)).json()["tenant"]["name"]
    async with db.tenant_transaction(agency.tenant_id) as session:
        assert await agency_of(session, agency.tenant_id, settings=settings) == Agency(name)

    logo = image_bytes(color="teal")
    response = await client.put(
        "/v1/agency/logo",
        content=logo,
        headers={**agency.owner.headers, "content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    async with db.tenant_transaction(agency.tenant_id) as session:
        shown = await agency_of(session, agency.tenant_id, settings=settings)
    assert shown == Agency(name, response.json()["logo_url"])
    assert shown.logo_url is not None
    assert shown.logo_url.startswith(settings.public_base_url.rstrip("/") + "/agency-logos/")
    served = await client.get(httpx.URL(shown.logo_url).path)
    assert served.status_code == 200 and served.content == logo


async def test_an_unknown_agency_is_passerelle_without_a_logo(db, settings):
    tenant_id = uuid.uuid4()
    async with db.tenant_transaction(tenant_id) as session:
        assert await agency_of(session, tenant_id, settings=settings) == Agency("Passerelle")
