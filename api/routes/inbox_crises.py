"""Suspected crises of the community inbox (found by the worker's scan), for the SPA's
warning banner and its history."""

import uuid

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep
from api.pagination import DEFAULT_LIMIT, Cursor, Limit
from inbox.schemas import CrisisRead
from inbox.service import crises as service
from infra.pagination import Page

# Included before the inbox's router: "/inbox/{item_id}" would take "crises" for an item id.
router = APIRouter(prefix="/inbox/crises", tags=["inbox"])


@router.get("", summary="Suspected crises of the brands you reach, newest first")
async def list_inbox_crises(
    principal: CurrentPrincipal,
    session: SessionDep,
    brand: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[CrisisRead]:
    return await service.list_crises(session, principal, brand_id=brand, limit=limit, cursor=cursor)
