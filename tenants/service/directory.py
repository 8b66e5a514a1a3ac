"""Clients and their brands: the agency's directory, seen through the visibility policy."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlmodel import col, select

from infra.clock import utcnow
from infra.errors import body_reference
from infra.pagination import Keyset, Page, SortKey, id_key
from infra.settings import Settings
from tenants import errors
from tenants.models import Assignment, Brand, Client, ClientStatus, Tenant
from tenants.policy import Resource, Scope, Verb, local_date, sees_internal_client_fields
from tenants.principal import Principal
from tenants.schemas import (
    BrandCreate,
    BrandRead,
    BrandUpdate,
    ClientCreate,
    ClientRead,
    ClientUpdate,
    Guidelines,
    ListStatus,
    SortOrder,
)
from tenants.service.common import (
    check_version,
    load_readable,
    record_audit,
    record_update,
    require_scope,
)

Id = uuid.UUID | BindParameter[Any]
Day = date | BindParameter[Any]
"""A policy's inputs: the principal's values, or bind parameters standing for them."""


def today_for(principal: Principal, at: datetime | None = None) -> date:
    return local_date(principal.timezone, at or utcnow())


def current_brand_ids(principal: Principal, today: date) -> Select[Any]:
    """Brands the person holds a current assignment on (access ends after the end date)."""
    return _current_brand_ids(principal.tenant_id, principal.membership_id, today)


def _current_brand_ids(tenant_id: Id, membership_id: Id, today: Day) -> Select[Any]:
    """Values or bind parameters standing for them (see `client_visibility_template`)."""
    return select(Assignment.brand_id).where(
        col(Assignment.tenant_id) == tenant_id,
        col(Assignment.membership_id) == membership_id,
        col(Assignment.start_date) <= today,
        (col(Assignment.end_date).is_(None)) | (col(Assignment.end_date) >= today),
    )


def brand_visibility(principal: Principal, scope: Scope, today: date) -> ColumnElement[bool]:
    if scope is Scope.all:
        return col(Brand.tenant_id) == principal.tenant_id
    if scope is Scope.assigned:
        return col(Brand.id).in_(current_brand_ids(principal, today))
    if scope is Scope.own_client and principal.client_id is not None:
        return col(Brand.client_id) == principal.client_id
    return col(Brand.id).is_(None)  # nothing


def readable_clients(
    principal: Principal, verb: Verb = Verb.read, *, at: datetime | None = None
) -> Select[Any]:
    """The clients this principal may `verb`: the one place that says so (loaders and lists)."""
    scope = require_scope(principal, Resource.client, verb)
    return select(Client).where(
        Client.tenant_id == principal.tenant_id,
        client_visibility(principal, scope, today_for(principal, at)),
    )


def readable_brands(
    principal: Principal, verb: Verb = Verb.read, *, at: datetime | None = None
) -> Select[Any]:
    """The brands this principal may `verb`: the one place that says so (loaders and lists)."""
    scope = require_scope(principal, Resource.brand, verb)
    return select(Brand).where(
        Brand.tenant_id == principal.tenant_id,
        brand_visibility(principal, scope, today_for(principal, at)),
    )


def client_visibility(principal: Principal, scope: Scope, today: date) -> ColumnElement[bool]:
    return _client_visibility(
        scope, principal.tenant_id, principal.membership_id, principal.client_id, today
    )


def _client_visibility(
    scope: Scope, tenant_id: Id, membership_id: Id, client_id: Id | None, today: Day
) -> ColumnElement[bool]:
    """The policy itself, on values or on bind parameters standing for them."""
    if scope is Scope.all:
        return col(Client.tenant_id) == tenant_id
    if scope is Scope.assigned:
        assigned_clients = select(Brand.client_id).where(
            col(Brand.tenant_id) == tenant_id,
            col(Brand.id).in_(_current_brand_ids(tenant_id, membership_id, today)),
        )
        return col(Client.id).in_(assigned_clients)
    if scope is Scope.own_client and client_id is not None:
        return col(Client.id) == client_id  # a NULL parameter (no client) matches nothing
    return col(Client.id).is_(None)


_VIEWER: tuple[BindParameter[Any], ...] = (
    bindparam("viewer_tenant_id"),
    bindparam("viewer_membership_id"),
    bindparam("viewer_client_id"),
    bindparam("viewer_today"),
)


@cache
def client_visibility_template(scope: Scope) -> ColumnElement[bool]:
    """`client_visibility` with the principal's values as bind parameters (`viewer_values`
    fills them): a hot read builds its statement once per scope, so SQLAlchemy computes its
    cache key once instead of on every request."""
    return _client_visibility(scope, *_VIEWER)


def viewer_values(principal: Principal, today: date) -> dict[str, Any]:
    """The parameters of `client_visibility_template` for this principal on this day."""
    return {
        "viewer_tenant_id": principal.tenant_id,
        "viewer_membership_id": principal.membership_id,
        "viewer_client_id": principal.client_id,
        "viewer_today": today,
    }


async def _named_page(
    session: AsyncSession,
    query: Select[Any],
    model: type[Client] | type[Brand],
    *,
    q: str | None,
    sort: SortOrder,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Name search, then a keyset page sorted by name or creation, for clients and brands."""
    if q:
        query = query.where(func.lower(model.name).contains(q.lower(), autoescape=True))
    if sort == "name":
        key = SortKey(func.lower(model.name), lambda r: r.name.lower())
    else:
        key = SortKey(col(model.created_at), lambda r: r.created_at, datetime.fromisoformat)
    order = Keyset(sort, [key, id_key(col(model.id))])
    rows = (await session.scalars(order.apply(query, cursor=cursor, limit=limit))).all()
    return order.page(rows, limit=limit)


# ---------------------------------------------------------------------------------------------
# Clients


def client_read(client: Client, principal: Principal) -> ClientRead:
    internal = sees_internal_client_fields(principal.role)
    return ClientRead(
        id=client.id,
        name=client.name,
        locale=client.locale,
        currency=client.currency,
        status=client.status,
        legal_name=client.legal_name if internal else None,
        billing_email=client.billing_email if internal else None,
        notes=client.notes if internal else None,
        version=client.version,
        created_at=client.created_at,
        updated_at=client.updated_at,
    )


def _status_filter(column: Any, status: ListStatus) -> ColumnElement[bool]:
    return column.is_not(None) if status == "all" else column == status  # type: ignore[no-any-return]


async def list_clients(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None = None,
    status: ListStatus = "active",
    q: str | None = None,
    sort: SortOrder = "name",
    at: datetime | None = None,
) -> Page[ClientRead]:
    query = readable_clients(principal, at=at).where(_status_filter(col(Client.status), status))
    rows, cursor_out = await _named_page(
        session, query, Client, q=q, sort=sort, cursor=cursor, limit=limit
    )
    return Page(items=[client_read(c, principal) for c in rows], next_cursor=cursor_out)


async def _load_client(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    verb: Verb,
    *,
    lock: bool = False,
    at: datetime | None = None,
) -> Client:
    client: Client = await load_readable(
        session,
        readable_clients(principal, verb, at=at).where(col(Client.id) == client_id),
        lock=lock,
        missing=errors.ClientNotFound(),
    )
    return client


async def get_client(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, *, at: datetime | None = None
) -> ClientRead:
    return client_read(
        await _load_client(session, principal, client_id, Verb.read, at=at), principal
    )


async def create_client(
    session: AsyncSession, principal: Principal, data: ClientCreate
) -> ClientRead:
    require_scope(principal, Resource.client, Verb.create)
    client = Client(tenant_id=principal.tenant_id, **data.model_dump())
    session.add(client)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="client.created",
        subject_type="client",
        subject_id=client.id,
        changes={"name": data.name},
    )
    await session.flush()
    return client_read(client, principal)


def _apply(obj: Any, patch: dict[str, Any]) -> dict[str, list[Any]]:
    diff: dict[str, list[Any]] = {}
    for field, new in patch.items():
        old = getattr(obj, field)
        if old != new:
            diff[field] = [_plain(old), _plain(new)]
            setattr(obj, field, new)
    return diff


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, (uuid.UUID, date, datetime)) else value


async def update_client(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    data: ClientUpdate,
    *,
    if_match: int | None,
) -> ClientRead:
    client = await _load_client(session, principal, client_id, Verb.update, lock=True)
    check_version(client.version, if_match)
    patch = data.model_dump(exclude_unset=True)
    if "billing_email" in patch and patch["billing_email"] is not None:
        patch["billing_email"] = str(patch["billing_email"])
    diff = _apply(client, patch)
    if diff:
        if "status" in diff:
            client.archived_at = utcnow() if client.status == ClientStatus.archived else None
        action = "client.updated"
        if diff.get("status") == ["active", "archived"]:
            action = "client.archived"
        record_update(
            session,
            principal,
            client,
            action=action,
            subject_type="client",
            changes={k: v for k, v in diff.items() if k != "notes"}
            | ({"notes": ["…", "…"]} if "notes" in diff else {}),
        )
        await session.flush()
    return client_read(client, principal)


# ---------------------------------------------------------------------------------------------
# Brands


def brand_read(brand: Brand) -> BrandRead:
    return BrandRead(
        id=brand.id,
        client_id=brand.client_id,
        name=brand.name,
        slug=brand.slug,
        timezone=brand.timezone,
        default_language=brand.default_language,
        guidelines=Guidelines.model_validate(brand.guidelines),
        status=brand.status,
        version=brand.version,
        created_at=brand.created_at,
        updated_at=brand.updated_at,
    )


async def list_brands(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None = None,
    client_id: uuid.UUID | None = None,
    status: ListStatus = "active",
    q: str | None = None,
    sort: SortOrder = "name",
    at: datetime | None = None,
) -> Page[BrandRead]:
    query = readable_brands(principal, at=at).where(_status_filter(col(Brand.status), status))
    if client_id is not None:
        query = query.where(col(Brand.client_id) == client_id)
    rows, cursor_out = await _named_page(
        session, query, Brand, q=q, sort=sort, cursor=cursor, limit=limit
    )
    return Page(items=[brand_read(b) for b in rows], next_cursor=cursor_out)


async def load_brand(
    session: AsyncSession,
    principal: Principal,
    brand_id: uuid.UUID,
    verb: Verb,
    *,
    lock: bool = False,
    at: datetime | None = None,
) -> Brand:
    brand: Brand = await load_readable(
        session,
        readable_brands(principal, verb, at=at).where(col(Brand.id) == brand_id),
        lock=lock,
        missing=errors.BrandNotFound(),
    )
    return brand


async def get_brand(
    session: AsyncSession, principal: Principal, brand_id: uuid.UUID, *, at: datetime | None = None
) -> BrandRead:
    return brand_read(await load_brand(session, principal, brand_id, Verb.read, at=at))


async def _ensure_brand_slot(
    session: AsyncSession, tenant_id: uuid.UUID, settings: Settings
) -> None:
    """Refuse a new active brand past the plan's limit. Locking the tenant row serializes
    concurrent creations, so two racing requests cannot both take the last slot."""
    plan_id = await session.scalar(
        select(Tenant.plan_id).where(Tenant.id == tenant_id).with_for_update()
    )
    limit = settings.plan(plan_id or "").max_active_brands
    if limit is None:
        return
    active = await session.scalar(
        select(func.count())
        .select_from(Brand)
        .where(Brand.tenant_id == tenant_id, Brand.status == ClientStatus.active)
    )
    if (active or 0) >= limit:
        raise errors.PlanLimit(
            f"Your plan allows {limit} active brands and you have {active}. Archive a brand "
            "or change plan.",
            limit={"name": "max_active_brands", "value": limit, "in_use": active},
        )


async def create_brand(
    session: AsyncSession, principal: Principal, data: BrandCreate, settings: Settings
) -> BrandRead:
    require_scope(principal, Resource.brand, Verb.create)
    with body_reference("/client_id"):
        client = await _load_client(session, principal, data.client_id, Verb.read)
    if client.status != ClientStatus.active:
        raise errors.ClientArchived()
    await _ensure_brand_slot(session, principal.tenant_id, settings)
    brand = Brand(
        tenant_id=principal.tenant_id,
        client_id=data.client_id,
        name=data.name,
        slug=data.slug,
        timezone=data.timezone,
        default_language=data.default_language,
        guidelines=data.guidelines.model_dump(),
    )
    session.add(brand)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="brand.created",
        subject_type="brand",
        subject_id=brand.id,
        changes={"name": data.name, "client_id": str(data.client_id)},
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise errors.BrandSlugTaken() from exc
    return brand_read(brand)


async def update_brand(
    session: AsyncSession,
    principal: Principal,
    brand_id: uuid.UUID,
    data: BrandUpdate,
    settings: Settings,
    *,
    if_match: int | None,
) -> BrandRead:
    brand = await load_brand(session, principal, brand_id, Verb.update, lock=True)
    check_version(brand.version, if_match)
    patch = data.model_dump(exclude_unset=True)
    if patch.get("status") == ClientStatus.active and brand.status != ClientStatus.active:
        client = await _load_client(session, principal, brand.client_id, Verb.read)
        if client.status != ClientStatus.active:
            raise errors.ClientArchived()
        await _ensure_brand_slot(session, principal.tenant_id, settings)
    diff = _apply(brand, patch)
    if diff:
        if "status" in diff:
            brand.archived_at = utcnow() if brand.status == ClientStatus.archived else None
        record_update(
            session,
            principal,
            brand,
            action="brand.archived"
            if diff.get("status") == ["active", "archived"]
            else "brand.updated",
            subject_type="brand",
            changes=diff,
        )
        try:
            await session.flush()
        except IntegrityError as exc:
            raise errors.BrandSlugTaken() from exc
    return brand_read(brand)
