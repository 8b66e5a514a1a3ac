"""A published post's own figures (impressions, reach, engagements, video views), read once
a day for its first days (PUBLISHING_FIGURES_DAYS) within the platform's rate budgets, and the
month's top posts for the client report."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

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
    PostFigures,
    PostReader,
    RateLimited,
    TokenInvalid,
)
from social.kit import SocialKit
from social.models import SocialAccount
from social.schemas import ClientReport, TopPost
from social.sync import fresh_tokens
from tenants.capacity import parse_month
from tenants.principal import Principal
from workflows.models import ContentRevision

log = get_logger(__name__)

DAILY = timedelta(days=1)
SOON = timedelta(hours=1)
FIGURES = ("impressions", "reach", "engagements", "video_views")
GRACE = timedelta(days=1)
"""A read that failed near the end of the window may still be tried this long after it."""


def _retry(now: datetime, delay: timedelta, last: datetime) -> datetime | None:
    """When to try again after a read that did not happen; never for ever (a post whose token
    stays refused, or an account left paused, stops being read after its window)."""
    at = now + delay
    return at if at <= last + GRACE else None


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
        platform, external_id, account_id = account.platform, account.external_id, account.id
        post_id, published_at = publication.external_post_id, publication.published_at or now
    last = published_at + timedelta(days=settings.publishing_figures_days)
    next_at: datetime | None
    figures: PostFigures | None = None
    try:
        tokens = await fresh_tokens(db, kit, tenant_id, account_id, now)
        if tokens is None:
            # Paused, gone or waiting for a person to reconnect it: look again tomorrow rather
            # than every minute the sweep runs.
            next_at = _retry(now, DAILY, last)
        else:
            figures = await cast(PostReader, kit.connector(platform)).post_figures(
                tokens, external_id, post_id
            )
            next_at = now + DAILY if now + DAILY <= last else None
    except (RateLimited, PlatformUnavailable):
        next_at = _retry(now, SOON, last)
    except (TokenInvalid, ConnectorError) as exc:
        log.info("publishing.figures_refused", publication_id=str(publication_id), reason=str(exc))
        next_at = _retry(now, DAILY, last)
    async with db.tenant_transaction(tenant_id) as session:
        publication = await session.get(Publication, (tenant_id, publication_id))
        if publication is None:
            return "skip"
        if figures is not None:
            # A figure the platform left out this time keeps the one read before (as daily
            # stats do): a post's figures only go missing when a field is dropped.
            for name in FIGURES:
                value = getattr(figures, name)
                if value is not None:
                    setattr(publication, name, value)
            publication.figures_at = now
        publication.next_figures_at = next_at
    return "read" if figures is not None else "later"


async def top_posts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    brand_ids: Sequence[uuid.UUID],
    start: datetime,
    end: datetime,
    *,
    limit: int = 5,
) -> dict[uuid.UUID, list[TopPost]]:
    """Each brand's posts published in [start, end), most engaging first (then most seen, then
    the earliest), at most `limit` a brand, in one query for a whole report. A brand with no
    post is absent."""
    if not brand_ids:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=col(Publication.brand_id),
            order_by=(
                func.coalesce(col(Publication.engagements), -1).desc(),
                func.coalesce(col(Publication.impressions), -1).desc(),
                col(Publication.published_at),
                col(Publication.id),
            ),
        )
        .label("rank")
    )
    ranked = (
        select(col(Publication.id).label("id"), rank)
        .where(
            Publication.tenant_id == tenant_id,
            col(Publication.brand_id).in_(brand_ids),
            Publication.status == PubStatus.published,
            col(Publication.published_at) >= start,
            col(Publication.published_at) < end,
        )
        .subquery()
    )
    rows = await session.execute(
        select(Publication, col(ContentRevision.variants), col(SocialAccount.handle))
        .join(
            ranked,
            (col(Publication.tenant_id) == tenant_id) & (col(Publication.id) == ranked.c.id),
        )
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
        .where(ranked.c.rank <= limit)
        .order_by(col(Publication.brand_id), ranked.c.rank)
    )
    found: dict[uuid.UUID, list[TopPost]] = {}
    for p, variants, handle in rows.all():
        if p.published_at is None:
            continue
        found.setdefault(p.brand_id, []).append(
            TopPost(
                platform=p.platform,
                handle=handle,
                text=excerpt(text_for(p.platform, variants) or ""),
                permalink=p.permalink,
                published_at=p.published_at,
                impressions=p.impressions,
                reach=p.reach,
                engagements=p.engagements,
                video_views=p.video_views,
            )
        )
    return found


async def add_top_posts(
    session: AsyncSession, principal: Principal, report: ClientReport
) -> ClientReport:
    """The report's brands with their top posts of the month. The month runs from midnight to
    midnight in the agency's timezone, as the report's days do: a post at 22:00 on 30 November
    in Montréal is November's although it is already December in UTC."""
    first, last = parse_month(report.month)
    zone = ZoneInfo(principal.timezone)
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    found = await top_posts(
        session, principal.tenant_id, [brand.id for brand in report.brands], start, end
    )
    for brand in report.brands:
        brand.top_posts = found.get(brand.id, [])
    return report


EXCERPT = 280


def excerpt(text: str, size: int = EXCERPT) -> str:
    """The post's text cut at a word, with an ellipsis, when longer than `size`."""
    text = " ".join(text.split())
    if len(text) <= size:
        return text
    cut = text[: size - 1]
    if " " in cut[size // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"
