"""Every page, walked with hostile input: it answers an HTML page with a 4xx status (or a
redirect to sign in), never a 500 and never a JSON problem, and a post without its CSRF token
changes nothing."""

from __future__ import annotations

import uuid

import pytest

from api.app import create_app
from tests.support import walk

_APP = create_app()
PAGES = walk.page_routes(_APP)
HOSTILE_VALUES = [
    "not-an-id",
    str(uuid.uuid4()),
    "x" * 5000,
    # No "/" in them: a path with one more segment is another (unknown) address.
    "<img src=x onerror=alert(1)>",
    "..%5C..%5Cetc%5Cpasswd",
    "nul%00byte",
]


def test_the_walk_sees_the_pages() -> None:
    assert any(page.path.startswith("/approve/") for page in PAGES)


def _answered_as_a_page(response) -> None:
    assert response.status_code < 500, response.text[:300]
    if 300 <= response.status_code < 400:
        return
    assert response.status_code >= 400 or response.status_code == 200
    assert response.headers["content-type"].startswith("text/html"), response.text[:300]
    assert "<img src=x onerror" not in response.text


@pytest.mark.parametrize("page", [p for p in PAGES if p.path_params], ids=lambda p: p.path)
@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
async def test_hostile_path_values_get_a_page(client, page, value) -> None:
    path = page.fill({name: value for name in page.path_params})
    for method in page.methods:
        response = await client.request(method, path, data={"comment": "x"})
        _answered_as_a_page(response)
        if method == "POST":
            assert response.status_code in (303, 400, 401, 403, 404, 410)


@pytest.mark.parametrize("page", [p for p in PAGES if "POST" in p.methods], ids=lambda p: p.path)
async def test_a_post_without_its_csrf_token_is_refused(client, page) -> None:
    path = page.fill({name: str(uuid.uuid4()) for name in page.path_params})
    response = await client.post(path, data={"decision": "approve"}, cookies={})
    _answered_as_a_page(response)
    assert response.status_code in (303, 400, 403, 404)
