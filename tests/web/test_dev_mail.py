"""`/dev/mail`: the e-mails the development catcher captured, in a browser. Present only when
ENVIRONMENT=development; everything in a message is escaped, and its HTML runs in a sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from infra.devmail import list_mail
from tests.support.devmail import APPROVAL, INVITATION, catcher, mail_dir, send

__all__ = ["catcher", "mail_dir"]  # fixtures


@pytest.fixture
async def dev_client(settings, mail_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `make run` starts it: ENVIRONMENT=development, reading DEV_MAIL_DIR."""
    application = create_app(
        settings.model_copy(update={"environment": "development", "dev_mail_dir": mail_dir})
    )
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.frames: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(str(dict(attrs).get("href")))
        if tag == "iframe":
            self.frames.append(dict(attrs))


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def assert_html_page(response: httpx.Response, status: int = 200) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")


async def test_the_list_shows_each_captured_mail_newest_first(
    settings, catcher, dev_client, mail_dir
):
    empty = await dev_client.get("/dev/mail")
    assert_html_page(empty)
    assert "No e-mail captured yet." in empty.text

    await send(settings, catcher, APPROVAL)
    await send(settings, catcher, INVITATION)

    response = await dev_client.get("/dev/mail")
    assert_html_page(response)
    assert "<b>Croissants</b>" not in response.text
    approval = response.text.index("Approve &lt;b&gt;Croissants&lt;/b&gt; &amp; co")
    invitation = response.text.index("You are invited")
    assert invitation < approval
    assert "julie@client.example.com" in response.text
    ids = [m.id for m in reversed(list_mail(mail_dir))]
    assert [link for link in parse(response.text).links if link.startswith("/dev/mail/")] == [
        f"/dev/mail/{mail_id}" for mail_id in ids
    ]


async def test_a_message_shows_its_headers_linked_text_and_sandboxed_html(
    settings, catcher, dev_client, mail_dir
):
    await send(settings, catcher, APPROVAL)
    (mail,) = list_mail(mail_dir)

    response = await dev_client.get(f"/dev/mail/{mail.id}")
    assert_html_page(response)
    page = parse(response.text)
    # Headers, escaped.
    assert "julie@client.example.com" in response.text
    assert "Approve &lt;b&gt;Croissants&lt;/b&gt; &amp; co" in response.text
    # The text part: its address is a link (the sentence's full stop is not part of it), and
    # the script written in the text is shown as text.
    assert "https://portal.example.com/approve/abc?x=1&y=2" in page.links
    assert "&lt;script&gt;alert(&#39;text&#39;)&lt;/script&gt;" in response.text
    # The HTML part only inside a frame that runs no script, its markup as an attribute value.
    assert "<script>" not in response.text
    (frame,) = page.frames
    assert frame["sandbox"] == ""
    assert frame["srcdoc"] == APPROVAL.html + "\n"
    assert (
        "'unsafe-inline'"
        not in response.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    )


async def test_a_message_without_html_has_no_frame(settings, catcher, dev_client, mail_dir):
    await send(settings, catcher, INVITATION)
    (mail,) = list_mail(mail_dir)
    response = await dev_client.get(f"/dev/mail/{mail.id}")
    assert_html_page(response)
    assert parse(response.text).frames == []
    assert "https://app.example.com/invitations/xyz" in parse(response.text).links


@pytest.mark.parametrize(
    "wanted",
    [
        "000000000000",
        "not-an-id",
        "x" * 300,
        "..%5C..%5Cetc%5Cpasswd",
        "<img src=x onerror=alert(1)>",
    ],
)
async def test_an_unknown_message_is_a_not_found_page(settings, catcher, dev_client, wanted):
    await send(settings, catcher, INVITATION)
    response = await dev_client.get(f"/dev/mail/{wanted}")
    assert_html_page(response, 404)
    assert "Page not found" in response.text
    assert "<img src=x" not in response.text


async def test_outside_development_the_pages_do_not_exist(settings, catcher, client, mail_dir):
    """The suite's app runs with ENVIRONMENT=test: /dev/mail answers as an unknown address."""
    assert settings.environment != "development"
    await send(settings, catcher, APPROVAL)
    (mail,) = list_mail(mail_dir)
    unknown = await client.get("/dev/nothing-here")
    for path in ("/dev/mail", f"/dev/mail/{mail.id}"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == unknown.headers["content-type"]
        assert "Croissants" not in response.text
