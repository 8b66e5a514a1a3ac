"""YouTube: the Data API (counted in quota units, ``quotaExceeded`` once spent) and Analytics
reports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from devtools.platforms.core import (
    AccessToken,
    Ctx,
    Dialect,
    Json,
    Reply,
    decode_cursor,
    drop_fields,
    encode_cursor,
    take_page,
)
from devtools.platforms.figures import (
    Account,
    b64id,
    today_utc,
)

YOUTUBE_UNITS = {"channels": 1, "playlistItems": 1}


class YouTubeDialect(Dialect):
    authorize_path = r"/o/oauth2/v2/auth"
    token_path = r"/token"
    routes_spec = (
        ("POST", r"/revoke", "revoke"),
        ("GET", r"/youtube/v3/(channels)", "data_api"),
        ("GET", r"/youtube/v3/(playlistItems)", "data_api"),
        ("GET", r"/v2/reports", "reports"),
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
        if name != "data_api":
            return
        cost = YOUTUBE_UNITS.get(ctx.path.rsplit("/", 1)[-1], 1)
        forced = self.sim._remaining.get(self.platform)
        if forced is not None:
            remaining, reset_at, limit = forced
            if ctx.now >= reset_at:
                remaining = limit
            if remaining < cost:
                self.sim._remaining[self.platform] = (remaining, reset_at, limit)
                raise self._error(
                    403,
                    'The request cannot be completed because you have exceeded your <a href="'
                    '/youtube/v3/getting-started#quota">quota</a>.',
                    "quotaExceeded",
                    "youtube.quota",
                )
            self.sim._remaining[self.platform] = (remaining - cost, reset_at, limit)
        self.sim.quota_units_used += cost

    def usage_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"server": "ESF", "x-xss-protection": "0"}

    def revoke(self, ctx: Ctx) -> Json:
        self.sim._revoke_value(ctx.params.get("token", ""))
        return {}

    def data_api(self, ctx: Ctx, resource: str) -> Json:
        account = self.account(ctx)
        if resource == "channels":
            return self._channels(ctx, account)
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
        posts, more = take_page(owner.posts_desc(datetime.now(UTC)), offset, limit)
        items = [
            {
                "kind": "youtube#playlistItem",
                "etag": b64id(27, post.id, "etag"),
                "id": b64id(40, post.id, "item"),
                "contentDetails": {
                    "videoId": post.id,
                    "videoPublishedAt": post.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            }
            for post in posts
        ]
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
            body["nextPageToken"] = encode_cursor(offset + len(posts))
        return body

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
