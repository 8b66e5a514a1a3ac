"""Client contacts signing in to the portal (password or a one-time e-mailed link) and out."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from infra.errors import RateLimited
from infra.i18n import language as language_of
from infra.ratelimit import address_key
from infra.resources import Resources
from infra.security import InvalidToken as BadToken
from tenants import errors as tenant_errors
from tenants import service as tenants
from tenants.models import Client, Role
from tenants.service import login_guard, portal
from web.agency import Agency, agency_of
from web.csrf import verified_form
from web.deps import ResourcesDep, SessionDep
from web.errors import PageError
from web.render import render
from web.session import (
    HOME,
    PORTAL_TEXT,
    clear_cookie,
    local_path,
    session_principal,
    start_session,
)
from web.tenancy import enter_tenant

router = APIRouter()

CHOICE_AUDIENCE = "passerelle-portal-choice"
CHOICE_TTL_SECONDS = 300
"""How long after a right password the contact has to pick one of their agencies."""
LINK_LIMIT_PER_EMAIL = (5, 900)
LINK_LIMIT_PER_ADDRESS = (20, 900)
MAX_EMAIL = 254
MAX_PASSWORD = 1024

TEXT = {
    "en": {
        **PORTAL_TEXT["en"],
        "sign_in.title": "Sign in to the client portal",
        "sign_in.email": "E-mail",
        "sign_in.password": "Password",
        "sign_in.submit": "Sign in",
        "sign_in.failed": "The e-mail or the password is wrong.",
        "sign_in.missing": "Enter your e-mail and your password.",
        "sign_in.too_many": "Too many attempts. Try again in {seconds} seconds.",
        "sign_in.signed_out": "You are signed out.",
        "sign_in.link_title": "Or get a sign-in link by e-mail",
        "sign_in.link_help": "We send a link that signs you in once, within 15 minutes.",
        "sign_in.link_submit": "E-mail me a link",
        "choose.title": "Which agency?",
        "choose.intro": "You are a client contact of several agencies. Choose one.",
        "link_sent.title": "Check your e-mail",
        "link_sent.detail": "If this address has a portal account, a link is on its way. It "
        "works once, within 15 minutes.",
        "link_sent.back": "Back to sign in",
        "link_page.title": "Sign in to {agency_name}'s portal",
        "link_page.intro": "Press the button to sign in. The link then stops working.",
        "error.sign_in_link_invalid.title": "This sign-in link is not valid",
        "error.sign_in_link_invalid.detail": "The link was altered or is not one of ours. "
        "Ask for a new one on the sign-in page.",
        "error.sign_in_link_expired.title": "This sign-in link has expired",
        "error.sign_in_link_expired.detail": "Sign-in links work for 15 minutes. Ask for a new "
        "one on the sign-in page.",
        "error.sign_in_link_used.title": "This sign-in link was already used",
        "error.sign_in_link_used.detail": "Each link signs in once. Ask for a new one on the "
        "sign-in page.",
        "error.choice_expired.title": "Please sign in again",
        "error.choice_expired.detail": "Too much time passed before choosing an agency.",
    },
    "fr": {
        **PORTAL_TEXT["fr"],
        "sign_in.title": "Connexion à l'espace client",
        "sign_in.email": "Courriel",
        "sign_in.password": "Mot de passe",
        "sign_in.submit": "Se connecter",
        "sign_in.failed": "Le courriel ou le mot de passe est incorrect.",
        "sign_in.missing": "Saisissez votre courriel et votre mot de passe.",
        "sign_in.too_many": "Trop de tentatives. Réessayez dans {seconds} secondes.",
        "sign_in.signed_out": "Vous êtes déconnecté.",
        "sign_in.link_title": "Ou recevez un lien de connexion par courriel",
        "sign_in.link_help": "Nous envoyons un lien qui vous connecte une fois, dans les "
        "15 minutes.",
        "sign_in.link_submit": "M'envoyer un lien",
        "choose.title": "Quelle agence ?",
        "choose.intro": "Vous êtes contact client de plusieurs agences. Choisissez-en une.",
        "link_sent.title": "Consultez vos courriels",
        "link_sent.detail": "Si cette adresse a un compte client, un lien est en route. Il "
        "fonctionne une fois, dans les 15 minutes.",
        "link_sent.back": "Retour à la connexion",
        "link_page.title": "Connexion à l'espace client de {agency_name}",
        "link_page.intro": "Appuyez sur le bouton pour vous connecter. Le lien cessera "
        "ensuite de fonctionner.",
        "error.sign_in_link_invalid.title": "Ce lien de connexion n'est pas valide",
        "error.sign_in_link_invalid.detail": "Le lien a été modifié ou ne vient pas de nous. "
        "Demandez-en un nouveau sur la page de connexion.",
        "error.sign_in_link_expired.title": "Ce lien de connexion a expiré",
        "error.sign_in_link_expired.detail": "Les liens de connexion fonctionnent 15 minutes. "
        "Demandez-en un nouveau sur la page de connexion.",
        "error.sign_in_link_used.title": "Ce lien de connexion a déjà servi",
        "error.sign_in_link_used.detail": "Chaque lien ne connecte qu'une fois. Demandez-en un "
        "nouveau sur la page de connexion.",
        "error.choice_expired.title": "Veuillez vous reconnecter",
        "error.choice_expired.detail": "Trop de temps s'est écoulé avant le choix de l'agence.",
    },
}


def browser_language(request: Request) -> str:
    """Before we know who it is: the browser's first language, if we speak it."""
    first = request.headers.get("accept-language", "").split(",")[0]
    return language_of(first.strip())


def _sign_in_page(
    request: Request,
    *,
    email: str = "",
    next_path: str = HOME,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    response = render(
        request,
        "portal/sign_in.html",
        {"email": email, "next": next_path, "error": error, "notice": notice, "values": values},
        language=browser_language(request),
        agency=None,
        text=TEXT,
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


def _text_field(form: FormData, name: str, limit: int) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or len(value) > limit:
        return None
    return value.strip() if name != "password" else value


@router.get("/portal/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    next_path = local_path(request.query_params.get("next"))
    principal = await session_principal(request, session, resources)
    if principal is not None and principal.role == Role.client:
        return RedirectResponse(next_path, status_code=303)  # already signed in
    signed_out = request.query_params.get("signed_out") == "1"
    return _sign_in_page(
        request, next_path=next_path, notice="sign_in.signed_out" if signed_out else None
    )


@router.post("/portal/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    form = await verified_form(request)
    email = _text_field(form, "email", MAX_EMAIL) or ""
    password = _text_field(form, "password", MAX_PASSWORD) or ""
    next_path = local_path(_text_field(form, "next", 500))
    if not email or not password:
        return _sign_in_page(
            request, email=email, next_path=next_path, error="sign_in.missing", status_code=400
        )
    try:
        async with login_guard.password_check(
            resources.limiter,
            resources.settings,
            email=email,
            host=request.client.host if request.client else None,
        ):
            # Several agencies: the password was right; the portal picks among client ones.
            with contextlib.suppress(tenant_errors.TenantRequired):
                await tenants.authenticate(
                    session, resources.passwords, email=email, password=password, tenant_slug=None
                )
    except RateLimited as exc:
        seconds = int(exc.headers.get("Retry-After", "60"))
        return _sign_in_page(
            request,
            email=email,
            next_path=next_path,
            error="sign_in.too_many",
            status_code=429,
            headers={"Retry-After": str(seconds)},
            seconds=seconds,
        )
    except tenant_errors.InvalidCredentials:
        return _sign_in_page(
            request, email=email, next_path=next_path, error="sign_in.failed", status_code=401
        )
    user = await tenants.find_user_by_email(session, email)
    assert user is not None
    accounts = await portal.portal_accounts(session, user.id)
    return await _continue_with(request, session, resources, accounts, next_path)


async def _continue_with(
    request: Request,
    session: AsyncSession,
    resources: Resources,
    accounts: list[portal.PortalAccount],
    next_path: str,
) -> Response:
    if not accounts:
        raise PageError(403, "error.not_a_contact", language=browser_language(request), text=TEXT)
    if len(accounts) > 1:
        choice = resources.signer.sign(
            {"sub": str(accounts[0].membership.user_id)},
            audience=CHOICE_AUDIENCE,
            ttl_seconds=CHOICE_TTL_SECONDS,
        )
        return render(
            request,
            "portal/choose.html",
            {"accounts": accounts, "choice": choice, "next": next_path},
            language=browser_language(request),
            agency=None,
            text=TEXT,
        )
    return await _start(request, session, resources, accounts[0], next_path)


async def _start(
    request: Request,
    session: AsyncSession,
    resources: Resources,
    account: portal.PortalAccount,
    next_path: str,
) -> Response:
    return await start_session(request, session, resources.signer, account, next_path)


@router.post("/portal/sign-in/agency", response_class=HTMLResponse)
async def choose_agency(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    form = await verified_form(request)
    choice = _text_field(form, "choice", 4096) or ""
    try:
        claims = resources.signer.verify(choice, audience=CHOICE_AUDIENCE)
        user_id = uuid.UUID(str(claims["sub"]))
        tenant_id = uuid.UUID(_text_field(form, "agency", 64) or "")
    except (BadToken, KeyError, ValueError) as exc:
        raise PageError(
            400, "error.choice_expired", language=browser_language(request), text=TEXT
        ) from exc
    accounts = [
        a for a in await portal.portal_accounts(session, user_id) if a.tenant.id == tenant_id
    ]
    next_path = local_path(_text_field(form, "next", 500))
    return await _continue_with(request, session, resources, accounts[:1], next_path)


@router.post("/portal/sign-out")
async def sign_out(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    await verified_form(request)
    principal = await session_principal(request, session, resources)
    if principal is not None:
        await tenants.revoke_session(
            session, principal.tenant_id, principal.session_id, reason="logout"
        )
    response = RedirectResponse("/portal/sign-in?signed_out=1", status_code=303)
    clear_cookie(request, response)
    return response


# ---------------------------------------------------------------------------------------------
# One-time sign-in links


async def _link_allowed(resources: Resources, request: Request, email: str) -> int:
    """Seconds to wait before another link may be asked (0: go ahead). Counted per address
    asked for, whether or not it has an account, so the answer tells nothing."""
    host = address_key(request.client.host if request.client else None)
    for key, (limit, window) in (
        (f"portal-link:email:{email.lower()}", LINK_LIMIT_PER_EMAIL),
        (f"portal-link:address:{host}", LINK_LIMIT_PER_ADDRESS),
    ):
        decision = await resources.limiter.hit(key, limit=limit, window_seconds=window)
        if not decision.allowed:
            return decision.retry_after
    return 0


@router.post("/portal/sign-in/link", response_class=HTMLResponse)
async def request_link(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    form = await verified_form(request)
    email = _text_field(form, "email", MAX_EMAIL) or ""
    if "@" not in email:
        return _sign_in_page(request, email=email, error="sign_in.missing", status_code=400)
    wait = await _link_allowed(resources, request, email)
    if wait:
        return _sign_in_page(
            request,
            email=email,
            error="sign_in.too_many",
            status_code=429,
            headers={"Retry-After": str(wait)},
            seconds=wait,
        )
    user = await tenants.find_user_by_email(session, email)
    accounts = await portal.portal_accounts(session, user.id) if user else []
    # One e-mail per agency, each from that agency's tenant (outbox rows belong to one).
    for account in accounts:
        await enter_tenant(session, account.tenant.id)
        portal.request_sign_in_link(
            session, account, request_id=getattr(request.state, "request_id", None)
        )
        await session.flush()
    return render(
        request,
        "portal/link_sent.html",
        {},
        language=browser_language(request),
        agency=None,
        text=TEXT,
    )


async def _open_link(
    request: Request, session: AsyncSession, resources: Resources, token: str
) -> tuple[portal.SignInLink, portal.PortalAccount, str, Agency]:
    """The link, the account it opens, its language and agency; or the page saying why not."""
    language = browser_language(request)
    try:
        link = portal.read_sign_in_link(resources.signer, token)
        await enter_tenant(session, link.tenant_id)
        account = await portal.account_of_link(session, link)
    except tenant_errors.SignInLinkInvalid as exc:
        raise PageError(404, "error.sign_in_link_invalid", language=language, text=TEXT) from exc
    except tenant_errors.SignInLinkExpired as exc:
        raise PageError(410, "error.sign_in_link_expired", language=language, text=TEXT) from exc
    client = await session.get(Client, (link.tenant_id, account.membership.client_id))
    language = language_of(client.locale) if client else language
    agency = await agency_of(session, link.tenant_id, settings=resources.settings)
    return link, account, language, agency


@router.get("/portal/sign-in/link/{token}", response_class=HTMLResponse)
async def link_page(
    token: str, request: Request, session: SessionDep, resources: ResourcesDep
) -> HTMLResponse:
    # Only shows a button: mail scanners open links, and must not spend them.
    link, _, language, agency = await _open_link(request, session, resources, token)
    try:
        await portal.check_sign_in_link_unused(resources.redis, link)
    except tenant_errors.SignInLinkUsed as exc:
        raise PageError(
            410, "error.sign_in_link_used", language=language, agency=agency, text=TEXT
        ) from exc
    return render(
        request,
        "portal/link.html",
        {"agency_name": agency.name},
        language=language,
        agency=agency,
        text=TEXT,
    )


@router.post("/portal/sign-in/link/{token}")
async def use_link(
    token: str, request: Request, session: SessionDep, resources: ResourcesDep
) -> Response:
    await verified_form(request)
    link, account, language, agency = await _open_link(request, session, resources, token)
    try:
        await portal.consume_sign_in_link(resources.redis, link)
    except tenant_errors.SignInLinkUsed as exc:
        raise PageError(
            410, "error.sign_in_link_used", language=language, agency=agency, text=TEXT
        ) from exc
    return await _start(request, session, resources, account, HOME)
