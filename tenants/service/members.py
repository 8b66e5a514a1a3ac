"""The team: members and invitations."""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import asyncpg
from sqlalchemy import Select, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra import outbox
from infra.clock import utcnow
from infra.errors import body_reference
from infra.i18n import language
from infra.pagination import JsonPage, Keyset, id_key
from infra.security import (
    InvalidToken as BadSignature,
)
from infra.security import (
    Passwords,
    TokenSigner,
)
from infra.settings import Settings
from tenants import errors
from tenants.models import (
    AuthSession,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipStatus,
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
)
from tenants.service.auth import find_user_by_email
from tenants.service.common import (
    authorize,
    bump,
    check_version,
    ensure_client_exists,
    load_readable,
    record_audit,
)

INVITATION_AUDIENCE = "passerelle-invitation"

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
        monthly_capacity_minutes=m.monthly_capacity_minutes,
        version=m.version,
        created_at=m.created_at,
        updated_at=m.updated_at,
    )


def readable_members(principal: Principal, action: Action = Action.members_read) -> Select[Any]:
    """The agency's memberships with their people, for the roles that may see the team
    (authorize refuses the others)."""
    authorize(principal, action)
    return cast(
        "Select[Any]",
        select(Membership, User)
        .join(User, col(User.id) == col(Membership.user_id))
        .where(col(Membership.tenant_id) == principal.tenant_id),
    )


# The team list is the API's hottest read: one literal statement on the driver connection
# (prepared once per connection), its rows sent as they come, no ORM entities and no second
# validation (`infra.db.driver_connection`). The filters pick one of a few fixed texts.
_MEMBER_FIELDS = (
    "user_id",
    "email",
    "name",
    "role",
    "status",
    "client_id",
    "monthly_capacity_minutes",
    "version",
    "created_at",
    "updated_at",
)
_LIST_MEMBERS = (
    "SELECT u.id AS user_id, u.email, u.name, m.role, m.status, m.client_id, "
    "m.monthly_capacity_minutes, m.version, m.created_at, m.updated_at, m.id AS membership_id "
    "FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1{filters} "
    "ORDER BY m.id LIMIT $2"
)

MEMBER_ORDER = Keyset("members", [id_key(col(Membership.id), operator.itemgetter("membership_id"))])


async def list_members(
    connection: asyncpg.Connection,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    role: Role | None = None,
    status: str | None = None,
) -> JsonPage:
    """A page of the team, as JSON-ready mappings of `MemberRead`'s fields."""
    authorize(principal, Action.members_read)
    arguments: list[Any] = [principal.tenant_id, limit + 1]
    filters = []
    for sql, value in (
        ("m.role = ${}", None if role is None else role.value),
        ("m.status = ${}", status),
        ("m.id > ${}", None if cursor is None else MEMBER_ORDER.decode(cursor)[0]),
    ):
        if value is not None:
            arguments.append(value)
            filters.append(" AND " + sql.format(len(arguments)))
    rows = await connection.fetch(_LIST_MEMBERS.format(filters="".join(filters)), *arguments)
    page, next_cursor = MEMBER_ORDER.page(rows, limit=limit)
    return {
        "items": [{field: row[field] for field in _MEMBER_FIELDS} for row in page],
        "next_cursor": next_cursor,
    }


async def _get_membership(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    action: Action,
    *,
    lock: bool = False,
) -> tuple[Membership, User]:
    membership: Membership = await load_readable(
        session,
        readable_members(principal, action).where(col(Membership.user_id) == user_id),
        lock=lock,
        lock_of=Membership,
        missing=errors.MemberNotFound(),
    )
    # The statement loaded the person with the membership: this reads the identity map.
    user = await session.get(User, membership.user_id)
    assert user is not None
    return membership, user


async def get_member(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> MemberRead:
    membership, user = await _get_membership(session, principal, user_id, Action.members_read)
    return _member_read(membership, user)


async def update_member(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    changes: MemberUpdate,
    settings: Settings,
    *,
    if_match: int | None,
) -> MemberRead:
    authorize(principal, Action.members_update)
    membership, user = await _get_membership(session, principal, user_id, Action.members_update)
    if membership.role == Role.owner or changes.role == Role.owner:
        # Owner rows are locked together, in id order, before the target: two owners demoting
        # each other then queue up instead of deadlocking.
        await _lock_active_owners(session, principal.tenant_id)
    membership, user = await _get_membership(
        session, principal, user_id, Action.members_update, lock=True
    )
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
    elif new_client is not None and new_client != membership.client_id:
        with body_reference("/client_id"):
            await ensure_client_exists(session, principal, new_client)
    new_capacity = patch.get("monthly_capacity_minutes", membership.monthly_capacity_minutes)
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
            ("monthly_capacity_minutes", membership.monthly_capacity_minutes, new_capacity),
        )
        if old != new
    }
    if diff:
        becomes_staff_seat = (
            new_status == MembershipStatus.active
            and new_role != Role.client
            and (membership.status != MembershipStatus.active or membership.role == Role.client)
        )
        if becomes_staff_seat:
            await ensure_staff_seat(session, principal.tenant_id, settings, joining=1)
        membership.monthly_capacity_minutes = new_capacity
        membership.role = new_role
        membership.status = new_status
        membership.client_id = new_client
        bump(membership)
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
        if "role" in diff or "status" in diff:
            outbox.record_event(
                session,
                tenant_id=principal.tenant_id,
                type="member.updated",
                aggregate_type="membership",
                aggregate_id=membership.id,
                payload={
                    "user_id": str(user.id),
                    "role": new_role.value,
                    "status": str(new_status),
                },
                request_id=principal.request_id,
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


async def ensure_staff_seat(
    session: AsyncSession, tenant_id: uuid.UUID, settings: Settings, *, joining: int
) -> None:
    """Refuse a staff member past the plan's seat limit. The tenant row lock serializes
    concurrent joins so two cannot take the last seat; nobody is ever removed for it."""
    plan_id = await session.scalar(
        select(Tenant.plan_id).where(Tenant.id == tenant_id).with_for_update()
    )
    limit = settings.plan(plan_id or "").max_staff_seats
    if limit is None:
        return
    active = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.tenant_id == tenant_id,
            Membership.status == MembershipStatus.active,
            Membership.role != Role.client,
        )
    )
    if (active or 0) + joining > limit:
        raise errors.PlanLimit(
            f"Your plan includes {limit} staff seats and {active} are taken. Disable a member "
            "or change plan.",
            limit={"name": "max_staff_seats", "value": limit, "in_use": active},
        )


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
    if data.client_id is not None:
        with body_reference("/client_id"):
            await ensure_client_exists(session, principal, data.client_id)
    if data.role != Role.client:
        await ensure_staff_seat(session, principal.tenant_id, settings, joining=1)
    user = await find_user_by_email(session, data.email)
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
        bump(existing)
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


@dataclass(frozen=True)
class InvitationLink:
    """What a verified invitation link names; the caller enters its tenant before accepting."""

    tenant_id: uuid.UUID
    invitation_id: uuid.UUID


def read_invitation_link(signer: TokenSigner, token: str) -> InvitationLink:
    try:
        claims = signer.verify(token, audience=INVITATION_AUDIENCE)
        return InvitationLink(uuid.UUID(claims["tid"]), uuid.UUID(claims["sub"]))
    except (BadSignature, KeyError, ValueError) as exc:
        raise errors.InvitationInvalid("This invitation link is invalid or has expired.") from exc


async def accept_invitation(
    session: AsyncSession,
    passwords: Passwords,
    link: InvitationLink,
    data: InvitationAccept,
    settings: Settings,
) -> tuple[Tenant, Membership]:
    tenant_id, invitation_id = link.tenant_id, link.invitation_id
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
    user = await find_user_by_email(session, invitation.email)
    if user is None:
        raise errors.InvitationInvalid("This invitation was withdrawn.")
    if user.password_hash is None:
        if data.name is None:
            raise errors.NameRequired()
        user.name = data.name
        user.password_hash = await passwords.hash(data.password)
        if data.locale:
            user.locale = language(data.locale)
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
    if membership.role != Role.client:
        await ensure_staff_seat(session, tenant_id, settings, joining=1)
    membership.status = MembershipStatus.active
    bump(membership)
    outbox.record_event(
        session,
        tenant_id=tenant_id,
        type="member.joined",
        aggregate_type="membership",
        aggregate_id=membership.id,
        payload={"user_id": str(user.id), "role": membership.role},
    )
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
