"""Cross-site request forgery: a double-submitted token.

The page sets a random token in a strict same-site cookie and repeats it in a hidden field; a
form post must carry both, equal. Another site can make a browser post a form, but can neither
read our cookie nor set it, so it cannot fill the field.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import Response

from web.errors import PageError

COOKIE = "passerelle_csrf"
FIELD = "csrf"
MAX_FIELDS = 20
MAX_PART_BYTES = 64 * 1024


def csrf_token(request: Request) -> str:
    """The token this response will carry: the browser's own if it has one, else a new one."""
    token = getattr(request.state, "csrf_token", None)
    if token is None:
        token = request.cookies.get(COOKIE) or secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return str(token)


def set_csrf_cookie(request: Request, response: Response) -> None:
    token = csrf_token(request)
    if request.cookies.get(COOKIE) != token:
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )


async def verified_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is checked. No file uploads; bounded fields."""
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_PART_BYTES)
    except Exception as exc:  # malformed or oversize multipart: the client's fault
        raise PageError(400, "error.bad_request") from exc
    sent = form.get(FIELD)
    cookie = request.cookies.get(COOKIE)
    if not isinstance(sent, str) or not cookie or not hmac.compare_digest(sent, cookie):
        raise PageError(403, "error.csrf")
    return form
