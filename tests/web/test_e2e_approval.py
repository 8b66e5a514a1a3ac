"""Approvals taken as people take them: the agency submits a post, the worker e-mails the client,
the client follows the e-mail's link in Debian's Chromium, reads the post and decides, and the
agency sees the item's new state through the API.

An external approver (no account) once on a desktop in English (the agency's logo in the
masthead; approve, with a double click), once on a phone in French (request changes: first
without the comment it requires, then with one holding HTML, shown as typed). A client contact
with an account on a phone: the e-mail's link asks them to sign in, then brings them to the
post; they approve and find it in their history.
axe-core checks every page shown; the screenshots are listed at the end of the run."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.async_api import Page, expect

from devtools.smtp import Mailbox, text_of
from tests.support.browser import assert_accessible, screenshot
from tests.support.factories import PASSWORD, Agency, new_world, unique
from tests.support.images import image_bytes
from tests.support.portal import portal_contact
from tests.support.worker import deliver_events

LINK = re.compile(r"https?://\S+/approve/[A-Za-z0-9_\-.]+")
PORTAL_LINK = re.compile(r"https?://\S+/portal/content/[0-9a-f-]{36}")
ENGLISH_POST = ("Sourdough on Saturday", "Our sourdough baguette is in the shop Saturday morning.")
FRENCH_POST = ("Levain du samedi", "Notre baguette au levain arrive en boutique samedi matin.")
CHANGES = "Dites « farine bio », et <b>pas</b> avant 8 h."


@dataclass
class Submitted:
    agency: Agency
    item_id: str
    approver: str
    link: str

    @property
    def headers(self) -> dict[str, str]:
        return self.agency.owner.headers


async def _submitted_to_an_external_approver(
    client, resources, settings, mailbox: Mailbox, *, locale: str, post: tuple[str, str]
) -> Submitted:
    """A new agency's post for a client of that locale, submitted to one external approver,
    whose e-mail the worker delivered to the test SMTP server."""
    world = await new_world(
        client, customer={"locale": locale}, brands={"brand": {"default_language": locale[:2]}}
    )
    approver = f"{unique('approver')}@client.example"
    r = await client.post(
        "/v1/workflow-templates",
        json={
            "name": unique("Client approval"),
            "steps": [{"name": "Client", "kind": "client", "emails": [approver]}],
            "brand_ids": [world.brand["id"]],
        },
        headers=world.boss,
    )
    assert r.status_code == 201, r.text
    title, text = post
    r = await client.post(
        f"/v1/brands/{world.brand['id']}/content",
        json={"title": title, "variants": {"instagram": text}},
        headers=world.boss,
    )
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    r = await client.post(f"/v1/content/{item_id}/submit", json={}, headers=world.boss)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "awaiting_client"

    await deliver_events(resources, settings, world.agency.tenant_id)
    (message,) = await mailbox.wait_for(approver)
    links = LINK.findall(text_of(message))
    assert len(links) == 1, text_of(message)
    return Submitted(world.agency, item_id, approver, links[0])


async def _item(client, s: Submitted) -> dict:
    r = await client.get(f"/v1/content/{s.item_id}", headers=s.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _decisions(client, s: Submitted) -> list[dict]:
    r = await client.get(f"/v1/content/{s.item_id}/decisions", headers=s.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def _open_the_emails_link(
    page: Page, s: Submitted, live_server: str, post: tuple[str, str]
) -> None:
    # The link is followed exactly as the e-mail gave it: it must be this project's page.
    assert s.link.startswith(f"{live_server}/approve/"), (
        f"the e-mail's link is not this project's page at PUBLIC_BASE_URL: {s.link}"
    )
    response = await page.goto(s.link)
    assert response is not None
    assert response.status == 200
    title, text = post
    await expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    await expect(page.get_by_text(text)).to_be_visible()
    await expect(page.get_by_text(s.approver)).to_be_visible()  # whom the link answers as


async def test_an_external_approver_approves_from_the_emails_link_on_a_desktop(
    client, resources, settings, mailbox, live_server, page
) -> None:
    s = await _submitted_to_an_external_approver(
        client, resources, settings, mailbox, locale="en", post=ENGLISH_POST
    )
    r = await client.put(
        "/v1/agency/logo",
        content=image_bytes("PNG", size=(80, 80), color="teal"),
        headers={**s.headers, "content-type": "image/png"},
    )
    assert r.status_code in (200, 201), r.text
    await _open_the_emails_link(page, s, live_server, ENGLISH_POST)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    # The agency's logo, served by this project to the browser, beside the agency's name.
    logo = page.get_by_role("banner").locator("img")
    await expect(logo).to_have_attribute("src", re.compile(f"^{re.escape(live_server)}/"))
    assert await logo.evaluate("image => image.complete && image.naturalWidth") == 80
    await assert_accessible(page)
    await screenshot(page, "approval-desktop")

    # A double click, as impatient people do: one decision, and the page that thanks them.
    await page.get_by_role("button", name="Approve").dblclick()

    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Thank you, your decision was recorded"
    )
    await expect(page.get_by_role("status")).to_contain_text("Your answer: approved.")
    await assert_accessible(page)
    await screenshot(page, "approval-desktop-approved")
    assert (await _item(client, s))["status"] == "approved"
    assert [d["decision"] for d in await _decisions(client, s)] == ["approve"]

    # The link worked once: opened again (from the e-mail, days later), it says so.
    response = await page.goto(s.link)
    assert response is not None
    assert response.status == 410
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "You already answered with this link"
    )
    await assert_accessible(page)
    await screenshot(page, "approval-desktop-link-used")


async def test_an_external_approver_requests_changes_on_a_phone_in_french(
    client, resources, settings, mailbox, live_server, phone_page
) -> None:
    page = phone_page
    s = await _submitted_to_an_external_approver(
        client, resources, settings, mailbox, locale="fr-CA", post=FRENCH_POST
    )
    # The browser asks for English; the page speaks the client's language.
    await _open_the_emails_link(page, s, live_server, FRENCH_POST)
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than the phone's screen"
    await assert_accessible(page)
    await screenshot(page, "approval-phone")

    # Without a comment: the page says one is required, keeps the post, and nothing is decided.
    await page.get_by_role("button", name="Demander des modifications").tap()
    await expect(page.get_by_role("alert")).to_have_text(
        "Dites ce qu'il faut changer : un commentaire est obligatoire pour demander des "
        "modifications."
    )
    comment = page.get_by_role("textbox", name="Commentaire")
    await expect(comment).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_text(FRENCH_POST[1])).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "approval-phone-comment-required")
    assert (await _item(client, s))["status"] == "awaiting_client"
    assert await _decisions(client, s) == []

    await comment.fill(CHANGES)
    await page.get_by_role("button", name="Demander des modifications").tap()

    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Merci, votre décision est enregistrée"
    )
    status = page.get_by_role("status")
    await expect(status).to_contain_text("Votre réponse : modifications demandées.")
    # The comment shows as typed: its HTML is text, not markup.
    await expect(status.locator("blockquote")).to_have_text(CHANGES)
    await expect(status.locator("blockquote b")).to_have_count(0)
    await assert_accessible(page)
    await screenshot(page, "approval-phone-changes-requested")
    assert (await _item(client, s))["status"] == "changes_requested"
    (decision,) = await _decisions(client, s)
    assert decision["decision"] == "request_changes"
    assert decision["comment"] == CHANGES


async def _fits_the_phone(page: Page) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow} px wider than the phone's screen"


async def test_a_client_contact_signs_in_from_the_emails_link_and_approves_on_a_phone(
    client, db, resources, settings, mailbox, live_server, phone_page
) -> None:
    page = phone_page
    world, contact = await portal_contact(
        client,
        db,
        resources.passwords,
        customer={"locale": "en"},
        brands={"brand": {"default_language": "en"}},
    )
    r = await client.post(
        "/v1/workflow-templates",
        json={
            "name": unique("Client approval"),
            "steps": [{"name": "Client", "kind": "client", "user_ids": [str(contact.user_id)]}],
            "brand_ids": [world.brand["id"]],
        },
        headers=world.boss,
    )
    assert r.status_code == 201, r.text
    title, text = ENGLISH_POST
    r = await client.post(
        f"/v1/brands/{world.brand['id']}/content",
        json={"title": title, "variants": {"instagram": text}},
        headers=world.boss,
    )
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    r = await client.post(f"/v1/content/{item_id}/submit", json={}, headers=world.boss)
    assert r.status_code == 200, r.text
    await deliver_events(resources, settings, world.agency.tenant_id)
    (message,) = await mailbox.wait_for(contact.email)
    links = PORTAL_LINK.findall(text_of(message))
    assert links == [f"{live_server}/portal/content/{item_id}"], text_of(message)

    # Not signed in yet: the link asks them to, then brings them to the post.
    await page.goto(links[0])
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the client portal")
    await _fits_the_phone(page)
    await assert_accessible(page)
    await screenshot(page, "portal-phone-sign-in")
    with_password = page.locator("form", has=page.get_by_role("button", name="Sign in"))
    await with_password.get_by_label("E-mail").fill(contact.email)
    await with_password.get_by_label("Password").fill(PASSWORD)
    await with_password.get_by_role("button", name="Sign in").tap()

    await expect(page).to_have_url(f"{live_server}/portal/content/{item_id}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(title)
    await expect(page.get_by_text(text)).to_be_visible()
    await _fits_the_phone(page)
    await assert_accessible(page)
    await screenshot(page, "portal-phone-post")

    await page.get_by_role("button", name="Approve").tap()
    await expect(page.get_by_role("status")).to_have_text("Your decision is recorded. Thank you.")
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await assert_accessible(page)
    await screenshot(page, "portal-phone-approved")
    r = await client.get(f"/v1/content/{item_id}", headers=world.boss)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"

    await page.get_by_role("navigation").get_by_role("link", name="History").tap()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your decisions")
    decided = page.get_by_role("listitem").filter(has_text=title)
    await expect(decided).to_contain_text("Approved")
    await _fits_the_phone(page)
    await assert_accessible(page)
    await screenshot(page, "portal-phone-history")

    await page.get_by_role("navigation").get_by_role("link", name="To decide").tap()
    await expect(page.get_by_text("Nothing awaits your decision.")).to_be_visible()
    await assert_accessible(page)
