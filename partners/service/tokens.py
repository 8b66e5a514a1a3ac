"""The OAuth2 client-credentials grant (RFC 6749 §4.4) through authlib's server components,
and the partner principal behind each request made with such a token.

authlib's server is synchronous; the app is read from the database first (the tenant is in
the client id), then authlib authenticates the client, validates the grant and scope, and
shapes the response. The access token is our ES256 JWT naming the agency, the app and the
scopes; every request re-checks the app, so a revocation ends its tokens at once.
"""

from __future__ import annotations

import base64
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import unquote

import asyncpg
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.db import AttrRecord, for_driver
from infra.plans import Feature
from infra.security import TokenSigner, secrets_match
from infra.settings import Settings
from partners import errors
from partners.models import AppStatus, PartnerApp
from partners.scopes import ALL_SCOPES, parse_scopes
from partners.service.apps import parse_client_id
from tenants import errors as tenant_errors
from tenants.models import Role, Tenant
from tenants.principal import Principal
from tenants.standing import standing_of

PARTNER_KIND = "partner"


@dataclass(frozen=True)
class TokenRequest:
    """What arrived at the token endpoint, already parsed."""

    uri: str
    headers: Mapping[str, str]
    """Case-insensitive (Starlette's Headers): authlib reads `Authorization`."""
    form: dict[str, list[str]]


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: dict[str, list[str]]) -> None:
        self._datalist = defaultdict(list, form)
        self._data = {k: v[0] for k, v in form.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, token_request: TokenRequest) -> None:
        super().__init__("POST", token_request.uri, headers=token_request.headers)
        self.payload = _Payload(token_request.form)

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data

    @property
    def args(self) -> dict[str, str]:
        return {}


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, app: PartnerApp, now: datetime) -> None:
        self.app = app
        self._now = now

    def get_client_id(self) -> str:
        return self.app.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        if secrets_match(self.app.secret_hash, client_secret):
            return True
        previous, until = self.app.previous_secret_hash, self.app.previous_secret_expires_at
        if previous is None or until is None or until <= self._now:
            return False
        return secrets_match(previous, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(parse_scopes(scope) if scope else sorted(self.app.scopes))


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self) -> None:
        super().validate_requested_scope()  # unknown scopes: invalid_scope
        requested = set(parse_scopes(self.request.payload.scope))
        granted = set(self.request.client.app.scopes)
        if not requested <= granted:
            missing = ", ".join(sorted(requested - granted))
            raise InvalidScopeError(f"This partner app was not granted: {missing}.")


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, client: _Client | None, signer: TokenSigner, settings: Settings) -> None:
        super().__init__(scopes_supported=sorted(ALL_SCOPES))
        self._client = client
        self._signer = signer
        self._settings = settings
        self.register_grant(_ClientCredentials)
        self.register_token_generator("default", self._generate)

    def query_client(self, client_id: str) -> _Client | None:
        if self._client is not None and self._client.get_client_id() == client_id:
            return self._client
        return None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Tokens are self-contained JWTs: nothing to store (the app is checked per request)."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal listeners."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def _generate(
        self,
        grant_type: str,
        client: _Client,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        app = client.app
        granted = client.get_allowed_scope(scope)
        ttl = self._settings.partner_token_ttl_seconds
        access_token = self._signer.sign(
            {
                "sub": f"partner_app:{app.id}",
                "kind": PARTNER_KIND,
                "tid": str(app.tenant_id),
                "app": str(app.id),
                "client_id": app.client_id,
                "scope": granted,
                "jti": uuid.uuid4().hex,
            },
            audience=self._settings.jwt_audience,
            ttl_seconds=ttl,
        )
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": granted,
        }


def _refuse_malformed(request: TokenRequest) -> None:
    """What authlib leaves to the framework: RFC 6749 §3.2 (no parameter twice), §3.1 (an
    empty value is a missing one), and a Basic header that decodes to `id:secret`."""
    repeated = sorted(k for k, values in request.form.items() if len(values) > 1)
    if repeated:
        raise errors.OAuthError(
            400, "invalid_request", f"Send each parameter once: {', '.join(repeated)} repeated."
        )
    if not (request.form.get("grant_type") or [""])[0]:
        raise errors.OAuthError(400, "invalid_request", "grant_type is required.")
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic " or auth.strip().lower() == "basic":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        if ":" not in decoded:
            raise errors.OAuthError(
                401, "invalid_client", "The Basic credentials are not base64 of id:secret."
            )
        if "client_secret" in request.form:
            # §2.3: one authentication method per request.
            raise errors.OAuthError(
                400,
                "invalid_request",
                "Authenticate once: HTTP Basic or client_secret in the form, not both.",
            )


def presented_client_id(request: TokenRequest) -> str | None:
    """The client id from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded inside) or the form."""
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return unquote(decoded.partition(":")[0]) or None
    values = request.form.get("client_id") or []
    return values[0] if values else None


def presented_tenant(request: TokenRequest) -> uuid.UUID | None:
    """The agency the presented client id names, if it names one: the caller enters it
    before the app is looked up."""
    client_id = presented_client_id(request)
    parsed = parse_client_id(client_id) if client_id else None
    return parsed[0] if parsed is not None else None


async def issue_token(
    session: AsyncSession, signer: TokenSigner, settings: Settings, request: TokenRequest
) -> dict[str, Any]:
    """The caller has entered `presented_tenant(request)` when there is one."""
    _refuse_malformed(request)
    client: _Client | None = None
    client_id = presented_client_id(request)
    parsed = parse_client_id(client_id) if client_id else None
    tenant: Tenant | None = None
    if parsed is not None:
        tenant_id, app_id = parsed
        row = (
            await session.execute(
                select(PartnerApp, Tenant)
                .join(Tenant, col(Tenant.id) == col(PartnerApp.tenant_id))
                .where(
                    col(PartnerApp.tenant_id) == tenant_id,
                    col(PartnerApp.id) == app_id,
                    col(PartnerApp.status) == AppStatus.active.value,
                )
            )
        ).first()
        if row is not None:
            client = _Client(row[0], utcnow())
            tenant = row[1]
    server = _Server(client, signer, settings)
    status, body, _headers = server.create_token_response(_Request(request))
    if status != 200:
        body = dict(body)
        error = str(body.get("error", "invalid_request"))
        description = str(body.get("error_description") or "The token request is not valid.")
        if error == "invalid_client":
            # One answer for unknown, revoked and wrong-secret: nothing to enumerate.
            description = (
                "Client authentication failed: unknown client id, wrong or expired secret, "
                "or a revoked app."
            )
        raise errors.OAuthError(status, error, description)
    assert client is not None and tenant is not None
    if Feature.public_api not in settings.plan(tenant.plan_id).features:
        raise errors.OAuthError(
            400,
            "unauthorized_client",
            "The agency's plan does not include the public API; an owner can change plan "
            "through the billing settings.",
        )
    await session.execute(
        update(PartnerApp)
        .where(
            col(PartnerApp.tenant_id) == client.app.tenant_id,
            col(PartnerApp.id) == client.app.id,
        )
        .values(last_token_at=utcnow())
    )
    return dict(body)


_PARTNER_ROW = (
    sa_select(
        col(PartnerApp.scopes),
        col(PartnerApp.created_by),
        col(PartnerApp.created_by_membership),
        col(Tenant.timezone),
        col(Tenant.status),
        col(Tenant.past_due_since),
        col(Tenant.plan_id),
    )
    .join(Tenant, col(Tenant.id) == col(PartnerApp.tenant_id))
    .where(
        col(PartnerApp.tenant_id) == bindparam("tenant_id"),
        col(PartnerApp.id) == bindparam("app_id"),
        col(PartnerApp.status) == AppStatus.active.value,
    )
)
"""The one query each partner request runs: is the app still active, what is the agency's
standing and plan?"""
_PARTNER_ROW_ON_DRIVER = for_driver(_PARTNER_ROW)


def _token_app(claims: Mapping[str, Any]) -> tuple[uuid.UUID, set[str]]:
    try:
        return uuid.UUID(claims["app"]), set(parse_scopes(claims.get("scope")))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise tenant_errors.InvalidToken() from exc


async def load_partner_principal(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    claims: dict[str, Any],
    settings: Settings,
    *,
    request_id: str | None,
) -> Principal:
    """Who a partner app's request acts as. Scopes are the token's, narrowed to what the app
    holds now. The caller has entered `tenant_id`, the tenant the verified token names."""
    app_id, token_scopes = _token_app(claims)
    row = (await session.execute(_PARTNER_ROW, {"tenant_id": tenant_id, "app_id": app_id})).first()
    return _partner_principal(row, tenant_id, app_id, token_scopes, settings, request_id)


async def load_partner_principal_on_driver(
    connection: asyncpg.Connection,
    tenant_id: uuid.UUID,
    claims: dict[str, Any],
    settings: Settings,
    *,
    request_id: str | None,
) -> Principal:
    """`load_partner_principal` for a driver-level read transaction
    (`infra.db.Database.read_transaction`)."""
    app_id, token_scopes = _token_app(claims)
    statement = _PARTNER_ROW_ON_DRIVER
    row = await connection.fetchrow(
        statement.sql,
        *statement.args({"tenant_id": tenant_id, "app_id": app_id}),
        record_class=AttrRecord,
    )
    return _partner_principal(row, tenant_id, app_id, token_scopes, settings, request_id)


def _partner_principal(
    row: Any | None,
    tenant_id: uuid.UUID,
    app_id: uuid.UUID,
    token_scopes: set[str],
    settings: Settings,
    request_id: str | None,
) -> Principal:
    if row is None:
        raise tenant_errors.InvalidToken("This partner app was revoked; its tokens no longer work.")
    if Feature.public_api not in settings.plan(row.plan_id).features:
        raise errors.FeatureNotInPlan(
            "The agency's plan does not include the public API.", feature="public_api"
        )
    return Principal(
        tenant_id=tenant_id,
        user_id=row.created_by,
        membership_id=row.created_by_membership,
        session_id=app_id,
        role=Role.manager,
        timezone=row.timezone,
        request_id=request_id,
        kind=PARTNER_KIND,
        standing=standing_of(
            row.status,
            row.past_due_since,
            utcnow(),
            timedelta(days=settings.billing_grace_days),
        ).value,
        scopes=frozenset(token_scopes & set(row.scopes)),
        app_id=app_id,
    )
