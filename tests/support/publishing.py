"""What publishing tests share: accounts on the simulated platforms (or the sandbox), an item
that needs no approval aimed at them, and the publications the API shows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

from social.kit import kit_of
from social.models import SocialAccount
from tests.support.factories import World, login, unique
from tests.support.worker import run_due_jobs


async def sandbox_account(client: httpx.AsyncClient, world: World, brand: str = "brand") -> str:
    """A sandbox account connected through the real OAuth routes."""
    started = await client.post(
        f"/v1/brands/{world.brands[brand]['id']}/social-accounts/connect",
        params={"platform": "sandbox"},
        headers=world.boss,
    )
    assert started.status_code == 200, started.text
    url = httpx.URL(started.json()["authorization_url"])
    response = await client.get(url.path, params=dict(url.params))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def platform_account(
    db, resources, platforms, world: World, platform: str, *, brand: str = "brand", **fields: Any
) -> tuple[str, str]:
    """An account of `platform` on the simulator, stored as the OAuth callback stores one
    (tokens encrypted): (our account id, its external id)."""
    external_id = platforms.add_account(platform, **fields)
    token = platforms.issue_token(platform, external_id)
    vault = kit_of(resources).vault
    async with db.tenant_transaction(world.tenant_id) as session:
        account = SocialAccount(
            tenant_id=world.tenant_id,
            brand_id=uuid.UUID(world.brands[brand]["id"]),
            platform=platform,
            external_id=external_id,
            handle=unique("handle"),
            access_token=vault.encrypt(token["access_token"]),
            refresh_token=vault.encrypt(token.get("refresh_token")),
            token_expires_at=token.get("expires_at"),
            token_scope=token.get("scope"),
        )
        session.add(account)
    return str(account.id), external_id


async def approved_item(
    client: httpx.AsyncClient,
    world: World,
    accounts: list[str],
    *,
    variants: dict[str, str] | None = None,
    media: list[dict[str, Any]] | None = None,
    brand: str = "brand",
    title: str = "Launch",
) -> str:
    """An approved content item aimed at `accounts` (its brand's workflow has no step)."""
    headers = world.boss
    brand_id = world.brands[brand]["id"]
    response = await client.post(
        "/v1/workflow-templates",
        json={"name": unique("Direct"), "steps": [], "brand_ids": [brand_id]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        f"/v1/brands/{brand_id}/content",
        json={
            "title": title,
            "variants": variants or {"x": "Hello"},
            "media": media or [],
            "social_account_ids": accounts,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    item = str(response.json()["id"])
    response = await client.post(f"/v1/content/{item}/submit", json={}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "approved"
    return item


async def schedule(
    client: httpx.AsyncClient, world: World, item: str, at: datetime, *, expect: int = 200
) -> httpx.Response:
    response = await client.post(
        f"/v1/content/{item}/schedule",
        json={"planned_at": at.isoformat()},
        headers=world.boss,
    )
    assert response.status_code == expect, response.text
    return response


async def publications(client: httpx.AsyncClient, world: World, item: str) -> list[dict]:
    response = await client.get(f"/v1/content/{item}/publications", headers=world.boss)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def publication(client: httpx.AsyncClient, world: World, item: str) -> dict:
    [only] = await publications(client, world, item)
    return only


async def relogin(client: httpx.AsyncClient, world: World) -> None:
    """A fresh access token for the owner, after the clock moved past the last one's life."""
    body = await login(client, world.owner.email, tenant=world.agency.slug)
    world.agency.owner.access_token = body["access_token"]


async def minute(db, resources, settings) -> None:
    """What the worker does each minute for publishing: the sweep queues what is due (or
    left by a dead worker), then the due jobs run."""
    from publishing.jobs import sweep_publications

    await sweep_publications({"db": db, "redis": resources.queue})
    await run_due_jobs(settings)
