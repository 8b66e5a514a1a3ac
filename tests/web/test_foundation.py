"""What every page shares: an HTML error page (never JSON), the headers that keep a signed link
private, the CSRF cookie, and the stylesheet."""

from __future__ import annotations

from tests.support.portal import open_browser


async def test_an_altered_link_shows_a_page_that_says_so(app, browsers) -> None:
    browser = open_browser(app, browsers)  # a fresh cookie jar: the CSRF cookie is set anew
    response = await browser.get("/approve/not-a-real-token")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "This link is not valid" in response.text
    assert "on behalf of" not in response.text  # no agency is known: none is named
    # The link is a credential: it must not leak through Referer, caches or frames.
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "passerelle_csrf" in response.headers["set-cookie"]
    assert "samesite=strict" in response.headers["set-cookie"].lower()


async def test_the_stylesheet_is_served(client) -> None:
    response = await client.get("/static/portal.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
