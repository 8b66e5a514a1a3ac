"""Approval e-mails to clients and external approvers: the agency's name and logo, and links
that lead to this service's pages (PUBLIC_BASE_URL) unless the agency set an app address of its
own; links for the agency's staff keep the staff app (APP_BASE_URL)."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage

import httpx

from devtools.smtp import text_of
from tests.support.factories import Person, World, add_person, new_world, unique
from tests.support.images import image_bytes
from tests.support.worker import run_worker

OWN_APP = "https://portail.agence-soleil.example/clients"


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the e-mail has no HTML part"
    return str(part.get_content())


def hrefs(message: EmailMessage) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', html_of(message))


async def _agency(client) -> World:
    return await new_world(
        client,
        agency_name=f"Agence Soleil {unique('')}",
        customer={"locale": "fr-CA"},
        brands={"brand": {"default_language": "fr"}},
    )


async def _ask(client, db, resources, world: World) -> tuple[str, str, str, str, Person]:
    """An item submitted to a client contact (with an account), an external approver (by
    e-mail) and a manager of the agency, all on one step; their addresses."""
    contact = await add_person(
        client, db, resources.passwords, world.agency, "client", client_id=world.customer["id"]
    )
    manager = await add_person(client, db, resources.passwords, world.agency, "manager")
    outsider = f"ext-{uuid.uuid4().hex[:8]}@example.com"
    step = {
        "name": "Validation",
        "kind": "internal",
        "user_ids": [str(manager.user_id)],
    }
    client_step = {
        "name": "Client",
        "kind": "client",
        "rule": "any",
        "user_ids": [str(contact.user_id)],
        "emails": [outsider],
    }
    response = await client.post(
        "/v1/workflow-templates",
        json={
            "name": unique("Circuit"),
            "steps": [step, client_step],
            "brand_ids": [world.brand["id"]],
        },
        headers=world.boss,
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        f"/v1/brands/{world.brand['id']}/content",
        json={"title": "Soldes d'hiver", "variants": {"instagram": "Tout à -30 %"}},
        headers=world.boss,
    )
    assert response.status_code == 201, response.text
    item = response.json()
    response = await client.post(f"/v1/content/{item['id']}/submit", json={}, headers=world.boss)
    assert response.status_code == 200, response.text
    submitted = response.json()
    return item["id"], submitted["revision"]["id"], contact.email, outsider, manager


async def _to_client_step(client, manager, item_id: str, revision_id: str) -> None:
    response = await client.post(
        f"/v1/content/{item_id}/decisions",
        json={"revision_id": revision_id, "decision": "approve"},
        headers=manager.headers,
    )
    assert response.status_code == 201, response.text


async def _mails(settings, mailbox, *addresses: str) -> list[EmailMessage]:
    await run_worker(settings)
    return [(await mailbox.wait_for(address))[0] for address in addresses]


async def test_client_links_lead_to_this_services_pages_by_default(
    client, db, resources, settings, mailbox
):
    world = await _agency(client)
    item_id, revision_id, contact, outsider, manager = await _ask(client, db, resources, world)
    (to_manager,) = await _mails(settings, mailbox, manager.email)
    # Staff decide in the staff app.
    assert hrefs(to_manager) == [f"{settings.app_base_url}/content/{item_id}"]

    await _to_client_step(client, manager, item_id, revision_id)
    to_contact, to_outsider = await _mails(settings, mailbox, contact, outsider)
    pages = settings.public_base_url
    assert hrefs(to_contact) == [f"{pages}/portal/content/{item_id}"]
    [link] = hrefs(to_outsider)
    assert link.startswith(f"{pages}/approve/") and link in text_of(to_outsider)
    token = link.removeprefix(f"{pages}/approve/")
    view = await client.get(f"/v1/approval-links/{token}")
    assert view.status_code == 200, view.text
    assert view.json()["email"] == outsider


async def test_client_links_lead_to_the_agencys_own_app_when_it_set_one(
    client, db, resources, settings, mailbox
):
    world = await _agency(client)
    response = await client.patch(
        "/v1/agency/branding", json={"app_base_url": OWN_APP + "/"}, headers=world.boss
    )
    assert response.status_code == 200, response.text
    item_id, revision_id, contact, outsider, manager = await _ask(client, db, resources, world)
    (to_manager,) = await _mails(settings, mailbox, manager.email)
    assert hrefs(to_manager) == [f"{settings.app_base_url}/content/{item_id}"]

    await _to_client_step(client, manager, item_id, revision_id)
    to_contact, to_outsider = await _mails(settings, mailbox, contact, outsider)
    assert hrefs(to_contact) == [f"{OWN_APP}/portal/content/{item_id}"]
    [link] = hrefs(to_outsider)
    assert link.startswith(f"{OWN_APP}/approve/") and link in text_of(to_outsider)
    token = link.removeprefix(f"{OWN_APP}/approve/")
    assert (await client.get(f"/v1/approval-links/{token}")).status_code == 200


async def test_every_approval_mail_shows_the_agencys_name_and_logo(
    client, db, resources, settings, mailbox
):
    world = await _agency(client)
    name = (await client.get("/v1/me", headers=world.boss)).json()["tenant"]["name"]
    logo = image_bytes(color="gold")
    response = await client.put(
        "/v1/agency/logo", content=logo, headers={**world.boss, "content-type": "image/png"}
    )
    assert response.status_code == 200, response.text
    logo_url = response.json()["logo_url"]
    assert logo_url.startswith(settings.public_base_url + "/agency-logos/")

    item_id, revision_id, contact, outsider, manager = await _ask(client, db, resources, world)
    (to_manager,) = await _mails(settings, mailbox, manager.email)
    await _to_client_step(client, manager, item_id, revision_id)
    for message in [to_manager, *await _mails(settings, mailbox, contact, outsider)]:
        html = html_of(message)
        assert f'<img src="{logo_url}"' in html, html
        assert name in html and text_of(message).splitlines()[0] == name

    # The address in the e-mails serves the image, to anyone (e-mails carry no credentials).
    served = await client.get(httpx.URL(logo_url).path)
    assert served.status_code == 200 and served.content == logo


async def test_without_a_logo_the_mail_shows_the_agencys_name_alone(
    client, db, resources, settings, mailbox
):
    world = await _agency(client)
    name = (await client.get("/v1/me", headers=world.boss)).json()["tenant"]["name"]
    _, _, _, _, manager = await _ask(client, db, resources, world)
    (message,) = await _mails(settings, mailbox, manager.email)
    assert "<img" not in html_of(message)
    assert f">{name}</strong>" in html_of(message)
