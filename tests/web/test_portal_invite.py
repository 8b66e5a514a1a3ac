"""A client contact's invitation, as their browser meets it: the e-mail's link opens a page of
ours, which accepts the invitation (a new account, or an existing one's password) and signs
them in to the portal; every reason it no longer works gets a page that says which."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from devtools.smtp import text_of
from tenants.models import Invitation, Membership, User
from tenants.service.members import INVITATION_AUDIENCE
from tests.support.factories import PASSWORD, World, add_person, login, new_world, unique
from tests.support.partners import set_plan
from tests.support.portal import open_browser, post
from tests.support.worker import deliver_events

# ---------------------------------------------------------------------------------------------
# Helpers


async def client_agency(client, db, *, locale: str = "en") -> World:
    world = await new_world(client, customer={"locale": locale, "name": "Acme Inc."})
    await set_plan(db, world.agency, "agency")
    return world


async def invite(client, world: World, email: str, role: str = "client") -> dict:
    body: dict = {"email": email, "role": role}
    if role == "client":
        body["client_id"] = world.customer["id"]
    response = await client.post("/v1/invitations", json=body, headers=world.boss)
    assert response.status_code == 201, response.text
    return response.json()


def link_pattern(base: str) -> re.Pattern[str]:
    return re.compile(re.escape(base.rstrip("/")) + r"(/portal/invitations/[A-Za-z0-9._~-]+)")


async def mailed_link(resources, settings, mailbox, world: World, email: str) -> str:
    """The page's path, from the link in the e-mail the worker sent."""
    await deliver_events(resources, settings, world.tenant_id)
    [message] = await mailbox.wait_for(email)
    found = link_pattern(settings.public_base_url).search(text_of(message))
    assert found, text_of(message)
    return found[1]


async def invited_contact(client, db, resources, settings, mailbox, **world_fields):
    world = await client_agency(client, db, **world_fields)
    email = f"{unique('contact')}@example.com"
    await invite(client, world, email)
    return world, email, await mailed_link(resources, settings, mailbox, world, email)


async def membership_status(db, world: World, email: str) -> str:
    """Read in the database: a test that moved the clock has outlived the owner's token."""
    async with db.tenant_transaction(world.tenant_id) as session:
        user = (await session.scalars(select(User).where(User.email == email))).one()
        membership = (
            await session.scalars(
                select(Membership).where(
                    Membership.tenant_id == world.tenant_id, Membership.user_id == user.id
                )
            )
        ).one()
        return str(membership.status)


async def can_log_in(client, email: str, password: str = PASSWORD) -> bool:
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    return response.status_code == 200


# ---------------------------------------------------------------------------------------------
# The e-mail


async def test_a_client_invitation_mails_a_link_to_the_portal_page(
    app, client, db, resources, settings, mailbox
) -> None:
    world = await client_agency(client, db)
    contact = f"{unique('contact')}@example.com"
    staff = f"{unique('staff')}@example.com"
    await invite(client, world, contact)
    await invite(client, world, staff, role="member")
    await deliver_events(resources, settings, world.tenant_id)

    [message] = await mailbox.wait_for(contact)
    text = text_of(message)
    assert link_pattern(settings.public_base_url).search(text), text
    assert "client portal" in message["Subject"]
    html = message.get_body(preferencelist=("html",)).get_content()
    assert link_pattern(settings.public_base_url).search(html)
    # Staff keep the agency's app.
    [staff_message] = await mailbox.wait_for(staff)
    assert f"{settings.app_base_url}/invitations/" in text_of(staff_message)
    assert "/portal/" not in text_of(staff_message)


async def test_the_link_follows_the_agency_own_app_address(
    app, client, db, resources, settings, mailbox
) -> None:
    world = await client_agency(client, db)
    response = await client.patch(
        "/v1/agency/branding",
        json={"app_base_url": "https://portail.agence.example"},
        headers=world.boss,
    )
    assert response.status_code == 200, response.text
    email = f"{unique('contact')}@example.com"
    await invite(client, world, email)
    await deliver_events(resources, settings, world.tenant_id)
    [message] = await mailbox.wait_for(email)
    assert link_pattern("https://portail.agence.example").search(text_of(message))


# ---------------------------------------------------------------------------------------------
# Accepting


async def test_a_new_contact_accepts_and_lands_in_the_portal(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    world, email, path = await invited_contact(client, db, resources, settings, mailbox)
    browser = open_browser(app, browsers)

    # Opening the page (as a mail scanner would) accepts nothing.
    page = await browser.get(path)
    assert page.status_code == 200
    assert f"Join Agence {world.agency.slug}&#39;s client portal" in page.text
    assert "Owner invited you" in page.text and email in page.text
    assert 'name="name"' in page.text and "At least 10 characters." in page.text
    assert page.headers["cache-control"] == "no-store"
    assert await membership_status(db, world, email) == "invited"

    done = await post(browser, path, name="Léa Gagnon", password=PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/portal"
    assert "passerelle_portal" in browser.cookies
    portal = await browser.get("/portal")
    assert portal.status_code == 200 and "Awaiting your decision" in portal.text

    members = await client.get("/v1/members", params={"limit": 200}, headers=world.boss)
    [me] = [m for m in members.json()["items"] if m["email"] == email]
    assert (me["status"], me["name"], me["role"]) == ("active", "Léa Gagnon", "client")
    assert await can_log_in(client, email)

    # The link is spent: it says so, and points to the sign-in page.
    for again in (await browser.get(path), await post(open_browser(app, browsers), path)):
        assert again.status_code == 410
        assert "This invitation was already accepted" in again.text
        assert 'href="/portal/sign-in"' in again.text


async def test_an_existing_account_accepts_with_its_password(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    home = await client_agency(client, db)
    person = await add_person(client, db, resources.passwords, home.agency, "member")
    world = await client_agency(client, db)
    await invite(client, world, person.email)
    path = await mailed_link(resources, settings, mailbox, world, person.email)
    browser = open_browser(app, browsers)

    page = await browser.get(path)
    assert page.status_code == 200
    assert "You already have an account with this e-mail address." in page.text
    assert 'name="name"' not in page.text

    wrong = await post(browser, path, password="not-my-password")
    assert wrong.status_code == 401
    assert "This is not your account&#39;s password." in wrong.text
    assert "passerelle_portal" not in browser.cookies
    assert await membership_status(db, world, person.email) == "invited"

    done = await post(browser, path, password=PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/portal"
    assert (await browser.get("/portal")).status_code == 200
    assert await membership_status(db, world, person.email) == "active"
    # Still themself in their own agency, with the same password.
    assert (await login(client, person.email, tenant=home.agency.slug))["tenant"]["slug"] == (
        home.agency.slug
    )


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"name": "Léa", "password": "short"}, "password", "needs at least 10 characters"),
        ({"name": "Léa", "password": "x" * 257}, "password", "at most 256 characters"),
        ({"name": "   ", "password": PASSWORD}, "name", "Enter your name."),
        ({"password": PASSWORD}, "name", "Enter your name."),
        ({"name": "L" * 201, "password": PASSWORD}, "name", "at most 200 characters"),
    ],
    ids=["weak-password", "long-password", "blank-name", "no-name", "long-name"],
)
async def test_a_refused_form_says_why_by_the_field_and_changes_nothing(
    app, client, db, resources, settings, mailbox, browsers, fields, field, says
) -> None:
    world, email, path = await invited_contact(client, db, resources, settings, mailbox)
    browser = open_browser(app, browsers)
    response = await post(browser, path, **fields)
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', response.text)
    assert error and says in error[1], response.text
    assert f'aria-describedby="{field}-error"' in response.text or (
        f'{field}-error"' in response.text and 'aria-invalid="true"' in response.text
    )
    if field == "password" and fields.get("name", "").strip():
        assert f'value="{fields["name"]}"' in response.text  # what they typed is kept
    assert "passerelle_portal" not in browser.cookies
    assert await membership_status(db, world, email) == "invited"
    assert not await can_log_in(client, email)


async def test_every_mistake_is_said_at_once(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    world, email, path = await invited_contact(client, db, resources, settings, mailbox)
    response = await post(open_browser(app, browsers), path, name="", password="short")
    assert response.status_code == 422
    assert '<p class="error" id="name-error">Enter your name.</p>' in response.text
    assert "needs at least 10 characters" in response.text
    assert await membership_status(db, world, email) == "invited"


async def test_a_post_without_its_csrf_token_accepts_nothing(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    world, email, path = await invited_contact(client, db, resources, settings, mailbox)
    browser = open_browser(app, browsers)
    await browser.get(path)  # the cookie is there, the field is not
    forged = await browser.post(path, data={"name": "Eve", "password": PASSWORD})
    assert forged.status_code == 403 and "Please try again" in forged.text
    wrong = await browser.post(path, data={"csrf": "x" * 43, "name": "Eve", "password": PASSWORD})
    assert wrong.status_code == 403
    assert await membership_status(db, world, email) == "invited"
    assert (await browser.get(path)).status_code == 200


# ---------------------------------------------------------------------------------------------
# Links that no longer work


async def test_an_expired_invitation_says_so(
    app, client, db, resources, settings, mailbox, browsers, clock
) -> None:
    world, email, path = await invited_contact(client, db, resources, settings, mailbox)
    clock.advance(timedelta(seconds=settings.invitation_ttl_seconds + 60))
    browser = open_browser(app, browsers)
    for response in (
        await browser.get(path),
        await post(browser, path, name="Léa", password=PASSWORD),
    ):
        assert response.status_code == 410
        assert "This invitation has expired" in response.text
        assert "Ask Owner for a new one." in response.text
    assert "passerelle_portal" not in browser.cookies
    assert await membership_status(db, world, email) == "invited"


async def test_a_withdrawn_invitation_says_so(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    world, email, path = await invited_contact(client, db, resources, settings, mailbox)
    async with db.tenant_transaction(world.tenant_id) as session:
        await session.execute(
            update(Invitation)
            .where(Invitation.tenant_id == world.tenant_id, Invitation.email == email)  # type: ignore[arg-type]
            .values(status="revoked")
        )
    browser = open_browser(app, browsers)
    for response in (
        await browser.get(path),
        await post(browser, path, name="Léa", password=PASSWORD),
    ):
        assert response.status_code == 410
        assert "This invitation was withdrawn" in response.text
    assert await membership_status(db, world, email) == "invited"
    assert not await can_log_in(client, email)


def _tampered(path: str) -> list[str]:
    token = path.rsplit("/", 1)[1]
    header, payload, signature = token.split(".")
    flipped = signature[:-3] + ("AAA" if not signature.endswith("AAA") else "BBB")
    return [
        f"/portal/invitations/{header}.{payload}.{flipped}",
        f"/portal/invitations/{token[:-20]}",
        "/portal/invitations/not-a-token",
        "/portal/invitations/" + "x" * 3000,
    ]


async def test_a_tampered_invitation_link_is_not_valid(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    world, email, path = await invited_contact(client, db, resources, settings, mailbox)
    browser = open_browser(app, browsers)
    for bad in _tampered(path):
        for response in (
            await browser.get(bad),
            await post(browser, bad, name="Eve", password=PASSWORD),
        ):
            assert response.status_code == 404
            assert "This invitation link is not valid" in response.text
    assert await membership_status(db, world, email) == "invited"


async def test_another_agency_cannot_be_joined_with_a_token_naming_it(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    """Even a well-signed token naming one agency and another agency's invitation opens
    nothing: the invitation is looked for only inside the agency the token names."""
    world, email, _ = await invited_contact(client, db, resources, settings, mailbox)
    other = await client_agency(client, db)
    other_email = f"{unique('contact')}@example.com"
    theirs = await invite(client, other, other_email)
    browser = open_browser(app, browsers)
    crossed = resources.signer.sign(
        {"sub": theirs["id"], "tid": str(world.tenant_id)},
        audience=INVITATION_AUDIENCE,
        ttl_seconds=3600,
    )
    bad = f"/portal/invitations/{crossed}"
    for response in (
        await browser.get(bad),
        await post(browser, bad, name="Eve", password=PASSWORD),
    ):
        assert response.status_code == 404
        assert "This invitation link is not valid" in response.text
    assert await membership_status(db, other, other_email) == "invited"
    assert await membership_status(db, world, email) == "invited"
    assert "passerelle_portal" not in browser.cookies


async def test_a_staff_invitation_points_to_the_agency_app(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    world = await client_agency(client, db)
    email = f"{unique('staff')}@example.com"
    await invite(client, world, email, role="member")
    await deliver_events(resources, settings, world.tenant_id)
    [message] = await mailbox.wait_for(email)
    found = re.search(r"/invitations/([A-Za-z0-9._~-]+)", text_of(message))
    assert found
    path = f"/portal/invitations/{found[1]}"
    browser = open_browser(app, browsers)
    page = await browser.get(path)
    assert page.status_code == 200
    assert "This invitation is for the agency&#39;s app" in page.text
    assert f'href="{settings.app_base_url}/invitations/{found[1]}"' in page.text
    assert 'name="password"' not in page.text
    refused = await post(browser, path, name="Sam", password=PASSWORD)
    assert refused.status_code == 403
    assert await membership_status(db, world, email) == "invited"
    assert "passerelle_portal" not in browser.cookies


# ---------------------------------------------------------------------------------------------
# In the client's language


async def test_a_french_client_gets_the_mail_and_the_page_in_french(
    app, client, db, resources, settings, mailbox, browsers
) -> None:
    _, email, path = await invited_contact(client, db, resources, settings, mailbox, locale="fr-CA")
    [message] = mailbox.to(email)
    assert message["Content-Language"] == "fr"
    assert "vous invite à l'espace client de" in message["Subject"]
    browser = open_browser(app, browsers, **{"Accept-Language": "en"})

    page = await browser.get(path)
    assert page.status_code == 200 and '<html lang="fr">' in page.text
    assert "Rejoindre l&#39;espace client de" in page.text
    assert "Au moins 10 caractères." in page.text
    weak = await post(browser, path, name="Léa", password="court")
    assert weak.status_code == 422
    assert "Le mot de passe doit compter au moins 10 caractères." in weak.text

    done = await post(browser, path, name="Léa Gagnon", password=PASSWORD)
    assert done.status_code == 303
    again = await browser.get(path)
    assert again.status_code == 410 and "Cette invitation a déjà été acceptée" in again.text
