"""Statistics as people read them: per account or added up per brand, by day, ISO week or
month; and the anomalies found in them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.pagination import Keyset, Page, SortKey
from social import errors
from social.connectors.types import METRICS
from social.models import Anomaly, SocialAccount
from social.schemas import AnomalyRead, Granularity, StatPoint, StatsRead
from social.service.accounts import load_account, visible_brand
from tenants.policy import Verb
from tenants.principal import Principal

MAX_DAYS = 731
DEFAULT_DAYS = 30

_FLOWS = tuple(m for m in METRICS if m != "followers")

# Per account and bucket first (followers is the last count known in the bucket, flows are
# summed), then added up across accounts. SUM over nothing but NULLs stays NULL: a metric no
# account has stays empty instead of becoming 0.
_PER_ACCOUNT_FLOWS = ", ".join(f"sum({m}) AS {m}" for m in _FLOWS)
_TOTAL_FLOWS = ", ".join(f"sum({m})::bigint AS {m}" for m in _FLOWS)
# Only our own metric names are formatted in; every value is a bound parameter.
_BUCKETS = text(
    f"""
    WITH per_account AS (
        SELECT account_id,
               date_trunc(:unit, day)::date AS bucket,
               (array_agg(followers ORDER BY day DESC)
                    FILTER (WHERE followers IS NOT NULL))[1] AS followers,
               {_PER_ACCOUNT_FLOWS}
        FROM social_stats_daily
        WHERE tenant_id = :tenant_id
          AND account_id = ANY(:account_ids)
          AND day BETWEEN :from_date AND :to_date
        GROUP BY account_id, bucket
    )
    SELECT bucket, sum(followers)::bigint AS followers, {_TOTAL_FLOWS}
    FROM per_account GROUP BY bucket ORDER BY bucket
    """  # noqa: S608
)


def date_range(from_date: date | None, to_date: date | None) -> tuple[date, date]:
    """Defaults: the last 30 complete days (yesterday is the last day platforms report)."""
    to_date = to_date or (utcnow().date() - timedelta(days=1))
    try:
        from_date = from_date or (to_date - timedelta(days=DEFAULT_DAYS - 1))
    except OverflowError:
        raise errors.InvalidRange("`to` is too early for a default range; give `from`.") from None
    if from_date > to_date:
        raise errors.InvalidRange("`from` is after `to`.")
    if (to_date - from_date).days >= MAX_DAYS:
        raise errors.InvalidRange(f"Ask for at most {MAX_DAYS} days at a time.")
    return from_date, to_date


async def bucketed(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    account_ids: list[uuid.UUID],
    from_date: date,
    to_date: date,
    granularity: Granularity,
) -> list[StatPoint]:
    if not account_ids:
        return []
    rows = (
        await session.execute(
            _BUCKETS,
            {
                "unit": granularity,
                "tenant_id": tenant_id,
                "account_ids": account_ids,
                "from_date": from_date,
                "to_date": to_date,
            },
        )
    ).mappings()
    return [StatPoint(start=row["bucket"], **{m: row[m] for m in METRICS}) for row in rows]


async def brand_account_ids(
    session: AsyncSession, tenant_id: uuid.UUID, brand_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    if not brand_ids:
        return []
    return list(
        (
            await session.scalars(
                select(SocialAccount.id).where(
                    SocialAccount.tenant_id == tenant_id,
                    col(SocialAccount.brand_id).in_(brand_ids),
                )
            )
        ).all()
    )


async def brand_stats(
    session: AsyncSession,
    principal: Principal,
    brand_id: uuid.UUID,
    *,
    from_date: date | None,
    to_date: date | None,
    granularity: Granularity,
) -> StatsRead:
    brand = await visible_brand(session, principal, brand_id, Verb.read)
    start, end = date_range(from_date, to_date)
    ids = await brand_account_ids(session, principal.tenant_id, [brand.id])
    points = await bucketed(session, principal.tenant_id, ids, start, end, granularity)
    return StatsRead(
        brand_id=brand.id,
        account_id=None,
        from_date=start,
        to_date=end,
        granularity=granularity,
        points=points,
    )


async def account_stats(
    session: AsyncSession,
    principal: Principal,
    account_id: uuid.UUID,
    *,
    from_date: date | None,
    to_date: date | None,
    granularity: Granularity,
) -> StatsRead:
    account = await load_account(session, principal, account_id, Verb.read)
    start, end = date_range(from_date, to_date)
    points = await bucketed(session, principal.tenant_id, [account.id], start, end, granularity)
    return StatsRead(
        brand_id=account.brand_id,
        account_id=account.id,
        from_date=start,
        to_date=end,
        granularity=granularity,
        points=points,
    )


def anomaly_read(a: Anomaly) -> AnomalyRead:
    return AnomalyRead(
        id=a.id,
        account_id=a.account_id,
        brand_id=a.brand_id,
        day=a.day,
        metric=a.metric,
        value=a.value,
        median=a.median,
        mad=a.mad,
        score=a.score,
        direction=a.direction,
        detected_at=a.created_at,
    )


async def anomalies_of(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    brand_ids: list[uuid.UUID],
    from_date: date,
    to_date: date,
) -> list[AnomalyRead]:
    if not brand_ids:
        return []
    query: Any = (
        select(Anomaly)
        .where(
            Anomaly.tenant_id == tenant_id,
            col(Anomaly.brand_id).in_(brand_ids),
            col(Anomaly.day) >= from_date,
            col(Anomaly.day) <= to_date,
        )
        .order_by(col(Anomaly.day).desc(), col(Anomaly.metric), col(Anomaly.id))
        .limit(500)
    )
    return [anomaly_read(a) for a in (await session.scalars(query)).all()]


# Newest day first, then by metric.
ANOMALY_ORDER = Keyset(
    "anomalies",
    (
        SortKey(col(Anomaly.day), lambda a: a.day, date.fromisoformat, descending=True),
        SortKey(col(Anomaly.metric), lambda a: a.metric),
        SortKey(col(Anomaly.id), lambda a: a.id, uuid.UUID),
    ),
)


async def brand_anomalies(
    session: AsyncSession,
    principal: Principal,
    brand_id: uuid.UUID,
    *,
    from_date: date | None,
    to_date: date | None,
    limit: int,
    cursor: str | None,
) -> Page[AnomalyRead]:
    brand = await visible_brand(session, principal, brand_id, Verb.read)
    start, end = date_range(from_date, to_date)
    query: Any = select(Anomaly).where(
        Anomaly.tenant_id == principal.tenant_id,
        Anomaly.brand_id == brand.id,
        col(Anomaly.day) >= start,
        col(Anomaly.day) <= end,
    )
    query = ANOMALY_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = ANOMALY_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[anomaly_read(a) for a in rows], next_cursor=next_page)
