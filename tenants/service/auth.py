"""Sign-up, login, tokens and the principal of each request."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.db import set_acting_user
from infra.i18n import language
from infra.ids import new_id
from infra.security import (
    Passwords,
    TokenSigner,
    hash_secret,
    new_secret,
    secrets_match,
)
from infra.settings import Settings
from tenants import errors
from tenants.models import (
    AuthSession,
    Membership,
    MembershipStatus,
    RefreshToken,
    Role,
    Tenant,
    User,
)
from tenants.principal import Principal
from tenants.schemas import (
    SignupRequest,
)
from tenants.service.common import record_audit
from tenants.standing import standing_of

# ---------------------------------------------------------------------------------------------
# Sign-up, login and tokens


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    tenant: Tenant


def _encode_refresh(tenant_id: uuid.UUID, token_id: uuid.UUID, secret: str) -> str:
    prefix = base64.urlsafe_b64encode(tenant_id.bytes + token_id.bytes).decode().rstrip("=")
    return f"{prefix}.{secret}"


def _decode_refresh(token: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    try:
        prefix, secret = token.split(".", 1)
        raw = base64.urlsafe_b64decode(prefix + "=" * (-len(prefix) % 4))
    except (ValueError, binascii.Error) as exc:
        raise errors.InvalidRefreshToken() from exc
    if len(raw) != 32 or not secret:
        raise errors.InvalidRefreshToken()
    return uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:]), secret


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.scalars(select(User).where(func.lower(User.email) == email.lower()))
    return result.first()


async def signup(
    session: AsyncSession,
    passwords: Passwords,
    data: SignupRequest,
    *,
    tenant_id: uuid.UUID,
    plan_id: str,
) -> tuple[Tenant, User, Membership]:
    """Create an agency and its owner. A person with an account may open a second agency.

    The new agency takes `tenant_id`, which the caller has already entered: its owner's
    membership and the audit event are rows of that tenant. It starts on `plan_id` (the
    install's DEFAULT_PLAN, until Stripe or an operator says otherwise)."""
    if (await session.scalars(select(Tenant.id).where(Tenant.slug == data.slug))).first():
        raise errors.SlugTaken(f"'{data.slug}' is already used by another agency.")
    user = await find_user_by_email(session, data.email)
    if user is not None and user.password_hash is not None:
        if not await passwords.verify(user.password_hash, data.password):
            raise errors.EmailTaken()
    elif user is not None:
        # A placeholder made by an invitation: signing up claims it.
        user.name = data.owner_name
        user.password_hash = await passwords.hash(data.password)
        user.updated_at = utcnow()
    else:
        user = User(
            email=data.email,
            name=data.owner_name,
            password_hash=await passwords.hash(data.password),
            locale=language(data.locale),
        )
        session.add(user)
    tenant = Tenant(
        id=tenant_id,
        slug=data.slug,
        name=data.agency_name,
        timezone=data.timezone,
        locale=data.locale,
        currency=data.currency,
        plan_id=plan_id,
    )
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent sign-up took the slug or the e-mail
        raise errors.SlugTaken(f"'{data.slug}' is already used by another agency.") from exc
    membership = Membership(tenant_id=tenant.id, user_id=user.id, role=Role.owner)
    session.add(membership)
    record_audit(
        session,
        tenant_id=tenant.id,
        actor=None,
        actor_id=user.id,
        action="tenant.created",
        subject_type="tenant",
        subject_id=tenant.id,
        changes={"slug": data.slug, "name": data.agency_name, "plan_id": plan_id},
    )
    await session.flush()
    return tenant, user, membership


async def authenticate(
    session: AsyncSession,
    passwords: Passwords,
    *,
    email: str,
    password: str,
    tenant_slug: str | None,
) -> tuple[Tenant, User, Membership]:
    """Check credentials; wrong e-mail and wrong password fail alike and cost the same.
    The caller enters the tenant of the membership chosen before starting a session."""
    user = await find_user_by_email(session, email)
    valid = await passwords.verify(user.password_hash if user else None, password)
    if user is None or not valid:
        raise errors.InvalidCredentials()
    await set_acting_user(session, user.id)
    rows = (
        await session.execute(
            select(Membership, Tenant)
            .join(Tenant, Tenant.id == Membership.tenant_id)  # type: ignore[arg-type]
            .where(Membership.user_id == user.id, Membership.status == MembershipStatus.active)
            .order_by(Tenant.name)
        )
    ).all()
    if tenant_slug is not None:
        rows = [r for r in rows if r[1].slug == tenant_slug]
    if not rows:
        raise errors.InvalidCredentials()
    if len(rows) > 1:
        raise errors.TenantRequired(
            tenants=[{"slug": t.slug, "name": t.name} for _, t in rows],
        )
    membership, tenant = rows[0]
    return tenant, user, membership


async def start_session(
    session: AsyncSession,
    signer: TokenSigner,
    settings: Settings,
    *,
    tenant: Tenant,
    membership: Membership,
    user_agent: str | None,
) -> IssuedTokens:
    auth_session = AuthSession(
        tenant_id=tenant.id,
        user_id=membership.user_id,
        membership_id=membership.id,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(auth_session)
    await session.flush()
    return await _issue(session, signer, settings, tenant, membership, auth_session.id)


async def _issue(
    session: AsyncSession,
    signer: TokenSigner,
    settings: Settings,
    tenant: Tenant,
    membership: Membership,
    session_id: uuid.UUID,
) -> IssuedTokens:
    secret = new_secret()
    refresh = RefreshToken(
        tenant_id=tenant.id,
        session_id=session_id,
        token_hash=hash_secret(secret),
        expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    session.add(refresh)
    await session.flush()
    access = signer.sign(
        {
            "sub": str(membership.user_id),
            "tid": str(tenant.id),
            "mid": str(membership.id),
            "sid": str(session_id),
            "role": membership.role,
            "jti": str(new_id()),
        },
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    return IssuedTokens(
        access_token=access,
        refresh_token=_encode_refresh(tenant.id, refresh.id, secret),
        expires_in=settings.access_token_ttl_seconds,
        tenant=tenant,
    )


@dataclass(frozen=True)
class PresentedRefresh:
    """What a refresh token names, read before any lookup so the caller can enter its tenant."""

    tenant_id: uuid.UUID
    token_id: uuid.UUID
    secret: str


def read_refresh_token(token: str) -> PresentedRefresh:
    tenant_id, token_id, secret = _decode_refresh(token)
    return PresentedRefresh(tenant_id, token_id, secret)


async def refresh_tokens(
    session: AsyncSession, signer: TokenSigner, settings: Settings, presented: PresentedRefresh
) -> IssuedTokens:
    """Rotate: the presented token is spent. Presenting a spent one revokes its whole family.
    The caller has entered the token's tenant.

    On reuse this raises *after* revoking; the caller must commit before answering.
    """
    tenant_id, token_id, secret = presented.tenant_id, presented.token_id, presented.secret
    stored = await session.get(RefreshToken, (tenant_id, token_id))
    if stored is None or not secrets_match(stored.token_hash, secret):
        raise errors.InvalidRefreshToken()
    now = utcnow()
    spent = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.tenant_id == tenant_id,  # type: ignore[arg-type]
            RefreshToken.id == token_id,  # type: ignore[arg-type]
            RefreshToken.used_at.is_(None),  # type: ignore[union-attr]
        )
        .values(used_at=now)
        .returning(col(RefreshToken.id))
    )
    if spent.first() is None:
        await revoke_session(session, tenant_id, stored.session_id, reason="refresh_reuse")
        raise errors.RefreshTokenReused()
    if stored.expires_at <= now:
        raise errors.InvalidRefreshToken("The refresh token has expired; log in again.")
    row = (
        await session.execute(
            select(AuthSession, Membership, Tenant)
            .join(
                Membership,
                (Membership.tenant_id == AuthSession.tenant_id)  # type: ignore[arg-type]
                & (Membership.id == AuthSession.membership_id),
            )
            .join(Tenant, Tenant.id == AuthSession.tenant_id)  # type: ignore[arg-type]
            .where(AuthSession.tenant_id == tenant_id, AuthSession.id == stored.session_id)
        )
    ).first()
    if row is None:
        raise errors.InvalidRefreshToken()
    auth_session, membership, tenant = row
    if auth_session.revoked_at is not None or membership.status != MembershipStatus.active:
        raise errors.InvalidRefreshToken("This session has ended; log in again.")
    return await _issue(session, signer, settings, tenant, membership, auth_session.id)


async def revoke_session(
    session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID, *, reason: str
) -> None:
    await session.execute(
        update(AuthSession)
        .where(
            AuthSession.tenant_id == tenant_id,  # type: ignore[arg-type]
            AuthSession.id == session_id,  # type: ignore[arg-type]
            AuthSession.revoked_at.is_(None),  # type: ignore[union-attr]
        )
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def logout(session: AsyncSession, principal: Principal) -> None:
    await revoke_session(session, principal.tenant_id, principal.session_id, reason="logout")


# Built once: this runs on every authenticated request. Executed on the session's connection,
# skipping the ORM layer, since it only reads two columns.
@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who a verified access token (or portal session) names: the edge enters `tenant_id` and
    reads the member in one round trip (`infra.db.enter_tenant_as_member`)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    session_id: uuid.UUID


def signed_in(claims: Mapping[str, Any]) -> SignedIn:
    """The ids a verified token names; a token without valid ones is not one of ours."""
    try:
        return SignedIn(
            tenant_id=uuid.UUID(str(claims["tid"])),
            user_id=uuid.UUID(str(claims["sub"])),
            membership_id=uuid.UUID(str(claims["mid"])),
            session_id=uuid.UUID(str(claims["sid"])),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise errors.InvalidToken() from exc


async def admit_member(
    enter: Callable[..., Awaitable[Any | None]],
    claims: Mapping[str, Any],
    settings: Settings,
    *,
    request_id: str | None,
) -> Principal:
    """Enter the tenant a person's verified login names and read who they are now (still
    active, login still open, their role) in one round trip: `enter` is
    `infra.db.enter_tenant_as_member` (or its driver twin) bound to the request's
    transaction."""
    who = signed_in(claims)
    row = await enter(
        who.tenant_id,
        membership_id=who.membership_id,
        user_id=who.user_id,
        session_id=who.session_id,
    )
    return member_principal(who, row, settings, request_id=request_id)


def member_principal(
    who: SignedIn,
    row: Any | None,
    settings: Settings,
    *,
    request_id: str | None,
) -> Principal:
    """Who acts, from the member's row read on entering the tenant: every authenticated
    request reads it, so a role change, a removal or a logout applies at once. No row: the
    member is no longer active or the login was closed."""
    if row is None:
        raise errors.InvalidToken("This session has ended; log in again.")
    return Principal(
        tenant_id=who.tenant_id,
        user_id=who.user_id,
        membership_id=who.membership_id,
        session_id=who.session_id,
        role=Role(row.role),
        client_id=row.client_id,
        timezone=row.timezone,
        request_id=request_id,
        standing=standing_of(
            row.tenant_status,
            row.past_due_since,
            utcnow(),
            timedelta(days=settings.billing_grace_days),
        ).value,
    )


async def me(
    session: AsyncSession, principal: Principal
) -> tuple[User, Tenant, list[tuple[Membership, Tenant]]]:
    user = await session.get(User, principal.user_id)
    tenant = await session.get(Tenant, principal.tenant_id)
    assert user is not None and tenant is not None
    await set_acting_user(session, principal.user_id)
    others = (
        await session.execute(
            select(Membership, Tenant)
            .join(Tenant, Tenant.id == Membership.tenant_id)  # type: ignore[arg-type]
            .where(
                Membership.user_id == principal.user_id,
                Membership.status == MembershipStatus.active,
            )
            .order_by(Tenant.name)
        )
    ).all()
    return user, tenant, [(m, t) for m, t in others]
