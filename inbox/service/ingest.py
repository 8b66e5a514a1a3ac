"""What the platforms tell us becomes inbox items, once each.

An item is keyed by (account, platform id): a webhook delivered twice, a poll that overlaps a
webhook, or both, make one row (`ON CONFLICT DO NOTHING`). A reply that arrives before the
comment it answers keeps the parent's platform id and is attached when the parent comes. On
arrival an item gets its language, sentiment, response deadline (the client's policy, in
business time), and whatever the brand's rules decide; the partners hear `inbox.item_received`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

from inbox import rules as rule_engine
from inbox import sla
from inbox.language import detect_language
from inbox.models import (
    PRIORITY_RANK,
    ActionKind,
    ActionStatus,
    InboxAction,
    InboxCursor,
    InboxItem,
    InboxRule,
    InboxThread,
    ItemStatus,
    ModerationState,
    Priority,
    ResponsePolicyRow,
)
from inbox.sentiment import sentiment as sentiment_of
from infra import outbox
from infra.ids import new_id
from social.connectors.types import InboundItem, InboxKind
from social.models import SocialAccount
from tenants.models import Assignment, AssignmentRole, Brand, Membership, MembershipStatus
from tenants.policy import local_date

ITEM_RECEIVED = "inbox.item_received"
NOTIFY = "inbox.notify"
"""Internal: a rule asked to tell people about an item (e-mailed, not published)."""


QUEUED = "inbox_queued_actions"


def queued_actions(session: AsyncSession) -> list[InboxAction]:
    """The actions rules queued in this transaction, for the caller to send after commit."""
    return list(session.info.pop(QUEUED, []))


@dataclass(frozen=True)
class Stored:
    item: InboxItem
    new: bool


def item_payload(item: InboxItem) -> dict[str, Any]:
    """What partners receive about an item: no more of the author than the platform shows."""
    return {
        "item_id": str(item.id),
        "brand_id": str(item.brand_id),
        "client_id": str(item.client_id),
        "social_account_id": str(item.social_account_id),
        "platform": item.platform,
        "kind": item.kind,
        "external_id": item.external_id,
        "author_handle": item.author_handle,
        "text": item.text,
        "language": item.language,
        "sentiment": item.sentiment,
        "status": item.status,
        "priority": item.priority,
        "labels": list(item.labels),
        "received_at": item.received_at.isoformat(),
        "response_due_at": item.response_due_at.isoformat() if item.response_due_at else None,
    }


def emit(session: AsyncSession, item: InboxItem, type: str, **extra: Any) -> None:
    outbox.record_event(
        session,
        tenant_id=item.tenant_id,
        type=type,
        aggregate_type="inbox_item",
        aggregate_id=item.id,
        payload=item_payload(item) | extra,
    )


async def response_policy(
    session: AsyncSession, tenant_id: uuid.UUID, client_id: uuid.UUID
) -> sla.ResponsePolicy | None:
    row = (
        await session.scalars(
            select(ResponsePolicyRow).where(
                ResponsePolicyRow.tenant_id == tenant_id, ResponsePolicyRow.client_id == client_id
            )
        )
    ).first()
    return sla.ResponsePolicy.from_json(row.policy) if row is not None else None


async def brand_lead(
    session: AsyncSession, tenant_id: uuid.UUID, brand_id: uuid.UUID, today: date
) -> uuid.UUID | None:
    """The brand's current lead (a user id), if it has one."""
    return (
        await session.scalars(
            select(Assignment.user_id)
            .join(
                Membership,
                (col(Membership.tenant_id) == col(Assignment.tenant_id))
                & (col(Membership.id) == col(Assignment.membership_id)),
            )
            .where(
                Assignment.tenant_id == tenant_id,
                Assignment.brand_id == brand_id,
                Assignment.role == AssignmentRole.lead,
                col(Assignment.start_date) <= today,
                col(Assignment.end_date).is_(None) | (col(Assignment.end_date) >= today),
                Membership.status == MembershipStatus.active,
            )
            .order_by(col(Assignment.start_date), col(Assignment.id))
            .limit(1)
        )
    ).first()


async def brand_rules(
    session: AsyncSession, tenant_id: uuid.UUID, brand_id: uuid.UUID
) -> list[rule_engine.RuleSpec]:
    rows = (
        await session.scalars(
            select(InboxRule)
            .where(InboxRule.tenant_id == tenant_id, InboxRule.brand_id == brand_id)
            .order_by(col(InboxRule.position), col(InboxRule.id))
        )
    ).all()
    return [spec_of(row) for row in rows]


def spec_of(row: InboxRule) -> rule_engine.RuleSpec:
    return rule_engine.RuleSpec(
        id=row.id,
        name=row.name,
        position=row.position,
        enabled=row.enabled,
        stop_processing=row.stop_processing,
        condition=rule_engine.RuleCondition.model_validate(row.condition),
        action=rule_engine.RuleAction.model_validate(row.action),
    )


@dataclass
class Context:
    """What every item of one account shares while a batch is stored."""

    account: SocialAccount
    brand: Brand
    policy: sla.ResponsePolicy | None
    rules: list[rule_engine.RuleSpec]
    lead: uuid.UUID | None

    @property
    def watch_list(self) -> list[str]:
        return list(self.brand.guidelines.get("watch_list") or [])

    @property
    def never_use(self) -> list[str]:
        return list(self.brand.guidelines.get("banned_words") or [])


async def context_for(
    session: AsyncSession, account: SocialAccount, now: datetime, timezone: str = "UTC"
) -> Context | None:
    brand = await session.get(Brand, (account.tenant_id, account.brand_id))
    if brand is None:
        return None
    return Context(
        account=account,
        brand=brand,
        policy=await response_policy(session, account.tenant_id, brand.client_id),
        rules=await brand_rules(session, account.tenant_id, brand.id),
        lead=await brand_lead(session, account.tenant_id, brand.id, local_date(timezone, now)),
    )


async def _thread(
    session: AsyncSession, ctx: Context, inbound: InboundItem, now: datetime
) -> uuid.UUID | None:
    if inbound.thread_external_id is None:
        return None
    kind = "conversation" if inbound.kind == InboxKind.message else "post"
    at = inbound.created_at
    statement = insert(InboxThread)
    row = await session.scalar(
        statement.values(
            tenant_id=ctx.account.tenant_id,
            id=new_id(),
            social_account_id=ctx.account.id,
            brand_id=ctx.account.brand_id,
            kind=kind,
            external_id=inbound.thread_external_id[:255],
            participant_id=None if inbound.from_account else inbound.author_id[:255],
            participant_name=None if inbound.from_account else inbound.author_name,
            last_item_at=at,
            created_at=now,
        )
        .on_conflict_do_update(
            constraint="uq_inbox_threads",
            set_={
                "last_item_at": func.greatest(
                    col(InboxThread.last_item_at), statement.excluded.last_item_at
                )
            },
        )
        .returning(col(InboxThread.id))
    )
    return row


def _priority(current: str, wanted: str | None) -> str:
    if wanted is None:
        return current
    return wanted if PRIORITY_RANK[Priority(wanted)] > PRIORITY_RANK[Priority(current)] else current


async def store(
    session: AsyncSession, ctx: Context, batch: Sequence[InboundItem], now: datetime
) -> list[Stored]:
    """Store what one account received; answers each item and whether it is new."""
    stored: list[Stored] = []
    for inbound in sorted(batch, key=lambda i: i.created_at):
        stored.append(await store_one(session, ctx, inbound, now))
    return stored


async def store_one(
    session: AsyncSession, ctx: Context, inbound: InboundItem, now: datetime
) -> Stored:
    account = ctx.account
    existing = (
        await session.scalars(
            select(InboxItem)
            .where(
                InboxItem.tenant_id == account.tenant_id,
                InboxItem.social_account_id == account.id,
                InboxItem.external_id == inbound.external_id,
            )
            .with_for_update()
        )
    ).first()
    if existing is not None:
        _moderation_news(existing, inbound, now)
        return Stored(existing, False)

    thread_id = await _thread(session, ctx, inbound, now)
    language = detect_language(inbound.text) if inbound.text else None
    mood = sentiment_of(inbound.text, language) if inbound.text else None
    needs_reply = not inbound.from_account and not inbound.removed
    item = InboxItem(
        tenant_id=account.tenant_id,
        social_account_id=account.id,
        brand_id=account.brand_id,
        client_id=ctx.brand.client_id,
        platform=account.platform,
        external_id=inbound.external_id[:255],
        kind=inbound.kind.value,
        thread_id=thread_id,
        parent_external_id=inbound.parent_external_id,
        author_id=inbound.author_id[:255],
        author_handle=inbound.author_handle,
        author_name=inbound.author_name,
        text=inbound.text,
        media=[{"url": url} for url in inbound.media_urls],
        platform_created_at=inbound.created_at,
        received_at=now,
        language=language,
        sentiment=mood.label if mood else None,
        sentiment_score=mood.score if mood else None,
        from_account=inbound.from_account,
        needs_reply=needs_reply,
        status=ItemStatus.done if not needs_reply else ItemStatus.new,
        moderation=ModerationState.deleted
        if inbound.removed
        else (ModerationState.hidden if inbound.hidden else ModerationState.visible),
        created_at=now,
        updated_at=now,
    )
    if inbound.parent_external_id:
        item.parent_id = (
            await session.scalars(
                select(InboxItem.id).where(
                    InboxItem.tenant_id == account.tenant_id,
                    InboxItem.social_account_id == account.id,
                    InboxItem.external_id == inbound.parent_external_id,
                )
            )
        ).first()
    if needs_reply:
        if ctx.policy is not None:
            answered_before = await _answered_in_thread(session, item)
            minutes = (
                ctx.policy.next_response_minutes
                if answered_before
                else ctx.policy.first_response_minutes
            )
            item.response_due_at = sla.due_at(ctx.policy, now, minutes)
        notify = _apply_rules(session, ctx, item)
    else:
        notify = []
    # A concurrent store of the same item (a webhook and a poll at once) wins or loses here.
    inserted = await session.scalar(
        insert(InboxItem)
        .values(**_row(item))
        .on_conflict_do_nothing(constraint="uq_inbox_items")
        .returning(col(InboxItem.id))
    )
    if inserted is None:
        again = (
            await session.scalars(
                select(InboxItem).where(
                    InboxItem.tenant_id == account.tenant_id,
                    InboxItem.social_account_id == account.id,
                    InboxItem.external_id == inbound.external_id,
                )
            )
        ).one()
        return Stored(again, False)
    if item.kind != InboxKind.message:
        await _adopt_orphans(session, item)
    if inbound.from_account and item.parent_id is not None:
        await _answered_natively(session, item)
    if needs_reply:
        emit(session, item, ITEM_RECEIVED)
        if notify:
            emit(session, item, NOTIFY, notify=[str(m) for m in notify])
    return Stored(item, True)


async def _answered_in_thread(session: AsyncSession, item: InboxItem) -> bool:
    """Whether we already answered this person in this thread: their new message then runs
    on the next-response target, not the first-response one."""
    if item.thread_id is None:
        return False
    found = await session.scalar(
        select(func.count())
        .select_from(InboxItem)
        .where(
            InboxItem.tenant_id == item.tenant_id,
            InboxItem.thread_id == item.thread_id,
            InboxItem.author_id == item.author_id,
            col(InboxItem.first_response_at).is_not(None),
        )
    )
    return bool(found)


def _row(item: InboxItem) -> dict[str, Any]:
    table = SQLModel.metadata.tables["inbox_items"]
    return {c.name: getattr(item, c.name) for c in table.columns}


def _apply_rules(session: AsyncSession, ctx: Context, item: InboxItem) -> list[uuid.UUID]:
    """The brand's rules on a new item; answers who to notify. A rule's `hide` queues a hide
    through the same exactly-once path as a person's."""
    outcome = rule_engine.evaluate(
        ctx.rules,
        rule_engine.ItemFacts(
            text=item.text,
            kind=item.kind,
            platform=item.platform,
            language=item.language,
            sentiment=item.sentiment,
            author_id=item.author_id,
            author_handle=item.author_handle,
        ),
        never_use_words=ctx.never_use,
        watch_list=ctx.watch_list,
    )
    assignee = outcome.assign_to or (ctx.lead if outcome.assign_to_lead else None)
    if assignee is not None:
        item.assignee_id = assignee
        item.status = ItemStatus.assigned
    item.labels = list(dict.fromkeys([*item.labels, *outcome.labels]))
    item.priority = _priority(item.priority, outcome.priority)
    if outcome.mark_done:
        item.status = ItemStatus.done
        item.needs_reply = False
        item.response_due_at = None
    item.rules_applied = [str(r) for r in outcome.matched]
    if outcome.hide:
        action = InboxAction(
            tenant_id=item.tenant_id,
            item_id=item.id,
            social_account_id=item.social_account_id,
            kind=ActionKind.hide,
            status=ActionStatus.queued,
        )
        session.add(action)
        # Sent once this transaction commits (see `queued_actions`).
        session.info.setdefault(QUEUED, []).append(action)
    return list(outcome.notify)


async def _adopt_orphans(session: AsyncSession, parent: InboxItem) -> None:
    """Replies that came before this item now hang under it."""
    await session.execute(
        update(InboxItem)
        .where(
            col(InboxItem.tenant_id) == parent.tenant_id,
            col(InboxItem.social_account_id) == parent.social_account_id,
            col(InboxItem.parent_external_id) == parent.external_id,
            col(InboxItem.parent_id).is_(None),
        )
        .values(parent_id=parent.id)
    )


async def _answered_natively(session: AsyncSession, ours: InboxItem) -> None:
    """The brand answered on the platform itself (or our reply came back): the item it answers
    counts as answered at that time."""
    parent = await session.get(InboxItem, (ours.tenant_id, ours.parent_id), with_for_update=True)
    if parent is None or parent.first_response_at is not None:
        return
    parent.first_response_at = ours.platform_created_at
    parent.last_response_at = ours.platform_created_at
    if parent.status in (ItemStatus.new, ItemStatus.assigned):
        parent.status = ItemStatus.waiting
    parent.version += 1
    parent.updated_at = ours.received_at


def _moderation_news(item: InboxItem, inbound: InboundItem, now: datetime) -> None:
    """A platform reporting an item deleted or hidden (by its author or a moderator)."""
    wanted = item.moderation
    if inbound.removed:
        wanted = ModerationState.deleted
    elif inbound.hidden is not None and item.moderation != ModerationState.deleted:
        wanted = ModerationState.hidden if inbound.hidden else ModerationState.visible
    if wanted != item.moderation:
        item.moderation = wanted
        item.version += 1
        item.updated_at = now


async def touch_cursor(
    session: AsyncSession,
    account: SocialAccount,
    *,
    pushed_at: datetime | None = None,
    polled_at: datetime | None = None,
    polled_through: datetime | None = None,
    next_poll_at: datetime | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {}
    if pushed_at is not None:
        values["last_push_at"] = pushed_at
    if polled_at is not None:
        values |= {"polled_at": polled_at, "last_error": error}
    if polled_through is not None:
        values["polled_through"] = polled_through
    if next_poll_at is not None:
        values["next_poll_at"] = next_poll_at
    await session.execute(
        insert(InboxCursor)
        .values(
            tenant_id=account.tenant_id,
            id=new_id(),
            social_account_id=account.id,
            **values,
        )
        .on_conflict_do_update(constraint="uq_inbox_cursors_account", set_=values)
    )
