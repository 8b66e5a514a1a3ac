"""TikTok accounts, through the Display API (``open.tiktokapis.com/v2``).

TikTok keeps no daily history for an account: a day's figures are those of the videos
published that day (``POST /v2/video/list/``, their lifetime counts): video views =
``view_count``, engagements = likes + comments + shares. The follower count is only today's
(``/v2/user/info/``, the profile).

TikTok calls the client id ``client_key`` (authorize, token and refresh requests) and joins
scopes with commas. Budget: ``tiktok`` before every request; 429 / ``rate_limit_exceeded``
pauses it for Retry-After or 60 s. Refresh tokens rotate (the answer's is the one to keep).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import httpx

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
)
from social.connectors.types import (
    DailyMetrics,
    Platform,
    PlatformUnavailable,
    Profile,
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


class TikTokConnector(HttpConnector):
    platform = Platform.tiktok
    real_authorize_url = "https://www.tiktok.com/v2/auth/authorize/"
    real_token_url = f"{API}/oauth/token/"
    scopes: tuple[str, ...] = (
        "user.info.basic",
        "user.info.profile",
        "user.info.stats",
        "video.list",
    )
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
