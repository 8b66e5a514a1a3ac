"""Inviting people by e-mail, the e-mail itself (sent by the outbox worker), and accepting."""

from __future__ import annotations

import base64
import json
import re

import pytest

from devtools.smtp import text_of
from tests.support.factories import PASSWORD, add_person, login, new_agency, unique
from tests.support.problems import assert_problem
from tests.support.worker import run_worker

LINK = re.compile(r"https://app\.passerelle\.test/invitations/([A-Za-z0-9._~-]+)")


async def invite(client, inviter_headers, email: str, role: str = "member"):
    return await client.post(
        "/v1/invitations", json={"email": email, "role": role}, headers=inviter_headers
    )


async def invitation_link(client, settings, mailbox, inviter_headers, email: str) -> str:
    """Invite, let the worker send the e-mail, and return the token from its link."""
    response = await invite(client, inviter_headers, email)
    assert response.status_code == 201, response.text
    await run_worker(settings)
    [message] = await mailbox.wait_for(email)
    return LINK.search(text_of(message)).group(1)


async def members_by_email(client, headers) -> dict[str, dict]:
    response = await client.get("/v1/members", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return {m["email"]: m for m in response.json()["items"]}


# ---------------------------------------------------------------------------------------------
# Inviting and the e-mail


async def test_an_invitation_is_mailed_only_by_the_outbox_worker(
    client, db, resources, settings, mailbox
):
    agency = await new_agency(client)
    admin = await add_person(client, db, resources.passwords, agency, "admin")
    email = f"{unique('invitee')}@example.com"

    response = await invite(client, admin.headers, email)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["email"], body["role"], body["status"]) == (email, "member", "pending")

    listed = (await members_by_email(client, admin.headers))[email]
    assert (listed["status"], listed["role"]) == ("invited", "member")
    assert mailbox.to(email) == []

    await run_worker(settings)
    [message] = await mailbox.wait_for(email)
    assert LINK.search(text_of(message)), text_of(message)


LANGUAGES = [
    ("fr-CA", "fr", "vous invite à rejoindre", "Acceptez l'invitation ici"),
    ("en", "en", "invited you to join", "Accept the invitation here"),
]


async def _mail_for_agency(client, settings, mailbox, locale: str):
    agency = await new_agency(client, locale=locale, owner_name="Camille Tremblay")
    email = f"{unique('invitee')}@example.com"
    assert (await invite(client, agency.owner.headers, email)).status_code == 201
    await run_worker(settings)
    [message] = await mailbox.wait_for(email)
    return agency, message


@pytest.mark.parametrize(("locale", "language", "subject_words", "body_words"), LANGUAGES)
async def test_the_mail_speaks_the_agency_language(
    client, settings, mailbox, locale, language, subject_words, body_words
):
    agency, message = await _mail_for_agency(client, settings, mailbox, locale)
    assert subject_words in message["Subject"]
    assert "Camille Tremblay" in message["Subject"] and agency.slug in message["Subject"]
    text = text_of(message)
    assert body_words in text
    assert LINK.search(text)
    html = message.get_body(preferencelist=("html",)).get_content()
    assert LINK.search(html)


@pytest.mark.parametrize(("locale", "language", "subject_words", "body_words"), LANGUAGES)
async def test_the_mail_declares_its_language(
    client, settings, mailbox, locale, language, subject_words, body_words
):
    _, message = await _mail_for_agency(client, settings, mailbox, locale)
    assert message["Content-Language"] == language


async def test_accepting_creates_the_account_and_logs_in(client, settings, mailbox):
    agency = await new_agency(client)
    email = f"{unique('invitee')}@example.com"
    token = await invitation_link(client, settings, mailbox, agency.owner.headers, email)

    response = await client.post(
        f"/v1/invitations/{token}/accept", json={"name": "Léa Gagnon", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["tenant"]["slug"] == agency.slug

    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert (me.json()["user"]["email"], me.json()["user"]["name"], me.json()["role"]) == (
        email,
        "Léa Gagnon",
        "member",
    )
    listed = (await members_by_email(client, agency.owner.headers))[email]
    assert (listed["status"], listed["name"]) == ("active", "Léa Gagnon")
    assert (await login(client, email))["tenant"]["slug"] == agency.slug

    again = await client.post(
        f"/v1/invitations/{token}/accept", json={"name": "Someone", "password": "other-password-1"}
    )
    assert_problem(again, 410, "invitation-invalid")
    assert (await login(client, email))["tenant"]["slug"] == agency.slug


async def test_a_new_account_needs_a_name(client, settings, mailbox):
    agency = await new_agency(client)
    email = f"{unique('invitee')}@example.com"
    token = await invitation_link(client, settings, mailbox, agency.owner.headers, email)

    nameless = await client.post(f"/v1/invitations/{token}/accept", json={"password": PASSWORD})
    assert_problem(nameless, 422, "name-required")
    named = await client.post(
        f"/v1/invitations/{token}/accept", json={"name": "Noé", "password": PASSWORD}
    )
    assert named.status_code == 200, named.text


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _other_invitation(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "0190b3f4-0000-7000-8000-000000000000"
    return f"{header}.{_b64(claims)}.{signature}"


def _unsigned(token: str) -> str:
    payload = token.split(".")[1]
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."


def _truncated(token: str) -> str:
    return token[: len(token) - 20]


@pytest.mark.parametrize(
    "tamper",
    [_other_invitation, _unsigned, _truncated, lambda token: "not-a-token"],
    ids=["payload-changed", "alg-none", "truncated", "garbage"],
)
async def test_a_tampered_invitation_token_is_gone(client, settings, mailbox, tamper):
    agency = await new_agency(client)
    email = f"{unique('invitee')}@example.com"
    token = await invitation_link(client, settings, mailbox, agency.owner.headers, email)

    response = await client.post(
        f"/v1/invitations/{tamper(token)}/accept", json={"name": "Eve", "password": PASSWORD}
    )
    assert_problem(response, 410, "invitation-invalid")
    assert (await members_by_email(client, agency.owner.headers))[email]["status"] == "invited"


async def test_an_access_token_is_not_an_invitation(client):
    agency = await new_agency(client)
    response = await client.post(
        f"/v1/invitations/{agency.owner.access_token}/accept",
        json={"name": "Eve", "password": PASSWORD},
    )
    assert_problem(response, 410, "invitation-invalid")


# ---------------------------------------------------------------------------------------------
# Refusals


async def test_inviting_an_active_member_is_a_conflict(client, db, resources):
    agency = await new_agency(client)
    person = await add_person(client, db, resources.passwords, agency, "member")
    for email in (person.email, agency.owner.email.upper()):
        assert_problem(await invite(client, agency.owner.headers, email), 409, "already-member")
    assert (await members_by_email(client, agency.owner.headers))[person.email]["status"] == (
        "active"
    )


async def test_a_second_pending_invitation_is_a_conflict(client):
    agency = await new_agency(client)
    email = f"{unique('invitee')}@example.com"
    assert (await invite(client, agency.owner.headers, email)).status_code == 201
    for again in (email, email.upper()):
        assert_problem(await invite(client, agency.owner.headers, again), 409, "invitation-pending")
    invited = [
        m
        for m in (await members_by_email(client, agency.owner.headers)).values()
        if m["status"] == "invited"
    ]
    assert [m["email"] for m in invited] == [email]


@pytest.mark.parametrize(
    ("inviter_role", "invited_role"),
    [("member", "member"), ("manager", "member"), ("client", "member"), ("admin", "owner")],
)
async def test_who_may_not_invite(client, db, resources, inviter_role, invited_role):
    agency = await new_agency(client)
    inviter = await add_person(client, db, resources.passwords, agency, inviter_role)
    email = f"{unique('invitee')}@example.com"
    response = await invite(client, inviter.headers, email, invited_role)
    assert_problem(response, 403, "permission-denied")
    assert email not in await members_by_email(client, agency.owner.headers)


async def test_an_owner_may_invite_an_owner(client):
    agency = await new_agency(client)
    email = f"{unique('invitee')}@example.com"
    response = await invite(client, agency.owner.headers, email, "owner")
    assert response.status_code == 201, response.text
    assert (await members_by_email(client, agency.owner.headers))[email]["role"] == "owner"


# ---------------------------------------------------------------------------------------------
# A person who already has an account


async def test_an_existing_account_accepts_with_its_own_password(client, settings, mailbox):
    home = await new_agency(client)
    inviting = await new_agency(client)
    email = home.owner.email
    token = await invitation_link(client, settings, mailbox, inviting.owner.headers, email)

    wrong = await client.post(
        f"/v1/invitations/{token}/accept", json={"password": "not-my-password"}
    )
    assert_problem(wrong, 401, "invalid-credentials")
    assert (await members_by_email(client, inviting.owner.headers))[email]["status"] == "invited"

    accepted = await client.post(f"/v1/invitations/{token}/accept", json={"password": PASSWORD})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["tenant"]["slug"] == inviting.slug
    assert (await members_by_email(client, inviting.owner.headers))[email]["status"] == "active"

    ambiguous = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    body = assert_problem(ambiguous, 409, "tenant-required")
    assert {t["slug"] for t in body["tenants"]} == {home.slug, inviting.slug}
    for agency in (home, inviting):
        assert (await login(client, email, tenant=agency.slug))["tenant"]["slug"] == agency.slug
