"""The agency's clients."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, SessionDep, tagged
from api.problems import responses
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from tenants import service
from tenants.schemas import ClientCreate, ClientRead, ClientUpdate, ListStatus, SortOrder

router = APIRouter(prefix="/clients", tags=["clients"])


@router.get("", summary="List clients (archived ones only when asked)")
async def list_clients(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    status: ListStatus = "active",
    q: Annotated[str | None, Query(max_length=200, description="Name contains")] = None,
    sort: SortOrder = "name",
) -> Page[ClientRead]:
    return await service.list_clients(
        session, principal, limit=limit, cursor=cursor, status=status, q=q, sort=sort
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a client")
async def create_client(
    body: ClientCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ClientRead:
    client = await service.create_client(session, principal, body)
    return tagged(response, client)


@router.get("/{client_id}", summary="Read a client")
async def get_client(
    client_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ClientRead:
    client = await service.get_client(session, principal, client_id)
    return tagged(response, client)


@router.patch(
    "/{client_id}",
    responses=responses(409, 412),
    summary="Change a client; status 'archived' archives it and keeps every record",
)
async def update_client(
    client_id: uuid.UUID,
    body: ClientUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> ClientRead:
    client = await service.update_client(session, principal, client_id, body, if_match=if_match)
    return tagged(response, client)
