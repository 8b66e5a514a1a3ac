"""X (Twitter) accounts, through API v2.

X keeps no daily history for an account: the figures of a day are those of the posts
published that day (``/2/users/{id}/tweets``, their lifetime ``public_metrics``), and the
follower count is only today's (the profile). Impressions = ``impression_count``, engagements
= likes + reposts + replies + quotes.

Budget: ``x`` (the app) and ``x:token:<sha256(token)[:16]>`` (the user: with OAuth 2 user
context X counts per user) before every request. ``x-rate-limit-remaining: 0`` pauses the
token's key until ``x-rate-limit-reset``; a 429 does the same (or Retry-After when sent).
Refresh tokens rotate: each refresh answers a new one and voids the old.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

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
from social.connectors.types import DailyMetrics, Platform, Profile, TokenSet

API = "https://api.x.com/2"
PAGE_SIZE = 100
MAX_PAGES = 32  # X serves a user's last 3,200 posts at most
END_MARGIN = timedelta(seconds=30)
"""X refuses an end_time less than 10 s before the request."""
ENGAGEMENT_FIELDS = ("like_count", "retweet_count", "reply_count", "quote_count")


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class XConnector(HttpConnector):
    platform = Platform.x
    real_authorize_url = "https://x.com/i/oauth2/authorize"
    real_token_url = f"{API}/oauth2/token"
    scopes: tuple[str, ...] = ("tweet.read", "users.read", "offline.access")
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
