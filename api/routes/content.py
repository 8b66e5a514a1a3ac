"""Content items, their revisions, checks, submission, decisions, comments and the calendar."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, ResourcesDep, SessionDep, tagged
from api.pagination import Cursor as LongCursor
from api.problems import responses
from api.routes.publishing import PublishingChecks
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from publishing import service as publishing
from publishing.schemas import CalendarEntry, PublicationSummary
from social.service import accounts
from tenants.schemas import Instant
from workflows import service
from workflows.schemas import (
    ChecksResponse,
    CommentCreate,
    CommentRead,
    ContentCreate,
    ContentRead,
    ContentSummary,
    ContentUpdate,
    DecisionCreate,
    DecisionRead,
    DiffRead,
    HistoryEntry,
    RevisionRead,
    ScheduleRequest,
    StatusField,
    SubmitRequest,
)

router = APIRouter(tags=["content"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]


@router.get("/brands/{brand_id}/content", summary="A brand's content items, oldest first")
async def list_brand_content(
    brand_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    status_: Annotated[list[StatusField], Query(alias="status", max_length=8)] = [],  # noqa: B006
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ContentSummary]:
    return await service.list_brand_content(
        session, principal, brand_id, status=list(status_), limit=limit, cursor=cursor
    )


@router.post(
    "/brands/{brand_id}/content",
    status_code=status.HTTP_201_CREATED,
    summary="Draft a content item (its first revision)",
)
async def create_content(
    brand_id: uuid.UUID,
    body: ContentCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
) -> ContentRead:
    item = await service.create_content(
        session, principal, brand_id, body, accounts_of_brand=accounts.accounts_of_brand
    )
    return tagged(response, item)


@router.get("/content/{content_id}", summary="A content item with its current revision")
async def get_content(
    content_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ContentRead:
    return tagged(response, await service.get_content(session, principal, content_id))


@router.patch(
    "/content/{content_id}",
    responses=responses(409, 412),
    summary="Edit: a new revision; an item under review or approved starts over",
)
async def update_content(
    content_id: uuid.UUID,
    body: ContentUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> ContentRead:
    item = await service.update_content(
        session,
        principal,
        content_id,
        body,
        if_match=if_match,
        accounts_of_brand=accounts.accounts_of_brand,
    )
    return tagged(response, item)


@router.get("/content/{content_id}/revisions", summary="Every revision, oldest first")
async def list_revisions(
    content_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: LongCursor = None,
) -> Page[RevisionRead]:
    return await service.list_revisions(session, principal, content_id, limit=limit, cursor=cursor)


@router.get(
    "/content/{content_id}/revisions/{base}/diff/{head}",
    summary="What changed between two revisions (by number), word by word",
)
async def diff_revisions(
    content_id: uuid.UUID,
    base: Annotated[int, Path(ge=1, le=100_000)],
    head: Annotated[int, Path(ge=1, le=100_000)],
    principal: CurrentPrincipal,
    session: SessionDep,
) -> DiffRead:
    return await service.diff_revisions(session, principal, content_id, base, head)


@router.get(
    "/content/{content_id}/checks",
    summary="Guidelines, platform limits, alt text, links and spelling of the current revision",
)
async def check_content(
    content_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> ChecksResponse:
    return await service.check_content(session, principal, content_id)


@router.post(
    "/content/{content_id}/submit",
    responses=responses(409),
    summary="Submit the current revision to its workflow",
)
async def submit_content(
    content_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
    body: SubmitRequest | None = None,
) -> ContentRead:
    item = await service.submit_content(
        session,
        principal,
        content_id,
        body or SubmitRequest(),
        link_ttl=resources.settings.approval_link_ttl,
    )
    return tagged(response, item)


@router.post(
    "/content/{content_id}/schedule",
    responses=responses(409),
    summary="Schedule an approved item for publication",
)
async def schedule_content(
    content_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
    resources: ResourcesDep,
    check: PublishingChecks,
    body: ScheduleRequest | None = None,
) -> ContentRead:
    """Every target account gets its publication at the planned time; 422 with every problem
    (per platform) that would stop one from going out."""
    item = await service.schedule_content(session, principal, content_id, body or ScheduleRequest())
    await publishing.plan(session, principal, content_id, check=check, settings=resources.settings)
    return tagged(response, item)


@router.post(
    "/content/{content_id}/unschedule",
    responses=responses(409),
    summary="Take a scheduled item back to approved (to edit it)",
)
async def unschedule_content(
    content_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ContentRead:
    item = await service.unschedule_content(session, principal, content_id)
    await publishing.cancel_open(session, principal, content_id)
    return tagged(response, item)


@router.get("/content/{content_id}/decisions", summary="Every decision on the item")
async def list_decisions(
    content_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: LongCursor = None,
) -> Page[DecisionRead]:
    return await service.list_decisions(session, principal, content_id, limit=limit, cursor=cursor)


@router.post(
    "/content/{content_id}/decisions",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Approve, request changes or reject the current step",
)
async def decide(
    content_id: uuid.UUID,
    body: DecisionCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
) -> DecisionRead:
    channel = "portal" if principal.role == "client" else "app"
    return await service.decide(
        session,
        principal,
        content_id,
        body,
        channel=channel,
        link_ttl=resources.settings.approval_link_ttl,
    )


@router.get("/content/{content_id}/comments", summary="The item's comments, oldest first")
async def list_comments(
    content_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: LongCursor = None,
) -> Page[CommentRead]:
    return await service.list_comments(session, principal, content_id, limit=limit, cursor=cursor)


@router.post(
    "/content/{content_id}/comments",
    status_code=status.HTTP_201_CREATED,
    summary="Comment (internal or client-visible), reply, anchor to text, @mention",
)
async def add_comment(
    content_id: uuid.UUID, body: CommentCreate, principal: CurrentPrincipal, session: SessionDep
) -> CommentRead:
    return await service.add_comment(session, principal, content_id, body)


@router.get("/content/{content_id}/history", summary="The item's audit trail")
async def content_history(
    content_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: LongCursor = None,
) -> Page[HistoryEntry]:
    return await service.history(session, principal, content_id, limit=limit, cursor=cursor)


@router.get(
    "/calendar",
    summary="Items planned in a date range, with their status and their publications' statuses",
)
async def calendar(
    principal: CurrentPrincipal,
    session: SessionDep,
    from_: Annotated[Instant, Query(alias="from")],
    to: Annotated[Instant, Query()],
    brand: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[CalendarEntry]:
    start: datetime = from_
    page = await service.calendar(
        session, principal, brand_id=brand, start=start, end=to, limit=limit, cursor=cursor
    )
    counts = await publishing.summaries(session, principal.tenant_id, [i.id for i in page.items])
    return Page[CalendarEntry](
        items=[
            CalendarEntry(
                **item.model_dump(), publications=counts.get(item.id) or PublicationSummary()
            )
            for item in page.items
        ],
        next_cursor=page.next_cursor,
    )
