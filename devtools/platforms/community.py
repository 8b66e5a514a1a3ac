"""What the community says on a simulated account: comments, replies and mentions, and the
replies and moderation our connectors send back.

Each dialect keeps one ``Community`` (made again by its ``reset``) and serves it in its own
platform's shapes; the simulator's generic ``add_community_item`` hands an item to the
dialect's method of the same name, whose signature every dialect shares:
``add_community_item(account, kind, text, *, author_id, author_name=None, parent=None,
thread=None, push=True) -> external_id``.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

REPLY_FAULTS = ("reply_timeout",)
"""The reply faults a dialect honours: ``reply_timeout`` creates the reply, then holds the
answer back longer than any client waits."""


@dataclass
class CommunityItem:
    id: str
    account: str
    """Our account's external id (channel, organization, user, TikTok open id)."""
    kind: str
    """comment | reply | mention"""
    text: str
    author_id: str
    author_name: str | None
    created_at: float
    thread: str | None = None
    """The post or video it is under (a mention: its own conversation)."""
    parent: str | None = None
    from_account: bool = False
    """Written by the account itself: a reply one of our connectors sent."""
    hidden: bool = False
    deleted: bool = False
    status: str = "published"
    """YouTube's moderation status: published | heldForReview | rejected."""


class Community:
    def __init__(self) -> None:
        self.items: dict[str, CommunityItem] = {}

    def add(
        self,
        account: str,
        kind: str,
        text: str,
        *,
        author_id: str,
        author_name: str | None = None,
        thread: str | None = None,
        parent: str | None = None,
        item_id: str | None = None,
        from_account: bool = False,
        at: float | None = None,
    ) -> CommunityItem:
        if kind not in {"comment", "reply", "mention"}:
            raise ValueError(f"unknown community item kind {kind!r}")
        item = CommunityItem(
            id=item_id or secrets.token_hex(8),
            account=account,
            kind=kind,
            text=text,
            author_id=author_id,
            author_name=author_name,
            created_at=time.time() if at is None else at,
            thread=thread,
            parent=parent,
            from_account=from_account,
        )
        self.items[item.id] = item
        return item

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
        """The replies the account sent, oldest first (deleted ones included)."""
        return sorted(
            (i for i in self.items.values() if i.account == account and i.from_account),
            key=lambda i: i.created_at,
        )

    def duplicate_replies(self) -> list[CommunityItem]:
        """Replies sent again: the same text to the same item from the same account."""
        seen: Counter[tuple[str, str | None, str]] = Counter()
        again = []
        for item in sorted(self.items.values(), key=lambda i: i.created_at):
            if not item.from_account:
                continue
            key = (item.account, item.parent, item.text)
            if seen[key]:
                again.append(item)
            seen[key] += 1
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
    ) -> str: ...

    def replies_of(self, account: str) -> list[CommunityItem]: ...
