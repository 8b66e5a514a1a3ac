"""Weekly timesheets: a person submits a week, a manager approves it (freezing rates) or
returns it with a reason. Submitted and approved weeks lock their entries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.budgets import errors
from billing.budgets.models import EntryStatus, Rate, TimeEntry, Timesheet, TimesheetStatus
from billing.budgets.rates import RateRule, resolve_rate
from billing.budgets.schemas import TimesheetDay, TimesheetRead
from billing.budgets.service.entries import entry_read, lock_person, worker_of
from billing.budgets.timekeeping import local_day, parse_iso_week
from infra.clock import utcnow
from tenants.errors import MemberNotFound, PermissionDenied
from tenants.models import Membership, MembershipStatus, Role
from tenants.policy import Resource, Scope, Verb
from tenants.principal import Principal
from tenants.service.common import bump, load_readable, record_audit, require_scope


def _week(value: str) -> tuple[date, date]:
    try:
        return parse_iso_week(value)
    except ValueError as exc:
        raise errors.InvalidWeek(str(exc)) from exc


def readable_timesheet_staff(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """The people whose weeks the principal may see (require_scope refuses roles with none):
    themselves alone when their scope is their own, else every staff member who has joined
    (client contacts and pending invitations keep no timesheet)."""
    scope = require_scope(principal, Resource.timesheet, verb)
    query = select(Membership).where(
        Membership.tenant_id == principal.tenant_id,
        Membership.role != Role.client,
        Membership.status != MembershipStatus.invited,
    )
    if scope is Scope.own:
        query = query.where(Membership.user_id == principal.user_id)
    return query


async def _load(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    week: str,
    verb: Verb,
    *,
    lock: bool = False,
) -> tuple[Membership, date, date, Timesheet | None]:
    """The person's week; their timesheet row, if the week was ever submitted (else None: the
    week is open). A person the principal may not see is not found, never forbidden."""
    readable = readable_timesheet_staff(principal, verb).where(col(Membership.user_id) == user_id)
    monday, sunday = _week(week)
    membership: Membership = await load_readable(session, readable, missing=MemberNotFound())
    query = select(Timesheet).where(
        Timesheet.tenant_id == principal.tenant_id,
        Timesheet.membership_id == membership.id,
        Timesheet.week_start == monday,
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    sheet = (await session.scalars(query)).first()
    return membership, monday, sunday, sheet


async def _read(
    session: AsyncSession,
    principal: Principal,
    membership: Membership,
    week: str,
    monday: date,
    sunday: date,
    sheet: Timesheet | None,
) -> TimesheetRead:
    await session.flush()
    entries = list(
        (
            await session.scalars(
                select(TimeEntry)
                .where(
                    TimeEntry.tenant_id == principal.tenant_id,
                    TimeEntry.membership_id == membership.id,
                    col(TimeEntry.work_date).between(monday, sunday),
                )
                .order_by(col(TimeEntry.work_date), col(TimeEntry.id))
                .execution_options(populate_existing=True)
            )
        ).all()
    )
    per_day: dict[date, int] = defaultdict(int)
    for entry in entries:
        per_day[entry.work_date] += entry.minutes
    return TimesheetRead(
        user_id=membership.user_id,
        week=week,
        status=sheet.status if sheet else "open",
        reason=sheet.reason if sheet else None,
        submitted_at=sheet.submitted_at if sheet else None,
        decided_by=sheet.decided_by if sheet else None,
        decided_at=sheet.decided_at if sheet else None,
        total_minutes=sum(per_day.values()),
        days=[
            TimesheetDay(date=monday + timedelta(days=i), minutes=per_day[monday + timedelta(i)])
            for i in range(7)
        ],
        entries=[entry_read(e) for e in entries],
    )


async def get_timesheet(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, week: str
) -> TimesheetRead:
    membership, monday, sunday, sheet = await _load(session, principal, user_id, week, Verb.read)
    return await _read(session, principal, membership, week, monday, sunday, sheet)


async def _set_entries(
    session: AsyncSession,
    principal: Principal,
    membership: Membership,
    monday: date,
    sunday: date,
    *,
    from_status: EntryStatus,
    to_status: EntryStatus,
) -> None:
    await session.execute(
        update(TimeEntry)
        .where(
            col(TimeEntry.tenant_id) == principal.tenant_id,
            col(TimeEntry.membership_id) == membership.id,
            col(TimeEntry.work_date).between(monday, sunday),
            col(TimeEntry.status) == from_status,
        )
        .values(
            status=to_status,
            version=TimeEntry.version + 1,
            updated_at=utcnow(),
            **({"rate_minor": None, "rate_currency": None} if to_status == "open" else {}),
        )
        .execution_options(synchronize_session=False)
    )


async def submit_timesheet(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    week: str,
    *,
    at: datetime | None = None,
) -> TimesheetRead:
    # Whose week it is comes first: another agency's person is not found, not forbidden.
    membership, monday, sunday, _ = await _load(session, principal, user_id, week, Verb.read)
    if user_id != principal.user_id:
        raise PermissionDenied("Only the person whose week it is submits it.")
    require_scope(principal, Resource.timesheet, Verb.create)
    if monday > local_day(at or utcnow(), principal.timezone):
        raise errors.InvalidWeek("This week has not begun yet.")
    # The person's lock: no entry of theirs can be written while the week is being submitted.
    await lock_person(session, worker_of(principal))
    _, _, _, sheet = await _load(session, principal, user_id, week, Verb.create, lock=True)
    if sheet is not None and sheet.status != TimesheetStatus.returned:
        raise errors.TimesheetState(
            f"This week is already {sheet.status}.", timesheet_status=sheet.status
        )
    now = utcnow()
    if sheet is None:
        sheet = Timesheet(
            tenant_id=principal.tenant_id,
            membership_id=membership.id,
            user_id=user_id,
            week_start=monday,
            status=TimesheetStatus.submitted,
            submitted_at=now,
        )
        session.add(sheet)
    else:
        sheet.status = TimesheetStatus.submitted
        sheet.reason = None
        sheet.submitted_at = now
        sheet.decided_by = None
        sheet.decided_at = None
        bump(sheet, at=now)
    await _set_entries(
        session,
        principal,
        membership,
        monday,
        sunday,
        from_status=EntryStatus.open,
        to_status=EntryStatus.submitted,
    )
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="timesheet.submitted",
        subject_type="timesheet",
        subject_id=sheet.id,
        changes={"week": week},
    )
    return await _read(session, principal, membership, week, monday, sunday, sheet)


async def approve_timesheet(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, week: str
) -> TimesheetRead:
    membership, monday, sunday, sheet = await _load(
        session, principal, user_id, week, Verb.approve, lock=True
    )
    if user_id == principal.user_id and principal.role != Role.owner:
        raise errors.SelfApproval("Another manager approves your week.")
    if sheet is None or sheet.status != TimesheetStatus.submitted:
        state = sheet.status if sheet else "open"
        raise errors.TimesheetState(f"Only a submitted week is approved; this one is {state}.")
    rules = [
        RateRule(r.id, r.rate_minor, r.currency, r.membership_id, r.client_id, r.role)
        for r in (
            await session.scalars(select(Rate).where(Rate.tenant_id == principal.tenant_id))
        ).all()
    ]
    entries = (
        await session.scalars(
            select(TimeEntry)
            .where(
                TimeEntry.tenant_id == principal.tenant_id,
                TimeEntry.membership_id == membership.id,
                col(TimeEntry.work_date).between(monday, sunday),
                TimeEntry.status == EntryStatus.submitted,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    now = utcnow()
    for entry in entries:
        # The rate is frozen now: a later change of rates never rewrites approved time.
        rate = resolve_rate(
            rules, membership_id=membership.id, client_id=entry.client_id, role=membership.role
        )
        entry.status = EntryStatus.approved
        entry.rate_minor = rate.rate_minor if rate else None
        entry.rate_currency = rate.currency if rate else None
        bump(entry, at=now)
    sheet.status = TimesheetStatus.approved
    sheet.decided_by = principal.user_id
    sheet.decided_at = now
    bump(sheet, at=now)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="timesheet.approved",
        subject_type="timesheet",
        subject_id=sheet.id,
        changes={"week": week, "entries": len(entries)},
    )
    return await _read(session, principal, membership, week, monday, sunday, sheet)


async def return_timesheet(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, week: str, reason: str
) -> TimesheetRead:
    membership, monday, sunday, sheet = await _load(
        session, principal, user_id, week, Verb.approve, lock=True
    )
    if sheet is None or sheet.status not in (TimesheetStatus.submitted, TimesheetStatus.approved):
        state = sheet.status if sheet else "open"
        raise errors.TimesheetState(
            f"Only a submitted or approved week is returned; this one is {state}."
        )
    invoiced = await session.scalar(
        select(TimeEntry.id)
        .where(
            TimeEntry.tenant_id == principal.tenant_id,
            TimeEntry.membership_id == membership.id,
            col(TimeEntry.work_date).between(monday, sunday),
            TimeEntry.status == EntryStatus.invoiced,
        )
        .limit(1)
    )
    if invoiced is not None:
        raise errors.EntryLocked("Some of this week's time is invoiced: it can no longer change.")
    for status in (EntryStatus.submitted, EntryStatus.approved):
        await _set_entries(
            session,
            principal,
            membership,
            monday,
            sunday,
            from_status=status,
            to_status=EntryStatus.open,
        )
    now = utcnow()
    sheet.status = TimesheetStatus.returned
    sheet.reason = reason
    sheet.decided_by = principal.user_id
    sheet.decided_at = now
    bump(sheet, at=now)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="timesheet.returned",
        subject_type="timesheet",
        subject_id=sheet.id,
        changes={"week": week, "reason": reason},
    )
    return await _read(session, principal, membership, week, monday, sunday, sheet)
