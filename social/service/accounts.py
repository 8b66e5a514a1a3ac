"""Connecting social accounts (OAuth2 authorization code with PKCE and a signed state),
reading and pausing them, and asking for a sync now."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from sqlalchemy import Select, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.errors import PreconditionFailed
from infra.errors import RateLimited as TooManyRequests
from infra.pagination import Keyset, Page, SortKey
from infra.queue import enqueue_after_commit, job_exists
from infra.security import InvalidToken, TokenSigner
from infra.settings import Settings, parse_rate
from social import errors
from social.connectors.types import (
    ConnectorError,
    Platform,
    PlatformUnavailable,
    TokenInvalid,
    TokenSet,
)
from social.kit import SocialKit
from social.models import AccountStatus, SocialAccount, SocialConnection
from social.schemas import ConnectStart, MetricError, SocialAccountRead, SyncRequested
from tenants.errors import BrandArchived, BrandNotFound, PlanLimit
from tenants.models import Brand, Tenant
from tenants.policy import Resource, Scope, Verb
from tenants.principal import Principal
from tenants.service.common import bump, load_readable, require_scope
from tenants.service.directory import brand_visibility, today_for

STATE_AUDIENCE = "passerelle-oauth-state"
CONNECTION_TTL = timedelta(minutes=15)
SYNC_JOB = "sync_social_account"


def account_read(account: SocialAccount) -> SocialAccountRead:
    return SocialAccountRead(
        id=account.id,
        brand_id=account.brand_id,
        platform=Platform(account.platform),
        external_id=account.external_id,
        handle=account.handle,
        display_name=account.display_name,
        status=account.status,
        last_success_at=account.last_success_at,
        last_error=account.last_error,
        last_error_at=account.last_error_at,
        next_sync_at=account.next_sync_at if account.status != AccountStatus.paused else None,
        metric_errors={k: MetricError(**v) for k, v in account.metric_errors.items()},
        connected_at=account.connected_at,
        version=account.version,
    )


def sync_job_id(account_id: uuid.UUID, due: datetime | str) -> str:
    """One job per account and due time: the scheduler enqueuing it again changes nothing."""
    stamp = due if isinstance(due, str) else str(int(due.timestamp()))
    return f"social-sync:{account_id}:{stamp}"


async def visible_brand(
    session: AsyncSession, principal: Principal, brand_id: uuid.UUID, verb: Verb
) -> Brand:
    scope = require_scope(principal, Resource.social_account, verb)
    brand = (
        await session.scalars(
            select(Brand).where(
                Brand.tenant_id == principal.tenant_id,
                Brand.id == brand_id,
                brand_visibility(principal, scope, today_for(principal)),
            )
        )
    ).first()
    if brand is None:
        raise BrandNotFound()
    return brand


def readable_accounts(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """Accounts of the brands this principal reaches."""
    scope: Scope = require_scope(principal, Resource.social_account, verb)
    return (
        select(SocialAccount)
        .join(
            Brand,
            (col(Brand.tenant_id) == col(SocialAccount.tenant_id))
            & (col(Brand.id) == col(SocialAccount.brand_id)),
        )
        .where(
            SocialAccount.tenant_id == principal.tenant_id,
            brand_visibility(principal, scope, today_for(principal)),
        )
    )


async def load_account(
    session: AsyncSession,
    principal: Principal,
    account_id: uuid.UUID,
    verb: Verb,
    *,
    lock: bool = False,
) -> SocialAccount:
    account: SocialAccount = await load_readable(
        session,
        readable_accounts(principal, verb).where(col(SocialAccount.id) == account_id),
        lock=lock,
        lock_of=SocialAccount,
        missing=errors.SocialAccountNotFound(),
    )
    return account


# --- connecting ---------------------------------------------------------------------------


def redirect_uri(settings: Settings, platform: Platform) -> str:
    return f"{settings.public_base_url}/v1/oauth/callback/{platform.value}"


def _oauth_client(kit: SocialKit, platform: Platform, uri: str) -> AsyncOAuth2Client:
    app = kit.settings.social_clients.get(platform.value)
    if app is None:
        raise errors.PlatformNotConfigured(
            f"Set SOCIAL_CLIENTS for {platform.value} to connect its accounts."
        )
    connector = kit.connector(platform)
    return AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret.get_secret_value(),
        scope=getattr(connector, "scope_separator", " ").join(connector.scopes),
        token_endpoint_auth_method=getattr(
            connector, "token_endpoint_auth_method", "client_secret_basic"
        ),
        redirect_uri=uri,
        code_challenge_method="S256",
        timeout=kit.settings.social_http_timeout_seconds,
    )


async def start_connection(
    session: AsyncSession,
    principal: Principal,
    kit: SocialKit,
    signer: TokenSigner,
    brand_id: uuid.UUID,
    platform: Platform,
) -> ConnectStart:
    brand = await visible_brand(session, principal, brand_id, Verb.create)
    if brand.status != "active":
        raise BrandArchived("Restore the brand before connecting its accounts.")
    vault = kit.vault
    connector = kit.connector(platform)
    verifier = generate_token(64)
    uri = redirect_uri(kit.settings, platform)
    now = utcnow()
    connection = SocialConnection(
        tenant_id=principal.tenant_id,
        brand_id=brand.id,
        platform=platform.value,
        membership_id=principal.membership_id,
        code_verifier=vault.encrypt(verifier) or b"",
        redirect_uri=uri,
        expires_at=now + CONNECTION_TTL,
    )
    session.add(connection)
    # The state is signed: a callback can only complete a connection this API started, for
    # the agency, brand and platform it was started for, within its lifetime.
    state = signer.sign(
        {"sub": str(connection.id), "tid": str(principal.tenant_id), "plt": platform.value},
        audience=STATE_AUDIENCE,
        ttl_seconds=int(CONNECTION_TTL.total_seconds()),
    )
    if platform is Platform.sandbox:
        # No platform to visit: the demo's "consent" comes straight back to our callback.
        url = f"{uri}?code=sandbox-{generate_token(24)}&state={state}"
    else:
        client = _oauth_client(kit, platform, uri)
        extra: dict[str, Any] = dict(getattr(connector, "extra_authorize_params", {}) or {})
        url, _ = client.create_authorization_url(
            connector.authorize_url, state=state, code_verifier=verifier, **extra
        )
        await client.aclose()
    await session.flush()
    return ConnectStart(authorization_url=url, expires_at=connection.expires_at)


async def _exchange(
    kit: SocialKit, platform: Platform, code: str, verifier: str, uri: str
) -> TokenSet:
    connector = kit.connector(platform)
    if platform is Platform.sandbox:
        return await connector.exchange(code)  # type: ignore[attr-defined,no-any-return]
    client = _oauth_client(kit, platform, uri)
    extra: dict[str, Any] = dict(getattr(connector, "extra_token_params", {}) or {})
    try:
        token = await client.fetch_token(
            connector.token_url, code=code, code_verifier=verifier, **extra
        )
    except OAuthError as exc:
        raise errors.OAuthExchangeFailed(
            f"{platform.value} answered {exc.error or 'an error'} to the authorization code."
        ) from None
    except Exception as exc:  # network failures: the platform is unreachable, not the user
        raise errors.PlatformUnreachable(f"{platform.value} could not be reached.") from exc
    finally:
        await client.aclose()
    expires_at = token.get("expires_at")
    return TokenSet(
        access_token=str(token["access_token"]),
        refresh_token=token.get("refresh_token"),
        expires_at=datetime.fromtimestamp(expires_at, tz=utcnow().tzinfo) if expires_at else None,
        scope=token.get("scope"),
    )


async def _ensure_account_slot(
    session: AsyncSession, tenant_id: uuid.UUID, settings: Settings
) -> None:
    """Locking the tenant row serializes connections, so two cannot take the last slot."""
    plan_id = await session.scalar(
        select(Tenant.plan_id).where(Tenant.id == tenant_id).with_for_update()
    )
    limit = settings.plan(plan_id or "").max_social_accounts
    if limit is None:
        return
    used = await session.scalar(
        select(func.count()).select_from(SocialAccount).where(SocialAccount.tenant_id == tenant_id)
    )
    if (used or 0) >= limit:
        raise PlanLimit(
            f"Your plan allows {limit} social accounts and you have {used}. Remove one or "
            "change plan.",
            limit={"name": "max_social_accounts", "value": limit, "in_use": used},
        )


@dataclass(frozen=True)
class OAuthState:
    """What a verified OAuth state names; the caller enters its tenant before completing."""

    tenant_id: uuid.UUID
    connection_id: uuid.UUID


def read_state(signer: TokenSigner, platform: Platform, state: str | None) -> OAuthState:
    if not state:
        raise errors.InvalidOAuthState("The state parameter is missing.")
    try:
        claims = signer.verify(state, audience=STATE_AUDIENCE)
        connection_id = uuid.UUID(str(claims["sub"]))
        tenant_id = uuid.UUID(str(claims["tid"]))
    except (InvalidToken, KeyError, ValueError):
        raise errors.InvalidOAuthState("The state is not one we issued, or it expired.") from None
    if claims.get("plt") != platform.value:
        raise errors.InvalidOAuthState("The state was issued for another platform.")
    return OAuthState(tenant_id, connection_id)


async def complete_connection(
    session: AsyncSession,
    db: Database,
    kit: SocialKit,
    platform: Platform,
    state: OAuthState,
    *,
    code: str | None,
    error: str | None,
    request_id: str | None = None,
) -> SocialAccountRead:
    """The caller has entered `state.tenant_id`."""
    tenant_id, connection_id = state.tenant_id, state.connection_id
    if error:
        # Its own transaction: the refusal below rolls the request's back, and a refused
        # connection must stay used so its state cannot be tried again with a code.
        async with db.tenant_transaction(tenant_id) as own:
            closed = await own.execute(
                update(SocialConnection)
                .where(
                    col(SocialConnection.tenant_id) == tenant_id,
                    col(SocialConnection.id) == connection_id,
                    col(SocialConnection.used_at).is_(None),
                    col(SocialConnection.expires_at) > utcnow(),
                )
                .values(used_at=utcnow())
            )
        if closed.rowcount != 1:  # type: ignore[attr-defined]
            raise errors.InvalidOAuthState("This connection was already completed or has expired.")
        raise errors.OAuthDenied(f"{platform.value} answered: {error[:100]}.")
    connection = (
        await session.scalars(
            select(SocialConnection)
            .where(SocialConnection.tenant_id == tenant_id, SocialConnection.id == connection_id)
            .with_for_update()
        )
    ).first()
    now = utcnow()
    if connection is None or connection.used_at is not None or connection.expires_at <= now:
        raise errors.InvalidOAuthState("This connection was already completed or has expired.")
    if not code:
        raise errors.InvalidOAuthState("The code parameter is missing.")

    vault = kit.vault
    verifier = vault.decrypt(connection.code_verifier) or ""
    tokens = await _exchange(kit, platform, code, verifier, connection.redirect_uri)
    try:
        profile = await kit.connector(platform).profile(tokens, None)
    except TokenInvalid:
        raise errors.OAuthExchangeFailed(f"{platform.value} refused the new token.") from None
    except (PlatformUnavailable, ConnectorError) as exc:
        raise errors.PlatformUnreachable(str(exc)) from None

    account = (
        await session.scalars(
            select(SocialAccount)
            .where(
                SocialAccount.tenant_id == tenant_id,
                SocialAccount.platform == platform.value,
                SocialAccount.external_id == profile.external_id,
            )
            .with_for_update()
        )
    ).first()
    if account is not None and account.brand_id != connection.brand_id:
        raise errors.AccountOwnedElsewhere(
            "Disconnect it from its brand first, or connect another account."
        )
    created = account is None
    if account is None:
        await _ensure_account_slot(session, tenant_id, kit.settings)
        account = SocialAccount(
            tenant_id=tenant_id,
            brand_id=connection.brand_id,
            platform=platform.value,
            external_id=profile.external_id,
            connected_by=connection.membership_id,
        )
        session.add(account)
    else:
        bump(account, at=now)
    account.handle = profile.handle
    account.display_name = profile.display_name
    account.access_token = vault.encrypt(tokens.access_token)
    # Some platforms hand out a refresh token only on the first consent: a reconnect that
    # brings none must keep the one we hold, which still works.
    refresh_token = tokens.refresh_token
    if refresh_token is None and getattr(
        kit.connector(platform), "refresh_uses_access_token", False
    ):
        # Meta has no refresh token: a long-lived token is exchanged for a new one instead.
        refresh_token = tokens.access_token
    if refresh_token:
        account.refresh_token = vault.encrypt(refresh_token)
    account.token_expires_at = tokens.expires_at
    account.token_scope = tokens.scope
    account.status = AccountStatus.connected
    account.last_error = None
    account.next_sync_at = now
    account.connected_at = now
    account.updated_at = now
    connection.used_at = now
    connection.account_id = account.id
    await session.flush()
    outbox.record_event(
        session,
        tenant_id=tenant_id,
        type="social_account.connected" if created else "social_account.reconnected",
        aggregate_type="social_account",
        aggregate_id=account.id,
        payload={
            "account_id": str(account.id),
            "brand_id": str(account.brand_id),
            "platform": platform.value,
            "handle": account.handle,
        },
        request_id=request_id,
    )
    enqueue_after_commit(
        session,
        SYNC_JOB,
        str(tenant_id),
        str(account.id),
        job_id=sync_job_id(account.id, f"connect-{connection.id}"),
    )
    return account_read(account)


# --- reading and changing -----------------------------------------------------------------


# By platform, then handle (accounts not yet named last).
ACCOUNT_ORDER = Keyset(
    "accounts",
    (
        SortKey(col(SocialAccount.platform), lambda a: a.platform),
        SortKey(col(SocialAccount.handle), lambda a: a.handle, nullable=True),
        SortKey(col(SocialAccount.id), lambda a: a.id, uuid.UUID),
    ),
)


async def list_accounts(
    session: AsyncSession,
    principal: Principal,
    brand_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[SocialAccountRead]:
    await visible_brand(session, principal, brand_id, Verb.read)
    query = select(SocialAccount).where(
        SocialAccount.tenant_id == principal.tenant_id, SocialAccount.brand_id == brand_id
    )
    query = ACCOUNT_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = ACCOUNT_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[account_read(a) for a in rows], next_cursor=next_page)


async def get_account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> SocialAccountRead:
    return account_read(await load_account(session, principal, account_id, Verb.read))


async def set_status(
    session: AsyncSession,
    principal: Principal,
    account_id: uuid.UUID,
    status: str,
    *,
    if_match: int | None,
) -> SocialAccountRead:
    account = await load_account(session, principal, account_id, Verb.update, lock=True)
    if if_match is not None and if_match != account.version:
        raise PreconditionFailed("The account changed since you read it; read it again.")
    if status == AccountStatus.connected and account.status == AccountStatus.needs_reauth:
        raise errors.ReconnectNeeded(
            "The platform refused this account's token: connect it again to resume."
        )
    if status != account.status:
        account.status = status
        bump(account)
        if status == AccountStatus.connected:
            account.next_sync_at = utcnow()
        await session.flush()
    return account_read(account)


async def disconnect(session: AsyncSession, principal: Principal, account_id: uuid.UUID) -> None:
    """Forget the account, its tokens and its history (pause it to keep the history)."""
    account = await load_account(session, principal, account_id, Verb.update, lock=True)
    await session.delete(account)
    await session.flush()


async def request_sync(
    session: AsyncSession,
    principal: Principal,
    kit: SocialKit,
    limiter: Any,
    queue: Any,
    account_id: uuid.UUID,
) -> SyncRequested:
    account = await load_account(session, principal, account_id, Verb.update)
    if account.status not in (AccountStatus.connected, AccountStatus.error):
        raise errors.AccountNotSyncable(
            f"The account is {account.status}: "
            + (
                "connect it again first."
                if account.status == AccountStatus.needs_reauth
                else "resume it first."
            )
        )
    count, window = parse_rate(kit.settings.social_sync_now_rate)
    decision = await limiter.hit(
        f"social-sync-now:{account.id}", limit=count, window_seconds=window
    )
    if not decision.allowed:
        raise TooManyRequests(
            decision.retry_after,
            f"This account was synced on request {count} times in {window} s; "
            f"try again in {decision.retry_after} s.",
        )
    job_id = sync_job_id(account.id, f"now-{int(utcnow().timestamp()) // 60}")
    # Like every job a request starts, it leaves after the commit; one already waiting under
    # this id would not be queued again, which the answer says.
    waiting = await job_exists(queue, job_id)
    if not waiting:
        enqueue_after_commit(
            session, SYNC_JOB, str(principal.tenant_id), str(account.id), job_id=job_id
        )
    return SyncRequested(account_id=account.id, queued=not waiting)


# Read by other packages (billing's seat figures, the content edge), so that none of them reads
# the social_accounts table itself.


async def count_accounts(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """Connected or not: every account the agency holds, as its plan counts them."""
    used = await session.scalar(
        select(func.count()).select_from(SocialAccount).where(SocialAccount.tenant_id == tenant_id)
    )
    return used or 0


async def accounts_of_brand(
    session: AsyncSession, tenant_id: uuid.UUID, brand_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these ids are accounts of this brand (whatever their status)."""
    rows = await session.scalars(
        select(SocialAccount.id).where(
            SocialAccount.tenant_id == tenant_id,
            SocialAccount.brand_id == brand_id,
            col(SocialAccount.id).in_(list(ids)),
        )
    )
    return set(rows)
