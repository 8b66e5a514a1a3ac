"""Rendering a page: Jinja2 (autoescaped), the language, the agency, the CSRF token, and the
headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from web.agency import Agency
from web.csrf import csrf_token, set_csrf_cookie
from web.i18n import Catalogue, translator

TEMPLATES = Path(__file__).parent / "templates"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Pages carry signed links and people's decisions: never cached, never framed, never leaking
# their address (a link is a credential) through Referer; only our own scripts and styles.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' https: data:; style-src 'self'; "
        "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def render(
    request: Request,
    template_name: str,
    context: dict[str, Any],
    *,
    language: str,
    agency: Agency | None,
    text: Catalogue | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    template = environment.get_template(template_name)
    html = template.render(
        **context,
        t=translator(language, *([text] if text else [])),
        lang=language,
        agency=agency or Agency(name="Passerelle"),
        # A page that knows no agency (an altered link) does not claim to speak for one.
        agency_known=agency is not None,
        csrf_token=csrf_token(request),
        request=request,
    )
    response = HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
    set_csrf_cookie(request, response)
    return response
