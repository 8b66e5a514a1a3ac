"""Retainers and their month-by-month terms; hourly rates."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, case
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.budgets import errors
from billing.budgets.models import Rate, Retainer, RetainerTerms
from billing.budgets.rates import RateRule
from billing.budgets.schemas import (
    Overage,
    RateCreate,
    RateRead,
    RateUpdate,
    RetainerCreate,
    RetainerRead,
    RetainerUpdate,
    Rollover,
    TermsBody,
    TermsRead,
)
from infra.errors import InvalidFields, refuse_unknown_references
from infra.pagination import Keyset, Page, SortKey, id_key, parse_int
from tenants.capacity import parse_month
from tenants.models import Brand, Client, Membership, Role, Tenant
from tenants.policy import Resource, Verb
from tenants.principal import Principal
from tenants.service.common import (
    bump,
    check_version,
    load_readable,
    record_audit,
    record_update,
    require_scope,
)
from tenants.service.directory import today_for

_OVERLAP = "ex_retainers_overlap"


def month_of(value: str) -> date:
    return parse_month(value)[0]


def _fmt(month: date | None) -> str | None:
    return month.strftime("%Y-%m") if month else None


def terms_read(row: RetainerTerms) -> TermsRead:
    return TermsRead(
        effective_month=row.effective_month.strftime("%Y-%m"),
        monthly_minutes=row.monthly_minutes,
        fee_minor=row.fee_minor,
        brand_ids=row.brand_ids,
        rollover=(
            Rollover(max_minutes=row.rollover_max_minutes, max_months=row.rollover_max_months)
            if row.rollover_max_minutes and row.rollover_max_months
            else None
        ),
        overage=Overage(policy=row.overage_policy, rate_minor=row.overage_rate_minor),
        thresholds=list(row.thresholds),
    )


def retainer_read(retainer: Retainer, terms: list[RetainerTerms]) -> RetainerRead:
    return RetainerRead(
        id=retainer.id,
        client_id=retainer.client_id,
        currency=retainer.currency,
        start_month=retainer.start_month.strftime("%Y-%m"),
        end_month=_fmt(retainer.end_month),
        terms=[terms_read(t) for t in sorted(terms, key=lambda t: t.effective_month)],
        version=retainer.version,
        created_at=retainer.created_at,
        updated_at=retainer.updated_at,
    )


async def _check_terms(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, body: TermsBody
) -> None:
    if body.overage.policy == "bill_at_rate" and body.overage.rate_minor is None:
        raise errors.InvalidTerms("An overage billed at a rate needs overage.rate_minor.")
    if body.brand_ids:
        found = set(
            (
                await session.scalars(
                    select(Brand.id).where(
                        Brand.tenant_id == principal.tenant_id,
                        Brand.client_id == client_id,
                        col(Brand.id).in_(body.brand_ids),
                    )
                )
            ).all()
        )
        refuse_unknown_references("/brand_ids", body.brand_ids, found, "brand of this client")


def _terms_row(
    principal: Principal, retainer_id: uuid.UUID, month: date, body: TermsBody
) -> RetainerTerms:
    return RetainerTerms(
        tenant_id=principal.tenant_id,
        retainer_id=retainer_id,
        effective_month=month,
        monthly_minutes=body.monthly_minutes,
        fee_minor=body.fee_minor,
        brand_ids=sorted(set(body.brand_ids)) if body.brand_ids else None,
        rollover_max_minutes=body.rollover.max_minutes if body.rollover else 0,
        rollover_max_months=body.rollover.max_months if body.rollover else 0,
        overage_policy=body.overage.policy,
        overage_rate_minor=body.overage.rate_minor,
        thresholds=list(body.thresholds),
        created_by=principal.user_id,
    )


async def create_retainer(
    session: AsyncSession, principal: Principal, data: RetainerCreate
) -> RetainerRead:
    require_scope(principal, Resource.retainer, Verb.create)
    # Locking the client serializes a client's retainer creations: two racing inserts under
    # the exclusion constraint could otherwise deadlock instead of one getting the 409.
    client = (
        await session.scalars(
            select(Client)
            .where(Client.tenant_id == principal.tenant_id, Client.id == data.client_id)
            .with_for_update()
        )
    ).first()
    if client is None:
        raise InvalidFields.one("/client_id", "No such client in this agency.", "client-not-found")
    start = month_of(data.start_month)
    end = month_of(data.end_month) if data.end_month else None
    if end is not None and end < start:
        raise errors.InvalidTerms("The end month comes before the start month.")
    await _check_terms(session, principal, client.id, data)
    retainer = Retainer(
        tenant_id=principal.tenant_id,
        client_id=client.id,
        currency=data.currency or client.currency,
        start_month=start,
        end_month=end,
    )
    terms = _terms_row(principal, retainer.id, start, data)
    try:
        async with session.begin_nested():
            session.add(retainer)
            await session.flush()
            session.add(terms)
    except IntegrityError as exc:
        if _OVERLAP in str(exc.orig):
            raise errors.RetainerOverlap() from exc
        raise
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="retainer.created",
        subject_type="retainer",
        subject_id=retainer.id,
        changes=data.model_dump(mode="json"),
    )
    return retainer_read(retainer, [terms])


async def _terms_of(
    session: AsyncSession, tenant_id: uuid.UUID, retainer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[RetainerTerms]]:
    rows = (
        await session.scalars(
            select(RetainerTerms)
            .where(
                RetainerTerms.tenant_id == tenant_id,
                col(RetainerTerms.retainer_id).in_(retainer_ids),
            )
            .order_by(col(RetainerTerms.effective_month))
        )
    ).all()
    out: dict[uuid.UUID, list[RetainerTerms]] = {rid: [] for rid in retainer_ids}
    for row in rows:
        out[row.retainer_id].append(row)
    return out


async def _load_retainer(
    session: AsyncSession,
    principal: Principal,
    retainer_id: uuid.UUID,
    verb: Verb,
    *,
    lock: bool = False,
) -> Retainer:
    retainer: Retainer = await load_readable(
        session,
        readable_retainers(principal, verb).where(col(Retainer.id) == retainer_id),
        lock=lock,
        missing=errors.RetainerNotFound(),
    )
    return retainer


def readable_retainers(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """The agency's retainers, for the roles that handle them (require_scope refuses others)."""
    require_scope(principal, Resource.retainer, verb)
    return select(Retainer).where(Retainer.tenant_id == principal.tenant_id)


async def get_retainer(
    session: AsyncSession, principal: Principal, retainer_id: uuid.UUID
) -> RetainerRead:
    retainer = await _load_retainer(session, principal, retainer_id, Verb.read)
    terms = await _terms_of(session, principal.tenant_id, [retainer.id])
    return retainer_read(retainer, terms[retainer.id])


async def list_retainers(
    session: AsyncSession,
    principal: Principal,
    *,
    client_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[RetainerRead]:
    query = readable_retainers(principal)
    if client_id is not None:
        query = query.where(col(Retainer.client_id) == client_id)
    rows = (await session.scalars(RETAINER_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, after = RETAINER_ORDER.page(rows, limit=limit)
    terms = await _terms_of(session, principal.tenant_id, [r.id for r in page])
    return Page(items=[retainer_read(r, terms[r.id]) for r in page], next_cursor=after)


RETAINER_ORDER = Keyset(
    "created",
    [
        SortKey(col(Retainer.created_at), lambda r: r.created_at, datetime.fromisoformat),
        id_key(col(Retainer.id)),
    ],
)


async def update_retainer(
    session: AsyncSession,
    principal: Principal,
    retainer_id: uuid.UUID,
    data: RetainerUpdate,
    *,
    if_match: int | None,
) -> RetainerRead:
    """New terms from a month on. The current month may still change (it is not closed);
    earlier months keep the terms they had."""
    retainer = await _load_retainer(session, principal, retainer_id, Verb.update, lock=True)
    check_version(retainer.version, if_match)
    effective = month_of(data.effective_month)
    this_month = today_for(principal).replace(day=1)
    if effective < this_month:
        raise errors.PastMonth(
            f"{data.effective_month} is closed; change the terms from {this_month:%Y-%m} on."
        )
    end = month_of(data.end_month) if data.end_month else retainer.end_month
    if "end_month" in data.model_fields_set and data.end_month is None:
        end = None
    if effective < retainer.start_month or (end is not None and effective > end):
        raise errors.MonthOutsideRetainer(
            f"{data.effective_month} is outside this retainer's months."
        )
    if end is not None and end < this_month and end != retainer.end_month:
        raise errors.PastMonth("A retainer cannot end in a closed month.")
    await _check_terms(session, principal, retainer.client_id, data)
    existing = (
        await session.scalars(
            select(RetainerTerms).where(
                RetainerTerms.tenant_id == principal.tenant_id,
                RetainerTerms.retainer_id == retainer.id,
                RetainerTerms.effective_month >= effective,
            )
        )
    ).all()
    # Terms planned for later months give way to the new ones, which apply from now on.
    for row in existing:
        await session.delete(row)
    await session.flush()
    session.add(_terms_row(principal, retainer.id, effective, data))
    retainer.end_month = end
    bump(retainer)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if _OVERLAP in str(exc.orig):
            raise errors.RetainerOverlap() from exc
        raise
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="retainer.terms_changed",
        subject_type="retainer",
        subject_id=retainer.id,
        changes=data.model_dump(mode="json"),
    )
    terms = await _terms_of(session, principal.tenant_id, [retainer.id])
    return retainer_read(retainer, terms[retainer.id])


# ---------------------------------------------------------------------------------------------
# Rates


def rate_read(rate: Rate) -> RateRead:
    rule = RateRule(
        rate.id, rate.rate_minor, rate.currency, rate.membership_id, rate.client_id, rate.role
    )
    return RateRead(
        id=rate.id,
        kind=rule.kind,
        user_id=rate.user_id,
        client_id=rate.client_id,
        role=rate.role,
        rate_minor=rate.rate_minor,
        currency=rate.currency,
        version=rate.version,
    )


# Most specific first: a member on a client, a client, a role, then the default.
_RATE_RANK = case(
    (col(Rate.membership_id).is_not(None), 0),
    (col(Rate.client_id).is_not(None), 1),
    (col(Rate.role).is_not(None), 2),
    else_=3,
)
RATE_ORDER = Keyset(
    "rates",
    (
        SortKey(_RATE_RANK, lambda r: r[1], parse_int),
        SortKey(col(Rate.created_at), lambda r: r[0].created_at, datetime.fromisoformat),
        SortKey(col(Rate.id), lambda r: r[0].id, uuid.UUID),
    ),
)


async def list_rates(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> Page[RateRead]:
    """Most specific first, then oldest first."""
    require_scope(principal, Resource.rate, Verb.read)
    query = select(Rate, _RATE_RANK).where(Rate.tenant_id == principal.tenant_id)
    query = RATE_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = RATE_ORDER.page((await session.execute(query)).all(), limit=limit)
    return Page(items=[rate_read(rate) for rate, _ in rows], next_cursor=next_page)


async def create_rate(session: AsyncSession, principal: Principal, data: RateCreate) -> RateRead:
    require_scope(principal, Resource.rate, Verb.create)
    if data.role is not None and (data.user_id or data.client_id):
        raise errors.InvalidTerms("A role rate names no member and no client.")
    if data.user_id is not None and data.client_id is None:
        raise errors.InvalidTerms("A member's rate is for one client: give client_id too.")
    if data.client_id is not None:
        found = await session.scalar(
            select(Client.id).where(
                Client.tenant_id == principal.tenant_id, Client.id == data.client_id
            )
        )
        if found is None:
            raise InvalidFields.one(
                "/client_id", "No such client in this agency.", "client-not-found"
            )
    membership_id = None
    if data.user_id is not None:
        membership_id = await session.scalar(
            select(Membership.id).where(
                Membership.tenant_id == principal.tenant_id,
                Membership.user_id == data.user_id,
                Membership.role != Role.client,
            )
        )
        if membership_id is None:
            raise InvalidFields.one(
                "/user_id", "No such staff member in this agency.", "member-not-found"
            )
    currency = data.currency or await session.scalar(
        select(Tenant.currency).where(Tenant.id == principal.tenant_id)
    )
    rate = Rate(
        tenant_id=principal.tenant_id,
        membership_id=membership_id,
        user_id=data.user_id,
        client_id=data.client_id,
        role=data.role,
        rate_minor=data.rate_minor,
        currency=currency or "CAD",
    )
    try:
        async with session.begin_nested():
            session.add(rate)
    except IntegrityError as exc:
        raise errors.RateExists() from exc
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="rate.created",
        subject_type="rate",
        subject_id=rate.id,
        changes=data.model_dump(mode="json"),
    )
    return rate_read(rate)


async def _load_rate(session: AsyncSession, principal: Principal, rate_id: uuid.UUID) -> Rate:
    require_scope(principal, Resource.rate, Verb.update)
    rate = (
        await session.scalars(
            select(Rate)
            .where(Rate.tenant_id == principal.tenant_id, Rate.id == rate_id)
            .with_for_update()
        )
    ).first()
    if rate is None:
        raise errors.RateNotFound()
    return rate


async def update_rate(
    session: AsyncSession,
    principal: Principal,
    rate_id: uuid.UUID,
    data: RateUpdate,
    *,
    if_match: int | None,
) -> RateRead:
    rate = await _load_rate(session, principal, rate_id)
    check_version(rate.version, if_match)
    old = rate.rate_minor
    rate.rate_minor = data.rate_minor
    record_update(
        session,
        principal,
        rate,
        action="rate.updated",
        subject_type="rate",
        changes={"rate_minor": [old, data.rate_minor]},
    )
    return rate_read(rate)


async def delete_rate(
    session: AsyncSession, principal: Principal, rate_id: uuid.UUID, *, if_match: int | None
) -> None:
    rate = await _load_rate(session, principal, rate_id)
    check_version(rate.version, if_match)
    await session.delete(rate)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="rate.deleted",
        subject_type="rate",
        subject_id=rate.id,
        changes={"rate_minor": rate.rate_minor},
    )
