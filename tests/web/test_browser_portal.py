"""The client portal's other doors and pages in Debian's Chromium, with axe-core on each: a
client contact invited by the agency accepts on a phone, in French, and lands in the portal,
then reads the month's budget and the monthly reports; another signs in with a link e-mailed
to them, on a desktop. The screenshots are listed at the end of the run."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.async_api import Page, expect

from devtools.smtp import text_of
from tests.support.browser import assert_accessible, screenshot
from tests.support.factories import PASSWORD, new_world, unique
from tests.support.partners import set_plan
from tests.support.portal import portal_contact
from tests.support.worker import deliver_events

MONTREAL = ZoneInfo("America/Montreal")
INVITATION = re.compile(r"https?://\S+/portal/invitations/[A-Za-z0-9._~-]+")
SIGN_IN_LINK = re.compile(r"https?://\S+/portal/sign-in/link/[A-Za-z0-9._~-]+")


async def _fits_the_phone(page: Page) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow} px wider than the phone's screen"


async def _shown(page: Page, heading: str, name: str) -> None:
    await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    await assert_accessible(page)
    await screenshot(page, name)


async def test_an_invited_contact_joins_on_a_phone_and_reads_budget_and_reports(
    client, db, resources, settings, mailbox, live_server, phone_page, clock
) -> None:
    page = phone_page
    clock.set(datetime(2026, 11, 20, 12, 0, tzinfo=MONTREAL))
    world = await new_world(client, customer={"locale": "fr-CA", "name": "Boulangerie Test"})
    await set_plan(db, world.agency, "agency")
    retainer = await client.post(
        "/v1/retainers",
        json={
            "client_id": world.customer["id"],
            "start_month": "2026-11",
            "monthly_minutes": 600,
            "fee_minor": 100_000,
            "overage": {"policy": "bill_at_rate", "rate_minor": 6_000},
        },
        headers=world.boss,
    )
    assert retainer.status_code == 201, retainer.text
    email = f"{unique('contact')}@client.example"
    r = await client.post(
        "/v1/invitations",
        json={"email": email, "role": "client", "client_id": world.customer["id"]},
        headers=world.boss,
    )
    assert r.status_code == 201, r.text
    await deliver_events(resources, settings, world.tenant_id)
    (message,) = await mailbox.wait_for(email)
    (link,) = INVITATION.findall(text_of(message))
    assert link.startswith(f"{live_server}/portal/invitations/"), link

    await page.goto(link)
    agency = f"Agence {world.agency.slug}"
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await _shown(page, f"Rejoindre l'espace client de {agency}", "invitation-phone")
    await _fits_the_phone(page)
    await page.get_by_label("Votre nom").fill("Léa Gagnon")
    await page.get_by_label("Choisissez un mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Accepter et ouvrir l'espace client").tap()

    await expect(page).to_have_url(f"{live_server}/portal")
    await _shown(page, "En attente de votre décision", "portal-phone-inbox-fr")

    await page.get_by_role("navigation").get_by_role("link", name="Budget").tap()
    await _shown(page, "Budget de novembre 2026", "portal-phone-budget")
    await expect(page.get_by_text("10 h").first).to_be_visible()  # 600 minutes this month
    await _fits_the_phone(page)

    await page.get_by_role("navigation").get_by_role("link", name="Rapports").tap()
    await _shown(page, "Rapports mensuels", "portal-phone-reports")
    await page.locator('a[href="/portal/reports/2026-11"]').tap()
    await _shown(page, "Rapport de novembre 2026", "portal-phone-report")
    await _fits_the_phone(page)


async def test_a_contact_signs_in_with_an_emailed_link_on_a_desktop(
    client, db, resources, settings, mailbox, live_server, page
) -> None:
    world, contact = await portal_contact(
        client, db, resources.passwords, customer={"locale": "en"}
    )
    await page.goto(f"{live_server}/portal/sign-in")
    await _shown(page, "Sign in to the client portal", "sign-in-desktop")
    with_link = page.locator("form", has=page.get_by_role("button", name="E-mail me a link"))
    await with_link.get_by_label("E-mail").fill(contact.email)
    await with_link.get_by_role("button", name="E-mail me a link").click()
    await _shown(page, "Check your e-mail", "sign-in-link-sent")

    await deliver_events(resources, settings, world.tenant_id)
    (message,) = await mailbox.wait_for(contact.email)
    (link,) = SIGN_IN_LINK.findall(text_of(message))
    assert link.startswith(f"{live_server}/portal/sign-in/link/"), link
    # Opening it (as a mail scanner would) signs nobody in: a button does.
    await page.goto(link)
    await _shown(page, f"Sign in to Agence {world.agency.slug}'s portal", "sign-in-link-page")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{live_server}/portal")
    await _shown(page, "Awaiting your decision", "portal-desktop-inbox")
    await expect(page.get_by_text("Nothing awaits your decision.")).to_be_visible()
