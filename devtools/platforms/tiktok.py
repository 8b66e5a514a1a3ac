"""TikTok: ``/v2/user/info/`` and ``/v2/video/list/``, with its ``{"error": {...}}`` envelope,
and the Content Posting API's direct post of a video.

Direct post: ``POST /v2/post/publish/creator_info/query/`` (the privacy levels the creator may
use, or ``spam_risk_too_many_posts`` once the day's posts are used up), ``POST
/v2/post/publish/video/init/`` (6 a minute per user token, else 429 ``rate_limit_exceeded``)
answering a ``publish_id`` and an ``upload_url`` on the upload host, ``PUT`` of the chunks there
(``Content-Range``, in order, TikTok's chunk rules), then ``POST /v2/post/publish/status/fetch/``:
``PROCESSING_UPLOAD`` until the bytes are in and once more while "processing", then
``PUBLISH_COMPLETE`` with ``publicaly_available_post_id`` (TikTok's spelling) or ``FAILED`` with
a ``fail_reason``. The simulator keeps sizes and a running SHA-256, never the bytes.
``POST /v2/video/query/`` gives the figures of the videos posted here.

Inbox, through the API for Business (``/open_api/v1.3/business/comment/list|reply/create|
hide|delete/``, ``Access-Token`` header, a 200 with a non-zero ``code`` on errors): the
comments of the account's videos from the dialect's `community`; hiding others' comments,
deleting the account's own.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
import secrets
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from devtools.platforms.community import REPLY_FAULTS, Community, CommunityItem, add_item
from devtools.platforms.core import (
    AccessToken,
    Ctx,
    Dialect,
    Json,
    Reply,
    drop_fields,
)
from devtools.platforms.figures import (
    Account,
    Post,
    b64id,
    today_utc,
    unit_of,
)

MIB = 1024 * 1024
MIN_CHUNK = 5 * MIB
MAX_CHUNK = 64 * MIB
MAX_LAST_CHUNK = 128 * MIB
MAX_CHUNKS = 1000
INITS_PER_MINUTE = 6
DAILY_POSTS = 15
"""Posts a creator may make through the API in 24 hours."""
TITLE_MAX = 2200
UPLOAD_HOST = "https://open-upload.tiktokapis.com"
UPLOAD_TTL = 3600.0
PUBLIC_OPTIONS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY")
BUSINESS = "/open_api/v1.3/business"
"""TikTok API for Business: the comments of a Business account's videos."""
COMMENT_PAGE = 30
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")


def video_figures(post_id: str) -> dict[str, int]:
    """The lifetime counts of a video posted through the simulator (the same in every run)."""
    views = 200 + int(50_000 * unit_of("tiktok", post_id, "views"))
    likes = round(views * (0.02 + 0.08 * unit_of("tiktok", post_id, "likes")))
    comments = round(likes * (0.02 + 0.1 * unit_of("tiktok", post_id, "comments")))
    shares = round(likes * (0.01 + 0.1 * unit_of("tiktok", post_id, "shares")))
    return {
        "view_count": views,
        "like_count": likes,
        "comment_count": comments,
        "share_count": shares,
    }


@dataclass
class Publish:
    id: str
    account: str
    upload_id: str
    upload_token: str
    title: str
    privacy: str
    size: int
    chunk_size: int
    chunks: int
    created_at: float
    received: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    failed: str | None = None
    """fail_reason once processing failed."""
    post_id: str | None = None
    fetched_done: int = 0
    """Status fetches since the upload finished (the first still says processing)."""


@dataclass
class Video:
    id: str
    account: str
    caption: str
    created_at: float
    share_url: str


class TikTokDialect(Dialect):
    authorize_path = r"/v2/auth/authorize/"
    token_path = r"/v2/oauth/token/"
    routes_spec = (
        ("POST", r"/v2/oauth/revoke/", "revoke"),
        ("GET|POST", r"/v2/user/info/", "user_info"),
        ("POST", r"/v2/video/list/", "video_list"),
        ("POST", r"/v2/video/query/", "video_query"),
        ("POST", r"/v2/post/publish/creator_info/query/", "creator_info"),
        ("POST", r"/v2/post/publish/video/init/", "video_init"),
        ("POST", r"/v2/post/publish/status/fetch/", "status_fetch"),
        ("PUT", r"/video/", "upload_chunk"),
        ("GET", BUSINESS + r"/comment/list/", "comment_list"),
        ("POST", BUSINESS + r"/comment/reply/create/", "comment_reply"),
        ("POST", BUSINESS + r"/comment/hide/", "comment_hide"),
        ("POST", BUSINESS + r"/comment/delete/", "comment_delete"),
    )

    def reset(self) -> None:
        self.publishes: dict[str, Publish] = {}
        self.videos: dict[str, Video] = {}
        self._uploads: dict[str, Publish] = {}
        self._inits: dict[str, deque[float]] = {}
        self.privacy_options: dict[str, tuple[str, ...]] = {}
        """Per account (external id): the privacy levels creator_info offers (a private
        account, an unaudited app: fewer)."""
        self.max_duration = 600
        self.community = Community(self.platform)

    def _error(self, status: int, code: str, message: str) -> Reply:
        return Reply(
            status, {"error": {"code": code, "message": message, "log_id": secrets.token_hex(16)}}
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return self._error(404, "invalid_params", "Path not found")

    def unauthorized(self, why: str) -> Reply:
        return self._error(
            401, "access_token_invalid", "The access token is invalid or not found in the request."
        )

    def throttled(self, retry_after: float | None) -> Reply:
        reply = self._error(
            429, "rate_limit_exceeded", "The API rate limit was exceeded. Please try again later."
        )
        if retry_after is not None:
            reply.headers["Retry-After"] = str(round(retry_after))
        return reply

    def server_error(self, status: int) -> Reply:
        return self._error(status, "internal_error", "Something went wrong. Please try again.")

    def token_error(self, error: str, description: str, status: int = 400) -> Reply:
        return Reply(
            status,
            {"error": error, "error_description": description, "log_id": secrets.token_hex(16)},
        )

    def token_body(
        self, access: AccessToken, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        body = super().token_body(access, refresh, grant, refresh_ttl)
        body["token_type"] = "Bearer"
        body["open_id"] = access.external_id
        body["refresh_expires_in"] = refresh_ttl
        return body

    def usage_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"x-tt-logid": secrets.token_hex(16).upper()}

    def _ok(self, data: Json) -> Json:
        return {
            "data": data,
            "error": {"code": "ok", "message": "", "log_id": secrets.token_hex(16)},
        }

    def revoke(self, ctx: Ctx) -> Json:
        self.sim._revoke_value(ctx.params.get("token", ""))
        return self._ok({})

    def user_info(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        fields = [f for f in ctx.query.get("fields", "").split(",") if f]
        if not fields:
            raise self._error(400, "invalid_params", "The fields parameter is required.")
        today = today_utc()
        available = {
            "open_id": account.external_id,
            "union_id": b64id(36, account.external_id, "union"),
            "avatar_url": f"https://p16-sign.tiktokcdn.com/{account.handle}.jpeg",
            "display_name": account.name,
            "username": account.handle,
            "bio_description": f"{account.name} on TikTok",
            "is_verified": False,
            "follower_count": account.total(today),
            "following_count": 50 + int(300 * account._key("following")),
            "likes_count": 1000 + int(1e5 * account._key("likes")),
            "video_count": 30 + int(200 * account._key("videos")),
        }
        user = {f: available[f] for f in fields if f in available}
        return self._ok({"user": drop_fields(user, self.sim._deprecated_names(self.platform))})

    def video_list(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        fields = [f for f in ctx.query.get("fields", "").split(",") if f]
        if not fields:
            raise self._error(400, "invalid_params", "The fields parameter is required.")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        limit = int(body.get("max_count", 10))
        if not 1 <= limit <= 20:
            raise self._error(400, "invalid_params", "max_count must be between 1 and 20.")
        cursor = body.get("cursor")
        newest = datetime.fromtimestamp(int(cursor) / 1000, UTC) if cursor else datetime.now(UTC)
        window = list(itertools.islice(self._listing(account, newest), limit + 1))
        entries, more = window[:limit], len(window) > limit
        videos = []
        for entry in entries:
            if isinstance(entry, Video):
                available = self._video_fields(account, entry)
            else:
                post = entry
                available = {
                    "id": post.id,
                    "create_time": int(post.created_at.timestamp()),
                    "title": f"Video {post.id[-4:]}",
                    "video_description": f"Video {post.id[-4:]}",
                    "duration": 15 + int(post.id[-2:]) % 45,
                    "cover_image_url": f"https://p16-sign.tiktokcdn.com/{post.id}.jpeg",
                    "share_url": f"https://www.tiktok.com/@{account.handle}/video/{post.id}",
                    "view_count": post.views,
                    "like_count": post.likes,
                    "comment_count": post.comments,
                    "share_count": post.shares,
                }
            videos.append({f: available[f] for f in fields if f in available})
        next_cursor = int(_created(entries[-1]) * 1000) if entries else 0
        data = {"videos": videos, "cursor": next_cursor, "has_more": more}
        return self._ok(drop_fields(data, self.sim._deprecated_names(self.platform)))

    def _listing(self, account: Account, newest: datetime) -> Iterator[Post | Video]:
        """The account's videos created before `newest`, newest first: the seeded history and
        the videos posted here."""
        made = sorted(
            (
                v
                for v in self.videos.values()
                if v.account == account.external_id and v.created_at < newest.timestamp()
            ),
            key=lambda v: v.created_at,
            reverse=True,
        )
        seeded: Iterator[Post | Video] = account.posts_desc(newest)
        return heapq.merge(made, seeded, key=_created, reverse=True)

    def _video_fields(self, account: Account, video: Video) -> dict[str, Json]:
        return {
            "id": video.id,
            "create_time": int(video.created_at),
            "title": video.caption[:150],
            "video_description": video.caption,
            "duration": 15,
            "cover_image_url": f"https://p16-sign.tiktokcdn.com/{video.id}.jpeg",
            "share_url": video.share_url,
            **video_figures(video.id),
        }

    def video_query(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        fields = [f for f in ctx.query.get("fields", "").split(",") if f]
        if not fields:
            raise self._error(400, "invalid_params", "The fields parameter is required.")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        filters = body.get("filters") if isinstance(body.get("filters"), dict) else {}
        ids = filters.get("video_ids") if isinstance(filters, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= 20:
            raise self._error(400, "invalid_params", "filters.video_ids takes 1 to 20 ids.")
        videos = []
        for video_id in ids:
            video = self.videos.get(str(video_id))
            if video is not None and video.account == account.external_id:
                available = self._video_fields(account, video)
                videos.append({f: available[f] for f in fields if f in available})
        data = {"videos": videos, "cursor": 0, "has_more": False}
        return self._ok(drop_fields(data, self.sim._deprecated_names(self.platform)))

    # --- the Content Posting API, direct post

    def _posts_today(self, account: str, now: float) -> int:
        return sum(
            1 for p in self.sim.posts_of(self.platform, account) if p.created_at > now - 86_400
        )

    def _cap_reached(self) -> Reply:
        return self._error(
            403,
            "spam_risk_too_many_posts",
            "The daily post cap from the API is reached for the current user.",
        )

    def creator_info(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        fault = self.sim.take_fault(
            self.platform, "error_before_create", "quota_spent", "token_expires_mid_flow"
        )
        if fault == "error_before_create":
            raise self.server_error(500)
        if fault == "quota_spent" or self._posts_today(account.external_id, ctx.now) >= DAILY_POSTS:
            raise self._cap_reached()
        data = {
            "creator_avatar_url": f"https://p16-sign.tiktokcdn.com/{account.handle}.jpeg",
            "creator_username": account.handle,
            "creator_nickname": account.name,
            "privacy_level_options": list(
                self.privacy_options.get(account.external_id, PUBLIC_OPTIONS)
            ),
            "comment_disabled": False,
            "duet_disabled": False,
            "stitch_disabled": False,
            "max_video_post_duration_sec": self.max_duration,
        }
        if fault == "token_expires_mid_flow" and ctx.bearer in self.sim._tokens:
            self.sim.expire(ctx.bearer)
        return self._ok(data)

    def video_init(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        calls = self._inits.setdefault(ctx.bearer or "", deque())
        while calls and calls[0] <= ctx.now - 60:
            calls.popleft()
        if len(calls) >= INITS_PER_MINUTE:
            raise self.throttled(max(1.0, calls[0] + 60 - ctx.now))
        calls.append(ctx.now)
        if self.sim.take_fault(self.platform, "rate_limited"):
            raise self.throttled(30.0)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        post_info = body.get("post_info")
        source = body.get("source_info")
        if not isinstance(post_info, dict) or not isinstance(source, dict):
            raise self._error(400, "invalid_params", "post_info and source_info are required.")
        title = post_info.get("title", "")
        if not isinstance(title, str) or len(title.encode("utf-16-le")) // 2 > TITLE_MAX:
            raise self._error(400, "invalid_params", "The title is longer than 2200 characters.")
        options = self.privacy_options.get(account.external_id, PUBLIC_OPTIONS)
        privacy = post_info.get("privacy_level")
        if privacy not in options:
            raise self._error(
                403,
                "privacy_level_option_mismatch",
                "privacy_level is not one of the creator's privacy_level_options.",
            )
        if source.get("source") != "FILE_UPLOAD":
            raise self._error(400, "invalid_params", "Only FILE_UPLOAD is simulated.")
        size, chunk, count = (
            source.get("video_size"),
            source.get("chunk_size"),
            source.get("total_chunk_count"),
        )
        if not _chunks_ok(size, chunk, count):
            raise self._error(
                400, "invalid_params", "video_size, chunk_size and total_chunk_count disagree."
            )
        assert isinstance(size, int) and isinstance(chunk, int) and isinstance(count, int)
        if self._posts_today(account.external_id, ctx.now) >= DAILY_POSTS:
            raise self._cap_reached()
        publish = Publish(
            id=f"v_pub_file~v2-1.{7 * 10**18 + secrets.randbelow(10**18)}",
            account=account.external_id,
            upload_id=str(7 * 10**18 + secrets.randbelow(10**18)),
            upload_token=secrets.token_urlsafe(24),
            title=title,
            privacy=str(privacy),
            size=size,
            chunk_size=chunk,
            chunks=count,
            created_at=ctx.now,
        )
        self.publishes[publish.id] = publish
        self._uploads[publish.upload_id] = publish
        upload_url = (
            f"{UPLOAD_HOST}/video/?upload_id={publish.upload_id}"
            f"&upload_token={publish.upload_token}"
        )
        return self._ok({"publish_id": publish.id, "upload_url": upload_url})

    def upload_chunk(self, ctx: Ctx) -> Response:
        publish = self._uploads.get(ctx.query.get("upload_id", ""))
        if (
            publish is None
            or not secrets.compare_digest(ctx.query.get("upload_token", ""), publish.upload_token)
            or ctx.now > publish.created_at + UPLOAD_TTL
        ):
            raise self._error(404, "invalid_params", "The upload URL is invalid or has expired.")
        found = _RANGE.match(ctx.headers.get("content-range", ""))
        if found is None:
            raise self._error(400, "invalid_params", "Content-Range is required.")
        start, end, total = (int(g) for g in found.groups())
        index = start // publish.chunk_size
        last = index == publish.chunks - 1
        expected = publish.size - start if last else publish.chunk_size
        if (
            total != publish.size
            or start != publish.received
            or start % publish.chunk_size
            or end - start + 1 != expected
            or len(ctx.raw) != expected
        ):
            raise self._error(400, "invalid_file_upload", "The chunk does not fit the upload.")
        if not ctx.headers.get("content-type", "").startswith("video/"):
            raise self._error(400, "invalid_file_upload", "Unsupported media type.")
        publish.received = end + 1
        publish.digest.update(ctx.raw)
        if not last:
            return Response(status_code=206)
        fault = self.sim.take_fault(self.platform, "timeout_after_create", "container_error")
        if fault == "container_error":
            publish.failed = "file_format_check_failed"
            return Response(status_code=201)
        account = self.sim.account(self.platform, publish.account)
        post_id = str(7 * 10**18 + secrets.randbelow(10**18))
        share_url = f"https://www.tiktok.com/@{account.handle}/video/{post_id}"
        publish.post_id = post_id
        self.videos[post_id] = Video(post_id, publish.account, publish.title, ctx.now, share_url)
        self.sim.record_post(
            self.platform,
            publish.account,
            post_id,
            publish.title,
            media=(f"video:{publish.digest.hexdigest()[:16]}",),
            permalink=share_url,
            marker=publish.id,
        )
        if fault == "timeout_after_create":
            publish.fetched_done = 1  # by the time anyone asks again, it is done
            ctx.hang = True
        return Response(status_code=201)

    def status_fetch(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        publish = self.publishes.get(str(body.get("publish_id", "")))
        if publish is None or publish.account != account.external_id:
            raise self._error(400, "invalid_params", "The publish_id is invalid.")
        data: dict[str, Json] = {"uploaded_bytes": publish.received}
        if publish.failed:
            data |= {"status": "FAILED", "fail_reason": publish.failed}
        elif publish.post_id is None or publish.fetched_done == 0:
            if publish.post_id is not None:
                publish.fetched_done += 1
            data["status"] = "PROCESSING_UPLOAD"
        else:
            data["status"] = "PUBLISH_COMPLETE"
            data["publicaly_available_post_id"] = (
                [] if publish.privacy == "SELF_ONLY" else [int(publish.post_id)]
            )
        return self._ok(data)

    # --- comments, through the API for Business (the community inbox)

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
        """A viewer's comment on one of the account's videos (`thread`: its id, default the
        newest) or reply to a comment (`parent`). TikTok pushes no comments: `push` is
        ignored."""
        with self.sim._lock:
            owner = self.sim.account(self.platform, account)
            top = self.community.get(parent) if parent is not None else None
            if parent is not None and (top is None or top.parent is not None):
                raise KeyError(f"no top-level comment {parent!r} on {account}")
            if top is None and kind != "comment":
                raise ValueError("TikTok has comments and replies only")
            return add_item(
                self,
                owner,
                "reply" if top is not None else "comment",
                text,
                author_id=author_id,
                author_name=author_name,
                parent=top,
                thread=thread,
                created_at=created_at,
            ).id

    def community_id(self, account: Account, kind: str) -> str:
        return str(7 * 10**18 + secrets.randbelow(10**18))

    def community_thread(self, account: Account, item: CommunityItem) -> str | None:
        return next(iter(self._listing(account, datetime.now(UTC)))).id

    def webhook_body(self, items: Sequence[CommunityItem]) -> bytes | None:
        return None  # polled

    def webhook_headers(self, body: bytes, secret: str) -> dict[str, str]:
        return {}

    def replies_of(self, account: str) -> list[CommunityItem]:
        with self.sim._lock:
            return self.community.replies_of(account)

    def _biz_error(self, code: int, message: str) -> Reply:
        # The API for Business answers 200 with its own code.
        return Reply(
            200,
            {"code": code, "message": message, "request_id": secrets.token_hex(10), "data": {}},
        )

    def _biz_ok(self, data: Json) -> Json:
        return {"code": 0, "message": "OK", "request_id": secrets.token_hex(10), "data": data}

    def _biz_account(self, ctx: Ctx, business_id: Json) -> Account:
        try:
            account = self.sim._account_for(self.platform, ctx.headers.get("access-token"), self)
        except Reply:
            raise self._biz_error(40105, "The access token is invalid or expired.") from None
        if business_id != account.external_id:
            raise self._biz_error(40001, "No permission to operate this business account.")
        return account

    def _biz_comment(self, item: CommunityItem, account: Account) -> Json:
        username = f"user{item.author_id[-6:]}" if not item.from_account else account.handle
        comment: dict[str, Json] = {
            "comment_id": item.id,
            "video_id": item.thread,
            "user_id": item.author_id,
            "create_time": str(int(item.created_at)),
            "text": item.text,
            "likes": int(50 * unit_of("tiktok", item.id, "likes")),
            "replies": len(self.community.children(item.id)),
            "owner": item.from_account,
            "liked": False,
            "pinned": False,
            "status": "HIDDEN" if item.hidden else "PUBLIC",
            "username": username,
            "display_name": item.author_name or username,
            "profile_image": f"https://p16-sign.tiktokcdn.com/{b64id(12, item.author_id)}.jpeg",
        }
        if item.parent is not None:
            comment["parent_comment_id"] = item.parent
        return comment

    def _biz_item(self, account: Account, comment_id: Json) -> CommunityItem:
        item = self.community.get(str(comment_id)) if comment_id is not None else None
        if item is None or item.deleted or item.account != account.external_id:
            raise self._biz_error(40002, "The comment does not exist.")
        return item

    def comment_list(self, ctx: Ctx) -> Json:
        account = self._biz_account(ctx, ctx.query.get("business_id"))
        video = ctx.query.get("video_id")
        if not video:
            raise self._biz_error(40002, "video_id is required.")
        try:
            limit = int(ctx.query.get("max_count", "20"))
            offset = int(ctx.query.get("cursor", "0"))
        except ValueError:
            raise self._biz_error(40002, "max_count and cursor are numbers.") from None
        if not 1 <= limit <= COMMENT_PAGE:
            raise self._biz_error(40002, f"max_count must be between 1 and {COMMENT_PAGE}.")
        status = ctx.query.get("status", "ALL")
        replies = ctx.query.get("include_replies", "false") == "true"
        found = [
            i
            for i in reversed(self.community.of(account.external_id))  # newest first
            if i.thread == video
            and (replies or i.parent is None)
            and (status == "ALL" or (status == "HIDDEN") == i.hidden)
        ]
        page = found[offset : offset + limit]
        return self._biz_ok(
            {
                "comments": [self._biz_comment(i, account) for i in page],
                "cursor": offset + len(page),
                "has_more": offset + limit < len(found),
            }
        )

    def comment_reply(self, ctx: Ctx) -> Json:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        account = self._biz_account(ctx, body.get("business_id"))
        parent = self._biz_item(account, body.get("comment_id"))
        text = body.get("text")
        if body.get("video_id") != parent.thread:
            raise self._biz_error(40002, "The comment is not on this video.")
        if parent.parent is not None:
            raise self._biz_error(40002, "Replies answer a top-level comment only.")
        if not isinstance(text, str) or not text.strip() or len(text) > 150:
            raise self._biz_error(40002, "text is required, at most 150 characters.")
        if self.sim.take_fault(self.platform, "error_before_create"):
            raise self.server_error(503)
        fault = self.sim.take_fault(self.platform, *REPLY_FAULTS)
        item = self.community.new(
            account.external_id,
            self.community_id(account, "reply"),
            "reply",
            text,
            author_id=account.external_id,
            author_name=account.name,
            thread=parent.thread,
            parent=parent.id,
            target=parent.id,
            at=ctx.now,
        )
        if fault == "reply_500_after_create":
            raise self.server_error(500)
        if fault == "reply_timeout":
            ctx.hang = True
        return self._biz_ok(self._biz_comment(item, account))

    def comment_hide(self, ctx: Ctx) -> Json:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        account = self._biz_account(ctx, body.get("business_id"))
        item = self._biz_item(account, body.get("comment_id"))
        action = body.get("action")
        if action not in {"HIDE", "UNHIDE"} or body.get("video_id") != item.thread:
            raise self._biz_error(40002, "action (HIDE or UNHIDE) and video_id are required.")
        if item.from_account:
            raise self._biz_error(40002, "The account's own comments cannot be hidden.")
        item.hidden = action == "HIDE"
        return self._biz_ok({})

    def comment_delete(self, ctx: Ctx) -> Json:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        account = self._biz_account(ctx, body.get("business_id"))
        item = self._biz_item(account, body.get("comment_id"))
        if not item.from_account:
            raise self._biz_error(40001, "Only the account's own comments can be deleted.")
        item.deleted = True
        return self._biz_ok({})


def _created(entry: Post | Video) -> float:
    return entry.created_at if isinstance(entry, Video) else entry.created_at.timestamp()


def _chunks_ok(size: Json, chunk: Json, count: Json) -> bool:
    """TikTok's chunk rules: under 5 MB in one piece; else chunks of 5 to 64 MB, their count
    the size divided by the chunk size rounded down, the last one taking the rest (at most
    128 MB)."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (size, chunk, count)):
        return False
    assert isinstance(size, int) and isinstance(chunk, int) and isinstance(count, int)
    if size <= 0 or chunk <= 0:
        return False
    if size < MIN_CHUNK:
        return chunk == size and count == 1
    if chunk == size and size <= MAX_CHUNK:
        return count == 1
    return (
        MIN_CHUNK <= chunk <= MAX_CHUNK
        and count == size // chunk
        and 1 <= count <= MAX_CHUNKS
        and size - (count - 1) * chunk <= MAX_LAST_CHUNK
    )
