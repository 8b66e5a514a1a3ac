"""X (Twitter) accounts, through API v2.

X keeps no daily history for an account: the figures of a day are those of the posts
published that day (``/2/users/{id}/tweets``, their lifetime ``public_metrics``), and the
follower count is only today's (the profile). Impressions = ``impression_count``, engagements
= likes + reposts + replies + quotes.

Budget: ``x`` (the app) and ``x:token:<sha256(token)[:16]>`` (the user: with OAuth 2 user
context X counts per user) before every request. ``x-rate-limit-remaining: 0`` pauses the
token's key until ``x-rate-limit-reset``; a 429 does the same (or Retry-After when sent).
Refresh tokens rotate: each refresh answers a new one and voids the old.

Publishing. `prepare` uploads each medium through X's v2 media endpoints as X documents them
now (``POST /2/media/upload/initialize``, ``/2/media/upload/{id}/append`` multipart with
``segment_index``, ``/2/media/upload/{id}/finalize``, then ``GET /2/media/upload?command=STATUS``
while ``processing_info`` says pending or in progress; not v1.1's upload.twitter.com), and
sets alt text through ``POST /2/media/metadata``. `create` is ``POST /2/tweets``. X caps each
user's posts per 24 hours (``x-user-limit-24hour-*``): a 429 with that cap spent is not a
budget pause (reads go on); it is RateLimited until the reset when the reset comes before the
post's deadline (`publish_window` after its planned time), else PublishRejected
("quota_spent"). `find` reads ``/2/users/{id}/tweets`` from `since`, matching a medium id kept
in `state`, else the text (links compared as links: X shows them as t.co). `post_figures`:
``GET /2/tweets/{id}`` public_metrics, and the video's view_count.

Inbox: `fetch_items` is the mentions timeline (``/2/users/{id}/mentions``, ``start_time``,
``pagination_token``): replies to the account's posts are kind reply, other posts naming it
mentions. `reply` is ``POST /2/tweets`` with ``reply.in_reply_to_tweet_id``; `find_reply` reads
the account's timeline for a post answering the item with the same text. `moderate` hides or
unhides (``PUT /2/tweets/{id}/hidden``), which X allows on replies in the account's own
conversations only; X deletes only the account's own posts, and DMs are not sent. Mentions and
hidden replies have their own per-user windows: their budget keys
(``x:token:<hash>:mentions|hide``) are paused alone when spent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from infra.clock import utcnow
from infra.settings import Settings
from social.connectors.base import (
    Assembly,
    HttpConnector,
    Json,
    Keys,
    Parts,
    RequestRejected,
    Tally,
    as_dict,
    as_int,
    as_list,
    gather,
    midnight,
    retry_after_seconds,
    sub,
    token_key,
)
from social.connectors.types import (
    Budget,
    DailyMetrics,
    InboundItem,
    InboxKind,
    ItemRef,
    MediaFile,
    Moderation,
    OutcomeUnknown,
    Platform,
    PlatformUnavailable,
    PostDraft,
    PostFigures,
    Profile,
    PublishedPost,
    PublishRejected,
    RateLimited,
    Remember,
    SentReply,
    TokenSet,
)

API = "https://api.x.com/2"
PAGE_SIZE = 100
MAX_PAGES = 32  # X serves a user's last 3,200 posts at most
END_MARGIN = timedelta(seconds=30)
"""X refuses an end_time less than 10 s before the request."""
ENGAGEMENT_FIELDS = ("like_count", "retweet_count", "reply_count", "quote_count")
CATEGORY = {"image": "tweet_image", "gif": "tweet_gif", "video": "tweet_video"}
SEGMENT_BYTES = 4 * 1024 * 1024
"""X takes APPEND segments of at most 5 MB."""
MEDIA_MARGIN = timedelta(hours=1)
"""An uploaded medium reused by a later attempt must outlive it by this much."""
LINK = re.compile(r"https?://\S+")
FIND_PAGES = 5
MENTION_PAGES = 8
MENTION_FIELDS = "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets"


class DailyCapSpent(RateLimited):
    """The user's 24-hour post cap is spent until `reset` (X's x-user-limit-24hour-reset)."""

    def __init__(self, message: str, *, reset: datetime, limit: int | None) -> None:
        super().__init__(message, retry_after=max(0.0, (reset - utcnow()).total_seconds()))
        self.reset = reset
        self.limit = limit


def _comparable(text: str) -> str:
    return LINK.sub("<link>", text).strip()


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class XConnector(HttpConnector):
    platform = Platform.x
    real_authorize_url = "https://x.com/i/oauth2/authorize"
    real_token_url = f"{API}/oauth2/token"
    real_revoke_url = f"{API}/oauth2/revoke"
    scopes: tuple[str, ...] = (
        "tweet.read",
        "users.read",
        "offline.access",
        "tweet.write",
        "media.write",
        "tweet.moderate.write",  # hiding replies
    )
    can_reply_privately = False
    """A private answer would be a direct message, which we do not send."""
    moderations = frozenset({Moderation.hide, Moderation.unhide})
    """X lets an account hide replies in its own conversations, and delete only its own
    posts."""
    token_endpoint_auth_method = "client_secret_basic"  # noqa: S105 - a method name
    default_retry_after = 900.0  # X's windows are 15 minutes

    def _keys(self, token: str) -> Keys:
        return ((self.key, 1.0), (token_key(self.key, token), 1.0))

    def _limit_key(self, keys: Keys) -> str:
        return keys[-1][0] if keys else self.key

    def _until_reset(self, response: httpx.Response) -> float:
        reset = as_int(response.headers.get("x-rate-limit-reset"))
        if reset is None:
            return self.default_retry_after
        return max(1.0, reset - utcnow().timestamp())

    async def _observe(
        self, response: httpx.Response, body: Json, *, token: str | None, keys: Keys
    ) -> None:
        remaining = as_int(response.headers.get("x-rate-limit-remaining"))
        if remaining == 0 and token is not None:
            await self._budget.pause(self._limit_key(keys), self._until_reset(response))

    async def _check(
        self,
        response: httpx.Response,
        body: Json,
        *,
        token: str | None,
        keys: Keys,
        hidden: Sequence[str],
    ) -> None:
        if (
            response.status_code == 429
            and response.headers.get("x-user-limit-24hour-remaining") == "0"
        ):
            # The posting cap, not a request window: the token's reads must go on.
            reset = as_int(response.headers.get("x-user-limit-24hour-reset"))
            raise DailyCapSpent(
                f"{self.key}: the account's daily post limit is spent",
                reset=datetime.fromtimestamp(reset, UTC) if reset else utcnow() + timedelta(days=1),
                limit=as_int(response.headers.get("x-user-limit-24hour-limit")),
            )
        if response.status_code == 429:
            header = response.headers.get("Retry-After")
            wait = retry_after_seconds(header, 0.0) if header else self._until_reset(response)
            reason = self._scrub(f"HTTP 429: {self._message(body)}", hidden)
            await self._limited(self._limit_key(keys), wait, reason)
        await super()._check(response, body, token=token, keys=keys, hidden=hidden)

    async def _get(self, path: str, token: str, params: dict[str, str]) -> dict[str, Json]:
        body = await self._request(
            "GET", self.url(API + path), token=token, keys=self._keys(token), params=params
        )
        return as_dict(body)

    async def profile(self, token: TokenSet, external_id: str | None) -> Profile:
        path = "/users/me" if external_id is None else f"/users/{external_id}"
        body = await self._get(path, token.access_token, {"user.fields": "public_metrics"})
        user = body.get("data")
        if not isinstance(user, dict):
            errors = as_list(body.get("errors"))
            detail = errors[0].get("detail") if errors and isinstance(errors[0], dict) else None
            raise RequestRejected(str(detail or "no such user"))
        metrics = user.get("public_metrics")
        return Profile(
            external_id=str(user["id"]),
            handle=user.get("username") or None,
            display_name=user.get("name") or None,
            followers=as_int(metrics.get("followers_count")) if isinstance(metrics, dict) else None,
        )

    async def _posts(self, token: str, external_id: str, since: date, until: date) -> Parts:
        names = ("posts_published", "impressions", "engagements")
        tally = Tally(since, until, names)
        start = midnight(since)
        end = min(midnight(until + timedelta(days=1)), utcnow() - END_MARGIN)
        if end <= start:
            return tally.parts()
        params = {
            "start_time": _stamp(start),
            "end_time": _stamp(end),
            "max_results": str(PAGE_SIZE),
            "tweet.fields": "created_at,public_metrics",
        }
        for _ in range(MAX_PAGES):
            body = await self._get(f"/users/{external_id}/tweets", token, params)
            for post in as_list(body.get("data")):
                if not isinstance(post, dict) or not isinstance(post.get("created_at"), str):
                    continue
                day = datetime.fromisoformat(post["created_at"].replace("Z", "+00:00")).date()
                metrics = post.get("public_metrics")
                tally.add(day, "posts_published", 1)
                tally.add_fields(day, "impressions", metrics, ("impression_count",))
                tally.add_fields(day, "engagements", metrics, ENGAGEMENT_FIELDS)
            next_token = sub(body, "meta").get("next_token")
            if not isinstance(next_token, str):
                break
            params = {**params, "pagination_token": next_token}
        return tally.parts()

    async def daily_metrics(
        self, token: TokenSet, external_id: str, since: date, until: date
    ) -> DailyMetrics:
        names = ("posts_published", "impressions", "engagements")
        got = await gather([(names, self._posts(token.access_token, external_id, since, until))])
        out = Assembly(since, until)
        for name in names:
            out.series(name, got[name])
        return out.done()

    # --- publishing

    publish_window: timedelta = timedelta(hours=2)
    """How long after its planned time a post may still go out (PUBLISHING_DEADLINE_MINUTES)."""

    def __init__(self, *, http: httpx.AsyncClient, budget: Budget, settings: Settings) -> None:
        super().__init__(http=http, budget=budget, settings=settings)
        self.publish_window = timedelta(minutes=settings.publishing_deadline_minutes)

    media_poll_cap: float = 30.0
    """At most this long between two STATUS looks, whatever check_after_secs says."""
    media_poll_attempts: int = 60

    async def _post(self, path: str, token: str, **kwargs: Any) -> dict[str, Json]:
        body = await self._request(
            "POST", self.url(API + path), token=token, keys=self._keys(token), **kwargs
        )
        return as_dict(body) if body is not None else {}

    async def prepare(
        self, token: TokenSet, external_id: str, draft: PostDraft, state: dict[str, Any]
    ) -> dict[str, Any]:
        kinds = [m.kind for m in draft.media]
        if any(k not in CATEGORY for k in kinds):
            raise PublishRejected("X takes images, GIFs and videos only; remove the other files")
        if len(kinds) > 4 or (len(kinds) > 1 and {"video", "gif"} & set(kinds)):
            raise PublishRejected(
                "X takes up to 4 images, or one video or GIF, per post; split this post"
            )
        earlier = [m for m in as_list(state.get("media")) if isinstance(m, dict)]
        prepared: list[dict[str, Any]] = []
        try:
            for index, media in enumerate(draft.media):
                before = earlier[index] if index < len(earlier) else {}
                if self._still_usable(before, media):
                    prepared.append(before)  # uploaded by an earlier attempt
                    continue
                prepared.append(await self._upload(token.access_token, media))
        except RequestRejected as exc:
            raise PublishRejected(
                f"X refused the media ({exc.reason}); check the files and publish again",
                code="media_rejected",
            ) from None
        return {"media": prepared}

    @staticmethod
    def _still_usable(before: dict[str, Any], media: MediaFile) -> bool:
        expires = before.get("expires_at")
        if not isinstance(expires, str) or not before.get("id"):
            return False
        if (before.get("kind"), before.get("size")) != (media.kind, media.size):
            return False
        return datetime.fromisoformat(expires) > utcnow() + MEDIA_MARGIN

    async def _upload(self, token: str, media: MediaFile) -> dict[str, Any]:
        init = sub(
            await self._post(
                "/media/upload/initialize",
                token,
                json={
                    "media_type": media.content_type,
                    "total_bytes": media.size,
                    "media_category": CATEGORY[media.kind],
                },
            ),
            "data",
        )
        media_id = init.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise PlatformUnavailable(f"{self.key}: the upload was not initialized")
        for index, chunk in enumerate(media.chunks(SEGMENT_BYTES)):
            await self._post(
                f"/media/upload/{media_id}/append",
                token,
                data={"segment_index": str(index)},
                files={"media": ("blob", chunk, "application/octet-stream")},
            )
        done = sub(await self._post(f"/media/upload/{media_id}/finalize", token), "data")
        await self._processed(token, media_id, done)
        if media.alt_text and media.kind in {"image", "gif"}:
            await self._post(
                "/media/metadata",
                token,
                json={"id": media_id, "metadata": {"alt_text": {"text": media.alt_text[:1000]}}},
            )
        lifetime = as_int(done.get("expires_after_secs")) or as_int(init.get("expires_after_secs"))
        return {
            "id": media_id,
            "kind": media.kind,
            "size": media.size,
            "expires_at": (utcnow() + timedelta(seconds=lifetime or 0)).isoformat(),
        }

    async def _processed(self, token: str, media_id: str, answer: dict[str, Json]) -> None:
        """Wait while X processes the medium (a video or GIF), as long as it says to."""
        for _ in range(self.media_poll_attempts):
            info = sub(answer, "processing_info")
            state = info.get("state")
            if not info or state == "succeeded":
                return
            if state == "failed":
                error = sub(info, "error").get("message") or "processing failed"
                raise PublishRejected(
                    f"X could not process the media ({error}); check its format and publish again",
                    code="media_rejected",
                )
            wait = as_int(info.get("check_after_secs")) or 1
            await asyncio.sleep(min(float(wait), self.media_poll_cap))
            answer = sub(
                await self._get(
                    "/media/upload", token, {"command": "STATUS", "media_id": media_id}
                ),
                "data",
            )
        raise PlatformUnavailable(f"{self.key}: the media are still processing")

    async def create(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        remember: Remember,
    ) -> PublishedPost:
        media_ids = [
            str(m["id"]) for m in as_list(state.get("media")) if isinstance(m, dict) and m.get("id")
        ]
        if len(media_ids) != len(draft.media):
            raise PublishRejected("X: the media were not prepared; publish again")
        body: dict[str, Json] = {"text": draft.text}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        try:
            answer = await self._request(
                "POST",
                self.url(API + "/tweets"),
                token=token.access_token,
                keys=self._keys(token.access_token),
                json=body,
                creates=True,
            )
        except DailyCapSpent as exc:
            deadline = draft.planned_at + self.publish_window
            if exc.reset > deadline:
                cap = f"{exc.limit} posts" if exc.limit else "its posts"
                raise PublishRejected(
                    f"X: this account has used its daily limit of {cap}; it resets at "
                    f"{exc.reset:%Y-%m-%d %H:%M} UTC, after this post's deadline. "
                    "Reschedule the post.",
                    code="quota_spent",
                ) from None
            raise RateLimited(
                f"{self.key}: the daily post limit resets in {exc.retry_after:.0f} s",
                retry_after=exc.retry_after,
            ) from None
        except PublishRejected as exc:
            raise PublishRejected(
                f"X refused the post ({exc.reason}); correct it and publish again", code=exc.code
            ) from None
        post_id = sub(answer, "data").get("id")
        if not isinstance(post_id, str) or not post_id:
            raise OutcomeUnknown(f"{self.key}: the post was accepted without its id")
        return PublishedPost(
            external_id=post_id, permalink=permalink(post_id), published_at=utcnow()
        )

    async def find(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        since: datetime,
    ) -> PublishedPost | None:
        ours = {
            str(m["id"]) for m in as_list(state.get("media")) if isinstance(m, dict) and m.get("id")
        }
        text = _comparable(draft.text)
        floor = since.replace(microsecond=0)  # X gives created_at to the second
        params = {
            "start_time": _stamp(min(since, utcnow() - END_MARGIN)),
            "max_results": str(PAGE_SIZE),
            "tweet.fields": "created_at,text,attachments",
        }
        for _ in range(FIND_PAGES):
            body = await self._get(f"/users/{external_id}/tweets", token.access_token, params)
            for post in as_list(body.get("data")):
                if not isinstance(post, dict) or not isinstance(post.get("id"), str):
                    continue
                keys = as_list(sub(post, "attachments").get("media_keys"))
                media = {str(k).split("_", 1)[-1] for k in keys}
                created = post.get("created_at")
                when = (
                    datetime.fromisoformat(created.replace("Z", "+00:00"))
                    if isinstance(created, str)
                    else None
                )
                by_text = (
                    when is not None
                    and when >= floor
                    and _comparable(str(post.get("text", ""))) == text
                )
                if ours & media or by_text:
                    return PublishedPost(
                        external_id=post["id"], permalink=permalink(post["id"]), published_at=when
                    )
            next_token = sub(body, "meta").get("next_token")
            if not isinstance(next_token, str):
                return None
            params = {**params, "pagination_token": next_token}
        return None

    def resumable(self, state: dict[str, Any]) -> bool:
        return False

    async def post_figures(self, token: TokenSet, external_id: str, post_id: str) -> PostFigures:
        body = await self._get(
            f"/tweets/{post_id}",
            token.access_token,
            {
                "tweet.fields": "public_metrics",
                "expansions": "attachments.media_keys",
                "media.fields": "public_metrics",
            },
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise RequestRejected(f"no such post: {post_id}")
        metrics = sub(data, "public_metrics")
        parts = [as_int(metrics.get(f)) for f in ENGAGEMENT_FIELDS]
        videos = [
            as_int(sub(m, "public_metrics").get("view_count"))
            for m in as_list(sub(body, "includes").get("media"))
            if isinstance(m, dict) and m.get("type") == "video"
        ]
        return PostFigures(
            impressions=as_int(metrics.get("impression_count")),
            reach=None,
            engagements=None if None in parts else sum(p for p in parts if p is not None),
            video_views=None if not videos or None in videos else sum(v or 0 for v in videos),
        )

    # --- the community inbox

    def _endpoint_keys(self, token: str, endpoint: str) -> Keys:
        """X limits mentions and hidden replies per user and endpoint: a spent window pauses
        that endpoint for the token, never its publishing or figures."""
        return ((self.key, 1.0), (f"{token_key(self.key, token)}:{endpoint}", 1.0))

    async def fetch_items(
        self, token: TokenSet, external_id: str, since: datetime | None
    ) -> list[InboundItem]:
        """The account's mentions timeline (``/2/users/{id}/mentions``): posts naming it,
        replies to its posts among them. Newest first from X, oldest first here."""
        at = token.access_token
        params = {
            "max_results": str(PAGE_SIZE),
            "tweet.fields": MENTION_FIELDS,
            "expansions": "author_id",
            "user.fields": "username,name",
        }
        if since is not None:
            params["start_time"] = _stamp(min(since, utcnow() - END_MARGIN))
        found: dict[str, InboundItem] = {}
        for _ in range(MENTION_PAGES):
            body = as_dict(
                await self._request(
                    "GET",
                    self.url(f"{API}/users/{external_id}/mentions"),
                    token=at,
                    keys=self._endpoint_keys(at, "mentions"),
                    params=params,
                )
            )
            users = {
                str(u.get("id")): u
                for u in as_list(sub(body, "includes").get("users"))
                if isinstance(u, dict)
            }
            for post in as_list(body.get("data")):
                item = _mention_item(external_id, post, users)
                if item is not None and (since is None or item.created_at >= since):
                    found[item.external_id] = item
            next_token = sub(body, "meta").get("next_token")
            if not isinstance(next_token, str):
                break
            params = {**params, "pagination_token": next_token}
        return sorted(found.values(), key=lambda i: (i.created_at, int(i.external_id)))

    async def reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, *, private: bool
    ) -> SentReply:
        if private:
            raise PublishRejected("X: a private answer is a direct message, not sent from here.")
        try:
            answer = await self._request(
                "POST",
                self.url(API + "/tweets"),
                token=token.access_token,
                keys=self._keys(token.access_token),
                json={"text": text, "reply": {"in_reply_to_tweet_id": item.external_id}},
                creates=True,
            )
        except DailyCapSpent as exc:
            raise RateLimited(
                f"{self.key}: the daily post limit resets in {exc.retry_after:.0f} s",
                retry_after=exc.retry_after,
            ) from None
        except PublishRejected as exc:
            raise PublishRejected(f"X refused the reply ({exc.reason}).") from None
        post_id = sub(answer, "data").get("id")
        if not isinstance(post_id, str) or not post_id:
            raise OutcomeUnknown(f"{self.key}: the reply was accepted without its id")
        return SentReply(post_id, permalink(post_id), utcnow())

    async def find_reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, since: datetime
    ) -> SentReply | None:
        """Our timeline since `since`: a post replying to the item with the same text."""
        wanted = _comparable(text)
        floor = since.replace(microsecond=0)  # X gives created_at to the second
        params = {
            "start_time": _stamp(min(since, utcnow() - END_MARGIN)),
            "max_results": str(PAGE_SIZE),
            "tweet.fields": "created_at,referenced_tweets",
        }
        for _ in range(FIND_PAGES):
            body = await self._get(f"/users/{external_id}/tweets", token.access_token, params)
            for post in as_list(body.get("data")):
                when = _created(post)
                references = post.get("referenced_tweets") if isinstance(post, dict) else None
                answered = {
                    str(r.get("id"))
                    for r in as_list(references)
                    if isinstance(r, dict) and r.get("type") == "replied_to"
                }
                if (
                    when is not None
                    and when >= floor
                    and item.external_id in answered
                    and _comparable(str(post.get("text", ""))) == wanted
                ):
                    return SentReply(str(post["id"]), permalink(str(post["id"])), when)
            next_token = sub(body, "meta").get("next_token")
            if not isinstance(next_token, str):
                return None
            params = {**params, "pagination_token": next_token}
        return None

    async def moderate(
        self, token: TokenSet, external_id: str, item: ItemRef, action: Moderation
    ) -> None:
        if action is Moderation.delete:
            raise PublishRejected("X lets an account delete only its own posts; hide it instead.")
        at = token.access_token
        try:
            await self._request(
                "PUT",
                self.url(f"{API}/tweets/{item.external_id}/hidden"),
                token=at,
                keys=self._endpoint_keys(at, "hide"),
                json={"hidden": action is Moderation.hide},
            )
        except RequestRejected as exc:
            raise PublishRejected(
                f"X refused to {action.value} it ({exc.reason}): only replies to the "
                "account's own posts can be hidden."
            ) from None


def _created(post: Json) -> datetime | None:
    created = post.get("created_at") if isinstance(post, dict) else None
    if not isinstance(created, str):
        return None
    try:
        return datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None


def _mention_item(account: str, post: Json, users: dict[str, Json]) -> InboundItem | None:
    """A post of the mentions timeline as an inbox item: a reply when it answers one of the
    account's posts (or a reply under them), else a mention."""
    when = _created(post)
    if when is None or not isinstance(post.get("id"), str):
        return None
    author = str(post.get("author_id") or "")
    if not author:
        return None
    replied = [
        str(r.get("id"))
        for r in as_list(post.get("referenced_tweets"))
        if isinstance(r, dict) and r.get("type") == "replied_to"
    ]
    answers_us = bool(replied) and str(post.get("in_reply_to_user_id") or "") == account
    user = users.get(author)
    handle = user.get("username") if isinstance(user, dict) else None
    name = user.get("name") if isinstance(user, dict) else None
    conversation = post.get("conversation_id")
    return InboundItem(
        account_external_id=account,
        external_id=post["id"],
        kind=InboxKind.reply if answers_us else InboxKind.mention,
        text=str(post.get("text", "")),
        author_id=author,
        created_at=when,
        author_handle=handle if isinstance(handle, str) else None,
        author_name=name if isinstance(name, str) else None,
        parent_external_id=replied[0] if replied else None,
        thread_external_id=conversation if isinstance(conversation, str) else None,
        from_account=author == account,
    )


def permalink(post_id: str) -> str:
    # X redirects /i/web/status/{id} to the post under its author's handle.
    return f"https://x.com/i/web/status/{post_id}"
