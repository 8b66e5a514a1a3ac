"""Publishing a video on YouTube against the platform simulator: the resumable videos.insert
(a session opened in prepare, chunks in create), resuming a stopped upload without ever making
a second video, the faults of issue 17, quota units, reconciliation (`find`) and the figures
of a published video."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from devtools.platforms import PlatformSimulator
from devtools.platforms.youtube import INSERT_UNITS, YouTubeDialect, video_statistics
from infra.settings import Settings
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
from social.connectors.youtube import YouTubeConnector, until_quota_reset
from social.ratebudget import RateBudget
from tests.support.clock import Clock
from tests.support.connectors import Memory, account, build, digest, video_file

CHUNK = 256 * 1024
UPLOAD_PATH = "/upload/youtube/v3/videos"


@pytest.fixture
def connect(http: httpx.AsyncClient, budget: RateBudget, settings: Settings) -> Any:
    def make(**overrides: Any) -> YouTubeConnector:
        connector = build("youtube", http, budget, settings, **overrides)
        assert isinstance(connector, YouTubeConnector)
        connector.upload_chunk = CHUNK  # small chunks, so that small files take several
        return connector

    return make


@pytest.fixture
def channel(platforms: PlatformSimulator) -> tuple[str, TokenSet]:
    return account(platforms, "youtube")


def dialect(platforms: PlatformSimulator) -> YouTubeDialect:
    found = platforms.dialect("youtube")
    assert isinstance(found, YouTubeDialect)
    return found


def draft_of(media: MediaFile, text: str = "Nouvelle recette : le pain au levain.") -> PostDraft:
    return PostDraft(
        text=text, media=[media], title="Le pain au levain", planned_at=datetime.now(UTC)
    )


def assert_clean(exc: BaseException, token: TokenSet, state: dict[str, Any]) -> None:
    for secret in (token.access_token, state.get("upload_url")):
        if secret:
            assert secret not in str(exc)


# ---------------------------------------------------------------- the happy path


async def test_a_video_goes_up_in_chunks_and_is_published_once(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    media = video_file(tmp_path, 2 * CHUNK + 12_345)
    draft = draft_of(media)
    connector = connect()

    state = await connector.prepare(token, external_id, draft, {})
    assert connector.resumable(state)
    assert platforms.created_posts == []  # preparing publishes nothing
    assert platforms.quota_units_used == INSERT_UNITS

    memory = Memory(state)
    post = await connector.create(token, external_id, draft, memory.state, memory)

    [made] = platforms.created_posts
    assert (made.account, made.post_id, made.text) == (external_id, post.external_id, draft.text)
    assert made.media == (digest(media),)  # every byte arrived, in order
    assert post.permalink == made.permalink == f"https://www.youtube.com/watch?v={post.external_id}"
    assert post.published_at is not None
    assert memory.calls == [{"upload_started": True}]
    session = dialect(platforms).session(state["upload_url"])
    assert (session.puts, session.queries) == (3, 0)
    video = dialect(platforms).videos[post.external_id]
    assert (video.title, video.description, video.privacy) == (
        "Le pain au levain",
        draft.text,
        "public",
    )


async def test_the_title_falls_back_to_the_first_line_and_is_cut_at_100(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    media = video_file(tmp_path, 5_000)
    text = "É" * 130 + "\nLa suite du texte."
    draft = PostDraft(text=text, media=[media], title="  ", planned_at=datetime.now(UTC))
    connector = connect()
    state = await connector.prepare(token, external_id, draft, {})
    memory = Memory(state)
    post = await connector.create(token, external_id, draft, memory.state, memory)
    assert dialect(platforms).videos[post.external_id].title == "É" * 100


async def test_prepare_reuses_a_live_session_and_spends_the_quota_once(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    draft = draft_of(video_file(tmp_path, 3_000))
    connector = connect()
    first = await connector.prepare(token, external_id, draft, {})
    again = await connector.prepare(token, external_id, draft, first)
    assert again == first
    assert len(dialect(platforms).sessions) == 1
    assert platforms.quota_units_used == INSERT_UNITS
    assert platforms.created_posts == []


async def test_a_session_is_reused_only_for_its_video_and_one_that_made_a_video_always(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    media = video_file(tmp_path, 3_000)
    draft = draft_of(media)
    edited = draft_of(media, text="Le texte a changé.")
    connector = connect()
    first = await connector.prepare(token, external_id, draft, {})
    other = await connector.prepare(token, external_id, edited, first)
    assert other["upload_url"] != first["upload_url"]  # the unused session had the old text

    memory = Memory(first)
    post = await connector.create(token, external_id, draft, memory.state, memory)
    # Once a session made its video, nothing makes another from that state.
    kept = await connector.prepare(token, external_id, edited, memory.state)
    assert kept == memory.state
    again = await connector.create(token, external_id, edited, kept, Memory(kept))
    assert again.external_id == post.external_id
    assert len(platforms.created_posts) == 1


@pytest.mark.parametrize(
    "media",
    [
        [],
        [MediaFile(Path("/nonexistent.png"), "image", "image/png", 10)],
        [
            MediaFile(Path("/a.mp4"), "video", "video/mp4", 10),
            MediaFile(Path("/b.mp4"), "video", "video/mp4", 10),
        ],
    ],
    ids=["text only", "an image", "two videos"],
)
async def test_anything_but_one_video_is_refused_before_any_call(
    platforms: PlatformSimulator,
    connect: Any,
    channel: tuple[str, TokenSet],
    media: list[MediaFile],
) -> None:
    external_id, token = channel
    draft = PostDraft(text="Bonjour", media=media, title="Bonjour", planned_at=datetime.now(UTC))
    with pytest.raises(PublishRejected, match="exactly one video"):
        await connect().prepare(token, external_id, draft, {})
    assert platforms.count("youtube") == 0


# ---------------------------------------------------------------- resuming, never twice


async def test_a_worker_killed_mid_upload_resumes_the_same_session(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    media = video_file(tmp_path, 5 * CHUNK + 777)
    draft = draft_of(media)
    connector = connect()
    state = await connector.prepare(token, external_id, draft, {})
    memory = Memory(state)

    platforms.latency = 0.15
    upload = asyncio.create_task(connector.create(token, external_id, draft, memory.state, memory))
    # The simulator runs in its own thread: there is no event to await, only its counters.
    while platforms.count("youtube", UPLOAD_PATH) < 3:  # noqa: ASYNC110 - session, 2 chunks
        await asyncio.sleep(0.01)
    upload.cancel()  # the worker dies with chunk 2 in flight
    with contextlib.suppress(asyncio.CancelledError):
        await upload
    platforms.latency = 0.0
    session = dialect(platforms).session(state["upload_url"])
    assert 0 < session.received < media.size
    assert platforms.created_posts == []

    # Another worker takes the publication over with what the first one committed.
    assert connector.resumable(memory.state)
    post = await connector.create(token, external_id, draft, memory.state, memory)

    [made] = platforms.created_posts
    assert made.post_id == post.external_id
    assert made.media == (digest(media),)
    assert session.queries == 1
    assert len(dialect(platforms).sessions) == 1
    assert platforms.quota_units_used == INSERT_UNITS


async def test_a_timeout_on_the_last_chunk_asks_the_session_and_gets_its_video(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    media = video_file(tmp_path, CHUNK + 10)
    draft = draft_of(media)
    connector = connect(social_http_timeout_seconds=0.4)
    platforms.hang_seconds = 2.0
    state = await connector.prepare(token, external_id, draft, {})
    platforms.fault("youtube", "timeout_after_create")
    memory = Memory(state)

    post = await connector.create(token, external_id, draft, memory.state, memory)

    [made] = platforms.created_posts
    assert made.post_id == post.external_id
    assert dialect(platforms).session(state["upload_url"]).queries == 1


async def test_an_upload_whose_end_nobody_saw_is_found_and_resumed_without_a_second_video(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    media = video_file(tmp_path, CHUNK + 10)
    draft = draft_of(media)
    connector = connect(social_http_timeout_seconds=0.4)
    platforms.hang_seconds = 2.0
    since = datetime.now(UTC)
    state = await connector.prepare(token, external_id, draft, {})
    platforms.fault("youtube", "timeout_after_create")
    memory = Memory(state)

    upload = asyncio.create_task(connector.create(token, external_id, draft, memory.state, memory))
    while not platforms.created_posts:  # noqa: ASYNC110 - the simulator's own thread
        await asyncio.sleep(0.01)
    platforms.fail_next("youtube", 1, status=503)  # and the session cannot be asked either
    with pytest.raises(OutcomeUnknown) as caught:
        await upload
    assert_clean(caught.value, token, state)
    [made] = platforms.created_posts

    found = await connector.find(token, external_id, draft, memory.state, since)
    assert found is not None and found.external_id == made.post_id
    assert connector.resumable(memory.state)
    again = await connector.create(token, external_id, draft, memory.state, memory)
    assert again.external_id == made.post_id
    assert len(platforms.created_posts) == 1


async def test_a_server_error_on_a_chunk_goes_on_from_where_the_session_is(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    media = video_file(tmp_path, 2 * CHUNK + 5)
    draft = draft_of(media)
    connector = connect()
    state = await connector.prepare(token, external_id, draft, {})
    platforms.fail_next("youtube", 1, status=503)  # the first chunk
    memory = Memory(state)
    post = await connector.create(token, external_id, draft, memory.state, memory)
    [made] = platforms.created_posts
    assert made.post_id == post.external_id and made.media == (digest(media),)
    assert dialect(platforms).session(state["upload_url"]).queries == 1


async def test_a_session_that_cannot_be_asked_is_an_unknown_outcome_then_resumed(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    media = video_file(tmp_path, CHUNK + 5)
    draft = draft_of(media)
    connector = connect()
    since = datetime.now(UTC)
    state = await connector.prepare(token, external_id, draft, {})
    platforms.fail_next("youtube", 2)  # the first chunk, then the question to the session
    memory = Memory(state)
    with pytest.raises(OutcomeUnknown):
        await connector.create(token, external_id, draft, memory.state, memory)
    assert platforms.created_posts == []
    assert await connector.find(token, external_id, draft, memory.state, since) is None

    post = await connector.create(token, external_id, draft, memory.state, memory)
    assert [p.post_id for p in platforms.created_posts] == [post.external_id]
    assert platforms.created_posts[0].media == (digest(media),)


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "step", "error", "code"),
    [
        ("error_before_create", "prepare", PlatformUnavailable, None),
        ("quota_spent", "prepare", PublishRejected, "quota_spent"),
        ("rate_limited", "create", RateLimited, None),
        ("token_expires_mid_flow", "create", TokenInvalid, None),
        ("container_error", "create", PublishRejected, "media_rejected"),
    ],
)
async def test_faults_publish_nothing(
    platforms: PlatformSimulator,
    connect: Any,
    channel: tuple[str, TokenSet],
    tmp_path: Path,
    fault: str,
    step: str,
    error: type[ConnectorError],
    code: str | None,
) -> None:
    external_id, token = channel
    draft = draft_of(video_file(tmp_path, CHUNK + 99))
    connector = connect()
    platforms.fault("youtube", fault)
    memory = Memory({})
    with pytest.raises(error) as caught:
        memory.state = await connector.prepare(token, external_id, draft, {})
        await connector.create(token, external_id, draft, memory.state, memory)
    assert_clean(caught.value, token, memory.state)
    if code is not None:
        assert isinstance(caught.value, PublishRejected) and caught.value.code == code
    assert (step == "prepare") == ("upload_url" not in memory.state)
    assert platforms.created_posts == []
    assert "YouTube" in str(caught.value) or "youtube" in str(caught.value)


async def test_a_rejected_video_gets_a_new_session_when_published_again(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    draft = draft_of(video_file(tmp_path, 4_000))
    connector = connect()
    platforms.fault("youtube", "container_error")
    state = await connector.prepare(token, external_id, draft, {})
    memory = Memory(state)
    with pytest.raises(PublishRejected):
        await connector.create(token, external_id, draft, memory.state, memory)

    retried = await connector.prepare(token, external_id, draft, memory.state)
    assert retried["upload_url"] != state["upload_url"]
    memory = Memory(retried)
    post = await connector.create(token, external_id, draft, memory.state, memory)
    assert [p.post_id for p in platforms.created_posts] == [post.external_id]


async def test_the_daily_quota_counts_1600_units_an_upload_and_refuses_past_it(
    platforms: PlatformSimulator,
    connect: Any,
    channel: tuple[str, TokenSet],
    tmp_path: Path,
    budget: RateBudget,
    redis: Redis,
) -> None:
    external_id, token = channel
    # As the benchmark sets it on a simulator of its own.
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{platforms.url}/_sim/config", json={"youtube_daily_quota": 2 * INSERT_UNITS + 10}
        )
    assert answer.status_code == 200
    connector = connect()
    for n in range(2):
        draft = draft_of(video_file(tmp_path, 2_000), text=f"Vidéo {n}")
        state = await connector.prepare(token, external_id, draft, {})
        memory = Memory(state)
        await connector.create(token, external_id, draft, memory.state, memory)
    assert platforms.quota_units_used == 2 * INSERT_UNITS

    draft = draft_of(video_file(tmp_path, 2_000), text="Vidéo de trop")
    with pytest.raises(PublishRejected) as caught:
        await connector.prepare(token, external_id, draft, {})
    assert caught.value.code == "quota_spent"
    assert "midnight Pacific" in caught.value.reason
    assert len(platforms.created_posts) == 2
    # The stats sync and other uploads share the quota: the key waits for the reset.
    paused = await redis.pttl(f"{budget._prefix}:pause:youtube") / 1000
    assert paused == pytest.approx(until_quota_reset(), abs=5)


async def test_a_session_older_than_a_week_is_replaced(
    platforms: PlatformSimulator,
    connect: Any,
    channel: tuple[str, TokenSet],
    tmp_path: Path,
    clock: Clock,
) -> None:
    external_id, token = channel
    draft = draft_of(video_file(tmp_path, 3_000))
    connector = connect()
    clock.set(datetime.now(UTC))
    state = await connector.prepare(token, external_id, draft, {})
    clock.advance(timedelta(days=8))
    token = TokenSet(**platforms.issue_token("youtube", external_id))

    memory = Memory(state)
    with pytest.raises(PublishRejected) as caught:
        await connector.create(token, external_id, draft, memory.state, memory)
    assert caught.value.code == "media_expired"
    assert state["upload_url"] not in caught.value.reason

    fresh = await connector.prepare(token, external_id, draft, memory.state)
    assert fresh["upload_url"] != state["upload_url"]
    memory = Memory(fresh)
    await connector.create(token, external_id, draft, memory.state, memory)
    assert len(platforms.created_posts) == 1


# ---------------------------------------------------------------- reconciliation


async def test_find_matches_the_uploads_on_title_description_and_time(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    draft = draft_of(video_file(tmp_path, 3_000))
    connector = connect()
    since = datetime.now(UTC)
    state = await connector.prepare(token, external_id, draft, {})
    memory = Memory(state)
    post = await connector.create(token, external_id, draft, memory.state, memory)

    by_listing = await connector.find(token, external_id, draft, {}, since)
    assert by_listing is not None and by_listing.external_id == post.external_id
    assert by_listing.permalink == post.permalink
    by_session = await connector.find(token, external_id, draft, memory.state, since)
    assert by_session is not None and by_session.external_id == post.external_id

    other = draft_of(draft.media[0], text="Un autre texte")
    assert await connector.find(token, external_id, other, {}, since) is None
    later = since + timedelta(hours=1)
    assert await connector.find(token, external_id, draft, {}, later) is None


async def test_find_does_not_see_a_session_that_never_finished(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    draft = draft_of(video_file(tmp_path, 3_000))
    connector = connect()
    since = datetime.now(UTC)
    state = await connector.prepare(token, external_id, draft, {})
    assert await connector.find(token, external_id, draft, state, since) is None


# ---------------------------------------------------------------- figures


async def test_post_figures_are_the_videos_statistics(
    platforms: PlatformSimulator, connect: Any, channel: tuple[str, TokenSet], tmp_path: Path
) -> None:
    external_id, token = channel
    draft = draft_of(video_file(tmp_path, 3_000))
    connector = connect()
    state = await connector.prepare(token, external_id, draft, {})
    memory = Memory(state)
    post = await connector.create(token, external_id, draft, memory.state, memory)

    figures = await connector.post_figures(token, external_id, post.external_id)

    stats = video_statistics(post.external_id)
    assert figures.video_views == stats["viewCount"] > 0
    assert figures.engagements == stats["likeCount"] + stats["commentCount"]
    assert figures.impressions is None and figures.reach is None
    with pytest.raises(ConnectorError, match="gone"):
        await connector.post_figures(token, external_id, "nOSuchVideo")
