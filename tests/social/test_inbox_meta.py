"""The inbox side of the Facebook Page and Instagram connectors, against the platform simulator
over real HTTP with a real RateBudget on Redis: webhook parsing on real-shaped payloads, the
simulator's signed pushes and their faults, public and private replies, private messages,
moderation, reconciliation after an unclear answer, and the catch-up poll."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from devtools.platforms import PlatformSimulator
from infra.settings import Settings
from social.connectors.meta import (
    FacebookPageConnector,
    InstagramBusinessConnector,
    parse_webhook,
)
from social.connectors.types import (
    InboundItem,
    InboxConnector,
    InboxKind,
    ItemRef,
    Moderation,
    OutcomeUnknown,
    PublishRejected,
    RateLimited,
    TokenSet,
)
from social.ratebudget import RateBudget
from tests.support.connectors import account, budget_prefix, build, make_budget, redis_client

FB = "facebook_page"
IG = "instagram_business"
BOTH = (FB, IG)
DAY = 86_400
T0 = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
"""A fixed time for the payloads (1773500966 in epoch seconds)."""


# ---------------------------------------------------------------- parse_webhook


def page_feed(value: dict[str, Any], page: str = "1001") -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [{"id": page, "time": 1773500970, "changes": [{"field": "feed", "value": value}]}],
    }


def fb_comment(**changes: Any) -> dict[str, Any]:
    """A Page feed comment notification as Graph sends it (a visitor's top-level comment)."""
    value = {
        "from": {"id": "24001", "name": "Marie Tremblay"},
        "post": {
            "status_type": "added_photos",
            "is_published": True,
            "updated_time": "2026-03-14T15:09:26+0000",
            "permalink_url": "https://www.facebook.com/1001/posts/5005",
            "promotion_status": "inactive",
            "id": "1001_5005",
        },
        "message": "Vous ouvrez à quelle heure dimanche?",
        "post_id": "1001_5005",
        "comment_id": "5005_7007",
        "created_time": 1773500966,
        "item": "comment",
        "parent_id": "1001_5005",
        "verb": "add",
    }
    return value | changes


def messaging(*events: dict[str, Any], source: str = "page", account: str = "1001") -> Any:
    return {
        "object": source,
        "entry": [{"id": account, "time": 1773500966000, "messaging": list(events)}],
    }


def message_event(sender: str, recipient: str, mid: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": recipient},
        "timestamp": 1773500966000,
        "message": {"mid": mid, "text": text, **extra},
    }


def instagram(field: str, value: dict[str, Any], user: str = "17841400000000001") -> Any:
    return {
        "object": "instagram",
        "entry": [{"id": user, "time": 1773500966, "changes": [{"field": field, "value": value}]}],
    }


IG_COMMENT = {
    "from": {"id": "8801", "username": "gab.lavoie"},
    "media": {"id": "17900000000000001", "media_product_type": "FEED"},
    "id": "17800000000000002",
    "text": "Trop beau! 😍",
}


def item(**fields: Any) -> InboundItem:
    base: dict[str, Any] = {
        "account_external_id": "1001",
        "external_id": "5005_7007",
        "kind": InboxKind.comment,
        "text": "Vous ouvrez à quelle heure dimanche?",
        "author_id": "24001",
        "author_name": "Marie Tremblay",
        "created_at": T0,
        "thread_external_id": "1001_5005",
    }
    return InboundItem(**(base | fields))


PARSED: list[tuple[str, Any, list[InboundItem]]] = [
    ("facebook top-level comment", page_feed(fb_comment()), [item()]),
    (
        "facebook reply to a comment",
        page_feed(fb_comment(comment_id="5005_7008", parent_id="5005_7007", message="Dès 10 h")),
        [
            item(
                external_id="5005_7008",
                kind=InboxKind.reply,
                text="Dès 10 h",
                parent_external_id="5005_7007",
            )
        ],
    ),
    (
        "facebook comment with a photo",
        page_feed(fb_comment(photo="https://scontent.xx.fbcdn.net/v/photo.jpg")),
        [item(media_urls=("https://scontent.xx.fbcdn.net/v/photo.jpg",))],
    ),
    (
        "facebook comment edited",
        page_feed(fb_comment(verb="edited", message="Et lundi?")),
        [item(text="Et lundi?")],
    ),
    (
        "facebook comment removed (no message)",
        page_feed({k: v for k, v in fb_comment(verb="remove").items() if k != "message"}),
        [item(text="", removed=True)],
    ),
    ("facebook comment hidden", page_feed(fb_comment(verb="hide")), [item(hidden=True)]),
    ("facebook comment shown again", page_feed(fb_comment(verb="unhide")), [item(hidden=False)]),
    (
        "facebook: the page's own comment comes back",
        page_feed(fb_comment(**{"from": {"id": "1001", "name": "Café Passerelle"}})),
        [item(author_id="1001", author_name="Café Passerelle", from_account=True)],
    ),
    (
        "facebook reaction: not an item",
        page_feed({"item": "reaction", "verb": "add", "reaction_type": "like", "post_id": "1"}),
        [],
    ),
    (
        "facebook status post: not an item",
        page_feed({"item": "status", "verb": "add", "post_id": "1001_9", "message": "Hi"}),
        [],
    ),
    (
        "facebook unknown field",
        {"object": "page", "entry": [{"id": "1001", "changes": [{"field": "ratings"}]}]},
        [],
    ),
    (
        "messenger message with an image",
        messaging(
            message_event(
                "6001",
                "1001",
                "m_abc",
                "Bonjour!",
                attachments=[{"type": "image", "payload": {"url": "https://cdn.example/i.jpg"}}],
            )
        ),
        [
            InboundItem(
                "1001",
                "m_abc",
                InboxKind.message,
                "Bonjour!",
                "6001",
                T0,
                thread_external_id="6001",
                media_urls=("https://cdn.example/i.jpg",),
            )
        ],
    ),
    (
        "messenger echo of the page's answer",
        messaging(message_event("1001", "6001", "m_def", "Salut!", is_echo=True, app_id=1)),
        [
            InboundItem(
                "1001",
                "m_def",
                InboxKind.message,
                "Salut!",
                "1001",
                T0,
                thread_external_id="6001",
                from_account=True,
            )
        ],
    ),
    (
        "messenger read and delivery receipts: not items",
        messaging(
            {"sender": {"id": "6001"}, "recipient": {"id": "1001"}, "read": {"watermark": 1}},
            {"sender": {"id": "6001"}, "recipient": {"id": "1001"}, "delivery": {"mids": []}},
        ),
        [],
    ),
    (
        "instagram comment",
        instagram("comments", IG_COMMENT),
        [
            InboundItem(
                "17841400000000001",
                "17800000000000002",
                InboxKind.comment,
                "Trop beau! 😍",
                "8801",
                T0,
                author_handle="gab.lavoie",
                thread_external_id="17900000000000001",
            )
        ],
    ),
    (
        "instagram reply",
        instagram("comments", IG_COMMENT | {"id": "17800000000000003", "parent_id": "178002"}),
        [
            InboundItem(
                "17841400000000001",
                "17800000000000003",
                InboxKind.reply,
                "Trop beau! 😍",
                "8801",
                T0,
                author_handle="gab.lavoie",
                parent_external_id="178002",
                thread_external_id="17900000000000001",
            )
        ],
    ),
    (
        "instagram mention in a comment (where, not what)",
        instagram("mentions", {"media_id": "17900000000000009", "comment_id": "17800000000000009"}),
        [
            InboundItem(
                "17841400000000001",
                "17800000000000009",
                InboxKind.mention,
                "",
                "",
                T0,
                thread_external_id="17900000000000009",
            )
        ],
    ),
    (
        "instagram direct message",
        messaging(
            message_event("8801", "17841400000000001", "aWdfZAG1f", "Allo?"),
            source="instagram",
            account="17841400000000001",
        ),
        [
            InboundItem(
                "17841400000000001",
                "aWdfZAG1f",
                InboxKind.message,
                "Allo?",
                "8801",
                T0,
                thread_external_id="8801",
            )
        ],
    ),
    (
        "instagram unsent message",
        messaging(
            {
                "sender": {"id": "8801"},
                "recipient": {"id": "17841400000000001"},
                "timestamp": 1773500966000,
                "message": {"mid": "aWdfZAG1f", "is_deleted": True},
            },
            source="instagram",
            account="17841400000000001",
        ),
        [
            InboundItem(
                "17841400000000001",
                "aWdfZAG1f",
                InboxKind.message,
                "",
                "8801",
                T0,
                thread_external_id="8801",
                removed=True,
            )
        ],
    ),
    ("instagram story insights: not an item", instagram("story_insights", {"reach": 3}), []),
    ("another object", {"object": "whatsapp_business_account", "entry": [{"id": "1"}]}, []),
    (
        "odd shapes inside a well-formed body",
        {
            "object": "page",
            "entry": [
                "not an entry",
                {"time": 1},
                {"id": "1001", "changes": "none", "messaging": [1, {"message": "text"}]},
                {"id": "1001", "changes": [{"field": "feed", "value": []}]},
                {"id": "1001", "changes": [{"field": "feed", "value": {"item": "comment"}}]},
            ],
        },
        [],
    ),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [p[1:] for p in PARSED], ids=[p[0] for p in PARSED]
)
def test_parse_webhook(payload: Any, expected: list[InboundItem]) -> None:
    assert parse_webhook(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [[], "page", None, {}, {"entry": []}, {"object": "page"}, {"object": "page", "entry": {}}],
)
def test_a_body_that_is_not_a_webhook_is_a_value_error(payload: Any) -> None:
    with pytest.raises(ValueError):
        parse_webhook(payload)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    async with redis_client() as client:
        yield client


@pytest.fixture
async def budget(redis: Redis) -> AsyncIterator[RateBudget]:
    async with budget_prefix(redis, "inbox") as name:
        yield make_budget(redis, name)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@dataclass
class Brand:
    platform: str
    connector: FacebookPageConnector | InstagramBusinessConnector
    external_id: str
    token: TokenSet

    @property
    def inbox(self) -> InboxConnector:
        return self.connector


@pytest.fixture
def connect(
    platforms: PlatformSimulator, http: httpx.AsyncClient, budget: RateBudget, settings: Settings
) -> Callable[[str], Brand]:
    """connect(platform) -> the connector and a new account with its token. The HTTP timeout
    is short: the reply_timeout fault holds its answer back."""

    def make(platform: str) -> Brand:
        connector = build(platform, http, budget, settings, social_http_timeout_seconds=1.0)
        assert isinstance(connector, FacebookPageConnector | InstagramBusinessConnector)
        external_id, token = account(platforms, platform, expires_in=10 * DAY)
        return Brand(platform, connector, external_id, token)

    return make


def ref(platforms: PlatformSimulator, platform: str, item_id: str) -> ItemRef:
    """What the inbox keeps of an item, as the connector needs it."""
    said = platforms.community_item(platform, item_id)
    kinds = {"comment": InboxKind.comment, "reply": InboxKind.reply}
    kinds |= {"mention": InboxKind.mention, "message": InboxKind.message}
    return ItemRef(
        external_id=said.id,
        kind=kinds[said.kind],
        author_id=said.author_id,
        thread_external_id=said.thread,
        parent_external_id=said.parent,
    )


def comment(platforms: PlatformSimulator, brand: Brand, text: str = "Bravo!", **kw: Any) -> str:
    return platforms.add_community_item(
        brand.platform, brand.external_id, "comment", text, author_id="24001", **kw
    )


def message(platforms: PlatformSimulator, brand: Brand, text: str = "Allo?", **kw: Any) -> str:
    return platforms.add_community_item(
        brand.platform, brand.external_id, "message", text, author_id="6001", **kw
    )


# ---------------------------------------------------------------- replies


@pytest.mark.parametrize("platform", BOTH)
async def test_a_public_reply_shows_under_the_comment_as_the_account(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    said = comment(platforms, brand, "Vous livrez à Laval?")

    sent = await brand.inbox.reply(
        brand.token,
        brand.external_id,
        ref(platforms, platform, said),
        "Oui, le mardi!",
        private=False,
    )

    [made] = platforms.replies_of(platform, brand.external_id)
    assert (made.id, made.text, made.parent, made.kind) == (
        sent.external_id,
        "Oui, le mardi!",
        said,
        "reply",
    )
    assert made.from_account and not made.private
    assert platforms.duplicate_replies() == []


@pytest.mark.parametrize("platform", BOTH)
async def test_a_reply_to_a_reply_joins_the_top_level_comment(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    top = comment(platforms, brand, "Quel prix?")
    under = platforms.add_community_item(
        platform,
        brand.external_id,
        "reply",
        "Moi aussi je veux savoir",
        author_id="24002",
        parent=top,
    )

    sent = await brand.inbox.reply(
        brand.token, brand.external_id, ref(platforms, platform, under), "12 $", private=False
    )

    made = platforms.community_item(platform, sent.external_id)
    # Facebook takes a reply on the reply itself; Instagram only under a top-level comment.
    assert (made.parent, made.target) == (top, under if platform == FB else top)


@pytest.mark.parametrize("platform", BOTH)
async def test_a_private_reply_to_a_comment_opens_a_conversation_once(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    said = comment(platforms, brand, "Ma commande n'est jamais arrivée")
    item = ref(platforms, platform, said)

    sent = await brand.inbox.reply(
        brand.token, brand.external_id, item, "Écrivez-nous votre numéro de commande", private=True
    )

    [made] = platforms.replies_of(platform, brand.external_id)
    assert (made.id, made.kind, made.recipient, made.private) == (
        sent.external_id,
        "message",
        "24001",
        True,
    )
    with pytest.raises(PublishRejected, match="already replied"):
        await brand.inbox.reply(brand.token, brand.external_id, item, "Encore?", private=True)
    assert len(platforms.replies_of(platform, brand.external_id)) == 1


@pytest.mark.parametrize("platform", BOTH)
async def test_a_message_is_answered_in_its_conversation(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    said = message(platforms, brand, "Avez-vous des options sans gluten?")

    sent = await brand.inbox.reply(
        brand.token, brand.external_id, ref(platforms, platform, said), "Oui, trois!", private=False
    )

    made = platforms.community_item(platform, sent.external_id)
    theirs = platforms.community_item(platform, said)
    assert (made.thread, made.recipient, made.text) == (theirs.thread, "6001", "Oui, trois!")


@pytest.mark.parametrize("platform", BOTH)
async def test_refusals_are_publish_rejected_and_send_nothing(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    stranger = ItemRef("m_nobody", InboxKind.message, author_id="9999")
    gone = comment(platforms, brand)
    await brand.inbox.moderate(
        brand.token, brand.external_id, ref(platforms, platform, gone), Moderation.delete
    )

    with pytest.raises(PublishRejected):  # nobody may be written to first
        await brand.inbox.reply(brand.token, brand.external_id, stranger, "Bonjour", private=False)
    with pytest.raises(PublishRejected):  # a deleted comment takes no reply
        await brand.inbox.reply(
            brand.token, brand.external_id, ref(platforms, platform, gone), "Allo", private=False
        )
    with pytest.raises(PublishRejected):
        await brand.inbox.reply(
            brand.token, brand.external_id, ref(platforms, platform, gone), "  ", private=False
        )
    assert platforms.replies_of(platform, brand.external_id) == []


@pytest.mark.parametrize("platform", BOTH)
async def test_the_platforms_windows_refuse_late_private_answers(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    """A conversation is answered within 24 hours of the person's last message; a comment is
    answered in private within 7 days."""
    brand = connect(platform)
    now = datetime.now(UTC)
    old_message = message(platforms, brand, created_at=now - timedelta(hours=25))
    old_comment = comment(platforms, brand, created_at=now - timedelta(days=8))

    with pytest.raises(PublishRejected, match="allowed window"):
        await brand.inbox.reply(
            brand.token,
            brand.external_id,
            ref(platforms, platform, old_message),
            "Oui",
            private=False,
        )
    with pytest.raises(PublishRejected, match="allowed window"):
        await brand.inbox.reply(
            brand.token,
            brand.external_id,
            ref(platforms, platform, old_comment),
            "Oui",
            private=True,
        )
    # In public, an old comment still takes an answer.
    await brand.inbox.reply(
        brand.token, brand.external_id, ref(platforms, platform, old_comment), "Oui", private=False
    )
    assert [r.private for r in platforms.replies_of(platform, brand.external_id)] == [False]


async def test_an_instagram_mention_is_answered_under_it(
    platforms: PlatformSimulator, connect: Any
) -> None:
    brand = connect(IG)
    said = platforms.add_community_item(
        IG, brand.external_id, "mention", "@brand regardez ça", author_id="8801"
    )

    sent = await brand.inbox.reply(
        brand.token, brand.external_id, ref(platforms, IG, said), "Merci!", private=False
    )

    made = platforms.community_item(IG, sent.external_id)
    assert (made.parent, made.text, made.from_account) == (said, "Merci!", True)
    with pytest.raises(PublishRejected, match="mention"):
        await brand.inbox.moderate(
            brand.token, brand.external_id, ref(platforms, IG, said), Moderation.hide
        )


async def test_a_rate_limited_reply_is_not_sent(platforms: PlatformSimulator, connect: Any) -> None:
    brand = connect(FB)
    said = comment(platforms, brand)
    platforms.fault(FB, "rate_limited")

    with pytest.raises(RateLimited):
        await brand.inbox.reply(
            brand.token, brand.external_id, ref(platforms, FB, said), "Merci", private=False
        )
    assert platforms.replies_of(FB, brand.external_id) == []


# ---------------------------------------------------------------- unclear answers, reconciliation


UNCLEAR = [
    (FB, "reply_timeout", "comment", False),
    (IG, "reply_timeout", "comment", False),
    (FB, "reply_timeout", "comment", True),
    (IG, "reply_timeout", "message", False),
    (FB, "reply_500_after_create", "message", False),
    (IG, "reply_500_after_create", "comment", True),
]


@pytest.mark.parametrize(("platform", "fault", "kind", "private"), UNCLEAR)
async def test_an_unclear_answer_is_outcome_unknown_and_find_reply_finds_the_reply(
    platforms: PlatformSimulator, connect: Any, platform: str, fault: str, kind: str, private: bool
) -> None:
    brand = connect(platform)
    said = (comment if kind == "comment" else message)(platforms, brand)
    item = ref(platforms, platform, said)
    since = datetime.now(UTC)
    platforms.fault(platform, fault)
    platforms.hang_seconds = 2.0  # past the client's 1 s, and no longer

    with pytest.raises(OutcomeUnknown):
        await brand.inbox.reply(
            brand.token, brand.external_id, item, "On s'en occupe", private=private
        )

    [made] = platforms.replies_of(platform, brand.external_id)
    found = await brand.inbox.find_reply(
        brand.token, brand.external_id, item, "On s'en occupe", since
    )
    assert found is not None and found.external_id == made.id
    assert platforms.duplicate_replies() == []


@pytest.mark.parametrize("platform", BOTH)
async def test_find_reply_finds_only_our_reply_with_that_text_since_then(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    said = comment(platforms, brand)
    item = ref(platforms, platform, said)
    since = datetime.now(UTC)
    # Someone else writing the same words is not our reply.
    platforms.add_community_item(
        platform, brand.external_id, "reply", "Merci!", author_id="24009", parent=said
    )
    assert (
        await brand.inbox.find_reply(brand.token, brand.external_id, item, "Merci!", since) is None
    )

    sent = await brand.inbox.reply(brand.token, brand.external_id, item, "Merci!", private=False)

    found = await brand.inbox.find_reply(brand.token, brand.external_id, item, " Merci! ", since)
    assert found is not None and found.external_id == sent.external_id
    assert (
        await brand.inbox.find_reply(brand.token, brand.external_id, item, "Autre", since) is None
    )
    later = since + timedelta(minutes=5)
    assert (
        await brand.inbox.find_reply(brand.token, brand.external_id, item, "Merci!", later) is None
    )


# ---------------------------------------------------------------- moderation


@pytest.mark.parametrize("platform", BOTH)
async def test_hide_unhide_and_delete_a_comment(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    said = comment(platforms, brand, "Arnaque!!! allez voir mon profil")
    item = ref(platforms, platform, said)

    await brand.inbox.moderate(brand.token, brand.external_id, item, Moderation.hide)
    assert platforms.community_item(platform, said).hidden
    [polled] = await brand.inbox.fetch_items(brand.token, brand.external_id, None)
    assert polled.hidden is True

    await brand.inbox.moderate(brand.token, brand.external_id, item, Moderation.unhide)
    assert not platforms.community_item(platform, said).hidden

    await brand.inbox.moderate(brand.token, brand.external_id, item, Moderation.delete)
    assert platforms.community_item(platform, said).deleted
    assert await brand.inbox.fetch_items(brand.token, brand.external_id, None) == []
    with pytest.raises(PublishRejected):  # gone already
        await brand.inbox.moderate(brand.token, brand.external_id, item, Moderation.delete)


@pytest.mark.parametrize("platform", BOTH)
async def test_a_private_message_cannot_be_moderated(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    item = ref(platforms, platform, message(platforms, brand))
    for action in Moderation:
        with pytest.raises(PublishRejected):
            await brand.inbox.moderate(brand.token, brand.external_id, item, action)


# ---------------------------------------------------------------- the catch-up poll


@pytest.mark.parametrize("platform", BOTH)
async def test_fetch_items_gives_comments_replies_and_messages_since_oldest_first(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    now = datetime.now(UTC).replace(microsecond=0)
    comment(platforms, brand, "Trop vieux", created_at=now - timedelta(hours=3))
    top = comment(platforms, brand, "Premier", created_at=now - timedelta(minutes=30))
    under = platforms.add_community_item(
        platform,
        brand.external_id,
        "reply",
        "Deuxième",
        author_id="24002",
        author_name="Luc",
        parent=top,
        created_at=now - timedelta(minutes=20),
    )
    dm = message(platforms, brand, "En privé", created_at=now - timedelta(minutes=10))
    answer = await brand.inbox.reply(
        brand.token, brand.external_id, ref(platforms, platform, top), "Merci!", private=False
    )

    items = await brand.inbox.fetch_items(brand.token, brand.external_id, now - timedelta(hours=1))

    assert [i.external_id for i in items] == [top, under, dm, answer.external_id]
    assert [i.kind for i in items] == [
        InboxKind.comment,
        InboxKind.reply,
        InboxKind.message,
        InboxKind.reply,
    ]
    assert [i.from_account for i in items] == [False, False, False, True]
    assert items[1].parent_external_id == top
    assert items[0].thread_external_id == items[1].thread_external_id
    assert items[2].thread_external_id == "6001" and items[2].text == "En privé"
    assert all(i.account_external_id == brand.external_id for i in items)


# ---------------------------------------------------------------- the simulator's webhooks


@pytest.mark.parametrize("platform", BOTH)
def test_the_simulators_signature_verifies_with_the_app_secret(
    platforms: PlatformSimulator, settings: Settings, platform: str
) -> None:
    external_id, _ = account(platforms, platform)
    said = platforms.add_community_item(
        platform, external_id, "comment", "Salut", author_id="24001", push=False
    )

    body, headers = platforms.webhook_payload(platform, [said])

    secret = settings.social_clients[platform].client_secret.get_secret_value()
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Hub-Signature-256"], expected)
    [parsed] = parse_webhook(json.loads(body))
    assert (parsed.external_id, parsed.text, parsed.account_external_id) == (
        said,
        "Salut",
        external_id,
    )


class Receiver:
    """A real HTTP server on loopback that keeps every webhook posted to it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                received.append((self.path, dict(self.headers), self.rfile.read(size)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(platforms: PlatformSimulator) -> Iterator[Receiver]:
    server = Receiver()
    platforms.set_webhook_target(server.url)
    yield server
    platforms.set_webhook_target(None)
    server.close()


def verified(
    platforms: PlatformSimulator, platform: str, headers: dict[str, str], body: bytes
) -> bool:
    secret = platforms.app_secret(platform).encode()
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Hub-Signature-256", ""), expected)


@pytest.mark.parametrize("platform", BOTH)
def test_pushes_are_signed_and_faults_duplicate_reorder_and_missign_them(
    platforms: PlatformSimulator, receiver: Receiver, platform: str
) -> None:
    external_id, _ = account(platforms, platform)
    platforms.webhook_faults(duplicate=1)
    first = platforms.add_community_item(platform, external_id, "comment", "Un", author_id="1")
    platforms.webhook_faults(out_of_order=1)
    parent = platforms.add_community_item(platform, external_id, "comment", "Deux", author_id="2")
    child = platforms.add_community_item(
        platform, external_id, "reply", "Trois", author_id="3", parent=parent
    )
    platforms.webhook_faults(bad_signature=1)
    forged = platforms.add_community_item(platform, external_id, "message", "Quatre", author_id="4")
    assert platforms.wait_webhooks(10)

    seen = [
        (
            [i.external_id for i in parse_webhook(json.loads(body))],
            verified(platforms, platform, headers, body),
        )
        for _, headers, body in receiver.received
    ]
    assert seen == [
        ([first], True),
        ([first], True),
        ([child], True),
        ([parent], True),
        ([forged], False),
    ]
    assert {path for path, _, _ in receiver.received} == {f"/v1/platform-webhooks/{platform}"}
    assert all(d.status == 200 for d in platforms.webhook_deliveries)


async def test_replies_and_moderation_are_pushed_back_as_the_page(
    platforms: PlatformSimulator, receiver: Receiver, connect: Any
) -> None:
    brand = connect(FB)
    said = comment(platforms, brand)
    item = ref(platforms, FB, said)
    await brand.inbox.reply(brand.token, brand.external_id, item, "Merci!", private=False)
    await brand.inbox.moderate(brand.token, brand.external_id, item, Moderation.hide)
    assert platforms.wait_webhooks(10)

    pushed = [i for _, _, body in receiver.received for i in parse_webhook(json.loads(body))]
    assert [(i.external_id == said, i.from_account, i.hidden) for i in pushed] == [
        (True, False, None),
        (False, True, None),
        (True, False, True),
    ]


# ---------------------------------------------------------------- mentions, read in full


@pytest.mark.parametrize("platform", BOTH)
async def test_a_mention_the_webhook_only_locates_is_read_in_full(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    brand = connect(platform)
    said = platforms.add_community_item(
        platform,
        brand.external_id,
        "mention",
        "@brand le meilleur café!",
        author_id="8801",
        push=False,
    )
    body, _ = platforms.webhook_payload(platform, [said])
    [located] = parse_webhook(json.loads(body))
    assert (located.kind, located.external_id) == (InboxKind.mention, said)

    read = await brand.connector.complete_item(brand.token, brand.external_id, located)

    assert read.text == "@brand le meilleur café!"
    assert read.external_id == said and read.kind is InboxKind.mention
    others = await brand.connector.complete_item(
        brand.token, brand.external_id, item(kind=InboxKind.comment, text="")
    )
    assert others == item(kind=InboxKind.comment, text="")  # nothing to read, no request


async def test_an_instagram_caption_mention_is_read_from_the_media(
    platforms: PlatformSimulator, connect: Any
) -> None:
    brand = connect(IG)
    said = platforms.add_community_item(
        IG,
        brand.external_id,
        "mention",
        "Brunch chez @brand",
        author_id="8801",
        author_name="gab.lavoie",
        push=False,
    )
    media = platforms.community_item(IG, said).thread
    assert media is not None
    located = InboundItem(
        brand.external_id, media, InboxKind.mention, "", "", T0, thread_external_id=media
    )

    read = await brand.connector.complete_item(brand.token, brand.external_id, located)

    assert (read.text, read.author_handle) == ("Brunch chez @brand", "gab.lavoie")


async def test_an_unknown_mention_stays_as_it_was(connect: Any) -> None:
    brand = connect(IG)
    located = InboundItem(
        brand.external_id,
        "17800000000000404",
        InboxKind.mention,
        "",
        "",
        T0,
        thread_external_id="17900000000000404",
    )
    assert await brand.connector.complete_item(brand.token, brand.external_id, located) == located


def test_a_simulator_in_its_own_process_takes_items_over_http(
    platforms: PlatformSimulator, receiver: Receiver
) -> None:
    external_id, _ = account(platforms, FB)
    answer = httpx.post(
        f"{platforms.url}/_sim/community",
        json={
            "platform": FB,
            "account": external_id,
            "kind": "comment",
            "text": "Par HTTP",
            "author_id": "24001",
        },
    )
    assert answer.status_code == 200
    assert platforms.wait_webhooks(10)
    [(_, _, body)] = receiver.received
    [pushed] = parse_webhook(json.loads(body))
    assert (pushed.external_id, pushed.text) == (answer.json()["id"], "Par HTTP")
    stats = httpx.get(f"{platforms.url}/_sim/stats").json()
    assert (stats["community_items"], stats["webhooks_sent"]) == (1, 1)
    bad = httpx.post(f"{platforms.url}/_sim/community", json={"platform": FB})
    assert bad.status_code == 400


def test_a_held_push_goes_anyway_when_nothing_overtakes_it(
    platforms: PlatformSimulator, receiver: Receiver
) -> None:
    external_id, _ = account(platforms, IG)
    platforms.webhook_faults(out_of_order=1)
    alone = platforms.add_community_item(IG, external_id, "comment", "Seul", author_id="1")

    assert platforms.wait_webhooks(10)

    [(_, _, body)] = receiver.received
    assert [i.external_id for i in parse_webhook(json.loads(body))] == [alone]
