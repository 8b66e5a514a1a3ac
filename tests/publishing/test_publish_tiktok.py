"""Publishing a video on TikTok against the platform simulator: the Content Posting API's direct
post (creator info, init, chunked upload, status by publish id), the faults of issue 17, the
6-a-minute init limit per user token, reconciliation (`find`) and the figures of a post."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from devtools.platforms import PlatformSimulator
from devtools.platforms.tiktok import INITS_PER_MINUTE, TikTokDialect, video_figures
from infra.settings import DEFAULT_SOCIAL_RATES, Settings
from social.connectors.base import token_key
from social.connectors.tiktok import CHUNK, INIT_KEY, TikTokConnector, chunk_plan
from social.connectors.types import (
    ConnectorError,
    MediaFile,
    OutcomeUnknown,
    PlatformUnavailable,
    PostDraft,
    PublishRejected,
    RateLimited,
    TokenInvalid,
    TokenSet,
)
from tests.support.connectors import Memory, build, digest, make_budget, publish
from tests.support.connectors import account as new_account
from tests.support.connectors import video_file as any_video

INIT_PATH = "/v2/post/publish/video/init/"


@pytest.fixture
def connect(http: httpx.AsyncClient, redis: Redis, prefix: str, settings: Settings) -> Any:
    def make(rates: dict[str, str] = DEFAULT_SOCIAL_RATES, **overrides: Any) -> TikTokConnector:
        budget = make_budget(redis, prefix, rates)
        connector = build("tiktok", http, budget, settings, **overrides)
        assert isinstance(connector, TikTokConnector)
        return connector

    return make


def creator(platforms: PlatformSimulator) -> tuple[str, TokenSet]:
    return new_account(platforms, "tiktok")


@pytest.fixture
def account(platforms: PlatformSimulator) -> tuple[str, TokenSet]:
    return creator(platforms)


def dialect(platforms: PlatformSimulator) -> TikTokDialect:
    found = platforms.dialect("tiktok")
    assert isinstance(found, TikTokDialect)
    return found


def video_file(tmp_path: Path, size: int, duration: float = 12.0) -> MediaFile:
    """Twelve seconds unless told: TikTok holds a video's length against the creator's limit."""
    return any_video(tmp_path, size, duration)


def draft_of(
    media: MediaFile, text: str = "Trois façons de plier un croissant #boulangerie"
) -> PostDraft:
    return PostDraft(text=text, media=[media], title="Croissants", planned_at=datetime.now(UTC))


# ---------------------------------------------------------------- the happy path


@pytest.mark.parametrize(
    ("size", "chunks"),
    [(40_000, 1), (2 * CHUNK + 12_345, 2)],
    ids=["a small video in one piece", "a large video in chunks"],
)
async def test_a_video_is_posted_once_with_its_caption(
    platforms: PlatformSimulator,
    connect: Any,
    account: tuple[str, TokenSet],
    tmp_path: Path,
    size: int,
    chunks: int,
) -> None:
    external_id, token = account
    media = video_file(tmp_path, size)
    draft = draft_of(media)
    connector = connect()
    assert chunk_plan(size)[1] == chunks

    state = await connector.prepare(token, external_id, draft, {})
    assert state["privacy_level"] == "PUBLIC_TO_EVERYONE"
    assert platforms.created_posts == []  # preparing publishes nothing
    assert not connector.resumable(state)
    memory = Memory(state)
    post = await connector.create(token, external_id, draft, memory.state, memory)

    [made] = platforms.created_posts
    handle = platforms.account("tiktok", external_id).handle
    assert (made.account, made.text, made.post_id) == (external_id, draft.text, post.external_id)
    assert made.media == (digest(media),)
    assert (
        post.permalink == made.permalink == f"https://www.tiktok.com/@{handle}/video/{made.post_id}"
    )
    assert memory.calls == [{"publish_id": made.marker}]  # kept before a byte was sent
    assert sum(1 for r in platforms.requests if r.method == "PUT") == chunks


async def test_a_private_account_posts_to_its_followers_and_a_self_only_one_is_refused(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    connector = connect()
    draft = draft_of(video_file(tmp_path, 2_000))
    private_id, private_token = creator(platforms)
    dialect(platforms).privacy_options[private_id] = (
        "FOLLOWER_OF_CREATOR",
        "MUTUAL_FOLLOW_FRIENDS",
        "SELF_ONLY",
    )
    state = await connector.prepare(private_token, private_id, draft, {})
    assert state["privacy_level"] == "FOLLOWER_OF_CREATOR"

    hidden_id, hidden_token = creator(platforms)
    dialect(platforms).privacy_options[hidden_id] = ("SELF_ONLY",)
    with pytest.raises(PublishRejected, match="nobody else sees"):
        await connector.prepare(hidden_token, hidden_id, draft, {})
    assert platforms.count("tiktok", INIT_PATH) == 0


async def test_a_video_longer_than_the_creator_may_post_is_refused_before_the_init(
    platforms: PlatformSimulator, connect: Any, account: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = account
    draft = draft_of(video_file(tmp_path, 2_000, duration=601.0))
    with pytest.raises(PublishRejected) as caught:
        await connect().prepare(token, external_id, draft, {})
    assert caught.value.code == "media_rejected" and "601 s" in caught.value.reason
    assert platforms.count("tiktok", INIT_PATH) == 0


@pytest.mark.parametrize(
    "media",
    [
        [],
        [MediaFile(Path("/photo.jpg"), "image", "image/jpeg", 10)],
        [
            MediaFile(Path("/a.mp4"), "video", "video/mp4", 10),
            MediaFile(Path("/b.mp4"), "video", "video/mp4", 10),
        ],
    ],
    ids=["text only", "a photo", "two videos"],
)
async def test_anything_but_one_video_is_refused_before_any_call(
    platforms: PlatformSimulator,
    connect: Any,
    account: tuple[str, TokenSet],
    media: list[MediaFile],
) -> None:
    external_id, token = account
    draft = PostDraft(text="Bonjour", media=media, title="", planned_at=datetime.now(UTC))
    with pytest.raises(PublishRejected, match="exactly one video"):
        await connect().prepare(token, external_id, draft, {})
    assert platforms.count("tiktok") == 0


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "error", "code", "inits"),
    [
        ("error_before_create", PlatformUnavailable, None, 0),
        ("quota_spent", PublishRejected, "quota_spent", 0),
        ("rate_limited", RateLimited, None, 1),
        ("token_expires_mid_flow", TokenInvalid, None, 1),
        ("container_error", PublishRejected, "media_rejected", 1),
    ],
)
async def test_faults_post_nothing(
    platforms: PlatformSimulator,
    connect: Any,
    account: tuple[str, TokenSet],
    tmp_path: Path,
    fault: str,
    error: type[ConnectorError],
    code: str | None,
    inits: int,
) -> None:
    external_id, token = account
    draft = draft_of(video_file(tmp_path, 3_000))
    connector = connect()
    platforms.fault("tiktok", fault)
    memory = Memory({})
    with pytest.raises(error) as caught:
        memory.state = await connector.prepare(token, external_id, draft, {})
        await connector.create(token, external_id, draft, memory.state, memory)
    assert token.access_token not in str(caught.value)
    assert "tiktok" in str(caught.value).lower()
    if code is not None:
        assert isinstance(caught.value, PublishRejected) and caught.value.code == code
    assert platforms.count("tiktok", INIT_PATH) == inits
    assert platforms.created_posts == []


async def test_an_upload_the_platform_refuses_is_media_rejected(
    platforms: PlatformSimulator, connect: Any, account: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = account
    path = tmp_path / "clip.bin"
    path.write_bytes(os.urandom(2_000))
    media = MediaFile(path, "video", "application/octet-stream", 2_000)
    with pytest.raises(PublishRejected) as caught:
        await publish(connect(), token, external_id, draft_of(media))
    assert caught.value.code == "media_rejected"
    assert caught.value.reason.startswith("TikTok refused the video upload")
    assert "upload_token" not in caught.value.reason
    assert platforms.created_posts == []


async def test_a_429_on_the_init_pauses_only_that_tokens_init_budget(
    platforms: PlatformSimulator,
    connect: Any,
    account: tuple[str, TokenSet],
    tmp_path: Path,
    redis: Redis,
    prefix: str,
) -> None:
    external_id, token = account
    draft = draft_of(video_file(tmp_path, 3_000))
    platforms.fault("tiktok", "rate_limited")
    with pytest.raises(RateLimited) as caught:
        await publish(connect(), token, external_id, draft)
    assert caught.value.retry_after == 30
    assert await redis.pttl(f"{prefix}:pause:{token_key(INIT_KEY, token.access_token)}") > 25_000
    assert await redis.pttl(f"{prefix}:pause:tiktok") < 0


async def test_an_answer_lost_after_the_last_chunk_is_unknown_and_found_by_its_publish_id(
    platforms: PlatformSimulator, connect: Any, account: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = account
    media = video_file(tmp_path, 3_000)
    draft = draft_of(media)
    connector = connect(social_http_timeout_seconds=0.4)
    platforms.hang_seconds = 2.0
    since = datetime.now(UTC)
    memory = Memory(await connector.prepare(token, external_id, draft, {}))
    platforms.fault("tiktok", "timeout_after_create")

    with pytest.raises(OutcomeUnknown) as caught:
        await connector.create(token, external_id, draft, memory.state, memory)
    assert token.access_token not in str(caught.value)

    [made] = platforms.created_posts
    assert memory.state["publish_id"] == made.marker
    found = await connector.find(token, external_id, draft, memory.state, since)
    assert found is not None and found.external_id == made.post_id
    assert found.permalink == made.permalink
    # Asked to post again with that state (it must not be), it answers the same post.
    again = await connector.create(token, external_id, draft, memory.state, memory)
    assert again.external_id == made.post_id
    assert platforms.count("tiktok", INIT_PATH) == 1
    assert len(platforms.created_posts) == 1


async def test_an_attempt_whose_upload_never_finished_is_posted_afresh(
    platforms: PlatformSimulator,
    connect: Any,
    account: tuple[str, TokenSet],
    tmp_path: Path,
    http: httpx.AsyncClient,
) -> None:
    external_id, token = account
    media = video_file(tmp_path, 2 * CHUNK + 10)
    draft = draft_of(media)
    connector = connect()
    memory = Memory(await connector.prepare(token, external_id, draft, {}))
    # A worker inited the post, sent the first chunk and died: that post can never complete.
    started = await raw_init(platforms, http, token, media.size, CHUNK, 2)
    with media.path.open("rb") as handle:
        first_chunk = handle.read(CHUNK)
    upload_url = started["upload_url"].replace(
        "https://open-upload.tiktokapis.com", platforms.base_url("tiktok")
    )
    sent = await http.put(
        upload_url,
        content=first_chunk,
        headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{media.size}", "Content-Type": "video/mp4"},
    )
    assert sent.status_code == 206
    memory.state["publish_id"] = started["publish_id"]

    post = await connector.create(token, external_id, draft, memory.state, memory)

    [made] = platforms.created_posts
    assert made.post_id == post.external_id and made.marker != started["publish_id"]
    assert made.media == (digest(media),)


async def raw_init(
    platforms: PlatformSimulator,
    http: httpx.AsyncClient,
    token: TokenSet,
    size: int,
    chunk: int,
    count: int,
    title: str = "Un essai",
) -> dict[str, Any]:
    """An init sent by hand (what another worker, or another app, did on the account)."""
    answer = await http.post(
        platforms.base_url("tiktok") + INIT_PATH,
        headers={"Authorization": f"Bearer {token.access_token}"},
        json={
            "post_info": {"title": title, "privacy_level": "PUBLIC_TO_EVERYONE"},
            "source_info": {
                "source": "FILE_UPLOAD",
                "video_size": size,
                "chunk_size": chunk,
                "total_chunk_count": count,
            },
        },
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


# ---------------------------------------------------------------- the init limit


async def test_our_init_budget_stays_under_six_a_minute_per_token(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path
) -> None:
    connector = connect()
    external_id, token = creator(platforms)
    for n in range(3):
        await publish(connector, token, external_id, draft_of(video_file(tmp_path, 900), f"#{n}"))
    with pytest.raises(RateLimited):  # our own budget: the platform is not even asked
        await publish(connector, token, external_id, draft_of(video_file(tmp_path, 900), "#3"))
    assert platforms.count("tiktok", INIT_PATH) == 3

    other_id, other_token = creator(platforms)  # another creator has its own budget
    await publish(connector, other_token, other_id, draft_of(video_file(tmp_path, 900), "#4"))
    assert len(platforms.created_posts) == 4


async def test_the_platform_refuses_a_seventh_init_in_a_minute(
    platforms: PlatformSimulator, connect: Any, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    # Without our per-token init budget, TikTok's own limit answers.
    connector = connect({"tiktok": "500/60"})
    external_id, token = creator(platforms)
    draft = draft_of(video_file(tmp_path, 900))
    memory = Memory(await connector.prepare(token, external_id, draft, {}))
    for n in range(INITS_PER_MINUTE):
        await raw_init(platforms, http, token, 9, 9, 1, title=f"#{n}")
    with pytest.raises(RateLimited) as caught:
        await connector.create(token, external_id, draft, memory.state, memory)
    assert 50 <= caught.value.retry_after <= 60
    assert platforms.created_posts == []


# ---------------------------------------------------------------- reconciliation


async def test_find_matches_the_caption_and_time_without_a_publish_id(
    platforms: PlatformSimulator, connect: Any, account: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = account
    draft = draft_of(video_file(tmp_path, 2_000))
    connector = connect()
    since = datetime.now(UTC)
    post, _ = await publish(connector, token, external_id, draft)

    found = await connector.find(token, external_id, draft, {}, since)
    assert found is not None and found.external_id == post.external_id
    assert found.permalink == post.permalink
    other = draft_of(draft.media[0], "Une autre légende")
    assert await connector.find(token, external_id, other, {}, since) is None
    assert await connector.find(token, external_id, draft, {}, since + timedelta(hours=1)) is None


async def test_find_by_a_publish_id_that_failed_or_still_uploads_finds_nothing(
    platforms: PlatformSimulator, connect: Any, account: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = account
    draft = draft_of(video_file(tmp_path, 2_000))
    connector = connect()
    since = datetime.now(UTC)
    platforms.fault("tiktok", "container_error")
    memory = Memory(await connector.prepare(token, external_id, draft, {}))
    with pytest.raises(PublishRejected):
        await connector.create(token, external_id, draft, memory.state, memory)
    assert await connector.find(token, external_id, draft, memory.state, since) is None


# ---------------------------------------------------------------- figures


async def test_post_figures_are_the_videos_counts(
    platforms: PlatformSimulator, connect: Any, account: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = account
    connector = connect()
    post, _ = await publish(connector, token, external_id, draft_of(video_file(tmp_path, 2_000)))

    figures = await connector.post_figures(token, external_id, post.external_id)

    counts = video_figures(post.external_id)
    assert figures.video_views == counts["view_count"] > 0
    assert (
        figures.engagements
        == counts["like_count"] + counts["comment_count"] + counts["share_count"]
    )
    assert figures.impressions is None and figures.reach is None
    with pytest.raises(ConnectorError, match="gone"):
        await connector.post_figures(token, external_id, "7000000000000000001")
