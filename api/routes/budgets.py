"""Budget status: per client, for the whole team, and in the client portal."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CurrentPrincipal, CurrentReader, SessionDep
from api.encoding import json_response
from billing.budgets import service
from billing.budgets.schemas import BudgetRead, BudgetSummary
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from tenants.schemas import Month

router = APIRouter(tags=["budgets"])


@router.get(
    "/clients/{client_id}/budget",
    response_model=BudgetRead,
    summary="A client's retainer month in figures",
)
async def get_client_budget(client_id: uuid.UUID, month: Month, reader: CurrentReader) -> Response:
    figures = await service.client_budget(reader.connection, reader.principal, client_id, month)
    return json_response(figures)


@router.get("/budgets", summary="Every client's month, the likeliest overrun first")
async def list_budgets(
    month: Month,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[BudgetSummary]:
    return await service.team_budgets(session, principal, month, limit=limit, cursor=cursor)


@router.get("/portal/budget", summary="Your company's retainer month (client contacts)")
async def get_portal_budget(
    month: Month, principal: CurrentPrincipal, session: SessionDep
) -> BudgetRead:
    return await service.portal_budget(session, principal, month)
