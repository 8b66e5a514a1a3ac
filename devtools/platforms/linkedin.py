"""LinkedIn organizations: the versioned ``/rest`` API (Rest.li parameters) and its errors."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta

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
    Account,
    b64id,
    midnight_utc,
    today_utc,
)


class LinkedInDialect(Dialect):
    authorize_path = r"/oauth/v2/authorization"
    token_path = r"/oauth/v2/accessToken"
    routes_spec = (
        ("GET", r"/rest/organizationAcls", "acls"),
        ("GET", r"/rest/organizations/([^/]+)", "organization"),
        ("GET", r"/rest/networkSizes/([^/]+)", "network_size"),
        ("GET", r"/rest/(organizationalEntityFollowerStatistics)", "statistics"),
        ("GET", r"/rest/(organizationalEntityShareStatistics)", "statistics"),
        ("GET", r"/rest/posts", "posts"),
    )

    def _error(self, status: int, code: str, message: str, service: int = 100) -> Reply:
        return Reply(
            status,
            {"status": status, "serviceErrorCode": service, "code": code, "message": message},
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return self._error(404, "NOT_FOUND", "No virtual resource found", 0)

    def unauthorized(self, why: str) -> Reply:
        return self._error(
            401, "EXPIRED_ACCESS_TOKEN", f"The token used in the request {why}", 65601
        )

    def throttled(self, retry_after: float | None) -> Reply:
        reply = self._error(
            429,
            "TOO_MANY_REQUESTS",
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
            101,
        )
        if retry_after is not None:
            reply.headers["Retry-After"] = str(round(retry_after))
        return reply

    def server_error(self, status: int) -> Reply:
        return self._error(status, "INTERNAL_SERVER_ERROR", "Internal Server Error", 0)

    def token_body(
        self, access: AccessToken, refresh: str | None, grant: str, refresh_ttl: int
    ) -> dict[str, Json]:
        body = super().token_body(access, refresh, grant, refresh_ttl)
        if refresh is not None:
            body["refresh_token_expires_in"] = refresh_ttl
        return body

    def usage_headers(self, ctx: Ctx) -> dict[str, str]:
        return {
            "x-li-uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
            "x-restli-protocol-version": "2.0.0",
            "x-li-responseorigin": "RGW",
        }

    def before(self, ctx: Ctx, name: str) -> None:
        if name not in {"authorize", "token"} and not ctx.headers.get("linkedin-version"):
            raise self._error(
                400,
                "VERSION_MISSING",
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
            )

    def _org(self, ctx: Ctx, urn_or_id: str) -> Account:
        account = self.account(ctx)
        org = urn_or_id.rsplit(":", 1)[-1]
        if org != account.external_id:
            raise self._error(
                403, "ACCESS_DENIED", f"Not enough permissions to access: {urn_or_id}"
            )
        return account

    def acls(self, ctx: Ctx) -> Json:
        account = self.account(ctx)
        element = {
            "roleAssignee": f"urn:li:person:{b64id(10, account.external_id)}",
            "state": "APPROVED",
            "role": "ADMINISTRATOR",
            "organization": f"urn:li:organization:{account.external_id}",
        }
        return {"paging": {"start": 0, "count": 10, "links": []}, "elements": [element]}

    def organization(self, ctx: Ctx, org: str) -> Json:
        account = self._org(ctx, org)
        return {
            "id": int(account.external_id) if account.external_id.isdigit() else 0,
            "localizedName": account.name,
            "vanityName": account.handle,
            "name": {
                "localized": {"en_US": account.name},
                "preferredLocale": {"country": "US", "language": "en"},
            },
        }

    def network_size(self, ctx: Ctx, urn: str) -> Json:
        if ctx.query.get("edgeType") != "COMPANY_FOLLOWED_BY_MEMBER":
            raise self._error(400, "ILLEGAL_ARGUMENT", "edgeType is required")
        if self.sim._is_deprecated(self.platform, "networkSizes"):
            raise self.not_found(ctx)
        return {"firstDegreeSize": self._org(ctx, urn).total(today_utc())}

    def statistics(self, ctx: Ctx, resource: str) -> Json:
        if self.sim._is_deprecated(self.platform, resource):
            raise self.not_found(ctx)
        if ctx.query.get("q") != "organizationalEntity":
            raise self._error(400, "ILLEGAL_ARGUMENT", "q must be organizationalEntity")
        urn = ctx.query.get("organizationalEntity", "")
        account = self._org(ctx, urn)
        intervals = ctx.query.get("timeIntervals", "")
        found = re.search(r"timeRange:\(start:(\d+),end:(\d+)\)", intervals)
        if found is None or "timeGranularityType:DAY" not in intervals:
            raise self._error(400, "ILLEGAL_ARGUMENT", "timeIntervals with DAY granularity needed")
        start = datetime.fromtimestamp(int(found.group(1)) / 1000, UTC).date()
        end = datetime.fromtimestamp(int(found.group(2)) / 1000, UTC).date()
        elements = []
        day = start
        while day < end and day <= today_utc():
            span = {
                "start": int(midnight_utc(day).timestamp() * 1000),
                "end": int(midnight_utc(day + timedelta(days=1)).timestamp() * 1000),
            }
            element: dict[str, Json] = {"organizationalEntity": urn, "timeRange": span}
            if resource == "organizationalEntityFollowerStatistics":
                change, paid = account.change(day), account.paid_gain(day)
                element["followerGains"] = {
                    "organicFollowerGain": change - paid,
                    "paidFollowerGain": paid,
                }
            else:
                audience, parts = account.audience(day), account.engagement_parts(day)
                element["totalShareStatistics"] = {
                    "uniqueImpressionsCount": audience.reach,
                    "shareCount": parts["shares"],
                    "engagement": round(audience.engagements / max(1, audience.impressions), 6),
                    "clickCount": parts["clicks"],
                    "likeCount": parts["likes"],
                    "impressionCount": audience.impressions,
                    "commentCount": parts["comments"],
                }
            elements.append(element)
            day += timedelta(days=1)
        deprecated = self.sim._deprecated_names(self.platform)
        return drop_fields(
            {"paging": {"start": 0, "count": 10, "links": []}, "elements": elements}, deprecated
        )

    def posts(self, ctx: Ctx) -> Json:
        if self.sim._is_deprecated(self.platform, "posts"):
            raise self.not_found(ctx)
        if ctx.query.get("q") != "author":
            raise self._error(400, "ILLEGAL_ARGUMENT", "q must be author")
        author = ctx.query.get("author", "")
        account = self._org(ctx, author)
        count = max(1, min(100, int(ctx.query.get("count", "10"))))
        start = max(0, int(ctx.query.get("start", "0")))
        posts, _ = take_page(account.posts_desc(datetime.now(UTC)), start, count)
        elements = []
        for post in posts:
            ms = int(post.created_at.timestamp() * 1000)
            elements.append(
                {
                    "id": post.id,
                    "author": author,
                    "commentary": f"Post {post.id[-4:]}",
                    "visibility": "PUBLIC",
                    "lifecycleState": "PUBLISHED",
                    "publishedAt": ms,
                    "createdAt": ms,
                    "lastModifiedAt": ms,
                    "isReshareDisabledByAuthor": False,
                }
            )
        return {"paging": {"start": start, "count": count, "links": []}, "elements": elements}
