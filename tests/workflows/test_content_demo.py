"""The demo agency's posts: one in every status, with client approvals waiting."""

from __future__ import annotations

from tests.support.factories import login


async def test_the_demo_has_content_in_every_status_and_pending_client_approvals(client, settings):
    from billing.budgets.demo import load_time_demo
    from tenants.demo import DEMO_BRANDS, load_demo
    from workflows.demo import load_content_demo

    logins = await load_demo(settings)
    await load_time_demo(settings)
    await load_content_demo(settings)
    await load_content_demo(settings)  # idempotent: a second load adds nothing
    passwords = {email: password for _, email, password in logins}

    async def headers_of(email: str) -> dict[str, str]:
        tokens = await login(client, email, passwords[email])
        return {"Authorization": f"Bearer {tokens['access_token']}"}

    owner = await headers_of("camille@demo.passerelle.app")
    statuses: list[str] = []
    for brand_id, *_ in DEMO_BRANDS:
        r = await client.get(f"/v1/brands/{brand_id}/content", headers=owner)
        assert r.status_code == 200, r.text
        statuses += [item["status"] for item in r.json()["items"]]
    assert sorted(set(statuses)) == sorted(
        [
            "draft",
            "in_review",
            "awaiting_client",
            "approved",
            "scheduled",
            "changes_requested",
            "rejected",
            "expired",
        ]
    )
    # Two posts await a client: an account and an e-mail address. (Counted by status: the
    # publishing demo, when loaded, adds published and planned posts to the same brands.)
    assert statuses.count("awaiting_client") == 2

    julie = await headers_of("julie@client.demo.passerelle.app")
    r = await client.get("/v1/portal/inbox", headers=julie)
    assert r.status_code == 200, r.text
    inbox = r.json()["items"]
    assert [i["title"] for i in inbox] == ["Portes ouvertes"]
    r = await client.get(f"/v1/content/{inbox[0]['id']}/comments", headers=julie)
    assert [c["body"] for c in r.json()["items"]] == ["Julie, l'heure vous convient-elle ?"]
