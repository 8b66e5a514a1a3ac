"""What the connector tests share: a Redis client and a key prefix of their own for a real
RateBudget, a connector built against the platform simulator, an account with its token, the
attempt state the publishing job keeps, and media files written to a temporary folder."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from redis.asyncio import Redis

from devtools.platforms import PlatformSimulator
from infra.settings import DEFAULT_SOCIAL_RATES, Settings
from social.connectors import build_connector
from social.connectors.types import (
    Connector,
    MediaFile,
    PostDraft,
    PublishedPost,
    Publisher,
    TokenSet,
)
from social.ratebudget import Rate, RateBudget


@asynccontextmanager
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ["REDIS_URL"])
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def budget_prefix(redis: Redis, label: str) -> AsyncIterator[str]:
    """A key prefix no other test uses, its keys deleted afterwards: Redis is shared by the
    whole test run, and a budget's pauses would otherwise outlive the test."""
    name = f"test:{label}:{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        keys = [key async for key in redis.scan_iter(f"{name}:*")]
        if keys:
            await redis.delete(*keys)


def make_budget(
    redis: Redis, prefix: str, rates: dict[str, str] | None = None, max_wait: float = 0.5
) -> RateBudget:
    parsed = {k: Rate.parse(v) for k, v in (rates or DEFAULT_SOCIAL_RATES).items()}
    return RateBudget(redis, parsed, max_wait_seconds=max_wait, prefix=prefix)


def build(
    platform: str,
    http: httpx.AsyncClient,
    budget: RateBudget,
    settings: Settings,
    **overrides: Any,
) -> Connector:
    """The connector for `platform`, with `overrides` applied to a copy of the settings."""
    used = settings.model_copy(update=overrides) if overrides else settings
    return build_connector(platform, http=http, budget=budget, settings=used)


def account(
    platforms: PlatformSimulator, platform: str, *, expires_in: float = 3600, **kwargs: Any
) -> tuple[str, TokenSet]:
    """A new account on the simulator (`kwargs` describe it) and a token for it."""
    external_id = platforms.add_account(platform, **kwargs)
    token = platforms.issue_token(platform, external_id, expires_in=expires_in)
    return external_id, TokenSet(**token)


class Memory:
    """The attempt's state as the publishing job keeps it: `remember` merges into it."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = dict(state)
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, values: dict[str, Any]) -> None:
        self.calls.append(values)
        self.state.update(values)


async def publish(
    connector: Publisher, token: TokenSet, external_id: str, draft: PostDraft
) -> tuple[PublishedPost, Memory]:
    """Prepare then create, as one attempt of the publishing job does, keeping its state."""
    memory = Memory(await connector.prepare(token, external_id, draft, {}))
    post = await connector.create(token, external_id, draft, memory.state, memory)
    return post, memory


def video_file(tmp_path: Path, size: int, duration: float | None = None) -> MediaFile:
    """A video of random bytes under a name of its own, so that two are never the same."""
    path = tmp_path / f"clip-{uuid.uuid4().hex[:6]}.mp4"
    path.write_bytes(os.urandom(size))
    return MediaFile(path, "video", "video/mp4", size, duration=duration)


def png(path: Path, color: str = "orange", **extra: Any) -> MediaFile:
    """A small PNG of one colour, with its alt text; `extra` adds what a platform wants more."""
    Image.new("RGB", (64, 48), color).save(path, "PNG")
    return MediaFile(
        path=path,
        kind="image",
        content_type="image/png",
        size=path.stat().st_size,
        alt_text=f"A {color} square",
        **extra,
    )


def sized_mp4(path: Path, size: int) -> MediaFile:
    """A video of exactly `size` bytes, written piece by piece: some are many MiB."""
    block = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
    with path.open("wb") as handle:
        written = 0
        while written < size:
            piece = block[: size - written]
            handle.write(piece)
            written += len(piece)
    return MediaFile(path=path, kind="video", content_type="video/mp4", size=size, duration=4.0)


def digest(media: MediaFile) -> str:
    """How the simulator records a video it received."""
    return "video:" + hashlib.sha256(media.path.read_bytes()).hexdigest()[:16]
