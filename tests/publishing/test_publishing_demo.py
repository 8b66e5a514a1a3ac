"""The demo agency shows publishing: a post already out on every demo brand's sandbox accounts,
with its figures and in the client's report, and one post planned for tomorrow 09:00 (in the
agency's timezone); loading the demo again changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.factories import login

MONTREAL = ZoneInfo("America/Montreal")


async def test_the_demo_shows_published_posts_with_figures_and_one_for_tomorrow(
    client, settings, clock
):
    from billing.budgets.demo import load_time_demo
    from publishing.demo import load_publishing_demo
    from social.demo import load_social_demo
    from tenants.demo import DEMO_BRANDS, DEMO_CLIENT_ID, load_demo
    from workflows.demo import load_content_demo

    # The demo agency is one for the whole run, shared with the other demo tests, and each of
    # them loads it relative to the time it runs: a date of our own would give its people
    # assignments not started yet or its accounts a sync not due. The clock is held still so
    # that "tomorrow" cannot change during the test.
    now = clock.set(datetime.now(UTC), tick=False)
    tomorrow = (now.astimezone(MONTREAL) + timedelta(days=1)).date()
    logins = await load_demo(settings)
    await load_time_demo(settings)
    await load_content_demo(settings)
    await load_social_demo(settings)
    await load_publishing_demo(settings)
    passwords = {email: password for _, email, password in logins}
    tokens = await login(
        client, "camille@demo.passerelle.app", passwords["camille@demo.passerelle.app"]
    )
    owner = {"Authorization": f"Bearer {tokens['access_token']}"}

    async def feeds() -> dict[str, list[dict[str, Any]]]:
        """Every demo sandbox account's posts, by its display name."""
        found = {}
        for brand_id, *_ in DEMO_BRANDS:
            r = await client.get(f"/v1/brands/{brand_id}/social-accounts", headers=owner)
            assert r.status_code == 200, r.text
            for account in r.json()["items"]:
                posts = await client.get(
                    f"/v1/social-accounts/{account['id']}/posts", headers=owner
                )
                assert posts.status_code == 200, posts.text
                found[account["display_name"]] = posts.json()["items"]
        return found

    async def scheduled() -> list[dict[str, Any]]:
        r = await client.get("/v1/publications", params={"status": "scheduled"}, headers=owner)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    first = await feeds()
    assert len(first) == 6  # two sandbox accounts for each of the three brands
    for name, posts in first.items():
        [post] = posts
        assert post["external_post_id"].startswith("sbx-"), name
        assert post["permalink"].endswith(f"/posts/{post['external_post_id']}"), name
        assert post["figures"] is not None, name
        assert post["figures"]["impressions"] > 0, name
    assert first["Vélo Urbain (Instagram)"][0]["text"] == (
        "Book your spring tune-up: the workshop is open six days a week."
    )

    [planned] = await scheduled()
    at = datetime.fromisoformat(planned["planned_at"]).astimezone(MONTREAL)
    assert (at.date(), at.hour, at.minute) == (tomorrow, 9, 0)
    r = await client.get(f"/v1/social-accounts/{planned['social_account_id']}", headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Pains du Plateau (Instagram)"

    # The client's report for the month lists the brands' top posts.
    month = f"{now.astimezone(MONTREAL):%Y-%m}"
    r = await client.get(f"/v1/clients/{DEMO_CLIENT_ID}/reports/{month}", headers=owner)
    assert r.status_code == 200, r.text
    tops = {b["name"]: b["top_posts"] for b in r.json()["brands"]}
    assert len(tops["Pains du Plateau"]) == 2
    assert all(p["engagements"] is not None for p in tops["Pains du Plateau"])

    await load_publishing_demo(settings)
    assert await feeds() == first
    assert await scheduled() == [planned]
