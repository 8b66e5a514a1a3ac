"""Facebook Pages and Instagram professional accounts, through the Graph API (v21.0).

Every insight metric is its own request: Meta retires metrics every few versions, and a
retired one answers "(#100) The value must be a valid insights metric" for the whole request.
Daily values come with ``end_time`` = the end of the day at midnight Pacific time.

Budget: ``<platform>`` before every request (the app's calls, which ``X-App-Usage`` reports)
and ``<platform>:<object id>`` (the Page's or Instagram account's own calls, which
``X-Business-Use-Case-Usage`` reports). Near a ceiling (80 % and more) the key is paused, the
longer the closer (30 s at 80 %, 5 min at 99 %, 15 min past it), or for
``estimated_time_to_regain_access`` minutes when Meta says. Error code 190 (and 102) is a dead
token; 4 (app), 17, 32, 613 and 80001-80014 are rate limits.

Tokens: Meta has no refresh tokens. ``refresh(token)`` takes the current, still valid access
token and trades it for a new long-lived one (``grant_type=fb_exchange_token``); the result
carries the new token as its ``refresh_token`` too, so it can be refreshed the same way next
time (``refresh_uses_access_token``).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

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
    chunks,
    combine,
    gather,
    midnight,
    sub,
    utc_today,
)
from social.connectors.types import (
    DailyMetrics,
    Platform,
    PlatformUnavailable,
    Profile,
    TokenInvalid,
    TokenSet,
)

GRAPH = "https://graph.facebook.com/v21.0"
PACIFIC = ZoneInfo("America/Los_Angeles")
USAGE_CEILING = 80.0
TOKEN_CODES = frozenset({102, 190})
APP_RATE_CODES = frozenset({4})
RATE_CODES = frozenset({4, 17, 32, 613, *range(80001, 80015)})
TRANSIENT_CODES = frozenset({1, 2})
MAX_PAGES = 50


def usage_pause(percent: float) -> float:
    """Seconds to hold off at `percent` of one of Meta's ceilings (0 below 80 %)."""
    if percent < USAGE_CEILING:
        return 0.0
    if percent >= 100:
        return 900.0
    return 30.0 + (percent - USAGE_CEILING) / 19.0 * 270.0


def _percent(entry: Json) -> float | None:
    if not isinstance(entry, dict):
        return None
    values = [
        float(v)
        for k in ("call_count", "total_cputime", "total_time")
        if isinstance(v := entry.get(k), int | float) and not isinstance(v, bool)
    ]
    return max(values) if values else None


def _header_json(response: httpx.Response, name: str) -> Json:
    raw = response.headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def business_usage(response: httpx.Response) -> list[tuple[str, float, float]]:
    """(object id, percent used, minutes until access comes back) per X-Business-Use-Case-
    Usage entry."""
    usage = _header_json(response, "x-business-use-case-usage")
    out: list[tuple[str, float, float]] = []
    if not isinstance(usage, dict):
        return out
    for object_id, entries in usage.items():
        for entry in as_list(entries):
            percent = _percent(entry) or 0.0
            regain = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else 0
            minutes = float(regain) if isinstance(regain, int | float) else 0.0
            out.append((str(object_id), percent, minutes))
    return out


def meta_day(end_time: str) -> date:
    """The day a Graph value is for: its end_time is that day's end at midnight Pacific."""
    end = datetime.strptime(end_time, "%Y-%m-%dT%H:%M:%S%z").astimezone(PACIFIC)
    return end.date() - timedelta(days=1)


def graph_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


class MetaConnector(HttpConnector):
    real_authorize_url = "https://www.facebook.com/v21.0/dialog/oauth"
    real_token_url = f"{GRAPH}/oauth/access_token"
    scope_separator = ","
    refresh_uses_access_token = True
    default_retry_after = 300.0
    insight_days = 93
    """The longest since..until span Graph accepts for one insights request."""

    def _keys(self, object_id: str | None) -> Keys:
        if object_id is None:
            return ((self.key, 1.0),)
        return ((self.key, 1.0), (f"{self.key}:{object_id}", 1.0))

    def _limit_key(self, keys: Keys) -> str:
        return keys[-1][0] if keys else self.key

    async def _get(
        self, path: str, token: str, object_id: str | None, params: dict[str, str]
    ) -> dict[str, Json]:
        body = await self._request(
            "GET", self.url(GRAPH + path), token=token, keys=self._keys(object_id), params=params
        )
        return as_dict(body)

    async def _observe(
        self, response: httpx.Response, body: Json, *, token: str | None, keys: Keys
    ) -> None:
        app = _percent(_header_json(response, "x-app-usage"))
        if app is not None and (wait := usage_pause(app)):
            await self._budget.pause(self.key, wait)
        for object_id, percent, minutes in business_usage(response):
            wait = minutes * 60 if minutes > 0 else usage_pause(percent)
            if wait:
                await self._budget.pause(f"{self.key}:{object_id}", wait)

    async def _check(
        self,
        response: httpx.Response,
        body: Json,
        *,
        token: str | None,
        keys: Keys,
        hidden: Sequence[str],
    ) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = as_int(error.get("code"))
            reason = self._scrub(f"code {code}: {error.get('message') or 'no details'}", hidden)
            if code in TOKEN_CODES:
                raise TokenInvalid(f"{self.key}: the platform refused the token ({reason})")
            if code in RATE_CODES:
                minutes = max((m for _, _, m in business_usage(response)), default=0.0)
                wait = minutes * 60 if minutes > 0 else self.default_retry_after
                key = self.key if code in APP_RATE_CODES else self._limit_key(keys)
                await self._limited(key, wait, reason)
            if code in TRANSIENT_CODES or error.get("is_transient") is True:
                raise PlatformUnavailable(f"{self.key}: {reason}")
            if 400 <= response.status_code < 500 and response.status_code != 401:
                raise RequestRejected(reason)
        await super()._check(response, body, token=token, keys=keys, hidden=hidden)

    async def refresh(self, refresh_token: str) -> TokenSet:
        """`refresh_token` is the current access token (Meta has no refresh tokens)."""
        data = {"grant_type": "fb_exchange_token", "fb_exchange_token": refresh_token}
        tokens = await self._token_call(data, keep=None)
        return replace(tokens, refresh_token=tokens.access_token)

    # --- shared fetches

    async def _insight(
        self, token: str, object_id: str, metric: str, since: date, until: date
    ) -> Parts:
        series: Series = {}
        for start, end in chunks(since, until, self.insight_days):
            params = {
                "metric": metric,
                "period": "day",
                "since": start.isoformat(),
                "until": (end + timedelta(days=1)).isoformat(),
            }
            body = await self._get(f"/{object_id}/insights", token, object_id, params)
            for entry in as_list(body.get("data")):
                if not isinstance(entry, dict) or entry.get("name") != metric:
                    continue
                for point in as_list(entry.get("values")):
                    if not isinstance(point, dict) or not isinstance(point.get("end_time"), str):
                        continue
                    value = as_int(point.get("value"))
                    if value is not None:
                        series[meta_day(point["end_time"])] = value
        return {metric: series}

    async def _edge(
        self, token: str, object_id: str, edge: str, fields: str, since: date, until: date
    ) -> list[dict[str, Json]]:
        """Every item of a time-bounded edge (published_posts, media), all pages."""
        params = {
            "fields": fields,
            "since": str(int(midnight(since).timestamp())),
            "until": str(int(midnight(until + timedelta(days=1)).timestamp())),
            "limit": "100",
        }
        items: list[dict[str, Json]] = []
        for _ in range(MAX_PAGES):
            body = await self._get(f"/{object_id}/{edge}", token, object_id, params)
            items.extend(i for i in as_list(body.get("data")) if isinstance(i, dict))
            paging = sub(body, "paging")
            after = sub(paging, "cursors").get("after")
            if not paging.get("next") or not isinstance(after, str):
                break
            params = {**params, "after": after}
        return items


class FacebookPageConnector(MetaConnector):
    platform = Platform.facebook_page
    scopes: tuple[str, ...] = ("pages_show_list", "pages_read_engagement", "read_insights")
    INSIGHTS = (
        "page_follows",
        "page_daily_follows_unique",
        "page_daily_unfollows_unique",
        "page_impressions",
        "page_impressions_unique",
        "page_post_engagements",
        "page_video_views",
    )

    async def profile(self, token: TokenSet, external_id: str | None) -> Profile:
        fields = {"fields": "id,name,username,followers_count"}
        if external_id is None:
            body = await self._get("/me/accounts", token.access_token, None, fields)
            pages = [p for p in as_list(body.get("data")) if isinstance(p, dict) and p.get("id")]
            if not pages:
                raise RequestRejected("the token manages no Facebook Page")
            page = pages[0]
        else:
            page = await self._get(f"/{external_id}", token.access_token, external_id, fields)
        return Profile(
            external_id=str(page["id"]),
            handle=page.get("username") or None,
            display_name=page.get("name") or None,
            followers=as_int(page.get("followers_count")),
        )

    async def _post_counts(self, token: str, page_id: str, since: date, until: date) -> Parts:
        tally = Tally(since, until, ("posts_published",))
        posts = await self._edge(token, page_id, "published_posts", "id,created_time", since, until)
        for post in posts:
            if isinstance(post.get("created_time"), str):
                tally.add(graph_time(post["created_time"]).date(), "posts_published", 1)
        return tally.parts()

    async def daily_metrics(
        self, token: TokenSet, external_id: str, since: date, until: date
    ) -> DailyMetrics:
        at = token.access_token
        got = await gather(
            [
                *(
                    ((name,), self._insight(at, external_id, name, since, until))
                    for name in self.INSIGHTS
                ),
                (("posts_published",), self._post_counts(at, external_id, since, until)),
            ]
        )
        out = Assembly(since, until)
        out.series("followers", got["page_follows"])
        out.series(
            "follower_change",
            combine(
                got["page_daily_follows_unique"], got["page_daily_unfollows_unique"], operator.sub
            ),
        )
        out.series("impressions", got["page_impressions"])
        out.series("reach", got["page_impressions_unique"])
        out.series("engagements", got["page_post_engagements"])
        out.series("video_views", got["page_video_views"])
        out.series("posts_published", got["posts_published"])
        return out.done()


class InstagramBusinessConnector(MetaConnector):
    """Instagram's follower history is the daily gain (``follower_count``) of the last 30 days
    only; the total is the profile's ``followers_count``. Engagements are the likes and
    comments of the posts published that day."""

    platform = Platform.instagram_business
    scopes: tuple[str, ...] = (
        "instagram_basic",
        "instagram_manage_insights",
        "pages_show_list",
        "pages_read_engagement",
    )
    insight_days = 30
    follower_days = 30

    async def profile(self, token: TokenSet, external_id: str | None) -> Profile:
        fields = "id,username,name,followers_count,media_count"
        if external_id is None:
            body = await self._get(
                "/me/accounts",
                token.access_token,
                None,
                {"fields": f"id,name,instagram_business_account{{{fields}}}"},
            )
            accounts = [
                p["instagram_business_account"]
                for p in as_list(body.get("data"))
                if isinstance(p, dict) and isinstance(p.get("instagram_business_account"), dict)
            ]
            if not accounts:
                raise RequestRejected("no Page of this token has an Instagram business account")
            user = accounts[0]
        else:
            user = await self._get(
                f"/{external_id}", token.access_token, external_id, {"fields": fields}
            )
        return Profile(
            external_id=str(user["id"]),
            handle=user.get("username") or None,
            display_name=user.get("name") or None,
            followers=as_int(user.get("followers_count")),
        )

    async def _media(self, token: str, user_id: str, since: date, until: date) -> Parts:
        tally = Tally(since, until, ("posts_published", "engagements"))
        fields = "id,timestamp,like_count,comments_count"
        for media in await self._edge(token, user_id, "media", fields, since, until):
            if not isinstance(media.get("timestamp"), str):
                continue
            day = graph_time(media["timestamp"]).date()
            tally.add(day, "posts_published", 1)
            tally.add_fields(day, "engagements", media, ("like_count", "comments_count"))
        return tally.parts()

    async def _follower_gains(self, token: str, user_id: str, since: date, until: date) -> Parts:
        start = max(since, utc_today() - timedelta(days=self.follower_days - 1))
        if start > until:
            return {"follower_count": {}}
        return await self._insight(token, user_id, "follower_count", start, until)

    async def daily_metrics(
        self, token: TokenSet, external_id: str, since: date, until: date
    ) -> DailyMetrics:
        at = token.access_token
        got = await gather(
            [
                (("reach",), self._insight(at, external_id, "reach", since, until)),
                (("impressions",), self._insight(at, external_id, "impressions", since, until)),
                (("follower_count",), self._follower_gains(at, external_id, since, until)),
                (("posts_published", "engagements"), self._media(at, external_id, since, until)),
            ]
        )
        out = Assembly(since, until)
        out.series("follower_change", got["follower_count"])
        out.series("impressions", got["impressions"])
        out.series("reach", got["reach"])
        out.series("engagements", got["engagements"])
        out.series("posts_published", got["posts_published"])
        return out.done()
