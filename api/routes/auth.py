"""Sign-up, login, token refresh and logout."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from api.problems import responses
from api.tenancy import enter_tenant
from infra.ids import new_id
from tenants import errors, service
from tenants.schemas import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    SignupRequest,
    TenantSummary,
    TokenResponse,
)
from tenants.service import login_guard

router = APIRouter(prefix="/auth", tags=["auth"])

UserAgent = Annotated[str | None, Header(include_in_schema=False)]


def _tokens(issued: service.IssuedTokens) -> TokenResponse:
    return TokenResponse(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        tenant=TenantSummary(id=issued.tenant.id, slug=issued.tenant.slug, name=issued.tenant.name),
    )


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409, 429),
    summary="Create an agency and its owner",
)
async def signup(
    body: SignupRequest,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    user_agent: UserAgent = None,
) -> TokenResponse:
    # An existing account opens a second agency with its password: the same guessing limits.
    async with _password_check(resources, request, body.email):
        # The new agency's id is chosen here so the request enters it before its first rows.
        tenant_id = new_id()
        await enter_tenant(session, tenant_id)
        tenant, _, membership = await service.signup(
            session,
            resources.passwords,
            body,
            tenant_id=tenant_id,
            plan_id=resources.settings.default_plan,
        )
    issued = await service.start_session(
        session,
        resources.signer,
        resources.settings,
        tenant=tenant,
        membership=membership,
        user_agent=user_agent,
    )
    return _tokens(issued)


def _password_check(
    resources: ResourcesDep, request: Request, email: str
) -> AbstractAsyncContextManager[None]:
    """The shared guessing limits (`tenants.service.login_guard`), for this client."""
    return login_guard.password_check(
        resources.limiter,
        resources.settings,
        email=email,
        host=request.client.host if request.client else None,
    )


@router.post("/login", responses=responses(409, 429), summary="Log in with e-mail and password")
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    user_agent: UserAgent = None,
) -> TokenResponse:
    async with _password_check(resources, request, body.email):
        tenant, _, membership = await service.authenticate(
            session,
            resources.passwords,
            email=body.email,
            password=body.password,
            tenant_slug=body.tenant,
        )
    await enter_tenant(session, tenant.id)
    issued = await service.start_session(
        session,
        resources.signer,
        resources.settings,
        tenant=tenant,
        membership=membership,
        user_agent=user_agent,
    )
    return _tokens(issued)


@router.post("/refresh", summary="Trade a refresh token for new tokens (rotation)")
async def refresh(
    body: RefreshRequest, session: SessionDep, resources: ResourcesDep
) -> TokenResponse:
    presented = service.read_refresh_token(body.refresh_token)
    await enter_tenant(session, presented.tenant_id)
    try:
        issued = await service.refresh_tokens(
            session, resources.signer, resources.settings, presented
        )
    except errors.RefreshTokenReused:
        await session.commit()  # the family's revocation must stand although we refuse
        raise
    return _tokens(issued)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End this login: its refresh tokens and access tokens stop working",
)
async def logout(
    principal: CurrentPrincipal, session: SessionDep, body: LogoutRequest | None = None
) -> Response:
    await service.logout(session, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
