"""Staff assignments on brands, capacity views and the audit trail."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, SessionDep, tagged
from api.problems import responses
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from tenants import service
from tenants.schemas import (
    AssignmentCreate,
    AssignmentRead,
    AssignmentUpdate,
    AuditEventRead,
    Day,
    Instant,
    Month,
    StaffCapacity,
    TeamCapacityRow,
)

router = APIRouter(tags=["assignments"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]


@router.get("/assignments", summary="List assignments (members see their own)")
async def list_assignments(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    brand_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    active_on: Annotated[
        Day | None,
        Query(description="Only assignments covering this day, 2000-01-01 to 2099-12-31"),
    ] = None,
) -> Page[AssignmentRead]:
    return await service.list_assignments(
        session,
        principal,
        limit=limit,
        cursor=cursor,
        brand_id=brand_id,
        user_id=user_id,
        active_on=active_on,
    )


@router.post(
    "/assignments",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Put a staff member on a brand",
)
async def create_assignment(
    body: AssignmentCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> AssignmentRead:
    assignment = await service.create_assignment(session, principal, body)
    return tagged(response, assignment)


@router.get("/assignments/{assignment_id}", summary="Read an assignment")
async def get_assignment(
    assignment_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> AssignmentRead:
    assignment = await service.get_assignment(session, principal, assignment_id)
    return tagged(response, assignment)


@router.patch(
    "/assignments/{assignment_id}",
    responses=responses(409, 412),
    summary="Change hours or dates; an end date ends access after that day (agency's timezone)",
)
async def update_assignment(
    assignment_id: uuid.UUID,
    body: AssignmentUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> AssignmentRead:
    assignment = await service.update_assignment(
        session, principal, assignment_id, body, if_match=if_match
    )
    return tagged(response, assignment)


@router.get("/staff/{user_id}/capacity", summary="A staff member's allocation for a month")
async def get_staff_capacity(
    user_id: uuid.UUID, month: Month, principal: CurrentPrincipal, session: SessionDep
) -> StaffCapacity:
    return await service.staff_capacity(session, principal, user_id, month)


@router.get("/team/capacity", summary="Everyone's allocation against capacity for a month")
async def get_team_capacity(
    month: Month,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[TeamCapacityRow]:
    return await service.team_capacity(session, principal, month, limit=limit, cursor=cursor)


@router.get("/audit-events", summary="Who changed what, newest first")
async def list_audit_events(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    subject_type: Annotated[str | None, Query(max_length=32)] = None,
    subject_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> Page[AuditEventRead]:
    return await service.list_audit_events(
        session,
        principal,
        limit=limit,
        cursor=cursor,
        subject_type=subject_type,
        subject_id=subject_id,
        actor_id=actor_id,
        since=since,
        until=until,
    )
