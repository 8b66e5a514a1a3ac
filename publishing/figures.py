"""A published post's own figures (impressions, reach, engagements, video views), read once
a day for its first days (PUBLISHING_FIGURES_DAYS) within the platform's rate budgets, and the
month's top posts for the client report."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.db import Database
from infra.logging import get_logger
from infra.settings import Settings
from publishing.machine import PubStatus
from publishing.models import Publication
from publishing.rules import text_for
from social.connectors.types import (
    ConnectorError,
    PlatformUnavailable,
    PostReader,
    RateLimited,
    TokenInvalid,
)
from social.kit import SocialKit
from social.models import SocialAccount
from social.schemas import TopPost
from social.sync import fresh_tokens
from workflows.models import ContentRevision

log = get_logger(__name__)

DAILY = timedelta(days=1)
SOON = timedelta(hours=1)


async def read(
    db: Database,
    kit: SocialKit,
    settings: Settings,
    tenant_id: uuid.UUID,
    publication_id: uuid.UUID,
) -> str:
    async with db.tenant_transaction(tenant_id) as session:
        publication = await session.get(Publication, (tenant_id, publication_id))
        now = utcnow()
        if (
            publication is None
            or publication.status != PubStatus.published
            or publication.external_post_id is None
            or publication.next_figures_at is None
            or publication.next_figures_at > now + timedelta(seconds=1)
        ):
            return "skip"
        account = await session.get(SocialAccount, (tenant_id, publication.social_account_id))
        assert account is not None
        platform, external_id = account.platform, account.external_id
        post_id, published_at = publication.external_post_id, publication.published_at or now
    next_at: datetime | None
    try:
        tokens = await fresh_tokens(db, kit, tenant_id, account.id, now)
        if tokens is None:
            return "skip"
        figures = await cast(PostReader, kit.connector(platform)).post_figures(
            tokens, external_id, post_id
        )
    except (RateLimited, PlatformUnavailable):
        next_at, figures = now + SOON, None
    except (TokenInvalid, ConnectorError) as exc:
        log.info("publishing.figures_refused", publication_id=str(publication_id), reason=str(exc))
        next_at, figures = now + DAILY, None
    else:
        last = published_at + timedelta(days=settings.publishing_figures_days)
        next_at = now + DAILY if now + DAILY <= last else None
    async with db.tenant_transaction(tenant_id) as session:
        publication = await session.get(Publication, (tenant_id, publication_id))
        if publication is None:
            return "skip"
        if figures is not None:
            publication.impressions = figures.impressions
            publication.reach = figures.reach
            publication.engagements = figures.engagements
            publication.video_views = figures.video_views
            publication.figures_at = now
        publication.next_figures_at = next_at
    return "read" if figures is not None else "later"


async def top_posts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    brand_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    limit: int = 5,
) -> list[TopPost]:
    """The brand's posts published in [start, end), most engaging first (then most seen)."""
    rows = await session.execute(
        select(Publication, col(ContentRevision.variants), col(SocialAccount.handle))
        .join(
            ContentRevision,
            (col(ContentRevision.tenant_id) == col(Publication.tenant_id))
            & (col(ContentRevision.id) == col(Publication.revision_id)),
        )
        .join(
            SocialAccount,
            (col(SocialAccount.tenant_id) == col(Publication.tenant_id))
            & (col(SocialAccount.id) == col(Publication.social_account_id)),
        )
        .where(
            Publication.tenant_id == tenant_id,
            Publication.brand_id == brand_id,
            Publication.status == PubStatus.published,
            col(Publication.published_at) >= start,
            col(Publication.published_at) < end,
        )
        .order_by(
            func.coalesce(col(Publication.engagements), -1).desc(),
            func.coalesce(col(Publication.impressions), -1).desc(),
            col(Publication.published_at),
        )
        .limit(limit)
    )
    return [
        TopPost(
            platform=p.platform,
            handle=handle,
            text=(text_for(p.platform, variants) or "")[:280],
            permalink=p.permalink,
            published_at=p.published_at,
            impressions=p.impressions,
            reach=p.reach,
            engagements=p.engagements,
            video_views=p.video_views,
        )
        for p, variants, handle in rows.all()
        if p.published_at is not None
    ]
