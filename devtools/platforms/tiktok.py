"""TikTok: ``/v2/user/info/`` and ``/v2/video/list/``, with its ``{"error": {...}}`` envelope."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from devtools.platforms.core import (
    AccessToken,
    Ctx,
    Dialect,
    Json,
    Reply,
    drop_fields,
    take_page,
)
from devtools.platforms.figures import (
    b64id,
    today_utc,
)


class TikTokDialect(Dialect):
    authorize_path = r"/v2/auth/authorize/"
    token_path = r"/v2/oauth/token/"
    routes_spec = (
        ("POST", r"/v2/oauth/revoke/", "revoke"),
        ("GET|POST", r"/v2/user/info/", "user_info"),
        ("POST", r"/v2/video/list/", "video_list"),
    )

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
        posts, more = take_page(account.posts_desc(newest), 0, limit)
        videos = []
        for post in posts:
            available: dict[str, Json] = {
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
        next_cursor = int(posts[-1].created_at.timestamp() * 1000) if posts else 0
        data = {"videos": videos, "cursor": next_cursor, "has_more": more}
        return self._ok(drop_fields(data, self.sim._deprecated_names(self.platform)))
