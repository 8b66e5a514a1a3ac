"""Partner apps (owners and admins) and the OAuth2 token endpoint partners call."""

import uuid
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from api.deps import CurrentPrincipal, IfMatch, ResourcesDep, SessionDep, tagged
from api.problems import responses
from api.tenancy import enter_tenant
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from infra.ratelimit import FailureLimits, address_key
from infra.settings import parse_rate
from partners import errors
from partners.schemas import (
    PartnerAppCreate,
    PartnerAppCreated,
    PartnerAppRead,
    PartnerAppUpdate,
    SecretRotation,
    TokenResponse,
)
from partners.scopes import ALL_SCOPES
from partners.service import apps, tokens

router = APIRouter(prefix="/partner-apps", tags=["partner apps"])


@router.get("", summary="List the agency's partner apps (owners and admins)")
async def list_partner_apps(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[PartnerAppRead]:
    return await apps.list_apps(session, principal, cursor=cursor, limit=limit)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a partner app: answers its client id and secret (the secret only now)",
)
async def create_partner_app(
    body: PartnerAppCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> PartnerAppCreated:
    created = await apps.create_app(session, principal, body)
    tagged(response, created)
    response.headers["Cache-Control"] = "no-store"
    return created


@router.get("/{app_id}", summary="Read a partner app (never its secret)")
async def get_partner_app(
    app_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> PartnerAppRead:
    return tagged(response, apps.read(await apps.get_app(session, principal, app_id)))


@router.patch(
    "/{app_id}", responses=responses(409, 412), summary="Rename a partner app or change its scopes"
)
async def update_partner_app(
    app_id: uuid.UUID,
    body: PartnerAppUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> PartnerAppRead:
    app = await apps.update_app(session, principal, app_id, body, if_match)
    return tagged(response, apps.read(app))


@router.post(
    "/{app_id}/rotate-secret",
    responses=responses(409, 412),
    summary="New secret; the old one keeps working for the overlap window",
)
async def rotate_partner_app_secret(
    app_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
    body: SecretRotation | None = None,
) -> PartnerAppCreated:
    rotated = await apps.rotate_secret(
        session, principal, app_id, body or SecretRotation(), if_match, resources.settings
    )
    tagged(response, rotated)
    response.headers["Cache-Control"] = "no-store"
    return rotated


@router.delete(
    "/{app_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(412),
    summary="Revoke a partner app: its secret and every token it holds stop working at once",
)
async def revoke_partner_app(
    app_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, if_match: IfMatch
) -> None:
    await apps.revoke_app(session, principal, app_id, if_match)


# ---------------------------------------------------------------------------------------------
# The token endpoint: form-encoded (RFC 6749), so outside the JSON-only /v1 router.

oauth_router = APIRouter(tags=["partner apps"])

_TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "scope": {
                            "type": "string",
                            "description": "Space-separated; default: every scope of the app. "
                            "Known scopes: " + ", ".join(sorted(ALL_SCOPES)),
                        },
                        "client_id": {
                            "type": "string",
                            "description": "With client_secret, unless sent as HTTP Basic",
                        },
                        "client_secret": {"type": "string"},
                    },
                }
            }
        },
    }
}

_MAX_FORM_BYTES = 8192


@oauth_router.post(
    "/oauth/token",
    openapi_extra=_TOKEN_FORM,
    responses=responses(400, 401, 429),
    summary="OAuth2 client credentials (RFC 6749 §4.4): a partner app's access token",
)
async def issue_token(
    request: Request, session: SessionDep, resources: ResourcesDep
) -> TokenResponse:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise errors.OAuthError(
            400, "invalid_request", "Send the token request as application/x-www-form-urlencoded."
        )
    raw = await request.body()
    if len(raw) > _MAX_FORM_BYTES:
        raise errors.OAuthError(400, "invalid_request", "The token request is too large.")
    try:
        form = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise errors.OAuthError(400, "invalid_request", "The form is not valid UTF-8.") from None
    request_ = tokens.TokenRequest(
        uri=f"{resources.settings.public_base_url.rstrip('/')}/v1/oauth/token",
        headers=request.headers,
        form=form,
    )
    client_id = tokens.presented_client_id(request_) or "anonymous"
    # Only failed client authentications count, per client id and address: a stranger who
    # knows a client id cannot stop its partner from getting tokens (secrets are too long to
    # guess, so there is no per-client-id slowdown).
    admission = await resources.limiter.admit_check(
        "oauth-token",
        subject=client_id[:100],
        address=address_key(request.client.host if request.client else None),
        limits=FailureLimits(per_pair=parse_rate(resources.settings.partner_token_rate)),
    )
    if not admission.allowed:
        raise errors.OAuthError(
            429,
            "slow_down",
            f"Too many failed token requests for this client; "
            f"try again in {admission.retry_after} s.",
            headers_extra={"Retry-After": str(admission.retry_after)},
        )
    try:
        tenant_id = tokens.presented_tenant(request_)
        if tenant_id is not None:
            await enter_tenant(session, tenant_id)
        body = await tokens.issue_token(session, resources.signer, resources.settings, request_)
    except errors.OAuthError as exc:
        if exc.extra.get("error") == "invalid_client":
            await admission.failed()
        else:
            await admission.not_checked()
        raise
    except Exception:
        await admission.not_checked()
        raise
    await admission.succeeded()
    return JSONResponse(  # type: ignore[return-value]
        body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )
