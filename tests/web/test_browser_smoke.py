"""The real-browser machinery (tests/support/browser.py) proven on a page that needs no data: an
approval link that is not one of ours, opened in Debian's Chromium on a desktop and on a phone.

What a person would notice: the page says the link is not valid, in their language's words,
with a heading; a keyboard user's first Tab lands on the skip link; on a phone nothing runs off
the side of the screen; axe-core finds no serious violation."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.support.browser import assert_accessible, screenshot

GARBAGE = "/approve/not-a-real-token"


async def _shows_the_invalid_link_page(page: Page, live_server: str) -> None:
    response = await page.goto(live_server + GARBAGE)
    assert response is not None
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_have_text("This link is not valid")
    await expect(page.get_by_role("alert")).to_contain_text("Use the link from the e-mail")
    await expect(page).to_have_title("This link is not valid · Passerelle")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    # No agency can be known from a link that is not ours: the masthead names the product.
    await expect(page.get_by_role("banner")).to_contain_text("Passerelle")


async def _first_tab_lands_on_the_skip_link(page: Page) -> None:
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).not_to_be_in_viewport()  # the stylesheet hides it until focused
    await page.keyboard.press("Tab")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()


async def test_an_invalid_link_page_on_a_desktop(live_server: str, page: Page) -> None:
    await _shows_the_invalid_link_page(page, live_server)
    await assert_accessible(page)
    await screenshot(page, "invalid-link-desktop")
    await _first_tab_lands_on_the_skip_link(page)


async def test_an_invalid_link_page_on_a_phone(live_server: str, phone_page: Page) -> None:
    await _shows_the_invalid_link_page(phone_page, live_server)
    overflow = await phone_page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than the phone's screen"
    await assert_accessible(phone_page)
    await screenshot(phone_page, "invalid-link-phone")
    await _first_tab_lands_on_the_skip_link(phone_page)


async def test_the_api_docs_work_offline_in_a_browser(live_server: str, page: Page) -> None:
    # The page fixture refuses every request off this machine and fails on a script error: a
    # Swagger UI or Redoc loaded from a CDN would do both.
    response = await page.goto(live_server + "/docs")
    assert response is not None
    assert response.status == 200
    # The app builds its (large) OpenAPI document on the first request for it.
    await expect(page.get_by_role("heading", name=re.compile("Passerelle API"))).to_be_visible(
        timeout=60_000
    )
    await expect(page.get_by_text("/v1/auth/login").first).to_be_visible()
    await screenshot(page, "docs-desktop", full_page=False)

    # Redoc's bundle links its maker's logo from their CDN; the page's policy keeps the browser
    # from asking for it (the fixture fails the test on any request off this machine).
    response = await page.goto(live_server + "/redoc")
    assert response is not None
    assert response.status == 200
    # Redoc lays the whole (large) document out before it shows anything.
    await expect(
        page.get_by_role("heading", name=re.compile("Passerelle API")).first
    ).to_be_visible(timeout=60_000)
    await screenshot(page, "redoc-desktop", full_page=False)
