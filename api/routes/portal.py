"""The client approval portal (client contacts) and external approvers' single-use links."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from api.problems import responses
from workflows import service
from workflows.schemas import InboxItem, LinkDecision, LinkDecisionRead, LinkView

router = APIRouter(tags=["portal"])


@router.get(
    "/portal/inbox",
    summary="What awaits your decision (client contacts); the item, decisions, comments and "
    "history are at /v1/content/{id}/…",
)
async def portal_inbox(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> list[InboxItem]:
    return await service.inbox(session, principal, limit=limit)


@router.get(
    "/approval-links/{token}",
    responses=responses(409, 410),
    summary="What an external approver sees (no account needed)",
    openapi_extra={"security": []},
)
async def view_approval_link(token: str, session: SessionDep, resources: ResourcesDep) -> LinkView:
    return await service.view_link(session, resources.signer, token)


@router.post(
    "/approval-links/{token}",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409, 410),
    summary="Record an external approver's decision; the link is then used",
    openapi_extra={"security": []},
)
async def decide_by_approval_link(
    token: str,
    body: LinkDecision,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> LinkDecisionRead:
    return await service.decide_by_link(
        session, resources.signer, token, body, request_id=request.state.request_id
    )
