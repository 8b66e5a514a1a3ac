"""Who works on which brand, and how the team's capacity is allocated month by month."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.errors import body_reference
from infra.pagination import Keyset, Page, id_key
from tenants import errors
from tenants.capacity import allocated_minutes, parse_month
from tenants.models import (
    Assignment,
    AuditEvent,
    Brand,
    Client,
    ClientStatus,
    Membership,
    MembershipStatus,
    Role,
    User,
)
from tenants.permissions import Action
from tenants.policy import Resource, Scope, Verb
from tenants.principal import Principal
from tenants.schemas import (
    AllocationLine,
    AssignmentCreate,
    AssignmentRead,
    AssignmentUpdate,
    AuditEventRead,
    StaffCapacity,
    TeamCapacityRow,
)
from tenants.service.common import (
    authorize,
    check_version,
    load_readable,
    record_audit,
    record_update,
    require_scope,
)
from tenants.service.directory import load_brand

_OVERLAP = "ex_assignments_overlap"


def assignment_read(a: Assignment) -> AssignmentRead:
    return AssignmentRead.model_validate(a, from_attributes=True)


def _month(value: str) -> tuple[date, date]:
    try:
        return parse_month(value)
    except ValueError as exc:
        raise errors.InvalidMonth() from exc


async def _staff_membership(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID
) -> Membership:
    membership = (
        await session.scalars(
            select(Membership).where(
                Membership.tenant_id == principal.tenant_id, Membership.user_id == user_id
            )
        )
    ).first()
    if membership is None:
        raise errors.MemberNotFound()
    if membership.role == Role.client or membership.status != MembershipStatus.active:
        raise errors.NotStaff()
    return membership


async def _flush_assignment(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if _OVERLAP in str(exc.orig):
            raise errors.AssignmentOverlap() from exc
        raise


async def create_assignment(
    session: AsyncSession, principal: Principal, data: AssignmentCreate
) -> AssignmentRead:
    require_scope(principal, Resource.assignment, Verb.create)
    with body_reference("/brand_id"):
        brand = await load_brand(session, principal, data.brand_id, Verb.read)
    if brand.status != ClientStatus.active:
        raise errors.BrandArchived()
    client_status = await session.scalar(
        select(Client.status).where(
            Client.tenant_id == principal.tenant_id, Client.id == brand.client_id
        )
    )
    if client_status != ClientStatus.active:
        raise errors.ClientArchived()
    if data.end_date is not None and data.end_date < data.start_date:
        raise errors.InvalidDates()
    with body_reference("/user_id"):
        membership = await _staff_membership(session, principal, data.user_id)
    assignment = Assignment(
        tenant_id=principal.tenant_id,
        brand_id=brand.id,
        membership_id=membership.id,
        user_id=data.user_id,
        role=data.role,
        monthly_minutes=data.monthly_minutes,
        start_date=data.start_date,
        end_date=data.end_date,
    )
    session.add(assignment)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="assignment.created",
        subject_type="assignment",
        subject_id=assignment.id,
        changes={"brand_id": str(brand.id), "user_id": str(data.user_id), "role": data.role},
    )
    await _flush_assignment(session)
    return assignment_read(assignment)


def readable_assignments(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """All of the agency's assignments for those who manage them, else one's own."""
    scope = require_scope(principal, Resource.assignment, verb)
    query: Select[Any] = select(Assignment).where(Assignment.tenant_id == principal.tenant_id)
    if scope is Scope.all:
        return query
    return query.where(col(Assignment.membership_id) == principal.membership_id)


async def list_assignments(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None = None,
    brand_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    active_on: date | None = None,
) -> Page[AssignmentRead]:
    query = readable_assignments(principal)
    if brand_id is not None:
        query = query.where(col(Assignment.brand_id) == brand_id)
    if user_id is not None:
        query = query.where(col(Assignment.user_id) == user_id)
    if active_on is not None:
        query = query.where(
            col(Assignment.start_date) <= active_on,
            col(Assignment.end_date).is_(None) | (col(Assignment.end_date) >= active_on),
        )
    rows = (await session.scalars(ASSIGNMENT_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, after = ASSIGNMENT_ORDER.page(rows, limit=limit)
    return Page(items=[assignment_read(a) for a in page], next_cursor=after)


ASSIGNMENT_ORDER = Keyset("assignments", [id_key(col(Assignment.id))])


async def _load_assignment(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    verb: Verb,
    *,
    lock: bool = False,
) -> Assignment:
    assignment: Assignment = await load_readable(
        session,
        readable_assignments(principal, verb).where(col(Assignment.id) == assignment_id),
        lock=lock,
        missing=errors.AssignmentNotFound(),
    )
    return assignment


async def get_assignment(
    session: AsyncSession, principal: Principal, assignment_id: uuid.UUID
) -> AssignmentRead:
    return assignment_read(await _load_assignment(session, principal, assignment_id, Verb.read))


async def update_assignment(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    data: AssignmentUpdate,
    *,
    if_match: int | None,
) -> AssignmentRead:
    assignment = await _load_assignment(session, principal, assignment_id, Verb.update, lock=True)
    check_version(assignment.version, if_match)
    patch = data.model_dump(exclude_unset=True)
    start = patch.get("start_date", assignment.start_date)
    end = patch.get("end_date", assignment.end_date)
    if start is None:
        raise errors.InvalidDates("An assignment needs a start date.")
    if end is not None and end < start:
        raise errors.InvalidDates()
    diff = {}
    for field, new in patch.items():
        old = getattr(assignment, field)
        if old != new:
            diff[field] = [None if old is None else str(old), None if new is None else str(new)]
            setattr(assignment, field, new)
    if diff:
        record_update(
            session,
            principal,
            assignment,
            action="assignment.ended" if "end_date" in diff else "assignment.updated",
            subject_type="assignment",
            changes=diff,
        )
        await _flush_assignment(session)
    return assignment_read(assignment)


# ---------------------------------------------------------------------------------------------
# Capacity


async def _allocations(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    membership_ids: list[uuid.UUID],
    first: date,
    last: date,
) -> dict[uuid.UUID, list[AllocationLine]]:
    """Every assignment touching the month for these people, in one query."""
    rows = (
        await session.execute(
            select(Assignment, Brand.name)
            .join(
                Brand,
                (col(Brand.tenant_id) == col(Assignment.tenant_id))
                & (col(Brand.id) == col(Assignment.brand_id)),
            )
            .where(
                Assignment.tenant_id == tenant_id,
                col(Assignment.membership_id).in_(membership_ids),
                col(Assignment.start_date) <= last,
                col(Assignment.end_date).is_(None) | (col(Assignment.end_date) >= first),
            )
            .order_by(col(Assignment.start_date), col(Assignment.id))
        )
    ).all()
    by_member: dict[uuid.UUID, list[AllocationLine]] = defaultdict(list)
    for assignment, brand_name in rows:
        by_member[assignment.membership_id].append(
            AllocationLine(
                assignment_id=assignment.id,
                brand_id=assignment.brand_id,
                brand_name=brand_name,
                role=assignment.role,
                monthly_minutes=assignment.monthly_minutes,
                allocated_minutes=allocated_minutes(
                    assignment.monthly_minutes,
                    assignment.start_date,
                    assignment.end_date,
                    first,
                    last,
                ),
            )
        )
    return by_member


async def staff_capacity(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, month: str
) -> StaffCapacity:
    scope = require_scope(principal, Resource.capacity, Verb.read)
    if scope is Scope.own and user_id != principal.user_id:
        raise errors.MemberNotFound()
    first, last = _month(month)
    row = (
        await session.execute(
            select(Membership, User.name)
            .join(User, col(User.id) == col(Membership.user_id))
            .where(
                Membership.tenant_id == principal.tenant_id,
                Membership.user_id == user_id,
                Membership.role != Role.client,
            )
        )
    ).first()
    if row is None:
        raise errors.MemberNotFound()
    membership, name = row
    lines = (await _allocations(session, principal.tenant_id, [membership.id], first, last)).get(
        membership.id, []
    )
    allocated = sum(line.allocated_minutes for line in lines)
    return StaffCapacity(
        user_id=user_id,
        name=name,
        month=month,
        capacity_minutes=membership.monthly_capacity_minutes,
        allocated_minutes=allocated,
        over_allocated=allocated > membership.monthly_capacity_minutes,
        allocations=lines,
    )


async def team_capacity(
    session: AsyncSession,
    principal: Principal,
    month: str,
    *,
    limit: int,
    cursor: str | None = None,
) -> Page[TeamCapacityRow]:
    if require_scope(principal, Resource.capacity, Verb.read) is not Scope.all:
        raise errors.PermissionDenied("The team view is for owners, admins and managers.")
    first, last = _month(month)
    query = (
        select(Membership, User.name)
        .join(User, col(User.id) == col(Membership.user_id))
        .where(
            Membership.tenant_id == principal.tenant_id,
            Membership.role != Role.client,
            Membership.status == MembershipStatus.active,
        )
    )
    rows = (await session.execute(TEAM_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, after = TEAM_ORDER.page(rows, limit=limit)
    lines = await _allocations(session, principal.tenant_id, [m.id for m, _ in page], first, last)
    items = []
    for membership, name in page:
        allocated = sum(line.allocated_minutes for line in lines.get(membership.id, []))
        items.append(
            TeamCapacityRow(
                user_id=membership.user_id,
                name=name,
                role=Role(membership.role),
                capacity_minutes=membership.monthly_capacity_minutes,
                allocated_minutes=allocated,
                over_allocated=allocated > membership.monthly_capacity_minutes,
            )
        )
    return Page(items=items, next_cursor=after)


TEAM_ORDER = Keyset("team", [id_key(col(Membership.id), lambda row: row[0].id)])


# ---------------------------------------------------------------------------------------------
# Audit


async def list_audit_events(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None = None,
    subject_type: str | None = None,
    subject_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEventRead]:
    """Newest first."""
    authorize(principal, Action.audit_read)
    query: Select[Any] = select(AuditEvent).where(AuditEvent.tenant_id == principal.tenant_id)
    if subject_type is not None:
        query = query.where(col(AuditEvent.subject_type) == subject_type)
    if subject_id is not None:
        query = query.where(col(AuditEvent.subject_id) == subject_id)
    if actor_id is not None:
        query = query.where(col(AuditEvent.actor_id) == actor_id)
    if since is not None:
        query = query.where(col(AuditEvent.created_at) >= since)
    if until is not None:
        query = query.where(col(AuditEvent.created_at) < until)
    rows = (await session.scalars(AUDIT_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, after = AUDIT_ORDER.page(rows, limit=limit)
    return Page(
        items=[AuditEventRead.model_validate(e, from_attributes=True) for e in page],
        next_cursor=after,
    )


AUDIT_ORDER = Keyset("audit", [id_key(col(AuditEvent.id), descending=True)])
