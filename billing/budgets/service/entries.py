"""Time entries and timers: who spent how long on which brand, checked against assignments,
the length of the day, locked weeks and the retainer's cap."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.budgets import errors
from billing.budgets.budget import months_between
from billing.budgets.models import EntryStatus, TimeEntry, Timer, Timesheet, TimesheetStatus
from billing.budgets.schemas import (
    CurrentTimer,
    EntryCreate,
    EntryRead,
    EntryUpdate,
    TimerRead,
    TimerStart,
    TimerStopped,
)
from billing.budgets.service.ledger import (
    budget_at,
    lock_retainer,
    month_end,
    record_crossings,
    usage_of,
)
from billing.budgets.timekeeping import FORGOTTEN_AFTER, day_minutes, local_day, split_by_local_day
from inbox.service.items import brand_of_inbox_item
from infra.clock import utcnow
from infra.errors import body_reference
from infra.pagination import Keyset, Page, SortKey, id_key
from tenants.errors import BrandNotFound
from tenants.models import Assignment, Brand, Membership
from tenants.policy import Resource, Scope, Verb
from tenants.principal import Principal
from tenants.service.common import (
    bump,
    check_version,
    load_readable,
    record_audit,
    require_scope,
)
from workflows.service.content import brand_of_content


def entry_read(entry: TimeEntry) -> EntryRead:
    return EntryRead(
        id=entry.id,
        user_id=entry.user_id,
        brand_id=entry.brand_id,
        client_id=entry.client_id,
        date=entry.work_date,
        started_at=entry.started_at,
        minutes=entry.minutes,
        activity=entry.activity,
        billable=entry.billable,
        note=entry.note,
        content_item_id=entry.content_item_id,
        inbox_item_id=entry.inbox_item_id,
        status=entry.status,
        source=entry.source,
        flagged_reason=entry.flagged_reason,
        rate_minor=entry.rate_minor,
        rate_currency=entry.rate_currency,
        version=entry.version,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )


@dataclass(frozen=True, slots=True)
class Worker:
    """Whose time it is: the person, and the agency's clock."""

    tenant_id: uuid.UUID
    membership_id: uuid.UUID
    user_id: uuid.UUID
    timezone: str


def worker_of(principal: Principal) -> Worker:
    return Worker(
        principal.tenant_id, principal.membership_id, principal.user_id, principal.timezone
    )


# ---------------------------------------------------------------------------------------------
# The checks every new minute of time goes through


async def _brand(session: AsyncSession, tenant_id: uuid.UUID, brand_id: uuid.UUID) -> Brand:
    brand = (
        await session.scalars(
            select(Brand).where(Brand.tenant_id == tenant_id, Brand.id == brand_id)
        )
    ).first()
    if brand is None:
        raise BrandNotFound()
    return brand


async def _ensure_assigned(
    session: AsyncSession, worker: Worker, brand_id: uuid.UUID, day: date
) -> None:
    if not await _is_assigned(session, worker, brand_id, day):
        raise errors.NotAssigned(f"You are not assigned to this brand on {day.isoformat()}.")


async def _is_assigned(
    session: AsyncSession, worker: Worker, brand_id: uuid.UUID, day: date
) -> bool:
    found = await session.scalar(
        select(Assignment.id)
        .where(
            Assignment.tenant_id == worker.tenant_id,
            Assignment.membership_id == worker.membership_id,
            Assignment.brand_id == brand_id,
            col(Assignment.start_date) <= day,
            col(Assignment.end_date).is_(None) | (col(Assignment.end_date) >= day),
        )
        .limit(1)
    )
    return found is not None


async def lock_person(session: AsyncSession, worker: Worker) -> None:
    """Serializes one person's time writes (day totals); always taken before a retainer lock."""
    await session.scalar(
        select(Membership.id)
        .where(Membership.tenant_id == worker.tenant_id, Membership.id == worker.membership_id)
        .with_for_update()
    )


async def _ensure_week_open(session: AsyncSession, worker: Worker, day: date) -> None:
    monday = day - timedelta(days=day.weekday())
    status = await session.scalar(
        select(Timesheet.status).where(
            Timesheet.tenant_id == worker.tenant_id,
            Timesheet.membership_id == worker.membership_id,
            Timesheet.week_start == monday,
        )
    )
    if status in (TimesheetStatus.submitted, TimesheetStatus.approved):
        raise errors.WeekLocked(
            f"The week of {monday.isoformat()} is {status}; ask a manager to return it."
        )


async def _ensure_day_room(
    session: AsyncSession,
    worker: Worker,
    day: date,
    minutes: int,
    *,
    excluding: uuid.UUID | None = None,
) -> None:
    query = select(func.coalesce(func.sum(TimeEntry.minutes), 0)).where(
        TimeEntry.tenant_id == worker.tenant_id,
        TimeEntry.membership_id == worker.membership_id,
        TimeEntry.work_date == day,
    )
    if excluding is not None:
        query = query.where(TimeEntry.id != excluding)
    logged = int(await session.scalar(query) or 0)
    length = day_minutes(day, worker.timezone)
    if logged + minutes > length:
        raise errors.DayOverfull(
            f"{day.isoformat()} has {length} minutes and {logged} are already logged.",
            day_minutes=length,
            logged_minutes=logged,
        )


async def _charge(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    client_id: uuid.UUID,
    brand_id: uuid.UUID,
    day: date,
    billable: bool,
    delta: int,
    request_id: str | None,
) -> None:
    """Count `delta` more billable minutes against the retainer of the day's month.

    Locks the retainer row, refuses what a hard cap does not allow, and records thresholds
    crossed once the change is written (call it before flushing the change; it flushes).
    With rollover, time in one month changes what later months have, so every month from the
    day's to the latest one with time is checked and alerted, not only the day's.
    """
    month = day.replace(day=1)
    view = await lock_retainer(session, tenant_id, client_id, month)
    if view is None:
        if billable:
            raise errors.NoRetainer(
                f"No retainer of this client covers {month:%Y-%m}: log the time as "
                "non-billable, or extend the retainer."
            )
        return
    if not billable or not view.counts(month, brand_id) or delta == 0:
        await session.flush()
        return
    until = month_end(view.retainer.end_month) if view.retainer.end_month else _FOREVER
    before = (
        await usage_of(session, tenant_id, [client_id], view.retainer.start_month, until)
    ).get(client_id, {})
    after = dict(before)
    after[(month, brand_id)] = after.get((month, brand_id), 0) + delta
    last = max([month, *(m for m, _ in after)])
    affected = [m for m in months_between(month, last) if view.covers(m)]
    if delta > 0:
        for current in affected:
            if view.terms_for(current).overage_policy != "hard_cap":
                continue
            was, will = budget_at(view, before, current), budget_at(view, after, current)
            if will.overage_minutes > was.overage_minutes:
                raise errors.BudgetExhausted(
                    f"{was.remaining_minutes} minutes are left in {current:%Y-%m} and the "
                    "retainer is capped.",
                    remaining_minutes=was.remaining_minutes,
                    month=f"{current:%Y-%m}",
                )
    await session.flush()
    for current in affected:
        await record_crossings(
            session,
            tenant_id=tenant_id,
            client_id=client_id,
            view=view,
            budget=budget_at(view, after, current),
            request_id=request_id,
        )


_FOREVER = date(9999, 12, 31)


def _day_of(data: EntryCreate, timezone: str) -> date:
    if data.started_at is None:
        if data.date is None:
            raise errors.DateMismatch("Give the date, or the start time.")
        return data.date
    day = local_day(data.started_at, timezone)
    if data.date is not None and data.date != day:
        raise errors.DateMismatch(
            f"The start time falls on {day.isoformat()} in the agency's timezone, "
            f"not {data.date.isoformat()}."
        )
    return day


# ---------------------------------------------------------------------------------------------
# Entries


async def _ensure_content_item(
    session: AsyncSession, tenant_id: uuid.UUID, brand_id: uuid.UUID, item_id: uuid.UUID | None
) -> None:
    """Time spent on a post points at a real post of the same brand."""
    if item_id is None:
        return
    owner = await brand_of_content(session, tenant_id, item_id)
    if owner is None:
        raise _unknown_content_item("No such content item in this agency.")
    if owner != brand_id:
        raise _unknown_content_item("This content item belongs to another brand.")


async def _ensure_inbox_item(
    session: AsyncSession, tenant_id: uuid.UUID, brand_id: uuid.UUID, item_id: uuid.UUID | None
) -> None:
    """Time spent answering points at an item of the same brand."""
    if item_id is None:
        return
    owner = await brand_of_inbox_item(session, tenant_id, item_id)
    if owner != brand_id:
        why = (
            "No such inbox item in this agency."
            if owner is None
            else "This inbox item belongs to another brand."
        )
        raise errors.UnknownContentItem(
            why, errors=[{"pointer": "/inbox_item_id", "message": why, "code": "unknown-reference"}]
        )


def _unknown_content_item(why: str) -> errors.UnknownContentItem:
    return errors.UnknownContentItem(
        why, errors=[{"pointer": "/content_item_id", "message": why, "code": "unknown-reference"}]
    )


async def create_entry(
    session: AsyncSession, principal: Principal, data: EntryCreate, *, at: datetime | None = None
) -> EntryRead:
    require_scope(principal, Resource.time_entry, Verb.create)
    worker = worker_of(principal)
    day = _day_of(data, worker.timezone)
    if day > local_day(at or utcnow(), worker.timezone):
        raise errors.FutureDate(f"{day.isoformat()} has not begun yet.")
    with body_reference("/brand_id"):
        brand = await _brand(session, worker.tenant_id, data.brand_id)
    await _ensure_assigned(session, worker, brand.id, day)
    await _ensure_content_item(session, worker.tenant_id, brand.id, data.content_item_id)
    await _ensure_inbox_item(session, worker.tenant_id, brand.id, data.inbox_item_id)
    await lock_person(session, worker)
    await _ensure_week_open(session, worker, day)
    await _ensure_day_room(session, worker, day, data.minutes)
    entry = TimeEntry(
        tenant_id=worker.tenant_id,
        membership_id=worker.membership_id,
        user_id=worker.user_id,
        brand_id=brand.id,
        client_id=brand.client_id,
        work_date=day,
        started_at=data.started_at,
        minutes=data.minutes,
        activity=data.activity,
        billable=data.billable,
        note=data.note,
        content_item_id=data.content_item_id,
        inbox_item_id=data.inbox_item_id,
    )
    session.add(entry)
    await _charge(
        session,
        worker.tenant_id,
        client_id=brand.client_id,
        brand_id=brand.id,
        day=day,
        billable=data.billable,
        delta=data.minutes,
        request_id=principal.request_id,
    )
    record_audit(
        session,
        tenant_id=worker.tenant_id,
        actor=principal,
        action="time_entry.created",
        subject_type="time_entry",
        subject_id=entry.id,
        changes={"minutes": entry.minutes, "date": day.isoformat(), "brand_id": str(brand.id)},
    )
    return entry_read(entry)


def readable_entries(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """All of the agency's time for those who see it all, else one's own."""
    scope = require_scope(principal, Resource.time_entry, verb)
    query: Select[Any] = select(TimeEntry).where(TimeEntry.tenant_id == principal.tenant_id)
    if scope is Scope.all:
        return query
    return query.where(col(TimeEntry.membership_id) == principal.membership_id)


async def _load_entry(
    session: AsyncSession,
    principal: Principal,
    entry_id: uuid.UUID,
    verb: Verb,
    *,
    lock: bool = False,
) -> TimeEntry:
    entry: TimeEntry = await load_readable(
        session,
        readable_entries(principal, verb).where(col(TimeEntry.id) == entry_id),
        lock=lock,
        missing=errors.TimeEntryNotFound(),
    )
    return entry


async def get_entry(session: AsyncSession, principal: Principal, entry_id: uuid.UUID) -> EntryRead:
    return entry_read(await _load_entry(session, principal, entry_id, Verb.read))


def _owner(principal: Principal, entry: TimeEntry) -> Worker:
    return Worker(principal.tenant_id, entry.membership_id, entry.user_id, principal.timezone)


def _ensure_open(entry: TimeEntry) -> None:
    if entry.status != EntryStatus.open:
        raise errors.EntryLocked(
            f"This entry is {entry.status}; only open entries change.", entry_status=entry.status
        )


async def _entry_to_change(
    session: AsyncSession, principal: Principal, entry_id: uuid.UUID, *, if_match: int | None
) -> tuple[TimeEntry, Worker]:
    """The entry, locked after its owner (the lock order of every time write), if it may
    still change: open, at the version the caller read, in a week not submitted."""
    found = await _load_entry(session, principal, entry_id, Verb.update)
    owner = _owner(principal, found)
    await lock_person(session, owner)
    entry = await _load_entry(session, principal, entry_id, Verb.update, lock=True)
    _ensure_open(entry)
    check_version(entry.version, if_match)
    await _ensure_week_open(session, owner, entry.work_date)
    return entry, owner


async def update_entry(
    session: AsyncSession,
    principal: Principal,
    entry_id: uuid.UUID,
    data: EntryUpdate,
    *,
    if_match: int | None,
) -> EntryRead:
    entry, owner = await _entry_to_change(session, principal, entry_id, if_match=if_match)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("minutes") is None:
        changes.pop("minutes", None)
    if changes.get("billable") is None:
        changes.pop("billable", None)
    if changes.get("activity") is None:
        changes.pop("activity", None)
    if "content_item_id" in changes:
        await _ensure_content_item(
            session, entry.tenant_id, entry.brand_id, changes["content_item_id"]
        )
    new_minutes = changes.get("minutes", entry.minutes)
    new_billable = changes.get("billable", entry.billable)
    if new_minutes > entry.minutes:
        await _ensure_day_room(session, owner, entry.work_date, new_minutes, excluding=entry.id)
    before = entry.minutes if entry.billable else 0
    after = new_minutes if new_billable else 0
    for field, value in changes.items():
        setattr(entry, field, value)
    if changes:
        bump(entry)
    await _charge(
        session,
        principal.tenant_id,
        client_id=entry.client_id,
        brand_id=entry.brand_id,
        day=entry.work_date,
        billable=new_billable,
        delta=after - before,
        request_id=principal.request_id,
    )
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="time_entry.updated",
        subject_type="time_entry",
        subject_id=entry.id,
        changes={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in changes.items()},
    )
    return entry_read(entry)


async def delete_entry(
    session: AsyncSession, principal: Principal, entry_id: uuid.UUID, *, if_match: int | None
) -> None:
    entry, _ = await _entry_to_change(session, principal, entry_id, if_match=if_match)
    await session.delete(entry)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="time_entry.deleted",
        subject_type="time_entry",
        subject_id=entry.id,
        changes={"minutes": entry.minutes, "date": entry.work_date.isoformat()},
    )


@dataclass(frozen=True, slots=True)
class EntryFilters:
    user_id: uuid.UUID | None = None
    brand_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    date_from: date | None = None
    date_to: date | None = None
    activity: str | None = None
    status: str | None = None


async def list_entries(
    session: AsyncSession,
    principal: Principal,
    filters: EntryFilters,
    *,
    limit: int,
    cursor: str | None = None,
) -> Page[EntryRead]:
    query = readable_entries(principal)
    conditions = {
        TimeEntry.user_id: filters.user_id,
        TimeEntry.brand_id: filters.brand_id,
        TimeEntry.client_id: filters.client_id,
        TimeEntry.activity: filters.activity,
        TimeEntry.status: filters.status,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(col(column) == value)
    if filters.date_from is not None:
        query = query.where(col(TimeEntry.work_date) >= filters.date_from)
    if filters.date_to is not None:
        query = query.where(col(TimeEntry.work_date) <= filters.date_to)
    rows = (await session.scalars(ENTRY_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, after = ENTRY_ORDER.page(rows, limit=limit)
    return Page(items=[entry_read(e) for e in page], next_cursor=after)


ENTRY_ORDER = Keyset(
    "date",
    [
        SortKey(col(TimeEntry.work_date), lambda e: e.work_date, date.fromisoformat),
        id_key(col(TimeEntry.id)),
    ],
)


# ---------------------------------------------------------------------------------------------
# Timers


def _timer_read(timer: Timer, now: datetime) -> TimerRead:
    return TimerRead(
        id=timer.id,
        brand_id=timer.brand_id,
        activity=timer.activity,
        billable=timer.billable,
        note=timer.note,
        content_item_id=timer.content_item_id,
        started_at=timer.started_at,
        elapsed_minutes=max(int((now - timer.started_at).total_seconds() // 60), 0),
    )


async def _running(session: AsyncSession, worker: Worker, *, lock: bool = False) -> Timer | None:
    query = select(Timer).where(
        Timer.tenant_id == worker.tenant_id, Timer.membership_id == worker.membership_id
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).first()


async def current_timer(
    session: AsyncSession, principal: Principal, *, at: datetime | None = None
) -> CurrentTimer:
    require_scope(principal, Resource.time_entry, Verb.create)
    timer = await _running(session, worker_of(principal))
    return CurrentTimer(timer=_timer_read(timer, at or utcnow()) if timer else None)


async def start_timer(
    session: AsyncSession, principal: Principal, data: TimerStart, *, at: datetime | None = None
) -> TimerRead:
    require_scope(principal, Resource.time_entry, Verb.create)
    worker = worker_of(principal)
    now = at or utcnow()
    with body_reference("/brand_id"):
        brand = await _brand(session, worker.tenant_id, data.brand_id)
    await _ensure_assigned(session, worker, brand.id, local_day(now, worker.timezone))
    await _ensure_content_item(session, worker.tenant_id, brand.id, data.content_item_id)
    running = await _running(session, worker)
    if running is not None:
        raise errors.TimerRunning(
            timer_id=str(running.id), started_at=running.started_at.isoformat()
        )
    timer = Timer(
        tenant_id=worker.tenant_id,
        membership_id=worker.membership_id,
        user_id=worker.user_id,
        brand_id=brand.id,
        activity=data.activity,
        billable=data.billable,
        note=data.note,
        content_item_id=data.content_item_id,
        started_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(timer)
    except IntegrityError as exc:  # a second start raced this one
        raise errors.TimerRunning() from exc
    return _timer_read(timer, now)


async def close_timer(
    session: AsyncSession,
    worker: Worker,
    timer: Timer,
    *,
    now: datetime,
    request_id: str | None,
) -> tuple[list[TimeEntry], bool]:
    """Turn a timer into one entry per local day it ran on; past 12 hours it stops at 12 hours
    and its entries are flagged for the person to check."""
    flagged = now - timer.started_at > FORGOTTEN_AFTER
    end = timer.started_at + FORGOTTEN_AFTER if flagged else now
    brand = await _brand(session, worker.tenant_id, timer.brand_id)
    entries: list[TimeEntry] = []
    for piece in split_by_local_day(timer.started_at, end, worker.timezone):
        if not await _is_assigned(session, worker, brand.id, piece.day):
            continue  # the assignment ended while the timer ran: no time on days after it
        await _ensure_week_open(session, worker, piece.day)
        await _ensure_day_room(session, worker, piece.day, piece.minutes)
        entry = TimeEntry(
            tenant_id=worker.tenant_id,
            membership_id=worker.membership_id,
            user_id=worker.user_id,
            brand_id=brand.id,
            client_id=brand.client_id,
            work_date=piece.day,
            started_at=piece.started_at,
            minutes=piece.minutes,
            activity=timer.activity,
            billable=timer.billable,
            note=timer.note,
            content_item_id=timer.content_item_id,
            source="timer",
            flagged_reason="forgotten_timer" if flagged else None,
        )
        session.add(entry)
        await _charge(
            session,
            worker.tenant_id,
            client_id=brand.client_id,
            brand_id=brand.id,
            day=piece.day,
            billable=timer.billable,
            delta=piece.minutes,
            request_id=request_id,
        )
        entries.append(entry)
    await session.delete(timer)
    await session.flush()
    return entries, flagged


async def stop_timer(
    session: AsyncSession, principal: Principal, *, at: datetime | None = None
) -> TimerStopped:
    require_scope(principal, Resource.time_entry, Verb.create)
    worker = worker_of(principal)
    await lock_person(session, worker)
    timer = await _running(session, worker, lock=True)
    if timer is None:
        raise errors.NoTimer()
    entries, flagged = await close_timer(
        session, worker, timer, now=at or utcnow(), request_id=principal.request_id
    )
    record_audit(
        session,
        tenant_id=worker.tenant_id,
        actor=principal,
        action="timer.stopped",
        subject_type="timer",
        subject_id=timer.id,
        changes={"entries": [str(e.id) for e in entries], "flagged": flagged},
    )
    return TimerStopped(entries=[entry_read(e) for e in entries], flagged=flagged)


async def discard_timer(session: AsyncSession, principal: Principal) -> None:
    require_scope(principal, Resource.time_entry, Verb.create)
    worker = worker_of(principal)
    timer = await _running(session, worker, lock=True)
    if timer is None:
        raise errors.NoTimer()
    await session.delete(timer)
    record_audit(
        session,
        tenant_id=worker.tenant_id,
        actor=principal,
        action="timer.discarded",
        subject_type="timer",
        subject_id=timer.id,
        changes={"started_at": timer.started_at.isoformat()},
    )
