"""The inbox's settings: saved replies, inbox rules and clients' response policies."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, SessionDep, tagged
from api.pagination import DEFAULT_LIMIT, Cursor, Limit
from api.problems import responses
from inbox.schemas import (
    InboxRuleCreate,
    InboxRuleRead,
    InboxRuleUpdate,
    RenderedReply,
    RenderRequest,
    ResponsePolicyBody,
    ResponsePolicyRead,
    SavedReplyCreate,
    SavedReplyRead,
    SavedReplyUpdate,
)
from inbox.service import settings as service
from infra.pagination import Page

router = APIRouter(tags=["inbox settings"])

BrandFilter = Annotated[uuid.UUID | None, Query(description="Only this brand's")]


# --- saved replies ------------------------------------------------------------------------------


@router.get("/saved-replies", summary="Saved replies, by name")
async def list_saved_replies(
    principal: CurrentPrincipal,
    session: SessionDep,
    brand_id: Annotated[
        uuid.UUID | None,
        Query(description="The replies usable for this brand: its own and the agency-wide ones"),
    ] = None,
    language: Literal["fr", "en"] | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Name or text contains")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[SavedReplyRead]:
    return await service.list_saved_replies(
        session,
        principal,
        brand_id=brand_id,
        language=language,
        q=q,
        limit=limit,
        cursor=cursor,
    )


@router.post(
    "/saved-replies",
    status_code=status.HTTP_201_CREATED,
    summary="Save a reply for the agency or one brand (variables: {first_name}, {brand}, "
    "{agent_first_name})",
)
async def create_saved_reply(
    body: SavedReplyCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> SavedReplyRead:
    return tagged(response, await service.create_saved_reply(session, principal, body))


@router.get("/saved-replies/{saved_reply_id}", summary="One saved reply")
async def get_saved_reply(
    saved_reply_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> SavedReplyRead:
    return tagged(response, await service.get_saved_reply(session, principal, saved_reply_id))


@router.patch(
    "/saved-replies/{saved_reply_id}", responses=responses(412), summary="Change a saved reply"
)
async def update_saved_reply(
    saved_reply_id: uuid.UUID,
    body: SavedReplyUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> SavedReplyRead:
    reply = await service.update_saved_reply(
        session, principal, saved_reply_id, body, if_match=if_match
    )
    return tagged(response, reply)


@router.delete(
    "/saved-replies/{saved_reply_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(412),
    summary="Delete a saved reply",
)
async def delete_saved_reply(
    saved_reply_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, if_match: IfMatch
) -> None:
    await service.delete_saved_reply(session, principal, saved_reply_id, if_match=if_match)


@router.post(
    "/saved-replies/{saved_reply_id}/render",
    summary="The reply as it would go out on an item (its author's first name, the brand, your "
    "first name), with the pre-send check's warnings; nothing is sent",
)
async def render_saved_reply(
    saved_reply_id: uuid.UUID, body: RenderRequest, principal: CurrentPrincipal, session: SessionDep
) -> RenderedReply:
    return await service.render_saved_reply(session, principal, saved_reply_id, body)


# --- rules --------------------------------------------------------------------------------------


@router.get("/inbox-rules", summary="Inbox rules, by brand, in the order they run")
async def list_inbox_rules(
    principal: CurrentPrincipal,
    session: SessionDep,
    brand_id: BrandFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[InboxRuleRead]:
    return await service.list_rules(
        session, principal, brand_id=brand_id, limit=limit, cursor=cursor
    )


@router.post(
    "/inbox-rules",
    status_code=status.HTTP_201_CREATED,
    summary="Add a rule to a brand's inbox (applied to items that arrive from now on)",
)
async def create_inbox_rule(
    body: InboxRuleCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> InboxRuleRead:
    return tagged(response, await service.create_rule(session, principal, body))


@router.get("/inbox-rules/{rule_id}", summary="One inbox rule")
async def get_inbox_rule(
    rule_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> InboxRuleRead:
    return tagged(response, await service.get_rule(session, principal, rule_id))


@router.patch("/inbox-rules/{rule_id}", responses=responses(412), summary="Change an inbox rule")
async def update_inbox_rule(
    rule_id: uuid.UUID,
    body: InboxRuleUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> InboxRuleRead:
    rule = await service.update_rule(session, principal, rule_id, body, if_match=if_match)
    return tagged(response, rule)


@router.delete(
    "/inbox-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(412),
    summary="Delete an inbox rule",
)
async def delete_inbox_rule(
    rule_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, if_match: IfMatch
) -> None:
    await service.delete_rule(session, principal, rule_id, if_match=if_match)


# --- response policies --------------------------------------------------------------------------


@router.get(
    "/clients/{client_id}/response-policy",
    summary="The client's response targets and business hours (404 when none is set)",
)
async def get_response_policy(
    client_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ResponsePolicyRead:
    return tagged(response, await service.get_response_policy(session, principal, client_id))


@router.put(
    "/clients/{client_id}/response-policy",
    responses={
        201: {"model": ResponsePolicyRead, "description": "Created"},
        **responses(412),
    },
    summary="Set or replace the client's response policy (If-Match when replacing)",
)
async def put_response_policy(
    client_id: uuid.UUID,
    body: ResponsePolicyBody,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> ResponsePolicyRead:
    policy, created = await service.put_response_policy(
        session, principal, client_id, body, if_match=if_match
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return tagged(response, policy)


@router.delete(
    "/clients/{client_id}/response-policy",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(412),
    summary="Remove the client's response policy (its new items are no longer measured)",
)
async def delete_response_policy(
    client_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, if_match: IfMatch
) -> None:
    await service.delete_response_policy(session, principal, client_id, if_match=if_match)
