"""The inbox side of the LinkedIn, YouTube, X and TikTok connectors, against the platform
simulator with a real RateBudget on Redis: what the community said, our replies (sent once;
an unclear answer is OutcomeUnknown and reconciliation finds the reply), moderation or the
platform's refusal of it, and LinkedIn's webhook challenge and signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis

from devtools.platforms import PlatformSimulator
from devtools.platforms.community import CommunityDialect
from devtools.platforms.linkedin import LinkedInDialect
from infra.settings import Settings
from social.connectors import linkedin
from social.connectors.base import token_key
from social.connectors.types import (
    InboundItem,
    InboxConnector,
    InboxKind,
    ItemRef,
    Moderation,
    OutcomeUnknown,
    PublishRejected,
    RateLimited,
    TokenInvalid,
)
from social.ratebudget import RateBudget
from tests.support.connectors import account, budget_prefix, build, make_budget, redis_client


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    async with redis_client() as client:
        yield client


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    async with budget_prefix(redis, "inbox") as name:
        yield name


@pytest.fixture
def budget(redis: Redis, prefix: str) -> RateBudget:
    return make_budget(redis, prefix)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def connect(http: httpx.AsyncClient, budget: RateBudget, settings: Settings) -> Any:
    def make(platform: str, **overrides: Any) -> InboxConnector:
        return cast(InboxConnector, build(platform, http, budget, settings, **overrides))

    return make


def sim(platforms: PlatformSimulator, platform: str) -> CommunityDialect:
    """The simulated platform's community (what was said, our replies)."""
    return cast(CommunityDialect, platforms.dialect(platform))


def linkedin_sim(platforms: PlatformSimulator) -> LinkedInDialect:
    return cast(LinkedInDialect, platforms.dialect("linkedin_organization"))


def ref(item: InboundItem) -> ItemRef:
    return ItemRef(
        external_id=item.external_id,
        kind=item.kind,
        author_id=item.author_id,
        thread_external_id=item.thread_external_id,
        parent_external_id=item.parent_external_id,
    )


def by_text(items: list[InboundItem]) -> dict[str, InboundItem]:
    return {i.text: i for i in items}


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


# ---------------------------------------------------------------- YouTube


async def test_youtube_fetches_comments_and_replies_and_counts_its_quota(
    platforms: PlatformSimulator, connect: Any
) -> None:
    youtube = sim(platforms, "youtube")
    channel, token = account(platforms, "youtube")
    first = youtube.add_community_item(
        channel, "comment", "Super vidéo !", author_id="UCfan1", author_name="Julie"
    )
    youtube.add_community_item(
        channel, "reply", "Tout à fait d'accord", author_id="UCfan2", parent=first
    )
    # More replies than a thread carries: the rest come from comments.list.
    for n in range(6):
        youtube.add_community_item(channel, "reply", f"Reply {n}", author_id="UCfan3", parent=first)
    youtube.add_community_item(channel, "comment", "When is the next one?", author_id="UCfan4")
    used = platforms.quota_units_used

    items = await connect("youtube").fetch_items(token, channel, an_hour_ago())

    assert items == sorted(items, key=lambda i: i.created_at)
    assert len(items) == 9
    top = by_text(items)["Super vidéo !"]
    assert (top.kind, top.author_id, top.author_name) == (InboxKind.comment, "UCfan1", "Julie")
    assert top.thread_external_id and top.parent_external_id is None
    answer = by_text(items)["Tout à fait d'accord"]
    assert (answer.kind, answer.parent_external_id) == (InboxKind.reply, first)
    assert answer.thread_external_id == top.thread_external_id
    # One page of threads, one page of the long thread's replies: 1 unit each.
    assert platforms.quota_units_used - used == 2


async def test_youtube_reply_costs_50_units_and_comes_back_as_our_own(
    platforms: PlatformSimulator, connect: Any
) -> None:
    youtube = sim(platforms, "youtube")
    channel, token = account(platforms, "youtube")
    first = youtube.add_community_item(channel, "comment", "Bravo", author_id="UCfan1")
    connector = connect("youtube")
    item = (await connector.fetch_items(token, channel, an_hour_ago()))[0]
    used = platforms.quota_units_used

    sent = await connector.reply(token, channel, ref(item), "Merci Julie !", private=False)

    assert platforms.quota_units_used - used == 50
    assert [r.text for r in youtube.replies_of(channel)] == ["Merci Julie !"]
    items = by_text(await connector.fetch_items(token, channel, an_hour_ago()))
    ours = items["Merci Julie !"]
    assert (ours.external_id, ours.parent_external_id, ours.from_account) == (
        sent.external_id,
        first,
        True,
    )
    with pytest.raises(PublishRejected):
        await connector.reply(token, channel, ref(item), "En privé ?", private=True)
    assert not connector.can_reply_privately


async def test_youtube_hides_unhides_and_deletes(
    platforms: PlatformSimulator, connect: Any
) -> None:
    youtube = sim(platforms, "youtube")
    channel, token = account(platforms, "youtube")
    youtube.add_community_item(channel, "comment", "Spam spam", author_id="UCspam")
    connector = connect("youtube")
    item = (await connector.fetch_items(token, channel, an_hour_ago()))[0]

    await connector.moderate(token, channel, ref(item), Moderation.hide)
    assert await connector.fetch_items(token, channel, an_hour_ago()) == []
    await connector.moderate(token, channel, ref(item), Moderation.unhide)
    assert [i.text for i in await connector.fetch_items(token, channel, an_hour_ago())] == [
        "Spam spam"
    ]
    # Someone else's comment: deleting it rejects it, and it stays gone.
    await connector.moderate(token, channel, ref(item), Moderation.delete)
    assert await connector.fetch_items(token, channel, an_hour_ago()) == []

    youtube.add_community_item(channel, "comment", "Question", author_id="UCfan")
    question = (await connector.fetch_items(token, channel, an_hour_ago()))[0]
    sent = await connector.reply(token, channel, ref(question), "Réponse", private=False)
    ours = ItemRef(sent.external_id, InboxKind.reply, channel, None, question.external_id)
    await connector.moderate(token, channel, ours, Moderation.delete)
    assert [i.text for i in await connector.fetch_items(token, channel, an_hour_ago())] == [
        "Question"
    ]


# ---------------------------------------------------------------- X


async def test_x_fetches_mentions_and_replies_oldest_first_and_pages(
    platforms: PlatformSimulator, connect: Any
) -> None:
    x = sim(platforms, "x")
    user, token = account(platforms, "x")
    mention = x.add_community_item(
        user, "mention", "@brand votre service client ?", author_id="42", author_name="Marc"
    )
    answer = x.add_community_item(user, "reply", "J'adore ce post", author_id="43")
    for n in range(120):  # more than a page of 100
        x.add_community_item(user, "mention", f"mention {n}", author_id="44")

    items = await connect("x").fetch_items(token, user, an_hour_ago())

    assert len(items) == 122
    assert items == sorted(items, key=lambda i: (i.created_at, int(i.external_id)))
    first = by_text(items)["@brand votre service client ?"]
    assert (first.external_id, first.kind, first.author_name) == (mention, "mention", "Marc")
    assert first.author_handle
    reply = by_text(items)["J'adore ce post"]
    assert (reply.external_id, reply.kind) == (answer, InboxKind.reply)
    assert reply.parent_external_id and reply.thread_external_id == reply.parent_external_id
    assert platforms.count("x", "/mentions") == 2


async def test_x_replies_and_hides_only_replies_in_its_own_conversations(
    platforms: PlatformSimulator, connect: Any
) -> None:
    x = sim(platforms, "x")
    user, token = account(platforms, "x")
    x.add_community_item(user, "reply", "Nul", author_id="43")
    x.add_community_item(user, "mention", "@brand bonjour", author_id="44")
    connector = connect("x")
    items = by_text(await connector.fetch_items(token, user, an_hour_ago()))

    sent = await connector.reply(
        token, user, ref(items["@brand bonjour"]), "Bonjour !", private=False
    )
    assert [(r.id, r.parent) for r in x.replies_of(user)] == [
        (sent.external_id, items["@brand bonjour"].external_id)
    ]
    rude = x.community.items[items["Nul"].external_id]
    await connector.moderate(token, user, ref(items["Nul"]), Moderation.hide)
    assert rude.hidden
    await connector.moderate(token, user, ref(items["Nul"]), Moderation.unhide)
    assert not rude.hidden
    with pytest.raises(PublishRejected, match="only replies"):
        await connector.moderate(token, user, ref(items["@brand bonjour"]), Moderation.hide)
    with pytest.raises(PublishRejected):
        await connector.moderate(token, user, ref(items["Nul"]), Moderation.delete)
    assert connector.moderations == {Moderation.hide, Moderation.unhide}


# ---------------------------------------------------------------- LinkedIn


LI = "linkedin_organization"


async def test_linkedin_fetches_comments_and_replies_on_its_posts(
    platforms: PlatformSimulator, connect: Any
) -> None:
    dialect = linkedin_sim(platforms)
    org, token = account(platforms, LI)
    first = dialect.add_community_item(org, "comment", "Bravo l'équipe", author_id="abc123")
    dialect.add_community_item(org, "reply", "+1", author_id="def456", parent=first)

    items = await connect(LI).fetch_items(token, org, an_hour_ago())

    top, answer = by_text(items)["Bravo l'équipe"], by_text(items)["+1"]
    assert len(items) == 2
    assert (top.external_id, top.kind, top.author_id) == (
        first,
        InboxKind.comment,
        "urn:li:person:abc123",
    )
    assert top.thread_external_id and top.thread_external_id.startswith("urn:li:share:")
    assert (answer.kind, answer.parent_external_id) == (InboxKind.reply, first)
    assert answer.thread_external_id == top.thread_external_id
    # Nothing new since now.
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await connect(LI).fetch_items(token, org, later) == []


async def test_linkedin_replies_under_the_top_comment_and_deletes(
    platforms: PlatformSimulator, connect: Any
) -> None:
    dialect = linkedin_sim(platforms)
    org, token = account(platforms, LI)
    first = dialect.add_community_item(org, "comment", "Quand ouvrez-vous ?", author_id="p1")
    dialect.add_community_item(
        org, "reply", "Moi aussi je veux savoir", author_id="p2", parent=first
    )
    connector = connect(LI)
    items = by_text(await connector.fetch_items(token, org, an_hour_ago()))

    # Answering the reply puts ours in the same thread, under the top-level comment.
    sent = await connector.reply(
        token, org, ref(items["Moi aussi je veux savoir"]), "Lundi à 9 h", private=False
    )
    after = by_text(await connector.fetch_items(token, org, an_hour_ago()))
    ours = after["Lundi à 9 h"]
    assert (ours.external_id, ours.parent_external_id, ours.from_account) == (
        sent.external_id,
        first,
        True,
    )
    assert [r.text for r in dialect.replies_of(org)] == ["Lundi à 9 h"]

    await connector.moderate(token, org, ref(items["Moi aussi je veux savoir"]), Moderation.delete)
    left = by_text(await connector.fetch_items(token, org, an_hour_ago()))
    assert set(left) == {"Quand ouvrez-vous ?", "Lundi à 9 h"}
    for action in (Moderation.hide, Moderation.unhide):
        with pytest.raises(PublishRejected, match="cannot hide"):
            await connector.moderate(token, org, ref(items["Quand ouvrez-vous ?"]), action)
    with pytest.raises(PublishRejected):
        await connector.reply(token, org, ref(items["Quand ouvrez-vous ?"]), "DM", private=True)


SECRET = "li-client-secret-123"
BODY = b'{"type":"ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS","notifications":[]}'
GOOD = "hmacsha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("secret", "body", "header", "valid"),
    [
        pytest.param(SECRET, BODY, GOOD, True, id="good"),
        pytest.param(
            SECRET,
            BODY,
            GOOD.upper().replace("HMACSHA256=", "hmacsha256="),
            True,
            id="hex-in-capitals",
        ),
        pytest.param(SECRET, BODY + b" ", GOOD, False, id="tampered-body"),
        pytest.param("another-secret", BODY, GOOD, False, id="wrong-secret"),
        pytest.param(SECRET, BODY, None, False, id="missing-header"),
        pytest.param(SECRET, BODY, "", False, id="empty-header"),
        pytest.param(
            SECRET, BODY, GOOD.replace("hmacsha256=", "sha256="), False, id="wrong-prefix"
        ),
        pytest.param(SECRET, BODY, GOOD.removeprefix("hmacsha256="), False, id="no-prefix"),
        pytest.param(SECRET, BODY, "hmacsha256=zz", False, id="not-hex"),
    ],
)
def test_linkedin_notification_signatures(
    secret: str, body: bytes, header: str | None, valid: bool
) -> None:
    assert linkedin.verify_notification(secret, body, header) is valid


@pytest.mark.parametrize(
    ("secret", "code", "response"),
    [
        # Computed independently: printf '%s' CODE | openssl dgst -sha256 -hmac SECRET
        (
            "secret",
            "890e4665-4dfe-4ab1-b689-ed553bceeed1",
            hmac.new(b"secret", b"890e4665-4dfe-4ab1-b689-ed553bceeed1", "sha256").hexdigest(),
        ),
        (SECRET, "a", hmac.new(SECRET.encode(), b"a", "sha256").hexdigest()),
    ],
)
def test_linkedin_challenge_answer(secret: str, code: str, response: str) -> None:
    assert linkedin.notification_challenge(secret, code) == {
        "challengeCode": code,
        "challengeResponse": response,
    }


def note(org: str, action: str) -> dict[str, Any]:
    return {"organizationalEntity": f"urn:li:organization:{org}", "action": action}


@pytest.mark.parametrize(
    ("payload", "orgs"),
    [
        pytest.param(
            {
                "type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS",
                "notifications": [note("1", "COMMENT"), note("2", "LIKE"), note("1", "COMMENT")],
            },
            ["1"],
            id="comments-once-likes-never",
        ),
        pytest.param(
            {"notifications": [note("3", "SHARE_MENTION"), note("4", "COMMENT_DELETE")]},
            ["3", "4"],
            id="mentions-and-deletions",
        ),
        pytest.param(
            {"type": "LEAD_ACTION", "notifications": [note("5", "COMMENT")]}, [], id="another-type"
        ),
        pytest.param(
            {"notifications": [{"action": "COMMENT"}, "junk", None]}, [], id="malformed-entries"
        ),
        pytest.param({}, [], id="empty"),
    ],
)
def test_linkedin_notified_organizations(payload: dict[str, Any], orgs: list[str]) -> None:
    assert linkedin.notified_organizations(payload) == orgs


def test_linkedin_notification_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError):
        linkedin.notified_organizations(["COMMENT"])


def test_linkedin_simulator_signs_its_notifications_without_the_text(
    platforms: PlatformSimulator, settings: Settings
) -> None:
    dialect = linkedin_sim(platforms)
    org, _ = account(platforms, LI)
    dialect.add_community_item(org, "comment", "Un secret de commentaire", author_id="p1")
    [(body, headers)] = dialect.notifications
    secret = settings.social_clients[LI].client_secret.get_secret_value()
    assert linkedin.verify_notification(secret, body, headers["X-LI-Signature"])
    assert not linkedin.verify_notification("wrong", body, headers["X-LI-Signature"])
    assert linkedin.notified_organizations(json.loads(body)) == [org]
    assert b"Un secret" not in body


# ---------------------------------------------------------------- TikTok


async def test_tiktok_fetches_comments_with_their_hidden_state_and_hides(
    platforms: PlatformSimulator, connect: Any
) -> None:
    tiktok = sim(platforms, "tiktok")
    open_id, token = account(platforms, "tiktok")
    first = tiktok.add_community_item(
        open_id, "comment", "trop drôle 😂", author_id="u1", author_name="Léa"
    )
    tiktok.add_community_item(open_id, "reply", "grave", author_id="u2", parent=first)
    connector = connect("tiktok")

    items = by_text(await connector.fetch_items(token, open_id, an_hour_ago()))

    top, answer = items["trop drôle 😂"], items["grave"]
    assert (top.external_id, top.kind, top.author_name, top.hidden) == (
        first,
        InboxKind.comment,
        "Léa",
        False,
    )
    assert (answer.kind, answer.parent_external_id) == (InboxKind.reply, first)
    assert answer.thread_external_id == top.thread_external_id is not None

    await connector.moderate(token, open_id, ref(top), Moderation.hide)
    assert by_text(await connector.fetch_items(token, open_id, an_hour_ago()))[
        "trop drôle 😂"
    ].hidden
    await connector.moderate(token, open_id, ref(top), Moderation.unhide)
    assert not by_text(await connector.fetch_items(token, open_id, an_hour_ago()))[
        "trop drôle 😂"
    ].hidden
    with pytest.raises(PublishRejected, match="only its own"):
        await connector.moderate(token, open_id, ref(top), Moderation.delete)


async def test_tiktok_replies_and_deletes_its_own_reply(
    platforms: PlatformSimulator, connect: Any
) -> None:
    tiktok = sim(platforms, "tiktok")
    open_id, token = account(platforms, "tiktok")
    tiktok.add_community_item(open_id, "comment", "c'est quoi la musique ?", author_id="u1")
    connector = connect("tiktok")
    [item] = await connector.fetch_items(token, open_id, an_hour_ago())

    sent = await connector.reply(token, open_id, ref(item), "Lien en bio !", private=False)

    ours = by_text(await connector.fetch_items(token, open_id, an_hour_ago()))["Lien en bio !"]
    assert (ours.external_id, ours.from_account, ours.parent_external_id) == (
        sent.external_id,
        True,
        item.external_id,
    )
    await connector.moderate(token, open_id, ref(ours), Moderation.delete)
    assert [i.text for i in await connector.fetch_items(token, open_id, an_hour_ago())] == [
        "c'est quoi la musique ?"
    ]
    assert [r.text for r in tiktok.replies_of(open_id)] == ["Lien en bio !"]


# ---------------------------------------------------------------- every platform


INBOX = ("linkedin_organization", "youtube", "x", "tiktok")


async def one_item(platforms: PlatformSimulator, connector: Any, platform: str) -> Any:
    """A new account with one comment (a mention on X) from the community, its token and the
    item as the connector reads it."""
    external_id, token = account(platforms, platform)
    kind = "mention" if platform == "x" else "comment"
    sim(platforms, platform).add_community_item(
        external_id, kind, "Une question pour vous", author_id="12345"
    )
    [item] = await connector.fetch_items(token, external_id, an_hour_ago())
    return external_id, token, item


@pytest.mark.parametrize("fault", ["reply_timeout", "reply_500_after_create"])
@pytest.mark.parametrize("platform", INBOX)
async def test_a_reply_without_an_answer_is_unknown_then_found_never_sent_twice(
    platforms: PlatformSimulator, connect: Any, platform: str, fault: str
) -> None:
    connector = connect(platform, social_http_timeout_seconds=0.5)
    external_id, token, item = await one_item(platforms, connector, platform)
    before = datetime.now(UTC)
    assert await connector.find_reply(token, external_id, ref(item), "Voici", before) is None
    platforms.hang_seconds = 2.0
    platforms.fault(platform, fault)

    with pytest.raises(OutcomeUnknown):
        await connector.reply(token, external_id, ref(item), "Voici la réponse", private=False)

    found = await connector.find_reply(token, external_id, ref(item), "Voici la réponse", before)
    [sent] = sim(platforms, platform).replies_of(external_id)
    assert found is not None and found.external_id == sent.id
    assert found.created_at is not None and found.created_at >= before - timedelta(seconds=1)
    # Another text, or an earlier attempt's window, is not ours.
    assert await connector.find_reply(token, external_id, ref(item), "Autre", before) is None
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert (
        await connector.find_reply(token, external_id, ref(item), "Voici la réponse", later) is None
    )


@pytest.mark.parametrize("platform", INBOX)
async def test_a_server_error_on_the_reply_is_unknown_and_a_429_is_not_sent(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    connector = connect(platform)
    external_id, token, item = await one_item(platforms, connector, platform)

    platforms.fail_next(platform, status=503)
    with pytest.raises(OutcomeUnknown):
        await connector.reply(token, external_id, ref(item), "Bonjour", private=False)
    platforms.rate_limit(platform, retry_after=30.0)
    with pytest.raises(RateLimited) as limited:
        await connector.reply(token, external_id, ref(item), "Bonjour", private=False)
    assert limited.value.retry_after > 0
    assert token.access_token not in str(limited.value)
    assert sim(platforms, platform).replies_of(external_id) == []


@pytest.mark.parametrize("platform", INBOX)
async def test_a_reply_the_platform_refuses_is_rejected(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    connector = connect(platform)
    external_id, token, item = await one_item(platforms, connector, platform)
    gone = ItemRef(
        external_id=item.external_id + "9"
        if platform != "linkedin_organization"
        else item.external_id.replace(",", ",9"),
        kind=item.kind,
        author_id=item.author_id,
        thread_external_id=item.thread_external_id,
    )

    with pytest.raises(PublishRejected) as refused:
        await connector.reply(token, external_id, gone, "Bonjour", private=False)
    assert token.access_token not in str(refused.value)
    with pytest.raises(PublishRejected):
        await connector.reply(token, external_id, ref(item), "Bonjour", private=True)
    assert sim(platforms, platform).replies_of(external_id) == []


@pytest.mark.parametrize(
    ("platform", "private", "moderations"),
    [
        ("linkedin_organization", False, {Moderation.delete}),
        ("youtube", False, {Moderation.hide, Moderation.unhide, Moderation.delete}),
        ("x", False, {Moderation.hide, Moderation.unhide}),
        ("tiktok", False, {Moderation.hide, Moderation.unhide}),
    ],
)
def test_what_each_platform_allows(
    connect: Any, platform: str, private: bool, moderations: set[Moderation]
) -> None:
    connector = connect(platform)
    assert connector.can_reply_privately is private
    assert connector.moderations == moderations


@pytest.mark.parametrize("platform", INBOX)
async def test_a_dead_token_on_the_inbox_is_token_invalid(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    connector = connect(platform)
    external_id, token, item = await one_item(platforms, connector, platform)
    platforms.revoke(platform, external_id)
    with pytest.raises(TokenInvalid):
        await connector.fetch_items(token, external_id, an_hour_ago())
    with pytest.raises(TokenInvalid):
        await connector.reply(token, external_id, ref(item), "Bonjour", private=False)


class Receiver(ThreadingHTTPServer):
    """A real HTTP endpoint on loopback that keeps what is posted to it."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[str, bytes, dict[str, str]]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put((self.path, body, dict(self.headers.items())))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def test_linkedin_simulator_pushes_signed_notifications_to_the_webhook(
    platforms: PlatformSimulator, settings: Settings
) -> None:
    receiver = Receiver()
    try:
        dialect = linkedin_sim(platforms)
        dialect.webhook_url = receiver.url
        org, _ = account(platforms, LI)
        dialect.add_community_item(org, "comment", "Bonjour", author_id="p1")
        dialect.add_community_item(org, "comment", "Silencieux", author_id="p2", push=False)
        path, body, headers = receiver.received.get(timeout=5)
    finally:
        receiver.shutdown()
        receiver.server_close()
    secret = settings.social_clients[LI].client_secret.get_secret_value()
    assert path == "/v1/platform-webhooks/linkedin_organization"
    signature = {k.lower(): v for k, v in headers.items()}["x-li-signature"]
    assert linkedin.verify_notification(secret, body, signature)
    assert linkedin.notified_organizations(json.loads(body)) == [org]
    assert receiver.received.empty()
    assert len(dialect.notifications) == 1


async def test_x_a_spent_mentions_window_pauses_mentions_only(
    platforms: PlatformSimulator, connect: Any, redis: Redis, prefix: str
) -> None:
    user, token = account(platforms, "x")
    connector = connect("x")
    platforms.rate_limit("x", retry_after=120.0)

    with pytest.raises(RateLimited):
        await connector.fetch_items(token, user, an_hour_ago())

    own = token_key("x", token.access_token)
    paused = {
        key.decode().split(":pause:", 1)[1] async for key in redis.scan_iter(f"{prefix}:pause:*")
    }
    assert paused == {f"{own}:mentions"}
    # Publishing and figures go on under the token's own key.
    assert (await connector.profile(token, user)).external_id == user


async def test_youtube_a_spent_quota_stops_the_reply_before_it_is_sent(
    platforms: PlatformSimulator, connect: Any
) -> None:
    channel, token = account(platforms, "youtube")
    sim(platforms, "youtube").add_community_item(channel, "comment", "Allô", author_id="UCf")
    connector = connect("youtube")
    [item] = await connector.fetch_items(token, channel, an_hour_ago())
    platforms.set_remaining("youtube", 49, reset_in=3600)

    with pytest.raises(RateLimited) as limited:
        await connector.reply(token, channel, ref(item), "Bonjour !", private=False)

    assert limited.value.retry_after > 0
    assert sim(platforms, "youtube").replies_of(channel) == []


@pytest.mark.parametrize("platform", INBOX)
async def test_polling_since_a_time_leaves_out_what_came_before(
    platforms: PlatformSimulator, connect: Any, platform: str
) -> None:
    external_id, token = account(platforms, platform)
    community = sim(platforms, platform)
    kind = "mention" if platform == "x" else "comment"
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    community.add_community_item(
        external_id, kind, "Old news", author_id="12345", created_at=two_days_ago
    )
    community.add_community_item(external_id, kind, "Fresh", author_id="12345")
    connector = connect(platform)

    recent = await connector.fetch_items(token, external_id, an_hour_ago())
    everything = await connector.fetch_items(token, external_id, two_days_ago - timedelta(hours=1))

    assert [i.text for i in recent] == ["Fresh"]
    assert [i.text for i in everything] == ["Old news", "Fresh"]
