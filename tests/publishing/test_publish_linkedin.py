"""Publishing to a LinkedIn organization page against the platform simulator: every flow
(text, link, image, several images, video), every fault that strikes LinkedIn, reconciliation
and a post's figures, with a real RateBudget on Redis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.platforms import PlatformSimulator
from devtools.platforms.linkedin import post_figures, video_views
from infra.settings import Settings
from social.connectors.linkedin import LinkedInConnector
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
from social.ratebudget import RateBudget
from tests.support.connectors import account, build, sized_mp4
from tests.support.connectors import png as any_png
from tests.support.connectors import publish as publish_once

PLATFORM = "linkedin_organization"
TEXT = "Nouveau pain (au levain) chez #BoulangerieStLaurent @Montréal: 5 $ *seulement*"
"""Reserved characters of LinkedIn's "little" text: unescaped, the post would be cut."""
MIB = 1024 * 1024


@pytest.fixture
def connect(
    http: httpx.AsyncClient, budget: RateBudget, settings: Settings
) -> Callable[..., LinkedInConnector]:
    def make(**overrides: Any) -> LinkedInConnector:
        connector = build(PLATFORM, http, budget, settings, **overrides)
        assert isinstance(connector, LinkedInConnector)
        # The simulator answers "PROCESSING" to a video's first status look; no need to wait
        # LinkedIn's real seconds between looks.
        connector.media_poll_seconds = 0.05
        return connector

    return make


@pytest.fixture
def page(platforms: PlatformSimulator) -> tuple[str, TokenSet]:
    return account(platforms, PLATFORM)


def png(path: Path, color: str = "orange") -> MediaFile:
    """LinkedIn's images carry their dimensions."""
    return any_png(path, color, width=64, height=48)


def draft(
    text: str = TEXT, media: list[MediaFile] | None = None, link: str | None = None
) -> PostDraft:
    return PostDraft(
        text=text,
        media=media or [],
        title="Le pain du jour",
        planned_at=datetime.now(UTC),
        link=link,
    )


async def publish(connector: LinkedInConnector, page: tuple[str, TokenSet], post: PostDraft) -> Any:
    external_id, token = page
    published, memory = await publish_once(connector, token, external_id, post)
    return published, memory.state


def media_kinds(tmp_path: Path, flow: str) -> list[MediaFile]:
    if flow == "image":
        return [png(tmp_path / "one.png")]
    if flow == "images":
        return [png(tmp_path / f"{c}.png", c) for c in ("red", "green", "blue")]
    if flow == "video":
        return [sized_mp4(tmp_path / "clip.mp4", 9 * MIB)]  # three 4 MiB parts
    return []


# ---------------------------------------------------------------- flows


@pytest.mark.parametrize(
    ("flow", "content_key"),
    [
        ("text", None),
        ("link", "article"),
        ("image", "media"),
        ("images", "multiImage"),
        ("video", "media"),
    ],
)
async def test_each_flow_makes_one_post_with_its_text_and_media(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
    tmp_path: Path,
    flow: str,
    content_key: str | None,
) -> None:
    media = media_kinds(tmp_path, flow)
    link = "https://boulangerie.example/pain" if flow == "link" else None
    post = draft(media=media, link=link)

    published, state = await publish(connect(), page, post)

    [made] = platforms.posts_of(PLATFORM, page[0])
    assert made.text == TEXT  # escaped as little text: nothing cut at "(" or "#"
    assert made.post_id == published.external_id
    assert len(made.media) == len(media)
    assert published.permalink == made.permalink
    assert published.permalink == f"https://www.linkedin.com/feed/update/{made.post_id}/"
    kind = "ugcPost" if flow == "video" else "share"
    assert published.external_id.startswith(f"urn:li:{kind}:")
    assert [m["urn"] for m in state["media"]] == list(made.media)
    if flow == "video":
        parts = [r for r in platforms.requests if r.method == "PUT" and "uploadedVideo" in r.path]
        assert len(parts) == 3
    listing = await connect().find(page[1], page[0], post, state, since=post.planned_at)
    assert listing is not None and listing.external_id == made.post_id
    if content_key is not None:
        sent = await connect()._get(
            f"/posts?author=urn%3Ali%3Aorganization%3A{page[0]}&q=author&count=5",
            page[1].access_token,
        )
        assert content_key in sent["elements"][0]["content"]
    assert platforms.duplicates() == []


async def test_prepare_again_reuses_the_uploads_of_an_earlier_attempt(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    post = draft(media=media_kinds(tmp_path, "images"))
    connector = connect()
    first = await connector.prepare(page[1], page[0], post, {})
    uploads = sum(1 for r in platforms.requests if r.method == "PUT")

    again = await connector.prepare(page[1], page[0], post, first)

    assert again == first
    assert sum(1 for r in platforms.requests if r.method == "PUT") == uploads
    # An upload LinkedIn no longer knows is made again, the others still serve.
    gone = {
        "media": [{**first["media"][0], "urn": "urn:li:image:D4E10AQgone"}, *first["media"][1:]]
    }
    renewed = await connector.prepare(page[1], page[0], post, gone)
    assert sum(1 for r in platforms.requests if r.method == "PUT") == uploads + 1
    assert renewed["media"][1:] == first["media"][1:]
    assert renewed["media"][0]["urn"] not in {m["urn"] for m in first["media"]} | {
        "urn:li:image:D4E10AQgone"
    }
    assert platforms.posts_of(PLATFORM, page[0]) == []  # preparing publishes nothing


# ---------------------------------------------------------------- faults


async def test_a_5xx_before_any_post_is_retryable_during_prepare(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    platforms.fault(PLATFORM, "error_before_create")
    with pytest.raises(PlatformUnavailable):
        await connect().prepare(page[1], page[0], draft(media=media_kinds(tmp_path, "image")), {})
    assert platforms.posts_of(PLATFORM, page[0]) == []


async def test_a_5xx_answer_to_the_post_itself_is_an_unknown_outcome(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
) -> None:
    platforms.fault(PLATFORM, "error_before_create")
    with pytest.raises(OutcomeUnknown):
        await publish(connect(), page, draft())
    assert platforms.posts_of(PLATFORM, page[0]) == []


async def test_a_429_on_the_post_is_rate_limited_with_the_wait(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
) -> None:
    platforms.fault(PLATFORM, "rate_limited")
    with pytest.raises(RateLimited) as caught:
        await publish(connect(), page, draft())
    assert caught.value.retry_after == 30
    assert platforms.posts_of(PLATFORM, page[0]) == []


async def test_a_token_that_expires_after_prepare_needs_reauthorization(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    platforms.fault(PLATFORM, "token_expires_mid_flow")
    with pytest.raises(TokenInvalid) as caught:
        await publish(connect(), page, draft(media=media_kinds(tmp_path, "image")))
    assert page[1].access_token not in str(caught.value)
    assert platforms.posts_of(PLATFORM, page[0]) == []


@pytest.mark.parametrize("flow", ["image", "video"])
async def test_media_that_fail_processing_are_refused_before_any_post(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
    tmp_path: Path,
    flow: str,
) -> None:
    platforms.fault(PLATFORM, "container_error")
    with pytest.raises(PublishRejected) as caught:
        await connect().prepare(page[1], page[0], draft(media=media_kinds(tmp_path, flow)), {})
    assert caught.value.code == "media_rejected"
    assert "LinkedIn" in caught.value.reason
    assert platforms.posts_of(PLATFORM, page[0]) == []


async def test_a_post_the_platform_refuses_is_rejected_with_a_reason_to_act_on(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
) -> None:
    with pytest.raises(PublishRejected) as caught:
        await publish(connect(), page, draft(text="x" * 3001))
    assert caught.value.code == "rejected"
    assert "LinkedIn refused the post" in caught.value.reason and "3000" in caught.value.reason
    assert page[1].access_token not in caught.value.reason
    assert platforms.posts_of(PLATFORM, page[0]) == []


async def test_a_timeout_after_the_post_is_unknown_and_reconciliation_finds_it(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    platforms.hang_seconds = 3.0
    platforms.fault(PLATFORM, "timeout_after_create")
    connector = connect(social_http_timeout_seconds=1.0)
    post = draft(media=media_kinds(tmp_path, "image"))
    state = await connector.prepare(page[1], page[0], post, {})

    async def remember(values: dict[str, Any]) -> None:
        state.update(values)

    with pytest.raises(OutcomeUnknown):
        await connector.create(page[1], page[0], post, state, remember)

    [made] = platforms.posts_of(PLATFORM, page[0])
    # Matched on the image's URN kept in the state, whatever the text became.
    found = await connector.find(
        page[1], page[0], draft("other", post.media), state, post.planned_at
    )
    assert found is not None and found.external_id == made.post_id
    assert found.permalink == made.permalink


# ---------------------------------------------------------------- reconciliation, figures


async def test_find_matches_the_text_after_since_and_nothing_else(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
) -> None:
    connector = connect()
    post = draft()
    published, _ = await publish(connector, page, post)
    before = post.planned_at - timedelta(minutes=5)

    found = await connector.find(page[1], page[0], post, {}, before)
    assert found is not None and found.external_id == published.external_id
    assert found.published_at is not None and found.published_at >= before

    assert await connector.find(page[1], page[0], draft("never posted"), {}, before) is None
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await connector.find(page[1], page[0], post, {}, later) is None


async def test_post_figures_are_the_post_s_lifetime_statistics(
    platforms: PlatformSimulator,
    connect: Callable[..., LinkedInConnector],
    page: tuple[str, TokenSet],
    tmp_path: Path,
) -> None:
    connector = connect()
    for flow in ("image", "video"):
        published, _ = await publish(connector, page, draft(media=media_kinds(tmp_path, flow)))
        figures = await connector.post_figures(page[1], page[0], published.external_id)
        expected = post_figures(published.external_id)
        assert figures.impressions == expected["impressionCount"]
        assert figures.reach == expected["uniqueImpressionsCount"]
        assert figures.engagements == sum(
            expected[k] for k in ("clickCount", "likeCount", "commentCount", "shareCount")
        )
        views = video_views(published.external_id) if flow == "video" else None
        assert figures.video_views == views
