"""The client portal, as a contact's browser sees it: signing in (password or e-mailed link)
and out, the inbox, the decision page, the history, the budget and the reports."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import update

from devtools.smtp import text_of
from tenants.models import AuthSession, Membership
from tests.support.factories import PASSWORD, Person, World, add_person
from tests.support.portal import open_browser, portal_contact, post
from tests.support.worker import deliver_events

MONTREAL = ZoneInfo("America/Montreal")

# ---------------------------------------------------------------------------------------------
# Helpers


async def sign_in(
    browser: httpx.AsyncClient, email: str, password: str = PASSWORD, **fields: str
) -> httpx.Response:
    return await post(browser, "/portal/sign-in", email=email, password=password, **fields)


async def portal_world(client, db, resources, *, locale: str = "en", plan: str = "agency"):
    """An agency on a plan with the portal, a client (of `locale`), its brand, a contact."""
    return await portal_contact(
        client,
        db,
        resources.passwords,
        plan=plan,
        customer={"locale": locale, "name": "Acme Inc."},
        brands={"brand": {"name": "Acme Coffee", "timezone": "America/Montreal"}},
    )


async def awaiting(client, world: World, contact: Person, brand: dict | None = None, **fields):
    """An item sent to the contact for their decision."""
    brand = brand or world.brand
    response = await client.post(
        "/v1/workflow-templates",
        json={
            "name": f"Client {uuid.uuid4().hex[:6]}",
            "steps": [
                {
                    "name": "Client",
                    "kind": "client",
                    "rule": "any",
                    "user_ids": [str(contact.user_id)],
                    "emails": [],
                }
            ],
            "brand_ids": [brand["id"]],
        },
        headers=world.boss,
    )
    assert response.status_code == 201, response.text
    body = {"title": "Spring launch", "variants": {"instagram": "Hello spring"}, **fields}
    draft = await client.post(f"/v1/brands/{brand['id']}/content", json=body, headers=world.boss)
    assert draft.status_code == 201, draft.text
    item_id = draft.json()["id"]
    submitted = await client.post(f"/v1/content/{item_id}/submit", json={}, headers=world.boss)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "awaiting_client"
    return submitted.json()


def is_sign_in_redirect(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith(
        "/portal/sign-in"
    )


# ---------------------------------------------------------------------------------------------
# Signing in and out


async def test_signing_in_opens_the_inbox_and_signing_out_ends_the_login(
    app, client, db, resources, browsers
) -> None:
    world, contact = await portal_world(client, db, resources)
    planned = datetime.now(MONTREAL).replace(microsecond=0) + timedelta(days=20)
    item = await awaiting(client, world, contact, planned_at=planned.isoformat())
    browser = open_browser(app, browsers)

    # Not signed in: to the sign-in page, which brings them back where they were going.
    response = await browser.get(f"/portal/content/{item['id']}")
    assert is_sign_in_redirect(response)
    assert response.headers["location"] == f"/portal/sign-in?next=/portal/content/{item['id']}"
    page = await browser.get(response.headers["location"])
    assert page.status_code == 200 and "Sign in to the client portal" in page.text
    assert f'value="/portal/content/{item["id"]}"' in page.text

    response = await sign_in(browser, contact.email, next=f"/portal/content/{item['id']}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/portal/content/{item['id']}"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("passerelle_portal=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "path=/" in cookie.lower() and "secure" not in cookie.lower()  # http here

    inbox = await browser.get("/portal")
    assert inbox.status_code == 200
    assert "Spring launch" in inbox.text and "Acme Coffee" in inbox.text
    # Signed in, the sign-in page steps aside.
    again = await browser.get("/portal/sign-in?next=/portal/history")
    assert again.status_code == 303 and again.headers["location"] == "/portal/history"
    assert f'href="/portal/content/{item["id"]}"' in inbox.text
    # The planned time, in the brand's zone, as the client reads it.
    assert f"{planned:%B} {planned.day}, {planned.year}" in inbox.text
    assert "(Montreal time)" in inbox.text

    # Signed out: the same cookie, kept by someone else, opens nothing any more.
    kept = browser.cookies["passerelle_portal"]
    response = await post(browser, "/portal/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/sign-in?signed_out=1"
    assert "passerelle_portal" not in browser.cookies
    assert is_sign_in_redirect(await browser.get("/portal"))
    elsewhere = open_browser(app, browsers)
    elsewhere.cookies.set("passerelle_portal", kept)
    assert is_sign_in_redirect(await elsewhere.get("/portal"))


async def test_a_login_revoked_elsewhere_ends_at_the_next_page(
    app, client, db, resources, browsers
) -> None:
    world, contact = await portal_world(client, db, resources)
    browser = open_browser(app, browsers)
    assert (await sign_in(browser, contact.email)).status_code == 303
    assert (await browser.get("/portal")).status_code == 200
    async with db.tenant_transaction(world.tenant_id) as session:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.user_id == contact.user_id)  # type: ignore[arg-type]
            .values(revoked_at=datetime.now(MONTREAL), revoked_reason="logout")
        )
    assert is_sign_in_redirect(await browser.get("/portal/history"))


async def test_a_contact_removed_by_the_agency_is_signed_out_at_once(
    app, client, db, resources, browsers
) -> None:
    world, contact = await portal_world(client, db, resources)
    browser = open_browser(app, browsers)
    assert (await sign_in(browser, contact.email)).status_code == 303
    assert (await browser.get("/portal")).status_code == 200
    async with db.tenant_transaction(world.tenant_id) as session:
        await session.execute(
            update(Membership)
            .where(Membership.id == contact.membership_id)  # type: ignore[arg-type]
            .values(status="disabled")
        )
    assert is_sign_in_redirect(await browser.get("/portal"))
    refused = await sign_in(open_browser(app, browsers), contact.email)
    assert refused.status_code == 401  # no active membership left: like a wrong password


async def test_a_contact_of_two_agencies_chooses_one(app, client, db, resources, browsers):
    first, contact = await portal_world(client, db, resources)
    second, _ = await portal_world(client, db, resources)
    async with db.tenant_transaction(second.tenant_id) as session:
        session.add(
            Membership(
                tenant_id=second.tenant_id,
                user_id=contact.user_id,
                role="client",
                client_id=uuid.UUID(second.customer["id"]),
            )
        )
    await awaiting(client, second, contact, title="Second agency's post")
    browser = open_browser(app, browsers)
    chooser = await sign_in(browser, contact.email)
    assert chooser.status_code == 200 and "Which agency?" in chooser.text
    assert f"Agence {first.agency.slug}" in chooser.text
    assert f"Agence {second.agency.slug}" in chooser.text
    assert PASSWORD not in chooser.text  # the choice is a short-lived signed token
    assert "passerelle_portal" not in browser.cookies
    choice = re.search(r'name="choice" value="([^"]+)"', chooser.text)
    assert choice
    chosen = await post(
        browser, "/portal/sign-in/agency", choice=choice[1], agency=str(second.tenant_id)
    )
    assert chosen.status_code == 303 and chosen.headers["location"] == "/portal"
    assert "Second agency&#39;s post" in (await browser.get("/portal")).text

    # A choice cannot open an agency where the person is no contact, nor be made up.
    stranger, _ = await portal_world(client, db, resources)
    other = open_browser(app, browsers)
    elsewhere = await post(
        other, "/portal/sign-in/agency", choice=choice[1], agency=str(stranger.tenant_id)
    )
    assert elsewhere.status_code == 403 and "passerelle_portal" not in other.cookies
    forged = await post(
        other, "/portal/sign-in/agency", choice="x.y.z", agency=str(first.tenant_id)
    )
    assert forged.status_code == 400 and "passerelle_portal" not in other.cookies


async def test_a_wrong_password_says_nothing_about_the_account_and_is_limited(
    app, client, db, resources, browsers
) -> None:
    _, contact = await portal_world(client, db, resources)
    browser = open_browser(app, browsers)
    wrong = await sign_in(browser, contact.email, "not-the-password")
    unknown = await sign_in(browser, f"nobody-{uuid.uuid4().hex}@example.com", "whatever-it-is")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "The e-mail or the password is wrong." in response.text
        assert "passerelle_portal" not in browser.cookies
    # The API's limits (shared counters): failures soon make even the right password wait.
    for _ in range(100):
        refused = await sign_in(browser, contact.email, "not-the-password")
        if refused.status_code == 429:
            break
        assert refused.status_code == 401
    refused = await sign_in(browser, contact.email)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many attempts" in refused.text
    assert "passerelle_portal" not in browser.cookies


async def test_a_staff_member_is_told_the_portal_is_for_client_contacts(
    app, client, db, resources, browsers
) -> None:
    world, _ = await portal_world(client, db, resources)
    manager = await add_person(client, db, resources.passwords, world.agency, "manager")
    browser = open_browser(app, browsers)
    response = await sign_in(browser, manager.email)
    assert response.status_code == 403
    assert "The portal is for client contacts" in response.text
    assert "passerelle_portal" not in browser.cookies


async def test_without_its_csrf_token_a_sign_in_is_refused(app, client, db, resources, browsers):
    _, contact = await portal_world(client, db, resources)
    browser = open_browser(app, browsers)
    await browser.get("/portal/sign-in")
    response = await browser.post(
        "/portal/sign-in", data={"email": contact.email, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "passerelle_portal" not in browser.cookies


async def test_next_never_leads_off_the_portal(app, client, db, resources, browsers) -> None:
    _, contact = await portal_world(client, db, resources)
    for target in ("https://evil.example/", "//evil.example/portal", "/portal/../v1", "/portalx"):
        browser = open_browser(app, browsers)
        response = await sign_in(browser, contact.email, next=target)
        assert response.status_code == 303
        assert response.headers["location"] in ("/portal", "/portal/../v1")
        assert not response.headers["location"].startswith("//")


# ---------------------------------------------------------------------------------------------
# The one-time sign-in link


async def _mailed_link(resources, settings, mailbox, world: World, contact: Person) -> str:
    await deliver_events(resources, settings, world.tenant_id)
    [message] = await mailbox.wait_for(contact.email)
    found = re.search(r"https?://\S+(/portal/sign-in/link/\S+)", text_of(message))
    assert found, text_of(message)
    return found[1]


async def test_an_emailed_link_signs_in_once(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    world, contact = await portal_world(client, db, resources, locale="fr-CA")
    browser = open_browser(app, browsers)
    asked = await post(browser, "/portal/sign-in/link", email=contact.email.upper())
    nobody = await post(browser, "/portal/sign-in/link", email=f"x-{uuid.uuid4().hex}@ex.com")
    # The same answer, account or not.
    for response in (asked, nobody):
        assert response.status_code == 200
        assert "If this address has a portal account, a link is on its way." in response.text

    path = await _mailed_link(resources, settings, mailbox, world, contact)
    [message] = mailbox.to(contact.email)
    assert message["Content-Language"] == "fr"  # the client's language
    assert "Agence" in message["Subject"]  # the agency's name

    # Opening the link (as a mail scanner would) spends nothing: it shows a button.
    for _ in range(2):
        page = await browser.get(path)
        assert page.status_code == 200
        assert "Se connecter" in page.text and 'method="post"' in page.text
    assert "passerelle_portal" not in browser.cookies

    used = await post(browser, path)
    assert used.status_code == 303 and used.headers["location"] == "/portal"
    assert (await browser.get("/portal")).status_code == 200

    again = open_browser(app, browsers)
    replay = await post(again, path)
    assert replay.status_code == 410
    assert "Ce lien de connexion a déjà servi" in replay.text
    assert "passerelle_portal" not in again.cookies
    assert (await again.get(path)).status_code == 410


async def test_an_altered_or_expired_link_says_which(
    app, client, db, resources, settings, mailbox, browsers, clock
) -> None:
    world, contact = await portal_world(client, db, resources)
    browser = open_browser(app, browsers)
    await post(browser, "/portal/sign-in/link", email=contact.email)
    path = await _mailed_link(resources, settings, mailbox, world, contact)

    altered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    for response in (await browser.get(altered), await post(browser, altered)):
        assert response.status_code == 404
        assert "This sign-in link is not valid" in response.text

    clock.advance(timedelta(minutes=16))
    for response in (await browser.get(path), await post(browser, path)):
        assert response.status_code == 410
        assert "This sign-in link has expired" in response.text
    assert "passerelle_portal" not in browser.cookies


async def test_link_requests_are_limited_per_address(app, client, db, resources, browsers):
    browser = open_browser(app, browsers)
    email = f"someone-{uuid.uuid4().hex}@example.com"
    for _ in range(5):
        assert (await post(browser, "/portal/sign-in/link", email=email)).status_code == 200
    refused = await post(browser, "/portal/sign-in/link", email=email)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0


# ---------------------------------------------------------------------------------------------
# Deciding


async def test_the_decision_page_records_a_decision_once(
    app, client, db, resources, browsers
) -> None:
    world, contact = await portal_world(client, db, resources)
    item = await awaiting(client, world, contact, variants={"instagram": "<b>Bold</b> spring"})
    hostile = "<script>alert(1)</script> please"
    r = await client.post(
        f"/v1/content/{item['id']}/comments",
        json={"body": hostile, "visibility": "client"},
        headers=world.boss,
    )
    assert r.status_code == 201, r.text
    browser = open_browser(app, browsers)
    await sign_in(browser, contact.email)

    page = await browser.get(f"/portal/content/{item['id']}")
    assert page.status_code == 200
    assert "&lt;b&gt;Bold&lt;/b&gt; spring" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; please" in page.text
    assert "<script>alert" not in page.text
    assert 'value="approve"' in page.text and 'value="request_changes"' in page.text

    revision = item["revision"]["id"]
    decision = f"/portal/content/{item['id']}/decision?revision={revision}"
    assert f'action="{decision}"' in page.text
    # No CSRF token: refused, nothing recorded.
    forged = await browser.post(decision, data={"decision": "approve"})
    assert forged.status_code == 403
    # Changes requested without saying which: refused with the reason, nothing recorded.
    bare = await post(browser, decision, decision="request_changes")
    assert bare.status_code == 422
    assert "a comment is required to request changes" in bare.text
    too_long = await post(browser, decision, decision="reject", comment="x" * 10_001)
    assert too_long.status_code == 400 and "too long" in too_long.text
    state = await client.get(f"/v1/content/{item['id']}", headers=world.boss)
    assert state.json()["status"] == "awaiting_client"

    done = await post(browser, decision, decision="approve", comment="Go!")
    assert done.status_code == 303
    assert done.headers["location"] == f"/portal/content/{item['id']}?decided=1"
    shown = await browser.get(done.headers["location"])
    assert "Your decision is recorded" in shown.text
    state = await client.get(f"/v1/content/{item['id']}", headers=world.boss)
    assert state.json()["status"] == "approved"
    decisions = await client.get(f"/v1/content/{item['id']}/decisions", headers=world.boss)
    [recorded] = decisions.json()["items"]
    assert (recorded["channel"], recorded["user_id"]) == ("portal", str(contact.user_id))

    # A second press (the back button, a double click): refused, not recorded twice.
    twice = await post(browser, decision, decision="approve")
    assert twice.status_code == 409
    decisions = await client.get(f"/v1/content/{item['id']}/decisions", headers=world.boss)
    assert len(decisions.json()["items"]) == 1

    # Nothing awaits any more; the history shows it, newest first.
    assert "Nothing awaits your decision." in (await browser.get("/portal")).text
    history = await browser.get("/portal/history")
    assert history.status_code == 200
    assert "Spring launch" in history.text and "Approved" in history.text
    assert "Go!" in history.text


async def test_another_agency_or_another_clients_items_are_not_found(
    app, client, db, resources, browsers
) -> None:
    world, contact = await portal_world(client, db, resources)
    other_client = await client.post(
        "/v1/clients", json={"name": "Other Co", "locale": "en"}, headers=world.boss
    )
    other_brand = await client.post(
        "/v1/brands",
        json={"client_id": other_client.json()["id"], "name": "Other", "slug": uuid.uuid4().hex},
        headers=world.boss,
    )
    neighbour = await add_person(
        client,
        db,
        resources.passwords,
        world.agency,
        "client",
        client_id=uuid.UUID(other_client.json()["id"]),
    )
    theirs = await awaiting(client, world, neighbour, brand=other_brand.json())
    elsewhere, their_contact = await portal_world(client, db, resources)
    foreign = await awaiting(client, elsewhere, their_contact)

    browser = open_browser(app, browsers)
    await sign_in(browser, contact.email)
    pages = []
    for item in (theirs, foreign):
        pages.append(await browser.get(f"/portal/content/{item['id']}"))
        pages.append(
            await post(
                browser,
                f"/portal/content/{item['id']}/decision?revision={item['revision']['id']}",
                decision="approve",
            )
        )
    pages.append(await browser.get(f"/portal/content/{uuid.uuid4()}"))
    pages.append(await browser.get("/portal/content/not-an-id"))
    for page in pages:
        assert page.status_code == 404
        assert "This page does not exist, or it is not yours to see." in page.text
    for item, boss in ((theirs, world.boss), (foreign, elsewhere.boss)):
        state = await client.get(f"/v1/content/{item['id']}", headers=boss)
        assert state.json()["status"] == "awaiting_client"


# ---------------------------------------------------------------------------------------------
# Budget, reports, language, plan


async def test_the_budget_and_the_reports(app, client, db, resources, browsers, clock) -> None:
    clock.set(datetime(2026, 11, 20, 12, 0, tzinfo=MONTREAL))
    world, contact = await portal_world(client, db, resources)
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
    browser = open_browser(app, browsers)
    await sign_in(browser, contact.email)

    budget = await browser.get("/portal/budget")
    assert budget.status_code == 200
    assert "Budget for November 2026" in budget.text
    assert "10 h" in budget.text  # 600 minutes available
    assert "100000" not in budget.text and "1,000" not in budget.text  # no money for clients
    earlier = await browser.get("/portal/budget?month=2026-10")
    assert "No budget is set for October 2026." in earlier.text
    for bad in ("2026-13", "soon", "x" * 300):
        assert (await browser.get(f"/portal/budget?month={bad}")).status_code == 400

    reports = await browser.get("/portal/reports")
    assert reports.status_code == 200
    assert 'href="/portal/reports/2026-11"' in reports.text
    assert 'href="/portal/reports/2026-11.pdf"' in reports.text
    report = await browser.get("/portal/reports/2026-11")
    assert report.status_code == 200 and "Report for November 2026" in report.text
    assert "Acme Coffee" in report.text
    pdf = await browser.get("/portal/reports/2026-11.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    for month in ("2026-12", "2026-13", "2026-11.exe"):
        assert (await browser.get(f"/portal/reports/{month}")).status_code in (400, 404)


async def test_a_french_client_reads_french_pages(app, client, db, resources, browsers) -> None:
    world, contact = await portal_world(client, db, resources, locale="fr-CA")
    await awaiting(client, world, contact, title="Lancement du printemps")
    browser = open_browser(app, browsers)
    await sign_in(browser, contact.email)
    inbox = await browser.get("/portal")
    assert '<html lang="fr">' in inbox.text
    assert "En attente de votre décision" in inbox.text and "Lancement du printemps" in inbox.text
    assert "Se déconnecter" in inbox.text
    assert "Vos décisions" in (await browser.get("/portal/history")).text
    assert "Rapports mensuels" in (await browser.get("/portal/reports")).text


async def test_an_agency_whose_plan_lacks_the_portal_says_so(
    app, client, db, resources, browsers
) -> None:
    world, contact = await portal_world(client, db, resources, plan="starter")
    browser = open_browser(app, browsers)
    assert (await sign_in(browser, contact.email)).status_code == 303
    page = await browser.get("/portal")
    assert page.status_code == 403
    assert "does not include the client portal" in page.text
    assert world.agency.slug in page.text  # the agency's name, "Agence <slug>"


async def test_hostile_input_from_a_signed_in_contact_gets_a_page(
    app, client, db, resources, browsers
) -> None:
    _, contact = await portal_world(client, db, resources)
    browser = open_browser(app, browsers)
    await sign_in(browser, contact.email)
    for value in (
        "not-an-id",
        "x" * 3000,
        "<img src=x onerror=alert(1)>",
        "2026-11.pdf.pdf",
    ):
        for path, params in (
            (f"/portal/content/{value}", {}),
            (f"/portal/reports/{value}", {}),
            ("/portal/budget", {"month": value}),
            ("/portal", {"cursor": value}),
            ("/portal/history", {"cursor": value}),
        ):
            response = await browser.get(path, params=params)
            assert 400 <= response.status_code < 500, (path, value, response.status_code)
            assert response.headers["content-type"].startswith("text/html"), (
                path,
                value,
                response.text[:300],
            )
            assert "<img src=x onerror" not in response.text
