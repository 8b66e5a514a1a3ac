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

Publishing (``Publisher``, ``PostReader``): a Page posts text and a link card or up to the
photos ``prepare`` uploaded unpublished through ``/feed``, or one video through ``/videos``
(that upload is the post). Instagram fetches media itself from their public ``source_url``:
``prepare`` reads the 24-hour publishing quota, makes the containers and waits for FINISHED
(an earlier attempt's container is reused for 23 hours); ``create`` is ``media_publish``.
Reconciliation reads the recent posts (``feed``, ``media``) for the exact text after a time;
an Instagram container not PUBLISHED proves the post was never made.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
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
    chunks,
    combine,
    gather,
    midnight,
    sub,
    utc_today,
)
from social.connectors.meta_inbox import FacebookInbox, InstagramInbox
from social.connectors.meta_inbox import parse_webhook as parse_webhook
from social.connectors.types import (
    ConnectorError,
    DailyMetrics,
    MediaFile,
    OutcomeUnknown,
    Platform,
    PlatformUnavailable,
    PostDraft,
    PostFigures,
    Profile,
    PublishedPost,
    PublishRejected,
    Remember,
    TokenInvalid,
    TokenSet,
)

GRAPH = "https://graph.facebook.com/v21.0"
GRAPH_VIDEO = "https://graph-video.facebook.com/v21.0"
"""Where Meta wants video uploads sent."""
PACIFIC = ZoneInfo("America/Los_Angeles")
USAGE_CEILING = 80.0
TOKEN_CODES = frozenset({102, 190})
APP_RATE_CODES = frozenset({4})
RATE_CODES = frozenset({4, 17, 32, 613, *range(80001, 80015)})
TRANSIENT_CODES = frozenset({1, 2})
MAX_PAGES = 50
FIND_PAGES = 5
"""Pages of an account's recent posts that reconciliation reads (100 a page)."""
CONTAINER_REUSE = timedelta(hours=23)
"""Instagram containers live 24 hours: an older one is made again rather than risk EXPIRED."""
IG_QUOTA_CODE = 9
"""Graph's error code when media_publish meets the 24-hour publishing limit."""
FB_MEDIA_CODES = frozenset({324, 352, 381, 382, 390})
"""Graph's codes for a photo or video it cannot take (missing, bad format, too large...)."""
CAROUSEL_MAX = 10
IG_CAPTION_MAX = 2_200
COUNTS = "reactions.limit(0).summary(total_count),comments.limit(0).summary(total_count)"
"""A Page post's reactions and comments as totals, without the items."""
ATTACHMENTS = "attachments{target{id},subattachments{target{id}}}"
"""A feed item's photos: one photo's target, or each of an album's."""


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

    # --- publishing, shared

    poll_interval: float = 2.0
    """Seconds between two reads of a media container's status."""
    poll_limit: float = 300.0
    """How long prepare waits for a container to finish before giving up for this attempt."""

    async def _post(
        self,
        url: str,
        token: str,
        object_id: str,
        *,
        data: Mapping[str, str],
        files: Mapping[str, Any] | None = None,
        creates: bool = False,
    ) -> dict[str, Json]:
        body = await self._request(
            "POST",
            url,
            token=token,
            keys=self._keys(object_id),
            data=data,
            files=files,
            creates=creates,
        )
        if creates and not isinstance(body, dict):
            raise OutcomeUnknown(f"{self.key}: the answer to the post was not understood")
        return as_dict(body)

    def _made(self, body: Mapping[str, Json]) -> str:
        """The id the create call answered; without one the post may still exist."""
        made = body.get("id")
        if not isinstance(made, str | int) or isinstance(made, bool) or not str(made):
            raise OutcomeUnknown(f"{self.key}: the answer to the post carried no id")
        return str(made)

    async def _node(
        self, token: str, node_id: str, owner: str, fields: str, *, after_post: bool = True
    ) -> dict[str, Json] | None:
        """A node's fields, None when Graph refuses them. Right after a post was made
        (`after_post`) nothing is worth failing for: the post exists whatever this read says."""
        try:
            return await self._get(f"/{node_id}", token, owner, {"fields": fields})
        except RequestRejected:
            return None
        except ConnectorError:
            if after_post:
                return None
            raise

    async def _recent(
        self, token: str, owner: str, edge: str, fields: str, since: datetime
    ) -> Iterator[dict[str, Json]]:
        """The account's posts since `since`, newest first, as far as FIND_PAGES pages go."""
        params = {
            "fields": fields,
            "since": str(int(since.timestamp())),
            "limit": "100",
        }
        items: list[dict[str, Json]] = []
        for _ in range(FIND_PAGES):
            body = await self._get(f"/{owner}/{edge}", token, owner, params)
            items.extend(i for i in as_list(body.get("data")) if isinstance(i, dict))
            paging = sub(body, "paging")
            after = sub(paging, "cursors").get("after")
            if not paging.get("next") or not isinstance(after, str):
                break
            params = {**params, "after": after}
        return iter(items)

    @staticmethod
    def _earliest_match(
        items: Iterator[dict[str, Json]],
        text_field: str,
        time_field: str,
        text: str,
        since: datetime,
    ) -> dict[str, Json] | None:
        """The first post at or after `since` whose text is exactly `text` (the oldest, in
        case the same text went out twice)."""
        found: dict[str, Json] | None = None
        for item in items:
            stamp = item.get(time_field)
            if not isinstance(stamp, str) or graph_time(stamp) < since:
                continue
            if (item.get(text_field) or "").strip() == text.strip():
                found = item
        return found

    def resumable(self, state: dict[str, Any]) -> bool:
        """Nothing Meta makes can be resumed: a create call is sent once."""
        return False

    async def _lifetime(
        self, token: str, owner: str, path: str, metrics: Sequence[str]
    ) -> dict[str, int | None]:
        """Lifetime insight values of one post; a metric Meta refuses is None (one request
        first, then one per metric when a retired metric spoils the lot)."""

        async def ask(names: Sequence[str]) -> dict[str, int | None]:
            body = await self._get(path, token, owner, {"metric": ",".join(names)})
            out: dict[str, int | None] = dict.fromkeys(names)
            for entry in as_list(body.get("data")):
                if not isinstance(entry, dict) or entry.get("name") not in out:
                    continue
                values = as_list(entry.get("values"))
                value = values[0].get("value") if values and isinstance(values[0], dict) else None
                if isinstance(value, dict):  # a breakdown (reactions by type): its total
                    value = sum(v for v in map(as_int, value.values()) if v is not None)
                out[str(entry["name"])] = as_int(value)
            return out

        try:
            return await ask(metrics)
        except RequestRejected:
            if len(metrics) == 1:
                return {metrics[0]: None}
        values: dict[str, int | None] = {}
        for metric in metrics:
            try:
                values |= await ask((metric,))
            except RequestRejected:
                values[metric] = None
        return values


def _sum(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _summary(node: Mapping[str, Json] | None, edge: str) -> int | None:
    return as_int(sub(sub(node, edge), "summary").get("total_count")) if node else None


def _absolute(permalink: Json) -> str | None:
    """Graph gives a Video's permalink_url relative to facebook.com."""
    if not isinstance(permalink, str) or not permalink:
        return None
    return "https://www.facebook.com" + permalink if permalink.startswith("/") else permalink


def _attached(item: Mapping[str, Json]) -> set[str]:
    """The photo ids a feed item shows (one photo, or an album's)."""
    ids: set[str] = set()
    for attachment in as_list(sub(item, "attachments").get("data")):
        if not isinstance(attachment, dict):
            continue
        nested = as_list(sub(attachment, "subattachments").get("data"))
        for entry in nested or [attachment]:
            target = sub(entry, "target").get("id")
            if isinstance(target, str | int) and not isinstance(target, bool):
                ids.add(str(target))
    return ids


def _signature(media: MediaFile) -> str:
    """What identifies a file between two attempts without reading it again (the worker's
    temporary file may have another name next time; its address does not)."""
    return f"{media.source_url or media.path.name}:{media.size}:{media.content_type}"


class FacebookPageConnector(FacebookInbox, MetaConnector):
    """The inbox side (comments, Messenger, moderation) is FacebookInbox's (meta_inbox)."""

    platform = Platform.facebook_page
    scopes: tuple[str, ...] = (
        "pages_show_list",
        "pages_read_engagement",
        "read_insights",
        "pages_manage_posts",
        # the inbox: read comments, answer and moderate them, answer in Messenger
        "pages_read_user_content",
        "pages_manage_engagement",
        "pages_messaging",
    )
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

    # --- publishing: text and link posts and photos through /feed, a video through /videos

    @staticmethod
    def _split(draft: PostDraft) -> tuple[list[MediaFile], MediaFile | None]:
        photos = [m for m in draft.media if m.kind in {"image", "gif"}]
        videos = [m for m in draft.media if m.kind == "video"]
        if len(photos) + len(videos) != len(draft.media):
            raise PublishRejected(
                "Facebook: a Page post takes photos or a video only; remove the other files"
            )
        if videos and (photos or len(videos) > 1):
            raise PublishRejected(
                "Facebook: a Page post takes either photos or one video; split it in two posts"
            )
        return photos, videos[0] if videos else None

    async def prepare(
        self, token: TokenSet, external_id: str, draft: PostDraft, state: dict[str, Any]
    ) -> dict[str, Any]:
        """Uploads the photos unpublished (they show nowhere until a post attaches them);
        the ones an earlier attempt uploaded are kept."""
        photos, _ = self._split(draft)
        if not photos:
            return {}
        signatures = [_signature(m) for m in photos]
        earlier = state.get("photos")
        if isinstance(earlier, list) and [p.get("signature") for p in earlier] == signatures:
            return state
        uploaded = []
        for media, signature in zip(photos, signatures, strict=True):
            photo_id = await self._upload_photo(token.access_token, external_id, media)
            uploaded.append({"id": photo_id, "signature": signature})
        return {"photos": uploaded}

    async def _upload_photo(self, token: str, page_id: str, media: MediaFile) -> str:
        data = {"published": "false"}
        if media.alt_text:
            data["alt_text_custom"] = media.alt_text
        try:
            with media.path.open("rb") as handle:  # httpx streams it in 64 KiB blocks
                body = await self._post(
                    self.url(f"{GRAPH}/{page_id}/photos"),
                    token,
                    page_id,
                    data=data,
                    files={"source": (media.path.name, handle, media.content_type)},
                )
        except RequestRejected as exc:
            raise PublishRejected(
                f"Facebook refused a photo ({exc.reason}); replace it and publish again",
                code="media_rejected",
            ) from None
        photo_id = body.get("id")
        if not isinstance(photo_id, str | int) or isinstance(photo_id, bool):
            raise PlatformUnavailable("facebook_page: the photo upload answered no id")
        return str(photo_id)

    async def create(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        remember: Remember,
    ) -> PublishedPost:
        photos, video = self._split(draft)
        at = token.access_token
        try:
            if video is not None:
                return await self._create_video(at, external_id, draft, video)
            data = {"message": draft.text}
            attached = [str(p["id"]) for p in state.get("photos") or ()]
            if len(attached) != len(photos):
                raise PublishRejected("Facebook: the photos were not uploaded; publish again")
            for i, photo_id in enumerate(attached):
                data[f"attached_media[{i}]"] = json.dumps({"media_fbid": photo_id})
            if draft.link and not attached:
                data["link"] = draft.link
            body = await self._post(
                self.url(f"{GRAPH}/{external_id}/feed"), at, external_id, data=data, creates=True
            )
        except PublishRejected as exc:
            raise self._rejected(exc) from None
        post_id = self._made(body)
        node = await self._node(at, post_id, external_id, "permalink_url,created_time")
        return PublishedPost(
            external_id=post_id,
            permalink=_absolute(node.get("permalink_url")) if node else None,
            published_at=self._when(node, "created_time"),
        )

    async def _create_video(
        self, token: str, page_id: str, draft: PostDraft, video: MediaFile
    ) -> PublishedPost:
        data = {"description": draft.text}
        if draft.title:
            data["title"] = draft.title
        with video.path.open("rb") as handle:  # httpx streams it in 64 KiB blocks
            body = await self._post(
                self.url(f"{GRAPH_VIDEO}/{page_id}/videos"),
                token,
                page_id,
                data=data,
                files={"source": (video.path.name, handle, video.content_type)},
                creates=True,
            )
        video_id = self._made(body)
        node = await self._node(token, video_id, page_id, "permalink_url,created_time")
        return PublishedPost(
            external_id=video_id,
            permalink=_absolute(node.get("permalink_url")) if node else None,
            published_at=self._when(node, "created_time"),
        )

    @staticmethod
    def _when(node: Mapping[str, Json] | None, field: str) -> datetime:
        stamp = node.get(field) if node else None
        return graph_time(stamp) if isinstance(stamp, str) else utcnow()

    @staticmethod
    def _rejected(exc: PublishRejected) -> PublishRejected:
        if exc.reason.startswith("Facebook"):
            return exc
        code = as_int(exc.reason.removeprefix("code ").split(":", 1)[0])
        if code in FB_MEDIA_CODES:
            return PublishRejected(
                f"Facebook refused the media ({exc.reason}); replace it and publish again",
                code="media_rejected",
            )
        return PublishRejected(f"Facebook refused the post ({exc.reason}); correct it and retry")

    async def find(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        since: datetime,
    ) -> PublishedPost | None:
        """The Page's post that attached this attempt's photos, else the one with exactly
        this text, made at or after `since`."""
        photos = {str(p.get("id")) for p in state.get("photos") or () if isinstance(p, dict)}
        if not photos and not draft.text.strip():
            return None  # an empty text would match any post without one
        items = list(
            await self._recent(
                token.access_token,
                external_id,
                "feed",
                f"id,message,created_time,permalink_url,{ATTACHMENTS}",
                since,
            )
        )
        match = next((i for i in items if photos & _attached(i)), None)
        if match is None and draft.text.strip():
            match = self._earliest_match(iter(items), "message", "created_time", draft.text, since)
        if match is None:
            return None
        return PublishedPost(
            external_id=str(match["id"]),
            permalink=_absolute(match.get("permalink_url")),
            published_at=self._when(match, "created_time"),
        )

    async def post_figures(self, token: TokenSet, external_id: str, post_id: str) -> PostFigures:
        """A feed post ("<page>_<post>") reads the post insights; a video (its own id) the
        video insights. Engagements are reactions, comments and shares."""
        at = token.access_token
        if "_" in post_id:
            values = await self._lifetime(
                at,
                external_id,
                f"/{post_id}/insights",
                ("post_media_view", "post_total_media_view_unique", "post_video_views"),
            )
            impressions, reach, views = (
                values["post_media_view"],
                values["post_total_media_view_unique"],
                values["post_video_views"],
            )
            fields = f"shares,{COUNTS}"
        else:
            values = await self._lifetime(
                at,
                external_id,
                f"/{post_id}/video_insights",
                ("total_video_impressions", "total_video_impressions_unique", "total_video_views"),
            )
            impressions, reach, views = (
                values["total_video_impressions"],
                values["total_video_impressions_unique"],
                values["total_video_views"],
            )
            fields = (
                "reactions.limit(0).summary(total_count),comments.limit(0).summary(total_count)"
            )
        node = await self._node(at, post_id, external_id, fields, after_post=False)
        shares = as_int(sub(node, "shares").get("count")) if node and "shares" in node else None
        engagements = (
            _sum(_summary(node, "reactions"), _summary(node, "comments"), shares) if node else None
        )
        return PostFigures(
            impressions=impressions, reach=reach, engagements=engagements, video_views=views
        )


class InstagramBusinessConnector(InstagramInbox, MetaConnector):
    """The inbox side (comments, mentions, Direct, moderation) is InstagramInbox's (meta_inbox).

    Instagram's follower history is the daily gain (``follower_count``) of the last 30 days
    only; the total is the profile's ``followers_count``. Engagements are the likes and
    comments of the posts published that day."""

    platform = Platform.instagram_business
    scopes: tuple[str, ...] = (
        "instagram_basic",
        "instagram_manage_insights",
        "instagram_content_publish",
        "pages_show_list",
        "pages_read_engagement",
        "instagram_manage_comments",
        "instagram_manage_messages",
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

    # --- publishing: media containers, then media_publish

    async def _quota(self, token: str, user_id: str) -> None:
        body = await self._get(
            f"/{user_id}/content_publishing_limit",
            token,
            user_id,
            {"fields": "config,quota_usage"},
        )
        entries = [e for e in as_list(body.get("data")) if isinstance(e, dict)]
        if not entries:
            return
        used = as_int(entries[0].get("quota_usage"))
        total = as_int(sub(entries[0], "config").get("quota_total"))
        if used is not None and total is not None and used >= total:
            raise self._quota_spent(total)

    @staticmethod
    def _quota_spent(total: int | None = None) -> PublishRejected:
        allowed = f"its {total} posts" if total else "the posts"
        return PublishRejected(
            f"Instagram: the account has published {allowed} allowed through the API in 24 "
            "hours; plan the post later or publish it from the app",
            code="quota_spent",
        )

    @staticmethod
    def _check_media(draft: PostDraft) -> list[str]:
        """The media's public addresses, which Instagram fetches itself."""
        if not draft.media:
            raise PublishRejected("Instagram: a post needs an image or a video; add one")
        if len(draft.media) > CAROUSEL_MAX:
            raise PublishRejected(
                f"Instagram: a carousel takes at most {CAROUSEL_MAX} files; remove some"
            )
        if any(m.kind not in {"image", "video"} for m in draft.media):
            raise PublishRejected("Instagram takes images and videos only; remove the other files")
        if any(m.kind == "image" and m.content_type != "image/jpeg" for m in draft.media):
            raise PublishRejected("Instagram publishes JPEG images only; convert the others")
        if len(draft.text) > IG_CAPTION_MAX:
            raise PublishRejected(
                f"Instagram captions take at most {IG_CAPTION_MAX:,} characters; shorten it"
            )
        urls = [m.source_url or "" for m in draft.media]
        if not all(u.startswith("https://") for u in urls):
            raise PublishRejected(
                "Instagram fetches media from a public https address, and a file of this "
                "post has none; upload it again from a public address"
            )
        return urls

    async def prepare(
        self, token: TokenSet, external_id: str, draft: PostDraft, state: dict[str, Any]
    ) -> dict[str, Any]:
        """Reads the publishing quota, then makes the containers (or keeps an earlier
        attempt's, less than CONTAINER_REUSE old, for the same media and caption) and waits
        until Instagram has fetched and processed them."""
        urls = self._check_media(draft)
        at = token.access_token
        try:
            await self._quota(at, external_id)
            caption = hashlib.sha256(draft.text.encode()).hexdigest()
            earlier = state.get("container")
            if (
                isinstance(earlier, dict)
                and earlier.get("urls") == urls
                and earlier.get("caption") == caption
                and isinstance(earlier.get("created_at"), str)
                and utcnow() - datetime.fromisoformat(earlier["created_at"]) < CONTAINER_REUSE
            ):
                status = await self._wait(at, external_id, str(earlier["id"]), reuse=True)
                if status == "FINISHED":
                    return state
            made = utcnow()
            children: list[str] = []
            if len(draft.media) == 1:
                container = await self._container(at, external_id, draft.media[0], draft.text)
            else:
                for media in draft.media:
                    child = await self._container(at, external_id, media, None)
                    await self._wait(at, external_id, child)
                    children.append(child)
                container = self._made(
                    await self._post(
                        self.url(f"{GRAPH}/{external_id}/media"),
                        at,
                        external_id,
                        data={
                            "media_type": "CAROUSEL",
                            "children": ",".join(children),
                            "caption": draft.text,
                        },
                    )
                )
            await self._wait(at, external_id, container)
        except RequestRejected as exc:
            raise PublishRejected(
                f"Instagram refused the media ({exc.reason}); check the files and their addresses",
                code="media_rejected",
            ) from None
        except OutcomeUnknown:
            raise PlatformUnavailable("instagram_business: a container answer had no id") from None
        return {
            "container": {
                "id": container,
                "children": children,
                "urls": urls,
                "caption": caption,
                "created_at": made.isoformat(),
            }
        }

    async def _container(
        self, token: str, user_id: str, media: MediaFile, caption: str | None
    ) -> str:
        """One container: the post's single image or reel (with the caption), or a carousel
        item (without)."""
        data: dict[str, str] = {}
        url = media.source_url or ""
        if media.kind == "video":
            data |= {"media_type": "VIDEO" if caption is None else "REELS", "video_url": url}
        else:
            data["image_url"] = url
        if caption is None:
            data["is_carousel_item"] = "true"
        else:
            data["caption"] = caption
        body = await self._post(self.url(f"{GRAPH}/{user_id}/media"), token, user_id, data=data)
        return self._made(body)

    async def _status(self, token: str, user_id: str, container: str) -> str:
        body = await self._get(f"/{container}", token, user_id, {"fields": "status_code"})
        status = body.get("status_code")
        return status if isinstance(status, str) else "IN_PROGRESS"

    async def _wait(self, token: str, user_id: str, container: str, *, reuse: bool = False) -> str:
        """FINISHED once Instagram has the media; ERROR and EXPIRED are refusals (EXPIRED of
        an earlier attempt's container is answered, to make a new one)."""
        deadline = asyncio.get_running_loop().time() + self.poll_limit
        while True:
            status = await self._status(token, user_id, container)
            if status == "FINISHED":
                return status
            if status == "ERROR":
                raise PublishRejected(
                    "Instagram could not fetch or process a file of this post; check that its "
                    "address is public and its format accepted, then publish again",
                    code="media_rejected",
                )
            if status == "EXPIRED":
                if reuse:
                    return status
                raise PublishRejected(
                    "Instagram: the prepared media expired (24 hours) before publishing; "
                    "publish again",
                    code="media_expired",
                )
            if status == "PUBLISHED":
                if reuse:
                    raise PublishRejected(
                        "Instagram: this post's media was already published by an earlier "
                        "attempt; check the account instead of publishing again"
                    )
                return status
            if asyncio.get_running_loop().time() >= deadline:
                raise PlatformUnavailable(
                    "instagram_business: the media is still being processed; trying later"
                )
            await asyncio.sleep(self.poll_interval)

    async def create(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        remember: Remember,
    ) -> PublishedPost:
        container = state.get("container")
        if not isinstance(container, dict) or not container.get("id"):
            raise PublishRejected("Instagram: the media were not prepared; publish again")
        at = token.access_token
        try:
            # A read first: an expired or failed container is a clear refusal, not a guess.
            await self._wait(at, external_id, str(container["id"]))
            body = await self._post(
                self.url(f"{GRAPH}/{external_id}/media_publish"),
                at,
                external_id,
                data={"creation_id": str(container["id"])},
                creates=True,
            )
        except RequestRejected as exc:
            raise PublishRejected(f"Instagram refused the post ({exc.reason})") from None
        except PublishRejected as exc:
            if exc.reason.startswith(f"code {IG_QUOTA_CODE}:"):
                raise self._quota_spent() from None
            if exc.reason.startswith("Instagram"):
                raise
            raise PublishRejected(
                f"Instagram refused the post ({exc.reason}); correct it and publish again"
            ) from None
        media_id = self._made(body)
        node = await self._node(at, media_id, external_id, "permalink,timestamp")
        stamp = node.get("timestamp") if node else None
        return PublishedPost(
            external_id=media_id,
            permalink=node.get("permalink") if node else None,
            published_at=graph_time(stamp) if isinstance(stamp, str) else utcnow(),
        )

    async def find(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        since: datetime,
    ) -> PublishedPost | None:
        """The container says first: anything but PUBLISHED means never posted. Then the
        account's media with exactly this caption, at or after `since`; a PUBLISHED container
        whose caption cannot be matched settles for the one media published since then."""
        at = token.access_token
        container = state.get("container")
        published = False
        if isinstance(container, dict) and container.get("id"):
            try:
                status = await self._status(at, external_id, str(container["id"]))
            except RequestRejected:
                status = None
            if status in {"FINISHED", "ERROR", "EXPIRED", "IN_PROGRESS"}:
                return None
            published = status == "PUBLISHED"
        items = list(
            await self._recent(at, external_id, "media", "id,caption,timestamp,permalink", since)
        )
        match = self._earliest_match(iter(items), "caption", "timestamp", draft.text, since)
        if match is None and published:
            fresh = [
                i
                for i in items
                if isinstance(i.get("timestamp"), str) and graph_time(i["timestamp"]) >= since
            ]
            match = fresh[0] if len(fresh) == 1 else None
        if match is None:
            return None
        stamp = match.get("timestamp")
        return PublishedPost(
            external_id=str(match["id"]),
            permalink=match.get("permalink") if isinstance(match.get("permalink"), str) else None,
            published_at=graph_time(stamp) if isinstance(stamp, str) else None,
        )

    async def post_figures(self, token: TokenSet, external_id: str, post_id: str) -> PostFigures:
        """Instagram's views stand for impressions (which it retired); a reel's views are
        its video views."""
        at = token.access_token
        values = await self._lifetime(
            at, external_id, f"/{post_id}/insights", ("views", "reach", "total_interactions")
        )
        node = await self._node(at, post_id, external_id, "media_product_type", after_post=False)
        reel = bool(node) and node is not None and node.get("media_product_type") == "REELS"
        return PostFigures(
            impressions=values["views"],
            reach=values["reach"],
            engagements=values["total_interactions"],
            video_views=values["views"] if reel else None,
        )
