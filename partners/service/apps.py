"""Partner apps: created by an agency's owners and admins, each with a client id and a
secret shown once. Secrets are stored as digests; a rotation keeps the previous secret
working for an overlap window so a partner can roll its deployment without downtime."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.pagination import Keyset, Page, SortKey, id_key
from infra.security import hash_secret, new_secret
from infra.settings import Settings
from partners import errors
from partners.models import AppStatus, PartnerApp
from partners.schemas import (
    PartnerAppCreate,
    PartnerAppCreated,
    PartnerAppRead,
    PartnerAppUpdate,
    SecretRotation,
)
from tenants.errors import PermissionDenied
from tenants.models import Role
from tenants.principal import Principal
from tenants.service.common import check_version, load_readable, record_audit, record_update

SECRET_PREFIX = "pas_"  # noqa: S105 - a prefix, not a secret


def require_admin(principal: Principal) -> None:
    """Partner apps and webhooks are the agency's keys: owners and admins manage them."""
    if principal.kind != "user" or principal.role not in (Role.owner, Role.admin):
        raise PermissionDenied("Only the agency's owners and admins manage partner apps.")


def client_id_for(tenant_id: uuid.UUID, app_id: uuid.UUID) -> str:
    # The tenant travels in the client id, so the token endpoint finds the app under
    # row-level security without a cross-tenant lookup.
    return f"pa_{tenant_id.hex}_{app_id.hex}"


def parse_client_id(client_id: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    parts = client_id.split("_")
    if len(parts) != 3 or parts[0] != "pa":
        return None
    try:
        return uuid.UUID(hex=parts[1]), uuid.UUID(hex=parts[2])
    except ValueError:
        return None


def read(app: PartnerApp) -> PartnerAppRead:
    return PartnerAppRead.model_validate(app, from_attributes=True)


async def create_app(
    session: AsyncSession, principal: Principal, data: PartnerAppCreate
) -> PartnerAppCreated:
    require_admin(principal)
    secret = SECRET_PREFIX + new_secret()
    app_id = uuid.uuid4()
    app = PartnerApp(
        id=app_id,
        tenant_id=principal.tenant_id,
        name=data.name,
        client_id=client_id_for(principal.tenant_id, app_id),
        scopes=[s.value for s in data.scopes],
        secret_hash=hash_secret(secret),
        created_by=principal.user_id,
        created_by_membership=principal.membership_id,
    )
    session.add(app)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="partner_app.created",
        subject_type="partner_app",
        subject_id=app.id,
        changes={"name": app.name, "scopes": app.scopes},
    )
    await session.flush()
    return PartnerAppCreated(**read(app).model_dump(), client_secret=secret)


def readable_apps(principal: Principal) -> Select[Any]:
    """The agency's partner apps, for its owners and admins (require_admin refuses others)."""
    require_admin(principal)
    return select(PartnerApp).where(col(PartnerApp.tenant_id) == principal.tenant_id)


async def get_app(session: AsyncSession, principal: Principal, app_id: uuid.UUID) -> PartnerApp:
    app: PartnerApp = await load_readable(
        session,
        readable_apps(principal).where(col(PartnerApp.id) == app_id),
        missing=errors.PartnerAppNotFound("No such partner app in this agency."),
    )
    return app


async def list_apps(
    session: AsyncSession, principal: Principal, *, cursor: str | None, limit: int
) -> Page[PartnerAppRead]:
    query = APP_ORDER.apply(readable_apps(principal), cursor=cursor, limit=limit)
    page, after = APP_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[read(a) for a in page], next_cursor=after)


APP_ORDER = Keyset(
    "created",
    [
        SortKey(col(PartnerApp.created_at), lambda a: a.created_at, datetime.fromisoformat),
        id_key(col(PartnerApp.id)),
    ],
)


async def update_app(
    session: AsyncSession,
    principal: Principal,
    app_id: uuid.UUID,
    data: PartnerAppUpdate,
    if_match: int | None,
) -> PartnerApp:
    app = await get_app(session, principal, app_id)
    check_version(app.version, if_match)
    if app.status == AppStatus.revoked:
        raise errors.PartnerAppRevoked("A revoked partner app cannot change; create a new one.")
    changes: dict[str, object] = {}
    if data.name is not None and data.name != app.name:
        changes["name"] = app.name = data.name
    if data.scopes is not None:
        scopes = [s.value for s in data.scopes]
        if scopes != app.scopes:
            changes["scopes"] = app.scopes = scopes
    if changes:
        record_update(
            session,
            principal,
            app,
            action="partner_app.updated",
            subject_type="partner_app",
            changes=changes,
        )
        await session.flush()
    return app


async def rotate_secret(
    session: AsyncSession,
    principal: Principal,
    app_id: uuid.UUID,
    data: SecretRotation,
    if_match: int | None,
    settings: Settings,
) -> PartnerAppCreated:
    app = await get_app(session, principal, app_id)
    check_version(app.version, if_match)
    if app.status == AppStatus.revoked:
        raise errors.PartnerAppRevoked("A revoked partner app has no secret to rotate.")
    overlap = (
        data.overlap_seconds
        if data.overlap_seconds is not None
        else settings.partner_secret_overlap_seconds
    )
    secret = SECRET_PREFIX + new_secret()
    now = utcnow()
    # One overlap at a time: the secret being replaced is the one partners use now.
    app.previous_secret_hash = app.secret_hash if overlap > 0 else None
    app.previous_secret_expires_at = now + timedelta(seconds=overlap) if overlap > 0 else None
    app.secret_hash = hash_secret(secret)
    record_update(
        session,
        principal,
        app,
        action="partner_app.secret_rotated",
        subject_type="partner_app",
        changes={"overlap_seconds": overlap},
        at=now,
    )
    await session.flush()
    return PartnerAppCreated(**read(app).model_dump(), client_secret=secret)


async def revoke_app(
    session: AsyncSession, principal: Principal, app_id: uuid.UUID, if_match: int | None
) -> None:
    """Revocation keeps the row (audit, client id never reused) and ends every token at once:
    each request checks the app."""
    app = await get_app(session, principal, app_id)
    check_version(app.version, if_match)
    if app.status == AppStatus.revoked:
        return
    app.status = AppStatus.revoked
    app.revoked_at = utcnow()
    app.previous_secret_hash = None
    app.previous_secret_expires_at = None
    record_update(
        session,
        principal,
        app,
        action="partner_app.revoked",
        subject_type="partner_app",
        at=app.revoked_at,
    )
    await session.flush()
