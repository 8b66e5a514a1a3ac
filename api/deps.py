"""Dependencies that make route signatures read like sentences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

import asyncpg
import structlog
from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.tenancy import Door, driver_door, session_door
from infra.errors import RateLimited, UnsupportedMediaType
from infra.logging import get_logger
from infra.resources import Resources, request_transaction
from infra.security import InvalidToken as BadToken
from infra.settings import parse_rate
from partners import errors as partner_errors
from partners.scopes import OPERATION_SCOPES
from partners.service import tokens
from tenants import errors
from tenants.principal import Principal
from tenants.standing import Standing

log = get_logger(__name__)


def get_resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction (see `infra.resources.request_transaction`)."""
    async with request_transaction(get_resources(request)) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login")


def _verified_claims(
    resources: Resources, credentials: HTTPAuthorizationCredentials | None
) -> dict[str, Any]:
    if credentials is None:
        raise errors.InvalidToken("Send an access token: Authorization: Bearer <token>.")
    try:
        return resources.signer.verify(
            credentials.credentials, audience=resources.settings.jwt_audience
        )
    except BadToken as exc:
        raise errors.InvalidToken() from exc


async def _counted_claims(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> dict[str, Any]:
    """The verified token's claims; a partner app's request counted against its rate windows
    before any database work."""
    resources = get_resources(request)
    claims = _verified_claims(resources, credentials)
    if claims.get("kind") == tokens.PARTNER_KIND:
        await _count_partner_request(request, resources, claims)
    return claims


async def _enter(request: Request, claims: dict[str, Any], door: Door) -> Principal:
    """Enter the token's tenant through `door` (the request's session or a read transaction)
    and read who acts: a partner app within its scopes, or a person still signed in."""
    settings = get_resources(request).settings
    request_id = request.state.request_id
    if claims.get("kind") == tokens.PARTNER_KIND:
        tenant_id = await door.enter_claimed_tenant(claims)
        principal = await door.load_partner(tenant_id, claims, settings, request_id=request_id)
        _require_operation_scope(principal, _operation_of(request))
        who = f"partner_app:{principal.app_id}"
    else:
        principal = await door.enter_as_member(claims, settings, request_id=request_id)
        who = f"user:{principal.user_id}"
    _refuse_writes_when_read_only(request, principal)
    structlog.contextvars.bind_contextvars(tenant_id=str(principal.tenant_id), principal=who)
    return principal


async def get_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    claims = await _counted_claims(request, credentials)
    return await _enter(request, claims, session_door(session))


@dataclass(frozen=True)
class Reader:
    """Who reads, and the read-only transaction they read in: the request path of the hottest
    reads (the team list, a client's budget). The same checks as `get_principal`, on a pooled
    asyncpg connection in a READ ONLY transaction instead of an ORM session: the tenant and
    the principal in the transaction's first statement as there, then the route's own
    statements, with no SQLAlchemy session, transaction or result objects to build."""

    principal: Principal
    connection: asyncpg.Connection


async def get_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[Reader]:
    claims = await _counted_claims(request, credentials)
    async with get_resources(request).db.read_transaction() as connection:
        yield Reader(await _enter(request, claims, driver_door(connection)), connection)


CurrentReader = Annotated[Reader, Depends(get_reader, scope="function")]


def _operation_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "name", "") or ""


def _require_operation_scope(principal: Principal, operation: str) -> None:
    needed = OPERATION_SCOPES.get(operation)
    if needed is None:
        raise partner_errors.NotForPartners(
            f"Operation '{operation}' is for people signed in to the app, not partner tokens."
        )
    if needed.value not in (principal.scopes or ()):
        raise partner_errors.InsufficientScope(needed.value, operation)


def set_response_header(request: Request, name: str, value: str) -> None:
    headers: dict[str, str] = request.state._state.setdefault("response_headers", {})
    headers[name] = value


async def _count_partner_request(
    request: Request, resources: Resources, claims: dict[str, object]
) -> None:
    """Two sliding windows, the app's and the agency's; the headers show the tighter one
    (draft-ietf-httpapi-ratelimit-headers: RateLimit-Limit/-Remaining/-Reset)."""
    settings = resources.settings
    app_limit, app_window = parse_rate(settings.partner_rate_per_app)
    tenant_limit, tenant_window = parse_rate(settings.partner_rate_per_tenant)
    app_key, tenant_key = f"partner:app:{claims.get('app')}", f"partner:tenant:{claims.get('tid')}"
    by_app = await resources.limiter.hit(app_key, limit=app_limit, window_seconds=app_window)
    by_tenant = (
        await resources.limiter.hit(tenant_key, limit=tenant_limit, window_seconds=tenant_window)
        if by_app.allowed
        else None
    )
    shown, window = by_app, app_window
    if by_tenant is not None and (not by_tenant.allowed or by_tenant.remaining < by_app.remaining):
        shown, window = by_tenant, tenant_window
    set_response_header(request, "RateLimit-Limit", str(shown.limit))
    set_response_header(request, "RateLimit-Remaining", str(shown.remaining))
    set_response_header(request, "RateLimit-Reset", str(shown.retry_after or window))
    set_response_header(request, "RateLimit-Policy", f"{shown.limit};w={window}")
    if not shown.allowed:
        whose = "this partner app" if shown is by_app else "your agency's partner apps"
        raise RateLimited(
            shown.retry_after,
            f"Too many requests from {whose}: {shown.limit} per {window} seconds. "
            f"Try again in {shown.retry_after} seconds.",
        )


# Paying, logging out and refreshing a token stay open to an agency that cannot write.
_OPEN_WHEN_READ_ONLY = ("/v1/billing/", "/v1/auth/")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _refuse_writes_when_read_only(request: Request, principal: Principal) -> None:
    if principal.standing not in (Standing.suspended, Standing.canceled):
        return
    if request.method in _READS or request.url.path.startswith(_OPEN_WHEN_READ_ONLY):
        return
    if principal.standing == Standing.suspended:
        raise errors.SubscriptionSuspended(
            "The subscription is past due beyond its grace period. Everything stays readable; "
            "pay through POST /v1/billing/portal-session to write again."
        )
    raise errors.SubscriptionCanceled(
        "The subscription is canceled: data stays readable and exportable. Subscribe again "
        "through POST /v1/billing/checkout-session to write again."
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def parse_if_match(
    if_match: Annotated[
        str | None,
        Header(description='The ETag you read (for example "3"); 412 if it is stale'),
    ] = None,
) -> int | None:
    """Never refuses: a dependency runs before the body is validated, and a bad body must be
    a 422 whatever the If-Match. An ETag this API never gave matches no version, so the
    service's version check answers 412 after the body passed."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 18:
        return UNKNOWN_ETAG
    return int(value)


# No object ever has this version.
UNKNOWN_ETAG = -1


IfMatch = Annotated[int | None, Depends(parse_if_match)]


def etag(version: int) -> str:
    return f'"{version}"'


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


def tagged(response: Response, obj: V) -> V:
    """Every answer with a versioned object carries its version as the ETag, the value a later
    write sends back as If-Match."""
    response.headers["ETag"] = etag(obj.version)
    return obj


async def require_json(request: Request) -> None:
    """Bodies are JSON; anything else is refused before parsing."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if not has_body:
        return
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json.")
