"""The demo agency's sandbox accounts carry their brand's name, in the database and after a sync,
and in the report a client reads."""

from __future__ import annotations

from sqlmodel import select

from infra.clock import utcnow
from social.jobs import enqueue_due
from social.models import SocialAccount
from tests.support.factories import login
from tests.support.worker import run_worker


async def _demo_accounts(db, tenant_id) -> list[SocialAccount]:
    async with db.tenant_transaction(tenant_id) as session:
        rows = await session.scalars(
            select(SocialAccount).where(SocialAccount.tenant_id == tenant_id)
        )
        return list(rows.all())


async def test_demo_sandbox_accounts_are_named_after_their_brand(client, db, resources, settings):
    from social.demo import load_social_demo
    from tenants.demo import DEMO_BRANDS, DEMO_SLUG, load_demo
    from tenants.models import Tenant

    logins = await load_demo(settings)
    await load_social_demo(settings)
    async with db.session() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
    expected = sorted(
        (brand_id, f"{slug.replace('-', '')}_{channel.lower()}", f"{name} ({channel})")
        for brand_id, _client, name, slug, _language in DEMO_BRANDS
        for channel in ("Instagram", "Facebook")
    )

    def names(accounts: list[SocialAccount]) -> list[tuple[object, str | None, str | None]]:
        return sorted((a.brand_id, a.handle, a.display_name) for a in accounts)

    assert names(await _demo_accounts(db, tenant_id)) == expected

    # The backfill asks the sandbox about each account: the names stay the brand's.
    await enqueue_due(db, resources.queue, utcnow())
    await run_worker(settings)
    synced = await _demo_accounts(db, tenant_id)
    assert all(a.last_success_at is not None for a in synced)
    assert names(synced) == expected

    # A second load adds nothing and keeps the names.
    await load_social_demo(settings)
    assert names(await _demo_accounts(db, tenant_id)) == expected

    # What the agency's owner reads: the brand's accounts by the brand's name.
    passwords = {email: password for _, email, password in logins}
    tokens = await login(
        client, "camille@demo.passerelle.app", passwords["camille@demo.passerelle.app"]
    )
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    pains, *_ = DEMO_BRANDS
    response = await client.get(f"/v1/brands/{pains[0]}/social-accounts", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    listed = body["items"]
    assert sorted(a["display_name"] for a in listed) == [
        "Pains du Plateau (Facebook)",
        "Pains du Plateau (Instagram)",
    ]
