"""The other edge: server-rendered pages for clients and external approvers.

Pages call the same domain services as the API. They are plain HTML forms: each parses its own
input and answers an HTML page, never a JSON problem, whatever goes wrong.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from web.errors import PageError, render_page_error
from web.router import router
from web.session import SignInRequired, redirect_to_sign_in

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(PageError, render_page_error)  # type: ignore[arg-type]
    app.add_exception_handler(SignInRequired, redirect_to_sign_in)  # type: ignore[arg-type]


def install_development_pages(app: FastAPI) -> None:
    """Pages that exist only in development (ENVIRONMENT=development): the captured e-mails."""
    from web.routes import dev_mail

    app.include_router(dev_mail.router)
