"""Brands of the agency's clients, with their guidelines."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, ResourcesDep, SessionDep, tagged
from api.problems import responses
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from tenants import service
from tenants.schemas import BrandCreate, BrandRead, BrandUpdate, ListStatus, SortOrder

router = APIRouter(prefix="/brands", tags=["brands"])


@router.get("", summary="List the brands you can see")
async def list_brands(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    client_id: uuid.UUID | None = None,
    status: ListStatus = "active",
    q: Annotated[str | None, Query(max_length=200, description="Name contains")] = None,
    sort: SortOrder = "name",
) -> Page[BrandRead]:
    return await service.list_brands(
        session,
        principal,
        limit=limit,
        cursor=cursor,
        client_id=client_id,
        status=status,
        q=q,
        sort=sort,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Add a brand to a client (counts against the plan's active brands)",
)
async def create_brand(
    body: BrandCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
) -> BrandRead:
    brand = await service.create_brand(session, principal, body, resources.settings)
    return tagged(response, brand)


@router.get("/{brand_id}", summary="Read a brand")
async def get_brand(
    brand_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> BrandRead:
    brand = await service.get_brand(session, principal, brand_id)
    return tagged(response, brand)


@router.patch("/{brand_id}", responses=responses(409, 412), summary="Change or archive a brand")
async def update_brand(
    brand_id: uuid.UUID,
    body: BrandUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
) -> BrandRead:
    brand = await service.update_brand(
        session, principal, brand_id, body, resources.settings, if_match=if_match
    )
    return tagged(response, brand)
