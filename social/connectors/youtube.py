"""YouTube channels: the Data API for the channel and its uploads, YouTube Analytics for
daily figures (one report per metric of ours, so that one refused metric fails alone).

Budget, in quota units: ``youtube`` (the Data API's daily quota) takes 1 unit per
channels.list and per playlistItems.list page, their real cost; ``youtube:analytics`` (the
Analytics API's separate quota) 1 per report. 403 ``quotaExceeded`` / ``dailyLimitExceeded``
pauses the key until the quota resets, at midnight Pacific time; 403
``rateLimitExceeded``/``userRateLimitExceeded`` and 429 pause it for Retry-After or 60 s.

Google answers no refresh token on refresh (the first one stays valid), and only gives one
at all with ``access_type=offline``; ``prompt=consent`` makes a reconnect give one again.

Publishing is ``videos.insert`` as a resumable upload. `prepare` opens the upload session (the
insert's 1,600 quota units are spent there; a spent quota is PublishRejected "quota_spent")
and keeps its URI in the state, reusing a live one on a retry. `create` sends the bytes in
chunks; a session makes at most one video, so an upload that stopped halfway (a timeout, a
5xx, a worker killed) asks the session how far it got (``Content-Range: bytes */N``) and goes
on from there, and an upload that in fact finished answers its video: never a second one.

Inbox: `fetch_items` reads ``commentThreads.list`` (``allThreadsRelatedToChannelId``, 1 unit a
page) and ``comments.list`` for threads carrying fewer replies than they have (1 unit);
`reply` is ``comments.insert`` with ``snippet.parentId`` (50 units; a thread is one level
deep, so a reply to a reply answers its top-level comment); `moderate` is
``comments.setModerationStatus`` (hide = heldForReview, unhide = published, delete of someone
else's comment = rejected) or ``comments.delete`` for the channel's own (50 units each). No
private replies. Held comments leave the published listing.
"""

from __future__ import annotations

import asyncio
import hashlib
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from infra.clock import utcnow
from social.connectors.base import (
    Assembly,
    HttpConnector,
    Json,
    Keys,
    Parts,
    RequestRejected,
    Series,
    Tally,
    as_dict,
    as_int,
    as_list,
    combine,
    gather,
    json_body,
    midnight,
    missing,
    retry_after_seconds,
    sub,
)
from social.connectors.types import (
    ConnectorError,
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

DATA = "https://www.googleapis.com/youtube/v3"
UPLOAD = "https://www.googleapis.com/upload/youtube/v3/videos"
ANALYTICS = "https://youtubeanalytics.googleapis.com/v2"
WATCH = "https://www.youtube.com/watch?v="
PACIFIC = ZoneInfo("America/Los_Angeles")
DATA_KEY = "youtube"
ANALYTICS_KEY = "youtube:analytics"
UNITS = {
    "channels": 1.0,
    "playlistItems": 1.0,
    "videos": 1.0,
    "commentThreads": 1.0,
    "comments": 1.0,
}
WRITE_UNITS = 50.0
"""comments.insert, comments.setModerationStatus and comments.delete each cost 50 units."""
THREAD_PAGES = 10
REPLY_PAGES = 5
REPLY_HORIZON = timedelta(days=7)
"""Polling pages back through threads started up to this long before `since`: a new reply
lands on an older thread, and YouTube orders threads by their first comment."""
INSERT_UNITS = 1600.0
"""What videos.insert costs, spent when the upload session opens."""
UPLOAD_CHUNK = 8 * 1024 * 1024
"""Google wants every chunk but the last in multiples of 256 KiB."""
SESSION_LIFETIME = timedelta(days=6)
"""Upload sessions live about a week; an older one is not worth asking about."""
RESUME_TRIES = 3
FIND_PAGES = 4
CLOCK_SLACK = timedelta(minutes=2)
"""publishedAt has whole seconds, and the platform's clock is not ours."""
TITLE_MAX = 100
REPORT_COST = 1.0
PAGE_SIZE = 50
MAX_PAGES = 20
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


def until_quota_reset(now: datetime | None = None) -> float:
    """Seconds until midnight Pacific time, when Google resets daily quotas."""
    local = (now or utcnow()).astimezone(PACIFIC)
    midnight_pt = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), PACIFIC)
    return max(1.0, (midnight_pt - local).total_seconds())


def video_title(draft: PostDraft) -> str:
    """YouTube's title: the item's title, else the text's first line, at most 100 characters."""
    lines = draft.text.strip().splitlines()
    title = draft.title.strip() or (lines[0].strip() if lines else "")
    return title[:TITLE_MAX]


def _the_video(draft: PostDraft) -> MediaFile:
    videos = [m for m in draft.media if m.kind == "video"]
    if len(videos) != 1 or len(draft.media) != 1:
        raise PublishRejected(
            "YouTube publishes exactly one video per post: attach one video and nothing else."
        )
    return videos[0]


def _when(value: Json) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _next_offset(response: httpx.Response) -> int:
    """Where a 308 Resume Incomplete says to go on: after its Range, or at 0 without one."""
    value = response.headers.get("Range", "")
    _, _, last = value.partition("-")
    return int(last) + 1 if last.isdigit() else 0


@dataclass(frozen=True)
class _Progress:
    received: int
    video: dict[str, Json] | None = None
    """The video resource, once the session finished."""


def _reasons(body: Json) -> set[str]:
    error = body.get("error") if isinstance(body, dict) else None
    errors = error.get("errors") if isinstance(error, dict) else None
    return {str(e.get("reason")) for e in as_list(errors) if isinstance(e, dict)}


class YouTubeConnector(HttpConnector):
    platform = Platform.youtube
    real_authorize_url = "https://accounts.google.com/o/oauth2/v2/auth"
    real_token_url = "https://oauth2.googleapis.com/token"  # noqa: S105
    scopes: tuple[str, ...] = (
        "https://www.googleapis.com/auth/youtube.readonly",
        "https://www.googleapis.com/auth/youtube.upload",
        "https://www.googleapis.com/auth/yt-analytics.readonly",
        # Reading, answering and moderating comments.
        "https://www.googleapis.com/auth/youtube.force-ssl",
    )
    can_reply_privately = False
    moderations = frozenset({Moderation.hide, Moderation.unhide, Moderation.delete})
    upload_chunk = UPLOAD_CHUNK

    def _extra_authorize_params(self) -> dict[str, str]:
        return {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}

    async def _check(
        self,
        response: httpx.Response,
        body: Json,
        *,
        token: str | None,
        keys: Keys,
        hidden: Sequence[str],
    ) -> None:
        if response.status_code == 403:
            reasons = _reasons(body)
            reason = self._scrub(f"HTTP 403: {self._message(body)}", hidden)
            if reasons & QUOTA_REASONS:
                await self._limited(self._limit_key(keys), until_quota_reset(), reason)
            if reasons & RATE_REASONS:
                wait = retry_after_seconds(response.headers.get("Retry-After"), 60.0)
                await self._limited(self._limit_key(keys), wait, reason)
        await super()._check(response, body, token=token, keys=keys, hidden=hidden)

    async def _data(self, resource: str, token: str, params: dict[str, str]) -> dict[str, Json]:
        body = await self._request(
            "GET",
            self.url(f"{DATA}/{resource}"),
            token=token,
            keys=((DATA_KEY, UNITS[resource]),),
            params=params,
        )
        return as_dict(body)

    async def profile(self, token: TokenSet, external_id: str | None) -> Profile:
        params = {"part": "snippet,statistics"}
        params |= {"mine": "true"} if external_id is None else {"id": external_id}
        body = await self._data("channels", token.access_token, params)
        items = [i for i in as_list(body.get("items")) if isinstance(i, dict)]
        if not items:
            raise RequestRejected("no YouTube channel for this token")
        channel = items[0]
        snippet, stats = sub(channel, "snippet"), sub(channel, "statistics")
        handle = snippet.get("customUrl")
        return Profile(
            external_id=str(channel["id"]),
            handle=handle.removeprefix("@") if isinstance(handle, str) and handle else None,
            display_name=snippet.get("title") or None,
            followers=None
            if stats.get("hiddenSubscriberCount")
            else as_int(stats.get("subscriberCount")),
        )

    async def _report(
        self, token: str, metrics: tuple[str, ...], since: date, until: date
    ) -> Parts:
        params = {
            "ids": "channel==MINE",
            "startDate": since.isoformat(),
            "endDate": until.isoformat(),
            "metrics": ",".join(metrics),
            "dimensions": "day",
            "sort": "day",
        }
        body = as_dict(
            await self._request(
                "GET",
                self.url(f"{ANALYTICS}/reports"),
                token=token,
                keys=((ANALYTICS_KEY, REPORT_COST),),
                params=params,
            )
        )
        headers = [h.get("name") for h in as_list(body.get("columnHeaders")) if isinstance(h, dict)]
        if "day" not in headers:
            return {m: missing("day") for m in metrics}
        at = headers.index("day")
        parts: Parts = {}
        for metric in metrics:
            if metric not in headers:
                parts[metric] = missing(metric)
                continue
            column = headers.index(metric)
            series: Series = {}
            for row in as_list(body.get("rows")):
                if isinstance(row, list) and len(row) == len(headers):
                    value = as_int(row[column])
                    if value is not None:
                        series[date.fromisoformat(str(row[at]))] = value
            parts[metric] = series
        return parts

    async def _uploads(self, token: str, channel_id: str, since: date, until: date) -> Parts:
        tally = Tally(since, until, ("posts_published",))
        params = {
            "part": "contentDetails",
            "playlistId": "UU" + channel_id.removeprefix("UC"),
            "maxResults": str(PAGE_SIZE),
        }
        oldest = midnight(since)
        for _ in range(MAX_PAGES):
            body = await self._data("playlistItems", token, params)
            reached_older = False
            for item in as_list(body.get("items")):
                details = item.get("contentDetails") if isinstance(item, dict) else None
                published = details.get("videoPublishedAt") if isinstance(details, dict) else None
                if not isinstance(published, str):
                    continue  # private or deleted videos have no publication time
                when = datetime.fromisoformat(published.replace("Z", "+00:00"))
                reached_older = reached_older or when < oldest
                tally.add(when.date(), "posts_published", 1)
            page = body.get("nextPageToken")
            if reached_older or not isinstance(page, str):
                break
            params = {**params, "pageToken": page}
        return tally.parts()

    async def daily_metrics(
        self, token: TokenSet, external_id: str, since: date, until: date
    ) -> DailyMetrics:
        at = token.access_token
        subscribers = ("subscribersGained", "subscribersLost")
        interactions = ("likes", "comments", "shares")
        got = await gather(
            [
                (subscribers, self._report(at, subscribers, since, until)),
                (interactions, self._report(at, interactions, since, until)),
                (("views",), self._report(at, ("views",), since, until)),
                (("posts_published",), self._uploads(at, external_id, since, until)),
            ]
        )
        out = Assembly(since, until)
        out.series(
            "follower_change",
            combine(got["subscribersGained"], got["subscribersLost"], operator.sub),
        )
        out.series(
            "engagements",
            combine(
                combine(got["likes"], got["comments"], operator.add), got["shares"], operator.add
            ),
        )
        out.series("video_views", got["views"])
        out.series("posts_published", got["posts_published"])
        return out.done()

    # --- publishing

    def resumable(self, state: dict[str, Any]) -> bool:
        return isinstance(state.get("upload_url"), str)

    async def prepare(
        self, token: TokenSet, external_id: str, draft: PostDraft, state: dict[str, Any]
    ) -> dict[str, Any]:
        video = _the_video(draft)
        url = state.get("upload_url")
        opened = _when(state.get("opened_at"))
        if isinstance(url, str) and opened is not None and utcnow() - opened < SESSION_LIFETIME:
            try:
                progress = await self._probe(token.access_token, url, int(state.get("size", 0)))
            except RequestRejected as exc:
                raise PublishRejected(f"YouTube refused the upload: {exc.reason}") from None
            if progress is not None and progress.video is not None:
                if not _failed(progress.video):
                    return dict(state)  # its video exists: create answers it, never another
            elif progress is not None and state.get("fingerprint") == _fingerprint(draft, video):
                return dict(state)  # a live session for this very video: go on with it
        return await self._open_session(token.access_token, draft, video)

    async def _open_session(self, token: str, draft: PostDraft, video: MediaFile) -> dict[str, Any]:
        metadata = {
            "snippet": {"title": video_title(draft), "description": draft.text, "categoryId": "22"},
            "status": {"privacyStatus": "public", "selfDeclaredMadeForKids": False},
        }
        answer: list[httpx.Response] = []
        try:
            await self._request(
                "POST",
                self.url(UPLOAD),
                token=token,
                keys=((DATA_KEY, INSERT_UNITS),),
                params={"uploadType": "resumable", "part": "snippet,status"},
                json=metadata,
                headers={
                    "X-Upload-Content-Length": str(video.size),
                    "X-Upload-Content-Type": video.content_type,
                },
                answer=answer,
            )
        except RateLimited:
            if answer and _reasons(json_body(answer[0])) & QUOTA_REASONS:
                hours = max(1, round(until_quota_reset() / 3600))
                raise PublishRejected(
                    "YouTube: today's upload quota is spent; it resets at midnight Pacific "
                    f"time (in about {hours} h). Publish again after that.",
                    code="quota_spent",
                ) from None
            raise
        except RequestRejected as exc:
            raise PublishRejected(f"YouTube refused the video: {exc.reason}") from None
        location = answer[0].headers.get("Location") if answer else None
        if not location:
            raise PlatformUnavailable("youtube: the upload session came without its address")
        return {
            "upload_url": location,
            "size": video.size,
            "fingerprint": _fingerprint(draft, video),
            "opened_at": utcnow().isoformat(),
        }

    async def create(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        remember: Remember,
    ) -> PublishedPost:
        video = _the_video(draft)
        url, size = state.get("upload_url"), state.get("size")
        if not isinstance(url, str) or not isinstance(size, int):
            raise PublishRejected("YouTube: no upload session for this video; prepare it again.")
        at = token.access_token
        offset = 0
        if state.get("upload_started"):
            # An earlier attempt sent bytes: the session knows how far it got, or its video.
            progress = await self._resume_point(at, url, size)
            if progress.video is not None:
                return _published(progress.video)
            offset = progress.received
        if size != video.size:
            raise PublishRejected("YouTube: the upload session is for another file; prepare again.")
        if not state.get("upload_started"):
            await remember({"upload_started": True})
        for attempt in range(RESUME_TRIES + 1):
            try:
                return await self._send(at, url, video, offset)
            except OutcomeUnknown:
                if attempt == RESUME_TRIES:
                    raise
            await asyncio.sleep(0.5 * (attempt + 1))
            progress = await self._resume_point(at, url, video.size)
            if progress.video is not None:
                return _published(progress.video)
            offset = progress.received
        raise AssertionError("unreachable")  # pragma: no cover

    async def _resume_point(self, token: str, url: str, size: int) -> _Progress:
        """The session's progress; OutcomeUnknown when it cannot say (its video may exist)."""
        try:
            progress = await self._probe(token, url, size)
        except ConnectorError:
            raise OutcomeUnknown(
                "youtube: the upload stopped and the session could not say how far it got"
            ) from None
        if progress is None:
            raise OutcomeUnknown("youtube: the upload session is gone; look for the video")
        return progress

    async def _probe(self, token: str, url: str, size: int) -> _Progress | None:
        """Ask the session how far it got (None: it expired or never existed)."""
        answer: list[httpx.Response] = []
        try:
            body = await self._request(
                "PUT",
                self.url(url),
                token=token,
                keys=(),
                headers={"Content-Range": f"bytes */{size}"},
                content=b"",
                answer=answer,
                secrets=(url,),
            )
        except RequestRejected:
            if answer and answer[0].status_code in {404, 410}:
                return None
            raise
        if answer[0].status_code == 308:
            return _Progress(received=_next_offset(answer[0]))
        return _Progress(received=size, video=as_dict(body))

    async def _send(self, token: str, url: str, video: MediaFile, offset: int) -> PublishedPost:
        """The bytes from `offset` on, one chunk in memory at a time."""
        size = video.size
        with video.path.open("rb") as handle:
            handle.seek(offset)
            while True:
                block = handle.read(self.upload_chunk)
                if not block:
                    raise PublishRejected(
                        "YouTube: the video file is shorter than its announced size."
                    )
                end = offset + len(block) - 1
                answer: list[httpx.Response] = []
                try:
                    body = await self._request(
                        "PUT",
                        self.url(url),
                        token=token,
                        keys=(),
                        headers={
                            "Content-Range": f"bytes {offset}-{end}/{size}",
                            "Content-Type": video.content_type,
                        },
                        content=block,
                        creates=True,
                        answer=answer,
                        secrets=(url,),
                    )
                except PublishRejected as exc:
                    # Mid-upload, so the session made no video: a definite refusal.
                    if answer and answer[0].status_code in {404, 410}:
                        raise PublishRejected(
                            "YouTube: the upload session expired; publish again.",
                            code="media_expired",
                        ) from None
                    raise PublishRejected(
                        f"YouTube refused the upload ({exc.reason}); check the file and "
                        "publish again.",
                        code="media_rejected",
                    ) from None
                if answer[0].status_code != 308:
                    return _published(as_dict(body))
                offset = _next_offset(answer[0])
                if offset != end + 1:
                    handle.seek(offset)  # the session kept less than we sent

    async def find(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        since: datetime,
    ) -> PublishedPost | None:
        at = token.access_token
        url, size = state.get("upload_url"), state.get("size")
        if isinstance(url, str) and isinstance(size, int):
            try:
                progress = await self._probe(at, url, size)
            except RequestRejected:
                progress = None
            if progress is not None and progress.video is not None:
                return None if _failed(progress.video) else _published(progress.video)
        title, floor = video_title(draft), since - CLOCK_SLACK
        params = {
            "part": "snippet",
            "playlistId": "UU" + external_id.removeprefix("UC"),
            "maxResults": str(PAGE_SIZE),
        }
        for _ in range(FIND_PAGES):
            body = await self._data("playlistItems", at, params)
            for item in as_list(body.get("items")):
                snippet = sub(item, "snippet")
                published = _when(snippet.get("publishedAt"))
                if published is None:
                    continue
                if published < floor:
                    return None  # newest first: the rest is older still
                video_id = sub(snippet, "resourceId").get("videoId")
                if (
                    isinstance(video_id, str)
                    and snippet.get("title") == title
                    and snippet.get("description") == draft.text
                ):
                    return PublishedPost(video_id, WATCH + video_id, published)
            page = body.get("nextPageToken")
            if not isinstance(page, str):
                return None
            params = {**params, "pageToken": page}
        return None

    async def post_figures(self, token: TokenSet, external_id: str, post_id: str) -> PostFigures:
        """The Data API's public counts; YouTube gives no impressions or reach there."""
        body = await self._data("videos", token.access_token, {"part": "statistics", "id": post_id})
        items = [i for i in as_list(body.get("items")) if isinstance(i, dict)]
        if not items:
            raise RequestRejected("youtube: the video is gone or no longer visible")
        stats = sub(items[0], "statistics")
        likes, comments = as_int(stats.get("likeCount")), as_int(stats.get("commentCount"))
        counted = [n for n in (likes, comments) if n is not None]
        return PostFigures(
            engagements=sum(counted) if counted else None,
            video_views=as_int(stats.get("viewCount")),
        )

    # --- the community inbox

    async def fetch_items(
        self, token: TokenSet, external_id: str, since: datetime | None
    ) -> list[InboundItem]:
        """The channel's comment threads (commentThreads.list, 1 unit a page of 100), with
        the replies a thread does not carry fetched through comments.list (1 unit a page)."""
        at = token.access_token
        params = {
            "part": "snippet,replies",
            "allThreadsRelatedToChannelId": external_id,
            "maxResults": "100",
            "order": "time",
            "textFormat": "plainText",
        }
        found: dict[str, InboundItem] = {}
        horizon = since - REPLY_HORIZON if since is not None else None
        for _ in range(THREAD_PAGES if since is not None else 1):
            body = await self._data("commentThreads", at, params)
            oldest: datetime | None = None
            for thread in as_list(body.get("items")):
                snippet = sub(thread, "snippet")
                top = sub(snippet, "topLevelComment")
                item = _comment_item(external_id, top, snippet.get("videoId"))
                if item is None:
                    continue
                oldest = item.created_at if oldest is None else min(oldest, item.created_at)
                found[item.external_id] = item
                replies = [r for r in as_list(sub(thread, "replies").get("comments"))]
                total = as_int(snippet.get("totalReplyCount")) or 0
                if total > len(replies):
                    replies = await self._replies(at, item.external_id)
                for reply in replies:
                    answer = _comment_item(external_id, reply, item.thread_external_id)
                    if answer is not None:
                        found[answer.external_id] = answer
            page = body.get("nextPageToken")
            if not isinstance(page, str) or (
                horizon is not None and oldest is not None and oldest < horizon
            ):
                break
            params = {**params, "pageToken": page}
        items = [i for i in found.values() if since is None or i.created_at >= since]
        return sorted(items, key=lambda i: i.created_at)

    async def _replies(self, token: str, parent: str) -> list[Json]:
        params = {"part": "snippet", "parentId": parent, "maxResults": "100"}
        params["textFormat"] = "plainText"
        out: list[Json] = []
        for _ in range(REPLY_PAGES):
            body = await self._data("comments", token, params)
            out.extend(as_list(body.get("items")))
            page = body.get("nextPageToken")
            if not isinstance(page, str):
                break
            params = {**params, "pageToken": page}
        return out

    async def reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, *, private: bool
    ) -> SentReply:
        if private:
            raise PublishRejected("YouTube has no private replies to comments.")
        # YouTube threads are one level deep: a reply to a reply answers its thread.
        parent = item.parent_external_id or item.external_id
        try:
            body = await self._request(
                "POST",
                self.url(f"{DATA}/comments"),
                token=token.access_token,
                keys=((DATA_KEY, WRITE_UNITS),),
                params={"part": "snippet"},
                json={"snippet": {"parentId": parent, "textOriginal": text}},
                creates=True,
            )
        except PublishRejected as exc:
            raise PublishRejected(f"YouTube refused the reply ({exc.reason}).") from None
        sent = as_dict(body)
        reply_id = sent.get("id")
        if not isinstance(reply_id, str) or not reply_id:
            raise OutcomeUnknown("youtube: the reply was accepted without its id")
        return SentReply(
            reply_id,
            _comment_link(item.thread_external_id, reply_id),
            _when(sub(sent, "snippet").get("publishedAt")) or utcnow(),
        )

    async def find_reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, since: datetime
    ) -> SentReply | None:
        parent = item.parent_external_id or item.external_id
        floor = since - CLOCK_SLACK
        for reply in await self._replies(token.access_token, parent):
            snippet = sub(reply, "snippet")
            when = _when(snippet.get("publishedAt"))
            if (
                sub(snippet, "authorChannelId").get("value") == external_id
                and snippet.get("textOriginal", snippet.get("textDisplay")) == text
                and when is not None
                and when >= floor
                and isinstance(reply.get("id"), str)
            ):
                return SentReply(
                    reply["id"], _comment_link(item.thread_external_id, reply["id"]), when
                )
        return None

    async def moderate(
        self, token: TokenSet, external_id: str, item: ItemRef, action: Moderation
    ) -> None:
        """hide = held for review, unhide = published; delete removes the channel's own
        comment and rejects anyone else's (only its author may delete a comment)."""
        if action is Moderation.delete and item.author_id == external_id:
            method, params = "DELETE", {"id": item.external_id}
            path = f"{DATA}/comments"
        else:
            status = {
                Moderation.hide: "heldForReview",
                Moderation.unhide: "published",
                Moderation.delete: "rejected",
            }[action]
            method, params = "POST", {"id": item.external_id, "moderationStatus": status}
            path = f"{DATA}/comments/setModerationStatus"
        try:
            await self._request(
                method,
                self.url(path),
                token=token.access_token,
                keys=((DATA_KEY, WRITE_UNITS),),
                params=params,
            )
        except RequestRejected as exc:
            raise PublishRejected(f"YouTube refused to {action.value} it ({exc.reason}).") from None


def _comment_link(video_id: str | None, comment_id: str) -> str | None:
    return f"{WATCH}{video_id}&lc={comment_id}" if video_id else None


def _comment_item(channel: str, comment: Json, video_id: Json) -> InboundItem | None:
    """A comment resource as an inbox item (None when it lacks its id, author or time)."""
    snippet = sub(comment, "snippet")
    comment_id = comment.get("id") if isinstance(comment, dict) else None
    author = sub(snippet, "authorChannelId").get("value")
    when = _when(snippet.get("publishedAt"))
    if not isinstance(comment_id, str) or not isinstance(author, str) or when is None:
        return None
    parent = snippet.get("parentId")
    text = snippet.get("textOriginal", snippet.get("textDisplay"))
    name = snippet.get("authorDisplayName")
    video = snippet.get("videoId") or video_id
    return InboundItem(
        account_external_id=channel,
        external_id=comment_id,
        kind=InboxKind.reply if isinstance(parent, str) else InboxKind.comment,
        text=text if isinstance(text, str) else "",
        author_id=author,
        created_at=when,
        author_name=name if isinstance(name, str) and name else None,
        parent_external_id=parent if isinstance(parent, str) else None,
        thread_external_id=video if isinstance(video, str) else None,
        hidden=None,
        from_account=author == channel,
    )


def _fingerprint(draft: PostDraft, video: MediaFile) -> str:
    """What a session was opened for: its metadata is fixed then, so another title, text or
    file size needs another session."""
    what = f"{video_title(draft)}\x00{draft.text}\x00{video.size}"
    return hashlib.sha256(what.encode()).hexdigest()[:16]


def _failed(video: dict[str, Json]) -> bool:
    return sub(video, "status").get("uploadStatus") in {"failed", "rejected"}


def _published(video: dict[str, Json]) -> PublishedPost:
    status = sub(video, "status")
    if _failed(video):
        why = status.get("failureReason") or status.get("rejectionReason") or "no reason given"
        raise PublishRejected(
            f"YouTube could not process the video ({why}); check the file and publish again.",
            code="media_rejected",
        )
    video_id = video.get("id")
    if not isinstance(video_id, str) or not video_id:
        raise OutcomeUnknown("youtube: the upload ended without a video id")
    published = _when(sub(video, "snippet").get("publishedAt")) or utcnow()
    return PublishedPost(video_id, WATCH + video_id, published)
