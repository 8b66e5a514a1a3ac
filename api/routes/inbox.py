"""The community inbox: the list, one item with its thread and who is looking at it, and
what agents do (reply, assign, status, hide, labels). Changes carry If-Match: a stale one
answers 412 with what changed meanwhile."""

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, ResourcesDep, SessionDep, tagged
from api.pagination import Cursor
from api.problems import responses
from billing.budgets.models import Activity
from billing.budgets.schemas import EntryCreate
from billing.budgets.service.entries import create_entry
from inbox.jobs import SEND_JOB, send_job_id
from inbox.models import ActionKind, ActionStatus, InboxAction, InboxItem
from inbox.schemas import (
    AssignRequest,
    GroupByField,
    HideRequest,
    InboxStats,
    ItemDetail,
    ItemRead,
    ItemStatusField,
    KindField,
    LabelsRequest,
    ModerationResult,
    ReplyCreate,
    ReplyResult,
    SentimentField,
    SlaField,
    StatusRequest,
)
from inbox.service import figures
from inbox.service import items as service
from infra.clock import utcnow
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from infra.queue import enqueue_after_commit
from tenants.schemas import Month

router = APIRouter(prefix="/inbox", tags=["inbox"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
ItemChanged = responses(412, 422)


def _send_after_commit(session: SessionDep, action: InboxAction) -> None:
    if action.status == ActionStatus.queued:
        enqueue_after_commit(
            session,
            SEND_JOB,
            str(action.tenant_id),
            str(action.id),
            job_id=send_job_id(action),
        )


def _read(response: Response, item: InboxItem) -> ItemRead:
    return tagged(response, service.item_read(item, utcnow()))


@router.get("", summary="The inbox: crisis items first, then newest first")
async def list_inbox(
    principal: CurrentPrincipal,
    session: SessionDep,
    brand: uuid.UUID | None = None,
    client: uuid.UUID | None = None,
    account: uuid.UUID | None = None,
    status: ItemStatusField | None = None,
    assignee: uuid.UUID | None = None,
    unassigned: bool = False,
    kind: KindField | None = None,
    sentiment: SentimentField | None = None,
    label: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    sla: SlaField | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Text contains")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ItemRead]:
    return await service.list_items(
        session,
        principal,
        brand_id=brand,
        client_id=client,
        account_id=account,
        status=status,
        assignee_id=assignee,
        unassigned=unassigned,
        kind=kind,
        sentiment=sentiment,
        label=label,
        sla_state=sla,
        q=q,
        limit=limit,
        cursor=cursor,
    )


# Before "/{item_id}", which would otherwise take "stats" for an item id.
@router.get(
    "/stats",
    summary="A month's response figures per client, brand or agent (the agency's team view)",
)
async def get_inbox_stats(
    principal: CurrentPrincipal,
    session: SessionDep,
    month: Month,
    by: GroupByField = "brand",
    client: uuid.UUID | None = None,
    brand: uuid.UUID | None = None,
) -> InboxStats:
    """Items received in the month (midnight to midnight in the agency's time zone) that the
    caller may read: volume by kind, response rate, first response times in the client's
    business hours and in all hours (median and 90th percentile), share answered within
    target, breaches and sentiment. `by=agent` is the team view: an item counts for the
    member who first answered it, or, unanswered, for its assignee."""
    return await figures.inbox_stats(
        session, principal, month=month, by=by, client_id=client, brand_id=brand
    )


@router.get(
    "/{item_id}",
    summary="One item with its thread, its replies and who else has it open",
)
async def get_inbox_item(
    item_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
) -> ItemDetail:
    detail = await service.get_item(
        session,
        principal,
        item_id,
        redis=resources.redis,
        viewer_seconds=resources.settings.inbox_viewer_seconds,
    )
    return tagged(response, detail)


@router.post(
    "/{item_id}/reply",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ItemChanged,
    summary="Answer (publicly, or in private where the platform allows); sent exactly once",
)
async def reply_to_item(
    item_id: uuid.UUID,
    body: ReplyCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> ReplyResult:
    item, action, warnings = await service.reply(
        session, principal, item_id, body, if_match=if_match
    )
    if body.minutes_spent is not None:
        await create_entry(
            session,
            principal,
            EntryCreate(
                brand_id=item.brand_id,
                # The time spent answering ends now: its day is the agency's day it began.
                started_at=utcnow() - timedelta(minutes=body.minutes_spent),
                minutes=body.minutes_spent,
                activity=Activity.community_animation,
                inbox_item_id=item.id,
            ),
        )
    _send_after_commit(session, action)
    return ReplyResult(
        item=_read(response, item), action=service.action_read(action), warnings=warnings
    )


@router.post(
    "/{item_id}/replies/{action_id}/approve",
    responses=responses(409),
    summary="Approve a reply that waits for a manager (brands that require it)",
)
async def approve_reply(
    item_id: uuid.UUID,
    action_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
) -> ModerationResult:
    item, action = await service.approve(session, principal, item_id, action_id)
    _send_after_commit(session, action)
    return ModerationResult(item=_read(response, item), action=service.action_read(action))


@router.post("/{item_id}/assign", responses=ItemChanged, summary="Assign to a member, or unassign")
async def assign_item(
    item_id: uuid.UUID,
    body: AssignRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> ItemRead:
    item = await service.assign(session, principal, item_id, body.assignee_id, if_match=if_match)
    return _read(response, item)


@router.post("/{item_id}/status", responses=ItemChanged, summary="Change the item's status")
async def set_item_status(
    item_id: uuid.UUID,
    body: StatusRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> ItemRead:
    item = await service.set_status(session, principal, item_id, body.status, if_match=if_match)
    return _read(response, item)


@router.post(
    "/{item_id}/hide",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ItemChanged,
    summary="Hide the item on the platform (hidden: false shows it again)",
)
async def hide_item(
    item_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
    body: HideRequest | None = None,
) -> ModerationResult:
    hidden = (body or HideRequest()).hidden
    item, action = await service.moderate(
        session,
        principal,
        item_id,
        ActionKind.hide if hidden else ActionKind.unhide,
        if_match=if_match,
    )
    _send_after_commit(session, action)
    return ModerationResult(item=_read(response, item), action=service.action_read(action))


@router.post(
    "/{item_id}/delete",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ItemChanged,
    summary="Delete the item on the platform, where the page may",
)
async def delete_item(
    item_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> ModerationResult:
    item, action = await service.moderate(
        session, principal, item_id, ActionKind.delete, if_match=if_match
    )
    _send_after_commit(session, action)
    return ModerationResult(item=_read(response, item), action=service.action_read(action))


@router.post("/{item_id}/labels", responses=ItemChanged, summary="Add and remove labels")
async def label_item(
    item_id: uuid.UUID,
    body: LabelsRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> ItemRead:
    item = await service.change_labels(session, principal, item_id, body, if_match=if_match)
    return _read(response, item)
