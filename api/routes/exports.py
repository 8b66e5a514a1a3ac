"""Data exports (owners): ask for one, follow its progress, get a short-lived download link.
The link itself (`/v1/export-files?token=`) needs no access token: its signature names the
agency, the export and the owner who asked for it."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import FileResponse

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep, tagged
from api.problems import responses
from api.tenancy import enter_tenant
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from privacy import export as service
from privacy.schemas import ExportCreate, ExportLink, ExportRead

router = APIRouter(tags=["data rights"])


@router.post(
    "/exports",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(422),
    summary="Ask for an export of the whole agency, or of one client (owners); a job writes it",
)
async def create_export(
    body: ExportCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ExportRead:
    return tagged(response, service.read(await service.create_export(session, principal, body)))


@router.get("/exports", summary="List the agency's exports, newest last (owners)")
async def list_exports(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[ExportRead]:
    return await service.list_exports(session, principal, cursor=cursor, limit=limit)


@router.get("/exports/{export_id}", summary="Read an export and its progress (owners)")
async def get_export(
    export_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ExportRead:
    return tagged(response, service.read(await service.get_export(session, principal, export_id)))


@router.post(
    "/exports/{export_id}/link",
    responses=responses(409),
    summary="A signed download link of a finished export, valid a few minutes (owners)",
)
async def export_download_link(
    export_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
) -> ExportLink:
    response.headers["Cache-Control"] = "no-store"
    return await service.download_link(
        session, principal, export_id, resources.signer, resources.settings
    )


@router.get(
    service.FILE_PATH.removeprefix("/v1"),
    response_class=FileResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The export's ZIP"},
        **responses(403),
    },
    summary="Download an export's ZIP through its signed link",
)
async def download_export_file(
    token: Annotated[str, Query(min_length=1, max_length=4096)],
    session: SessionDep,
    resources: ResourcesDep,
) -> FileResponse:
    tenant_id, export_id, user_id = service.link_claims(resources.signer, token)
    await enter_tenant(session, tenant_id)
    export, path = await service.open_download(
        session, resources.settings, tenant_id, export_id, user_id
    )
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"passerelle-export-{export.created_at:%Y%m%d}-{export.id}.zip",
        headers={"Cache-Control": "no-store"},
    )
