"""YouTube: the Data API (counted in quota units, ``quotaExceeded`` once spent), Analytics
reports, and ``videos.insert`` as a resumable upload.

Uploads: ``POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status`` with the
video's metadata and ``X-Upload-Content-Length``/``-Type`` opens a session (1,600 quota units)
whose URI comes back in ``Location``; ``PUT`` to it with ``Content-Range: bytes a-b/N`` sends
the bytes (308 Resume Incomplete with ``Range: bytes=0-k`` until the last one, which answers
the video resource), and ``PUT`` with ``Content-Range: bytes */N`` and no body asks how far it
got. A session makes at most one video: once complete, every ``PUT`` answers that video again.
The simulator keeps each session's byte count and a running SHA-256, never the bytes.

The Data API's daily quota (``daily_quota``, 10,000 units, reset at midnight Pacific time like
Google's) is enforced on every counted call; ``sim.set_remaining("youtube", n)`` still forces
a remaining count instead.

Comments (the inbox): ``commentThreads`` (``allThreadsRelatedToChannelId``, newest thread
first, at most 5 replies each), ``comments`` (``parentId``), ``comments.insert``,
``comments/setModerationStatus`` and ``DELETE comments`` (only a comment's author), charged
1, 1, 50, 50 and 50 units, from the dialect's `community` (see ``community``).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.responses import Response

from devtools.platforms.community import REPLY_FAULTS, Community, CommunityItem, add_item
from devtools.platforms.core import (
    AccessToken,
    Ctx,
    Dialect,
    Json,
    Reply,
    decode_cursor,
    drop_fields,
    encode_cursor,
)
from devtools.platforms.figures import (
    Account,
    Post,
    b64id,
    today_utc,
    unit_of,
)

YOUTUBE_UNITS = {"channels": 1, "playlistItems": 1, "videos": 1}
INSERT_UNITS = 1600
"""videos.insert, charged when the upload session is opened."""
COMMENT_UNITS = {
    "comment_threads": 1,
    "comments_list": 1,
    "comment_insert": 50,
    "comment_moderate": 50,
    "comment_delete": 50,
}
"""What the comment calls cost in quota units (Google's published costs)."""
THREAD_REPLIES = 5
"""A commentThread carries at most this many of its replies; comments.list has them all."""
DAILY_QUOTA = 10_000
PACIFIC = ZoneInfo("America/Los_Angeles")
UPLOAD_HOST = "https://www.googleapis.com"
UPLOAD_PATH = "/upload/youtube/v3/videos"
CHUNK_GRANULE = 256 * 1024
"""Every chunk but the last is a multiple of 256 KiB."""
SESSION_TTL = 7 * 86_400.0
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")
_QUERY = re.compile(r"bytes \*/(\d+)$")


def video_statistics(video_id: str) -> dict[str, int]:
    """The statistics of a video uploaded through the simulator (the same in every run)."""
    views = 50 + int(20_000 * unit_of("youtube", video_id, "views"))
    likes = round(views * (0.01 + 0.05 * unit_of("youtube", video_id, "likes")))
    comments = round(likes * (0.05 + 0.2 * unit_of("youtube", video_id, "comments")))
    return {"viewCount": views, "likeCount": likes, "favoriteCount": 0, "commentCount": comments}


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Video:
    id: str
    channel: str
    title: str
    description: str
    privacy: str
    created_at: float
    upload_status: str = "uploaded"
    failure: str | None = None


@dataclass
class UploadSession:
    id: str
    channel: str
    size: int
    content_type: str
    title: str
    description: str
    privacy: str
    opened_at: float
    received: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    video: Video | None = None
    puts: int = 0
    """Chunks and status queries it answered (tests read how a resume went)."""
    queries: int = 0


class YouTubeDialect(Dialect):
    authorize_path = r"/o/oauth2/v2/auth"
    token_path = r"/token"
    routes_spec = (
        ("POST", r"/revoke", "revoke"),
        ("GET", r"/youtube/v3/(channels)", "data_api"),
        ("GET", r"/youtube/v3/(playlistItems)", "data_api"),
        ("GET", r"/youtube/v3/(videos)", "data_api"),
        ("GET", r"/v2/reports", "reports"),
        ("POST", UPLOAD_PATH, "upload_init"),
        ("PUT", UPLOAD_PATH, "upload_put"),
        ("GET", r"/youtube/v3/commentThreads", "comment_threads"),
        ("GET", r"/youtube/v3/comments", "comments_list"),
        ("POST", r"/youtube/v3/comments", "comment_insert"),
        ("POST", r"/youtube/v3/comments/setModerationStatus", "comment_moderate"),
        ("DELETE", r"/youtube/v3/comments", "comment_delete"),
    )
    analytics_metrics = frozenset(
        {
            "views",
            "likes",
            "dislikes",
            "comments",
            "shares",
            "subscribersGained",
            "subscribersLost",
            "estimatedMinutesWatched",
            "averageViewDuration",
        }
    )

    def reset(self) -> None:
        self.daily_quota = DAILY_QUOTA
        self.sessions: dict[str, UploadSession] = {}
        self.videos: dict[str, Video] = {}
        self._units: dict[date, int] = {}
        self.community = Community(self.platform)

    def session(self, upload_url: str) -> UploadSession:
        """The session behind an upload URL (tests look at how far it got)."""
        return self.sessions[upload_url.rsplit("upload_id=", 1)[-1].split("&")[0]]

    def _error(
        self, status: int, message: str, reason: str, domain: str = "global", **extra: Json
    ) -> Reply:
        error = {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason, **extra}],
        }
        return Reply(status, {"error": error})

    def not_found(self, ctx: Ctx) -> Reply:
        return self._error(404, "Not Found", "notFound")

    def unauthorized(self, why: str) -> Reply:
        reply = self._error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            "authError",
            location="Authorization",
            locationType="header",
        )
        reply.body["error"]["status"] = "UNAUTHENTICATED"
        return reply

    def throttled(self, retry_after: float | None) -> Reply:
        reply = Reply(
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Resource has been exhausted (e.g. check quota).",
                    "status": "RESOURCE_EXHAUSTED",
                }
            },
        )
        if retry_after is not None:
            reply.headers["Retry-After"] = str(round(retry_after))
        return reply

    def server_error(self, status: int) -> Reply:
        return self._error(status, "Backend Error", "backendError")

    def token_body(
        self, access: AccessToken, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        body = super().token_body(access, refresh, grant, refresh_ttl)
        body["token_type"] = "Bearer"
        if grant == "refresh_token":
            body.pop("refresh_token", None)  # Google keeps the refresh token it gave once
        return body

    def before(self, ctx: Ctx, name: str) -> None:
        if name == "data_api":
            self._charge(ctx, YOUTUBE_UNITS.get(ctx.path.rsplit("/", 1)[-1], 1))
        elif name in COMMENT_UNITS:
            self._charge(ctx, COMMENT_UNITS[name])

    def _charge(self, ctx: Ctx, cost: int) -> None:
        """Spend quota units, or answer quotaExceeded."""
        forced = self.sim._remaining.get(self.platform)
        if forced is not None:
            remaining, reset_at, limit = forced
            if ctx.now >= reset_at:
                remaining = limit
            if remaining < cost:
                self.sim._remaining[self.platform] = (remaining, reset_at, limit)
                raise self._quota_exceeded()
            self.sim._remaining[self.platform] = (remaining - cost, reset_at, limit)
        else:
            day = datetime.fromtimestamp(ctx.now, PACIFIC).date()
            used = self._units.get(day, 0)
            if used + cost > self.daily_quota:
                raise self._quota_exceeded()
            self._units[day] = used + cost
        self.sim.quota_units_used += cost

    def _quota_exceeded(self) -> Reply:
        return self._error(
            403,
            'The request cannot be completed because you have exceeded your <a href="'
            '/youtube/v3/getting-started#quota">quota</a>.',
            "quotaExceeded",
            "youtube.quota",
        )

    def usage_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"server": "ESF", "x-xss-protection": "0"}

    def revoke(self, ctx: Ctx) -> Json:
        self.sim._revoke_value(ctx.params.get("token", ""))
        return {}

    def data_api(self, ctx: Ctx, resource: str) -> Json:
        account = self.account(ctx)
        if resource == "channels":
            return self._channels(ctx, account)
        if resource == "videos":
            return self._videos(ctx, account)
        return self._playlist_items(ctx, account)

    def _channels(self, ctx: Ctx, account: Account) -> Json:
        parts = set(ctx.query.get("part", "").split(","))
        if not parts - {""}:
            raise self._error(
                400, "No filter selected.", "missingRequiredParameter", "youtube.parameter"
            )
        if ctx.query.get("mine") == "true":
            found = [account]
        else:
            ids = [i for i in ctx.query.get("id", "").split(",") if i]
            found = [a for a in (self.sim._lookup(self.platform, i) for i in ids) if a]
        items = []
        for channel in found:
            item: dict[str, Json] = {
                "kind": "youtube#channel",
                "etag": b64id(27, channel.external_id, "etag"),
                "id": channel.external_id,
            }
            if "snippet" in parts:
                item["snippet"] = {
                    "title": channel.name,
                    "description": f"The channel of {channel.name}",
                    "customUrl": f"@{channel.handle}",
                    "publishedAt": "2019-03-04T10:00:00Z",
                    "country": "FR",
                }
            if "statistics" in parts:
                item["statistics"] = {
                    "viewCount": str(100_000 + int(1e6 * channel._key("views"))),
                    "subscriberCount": str(channel.total(today_utc())),
                    "hiddenSubscriberCount": False,
                    "videoCount": str(50 + int(300 * channel._key("videos"))),
                }
            if "contentDetails" in parts:
                uploads = "UU" + channel.external_id[2:]
                item["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": uploads}}
            items.append(drop_fields(item, self.sim._deprecated_names(self.platform)))
        return {
            "kind": "youtube#channelListResponse",
            "etag": b64id(27, "list", len(items)),
            "pageInfo": {"totalResults": len(items), "resultsPerPage": 5},
            "items": items,
        }

    def _playlist_items(self, ctx: Ctx, account: Account) -> Json:
        playlist = ctx.query.get("playlistId", "")
        owner = (
            self.sim._lookup(self.platform, "UC" + playlist[2:]) if playlist[:2] == "UU" else None
        )
        if owner is None:
            raise self._error(
                404,
                "The playlist identified with the request's <code>playlistId</code> parameter "
                "cannot be found.",
                "playlistNotFound",
                "youtube.playlistItem",
                location="playlistId",
                locationType="parameter",
            )
        limit = max(0, min(50, int(ctx.query.get("maxResults", "5"))))
        offset = decode_cursor(ctx.query.get("pageToken"))
        parts = set(ctx.query.get("part", "contentDetails").split(","))
        window = list(itertools.islice(self._uploads(owner), offset, offset + limit + 1))
        entries, more = window[:limit], len(window) > limit
        items = [self._playlist_item(owner, entry, parts) for entry in entries]
        body: dict[str, Json] = {
            "kind": "youtube#playlistItemListResponse",
            "etag": b64id(27, playlist, offset),
            "items": items,
            "pageInfo": {
                "totalResults": 50 + int(300 * owner._key("videos")),
                "resultsPerPage": limit,
            },
        }
        if more:
            body["nextPageToken"] = encode_cursor(offset + len(entries))
        return body

    def _uploads(self, owner: Account) -> Iterator[Post | Video]:
        """The channel's uploads, newest first: the seeded history and the videos uploaded
        here."""
        made = sorted(
            (
                v
                for v in self.videos.values()
                if v.channel == owner.external_id and v.upload_status == "uploaded"
            ),
            key=lambda v: v.created_at,
            reverse=True,
        )

        def when(entry: Post | Video) -> float:
            return entry.created_at if isinstance(entry, Video) else entry.created_at.timestamp()

        seeded: Iterator[Post | Video] = owner.posts_desc(datetime.now(UTC))
        return heapq.merge(made, seeded, key=when, reverse=True)

    def _playlist_item(self, owner: Account, entry: Post | Video, parts: set[str]) -> Json:
        if isinstance(entry, Video):
            video_id, published = entry.id, _stamp(entry.created_at)
            title, description = entry.title, entry.description
        else:
            video_id = entry.id
            published = entry.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            title, description = f"Video {entry.id[-4:]}", ""
        item: dict[str, Json] = {
            "kind": "youtube#playlistItem",
            "etag": b64id(27, video_id, "etag"),
            "id": b64id(40, video_id, "item"),
        }
        if "snippet" in parts:
            item["snippet"] = {
                "publishedAt": published,
                "channelId": owner.external_id,
                "title": title,
                "description": description,
                "channelTitle": owner.name,
                "playlistId": "UU" + owner.external_id[2:],
                "resourceId": {"kind": "youtube#video", "videoId": video_id},
                "videoOwnerChannelId": owner.external_id,
            }
        if "contentDetails" in parts:
            item["contentDetails"] = {"videoId": video_id, "videoPublishedAt": published}
        return item

    def _videos(self, ctx: Ctx, account: Account) -> Json:
        parts = {p for p in ctx.query.get("part", "").split(",") if p}
        if not parts:
            raise self._error(
                400, "No filter selected.", "missingRequiredParameter", "youtube.parameter"
            )
        ids = [i for i in ctx.query.get("id", "").split(",") if i]
        items = [
            self._video_resource(self.videos[i], parts, account)
            for i in ids
            if i in self.videos and self.videos[i].upload_status == "uploaded"
        ]
        return {
            "kind": "youtube#videoListResponse",
            "etag": b64id(27, "videos", *ids),
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }

    def _video_resource(
        self, video: Video, parts: set[str], viewer: Account | None = None
    ) -> dict[str, Json]:
        item: dict[str, Json] = {
            "kind": "youtube#video",
            "etag": b64id(27, video.id, "etag"),
            "id": video.id,
        }
        if "snippet" in parts:
            owner = self.sim._lookup(self.platform, video.channel)
            item["snippet"] = {
                "publishedAt": _stamp(video.created_at),
                "channelId": video.channel,
                "title": video.title,
                "description": video.description,
                "thumbnails": {
                    "default": {
                        "url": f"https://i.ytimg.com/vi/{video.id}/default.jpg",
                        "width": 120,
                        "height": 90,
                    }
                },
                "channelTitle": owner.name if owner else "",
                "categoryId": "22",
                "liveBroadcastContent": "none",
                "localized": {"title": video.title, "description": video.description},
            }
        if "status" in parts:
            status: dict[str, Json] = {
                "uploadStatus": video.upload_status,
                "privacyStatus": video.privacy,
                "license": "youtube",
                "embeddable": True,
                "publicStatsViewable": True,
            }
            if video.failure:
                status["failureReason"] = video.failure
            item["status"] = status
        if "statistics" in parts:
            stats = video_statistics(video.id)
            item["statistics"] = {k: str(v) for k, v in stats.items()}
        shown: dict[str, Json] = drop_fields(item, self.sim._deprecated_names(self.platform))
        return shown

    # --- videos.insert, resumable

    def upload_init(self, ctx: Ctx) -> Response:
        account = self.account(ctx)
        fault = self.sim.take_fault(
            self.platform, "error_before_create", "quota_spent", "token_expires_mid_flow"
        )
        if fault == "error_before_create":
            raise self.server_error(503)
        if fault == "quota_spent":
            raise self._quota_exceeded()
        if ctx.query.get("uploadType") != "resumable":
            raise self._error(400, "Media type is not supported.", "mediaBodyRequired")
        parts = set(ctx.query.get("part", "").split(","))
        if "snippet" not in parts:
            raise self._error(
                400, "No filter selected.", "missingRequiredParameter", "youtube.parameter"
            )
        size_header = ctx.headers.get("x-upload-content-length", "")
        content_type = ctx.headers.get("x-upload-content-type", "")
        if not size_header.isdigit() or int(size_header) <= 0:
            raise self._error(400, "The request is missing a valid upload length.", "badContent")
        if not content_type.startswith(("video/", "application/octet-stream")):
            raise self._error(
                400,
                f"Media type '{content_type}' is not supported.",
                "mediaTypeNotSupported",
                "youtube.video",
            )
        body: dict[str, Json] = ctx.body if isinstance(ctx.body, dict) else {}
        snippet: dict[str, Json] = body.get("snippet") or {}
        status: dict[str, Json] = body.get("status") or {}
        if not isinstance(snippet, dict) or not isinstance(status, dict):
            raise self._error(400, "Invalid video metadata.", "invalidVideoMetadata")
        title = snippet.get("title")
        title = title if isinstance(title, str) else ""
        description = snippet.get("description") or ""
        if not title.strip() or len(title) > 100 or any(c in title for c in "<>"):
            raise self._error(
                400,
                "The request metadata specifies an invalid or empty video title.",
                "invalidTitle",
                "youtube.video",
            )
        if (
            not isinstance(description, str)
            or len(description.encode()) > 5000
            or any(c in description for c in "<>")
        ):
            raise self._error(
                400,
                "The request metadata specifies an invalid video description.",
                "invalidDescription",
                "youtube.video",
            )
        privacy = status.get("privacyStatus", "public")
        if privacy not in {"public", "unlisted", "private"}:
            raise self._error(400, "Invalid privacy status.", "invalidVideoMetadata")
        self._charge(ctx, INSERT_UNITS)
        upload_id = "AUc8" + secrets.token_urlsafe(40)
        self.sessions[upload_id] = UploadSession(
            id=upload_id,
            channel=account.external_id,
            size=int(size_header),
            content_type=content_type,
            title=title,
            description=description,
            privacy=privacy,
            opened_at=ctx.now,
        )
        if fault == "token_expires_mid_flow" and ctx.bearer in self.sim._tokens:
            self.sim.expire(ctx.bearer)
        query = urlencode(
            {
                "uploadType": "resumable",
                "part": ctx.query.get("part", ""),
                "upload_id": upload_id,
            }
        )
        location = f"{UPLOAD_HOST}{UPLOAD_PATH}?{query}"
        return Response(status_code=200, headers={"Location": location, **self.usage_headers(ctx)})

    def upload_put(self, ctx: Ctx) -> Response | Json:
        session = self.sessions.get(ctx.query.get("upload_id", ""))
        if session is None or ctx.now > session.opened_at + SESSION_TTL:
            raise self.not_found(ctx)
        account = self.account(ctx)
        if account.external_id != session.channel:
            raise self._error(403, "Forbidden", "forbidden")
        session.puts += 1
        header = ctx.headers.get("content-range", "")
        if (asked := _QUERY.match(header)) is not None:
            session.queries += 1
            if int(asked.group(1)) != session.size:
                raise self._error(400, "Invalid Content-Range.", "badRequest")
            return self._progress(ctx, session)
        if session.video is not None:
            return self._video_resource(session.video, {"snippet", "status"})
        found = _RANGE.match(header)
        if found is None:
            raise self._error(400, "Invalid Content-Range.", "badRequest")
        start, end, total = (int(g) for g in found.groups())
        if total != session.size or end < start or end >= total or len(ctx.raw) != end - start + 1:
            raise self._error(400, "Invalid Content-Range.", "badRequest")
        if start != session.received:
            return self._progress(ctx, session)  # out of step: say where to go on from
        last = end + 1 == total
        if not last and len(ctx.raw) % CHUNK_GRANULE:
            raise self._error(
                400, "Chunks must be multiples of 256 KiB, except the last.", "badRequest"
            )
        if session.received == 0 and self.sim.take_fault(self.platform, "rate_limited"):
            raise self.throttled(30.0)
        session.received = end + 1
        session.digest.update(ctx.raw)
        if not last:
            return self._progress(ctx, session)
        fault = self.sim.take_fault(self.platform, "timeout_after_create", "container_error")
        video = Video(
            id=b64id(11, session.id, "video"),
            channel=session.channel,
            title=session.title,
            description=session.description,
            privacy=session.privacy,
            created_at=ctx.now,
        )
        session.video = video
        self.videos[video.id] = video
        if fault == "container_error":
            video.upload_status, video.failure = "failed", "invalidFile"
        else:
            self.sim.record_post(
                self.platform,
                session.channel,
                video.id,
                session.description,
                media=(f"video:{session.digest.hexdigest()[:16]}",),
                permalink=f"https://www.youtube.com/watch?v={video.id}",
                marker=session.id,
            )
            if fault == "timeout_after_create":
                ctx.hang = True
        return self._video_resource(video, {"snippet", "status"})

    def _progress(self, ctx: Ctx, session: UploadSession) -> Response | Json:
        if session.video is not None:
            return self._video_resource(session.video, {"snippet", "status"})
        headers = {**self.usage_headers(ctx), "X-GUploader-UploadID": session.id}
        if session.received:
            headers["Range"] = f"bytes=0-{session.received - 1}"
        return Response(status_code=308, headers=headers)

    def reports(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        ids = ctx.query.get("ids", "")
        if ids not in {"channel==MINE", f"channel=={account.external_id}"}:
            raise self._error(403, "Forbidden", "forbidden")
        metrics = [m for m in ctx.query.get("metrics", "").split(",") if m]
        if not metrics:
            raise self._error(400, "Required parameter: metrics", "required")
        for metric in metrics:
            if metric not in self.analytics_metrics or self.sim._is_deprecated(
                self.platform, metric
            ):
                raise self._error(
                    400,
                    f"Unknown identifier ({metric}) given in field parameters.metrics.",
                    "badRequest",
                )
        try:
            start = date.fromisoformat(ctx.query["startDate"])
            end = date.fromisoformat(ctx.query["endDate"])
        except (KeyError, ValueError):
            raise self._error(400, "Required parameter: startDate, endDate", "required") from None
        if ctx.query.get("dimensions") != "day":
            raise self._error(400, "The query is not supported.", "badRequest")
        rows = []
        day = start
        while day <= min(end, today_utc()):
            parts = account.engagement_parts(day)
            gained, lost = account.gained_lost(day)
            values = {
                "views": account.audience(day).video_views,
                "likes": parts["likes"],
                "dislikes": round(parts["likes"] * 0.03),
                "comments": parts["comments"],
                "shares": parts["shares"] + parts["clicks"],
                "subscribersGained": gained,
                "subscribersLost": lost,
                "estimatedMinutesWatched": account.audience(day).video_views * 3,
                "averageViewDuration": 95,
            }
            rows.append([day.isoformat(), *(values[m] for m in metrics)])
            day += timedelta(days=1)
        return {
            "kind": "youtubeAnalytics#resultTable",
            "columnHeaders": [
                {"name": "day", "columnType": "DIMENSION", "dataType": "STRING"},
                *({"name": m, "columnType": "METRIC", "dataType": "INTEGER"} for m in metrics),
            ],
            "rows": rows,
        }

    # --- comments (the community inbox)

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
        """A viewer's comment (`thread`: the video; default the channel's newest) or reply
        to a top-level comment (`parent`). YouTube pushes nothing: `push` is ignored."""
        with self.sim._lock:
            owner = self.sim.account(self.platform, account)
            top = self.community.get(parent) if parent is not None else None
            if parent is not None and (top is None or top.parent is not None):
                raise KeyError(f"no top-level comment {parent!r} on {account}")
            if top is None and kind != "comment":
                raise ValueError("YouTube has comments and replies only")
            kind = "reply" if top is not None else "comment"
            return add_item(
                self,
                owner,
                kind,
                text,
                author_id=author_id,
                author_name=author_name,
                parent=top,
                thread=thread,
                created_at=created_at,
            ).id

    def community_id(self, account: Account, kind: str) -> str:
        return b64id(26, "comment", account.external_id, secrets.token_hex(8))

    def community_thread(self, account: Account, item: CommunityItem) -> str | None:
        return next(iter(self._uploads(account))).id

    def webhook_body(self, items: Sequence[CommunityItem]) -> bytes | None:
        return None  # polled

    def webhook_headers(self, body: bytes, secret: str) -> dict[str, str]:
        return {}

    def replies_of(self, account: str) -> list[CommunityItem]:
        with self.sim._lock:
            return self.community.replies_of(account)

    def _comment(self, item: CommunityItem, owner: Account, *, status: bool = False) -> Json:
        name = item.author_name or ("" if not item.from_account else owner.name)
        snippet: dict[str, Json] = {
            "channelId": item.account,
            "videoId": item.thread,
            "textDisplay": item.text,
            "textOriginal": item.text,
            "authorDisplayName": name,
            "authorProfileImageUrl": f"https://yt3.ggpht.com/{b64id(16, item.author_id)}",
            "authorChannelUrl": f"http://www.youtube.com/channel/{item.author_id}",
            "authorChannelId": {"value": item.author_id},
            "canRate": True,
            "viewerRating": "none",
            "likeCount": int(20 * unit_of("youtube", item.id, "likes")),
            "publishedAt": _stamp(item.created_at),
            "updatedAt": _stamp(item.created_at),
        }
        if item.parent is not None:
            snippet["parentId"] = item.parent
        if status:
            snippet["moderationStatus"] = _status(item)
        return {
            "kind": "youtube#comment",
            "etag": b64id(27, item.id, _status(item)),
            "id": item.id,
            "snippet": snippet,
        }

    def _shown(self, item: CommunityItem, status: str = "published") -> bool:
        return not item.deleted and _status(item) == status

    def _page(self, ctx: Ctx, default: int) -> tuple[int, int]:
        try:
            limit = int(ctx.query.get("maxResults", str(default)))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 100:
            raise self._error(400, "Invalid value for maxResults.", "invalidValue")
        return limit, decode_cursor(ctx.query.get("pageToken"))

    def comment_threads(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        parts = {p for p in ctx.query.get("part", "").split(",") if p}
        if not parts or not parts <= {"id", "snippet", "replies"}:
            raise self._error(400, "Invalid part.", "invalidPart", "youtube.parameter")
        channel = ctx.query.get("allThreadsRelatedToChannelId")
        if channel is None:
            raise self._error(
                400, "No filter selected.", "missingRequiredParameter", "youtube.parameter"
            )
        if channel != account.external_id:
            raise self._error(403, "Forbidden", "forbidden", "youtube.commentThread")
        status = ctx.query.get("moderationStatus", "published")
        limit, offset = self._page(ctx, 20)
        # order=time: newest thread first.
        tops = [
            i
            for i in reversed(self.community.of(channel))
            if i.parent is None and self._shown(i, status)
        ]
        window = tops[offset : offset + limit]
        threads = []
        for top in window:
            replies = [r for r in self.community.children(top.id) if self._shown(r)]
            thread: dict[str, Json] = {
                "kind": "youtube#commentThread",
                "etag": b64id(27, top.id, "thread", len(replies)),
                "id": top.id,
            }
            if "snippet" in parts:
                thread["snippet"] = {
                    "channelId": channel,
                    "videoId": top.thread,
                    "topLevelComment": self._comment(top, account, status=status != "published"),
                    "canReply": True,
                    "totalReplyCount": len(replies),
                    "isPublic": True,
                }
            if "replies" in parts and replies:
                thread["replies"] = {
                    "comments": [self._comment(r, account) for r in replies[-THREAD_REPLIES:]]
                }
            threads.append(thread)
        body: dict[str, Json] = {
            "kind": "youtube#commentThreadListResponse",
            "etag": b64id(27, "threads", channel, offset),
            "pageInfo": {"totalResults": len(window), "resultsPerPage": limit},
            "items": threads,
        }
        if offset + limit < len(tops):
            body["nextPageToken"] = encode_cursor(offset + limit)
        return body

    def comments_list(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        parent = ctx.query.get("parentId")
        ids = [i for i in ctx.query.get("id", "").split(",") if i]
        if parent is None and not ids:
            raise self._error(
                400, "No filter selected.", "missingRequiredParameter", "youtube.parameter"
            )
        limit, offset = self._page(ctx, 20)
        if parent is not None:
            top = self.community.get(parent)
            if top is None or top.deleted:
                raise self._error(
                    404, "The parent comment cannot be found.", "parentCommentNotFound"
                )
            found = [r for r in self.community.children(parent) if self._shown(r)]
        else:
            found = [c for i in ids if (c := self.community.get(i)) is not None and not c.deleted]
        window = found[offset : offset + limit]
        body: dict[str, Json] = {
            "kind": "youtube#commentListResponse",
            "etag": b64id(27, "comments", parent or ",".join(ids), offset),
            "pageInfo": {"totalResults": len(window), "resultsPerPage": limit},
            "items": [self._comment(c, account) for c in window],
        }
        if offset + limit < len(found):
            body["nextPageToken"] = encode_cursor(offset + limit)
        return body

    def comment_insert(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        snippet = body.get("snippet")
        snippet = snippet if isinstance(snippet, dict) else {}
        parent_id, text = snippet.get("parentId"), snippet.get("textOriginal")
        if not isinstance(text, str) or not text.strip():
            raise self._error(400, "The comment text is empty.", "commentTextRequired")
        if len(text) > 10_000:
            raise self._error(400, "The comment text is too long.", "commentTextTooLong")
        parent = self.community.get(parent_id) if isinstance(parent_id, str) else None
        if parent is None or parent.deleted or parent.account != account.external_id:
            raise self._error(
                404, "The specified parent comment could not be found.", "parentCommentNotFound"
            )
        if parent.parent is not None:
            raise self._error(
                400, "Replies answer a top-level comment only.", "operationNotSupported"
            )
        if self.sim.take_fault(self.platform, "error_before_create"):
            raise self.server_error(503)
        fault = self.sim.take_fault(self.platform, *REPLY_FAULTS)
        item = self.community.new(
            account.external_id,
            f"{parent.id}.{b64id(22, 'reply', secrets.token_hex(8))}",
            "reply",
            text,
            author_id=account.external_id,
            author_name=account.name,
            thread=parent.thread,
            parent=parent.id,
            target=parent_id,
            at=ctx.now,
        )
        if fault == "reply_500_after_create":
            raise self.server_error(500)
        if fault == "reply_timeout":
            ctx.hang = True
        return self._comment(item, account)

    def _own_comments(self, ctx: Ctx, account: Account) -> list[CommunityItem]:
        ids = [i for i in ctx.query.get("id", "").split(",") if i]
        if not ids:
            raise self._error(400, "Required parameter: id", "required")
        found = []
        for comment_id in ids:
            item = self.community.get(comment_id)
            if item is None or item.deleted:
                raise self._error(404, "The comment cannot be found.", "commentNotFound")
            if item.account != account.external_id:
                raise self._error(403, "Forbidden", "forbidden", "youtube.comment")
            found.append(item)
        return found

    def comment_moderate(self, ctx: Ctx) -> Response:
        account = self.account(ctx)
        status = ctx.query.get("moderationStatus")
        if status not in {"heldForReview", "published", "rejected"}:
            raise self._error(400, "Invalid moderation status.", "invalidModerationStatus")
        for item in self._own_comments(ctx, account):
            if item.from_account:
                raise self._error(
                    400, "The channel's own comments are not moderated.", "operationNotSupported"
                )
            # Held for review is hidden; a rejected comment is gone for good.
            item.hidden, item.deleted = status == "heldForReview", status == "rejected"
        return Response(status_code=204, headers=self.usage_headers(ctx))

    def comment_delete(self, ctx: Ctx) -> Response:
        account = self.account(ctx)
        for item in self._own_comments(ctx, account):
            if item.author_id != account.external_id:
                # Only a comment's author deletes it; the channel rejects the others'.
                raise self._error(403, "The comment could not be deleted.", "forbidden")
            item.deleted = True
        return Response(status_code=204, headers=self.usage_headers(ctx))


def _status(item: CommunityItem) -> str:
    """YouTube's moderation status of a comment."""
    return "rejected" if item.deleted else "heldForReview" if item.hidden else "published"
