"""Sign-up, login, token refresh and logout."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from api.problems import responses
from infra.errors import RateLimited
from infra.settings import parse_rate
from tenants import errors, service
from tenants.schemas import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    SignupRequest,
    TenantSummary,
    TokenResponse,
)

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
    responses=responses(409),
    summary="Create an agency and its owner",
)
async def signup(
    body: SignupRequest, session: SessionDep, resources: ResourcesDep, user_agent: UserAgent = None
) -> TokenResponse:
    tenant, _, membership = await service.signup(session, resources.passwords, body)
    issued = await service.start_session(
        session,
        resources.signer,
        resources.settings,
        tenant=tenant,
        membership=membership,
        user_agent=user_agent,
    )
    return _tokens(issued)


async def _limit_login(resources: ResourcesDep, request: Request, email: str) -> None:
    settings = resources.settings
    checks = (
        (
            "email",
            hashlib.sha256(email.lower().encode()).hexdigest(),
            settings.login_rate_limit_per_email,
        ),
        (
            "addr",
            request.client.host if request.client else "unknown",
            settings.login_rate_limit_per_address,
        ),
    )
    for kind, who, rate in checks:
        limit, window = parse_rate(rate)
        decision = await resources.limiter.hit(
            f"login:{kind}:{who}", limit=limit, window_seconds=window
        )
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "Too many login attempts.")


@router.post("/login", responses=responses(409, 429), summary="Log in with e-mail and password")
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    user_agent: UserAgent = None,
) -> TokenResponse:
    await _limit_login(resources, request, body.email)
    tenant, _, membership = await service.authenticate(
        session,
        resources.passwords,
        email=body.email,
        password=body.password,
        tenant_slug=body.tenant,
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


@router.post("/refresh", summary="Trade a refresh token for new tokens (rotation)")
async def refresh(
    body: RefreshRequest, session: SessionDep, resources: ResourcesDep
) -> TokenResponse:
    try:
        issued = await service.refresh_tokens(
            session, resources.signer, resources.settings, body.refresh_token
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
