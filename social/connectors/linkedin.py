"""LinkedIn organization pages, through the versioned REST API (``/rest``, Rest.li 2.0).

Follower gains come from organizationalEntityFollowerStatistics, impressions, unique
impressions and interactions from organizationalEntityShareStatistics (one request each, with
a DAY time interval), posts from ``/rest/posts?q=author``, today's follower total from
networkSizes (the profile). A field LinkedIn stops sending fails only its metric.

Budget: ``linkedin_organization`` before every request. LinkedIn publishes no usage headers;
a 429 pauses the key for Retry-After when given, else 60 s. Refresh tokens are not rotated:
the refresh grant answers the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar
from urllib.parse import quote

from social.connectors.base import (
    Assembly,
    HttpConnector,
    Json,
    Parts,
    RequestRejected,
    Tally,
    as_dict,
    as_int,
    as_list,
    gather,
    midnight,
    missing,
)
from social.connectors.types import DailyMetrics, Platform, Profile, TokenSet

API = "https://api.linkedin.com/rest"
VERSION = "202411"
PAGE_SIZE = 100
MAX_PAGES = 30
ENGAGEMENT_FIELDS = ("clickCount", "likeCount", "commentCount", "shareCount")


def org_urn(external_id: str) -> str:
    return f"urn:li:organization:{external_id}"


def _ms(day: date) -> int:
    return int(midnight(day).timestamp() * 1000)


class LinkedInConnector(HttpConnector):
    platform = Platform.linkedin_organization
    real_authorize_url = "https://www.linkedin.com/oauth/v2/authorization"
    real_token_url = "https://www.linkedin.com/oauth/v2/accessToken"  # noqa: S105
    scopes: tuple[str, ...] = (
        "r_organization_admin",
        "r_organization_social",
        "r_organization_followers",
    )
    default_headers: ClassVar[Mapping[str, str]] = {
        "LinkedIn-Version": VERSION,
        "X-Restli-Protocol-Version": "2.0.0",
    }

    async def _get(self, path_and_query: str, token: str) -> dict[str, Json]:
        # Rest.li 2.0 wants the URN percent-encoded but the tuple syntax of timeIntervals
        # as is, which httpx's params would encode: the query is built by hand.
        body = await self._request(
            "GET", self.url(API + path_and_query), token=token, keys=((self.key, 1.0),)
        )
        return as_dict(body)

    async def profile(self, token: TokenSet, external_id: str | None) -> Profile:
        at = token.access_token
        if external_id is None:
            acls = await self._get(
                "/organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED", at
            )
            orgs = [
                str(e["organization"]).rsplit(":", 1)[-1]
                for e in as_list(acls.get("elements"))
                if isinstance(e, dict) and str(e.get("organization", "")).startswith(org_urn(""))
            ]
            if not orgs:
                raise RequestRejected("the token administers no LinkedIn organization")
            external_id = orgs[0]
        org = await self._get(f"/organizations/{quote(external_id, safe='')}", at)
        try:
            size = await self._get(
                f"/networkSizes/{quote(org_urn(external_id), safe='')}"
                "?edgeType=COMPANY_FOLLOWED_BY_MEMBER",
                at,
            )
        except RequestRejected:
            size = {}  # the page is still there; only its follower count is not
        return Profile(
            external_id=external_id,
            handle=org.get("vanityName") or None,
            display_name=org.get("localizedName") or None,
            followers=as_int(size.get("firstDegreeSize")),
        )

    def _statistics_path(self, resource: str, external_id: str, since: date, until: date) -> str:
        urn = quote(org_urn(external_id), safe="")
        span = f"(start:{_ms(since)},end:{_ms(until + timedelta(days=1))})"
        return (
            f"/{resource}?q=organizationalEntity&organizationalEntity={urn}"
            f"&timeIntervals=(timeRange:{span},timeGranularityType:DAY)"
        )

    @staticmethod
    def _elements(body: dict[str, Json]) -> list[tuple[date, dict[str, Json]]]:
        out = []
        for element in as_list(body.get("elements")):
            span = element.get("timeRange") if isinstance(element, dict) else None
            start = as_int(span.get("start")) if isinstance(span, dict) else None
            if start is not None:
                out.append((datetime.fromtimestamp(start / 1000, UTC).date(), element))
        return out

    async def _followers(self, token: str, external_id: str, since: date, until: date) -> Parts:
        path = self._statistics_path(
            "organizationalEntityFollowerStatistics", external_id, since, until
        )
        tally = Tally(since, until, ("follower_change",), zeros=False)
        for day, element in self._elements(await self._get(path, token)):
            gains = element.get("followerGains")
            if not isinstance(gains, dict):
                tally.missing.setdefault("follower_change", "followerGains")
                continue
            tally.add_fields(
                day, "follower_change", gains, ("organicFollowerGain", "paidFollowerGain")
            )
        return tally.parts()

    async def _shares(self, token: str, external_id: str, since: date, until: date) -> Parts:
        path = self._statistics_path(
            "organizationalEntityShareStatistics", external_id, since, until
        )
        names = ("impressions", "reach", "engagements")
        tally = Tally(since, until, names, zeros=False)
        for day, element in self._elements(await self._get(path, token)):
            totals = element.get("totalShareStatistics")
            if not isinstance(totals, dict):
                return {n: missing("totalShareStatistics") for n in names}
            tally.add_fields(day, "impressions", totals, ("impressionCount",))
            tally.add_fields(day, "reach", totals, ("uniqueImpressionsCount",))
            tally.add_fields(day, "engagements", totals, ENGAGEMENT_FIELDS)
        return tally.parts()

    async def _posts(self, token: str, external_id: str, since: date, until: date) -> Parts:
        tally = Tally(since, until, ("posts_published",))
        author = quote(org_urn(external_id), safe="")
        oldest = midnight(since)
        for page in range(MAX_PAGES):
            body = await self._get(
                f"/posts?author={author}&q=author&count={PAGE_SIZE}&start={page * PAGE_SIZE}"
                "&sortBy=CREATED",
                token,
            )
            elements = [e for e in as_list(body.get("elements")) if isinstance(e, dict)]
            reached_older = False
            for post in elements:
                stamp = as_int(post.get("publishedAt")) or as_int(post.get("createdAt"))
                if stamp is None or post.get("lifecycleState", "PUBLISHED") != "PUBLISHED":
                    continue
                when = datetime.fromtimestamp(stamp / 1000, UTC)
                if when < oldest:
                    reached_older = True
                tally.add(when.date(), "posts_published", 1)
            if reached_older or len(elements) < PAGE_SIZE:
                break
        return tally.parts()

    async def daily_metrics(
        self, token: TokenSet, external_id: str, since: date, until: date
    ) -> DailyMetrics:
        at = token.access_token
        got = await gather(
            [
                (("follower_change",), self._followers(at, external_id, since, until)),
                (
                    ("impressions", "reach", "engagements"),
                    self._shares(at, external_id, since, until),
                ),
                (("posts_published",), self._posts(at, external_id, since, until)),
            ]
        )
        out = Assembly(since, until)
        for metric in ("follower_change", "impressions", "reach", "engagements", "posts_published"):
            out.series(metric, got[metric])
        return out.done()
