"""/docs and /redoc work with no internet: every script and stylesheet they load is served by
the app itself."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest


class _Assets(HTMLParser):
    """The URLs a browser would fetch to render the page: scripts, stylesheets, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))


EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize(("page", "needed"), [("/docs", {".js", ".css"}), ("/redoc", {".js"})])
async def test_the_api_docs_load_only_local_assets(client, page, needed):
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(response.text)
    seen = set()
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = parts.path[parts.path.rfind(".") :]
        assert EXPECTED_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers)
        assert len(asset.content) > 1000, url
        seen.add(suffix)
    assert needed <= seen
    # No CDN anywhere in the page, not even in inline script.
    assert "cdn." not in response.text and "fonts.googleapis" not in response.text
