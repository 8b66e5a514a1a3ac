"""Clients' retainers and the agency's hourly rates."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, SessionDep, tagged
from api.pagination import Cursor
from api.problems import responses
from billing.budgets import service
from billing.budgets.schemas import (
    RateCreate,
    RateRead,
    RateUpdate,
    RetainerCreate,
    RetainerRead,
    RetainerUpdate,
)
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(tags=["retainers"])


@router.get("/retainers", summary="List retainers")
async def list_retainers(
    principal: CurrentPrincipal,
    session: SessionDep,
    client_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[RetainerRead]:
    return await service.list_retainers(
        session, principal, client_id=client_id, limit=limit, cursor=cursor
    )


@router.post(
    "/retainers",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Give a client a monthly retainer",
)
async def create_retainer(
    body: RetainerCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> RetainerRead:
    retainer = await service.create_retainer(session, principal, body)
    return tagged(response, retainer)


@router.get("/retainers/{retainer_id}", summary="Read a retainer and its terms over time")
async def get_retainer(
    retainer_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> RetainerRead:
    retainer = await service.get_retainer(session, principal, retainer_id)
    return tagged(response, retainer)


@router.patch(
    "/retainers/{retainer_id}",
    responses=responses(409, 412),
    summary="New terms from a month on (earlier months keep theirs)",
)
async def update_retainer(
    retainer_id: uuid.UUID,
    body: RetainerUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> RetainerRead:
    retainer = await service.update_retainer(
        session, principal, retainer_id, body, if_match=if_match
    )
    return tagged(response, retainer)


@router.get("/rates", summary="The agency's hourly rates, most specific first")
async def list_rates(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RateRead]:
    return await service.list_rates(session, principal, limit=limit, cursor=cursor)


@router.post(
    "/rates",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Set a rate: a member on a client, a client, a role, or the default",
)
async def create_rate(
    body: RateCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> RateRead:
    rate = await service.create_rate(session, principal, body)
    return tagged(response, rate)


@router.patch("/rates/{rate_id}", responses=responses(412), summary="Change a rate")
async def update_rate(
    rate_id: uuid.UUID,
    body: RateUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> RateRead:
    rate = await service.update_rate(session, principal, rate_id, body, if_match=if_match)
    return tagged(response, rate)


@router.delete(
    "/rates/{rate_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(412),
    summary="Remove a rate (approved time keeps the rate it was frozen at)",
)
async def delete_rate(
    rate_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, if_match: IfMatch
) -> None:
    await service.delete_rate(session, principal, rate_id, if_match=if_match)
