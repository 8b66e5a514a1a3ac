"""The sandbox platform's inbox: what the demo's live inbox shows, polled as any platform is."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from inbox.language import detect_language
from inbox.sentiment import sentiment
from social.connectors.sandbox import SandboxConnector, external_id_for_code
from social.connectors.sandbox_inbox import BURST_MINUTES, BURST_SIZE, burst_start
from social.connectors.types import (
    InboundItem,
    InboxConnector,
    InboxKind,
    ItemRef,
    Moderation,
    TokenInvalid,
    TokenSet,
)
from tests.support.clock import Clock

NOW = datetime(2026, 3, 11, 16, 37, 21, tzinfo=UTC)  # a Wednesday afternoon in Montréal
ACCOUNT = external_id_for_code("sandbox-demo-cafe-instagram")
OTHER = external_id_for_code("sandbox-demo-cafe-facebook")


def _token(account: str) -> TokenSet:
    return TokenSet(access_token=f"sandbox-at-{account}", expires_at=NOW + timedelta(days=30))


@pytest.fixture
def sandbox() -> InboxConnector:
    connector: InboxConnector = SandboxConnector()  # mypy checks it keeps the inbox's contract
    return connector


async def _poll(
    sandbox: InboxConnector, since: datetime | None, account: str = ACCOUNT
) -> list[InboundItem]:
    return await sandbox.fetch_items(_token(account), account, since)


async def test_two_polls_see_the_same_items_with_the_same_ids(
    sandbox: InboxConnector, clock: Clock
) -> None:
    clock.set(NOW, tick=False)
    since = NOW - timedelta(hours=6)
    first = await _poll(sandbox, since)
    again = await _poll(sandbox, since)
    assert first and first == again
    assert len({i.external_id for i in first}) == len(first)
    assert [i.created_at for i in first] == sorted(i.created_at for i in first)

    # Later, the same window's items are still there, unchanged, and new ones follow them.
    clock.set(NOW + timedelta(hours=2), tick=False)
    later = await _poll(sandbox, since)
    assert later[: len(first)] == first and len(later) > len(first)
    assert all(i.created_at > NOW for i in later[len(first) :])

    other = await _poll(sandbox, since, OTHER)
    assert other and {i.external_id for i in other}.isdisjoint({i.external_id for i in first})
    assert all(i.account_external_id == ACCOUNT for i in first)
    assert all(i.account_external_id == OTHER for i in other)


async def test_a_day_of_the_inbox_looks_like_a_community(
    sandbox: InboxConnector, clock: Clock
) -> None:
    clock.set(NOW, tick=False)
    day = await _poll(sandbox, None)
    assert NOW - timedelta(hours=24) <= day[0].created_at and len(day) >= 40

    kinds = Counter(i.kind for i in day)
    assert set(kinds) == {InboxKind.comment, InboxKind.reply, InboxKind.mention, InboxKind.message}
    languages = Counter(detect_language(i.text) for i in day)
    assert languages["fr"] >= 10 and languages["en"] >= 10, languages
    assert all(i.author_id and i.author_handle and i.author_name and i.text for i in day)
    assert not any(i.from_account or i.removed for i in day)

    by_id = {i.external_id: i for i in day}
    for item in day:
        if item.kind is InboxKind.reply:
            # Under a comment of the same post, written before it (when the poll reaches it).
            assert item.parent_external_id and item.thread_external_id
            parent = by_id.get(item.parent_external_id)
            if parent is not None:
                assert parent.kind is InboxKind.comment
                assert parent.thread_external_id == item.thread_external_id
                assert parent.created_at < item.created_at
        else:
            assert item.parent_external_id is None
    # A private conversation is one author's: their messages share one thread, nobody else's.
    threads: dict[str, set[str]] = {}
    for item in day:
        if item.kind is InboxKind.message and item.thread_external_id:
            threads.setdefault(item.thread_external_id, set()).add(item.author_id)
    assert threads and all(len(authors) == 1 for authors in threads.values())


async def test_once_a_day_a_burst_of_negative_comments_under_one_post(
    sandbox: InboxConnector, clock: Clock
) -> None:
    clock.set(NOW, tick=False)
    week = await _poll(sandbox, NOW - timedelta(days=7))
    in_bursts: set[str] = set()
    for day in (NOW.date() - timedelta(days=n) for n in range(1, 7)):
        start = burst_start(ACCOUNT, day)
        window = [
            i
            for i in week
            if start <= i.created_at < start + timedelta(minutes=BURST_MINUTES)
            and i.kind is InboxKind.comment
        ]
        by_post = Counter(i.thread_external_id for i in window)
        post, count = by_post.most_common(1)[0]
        assert count == BURST_SIZE, (day, by_post)
        crisis = [i for i in window if i.thread_external_id == post]
        # Negative as the inbox itself reads them: what its crisis warning counts.
        labels = Counter(sentiment(i.text, detect_language(i.text)).label for i in crisis)
        assert labels == {"negative": BURST_SIZE}, (day, labels)
        assert len({i.author_id for i in crisis}) >= 5  # many people, not one angry customer
        in_bursts |= {i.external_id for i in crisis}

    # Outside the bursts, a few negative items, not a stream of them.
    everyday = [i for i in week if i.external_id not in in_bursts]
    negative = sum(sentiment(i.text, detect_language(i.text)).label == "negative" for i in everyday)
    assert 0.08 <= negative / len(everyday) <= 0.35


@pytest.mark.parametrize(
    ("since", "earliest"),
    [
        (NOW - timedelta(minutes=90), NOW - timedelta(minutes=90)),
        (None, NOW - timedelta(hours=24)),  # the platform's default window
        (NOW - timedelta(days=60), NOW - timedelta(days=7)),  # no further back than a week
    ],
)
async def test_since_is_respected_and_nothing_comes_from_the_future(
    sandbox: InboxConnector, clock: Clock, since: datetime | None, earliest: datetime
) -> None:
    clock.set(NOW, tick=False)
    items = await _poll(sandbox, since)
    assert items
    assert all(earliest <= i.created_at <= NOW for i in items)
    # The first item comes soon after the start: the window is not cut shorter than asked.
    assert items[0].created_at - earliest < timedelta(hours=3)


async def test_a_poll_reaching_the_current_minute_shows_only_its_past(
    sandbox: InboxConnector, clock: Clock
) -> None:
    """Items of the current minute appear as their second passes, never ahead of it."""
    seen: list[InboundItem] = []
    for seconds in range(0, 3600, 20):
        now = NOW + timedelta(seconds=seconds)
        clock.set(now, tick=False)
        items = await _poll(sandbox, NOW)
        assert all(NOW <= i.created_at <= now for i in items)
        assert items[: len(seen)] == seen  # what was seen stays, in order
        seen = items
    assert len(seen) >= 3

    clock.set(NOW, tick=False)
    assert await _poll(sandbox, NOW + timedelta(minutes=5)) == []


async def test_another_accounts_token_is_refused(sandbox: InboxConnector, clock: Clock) -> None:
    clock.set(NOW, tick=False)
    with pytest.raises(TokenInvalid):
        await sandbox.fetch_items(_token(OTHER), ACCOUNT, None)
    ref = ItemRef(external_id="sbx-comment-1", kind=InboxKind.comment, author_id="sbx-user-001")
    with pytest.raises(TokenInvalid):
        await sandbox.reply(_token(OTHER), ACCOUNT, ref, "Merci!", private=False)
    with pytest.raises(TokenInvalid):
        await sandbox.moderate(_token(OTHER), ACCOUNT, ref, Moderation.hide)


async def test_replies_and_moderation(sandbox: InboxConnector, clock: Clock) -> None:
    clock.set(NOW, tick=False)
    assert sandbox.can_reply_privately is True
    assert sandbox.moderations == frozenset({Moderation.hide, Moderation.unhide, Moderation.delete})
    item = next(i for i in await _poll(sandbox, None) if i.kind is InboxKind.comment)
    ref = ItemRef(
        external_id=item.external_id,
        kind=item.kind,
        author_id=item.author_id,
        thread_external_id=item.thread_external_id,
    )
    token = _token(ACCOUNT)

    public = await sandbox.reply(token, ACCOUNT, ref, "Merci beaucoup!", private=False)
    assert public.external_id.startswith("sbx-out-") and public.created_at == NOW
    assert public.permalink and "/comments/" in public.permalink
    again = await sandbox.reply(token, ACCOUNT, ref, "Merci beaucoup!", private=False)
    assert again.external_id == public.external_id  # the same answer to the same item
    private = await sandbox.reply(token, ACCOUNT, ref, "Merci beaucoup!", private=True)
    assert private.external_id != public.external_id
    assert private.permalink and "/messages/" in private.permalink
    other = await sandbox.reply(token, ACCOUNT, ref, "Thank you!", private=False)
    assert other.external_id != public.external_id

    # Every reply is answered at once: nothing is ever left to reconcile.
    assert await sandbox.find_reply(token, ACCOUNT, ref, "Merci beaucoup!", NOW) is None
    for action in Moderation:
        await sandbox.moderate(token, ACCOUNT, ref, action)  # accepted: no error
