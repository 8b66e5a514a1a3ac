"""Workflow templates: the agency's approval recipes."""

import uuid

from fastapi import APIRouter, Response, status

from api.deps import CurrentPrincipal, IfMatch, SessionDep, tagged
from api.pagination import DEFAULT_LIMIT, Cursor, Limit
from api.problems import responses
from infra.pagination import Page
from workflows import service
from workflows.schemas import TemplateCreate, TemplateRead, TemplateUpdate

router = APIRouter(tags=["workflow templates"])


@router.get("/workflow-templates", summary="The agency's workflow templates")
async def list_workflow_templates(
    principal: CurrentPrincipal,
    session: SessionDep,
    include_archived: bool = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[TemplateRead]:
    return await service.list_templates(
        session, principal, include_archived=include_archived, limit=limit, cursor=cursor
    )


@router.post(
    "/workflow-templates",
    status_code=status.HTTP_201_CREATED,
    summary="Create a template (an empty list of steps means no approval)",
)
async def create_workflow_template(
    body: TemplateCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> TemplateRead:
    template = await service.create_template(session, principal, body)
    return tagged(response, template)


@router.get("/workflow-templates/{template_id}", summary="One workflow template")
async def get_workflow_template(
    template_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> TemplateRead:
    template = await service.get_template(session, principal, template_id)
    return tagged(response, template)


@router.put(
    "/workflow-templates/{template_id}",
    responses=responses(412),
    summary="Replace a template; items already under review keep the copy they started with",
)
async def replace_workflow_template(
    template_id: uuid.UUID,
    body: TemplateUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> TemplateRead:
    template = await service.update_template(
        session, principal, template_id, body, if_match=if_match
    )
    return tagged(response, template)
