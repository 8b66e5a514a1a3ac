"""The client approval portal (client contacts) and external approvers' single-use links."""

from fastapi import APIRouter, Request, status

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from api.pagination import DEFAULT_LIMIT, Cursor, Limit
from api.problems import responses
from api.tenancy import enter_tenant
from infra.pagination import Page
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
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[InboxItem]:
    return await service.inbox(session, principal, limit=limit, cursor=cursor)


@router.get(
    "/approval-links/{token}",
    responses=responses(409, 410),
    summary="What an external approver sees (no account needed)",
    openapi_extra={"security": []},
)
async def view_approval_link(token: str, session: SessionDep, resources: ResourcesDep) -> LinkView:
    link = service.read_link(resources.signer, token)
    await enter_tenant(session, link.tenant_id)
    return await service.view_link(session, link)


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
    link = service.read_link(resources.signer, token)
    await enter_tenant(session, link.tenant_id)
    return await service.decide_by_link(
        session,
        link,
        body,
        link_ttl=resources.settings.approval_link_ttl,
        request_id=request.state.request_id,
    )
