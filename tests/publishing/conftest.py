"""Fixtures of the connector tests: a real RateBudget on Redis, under keys of the test's own,
and an HTTP client to reach the platform simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from social.ratebudget import RateBudget
from tests.support.connectors import budget_prefix, make_budget, redis_client


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    async with redis_client() as client:
        yield client


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    async with budget_prefix(redis, "publish") as name:
        yield name


@pytest.fixture
def budget(redis: Redis, prefix: str) -> RateBudget:
    """The budget at the default rates."""
    return make_budget(redis, prefix)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
