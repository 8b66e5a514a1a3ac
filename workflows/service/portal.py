"""What a client contact has decided: the portal's history."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.pagination import Keyset, Page, SortKey
from tenants.errors import PermissionDenied
from tenants.models import Brand
from tenants.policy import Verb
from tenants.principal import Principal
from workflows.models import ApprovalDecision, ContentItem, ContentRevision
from workflows.schemas import PortalDecision
from workflows.service.access import is_client, item_visibility

# Newest first.
MY_DECISIONS_ORDER = Keyset(
    "my-decisions",
    (
        SortKey(
            col(ApprovalDecision.created_at),
            lambda r: r[0].created_at,
            datetime.fromisoformat,
            descending=True,
        ),
        SortKey(col(ApprovalDecision.id), lambda r: r[0].id, uuid.UUID, descending=True),
    ),
)


async def my_decisions(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> Page[PortalDecision]:
    """The contact's own decisions on items they can still see, newest first."""
    if not is_client(principal):
        raise PermissionDenied("The decision history is for client contacts.")
    query = (
        select(ApprovalDecision, ContentRevision.title, Brand.name)
        .join(
            ContentItem,
            (col(ContentItem.tenant_id) == col(ApprovalDecision.tenant_id))
            & (col(ContentItem.id) == col(ApprovalDecision.content_item_id)),
        )
        .join(
            ContentRevision,
            (col(ContentRevision.tenant_id) == col(ApprovalDecision.tenant_id))
            & (col(ContentRevision.id) == col(ApprovalDecision.revision_id)),
        )
        .join(
            Brand,
            (col(Brand.tenant_id) == col(ContentItem.tenant_id))
            & (col(Brand.id) == col(ContentItem.brand_id)),
        )
        .where(
            ApprovalDecision.tenant_id == principal.tenant_id,
            ApprovalDecision.user_id == principal.user_id,
            item_visibility(principal, Verb.read),
        )
    )
    query = MY_DECISIONS_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = MY_DECISIONS_ORDER.page((await session.execute(query)).all(), limit=limit)
    return Page(
        items=[
            PortalDecision(
                content_id=row.content_item_id,
                title=title,
                brand_name=brand_name,
                decision=row.decision,
                comment=row.comment,
                created_at=row.created_at,
            )
            for row, title, brand_name in rows
        ],
        next_cursor=next_page,
    )
