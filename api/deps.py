"""Dependencies that make route signatures read like sentences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from infra import outbox
from infra.errors import PreconditionFailed, UnsupportedMediaType
from infra.logging import get_logger
from infra.queue import run_after_commit
from infra.resources import Resources
from infra.security import InvalidToken as BadToken
from tenants import errors, service
from tenants.principal import Principal
from tenants.standing import Standing

log = get_logger(__name__)


def get_resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed when the route returns, before the response
    is sent (function scope); rolled back on any error. Jobs are enqueued only after commit."""
    resources = get_resources(request)
    async with resources.db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        try:
            await outbox.dispatch_after_commit(session, resources.queue)
            await run_after_commit(session, resources.queue)
        except Exception:  # the outbox sweeper delivers what could not be enqueued now
            log.warning("outbox.enqueue_failed", exc_info=True)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login")


async def get_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise errors.InvalidToken("Send an access token: Authorization: Bearer <token>.")
    resources = get_resources(request)
    try:
        claims = resources.signer.verify(
            credentials.credentials, audience=resources.settings.jwt_audience
        )
    except BadToken as exc:
        raise errors.InvalidToken() from exc
    principal = await service.load_principal(session, claims, request_id=request.state.request_id)
    _refuse_writes_when_read_only(request, principal)
    structlog.contextvars.bind_contextvars(
        tenant_id=str(principal.tenant_id), principal=f"user:{principal.user_id}"
    )
    return principal


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
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise PreconditionFailed('If-Match must be an ETag this API gave you, such as "3".')
    return int(value)


IfMatch = Annotated[int | None, Depends(parse_if_match)]


def etag(version: int) -> str:
    return f'"{version}"'


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
