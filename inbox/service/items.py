"""What agents do with items: the list, one item with its thread, assignment, status, labels,
and the replies and moderation they send (queued here, sent exactly once by `inbox.sender`).

Every change carries the version the agent saw (`If-Match`); a stale one answers 412 with
what changed meanwhile, so two colleagues never answer the same person twice without knowing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Select, and_, case, false, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox import capabilities, errors, sla, templates
from inbox.models import (
    ActionKind,
    ActionStatus,
    InboxAction,
    InboxItem,
    ItemStatus,
    ModerationState,
)
from inbox.schemas import (
    ActionRead,
    AuthorRead,
    ItemDetail,
    ItemRead,
    LabelsRequest,
    ReplyCreate,
    ViewerRead,
)
from inbox.service.ingest import response_policy
from infra.clock import utcnow
from infra.errors import InvalidFields, ProblemError
from infra.pagination import Keyset, Page, SortKey, id_key
from social.connectors.types import Moderation
from tenants.models import Brand, Membership, MembershipStatus
from tenants.policy import Resource, Scope, Verb, scope_of
from tenants.principal import Principal
from tenants.service.common import load_readable, require_scope
from tenants.service.directory import brand_visibility, today_for

THREAD_LIMIT = 200


def readable_items(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """The items this principal may `verb`: those of the brands they reach."""
    scope = require_scope(principal, Resource.inbox, verb)
    return (
        select(InboxItem)
        .join(
            Brand,
            (col(Brand.tenant_id) == col(InboxItem.tenant_id))
            & (col(Brand.id) == col(InboxItem.brand_id)),
        )
        .where(
            InboxItem.tenant_id == principal.tenant_id,
            brand_visibility(principal, scope, today_for(principal)),
        )
    )


async def load_item(
    session: AsyncSession,
    principal: Principal,
    item_id: uuid.UUID,
    verb: Verb = Verb.read,
    *,
    lock: bool = False,
) -> InboxItem:
    item: InboxItem = await load_readable(
        session,
        readable_items(principal, verb).where(col(InboxItem.id) == item_id),
        lock=lock,
        lock_of=InboxItem,
        missing=errors.ItemNotFound(),
    )
    return item


def sla_of(item: InboxItem, now: datetime) -> str:
    """The item's response clock, as the list shows it. The at-risk point (80 % of the
    target) is kept on the item as the due time minus a fifth of the target's span."""
    if item.response_due_at is None:
        return "none"
    if item.first_response_at is not None:
        return "met" if item.first_response_at <= item.response_due_at else "missed"
    if item.sla_breached_at is not None or now >= item.response_due_at:
        return "breached"
    span = item.response_due_at - item.received_at
    if now >= item.received_at + span * 0.8:
        return "at_risk"
    return "within"


def item_read(item: InboxItem, now: datetime) -> ItemRead:
    return ItemRead(
        id=item.id,
        brand_id=item.brand_id,
        client_id=item.client_id,
        social_account_id=item.social_account_id,
        platform=item.platform,
        kind=item.kind,
        external_id=item.external_id,
        thread_id=item.thread_id,
        parent_id=item.parent_id,
        parent_external_id=item.parent_external_id,
        author=AuthorRead(id=item.author_id, handle=item.author_handle, name=item.author_name),
        text=item.text,
        media=list(item.media),
        platform_created_at=item.platform_created_at,
        received_at=item.received_at,
        language=item.language,
        sentiment=item.sentiment,
        sentiment_score=item.sentiment_score,
        from_account=item.from_account,
        needs_reply=item.needs_reply,
        status=item.status,
        assignee_id=item.assignee_id,
        labels=list(item.labels),
        priority=item.priority,
        moderation=item.moderation,
        pinned=item.pinned_until is not None and item.pinned_until > now,
        crisis_id=item.crisis_id,
        response_due_at=item.response_due_at,
        first_response_at=item.first_response_at,
        sla=sla_of(item, now),
        version=item.version,
    )


def action_read(action: InboxAction) -> ActionRead:
    return ActionRead(
        id=action.id,
        kind=action.kind,
        status=action.status,
        text=action.text,
        requested_by=action.requested_by,
        approved_by=action.approved_by,
        created_at=action.created_at,
        sent_at=action.sent_at,
        external_id=action.external_id,
        permalink=action.permalink,
        error_code=action.error_code,
        error=action.error,
    )


# --- the list ---------------------------------------------------------------------------------


def _order(now: datetime) -> Keyset:
    pinned = case((col(InboxItem.pinned_until) > now, 1), else_=0)
    return Keyset(
        "inbox",
        [
            SortKey(
                pinned,
                lambda r: 1 if r.pinned_until is not None and r.pinned_until > now else 0,
                int,
                descending=True,
            ),
            SortKey(
                col(InboxItem.received_at), lambda r: r.received_at, datetime.fromisoformat, True
            ),
            id_key(col(InboxItem.id), descending=True),
        ],
    )


def _sla_filter(state: str, now: datetime) -> Any:
    due = col(InboxItem.response_due_at)
    answered = col(InboxItem.first_response_at)
    open_ = and_(due.is_not(None), answered.is_(None))
    if state == "none":
        return due.is_(None)
    if state == "met":
        return and_(answered.is_not(None), answered <= due)
    if state == "missed":
        return and_(answered.is_not(None), answered > due)
    if state == "breached":
        return and_(open_, or_(col(InboxItem.sla_breached_at).is_not(None), due <= now))
    # 80 % of the span, in epoch seconds: SQLAlchemy deprecates multiplying an interval.
    at_risk_from = 0.2 * func.extract("epoch", col(InboxItem.received_at)) + 0.8 * func.extract(
        "epoch", due
    )
    stamp = now.timestamp()
    if state == "at_risk":
        return and_(
            open_, due > now, at_risk_from <= stamp, col(InboxItem.sla_breached_at).is_(None)
        )
    if state == "within":
        return and_(open_, at_risk_from > stamp, col(InboxItem.sla_breached_at).is_(None))
    return false()


async def list_items(
    session: AsyncSession,
    principal: Principal,
    *,
    brand_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    status: str | None = None,
    assignee_id: uuid.UUID | None = None,
    unassigned: bool = False,
    kind: str | None = None,
    sentiment: str | None = None,
    label: str | None = None,
    sla_state: str | None = None,
    q: str | None = None,
    limit: int,
    cursor: str | None,
) -> Page[ItemRead]:
    now = utcnow()
    query = readable_items(principal)
    for column, value in (
        (InboxItem.brand_id, brand_id),
        (InboxItem.client_id, client_id),
        (InboxItem.social_account_id, account_id),
        (InboxItem.status, status),
        (InboxItem.assignee_id, assignee_id),
        (InboxItem.kind, kind),
        (InboxItem.sentiment, sentiment),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    if unassigned:
        query = query.where(col(InboxItem.assignee_id).is_(None))
    if label is not None:
        query = query.where(col(InboxItem.labels).contains([label]))
    if sla_state is not None:
        query = query.where(_sla_filter(sla_state, now))
    if q:
        pattern = func.lower(col(InboxItem.text)).contains(q.lower(), autoescape=True)
        author = func.lower(func.coalesce(col(InboxItem.author_handle), "")).contains(
            q.lower(), autoescape=True
        )
        query = query.where(or_(pattern, author))
    order = _order(now)
    rows, after = order.page(
        (await session.scalars(order.apply(query, cursor=cursor, limit=limit))).all(), limit=limit
    )
    return Page(items=[item_read(r, now) for r in rows], next_cursor=after)


# --- one item ---------------------------------------------------------------------------------


def _viewers_key(item: InboxItem) -> str:
    return f"inbox:viewers:{item.tenant_id}:{item.id}"


async def _viewers(
    redis: Redis, item: InboxItem, principal: Principal, now: datetime, ttl: int
) -> list[ViewerRead]:
    """Who has the item open: each opening is remembered for `ttl` seconds."""
    key = _viewers_key(item)
    stamp = now.timestamp()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", stamp - ttl)
        pipe.zadd(key, {str(principal.user_id): stamp})
        pipe.expire(key, ttl)
        pipe.zrange(key, 0, -1, withscores=True)
        *_, seen = await pipe.execute()
    return [
        ViewerRead(
            user_id=uuid.UUID(member.decode() if isinstance(member, bytes) else member),
            since=datetime.fromtimestamp(score, tz=now.tzinfo),
        )
        for member, score in seen
        if (member.decode() if isinstance(member, bytes) else member) != str(principal.user_id)
    ]


async def _actions(session: AsyncSession, item: InboxItem) -> list[InboxAction]:
    return list(
        (
            await session.scalars(
                select(InboxAction)
                .where(InboxAction.tenant_id == item.tenant_id, InboxAction.item_id == item.id)
                .order_by(col(InboxAction.created_at), col(InboxAction.id))
            )
        ).all()
    )


async def get_item(
    session: AsyncSession,
    principal: Principal,
    item_id: uuid.UUID,
    *,
    redis: Redis | None = None,
    viewer_seconds: int = 60,
) -> ItemDetail:
    now = utcnow()
    item = await load_item(session, principal, item_id)
    thread: Sequence[InboxItem] = []
    if item.thread_id is not None:
        thread = (
            await session.scalars(
                select(InboxItem)
                .where(
                    InboxItem.tenant_id == item.tenant_id,
                    InboxItem.thread_id == item.thread_id,
                )
                .order_by(col(InboxItem.platform_created_at), col(InboxItem.id))
                .limit(THREAD_LIMIT)
            )
        ).all()
    viewers = (
        await _viewers(redis, item, principal, now, viewer_seconds) if redis is not None else []
    )
    return ItemDetail(
        **item_read(item, now).model_dump(),
        thread=[item_read(t, now) for t in thread],
        actions=[action_read(a) for a in await _actions(session, item)],
        viewers=viewers,
    )


# --- changes ----------------------------------------------------------------------------------


async def _for_change(
    session: AsyncSession, principal: Principal, item_id: uuid.UUID, if_match: int | None
) -> InboxItem:
    item = await load_item(session, principal, item_id, Verb.update, lock=True)
    if if_match is not None and if_match != item.version:
        await _refuse_stale(session, item, if_match)
    return item


async def _refuse_stale(session: AsyncSession, item: InboxItem, seen: int) -> None:
    """412 with what the agent did not see: the item as it is now and the latest replies."""
    if seen < 0:
        raise ProblemError('If-Match must be an ETag this API gave you, such as "3".')
    recent = (await _actions(session, item))[-5:]
    raise errors.ItemChanged(
        f"You saw version {seen}; the item is at version {item.version}. Read what changed "
        "before you answer.",
        current_version=item.version,
        current={
            "status": item.status,
            "assignee_id": str(item.assignee_id) if item.assignee_id else None,
            "labels": list(item.labels),
            "priority": item.priority,
            "moderation": item.moderation,
            "first_response_at": item.first_response_at.isoformat()
            if item.first_response_at
            else None,
        },
        recent_actions=[
            {
                "kind": a.kind,
                "status": a.status,
                "text": a.text,
                "requested_by": str(a.requested_by) if a.requested_by else None,
                "created_at": a.created_at.isoformat(),
            }
            for a in recent
        ],
    )


def _bump(item: InboxItem, now: datetime) -> None:
    item.version += 1
    item.updated_at = now


async def _active_member(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    found = (
        await session.scalars(
            select(Membership.id).where(
                Membership.tenant_id == tenant_id,
                Membership.user_id == user_id,
                Membership.status == MembershipStatus.active,
            )
        )
    ).first()
    if found is None:
        raise InvalidFields.one(
            "/assignee_id", "No active member of this agency has this user id.", "unknown-reference"
        )


async def assign(
    session: AsyncSession,
    principal: Principal,
    item_id: uuid.UUID,
    assignee_id: uuid.UUID | None,
    *,
    if_match: int | None,
) -> InboxItem:
    item = await _for_change(session, principal, item_id, if_match)
    if assignee_id is not None:
        await _active_member(session, principal.tenant_id, assignee_id)
    if item.assignee_id != assignee_id:
        item.assignee_id = assignee_id
        if item.status in (ItemStatus.new, ItemStatus.assigned):
            item.status = ItemStatus.assigned if assignee_id else ItemStatus.new
        _bump(item, utcnow())
    return item


async def set_status(
    session: AsyncSession,
    principal: Principal,
    item_id: uuid.UUID,
    status: str,
    *,
    if_match: int | None,
) -> InboxItem:
    item = await _for_change(session, principal, item_id, if_match)
    if item.status != status:
        item.status = status
        _bump(item, utcnow())
    return item


async def change_labels(
    session: AsyncSession,
    principal: Principal,
    item_id: uuid.UUID,
    change: LabelsRequest,
    *,
    if_match: int | None,
) -> InboxItem:
    item = await _for_change(session, principal, item_id, if_match)
    removed = set(change.remove)
    labels = [label for label in item.labels if label not in removed]
    labels = list(dict.fromkeys([*labels, *change.add]))
    if len(labels) > 30:
        raise InvalidFields.one("/add", "An item carries at most 30 labels.", "too-many")
    if labels != list(item.labels):
        item.labels = labels
        _bump(item, utcnow())
    return item


# --- replies and moderation -------------------------------------------------------------------


def _queue(
    session: AsyncSession,
    item: InboxItem,
    principal: Principal,
    kind: ActionKind,
    *,
    text: str | None = None,
    awaiting_approval: bool = False,
    minutes: int | None = None,
) -> InboxAction:
    action = InboxAction(
        tenant_id=item.tenant_id,
        item_id=item.id,
        social_account_id=item.social_account_id,
        kind=kind,
        text=text,
        status=ActionStatus.awaiting_approval if awaiting_approval else ActionStatus.queued,
        requested_by=principal.user_id if principal.kind == "user" else None,
        minutes_spent=minutes,
    )
    session.add(action)
    return action


async def reply(
    session: AsyncSession,
    principal: Principal,
    item_id: uuid.UUID,
    body: ReplyCreate,
    *,
    if_match: int | None,
) -> tuple[InboxItem, InboxAction, list[dict[str, Any]]]:
    """Queue one reply. The brand may want a manager to approve replies first: a reply by
    someone who may not approve then waits for one."""
    item = await _for_change(session, principal, item_id, if_match)
    if item.moderation == ModerationState.deleted:
        raise errors.NotAllowedOnPlatform("The item was deleted: there is nothing to answer.")
    if body.private and not capabilities.can_reply_privately(item.platform):
        raise errors.NotAllowedOnPlatform(
            f"{item.platform} does not let a page answer a public comment in private."
        )
    if body.private and item.kind == "message":
        raise InvalidFields.one(
            "/private", "A private message is answered in private already.", "not-applicable"
        )
    brand = await session.get(Brand, (item.tenant_id, item.brand_id))
    assert brand is not None
    warnings = [
        w.as_dict()
        for w in templates.check_reply(
            body.text,
            platform=item.platform,
            banned_words=list(brand.guidelines.get("banned_words") or []),
            language=item.language or brand.default_language,
        )
    ]
    banned = [w for w in warnings if w["kind"] == "banned_word"]
    if banned:
        raise InvalidFields(
            [{"pointer": "/text", "message": w["message"], "code": "banned-word"} for w in banned]
        )
    approval = bool(brand.guidelines.get("reply_approval")) and not _may_approve(principal)
    action = _queue(
        session,
        item,
        principal,
        ActionKind.private_reply if body.private else ActionKind.reply,
        text=body.text,
        awaiting_approval=approval,
        minutes=body.minutes_spent,
    )
    now = utcnow()
    if body.done:
        item.status = ItemStatus.done
    elif item.status in (ItemStatus.new, ItemStatus.assigned):
        item.status = ItemStatus.waiting
    if item.assignee_id is None and principal.kind == "user":
        item.assignee_id = principal.user_id
    _bump(item, now)
    await session.flush()
    return item, action, warnings


def _may_approve(principal: Principal) -> bool:
    return scope_of(principal.role, Resource.inbox, Verb.approve) is not Scope.none


async def approve(
    session: AsyncSession, principal: Principal, item_id: uuid.UUID, action_id: uuid.UUID
) -> tuple[InboxItem, InboxAction]:
    require_scope(principal, Resource.inbox, Verb.approve)
    item = await load_item(session, principal, item_id, Verb.update, lock=True)
    action = await _action(session, item, action_id, lock=True)
    if action.status != ActionStatus.awaiting_approval:
        raise errors.NothingToApprove(f"This reply is {action.status.replace('_', ' ')}.")
    action.status = ActionStatus.queued
    action.approved_by = principal.user_id
    action.version += 1
    action.updated_at = utcnow()
    _bump(item, action.updated_at)
    return item, action


async def _action(
    session: AsyncSession, item: InboxItem, action_id: uuid.UUID, *, lock: bool = False
) -> InboxAction:
    query = select(InboxAction).where(
        InboxAction.tenant_id == item.tenant_id,
        InboxAction.item_id == item.id,
        InboxAction.id == action_id,
    )
    if lock:
        query = query.with_for_update()
    found = (await session.scalars(query)).first()
    if found is None:
        raise errors.ActionNotFound()
    return found


async def moderate(
    session: AsyncSession,
    principal: Principal,
    item_id: uuid.UUID,
    kind: ActionKind,
    *,
    if_match: int | None,
) -> tuple[InboxItem, InboxAction]:
    item = await _for_change(session, principal, item_id, if_match)
    if not capabilities.can_moderate(item.platform, Moderation(kind.value)):
        raise errors.NotAllowedOnPlatform(f"{item.platform} does not let a page {kind.value} this.")
    if item.moderation == ModerationState.deleted:
        raise errors.NotAllowedOnPlatform("The item was deleted already.")
    action = _queue(session, item, principal, kind)
    _bump(item, utcnow())
    await session.flush()
    return item, action


async def response_due(
    session: AsyncSession, item: InboxItem, start: datetime, *, first: bool
) -> datetime | None:
    policy = await response_policy(session, item.tenant_id, item.client_id)
    if policy is None:
        return None
    minutes = policy.first_response_minutes if first else policy.next_response_minutes
    return sla.due_at(policy, start, minutes)


async def brand_of_inbox_item(
    session: AsyncSession, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> uuid.UUID | None:
    """The brand of an item of this agency (for time logged against it), None if none."""
    return (
        await session.scalars(
            select(InboxItem.brand_id).where(
                InboxItem.tenant_id == tenant_id, InboxItem.id == item_id
            )
        )
    ).first()
