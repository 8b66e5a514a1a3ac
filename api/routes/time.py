"""Time entries, timers and weekly timesheets."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, SessionDep, tagged
from api.problems import responses
from billing.budgets import service
from billing.budgets.models import Activity
from billing.budgets.schemas import (
    CurrentTimer,
    EntryCreate,
    EntryRead,
    EntryStatusField,
    EntryUpdate,
    TimerRead,
    TimerStart,
    TimerStopped,
    TimesheetRead,
    TimesheetReturn,
)
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from tenants.schemas import Day, IsoWeek

router = APIRouter(tags=["time"])


@router.get("/time-entries", summary="List time entries (members see their own)")
async def list_time_entries(
    principal: CurrentPrincipal,
    session: SessionDep,
    user_id: Annotated[uuid.UUID | None, Query(description="Whose time")] = None,
    brand_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    date_from: Annotated[Day | None, Query(alias="from")] = None,
    date_to: Annotated[Day | None, Query(alias="to")] = None,
    activity: Activity | None = None,
    status: EntryStatusField | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[EntryRead]:
    filters = service.EntryFilters(
        user_id=user_id,
        brand_id=brand_id,
        client_id=client_id,
        date_from=date_from,
        date_to=date_to,
        activity=activity,
        status=status,
    )
    return await service.list_entries(session, principal, filters, limit=limit, cursor=cursor)


@router.post(
    "/time-entries",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Log time on a brand you are assigned to",
)
async def create_time_entry(
    body: EntryCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> EntryRead:
    entry = await service.create_entry(session, principal, body)
    return tagged(response, entry)


@router.get("/time-entries/{entry_id}", summary="Read a time entry")
async def get_time_entry(
    entry_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> EntryRead:
    entry = await service.get_entry(session, principal, entry_id)
    return tagged(response, entry)


@router.patch(
    "/time-entries/{entry_id}",
    responses=responses(409, 412),
    summary="Correct an open time entry",
)
async def update_time_entry(
    entry_id: uuid.UUID,
    body: EntryUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> EntryRead:
    entry = await service.update_entry(session, principal, entry_id, body, if_match=if_match)
    return tagged(response, entry)


@router.delete(
    "/time-entries/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(409, 412),
    summary="Delete an open time entry",
)
async def delete_time_entry(
    entry_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, if_match: IfMatch
) -> None:
    await service.delete_entry(session, principal, entry_id, if_match=if_match)


@router.get("/timers/current", summary="Your running timer, if any")
async def current_timer(principal: CurrentPrincipal, session: SessionDep) -> CurrentTimer:
    return await service.current_timer(session, principal)


@router.post(
    "/timers/start",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Start a timer (one at a time)",
)
async def start_timer(
    body: TimerStart, principal: CurrentPrincipal, session: SessionDep
) -> TimerRead:
    return await service.start_timer(session, principal, body)


@router.post(
    "/timers/stop",
    responses=responses(409),
    summary="Stop your timer: one entry per local day it ran on",
)
async def stop_timer(principal: CurrentPrincipal, session: SessionDep) -> TimerStopped:
    return await service.stop_timer(session, principal)


@router.delete(
    "/timers/current",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(409),
    summary="Discard your running timer without logging time",
)
async def discard_timer(principal: CurrentPrincipal, session: SessionDep) -> None:
    await service.discard_timer(session, principal)


@router.get("/timesheets/{user_id}/{iso_week}", summary="A person's week: entries and totals")
async def get_timesheet(
    user_id: uuid.UUID, iso_week: IsoWeek, principal: CurrentPrincipal, session: SessionDep
) -> TimesheetRead:
    return await service.get_timesheet(session, principal, user_id, iso_week)


@router.post(
    "/timesheets/{user_id}/{iso_week}/submit",
    responses=responses(409),
    summary="Submit your week: its time is locked until a manager returns it",
)
async def submit_timesheet(
    user_id: uuid.UUID, iso_week: IsoWeek, principal: CurrentPrincipal, session: SessionDep
) -> TimesheetRead:
    return await service.submit_timesheet(session, principal, user_id, iso_week)


@router.post(
    "/timesheets/{user_id}/{iso_week}/approve",
    responses=responses(409),
    summary="Approve a submitted week; each entry's rate is frozen",
)
async def approve_timesheet(
    user_id: uuid.UUID, iso_week: IsoWeek, principal: CurrentPrincipal, session: SessionDep
) -> TimesheetRead:
    return await service.approve_timesheet(session, principal, user_id, iso_week)


@router.post(
    "/timesheets/{user_id}/{iso_week}/return",
    responses=responses(409),
    summary="Return a week to its author with a reason",
)
async def return_timesheet(
    user_id: uuid.UUID,
    iso_week: IsoWeek,
    body: TimesheetReturn,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> TimesheetRead:
    return await service.return_timesheet(session, principal, user_id, iso_week, body.reason)
