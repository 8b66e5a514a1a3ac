"""Fixtures of the page tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def browsers() -> AsyncIterator[list[httpx.AsyncClient]]:
    """The HTTP browsers a test opened (tests.support.portal.open_browser), closed after it."""
    opened: list[httpx.AsyncClient] = []
    yield opened
    for browser in opened:
        await browser.aclose()
