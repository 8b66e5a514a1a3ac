"""Publishing to X against the platform simulator: text, images, a GIF and a video through the
v2 media upload, every fault that strikes X (its per-user daily post cap included),
reconciliation and a post's figures, with a real RateBudget on Redis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis

from devtools.platforms import PlatformSimulator
from devtools.platforms.x import POSTS_PER_DAY, post_figures, video_views
from infra.settings import Settings
from social.connectors.types import (
    MediaFile,
    OutcomeUnknown,
    PlatformUnavailable,
    PostDraft,
    PublishRejected,
    RateLimited,
    TokenInvalid,
    TokenSet,
)
from social.connectors.x import XConnector
from social.ratebudget import RateBudget
from tests.support.clock import Clock
from tests.support.connectors import account, build, make_budget, png, sized_mp4
from tests.support.connectors import publish as publish_once

PLATFORM = "x"
TEXT = "Le pain au levain est de retour ce matin! https://boulangerie.example/pain"
MIB = 1024 * 1024


@pytest.fixture
def connect(
    http: httpx.AsyncClient, budget: RateBudget, settings: Settings
) -> Callable[..., XConnector]:
    def make(**overrides: Any) -> XConnector:
        connector = build(PLATFORM, http, budget, settings, **overrides)
        assert isinstance(connector, XConnector)
        # The simulator says check_after_secs=1 while a video processes; no need to wait it.
        connector.media_poll_cap = 0.05
        return connector

    return make


@pytest.fixture
def user(platforms: PlatformSimulator) -> tuple[str, TokenSet]:
    return account(platforms, PLATFORM, expires_in=7 * 86_400)


def gif(path: Path) -> MediaFile:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    return MediaFile(path=path, kind="gif", content_type="image/gif", size=path.stat().st_size)


def media_for(tmp_path: Path, flow: str) -> list[MediaFile]:
    if flow == "image":
        return [png(tmp_path / "one.png")]
    if flow == "images":
        return [png(tmp_path / f"{c}.png", c) for c in ("red", "green", "blue", "white")]
    if flow == "gif":
        return [gif(tmp_path / "loop.gif")]
    if flow == "video":
        return [sized_mp4(tmp_path / "clip.mp4", 9 * MIB)]  # three 4 MiB segments
    return []


def draft(
    text: str = TEXT, media: list[MediaFile] | None = None, planned_at: datetime | None = None
) -> PostDraft:
    return PostDraft(
        text=text,
        media=media or [],
        title="Le pain du jour",
        planned_at=planned_at or datetime.now(UTC),
    )


async def publish(
    connector: XConnector, user: tuple[str, TokenSet], post: PostDraft
) -> tuple[Any, dict[str, Any]]:
    external_id, token = user
    published, memory = await publish_once(connector, token, external_id, post)
    return published, memory.state


def calls(platforms: PlatformSimulator, path_part: str) -> int:
    return sum(1 for r in platforms.requests if r.platform == PLATFORM and path_part in r.path)


# ---------------------------------------------------------------- flows


@pytest.mark.parametrize(
    ("flow", "segments", "statuses"),
    [("text", 0, 0), ("image", 1, 0), ("images", 4, 0), ("gif", 1, 2), ("video", 3, 2)],
)
async def test_each_flow_makes_one_post_with_its_text_and_media(
    platforms: PlatformSimulator,
    connect: Callable[..., XConnector],
    user: tuple[str, TokenSet],
    tmp_path: Path,
    flow: str,
    segments: int,
    statuses: int,
) -> None:
    media = media_for(tmp_path, flow)
    post = draft(media=media)

    published, state = await publish(connect(), user, post)

    [made] = platforms.posts_of(PLATFORM, user[0])
    assert (made.text, made.post_id) == (TEXT, published.external_id)
    assert list(made.media) == [m["id"] for m in state["media"]]
    assert len(made.media) == len(media)
    assert published.permalink == f"https://x.com/i/web/status/{made.post_id}"
    assert calls(platforms, "/append") == segments
    assert calls(platforms, "/2/media/upload") - calls(platforms, "/2/media/upload/") == statuses
    # Alt text goes with the images that have some, never with a video.
    assert calls(platforms, "/2/media/metadata") == (
        len(media) if flow in {"image", "images"} else 0
    )
    found = await connect().find(user[1], user[0], post, state, post.planned_at)
    assert found is not None and found.external_id == made.post_id


async def test_prepare_again_reuses_media_that_have_not_expired(
    platforms: PlatformSimulator,
    connect: Callable[..., XConnector],
    user: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    post = draft(media=media_for(tmp_path, "images"))
    connector = connect()
    first = await connector.prepare(user[1], user[0], post, {})

    again = await connector.prepare(user[1], user[0], post, first)

    assert again == first
    assert calls(platforms, "/initialize") == 4
    stale = {"media": [{**m, "expires_at": datetime.now(UTC).isoformat()} for m in first["media"]]}
    renewed = await connector.prepare(user[1], user[0], post, stale)
    assert calls(platforms, "/initialize") == 8
    assert {m["id"] for m in renewed["media"]}.isdisjoint(m["id"] for m in first["media"])
    assert platforms.posts_of(PLATFORM, user[0]) == []


async def test_more_than_four_images_are_refused_before_any_upload(
    platforms: PlatformSimulator,
    connect: Callable[..., XConnector],
    user: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    post = draft(media=[png(tmp_path / f"{i}.png") for i in range(5)])
    with pytest.raises(PublishRejected, match="up to 4 images"):
        await connect().prepare(user[1], user[0], post, {})
    assert calls(platforms, "/2/media") == 0


# ---------------------------------------------------------------- faults


async def test_a_5xx_before_any_post_is_retryable_during_prepare(
    platforms: PlatformSimulator,
    connect: Callable[..., XConnector],
    user: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    platforms.fault(PLATFORM, "error_before_create")
    with pytest.raises(PlatformUnavailable):
        await connect().prepare(user[1], user[0], draft(media=media_for(tmp_path, "image")), {})
    assert platforms.posts_of(PLATFORM, user[0]) == []


async def test_a_5xx_answer_to_the_post_itself_is_an_unknown_outcome(
    platforms: PlatformSimulator, connect: Callable[..., XConnector], user: tuple[str, TokenSet]
) -> None:
    platforms.fault(PLATFORM, "error_before_create")
    with pytest.raises(OutcomeUnknown):
        await publish(connect(), user, draft())
    assert platforms.posts_of(PLATFORM, user[0]) == []


async def test_a_429_on_the_post_is_rate_limited_with_the_wait(
    platforms: PlatformSimulator, connect: Callable[..., XConnector], user: tuple[str, TokenSet]
) -> None:
    platforms.fault(PLATFORM, "rate_limited")
    with pytest.raises(RateLimited) as caught:
        await publish(connect(), user, draft())
    assert caught.value.retry_after == 60
    assert platforms.posts_of(PLATFORM, user[0]) == []


async def test_a_token_that_expires_after_prepare_needs_reauthorization(
    platforms: PlatformSimulator,
    connect: Callable[..., XConnector],
    user: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    platforms.fault(PLATFORM, "token_expires_mid_flow")
    with pytest.raises(TokenInvalid) as caught:
        await publish(connect(), user, draft(media=media_for(tmp_path, "image")))
    assert user[1].access_token not in str(caught.value)
    assert platforms.posts_of(PLATFORM, user[0]) == []


async def test_a_video_that_fails_processing_is_refused_before_any_post(
    platforms: PlatformSimulator,
    connect: Callable[..., XConnector],
    user: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    platforms.fault(PLATFORM, "container_error")
    with pytest.raises(PublishRejected) as caught:
        await connect().prepare(user[1], user[0], draft(media=media_for(tmp_path, "video")), {})
    assert caught.value.code == "media_rejected"
    assert "Unsupported video format" in caught.value.reason
    assert platforms.posts_of(PLATFORM, user[0]) == []


async def test_a_post_the_platform_refuses_is_rejected_with_a_reason_to_act_on(
    platforms: PlatformSimulator, connect: Callable[..., XConnector], user: tuple[str, TokenSet]
) -> None:
    with pytest.raises(PublishRejected) as caught:
        await publish(connect(), user, draft(text=""))
    assert caught.value.code == "rejected"
    assert caught.value.reason.startswith("X refused the post")
    assert user[1].access_token not in caught.value.reason
    assert platforms.posts_of(PLATFORM, user[0]) == []


async def test_a_timeout_after_the_post_is_unknown_and_reconciliation_finds_it(
    platforms: PlatformSimulator, connect: Callable[..., XConnector], user: tuple[str, TokenSet]
) -> None:
    platforms.hang_seconds = 3.0
    platforms.fault(PLATFORM, "timeout_after_create")
    connector = connect(social_http_timeout_seconds=1.0)
    post = draft()

    with pytest.raises(OutcomeUnknown):
        await publish(connector, user, post)

    [made] = platforms.posts_of(PLATFORM, user[0])
    found = await connector.find(user[1], user[0], post, {}, post.planned_at - timedelta(seconds=1))
    assert found is not None and found.external_id == made.post_id


async def test_a_spent_daily_cap_refuses_past_the_deadline_and_waits_before_it(
    platforms: PlatformSimulator,
    connect: Callable[..., XConnector],
    user: tuple[str, TokenSet],
    clock: Clock,
) -> None:
    start = clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    connector = connect()
    platforms.fault(PLATFORM, "quota_spent")

    with pytest.raises(PublishRejected) as caught:
        await publish(connector, user, draft(planned_at=start))
    assert caught.value.code == "quota_spent"
    assert f"limit of {POSTS_PER_DAY} posts" in caught.value.reason
    assert "2026-03-03 09:00 UTC" in caught.value.reason
    # The cap is about posting: the account's figures are still read.
    assert (await connector.profile(user[1], user[0])).external_id == user[0]

    clock.advance(timedelta(hours=23))
    with pytest.raises(RateLimited) as waiting:
        await publish(connector, user, draft(planned_at=datetime.now(UTC)))
    assert 3500 <= waiting.value.retry_after <= 3600

    clock.advance(timedelta(hours=1, seconds=5))
    published, _ = await publish(connector, user, draft(planned_at=datetime.now(UTC)))
    assert [p.post_id for p in platforms.posts_of(PLATFORM, user[0])] == [published.external_id]


async def test_the_daily_cap_counts_each_user_s_posts(
    platforms: PlatformSimulator,
    http: httpx.AsyncClient,
    redis: Redis,
    prefix: str,
    settings: Settings,
    user: tuple[str, TokenSet],
) -> None:
    # A budget roomy enough for a day's worth of posts in one go.
    budget = make_budget(redis, prefix, {"x": "1000/900", "x:token": "1000/900"})
    connector = build(PLATFORM, http, budget, settings)
    assert isinstance(connector, XConnector)
    for i in range(POSTS_PER_DAY):
        await publish(connector, user, draft(text=f"post {i}"))
    with pytest.raises(PublishRejected) as caught:
        await publish(connector, user, draft(text="one too many"))
    assert caught.value.code == "quota_spent"

    other, token = account(platforms, PLATFORM)
    await publish(connector, (other, token), draft(text="another account"))
    assert len(platforms.posts_of(PLATFORM, user[0])) == POSTS_PER_DAY
    assert len(platforms.posts_of(PLATFORM, other)) == 1


async def test_publishing_ignores_the_forced_stats_window(
    platforms: PlatformSimulator, connect: Callable[..., XConnector], user: tuple[str, TokenSet]
) -> None:
    platforms.set_remaining(PLATFORM, 0, reset_in=600)
    connector = connect()

    published, _ = await publish(connector, user, draft())

    assert [p.post_id for p in platforms.posts_of(PLATFORM, user[0])] == [published.external_id]
    with pytest.raises(RateLimited):
        await connector.profile(user[1], user[0])


# ---------------------------------------------------------------- reconciliation, figures


async def test_find_matches_the_text_after_since_and_nothing_else(
    platforms: PlatformSimulator, connect: Callable[..., XConnector], user: tuple[str, TokenSet]
) -> None:
    connector = connect()
    post = draft()
    published, _ = await publish(connector, user, post)
    before = post.planned_at - timedelta(minutes=5)

    found = await connector.find(user[1], user[0], post, {}, before)
    assert found is not None and found.external_id == published.external_id
    assert found.published_at is not None and found.published_at >= before

    assert await connector.find(user[1], user[0], draft("never posted"), {}, before) is None
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await connector.find(user[1], user[0], post, {}, later) is None


async def test_post_figures_are_the_post_s_public_metrics_and_video_views(
    platforms: PlatformSimulator,
    connect: Callable[..., XConnector],
    user: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    connector = connect()
    for flow in ("image", "video"):
        published, _ = await publish(connector, user, draft(media=media_for(tmp_path, flow)))
        figures = await connector.post_figures(user[1], user[0], published.external_id)
        expected = post_figures(published.external_id)
        assert figures.impressions == expected["impression_count"]
        assert figures.reach is None
        assert figures.engagements == sum(
            expected[k] for k in ("like_count", "retweet_count", "reply_count", "quote_count")
        )
        views = video_views(published.external_id) if flow == "video" else None
        assert figures.video_views == views
