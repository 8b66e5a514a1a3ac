"""An invitation as its link's page shows it before anyone accepts it: whether it can still be
accepted (and if not, why), who sent it, and what the form must ask for.

Accepting stays `members.accept_invitation`, the API's own; this only reads. The signature is
checked before the expiry is read, so a forged link and an expired one get distinct answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.security import InvalidToken, TokenSigner
from tenants import errors
from tenants.models import (
    Client,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipStatus,
    Role,
    Tenant,
    User,
)
from tenants.service.auth import find_user_by_email
from tenants.service.members import INVITATION_AUDIENCE, InvitationLink

MAX_TOKEN = 2048


class InvitationState(StrEnum):
    open = "open"
    used = "used"
    expired = "expired"
    withdrawn = "withdrawn"


@dataclass(frozen=True)
class InvitationView:
    state: InvitationState
    role: Role
    email: str
    expires_at: datetime
    inviter_name: str
    inviter_email: str
    has_account: bool
    """The invited address already signs in somewhere: the form asks for that password."""
    client_locale: str | None
    tenant_timezone: str


def presented_invitation(signer: TokenSigner, token: str) -> InvitationLink:
    """What a link names, once its signature holds, however late it comes."""
    if len(token) > MAX_TOKEN:
        raise errors.InvitationInvalid("This invitation link is invalid.")
    try:
        claims = signer.verify_signature(token, audience=INVITATION_AUDIENCE)
        return InvitationLink(uuid.UUID(str(claims["tid"])), uuid.UUID(str(claims["sub"])))
    except (InvalidToken, KeyError, ValueError, TypeError) as exc:
        raise errors.InvitationInvalid("This invitation link is invalid.") from exc


def _state(invitation: Invitation, membership: Membership | None) -> InvitationState:
    if invitation.status == InvitationStatus.accepted:
        return InvitationState.used
    if invitation.status == InvitationStatus.revoked:
        return InvitationState.withdrawn
    if invitation.expires_at <= utcnow():
        return InvitationState.expired
    if membership is None or membership.status != MembershipStatus.invited:
        return InvitationState.withdrawn  # as accepting would find it: no pending membership
    return InvitationState.open


async def invitation_view(session: AsyncSession, link: InvitationLink) -> InvitationView:
    """The invitation in the link's tenant, which the caller has entered; InvitationInvalid
    when that tenant has no such invitation."""
    invitation = await session.get(Invitation, (link.tenant_id, link.invitation_id))
    tenant = await session.get(Tenant, link.tenant_id)
    if invitation is None or tenant is None:
        raise errors.InvitationInvalid("This invitation link is invalid.")
    user = await find_user_by_email(session, invitation.email)
    membership = None
    if user is not None:
        membership = (
            await session.scalars(
                select(Membership).where(
                    col(Membership.tenant_id) == link.tenant_id,
                    col(Membership.user_id) == user.id,
                )
            )
        ).first()
    inviter = await session.get(User, invitation.invited_by)
    client_id = membership.client_id if membership else invitation.client_id
    client = await session.get(Client, (link.tenant_id, client_id)) if client_id else None
    return InvitationView(
        state=_state(invitation, membership),
        # The membership is what accepting activates; it says the role the person gets.
        role=Role(membership.role if membership else invitation.role),
        email=invitation.email,
        expires_at=invitation.expires_at,
        inviter_name=inviter.name if inviter else tenant.name,
        inviter_email=inviter.email if inviter else "",
        has_account=user is not None and user.password_hash is not None,
        client_locale=client.locale if client else None,
        tenant_timezone=tenant.timezone,
    )
