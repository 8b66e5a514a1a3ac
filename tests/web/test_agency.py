"""The agency a page speaks for: its name, and its logo at the address e-mails show."""

from __future__ import annotations

import uuid

import httpx

from devtools.smtp import text_of
from tests.support.factories import PASSWORD, Person, World, new_agency
from tests.support.images import image_bytes
from tests.support.portal import portal_contact
from tests.support.worker import deliver_events
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


# ---------------------------------------------------------------------------------------------
# The portal: its pages and its sign-in e-mail


async def _portal_contact(client, db, resources) -> tuple[World, Person]:
    return await portal_contact(client, db, resources.passwords, customer={"locale": "en"})


def _browser(app) -> httpx.AsyncClient:
    host = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    transport = httpx.ASGITransport(app=app.state.asgi, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _post(browser: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    if "passerelle_csrf" not in browser.cookies:
        await browser.get("/portal/sign-in")
    return await browser.post(path, data={"csrf": browser.cookies["passerelle_csrf"], **fields})


async def _set_logo(client, world: World) -> str:
    response = await client.put(
        "/v1/agency/logo",
        content=image_bytes(),
        headers={**world.boss, "content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["logo_url"])


async def test_portal_pages_show_the_agencys_logo(app, client, db, resources):
    world, contact = await _portal_contact(client, db, resources)
    logo_url = await _set_logo(client, world)
    async with _browser(app) as browser:
        signed_in = await _post(browser, "/portal/sign-in", email=contact.email, password=PASSWORD)
        assert signed_in.status_code == 303, signed_in.text
        page = await browser.get("/portal")
    assert page.status_code == 200, page.text
    assert f'<img class="logo" src="{logo_url}"' in page.text


async def test_the_sign_in_mail_shows_the_logo_and_leads_to_the_agencys_own_app(
    app, client, db, resources, settings, mailbox
):
    world, contact = await _portal_contact(client, db, resources)
    logo_url = await _set_logo(client, world)
    async with _browser(app) as browser:
        asked = await _post(browser, "/portal/sign-in/link", email=contact.email)
        assert asked.status_code == 200, asked.text
        await deliver_events(resources, settings, world.tenant_id)
        [first] = await mailbox.wait_for(contact.email)
        assert f"{settings.public_base_url}/portal/sign-in/link/" in text_of(first)
        markup = first.get_body(preferencelist=("html",))
        assert markup is not None and f'<img src="{logo_url}"' in str(markup.get_content())

        own = "https://portail.agence.example"
        response = await client.patch(
            "/v1/agency/branding", json={"app_base_url": own}, headers=world.boss
        )
        assert response.status_code == 200, response.text
        again = await _post(browser, "/portal/sign-in/link", email=contact.email)
        assert again.status_code == 200, again.text
        await deliver_events(resources, settings, world.tenant_id)
        [_, second] = await mailbox.wait_for(contact.email, count=2)
    assert f"{own}/portal/sign-in/link/" in text_of(second)
