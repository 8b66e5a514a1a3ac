"""An error a page shows to a person: a status and the catalogue key of what to tell them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from web.agency import Agency
    from web.i18n import Catalogue


class PageError(Exception):
    """`key` names two catalogue entries, `<key>.title` and `<key>.detail`."""

    def __init__(
        self,
        status: int,
        key: str,
        *,
        language: str = "en",
        agency: Agency | None = None,
        text: Catalogue | None = None,
        **values: object,
    ) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.language = language
        self.agency = agency
        self.text = text
        self.values = values


async def render_page_error(request: Request, exc: PageError) -> Response:
    from web.render import render

    return render(
        request,
        "error.html",
        {"key": exc.key, "values": exc.values},
        language=exc.language,
        agency=exc.agency,
        text=exc.text,
        status_code=exc.status,
    )
