"""The long-lived clients a process shares: made once at start-up, closed at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Any, TypeVar

import httpx
from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from infra import outbox
from infra.db import Database
from infra.logging import get_logger
from infra.queue import create_queue, run_after_commit
from infra.ratelimit import RateLimiter
from infra.security import Passwords, TokenSigner
from infra.settings import Settings

T = TypeVar("T")
log = get_logger(__name__)


class _KeepsNoCookies(CookieJar):
    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def platform_client(settings: Settings, **options: Any) -> httpx.AsyncClient:
    """A client for the social platforms, shared by every tenant's requests: each carries its
    own tenant's token and nothing of another's. It keeps no cookie, since one that a
    platform's answer to one tenant set (a load balancer's, a tracker's) would ride along on the
    next tenant's request to that platform. That also spares httpx reading every answer into a
    cookie jar: 3 % of the stats worker's CPU (py-spy, bench social)."""
    return httpx.AsyncClient(
        timeout=settings.social_http_timeout_seconds,
        follow_redirects=False,
        cookies=_KeepsNoCookies(),
        **options,
    )


@dataclass
class Resources:
    settings: Settings
    db: Database
    redis: Redis
    queue: ArqRedis
    signer: TokenSigner
    passwords: Passwords
    limiter: RateLimiter
    http: httpx.AsyncClient
    """For the social platforms: one connection pool per process."""
    _extensions: dict[type[Any], Any] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    async def open(cls, settings: Settings) -> Resources:
        redis = Redis.from_url(str(settings.redis_url), decode_responses=False)
        return cls(
            settings=settings,
            db=Database.from_settings(settings),
            redis=redis,
            queue=await create_queue(str(settings.redis_url)),
            signer=TokenSigner(settings.jwt_private_keys, issuer=settings.jwt_issuer),
            passwords=Passwords(
                time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
            ),
            limiter=RateLimiter(redis),
            http=platform_client(
                settings, limits=httpx.Limits(max_connections=200, max_keepalive_connections=100)
            ),
        )

    def extension(self, kind: type[T], build: Callable[[Resources], T]) -> T:
        """The process's one `kind` object, built from these resources on first use: how a
        domain keeps its own long-lived helpers (social's kit) here without infra knowing them.
        Keyed by type, so each value is an instance of its key."""
        found = self._extensions.get(kind)
        if isinstance(found, kind):
            return found
        made = build(self)
        self._extensions[kind] = made
        return made

    async def close(self) -> None:
        await self.http.aclose()
        await self.queue.aclose()
        await self.redis.aclose()
        await self.db.dispose()


@asynccontextmanager
async def request_transaction(resources: Resources) -> AsyncIterator[AsyncSession]:
    """One request's transaction, for both edges (the API and the pages): committed when the
    handler returns, before the response is sent; rolled back on any error. Outbox events and
    jobs are enqueued only after the commit."""
    async with resources.db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        try:
            await outbox.dispatch_after_commit(session, resources.queue)
            await run_after_commit(session, resources.queue)
        except Exception:  # the outbox sweeper delivers what could not be enqueued now
            log.warning("outbox.enqueue_failed", exc_info=True)
