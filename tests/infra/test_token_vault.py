"""OAuth tokens at rest: Fernet encryption under keys from settings, and key rotation that
re-encrypts every stored token so that the old key can be dropped."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from infra.errors import TokenEncryptionNotConfigured
from infra.vault import TokenVault
from main.tokens import rotate_tokens
from social.kit import SocialKit, kit_of
from social.models import SocialAccount, SocialConnection
from social.sync import sync_account
from tests.support.factories import make_brand, make_client, new_agency

TOKEN = "EAAGsecret-access-token-0123456789"


def test_a_token_comes_back_from_its_ciphertext_which_does_not_show_it():
    vault = TokenVault([TokenVault.generate_key()])
    first, second = vault.encrypt(TOKEN), vault.encrypt(TOKEN)
    assert first is not None and second is not None
    assert vault.decrypt(first) == vault.decrypt(second) == TOKEN
    assert first != second  # a fresh IV each time: equal tokens do not look equal at rest
    for ciphertext in (first, second):
        assert TOKEN.encode() not in ciphertext
        assert b"secret-access-token" not in ciphertext
    assert vault.encrypt(None) is None
    assert vault.decrypt(None) is None


def test_another_key_cannot_decrypt_and_the_error_names_neither_key_nor_token():
    key, other = TokenVault.generate_key(), TokenVault.generate_key()
    ciphertext = TokenVault([key]).encrypt(TOKEN)
    with pytest.raises(ValueError) as caught:
        TokenVault([other]).decrypt(ciphertext)
    message = str(caught.value)
    for secret in (key, other, TOKEN):
        assert secret not in message
    assert caught.value.__cause__ is None or TOKEN not in str(caught.value.__cause__)


@pytest.mark.parametrize(
    "keys",
    [
        ["not-a-fernet-key-but-a-secret-nonetheless"],
        [TokenVault.generate_key(), "short-secret-xyz"],
    ],
)
def test_a_malformed_key_is_refused_without_quoting_it(keys):
    with pytest.raises(ValueError) as caught:
        TokenVault(keys)
    assert "TOKEN_ENCRYPTION_KEYS" in str(caught.value)
    for key in keys:
        assert key not in str(caught.value)
    assert caught.value.__cause__ is None


def test_no_key_at_all_is_refused():
    with pytest.raises(ValueError):
        TokenVault([])


@pytest.mark.parametrize("secret", [None, SecretStr(""), SecretStr("  , ")])
def test_without_configured_keys_the_vault_says_so(secret):
    with pytest.raises(TokenEncryptionNotConfigured):
        TokenVault.from_secret(secret)


def test_keys_from_settings_are_comma_separated_and_the_first_encrypts():
    new, old = TokenVault.generate_key(), TokenVault.generate_key()
    vault = TokenVault.from_secret(SecretStr(f" {new} , {old} ,"))
    # Written under the new key: the new key alone reads it, the old one does not.
    ciphertext = vault.encrypt(TOKEN)
    assert TokenVault([new]).decrypt(ciphertext) == TOKEN
    with pytest.raises(ValueError):
        TokenVault([old]).decrypt(ciphertext)
    # Both keys read what the old key wrote.
    assert vault.decrypt(TokenVault([old]).encrypt(TOKEN)) == TOKEN


def test_rotation_moves_a_token_under_the_new_key():
    new, old = TokenVault.generate_key(), TokenVault.generate_key()
    written_before = TokenVault([old]).encrypt(TOKEN)
    during = TokenVault([new, old])
    assert during.decrypt(written_before) == TOKEN
    rotated = during.rotate(written_before)
    assert rotated is not None and rotated != written_before
    assert TokenVault([new]).decrypt(rotated) == TOKEN
    with pytest.raises(ValueError):
        TokenVault([old]).decrypt(rotated)
    assert during.rotate(None) is None


# --- rotating the database ------------------------------------------------------------------


async def _brand(client: httpx.AsyncClient) -> tuple[uuid.UUID, dict[str, str], str]:
    agency = await new_agency(client)
    headers = agency.owner.headers
    customer = await make_client(client, headers)
    brand = await make_brand(client, headers, customer["id"])
    return agency.tenant_id, headers, brand["id"]


async def _connect_sandbox(client: httpx.AsyncClient, headers: dict[str, str], brand_id: str):
    started = await client.post(
        f"/v1/brands/{brand_id}/social-accounts/connect",
        params={"platform": "sandbox"},
        headers=headers,
    )
    assert started.status_code == 200, started.text
    back = httpx.URL(started.json()["authorization_url"])
    response = await client.get(back.path, params=back.params)
    assert response.status_code == 200, response.text
    return response.json()


async def _connect_network(
    client: httpx.AsyncClient, headers: dict[str, str], brand_id: str, platform: str
):
    started = await client.post(
        f"/v1/brands/{brand_id}/social-accounts/connect",
        params={"platform": platform},
        headers=headers,
    )
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(started.json()["authorization_url"], follow_redirects=False)
    assert consent.status_code == 302, consent.text
    back = httpx.URL(consent.headers["location"])
    response = await client.get(back.path, params=back.params)
    assert response.status_code == 200, response.text
    return response.json()


async def _stored(db, tenant_id: uuid.UUID) -> tuple[list[SocialAccount], list[SocialConnection]]:
    async with db.tenant_transaction(tenant_id) as session:
        accounts = (
            await session.scalars(select(SocialAccount).where(SocialAccount.tenant_id == tenant_id))
        ).all()
        connections = (
            await session.scalars(
                select(SocialConnection).where(SocialConnection.tenant_id == tenant_id)
            )
        ).all()
        return list(accounts), list(connections)


def _plaintexts(vault: TokenVault, accounts, connections) -> dict[tuple[str, str], str | None]:
    out: dict[tuple[str, str], str | None] = {}
    for account in accounts:
        out[(str(account.id), "access")] = vault.decrypt(account.access_token)
        out[(str(account.id), "refresh")] = vault.decrypt(account.refresh_token)
    for connection in connections:
        if connection.used_at is None:
            out[(str(connection.id), "verifier")] = vault.decrypt(connection.code_verifier)
    return out


async def test_rotate_tokens_reencrypts_every_agency_and_accounts_keep_syncing(
    client, db, resources, settings, platforms
):
    assert settings.token_encryption_keys is not None
    current = settings.token_encryption_keys.get_secret_value()
    new = TokenVault.generate_key()
    app_vault = kit_of(resources).vault

    agencies = []
    for platform in ("x", "linkedin_organization"):
        tenant_id, headers, brand_id = await _brand(client)
        await _connect_sandbox(client, headers, brand_id)
        await _connect_network(client, headers, brand_id, platform)
        # A connection started before the rotation and finished after it.
        pending = await client.post(
            f"/v1/brands/{brand_id}/social-accounts/connect",
            params={"platform": "sandbox"},
            headers=headers,
        )
        assert pending.status_code == 200, pending.text
        agencies.append((tenant_id, pending.json()["authorization_url"]))

    before = {}
    for tenant_id, _ in agencies:
        accounts, connections = await _stored(db, tenant_id)
        before[tenant_id] = _plaintexts(app_vault, accounts, connections)
        assert any(value for (_, kind), value in before[tenant_id].items() if kind == "refresh")

    try:
        done = await rotate_tokens(db, TokenVault([new, current]))
        assert done.tenants >= 2
        assert done.tokens >= sum(
            1 for values in before.values() for value in values.values() if value is not None
        )

        only_new = TokenVault([new])
        for tenant_id, _ in agencies:
            accounts, connections = await _stored(db, tenant_id)
            assert _plaintexts(only_new, accounts, connections) == before[tenant_id]
            for account in accounts:
                with pytest.raises(ValueError):
                    app_vault.decrypt(account.access_token)  # the old key alone no longer reads

        # Once the old key is gone, the accounts still sync: a process configured with the new
        # key only (what the operator deploys after the rotation) reads every token.
        rotated_settings = settings.model_copy(update={"token_encryption_keys": SecretStr(new)})
        kit = SocialKit(settings=rotated_settings, http=resources.http, redis=resources.redis)
        for tenant_id, _ in agencies:
            accounts, _ = await _stored(db, tenant_id)
            for account in accounts:
                outcome = await sync_account(db, kit, tenant_id, account.id)
                assert outcome.status == "synced", (account.platform, outcome)
            accounts, _ = await _stored(db, tenant_id)
            assert all(a.last_success_at is not None for a in accounts)
    finally:
        # Back under the key the rest of this test session runs with.
        await rotate_tokens(db, TokenVault([current, new]))

    for tenant_id, url in agencies:
        accounts, connections = await _stored(db, tenant_id)
        assert _plaintexts(app_vault, accounts, connections) == before[tenant_id]
        # The connection begun before both rotations still completes.
        back = httpx.URL(url)
        response = await client.get(back.path, params=back.params)
        assert response.status_code == 200, response.text
        assert response.json()["platform"] == "sandbox"


async def test_rotate_tokens_reencrypts_webhook_signing_secrets(client, db, settings):
    """Webhook secrets are encrypted with the same keys: a rotation re-encrypts them, and the
    secret the agency was shown still signs after the old key is gone."""
    from partners.models import WebhookEndpoint
    from tests.support.factories import new_agency

    agency = await new_agency(client)
    created = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["content.approved"]},
        headers=agency.owner.headers,
    )
    assert created.status_code == 201, created.text
    shown = created.json()["secret"]
    assert settings.token_encryption_keys is not None
    current = settings.token_encryption_keys.get_secret_value()
    new = TokenVault.generate_key()
    try:
        await rotate_tokens(db, TokenVault([new, current]))
        async with db.tenant_transaction(agency.tenant_id) as session:
            endpoint = await session.get(
                WebhookEndpoint, (agency.tenant_id, uuid.UUID(created.json()["id"]))
            )
            assert endpoint is not None
            assert TokenVault([new]).decrypt(endpoint.secret) == shown
            with pytest.raises(ValueError):
                TokenVault([current]).decrypt(endpoint.secret)
    finally:
        await rotate_tokens(db, TokenVault([current, new]))
