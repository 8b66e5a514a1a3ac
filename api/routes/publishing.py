"""Publications: per content item, across the agency, a person's retry, publish-now, and an
account's feed of posts published through us."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import CurrentPrincipal, ResourcesDep, SessionDep
from api.pagination import Cursor as LongCursor
from api.problems import responses
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from publishing import service
from publishing.checks import Checker, checker
from publishing.machine import PubStatus
from publishing.schemas import PostRead, PublicationRead, PubStatusField, RetryRequest
from tenants.schemas import Instant
from workflows import service as content_service

router = APIRouter(tags=["publishing"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def publishing_checks(resources: ResourcesDep) -> Checker:
    return checker(resources.http, resources.settings)


PublishingChecks = Annotated[Checker, Depends(publishing_checks)]


@router.get(
    "/content/{content_id}/publications",
    summary="The item's publications: one per target account, with their attempts",
)
async def list_content_publications(
    content_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: LongCursor = None,
) -> Page[PublicationRead]:
    return await service.list_for_content(
        session, principal, content_id, limit=limit, cursor=cursor
    )


@router.get("/publications", summary="Publications by planned time, oldest first")
async def list_publications(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: PubStatusField | None = None,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
    brand: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: LongCursor = None,
) -> Page[PublicationRead]:
    start: datetime | None = from_
    return await service.list_publications(
        session,
        principal,
        status=PubStatus(status) if status else None,
        start=start,
        end=to,
        brand_id=brand,
        limit=limit,
        cursor=cursor,
    )


@router.post(
    "/publications/{publication_id}/retry",
    responses=responses(409, 422),
    summary="Try a failed publication again (an unconfirmed one only once you checked)",
)
async def retry_publication(
    publication_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    body: RetryRequest | None = None,
) -> PublicationRead:
    request = body or RetryRequest()
    return await service.retry(
        session,
        principal,
        publication_id,
        confirm_not_published=request.confirm_not_published,
        settings=resources.settings,
    )


@router.post(
    "/content/{content_id}/publish-now",
    responses=responses(409, 422),
    summary="Publish an approved item now, on every target account",
)
async def publish_now(
    content_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    check: PublishingChecks,
) -> list[PublicationRead]:
    await content_service.schedule_now(session, principal, content_id)
    return await service.publish_now(
        session, principal, content_id, check=check, settings=resources.settings
    )


@router.get(
    "/social-accounts/{account_id}/posts",
    summary="The account's posts published through Passerelle, newest first",
)
async def list_account_posts(
    account_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: LongCursor = None,
) -> Page[PostRead]:
    return await service.account_posts(session, principal, account_id, limit=limit, cursor=cursor)
