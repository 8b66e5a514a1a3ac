"""The agency's team: list, read, change role or status."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import CurrentPrincipal, CurrentReader, IfMatch, ResourcesDep, SessionDep, tagged
from api.encoding import json_response
from api.problems import responses
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from tenants import service
from tenants.models import Role
from tenants.schemas import MemberRead, MemberUpdate

router = APIRouter(prefix="/members", tags=["members"])


@router.get("", response_model=Page[MemberRead], summary="List the agency's members")
async def list_members(
    reader: CurrentReader,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    role: Role | None = None,
    status: Literal["invited", "active", "disabled"] | None = None,
) -> Response:
    page = await service.list_members(
        reader.connection, reader.principal, limit=limit, cursor=cursor, role=role, status=status
    )
    return json_response(page)


@router.get("/{user_id}", summary="Read one member")
async def get_member(
    user_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> MemberRead:
    member = await service.get_member(session, principal, user_id)
    return tagged(response, member)


@router.patch(
    "/{user_id}",
    responses=responses(409, 412),
    summary="Change a member's role, status or client",
)
async def update_member(
    user_id: uuid.UUID,
    body: MemberUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
) -> MemberRead:
    member = await service.update_member(
        session, principal, user_id, body, resources.settings, if_match=if_match
    )
    return tagged(response, member)
