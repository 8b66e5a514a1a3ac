"""Client contacts' own accounts in the portal: which agencies they can sign in to, and the
one-time sign-in links sent by e-mail.

A sign-in link is a signed token naming the membership it opens and a random link id; the
token itself is minted when the e-mail is sent, so no credential rests in the outbox. A link
works once: the first use marks its id in Redis (`SET NX`), atomically across workers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.db import set_acting_user
from infra.ids import new_id
from infra.outbox import record_event
from infra.security import InvalidToken, TokenSigner
from tenants import errors
from tenants.models import AuthSession, Membership, MembershipStatus, Role, Tenant

SIGN_IN_LINK_AUDIENCE = "passerelle-portal-link"
SIGN_IN_LINK_TTL = timedelta(minutes=15)
SIGN_IN_LINK_EVENT = "portal.sign_in_link_requested"
# Longer than a link lives, so a used link never looks fresh again before it has expired.
_USED_MARK_SECONDS = 24 * 3600


@dataclass(frozen=True)
class PortalAccount:
    """One agency where the person is an active client contact."""

    tenant: Tenant
    membership: Membership


async def portal_accounts(session: AsyncSession, user_id: uuid.UUID) -> list[PortalAccount]:
    """The person's active client memberships across agencies, by agency name. Read before any
    tenant is entered, through the person's own-memberships policy."""
    await set_acting_user(session, user_id)
    rows = (
        await session.execute(
            select(Membership, Tenant)
            .join(Tenant, col(Tenant.id) == col(Membership.tenant_id))
            .where(
                col(Membership.user_id) == user_id,
                col(Membership.status) == MembershipStatus.active.value,
                col(Membership.role) == Role.client.value,
            )
            .order_by(col(Tenant.name), col(Tenant.id))
        )
    ).all()
    return [PortalAccount(tenant, membership) for membership, tenant in rows]


def request_sign_in_link(
    session: AsyncSession, account: PortalAccount, *, request_id: str | None
) -> None:
    """Queue the e-mail (through the outbox, in the account's tenant, which the caller has
    entered). The link's clock starts now, not when the worker gets to it."""
    membership = account.membership
    record_event(
        session,
        tenant_id=membership.tenant_id,
        type=SIGN_IN_LINK_EVENT,
        aggregate_type="membership",
        aggregate_id=membership.id,
        payload={
            "membership_id": str(membership.id),
            "user_id": str(membership.user_id),
            "link_id": str(new_id()),
            "expires_at": (utcnow() + SIGN_IN_LINK_TTL).isoformat(),
        },
        request_id=request_id,
    )


@dataclass(frozen=True)
class SignInLink:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    link_id: uuid.UUID
    expires_at: datetime


def sign_in_link_token(signer: TokenSigner, link: SignInLink) -> str | None:
    """The token for the e-mail; None once the link's time is over (nothing worth sending)."""
    left = int((link.expires_at - utcnow()).total_seconds())
    if left <= 0:
        return None
    return signer.sign(
        {
            "sub": str(link.user_id),
            "tid": str(link.tenant_id),
            "mid": str(link.membership_id),
            "jti": str(link.link_id),
        },
        audience=SIGN_IN_LINK_AUDIENCE,
        ttl_seconds=left,
    )


def read_sign_in_link(signer: TokenSigner, token: str) -> SignInLink:
    """What a presented link names; a forged or altered one and an expired one are told apart
    (the signature is checked before the expiry is read)."""
    if len(token) > 2048:
        raise errors.SignInLinkInvalid()
    try:
        claims = signer.verify_signature(token, audience=SIGN_IN_LINK_AUDIENCE)
        link = SignInLink(
            tenant_id=uuid.UUID(str(claims["tid"])),
            user_id=uuid.UUID(str(claims["sub"])),
            membership_id=uuid.UUID(str(claims["mid"])),
            link_id=uuid.UUID(str(claims["jti"])),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except (InvalidToken, KeyError, ValueError, TypeError, OverflowError) as exc:
        raise errors.SignInLinkInvalid() from exc
    if link.expires_at <= utcnow():
        raise errors.SignInLinkExpired()
    return link


def _used_key(link: SignInLink) -> str:
    return f"portal:sign-in-link:{link.link_id}"


async def check_sign_in_link_unused(redis: Redis, link: SignInLink) -> None:
    if await redis.exists(_used_key(link)):
        raise errors.SignInLinkUsed()


async def consume_sign_in_link(redis: Redis, link: SignInLink) -> None:
    """Spend the link; of two simultaneous uses, exactly one gets through."""
    if not await redis.set(_used_key(link), "1", nx=True, ex=_USED_MARK_SECONDS):
        raise errors.SignInLinkUsed()


async def account_of_link(session: AsyncSession, link: SignInLink) -> PortalAccount:
    """The account a link opens, if the contact is still one; the caller has entered the
    link's tenant."""
    membership = await session.get(Membership, (link.tenant_id, link.membership_id))
    tenant = await session.get(Tenant, link.tenant_id)
    if (
        membership is None
        or tenant is None
        or membership.user_id != link.user_id
        or membership.status != MembershipStatus.active
        or membership.role != Role.client
    ):
        raise errors.SignInLinkInvalid()
    return PortalAccount(tenant, membership)


async def open_session(
    session: AsyncSession, account: PortalAccount, *, user_agent: str | None
) -> uuid.UUID:
    """A login of the contact in the account's agency (entered by the caller): the row every
    page checks, and what signing out revokes. The portal needs no refresh tokens: its
    cookie is the whole login."""
    membership = account.membership
    auth_session = AuthSession(
        tenant_id=membership.tenant_id,
        user_id=membership.user_id,
        membership_id=membership.id,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(auth_session)
    await session.flush()
    return auth_session.id
