"""A client contact's invitation: the e-mail's link opens this page, which accepts it (creating
the account, or with the existing account's password) and signs the contact in to the portal.

Accepting is the API's own `accept_invitation`: the page adds no rule of its own, only a form.
Staff invitations are accepted in the agency's app, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from infra.errors import RateLimited
from infra.resources import Resources
from tenants import errors as tenant_errors
from tenants import service as tenants
from tenants.models import Role
from tenants.schemas import InvitationAccept
from tenants.service import login_guard, portal
from tenants.service.invitations import (
    InvitationState,
    InvitationView,
    invitation_view,
    presented_invitation,
)
from tenants.service.members import InvitationLink
from web.agency import Agency, agency_of
from web.csrf import verified_form
from web.deps import ResourcesDep, SessionDep
from web.errors import PageError
from web.i18n import language_for
from web.preview import Moment, moment
from web.render import render
from web.session import HOME, SIGN_IN_PATH, start_session
from web.tenancy import enter_tenant

router = APIRouter()

MAX_NAME = 200
PASSWORD_MIN, PASSWORD_MAX = 10, 256
"""As the API's InvitationAccept says; shown to the person, checked by the same model."""

TEXT = {
    "en": {
        "invite.title": "Join {agency}'s client portal",
        "invite.intro": "{inviter} invited you ({email}) to {agency}'s client portal, where you "
        "read and approve what the agency prepares for you.",
        "invite.expires": "This invitation works until",
        "invite.new_account": "Create your account",
        "invite.name": "Your name",
        "invite.password": "Choose a password",
        "invite.password_rule": "At least {min} characters.",
        "invite.existing_account": "You already have an account with this e-mail address. "
        "Enter its password to accept.",
        "invite.current_password": "Your password",
        "invite.submit": "Accept and open the portal",
        "invite.error.name_missing": "Enter your name.",
        "invite.error.name_too_long": "Your name is at most {name_max} characters.",
        "invite.error.password_short": "The password needs at least {min} characters.",
        "invite.error.password_long": "The password is at most {max} characters.",
        "invite.error.password_wrong": "This is not your account's password.",
        "invite.error.too_many": "Too many attempts. Try again in {seconds} seconds.",
        "invite.contact": "Questions? Write to {name}:",
        "invite.used.title": "This invitation was already accepted",
        "invite.used.detail": "Sign in to the portal with your e-mail address and password.",
        "invite.used.action": "Sign in",
        "invite.expired.title": "This invitation has expired",
        "invite.expired.detail": "It worked until the date below. Ask {inviter} for a new one.",
        "invite.withdrawn.title": "This invitation was withdrawn",
        "invite.withdrawn.detail": "{agency} withdrew it. If you expected it, ask {inviter}.",
        "invite.staff.title": "This invitation is for the agency's app",
        "invite.staff.detail": "{inviter} invited you to join {agency}'s team. Team members "
        "accept their invitation in the agency's app, not in the client portal.",
        "invite.staff.action": "Open it in the agency's app",
        "error.invitation_invalid.title": "This invitation link is not valid",
        "error.invitation_invalid.detail": "The link was altered or is not one of ours. Use the "
        "link from the e-mail exactly as it came, or ask the person who invited you for a new "
        "one.",
    },
    "fr": {
        "invite.title": "Rejoindre l'espace client de {agency}",
        "invite.intro": "{inviter} vous invite ({email}) à l'espace client de {agency}, où vous "
        "lisez et approuvez ce que l'agence prépare pour vous.",
        "invite.expires": "Cette invitation est valable jusqu'au",
        "invite.new_account": "Créez votre compte",
        "invite.name": "Votre nom",
        "invite.password": "Choisissez un mot de passe",
        "invite.password_rule": "Au moins {min} caractères.",
        "invite.existing_account": "Vous avez déjà un compte avec cette adresse courriel. "
        "Saisissez son mot de passe pour accepter.",
        "invite.current_password": "Votre mot de passe",
        "invite.submit": "Accepter et ouvrir l'espace client",
        "invite.error.name_missing": "Saisissez votre nom.",
        "invite.error.name_too_long": "Votre nom compte au plus {name_max} caractères.",
        "invite.error.password_short": "Le mot de passe doit compter au moins {min} caractères.",
        "invite.error.password_long": "Le mot de passe compte au plus {max} caractères.",
        "invite.error.password_wrong": "Ce n'est pas le mot de passe de votre compte.",
        "invite.error.too_many": "Trop de tentatives. Réessayez dans {seconds} secondes.",
        "invite.contact": "Des questions ? Écrivez à {name} :",
        "invite.used.title": "Cette invitation a déjà été acceptée",
        "invite.used.detail": "Connectez-vous à l'espace client avec votre adresse courriel et "
        "votre mot de passe.",
        "invite.used.action": "Se connecter",
        "invite.expired.title": "Cette invitation a expiré",
        "invite.expired.detail": "Elle était valable jusqu'à la date ci-dessous. Demandez-en "
        "une nouvelle à {inviter}.",
        "invite.withdrawn.title": "Cette invitation a été retirée",
        "invite.withdrawn.detail": "{agency} l'a retirée. Si vous l'attendiez, écrivez à "
        "{inviter}.",
        "invite.staff.title": "Cette invitation est destinée à l'application de l'agence",
        "invite.staff.detail": "{inviter} vous invite à rejoindre l'équipe de {agency}. Les "
        "membres de l'équipe acceptent leur invitation dans l'application de l'agence, pas "
        "dans l'espace client.",
        "invite.staff.action": "L'ouvrir dans l'application de l'agence",
        "error.invitation_invalid.title": "Ce lien d'invitation n'est pas valide",
        "error.invitation_invalid.detail": "Le lien a été modifié ou ne vient pas de nous. "
        "Utilisez le lien du courriel tel quel, ou demandez-en un nouveau à la personne qui "
        "vous a invité.",
    },
}

CLOSED_STATUS = {
    InvitationState.used: 410,
    InvitationState.expired: 410,
    InvitationState.withdrawn: 410,
}


@dataclass(frozen=True)
class InvitePage:
    """A link whose signature holds and whose invitation exists, with what frames its pages."""

    token: str
    link: InvitationLink
    view: InvitationView
    language: str
    agency: Agency

    @property
    def words(self) -> dict[str, str]:
        return {
            "agency": self.agency.name,
            "inviter": self.view.inviter_name,
            "email": self.view.email,
        }


def _browser_language(request: Request) -> str:
    """Only for a link that names no invitation of ours: its language is all we can go by."""
    first = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    return language_for(first)


async def _open(
    request: Request, session: AsyncSession, resources: Resources, token: str
) -> InvitePage:
    """The invitation, or one 'not valid' page for an altered token, one naming no invitation,
    or one naming another agency's: which of them it was is not disclosed."""
    try:
        link = presented_invitation(resources.signer, token)
        # The tenant the signature vouches for, for the rest of this request's transaction.
        await enter_tenant(session, link.tenant_id)
        view = await invitation_view(session, link)
    except tenant_errors.InvitationInvalid as exc:
        raise PageError(
            404, "error.invitation_invalid", language=_browser_language(request), text=TEXT
        ) from exc
    return InvitePage(
        token=token,
        link=link,
        view=view,
        language=language_for(view.client_locale),
        agency=await agency_of(session, link.tenant_id, settings=resources.settings),
    )


def _page(
    request: Request,
    page: InvitePage,
    template: str,
    values: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        template,
        {
            **values,
            "words": page.words,
            "inviter": {"name": page.view.inviter_name, "email": page.view.inviter_email},
            "expires": _expiry(page),
        },
        language=page.language,
        agency=page.agency,
        text=TEXT,
        status_code=status_code,
    )


def _expiry(page: InvitePage) -> Moment:
    return moment(page.view.expires_at, page.language, page.view.tenant_timezone)


def _closed_page(
    request: Request, page: InvitePage, resources: Resources, *, posted: bool
) -> HTMLResponse | None:
    """The page that says why this invitation cannot be accepted here, if it cannot."""
    view = page.view
    if view.state != InvitationState.open:
        key = f"invite.{view.state.value}"
        action = SIGN_IN_PATH if view.state == InvitationState.used else None
        return _page(
            request,
            page,
            "portal/invitation_closed.html",
            {"key": key, "action": action, "show_expiry": view.state == InvitationState.expired},
            status_code=CLOSED_STATUS[view.state],
        )
    if view.role != Role.client:
        # Staff keep the agency's app; the same link opens there.
        app = f"{resources.settings.app_base_url.rstrip('/')}/invitations/{page.token}"
        return _page(
            request,
            page,
            "portal/invitation_closed.html",
            {"key": "invite.staff", "action": app, "show_expiry": False},
            status_code=403 if posted else 200,
        )
    return None


def _form_page(
    request: Request,
    page: InvitePage,
    *,
    name: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **values: object,
) -> HTMLResponse:
    response = _page(
        request,
        page,
        "portal/invitation.html",
        {
            "has_account": page.view.has_account,
            "name": name,
            "errors": errors or {},
            "values": {"min": PASSWORD_MIN, "max": PASSWORD_MAX, "name_max": MAX_NAME, **values},
        },
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


@router.get("/portal/invitations/{token}", response_class=HTMLResponse)
async def invitation_page(
    token: str, request: Request, session: SessionDep, resources: ResourcesDep
) -> HTMLResponse:
    # Only shows a form: opening the link (a mail scanner does) accepts nothing.
    page = await _open(request, session, resources, token)
    return _closed_page(request, page, resources, posted=False) or _form_page(request, page)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """The model's refusals, by form field, in the page's words."""
    found: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if field == "password":
            short = error["type"] == "string_too_short"
            found["password"] = f"invite.error.password_{'short' if short else 'long'}"
        elif field == "name":
            found["name"] = "invite.error.name_too_long"
    return found


async def _refused_now(
    request: Request, session: AsyncSession, resources: Resources, token: str
) -> HTMLResponse:
    page = await _open(request, session, resources, token)
    closed = _closed_page(request, page, resources, posted=True)
    if closed is None:  # open again by now: let the person try once more
        return _form_page(request, page, status_code=409)
    return closed


@router.post("/portal/invitations/{token}", response_class=HTMLResponse)
async def accept(
    token: str, request: Request, session: SessionDep, resources: ResourcesDep
) -> Response:
    form = await verified_form(request)
    page = await _open(request, session, resources, token)
    closed = _closed_page(request, page, resources, posted=True)
    if closed is not None:
        return closed
    name = _field(form, "name").strip()
    password = _field(form, "password")
    try:
        body = InvitationAccept(
            name=None if page.view.has_account or not name else name,
            password=password,
            locale=page.language,
        )
    except ValidationError as exc:
        errors = _field_errors(exc)
        if not name and not page.view.has_account:
            errors["name"] = "invite.error.name_missing"  # all that is wrong, at once
        return _form_page(request, page, name=name, errors=errors, status_code=422)
    try:
        async with login_guard.password_check(
            resources.limiter,
            resources.settings,
            email=page.view.email,
            host=request.client.host if request.client else None,
        ):
            tenant, membership = await tenants.accept_invitation(
                session,
                resources.passwords,
                tenants.read_invitation_link(resources.signer, token),
                body,
                resources.settings,
            )
    except tenant_errors.NameRequired:
        await session.rollback()
        return _form_page(
            request, page, errors={"name": "invite.error.name_missing"}, status_code=422
        )
    except tenant_errors.InvalidCredentials:
        await session.rollback()
        return _form_page(
            request, page, errors={"password": "invite.error.password_wrong"}, status_code=401
        )
    except tenant_errors.InvitationInvalid:
        # Accepted, withdrawn or run out since the page was read: say which, as it is now.
        await session.rollback()
        return await _refused_now(request, session, resources, token)
    except RateLimited as exc:
        seconds = int(exc.headers.get("Retry-After", "60"))
        return _form_page(
            request,
            page,
            name=name,
            errors={"password": "invite.error.too_many"},
            status_code=429,
            headers={"Retry-After": str(seconds)},
            seconds=seconds,
        )
    account = portal.PortalAccount(tenant, membership)
    return await start_session(request, session, resources.signer, account, HOME)
