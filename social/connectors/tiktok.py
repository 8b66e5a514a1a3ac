"""TikTok accounts, through the Display API (``open.tiktokapis.com/v2``).

TikTok keeps no daily history for an account: a day's figures are those of the videos
published that day (``POST /v2/video/list/``, their lifetime counts): video views =
``view_count``, engagements = likes + comments + shares. The follower count is only today's
(``/v2/user/info/``, the profile).

TikTok calls the client id ``client_key`` (authorize, token and refresh requests) and joins
scopes with commas. Budget: ``tiktok`` before every request; 429 / ``rate_limit_exceeded``
pauses it for Retry-After or 60 s. Refresh tokens rotate (the answer's is the one to keep).

Publishing is the Content Posting API's direct post of one video. `prepare` reads the creator's
info (the privacy levels it may post with, its longest video) and refuses when the creator
cannot post. `create` inits the post, remembers its publish id at once, uploads the chunks to
the answer's upload URL and follows the publish id's status to ``PUBLISH_COMPLETE``. Nothing is
posted until the last chunk is in (a FILE_UPLOAD post needs its bytes, and only the init's
answer carries the URL to send them to), so an init or a chunk before the last that gets no
answer is a plain failure worth retrying; from the last chunk on, the outcome may be a post.
The init is limited to 6 a minute per user token: it takes from the token's own budget key
(``tiktok:init:token:<hash>``), which a 429 on it pauses.

Inbox, through the API for Business (``business-api.tiktok.com/open_api/v1.3/business``, the
token in ``Access-Token``, errors as a 200 with a non-zero ``code``): `fetch_items` lists the
account's latest videos (Display API) and each one's ``/comment/list/`` with replies and
hidden comments (``status`` says which); `reply` is ``/comment/reply/create/`` (one level
deep); `moderate` is ``/comment/hide/`` (HIDE/UNHIDE), and ``/comment/delete/`` for the
account's own comments only. No private replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from infra.clock import utcnow
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
    Remember,
    SentReply,
    TokenInvalid,
    TokenSet,
)

API = "https://open.tiktokapis.com/v2"
PAGE_SIZE = 20  # TikTok's maximum
MAX_PAGES = 60
VIDEO_FIELDS = "id,create_time,view_count,like_count,comment_count,share_count"
TOKEN_CODES = frozenset({"access_token_invalid"})
RATE_CODES = frozenset({"rate_limit_exceeded"})
TRANSIENT_CODES = frozenset({"internal_error"})
INIT_KEY = "tiktok:init"
MIB = 1024 * 1024
CHUNK = 10 * MIB
"""TikTok takes chunks of 5 to 64 MB, the last one up to 128 MB."""
POLL_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 15.0)
"""How long `create` follows the status after the upload (about a minute); past that the
post is looked for by reconciliation."""
PRIVACY_PREFERENCE = ("PUBLIC_TO_EVERYONE", "FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS")
"""The widest audience the creator offers; a creator that can only post to itself is refused."""
QUOTA_CODES = frozenset({"spam_risk_too_many_posts", "reached_active_user_cap"})
FIND_PAGES = 5
CLOCK_SLACK = timedelta(minutes=2)
BUSINESS = "https://business-api.tiktok.com/open_api/v1.3/business"
"""TikTok API for Business: a Business account's comments (list, reply, hide, delete)."""
BUSINESS_TOKEN_CODES = frozenset({40104, 40105})
BUSINESS_RATE_CODES = frozenset({40100})
INBOX_VIDEOS = 20
"""Polling reads the comments of the account's latest videos."""
COMMENT_PAGE = 30
COMMENT_PAGES = 10
"""create_time has whole seconds, and the platform's clock is not ours."""


def chunk_plan(size: int) -> tuple[int, int]:
    """(chunk_size, total_chunk_count) by TikTok's rules: one piece up to twice CHUNK, else
    CHUNK-sized chunks whose count rounds down, the last one taking the rest."""
    if size < 2 * CHUNK:
        return size, 1
    return CHUNK, size // CHUNK


def _the_video(draft: PostDraft) -> MediaFile:
    videos = [m for m in draft.media if m.kind == "video"]
    if len(videos) != 1 or len(draft.media) != 1:
        raise PublishRejected(
            "TikTok direct posts carry exactly one video: attach one video and nothing else."
        )
    return videos[0]


def _refusal(reason: str) -> PublishRejected:
    """PublishRejected for TikTok's refusal (`reason` starts with its error code)."""
    code = reason.split(":", 1)[0].strip()
    if code in QUOTA_CODES:
        return PublishRejected(
            "TikTok: this account reached its daily number of posts through apps; "
            "publish again tomorrow.",
            code="quota_spent",
        )
    if code == "spam_risk_user_banned_from_posting":
        return PublishRejected(
            "TikTok: this account may not post for now; check it in the TikTok app."
        )
    return PublishRejected(f"TikTok refused the post ({reason}).")


class TikTokConnector(HttpConnector):
    platform = Platform.tiktok
    real_authorize_url = "https://www.tiktok.com/v2/auth/authorize/"
    real_token_url = f"{API}/oauth/token/"
    real_revoke_url = f"{API}/oauth/revoke/"
    scopes: tuple[str, ...] = (
        "user.info.basic",
        "user.info.profile",
        "user.info.stats",
        "video.list",
        "video.publish",
        # The API for Business's comment management.
        "comment.list",
        "comment.list.manage",
    )
    can_reply_privately = False
    moderations = frozenset({Moderation.hide, Moderation.unhide})
    """A Business account hides others' comments; it deletes only its own."""
    scope_separator = ","

    def _extra_authorize_params(self) -> dict[str, str]:
        return {"client_key": self._client_id}

    def _extra_token_params(self) -> dict[str, str]:
        return {"client_key": self._client_id}

    def _client_credentials(self) -> dict[str, str]:
        return {"client_key": self._client_id, "client_secret": self._client_secret}

    async def _check(
        self,
        response: httpx.Response,
        body: Json,
        *,
        token: str | None,
        keys: Keys,
        hidden: Sequence[str],
    ) -> None:
        business = body.get("code") if isinstance(body, dict) and "request_id" in body else None
        if isinstance(business, int) and business != 0:
            await self._business_refusal(response, body, business, keys=keys, hidden=hidden)
        error = sub(body, "error")
        code = error.get("code")
        if isinstance(code, str) and code != "ok":
            reason = self._scrub(f"{code}: {error.get('message') or ''}".rstrip(": "), hidden)
            if code in TOKEN_CODES or response.status_code == 401:
                raise TokenInvalid(f"{self.key}: the platform refused the token ({reason})")
            if code in RATE_CODES or response.status_code == 429:
                wait = retry_after_seconds(
                    response.headers.get("Retry-After"), self.default_retry_after
                )
                await self._limited(self._limit_key(keys), wait, reason)
            if code in TRANSIENT_CODES or response.status_code >= 500:
                raise PlatformUnavailable(f"{self.key}: {reason}")
            raise RequestRejected(reason)
        await super()._check(response, body, token=token, keys=keys, hidden=hidden)

    async def _business_refusal(
        self, response: httpx.Response, body: Json, code: int, *, keys: Keys, hidden: Sequence[str]
    ) -> None:
        """The API for Business answers 200 with its own code: 40100 too many requests,
        40104/40105 a bad token, 5xxxx its own failures."""
        reason = self._scrub(f"{code}: {body.get('message') or ''}".rstrip(": "), hidden)
        if code in BUSINESS_TOKEN_CODES:
            raise TokenInvalid(f"{self.key}: the platform refused the token ({reason})")
        if code in BUSINESS_RATE_CODES:
            wait = retry_after_seconds(
                response.headers.get("Retry-After"), self.default_retry_after
            )
            await self._limited(self._limit_key(keys), wait, reason)
        if code >= 50000:
            raise PlatformUnavailable(f"{self.key}: {reason}")
        raise RequestRejected(reason)

    def _limit_key(self, keys: Keys) -> str:
        # The init's 429 is about its user token: pause that key, not the whole platform.
        return keys[-1][0] if keys else self.key

    async def _call(
        self, method: str, path: str, token: str, fields: str, json: Json = None
    ) -> dict[str, Json]:
        body = as_dict(
            await self._request(
                method,
                self.url(API + path),
                token=token,
                keys=((self.key, 1.0),),
                params={"fields": fields},
                json=json,
            )
        )
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    async def profile(self, token: TokenSet, external_id: str | None) -> Profile:
        data = await self._call(
            "GET",
            "/user/info/",
            token.access_token,
            "open_id,union_id,display_name,username,follower_count",
        )
        user = data.get("user")
        if not isinstance(user, dict) or not user.get("open_id"):
            raise RequestRejected("no user in the answer")
        if external_id is not None and user["open_id"] != external_id:
            raise RequestRejected("the token is for another TikTok account")
        return Profile(
            external_id=str(user["open_id"]),
            handle=user.get("username") or None,
            display_name=user.get("display_name") or None,
            followers=as_int(user.get("follower_count")),
        )

    async def _videos(self, token: str, since: date, until: date) -> Parts:
        tally = Tally(since, until, ("posts_published", "video_views", "engagements"))
        oldest = midnight(since).timestamp()
        cursor: int | None = None
        for _ in range(MAX_PAGES):
            request: dict[str, int] = {"max_count": PAGE_SIZE}
            if cursor is not None:
                request["cursor"] = cursor
            data = await self._call("POST", "/video/list/", token, VIDEO_FIELDS, request)
            reached_older = False
            for video in as_list(data.get("videos")):
                created = as_int(video.get("create_time")) if isinstance(video, dict) else None
                if created is None:
                    continue
                reached_older = reached_older or created < oldest
                day = datetime.fromtimestamp(created, UTC).date()
                tally.add(day, "posts_published", 1)
                tally.add_fields(day, "video_views", video, ("view_count",))
                tally.add_fields(
                    day, "engagements", video, ("like_count", "comment_count", "share_count")
                )
            cursor = as_int(data.get("cursor"))
            if reached_older or data.get("has_more") is not True or cursor is None:
                break
        return tally.parts()

    async def daily_metrics(
        self, token: TokenSet, external_id: str, since: date, until: date
    ) -> DailyMetrics:
        names = ("posts_published", "video_views", "engagements")
        got = await gather([(names, self._videos(token.access_token, since, until))])
        out = Assembly(since, until)
        for name in names:
            out.series(name, got[name])
        return out.done()

    # --- publishing

    def resumable(self, state: dict[str, Any]) -> bool:
        return False  # a second init would be a second post

    async def _publish_api(
        self, path: str, token: str, json: Json, keys: Keys | None = None
    ) -> dict[str, Json]:
        """A Content Posting API call; its `data` object."""
        body = await self._request(
            "POST",
            self.url(API + path),
            token=token,
            keys=keys if keys is not None else ((self.key, 1.0),),
            json=json,
        )
        return sub(as_dict(body), "data")

    async def prepare(
        self, token: TokenSet, external_id: str, draft: PostDraft, state: dict[str, Any]
    ) -> dict[str, Any]:
        video = _the_video(draft)
        try:
            info = await self._publish_api(
                "/post/publish/creator_info/query/", token.access_token, {}
            )
        except RequestRejected as exc:
            raise _refusal(exc.reason) from None
        offered = [o for o in as_list(info.get("privacy_level_options")) if isinstance(o, str)]
        privacy = next((p for p in PRIVACY_PREFERENCE if p in offered), None)
        if privacy is None:
            raise PublishRejected(
                "TikTok: this account can only post videos that nobody else sees (a private "
                "account, or an app TikTok has not audited yet); make it public to publish."
            )
        longest = as_int(info.get("max_video_post_duration_sec"))
        if video.duration is not None and longest is not None and video.duration > longest:
            raise PublishRejected(
                f"TikTok: the video lasts {video.duration:.0f} s and this account posts videos "
                f"of at most {longest} s; shorten it.",
                code="media_rejected",
            )
        username = info.get("creator_username")
        return {
            **state,
            "privacy_level": privacy,
            "username": username if isinstance(username, str) else None,
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
        at = token.access_token
        username = state.get("username")
        earlier = state.get("publish_id")
        if isinstance(earlier, str):
            done = await self._earlier(at, earlier, video, username)
            if done is not None:
                return done
        privacy = state.get("privacy_level")
        if not isinstance(privacy, str):
            raise PublishRejected("TikTok: the post was not prepared; publish it again.")
        chunk_size, count = chunk_plan(video.size)
        request = {
            "post_info": {
                "title": draft.text,
                "privacy_level": privacy,
                "disable_duet": False,
                "disable_comment": False,
                "disable_stitch": False,
            },
            "source_info": {
                "source": "FILE_UPLOAD",
                "video_size": video.size,
                "chunk_size": chunk_size,
                "total_chunk_count": count,
            },
        }
        keys = ((self.key, 1.0), (token_key(INIT_KEY, at), 1.0))
        try:
            data = await self._publish_api("/post/publish/video/init/", at, request, keys)
        except RequestRejected as exc:
            raise _refusal(exc.reason) from None
        publish_id, upload_url = data.get("publish_id"), data.get("upload_url")
        if not isinstance(publish_id, str) or not isinstance(upload_url, str):
            raise PlatformUnavailable("tiktok: the post was not started (no publish id)")
        await remember({"publish_id": publish_id})
        await self._upload(upload_url, video, chunk_size, count)
        return await self._follow(at, publish_id, username)

    async def _earlier(
        self, token: str, publish_id: str, video: MediaFile, username: Json
    ) -> PublishedPost | None:
        """An earlier attempt's post if it went through; None when it surely cannot (failed,
        or its upload never finished); OutcomeUnknown while it may still."""
        try:
            data = await self._status(token, publish_id)
        except RequestRejected:
            return None  # TikTok no longer knows it
        except ConnectorError:
            raise OutcomeUnknown("tiktok: the earlier attempt's status could not be read") from None
        status = data.get("status")
        if status == "PUBLISH_COMPLETE" and (post := _post(data, username)) is not None:
            return post
        if status == "FAILED":
            return None
        uploaded = as_int(data.get("uploaded_bytes"))
        if status == "PROCESSING_UPLOAD" and uploaded is not None and uploaded < video.size:
            return None
        raise OutcomeUnknown("tiktok: an earlier attempt of this post is still being processed")

    async def _upload(self, upload_url: str, video: MediaFile, chunk_size: int, count: int) -> None:
        """The chunks in order, one in memory at a time. Only the last can make the post."""
        with video.path.open("rb") as handle:
            for index in range(count):
                start = index * chunk_size
                last = index == count - 1
                length = video.size - start if last else chunk_size
                block = handle.read(length)
                if len(block) != length:
                    raise PublishRejected(
                        "TikTok: the video file is shorter than its announced size."
                    )
                try:
                    await self._request(
                        "PUT",
                        self.url(upload_url),
                        token=None,
                        keys=(),
                        headers={
                            "Content-Range": f"bytes {start}-{start + length - 1}/{video.size}",
                            "Content-Type": video.content_type,
                        },
                        content=block,
                        creates=last,
                        secrets=(upload_url,),
                    )
                except (RequestRejected, PublishRejected) as exc:
                    raise PublishRejected(
                        f"TikTok refused the video upload ({exc.reason}); check the file and "
                        "publish again.",
                        code="media_rejected",
                    ) from None

    async def _follow(self, token: str, publish_id: str, username: Json) -> PublishedPost:
        """The status until the post is public, fails, or we stop waiting (OutcomeUnknown:
        reconciliation looks for it by its publish id)."""
        for delay in (0.0, *POLL_DELAYS):
            await asyncio.sleep(delay)
            try:
                data = await self._status(token, publish_id)
            except ConnectorError:
                continue  # the video is in: only its status is late
            status = data.get("status")
            if status == "FAILED":
                reason = str(data.get("fail_reason") or "no reason given")
                if reason in QUOTA_CODES:
                    raise _refusal(reason)
                raise PublishRejected(
                    f"TikTok could not publish the video ({reason}); check the file and "
                    "publish again.",
                    code="media_rejected",
                )
            if status == "PUBLISH_COMPLETE" and (post := _post(data, username)) is not None:
                return post
        raise OutcomeUnknown("tiktok: the video was sent and is still being processed")

    async def _status(self, token: str, publish_id: str) -> dict[str, Json]:
        return await self._publish_api(
            "/post/publish/status/fetch/", token, {"publish_id": publish_id}
        )

    async def find(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        since: datetime,
    ) -> PublishedPost | None:
        at = token.access_token
        publish_id = state.get("publish_id")
        if isinstance(publish_id, str):
            try:
                data = await self._status(at, publish_id)
            except RequestRejected:
                data = {}  # unknown to TikTok now: look through the videos instead
            if data:
                if data.get("status") == "PUBLISH_COMPLETE":
                    return _post(data, state.get("username"))
                return None
        floor = (since - CLOCK_SLACK).timestamp()
        cursor: int | None = None
        for _ in range(FIND_PAGES):
            request: dict[str, int] = {"max_count": PAGE_SIZE}
            if cursor is not None:
                request["cursor"] = cursor
            data = await self._call(
                "POST",
                "/video/list/",
                at,
                "id,create_time,title,video_description,share_url",
                request,
            )
            for video in as_list(data.get("videos")):
                created = as_int(video.get("create_time")) if isinstance(video, dict) else None
                if created is None:
                    continue
                if created < floor:
                    return None
                if draft.text in (video.get("video_description"), video.get("title")):
                    share = video.get("share_url")
                    return PublishedPost(
                        str(video.get("id")),
                        share if isinstance(share, str) else None,
                        datetime.fromtimestamp(created, UTC),
                    )
            cursor = as_int(data.get("cursor"))
            if data.get("has_more") is not True or cursor is None:
                return None
        return None

    async def post_figures(self, token: TokenSet, external_id: str, post_id: str) -> PostFigures:
        """The video's lifetime counts; TikTok gives no impressions or reach here."""
        data = await self._call(
            "POST",
            "/video/query/",
            token.access_token,
            "id,view_count,like_count,comment_count,share_count",
            {"filters": {"video_ids": [post_id]}},
        )
        videos = [v for v in as_list(data.get("videos")) if isinstance(v, dict)]
        if not videos:
            raise RequestRejected("tiktok: the video is gone or no longer visible")
        video = videos[0]
        counts = [as_int(video.get(f)) for f in ("like_count", "comment_count", "share_count")]
        counted = [n for n in counts if n is not None]
        return PostFigures(
            engagements=sum(counted) if counted else None,
            video_views=as_int(video.get("view_count")),
        )

    # --- the community inbox

    async def _business(
        self,
        method: str,
        path: str,
        token: str,
        *,
        params: dict[str, str] | None = None,
        json: Json = None,
        creates: bool = False,
    ) -> dict[str, Json]:
        """One API for Business call (its token goes in ``Access-Token``); its `data`."""
        body = as_dict(
            await self._request(
                method,
                self.url(BUSINESS + path),
                token=None,
                keys=((self.key, 1.0),),
                params=params,
                json=json,
                headers={"Access-Token": token},
                secrets=(token,),
                creates=creates,
            )
        )
        return sub(body, "data")

    async def _comments(self, token: str, business_id: str, video_id: str) -> list[Json]:
        out: list[Json] = []
        cursor = 0
        for _ in range(COMMENT_PAGES):
            data = await self._business(
                "GET",
                "/comment/list/",
                token,
                params={
                    "business_id": business_id,
                    "video_id": video_id,
                    "include_replies": "true",
                    "status": "ALL",
                    "sort_field": "create_time",
                    "sort_order": "desc",
                    "cursor": str(cursor),
                    "max_count": str(COMMENT_PAGE),
                },
            )
            out.extend(as_list(data.get("comments")))
            cursor = as_int(data.get("cursor")) or 0
            if not data.get("has_more") or not cursor:
                break
        return out

    async def fetch_items(
        self, token: TokenSet, external_id: str, since: datetime | None
    ) -> list[InboundItem]:
        """Comments and replies on the account's latest videos (TikTok lists comments per
        video only), hidden ones included with `hidden` said."""
        at = token.access_token
        videos = await self._call(
            "POST", "/video/list/", at, "id,create_time", json={"max_count": PAGE_SIZE}
        )
        found: dict[str, InboundItem] = {}
        for video in as_list(videos.get("videos"))[:INBOX_VIDEOS]:
            video_id = video.get("id") if isinstance(video, dict) else None
            if not isinstance(video_id, str):
                continue
            for comment in await self._comments(at, external_id, video_id):
                item = _comment_item(external_id, comment, video_id)
                if item is not None and (since is None or item.created_at >= since):
                    found[item.external_id] = item
        return sorted(found.values(), key=lambda i: i.created_at)

    async def reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, *, private: bool
    ) -> SentReply:
        if private:
            raise PublishRejected("TikTok has no private replies to comments.")
        if not item.thread_external_id:
            raise PublishRejected("TikTok: the comment's video is unknown; it cannot be answered.")
        try:
            data = await self._business(
                "POST",
                "/comment/reply/create/",
                token.access_token,
                json={
                    "business_id": external_id,
                    "video_id": item.thread_external_id,
                    # One level of replies: an answer to a reply goes under its comment.
                    "comment_id": item.parent_external_id or item.external_id,
                    "text": text,
                },
                creates=True,
            )
        except PublishRejected as exc:
            raise PublishRejected(f"TikTok refused the reply ({exc.reason}).") from None
        reply_id = data.get("comment_id")
        if not isinstance(reply_id, str) or not reply_id:
            raise OutcomeUnknown(f"{self.key}: the reply was accepted without its id")
        created = as_int(data.get("create_time"))
        return SentReply(
            reply_id,
            None,
            datetime.fromtimestamp(created, UTC) if created else utcnow(),
        )

    async def find_reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, since: datetime
    ) -> SentReply | None:
        if not item.thread_external_id:
            return None
        top = item.parent_external_id or item.external_id
        floor = since - CLOCK_SLACK
        for comment in await self._comments(
            token.access_token, external_id, item.thread_external_id
        ):
            found = _comment_item(external_id, comment, item.thread_external_id)
            if (
                found is not None
                and found.from_account
                and found.parent_external_id == top
                and found.text == text
                and found.created_at >= floor
            ):
                return SentReply(found.external_id, None, found.created_at)
        return None

    async def moderate(
        self, token: TokenSet, external_id: str, item: ItemRef, action: Moderation
    ) -> None:
        if action is Moderation.delete and item.author_id != external_id:
            raise PublishRejected(
                "TikTok lets an account delete only its own comments; hide it instead."
            )
        if action is Moderation.delete:
            path = "/comment/delete/"
            body: dict[str, Json] = {"business_id": external_id, "comment_id": item.external_id}
        else:
            path = "/comment/hide/"
            body = {
                "business_id": external_id,
                "video_id": item.thread_external_id,
                "comment_id": item.external_id,
                "action": "HIDE" if action is Moderation.hide else "UNHIDE",
            }
        try:
            await self._business("POST", path, token.access_token, json=body)
        except RequestRejected as exc:
            raise PublishRejected(f"TikTok refused to {action.value} it ({exc.reason}).") from None


def _comment_item(account: str, comment: Json, video_id: str) -> InboundItem | None:
    if not isinstance(comment, dict):
        return None
    comment_id, author = comment.get("comment_id"), comment.get("user_id")
    created = as_int(comment.get("create_time"))
    if not isinstance(comment_id, str) or not isinstance(author, str) or created is None:
        return None
    parent = comment.get("parent_comment_id")
    text, handle, name = comment.get("text"), comment.get("username"), comment.get("display_name")
    return InboundItem(
        account_external_id=account,
        external_id=comment_id,
        kind=InboxKind.reply if isinstance(parent, str) and parent else InboxKind.comment,
        text=text if isinstance(text, str) else "",
        author_id=author,
        created_at=datetime.fromtimestamp(created, UTC),
        author_handle=handle if isinstance(handle, str) and handle else None,
        author_name=name if isinstance(name, str) and name else None,
        parent_external_id=parent if isinstance(parent, str) and parent else None,
        thread_external_id=video_id,
        hidden=comment.get("status") == "HIDDEN",
        from_account=comment.get("owner") is True or author == account,
    )


def _post(data: dict[str, Json], username: Json) -> PublishedPost | None:
    """The public post of a PUBLISH_COMPLETE status (None until TikTok gives its id)."""
    ids = [i for i in as_list(data.get("publicaly_available_post_id")) if as_int(i) is not None]
    if not ids:
        return None
    post_id = str(ids[0])
    permalink = (
        f"https://www.tiktok.com/@{username}/video/{post_id}" if isinstance(username, str) else None
    )
    return PublishedPost(post_id, permalink, utcnow())
