"""The export job's work: one ZIP with one NDJSON file per kind of record, the content's media
under media/, and manifest.json (tenant, scope, generated_at, per file its rows and sha256).

The tables are read in one repeatable-read tenant transaction (row-level security on), so every
file shows the same moment; progress is written in short transactions of their own, renewing
the attempt's lease. The ZIP is written to `<file>.part` and renamed when complete: a worker
killed midway leaves a part file that the next attempt starts over (at least once, harmless).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.db import Database
from infra.logging import get_logger
from infra.settings import Settings
from privacy import scope
from privacy.export import file_path
from privacy.models import DataExport, ExportStatus
from publishing.media import MediaError, MediaLimits, download, shown
from tenants.service.common import record_audit

log = get_logger(__name__)

FORMAT_VERSION = 1
MEDIA_KIND = "media"
MEDIA_TIMEOUT = 600.0
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "application/pdf": ".pdf",
}


@dataclass
class Attempt:
    tenant_id: uuid.UUID
    export_id: uuid.UUID
    number: int
    client_id: uuid.UUID | None


@dataclass
class Written:
    rows: int = 0
    media: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    media_errors: list[dict[str, str]] = field(default_factory=list)


async def claim(
    db: Database, settings: Settings, tenant_id: uuid.UUID, export_id: uuid.UUID
) -> Attempt | None:
    """Take the export for a new attempt, unless it is finished or a live worker holds it."""
    now = utcnow()
    async with db.tenant_transaction(tenant_id) as session:
        export = await _locked(session, tenant_id, export_id)
        if export is None or export.status not in (ExportStatus.queued, ExportStatus.running):
            return None
        if export.status == ExportStatus.running and (
            export.claimed_until is not None and export.claimed_until > now
        ):
            return None
        if export.attempts >= settings.export_max_attempts:
            export.status = ExportStatus.failed
            export.error = "The export stopped several times before it was complete."
            export.claimed_until = None
            export.updated_at = now
            return None
        export.status = ExportStatus.running
        export.attempts += 1
        export.claimed_until = now + timedelta(seconds=settings.export_lease_seconds)
        export.started_at = now
        export.kinds_done = export.rows_written = export.media_files = 0
        export.kinds_total = len(scope.exported_tables(whole_agency=export.client_id is None)) + 2
        export.updated_at = now
        return Attempt(tenant_id, export_id, export.attempts, export.client_id)


async def _locked(
    session: AsyncSession, tenant_id: uuid.UUID, export_id: uuid.UUID
) -> DataExport | None:
    query = (
        select(DataExport)
        .where(col(DataExport.tenant_id) == tenant_id, col(DataExport.id) == export_id)
        .with_for_update()
    )
    return (await session.scalars(query)).first()


class LostClaim(Exception):
    """Another attempt took the export over (this one's lease ran out)."""


async def _progress(
    db: Database, settings: Settings, attempt: Attempt, *, kinds: int, rows: int, media: int
) -> None:
    async with db.tenant_transaction(attempt.tenant_id) as session:
        export = await _locked(session, attempt.tenant_id, attempt.export_id)
        if (
            export is None
            or export.attempts != attempt.number
            or export.status != ExportStatus.running
        ):
            raise LostClaim
        now = utcnow()
        export.kinds_done, export.rows_written, export.media_files = kinds, rows, media
        export.claimed_until = now + timedelta(seconds=settings.export_lease_seconds)
        export.updated_at = now


async def write(
    db: Database, settings: Settings, http: httpx.AsyncClient, attempt: Attempt
) -> None:
    """The whole export, then its row marked done; a failure marks it failed with the reason."""
    final = file_path(settings, attempt.tenant_id, attempt.export_id)
    part = final.with_suffix(".zip.part")
    part.parent.mkdir(parents=True, exist_ok=True)
    tables = scope.exported_tables(whole_agency=attempt.client_id is None)
    written = Written()
    generated_at = utcnow()
    try:
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            media_refs = await _write_tables(db, settings, attempt, archive, tables, written)
            await _write_media(
                db, settings, http, attempt, archive, media_refs, written, len(tables) + 1
            )
            manifest = {
                "format_version": FORMAT_VERSION,
                "tenant_id": str(attempt.tenant_id),
                "export_id": str(attempt.export_id),
                "scope": {"kind": "client", "client_id": str(attempt.client_id)}
                if attempt.client_id
                else {"kind": "agency"},
                "generated_at": generated_at.isoformat(),
                "files": written.files,
                "media_errors": written.media_errors,
                "excluded_columns": {t: sorted(c) for t, c in sorted(scope.SECRET_COLUMNS.items())},
            }
            archive.writestr("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        size, digest = await asyncio.to_thread(_digest, part)
        os.replace(part, final)
    except LostClaim:
        part.unlink(missing_ok=True)
        return
    except Exception as exc:
        part.unlink(missing_ok=True)
        log.exception(
            "export.failed", tenant_id=str(attempt.tenant_id), export_id=str(attempt.export_id)
        )
        await _finish(db, attempt, error=f"The export could not be written ({type(exc).__name__}).")
        raise
    await _finish(
        db,
        attempt,
        manifest=manifest,
        size=size,
        digest=digest,
        expires_after=timedelta(days=settings.export_ttl_days),
        totals=(len(tables) + 2, written.rows, written.media),
    )


def _digest(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            sha.update(chunk)
    return path.stat().st_size, sha.hexdigest()


async def _write_tables(
    db: Database,
    settings: Settings,
    attempt: Attempt,
    archive: zipfile.ZipFile,
    tables: list[str],
    written: Written,
) -> list[tuple[uuid.UUID, list[Any]]]:
    """Each table to `<table>.ndjson`; answers the media of the content revisions written."""
    media_refs: list[tuple[uuid.UUID, list[Any]]] = []
    params: dict[str, Any] = {"tenant_id": attempt.tenant_id}
    if attempt.client_id:
        params["client_id"] = attempt.client_id
    # One snapshot for every file: rows written meanwhile are in none of them.
    async with db.tenant_transaction(attempt.tenant_id, isolation="REPEATABLE READ") as session:
        for done, table in enumerate(tables, start=1):
            keys = [c.name for c in scope.tenant_tables()[table].primary_key.columns]
            where = "t.tenant_id = :tenant_id"
            if attempt.client_id:
                where += " AND " + scope.client_condition(table, "t")
            # Names come from the metadata and privacy/scope.py, never from a request.
            query = text(
                f"SELECT (to_jsonb(t) - CAST(:hidden AS text[]))::text "  # noqa: S608
                f"FROM {table} t WHERE {where} ORDER BY {', '.join('t.' + k for k in keys)}"
            )
            bind = {**params, "hidden": sorted(scope.SECRET_COLUMNS.get(table, frozenset()))}
            rows = 0
            sha = hashlib.sha256()
            name = f"{table}.ndjson"
            with archive.open(name, "w", force_zip64=True) as out:
                result = await session.stream(query, bind)
                async for (line,) in result:
                    data = line.encode() + b"\n"
                    sha.update(data)
                    out.write(data)
                    rows += 1
                    if table == "content_revisions":
                        record = orjson.loads(line)
                        if record.get("media"):
                            media_refs.append((uuid.UUID(record["id"]), record["media"]))
            written.rows += rows
            written.files.append(
                {"name": name, "kind": table, "rows": rows, "sha256": sha.hexdigest()}
            )
            await _progress(db, settings, attempt, kinds=done, rows=written.rows, media=0)
        await _write_people(session, attempt, archive, written)
        await _progress(db, settings, attempt, kinds=len(tables) + 1, rows=written.rows, media=0)
    return media_refs


# People are global (one account across agencies), so no tenant table holds their name and
# address: the export adds who belongs to the agency (for a client's export, that client's
# contacts), without the password hash.
_PEOPLE = """
SELECT jsonb_build_object(
  'id', u.id, 'email', u.email, 'name', u.name, 'locale', u.locale, 'created_at', u.created_at,
  'memberships', (
    SELECT jsonb_agg(jsonb_build_object(
      'id', m.id, 'role', m.role, 'client_id', m.client_id, 'status', m.status) ORDER BY m.id)
    FROM memberships m WHERE m.tenant_id = :tenant_id AND m.user_id = u.id {client})
)::text
FROM users u
WHERE EXISTS (
  SELECT 1 FROM memberships m WHERE m.tenant_id = :tenant_id AND m.user_id = u.id {client}
)
ORDER BY u.id
"""
PEOPLE_KIND = "people"


async def _write_people(
    session: AsyncSession, attempt: Attempt, archive: zipfile.ZipFile, written: Written
) -> None:
    params: dict[str, Any] = {"tenant_id": attempt.tenant_id}
    client = ""
    if attempt.client_id:
        client, params["client_id"] = "AND m.client_id = :client_id", attempt.client_id
    rows = 0
    sha = hashlib.sha256()
    name = f"{PEOPLE_KIND}.ndjson"
    with archive.open(name, "w", force_zip64=True) as out:
        result = await session.stream(text(_PEOPLE.format(client=client)), params)
        async for (line,) in result:
            data = line.encode() + b"\n"
            sha.update(data)
            out.write(data)
            rows += 1
    written.rows += rows
    written.files.append(
        {"name": name, "kind": PEOPLE_KIND, "rows": rows, "sha256": sha.hexdigest()}
    )


async def _write_media(
    db: Database,
    settings: Settings,
    http: httpx.AsyncClient,
    attempt: Attempt,
    archive: zipfile.ZipFile,
    media_refs: list[tuple[uuid.UUID, list[Any]]],
    written: Written,
    kinds_before: int,
) -> None:
    """Each media file the content names, once, under media/; one that cannot be fetched is
    listed in the manifest's media_errors rather than failing the export."""
    limits = MediaLimits.from_settings(settings)
    seen: set[str] = set()
    scratch = file_path(settings, attempt.tenant_id, attempt.export_id).with_suffix(".media")
    index: list[dict[str, Any]] = []
    for revision_id, items in media_refs:
        for position, item in enumerate(items):
            if not isinstance(item, dict) or not item.get("url"):
                continue
            url = str(item["url"])
            if url in seen:
                continue
            seen.add(url)
            try:
                async with asyncio.timeout(MEDIA_TIMEOUT):
                    got = await download(
                        http,
                        url,
                        kind=str(item.get("type") or "image"),
                        dest=scratch,
                        limits=limits,
                        allowed_networks=settings.publishing_media_allowed_networks,
                    )
            except (MediaError, TimeoutError) as exc:
                message = (
                    exc.message if isinstance(exc, MediaError) else "the download took too long"
                )
                written.media_errors.append({"url": shown(url), "error": message})
                continue
            name = f"media/{revision_id}-{position}{_EXTENSIONS.get(got.content_type, '')}"
            sha = await asyncio.to_thread(_add_file, archive, scratch, name)
            scratch.unlink(missing_ok=True)
            written.media += 1
            index.append(
                {
                    "name": name,
                    "revision_id": str(revision_id),
                    "url": shown(url),
                    "content_type": got.content_type,
                    "bytes": got.size,
                    "sha256": sha,
                }
            )
            await _progress(
                db, settings, attempt, kinds=kinds_before, rows=written.rows, media=written.media
            )
    written.files.append({"name": "media", "kind": MEDIA_KIND, "rows": len(index), "files": index})
    await _progress(
        db, settings, attempt, kinds=kinds_before + 1, rows=written.rows, media=written.media
    )


def _add_file(archive: zipfile.ZipFile, source: Path, name: str) -> str:
    sha = hashlib.sha256()
    # Media are compressed already: stored as they are.
    with (
        source.open("rb") as f,
        archive.open(
            zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), "w", force_zip64=True
        ) as out,
    ):
        while chunk := f.read(1024 * 1024):
            sha.update(chunk)
            out.write(chunk)
    return sha.hexdigest()


async def _finish(
    db: Database,
    attempt: Attempt,
    *,
    error: str | None = None,
    manifest: dict[str, Any] | None = None,
    size: int | None = None,
    digest: str | None = None,
    expires_after: timedelta | None = None,
    totals: tuple[int, int, int] | None = None,
) -> None:
    async with db.tenant_transaction(attempt.tenant_id) as session:
        export = await _locked(session, attempt.tenant_id, attempt.export_id)
        if export is None or export.attempts != attempt.number:
            return
        now = utcnow()
        export.claimed_until = None
        export.finished_at = now
        export.updated_at = now
        export.version += 1
        if error is not None:
            export.status = ExportStatus.failed
            export.error = error
            return
        assert manifest is not None and expires_after is not None and totals is not None
        export.status = ExportStatus.done
        export.error = None
        export.manifest = manifest
        export.size_bytes, export.sha256 = size, digest
        export.expires_at = now + expires_after
        export.kinds_total = export.kinds_done = totals[0]
        export.rows_written, export.media_files = totals[1], totals[2]
        record_audit(
            session,
            tenant_id=attempt.tenant_id,
            actor=None,
            action="export.completed",
            subject_type="data_export",
            subject_id=export.id,
            changes={"rows": totals[1], "media_files": totals[2], "bytes": size},
        )


async def expire(
    db: Database, settings: Settings, tenant_id: uuid.UUID, export_id: uuid.UUID
) -> bool:
    """Delete a finished export's file once its time is up; the row stays, marked expired."""
    async with db.tenant_transaction(tenant_id) as session:
        export = await _locked(session, tenant_id, export_id)
        if export is None or export.status != ExportStatus.done:
            return False
        if export.expires_at is None or export.expires_at > utcnow():
            return False
        file_path(settings, tenant_id, export_id).unlink(missing_ok=True)
        export.status = ExportStatus.expired
        export.updated_at = utcnow()
        export.version += 1
        return True
