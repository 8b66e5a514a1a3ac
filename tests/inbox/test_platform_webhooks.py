"""The platforms' webhooks into the inbox, end to end: the subscription checks, deliveries
signed by the platform simulator as Meta and LinkedIn sign them, stored once and turned into
items by the worker under the agency that connected the account (and no other), duplicates
and reorderings that change nothing, and deliveries that are refused with nothing stored."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import func, select, text

from devtools.platforms import PlatformSimulator
from inbox.jobs import DRAIN_JOB, POLL_JOB
from inbox.models import PlatformEvent
from inbox.service.webhooks import MAX_BODY
from tests.conftest import SOCIAL_CLIENTS
from tests.support.factories import World, new_world, walk
from tests.support.problems import assert_problem
from tests.support.publishing import platform_account
from tests.support.served import served
from tests.support.worker import run_worker

FB = "facebook_page"
IG = "instagram_business"
LI = "linkedin_organization"
VERIFY_TOKEN = "le-jeton-de-verification"
DRAIN_WAIT = 2.5
"""Seconds ahead the worker looks for jobs: a drain asked for the end of this second."""
ASKED = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)


@dataclass
class Page:
    world: World
    platform: str
    account_id: str
    external_id: str


async def _page(client, db, resources, platforms, platform: str = FB) -> Page:
    world = await new_world(client)
    account_id, external_id = await platform_account(db, resources, platforms, world, platform)
    return Page(world, platform, account_id, external_id)


def _say(platforms: PlatformSimulator, page: Page, text: str, **kw: Any) -> str:
    """Someone comments on the page (the simulator keeps it; the test delivers the webhook)."""
    kw.setdefault("author_id", "24001")
    kw.setdefault("author_name", "Marie Tremblay")
    return platforms.add_community_item(
        page.platform, page.external_id, kw.pop("kind", "comment"), text, push=False, **kw
    )


def _say_pushed(platforms: PlatformSimulator, page: Page, text: str, **kw: Any) -> str:
    """Someone comments, and the platform pushes it to the API on its own."""
    kw.setdefault("author_id", "24001")
    return platforms.add_community_item(
        page.platform, page.external_id, kw.pop("kind", "comment"), text, **kw
    )


async def _deliver(client, platform: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    response: httpx.Response = await client.post(
        f"/v1/platform-webhooks/{platform}", content=body, headers=headers
    )
    return response


async def _push(
    client, platforms: PlatformSimulator, platform: str, ids: list[str]
) -> dict[str, Any]:
    body, headers = platforms.webhook_payload(platform, ids)
    response = await _deliver(client, platform, body, headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _inbox(client, world: World) -> dict[str, dict[str, Any]]:
    """The agency's inbox by the platform's item id."""
    return {i["external_id"]: i for i in await walk(client, "/v1/inbox", world.boss)}


async def _drained(settings) -> None:
    """Run the worker until the deliveries are processed: the receiver asks for a drain at
    once on a second's first delivery, and for another just after the second ends (so one
    posted in the same second as an earlier one waits for that)."""
    await run_worker(settings, soon=DRAIN_WAIT)


async def _events(db) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(PlatformEvent)) or 0)


def _meta_sign(body: bytes, platform: str = FB) -> dict[str, str]:
    secret = SOCIAL_CLIENTS[platform]["client_secret"].encode()
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


# --- the subscription checks ------------------------------------------------------------------


@pytest.fixture
def verify_token(resources, monkeypatch) -> str:
    """The verify token given to Meta's webhook settings, as PLATFORM_WEBHOOK_VERIFY_TOKEN."""
    monkeypatch.setattr(
        resources,
        "settings",
        resources.settings.model_copy(
            update={"platform_webhook_verify_token": SecretStr(VERIFY_TOKEN)}
        ),
    )
    return VERIFY_TOKEN


META_CHECKS = [
    # (query, status, problem type or the text answered)
    (
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        200,
        "1158201444",
    ),
    (
        {"hub.mode": "subscribe", "hub.verify_token": "autre", "hub.challenge": "1158201444"},
        401,
        "platform-webhook-signature",
    ),
    ({"hub.mode": "subscribe", "hub.challenge": "1"}, 401, "platform-webhook-signature"),
    (
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        401,
        "platform-webhook-signature",
    ),
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}, 422, "platform-webhook-body"),
]


@pytest.mark.parametrize("platform", [FB, IG])
@pytest.mark.parametrize(("query", "status", "answer"), META_CHECKS)
async def test_meta_subscription_check(platform, query, status, answer, client, verify_token):
    response = await client.get(f"/v1/platform-webhooks/{platform}", params=query)
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.text == answer
        assert response.headers["content-type"].startswith("text/plain")
    else:
        assert_problem(response, status, answer)


async def test_meta_check_without_a_verify_token_configured_is_refused(client, settings):
    assert settings.platform_webhook_verify_token is None
    response = await client.get(
        f"/v1/platform-webhooks/{FB}",
        params={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
    )
    assert_problem(response, 503, "platform-webhook-not-configured")


async def test_linkedin_check_answers_the_code_and_its_hmac(client, settings):
    response = await client.get(
        f"/v1/platform-webhooks/{LI}", params={"challengeCode": "890e4d0f-1f1c-4fd9-a0e2"}
    )
    assert response.status_code == 200, response.text
    secret = SOCIAL_CLIENTS[LI]["client_secret"].encode()
    assert response.json() == {
        "challengeCode": "890e4d0f-1f1c-4fd9-a0e2",
        "challengeResponse": hmac.new(
            secret, b"890e4d0f-1f1c-4fd9-a0e2", hashlib.sha256
        ).hexdigest(),
    }
    assert_problem(await client.get(f"/v1/platform-webhooks/{LI}"), 422, "platform-webhook-body")


@pytest.mark.parametrize("platform", ["x", "tiktok", "myspace", "sandbox"])
async def test_platforms_that_push_nothing_are_not_found(platform, client, settings):
    assert_problem(
        await client.get(f"/v1/platform-webhooks/{platform}", params={"hub.challenge": "1"}),
        404,
        "platform-webhook-unknown",
    )
    body = b'{"object": "page", "entry": []}'
    assert_problem(
        await _deliver(client, platform, body, _meta_sign(body)), 404, "platform-webhook-unknown"
    )


# --- deliveries -------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", [FB, IG])
async def test_a_signed_delivery_becomes_an_item_of_the_agency_that_owns_the_account(
    platform, client, db, resources, settings, platforms
):
    mine = await _page(client, db, resources, platforms, platform)
    theirs = await _page(client, db, resources, platforms, platform)
    comment = _say(platforms, mine, "Vous ouvrez à quelle heure dimanche?")
    unrelated = _say(platforms, theirs, "Hello!")
    stored = await _events(db)

    answer = await _push(client, platforms, platform, [comment])
    assert answer == {"received": True, "duplicate": False}
    assert await _events(db) == stored + 1
    # Stored before anything else: the inbox fills when the worker has processed it.
    assert await _inbox(client, mine.world) == {}
    await _drained(settings)

    inbox = await _inbox(client, mine.world)
    assert list(inbox) == [comment]
    item = inbox[comment]
    assert (item["platform"], item["kind"], item["text"]) == (
        platform,
        "comment",
        "Vous ouvrez à quelle heure dimanche?",
    )
    assert item["social_account_id"] == mine.account_id
    assert item["author"]["id"] == "24001"
    assert item["language"] == "fr"
    # The other agency's inbox has nothing of it (nor of its own, never delivered).
    assert await _inbox(client, theirs.world) == {}
    assert unrelated not in inbox


async def test_the_same_delivery_twice_or_the_same_item_twice_is_one_item(
    client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms)
    first = _say(platforms, page, "Est-ce que vous livrez à Laval?")
    second = _say(platforms, page, "Et à Longueuil?", author_id="24002")
    stored = await _events(db)

    body, headers = platforms.webhook_payload(FB, [first])
    assert (await _deliver(client, FB, body, headers)).json()["duplicate"] is False
    # Meta retries a delivery it thinks failed: the same bytes again.
    again = await _deliver(client, FB, body, headers)
    assert again.status_code == 200, again.text
    assert again.json() == {"received": True, "duplicate": True}
    assert await _events(db) == stored + 1
    # Another delivery that carries the first item again, with a new one.
    assert (await _push(client, platforms, FB, [first, second]))["duplicate"] is False
    await _drained(settings)
    await _push(client, platforms, FB, [second])
    await _drained(settings)

    inbox = await _inbox(client, page.world)
    assert sorted(inbox) == sorted([first, second])
    detail = await client.get(f"/v1/inbox/{inbox[first]['id']}", headers=page.world.boss)
    assert detail.json()["version"] == inbox[first]["version"]


async def test_a_reply_delivered_before_its_parent_is_attached_when_the_parent_comes(
    client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms)
    # Meta's times are whole seconds: a minute apart, the thread's order is the platform's.
    parent = _say(platforms, page, "Le brunch est servi jusqu'à quelle heure?", created_at=ASKED)
    reply = _say(
        platforms,
        page,
        "Moi aussi je me demandais!",
        kind="reply",
        parent=parent,
        author_id="9",
        created_at=ASKED + timedelta(minutes=1),
    )

    await _push(client, platforms, FB, [reply])
    await _drained(settings)
    alone = (await _inbox(client, page.world))[reply]
    assert (alone["parent_id"], alone["parent_external_id"]) == (None, parent)

    await _push(client, platforms, FB, [parent])
    await _drained(settings)
    inbox = await _inbox(client, page.world)
    assert inbox[reply]["parent_id"] == inbox[parent]["id"]
    assert inbox[reply]["thread_id"] == inbox[parent]["thread_id"] is not None
    detail = await client.get(f"/v1/inbox/{inbox[reply]['id']}", headers=page.world.boss)
    assert [t["external_id"] for t in detail.json()["thread"]] == [parent, reply]


async def test_a_delivery_claimed_by_a_drain_whose_worker_died_is_processed_by_the_next_one(
    client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms)
    comment = _say(platforms, page, "Vous faites des gâteaux de fête sur commande?")
    await _push(client, platforms, FB, [comment])
    # Another worker's drain claimed the delivery (its row locked, as a drain's batch is) and
    # has not finished: this worker's drains pass it by instead of waiting or storing it twice.
    async with db.session() as elsewhere:
        held = await elsewhere.execute(
            text(
                "SELECT id FROM platform_events WHERE processed_at IS NULL "
                "AND body -> 'entry' -> 0 ->> 'id' = :page FOR UPDATE"
            ),
            {"page": page.external_id},
        )
        assert len(held.all()) == 1
        await _drained(settings)
        assert await _inbox(client, page.world) == {}
        # That worker dies: its connection goes, its transaction rolls back, the claim with it.
    # The next drain (the sweep's, here asked for at once) processes the delivery, once.
    await resources.queue.enqueue_job(DRAIN_JOB, "test", _job_id=f"test-drain:{comment}")
    await _drained(settings)
    assert list(await _inbox(client, page.world)) == [comment]
    await resources.queue.enqueue_job(DRAIN_JOB, "test", _job_id=f"test-drain-again:{comment}")
    await _drained(settings)
    assert list(await _inbox(client, page.world)) == [comment]


@pytest.mark.parametrize(
    ("label", "make"),
    [
        ("signed with another secret", lambda p, ids: p.webhook_payload(FB, ids, secret="autre")),
        (
            "no signature",
            lambda p, ids: (p.webhook_payload(FB, ids)[0], {"Content-Type": "application/json"}),
        ),
        (
            "signature of another body",
            lambda p, ids: (
                p.webhook_payload(FB, ids)[0] + b" ",
                p.webhook_payload(FB, ids)[1],
            ),
        ),
        (
            "not sha256",
            lambda p, ids: (
                p.webhook_payload(FB, ids)[0],
                {"Content-Type": "application/json", "X-Hub-Signature-256": "sha1=" + "0" * 40},
            ),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_a_bad_signature_is_refused_and_nothing_is_stored(
    label, make, client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms)
    comment = _say(platforms, page, "Vous êtes des voleurs")
    stored = await _events(db)
    body, headers = make(platforms, [comment])
    response = await _deliver(client, FB, body, headers)
    assert_problem(response, 401, "platform-webhook-signature")
    assert await _events(db) == stored
    await _drained(settings)
    assert await _inbox(client, page.world) == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json at all", 422),
        (b'["an", "array"]', 422),
        (b"\xff\xfe\x00garbage", 422),
        (b'{"object": "page", "entry": "' + b"x" * MAX_BODY + b'"}', 413),
    ],
    ids=["not-json", "not-an-object", "not-utf8", "too-large"],
)
async def test_a_body_that_is_no_event_is_a_problem_and_nothing_is_stored(
    body, status, client, db, settings
):
    stored = await _events(db)
    response = await _deliver(client, FB, body, _meta_sign(body))
    assert_problem(response, status)
    assert await _events(db) == stored


def _signed_event(**extra: Any) -> bytes:
    return json.dumps({"object": "page", "entry": [], **extra}).encode()


_CHARSET = {"Content-Type": "application/json; charset=utf-8"}
_SUFFIX = {"Content-Type": "application/vnd.meta+json"}


@pytest.mark.parametrize(
    ("label", "body", "headers", "status", "stored"),
    [
        # api/delivery_lane.py answers these itself ...
        ("plain", _signed_event(n=1), {}, 200, 1),
        ("charset", _signed_event(n=2), _CHARSET, 200, 1),
        # ... and hands these to the route, which answers as it always has.
        ("json-suffix", _signed_event(n=3), _SUFFIX, 200, 1),
        ("idempotency-key", _signed_event(n=4), {"Idempotency-Key": "delivery-4"}, 200, 1),
        ("not-json-media", _signed_event(n=5), {"Content-Type": "text/plain"}, 415, 0),
        ("nul", _signed_event(note="\x00"), {}, 422, 0),
    ],
    ids=["plain", "charset", "json-suffix", "idempotency-key", "not-json-media", "nul"],
)
async def test_every_way_a_delivery_comes_gets_the_routes_answer(
    label, body, headers, status, stored, client, db
):
    before = await _events(db)
    response = await _deliver(client, FB, body, {**_meta_sign(body), **headers})
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json() == {"received": True, "duplicate": False}
    elif label == "nul":
        assert_problem(response, 422)
        assert [e["pointer"] for e in response.json()["errors"]] == ["/note"]
    else:
        assert_problem(response, status)
    assert response.headers["X-Request-ID"]
    assert await _events(db) == before + stored


async def test_a_delivery_is_counted_under_its_route_template_whatever_its_answer(client):
    def count(status: str) -> float:
        labels = {"route": "/v1/platform-webhooks/{platform}", "method": "POST", "status": status}
        return REGISTRY.get_sample_value("passerelle_http_requests_total", labels) or 0.0

    accepted, refused = count("200"), count("401")
    body = _signed_event(n=6)
    assert (await _deliver(client, FB, body, _meta_sign(body))).status_code == 200
    assert (await _deliver(client, FB, body + b" ", _meta_sign(body))).status_code == 401
    assert (count("200"), count("401")) == (accepted + 1, refused + 1)


async def test_a_well_formed_event_of_another_shape_stores_nothing_in_any_inbox(
    client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms)
    for payload in (
        {"object": "page", "entry": [{"id": page.external_id, "time": 1, "changes": []}]},
        {"object": "page", "entry": [{"id": "999", "changes": [{"field": "ratings"}]}]},
        {"object": "whatsapp_business_account", "entry": []},
    ):
        body = json.dumps(payload).encode()
        response = await _deliver(client, FB, body, _meta_sign(body))
        assert response.status_code == 200, response.text
    await _drained(settings)
    assert await _inbox(client, page.world) == {}
    # Each was processed (none left for the sweep to retry).
    async with db.session() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(PlatformEvent)
            .where(PlatformEvent.processed_at.is_(None))  # type: ignore[union-attr]
        )
    assert left == 0


async def test_a_linkedin_notification_makes_the_worker_read_the_organizations_comments(
    client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms, LI)
    other = await _page(client, db, resources, platforms, LI)
    comment = platforms.add_community_item(
        LI,
        page.external_id,
        "comment",
        "Congratulations on the new office!",
        author_id="urn:li:person:aB3xYz",
        author_name="Emily Walsh",
        push=False,
    )
    body, headers = platforms.webhook_payload(LI, [comment])
    assert "X-LI-Signature" in headers or "x-li-signature" in headers

    bad = await _deliver(client, LI, body, {**headers, "X-LI-Signature": "hmacsha256=00"})
    assert_problem(bad, 401, "platform-webhook-signature")

    response = await _deliver(client, LI, body, headers)
    assert response.status_code == 200, response.text
    await _drained(settings)  # the event, then the read it asks for
    inbox = await _inbox(client, page.world)
    assert [i["text"] for i in inbox.values()] == ["Congratulations on the new office!"]
    assert [i["platform"] for i in inbox.values()] == [LI]
    assert await _inbox(client, other.world) == {}
    # The comments were read through the API (the notification carries no text).
    assert platforms.count(LI, "/rest/socialActions/") >= 1


@pytest.mark.parametrize("platform", [FB, IG])
async def test_a_mention_is_read_in_full_since_its_webhook_only_says_where_it_is(
    platform, client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms, platform)
    mention = _say(platforms, page, "Le meilleur brunch du Plateau, merci!", kind="mention")
    await _push(client, platforms, platform, [mention])
    await _drained(settings)
    [item] = (await _inbox(client, page.world)).values()
    assert (item["kind"], item["text"]) == ("mention", "Le meilleur brunch du Plateau, merci!")


@pytest.mark.parametrize("platform", [FB, IG])
async def test_a_private_message_is_an_item_answered_in_its_conversation(
    platform, client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms, platform)
    message = _say(platforms, page, "Bonjour, ma commande 4411 est en retard", kind="message")
    await _push(client, platforms, platform, [message])
    await _drained(settings)
    [item] = (await _inbox(client, page.world)).values()
    assert (item["kind"], item["text"], item["author"]["id"]) == (
        "message",
        "Bonjour, ma commande 4411 est en retard",
        "24001",
    )
    # Already private: "private" makes no sense here.
    refused = await client.post(
        f"/v1/inbox/{item['id']}/reply",
        json={"text": "Désolés!", "private": True},
        headers=page.world.boss,
    )
    assert_problem(refused, 422)
    sent = await client.post(
        f"/v1/inbox/{item['id']}/reply",
        json={"text": "Désolés! Elle part aujourd'hui."},
        headers=page.world.boss,
    )
    assert sent.status_code == 202, sent.text
    await _drained(settings)
    [answer] = platforms.replies_of(platform, page.external_id)
    assert (answer.text, answer.recipient, answer.private) == (
        "Désolés! Elle part aujourd'hui.",
        "24001",
        False,
    )
    detail = await client.get(f"/v1/inbox/{item['id']}", headers=page.world.boss)
    [action] = detail.json()["actions"]
    assert (action["status"], action["external_id"]) == ("sent", answer.id)


@pytest.fixture
async def api_url(settings) -> AsyncIterator[str]:
    """The API on a real loopback port, for the simulator to push its webhooks to."""
    from api.app import create_app

    async with served(create_app(settings)) as url:
        yield url


async def test_the_simulators_pushes_duplicated_reordered_or_mis_signed_give_each_item_once(
    client, db, resources, settings, platforms, api_url
):
    page = await _page(client, db, resources, platforms)
    platforms.set_webhook_target(api_url)
    platforms.webhook_faults(duplicate=1)
    twice = _say_pushed(platforms, page, "Allo! Vous êtes ouverts le 24?")
    platforms.webhook_faults(out_of_order=1)
    parent = _say_pushed(platforms, page, "Le menu des fêtes est en ligne?")
    reply = _say_pushed(platforms, page, "+1, je cherche aussi", kind="reply", parent=parent)
    platforms.webhook_faults(bad_signature=1)
    lost = _say_pushed(platforms, page, "Personne ne répond au téléphone")
    assert await asyncio.to_thread(platforms.wait_webhooks, 30)

    statuses = sorted(d.status or 0 for d in platforms.webhook_deliveries)
    assert statuses == [200, 200, 200, 200, 401], platforms.webhook_deliveries
    await _drained(settings)
    inbox = await _inbox(client, page.world)
    assert sorted(inbox) == sorted([twice, parent, reply])
    assert inbox[reply]["parent_id"] == inbox[parent]["id"]

    # The refused push is not lost for good: the catch-up read (queued by the sweep after a
    # webhook gap) finds what it announced.
    await resources.queue.enqueue_job(POLL_JOB, str(page.world.tenant_id), page.account_id)
    await _drained(settings)
    inbox = await _inbox(client, page.world)
    assert sorted(inbox) == sorted([twice, parent, reply, lost])
    assert inbox[reply]["parent_id"] == inbox[parent]["id"]


async def test_a_comment_its_author_deleted_shows_as_deleted_and_cannot_be_answered(
    client, db, resources, settings, platforms
):
    page = await _page(client, db, resources, platforms)
    comment = _say(platforms, page, "Franchement décevant, le service")
    await _push(client, platforms, FB, [comment])
    await _drained(settings)
    # The author deletes it: Meta sends the same comment with verb "remove" and no message.
    said = platforms.community_item(FB, comment)
    said.deleted, said.verb = True, "remove"
    await _push(client, platforms, FB, [comment])
    await _drained(settings)

    [item] = (await _inbox(client, page.world)).values()
    assert item["moderation"] == "deleted"
    assert item["text"] == "Franchement décevant, le service"  # what was said stays on record
    refused = await client.post(
        f"/v1/inbox/{item['id']}/reply", json={"text": "Désolés"}, headers=page.world.boss
    )
    assert_problem(refused, 422, "inbox-not-allowed-on-platform")
