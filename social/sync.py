"""One account's sync: refresh the token if it is about to expire, fetch the figures since
the last stored day, upsert them by (tenant, account, day), look for anomalies.

Safe to run twice, concurrently or after a crash: the upsert key makes a re-run rewrite the
same rows, the token refresh happens under the account's row lock, and the account only moves
its next sync forward once its figures are stored.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.ids import new_id
from infra.logging import get_logger
from social import anomalies
from social.connectors.types import (
    METRICS,
    ConnectorError,
    DailyMetrics,
    PlatformUnavailable,
    RateLimited,
    TokenInvalid,
    TokenSet,
)
from social.kit import SocialKit
from social.models import SYNCABLE, AccountStatus, Anomaly, DailyStat, SocialAccount
from tenants.service.common import bump

log = get_logger(__name__)

REFRESH_AHEAD = timedelta(minutes=10)
REVISED_DAYS = 2
"""Platforms revise their last days' figures: each sync fetches them again."""
JUDGED_DAYS = 7
"""Anomalies are looked for in the last week only: a 90-day backfill does not alarm anyone."""
ERROR_BACKOFF = timedelta(minutes=15)


@dataclass(frozen=True)
class Outcome:
    status: str
    """synced | skipped | needs_reauth | retry | error"""
    days: int = 0
    retry_after: float = 0.0
    reason: str | None = None


def _tokens(kit: SocialKit, account: SocialAccount) -> TokenSet:
    return TokenSet(
        access_token=kit.vault.decrypt(account.access_token) or "",
        refresh_token=kit.vault.decrypt(account.refresh_token),
        expires_at=account.token_expires_at,
        scope=account.token_scope,
    )


async def _load(
    session: AsyncSession, tenant_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
) -> SocialAccount | None:
    query = select(SocialAccount).where(
        SocialAccount.tenant_id == tenant_id, SocialAccount.id == account_id
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).first()


async def _fresh_tokens(
    db: Database,
    kit: SocialKit,
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    now: datetime,
    due_at: datetime | None = None,
) -> TokenSet | None:
    """The account's tokens, refreshed first when they expire soon. Two workers never refresh
    at once (the row lock): a platform that rotates refresh tokens would revoke the loser's.
    None when there is nothing to do: the account left sync, or (`due_at`) the scheduled sync
    this job was queued for already happened."""
    async with db.tenant_transaction(tenant_id) as session:
        account = await _load(session, tenant_id, account_id)
        if account is None or account.status not in SYNCABLE:
            return None
        if due_at is not None and (account.next_sync_at is None or account.next_sync_at > due_at):
            return None
        tokens = _tokens(kit, account)
        if tokens.expires_at is None or tokens.expires_at > now + REFRESH_AHEAD:
            return tokens
    if not tokens.refresh_token:
        return tokens  # the platform will say whether it still works
    async with db.tenant_transaction(tenant_id) as session:
        account = await _load(session, tenant_id, account_id, lock=True)
        if account is None:
            return None
        tokens = _tokens(kit, account)
        if tokens.expires_at is not None and tokens.expires_at <= now + REFRESH_AHEAD:
            assert tokens.refresh_token is not None
            new = await kit.connector(account.platform).refresh(tokens.refresh_token)
            account.access_token = kit.vault.encrypt(new.access_token)
            if new.refresh_token:
                account.refresh_token = kit.vault.encrypt(new.refresh_token)
            account.token_expires_at = new.expires_at
            account.updated_at = now
            tokens = TokenSet(
                new.access_token, new.refresh_token or tokens.refresh_token, new.expires_at
            )
        return tokens


async def fresh_tokens(
    db: Database, kit: SocialKit, tenant_id: uuid.UUID, account_id: uuid.UUID, now: datetime
) -> TokenSet | None:
    """The account's tokens for a call now (publishing), refreshed first when they expire
    soon, under the same row lock as the sync's refresh. None when the account cannot be used
    (gone, or waiting for a person to reconnect it); TokenInvalid when the refresh is refused."""
    return await _fresh_tokens(db, kit, tenant_id, account_id, now)


def _window(account: SocialAccount, kit: SocialKit, today: date, backfill_days: int) -> date:
    earliest = today - timedelta(days=min(kit.settings.social_backfill_days, backfill_days) - 1)
    if account.synced_through is None:
        return earliest
    return max(earliest, min(account.synced_through - timedelta(days=REVISED_DAYS - 1), today))


def _fill_followers(metrics: DailyMetrics, followers_now: int | None, until: date) -> None:
    """Where a platform reports only today's count and daily changes, walk back from it."""
    if followers_now is None:
        return
    days = sorted(metrics.days, reverse=True)
    running: int | None = followers_now
    for day in days:
        row = metrics.days[day]
        if row.get("followers") is None and running is not None:
            row["followers"] = running
        current = row.get("followers")
        change = row.get("follower_change")
        running = None if current is None or change is None else current - change
    if until not in metrics.days:
        metrics.days.setdefault(until, {})["followers"] = followers_now


async def _store(
    session: AsyncSession, account: SocialAccount, metrics: DailyMetrics, now: datetime
) -> int:
    rows = [
        {
            "tenant_id": account.tenant_id,
            "id": new_id(),
            "account_id": account.id,
            "day": day,
            **{m: values.get(m) for m in METRICS},
            "fetched_at": now,
        }
        for day, values in sorted(metrics.days.items())
    ]
    if not rows:
        return 0
    statement = insert(DailyStat).values(rows)
    excluded = statement.excluded
    table = DailyStat.__table__.c  # type: ignore[attr-defined]
    # A metric that failed this time keeps the figure we already had for that day.
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "account_id", "day"],
        set_={
            **{m: func.coalesce(getattr(excluded, m), table[m]) for m in METRICS},
            "fetched_at": excluded.fetched_at,
        },
    )
    await session.execute(statement)
    return len(rows)


async def judge_recent(
    session: AsyncSession, account: SocialAccount, until: date, request_id: str | None
) -> int:
    start = until - timedelta(days=JUDGED_DAYS + 28)
    stats = (
        await session.scalars(
            select(DailyStat).where(
                DailyStat.tenant_id == account.tenant_id,
                DailyStat.account_id == account.id,
                col(DailyStat.day) >= start,
                col(DailyStat.day) <= until,
            )
        )
    ).all()
    series = {s.day: {m: getattr(s, m) for m in METRICS} for s in stats}
    judged = [until - timedelta(days=n) for n in range(JUDGED_DAYS)]
    found = anomalies.scan(series, judged)
    emitted = 0
    for a in found:
        inserted = await session.scalar(
            insert(Anomaly)
            .values(
                tenant_id=account.tenant_id,
                id=uuid.uuid4(),
                account_id=account.id,
                brand_id=account.brand_id,
                day=a.day,
                metric=a.metric,
                value=a.value,
                median=a.median,
                mad=a.mad,
                score=a.score,
                direction=a.direction,
            )
            .on_conflict_do_nothing(constraint="uq_social_anomalies")
            .returning(col(Anomaly.id))
        )
        if inserted is None:
            continue  # found by an earlier sync: its event has gone already
        emitted += 1
        outbox.record_event(
            session,
            tenant_id=account.tenant_id,
            type="stats.anomaly",
            aggregate_type="social_account",
            aggregate_id=account.id,
            payload={
                "anomaly_id": str(inserted),
                "account_id": str(account.id),
                "brand_id": str(account.brand_id),
                "platform": account.platform,
                "handle": account.handle,
                "day": a.day.isoformat(),
                "metric": a.metric,
                "value": a.value,
                "median": a.median,
                "mad": a.mad,
                "score": round(a.score, 2),
                "direction": a.direction,
            },
            request_id=request_id,
        )
    return emitted


def next_sync(kit: SocialKit, now: datetime) -> datetime:
    """Spread by a little jitter, so accounts connected together do not stay in lockstep."""
    interval = timedelta(minutes=kit.settings.social_sync_interval_minutes)
    return now + interval + timedelta(seconds=random.uniform(0, interval.total_seconds() / 20))


async def mark_needs_reauth(
    db: Database, tenant_id: uuid.UUID, account_id: uuid.UUID, reason: str
) -> bool:
    """Only the change from a syncable status emits the event: the person is told once."""
    async with db.tenant_transaction(tenant_id) as session:
        account = await _load(session, tenant_id, account_id, lock=True)
        if account is None or account.status not in SYNCABLE:
            return False
        now = utcnow()
        account.status = AccountStatus.needs_reauth
        account.last_error = reason
        account.last_error_at = now
        bump(account, at=now)
        outbox.record_event(
            session,
            tenant_id=tenant_id,
            type="social_account.needs_reauth",
            aggregate_type="social_account",
            aggregate_id=account.id,
            payload={
                "account_id": str(account.id),
                "brand_id": str(account.brand_id),
                "platform": account.platform,
                "handle": account.handle,
                "reason": reason,
            },
        )
        return True


async def mark_error(
    db: Database, kit: SocialKit, tenant_id: uuid.UUID, account_id: uuid.UUID, reason: str
) -> None:
    """Out of retries: show why on the account and try again a little later."""
    async with db.tenant_transaction(tenant_id) as session:
        account = await _load(session, tenant_id, account_id, lock=True)
        if account is None or account.status not in SYNCABLE:
            return
        now = utcnow()
        account.status = AccountStatus.error
        account.last_error = reason
        account.last_error_at = now
        account.next_sync_at = now + ERROR_BACKOFF
        account.updated_at = now


async def sync_account(
    db: Database,
    kit: SocialKit,
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    now: datetime | None = None,
    due_at: datetime | None = None,
) -> Outcome:
    """`due_at`: the scheduled time a job was queued for; once the account's next sync has
    moved past it (another job synced it), the job does nothing."""
    now = now or utcnow()
    try:
        tokens = await _fresh_tokens(db, kit, tenant_id, account_id, now, due_at)
        if tokens is None:
            return Outcome("skipped")
        async with db.tenant_transaction(tenant_id) as session:
            account = await _load(session, tenant_id, account_id)
            if account is None or account.status not in SYNCABLE:
                return Outcome("skipped")
            platform, external_id = account.platform, account.external_id
        connector = kit.connector(platform)
        today = now.date()
        until = today - timedelta(days=1)
        since = _window(account, kit, until, connector.backfill_days)
        profile = await connector.profile(tokens, external_id)
        # Through today: today's change turns the live follower count into yesterday's closing
        # count. Today itself is not complete, so it is not stored.
        metrics = await connector.daily_metrics(tokens, external_id, since, today)
    except TokenInvalid as exc:
        await mark_needs_reauth(db, tenant_id, account_id, str(exc) or "token refused")
        return Outcome("needs_reauth", reason=str(exc))
    except RateLimited as exc:
        return Outcome("retry", retry_after=exc.retry_after, reason=str(exc))
    except PlatformUnavailable as exc:
        return Outcome("retry", reason=str(exc))
    except ConnectorError as exc:
        # The platform refused this account's request (a lost permission, a removed page):
        # retrying will not help, a person must look.
        await mark_error(db, kit, tenant_id, account_id, str(exc) or "refused by the platform")
        return Outcome("error", reason=str(exc))

    partial = metrics.days.pop(today, {})
    closing = profile.followers
    if closing is not None and partial.get("follower_change") is not None:
        closing -= partial["follower_change"] or 0
    _fill_followers(metrics, closing, until)
    async with db.tenant_transaction(tenant_id) as session:
        account = await _load(session, tenant_id, account_id, lock=True)
        if account is None or account.status not in SYNCABLE:
            return Outcome("skipped")
        stored = await _store(session, account, metrics, now)
        await judge_recent(session, account, until, None)
        account.handle = profile.handle or account.handle
        account.display_name = profile.display_name or account.display_name
        account.status = AccountStatus.connected
        account.last_success_at = now
        account.last_error = None
        account.last_error_at = None
        account.metric_errors = {
            metric: {"error": reason[:500], "at": now.isoformat()}
            for metric, reason in sorted(metrics.errors.items())
        }
        if account.synced_through is None or account.synced_through < until:
            account.synced_through = until
        account.next_sync_at = next_sync(kit, now)
        account.updated_at = now
    return Outcome("synced", days=stored)
