"""Client contacts' signed-in sessions in the portal: a cookie holding a signed token.

The token names the login (an `AuthSession` row, like the API's access tokens), so each page
re-checks that the login is open and the membership active: signing out elsewhere, or the
agency removing the contact, takes effect on the next page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from infra.i18n import language as language_of
from infra.plans import Feature
from infra.security import InvalidToken as BadToken
from infra.security import TokenSigner
from tenants import errors as tenant_errors
from tenants.models import Client, Membership, Role, Tenant
from tenants.principal import Principal
from tenants.service import portal
from web.agency import Agency, agency_of
from web.deps import ResourcesDep, SessionDep
from web.errors import PageError
from web.tenancy import enter_as_member, enter_tenant

COOKIE = "passerelle_portal"
AUDIENCE = "passerelle-portal"
TTL_SECONDS = 10 * 3600
"""A working day: long enough not to interrupt, short enough that a shared computer forgets."""
SIGN_IN_PATH = "/portal/sign-in"
HOME = "/portal"

PORTAL_TEXT = {
    "en": {
        "error.not_a_contact.title": "The portal is for client contacts",
        "error.not_a_contact.detail": "This account is not a client contact's. Agency staff "
        "use the agency's app.",
        "error.plan.title": "The portal is not available",
        "error.plan.detail": "{agency_name}'s plan does not include the client portal. Approval "
        "links sent by e-mail still work; ask {agency_name} about the portal.",
    },
    "fr": {
        "error.not_a_contact.title": "L'espace client est réservé aux contacts des clients",
        "error.not_a_contact.detail": "Ce compte n'est pas celui d'un contact client. L'équipe "
        "de l'agence utilise l'application de l'agence.",
        "error.plan.title": "L'espace client n'est pas disponible",
        "error.plan.detail": "L'abonnement de {agency_name} n'inclut pas l'espace client. "
        "Les liens d'approbation envoyés par courriel fonctionnent toujours ; "
        "renseignez-vous auprès de "
        "{agency_name}.",
    },
}


class SignInRequired(Exception):
    """No valid portal session: the page answers a redirect to sign in, then back."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


async def redirect_to_sign_in(request: Request, exc: SignInRequired) -> Response:
    target = SIGN_IN_PATH
    if exc.next_path != HOME:
        target += "?next=" + quote(exc.next_path, safe="/")
    response = RedirectResponse(target, status_code=303)
    clear_cookie(request, response)
    return response


def local_path(value: str | None) -> str:
    """Where to go after signing in: a portal page of ours, never another site (an open
    redirect would lend our name to a phishing page)."""
    if (
        not value
        or len(value) > 500
        or not value.startswith(HOME)
        or "//" in value
        or "\\" in value
        or any(ord(ch) < 0x20 for ch in value)
        or (len(value) > len(HOME) and value[len(HOME)] not in "/?")
    ):
        return HOME
    return value


def session_token(signer: TokenSigner, membership: Membership, session_id: uuid.UUID) -> str:
    return signer.sign(
        {
            "sub": str(membership.user_id),
            "tid": str(membership.tenant_id),
            "mid": str(membership.id),
            "sid": str(session_id),
        },
        audience=AUDIENCE,
        ttl_seconds=TTL_SECONDS,
    )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=TTL_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_cookie(request: Request, response: Response) -> None:
    if COOKIE in request.cookies:
        response.delete_cookie(
            COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
        )


async def start_session(
    request: Request,
    session: AsyncSession,
    signer: TokenSigner,
    account: portal.PortalAccount,
    next_path: str,
) -> Response:
    """Open a portal login for the account and go on to `next_path` with its cookie: how every
    door in (password, e-mailed link, accepted invitation) ends."""
    await enter_tenant(session, account.tenant.id)
    session_id = await portal.open_session(
        session, account, user_agent=request.headers.get("user-agent")
    )
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(request, response, session_token(signer, account.membership, session_id))
    return response


@dataclass(frozen=True)
class Contact:
    """A signed-in client contact, with what every portal page shows them."""

    principal: Principal
    language: str
    agency: Agency
    client_name: str


def _claims(request: Request, signer: TokenSigner) -> dict[str, object] | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 4096:
        return None
    try:
        return signer.verify(token, audience=AUDIENCE)
    except BadToken:
        return None


async def session_principal(
    request: Request, session: AsyncSession, resources: ResourcesDep
) -> Principal | None:
    claims = _claims(request, resources.signer)
    if claims is None:
        return None
    try:
        return await enter_as_member(
            session,
            claims,
            resources.settings,
            request_id=getattr(request.state, "request_id", None),
        )
    except tenant_errors.InvalidToken:
        return None


async def signed_in_principal(
    request: Request, session: SessionDep, resources: ResourcesDep
) -> Principal:
    """The open portal login of this browser, whoever it belongs to."""
    principal = await session_principal(request, session, resources)
    if principal is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(local_path(path))
    return principal


async def current_contact(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    principal: Annotated[Principal, Depends(signed_in_principal)],
) -> Contact:
    agency = await agency_of(session, principal.tenant_id, settings=resources.settings)
    if principal.role != Role.client or principal.client_id is None:
        raise PageError(403, "error.not_a_contact", agency=agency, text=PORTAL_TEXT)
    client = await session.get(Client, (principal.tenant_id, principal.client_id))
    tenant = await session.get(Tenant, principal.tenant_id)
    assert client is not None and tenant is not None
    language = language_of(client.locale)
    if Feature.client_portal not in resources.settings.plan(tenant.plan_id).features:
        raise PageError(
            403,
            "error.plan",
            language=language,
            agency=agency,
            text=PORTAL_TEXT,
            agency_name=agency.name,
        )
    return Contact(principal=principal, language=language, agency=agency, client_name=client.name)


ContactDep = Annotated[Contact, Depends(current_contact)]
SignedInDep = Annotated[Principal, Depends(signed_in_principal)]
