"""Facebook pages and Instagram business accounts: the Graph API, its usage headers
(``X-App-Usage``, ``X-Business-Use-Case-Usage``) and its error codes."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from devtools.platforms.core import (
    AccessToken,
    Ctx,
    Dialect,
    Json,
    Reply,
    day_of,
    decode_cursor,
    encode_cursor,
    take_page,
)
from devtools.platforms.figures import (
    Account,
    b64id,
    digit_id,
    midnight_utc,
    today_utc,
)

PACIFIC = ZoneInfo("America/Los_Angeles")
META_APP_CALLS_PER_HOUR = 200_000
"""The app's Graph budget behind X-App-Usage: a 10,000-account benchmark stays well under."""
META_OBJECT_CALLS_PER_HOUR = 4_800


class MetaDialect(Dialect):
    authorize_path = r"/v\d+\.\d+/dialog/oauth"
    token_path = r"/v\d+\.\d+/oauth/access_token"
    routes_spec = (
        ("GET", r"/v\d+\.\d+/me/accounts", "me_accounts"),
        ("GET", r"/v\d+\.\d+/me", "me"),
        ("GET", r"/v\d+\.\d+/([^/]+)/insights", "insights"),
        ("GET", r"/v\d+\.\d+/([^/]+)/(published_posts|posts|media)", "posts"),
        ("GET", r"/v\d+\.\d+/([^/]+)", "node"),
    )
    page = True
    insight_metrics: frozenset[str] = frozenset(
        {
            "page_follows",
            "page_daily_follows_unique",
            "page_daily_unfollows_unique",
            "page_impressions",
            "page_impressions_unique",
            "page_post_engagements",
            "page_video_views",
        }
    )
    max_insight_days = 93

    def _error(self, status: int, code: int, message: str, **extra: Json) -> Reply:
        error = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            **extra,
            "fbtrace_id": b64id(22, time.time(), secrets.token_hex(4)),
        }
        return Reply(status, {"error": error})

    def not_found(self, ctx: Ctx) -> Reply:
        return self._error(400, 2500, "Unknown path components: " + ctx.path)

    def unauthorized(self, why: str) -> Reply:
        return self._error(400, 190, f"Error validating access token: {why}.", error_subcode=463)

    def throttled(self, retry_after: float | None) -> Reply:
        code = 80001 if self.page else 80002
        what = "Page" if self.page else "Instagram"
        reply = self._error(
            400,
            code,
            f"There have been too many calls to this {what} account. Wait a bit "
            "and try again. For more info, please refer to "
            "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
        )
        minutes = max(1, -(-int(retry_after or 60) // 60))
        reply.headers["X-Business-Use-Case-Usage"] = self._buc(
            self.sim._meta_last_object.get(self.platform, "0"), 100, minutes
        )
        return reply

    def server_error(self, status: int) -> Reply:
        reply = self._error(
            status, 1, "An unknown error occurred", error_subcode=99, is_transient=True
        )
        return reply

    def token_error(self, error: str, description: str, status: int = 400) -> Reply:
        code = 191 if error == "invalid_client" else 100
        return self._error(400, code, description, error_subcode=36009)

    def token_body(
        self, access: AccessToken, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        return {
            "access_token": access.value,
            "token_type": "bearer",
            "expires_in": round(access.expires_at - time.time()),
        }

    def _buc(self, object_id: str, percent: int, regain_minutes: int) -> str:
        kind = "pages" if self.page else "instagram"
        entry = {
            "type": kind,
            "call_count": percent,
            "total_cputime": max(0, percent - 3),
            "total_time": max(0, percent - 1),
            "estimated_time_to_regain_access": regain_minutes,
        }
        return json.dumps({object_id: [entry]})

    def before(self, ctx: Ctx, name: str) -> None:
        self.sim._meta_calls[(self.platform, "app", ctx.now // 3600)] += 1
        if ctx.object_id is not None:
            self.sim._meta_calls[(self.platform, ctx.object_id, ctx.now // 3600)] += 1

    def usage_headers(self, ctx: Ctx) -> dict[str, str]:
        hour = ctx.now // 3600
        forced = self.sim._usage.get(self.platform)
        if forced is not None:
            app, regain = forced
        else:
            calls = self.sim._meta_calls[(self.platform, "app", hour)]
            app, regain = min(99, calls * 100 // META_APP_CALLS_PER_HOUR), 0
        headers = {
            "X-App-Usage": json.dumps(
                {"call_count": app, "total_cputime": max(0, app - 2), "total_time": app}
            ),
            "facebook-api-version": "v21.0",
            "x-fb-rev": "1018421711",
        }
        if ctx.object_id is not None:
            if forced is None:
                calls = self.sim._meta_calls[(self.platform, ctx.object_id, hour)]
                app = min(99, calls * 100 // META_OBJECT_CALLS_PER_HOUR)
            headers["X-Business-Use-Case-Usage"] = self._buc(ctx.object_id, app, regain)
        return headers

    # --- API

    def _own(self, ctx: Ctx, object_id: str) -> Account:
        account = self.account(ctx)
        if object_id not in {account.external_id, "me"}:
            raise self._error(
                400,
                100,
                f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot "
                "be loaded due to missing permissions, or does not support this operation.",
                error_subcode=33,
            )
        return account

    def _fields(self, ctx: Ctx, available: dict[str, Json]) -> dict[str, Json]:
        wanted = [f for f in ctx.query.get("fields", "id,name").split(",") if f]
        return {f: available[f] for f in wanted if f in available}

    def _node_fields(self, account: Account) -> dict[str, Json]:
        today = today_utc()
        if self.page:
            return {
                "id": account.external_id,
                "name": account.name,
                "username": account.handle,
                "followers_count": account.total(today),
                "fan_count": account.total(today),
                "link": f"https://www.facebook.com/{account.handle}",
                "category": "Brand",
            }
        return {
            "id": account.external_id,
            "username": account.handle,
            "name": account.name,
            "followers_count": account.total(today),
            "follows_count": 100 + int(400 * account._key("follows")),
            "media_count": 100 + int(500 * account._key("media")),
        }

    def me(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        return {"id": digit_id(16, account.external_id, "user"), "name": account.name}

    def me_accounts(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        if self.page:
            entry = {
                **self._node_fields(account),
                "access_token": ctx.bearer,
                "tasks": ["ANALYZE", "ADVERTISE", "CREATE_CONTENT", "MODERATE"],
            }
        else:
            entry = {
                "id": digit_id(15, account.external_id, "page"),
                "name": account.name,
                "instagram_business_account": self._node_fields(account),
            }
        return {"data": [entry], "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}

    def node(self, ctx: Ctx, object_id: str) -> Json:
        return self._fields(ctx, self._node_fields(self._own(ctx, object_id)))

    def _span(self, ctx: Ctx, default_days: int) -> tuple[datetime, datetime]:
        try:
            until = day_of(ctx.query["until"]) if "until" in ctx.query else None
            since = day_of(ctx.query["since"]) if "since" in ctx.query else None
        except ValueError:
            raise self._error(400, 100, "(#100) Invalid since or until parameter") from None
        until = until or midnight_utc(today_utc() + timedelta(days=1))
        since = since or until - timedelta(days=default_days)
        return since, until

    def _value(self, account: Account, metric: str, day: date) -> int:
        audience = account.audience(day)
        gained, lost = account.gained_lost(day)
        return {
            "page_follows": account.total(day),
            "page_daily_follows_unique": gained,
            "page_daily_unfollows_unique": lost,
            "page_impressions": audience.impressions,
            "page_impressions_unique": audience.reach,
            "page_post_engagements": audience.engagements,
            "page_video_views": audience.video_views,
            "impressions": audience.impressions,
            "reach": audience.reach,
            "follower_count": account.change(day),
            "profile_views": round(audience.reach * 0.04),
        }[metric]

    def insights(self, ctx: Ctx, object_id: str) -> Json:
        account = self._own(ctx, object_id)
        metrics = [m for m in ctx.query.get("metric", "").split(",") if m]
        for metric in metrics:
            if metric not in self.insight_metrics or self.sim._is_deprecated(self.platform, metric):
                raise self._error(400, 100, "(#100) The value must be a valid insights metric")
        if not metrics:
            raise self._error(400, 100, "(#100) The parameter metric is required")
        if ctx.query.get("period", "day") != "day":
            raise self._error(400, 100, "(#100) period must be one of the following values: day")
        since, until = self._span(ctx, 2)
        if until - since > timedelta(days=self.max_insight_days):
            raise self._error(
                400,
                100,
                f"(#100) There cannot be more than {self.max_insight_days} days between since "
                "and until",
            )
        today = today_utc()
        first, last = since.date(), min(until.date() - timedelta(days=1), today)
        data = []
        for metric in metrics:
            start = first
            if metric == "follower_count":
                window = today - timedelta(days=29)
                if first < window - timedelta(days=1):
                    raise self._error(
                        400, 100, "(#100) follower_count is only available for the last 30 days"
                    )
                start = max(first, window)
            values = []
            day = start
            while day <= last:
                end = datetime.combine(day + timedelta(days=1), datetime.min.time(), PACIFIC)
                values.append(
                    {
                        "value": self._value(account, metric, day),
                        "end_time": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                    }
                )
                day += timedelta(days=1)
            data.append(
                {
                    "name": metric,
                    "period": "day",
                    "values": values,
                    "title": metric.replace("_", " ").title(),
                    "description": f"Daily: {metric.replace('_', ' ')}",
                    "id": f"{object_id}/insights/{metric}/day",
                }
            )
        return {"data": data, "paging": {"previous": "", "next": ""}}

    def posts(self, ctx: Ctx, object_id: str, edge: str) -> Json:
        account = self._own(ctx, object_id)
        if (edge == "media") == self.page:
            raise self.not_found(ctx)
        since, until = self._span(ctx, 365 * 2)
        limit = max(1, min(100, int(ctx.query.get("limit", "25"))))
        offset = decode_cursor(ctx.query.get("after"))
        posts, more = take_page(account.posts_desc(until, since), offset, limit)
        data: list[dict[str, Json]] = []
        for post in posts:
            stamp = post.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000")
            item: dict[str, Json]
            if self.page:
                item = {"id": post.id, "created_time": stamp, "message": f"Post {post.id[-4:]}"}
            else:
                item = {
                    "id": post.id,
                    "timestamp": stamp,
                    "like_count": post.likes,
                    "comments_count": post.comments,
                    "media_type": "IMAGE" if int(post.id[-1]) % 3 else "VIDEO",
                    "permalink": f"https://www.instagram.com/p/{b64id(11, post.id)}/",
                }
            data.append(self._fields(ctx, item) | {"id": post.id})
        paging: dict[str, Json] = {
            "cursors": {
                "before": encode_cursor(offset),
                "after": encode_cursor(offset + len(posts)),
            }
        }
        if more:
            query = {**ctx.query, "after": encode_cursor(offset + len(posts))}
            paging["next"] = f"https://graph.facebook.com{ctx.path}?{urlencode(query)}"
        return {"data": data, "paging": paging}


class InstagramDialect(MetaDialect):
    page = False
    insight_metrics = frozenset({"reach", "impressions", "follower_count", "profile_views"})
    max_insight_days = 30
