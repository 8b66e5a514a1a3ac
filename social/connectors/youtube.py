"""YouTube channels: the Data API for the channel and its uploads, YouTube Analytics for
daily figures (one report per metric of ours, so that one refused metric fails alone).

Budget, in quota units: ``youtube`` (the Data API's daily quota) takes 1 unit per
channels.list and per playlistItems.list page, their real cost; ``youtube:analytics`` (the
Analytics API's separate quota) 1 per report. 403 ``quotaExceeded`` / ``dailyLimitExceeded``
pauses the key until the quota resets, at midnight Pacific time; 403
``rateLimitExceeded``/``userRateLimitExceeded`` and 429 pause it for Retry-After or 60 s.

Google answers no refresh token on refresh (the first one stays valid), and only gives one
at all with ``access_type=offline``; ``prompt=consent`` makes a reconnect give one again.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import date, datetime, timedelta
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
    midnight,
    missing,
    retry_after_seconds,
    sub,
)
from social.connectors.types import DailyMetrics, Platform, Profile, TokenSet

DATA = "https://www.googleapis.com/youtube/v3"
ANALYTICS = "https://youtubeanalytics.googleapis.com/v2"
PACIFIC = ZoneInfo("America/Los_Angeles")
DATA_KEY = "youtube"
ANALYTICS_KEY = "youtube:analytics"
UNITS = {"channels": 1.0, "playlistItems": 1.0}
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
        "https://www.googleapis.com/auth/yt-analytics.readonly",
    )

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
