"""Sign-up, login, access tokens, refresh-token rotation, logout and the published keys."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from infra.security import TokenSigner, generate_signing_key
from tests.support.factories import PASSWORD, add_person, login, new_agency, unique
from tests.support.problems import assert_problem
from tests.support.statements import captured_statements

REGISTERED = {"iss", "aud", "iat", "exp", "nbf"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def own_claims(resources, settings, token: str) -> dict:
    """The claims the application put in a valid token, without the registered ones."""
    claims = resources.signer.verify(token, audience=settings.jwt_audience)
    return {k: v for k, v in claims.items() if k not in REGISTERED}


def signup_body(**overrides) -> dict:
    slug = overrides.pop("slug", unique("agency"))
    return {
        "agency_name": f"Agence {slug}",
        "slug": slug,
        "owner_name": "Owner",
        "email": f"{slug}-owner@example.com",
        "password": PASSWORD,
        **overrides,
    }


# ---------------------------------------------------------------------------------------------
# Sign-up


async def test_signup_answers_tokens_and_creates_the_agency(client):
    body = signup_body(agency_name="Agence Lumière")
    response = await client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] > 0 and tokens["refresh_token"]
    assert tokens["tenant"]["slug"] == body["slug"]
    assert tokens["tenant"]["name"] == "Agence Lumière"

    me = await client.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["role"] == "owner"
    assert me.json()["user"]["email"] == body["email"]
    assert me.json()["tenant"] | {"id": None} == {
        "id": None,
        "slug": body["slug"],
        "name": "Agence Lumière",
        "timezone": "America/Montreal",
        "locale": "fr-CA",
        "currency": "CAD",
        "status": "active",
    }
    assert (await login(client, body["email"]))["tenant"]["slug"] == body["slug"]


async def test_signup_with_a_taken_slug_is_refused_and_creates_no_account(client):
    agency = await new_agency(client)
    newcomer = f"{unique('newcomer')}@example.com"
    response = await client.post(
        "/v1/auth/signup", json=signup_body(slug=agency.slug, email=newcomer)
    )
    assert_problem(response, 409, "slug-taken")
    # Nothing half-written: the e-mail is still free for another password.
    again = await client.post(
        "/v1/auth/signup", json=signup_body(email=newcomer, password="another-password-42")
    )
    assert again.status_code == 201, again.text


async def test_signup_with_an_existing_email_and_wrong_password_is_refused(client):
    agency = await new_agency(client)
    body = signup_body(email=agency.owner.email.upper(), password="not-the-password")
    assert_problem(await client.post("/v1/auth/signup", json=body), 409, "email-taken")
    # The slug was not taken by the refused attempt.
    retry = await client.post("/v1/auth/signup", json=signup_body(slug=body["slug"]))
    assert retry.status_code == 201, retry.text


async def test_existing_user_with_right_password_opens_a_second_agency(client):
    first = await new_agency(client)
    second = await new_agency(client, email=first.owner.email)
    assert second.owner.user_id == first.owner.user_id
    assert second.tenant_id != first.tenant_id
    me = (await client.get("/v1/me", headers=second.owner.headers)).json()
    assert me["tenant"]["slug"] == second.slug
    assert {m["tenant"]["slug"] for m in me["memberships"]} == {first.slug, second.slug}


# ---------------------------------------------------------------------------------------------
# Login


async def test_login_answers_tokens_that_work(client):
    agency = await new_agency(client)
    tokens = await login(client, agency.owner.email)
    assert tokens["tenant"]["slug"] == agency.slug
    me = await client.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["user"]["id"] == str(agency.owner.user_id)


async def test_login_email_is_case_insensitive(client):
    agency = await new_agency(client)
    tokens = await login(client, agency.owner.email.upper())
    assert tokens["tenant"]["id"] == str(agency.tenant_id)


async def test_wrong_email_and_wrong_password_are_indistinguishable(client):
    agency = await new_agency(client)
    wrong_email = await client.post(
        "/v1/auth/login",
        json={"email": f"{unique('nobody')}@example.com", "password": PASSWORD},
    )
    wrong_password = await client.post(
        "/v1/auth/login", json={"email": agency.owner.email, "password": "wrong-password-1"}
    )
    assert_problem(wrong_email, 401, "invalid-credentials")
    assert wrong_email.status_code == wrong_password.status_code

    def headers(response):
        return {k: v for k, v in response.headers.items() if k.lower() != "x-request-id"}

    def body(response):
        return {k: v for k, v in response.json().items() if k not in ("request_id", "instance")}

    assert headers(wrong_email) == headers(wrong_password)
    assert body(wrong_email) == body(wrong_password)


async def test_login_of_a_person_in_two_agencies_requires_the_tenant(client):
    first = await new_agency(client)
    second = await new_agency(client, email=first.owner.email)

    response = await client.post(
        "/v1/auth/login", json={"email": first.owner.email, "password": PASSWORD}
    )
    body = assert_problem(response, 409, "tenant-required")
    assert {t["slug"] for t in body["tenants"]} == {first.slug, second.slug}
    assert "access_token" not in body

    for agency in (first, second):
        tokens = await login(client, first.owner.email, tenant=agency.slug)
        assert tokens["tenant"]["slug"] == agency.slug
        me = await client.get("/v1/me", headers=bearer(tokens["access_token"]))
        assert me.json()["tenant"]["slug"] == agency.slug


async def test_login_with_a_tenant_the_person_does_not_belong_to_is_refused(client):
    mine = await new_agency(client)
    other = await new_agency(client)
    response = await client.post(
        "/v1/auth/login",
        json={"email": mine.owner.email, "password": PASSWORD, "tenant": other.slug},
    )
    assert_problem(response, 401, "invalid-credentials")


# Login limits (only failures count; nobody can lock an owner out): tenants/test_login_limits.py


# ---------------------------------------------------------------------------------------------
# Access tokens


def _expired(resources, settings, token, claims):
    return resources.signer.sign(claims, audience=settings.jwt_audience, ttl_seconds=-60)


def _tampered(resources, settings, token, claims):
    header, payload, signature = token.split(".")
    changed = b64url_json(payload) | {"role": "owner"}
    return f"{header}.{b64url(json.dumps(changed).encode())}.{signature}"


def _alg_none(resources, settings, token, claims):
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = token.split(".")[1]
    return f"{header}.{payload}."


def _wrong_audience(resources, settings, token, claims):
    return resources.signer.sign(claims, audience="someone-else", ttl_seconds=300)


def _wrong_issuer(resources, settings, token, claims):
    forger = TokenSigner(settings.jwt_private_keys, issuer="not-passerelle")
    return forger.sign(claims, audience=settings.jwt_audience, ttl_seconds=300)


def _foreign_key(resources, settings, token, claims):
    forger = TokenSigner(json.dumps({"keys": [generate_signing_key()]}), issuer=settings.jwt_issuer)
    return forger.sign(claims, audience=settings.jwt_audience, ttl_seconds=300)


def _foreign_key_with_our_kid(resources, settings, token, claims):
    ours = json.loads(settings.jwt_private_keys)["keys"][0]["kid"]
    forger = TokenSigner(
        json.dumps({"keys": [generate_signing_key() | {"kid": ours}]}), issuer=settings.jwt_issuer
    )
    return forger.sign(claims, audience=settings.jwt_audience, ttl_seconds=300)


def _not_a_jwt(resources, settings, token, claims):
    return "not-a-jwt"


@pytest.mark.parametrize(
    "forge",
    [
        _expired,
        _tampered,
        _alg_none,
        _wrong_audience,
        _wrong_issuer,
        _foreign_key,
        _foreign_key_with_our_kid,
        _not_a_jwt,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
async def test_a_bad_access_token_is_refused(client, db, resources, settings, forge):
    agency = await new_agency(client)
    member = await add_person(client, db, resources.passwords, agency, "member")
    claims = own_claims(resources, settings, member.access_token)

    forged = forge(resources, settings, member.access_token, claims)
    response = await client.get("/v1/me", headers=bearer(forged))
    assert_problem(response, 401, "invalid-token")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    # The genuine token still works: only the forgery was refused.
    assert (await client.get("/v1/me", headers=member.headers)).json()["role"] == "member"


async def test_a_request_without_a_token_is_refused(client):
    response = await client.get("/v1/me")
    assert_problem(response, 401, "invalid-token")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_a_token_signed_by_the_second_key_of_the_set_still_verifies(
    client, resources, settings
):
    """Rotation: every key of JWT_PRIVATE_KEYS verifies, not only the one that signs."""
    agency = await new_agency(client)
    keys = json.loads(settings.jwt_private_keys)["keys"]
    assert len(keys) == 2
    rotated = TokenSigner(json.dumps({"keys": [keys[1], keys[0]]}), issuer=settings.jwt_issuer)
    claims = own_claims(resources, settings, agency.owner.access_token)

    token = rotated.sign(claims, audience=settings.jwt_audience, ttl_seconds=300)
    assert b64url_json(token.split(".")[0])["kid"] == keys[1]["kid"] != keys[0]["kid"]
    response = await client.get("/v1/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["tenant"]["slug"] == agency.slug


async def test_a_disabled_member_is_refused_at_once(client, db, resources):
    agency = await new_agency(client)
    member = await add_person(client, db, resources.passwords, agency, "member")
    assert (await client.get("/v1/me", headers=member.headers)).status_code == 200

    disabled = await client.patch(
        f"/v1/members/{member.user_id}", json={"status": "disabled"}, headers=agency.owner.headers
    )
    assert disabled.status_code == 200, disabled.text

    for path in ("/v1/me", "/v1/members"):
        assert_problem(await client.get(path, headers=member.headers), 401, "invalid-token")
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token})
    assert_problem(refresh, 401, "invalid-refresh-token")
    relogin = await client.post(
        "/v1/auth/login", json={"email": member.email, "password": PASSWORD}
    )
    assert_problem(relogin, 401, "invalid-credentials")


# ---------------------------------------------------------------------------------------------
# Refresh tokens


async def test_refresh_rotates_the_tokens(client):
    agency = await new_agency(client)
    response = await client.post(
        "/v1/auth/refresh", json={"refresh_token": agency.owner.refresh_token}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["refresh_token"] != agency.owner.refresh_token
    assert tokens["access_token"] != agency.owner.access_token
    assert tokens["tenant"]["slug"] == agency.slug
    me = await client.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["role"] == "owner"

    # The new refresh token rotates in turn.
    again = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 200, again.text


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(client):
    agency = await new_agency(client)
    first = await client.post(
        "/v1/auth/refresh", json={"refresh_token": agency.owner.refresh_token}
    )
    second = await client.post(
        "/v1/auth/refresh", json={"refresh_token": first.json()["refresh_token"]}
    )
    newest = second.json()
    assert second.status_code == 200, second.text

    reused = await client.post(
        "/v1/auth/refresh", json={"refresh_token": agency.owner.refresh_token}
    )
    assert_problem(reused, 401, "refresh-token-reused")

    # The family is revoked: the newest refresh token and the session's access tokens die too.
    latest = await client.post("/v1/auth/refresh", json={"refresh_token": newest["refresh_token"]})
    assert_problem(latest, 401, "invalid-refresh-token")
    for access in (newest["access_token"], agency.owner.access_token):
        assert_problem(await client.get("/v1/me", headers=bearer(access)), 401, "invalid-token")
    # A fresh login opens a new, working session.
    tokens = await login(client, agency.owner.email)
    assert (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).status_code == 200


def _garbage_variants(refresh_token: str) -> list[str]:
    prefix, secret = refresh_token.split(".", 1)
    return [
        "garbage",
        "abc.def",
        f"{prefix}.",
        f"{prefix}.{secret[:-4]}AAAA",
        f"{b64url(bytes(32))}.{secret}",
        "!!!!.????",
    ]


@pytest.mark.parametrize("variant", range(6))
async def test_a_garbage_refresh_token_is_refused(client, variant):
    agency = await new_agency(client)
    token = _garbage_variants(agency.owner.refresh_token)[variant]
    response = await client.post("/v1/auth/refresh", json={"refresh_token": token})
    assert_problem(response, 401, "invalid-refresh-token")
    # The genuine token was not spent by the refused attempt.
    good = await client.post("/v1/auth/refresh", json={"refresh_token": agency.owner.refresh_token})
    assert good.status_code == 200, good.text


# ---------------------------------------------------------------------------------------------
# Logout


async def test_logout_ends_this_login_only(client):
    agency = await new_agency(client)
    other = await login(client, agency.owner.email)

    response = await client.post(
        "/v1/auth/logout",
        json={"refresh_token": agency.owner.refresh_token},
        headers=agency.owner.headers,
    )
    assert response.status_code == 204
    assert response.content == b""

    # Both doors in: the session's (/v1/me) and the hot reads' driver transaction (/v1/members).
    for path in ("/v1/me", "/v1/members"):
        assert_problem(await client.get(path, headers=agency.owner.headers), 401, "invalid-token")
    refresh = await client.post(
        "/v1/auth/refresh", json={"refresh_token": agency.owner.refresh_token}
    )
    assert_problem(refresh, 401, "invalid-refresh-token")
    # Another login of the same person is untouched.
    assert (await client.get("/v1/me", headers=bearer(other["access_token"]))).status_code == 200


# ---------------------------------------------------------------------------------------------
# Published keys


async def test_jwks_lists_public_es256_keys_only(client, settings):
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    ours = json.loads(settings.jwt_private_keys)["keys"]
    assert [k["kid"] for k in keys] == [k["kid"] for k in ours]
    for published, private in zip(keys, ours, strict=True):
        assert published["kty"] == "EC" and published["crv"] == "P-256"
        assert published["alg"] == "ES256" and published["use"] == "sig"
        assert (published["x"], published["y"]) == (private["x"], private["y"])
        assert "d" not in published
    assert '"d"' not in response.text


async def test_an_access_token_names_its_key_and_expires(client, resources, settings):
    agency = await new_agency(client)
    header = b64url_json(agency.owner.access_token.split(".")[0])
    assert header["alg"] == "ES256"
    assert header["kid"] == json.loads(settings.jwt_private_keys)["keys"][0]["kid"]
    claims = resources.signer.verify(agency.owner.access_token, audience=settings.jwt_audience)
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds


async def test_a_token_that_worked_still_expires_on_time(client, clock, settings):
    """Each process remembers the tokens whose signature it checked; their expiry is still
    read on every request."""
    agency = await new_agency(client)
    assert (await client.get("/v1/me", headers=agency.owner.headers)).status_code == 200

    clock.advance(timedelta(seconds=settings.access_token_ttl_seconds + 1))
    response = await client.get("/v1/me", headers=agency.owner.headers)
    assert_problem(response, 401, "invalid-token")


async def test_a_signed_in_request_enters_its_tenant_and_reads_the_member_in_one_statement(
    client, resources
):
    """The tenant entry and the principal query are one round trip, the transaction's first."""
    agency = await new_agency(client)
    with captured_statements(resources) as statements:
        response = await client.get("/v1/me", headers=agency.owner.headers)
    assert response.status_code == 200, response.text
    assert "FROM enter_tenant_as_member(" in statements[0]
    assert not [s for s in statements if "app.tenant_id" in s]
