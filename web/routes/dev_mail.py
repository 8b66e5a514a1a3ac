"""`/dev/mail`: the e-mails `make run`'s catcher captured (DEV_MAIL_DIR), readable in a browser.

Development only: `api.app` includes this router only when ENVIRONMENT=development, so
elsewhere these addresses do not exist. A message is shown as text (its links made clickable,
everything else escaped) and its HTML version inside a sandboxed frame, which runs no script
and cannot reach this page.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from infra.devmail import find_mail, list_mail
from web.deps import ResourcesDep
from web.errors import PageError
from web.i18n import Catalogue, language_for
from web.render import PAGE_HEADERS, render

router = APIRouter(prefix="/dev/mail", include_in_schema=False)

TEXT: Catalogue = {
    "en": {
        "mail.title": "Captured e-mails",
        "mail.lead": "Every e-mail sent while developing is caught here; none leaves this "
        "machine. Newest first.",
        "mail.none": "No e-mail captured yet.",
        "mail.when": "Received",
        "mail.to": "To",
        "mail.subject": "Subject",
        "mail.back": "All e-mails",
        "mail.headers": "Headers",
        "mail.text": "Text",
        "mail.no_text": "This e-mail has no text part.",
        "mail.html": "HTML version",
        "mail.html_frame": "The e-mail's HTML version (scripts do not run)",
        "mail.no_subject": "(no subject)",
    },
    "fr": {
        "mail.title": "Courriels capturés",
        "mail.lead": "Chaque courriel envoyé en développement est retenu ici ; aucun ne quitte "
        "cette machine. Les plus récents d'abord.",
        "mail.none": "Aucun courriel capturé pour l'instant.",
        "mail.when": "Reçu",
        "mail.to": "À",
        "mail.subject": "Objet",
        "mail.back": "Tous les courriels",
        "mail.headers": "En-têtes",
        "mail.text": "Texte",
        "mail.no_text": "Ce courriel n'a pas de partie texte.",
        "mail.html": "Version HTML",
        "mail.html_frame": "La version HTML du courriel (les scripts ne s'exécutent pas)",
        "mail.no_subject": "(sans objet)",
    },
}

# The HTML version is shown in a frame whose document inherits this page's policy: e-mails
# style themselves inline, so inline styles are allowed here (scripts still are not, and the
# frame's sandbox forbids them anyway).
_MESSAGE_CSP = PAGE_HEADERS["Content-Security-Policy"].replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)

_URL = re.compile(r"https?://[^\s<>\"']+")
# Punctuation that ends a sentence rather than the address it follows.
_TRAILING = ".,;:!?)]}"


def linkify(text: str) -> Markup:
    """The text, escaped, with each http(s) address made a link."""
    out: list[str] = []
    position = 0
    for found in _URL.finditer(text):
        url = found.group().rstrip(_TRAILING)
        end = found.start() + len(url)
        out.append(escape(text[position : found.start()]))
        out.append(Markup('<a href="{0}">{0}</a>').format(url))
        position = end
    out.append(escape(text[position:]))
    return Markup("").join(out)


def _language(request: Request) -> str:
    return language_for(request.headers.get("accept-language", "").split(",")[0].split(";")[0])


@router.get("", response_class=HTMLResponse)
async def mail_list(request: Request, resources: ResourcesDep) -> HTMLResponse:
    messages = list(reversed(list_mail(resources.settings.dev_mail_dir)))
    return render(
        request,
        "dev/mail_list.html",
        {"messages": messages},
        language=_language(request),
        agency=None,
        text=TEXT,
    )


@router.get("/{mail_id}", response_class=HTMLResponse)
async def mail_message(mail_id: str, request: Request, resources: ResourcesDep) -> HTMLResponse:
    language = _language(request)
    mail = find_mail(resources.settings.dev_mail_dir, mail_id)
    if mail is None:
        raise PageError(404, "error.not_found", language=language)
    text = mail.text()
    response = render(
        request,
        "dev/mail_message.html",
        {
            "mail": mail,
            "text": linkify(text) if text is not None else None,
            "html": mail.html(),
        },
        language=language,
        agency=None,
        text=TEXT,
    )
    response.headers["Content-Security-Policy"] = _MESSAGE_CSP
    return response
