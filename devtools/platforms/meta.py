"""Facebook pages and Instagram business accounts: the Graph API, its usage headers
(``X-App-Usage``, ``X-Business-Use-Case-Usage``) and its error codes.

Publishing, as Graph does it:

* Instagram: ``GET {ig-user}/content_publishing_limit`` (100 posts a moving 24 hours),
  ``POST {ig-user}/media`` makes a container (``image_url``; ``media_type=REELS`` +
  ``video_url``; carousel items with ``is_carousel_item=true``, then ``media_type=CAROUSEL`` +
  ``children``, 2 to 10), ``GET {container}?fields=status_code`` (a video stays IN_PROGRESS
  for one read; EXPIRED after 24 hours; PUBLISHED once used), ``POST {ig-user}/media_publish``
  with ``creation_id`` makes the post (code 9 / 2207042 past the quota).
* Facebook: ``POST {page}/photos`` (multipart ``source``, ``published=false``: shown nowhere
  until attached), ``POST {page}/feed`` (``message``, ``link``, ``attached_media[i]``),
  ``POST {page}/videos`` (multipart ``source``, ``description``: the video post itself).
* Made posts lead the listings (``{page}/feed``, ``published_posts``, ``{ig-user}/media``),
  answer as nodes, and have lifetime insights (``post_insight`` gives their figures):
  ``{media}/insights`` (views, reach, total_interactions...), ``{post}/insights``
  (post_media_view, post_total_media_view_unique, post_video_views...), ``{video}/
  video_insights``.
* Faults (``PlatformSimulator.fault``): ``error_before_create`` (a 5xx on the first publishing
  call), ``quota_spent`` (the quota is spent for 24 hours, from content_publishing_limit or,
  queued after it was read, from media_publish),
  ``container_error`` (the container ends in ERROR; a Page photo or video Graph cannot
  process), ``rate_limited``, ``token_expires_mid_flow`` and ``timeout_after_create`` on the
  call that makes the post.
The community inbox, as Graph shows it to a Page or an Instagram account:

* ``GET {post}/comments`` (Facebook: chronological, top-level unless ``filter=stream``, each
  reply with its ``parent``; ``is_hidden``), ``GET {media}/comments`` and ``{comment}/replies``
  (Instagram: newest first; ``hidden``, ``replies``), ``since`` and cursor paging; a comment
  is a node too (``GET {comment}``).
* ``POST {comment}/comments`` (Facebook) and ``POST {comment}/replies`` (Instagram) reply as the
  account; threads are two deep (a reply to a reply joins its top-level comment). ``POST
  {ig-user}/mentions`` (``media_id``, ``comment_id``, ``message``) answers a mention.
* ``POST {page or ig-user}/messages``: ``recipient={"comment_id"}`` is a private reply (once
  per comment: code 10900; within 7 days), ``recipient={"id"}`` answers a conversation
  (Facebook wants ``messaging_type``; within 24 hours of the person's last message; nobody
  who never wrote: 2018001). ``GET {owner}/conversations`` (``user_id``, participants,
  messages newest first). The answer is ``{"recipient_id", "message_id"}``.
* ``POST {comment}`` with ``is_hidden`` (Facebook) or ``hide`` (Instagram), ``DELETE
  {comment}``: ``{"success": true}``; a message or a mention cannot be moderated.
* ``GET {ig-user}?fields=mentioned_comment.comment_id(ID){...}`` and
  ``mentioned_media.media_id(ID){...}`` read a mention the webhook only located.
* Webhooks: object ``page`` (``feed`` changes with item ``comment`` and the verb, ``mention``,
  ``messaging`` with ``is_echo`` for the Page's own) or ``instagram`` (``comments``,
  ``mentions``, ``messaging``), signed ``X-Hub-Signature-256: sha256=<HMAC of the body with
  the app secret>`` (and the older ``X-Hub-Signature`` with SHA-1). The account's replies and
  messages come back as webhooks too; Facebook also announces hide, unhide and remove.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from devtools.platforms.core import (
    AccessToken,
    CommunityItem,
    CreatedPost,
    Ctx,
    Dialect,
    Json,
    Reply,
    day_of,
    decode_cursor,
    encode_cursor,
)
from devtools.platforms.figures import (
    Account,
    Post,
    b64id,
    digit_id,
    hash_of,
    midnight_utc,
    today_utc,
)

if TYPE_CHECKING:
    from devtools.platforms.simulator import PlatformSimulator

PACIFIC = ZoneInfo("America/Los_Angeles")
META_APP_CALLS_PER_HOUR = 200_000
"""The app's Graph budget behind X-App-Usage: a 10,000-account benchmark stays well under."""
META_OBJECT_CALLS_PER_HOUR = 4_800
IG_PUBLISH_QUOTA = 100
"""Instagram: API-published posts per account in a moving 24 hours (a carousel counts once)."""
IG_QUOTA_SECONDS = 86_400
CONTAINER_TTL = 86_400.0
"""An Instagram container not published within 24 hours is EXPIRED."""
VIDEO_POLLS = 1
"""How many status reads a video container stays IN_PROGRESS before FINISHED."""
IG_CAPTION_MAX = 2_200
CAROUSEL_MIN, CAROUSEL_MAX = 2, 10
IG_MEDIA_METRICS = frozenset(
    {"views", "reach", "total_interactions", "likes", "comments", "shares", "saved"}
)
"""Instagram media insights still served (impressions and video_views are gone)."""
FB_POST_METRICS = frozenset(
    {
        "post_media_view",
        "post_total_media_view_unique",
        "post_clicks",
        "post_reactions_by_type_total",
        "post_video_views",
    }
)
"""Page post insights still served (post_impressions_unique, post_engaged_users are gone)."""
FB_VIDEO_METRICS = frozenset(
    {"total_video_impressions", "total_video_impressions_unique", "total_video_views"}
)

REPLY_FAULTS = (
    "error_before_create",
    "token_expires_mid_flow",
    "rate_limited",
    "reply_timeout",
    "reply_500_after_create",
)
PRIVATE_REPLY_WINDOW = 7 * 86_400.0
"""A public comment can be answered in private for 7 days, once."""
MESSAGING_WINDOW = 86_400.0
"""A RESPONSE message goes out within 24 hours of the person's last message."""
COMMENT_DEFAULT = "id,message,text,created_time,timestamp,from"
APP_ID = 1234567890123456
"""The app an echo says sent the message."""


def _digits(n: int = 15) -> str:
    return str(1 + secrets.randbelow(9)) + str(secrets.randbelow(10 ** (n - 1))).rjust(n - 1, "0")


def replace_author(item: CommunityItem, author: str) -> CommunityItem:
    """The item as if `author` wrote it (to find or start that person's conversation)."""
    return replace(item, author_id=author, from_account=False, recipient=None)


def post_insight(post_id: str, metric: str) -> int:
    """A created post's lifetime figure: fixed by its id, so tests know it in advance.
    views >= reach; interactions a few % of views."""
    views = 200 + hash_of(post_id, "views") % 5_000
    reach = round(views * (0.5 + 0.4 * (hash_of(post_id, "reach") % 1000) / 1000))
    likes = round(views * (0.01 + (hash_of(post_id, "likes") % 40) / 1000))
    comments = round(likes * (0.05 + (hash_of(post_id, "comments") % 25) / 100))
    shares = round(likes * (0.02 + (hash_of(post_id, "shares") % 20) / 100))
    saved = round(likes * 0.1)
    clicks = round(views * 0.02)
    return {
        "views": views,
        "reach": reach,
        "likes": likes,
        "comments": comments,
        "shares": shares,
        "saved": saved,
        "total_interactions": likes + comments + shares + saved,
        "post_media_view": views,
        "post_total_media_view_unique": reach,
        "post_clicks": clicks,
        "post_reactions_by_type_total": likes,
        "post_video_views": round(views * 0.6),
        "total_video_impressions": views,
        "total_video_impressions_unique": reach,
        "total_video_views": round(views * 0.6),
    }[metric]


@dataclass
class Container:
    """An Instagram media container: what media_publish turns into a post."""

    id: str
    account: str
    media_type: str
    """IMAGE, VIDEO (carousel item), REELS or CAROUSEL."""
    created_at: float
    caption: str = ""
    url: str = ""
    children: tuple[str, ...] = ()
    carousel_item: bool = False
    polls_left: int = 0
    error: bool = False
    published: bool = False

    def status(self, now: float) -> str:
        if self.published:
            return "PUBLISHED"
        if self.error:
            return "ERROR"
        if now - self.created_at > CONTAINER_TTL:
            return "EXPIRED"
        return "IN_PROGRESS" if self.polls_left > 0 else "FINISHED"


@dataclass
class Upload:
    """A Facebook photo or video received: its size and hash, never its bytes."""

    id: str
    account: str
    size: int
    sha256: str
    published: bool = False


@dataclass
class Made:
    """A post made through the simulator, as its platform's nodes and listings show it."""

    post: CreatedPost
    node_id: str
    media_type: str
    video_id: str | None = None
    photos: tuple[str, ...] = ()
    """The photo ids a Page post attached."""


@dataclass
class Publishing:
    """One simulator run's publishing state (a reset starts a new one)."""

    generation: list[CreatedPost]
    containers: dict[str, Container] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    made: dict[str, Made] = field(default_factory=dict)
    """By post id, and by video id for Facebook videos."""
    spent_until: dict[str, float] = field(default_factory=dict)
    """Instagram accounts whose publishing quota a test spent (quota_spent), until when."""


def multipart(ctx: Ctx) -> tuple[dict[str, str], dict[str, tuple[int, str]]]:
    """A request's fields (query, form or multipart/form-data), and its files as (size,
    sha256)."""
    kind = ctx.headers.get("content-type", "")
    found = re.search(r'boundary="?([^";]+)"?', kind)
    if not kind.startswith("multipart/") or found is None:
        return dict(ctx.params), {}
    fields: dict[str, str] = dict(ctx.query)
    files: dict[str, tuple[int, str]] = {}
    for part in ctx.raw.split(b"--" + found.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, body = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        body = body.removesuffix(b"\r\n")
        disposition = head.decode(errors="replace")
        name = re.search(r'(?:^|[;\s])name="([^"]*)"', disposition)
        if name is None:
            continue
        if re.search(r'filename="', disposition):
            files[name.group(1)] = (len(body), hashlib.sha256(body).hexdigest())
        else:
            fields[name.group(1)] = body.decode(errors="replace")
    return fields, files


def _top_level(fields: str) -> list[str]:
    """A Graph `fields` list split on its commas outside braces and parentheses."""
    out, depth, start = [], 0, 0
    for i, char in enumerate(fields):
        if char in "{(":
            depth += 1
        elif char in "})":
            depth -= 1
        elif char == "," and depth == 0:
            out.append(fields[start:i])
            start = i + 1
    out.append(fields[start:])
    return [f for f in out if f]


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class MetaDialect(Dialect):
    authorize_path = r"/v\d+\.\d+/dialog/oauth"
    token_path = r"/v\d+\.\d+/oauth/access_token"
    routes_spec = (
        ("GET", r"/v\d+\.\d+/me/accounts", "me_accounts"),
        ("GET", r"/v\d+\.\d+/me", "me"),
        ("GET", r"/v\d+\.\d+/([^/]+)/insights", "insights"),
        ("GET", r"/v\d+\.\d+/([^/]+)/video_insights", "video_insights"),
        ("GET", r"/v\d+\.\d+/([^/]+)/content_publishing_limit", "publishing_limit"),
        ("GET", r"/v\d+\.\d+/([^/]+)/(published_posts|posts|media|feed)", "posts"),
        ("POST", r"/v\d+\.\d+/([^/]+)/media", "create_container"),
        ("POST", r"/v\d+\.\d+/([^/]+)/media_publish", "media_publish"),
        ("POST", r"/v\d+\.\d+/([^/]+)/feed", "feed_post"),
        ("POST", r"/v\d+\.\d+/([^/]+)/photos", "photo_upload"),
        ("POST", r"/v\d+\.\d+/([^/]+)/videos", "video_upload"),
        ("GET", r"/v\d+\.\d+/([^/]+)/(comments|replies)", "comments"),
        ("POST", r"/v\d+\.\d+/([^/]+)/(comments|replies)", "reply"),
        ("POST", r"/v\d+\.\d+/([^/]+)/messages", "send_message"),
        ("POST", r"/v\d+\.\d+/([^/]+)/mentions", "reply_mention"),
        ("GET", r"/v\d+\.\d+/([^/]+)/conversations", "conversations"),
        ("GET", r"/v\d+\.\d+/([^/]+)", "node"),
        ("POST", r"/v\d+\.\d+/([^/]+)", "moderate"),
        ("DELETE", r"/v\d+\.\d+/([^/]+)", "delete"),
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

    def __init__(self, sim: PlatformSimulator, platform: str) -> None:
        super().__init__(sim, platform)
        self._publishing: Publishing | None = None

    def _pub(self) -> Publishing:
        # The simulator's reset() makes a new created_posts list: publishing state goes with it.
        if self._publishing is None or self._publishing.generation is not self.sim.created_posts:
            self._publishing = Publishing(self.sim.created_posts)
        return self._publishing

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

    def _fields(
        self, ctx: Ctx, available: dict[str, Json], default: str = "id,name"
    ) -> dict[str, Json]:
        # "reactions.limit(0).summary(total_count)" asks for the field "reactions", and
        # "attachments{target{id},subattachments}" for "attachments".
        wanted = [
            re.split(r"[.{]", f, maxsplit=1)[0]
            for f in _top_level(ctx.query.get("fields") or default)
        ]
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
        mentioned = self._mentioned(ctx, object_id)
        if mentioned is not None:
            return mentioned
        said = self._said(object_id)
        if said is not None and not said.deleted:
            account = self.account(ctx)
            if said.account == account.external_id:
                return self._fields(ctx, self._said_fields(account, said), COMMENT_DEFAULT)
        pub = self._pub()
        container = pub.containers.get(object_id)
        if container is not None and not self.page:
            self._own(ctx, container.account)
            status = container.status(ctx.now)
            if status == "IN_PROGRESS":
                container.polls_left -= 1
            detail = {
                "ERROR": "Error: Media download has failed. The media URI doesn't meet our "
                "requirements.",
                "EXPIRED": "Expired: the container was not published within 24 hours.",
            }.get(status, status.replace("_", " ").title())
            return self._fields(ctx, {"id": container.id, "status_code": status, "status": detail})
        made = pub.made.get(object_id)
        if made is not None and made.post.platform == self.platform:
            self._own(ctx, made.post.account)
            return self._fields(ctx, self._made_fields(made, video=object_id == made.video_id))
        return self._fields(ctx, self._node_fields(self._own(ctx, object_id)))

    def _made_fields(self, made: Made, *, video: bool = False) -> dict[str, Json]:
        post = made.post
        figure = post.post_id
        stamp = _stamp(post.created_at)
        if not self.page:
            return {
                "id": post.post_id,
                "caption": post.text,
                "timestamp": stamp,
                "permalink": post.permalink,
                "shortcode": post.permalink.rstrip("/").rsplit("/", 1)[-1],
                "media_type": made.media_type,
                "media_product_type": "REELS" if made.media_type == "VIDEO" else "FEED",
                "like_count": post_insight(figure, "likes"),
                "comments_count": post_insight(figure, "comments"),
            }
        counts = {
            "reactions": {"data": [], "summary": {"total_count": post_insight(figure, "likes")}},
            "comments": {"data": [], "summary": {"total_count": post_insight(figure, "comments")}},
        }
        if video and made.video_id is not None:
            # A Video node's permalink_url is relative to facebook.com.
            return {
                "id": made.video_id,
                "description": post.text,
                "created_time": stamp,
                "permalink_url": post.permalink.removeprefix("https://www.facebook.com"),
                **counts,
            }
        fields: dict[str, Json] = {
            "id": post.post_id,
            "message": post.text,
            "created_time": stamp,
            "permalink_url": post.permalink,
            "shares": {"count": post_insight(figure, "shares")},
            **counts,
        }
        photos = [{"type": "photo", "target": {"id": p}} for p in made.photos]
        if len(photos) == 1:
            fields["attachments"] = {"data": photos}
        elif photos:
            album = {"type": "album", "target": {"id": post.post_id}}
            fields["attachments"] = {"data": [album | {"subattachments": {"data": photos}}]}
        return fields

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
        made = self._pub().made.get(object_id)
        if made is not None and made.post.platform == self.platform:
            valid = FB_POST_METRICS if self.page else IG_MEDIA_METRICS
            return self._lifetime(ctx, made, valid)
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

    def _lifetime(self, ctx: Ctx, made: Made, valid: frozenset[str]) -> Json:
        """A published post's lifetime insights (one data entry per metric)."""
        self._own(ctx, made.post.account)
        metrics = [m for m in ctx.query.get("metric", "").split(",") if m]
        if not metrics:
            raise self._error(400, 100, "(#100) The parameter metric is required")
        for metric in metrics:
            if metric not in valid or self.sim._is_deprecated(self.platform, metric):
                raise self._error(400, 100, "(#100) The value must be a valid insights metric")
        data = []
        for metric in metrics:
            value: Json = post_insight(made.post.post_id, metric)
            if metric == "post_video_views" and made.video_id is None:
                value = 0
            if metric == "post_reactions_by_type_total":
                value = {"like": value - value // 5, "love": value // 5}
            data.append(
                {
                    "name": metric,
                    "period": "lifetime",
                    "values": [{"value": value}],
                    "title": metric.replace("_", " ").title(),
                    "description": f"Lifetime: {metric.replace('_', ' ')}",
                    "id": f"{ctx.object_id}/insights/{metric}/lifetime",
                }
            )
        return {"data": data, "paging": {"previous": "", "next": ""}}

    def video_insights(self, ctx: Ctx, video_id: str) -> Json:
        made = self._pub().made.get(video_id)
        if not self.page or made is None or made.video_id != video_id:
            raise self.not_found(ctx)
        return self._lifetime(ctx, made, FB_VIDEO_METRICS)

    def _listing_item(self, entry: Post | Made) -> dict[str, Json]:
        if isinstance(entry, Made):
            fields = self._made_fields(entry)
            if self.page:
                shown = ("id", "created_time", "message", "permalink_url", "attachments")
                return {k: fields[k] for k in shown if k in fields}
            return fields
        post = entry
        stamp = post.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000")
        if self.page:
            return {
                "id": post.id,
                "created_time": stamp,
                "message": f"Post {post.id[-4:]}",
                "permalink_url": f"https://www.facebook.com/{post.id}",
            }
        return {
            "id": post.id,
            "timestamp": stamp,
            "like_count": post.likes,
            "comments_count": post.comments,
            "media_type": "IMAGE" if int(post.id[-1]) % 3 else "VIDEO",
            "permalink": f"https://www.instagram.com/p/{b64id(11, post.id)}/",
        }

    def _timeline(
        self, account: Account, since: datetime, until: datetime
    ) -> Iterator[Post | Made]:
        """The account's posts in [since, until), newest first: its seeded history and the
        posts made here."""
        low, high = since.timestamp(), until.timestamp()
        made = sorted(
            (
                (m.post.created_at, m)
                for key, m in self._pub().made.items()
                if key == m.post.post_id
                and (m.post.platform, m.post.account) == (self.platform, account.external_id)
                and low <= m.post.created_at < high
            ),
            key=lambda pair: pair[0],
            reverse=True,
        )
        seeded: Iterable[tuple[float, Post | Made]] = (
            (p.created_at.timestamp(), p) for p in account.posts_desc(until, since)
        )
        for _, entry in heapq.merge(made, seeded, key=lambda pair: pair[0], reverse=True):
            yield entry

    def posts(self, ctx: Ctx, object_id: str, edge: str) -> Json:
        account = self._own(ctx, object_id)
        if (edge == "media") == self.page:
            raise self.not_found(ctx)
        since, until = self._span(ctx, 365 * 2)
        limit = max(1, min(100, int(ctx.query.get("limit", "25"))))
        offset = decode_cursor(ctx.query.get("after"))
        entries: list[Post | Made] = []
        more = False
        for i, entry in enumerate(self._timeline(account, since, until)):
            if i < offset:
                continue
            if len(entries) == limit:
                more = True
                break
            entries.append(entry)
        data = [
            self._fields(ctx, item) | {"id": item["id"]}
            for item in map(self._listing_item, entries)
        ]
        paging: dict[str, Json] = {
            "cursors": {
                "before": encode_cursor(offset),
                "after": encode_cursor(offset + len(entries)),
            }
        }
        if more:
            query = {**ctx.query, "after": encode_cursor(offset + len(entries))}
            paging["next"] = f"https://graph.facebook.com{ctx.path}?{urlencode(query)}"
        return {"data": data, "paging": paging}

    # --- publishing

    def _only(self, ctx: Ctx, page: bool) -> None:
        if self.page != page:
            raise self.not_found(ctx)

    def _expire_now(self, ctx: Ctx) -> None:
        """token_expires_mid_flow: the token that prepared the post dies before it is made."""
        if ctx.bearer and ctx.bearer in self.sim._tokens:
            self.sim.expire(ctx.bearer)

    def _made_within(self, account: str, seconds: float, now: float) -> int:
        return sum(
            1
            for key, m in self._pub().made.items()
            if key == m.post.post_id
            and (m.post.platform, m.post.account) == (self.platform, account)
            and now - m.post.created_at < seconds
        )

    def _make(
        self,
        ctx: Ctx,
        account: Account,
        post_id: str,
        text: str,
        *,
        media: tuple[str, ...],
        permalink: str,
        media_type: str,
        marker: str | None = None,
        video_id: str | None = None,
        photos: tuple[str, ...] = (),
    ) -> Made:
        post = self.sim.record_post(
            self.platform,
            account.external_id,
            post_id,
            text,
            media=media,
            permalink=permalink,
            marker=marker,
        )
        made = Made(post, post_id, media_type, video_id, photos)
        pub = self._pub()
        pub.made[post_id] = made
        if video_id is not None:
            pub.made[video_id] = made
        return made

    def publishing_limit(self, ctx: Ctx, user_id: str) -> Json:
        self._only(ctx, page=False)
        fault = self.sim.take_fault(self.platform, "error_before_create", "quota_spent")
        if fault == "error_before_create":
            raise self.server_error(500)
        account = self._own(ctx, user_id)
        pub = self._pub()
        if fault == "quota_spent":
            pub.spent_until[account.external_id] = ctx.now + IG_QUOTA_SECONDS
        usage = self._quota_usage(account.external_id, ctx.now)
        return {
            "data": [
                {
                    "config": {"quota_total": IG_PUBLISH_QUOTA, "quota_duration": IG_QUOTA_SECONDS},
                    "quota_usage": usage,
                }
            ]
        }

    def _quota_usage(self, account: str, now: float) -> int:
        if self._pub().spent_until.get(account, 0.0) > now:
            return IG_PUBLISH_QUOTA
        return min(IG_PUBLISH_QUOTA, self._made_within(account, IG_QUOTA_SECONDS, now))

    def create_container(self, ctx: Ctx, user_id: str) -> Json:
        self._only(ctx, page=False)
        fault = self.sim.take_fault(self.platform, "error_before_create", "container_error")
        if fault == "error_before_create":
            raise self.server_error(500)
        account = self._own(ctx, user_id)
        fields, _ = multipart(ctx)
        pub = self._pub()
        media_type = fields.get("media_type", "IMAGE").upper()
        item = fields.get("is_carousel_item", "").lower() == "true"
        caption = fields.get("caption", "")
        if len(caption) > IG_CAPTION_MAX:
            raise self._error(400, 100, "(#100) The caption is too long", error_subcode=2207010)
        children: tuple[str, ...] = ()
        url = ""
        if media_type == "CAROUSEL":
            children = tuple(c for c in fields.get("children", "").split(",") if c)
            if not CAROUSEL_MIN <= len(children) <= CAROUSEL_MAX:
                raise self._error(400, 100, "(#100) A carousel takes between 2 and 10 children")
            for child_id in children:
                child = pub.containers.get(child_id)
                if (
                    child is None
                    or child.account != account.external_id
                    or not child.carousel_item
                    or child.status(ctx.now) != "FINISHED"
                ):
                    raise self._error(
                        400,
                        100,
                        f"(#100) The carousel child {child_id} is not a finished carousel item",
                        error_subcode=2207028,
                    )
        elif media_type in {"REELS", "VIDEO"}:
            if (media_type == "VIDEO") != item:
                raise self._error(
                    400, 100, "(#100) media_type VIDEO is only for carousel items; use REELS"
                )
            url = fields.get("video_url", "")
        elif media_type == "IMAGE":
            url = fields.get("image_url", "")
        else:
            raise self._error(400, 100, f"(#100) media_type {media_type} is not supported")
        if media_type != "CAROUSEL" and not url.startswith(("https://", "http://")):
            raise self._error(
                400,
                9004,
                "(#9004) Media download has failed. The media URI doesn't meet our requirements.",
                error_subcode=2207052,
            )
        container = Container(
            id="17" + str(secrets.randbelow(10**16)).rjust(16, "0"),
            account=account.external_id,
            media_type=media_type,
            created_at=ctx.now,
            caption=caption,
            url=url,
            children=children,
            carousel_item=item,
            polls_left=VIDEO_POLLS if media_type in {"REELS", "VIDEO"} else 0,
            error=fault == "container_error",
        )
        pub.containers[container.id] = container
        return {"id": container.id}

    def media_publish(self, ctx: Ctx, user_id: str) -> Json:
        self._only(ctx, page=False)
        fault = self.sim.take_fault(
            self.platform,
            "token_expires_mid_flow",
            "rate_limited",
            "timeout_after_create",
            "quota_spent",
        )
        if fault == "token_expires_mid_flow":
            self._expire_now(ctx)
        account = self._own(ctx, user_id)
        if fault == "rate_limited":
            raise self.throttled(60)
        fields, _ = multipart(ctx)
        pub = self._pub()
        if fault == "quota_spent":  # other tools used up the quota since it was read
            pub.spent_until[account.external_id] = ctx.now + IG_QUOTA_SECONDS
        container = pub.containers.get(fields.get("creation_id", ""))
        if container is None or container.account != account.external_id:
            raise self._error(
                400, 100, "(#100) The parameter creation_id is required and must be a container"
            )
        status = container.status(ctx.now)
        if status == "IN_PROGRESS":
            raise self._error(
                400,
                9007,
                "(#9007) The media is not ready for publishing, please wait for a moment",
                error_subcode=2207027,
            )
        if status != "FINISHED":
            raise self._error(
                400,
                100,
                f"(#100) The media container cannot be published: it is {status}",
                error_subcode=2207008 if status == "EXPIRED" else 2207001,
            )
        if self._quota_usage(account.external_id, ctx.now) >= IG_PUBLISH_QUOTA:
            raise self._error(
                400,
                9,
                "(#9) The maximum number of posts that can be published in 24 hours has been "
                "reached",
                error_subcode=2207042,
            )
        media_id = "179" + str(secrets.randbelow(10**14)).rjust(14, "0")
        if container.media_type == "CAROUSEL":
            media = tuple(pub.containers[c].url for c in container.children)
            kind = "CAROUSEL_ALBUM"
        else:
            media = (container.url,)
            kind = "VIDEO" if container.media_type == "REELS" else "IMAGE"
        container.published = True
        self._make(
            ctx,
            account,
            media_id,
            container.caption,
            media=media,
            permalink=f"https://www.instagram.com/p/{b64id(11, media_id)}/",
            media_type=kind,
            marker=container.id,
        )
        if fault == "timeout_after_create":
            ctx.hang = True
        return {"id": media_id}

    def _page_post_id(self, account: Account) -> tuple[str, str]:
        number = str(1 + secrets.randbelow(9)) + str(secrets.randbelow(10**15)).rjust(15, "0")
        return f"{account.external_id}_{number}", number

    def feed_post(self, ctx: Ctx, page_id: str) -> Json:
        self._only(ctx, page=True)
        fault = self.sim.take_fault(
            self.platform,
            "error_before_create",
            "token_expires_mid_flow",
            "rate_limited",
            "timeout_after_create",
        )
        if fault == "error_before_create":
            raise self.server_error(500)
        if fault == "token_expires_mid_flow":
            self._expire_now(ctx)
        account = self._own(ctx, page_id)
        if fault == "rate_limited":
            raise self.throttled(60)
        fields, _ = multipart(ctx)
        pub = self._pub()
        attached: list[Upload] = []
        keys = sorted(
            (k for k in fields if re.fullmatch(r"attached_media\[\d+\]", k)),
            key=lambda k: int(k[15:-1]),
        )
        for key in keys:
            try:
                fbid = str(json.loads(fields[key])["media_fbid"])
            except (ValueError, KeyError, TypeError):
                raise self._error(400, 100, f'(#100) {key} must be {{"media_fbid": ...}}') from None
            upload = pub.uploads.get(fbid)
            if upload is None or upload.account != account.external_id or upload.published:
                raise self._error(
                    400, 100, f"(#100) {key}: {fbid} is not an unpublished photo of this Page"
                )
            attached.append(upload)
        message, link = fields.get("message", ""), fields.get("link", "")
        if not (message or link or attached):
            raise self._error(400, 100, "(#100) A post needs a message, a link or media")
        post_id, number = self._page_post_id(account)
        for upload in attached:
            upload.published = True
        media = tuple(f"photo:{u.sha256[:16]}" for u in attached) + (
            (f"link:{link}",) if link else ()
        )
        self._make(
            ctx,
            account,
            post_id,
            message,
            media=media,
            permalink=f"https://www.facebook.com/{account.external_id}/posts/{number}",
            media_type="photo" if attached else ("link" if link else "status"),
            photos=tuple(u.id for u in attached),
        )
        if fault == "timeout_after_create":
            ctx.hang = True
        return {"id": post_id}

    def photo_upload(self, ctx: Ctx, page_id: str) -> Json:
        self._only(ctx, page=True)
        fault = self.sim.take_fault(self.platform, "error_before_create", "container_error")
        if fault == "error_before_create":
            raise self.server_error(500)
        account = self._own(ctx, page_id)
        fields, files = multipart(ctx)
        if "source" not in files:
            raise self._error(400, 324, "(#324) Requires upload file")
        if fault == "container_error":
            raise self._error(
                400,
                100,
                "(#100) Invalid image: the file could not be processed",
                error_subcode=1366046,
            )
        size, digest = files["source"]
        photo_id = str(1 + secrets.randbelow(9)) + str(secrets.randbelow(10**15)).rjust(15, "0")
        published = fields.get("published", "true").lower() != "false"
        upload = Upload(photo_id, account.external_id, size, digest, published=published)
        self._pub().uploads[photo_id] = upload
        if not published:
            return {"id": photo_id}
        post_id = f"{account.external_id}_{photo_id}"
        self._make(
            ctx,
            account,
            post_id,
            fields.get("caption", "") or fields.get("message", ""),
            media=(f"photo:{digest[:16]}",),
            permalink=f"https://www.facebook.com/photo/?fbid={photo_id}",
            media_type="photo",
        )
        return {"id": photo_id, "post_id": post_id}

    def video_upload(self, ctx: Ctx, page_id: str) -> Json:
        self._only(ctx, page=True)
        fault = self.sim.take_fault(
            self.platform,
            "error_before_create",
            "container_error",
            "token_expires_mid_flow",
            "rate_limited",
            "timeout_after_create",
        )
        if fault == "error_before_create":
            raise self.server_error(500)
        if fault == "token_expires_mid_flow":
            self._expire_now(ctx)
        account = self._own(ctx, page_id)
        if fault == "rate_limited":
            raise self.throttled(60)
        fields, files = multipart(ctx)
        if "source" not in files and not fields.get("file_url"):
            raise self._error(400, 100, "(#100) A video needs a source file or a file_url")
        if fault == "container_error":
            raise self._error(
                400,
                352,
                "(#352) Sorry, the video file you selected is in a format that we don't support.",
            )
        digest = files["source"][1] if "source" in files else fields["file_url"]
        video_id = str(1 + secrets.randbelow(9)) + str(secrets.randbelow(10**15)).rjust(15, "0")
        self._make(
            ctx,
            account,
            f"{account.external_id}_{video_id}",
            fields.get("description", ""),
            media=(f"video:{digest[:16]}",),
            permalink=f"https://www.facebook.com/{account.handle}/videos/{video_id}/",
            media_type="video",
            video_id=video_id,
        )
        if fault == "timeout_after_create":
            ctx.hang = True
        return {"id": video_id}

    # --- the community inbox: comments, replies, private messages, moderation, webhooks

    def community_id(self, account: Account, kind: str) -> str:
        if kind == "message":
            return (
                "m_" if self.page else "aWdfZAG1faXRlbToxOklHTWVzc2FnZAU"
            ) + secrets.token_urlsafe(30).replace("-", "A").replace("_", "B")
        if self.page:
            return f"{_digits()}_{_digits()}"  # "<post>_<comment>", as Graph writes them
        return "178" + str(secrets.randbelow(10**14)).rjust(14, "0")

    def community_thread(self, account: Account, item: CommunityItem) -> str | None:
        if item.kind == "message":
            found = self._conversation_with(account.external_id, item.author_id)
            if found is not None:
                return found
            return (
                ("t_" + _digits()) if self.page else "aWdfZAG06" + b64id(30, secrets.token_hex(8))
            )
        if item.kind == "mention" and not self.page:
            return "179" + str(secrets.randbelow(10**14)).rjust(14, "0")  # someone else's media
        now = datetime.fromtimestamp(time.time(), UTC)
        latest = next(self._timeline(account, now - timedelta(days=730), now), None)
        if isinstance(latest, Made):
            return latest.post.post_id
        if latest is not None:
            return latest.id
        return f"{account.external_id}_{_digits()}" if self.page else "179" + _digits(14)

    def _said(self, item_id: str) -> CommunityItem | None:
        try:
            return self.sim.community_item(self.platform, item_id)
        except KeyError:
            return None

    def _person(self, item: CommunityItem) -> str:
        """The person on the other side of a message."""
        return item.recipient or "" if item.from_account else item.author_id

    def _conversation_with(self, account: str, person: str) -> str | None:
        for other in self.sim.community(self.platform, account):
            if other.kind == "message" and self._person(other) == person:
                return other.thread
        return None

    def _missing(self, object_id: str, verb: str = "get") -> Reply:
        return self._error(
            400,
            100,
            f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot "
            "be loaded due to missing permissions, or does not support this operation.",
            error_subcode=33,
        )

    def _target(self, account: Account, object_id: str, verb: str = "post") -> CommunityItem:
        """One of the account's visible items, or Graph's "does not exist"."""
        item = self._said(object_id)
        if item is None or item.deleted or item.account != account.external_id:
            raise self._missing(object_id, verb)
        return item

    def _who(self, account: Account, item: CommunityItem) -> dict[str, Json]:
        if item.from_account:
            return (
                {"id": account.external_id, "name": account.name}
                if self.page
                else {"id": account.external_id, "username": account.handle}
            )
        name = item.author_name or f"user_{item.author_id[-4:]}"
        return {"id": item.author_id, "name" if self.page else "username": name}

    def _said_fields(self, account: Account, item: CommunityItem) -> dict[str, Json]:
        """A comment or a message as Graph shows it to the account."""
        who = self._who(account, item)
        if item.kind == "message":
            to = account.external_id if not item.from_account else self._person(item)
            return {
                "id": item.id,
                "message": item.text,
                "from": who,
                "to": {"data": [{"id": to}]},
                "created_time": _stamp(item.created_at),
            }
        if self.page:
            fields: dict[str, Json] = {
                "id": item.id,
                "message": item.text,
                "from": who,
                "created_time": _stamp(item.created_at),
                "is_hidden": item.hidden,
                "can_hide": not item.from_account,
                "permalink_url": f"https://www.facebook.com/{item.thread}?comment_id={item.id}",
                "comment_count": len(self._replies(item)),
            }
            if item.parent:
                fields["parent"] = {"id": item.parent}
            return fields
        fields = {
            "id": item.id,
            "text": item.text,
            "timestamp": _stamp(item.created_at),
            "username": who["username"],
            "from": who,
            "hidden": item.hidden,
            "like_count": 0,
            "media": {"id": item.thread},
        }
        if item.parent:
            fields["parent_id"] = item.parent
        else:
            fields["replies"] = {
                "data": [self._said_fields(account, r) for r in self._replies(item)]
            }
        return fields

    def _replies(self, item: CommunityItem) -> list[CommunityItem]:
        return [
            r
            for r in self.sim.community(self.platform, item.account)
            if r.parent == item.id and r.kind != "message" and not r.deleted
        ]

    def _listed(self, ctx: Ctx, account: Account, items: list[CommunityItem], default: str) -> Json:
        """A page of items with Graph's cursors (since: created at or after)."""
        if "since" in ctx.query:
            try:
                since = day_of(ctx.query["since"]).timestamp()
            except ValueError:
                raise self._error(400, 100, "(#100) Invalid since parameter") from None
            items = [i for i in items if i.created_at >= since]
        limit = max(1, min(100, int(ctx.query.get("limit", "25") or 25)))
        offset = decode_cursor(ctx.query.get("after"))
        chosen = items[offset : offset + limit]
        data = [self._fields(ctx, self._said_fields(account, i), default) for i in chosen]
        paging: dict[str, Json] = {
            "cursors": {
                "before": encode_cursor(offset),
                "after": encode_cursor(offset + len(chosen)),
            }
        }
        if offset + len(chosen) < len(items):
            query = {**ctx.query, "after": encode_cursor(offset + len(chosen))}
            paging["next"] = f"https://graph.facebook.com{ctx.path}?{urlencode(query)}"
        return {"data": data, "paging": paging}

    def comments(self, ctx: Ctx, object_id: str, edge: str) -> Json:
        """A post's (media's) comments, or a comment's replies. Facebook: chronological,
        top-level only unless filter=stream (then every reply too, with its parent);
        Instagram: newest first (a media's comments, a comment's replies)."""
        if edge == "replies" and self.page:
            raise self.not_found(ctx)
        account = self.account(ctx)
        above = self._said(object_id)
        if above is not None:
            self._target(account, object_id, "get")
            items = self._replies(above)
        else:
            stream = self.page and ctx.query.get("filter") == "stream"
            items = [
                i
                for i in self.sim.community(self.platform, account.external_id)
                if i.thread == object_id
                and i.kind in {"comment", "reply"}
                and not i.deleted
                and (stream or i.parent is None)
            ]
        if not self.page:
            items.reverse()
        return self._listed(ctx, account, items, COMMENT_DEFAULT)

    def _mentioned(self, ctx: Ctx, object_id: str) -> Json:
        """Instagram's mentioned_comment / mentioned_media field of the account's node: the
        mention a webhook located, read (None: not such a read)."""
        wanted = ctx.query.get("fields", "")
        found = re.search(r"mentioned_(comment|media)\.(?:comment|media)_id\(([^)]*)\)", wanted)
        if self.page or found is None:
            return None
        account = self._own(ctx, object_id)
        what, target = found.groups()
        mention = self._said(target)
        if what == "comment":
            if (
                mention is None
                or mention.kind != "mention"
                or mention.account != account.external_id
            ):
                raise self._missing(target)
            read: dict[str, Json] = {
                "id": mention.id,
                "text": mention.text,
                "timestamp": _stamp(mention.created_at),
                "like_count": 0,
                "media": {"id": mention.thread},
            }
            return {"id": account.external_id, "mentioned_comment": read}
        caption = next(
            (
                m
                for m in self.sim.community(self.platform, account.external_id)
                if m.kind == "mention" and m.thread == target
            ),
            None,
        )
        if caption is None:
            raise self._missing(target)
        read = {
            "id": target,
            "caption": caption.text,
            "timestamp": _stamp(caption.created_at),
            "username": caption.author_name or f"user_{caption.author_id[-4:]}",
            "media_type": "IMAGE",
        }
        return {"id": account.external_id, "mentioned_media": read}

    def _reply_fault(self, ctx: Ctx) -> str | None:
        fault = self.sim.take_fault(self.platform, *REPLY_FAULTS)
        if fault == "error_before_create":
            raise self.server_error(500)
        if fault == "token_expires_mid_flow":
            self._expire_now(ctx)
        return fault

    def _answer(self, ctx: Ctx, fault: str | None, body: Json) -> Json:
        """The reply exists now: the fault decides whether its answer ever arrives."""
        if fault == "reply_timeout":
            ctx.hang = True
        if fault == "reply_500_after_create":
            raise self.server_error(500)
        return body

    def reply(self, ctx: Ctx, object_id: str, edge: str) -> Json:
        """A public reply by the account. Threads are two deep, as on both platforms: a
        reply to a reply joins its top-level comment."""
        if (edge == "replies") == self.page:
            raise self.not_found(ctx)
        fault = self._reply_fault(ctx)
        account = self.account(ctx)
        if fault == "rate_limited":
            raise self.throttled(60)
        target = self._target(account, object_id)
        if target.kind not in {"comment", "reply"}:
            raise self._missing(object_id)
        fields, _ = multipart(ctx)
        text = fields.get("message", "")
        if not text.strip():
            raise self._error(400, 100, "(#100) Missing message or attachment")
        made = CommunityItem(
            platform=self.platform,
            account=account.external_id,
            id=self.community_id(account, "reply"),
            kind="reply",
            text=text,
            author_id=account.external_id,
            author_name=account.name if self.page else account.handle,
            created_at=ctx.now,
            parent=target.parent or target.id,
            thread=target.thread,
            from_account=True,
            target=target.id,
        )
        self.sim.record_reply(made)
        return self._answer(ctx, fault, {"id": made.id})

    def reply_mention(self, ctx: Ctx, user_id: str) -> Json:
        """Instagram: a reply under a comment (or a caption) that mentions the account."""
        self._only(ctx, page=False)
        fault = self._reply_fault(ctx)
        account = self._own(ctx, user_id)
        if fault == "rate_limited":
            raise self.throttled(60)
        fields, _ = multipart(ctx)
        mention = self._target(account, fields.get("comment_id") or fields.get("media_id", ""))
        text = fields.get("message", "")
        if mention.kind != "mention" or not text.strip():
            raise self._error(400, 100, "(#100) media_id, a mention, and message are required")
        made = CommunityItem(
            platform=self.platform,
            account=account.external_id,
            id=self.community_id(account, "reply"),
            kind="reply",
            text=text,
            author_id=account.external_id,
            author_name=account.handle,
            created_at=ctx.now,
            parent=mention.id,
            thread=mention.thread,
            from_account=True,
            target=mention.id,
        )
        self.sim.record_reply(made)
        return self._answer(ctx, fault, {"id": made.id})

    @staticmethod
    def _json_param(ctx: Ctx, fields: dict[str, str], name: str) -> Json:
        if isinstance(ctx.body, dict) and name in ctx.body:
            return ctx.body[name]
        raw = fields.get(name)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def send_message(self, ctx: Ctx, owner_id: str) -> Json:
        """A private message: to a public comment's author (recipient.comment_id: once per
        comment, within 7 days), or in a conversation (recipient.id, messaging_type RESPONSE:
        within 24 hours of the person's last message)."""
        fault = self._reply_fault(ctx)
        account = self._own(ctx, owner_id)
        if fault == "rate_limited":
            raise self.throttled(60)
        fields, _ = multipart(ctx)
        recipient = self._json_param(ctx, fields, "recipient")
        message = self._json_param(ctx, fields, "message")
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise self._error(400, 100, "(#100) The parameter message[text] is required")
        if not isinstance(recipient, dict):
            raise self._error(400, 100, "(#100) The parameter recipient is required")
        mine = self.sim.community(self.platform, account.external_id)
        if "comment_id" in recipient:
            comment = self._target(account, str(recipient["comment_id"]))
            if comment.kind not in {"comment", "reply"} or comment.from_account:
                raise self._error(400, 100, "(#100) The comment cannot be answered in private")
            if any(i.private and i.target == comment.id for i in mine):
                raise self._error(400, 10900, "(#10900) Activity already replied to")
            if ctx.now - comment.created_at > PRIVATE_REPLY_WINDOW:
                raise self._error(400, 10, "(#10) This message is sent outside of allowed window.")
            person, target, private = comment.author_id, comment.id, True
        elif "id" in recipient:
            person, private = str(recipient["id"]), False
            if self.page and self._json_param(ctx, fields, "messaging_type") is None:
                raise self._error(400, 100, "(#100) The parameter messaging_type is required")
            said = [
                i
                for i in mine
                if i.kind == "message" and not i.from_account and i.author_id == person
            ]
            if not said:
                raise self._error(400, 100, "(#100) No matching user found", error_subcode=2018001)
            if ctx.now - said[-1].created_at > MESSAGING_WINDOW:
                raise self._error(
                    400,
                    10,
                    "(#10) This message is sent outside of allowed window.",
                    error_subcode=2018278,
                )
            target = said[-1].id
        else:
            raise self._error(400, 100, "(#100) recipient needs an id or a comment_id")
        made = CommunityItem(
            platform=self.platform,
            account=account.external_id,
            id=self.community_id(account, "message"),
            kind="message",
            text=text,
            author_id=account.external_id,
            author_name=account.name if self.page else account.handle,
            created_at=ctx.now,
            thread=self._conversation_with(account.external_id, person),
            from_account=True,
            target=target,
            private=private,
            recipient=person,
        )
        if made.thread is None:
            made.thread = self.community_thread(account, replace_author(made, person))
        self.sim.record_reply(made)
        return self._answer(ctx, fault, {"recipient_id": person, "message_id": made.id})

    def conversations(self, ctx: Ctx, owner_id: str) -> Json:
        """The account's conversations, the latest first, each with its participants and
        its messages (newest first); `user_id` keeps the one with that person."""
        account = self._own(ctx, owner_id)
        if self.page and ctx.query.get("platform") == "instagram":
            return {"data": [], "paging": {"cursors": {}}}
        threads: dict[str, list[CommunityItem]] = {}
        for item in self.sim.community(self.platform, account.external_id):
            if item.kind == "message" and not item.deleted and item.thread:
                threads.setdefault(item.thread, []).append(item)
        wanted = ctx.query.get("user_id")
        rows = []
        for thread, said in threads.items():
            person = self._person(said[0])
            if wanted and person != wanted:
                continue
            theirs = next((i for i in said if not i.from_account), None)
            name = (theirs.author_name if theirs else None) or f"user_{person[-4:]}"
            me = self._who(account, replace(said[0], from_account=True))
            row = {
                "id": thread,
                "updated_time": _stamp(said[-1].created_at),
                "message_count": len(said),
                "participants": {
                    "data": [{"id": person, "name" if self.page else "username": name}, me]
                },
                "messages": {
                    "data": [self._said_fields(account, i) for i in reversed(said)],
                },
            }
            rows.append((said[-1].created_at, row))
        rows.sort(key=lambda pair: pair[0], reverse=True)
        data = [self._fields(ctx, row, "id,updated_time") for _, row in rows]
        return {"data": data, "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}

    def moderate(self, ctx: Ctx, object_id: str) -> Json:
        """Hide or show a comment again: Facebook's is_hidden, Instagram's hide."""
        account = self.account(ctx)
        item = self._target(account, object_id)
        fields, _ = multipart(ctx)
        name = "is_hidden" if self.page else "hide"
        if name not in fields or item.kind == "message":
            raise self._missing(object_id, "post")
        if item.from_account or item.kind == "mention":
            raise self._error(400, 100, "(#100) This comment cannot be hidden by the account")
        item.hidden = fields[name].strip().lower() == "true"
        item.verb = "hide" if item.hidden else "unhide"
        if self.page:  # Instagram announces no moderation
            self.sim.push_items(self.platform, [item.id])
        return {"success": True}

    def delete(self, ctx: Ctx, object_id: str) -> Json:
        account = self.account(ctx)
        item = self._target(account, object_id, "delete")
        if item.kind in {"message", "mention"}:
            raise self._missing(object_id, "delete")
        item.deleted = True
        item.verb = "remove"
        if self.page:
            self.sim.push_items(self.platform, [item.id])
        return {"success": True}

    # --- webhooks

    def webhook_body(self, items: Sequence[CommunityItem]) -> bytes | None:
        """One entry per account and kind of event: ``changes`` (feed; comments, mentions)
        with the time in seconds, ``messaging`` with the time in milliseconds."""
        now = time.time()
        entries: dict[tuple[str, bool], dict[str, Json]] = {}
        for item in items:
            messaging = item.kind == "message"
            entry = entries.setdefault(
                (item.account, messaging),
                {
                    "id": item.account,
                    "time": int(now * 1000) if messaging else int(now),
                    "messaging" if messaging else "changes": [],
                },
            )
            if messaging:
                entry["messaging"].append(self._messaging_event(item))
            else:
                entry["changes"].append(self._change(item))
        body = {"object": "page" if self.page else "instagram", "entry": list(entries.values())}
        return json.dumps(body, separators=(",", ":")).encode()

    def webhook_headers(self, body: bytes, secret: str) -> dict[str, str]:
        key = secret.encode()
        return {
            "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
            "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        }

    def _messaging_event(self, item: CommunityItem) -> dict[str, Json]:
        person = self._person(item)
        message: dict[str, Json] = {"mid": item.id, "text": item.text}
        if item.from_account:
            message |= {"is_echo": True, "app_id": APP_ID}
        if item.deleted:
            message = {"mid": item.id, "is_deleted": True}
        return {
            "sender": {"id": item.author_id},
            "recipient": {"id": person if item.from_account else item.account},
            "timestamp": int(item.created_at * 1000),
            "message": message,
        }

    def _change(self, item: CommunityItem) -> dict[str, Json]:
        account = self.sim.account(self.platform, item.account)
        who = self._who(account, item)
        if not self.page:
            if item.kind == "mention":
                return {
                    "field": "mentions",
                    "value": {"media_id": item.thread, "comment_id": item.id},
                }
            value: dict[str, Json] = {
                "from": who,
                "media": {"id": item.thread, "media_product_type": "FEED"},
                "id": item.id,
                "text": item.text,
            }
            if item.parent:
                value["parent_id"] = item.parent
            return {"field": "comments", "value": value}
        if item.kind == "mention":
            return {
                "field": "mention",
                "value": {
                    "post_id": item.thread,
                    "comment_id": item.id,
                    "sender_id": item.author_id,
                    "sender_name": who.get("name"),
                    "item": "comment",
                    "verb": "add",
                },
            }
        value = {
            "from": who,
            "post": {
                "status_type": "mobile_status_update",
                "is_published": True,
                "updated_time": datetime.fromtimestamp(item.created_at, UTC).isoformat(),
                "permalink_url": f"https://www.facebook.com/{item.thread}",
                "promotion_status": "inactive",
                "id": item.thread,
            },
            "post_id": item.thread,
            "comment_id": item.id,
            "created_time": int(item.created_at),
            "item": "comment",
            "parent_id": item.parent or item.thread,
            "verb": item.verb,
        }
        if item.verb != "remove":
            value["message"] = item.text
        return {"field": "feed", "value": value}


class InstagramDialect(MetaDialect):
    page = False
    insight_metrics = frozenset({"reach", "impressions", "follower_count", "profile_views"})
    max_insight_days = 30
