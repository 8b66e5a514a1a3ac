"""Publishing on a Facebook Page and an Instagram business account, against the platform
simulator over real HTTP, with a real RateBudget on Redis: every flow the platforms have (text,
link, photos, video; image, reel, carousel), every publishing fault, reconciliation and the
posts' figures."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from devtools.platforms import PlatformSimulator
from devtools.platforms.meta import post_insight
from infra.settings import Settings
from social.connectors.meta import FacebookPageConnector, InstagramBusinessConnector
from social.connectors.types import (
    MediaFile,
    OutcomeUnknown,
    PlatformUnavailable,
    PostDraft,
    PostFigures,
    PublishedPost,
    PublishRejected,
    RateLimited,
    TokenInvalid,
    TokenSet,
)
from social.ratebudget import RateBudget
from tests.support.clock import Clock
from tests.support.connectors import account, build

FB = "facebook_page"
IG = "instagram_business"
DAY = 86_400


# ---------------------------------------------------------------- fixtures


@dataclass
class Account:
    connector: Any
    external_id: str
    token: TokenSet


@pytest.fixture
def connect(
    platforms: PlatformSimulator, http: httpx.AsyncClient, budget: RateBudget, settings: Settings
) -> Callable[[str], Account]:
    """connect(platform) -> the connector, a new account on the simulator and its token (valid
    for days: some tests move the clock a day on). The HTTP timeout is short: the
    timeout_after_create fault holds its answer back."""

    def make(platform: str) -> Account:
        connector = build(platform, http, budget, settings, social_http_timeout_seconds=1.0)
        assert isinstance(connector, FacebookPageConnector | InstagramBusinessConnector)
        connector.poll_interval = 0.01
        connector.poll_limit = 5.0
        external_id, token = account(platforms, platform, expires_in=10 * DAY)
        return Account(connector, external_id, token)

    return make


def png(tmp_path: Path, name: str, color: str = "teal") -> MediaFile:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format="PNG")
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    return MediaFile(
        path=path,
        kind="image",
        content_type="image/png",
        size=path.stat().st_size,
        alt_text="A teal rectangle",
        width=64,
        height=48,
        source_url=f"https://media.example.org/{name}",
    )


def jpeg(tmp_path: Path, name: str, color: str = "orange") -> MediaFile:
    """Instagram publishes JPEG images only."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format="JPEG")
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    return MediaFile(
        path=path,
        kind="image",
        content_type="image/jpeg",
        size=path.stat().st_size,
        width=64,
        height=48,
        source_url=f"https://media.example.org/{name}",
    )


def mp4(tmp_path: Path, name: str = "clip.mp4") -> MediaFile:
    path = tmp_path / name
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(200_000))
    return MediaFile(
        path=path,
        kind="video",
        content_type="video/mp4",
        size=path.stat().st_size,
        duration=12.0,
        source_url=f"https://media.example.org/{name}",
    )


def draft(text: str, *media: MediaFile, link: str | None = None) -> PostDraft:
    return PostDraft(
        text=text, media=media, title="Spring launch", planned_at=datetime.now(UTC), link=link
    )


def unique(text: str) -> str:
    return f"{text} #{uuid.uuid4().hex[:6]}"


async def publish(account: Account, post: PostDraft) -> tuple[PublishedPost, dict[str, Any]]:
    remembered: list[dict[str, Any]] = []

    async def remember(values: dict[str, Any]) -> None:
        remembered.append(values)

    state = await account.connector.prepare(account.token, account.external_id, post, {})
    made = await account.connector.create(account.token, account.external_id, post, state, remember)
    return made, state


async def no_remember(values: dict[str, Any]) -> None:
    raise AssertionError("Meta hands out no id mid-create")


def posts_sent(platforms: PlatformSimulator, suffix: str) -> int:
    return sum(1 for r in platforms.requests if r.method == "POST" and r.path.endswith(suffix))


def clean(exc: BaseException, account: Account) -> None:
    assert account.token.access_token not in str(exc)
    assert account.token.access_token not in repr(exc)


# ---------------------------------------------------------------- Facebook: flows


@pytest.mark.parametrize("flow", ["text", "link", "photos", "video"])
async def test_facebook_page_publishes_each_kind_of_post(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, flow: str
) -> None:
    page = connect(FB)
    text = unique(f"Our {flow} post")
    photos = [png(tmp_path, "a.png"), png(tmp_path, "b.png", "navy")]
    video = mp4(tmp_path)
    post = {
        "text": draft(text),
        "link": draft(text, link="https://shop.example.org/spring"),
        "photos": draft(text, *photos),
        "video": draft(text, video),
    }[flow]

    made, state = await publish(page, post)

    [created] = platforms.posts_of(FB, page.external_id)
    assert created.text == text
    assert made.permalink == created.permalink and made.permalink.startswith("https://")
    assert made.published_at is not None
    if flow == "photos":
        # Exactly the files sent, in order, and uploaded unpublished by prepare.
        assert created.media == tuple(
            f"photo:{hashlib.sha256(p.path.read_bytes()).hexdigest()[:16]}" for p in photos
        )
        assert len(state["photos"]) == 2
        assert made.external_id == created.post_id
    elif flow == "video":
        assert created.media == (
            f"video:{hashlib.sha256(video.path.read_bytes()).hexdigest()[:16]}",
        )
        assert created.post_id == f"{page.external_id}_{made.external_id}"
        assert posts_sent(platforms, "/videos") == 1
    elif flow == "link":
        assert created.media == ("link:https://shop.example.org/spring",)
        assert made.external_id == created.post_id
    else:
        assert created.media == () and state == {}
        assert made.external_id == created.post_id


async def test_facebook_prepare_publishes_nothing_and_keeps_earlier_uploads(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    page = connect(FB)
    post = draft(unique("Two photos"), png(tmp_path, "a.png"), png(tmp_path, "b.png", "red"))
    first = await page.connector.prepare(page.token, page.external_id, post, {})
    again = await page.connector.prepare(page.token, page.external_id, post, first)

    assert again == first
    assert posts_sent(platforms, "/photos") == 2
    assert platforms.posts_of(FB, page.external_id) == []


async def test_facebook_refuses_photos_with_a_video_before_any_call(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    page = connect(FB)
    post = draft("Mixed", png(tmp_path, "a.png"), mp4(tmp_path))
    with pytest.raises(PublishRejected) as refused:
        await page.connector.prepare(page.token, page.external_id, post, {})
    assert refused.value.code == "rejected" and "Facebook" in refused.value.reason
    assert platforms.count(FB) == 0


# ---------------------------------------------------------------- Facebook: faults


async def test_facebook_5xx_on_a_photo_upload_is_worth_retrying_and_posts_nothing(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    page = connect(FB)
    platforms.fault(FB, "error_before_create")
    with pytest.raises(PlatformUnavailable):
        await page.connector.prepare(
            page.token, page.external_id, draft("Photo", png(tmp_path, "a.png")), {}
        )
    assert platforms.posts_of(FB, page.external_id) == []


async def test_facebook_5xx_on_the_post_itself_is_an_unknown_outcome_and_find_sees_none(
    platforms: PlatformSimulator, connect: Any
) -> None:
    """Meta's 5xx on /feed cannot prove nothing was posted: the publication is unconfirmed,
    and reconciliation then reads the Page and finds no such post."""
    page = connect(FB)
    post = draft(unique("Text only"))
    since = datetime.now(UTC) - timedelta(seconds=5)
    platforms.fault(FB, "error_before_create")
    with pytest.raises(OutcomeUnknown) as unknown:
        await page.connector.create(page.token, page.external_id, post, {}, no_remember)
    clean(unknown.value, page)
    assert platforms.posts_of(FB, page.external_id) == []
    assert await page.connector.find(page.token, page.external_id, post, {}, since) is None


@pytest.mark.parametrize(
    ("fault", "error", "flow"),
    [
        ("rate_limited", RateLimited, "text"),
        ("rate_limited", RateLimited, "video"),
        ("token_expires_mid_flow", TokenInvalid, "photos"),
        ("token_expires_mid_flow", TokenInvalid, "video"),
        ("container_error", PublishRejected, "video"),
    ],
)
async def test_facebook_definite_refusals_of_the_post_create_nothing(
    platforms: PlatformSimulator,
    connect: Any,
    tmp_path: Path,
    fault: str,
    error: type[Exception],
    flow: str,
) -> None:
    page = connect(FB)
    media = {"text": (), "photos": (png(tmp_path, "a.png"),), "video": (mp4(tmp_path),)}[flow]
    post = draft(unique("Refused"), *media)
    state = await page.connector.prepare(page.token, page.external_id, post, {})
    platforms.fault(FB, fault)

    with pytest.raises(error) as refused:
        await page.connector.create(page.token, page.external_id, post, state, no_remember)

    clean(refused.value, page)
    if isinstance(refused.value, PublishRejected):
        assert refused.value.code == "media_rejected"
        assert refused.value.reason.startswith("Facebook")
    if isinstance(refused.value, RateLimited):
        assert refused.value.retry_after >= 60
    assert platforms.posts_of(FB, page.external_id) == []


async def test_facebook_photo_the_platform_cannot_process_is_refused_in_prepare(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    page = connect(FB)
    platforms.fault(FB, "container_error")
    with pytest.raises(PublishRejected) as refused:
        await page.connector.prepare(
            page.token, page.external_id, draft("Bad photo", png(tmp_path, "a.png")), {}
        )
    assert refused.value.code == "media_rejected"
    assert platforms.posts_of(FB, page.external_id) == []


@pytest.mark.parametrize("flow", ["photos", "video"])
async def test_facebook_timeout_after_the_post_is_unknown_and_reconciliation_finds_it(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, flow: str
) -> None:
    page = connect(FB)
    media = png(tmp_path, "a.png") if flow == "photos" else mp4(tmp_path)
    post = draft(unique("Timed out"), media)
    since = datetime.now(UTC) - timedelta(seconds=5)
    state = await page.connector.prepare(page.token, page.external_id, post, {})
    platforms.fault(FB, "timeout_after_create")
    platforms.hang_seconds = 2.0  # past the client's 1 s, and no longer

    with pytest.raises(OutcomeUnknown):
        await page.connector.create(page.token, page.external_id, post, state, no_remember)

    [created] = platforms.posts_of(FB, page.external_id)
    found = await page.connector.find(page.token, page.external_id, post, state, since)
    assert found is not None
    assert (found.external_id, found.permalink) == (created.post_id, created.permalink)


# ---------------------------------------------------------------- Facebook: find, figures


@pytest.mark.parametrize("photos", [1, 3])
async def test_facebook_find_knows_a_photo_post_by_its_photos_even_without_text(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, photos: int
) -> None:
    page = connect(FB)
    since = datetime.now(UTC) - timedelta(seconds=5)
    files = [png(tmp_path, f"{i}.png", ("red", "lime", "blue")[i]) for i in range(photos)]
    post = draft("", *files)
    made, state = await publish(page, post)
    await publish(page, draft(unique("A later post")))

    found = await page.connector.find(page.token, page.external_id, post, state, since)
    assert found is not None and found.external_id == made.external_id
    # Another attempt's photos (never posted) find nothing, even with the same empty text.
    other = await page.connector.prepare(page.token, page.external_id, post, {})
    assert await page.connector.find(page.token, page.external_id, post, other, since) is None


async def test_facebook_find_matches_the_exact_text_after_since_only(
    platforms: PlatformSimulator, connect: Any
) -> None:
    page = connect(FB)
    post = draft(unique("Find me"))
    before = datetime.now(UTC) - timedelta(seconds=5)
    made, _ = await publish(page, post)

    found = await page.connector.find(page.token, page.external_id, post, {}, before)
    assert found is not None and found.external_id == made.external_id
    assert found.permalink == made.permalink
    other = draft(unique("Never posted"))
    assert await page.connector.find(page.token, page.external_id, other, {}, before) is None
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await page.connector.find(page.token, page.external_id, post, {}, later) is None


async def test_facebook_post_and_video_figures(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    page = connect(FB)
    text_post, _ = await publish(page, draft(unique("Figures")))
    video_post, _ = await publish(page, draft(unique("Video figures"), mp4(tmp_path)))
    feed_id = text_post.external_id
    video_feed_id = f"{page.external_id}_{video_post.external_id}"

    figures = await page.connector.post_figures(page.token, page.external_id, feed_id)
    assert figures == PostFigures(
        impressions=post_insight(feed_id, "post_media_view"),
        reach=post_insight(feed_id, "post_total_media_view_unique"),
        engagements=sum(post_insight(feed_id, m) for m in ("likes", "comments", "shares")),
        video_views=0,
    )
    video = await page.connector.post_figures(page.token, page.external_id, video_post.external_id)
    assert video == PostFigures(
        impressions=post_insight(video_feed_id, "total_video_impressions"),
        reach=post_insight(video_feed_id, "total_video_impressions_unique"),
        engagements=sum(post_insight(video_feed_id, m) for m in ("likes", "comments")),
        video_views=post_insight(video_feed_id, "total_video_views"),
    )
    assert figures.reach is not None and figures.impressions is not None
    assert 0 < figures.reach <= figures.impressions


# ---------------------------------------------------------------- Instagram: flows


@pytest.mark.parametrize("flow", ["image", "reel", "carousel"])
async def test_instagram_publishes_image_reel_and_carousel(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, flow: str
) -> None:
    ig = connect(IG)
    text = unique(f"Our {flow}")
    media = {
        "image": (jpeg(tmp_path, "a.jpg"),),
        "reel": (mp4(tmp_path),),
        "carousel": (jpeg(tmp_path, "a.jpg"), mp4(tmp_path), jpeg(tmp_path, "c.jpg")),
    }[flow]

    made, state = await publish(ig, draft(text, *media))

    [created] = platforms.posts_of(IG, ig.external_id)
    assert created.text == text
    assert created.media == tuple(m.source_url for m in media)
    assert created.marker == state["container"]["id"]
    assert (made.external_id, made.permalink) == (created.post_id, created.permalink)
    assert (made.permalink or "").startswith("https://www.instagram.com/p/")
    assert len(state["container"]["children"]) == (3 if flow == "carousel" else 0)
    # The quota is read before any container is made.
    assert platforms.requests[0].path.endswith("/content_publishing_limit")


async def test_instagram_prepare_reuses_a_live_container_and_remakes_an_expired_one(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, clock: Clock
) -> None:
    clock.set(datetime.now(UTC))
    ig = connect(IG)
    post = draft(unique("Reuse"), jpeg(tmp_path, "a.jpg"))
    first = await ig.connector.prepare(ig.token, ig.external_id, post, {})
    again = await ig.connector.prepare(ig.token, ig.external_id, post, first)
    assert again == first
    assert posts_sent(platforms, "/media") == 1

    clock.advance(timedelta(hours=25))
    renewed = await ig.connector.prepare(ig.token, ig.external_id, post, first)
    assert renewed["container"]["id"] != first["container"]["id"]
    assert posts_sent(platforms, "/media") == 2
    assert platforms.posts_of(IG, ig.external_id) == []


async def test_instagram_container_expired_before_create_is_refused(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, clock: Clock
) -> None:
    clock.set(datetime.now(UTC))
    ig = connect(IG)
    post = draft(unique("Late"), jpeg(tmp_path, "a.jpg"))
    state = await ig.connector.prepare(ig.token, ig.external_id, post, {})
    clock.advance(timedelta(hours=25))

    with pytest.raises(PublishRejected) as expired:
        await ig.connector.create(ig.token, ig.external_id, post, state, no_remember)
    assert expired.value.code == "media_expired"
    assert posts_sent(platforms, "/media_publish") == 0


@pytest.mark.parametrize(
    ("media", "text", "why"),
    [
        ((), "No", "needs an image or a video"),
        (("no-url",), "No", "public https address"),
        (("image",) * 11, "No", "at most 10"),
        (("png",), "No", "JPEG images only"),
        (("image",), "x" * 2_201, "at most 2,200 characters"),
    ],
)
async def test_instagram_refuses_what_it_cannot_take_before_any_call(
    platforms: PlatformSimulator,
    connect: Any,
    tmp_path: Path,
    media: tuple[str, ...],
    text: str,
    why: str,
) -> None:
    ig = connect(IG)
    image = jpeg(tmp_path, "a.jpg")
    files = {
        "image": image,
        "no-url": MediaFile(image.path, "image", "image/jpeg", image.size),
        "png": png(tmp_path, "a.png"),
    }
    with pytest.raises(PublishRejected) as refused:
        await ig.connector.prepare(
            ig.token, ig.external_id, draft(text, *(files[m] for m in media)), {}
        )
    assert why in refused.value.reason and refused.value.reason.startswith("Instagram")
    assert platforms.count(IG) == 0


# ---------------------------------------------------------------- Instagram: faults


async def test_instagram_spent_quota_refuses_before_any_container(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    ig = connect(IG)
    platforms.fault(IG, "quota_spent")
    with pytest.raises(PublishRejected) as spent:
        post = draft("Q", jpeg(tmp_path, "a.jpg"))
        await ig.connector.prepare(ig.token, ig.external_id, post, {})
    assert spent.value.code == "quota_spent"
    assert "24 hours" in spent.value.reason and "100" in spent.value.reason
    assert posts_sent(platforms, "/media") == 0
    assert platforms.posts_of(IG, ig.external_id) == []


async def test_instagram_quota_spent_between_prepare_and_publish_is_refused(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    ig = connect(IG)
    post = draft(unique("Quota"), jpeg(tmp_path, "a.jpg"))
    state = await ig.connector.prepare(ig.token, ig.external_id, post, {})
    platforms.fault(IG, "quota_spent")
    with pytest.raises(PublishRejected) as spent:
        await ig.connector.create(ig.token, ig.external_id, post, state, no_remember)
    assert spent.value.code == "quota_spent" and spent.value.reason.startswith("Instagram")
    assert platforms.posts_of(IG, ig.external_id) == []


@pytest.mark.parametrize("flow", ["image", "carousel"])
async def test_instagram_container_in_error_is_a_media_refusal(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, flow: str
) -> None:
    ig = connect(IG)
    media = [jpeg(tmp_path, "a.jpg")] + ([jpeg(tmp_path, "b.jpg")] if flow == "carousel" else [])
    platforms.fault(IG, "container_error")
    with pytest.raises(PublishRejected) as refused:
        await ig.connector.prepare(ig.token, ig.external_id, draft("E", *media), {})
    assert refused.value.code == "media_rejected"
    assert posts_sent(platforms, "/media_publish") == 0


async def test_instagram_5xx_before_the_post_is_worth_retrying(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    ig = connect(IG)
    platforms.fault(IG, "error_before_create")
    with pytest.raises(PlatformUnavailable):
        post = draft("5", jpeg(tmp_path, "a.jpg"))
        await ig.connector.prepare(ig.token, ig.external_id, post, {})
    # The next attempt goes through.
    made, _ = await publish(ig, draft(unique("Second try"), jpeg(tmp_path, "a.jpg")))
    assert [p.post_id for p in platforms.posts_of(IG, ig.external_id)] == [made.external_id]


@pytest.mark.parametrize(
    ("fault", "error"),
    [("rate_limited", RateLimited), ("token_expires_mid_flow", TokenInvalid)],
)
async def test_instagram_definite_refusals_of_media_publish_create_nothing(
    platforms: PlatformSimulator,
    connect: Any,
    tmp_path: Path,
    fault: str,
    error: type[Exception],
) -> None:
    ig = connect(IG)
    post = draft(unique("Refused"), jpeg(tmp_path, "a.jpg"))
    state = await ig.connector.prepare(ig.token, ig.external_id, post, {})
    platforms.fault(IG, fault)
    with pytest.raises(error) as refused:
        await ig.connector.create(ig.token, ig.external_id, post, state, no_remember)
    clean(refused.value, ig)
    assert platforms.posts_of(IG, ig.external_id) == []


async def test_instagram_timeout_after_publish_is_unknown_and_the_container_finds_it(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    ig = connect(IG)
    post = draft(unique("Timed out"), jpeg(tmp_path, "a.jpg"))
    since = datetime.now(UTC) - timedelta(seconds=5)
    state = await ig.connector.prepare(ig.token, ig.external_id, post, {})
    platforms.fault(IG, "timeout_after_create")
    platforms.hang_seconds = 2.0  # past the client's 1 s, and no longer

    with pytest.raises(OutcomeUnknown):
        await ig.connector.create(ig.token, ig.external_id, post, state, no_remember)

    [created] = platforms.posts_of(IG, ig.external_id)
    assert created.marker == state["container"]["id"]
    found = await ig.connector.find(ig.token, ig.external_id, post, state, since)
    assert found is not None
    assert (found.external_id, found.permalink) == (created.post_id, created.permalink)


# ---------------------------------------------------------------- Instagram: find, figures


async def test_instagram_find_trusts_an_unpublished_container_and_matches_captions(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    ig = connect(IG)
    since = datetime.now(UTC) - timedelta(seconds=5)
    published = draft(unique("Posted"), jpeg(tmp_path, "a.jpg"))
    made, _ = await publish(ig, published)
    never = draft(published.text, jpeg(tmp_path, "a.jpg"))
    unpublished = await ig.connector.prepare(ig.token, ig.external_id, never, {})
    listings = sum(1 for r in platforms.requests if r.method == "GET" and r.path.endswith("/media"))

    # Same caption as a live post, but its own container was never published: not found.
    assert await ig.connector.find(ig.token, ig.external_id, never, unpublished, since) is None
    # Without a container, the caption and time decide.
    found = await ig.connector.find(ig.token, ig.external_id, published, {}, since)
    assert found is not None and found.external_id == made.external_id
    other = draft(unique("Never posted"), jpeg(tmp_path, "a.jpg"))
    assert await ig.connector.find(ig.token, ig.external_id, other, {}, since) is None
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await ig.connector.find(ig.token, ig.external_id, published, {}, later) is None
    gets = sum(1 for r in platforms.requests if r.method == "GET" and r.path.endswith("/media"))
    assert gets == listings + 3  # the unpublished container needed no listing


@pytest.mark.parametrize("flow", ["image", "reel"])
async def test_instagram_post_figures(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, flow: str
) -> None:
    ig = connect(IG)
    media = jpeg(tmp_path, "a.jpg") if flow == "image" else mp4(tmp_path)
    made, _ = await publish(ig, draft(unique("Figures"), media))
    figures = await ig.connector.post_figures(ig.token, ig.external_id, made.external_id)
    views = post_insight(made.external_id, "views")
    assert figures == PostFigures(
        impressions=views,
        reach=post_insight(made.external_id, "reach"),
        engagements=post_insight(made.external_id, "total_interactions"),
        video_views=views if flow == "reel" else None,
    )


async def test_a_retired_metric_leaves_only_its_figure_empty(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    ig = connect(IG)
    made, _ = await publish(ig, draft(unique("Retired"), jpeg(tmp_path, "a.jpg")))
    platforms.deprecate(IG, "reach")
    figures = await ig.connector.post_figures(ig.token, ig.external_id, made.external_id)
    assert figures.reach is None
    assert figures.impressions == post_insight(made.external_id, "views")
