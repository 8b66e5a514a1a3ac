"""Exports of an agency's or one client's data: asked by an owner, written by a job (see
privacy/archive.py), downloaded through a short-lived signed link. Each request and each
download is audit-logged."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.errors import body_reference
from infra.pagination import Keyset, Page, SortKey, id_key
from infra.queue import enqueue_after_commit
from infra.security import InvalidToken, TokenSigner
from infra.settings import Settings
from privacy import errors
from privacy.models import DataExport, ExportStatus
from privacy.schemas import ExportCreate, ExportLink, ExportProgress, ExportRead
from tenants.errors import PermissionDenied
from tenants.models import Role
from tenants.principal import Principal
from tenants.service.common import ensure_client_exists, load_readable, record_audit

EXPORT_JOB = "write_data_export"
LINK_AUDIENCE = "passerelle-export"
FILE_PATH = "/v1/export-files"


def export_job_id(export_id: uuid.UUID, attempt: int) -> str:
    return f"export:{export_id}:{attempt}"


def file_path(settings: Settings, tenant_id: uuid.UUID, export_id: uuid.UUID) -> Path:
    return settings.export_dir / str(tenant_id) / f"{export_id}.zip"


def require_owner(principal: Principal) -> None:
    """An export holds everything: only the agency's owners ask for one or download it."""
    if principal.kind != "user" or principal.role != Role.owner:
        raise PermissionDenied("Only the agency's owners export its data.")


def read(export: DataExport) -> ExportRead:
    return ExportRead(
        id=export.id,
        client_id=export.client_id,
        scope="client" if export.client_id else "agency",
        status=export.status,
        progress=ExportProgress(
            kinds_done=export.kinds_done,
            kinds_total=export.kinds_total,
            rows_written=export.rows_written,
            media_files=export.media_files,
        ),
        attempts=export.attempts,
        created_at=export.created_at,
        started_at=export.started_at,
        finished_at=export.finished_at,
        expires_at=export.expires_at,
        size_bytes=export.size_bytes,
        sha256=export.sha256,
        error=export.error,
        manifest=export.manifest or None,
        version=export.version,
    )


async def create_export(
    session: AsyncSession, principal: Principal, data: ExportCreate
) -> DataExport:
    require_owner(principal)
    if data.client_id is not None:
        with body_reference("/client_id"):
            await ensure_client_exists(session, principal, data.client_id)
    export = DataExport(
        tenant_id=principal.tenant_id, client_id=data.client_id, requested_by=principal.user_id
    )
    session.add(export)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="export.requested",
        subject_type="data_export",
        subject_id=export.id,
        changes={"client_id": str(data.client_id) if data.client_id else None},
    )
    await session.flush()
    enqueue_after_commit(
        session,
        EXPORT_JOB,
        str(principal.tenant_id),
        str(export.id),
        job_id=export_job_id(export.id, 0),
    )
    return export


def _readable(principal: Principal) -> Any:
    return select(DataExport).where(col(DataExport.tenant_id) == principal.tenant_id)


EXPORT_ORDER = Keyset(
    "created",
    [
        SortKey(col(DataExport.created_at), lambda e: e.created_at, datetime.fromisoformat),
        id_key(col(DataExport.id)),
    ],
)


async def list_exports(
    session: AsyncSession, principal: Principal, *, cursor: str | None, limit: int
) -> Page[ExportRead]:
    require_owner(principal)
    query = EXPORT_ORDER.apply(_readable(principal), cursor=cursor, limit=limit)
    page, after = EXPORT_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[read(e) for e in page], next_cursor=after)


async def get_export(
    session: AsyncSession, principal: Principal, export_id: uuid.UUID
) -> DataExport:
    require_owner(principal)
    found: DataExport = await load_readable(
        session,
        _readable(principal).where(col(DataExport.id) == export_id),
        missing=errors.ExportNotFound(),
    )
    return found


async def download_link(
    session: AsyncSession,
    principal: Principal,
    export_id: uuid.UUID,
    signer: TokenSigner,
    settings: Settings,
) -> ExportLink:
    export = await get_export(session, principal, export_id)
    if export.status != ExportStatus.done:
        raise errors.ExportNotReady(f"The export is {export.status}.", export_status=export.status)
    ttl = settings.export_link_ttl_seconds
    token = signer.sign(
        {"sub": str(export.id), "tid": str(export.tenant_id), "uid": str(principal.user_id)},
        audience=LINK_AUDIENCE,
        ttl_seconds=ttl,
    )
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="export.link_issued",
        subject_type="data_export",
        subject_id=export.id,
    )
    base = settings.public_base_url.rstrip("/")
    return ExportLink(
        url=f"{base}{FILE_PATH}?token={token}", expires_at=utcnow() + timedelta(seconds=ttl)
    )


def link_claims(signer: TokenSigner, token: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(tenant, export, person) of a download link, or ExportLinkInvalid: altered, expired,
    or not an export link."""
    try:
        claims = signer.verify(token, audience=LINK_AUDIENCE)
        return uuid.UUID(claims["tid"]), uuid.UUID(claims["sub"]), uuid.UUID(claims["uid"])
    except (InvalidToken, KeyError, ValueError, TypeError, AttributeError):
        raise errors.ExportLinkInvalid() from None


async def open_download(
    session: AsyncSession,
    settings: Settings,
    tenant_id: uuid.UUID,
    export_id: uuid.UUID,
    user_id: uuid.UUID,
) -> tuple[DataExport, Path]:
    """The export's file for a verified link (the tenant already entered), audit-logged."""
    export = (
        await session.scalars(
            select(DataExport).where(
                col(DataExport.tenant_id) == tenant_id, col(DataExport.id) == export_id
            )
        )
    ).first()
    if export is None or export.status != ExportStatus.done:
        raise errors.ExportNotFound()
    path = file_path(settings, tenant_id, export_id)
    if not path.is_file():
        raise errors.ExportNotFound()
    record_audit(
        session,
        tenant_id=tenant_id,
        actor=None,
        actor_id=user_id,
        actor_type="user",
        action="export.downloaded",
        subject_type="data_export",
        subject_id=export.id,
    )
    return export, path
