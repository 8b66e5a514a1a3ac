"""X: the v2 API, ``x-rate-limit-*`` headers per token and endpoint over 15-minute windows."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

from devtools.platforms.core import (
    Ctx,
    Dialect,
    Json,
    Reply,
    decode_cursor,
    drop_fields,
    encode_cursor,
    rfc3339,
    take_page,
)
from devtools.platforms.figures import (
    Account,
    today_utc,
)

X_WINDOW = 900.0
X_LIMITS = {"me": 75, "user": 900, "tweets": 900}


class XDialect(Dialect):
    authorize_path = r"/i/oauth2/authorize"
    token_path = r"/2/oauth2/token"
    routes_spec = (
        ("POST", r"/2/oauth2/revoke", "revoke"),
        ("GET", r"/2/users/me", "me"),
        ("GET", r"/2/users/([^/]+)/tweets", "tweets"),
        ("GET", r"/2/users/([^/]+)", "user"),
    )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]})

    def unauthorized(self, why: str) -> Reply:
        return Reply(
            401,
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
        )

    def throttled(self, retry_after: float | None) -> Reply:
        wait = X_WINDOW if retry_after is None else retry_after
        headers = {
            "x-rate-limit-limit": "900",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(time.time() + wait)),
        }
        if retry_after is not None:
            headers["Retry-After"] = str(round(retry_after))
        return Reply(
            429,
            {
                "title": "Too Many Requests",
                "detail": "Too Many Requests",
                "type": "about:blank",
                "status": 429,
            },
            headers,
        )

    def server_error(self, status: int) -> Reply:
        return Reply(
            status,
            {
                "title": "Service Unavailable",
                "detail": "Service Unavailable",
                "type": "about:blank",
                "status": status,
            },
        )

    def before(self, ctx: Ctx, name: str) -> None:
        if name in {"authorize", "token", "revoke"}:
            return
        group = {"me": "me", "user": "user", "tweets": "tweets"}[name]
        forced = self.sim._remaining.get(self.platform)
        if forced is not None and ctx.now < forced[1]:
            remaining, reset_at, limit = forced
        else:
            self.sim._remaining.pop(self.platform, None)
            key = (ctx.bearer or "", group)
            window = self.sim._x_windows.get(key)
            if window is None or ctx.now >= window[1]:
                window = [0, ctx.now + X_WINDOW]
                self.sim._x_windows[key] = window
            limit = X_LIMITS[group]
            remaining, reset_at = limit - int(window[0]), window[1]
            window[0] += 1
        ctx.out.update(
            {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": str(max(0, remaining - 1)),
                "x-rate-limit-reset": str(int(reset_at)),
            }
        )
        if remaining <= 0:
            reply = self.throttled(None)
            reply.headers.update({**ctx.out, "x-rate-limit-remaining": "0"})
            raise reply
        if forced is not None and ctx.now < forced[1]:
            self.sim._remaining[self.platform] = (remaining - 1, reset_at, limit)

    def usage_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"x-response-time": "42", "x-transaction-id": secrets.token_hex(8)}

    def _user(self, ctx: Ctx, account: Account) -> Json:
        data: dict[str, Json] = {
            "id": account.external_id,
            "name": account.name,
            "username": account.handle,
        }
        if "public_metrics" in ctx.query.get("user.fields", ""):
            data["public_metrics"] = {
                "followers_count": account.total(today_utc()),
                "following_count": 100 + int(900 * account._key("following")),
                "tweet_count": 1000 + int(9000 * account._key("tweets")),
                "listed_count": int(50 * account._key("listed")),
                "like_count": 500 + int(5000 * account._key("likes")),
                "media_count": 100 + int(500 * account._key("media")),
            }
        return {"data": drop_fields(data, self.sim._deprecated_names(self.platform))}

    def _not_found(self, user_id: str) -> Json:
        return {
            "errors": [
                {
                    "value": user_id,
                    "detail": f"Could not find user with id: [{user_id}].",
                    "title": "Not Found Error",
                    "resource_type": "user",
                    "parameter": "id",
                    "resource_id": user_id,
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
            ]
        }

    def me(self, ctx: Ctx) -> Json:
        return self._user(ctx, self.account(ctx))

    def user(self, ctx: Ctx, user_id: str) -> Json:
        self.account(ctx)
        account = self.sim._lookup(self.platform, user_id)
        return self._not_found(user_id) if account is None else self._user(ctx, account)

    def revoke(self, ctx: Ctx) -> Json:
        self.sim._revoke_value(ctx.params.get("token", ""))
        return {"revoked": True}

    def tweets(self, ctx: Ctx, user_id: str) -> Json:
        self.account(ctx)
        account = self.sim._lookup(self.platform, user_id)
        if account is None:
            return self._not_found(user_id)
        now = datetime.now(UTC)
        try:
            end = rfc3339(ctx.query["end_time"]) if "end_time" in ctx.query else now
            start = rfc3339(ctx.query["start_time"]) if "start_time" in ctx.query else None
        except ValueError:
            raise _x_invalid("start_time", "Invalid 'start_time' or 'end_time'.") from None
        if end > now - timedelta(seconds=10):
            if "end_time" in ctx.query:
                raise _x_invalid(
                    "end_time",
                    f"Invalid 'end_time':'{ctx.query['end_time']}'. 'end_time' must be a "
                    "minimum of 10 seconds prior to the request time.",
                )
            end = now
        limit = int(ctx.query.get("max_results", "10"))
        if not 5 <= limit <= 100:
            raise _x_invalid(
                "max_results",
                f"The `max_results` query parameter value [{limit}] is not between 5 and 100",
            )
        offset = decode_cursor(ctx.query.get("pagination_token"))
        posts, more = take_page(account.posts_desc(end, start), offset, limit)
        fields = ctx.query.get("tweet.fields", "")
        data = []
        for post in posts:
            tweet: dict[str, Json] = {
                "id": post.id,
                "text": f"Post {post.id[-4:]}",
                "edit_history_tweet_ids": [post.id],
            }
            if "created_at" in fields:
                tweet["created_at"] = post.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            if "public_metrics" in fields:
                tweet["public_metrics"] = {
                    "retweet_count": post.shares,
                    "reply_count": post.comments,
                    "like_count": post.likes,
                    "quote_count": post.quotes,
                    "bookmark_count": post.quotes // 2,
                    "impression_count": post.impressions,
                }
            data.append(tweet)
        meta: dict[str, Json] = {"result_count": len(data)}
        if data:
            meta["newest_id"], meta["oldest_id"] = data[0]["id"], data[-1]["id"]
        if more:
            meta["next_token"] = encode_cursor(offset + len(posts))
        if offset:
            meta["previous_token"] = encode_cursor(max(0, offset - limit))
        body: dict[str, Json] = {"meta": meta}
        if data:
            body["data"] = drop_fields(data, self.sim._deprecated_names(self.platform))
        return body


def _x_invalid(parameter: str, message: str) -> Reply:
    return Reply(
        400,
        {
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )
