"""LinkedIn organizations: the versioned ``/rest`` API (Rest.li parameters) and its errors.

Publishing (Community Management API): ``/rest/images?action=initializeUpload`` and
``/rest/videos?action=initializeUpload|finalizeUpload`` hand out upload URLs on
``www.linkedin.com/dms-uploads/...`` (PUT the bytes; a video part answers its ETag), media
status at ``/rest/images/{urn}`` and ``/rest/videos/{urn}``, ``POST /rest/posts`` answers 201
with the post's URN in ``x-restli-id``; ``/rest/posts?q=author`` lists created posts too, and
``organizationalEntityShareStatistics`` with ``shares=List(..)``/``ugcPosts=List(..)`` and no
``timeIntervals`` gives a post's lifetime figures (``post_figures``).

Inbox: ``/rest/socialActions/{post-or-comment-urn}/comments`` (GET newest first, POST with
``parentComment``, DELETE ``.../comments/{id}?actor=``) from the dialect's `community`; each
member comment added with ``push`` makes an organization social-action notification, signed
``X-LI-Signature: hmacsha256=<hex>`` with the app's client secret, kept in `notifications` and
posted to `webhook_url` (else the simulator's ``webhook_target``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.responses import Response

from devtools.platforms.community import REPLY_FAULTS, Community, CommunityItem, add_item
from devtools.platforms.core import (
    AccessToken,
    CreatedPost,
    Ctx,
    Dialect,
    Json,
    Reply,
    drop_fields,
)
from devtools.platforms.figures import (
    Account,
    Post,
    b64id,
    midnight_utc,
    today_utc,
    unit_of,
)

PLATFORM = "linkedin_organization"
VIDEO_PART_BYTES = 4 * 1024 * 1024
"""LinkedIn cuts a video upload into parts of 4 MiB (the last one shorter)."""
UPLOAD_HOST = "https://www.linkedin.com"
RESERVED = set("|{}@[]()<>#\\*_~")
"""The "little" text format's reserved characters: the commentary must escape them."""


def little_text(commentary: str) -> str:
    """What LinkedIn shows for a commentary: escapes undone, and the text cut at the first
    unescaped reserved character (the silent truncation senders who forget to escape get)."""
    shown, escaped = [], False
    for char in commentary:
        if escaped:
            shown.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in RESERVED:
            break
        else:
            shown.append(char)
    return "".join(shown)


def escape_little(text: str) -> str:
    return "".join("\\" + c if c in RESERVED else c for c in text)


def video_views(post_urn: str) -> int:
    """The VIDEO_VIEW count videoAnalytics gives a created video post (deterministic)."""
    impressions = post_figures(post_urn)["impressionCount"]
    return round(impressions * (0.3 + 0.5 * unit_of(PLATFORM, post_urn, "views")))


def post_figures(post_urn: str) -> dict[str, int]:
    """The lifetime statistics the simulator gives a created post (deterministic per URN)."""

    def u(what: str) -> float:
        return unit_of(PLATFORM, post_urn, what)

    impressions = 150 + int(4000 * u("impressions"))
    likes = round(impressions * (0.01 + 0.04 * u("likes")))
    return {
        "impressionCount": impressions,
        "uniqueImpressionsCount": round(impressions * (0.5 + 0.3 * u("reach"))),
        "clickCount": round(impressions * (0.005 + 0.02 * u("clicks"))),
        "likeCount": likes,
        "commentCount": round(likes * (0.1 + 0.2 * u("comments"))),
        "shareCount": round(likes * (0.05 + 0.2 * u("shares"))),
    }


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
        ("POST", r"/rest/posts", "create_post"),
        ("POST", r"/rest/images", "images_action"),
        ("GET", r"/rest/images/([^/]+)", "image"),
        ("POST", r"/rest/videos", "videos_action"),
        ("GET", r"/rest/videos/([^/]+)", "video"),
        ("GET", r"/rest/videoAnalytics", "video_analytics"),
        ("PUT|POST", r"/dms-uploads/sp/v2/([^/]+)/(uploadedImage|uploadedVideo)/(\d+)", "upload"),
        ("GET", r"/rest/socialActions/([^/]+)/comments", "comments_list"),
        ("POST", r"/rest/socialActions/([^/]+)/comments", "comment_create"),
        ("DELETE", r"/rest/socialActions/([^/]+)/comments/([^/]+)", "comment_delete"),
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
        if name not in {"authorize", "token", "upload"} and not ctx.headers.get("linkedin-version"):
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
        if resource == "organizationalEntityShareStatistics" and (
            "shares" in ctx.query or "ugcPosts" in ctx.query
        ):
            return self._post_statistics(ctx, urn)
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
        page = itertools.islice(self._listing(account), start, start + count)
        elements = []
        for post in page:
            if isinstance(post, CreatedPost):
                elements.append(self._created_element(author, post))
                continue
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

    def _listing(self, account: Account) -> Iterator[Post | CreatedPost]:
        """The page's posts newest first: those made through the API among the drawn ones."""
        created = sorted(
            self.sim.posts_of(self.platform, account.external_id),
            key=lambda p: p.created_at,
            reverse=True,
        )
        drawn = account.posts_desc(datetime.now(UTC))
        return heapq.merge(
            created,
            drawn,
            key=lambda p: p.created_at if isinstance(p, CreatedPost) else p.created_at.timestamp(),
            reverse=True,
        )

    def _created_element(self, author: str, post: CreatedPost) -> Json:
        ms = int(post.created_at * 1000)
        sent = self._store()["posts"].get(post.post_id, {})
        element: dict[str, Json] = {
            "id": post.post_id,
            "author": author,
            "commentary": sent.get("commentary", escape_little(post.text)),
            "visibility": "PUBLIC",
            "lifecycleState": "PUBLISHED",
            "publishedAt": ms,
            "createdAt": ms,
            "lastModifiedAt": ms,
            "isReshareDisabledByAuthor": False,
            "distribution": {"feedDistribution": "MAIN_FEED"},
        }
        if sent.get("content"):
            element["content"] = sent["content"]
        return element

    # --- publishing

    def _store(self) -> dict[str, dict[str, Any]]:
        """Uploads and sent posts of this simulator run. The simulator's reset() makes a new
        created_posts list, so a new list means a new test: forget the old uploads."""
        if getattr(self, "_store_of", None) is not self.sim.created_posts:
            self._store_of = self.sim.created_posts
            self._media: dict[str, dict[str, Any]] = {"media": {}, "posts": {}}
        return self._media

    def _before_publishing(self, ctx: Ctx) -> None:
        if self.sim.take_fault(self.platform, "error_before_create"):
            raise self.server_error(500)

    def _owner(self, ctx: Ctx, owner: Json) -> Account:
        if not isinstance(owner, str) or not owner.startswith("urn:li:organization:"):
            raise self._error(422, "UNPROCESSABLE_ENTITY", "owner must be an organization URN")
        return self._org(ctx, owner)

    def _upload_url(self, asset: str, kind: str, part: int) -> str:
        return (
            f"{UPLOAD_HOST}/dms-uploads/sp/v2/{asset}/{kind}/{part}"
            f"?ca=vector_feedshare&cn=uploads&sync=0&v=beta&ut={secrets.token_urlsafe(12)}"
        )

    def images_action(self, ctx: Ctx) -> Json:
        if ctx.query.get("action") != "initializeUpload":
            raise self._error(400, "ILLEGAL_ARGUMENT", "action must be initializeUpload")
        request = ctx.body.get("initializeUploadRequest") if isinstance(ctx.body, dict) else None
        if not isinstance(request, dict):
            raise self._error(422, "UNPROCESSABLE_ENTITY", "initializeUploadRequest is required")
        account = self._owner(ctx, request.get("owner"))
        self._before_publishing(ctx)
        asset = "D4E10AQ" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
        urn = f"urn:li:image:{asset}"
        self._store()["media"][urn] = {
            "kind": "image",
            "owner": account.external_id,
            "status": "WAITING_UPLOAD",
            "parts": {0: None},
        }
        expires = int((time.time() + 86_400) * 1000)
        return {
            "value": {
                "uploadUrlExpiresAt": expires,
                "uploadUrl": self._upload_url(asset, "uploadedImage", 0),
                "image": urn,
            }
        }

    def videos_action(self, ctx: Ctx) -> Json:
        action = ctx.query.get("action")
        if action == "initializeUpload":
            return self._video_init(ctx)
        if action == "finalizeUpload":
            return self._video_finalize(ctx)
        raise self._error(400, "ILLEGAL_ARGUMENT", "action must be initializeUpload|finalizeUpload")

    def _video_init(self, ctx: Ctx) -> Json:
        request = ctx.body.get("initializeUploadRequest") if isinstance(ctx.body, dict) else None
        if not isinstance(request, dict):
            raise self._error(422, "UNPROCESSABLE_ENTITY", "initializeUploadRequest is required")
        account = self._owner(ctx, request.get("owner"))
        size = request.get("fileSizeBytes")
        if not isinstance(size, int) or size <= 0:
            raise self._error(422, "UNPROCESSABLE_ENTITY", "fileSizeBytes must be positive")
        self._before_publishing(ctx)
        asset = "D5610AQ" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
        urn = f"urn:li:video:{asset}"
        instructions = []
        for part, first in enumerate(range(0, size, VIDEO_PART_BYTES)):
            last = min(size, first + VIDEO_PART_BYTES) - 1
            instructions.append(
                {
                    "uploadUrl": self._upload_url(asset, "uploadedVideo", part),
                    "firstByte": first,
                    "lastByte": last,
                }
            )
        self._store()["media"][urn] = {
            "kind": "video",
            "owner": account.external_id,
            "status": "WAITING_UPLOAD",
            "size": size,
            "parts": dict.fromkeys(range(len(instructions))),
            "ranges": [(i["firstByte"], i["lastByte"]) for i in instructions],
            "polls": 0,
            "fails": False,
        }
        return {
            "value": {
                "uploadUrlsExpireAt": int((time.time() + 86_400) * 1000),
                "video": urn,
                "uploadInstructions": instructions,
                "uploadToken": "",
            }
        }

    def upload(self, ctx: Ctx, asset: str, kind: str, part: str) -> Response:
        self.account(ctx)
        prefix = "urn:li:image:" if kind == "uploadedImage" else "urn:li:video:"
        media = self._store()["media"].get(prefix + asset)
        index = int(part)
        if media is None or index not in media["parts"]:
            raise self.not_found(ctx)
        self._before_publishing(ctx)
        if media["kind"] == "video":
            first, last = media["ranges"][index]
            if len(ctx.raw) != last - first + 1:
                raise self._error(400, "BAD_REQUEST", "The part does not match its byte range")
        elif not ctx.raw:
            raise self._error(400, "BAD_REQUEST", "Empty upload")
        digest = hashlib.sha256(ctx.raw).hexdigest()
        media["parts"][index] = digest
        if media["kind"] == "image":
            failed = self.sim.take_fault(self.platform, "container_error")
            media["status"] = "PROCESSING_FAILED" if failed else "AVAILABLE"
        return Response(status_code=201, headers={"etag": f"/ambry-video/{digest[:24]}"})

    def _video_finalize(self, ctx: Ctx) -> Json:
        request = ctx.body.get("finalizeUploadRequest") if isinstance(ctx.body, dict) else None
        if not isinstance(request, dict):
            raise self._error(422, "UNPROCESSABLE_ENTITY", "finalizeUploadRequest is required")
        media = self._store()["media"].get(str(request.get("video")))
        if media is None or media["kind"] != "video":
            raise self.not_found(ctx)
        if media["owner"] != self.account(ctx).external_id:
            raise self._error(403, "ACCESS_DENIED", "Not the owner of this video")
        self._before_publishing(ctx)
        expected = [f"/ambry-video/{d[:24]}" if d else None for d in media["parts"].values()]
        if None in expected or request.get("uploadedPartIds") != expected:
            raise self._error(400, "BAD_REQUEST", "uploadedPartIds do not match the uploaded parts")
        media["status"] = "PROCESSING"
        media["fails"] = bool(self.sim.take_fault(self.platform, "container_error"))
        return None

    def _media_status(self, ctx: Ctx, urn: str) -> Json:
        media = self._store()["media"].get(unquote(urn))
        if media is None or media["owner"] != self.account(ctx).external_id:
            raise self.not_found(ctx)
        if media["status"] == "PROCESSING":
            # One look shows it still processing, the next one done: a client must poll.
            media["polls"] += 1
            if media["polls"] > 1:
                media["status"] = "PROCESSING_FAILED" if media["fails"] else "AVAILABLE"
        body: dict[str, Json] = {
            "id": unquote(urn),
            "owner": f"urn:li:organization:{media['owner']}",
            "status": media["status"],
        }
        if media["kind"] == "video":
            body["duration"] = 0
        if media["status"] == "PROCESSING_FAILED":
            body["processingFailureReason"] = "The media could not be processed"
        return body

    def image(self, ctx: Ctx, urn: str) -> Json:
        return self._media_status(ctx, urn)

    def video(self, ctx: Ctx, urn: str) -> Json:
        return self._media_status(ctx, urn)

    def _content_media(self, content: Json, account: Account) -> list[str]:
        if content is None:
            return []
        if not isinstance(content, dict):
            raise self._error(422, "UNPROCESSABLE_ENTITY", "content must be an object")
        if "article" in content:
            article = content["article"]
            if not isinstance(article, dict) or not article.get("source"):
                raise self._error(422, "UNPROCESSABLE_ENTITY", "article.source is required")
            return []
        if "multiImage" in content:
            images = (
                content["multiImage"].get("images")
                if isinstance(content["multiImage"], dict)
                else None
            )
            if not isinstance(images, list) or not 2 <= len(images) <= 20:
                raise self._error(422, "UNPROCESSABLE_ENTITY", "multiImage takes 2 to 20 images")
            urns = [str(i.get("id")) for i in images if isinstance(i, dict)]
        elif "media" in content and isinstance(content["media"], dict):
            urns = [str(content["media"].get("id"))]
        else:
            raise self._error(422, "UNPROCESSABLE_ENTITY", "unknown content")
        for urn in urns:
            media = self._store()["media"].get(urn)
            if media is None or media["owner"] != account.external_id:
                raise self._error(422, "UNPROCESSABLE_ENTITY", f"Unknown media {urn}")
            if media["status"] != "AVAILABLE":
                raise self._error(
                    422, "UNPROCESSABLE_ENTITY", f"Media {urn} is {media['status']}, not AVAILABLE"
                )
        return urns

    def create_post(self, ctx: Ctx) -> Response:
        self._before_publishing(ctx)
        if self.sim.take_fault(self.platform, "token_expires_mid_flow") and ctx.bearer:
            self.sim.expire(ctx.bearer)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        account = self._org(ctx, str(body.get("author", "")))
        if self.sim.take_fault(self.platform, "rate_limited"):
            raise self.throttled(30.0)
        commentary = body.get("commentary")
        if not isinstance(commentary, str) or body.get("lifecycleState") != "PUBLISHED":
            raise self._error(
                422, "UNPROCESSABLE_ENTITY", "commentary and lifecycleState PUBLISHED are required"
            )
        if body.get("visibility") not in {"PUBLIC", "CONNECTIONS", "LOGGED_IN"}:
            raise self._error(422, "UNPROCESSABLE_ENTITY", "visibility is required")
        if len(commentary) > 3000:
            raise self._error(422, "UNPROCESSABLE_ENTITY", "commentary is longer than 3000")
        urns = self._content_media(body.get("content"), account)
        kind = "ugcPost" if any(u.startswith("urn:li:video:") for u in urns) else "share"
        post_urn = f"urn:li:{kind}:7{secrets.randbelow(10**18):018d}"
        self._store()["posts"][post_urn] = {
            "commentary": commentary,
            "content": body.get("content"),
        }
        self.sim.record_post(
            self.platform,
            account.external_id,
            post_urn,
            little_text(commentary),
            media=tuple(urns),
            permalink=f"https://www.linkedin.com/feed/update/{post_urn}/",
            marker=urns[0] if urns else None,
        )
        if self.sim.take_fault(self.platform, "timeout_after_create"):
            ctx.hang = True
        return Response(
            status_code=201,
            headers={**self.usage_headers(ctx), "x-restli-id": post_urn, "x-linkedin-id": post_urn},
        )

    def video_analytics(self, ctx: Ctx) -> Json:
        if ctx.query.get("q") != "entity" or ctx.query.get("type") not in {
            "VIDEO_VIEW",
            "VIEWER",
            "TIME_WATCHED",
        }:
            raise self._error(400, "ILLEGAL_ARGUMENT", "q=entity and a type are required")
        account = self.account(ctx)
        entity = unquote(ctx.query.get("entity", ""))
        made = next(
            (
                p
                for p in self.sim.posts_of(self.platform, account.external_id)
                if p.post_id == entity
            ),
            None,
        )
        if made is None or not entity.startswith("urn:li:ugcPost:"):
            raise self._error(403, "ACCESS_DENIED", f"Not enough permissions to access: {entity}")
        value = video_views(entity)
        if ctx.query["type"] == "VIEWER":
            value = round(value * 0.8)
        elif ctx.query["type"] == "TIME_WATCHED":
            value *= 4000
        return {
            "paging": {"start": 0, "count": 10, "links": []},
            "elements": [{"entity": entity, "type": ctx.query["type"], "value": value}],
        }

    def _post_statistics(self, ctx: Ctx, org_urn: str) -> Json:
        urns: list[str] = []
        for param in ("shares", "ugcPosts"):
            value = ctx.query.get(param, "")
            found = re.fullmatch(r"List\((.*)\)", value)
            if value and found is None:
                raise self._error(400, "ILLEGAL_ARGUMENT", f"{param} must be List(...)")
            if found:
                urns += [unquote(u) for u in found.group(1).split(",") if u]
        elements = []
        for urn in urns:
            kind = "share" if urn.startswith("urn:li:share:") else "ugcPost"
            figures = post_figures(urn)
            total = sum(
                figures[k] for k in ("clickCount", "likeCount", "commentCount", "shareCount")
            )
            elements.append(
                {
                    "organizationalEntity": org_urn,
                    kind: urn,
                    "totalShareStatistics": {
                        **figures,
                        "engagement": round(total / max(1, figures["impressionCount"]), 6),
                    },
                }
            )
        deprecated = self.sim._deprecated_names(self.platform)
        return drop_fields(
            {"paging": {"start": 0, "count": 10, "links": []}, "elements": elements}, deprecated
        )

    # --- comments and their notifications (the community inbox)

    def reset(self) -> None:
        self.community = Community(self.platform)
        self.notifications: list[tuple[bytes, dict[str, str]]] = []
        """Every organization social-action notification signed, pushed or not (body and
        headers), for tests that post them themselves."""
        self.webhook_url: str | None = None
        """Where pushes go (``{url}/v1/platform-webhooks/linkedin_organization``); the
        simulator's own webhook target when None."""
        self._notification_id = 0

    def add_community_item(
        self,
        account: str,
        kind: str,
        text: str,
        *,
        author_id: str,
        author_name: str | None = None,
        parent: str | None = None,
        thread: str | None = None,
        push: bool = True,
        created_at: datetime | None = None,
    ) -> str:
        """A member's comment on one of the organization's posts (`thread`: its URN, default
        the newest post) or reply to a comment (`parent`: its comment URN); returns the
        comment URN. `author_id`: a member URN, or an id that becomes one. `push`: LinkedIn
        notifies the organization (signed, without the text)."""
        with self.sim._lock:
            owner = self.sim.account(self.platform, account)
            top = self.community.get(parent) if parent is not None else None
            if parent is not None and (top is None or top.parent is not None):
                raise KeyError(f"no top-level comment {parent!r} on {account}")
            if kind not in {"comment", "reply"} or (kind == "reply" and top is None):
                raise ValueError("LinkedIn has comments and replies to comments only here")
            item = add_item(
                self,
                owner,
                "reply" if top is not None else "comment",
                text,
                author_id=author_id,
                author_name=author_name,
                parent=top,
                thread=thread,
                created_at=created_at,
            )
            if push:
                self.notify([item])
            return item.id

    def replies_of(self, account: str) -> list[CommunityItem]:
        with self.sim._lock:
            return self.community.replies_of(account)

    def community_id(self, account: Account, kind: str) -> str:
        return _comment_urn(f"urn:li:activity:7{secrets.randbelow(10**18):018d}")

    def community_thread(self, account: Account, item: CommunityItem) -> str | None:
        newest = next(iter(self._listing(account)))
        return newest.post_id if isinstance(newest, CreatedPost) else newest.id

    def webhook_body(self, items: Sequence[CommunityItem]) -> bytes | None:
        """Organization social-action notifications: one COMMENT per item, without its text
        (the receiver polls the organization's comments)."""
        notes = []
        for item in items:
            self._notification_id += 1
            org = f"urn:li:organization:{item.account}"
            notes.append(
                {
                    "notificationId": self._notification_id,
                    "organizationalEntity": org,
                    "action": "COMMENT",
                    "sourcePost": item.thread,
                    "decoratedSourcePost": {"entity": item.thread, "owner": org},
                    "generatedActivity": item.id,
                    "decoratedGeneratedActivity": {
                        "comment": {"entity": item.id, "owner": _actor(item)}
                    },
                    "subscriber": f"urn:li:person:{b64id(10, 'subscriber', item.account)}",
                    "lastModifiedAt": int(item.created_at * 1000),
                }
            )
        payload = {"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": notes}
        return json.dumps(payload, separators=(",", ":")).encode()

    def webhook_headers(self, body: bytes, secret: str) -> dict[str, str]:
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-LI-Signature": f"hmacsha256={signature}"}

    def _secret(self) -> str:
        clients = self.sim._clients
        known = clients.get(self.platform) if clients is not None else None
        return known[1] if known is not None else "linkedin-simulator-secret"

    def notify(self, items: Sequence[CommunityItem], *, secret: str | None = None) -> bytes:
        """Sign (with the app's client secret, or `secret`), keep and push the notification
        about `items`; its body. Pushed to `webhook_url`, else the simulator's own."""
        body = self.webhook_body(items) or b""
        headers = {
            "Content-Type": "application/json",
            **self.webhook_headers(body, secret or self._secret()),
        }
        self.notifications.append((body, headers))
        target = self.webhook_url or getattr(self.sim, "webhook_url", None)
        if isinstance(target, str) and target:
            url = f"{target.rstrip('/')}/v1/platform-webhooks/{self.platform}"
            threading.Thread(target=_post, args=(url, body, headers), daemon=True).start()
        return body

    def _comment_element(self, item: CommunityItem) -> Json:
        replies = len(self.community.children(item.id))
        ms = int(item.created_at * 1000)
        element: dict[str, Json] = {
            "actor": _actor(item),
            "commentUrn": item.id,
            "id": _comment_id(item.id),
            "object": _activity(item.id),
            "message": {"text": item.text, "attributes": []},
            "created": {"actor": _actor(item), "time": ms},
            "lastModified": {"actor": _actor(item), "time": ms},
            "commentsSummary": {
                "totalFirstLevelComments": replies,
                "aggregatedTotalComments": replies,
            },
            "likesSummary": {"totalLikes": 0, "likedByCurrentUser": False},
        }
        if item.parent is not None:
            element["parentComment"] = item.parent
        return element

    def _target(self, ctx: Ctx, target: str) -> tuple[Account, CommunityItem | None, str]:
        """The organization, the comment (None: a post) and the post a socialActions path
        names; 403 unless the token administers that post's organization."""
        account = self.account(ctx)
        urn = unquote(target)
        if urn.startswith("urn:li:comment:"):
            comment = self.community.get(urn)
            if comment is None or comment.deleted:
                raise self._error(404, "NOT_FOUND", f"Comment {urn} does not exist", 0)
            if comment.account != account.external_id:
                raise self._error(403, "ACCESS_DENIED", f"Not enough permissions: {urn}")
            return account, comment, comment.thread or ""
        posts = {p.thread for p in self.community.of(account.external_id)}
        if urn not in posts and not any(
            (p.post_id if isinstance(p, CreatedPost) else p.id) == urn
            for p in itertools.islice(self._listing(account), 200)
        ):
            raise self._error(403, "ACCESS_DENIED", f"Not enough permissions: {urn}")
        return account, None, urn

    def comments_list(self, ctx: Ctx, target: str) -> Json:
        account, comment, post = self._target(ctx, target)
        count = max(1, min(100, int(ctx.query.get("count", "10"))))
        start = max(0, int(ctx.query.get("start", "0")))
        if comment is not None:
            found = self.community.children(comment.id)
        else:
            found = [
                i
                for i in self.community.of(account.external_id)
                if i.thread == post and i.parent is None
            ]
        found.reverse()  # newest first
        page = found[start : start + count]
        return {
            "paging": {"start": start, "count": count, "total": len(found), "links": []},
            "elements": [self._comment_element(i) for i in page],
        }

    def comment_create(self, ctx: Ctx, target: str) -> Response:
        account, comment, post = self._target(ctx, target)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        org = f"urn:li:organization:{account.external_id}"
        if body.get("actor") != org:
            raise self._error(403, "ACCESS_DENIED", "actor must be an organization you administer")
        message = body.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise self._error(422, "UNPROCESSABLE_ENTITY", "message.text is required")
        if len(text) > 1250:
            raise self._error(422, "UNPROCESSABLE_ENTITY", "message.text is longer than 1250")
        parent = body.get("parentComment")
        if comment is not None:
            if parent != comment.id or comment.parent is not None:
                raise self._error(
                    400, "ILLEGAL_ARGUMENT", "parentComment must be the top-level comment"
                )
        elif parent is not None:
            raise self._error(400, "ILLEGAL_ARGUMENT", "parentComment names another comment")
        if self.sim.take_fault(self.platform, "error_before_create"):
            raise self.server_error(500)
        fault = self.sim.take_fault(self.platform, *REPLY_FAULTS)
        item = self.community.new(
            account.external_id,
            _comment_urn(_activity(comment.id) if comment is not None else post),
            "reply" if comment is not None else "comment",
            text,
            author_id=org,
            author_name=account.name,
            thread=post,
            parent=comment.id if comment is not None else None,
            target=comment.id if comment is not None else post,
            at=ctx.now,
        )
        if fault == "reply_500_after_create":
            raise self.server_error(500)
        if fault == "reply_timeout":
            ctx.hang = True
        return Response(
            json.dumps(self._comment_element(item)),
            status_code=201,
            media_type="application/json",
            headers={**self.usage_headers(ctx), "x-restli-id": item.id},
        )

    def comment_delete(self, ctx: Ctx, target: str, comment_id: str) -> Response:
        account, comment, post = self._target(ctx, target)
        if unquote(ctx.query.get("actor", "")) != f"urn:li:organization:{account.external_id}":
            raise self._error(403, "ACCESS_DENIED", "actor must be an organization you administer")
        wanted = unquote(comment_id)
        under = (
            self.community.children(comment.id)
            if comment is not None
            else [i for i in self.community.of(account.external_id) if i.thread == post]
        )
        found = next(
            (i for i in under if wanted in {i.id, _comment_id(i.id)}),
            None,
        )
        if found is None:
            raise self._error(404, "NOT_FOUND", f"Comment {wanted} does not exist", 0)
        found.deleted = True
        return Response(status_code=204, headers=self.usage_headers(ctx))


def _activity_of(post: str) -> str:
    """The activity URN a post's (or an activity's) comments hang from."""
    digits = "".join(c for c in post if c.isdigit()) or "0"
    return f"urn:li:activity:{digits[-19:]}"


def _comment_urn(post: str) -> str:
    return f"urn:li:comment:({_activity_of(post)},7{secrets.randbelow(10**18):018d})"


def _actor(item: CommunityItem) -> str:
    """A comment's author as LinkedIn names it: a member (or organization) URN."""
    if item.author_id.startswith("urn:li:"):
        return item.author_id
    return f"urn:li:person:{item.author_id}"


def _activity(comment_urn: str) -> str:
    return comment_urn.removeprefix("urn:li:comment:(").split(",", 1)[0]


def _comment_id(comment_urn: str) -> str:
    return comment_urn.rstrip(")").rsplit(",", 1)[-1]


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """Deliver one push, as LinkedIn does: once, whatever the answer."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(url, content=body, headers=headers, timeout=10.0)
