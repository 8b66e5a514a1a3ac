"""The community inbox of Facebook Pages and Instagram professional accounts (Graph API v21.0):
webhook parsing, the catch-up poll, public and private replies, private messages, moderation.

Webhooks (``parse_webhook``): object ``page`` carries ``entry[].changes[]`` of field ``feed``
(item ``comment``; verbs add, edited, remove, hide, unhide) and ``mention``, and
``entry[].messaging[]`` (Messenger; ``is_echo`` marks the Page's own messages); object
``instagram`` carries ``changes`` of fields ``comments`` and ``mentions`` and ``messaging``.
A private conversation's thread is the person's id (PSID, IGSID): webhooks name no conversation,
and the poll finds the same id among the conversation's participants. An Instagram mention
says only where it is (``media_id``, ``comment_id``): its text is empty until read.

Sending: a public reply is ``POST /{comment}/comments`` (Facebook) or ``/{comment}/replies``
(Instagram, which replies only under top-level comments), a private reply to a comment and an
answer in a conversation are ``POST /{page or ig-user}/messages`` with ``recipient``
``{"comment_id"}`` or ``{"id"}``. Every one of them is a create call (``creates=True``): a
definite 4xx is PublishRejected, anything unclear OutcomeUnknown, and ``find_reply`` looks for
the reply (the comment's replies, then the conversation with the author) instead of sending it
again. Graph shows times to the second, so reconciliation compares with `since` truncated too.

The classes here are mixins of FacebookPageConnector and InstagramBusinessConnector (in
``social.connectors.meta``, which re-exports ``parse_webhook``): they use MetaConnector's
requests, budget keys and error mapping.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from infra.clock import utcnow
from social.connectors.base import Json, RequestRejected, as_dict, as_list, sub
from social.connectors.types import (
    InboundItem,
    InboxKind,
    ItemRef,
    Moderation,
    OutcomeUnknown,
    PublishRejected,
    SentReply,
    TokenSet,
)

if TYPE_CHECKING:
    # The mixins' methods run on a MetaConnector; at run time they sit before it in the MRO
    # (importing it here would be circular: meta.py imports this module).
    from social.connectors.meta import MetaConnector as _Graph
else:
    _Graph = object

GRAPH = "https://graph.facebook.com/v21.0"
POLL_POSTS = 25
"""The recent posts (media) whose comments the catch-up poll reads."""
POLL_CONVERSATIONS = 25
POLL_MESSAGES = 50
"""Messages read per conversation (the newest)."""
DEFAULT_WINDOW = timedelta(days=7)
"""What the poll covers when not told since when."""
COMMENT_PAGES = 5
"""Pages of 100 comments read per post (and of replies per comment in find_reply)."""
FB_COMMENT_FIELDS = "id,message,from,created_time,parent{id},is_hidden,attachment"
IG_COMMENT_FIELDS = "id,text,timestamp,username,from,hidden,parent_id"
MESSAGE_FIELDS = "id,message,from,to,created_time"
MS_THRESHOLD = 100_000_000_000
"""Graph sends epoch seconds in feed changes and milliseconds in messaging events."""


# ---------------------------------------------------------------- webhooks


def parse_webhook(payload: Mapping[str, Any]) -> list[InboundItem]:
    """The items a Meta webhook body announces, in its order. Unknown objects, fields, items
    and events give nothing; a body that is not an object with ``object`` and ``entry`` is a
    ValueError."""
    if (
        not isinstance(payload, Mapping)
        or not isinstance(payload.get("object"), str)
        or not isinstance(payload.get("entry"), list)
    ):
        raise ValueError("a Meta webhook is an object with `object` and `entry`")
    source = payload["object"]
    if source not in {"page", "instagram"}:
        return []
    items: list[InboundItem] = []
    for entry in payload["entry"]:
        account = _id(entry.get("id")) if isinstance(entry, Mapping) else None
        if account is None:
            continue
        sent = _epoch(entry.get("time"))
        for change in as_list(entry.get("changes")):
            if not isinstance(change, Mapping) or not isinstance(change.get("value"), Mapping):
                continue
            field, value = change.get("field"), change["value"]
            if source == "page":
                item = _page_change(account, field, value, sent)
            else:
                item = _instagram_change(account, field, value, sent)
            if item is not None:
                items.append(item)
        for event in as_list(entry.get("messaging")):
            item = _messaging(account, event) if isinstance(event, Mapping) else None
            if item is not None:
                items.append(item)
    return items


def _id(value: Json) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def _epoch(value: Json) -> datetime | None:
    """A Graph time: epoch seconds or milliseconds, or an ISO 8601 string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value >= MS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
            except ValueError:
                return None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _text(value: Json) -> str:
    return value if isinstance(value, str) else ""


def _media(*urls: Json) -> tuple[str, ...]:
    return tuple(u for u in urls if isinstance(u, str) and u)


def _page_change(
    page: str, field: Json, value: Mapping[str, Json], sent: datetime | None
) -> InboundItem | None:
    if field == "mention":
        target = _id(value.get("comment_id")) or _id(value.get("post_id"))
        if target is None or value.get("verb", "add") != "add":
            return None
        return InboundItem(
            account_external_id=page,
            external_id=target,
            kind=InboxKind.mention,
            text=_text(value.get("message")),
            author_id=_id(value.get("sender_id")) or "",
            author_name=_text(value.get("sender_name")) or None,
            created_at=_epoch(value.get("created_time")) or sent or utcnow(),
            thread_external_id=_id(value.get("post_id")),
        )
    if field != "feed" or value.get("item") != "comment":
        return None  # posts, reactions, shares...: not for the inbox
    comment = _id(value.get("comment_id"))
    if comment is None:
        return None
    post = _id(value.get("post_id"))
    parent = _id(value.get("parent_id"))
    parent = parent if parent != post else None  # a top-level comment's parent is its post
    author = sub(value, "from")
    author_id = _id(author.get("id")) or ""
    verb = value.get("verb")
    return InboundItem(
        account_external_id=page,
        external_id=comment,
        kind=InboxKind.reply if parent else InboxKind.comment,
        text=_text(value.get("message")),
        author_id=author_id,
        author_name=_text(author.get("name")) or None,
        created_at=_epoch(value.get("created_time")) or sent or utcnow(),
        parent_external_id=parent,
        thread_external_id=post,
        media_urls=_media(value.get("photo"), value.get("video")),
        removed=verb in {"remove", "delete"},
        hidden=True if verb == "hide" else False if verb == "unhide" else None,
        from_account=author_id == page,
    )


def _instagram_change(
    user: str, field: Json, value: Mapping[str, Json], sent: datetime | None
) -> InboundItem | None:
    if field == "mentions":
        media = _id(value.get("media_id"))
        target = _id(value.get("comment_id")) or media
        if target is None:
            return None
        return InboundItem(
            account_external_id=user,
            external_id=target,
            kind=InboxKind.mention,
            text="",  # the webhook says where, not what: GET mentioned_comment reads it
            author_id="",
            created_at=sent or utcnow(),
            thread_external_id=media,
        )
    if field not in {"comments", "live_comments"}:
        return None
    comment = _id(value.get("id"))
    if comment is None:
        return None
    author = sub(value, "from")
    author_id = _id(author.get("id")) or ""
    parent = _id(value.get("parent_id"))
    return InboundItem(
        account_external_id=user,
        external_id=comment,
        kind=InboxKind.reply if parent else InboxKind.comment,
        text=_text(value.get("text")),
        author_id=author_id,
        author_handle=_text(author.get("username")) or None,
        created_at=sent or utcnow(),  # Instagram's comment webhook carries no time of its own
        parent_external_id=parent,
        thread_external_id=_id(sub(value, "media").get("id")),
        from_account=author_id == user,
    )


def _messaging(account: str, event: Mapping[str, Json]) -> InboundItem | None:
    """A message (a person's, or the account's own echo); reads, deliveries, reactions and
    postbacks are not items."""
    message = event.get("message")
    if not isinstance(message, Mapping):
        return None
    mid = _id(message.get("mid"))
    sender = _id(sub(event, "sender").get("id"))
    recipient = _id(sub(event, "recipient").get("id"))
    if mid is None or sender is None:
        return None
    echo = message.get("is_echo") is True or sender == account
    urls = [
        sub(a, "payload").get("url")
        for a in as_list(message.get("attachments"))
        if isinstance(a, dict)
    ]
    return InboundItem(
        account_external_id=account,
        external_id=mid,
        kind=InboxKind.message,
        text=_text(message.get("text")),
        author_id=sender,
        created_at=_epoch(event.get("timestamp")) or utcnow(),
        thread_external_id=recipient if echo else sender,
        media_urls=_media(*urls),
        removed=message.get("is_deleted") is True,
        from_account=echo,
    )


# ---------------------------------------------------------------- the connectors' inbox side


def _at_or_after(stamp: Json, since: datetime) -> datetime | None:
    """The time of a Graph item if it is not before `since` (to the second, as Graph says)."""
    when = _epoch(stamp)
    if when is None or when < since.replace(microsecond=0):
        return None
    return when


def _same(a: Json, b: str) -> bool:
    return isinstance(a, str) and a.strip() == b.strip()


class MetaInbox(_Graph):
    """What Facebook's and Instagram's inboxes share: private messages (answers and private
    replies to comments), conversations, the poll's shape and moderation's errors."""

    can_reply_privately = True
    moderations: frozenset[Moderation] = frozenset(Moderation)
    conversation_params: dict[str, str] = {}  # noqa: RUF012 - read only
    """Extra parameters of the conversations edge (Instagram's platform=instagram)."""
    hide_param = "is_hidden"
    label = "Facebook"

    # --- to override

    async def _public_reply(self, token: str, owner: str, item: ItemRef, text: str) -> str:
        raise NotImplementedError

    async def _replies_of(
        self, token: str, owner: str, item: ItemRef, since: datetime
    ) -> list[dict[str, Json]]:
        """The replies under the item's top-level comment, as Graph gives them."""
        raise NotImplementedError

    def _reply_text(self, node: dict[str, Json]) -> Json:
        raise NotImplementedError

    async def _recent_posts(self, token: str, owner: str) -> list[str]:
        raise NotImplementedError

    async def _comments_of(
        self, token: str, owner: str, post: str, since: datetime
    ) -> list[InboundItem]:
        raise NotImplementedError

    def _moderation_refused(self, item: ItemRef) -> str | None:
        if item.kind is InboxKind.message:
            return f"{self.label}: a private message cannot be hidden or deleted"
        return None

    # --- beyond InboxConnector

    async def complete_item(
        self, token: TokenSet, external_id: str, item: InboundItem
    ) -> InboundItem:
        """A mention as the platform shows it when read: webhooks only locate mentions (an
        Instagram mention has no text, a Page mention no message). Any other item, or one
        the platform no longer shows, is returned as it is."""
        if item.kind is not InboxKind.mention or item.text:
            return item
        try:
            return await self._read_mention(token.access_token, external_id, item)
        except RequestRejected:
            return item

    async def _read_mention(self, token: str, owner: str, item: InboundItem) -> InboundItem:
        node = await self._get(
            f"/{item.external_id}", token, owner, {"fields": "id,message,from,created_time"}
        )
        author = sub(node, "from")
        return replace(
            item,
            text=_text(node.get("message")),
            author_id=_id(author.get("id")) or item.author_id,
            author_name=_text(author.get("name")) or item.author_name,
            created_at=_epoch(node.get("created_time")) or item.created_at,
        )

    # --- InboxConnector

    async def reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, *, private: bool
    ) -> SentReply:
        if not text.strip():
            raise PublishRejected(f"{self.label}: a reply needs some text")
        at = token.access_token
        try:
            if item.kind is InboxKind.message:
                return await self._send_message(
                    at, external_id, {"id": item.author_id}, text, response=True
                )
            if private:
                return await self._send_message(
                    at, external_id, {"comment_id": item.external_id}, text, response=False
                )
            made = await self._public_reply(at, external_id, item, text)
        except PublishRejected as exc:
            if exc.reason.startswith(self.label):
                raise
            raise PublishRejected(f"{self.label} refused the reply ({exc.reason})") from None
        return SentReply(external_id=made, created_at=utcnow())

    async def _send_message(
        self, token: str, owner: str, recipient: dict[str, str], text: str, *, response: bool
    ) -> SentReply:
        data = {"recipient": json.dumps(recipient), "message": json.dumps({"text": text})}
        if response:
            data["messaging_type"] = "RESPONSE"
        body = await self._post(
            self.url(f"{GRAPH}/{owner}/messages"), token, owner, data=data, creates=True
        )
        mid = _id(body.get("message_id"))
        if mid is None:
            raise OutcomeUnknown(f"{self.key}: the answer to the message carried no id")
        return SentReply(external_id=mid, created_at=utcnow())

    async def find_reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, since: datetime
    ) -> SentReply | None:
        """Ours, with this text, at or after `since`: among the comment's replies first, then
        in the conversation with the item's author (a private reply, a message)."""
        at = token.access_token
        if item.kind is not InboxKind.message:
            for node in await self._replies_of(at, external_id, item, since):
                when = _at_or_after(node.get("created_time") or node.get("timestamp"), since)
                if (
                    when is not None
                    and _id(sub(node, "from").get("id")) == external_id
                    and _same(self._reply_text(node), text)
                ):
                    permalink = node.get("permalink_url") or node.get("permalink")
                    return SentReply(
                        external_id=str(node["id"]),
                        permalink=permalink if isinstance(permalink, str) else None,
                        created_at=when,
                    )
        for message in await self._conversation(at, external_id, item.author_id):
            when = _at_or_after(message.get("created_time"), since)
            if (
                when is not None
                and _id(sub(message, "from").get("id")) == external_id
                and _same(message.get("message"), text)
            ):
                return SentReply(external_id=str(message["id"]), created_at=when)
        return None

    async def _conversation(self, token: str, owner: str, person: str) -> list[dict[str, Json]]:
        """The messages of the conversation with `person`, oldest first."""
        if not person:
            return []
        rows = await self._conversations(token, owner, {"user_id": person})
        messages = [
            m
            for row in rows
            for m in as_list(sub(row, "messages").get("data"))
            if isinstance(m, dict) and _id(m.get("id"))
        ]
        messages.reverse()
        return messages

    async def _conversations(
        self, token: str, owner: str, extra: dict[str, str]
    ) -> list[dict[str, Json]]:
        params = {
            "fields": (
                f"id,updated_time,participants,messages.limit({POLL_MESSAGES}){{{MESSAGE_FIELDS}}}"
            ),
            "limit": str(POLL_CONVERSATIONS),
            **self.conversation_params,
            **extra,
        }
        body = await self._get(f"/{owner}/conversations", token, owner, params)
        return [r for r in as_list(body.get("data")) if isinstance(r, dict)]

    async def moderate(
        self, token: TokenSet, external_id: str, item: ItemRef, action: Moderation
    ) -> None:
        refused = self._moderation_refused(item)
        if refused is not None:
            raise PublishRejected(refused)
        url = self.url(f"{GRAPH}/{item.external_id}")
        try:
            if action is Moderation.delete:
                await self._request(
                    "DELETE",
                    url,
                    token=token.access_token,
                    keys=self._keys(external_id),
                )
            else:
                value = "true" if action is Moderation.hide else "false"
                await self._post(
                    url, token.access_token, external_id, data={self.hide_param: value}
                )
        except RequestRejected as exc:
            raise PublishRejected(
                f"{self.label} refused to {action.value} the comment ({exc.reason})"
            ) from None

    async def fetch_items(
        self, token: TokenSet, external_id: str, since: datetime | None
    ) -> list[InboundItem]:
        """The comments (and replies) under the recent posts and the private messages of
        the recent conversations, at or after `since` (default: the last 7 days), oldest
        first; the account's own are flagged from_account."""
        floor = since or utcnow() - DEFAULT_WINDOW
        at = token.access_token
        posts = await self._recent_posts(at, external_id)
        batches = await asyncio.gather(
            *(self._comments_of(at, external_id, post, floor) for post in posts),
            self._messages_since(at, external_id, floor),
        )
        items = [item for batch in batches for item in batch]
        items.sort(key=lambda i: (i.created_at, i.external_id))
        return items

    async def _messages_since(self, token: str, owner: str, since: datetime) -> list[InboundItem]:
        items: list[InboundItem] = []
        for row in await self._conversations(token, owner, {}):
            updated = _epoch(row.get("updated_time"))
            if updated is not None and updated < since.replace(microsecond=0):
                continue
            people = [
                p for p in as_list(sub(row, "participants").get("data")) if isinstance(p, dict)
            ]
            person = next((_id(p.get("id")) for p in people if _id(p.get("id")) != owner), None)
            for message in as_list(sub(row, "messages").get("data")):
                if not isinstance(message, dict) or _id(message.get("id")) is None:
                    continue
                when = _at_or_after(message.get("created_time"), since)
                if when is None:
                    continue
                author = sub(message, "from")
                author_id = _id(author.get("id")) or ""
                items.append(
                    InboundItem(
                        account_external_id=owner,
                        external_id=str(message["id"]),
                        kind=InboxKind.message,
                        text=_text(message.get("message")),
                        author_id=author_id,
                        author_name=_text(author.get("name")) or None,
                        author_handle=_text(author.get("username")) or None,
                        created_at=when,
                        thread_external_id=person,
                        from_account=author_id == owner,
                    )
                )
        return items

    async def _paged(
        self, token: str, owner: str, path: str, params: dict[str, str], pages: int
    ) -> list[dict[str, Json]]:
        rows: list[dict[str, Json]] = []
        for _ in range(pages):
            body = as_dict(await self._get(path, token, owner, params))
            rows.extend(r for r in as_list(body.get("data")) if isinstance(r, dict))
            paging = sub(body, "paging")
            after = sub(paging, "cursors").get("after")
            if not paging.get("next") or not isinstance(after, str):
                break
            params = {**params, "after": after}
        return rows


class FacebookInbox(MetaInbox):
    """A Page's comments (two levels: a reply to a reply joins its top-level comment) and
    Messenger conversations."""

    async def _public_reply(self, token: str, owner: str, item: ItemRef, text: str) -> str:
        body = await self._post(
            self.url(f"{GRAPH}/{item.external_id}/comments"),
            token,
            owner,
            data={"message": text},
            creates=True,
        )
        return self._made(body)

    async def _replies_of(
        self, token: str, owner: str, item: ItemRef, since: datetime
    ) -> list[dict[str, Json]]:
        top = item.parent_external_id if item.kind is InboxKind.reply else None
        params = {
            "fields": "id,message,from,created_time,permalink_url",
            "since": str(int(since.timestamp())),
            "limit": "100",
        }
        return await self._paged(
            token, owner, f"/{top or item.external_id}/comments", params, COMMENT_PAGES
        )

    def _reply_text(self, node: dict[str, Json]) -> Json:
        return node.get("message")

    async def _recent_posts(self, token: str, owner: str) -> list[str]:
        body = await self._get(
            f"/{owner}/feed", token, owner, {"fields": "id,created_time", "limit": str(POLL_POSTS)}
        )
        return [
            str(p["id"])
            for p in as_list(body.get("data"))
            if isinstance(p, dict) and _id(p.get("id"))
        ]

    async def _comments_of(
        self, token: str, owner: str, post: str, since: datetime
    ) -> list[InboundItem]:
        params = {
            "filter": "stream",  # every comment and reply, each with its parent
            "order": "chronological",
            "fields": FB_COMMENT_FIELDS,
            "since": str(int(since.timestamp())),
            "limit": "100",
        }
        items: list[InboundItem] = []
        for node in await self._paged(token, owner, f"/{post}/comments", params, COMMENT_PAGES):
            when = _at_or_after(node.get("created_time"), since)
            comment = _id(node.get("id"))
            if when is None or comment is None:
                continue
            author = sub(node, "from")
            author_id = _id(author.get("id")) or ""
            parent = _id(sub(node, "parent").get("id"))
            hidden = node.get("is_hidden")
            image = sub(sub(sub(node, "attachment"), "media"), "image").get("src")
            items.append(
                InboundItem(
                    account_external_id=owner,
                    external_id=comment,
                    kind=InboxKind.reply if parent else InboxKind.comment,
                    text=_text(node.get("message")),
                    author_id=author_id,
                    author_name=_text(author.get("name")) or None,
                    created_at=when,
                    parent_external_id=parent,
                    thread_external_id=post,
                    media_urls=_media(image),
                    hidden=hidden if isinstance(hidden, bool) else None,
                    from_account=author_id == owner,
                )
            )
        return items


class InstagramInbox(MetaInbox):
    """An Instagram professional account's comments (replies only under top-level comments),
    mentions and Direct conversations. A mention cannot be hidden or deleted (it is on
    someone else's media); it is answered with ``POST /{ig-user}/mentions``."""

    conversation_params = {"platform": "instagram"}  # noqa: RUF012 - read only
    hide_param = "hide"
    label = "Instagram"

    async def _read_mention(self, token: str, owner: str, item: InboundItem) -> InboundItem:
        """mentioned_comment for a mention in a comment, mentioned_media for one in a
        caption (the webhook then names the media only)."""
        if item.thread_external_id and item.external_id != item.thread_external_id:
            field = f"mentioned_comment.comment_id({item.external_id}){{id,text,timestamp,media}}"
            node = sub(
                await self._get(f"/{owner}", token, owner, {"fields": field}), "mentioned_comment"
            )
            text, handle = node.get("text"), None
        else:
            field = f"mentioned_media.media_id({item.external_id}){{id,caption,timestamp,username}}"
            node = sub(
                await self._get(f"/{owner}", token, owner, {"fields": field}), "mentioned_media"
            )
            text, handle = node.get("caption"), node.get("username")
        return replace(
            item,
            text=_text(text),
            author_handle=_text(handle) or item.author_handle,
            created_at=_epoch(node.get("timestamp")) or item.created_at,
        )

    def _moderation_refused(self, item: ItemRef) -> str | None:
        if item.kind is InboxKind.mention:
            return "Instagram: a mention is on someone else's media; it cannot be hidden or deleted"
        return super()._moderation_refused(item)

    async def _public_reply(self, token: str, owner: str, item: ItemRef, text: str) -> str:
        if item.kind is InboxKind.mention:
            data = {"message": text, "media_id": item.thread_external_id or ""}
            if item.external_id != item.thread_external_id:
                data["comment_id"] = item.external_id
            body = await self._post(
                self.url(f"{GRAPH}/{owner}/mentions"), token, owner, data=data, creates=True
            )
            return self._made(body)
        top = item.parent_external_id if item.kind is InboxKind.reply else None
        body = await self._post(
            self.url(f"{GRAPH}/{top or item.external_id}/replies"),
            token,
            owner,
            data={"message": text},
            creates=True,
        )
        return self._made(body)

    async def _replies_of(
        self, token: str, owner: str, item: ItemRef, since: datetime
    ) -> list[dict[str, Json]]:
        top = item.parent_external_id if item.kind is InboxKind.reply else None
        params = {"fields": "id,text,timestamp,from,username", "limit": "100"}
        return await self._paged(
            token, owner, f"/{top or item.external_id}/replies", params, COMMENT_PAGES
        )

    def _reply_text(self, node: dict[str, Json]) -> Json:
        return node.get("text")

    async def _recent_posts(self, token: str, owner: str) -> list[str]:
        body = await self._get(
            f"/{owner}/media", token, owner, {"fields": "id,timestamp", "limit": str(POLL_POSTS)}
        )
        return [
            str(p["id"])
            for p in as_list(body.get("data"))
            if isinstance(p, dict) and _id(p.get("id"))
        ]

    async def _comments_of(
        self, token: str, owner: str, post: str, since: datetime
    ) -> list[InboundItem]:
        params = {
            "fields": f"{IG_COMMENT_FIELDS},replies{{{IG_COMMENT_FIELDS}}}",
            "limit": "100",
        }
        items: list[InboundItem] = []
        for node in await self._paged(token, owner, f"/{post}/comments", params, COMMENT_PAGES):
            nested = [r for r in as_list(sub(node, "replies").get("data")) if isinstance(r, dict)]
            for comment in (node, *nested):
                item = self._ig_comment(owner, post, comment, since)
                if item is not None:
                    items.append(item)
        return items

    @staticmethod
    def _ig_comment(
        owner: str, post: str, node: dict[str, Json], since: datetime
    ) -> InboundItem | None:
        when = _at_or_after(node.get("timestamp"), since)
        comment = _id(node.get("id"))
        if when is None or comment is None:
            return None
        author = sub(node, "from")
        author_id = _id(author.get("id")) or ""
        parent = _id(node.get("parent_id"))
        hidden = node.get("hidden")
        return InboundItem(
            account_external_id=owner,
            external_id=comment,
            kind=InboxKind.reply if parent else InboxKind.comment,
            text=_text(node.get("text")),
            author_id=author_id,
            author_handle=_text(node.get("username") or author.get("username")) or None,
            created_at=when,
            parent_external_id=parent,
            thread_external_id=post,
            hidden=hidden if isinstance(hidden, bool) else None,
            from_account=author_id == owner,
        )
