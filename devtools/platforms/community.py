"""What the community says on a simulated account (comments, replies, mentions) and the
replies and moderation our connectors send back, for the dialects that are polled or push
without the text: LinkedIn, YouTube, X and TikTok.

Each of those dialects keeps one ``Community`` (made again by its ``reset``) and serves it in
its own platform's shapes. Its ``add_community_item(account, kind, text, *, author_id,
author_name=None, parent=None, thread=None, push=True) -> external_id`` is what the
simulator's generic ``add_community_item(platform, ...)`` calls; it makes ids and default
threads through the dialect hooks ``community_id(account, kind)`` and
``community_thread(account, item)``, and LinkedIn signs its notifications with
``webhook_body(items)`` and ``webhook_headers(body, secret)``. ``CommunityItem`` has the
fields of the simulator-wide item (platform, account, id, kind, text, author, time, parent,
thread, hidden, deleted, from_account, target): the store can move into the simulator
without the dialects changing their reading of it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from devtools.platforms.core import CommunityItem as CommunityItem

if TYPE_CHECKING:
    from devtools.platforms.figures import Account

REPLY_FAULTS = ("reply_timeout", "reply_500_after_create")
"""The reply faults these dialects honour (``sim.fault(platform, kind)``): the reply is made,
then its answer is held back longer than any client waits, or is a 500."""


class Community:
    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.items: dict[str, CommunityItem] = {}

    def keep(self, item: CommunityItem) -> CommunityItem:
        self.items[item.id] = item
        return item

    def new(
        self,
        account: str,
        item_id: str,
        kind: str,
        text: str,
        *,
        author_id: str,
        author_name: str | None = None,
        thread: str | None = None,
        parent: str | None = None,
        target: str | None = None,
        at: float | None = None,
    ) -> CommunityItem:
        """A new item, kept; `target` makes it a reply of the account answering `target`."""
        if kind not in {"comment", "reply", "mention"}:
            raise ValueError(f"unknown community item kind {kind!r}")
        return self.keep(
            CommunityItem(
                platform=self.platform,
                account=account,
                id=item_id,
                kind=kind,
                text=text,
                author_id=author_id,
                author_name=author_name,
                created_at=time.time() if at is None else at,
                parent=parent,
                thread=thread,
                from_account=target is not None,
                target=target,
            )
        )

    def get(self, item_id: str) -> CommunityItem | None:
        return self.items.get(item_id)

    def of(self, account: str) -> list[CommunityItem]:
        """The account's items still there, oldest first."""
        return sorted(
            (i for i in self.items.values() if i.account == account and not i.deleted),
            key=lambda i: i.created_at,
        )

    def children(self, parent: str) -> list[CommunityItem]:
        return sorted(
            (i for i in self.items.values() if i.parent == parent and not i.deleted),
            key=lambda i: i.created_at,
        )

    def replies_of(self, account: str) -> list[CommunityItem]:
        """The replies the API made for the account, oldest first (deleted ones included)."""
        return sorted(
            (i for i in self.items.values() if i.account == account and i.target is not None),
            key=lambda i: i.created_at,
        )

    def duplicate_replies(self) -> list[CommunityItem]:
        """Replies sent again: the same text to the same item (what exactly-once forbids)."""
        seen: set[tuple[str, str, str]] = set()
        again = []
        for item in sorted(self.items.values(), key=lambda i: i.created_at):
            if item.target is None:
                continue
            key = (item.account, item.target, item.text)
            if key in seen:
                again.append(item)
            seen.add(key)
        return again


class CommunityDialect(Protocol):
    """What a dialect with a community offers (LinkedIn, YouTube, X and TikTok here)."""

    community: Community

    def add_community_item(
        self,
        account: str,
        kind: str,
        text: str,
        *,
        author_id: str,
        author_name: str | None = None,
        parent: str | None = None,
        thread: str | None = None,
        push: bool = True,
        created_at: datetime | None = None,
    ) -> str: ...

    def replies_of(self, account: str) -> list[CommunityItem]: ...

    def community_id(self, account: Account, kind: str) -> str: ...

    def community_thread(self, account: Account, item: CommunityItem) -> str | None: ...

    def webhook_body(self, items: Sequence[CommunityItem]) -> bytes | None: ...

    def webhook_headers(self, body: bytes, secret: str) -> dict[str, str]: ...


def add_item(
    dialect: CommunityDialect,
    account: Account,
    kind: str,
    text: str,
    *,
    author_id: str,
    author_name: str | None,
    parent: CommunityItem | None,
    thread: str | None,
    created_at: datetime | None = None,
) -> CommunityItem:
    """What every dialect's add_community_item does once it has checked `kind` and `parent`:
    an id and (without one) a thread from the dialect's hooks; a reply takes its parent's
    thread."""
    item = CommunityItem(
        platform=dialect.community.platform,
        account=account.external_id,
        id=dialect.community_id(account, kind),
        kind=kind,
        text=text,
        author_id=author_id,
        author_name=author_name,
        created_at=created_at.timestamp() if created_at is not None else time.time(),
        parent=parent.id if parent is not None else None,
        thread=thread or (parent.thread if parent is not None else None),
    )
    if item.thread is None:
        item.thread = dialect.community_thread(account, item)
    return dialect.community.keep(item)
