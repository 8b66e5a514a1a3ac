"""Business rules of the directory. Functions take a session and the acting principal;
they never commit — the request (or job) that called them owns the transaction."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Select, bindparam, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra import outbox
from infra.clock import utcnow
from infra.db import set_acting_user, set_tenant
from infra.errors import PreconditionFailed
from infra.ids import new_id
from infra.pagination import InvalidCursor, Page, decode_cursor, encode_cursor
from infra.security import (
    InvalidToken as BadSignature,
)
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
    AuditEvent,
    AuthSession,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipStatus,
    RefreshToken,
    Role,
    Tenant,
    User,
)
from tenants.permissions import Action, can
from tenants.principal import Principal
from tenants.schemas import (
    InvitationAccept,
    InvitationCreate,
    MemberRead,
    MemberUpdate,
    SignupRequest,
)

INVITATION_AUDIENCE = "passerelle-invitation"


# ---------------------------------------------------------------------------------------------
# Authorization and audit


def authorize(principal: Principal, action: Action) -> None:
    if not can(principal.role, action):
        raise errors.PermissionDenied(f"Role '{principal.role}' may not {action.value}.")


def record_audit(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    actor: Principal | None,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
    request_id: str | None = None,
    actor_id: uuid.UUID | None = None,
) -> None:
    session.add(
        AuditEvent(
            tenant_id=tenant_id,
            actor_type=actor.kind if actor else ("user" if actor_id else "system"),
            actor_id=actor.user_id if actor else actor_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            changes=changes or {},
            request_id=actor.request_id if actor else request_id,
        )
    )


def check_version(current: int, if_match: int | None) -> None:
    if if_match is not None and if_match != current:
        raise PreconditionFailed(
            f"You edited version {if_match}; the current version is {current}.",
            current_version=current,
        )


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


async def _find_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.scalars(select(User).where(func.lower(User.email) == email.lower()))
    return result.first()


async def signup(
    session: AsyncSession, passwords: Passwords, data: SignupRequest
) -> tuple[Tenant, User, Membership]:
    """Create an agency and its owner. A person with an account may open a second agency."""
    if (await session.scalars(select(Tenant.id).where(Tenant.slug == data.slug))).first():
        raise errors.SlugTaken(f"'{data.slug}' is already used by another agency.")
    user = await _find_user_by_email(session, data.email)
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
            locale="fr" if data.locale.startswith("fr") else "en",
        )
        session.add(user)
    tenant = Tenant(
        slug=data.slug,
        name=data.agency_name,
        timezone=data.timezone,
        locale=data.locale,
        currency=data.currency,
    )
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent sign-up took the slug or the e-mail
        raise errors.SlugTaken(f"'{data.slug}' is already used by another agency.") from exc
    await set_tenant(session, tenant.id)
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
        changes={"slug": data.slug, "name": data.agency_name},
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
    """Check credentials; wrong e-mail and wrong password fail alike and cost the same."""
    user = await _find_user_by_email(session, email)
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
    await set_tenant(session, tenant.id)
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


async def refresh_tokens(
    session: AsyncSession, signer: TokenSigner, settings: Settings, token: str
) -> IssuedTokens:
    """Rotate: the presented token is spent. Presenting a spent one revokes its whole family.

    On reuse this raises *after* revoking; the caller must commit before answering.
    """
    tenant_id, token_id, secret = _decode_refresh(token)
    await set_tenant(session, tenant_id)
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
_PRINCIPAL = (
    select(col(Membership.role), col(Membership.client_id))
    .join(
        AuthSession,
        (col(AuthSession.tenant_id) == col(Membership.tenant_id))
        & (col(AuthSession.membership_id) == col(Membership.id)),
    )
    .where(
        col(Membership.tenant_id) == bindparam("tenant_id"),
        col(Membership.id) == bindparam("membership_id"),
        col(Membership.user_id) == bindparam("user_id"),
        col(Membership.status) == MembershipStatus.active.value,
        col(AuthSession.id) == bindparam("session_id"),
        col(AuthSession.revoked_at).is_(None),
    )
)


async def load_principal(
    session: AsyncSession, claims: dict[str, Any], *, request_id: str | None
) -> Principal:
    """The one query every authenticated request runs: is this member still active and this
    login still open? The role is read here, so a role change applies at once."""
    try:
        tenant_id = uuid.UUID(claims["tid"])
        user_id = uuid.UUID(claims["sub"])
        membership_id = uuid.UUID(claims["mid"])
        session_id = uuid.UUID(claims["sid"])
    except (KeyError, ValueError, TypeError) as exc:
        raise errors.InvalidToken() from exc
    await set_tenant(session, tenant_id)
    connection = await session.connection()
    result = await connection.execute(
        _PRINCIPAL,
        {
            "tenant_id": tenant_id,
            "membership_id": membership_id,
            "user_id": user_id,
            "session_id": session_id,
        },
    )
    row = result.first()
    if row is None:
        raise errors.InvalidToken("This session has ended; log in again.")
    return Principal(
        tenant_id=tenant_id,
        user_id=user_id,
        membership_id=membership_id,
        session_id=session_id,
        role=Role(row.role),
        client_id=row.client_id,
        request_id=request_id,
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


# ---------------------------------------------------------------------------------------------
# Members


def _member_read(m: Membership, u: User) -> MemberRead:
    return MemberRead(
        user_id=u.id,
        email=u.email,
        name=u.name,
        role=Role(m.role),
        status=m.status,
        client_id=m.client_id,
        version=m.version,
        created_at=m.created_at,
        updated_at=m.updated_at,
    )


# Plain rows, not entities: a page of 50 members would otherwise build 100 tracked objects.
_MEMBER_ROWS = cast(
    "Select[Any]",
    (
        sa_select(
            col(User.id).label("user_id"),
            col(User.email),
            col(User.name),
            col(Membership.role),
            col(Membership.status),
            col(Membership.client_id),
            col(Membership.version),
            col(Membership.created_at),
            col(Membership.updated_at),
            col(Membership.id).label("membership_id"),
        )
        .join(User, col(User.id) == col(Membership.user_id))
        .order_by(col(Membership.id))
    ),
)


_MEMBER_PAGE = Page[MemberRead]


async def list_members(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    role: Role | None = None,
    status: str | None = None,
) -> Page[MemberRead]:
    authorize(principal, Action.members_read)
    query = _MEMBER_ROWS.where(col(Membership.tenant_id) == principal.tenant_id).limit(limit + 1)
    if cursor is not None:
        (after,) = decode_cursor(cursor, size=1)
        query = query.where(col(Membership.id) > _uuid_or_invalid(after))
    if role is not None:
        query = query.where(col(Membership.role) == role)
    if status is not None:
        query = query.where(col(Membership.status) == status)
    connection = await session.connection()
    rows = (await connection.execute(query)).all()
    next_cursor = encode_cursor(rows[limit - 1].membership_id) if len(rows) > limit else None
    # One validation of the whole page (pydantic-core), straight from the rows.
    return _MEMBER_PAGE.model_validate(
        {"items": [row._mapping for row in rows[:limit]], "next_cursor": next_cursor}
    )


def _uuid_or_invalid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidCursor() from exc


async def _get_membership(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, *, lock: bool = False
) -> tuple[Membership, User]:
    query = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)  # type: ignore[arg-type]
        .where(Membership.tenant_id == principal.tenant_id, Membership.user_id == user_id)
    )
    if lock:
        query = query.with_for_update(of=Membership).execution_options(populate_existing=True)
    row = (await session.execute(query)).first()
    if row is None:
        raise errors.MemberNotFound()
    return row[0], row[1]


async def get_member(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> MemberRead:
    authorize(principal, Action.members_read)
    membership, user = await _get_membership(session, principal, user_id)
    return _member_read(membership, user)


async def update_member(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    changes: MemberUpdate,
    *,
    if_match: int | None,
) -> MemberRead:
    authorize(principal, Action.members_update)
    membership, user = await _get_membership(session, principal, user_id)
    if membership.role == Role.owner or changes.role == Role.owner:
        # Owner rows are locked together, in id order, before the target: two owners demoting
        # each other then queue up instead of deadlocking.
        await _lock_active_owners(session, principal.tenant_id)
    membership, user = await _get_membership(session, principal, user_id, lock=True)
    check_version(membership.version, if_match)
    patch = changes.model_dump(exclude_unset=True)
    touches_owner = membership.role == Role.owner or patch.get("role") == Role.owner
    if touches_owner and not can(principal.role, Action.members_manage_owners):
        raise errors.PermissionDenied("Only an owner may change an owner or make one.")
    new_role = Role(patch.get("role", membership.role))
    new_status = patch.get("status", membership.status)
    new_client = patch.get("client_id", membership.client_id)
    if new_role == Role.client and new_client is None:
        raise errors.InvalidRoleChange("A client contact needs a client_id.")
    if new_role != Role.client:
        new_client = None
    if membership.status == MembershipStatus.invited and "status" in patch:
        raise errors.InvalidRoleChange("An invited member becomes active by accepting.")
    leaves_owners = membership.role == Role.owner and (
        new_role != Role.owner or new_status != MembershipStatus.active
    )
    if leaves_owners and membership.status == MembershipStatus.active:
        await _ensure_another_owner(session, principal.tenant_id, membership.id)
    diff = {
        field: [old, new]
        for field, old, new in (
            ("role", membership.role, new_role),
            ("status", membership.status, new_status),
            ("client_id", membership.client_id, new_client),
        )
        if old != new
    }
    if diff:
        membership.role = new_role
        membership.status = new_status
        membership.client_id = new_client
        membership.version += 1
        membership.updated_at = utcnow()
        session.add(membership)
        if new_status == MembershipStatus.disabled:
            await session.execute(
                update(AuthSession)
                .where(
                    AuthSession.tenant_id == principal.tenant_id,  # type: ignore[arg-type]
                    AuthSession.membership_id == membership.id,  # type: ignore[arg-type]
                    AuthSession.revoked_at.is_(None),  # type: ignore[union-attr]
                )
                .values(revoked_at=utcnow(), revoked_reason="member_disabled")
            )
        record_audit(
            session,
            tenant_id=principal.tenant_id,
            actor=principal,
            action="member.updated",
            subject_type="membership",
            subject_id=membership.id,
            changes={
                k: [str(v) if v is not None else None for v in pair] for k, pair in diff.items()
            },
        )
        await session.flush()
    return _member_read(membership, user)


async def _lock_active_owners(session: AsyncSession, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    owners = await session.scalars(
        select(Membership.id)
        .where(
            Membership.tenant_id == tenant_id,
            Membership.role == Role.owner,
            Membership.status == MembershipStatus.active,
        )
        .order_by(col(Membership.id))
        .with_for_update()
    )
    return list(owners.all())


async def _ensure_another_owner(
    session: AsyncSession, tenant_id: uuid.UUID, leaving: uuid.UUID
) -> None:
    # The owner rows are locked: two owners demoting each other at once cannot both win.
    owners = await _lock_active_owners(session, tenant_id)
    if not [o for o in owners if o != leaving]:
        raise errors.LastOwner()


# ---------------------------------------------------------------------------------------------
# Invitations


async def invite(
    session: AsyncSession, principal: Principal, data: InvitationCreate, settings: Settings
) -> Invitation:
    authorize(principal, Action.members_invite)
    if data.role == Role.owner and not can(principal.role, Action.members_manage_owners):
        raise errors.PermissionDenied("Only an owner may invite an owner.")
    if data.role == Role.client and data.client_id is None:
        raise errors.InvalidRoleChange("A client contact needs a client_id.")
    user = await _find_user_by_email(session, data.email)
    if user is None:
        # A placeholder identity without a password; accepting the invitation completes it.
        user = User(email=data.email, name=data.email.split("@")[0], password_hash=None)
        session.add(user)
        await session.flush()
    existing = (
        await session.scalars(
            select(Membership).where(
                Membership.tenant_id == principal.tenant_id, Membership.user_id == user.id
            )
        )
    ).first()
    if existing is not None and existing.status != MembershipStatus.invited:
        raise errors.AlreadyMember()
    pending = (
        await session.scalars(
            select(Invitation.id).where(
                Invitation.tenant_id == principal.tenant_id,
                func.lower(Invitation.email) == data.email.lower(),
                Invitation.status == InvitationStatus.pending,
            )
        )
    ).first()
    if pending is not None:
        raise errors.InvitationPending()
    client_id = data.client_id if data.role == Role.client else None
    if existing is None:
        session.add(
            Membership(
                tenant_id=principal.tenant_id,
                user_id=user.id,
                role=data.role,
                status=MembershipStatus.invited,
                client_id=client_id,
            )
        )
    else:
        existing.role = data.role
        existing.client_id = client_id
        existing.version += 1
        session.add(existing)
    invitation = Invitation(
        tenant_id=principal.tenant_id,
        email=data.email,
        role=data.role,
        client_id=client_id,
        invited_by=principal.user_id,
        expires_at=utcnow() + timedelta(seconds=settings.invitation_ttl_seconds),
    )
    session.add(invitation)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="invitation.created",
        subject_type="invitation",
        subject_id=invitation.id,
        changes={"email": data.email, "role": data.role},
    )
    outbox.record_event(
        session,
        tenant_id=principal.tenant_id,
        type="member.invited",
        aggregate_type="invitation",
        aggregate_id=invitation.id,
        payload={"invitation_id": str(invitation.id), "invited_by": str(principal.user_id)},
        request_id=principal.request_id,
    )
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent invitation to the same address
        raise errors.InvitationPending() from exc
    return invitation


def invitation_token(signer: TokenSigner, invitation: Invitation) -> str:
    ttl = max(int((invitation.expires_at - utcnow()).total_seconds()), 1)
    return signer.sign(
        {"sub": str(invitation.id), "tid": str(invitation.tenant_id)},
        audience=INVITATION_AUDIENCE,
        ttl_seconds=ttl,
    )


async def accept_invitation(
    session: AsyncSession,
    passwords: Passwords,
    signer: TokenSigner,
    token: str,
    data: InvitationAccept,
) -> tuple[Tenant, Membership]:
    try:
        claims = signer.verify(token, audience=INVITATION_AUDIENCE)
        tenant_id = uuid.UUID(claims["tid"])
        invitation_id = uuid.UUID(claims["sub"])
    except (BadSignature, KeyError, ValueError) as exc:
        raise errors.InvitationInvalid("This invitation link is invalid or has expired.") from exc
    await set_tenant(session, tenant_id)
    invitation = (
        await session.scalars(
            select(Invitation)
            .where(Invitation.tenant_id == tenant_id, Invitation.id == invitation_id)
            .with_for_update()
        )
    ).first()
    if invitation is None or invitation.status != InvitationStatus.pending:
        raise errors.InvitationInvalid("This invitation was already used or withdrawn.")
    if invitation.expires_at <= utcnow():
        raise errors.InvitationInvalid("This invitation has expired; ask for a new one.")
    user = await _find_user_by_email(session, invitation.email)
    if user is None:
        raise errors.InvitationInvalid("This invitation was withdrawn.")
    if user.password_hash is None:
        if data.name is None:
            raise errors.NameRequired()
        user.name = data.name
        user.password_hash = await passwords.hash(data.password)
        if data.locale:
            user.locale = "fr" if data.locale.startswith("fr") else "en"
        user.updated_at = utcnow()
        session.add(user)
    elif not await passwords.verify(user.password_hash, data.password):
        raise errors.InvalidCredentials("Use the password of your existing account.")
    membership = (
        await session.scalars(
            select(Membership).where(
                Membership.tenant_id == tenant_id, Membership.user_id == user.id
            )
        )
    ).first()
    if membership is None or membership.status != MembershipStatus.invited:
        raise errors.InvitationInvalid("This invitation no longer matches a pending membership.")
    membership.status = MembershipStatus.active
    membership.version += 1
    membership.updated_at = utcnow()
    invitation.status = InvitationStatus.accepted
    invitation.accepted_at = utcnow()
    session.add_all([membership, invitation])
    record_audit(
        session,
        tenant_id=tenant_id,
        actor=None,
        actor_id=user.id,
        action="invitation.accepted",
        subject_type="invitation",
        subject_id=invitation.id,
    )
    await session.flush()
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return tenant, membership
