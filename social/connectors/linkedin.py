"""LinkedIn organization pages, through the versioned REST API (``/rest``, Rest.li 2.0).

Follower gains come from organizationalEntityFollowerStatistics, impressions, unique
impressions and interactions from organizationalEntityShareStatistics (one request each, with
a DAY time interval), posts from ``/rest/posts?q=author``, today's follower total from
networkSizes (the profile). A field LinkedIn stops sending fails only its metric.

Budget: ``linkedin_organization`` before every request. LinkedIn publishes no usage headers;
a 429 pauses the key for Retry-After when given, else 60 s. Refresh tokens are not rotated:
the refresh grant answers the same one.

Publishing (Community Management API), `prepare`: each image through
``/rest/images?action=initializeUpload`` (owner = the organization) and a PUT of its bytes to
the upload URL; a video through ``/rest/videos?action=initializeUpload``, a PUT of each byte
range it names (read from the file one range at a time; each answers an ETag) and
``finalizeUpload`` with those ETags; then every medium's status is polled until AVAILABLE.
`create`: ``POST /rest/posts`` (one medium as ``content.media``, several images as
``content.multiImage``, else the link as an ``article``), the post's URN in ``x-restli-id``.
`find`: the organization's latest posts (``/rest/posts?q=author``), matched on a medium's URN
from `state`, else on the commentary and a creation time after `since`. `post_figures`:
lifetime ``organizationalEntityShareStatistics`` of the share or ugcPost, and a video post's
VIDEO_VIEW count from ``videoAnalytics``.

Inbox: `fetch_items` reads the comments of the organization's latest posts
(``/rest/socialActions/{post-urn}/comments``) and the replies of those that have some
(``/rest/socialActions/{comment-urn}/comments``); `reply` posts a comment with
``parentComment`` (one level: an answer to a reply goes under its top-level comment);
`moderate` deletes (``DELETE /rest/socialActions/{urn}/comments/{id}?actor=``): LinkedIn has
no hiding and no private replies. Mentions are not read (the notifications below still ask
for a poll on SHARE_MENTION). LinkedIn pushes organization social-action notifications
without the comment's text: `notification_challenge`, `verify_notification` and
`notified_organizations` serve the webhook receiver, which then polls that organization.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from infra.clock import utcnow
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
    stream,
    sub,
)
from social.connectors.types import (
    DailyMetrics,
    InboundItem,
    InboxKind,
    ItemRef,
    MediaFile,
    Moderation,
    OutcomeUnknown,
    Platform,
    PlatformUnavailable,
    PostDraft,
    PostFigures,
    Profile,
    PublishedPost,
    PublishRejected,
    Remember,
    SentReply,
    TokenSet,
)

API = "https://api.linkedin.com/rest"
VERSION = "202411"
PAGE_SIZE = 100
MAX_PAGES = 30
ENGAGEMENT_FIELDS = ("clickCount", "likeCount", "commentCount", "shareCount")
RESERVED = frozenset("|{}@[]()<>#\\*_~")
"""Characters the "little" text format of a commentary reserves: unescaped, LinkedIn reads
them as markup and silently cuts the post there."""
FIND_PAGE = 20
FIND_PAGES = 5
INBOX_POSTS = 20
"""Polling reads the comments of the organization's latest posts."""
COMMENT_PAGE = 100
COMMENT_PAGES = 5
SIGNATURE_PREFIX = "hmacsha256="
POLL_ACTIONS = frozenset({"COMMENT", "COMMENT_EDIT", "COMMENT_DELETE", "SHARE_MENTION"})
"""Notification actions that change what the inbox shows (likes and shares do not)."""
CLOCK_SLACK = timedelta(minutes=2)


def notification_challenge(client_secret: str, challenge_code: str) -> dict[str, str]:
    """What LinkedIn's webhook validation (GET ?challengeCode=) expects back: the code and
    the hex HMAC-SHA256 of it keyed with the app's client secret."""
    digest = hmac.new(client_secret.encode(), challenge_code.encode(), hashlib.sha256)
    return {"challengeCode": challenge_code, "challengeResponse": digest.hexdigest()}


def verify_notification(client_secret: str, raw_body: bytes, header: str | None) -> bool:
    """Whether `X-LI-Signature` (``hmacsha256=<hex>``) signs the raw body with the client
    secret; compared in constant time."""
    if not header or not header.startswith(SIGNATURE_PREFIX) or not client_secret:
        return False
    expected = hmac.new(client_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len(SIGNATURE_PREFIX) :].strip().lower())


def notified_organizations(payload: Any) -> list[str]:
    """The organization ids whose social-action notifications call for a poll of their
    comments (the notifications carry no comment text), in order, once each. Likes and
    shares ask for nothing; a payload of another type gives nothing; one that is not a JSON
    object is a ValueError."""
    if not isinstance(payload, dict):
        raise ValueError("a LinkedIn notification is a JSON object")
    if payload.get("type", "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS") != (
        "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS"
    ):
        return []
    found: list[str] = []
    for note in as_list(payload.get("notifications")):
        if not isinstance(note, dict) or note.get("action") not in POLL_ACTIONS:
            continue
        org = note.get("organizationalEntity")
        if isinstance(org, str) and org.startswith(org_urn("")):
            org_id = org.removeprefix(org_urn(""))
            if org_id and org_id not in found:
                found.append(org_id)
    return found


def little_text(text: str) -> str:
    """The commentary that shows `text` as written."""
    return "".join("\\" + char if char in RESERVED else char for char in text)


def _ranges(media: MediaFile, instructions: list[Json]) -> list[tuple[str, int, int]]:
    """(upload URL, first byte, last byte) of each part LinkedIn asked for, checked against
    the file so that a part never reads past its end."""
    parts = []
    for item in instructions:
        if not isinstance(item, dict):
            raise PlatformUnavailable("linkedin_organization: unusable video upload instructions")
        url = item.get("uploadUrl")
        first_byte, last_byte = as_int(item.get("firstByte")), as_int(item.get("lastByte"))
        if (
            not isinstance(url, str)
            or first_byte is None
            or last_byte is None
            or not 0 <= first_byte <= last_byte < media.size
        ):
            raise PlatformUnavailable("linkedin_organization: unusable video upload instructions")
        parts.append((url, first_byte, last_byte))
    return parts


def _read_range(media: MediaFile, first: int, last: int) -> bytes:
    with media.path.open("rb") as handle:
        handle.seek(first)
        return handle.read(last - first + 1)


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
        "w_organization_social",
    )
    can_reply_privately = False
    moderations = frozenset({Moderation.delete})
    """An organization deletes comments on its posts; LinkedIn has no hiding."""
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

    # --- publishing

    media_poll_seconds: float = 3.0
    """LinkedIn names no wait: how long between two looks at a medium still processing."""
    media_poll_attempts: int = 100

    async def _json_call(self, method: str, path_and_query: str, token: str, body: Json) -> Json:
        return await self._request(
            method, self.url(API + path_and_query), token=token, keys=((self.key, 1.0),), json=body
        )

    async def prepare(
        self, token: TokenSet, external_id: str, draft: PostDraft, state: dict[str, Any]
    ) -> dict[str, Any]:
        kinds = ["video" if m.kind == "video" else "image" for m in draft.media]
        if "video" in kinds and len(kinds) > 1:
            raise PublishRejected(
                "LinkedIn: a post carries one video, or images only; split this post",
                code="rejected",
            )
        if any(m.kind == "document" for m in draft.media):
            raise PublishRejected(
                "LinkedIn: documents are not supported here; attach images or a video",
                code="rejected",
            )
        earlier = [m for m in as_list(state.get("media")) if isinstance(m, dict)]
        prepared: list[dict[str, Any]] = []
        try:
            for index, (media, kind) in enumerate(zip(draft.media, kinds, strict=True)):
                before = earlier[index] if index < len(earlier) else {}
                if await self._still_there(token.access_token, before, kind, media.size):
                    prepared.append(before)  # uploaded by an earlier attempt
                    continue
                upload = self._upload_video if kind == "video" else self._upload_image
                urn = await upload(token.access_token, external_id, media)
                prepared.append({"urn": urn, "kind": kind, "size": media.size})
            for item in prepared:
                await self._wait_available(token.access_token, item["urn"], item["kind"])
        except RequestRejected as exc:
            raise PublishRejected(
                f"LinkedIn refused the media ({exc.reason}); check the files and publish again",
                code="media_rejected",
            ) from None
        return {"media": prepared}

    async def _still_there(self, token: str, before: dict[str, Any], kind: str, size: int) -> bool:
        """Whether an earlier attempt's upload of this medium can serve again."""
        urn = before.get("urn")
        if not isinstance(urn, str) or (before.get("kind"), before.get("size")) != (kind, size):
            return False
        path = f"/{'videos' if kind == 'video' else 'images'}/{quote(urn, safe='')}"
        try:
            status = (await self._get(path, token)).get("status")
        except RequestRejected:
            return False  # gone since (or never finished): upload it again
        return status in {"AVAILABLE", "PROCESSING"}

    async def _upload_image(self, token: str, external_id: str, media: MediaFile) -> str:
        answer = await self._json_call(
            "POST",
            "/images?action=initializeUpload",
            token,
            {"initializeUploadRequest": {"owner": org_urn(external_id)}},
        )
        value = sub(answer, "value")
        url, urn = value.get("uploadUrl"), value.get("image")
        if not isinstance(url, str) or not isinstance(urn, str):
            raise PlatformUnavailable(f"{self.key}: initializeUpload gave no upload URL")
        await self._request(
            "PUT",
            self.url(url),
            token=token,
            keys=((self.key, 1.0),),
            content=stream(media, 1024 * 1024),
            headers={"Content-Type": "application/octet-stream"},
        )
        return urn

    async def _upload_video(self, token: str, external_id: str, media: MediaFile) -> str:
        answer = await self._json_call(
            "POST",
            "/videos?action=initializeUpload",
            token,
            {
                "initializeUploadRequest": {
                    "owner": org_urn(external_id),
                    "fileSizeBytes": media.size,
                    "uploadCaptions": False,
                    "uploadThumbnail": False,
                }
            },
        )
        value = sub(answer, "value")
        urn = value.get("video")
        if not isinstance(urn, str):
            raise PlatformUnavailable(f"{self.key}: initializeUpload gave no video")
        etags: list[str] = []
        for url, first, last in _ranges(media, as_list(value.get("uploadInstructions"))):
            sent: list[Any] = []
            await self._request(
                "PUT",
                self.url(url),
                token=token,
                keys=((self.key, 1.0),),
                content=_read_range(media, first, last),
                headers={"Content-Type": "application/octet-stream"},
                answer=sent,
            )
            etag = sent[0].headers.get("etag") if sent else None
            if not etag:
                raise PlatformUnavailable(f"{self.key}: a video part was not acknowledged")
            etags.append(etag)
        await self._json_call(
            "POST",
            "/videos?action=finalizeUpload",
            token,
            {
                "finalizeUploadRequest": {
                    "video": urn,
                    "uploadToken": value.get("uploadToken") or "",
                    "uploadedPartIds": etags,
                }
            },
        )
        return urn

    async def _wait_available(self, token: str, urn: str, kind: str) -> None:
        path = f"/{'videos' if kind == 'video' else 'images'}/{quote(urn, safe='')}"
        for attempt in range(self.media_poll_attempts):
            status = (await self._get(path, token)).get("status")
            if status == "AVAILABLE":
                return
            if status == "PROCESSING_FAILED":
                raise PublishRejected(
                    f"LinkedIn could not process the {kind}; check its format and publish again",
                    code="media_rejected",
                )
            if attempt + 1 < self.media_poll_attempts:
                await asyncio.sleep(self.media_poll_seconds)
        raise PlatformUnavailable(f"{self.key}: the {kind} is still processing")

    def _content(self, draft: PostDraft, state: dict[str, Any]) -> dict[str, Json] | None:
        media = [m for m in as_list(state.get("media")) if isinstance(m, dict)]
        alts = [m.alt_text for m in draft.media]
        if len(media) != len(draft.media):
            raise PublishRejected(f"{self.key}: the media were not prepared; publish again")
        if len(media) > 1:
            images = []
            for item, alt in zip(media, alts, strict=True):
                image: dict[str, Json] = {"id": item["urn"]}
                if alt:
                    image["altText"] = alt
                images.append(image)
            return {"multiImage": {"images": images}}
        if media:
            single: dict[str, Json] = {"id": media[0]["urn"]}
            if media[0].get("kind") == "video":
                single["title"] = draft.title
            elif alts[0]:
                single["altText"] = alts[0]
            return {"media": single}
        if draft.link:
            return {"article": {"source": draft.link, "title": draft.title or draft.link}}
        return None

    async def create(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        remember: Remember,
    ) -> PublishedPost:
        body: dict[str, Json] = {
            "author": org_urn(external_id),
            "commentary": little_text(draft.text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        content = self._content(draft, state)
        if content is not None:
            body["content"] = content
        sent: list[Any] = []
        try:
            await self._request(
                "POST",
                self.url(API + "/posts"),
                token=token.access_token,
                keys=((self.key, 1.0),),
                json=body,
                creates=True,
                answer=sent,
            )
        except PublishRejected as exc:
            raise PublishRejected(
                f"LinkedIn refused the post ({exc.reason}); correct it and publish again",
                code=exc.code,
            ) from None
        urn = sent[0].headers.get("x-restli-id") if sent else None
        if not urn:
            # Created (2xx) but unnamed: only the page's listing can tell which post it is.
            raise OutcomeUnknown(f"{self.key}: the post was accepted without its id")
        return PublishedPost(external_id=urn, permalink=permalink(urn), published_at=utcnow())

    async def find(
        self,
        token: TokenSet,
        external_id: str,
        draft: PostDraft,
        state: dict[str, Any],
        since: datetime,
    ) -> PublishedPost | None:
        ours = {
            str(m["urn"]) for m in as_list(state.get("media")) if isinstance(m, dict) and "urn" in m
        }
        texts = {little_text(draft.text), draft.text}
        floor = int(since.timestamp() * 1000)
        author = quote(org_urn(external_id), safe="")
        for page in range(FIND_PAGES):
            body = await self._get(
                f"/posts?author={author}&q=author&count={FIND_PAGE}&start={page * FIND_PAGE}",
                token.access_token,
            )
            elements = [e for e in as_list(body.get("elements")) if isinstance(e, dict)]
            for post in elements:
                created = as_int(post.get("createdAt")) or as_int(post.get("publishedAt")) or 0
                urn = post.get("id")
                if not isinstance(urn, str):
                    continue
                if ours & _media_of(post) or (created >= floor and post.get("commentary") in texts):
                    return PublishedPost(
                        external_id=urn,
                        permalink=permalink(urn),
                        published_at=datetime.fromtimestamp(created / 1000, UTC),
                    )
            oldest = min((as_int(e.get("createdAt")) or 0 for e in elements), default=0)
            if len(elements) < FIND_PAGE or oldest < floor:
                return None
        return None

    def resumable(self, state: dict[str, Any]) -> bool:
        return False

    async def post_figures(self, token: TokenSet, external_id: str, post_id: str) -> PostFigures:
        param = "ugcPosts" if post_id.startswith("urn:li:ugcPost:") else "shares"
        body = await self._get(
            "/organizationalEntityShareStatistics?q=organizationalEntity"
            f"&organizationalEntity={quote(org_urn(external_id), safe='')}"
            f"&{param}=List({quote(post_id, safe='')})",
            token.access_token,
        )
        elements = [e for e in as_list(body.get("elements")) if isinstance(e, dict)]
        if not elements:
            raise RequestRejected(f"no statistics for {post_id}")
        totals = sub(elements[0], "totalShareStatistics")
        parts = [as_int(totals.get(f)) for f in ENGAGEMENT_FIELDS]
        views: int | None = None
        if param == "ugcPosts":  # a video post: its views come from videoAnalytics
            analytics = await self._get(
                f"/videoAnalytics?q=entity&entity={quote(post_id, safe='')}"
                "&type=VIDEO_VIEW&aggregation=ALL",
                token.access_token,
            )
            rows = [e for e in as_list(analytics.get("elements")) if isinstance(e, dict)]
            values = [as_int(row.get("value")) for row in rows]
            views = None if not values or None in values else sum(v or 0 for v in values)
        return PostFigures(
            impressions=as_int(totals.get("impressionCount")),
            reach=as_int(totals.get("uniqueImpressionsCount")),
            engagements=None if None in parts else sum(p for p in parts if p is not None),
            video_views=views,
        )

    # --- the community inbox

    def _social(self, target: str, rest: str = "") -> str:
        return self.url(f"{API}/socialActions/{quote(target, safe='')}/comments{rest}")

    async def _comments(self, token: str, target: str) -> list[dict[str, Json]]:
        """The comments on a post or the replies to a comment, every page."""
        out: list[dict[str, Json]] = []
        for page in range(COMMENT_PAGES):
            body = as_dict(
                await self._request(
                    "GET",
                    self._social(target, f"?start={page * COMMENT_PAGE}&count={COMMENT_PAGE}"),
                    token=token,
                    keys=((self.key, 1.0),),
                )
            )
            elements = [e for e in as_list(body.get("elements")) if isinstance(e, dict)]
            out.extend(elements)
            if len(elements) < COMMENT_PAGE:
                break
        return out

    async def fetch_items(
        self, token: TokenSet, external_id: str, since: datetime | None
    ) -> list[InboundItem]:
        """Comments and replies on the organization's latest posts (LinkedIn has no list of
        an organization's comments across posts); replies are read only under comments
        whose summary says they have some."""
        at = token.access_token
        author = quote(org_urn(external_id), safe="")
        posts = await self._get(f"/posts?author={author}&q=author&count={INBOX_POSTS}&start=0", at)
        found: dict[str, InboundItem] = {}
        for post in as_list(posts.get("elements")):
            urn = post.get("id") if isinstance(post, dict) else None
            if not isinstance(urn, str):
                continue
            for comment in await self._comments(at, urn):
                item = _comment_item(external_id, comment, urn)
                if item is None:
                    continue
                found[item.external_id] = item
                summary = sub(comment, "commentsSummary")
                if as_int(summary.get("aggregatedTotalComments")):
                    for reply in await self._comments(at, item.external_id):
                        answer = _comment_item(external_id, reply, urn)
                        if answer is not None:
                            found[answer.external_id] = answer
        items = [i for i in found.values() if since is None or i.created_at >= since]
        return sorted(items, key=lambda i: i.created_at)

    async def reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, *, private: bool
    ) -> SentReply:
        if private:
            raise PublishRejected("LinkedIn has no private replies to comments.")
        # One level of replies: an answer to a reply goes under its top-level comment.
        top = item.parent_external_id or item.external_id
        body: dict[str, Json] = {
            "actor": org_urn(external_id),
            "object": _activity(top) or item.thread_external_id,
            "message": {"text": text},
            "parentComment": top,
        }
        sent: list[Any] = []
        try:
            answer = await self._request(
                "POST",
                self._social(top),
                token=token.access_token,
                keys=((self.key, 1.0),),
                json=body,
                creates=True,
                answer=sent,
            )
        except PublishRejected as exc:
            raise PublishRejected(f"LinkedIn refused the reply ({exc.reason}).") from None
        urn = as_dict(answer).get("commentUrn") or (
            sent[0].headers.get("x-restli-id") if sent else None
        )
        if not isinstance(urn, str) or not urn:
            raise OutcomeUnknown(f"{self.key}: the reply was accepted without its id")
        created = as_int(sub(as_dict(answer), "created").get("time"))
        return SentReply(
            urn,
            _comment_link(item.thread_external_id, urn),
            datetime.fromtimestamp(created / 1000, UTC) if created else utcnow(),
        )

    async def find_reply(
        self, token: TokenSet, external_id: str, item: ItemRef, text: str, since: datetime
    ) -> SentReply | None:
        top = item.parent_external_id or item.external_id
        floor = since - CLOCK_SLACK
        for comment in await self._comments(token.access_token, top):
            found = _comment_item(external_id, comment, item.thread_external_id)
            if (
                found is not None
                and found.from_account
                and found.text == text
                and found.created_at >= floor
            ):
                return SentReply(
                    found.external_id,
                    _comment_link(item.thread_external_id, found.external_id),
                    found.created_at,
                )
        return None

    async def moderate(
        self, token: TokenSet, external_id: str, item: ItemRef, action: Moderation
    ) -> None:
        if action is not Moderation.delete:
            raise PublishRejected("LinkedIn cannot hide a comment; delete it instead.")
        target = item.parent_external_id or item.thread_external_id
        if not target:
            raise PublishRejected("LinkedIn: the comment's post is unknown; it cannot be deleted.")
        comment_id = _comment_id(item.external_id)
        actor = quote(org_urn(external_id), safe="")
        try:
            await self._request(
                "DELETE",
                self._social(target, f"/{quote(comment_id, safe='')}?actor={actor}"),
                token=token.access_token,
                keys=((self.key, 1.0),),
            )
        except RequestRejected as exc:
            raise PublishRejected(f"LinkedIn refused to delete it ({exc.reason}).") from None


def _activity(comment_urn: str) -> str | None:
    """urn:li:comment:(urn:li:activity:1,2) -> urn:li:activity:1"""
    if not comment_urn.startswith("urn:li:comment:("):
        return None
    return comment_urn.removeprefix("urn:li:comment:(").split(",", 1)[0] or None


def _comment_id(comment_urn: str) -> str:
    """urn:li:comment:(urn:li:activity:1,2) -> 2"""
    return comment_urn.rstrip(")").rsplit(",", 1)[-1]


def _comment_link(post: str | None, comment_urn: str) -> str | None:
    if not post:
        return None
    return f"{permalink(post)}?commentUrn={quote(comment_urn, safe='')}"


def _comment_item(org: str, comment: dict[str, Json], post: str | None) -> InboundItem | None:
    urn, actor = comment.get("commentUrn"), comment.get("actor")
    created = as_int(sub(comment, "created").get("time"))
    if not isinstance(urn, str) or not isinstance(actor, str) or created is None:
        return None
    parent = comment.get("parentComment")
    text = sub(comment, "message").get("text")
    return InboundItem(
        account_external_id=org,
        external_id=urn,
        kind=InboxKind.reply if isinstance(parent, str) else InboxKind.comment,
        text=text if isinstance(text, str) else "",
        author_id=actor,
        created_at=datetime.fromtimestamp(created / 1000, UTC),
        parent_external_id=parent if isinstance(parent, str) else None,
        thread_external_id=post,
        from_account=actor == org_urn(org),
    )


def permalink(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"


def _media_of(post: dict[str, Json]) -> set[str]:
    content = sub(post, "content")
    found = {str(sub(content, "media").get("id"))} if sub(content, "media") else set()
    for image in as_list(sub(content, "multiImage").get("images")):
        if isinstance(image, dict) and image.get("id"):
            found.add(str(image["id"]))
    return found
