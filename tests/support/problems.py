"""What every error answer must look like (RFC 9457), asserted in one place."""

from __future__ import annotations

import re

import httpx

from infra.errors import PROBLEM_BASE

PROBLEM_JSON = "application/problem+json"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == PROBLEM_JSON, (media, response.text)
    body = response.json()
    assert body["status"] == status, body
    assert body["type"].startswith(PROBLEM_BASE), body
    assert isinstance(body["title"], str) and body["title"], body
    if slug is not None:
        assert body["type"] == PROBLEM_BASE + slug, body
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    assert REQUEST_ID.match(response.headers.get("x-request-id", "")), response.headers
    return body


def assert_field_refused(response: httpx.Response, pointer: str, code: str | None = None) -> dict:
    """A 422 validation problem naming `pointer` among its fields (and with that code)."""
    body = assert_problem(response, 422, "validation-error")
    named = {e["pointer"]: e["code"] for e in body.get("errors") or []}
    assert pointer in named, body
    if code is not None:
        assert named[pointer] == code, body
    return body
