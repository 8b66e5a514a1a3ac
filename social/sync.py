"""One account's sync: refresh the token if it is about to expire, fetch the figures since
the last stored day, upsert them by (tenant, account, day), look for anomalies.

Safe to run twice, concurrently or after a crash: the upsert key makes a re-run rewrite the
same rows, the token refresh happens under the account's row lock, and the account only moves
its next sync forward once its figures are stored.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import asyncpg
from sqlalchemy import String, Table, any_, bindparam, func, null, text, update
from sqlalchemy import select as select_columns
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra import outbox
from infra.clock import utcnow
from infra.db import AttrRecord, Database, driver_connection, for_driver
from infra.ids import new_id
from infra.logging import get_logger
from infra.metrics import SYNC_LAG
from social import anomalies
from social.anomalies import WATCHED
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
from social.models import SYNCABLE, AccountStatus, Anomaly, SocialAccount
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


_TABLE: Table = SocialAccount.__table__  # type: ignore[attr-defined]
_ACCOUNTS = _TABLE.c
_SYNCABLE = [status.value for status in SYNCABLE]

# The sync's hot path runs statements compiled once for the driver connection (`for_driver`):
# no ORM object, nor SQLAlchemy's compile cache, parameter and result layers, per account.
_READ = select_columns(
    _ACCOUNTS.status,
    _ACCOUNTS.platform,
    _ACCOUNTS.external_id,
    _ACCOUNTS.access_token,
    _ACCOUNTS.refresh_token,
    _ACCOUNTS.token_expires_at,
    _ACCOUNTS.token_scope,
    _ACCOUNTS.next_sync_at,
    _ACCOUNTS.synced_through,
).where(_ACCOUNTS.tenant_id == bindparam("tenant_id"), _ACCOUNTS.id == bindparam("account_id"))
_READ_ON_DRIVER = for_driver(_READ)


@dataclass(frozen=True)
class _Due:
    """What a sync reads of its account."""

    platform: str
    external_id: str
    tokens: TokenSet
    synced_through: date | None


class _Stored(Protocol):
    """The stored tokens, of an ORM account or of a row."""

    @property
    def access_token(self) -> bytes | None: ...
    @property
    def refresh_token(self) -> bytes | None: ...
    @property
    def token_expires_at(self) -> datetime | None: ...
    @property
    def token_scope(self) -> str | None: ...


def _tokens(kit: SocialKit, account: _Stored) -> TokenSet:
    return TokenSet(
        access_token=kit.vault.decrypt(account.access_token) or "",
        refresh_token=kit.vault.decrypt(account.refresh_token),
        expires_at=account.token_expires_at,
        scope=account.token_scope,
    )


def _expiring(tokens: TokenSet, now: datetime) -> bool:
    return tokens.expires_at is not None and tokens.expires_at <= now + REFRESH_AHEAD


async def _load(
    session: AsyncSession, tenant_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
) -> SocialAccount | None:
    query = select(SocialAccount).where(
        SocialAccount.tenant_id == tenant_id, SocialAccount.id == account_id
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).first()


async def _read(
    db: Database,
    kit: SocialKit,
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    due_at: datetime | None = None,
) -> _Due | None:
    """The account as a sync needs it, in one short transaction. None when there is nothing
    to do: the account left sync, or (`due_at`) the scheduled sync this job was queued for
    already happened."""
    async with db.tenant_read_transaction(tenant_id) as connection:
        row = await connection.fetchrow(
            _READ_ON_DRIVER.sql,
            *_READ_ON_DRIVER.args({"tenant_id": tenant_id, "account_id": account_id}),
            record_class=AttrRecord,
        )
    if row is None or row.status not in _SYNCABLE:
        return None
    if due_at is not None and (row.next_sync_at is None or row.next_sync_at > due_at):
        return None
    return _Due(row.platform, row.external_id, _tokens(kit, row), row.synced_through)


async def _refresh(
    db: Database, kit: SocialKit, tenant_id: uuid.UUID, account_id: uuid.UUID, now: datetime
) -> TokenSet | None:
    """Refresh under the account's row lock: two workers never refresh at once (a platform
    that rotates refresh tokens would revoke the loser's), and the second finds them fresh."""
    async with db.tenant_transaction(tenant_id) as session:
        account = await _load(session, tenant_id, account_id, lock=True)
        if account is None:
            return None
        tokens = _tokens(kit, account)
        if _expiring(tokens, now):
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
    due = await _read(db, kit, tenant_id, account_id)
    if due is None:
        return None
    if not _expiring(due.tokens, now) or not due.tokens.refresh_token:
        return due.tokens  # without a refresh token, the platform will say if it still works
    return await _refresh(db, kit, tenant_id, account_id, now)


def _window(synced_through: date | None, kit: SocialKit, today: date, backfill_days: int) -> date:
    earliest = today - timedelta(days=min(kit.settings.social_backfill_days, backfill_days) - 1)
    if synced_through is None:
        return earliest
    return max(earliest, min(synced_through - timedelta(days=REVISED_DAYS - 1), today))


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


_STAT_COLUMNS = ", ".join(METRICS)
_UPSERT_DAYS = for_driver(
    text(
        f"""
    INSERT INTO social_stats_daily (tenant_id, id, account_id, day, {_STAT_COLUMNS}, fetched_at)
    SELECT CAST(:tenant_id AS uuid), d.id, CAST(:account_id AS uuid), d.day, {_STAT_COLUMNS},
           CAST(:now AS timestamptz)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:days AS date[]),
                {", ".join(f"CAST(:{m} AS bigint[])" for m in METRICS)})
         AS d(id, day, {_STAT_COLUMNS})
    ON CONFLICT (tenant_id, account_id, day) DO UPDATE SET
        {", ".join(f"{m} = coalesce(EXCLUDED.{m}, social_stats_daily.{m})" for m in METRICS)},
        fetched_at = EXCLUDED.fetched_at
    """  # noqa: S608 - the column names are METRICS; every value is bound
    )
)
"""One statement whatever the number of days (arrays, not a VALUES list to compile each time).
A metric that failed this time keeps the figure we already had for that day."""

_JUDGED_HISTORY = for_driver(
    text(
        f"""
    SELECT day, {", ".join(WATCHED)} FROM social_stats_daily
    WHERE tenant_id = :tenant_id AND account_id = :account_id AND day BETWEEN :start AND :until
    """  # noqa: S608 - the column names are WATCHED's; every value is bound
    )
)

_MARK_SYNCED = for_driver(
    update(_TABLE)
    .where(  # not the columns' names: an update keeps those for its SET clause
        _ACCOUNTS.tenant_id == bindparam("tenant"),
        _ACCOUNTS.id == bindparam("account"),
        _ACCOUNTS.status == any_(bindparam("syncable", _SYNCABLE, type_=ARRAY(String))),
    )
    .values(
        handle=func.coalesce(func.nullif(bindparam("new_handle"), ""), _ACCOUNTS.handle),
        display_name=func.coalesce(
            func.nullif(bindparam("new_display_name"), ""), _ACCOUNTS.display_name
        ),
        status=AccountStatus.connected.value,
        last_success_at=bindparam("now"),
        last_error=null(),
        last_error_at=null(),
        metric_errors=bindparam("errors"),
        synced_through=func.greatest(_ACCOUNTS.synced_through, bindparam("until")),
        next_sync_at=bindparam("next_sync_at"),
        updated_at=bindparam("now"),
    )
    .returning(_ACCOUNTS.brand_id, _ACCOUNTS.handle)
)
"""The account's success, only while it may sync (the status check takes the row lock)."""


@dataclass(frozen=True)
class _Synced:
    tenant_id: uuid.UUID
    id: uuid.UUID
    brand_id: uuid.UUID
    platform: str
    handle: str | None


class _Judged(Protocol):
    """What an anomaly's record names of its account (an ORM account or a synced row)."""

    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def brand_id(self) -> uuid.UUID: ...
    @property
    def platform(self) -> str: ...
    @property
    def handle(self) -> str | None: ...


async def _store(
    connection: asyncpg.Connection,
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    metrics: DailyMetrics,
    now: datetime,
) -> int:
    days = sorted(metrics.days)
    if not days:
        return 0
    columns: dict[str, Any] = {m: [metrics.days[day].get(m) for day in days] for m in METRICS}
    await connection.execute(
        _UPSERT_DAYS.sql,
        *_UPSERT_DAYS.args(
            {
                "tenant_id": tenant_id,
                "account_id": account_id,
                "now": now,
                "ids": [new_id() for _ in days],
                "days": days,
                **columns,
            }
        ),
    )
    return len(days)


async def judge_recent(
    session: AsyncSession, account: _Judged, until: date, request_id: str | None
) -> int:
    start = until - timedelta(days=JUDGED_DAYS + 28)
    connection = await driver_connection(session)
    rows = await connection.fetch(
        _JUDGED_HISTORY.sql,
        *_JUDGED_HISTORY.args(
            {
                "tenant_id": account.tenant_id,
                "account_id": account.id,
                "start": start,
                "until": until,
            }
        ),
    )
    series: dict[date, Mapping[str, int | None]] = {
        row[0]: {metric: row[i + 1] for i, metric in enumerate(WATCHED)} for row in rows
    }
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
    moved past it (another job synced it), the job does nothing.

    One transaction reads the account, none is open during the platform's calls, one stores
    the figures and the account's success."""
    now = now or utcnow()
    try:
        due = await _read(db, kit, tenant_id, account_id, due_at)
        if due is None:
            return Outcome("skipped")
        if due_at is not None:
            SYNC_LAG.labels(due.platform).observe(max((now - due_at).total_seconds(), 0.0))
        tokens: TokenSet | None = due.tokens
        if _expiring(due.tokens, now) and due.tokens.refresh_token:
            tokens = await _refresh(db, kit, tenant_id, account_id, now)
        if tokens is None:
            return Outcome("skipped")
        connector = kit.connector(due.platform)
        today = now.date()
        until = today - timedelta(days=1)
        since = _window(due.synced_through, kit, until, connector.backfill_days)
        profile = await connector.profile(tokens, due.external_id)
        # Through today: today's change turns the live follower count into yesterday's closing
        # count. Today itself is not complete, so it is not stored.
        metrics = await connector.daily_metrics(tokens, due.external_id, since, today)
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
    errors = {
        metric: {"error": reason[:500], "at": now.isoformat()}
        for metric, reason in sorted(metrics.errors.items())
    }
    async with db.tenant_transaction(tenant_id) as session:
        connection = await driver_connection(session)
        # First: the update takes the account's row lock, as the refresh does.
        marked = await connection.fetchrow(
            _MARK_SYNCED.sql,
            *_MARK_SYNCED.args(
                {
                    "tenant": tenant_id,
                    "account": account_id,
                    "new_handle": profile.handle,
                    "new_display_name": profile.display_name,
                    "now": now,
                    # The connection's jsonb codec (SQLAlchemy's) takes JSON text.
                    "errors": json.dumps(errors),
                    "until": until,
                    "next_sync_at": next_sync(kit, now),
                }
            ),
            record_class=AttrRecord,
        )
        if marked is None:
            return Outcome("skipped")  # it left sync meanwhile: nothing written
        stored = await _store(connection, tenant_id, account_id, metrics, now)
        synced = _Synced(tenant_id, account_id, marked.brand_id, due.platform, marked.handle)
        await judge_recent(session, synced, until, None)
    return Outcome("synced", days=stored)
