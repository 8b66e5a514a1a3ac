"""X: the v2 API, ``x-rate-limit-*`` headers per token and endpoint over 15-minute windows.

Publishing: the v2 media upload (``POST /2/media/upload/initialize``, ``/{id}/append``
multipart with ``segment_index``, ``/{id}/finalize``, ``GET /2/media/upload?command=STATUS``
while ``processing_info`` is pending or in progress), ``POST /2/media/metadata`` (alt text),
``POST /2/tweets`` (201) under a per-user cap of ``POSTS_PER_DAY`` posts per 24-hour window
(``x-user-limit-24hour-limit/remaining/reset`` on every answer, 429 once spent), and
``GET /2/tweets/{id}`` with ``public_metrics`` (figures of ``post_figures``). Publishing routes
count per token only: a platform-wide window forced by ``set_remaining`` does not touch them.

Inbox: ``/2/users/{id}/mentions`` (180 per 15 minutes per token) from the dialect's
`community`; ``POST /2/tweets`` with ``reply.in_reply_to_tweet_id`` answers a community post
(the reply joins the account's timeline, not `created_posts`); ``PUT /2/tweets/{id}/hidden``
(50 per 15 minutes) hides replies in the account's own conversations only.
"""

from __future__ import annotations

import email.parser
import email.policy
import heapq
import itertools
import secrets
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.platforms.community import REPLY_FAULTS, Community, CommunityItem, add_item
from devtools.platforms.core import (
    CreatedPost,
    Ctx,
    Dialect,
    Json,
    Reply,
    decode_cursor,
    drop_fields,
    encode_cursor,
    rfc3339,
)
from devtools.platforms.figures import (
    Account,
    Post,
    today_utc,
    unit_of,
)

X_WINDOW = 900.0
X_LIMITS = {
    "me": 75,
    "user": 900,
    "tweets": 900,
    "media": 500,
    "create": 300,
    "lookup": 900,
    "mentions": 180,
    "hide": 50,
}
GROUPS = {
    "me": "me",
    "user": "user",
    "tweets": "tweets",
    "media_init": "media",
    "media_append": "media",
    "media_finalize": "media",
    "media_status": "media",
    "media_metadata": "media",
    "create_tweet": "create",
    "tweet": "lookup",
    "mentions": "mentions",
    "hide_reply": "hide",
}
PUBLISHING = {"media_init", "media_append", "media_finalize", "media_status", "media_metadata"}
PUBLISHING |= {"create_tweet", "tweet", "hide_reply"}
POSTS_PER_DAY = 100
DAY = 86_400.0
MEDIA_KEY_PREFIX = {"tweet_image": "3", "tweet_gif": "16", "tweet_video": "7"}


def post_figures(tweet_id: str) -> dict[str, int]:
    """The public_metrics the simulator gives a created post (deterministic per id)."""

    def u(what: str) -> float:
        return unit_of("x", tweet_id, what)

    impressions = 100 + int(5000 * u("impressions"))
    likes = round(impressions * (0.01 + 0.04 * u("likes")))
    retweets = round(likes * (0.05 + 0.2 * u("retweets")))
    return {
        "retweet_count": retweets,
        "reply_count": round(likes * (0.1 + 0.2 * u("replies"))),
        "like_count": likes,
        "quote_count": round(retweets * 0.4 * u("quotes")),
        "bookmark_count": round(likes * 0.1 * u("bookmarks")),
        "impression_count": impressions,
    }


def video_views(tweet_id: str) -> int:
    return round(
        post_figures(tweet_id)["impression_count"] * (0.4 + 0.5 * unit_of("x", tweet_id, "views"))
    )


class XDialect(Dialect):
    authorize_path = r"/i/oauth2/authorize"
    token_path = r"/2/oauth2/token"
    routes_spec = (
        ("POST", r"/2/oauth2/revoke", "revoke"),
        ("GET", r"/2/users/me", "me"),
        ("GET", r"/2/users/([^/]+)/tweets", "tweets"),
        ("GET", r"/2/users/([^/]+)/mentions", "mentions"),
        ("PUT", r"/2/tweets/(\d+)/hidden", "hide_reply"),
        ("GET", r"/2/users/([^/]+)", "user"),
        ("POST", r"/2/media/upload/initialize", "media_init"),
        ("POST", r"/2/media/upload/(\d+)/append", "media_append"),
        ("POST", r"/2/media/upload/(\d+)/finalize", "media_finalize"),
        ("GET", r"/2/media/upload", "media_status"),
        ("POST", r"/2/media/metadata", "media_metadata"),
        ("POST", r"/2/tweets", "create_tweet"),
        ("GET", r"/2/tweets/(\d+)", "tweet"),
    )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]})

    def unauthorized(self, why: str) -> Reply:
        return Reply(
            401,
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
        )

    def throttled(self, retry_after: float | None) -> Reply:
        wait = X_WINDOW if retry_after is None else retry_after
        headers = {
            "x-rate-limit-limit": "900",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(time.time() + wait)),
        }
        if retry_after is not None:
            headers["Retry-After"] = str(round(retry_after))
        return Reply(
            429,
            {
                "title": "Too Many Requests",
                "detail": "Too Many Requests",
                "type": "about:blank",
                "status": 429,
            },
            headers,
        )

    def server_error(self, status: int) -> Reply:
        return Reply(
            status,
            {
                "title": "Service Unavailable",
                "detail": "Service Unavailable",
                "type": "about:blank",
                "status": status,
            },
        )

    def before(self, ctx: Ctx, name: str) -> None:
        if name in {"authorize", "token", "revoke"}:
            return
        group = GROUPS[name]
        # A window forced for this token (set_remaining(..., token=)) before one for everyone.
        mine = f"{self.platform}:{ctx.bearer}"
        forced_key = mine if mine in self.sim._remaining else self.platform
        forced = None if name in PUBLISHING else self.sim._remaining.get(forced_key)
        if forced is not None and ctx.now < forced[1]:
            remaining, reset_at, limit = forced
        else:
            if name not in PUBLISHING:
                self.sim._remaining.pop(forced_key, None)
            key = (ctx.bearer or "", group)
            window = self.sim._x_windows.get(key)
            if window is None or ctx.now >= window[1]:
                window = [0, ctx.now + X_WINDOW]
                self.sim._x_windows[key] = window
            limit = X_LIMITS[group]
            remaining, reset_at = limit - int(window[0]), window[1]
            window[0] += 1
        ctx.out.update(
            {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": str(max(0, remaining - 1)),
                "x-rate-limit-reset": str(int(reset_at)),
            }
        )
        if remaining <= 0:
            reply = self.throttled(None)
            reply.headers.update({**ctx.out, "x-rate-limit-remaining": "0"})
            raise reply
        if forced is not None and ctx.now < forced[1]:
            self.sim._remaining[forced_key] = (remaining - 1, reset_at, limit)

    def usage_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"x-response-time": "42", "x-transaction-id": secrets.token_hex(8)}

    def _user(self, ctx: Ctx, account: Account) -> Json:
        data: dict[str, Json] = {
            "id": account.external_id,
            "name": account.name,
            "username": account.handle,
        }
        if "public_metrics" in ctx.query.get("user.fields", ""):
            data["public_metrics"] = {
                "followers_count": account.total(today_utc()),
                "following_count": 100 + int(900 * account._key("following")),
                "tweet_count": 1000 + int(9000 * account._key("tweets")),
                "listed_count": int(50 * account._key("listed")),
                "like_count": 500 + int(5000 * account._key("likes")),
                "media_count": 100 + int(500 * account._key("media")),
            }
        return {"data": drop_fields(data, self.sim._deprecated_names(self.platform))}

    def _not_found(self, user_id: str) -> Json:
        return {
            "errors": [
                {
                    "value": user_id,
                    "detail": f"Could not find user with id: [{user_id}].",
                    "title": "Not Found Error",
                    "resource_type": "user",
                    "parameter": "id",
                    "resource_id": user_id,
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
            ]
        }

    def me(self, ctx: Ctx) -> Json:
        return self._user(ctx, self.account(ctx))

    def user(self, ctx: Ctx, user_id: str) -> Json:
        self.account(ctx)
        account = self.sim._lookup(self.platform, user_id)
        return self._not_found(user_id) if account is None else self._user(ctx, account)

    def revoke(self, ctx: Ctx) -> Json:
        self.sim._revoke_value(ctx.params.get("token", ""))
        return {"revoked": True}

    def tweets(self, ctx: Ctx, user_id: str) -> Json:
        self.account(ctx)
        account = self.sim._lookup(self.platform, user_id)
        if account is None:
            return self._not_found(user_id)
        now = datetime.now(UTC)
        try:
            end = rfc3339(ctx.query["end_time"]) if "end_time" in ctx.query else now
            start = rfc3339(ctx.query["start_time"]) if "start_time" in ctx.query else None
        except ValueError:
            raise _x_invalid("start_time", "Invalid 'start_time' or 'end_time'.") from None
        if end > now - timedelta(seconds=10):
            if "end_time" in ctx.query:
                raise _x_invalid(
                    "end_time",
                    f"Invalid 'end_time':'{ctx.query['end_time']}'. 'end_time' must be a "
                    "minimum of 10 seconds prior to the request time.",
                )
            end = now
        limit = int(ctx.query.get("max_results", "10"))
        if not 5 <= limit <= 100:
            raise _x_invalid(
                "max_results",
                f"The `max_results` query parameter value [{limit}] is not between 5 and 100",
            )
        offset = decode_cursor(ctx.query.get("pagination_token"))
        listing = itertools.islice(self._listing(account, end, start), offset, offset + limit + 1)
        posts = list(listing)
        more = len(posts) > limit
        posts = posts[:limit]
        fields = ctx.query.get("tweet.fields", "")
        data = []
        for post in posts:
            if isinstance(post, CreatedPost):
                data.append(self._created_tweet(post, fields))
                continue
            tweet: dict[str, Json] = {
                "id": post.id,
                "text": f"Post {post.id[-4:]}",
                "edit_history_tweet_ids": [post.id],
            }
            if "created_at" in fields:
                tweet["created_at"] = post.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            if "public_metrics" in fields:
                tweet["public_metrics"] = {
                    "retweet_count": post.shares,
                    "reply_count": post.comments,
                    "like_count": post.likes,
                    "quote_count": post.quotes,
                    "bookmark_count": post.quotes // 2,
                    "impression_count": post.impressions,
                }
            data.append(tweet)
        meta: dict[str, Json] = {"result_count": len(data)}
        if data:
            meta["newest_id"], meta["oldest_id"] = data[0]["id"], data[-1]["id"]
        if more:
            meta["next_token"] = encode_cursor(offset + len(posts))
        if offset:
            meta["previous_token"] = encode_cursor(max(0, offset - limit))
        body: dict[str, Json] = {"meta": meta}
        if data:
            body["data"] = drop_fields(data, self.sim._deprecated_names(self.platform))
        return body

    def _listing(
        self, account: Account, end: datetime, start: datetime | None
    ) -> Iterator[Post | CreatedPost]:
        """The user's posts in [start, end) newest first: those made through the API among
        the drawn ones."""
        low = start.timestamp() if start is not None else float("-inf")
        created = sorted(
            (
                p
                for p in (
                    *self.sim.posts_of(self.platform, account.external_id),
                    *self._sent_replies(account),
                )
                if low <= p.created_at < end.timestamp()
            ),
            key=lambda p: p.created_at,
            reverse=True,
        )
        return heapq.merge(
            created,
            account.posts_desc(end, start),
            key=lambda p: p.created_at if isinstance(p, CreatedPost) else p.created_at.timestamp(),
            reverse=True,
        )

    def _created_tweet(self, post: CreatedPost, fields: str) -> Json:
        tweet: dict[str, Json] = {
            "id": post.post_id,
            "text": post.text,
            "edit_history_tweet_ids": [post.post_id],
        }
        if "created_at" in fields:
            tweet["created_at"] = _iso(post.created_at)
        if "public_metrics" in fields:
            tweet["public_metrics"] = post_figures(post.post_id)
        if post.media:
            tweet["attachments"] = {"media_keys": [self._media_key(m) for m in post.media]}
        answered = self.community.get(post.post_id)
        if answered is not None:
            tweet |= self._reply_fields(answered, fields)
        return tweet

    # --- publishing

    def _store(self) -> dict[str, dict[str, Any]]:
        """Uploads and per-user post windows of this simulator run. The simulator's reset()
        makes a new created_posts list, so a new list means a new test: forget the rest."""
        if getattr(self, "_store_of", None) is not self.sim.created_posts:
            self._store_of = self.sim.created_posts
            self._state: dict[str, dict[str, Any]] = {"media": {}, "days": {}}
        return self._state

    def _media_key(self, media_id: str) -> str:
        media = self._store()["media"].get(media_id)
        return f"{MEDIA_KEY_PREFIX.get(media['category'], '3') if media else '3'}_{media_id}"

    def _before_publishing(self) -> None:
        if self.sim.take_fault(self.platform, "error_before_create"):
            raise self.server_error(503)

    def _own_media(self, ctx: Ctx, media_id: str) -> dict[str, Any]:
        account = self.account(ctx)
        media: dict[str, Any] | None = self._store()["media"].get(media_id)
        if media is None or media["owner"] != account.external_id:
            raise _x_invalid("id", f"Invalid media id {media_id}")
        if media["expires_at"] <= ctx.now:
            raise _x_invalid("id", f"The media id {media_id} has expired")
        return media

    def _media_body(self, media_id: str, media: dict[str, Any], ctx: Ctx) -> Json:
        data: dict[str, Json] = {
            "id": media_id,
            "media_key": self._media_key(media_id),
            "expires_after_secs": int(media["expires_at"] - ctx.now),
        }
        if media["state"] in {"finalized", "pending", "in_progress", "succeeded", "failed"}:
            data["size"] = media["size"]
        if media["category"] in {"tweet_video", "tweet_gif"} and media["state"] != "init":
            info: dict[str, Json] = {"state": media["state"]}
            if media["state"] in {"pending", "in_progress"}:
                info["check_after_secs"] = 1
                info["progress_percent"] = 0 if media["state"] == "pending" else 60
            if media["state"] == "failed":
                info["error"] = {
                    "code": 1,
                    "name": "InvalidMedia",
                    "message": "Unsupported video format",
                }
            data["processing_info"] = info
        return {"data": data}

    def media_init(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        size, kind = body.get("total_bytes"), body.get("media_type")
        category = body.get("media_category", "tweet_image")
        if not isinstance(size, int) or size <= 0 or not isinstance(kind, str):
            raise _x_invalid("total_bytes", "total_bytes and media_type are required")
        if category not in MEDIA_KEY_PREFIX:
            raise _x_invalid("media_category", f"Invalid media_category {category}")
        self._before_publishing()
        media_id = str(10**18 + secrets.randbelow(9 * 10**18))
        self._store()["media"][media_id] = {
            "owner": account.external_id,
            "size": size,
            "type": kind,
            "category": category,
            "segments": {},
            "state": "init",
            "expires_at": ctx.now + DAY,
            "polls": 0,
            "fails": False,
            "alt_text": None,
        }
        return self._media_body(media_id, self._store()["media"][media_id], ctx)

    def media_append(self, ctx: Ctx, media_id: str) -> Json:
        media = self._own_media(ctx, media_id)
        if media["state"] != "init":
            raise _x_invalid("id", "The upload is already finalized")
        segment, chunk = _multipart(ctx)
        if segment is None or chunk is None or not 0 <= segment <= 999:
            raise _x_invalid("segment_index", "segment_index and media are required")
        self._before_publishing()
        media["segments"][segment] = len(chunk)
        return {"data": {"expires_at": int(media["expires_at"])}}

    def media_finalize(self, ctx: Ctx, media_id: str) -> Json:
        media = self._own_media(ctx, media_id)
        self._before_publishing()
        indexes = sorted(media["segments"])
        if indexes != list(range(len(indexes))) or sum(media["segments"].values()) != media["size"]:
            raise _x_invalid("id", "Segments do not add up to total_bytes")
        if media["category"] == "tweet_image":
            media["state"] = "succeeded"
        elif media["state"] == "init":
            media["state"] = "pending"
            media["fails"] = bool(self.sim.take_fault(self.platform, "container_error"))
        return self._media_body(media_id, media, ctx)

    def media_status(self, ctx: Ctx) -> Json:
        if ctx.query.get("command") != "STATUS":
            raise _x_invalid("command", "command must be STATUS")
        media_id = ctx.query.get("media_id", "")
        media = self._own_media(ctx, media_id)
        if media["state"] == "pending":
            media["state"] = "in_progress"
        elif media["state"] == "in_progress":
            media["state"] = "failed" if media["fails"] else "succeeded"
        return self._media_body(media_id, media, ctx)

    def media_metadata(self, ctx: Ctx) -> Json:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        media = self._own_media(ctx, str(body.get("id", "")))
        metadata = body.get("metadata")
        alt = metadata.get("alt_text") if isinstance(metadata, dict) else None
        text = alt.get("text") if isinstance(alt, dict) else None
        if not isinstance(text, str) or len(text) > 1000:
            raise _x_invalid("metadata", "alt_text.text is required, at most 1000 characters")
        media["alt_text"] = text
        return {"data": {"id": body["id"], "associated_metadata": {"alt_text": {"text": text}}}}

    def _day_window(self, account: Account, now: float) -> list[float]:
        """[posts made, reset time] of the user's 24-hour post cap."""
        days = self._store()["days"]
        window = days.get(account.external_id)
        if window is None or now >= window[1]:
            window = [0, now + DAY]
            days[account.external_id] = window
        return window

    def _day_headers(self, window: list[float]) -> dict[str, str]:
        return {
            "x-user-limit-24hour-limit": str(POSTS_PER_DAY),
            "x-user-limit-24hour-remaining": str(max(0, POSTS_PER_DAY - int(window[0]))),
            "x-user-limit-24hour-reset": str(int(window[1])),
        }

    def create_tweet(self, ctx: Ctx) -> Json:
        self._before_publishing()
        if self.sim.take_fault(self.platform, "token_expires_mid_flow") and ctx.bearer:
            self.sim.expire(ctx.bearer)
        account = self.account(ctx)
        if self.sim.take_fault(self.platform, "rate_limited"):
            raise self.throttled(60.0)
        window = self._day_window(account, ctx.now)
        if self.sim.take_fault(self.platform, "quota_spent"):
            window[0] = POSTS_PER_DAY
        ctx.out.update(self._day_headers(window))
        if window[0] >= POSTS_PER_DAY:
            reply = self.throttled(None)
            reply.headers.update(ctx.out)
            raise reply
        body = ctx.body if isinstance(ctx.body, dict) else {}
        text = body.get("text")
        media = body.get("media")
        media_ids = media.get("media_ids") if isinstance(media, dict) else []
        if not isinstance(media_ids, list) or len(media_ids) > 4:
            raise _x_invalid("media.media_ids", "At most 4 media ids")
        if not (isinstance(text, str) and text) and not media_ids:
            raise _x_invalid("text", "text or media is required")
        answering = self._answered(account, body.get("reply"))
        for media_id in media_ids:
            state = self._own_media(ctx, str(media_id))["state"]
            if state != "succeeded":
                raise _x_invalid("media.media_ids", f"Media {media_id} is not ready ({state})")
        tweet_id = str(10**18 + secrets.randbelow(9 * 10**18))
        window[0] += 1
        ctx.out.update(self._day_headers(window))
        if answering is not None:
            return self._sent_reply(ctx, account, answering, text or "")
        self.sim.record_post(
            self.platform,
            account.external_id,
            tweet_id,
            text or "",
            media=tuple(str(m) for m in media_ids),
            permalink=f"https://x.com/{account.handle}/status/{tweet_id}",
            marker=str(media_ids[0]) if media_ids else None,
        )
        if self.sim.take_fault(self.platform, "timeout_after_create"):
            ctx.hang = True
        raise Reply(
            201,
            {"data": {"id": tweet_id, "text": text or "", "edit_history_tweet_ids": [tweet_id]}},
        )

    def tweet(self, ctx: Ctx, tweet_id: str) -> Json:
        self.account(ctx)
        post = next(
            (
                p
                for p in self.sim.created_posts
                if p.platform == self.platform and p.post_id == tweet_id
            ),
            None,
        )
        if post is None:
            return {
                "errors": [
                    {
                        "value": tweet_id,
                        "detail": f"Could not find tweet with id: [{tweet_id}].",
                        "title": "Not Found Error",
                        "resource_type": "tweet",
                        "parameter": "id",
                        "resource_id": tweet_id,
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }
                ]
            }
        data = self._created_tweet(post, ctx.query.get("tweet.fields", ""))
        body: dict[str, Json] = {
            "data": drop_fields(data, self.sim._deprecated_names(self.platform))
        }
        if "attachments.media_keys" in ctx.query.get("expansions", "") and post.media:
            included = []
            for media_id in post.media:
                media = self._store()["media"].get(media_id, {})
                entry: dict[str, Json] = {
                    "media_key": self._media_key(media_id),
                    "type": {"tweet_video": "video", "tweet_gif": "animated_gif"}.get(
                        media.get("category", ""), "photo"
                    ),
                }
                if entry["type"] == "video" and "public_metrics" in ctx.query.get(
                    "media.fields", ""
                ):
                    entry["public_metrics"] = {"view_count": video_views(tweet_id)}
                included.append(entry)
            body["includes"] = {"media": included}
        return body

    # --- mentions and replies (the community inbox)

    def reset(self) -> None:
        self.community = Community(self.platform)

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
    ) -> str:
        """A post naming the account (kind mention), or a reply (kind comment or reply) to
        `parent`, a reply under one of the account's posts, or else to `thread`, a post of
        the account (default its newest). X pushes nothing here (the Account Activity API is
        not simulated): `push` is ignored."""
        with self.sim._lock:
            owner = self.sim.account(self.platform, account)
            above = self.community.get(parent) if parent is not None else None
            if parent is not None and above is None:
                raise KeyError(f"no post {parent!r} under {account}'s posts")
            if kind not in {"mention", "comment", "reply"}:
                raise ValueError("X has mentions and replies only")
            if kind == "mention" and above is not None:
                raise ValueError("a mention answers nothing")
            return add_item(
                self,
                owner,
                "reply" if above is not None else kind,
                text,
                author_id=author_id,
                author_name=author_name,
                parent=above,
                thread=thread,
                created_at=created_at,
            ).id

    def community_id(self, account: Account, kind: str) -> str:
        return _snowflake(time.time())

    def community_thread(self, account: Account, item: CommunityItem) -> str | None:
        if item.kind == "mention":
            return item.id  # a conversation of its own
        newest = next(iter(self._listing(account, datetime.now(UTC), None)))
        return newest.post_id if isinstance(newest, CreatedPost) else newest.id

    def webhook_body(self, items: Sequence[CommunityItem]) -> bytes | None:
        return None  # polled

    def webhook_headers(self, body: bytes, secret: str) -> dict[str, str]:
        return {}

    def _answers(self, item: CommunityItem) -> str | None:
        """The post a community post replies to: its parent, else (a comment or reply
        without one) the account's post its conversation started with."""
        if item.parent is not None:
            return item.parent
        return item.thread if item.kind in {"comment", "reply"} else None

    def replies_of(self, account: str) -> list[CommunityItem]:
        with self.sim._lock:
            return self.community.replies_of(account)

    def _sent_replies(self, account: Account) -> list[CreatedPost]:
        return [
            CreatedPost(
                self.platform,
                account.external_id,
                i.id,
                i.text,
                (),
                i.created_at,
                f"https://x.com/{account.handle}/status/{i.id}",
            )
            for i in self.community.replies_of(account.external_id)
            if not i.deleted
        ]

    def _reply_fields(self, item: CommunityItem, fields: str) -> dict[str, Json]:
        out: dict[str, Json] = {}
        answered = self._answers(item)
        if "conversation_id" in fields:
            out["conversation_id"] = item.thread
        if "referenced_tweets" in fields and answered is not None:
            out["referenced_tweets"] = [{"type": "replied_to", "id": answered}]
        if "in_reply_to_user_id" in fields and answered is not None:
            above = self.community.get(answered)
            out["in_reply_to_user_id"] = above.author_id if above is not None else item.account
        return out

    def _answered(self, account: Account, reply: Json) -> CommunityItem | None:
        """The post a create call answers (None: not a reply); X's 400 when it is gone."""
        if reply is None:
            return None
        target = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        item = self.community.get(str(target)) if target is not None else None
        if item is None or item.deleted or item.account != account.external_id:
            raise _x_invalid(
                "reply.in_reply_to_tweet_id",
                "You attempted to reply to a Tweet that is deleted or not visible to you.",
            )
        return item

    def _sent_reply(self, ctx: Ctx, account: Account, answering: CommunityItem, text: str) -> Json:
        fault = self.sim.take_fault(self.platform, *REPLY_FAULTS)
        item = self.community.new(
            account.external_id,
            _snowflake(ctx.now),
            "reply",
            text,
            author_id=account.external_id,
            author_name=account.name,
            thread=answering.thread,
            parent=answering.id,
            target=answering.id,
            at=ctx.now,
        )
        if fault == "reply_500_after_create":
            raise self.server_error(500)
        if fault == "reply_timeout":
            ctx.hang = True
        raise Reply(
            201, {"data": {"id": item.id, "text": text, "edit_history_tweet_ids": [item.id]}}
        )

    def mentions(self, ctx: Ctx, user_id: str) -> Json:
        account = self.account(ctx)
        if user_id != account.external_id:
            raise Reply(
                403,
                {
                    "title": "Forbidden",
                    "detail": "You are not permitted to read this user's mentions.",
                    "type": "about:blank",
                    "status": 403,
                },
            )
        try:
            start = rfc3339(ctx.query["start_time"]) if "start_time" in ctx.query else None
            end = rfc3339(ctx.query["end_time"]) if "end_time" in ctx.query else None
        except ValueError:
            raise _x_invalid("start_time", "Invalid 'start_time' or 'end_time'.") from None
        limit = int(ctx.query.get("max_results", "10"))
        if not 5 <= limit <= 100:
            raise _x_invalid(
                "max_results",
                f"The `max_results` query parameter value [{limit}] is not between 5 and 100",
            )
        since_id = int(ctx.query["since_id"]) if ctx.query.get("since_id", "").isdigit() else 0
        found = [
            i
            for i in reversed(self.community.of(account.external_id))
            if not i.from_account
            and int(i.id) > since_id
            and (start is None or i.created_at >= start.timestamp())
            and (end is None or i.created_at < end.timestamp())
        ]
        offset = decode_cursor(ctx.query.get("pagination_token"))
        page = found[offset : offset + limit]
        fields = ctx.query.get("tweet.fields", "")
        data = []
        for item in page:
            tweet: dict[str, Json] = {
                "id": item.id,
                "text": item.text,
                "edit_history_tweet_ids": [item.id],
            }
            if "created_at" in fields:
                tweet["created_at"] = _iso(item.created_at)
            if "author_id" in fields:
                tweet["author_id"] = item.author_id
            tweet |= self._reply_fields(item, fields)
            data.append(tweet)
        meta: dict[str, Json] = {"result_count": len(data)}
        body: dict[str, Json] = {"meta": meta}
        if data:
            meta["newest_id"], meta["oldest_id"] = data[0]["id"], data[-1]["id"]
            body["data"] = data
            if "author_id" in ctx.query.get("expansions", ""):
                users = {i.author_id: i for i in page}
                body["includes"] = {
                    "users": [
                        {
                            "id": author,
                            "name": i.author_name or f"User {author[-4:]}",
                            "username": f"user_{author[-6:]}",
                        }
                        for author, i in users.items()
                    ]
                }
        if offset + limit < len(found):
            meta["next_token"] = encode_cursor(offset + limit)
        return body

    def hide_reply(self, ctx: Ctx, tweet_id: str) -> Json:
        account = self.account(ctx)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        hidden = body.get("hidden")
        if not isinstance(hidden, bool):
            raise _x_invalid("hidden", "hidden must be true or false")
        item = self.community.get(tweet_id)
        if item is None or item.deleted or item.account != account.external_id:
            raise self.not_found(ctx)
        root = self.community.get(item.thread or "")
        owned = self._answers(item) is not None and (
            root is None or root.author_id == account.external_id
        )
        if not owned or item.from_account:
            raise Reply(
                403,
                {
                    "title": "Forbidden",
                    "detail": "You cannot hide or unhide a Tweet that is not a reply to a "
                    "conversation you started.",
                    "type": "about:blank",
                    "status": 403,
                },
            )
        item.hidden = hidden
        return {"data": {"hidden": hidden}}


def _snowflake(when: float) -> str:
    """An id that grows with time, as X's do (since_id compares them)."""
    return str((int(when * 1000) - 1288834974657) << 22 | secrets.randbelow(1 << 22))


def _x_invalid(parameter: str, message: str) -> Reply:
    return Reply(
        400,
        {
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _multipart(ctx: Ctx) -> tuple[int | None, bytes | None]:
    """segment_index and the media part of a multipart/form-data APPEND."""
    kind = ctx.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return None, None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {kind}\r\n\r\n".encode() + ctx.raw
    )
    segment: int | None = None
    chunk: bytes | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name == "segment_index" and isinstance(payload, bytes) and payload.strip().isdigit():
            segment = int(payload.strip())
        elif name == "media" and isinstance(payload, bytes):
            chunk = payload
    return segment, chunk
