"""The demo agency shows a working inbox: its sandbox accounts, read as the worker's sweep reads
them, fill the inbox with the sandbox's comments, mentions and messages; negative ones come
first with a label, a watch-list word on Pains du Plateau goes to the brand's lead, every item
has its response deadline from the client's policy, and the saved replies are ready in French
and English. Loading the demo again changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from tests.support.factories import login
from tests.support.inbox import inbound, store


async def test_the_demo_inbox_fills_from_the_sandbox_with_rules_and_deadlines(
    client, settings, db, resources, clock
):
    from inbox.demo import NEGATIVE_LABEL, SAVED_REPLIES, WATCH_LIST, load_inbox_demo
    from inbox.jobs import poll_inbox_account
    from inbox.models import InboxRule, ResponsePolicyRow, SavedReply
    from inbox.rules import mentions_any
    from inbox.templates import render
    from social.demo import load_social_demo
    from tenants.demo import DEMO_BRANDS, DEMO_CLIENTS, DEMO_SLUG, load_demo
    from tenants.models import Brand, Membership, Tenant, User

    # The demo agency is shared with the other demo tests, each loading it relative to the time
    # it runs (see test_publishing_demo): the clock is the real time, held still.
    clock.set(datetime.now(UTC), tick=False)
    logins = await load_demo(settings)
    await load_social_demo(settings)
    await load_inbox_demo(settings)
    passwords = {email: password for _, email, password in logins}
    tokens = await login(
        client, "camille@demo.passerelle.app", passwords["camille@demo.passerelle.app"]
    )
    owner = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with db.session() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
    assert tenant_id is not None
    async with db.tenant_transaction(tenant_id) as session:
        camille = await session.scalar(
            select(User.id)
            .join(Membership, col(User.id) == col(Membership.user_id))
            .where(Membership.tenant_id == tenant_id, User.email == "camille@demo.passerelle.app")
        )

    accounts: dict[str, tuple[uuid.UUID, str]] = {}
    for brand_id, *_ in DEMO_BRANDS:
        r = await client.get(f"/v1/brands/{brand_id}/social-accounts", headers=owner)
        assert r.status_code == 200, r.text
        for account in r.json()["items"]:
            accounts[account["id"]] = (brand_id, account["external_id"])
    assert len(accounts) == 6

    # What the sweep queues for each account due: a read of the sandbox. The job itself, run
    # here rather than waiting for the worker's minute.
    ctx: dict[str, Any] = {
        "db": db,
        "settings": settings,
        "resources": resources,
        "redis": resources.queue,
    }
    for account_id in accounts:
        await poll_inbox_account(ctx, str(tenant_id), account_id)

    async def inbox(**params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": 200} | ({"cursor": cursor} if cursor else {})
            r = await client.get("/v1/inbox", params=query, headers=owner)
            assert r.status_code == 200, r.text
            found += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if not cursor:
                return found

    first = await inbox()
    by_account = {a: [i for i in first if i["social_account_id"] == a] for a in accounts}
    # The sandbox's every account has a daily burst of 15 comments: two days read give some.
    assert all(len(items) >= 15 for items in by_account.values()), {
        a: len(items) for a, items in by_account.items()
    }
    kinds = {i["kind"] for i in first}
    assert {"comment", "message"} <= kinds
    assert {i["language"] for i in first} >= {"fr", "en"}

    negative = [i for i in first if i["sentiment"] == "negative"]
    assert negative
    for item in negative:
        assert item["priority"] in ("high", "urgent"), item
        assert NEGATIVE_LABEL in item["labels"], item

    # Every item awaiting an answer is on the client's clock.
    waiting = [i for i in first if i["needs_reply"] and i["status"] != "done"]
    assert waiting
    assert all(i["response_due_at"] is not None for i in waiting)
    assert {i["sla"] for i in waiting} <= {"within", "at_risk", "breached"}

    # On Pains du Plateau, a watch-list word sends the item to the brand's lead (Camille).
    pains = DEMO_BRANDS[0][0]
    for item in first:
        if item["brand_id"] == str(pains) and mentions_any(item["text"], WATCH_LIST):
            assert item["assignee_id"] == str(camille), item
            assert "veille" in item["labels"], item
    pains_account = next(a for a, (b, _) in accounts.items() if b == pains)
    [boycott] = await store(
        db,
        tenant_id,
        uuid.UUID(pains_account),
        inbound(accounts[pains_account][1], "Boycott! Pire boulangerie du Plateau."),
    )
    assert boycott.assignee_id == camille
    assert "veille" in boycott.labels and boycott.priority == "high"

    # A second read of the same accounts finds what it already has.
    assert [await poll_inbox_account(ctx, str(tenant_id), a) for a in accounts] == [0] * 6

    async def setup() -> dict[str, Any]:
        async with db.tenant_transaction(tenant_id) as session:
            replies = (
                await session.scalars(select(SavedReply).where(SavedReply.tenant_id == tenant_id))
            ).all()
            return {
                "policies": await session.scalar(
                    select(func.count())
                    .select_from(ResponsePolicyRow)
                    .where(ResponsePolicyRow.tenant_id == tenant_id)
                ),
                "rules": sorted(
                    (str(r.brand_id), r.position, r.name)
                    for r in (
                        await session.scalars(
                            select(InboxRule).where(InboxRule.tenant_id == tenant_id)
                        )
                    ).all()
                ),
                "replies": sorted((r.language, r.name, r.body) for r in replies),
                "watch": (await session.get(Brand, (tenant_id, pains))).guidelines["watch_list"],
            }

    before = await setup()
    assert before["policies"] == len(DEMO_CLIENTS)
    assert len(before["rules"]) == len(DEMO_BRANDS) + 1
    assert {language for language, _, _ in before["replies"]} == {"fr", "en"}
    assert before["watch"] == list(WATCH_LIST)
    for reply in SAVED_REPLIES:
        text = render(
            reply.body,
            {"first_name": "Geneviève", "brand": "Pains du Plateau", "agent_first_name": "Léa"},
        )
        assert "Geneviève" in text and "{" not in text

    await load_inbox_demo(settings)
    assert await setup() == before
