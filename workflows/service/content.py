"""Content items and their revisions: create, edit, read, compare, check, submit, schedule."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import CompoundSelect, Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.errors import ProblemError, body_reference, refuse_unknown_references
from infra.pagination import Keyset, Page, SortKey, id_key, parse_int
from tenants.errors import BrandNotFound
from tenants.models import AuditEvent, Brand, Tenant
from tenants.policy import Resource, Verb
from tenants.principal import Principal
from tenants.service.common import check_version, load_readable, require_scope
from tenants.service.directory import brand_visibility, today_for
from workflows import errors
from workflows.checks import Speller, run_checks
from workflows.diff import revision_diff
from workflows.engine import Action, Status
from workflows.models import ApprovalDecision, ApprovalLink, ContentItem, ContentRevision
from workflows.schemas import (
    CalendarItem,
    CheckRead,
    ChecksResponse,
    ContentCreate,
    ContentRead,
    ContentSummary,
    ContentUpdate,
    DiffRead,
    HistoryEntry,
    RevisionRead,
    ScheduleRequest,
    SubmitRequest,
)
from workflows.service.access import (
    audit,
    content_read,
    is_client,
    load_item,
    load_revision,
    readable_items,
    revision_read,
    shown_revision_id,
    touch,
)
from workflows.service.flow import begin_round, emit, move, void_review
from workflows.service.templates import usable_template, workflow_for

MAX_CALENDAR_DAYS = 92


def summary(item: ContentItem) -> ContentSummary:
    return ContentSummary(
        id=item.id,
        brand_id=item.brand_id,
        title=item.title,
        status=item.status,
        planned_at=item.planned_at,
        campaign=item.campaign,
        labels=list(item.labels),
        revision_number=item.revision_number,
        version=item.version,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _revision(item: ContentItem, author: uuid.UUID, fields: dict[str, Any]) -> ContentRevision:
    item.revision_number += 1
    revision = ContentRevision(
        tenant_id=item.tenant_id,
        content_item_id=item.id,
        number=item.revision_number,
        author_id=author,
        **fields,
    )
    item.current_revision_id = revision.id
    item.title = revision.title
    item.planned_at = revision.planned_at
    item.campaign = revision.campaign
    item.labels = list(revision.labels)
    return revision


def _fields(data: ContentCreate | ContentUpdate, base: ContentRevision | None) -> dict[str, Any]:
    given = data.model_dump(exclude_unset=True, mode="json")

    def pick(name: str, default: Any) -> Any:
        if name in given:
            return getattr(data, name)
        return getattr(base, name) if base is not None else default

    media = pick("media", [])
    return {
        "title": pick("title", ""),
        "variants": dict(pick("variants", {})),
        "media": [m.model_dump(mode="json") if hasattr(m, "model_dump") else m for m in media],
        "social_account_ids": list(pick("social_account_ids", [])),
        "planned_at": pick("planned_at", None),
        "campaign": pick("campaign", None),
        "labels": list(dict.fromkeys(pick("labels", []))),
    }


AccountsOfBrand = Callable[
    [AsyncSession, uuid.UUID, uuid.UUID, Collection[uuid.UUID]], Awaitable[set[uuid.UUID]]
]
"""Which of these ids are social accounts of this brand (session, tenant, brand, ids). Social
accounts belong to the social package, which workflows does not import: the caller (the edge)
passes social's answer."""


async def _check_social_accounts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    brand_id: uuid.UUID,
    ids: list[uuid.UUID],
    accounts_of_brand: AccountsOfBrand,
) -> None:
    """A post goes out only on its own brand's accounts."""
    if not ids:
        return
    known = await accounts_of_brand(session, tenant_id, brand_id, ids)
    refuse_unknown_references("/social_account_ids", ids, known, "social account of this brand")


async def create_content(
    session: AsyncSession,
    principal: Principal,
    brand_id: uuid.UUID,
    data: ContentCreate,
    *,
    accounts_of_brand: AccountsOfBrand,
) -> ContentRead:
    brand = await _content_brand(session, principal, brand_id, Verb.create)
    if data.template_id is not None:
        with body_reference("/template_id"):
            await usable_template(session, principal.tenant_id, data.template_id)
    await _check_social_accounts(
        session, brand.tenant_id, brand.id, data.social_account_ids, accounts_of_brand
    )
    item = ContentItem(
        tenant_id=principal.tenant_id,
        brand_id=brand.id,
        title=data.title,
        template_id=data.template_id,
        created_by=principal.user_id,
    )
    revision = _revision(item, principal.user_id, _fields(data, None))
    session.add(item)
    session.add(revision)
    audit(session, principal, item, "content.created", {"revision": 1})
    await session.flush()
    return await content_read(session, principal, item)


async def _content_brand(
    session: AsyncSession, principal: Principal, brand_id: uuid.UUID, verb: Verb
) -> Brand:
    """The brand, if the principal may act on its content (404 when they cannot see it)."""
    found = (
        await session.scalars(
            select(Brand).where(
                Brand.tenant_id == principal.tenant_id,
                Brand.id == brand_id,
                col(Brand.id).in_(_brand_ids_for(principal, verb)),
            )
        )
    ).first()
    if found is None:
        raise BrandNotFound()
    return found


def _brand_ids_for(principal: Principal, verb: Verb) -> Select[Any]:
    scope = require_scope(principal, Resource.content, verb)
    return select(Brand.id).where(
        Brand.tenant_id == principal.tenant_id,
        brand_visibility(principal, scope, today_for(principal)),
    )


async def get_content(
    session: AsyncSession, principal: Principal, content_id: uuid.UUID
) -> ContentRead:
    return await content_read(session, principal, await load_item(session, principal, content_id))


async def list_brand_content(
    session: AsyncSession,
    principal: Principal,
    brand_id: uuid.UUID,
    *,
    status: list[str],
    limit: int,
    cursor: str | None,
) -> Page[ContentSummary]:
    await _content_brand(session, principal, brand_id, Verb.read)
    query = readable_items(principal).where(col(ContentItem.brand_id) == brand_id)
    if status:
        query = query.where(col(ContentItem.status).in_(status))
    rows = (await session.scalars(CONTENT_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, after = CONTENT_ORDER.page(rows, limit=limit)
    return Page(items=[summary(r) for r in page], next_cursor=after)


CONTENT_ORDER = Keyset(
    "created",
    [
        SortKey(col(ContentItem.created_at), lambda r: r.created_at, datetime.fromisoformat),
        id_key(col(ContentItem.id)),
    ],
)


async def update_content(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    data: ContentUpdate,
    *,
    if_match: int | None,
    accounts_of_brand: AccountsOfBrand,
) -> ContentRead:
    """An edit makes a new revision; whatever was under review or approved starts over."""
    item = await load_item(session, principal, content_id, Verb.update, lock=True)
    check_version(item.version, if_match)
    given = data.model_fields_set
    if "template_id" in given:
        if engine_reviewing(item):
            raise errors.InvalidTransition(
                "The workflow of an item under review cannot change; edit it first.",
                item_status=item.status,
            )
        if data.template_id is not None:
            with body_reference("/template_id"):
                await usable_template(session, principal.tenant_id, data.template_id)
        item.template_id = data.template_id
    if data.social_account_ids:
        accounts = data.social_account_ids
        await _check_social_accounts(
            session, item.tenant_id, item.brand_id, accounts, accounts_of_brand
        )
    content_fields = given - {"template_id"}
    if content_fields:
        previous = Status(item.status)
        move(item, Action.edit)
        if previous in (Status.in_review, Status.awaiting_client):
            void_review(session, principal, item)
        assert item.current_revision_id is not None  # every item has its first revision
        base = await load_revision(session, item.tenant_id, item.id, item.current_revision_id)
        revision = _revision(item, principal.user_id, _fields(data, base))
        session.add(revision)
        item.status_reason, item.reason_for_client = None, False
        audit(
            session,
            principal,
            item,
            "content.edited",
            {"revision": item.revision_number, "fields": sorted(content_fields), "was": previous},
        )
    touch(item)
    await session.flush()
    return await content_read(session, principal, item)


def engine_reviewing(item: ContentItem) -> bool:
    return item.status in (Status.in_review, Status.awaiting_client)


REVISION_ORDER = Keyset(
    "revisions",
    (
        SortKey(col(ContentRevision.number), lambda r: r.number, parse_int),
        SortKey(col(ContentRevision.id), lambda r: r.id, uuid.UUID),
    ),
)


async def list_revisions(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[RevisionRead]:
    """Oldest first. Staff see every revision; a client contact only those sent to them."""
    item = await load_item(session, principal, content_id)
    query = REVISION_ORDER.apply(readable_revisions(principal, item), cursor=cursor, limit=limit)
    rows, next_page = REVISION_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[revision_read(r) for r in rows], next_cursor=next_page)


def readable_revisions(principal: Principal, item: ContentItem) -> Select[Any]:
    """The revisions of an item the principal reads (load_item answered for the item) that
    they may see: staff every one, a client contact only those sent to them."""
    query = select(ContentRevision).where(
        ContentRevision.tenant_id == principal.tenant_id,
        ContentRevision.content_item_id == item.id,
    )
    if is_client(principal):
        query = query.where(col(ContentRevision.id).in_(_sent_revisions(principal, item.id)))
    return query


def _sent_revisions(principal: Principal, item_id: uuid.UUID) -> CompoundSelect[Any]:
    # A revision reached the client when a client step started on it: links or decisions
    # name it, or it is the one currently shown.
    return (
        select(ApprovalDecision.revision_id)
        .where(
            ApprovalDecision.tenant_id == principal.tenant_id,
            ApprovalDecision.content_item_id == item_id,
            ApprovalDecision.step_kind == "client",
        )
        .union(
            select(ApprovalLink.revision_id).where(
                ApprovalLink.tenant_id == principal.tenant_id,
                ApprovalLink.content_item_id == item_id,
            ),
            select(ContentItem.client_revision_id).where(
                ContentItem.tenant_id == principal.tenant_id, ContentItem.id == item_id
            ),
        )
    )


async def _revision_by_number(
    session: AsyncSession, principal: Principal, item: ContentItem, number: int
) -> ContentRevision:
    revision: ContentRevision = await load_readable(
        session,
        readable_revisions(principal, item).where(col(ContentRevision.number) == number),
        missing=errors.RevisionNotFound(f"This item has no revision number {number} you can see."),
    )
    return revision


def _snapshot(revision: ContentRevision) -> dict[str, Any]:
    return {
        "title": revision.title,
        "variants": dict(revision.variants),
        "media": list(revision.media),
        "planned_at": revision.planned_at.isoformat() if revision.planned_at else None,
        "labels": list(revision.labels),
        "campaign": revision.campaign,
    }


async def diff_revisions(
    session: AsyncSession, principal: Principal, content_id: uuid.UUID, base: int, head: int
) -> DiffRead:
    item = await load_item(session, principal, content_id)
    old = await _revision_by_number(session, principal, item, base)
    new = await _revision_by_number(session, principal, item, head)
    diff = revision_diff(_snapshot(old), _snapshot(new))
    return DiffRead(base=base, head=head, **diff)


async def check_content(
    session: AsyncSession, principal: Principal, content_id: uuid.UUID
) -> ChecksResponse:
    item = await load_item(session, principal, content_id)
    return await checks_of(session, principal, item)


async def checks_of(
    session: AsyncSession, principal: Principal, item: ContentItem
) -> ChecksResponse:
    revision_id = shown_revision_id(principal, item)
    brand = await session.get(Brand, (item.tenant_id, item.brand_id))
    assert brand is not None and revision_id is not None
    revision = await load_revision(session, item.tenant_id, item.id, revision_id)
    language = (brand.default_language or "en").split("-")[0].lower()
    guidelines = brand.guidelines or {}
    blocking_kinds = set(item.workflow.get("blocking_checks") or [])
    if not item.workflow:
        blocking_kinds = set(
            (await workflow_for(session, item.tenant_id, item.brand_id, item.template_id)).get(
                "blocking_checks", []
            )
        )

    def work() -> list[Any]:
        return run_checks(
            dict(revision.variants),
            list(revision.media),
            banned_words=list(guidelines.get("banned_words") or []),
            language=language,
            speller=Speller.for_language(language),
            allowed_words=list(guidelines.get("hashtags") or []),
        )

    # Spelling suggestions cost milliseconds each: off the event loop.
    warnings = await anyio.to_thread.run_sync(work)
    reads = [CheckRead(**w.as_dict(), blocking=w.kind in blocking_kinds) for w in warnings]
    return ChecksResponse(
        revision_id=revision.id,
        language=language,
        warnings=reads,
        blocking=any(r.blocking for r in reads),
    )


async def submit_content(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    data: SubmitRequest,
    *,
    link_ttl: timedelta,
) -> ContentRead:
    item = await load_item(session, principal, content_id, Verb.update, lock=True)
    if data.revision_id is not None and data.revision_id != item.current_revision_id:
        with body_reference("/revision_id"):
            await load_revision(session, item.tenant_id, item.id, data.revision_id)
        raise errors.RevisionSuperseded(
            "The item was edited since you read it: review the current revision.",
            current_revision_id=str(item.current_revision_id),
        )
    if item.status not in (Status.draft, Status.changes_requested, Status.expired):
        raise errors.InvalidTransition(
            f"A {item.status} item cannot be submitted.", item_status=item.status
        )
    brand = await session.get(Brand, (item.tenant_id, item.brand_id))
    assert brand is not None
    item.workflow = await workflow_for(session, item.tenant_id, item.brand_id, item.template_id)
    checks = await checks_of(session, principal, item)
    if checks.blocking:
        raise errors.ChecksFailed(
            "Fix these before submitting: "
            + "; ".join(w.message for w in checks.warnings if w.blocking),
            warnings=[w.model_dump(mode="json") for w in checks.warnings if w.blocking],
        )
    now = utcnow()
    await begin_round(
        session,
        item,
        brand,
        submitter=principal.user_id,
        timezone=principal.timezone,
        now=now,
        link_ttl=link_ttl,
        request_id=principal.request_id,
    )
    audit(
        session,
        principal,
        item,
        "content.submitted",
        {
            "round": item.round,
            "revision_id": str(item.current_revision_id),
            "workflow": item.workflow.get("name"),
            "warnings": len(checks.warnings),
        },
    )
    touch(item)
    await session.flush()
    return await content_read(session, principal, item)


async def schedule_content(
    session: AsyncSession, principal: Principal, content_id: uuid.UUID, data: ScheduleRequest
) -> ContentRead:
    item = await load_item(session, principal, content_id, Verb.update, lock=True)
    planned = data.planned_at or item.planned_at
    if planned is None or planned <= utcnow() + timedelta(minutes=1):
        raise errors.PlannedInPast("Give a planned_at in the future to schedule this post.")
    move(item, Action.schedule)
    item.planned_at = planned
    audit(
        session,
        principal,
        item,
        "content.scheduled",
        {"planned_at": planned.isoformat()},
        client_visible=True,
    )
    emit(session, item, "content.scheduled", principal.request_id, planned_at=planned.isoformat())
    touch(item)
    await session.flush()
    return await content_read(session, principal, item)


async def schedule_now(
    session: AsyncSession, principal: Principal, content_id: uuid.UUID
) -> ContentRead:
    """Publish-now: an approved item is scheduled at this moment; a scheduled one is moved to
    it."""
    item = await load_item(session, principal, content_id, Verb.update, lock=True)
    now = utcnow()
    if item.status != Status.scheduled:
        move(item, Action.schedule)
    item.planned_at = now
    audit(
        session,
        principal,
        item,
        "content.scheduled",
        {"planned_at": now.isoformat(), "now": True},
        client_visible=True,
    )
    emit(session, item, "content.scheduled", principal.request_id, planned_at=now.isoformat())
    touch(item)
    await session.flush()
    return await content_read(session, principal, item)


async def unschedule_content(
    session: AsyncSession, principal: Principal, content_id: uuid.UUID
) -> ContentRead:
    item = await load_item(session, principal, content_id, Verb.update, lock=True)
    move(item, Action.unschedule)
    audit(session, principal, item, "content.unscheduled", {}, client_visible=True)
    touch(item)
    await session.flush()
    return await content_read(session, principal, item)


async def calendar(
    session: AsyncSession,
    principal: Principal,
    *,
    brand_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
    limit: int,
    cursor: str | None,
) -> Page[CalendarItem]:
    if end <= start:
        raise ProblemError("`to` must be after `from`.", field="to")
    if end - start > timedelta(days=MAX_CALENDAR_DAYS):
        raise ProblemError(f"Ask for at most {MAX_CALENDAR_DAYS} days at a time.", field="to")
    if brand_id is not None:
        await _content_brand(session, principal, brand_id, Verb.read)
    query = readable_items(principal).where(
        col(ContentItem.planned_at) >= start, col(ContentItem.planned_at) < end
    )
    if brand_id is not None:
        query = query.where(col(ContentItem.brand_id) == brand_id)
    rows = (await session.scalars(CALENDAR_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, after = CALENDAR_ORDER.page(rows, limit=limit)
    client_view = is_client(principal)
    items = []
    for row in page:
        assert row.planned_at is not None
        items.append(
            CalendarItem(
                id=row.id,
                brand_id=row.brand_id,
                title=row.title,
                status=row.status,
                planned_at=row.planned_at,
                campaign=row.campaign,
                labels=[] if client_view else list(row.labels),
            )
        )
    return Page(items=items, next_cursor=after)


CALENDAR_ORDER = Keyset(
    "planned",
    [
        SortKey(col(ContentItem.planned_at), lambda r: r.planned_at, datetime.fromisoformat),
        id_key(col(ContentItem.id)),
    ],
)


HISTORY_ORDER = Keyset(
    "history",
    (
        SortKey(col(AuditEvent.created_at), lambda r: r.created_at, datetime.fromisoformat),
        SortKey(col(AuditEvent.id), lambda r: r.id, uuid.UUID),
    ),
)


async def history(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[HistoryEntry]:
    """The item's audit trail, oldest first; client contacts see only what concerned them."""
    item = await load_item(session, principal, content_id)
    query = select(AuditEvent).where(
        AuditEvent.tenant_id == principal.tenant_id,
        AuditEvent.subject_type == "content_item",
        AuditEvent.subject_id == item.id,
    )
    if is_client(principal):
        query = query.where(col(AuditEvent.changes)["audience"].astext == "client")
    query = HISTORY_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = HISTORY_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(
        items=[
            HistoryEntry(
                action=r.action,
                actor_type=r.actor_type,
                actor_id=r.actor_id,
                details={k: v for k, v in r.changes.items() if k != "audience"},
                created_at=r.created_at,
            )
            for r in rows
        ],
        next_cursor=next_page,
    )


async def tenant_timezone(session: AsyncSession, tenant_id: uuid.UUID) -> str:
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return tenant.timezone


async def brand_of_content(
    session: AsyncSession, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> uuid.UUID | None:
    """The brand a content item belongs to (None when the agency has no such item): what
    billing checks time spent on a post against, without reading this package's tables."""
    return await session.scalar(
        select(ContentItem.brand_id).where(
            ContentItem.tenant_id == tenant_id, ContentItem.id == item_id
        )
    )
