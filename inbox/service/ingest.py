"""What the platforms tell us becomes inbox items, once each.

An item is keyed by (account, platform id): a webhook delivered twice, a poll that overlaps a
webhook, or both, make one row (`ON CONFLICT DO NOTHING`). A reply that arrives before the
comment it answers keeps the parent's platform id and is attached when the parent comes. On
arrival an item gets its language, sentiment, response deadline (the client's policy, in
business time), and whatever the brand's rules decide; the partners hear `inbox.item_received`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, text
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


_ITEMS = SQLModel.metadata.tables["inbox_items"]
_COLUMNS = tuple(c.name for c in _ITEMS.columns)


class NewItem(SimpleNamespace):
    """An inbox_items row being made: every column of the table as an attribute. Not an
    `InboxItem`: building one costs SQLModel's per-field checks and SQLAlchemy's per-attribute
    instrumentation (0.3 to 1 ms an item, most of a busy drain's time), for a row that is
    inserted with one Core statement anyway."""


@dataclass(frozen=True)
class Stored:
    row: InboxItem | NewItem
    new: bool

    @property
    def item(self) -> InboxItem:
        """The row as the model (built only for a caller that asks)."""
        row = self.row
        return row if isinstance(row, InboxItem) else InboxItem(**vars(row))


def item_payload(item: InboxItem | NewItem) -> dict[str, Any]:
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


def _event(item: NewItem, type: str, **extra: Any) -> outbox.NewEvent:
    return outbox.NewEvent(
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


async def _threads(
    session: AsyncSession, ctx: Context, fresh: Sequence[InboundItem], now: datetime
) -> dict[str, uuid.UUID]:
    """Upsert the threads of a batch in one statement: platform thread id -> our id."""
    latest: dict[str, InboundItem] = {}
    for inbound in fresh:
        key = (inbound.thread_external_id or "")[:255]
        if key and (key not in latest or inbound.created_at >= latest[key].created_at):
            latest[key] = inbound
    if not latest:
        return {}
    rows = [
        {
            "tenant_id": ctx.account.tenant_id,
            "id": new_id(),
            "social_account_id": ctx.account.id,
            "brand_id": ctx.account.brand_id,
            "kind": "conversation" if inbound.kind == InboxKind.message else "post",
            "external_id": key,
            "participant_id": None if inbound.from_account else inbound.author_id[:255],
            "participant_name": None if inbound.from_account else inbound.author_name,
            "last_item_at": inbound.created_at,
            "created_at": now,
        }
        # By key: two stores upserting the same threads lock them in the same order.
        for key, inbound in sorted(latest.items())
    ]
    statement = insert(InboxThread).values(rows)
    found = await session.execute(
        statement.on_conflict_do_update(
            constraint="uq_inbox_threads",
            set_={
                "last_item_at": func.greatest(
                    col(InboxThread.last_item_at), statement.excluded.last_item_at
                )
            },
        ).returning(col(InboxThread.external_id), col(InboxThread.id))
    )
    return {external: thread for external, thread in found.all()}


def _priority(current: str, wanted: str | None) -> str:
    if wanted is None:
        return current
    return wanted if PRIORITY_RANK[Priority(wanted)] > PRIORITY_RANK[Priority(current)] else current


async def store(
    session: AsyncSession, ctx: Context, batch: Sequence[InboundItem], now: datetime
) -> list[Stored]:
    """Store what one account received, in a few statements whatever the batch's size;
    answers each item (in the order received) and whether it is new."""
    account = ctx.account
    ordered = sorted(batch, key=lambda i: i.created_at)
    keys = list(dict.fromkeys(i.external_id[:255] for i in ordered))
    if not keys:
        return []
    known = {
        row.external_id: row
        for row in (
            await session.scalars(
                select(InboxItem)
                .where(
                    InboxItem.tenant_id == account.tenant_id,
                    InboxItem.social_account_id == account.id,
                    col(InboxItem.external_id).in_(keys),
                )
                .with_for_update()
            )
        ).all()
    }
    fresh: dict[str, InboundItem] = {}
    for inbound in ordered:
        key = inbound.external_id[:255]
        if key in known:
            _moderation_news(known[key], inbound, now)
        elif key in fresh:
            # The same item twice in one batch: the later report wins on moderation.
            fresh[key] = replace(
                fresh[key],
                removed=inbound.removed or fresh[key].removed,
                hidden=inbound.hidden if inbound.hidden is not None else fresh[key].hidden,
            )
        else:
            fresh[key] = inbound
    threads = await _threads(session, ctx, list(fresh.values()), now)
    made = {key: _new_item(ctx, inbound, threads, now) for key, inbound in fresh.items()}
    await _link_parents(session, ctx, made)
    if ctx.policy is not None:
        answered = await _answered_in_threads(session, ctx, made.values())
        for item in made.values():
            if item.needs_reply:
                again = (item.thread_id, item.author_id) in answered
                minutes = (
                    ctx.policy.next_response_minutes if again else ctx.policy.first_response_minutes
                )
                item.response_due_at = sla.due_at(ctx.policy, now, minutes)
    notify = {
        key: _apply_rules(session, ctx, item) for key, item in made.items() if item.needs_reply
    }
    inserted: set[uuid.UUID] = set()
    if made:
        # A concurrent store of the same items (a webhook and a poll at once) wins or loses
        # each row here: only the rows this statement wrote are new.
        # One statement compiled once (executemany with RETURNING), whatever the batch size.
        inserted = set(
            (
                await session.scalars(
                    insert(_ITEMS)
                    .on_conflict_do_nothing(constraint="uq_inbox_items")
                    .returning(_ITEMS.c.id),
                    # By key, for the same reason as the threads.
                    [_row(made[key]) for key in sorted(made)],
                )
            ).all()
        )
    lost = [key for key, item in made.items() if item.id not in inserted]
    if lost:
        for row in (
            await session.scalars(
                select(InboxItem).where(
                    InboxItem.tenant_id == account.tenant_id,
                    InboxItem.social_account_id == account.id,
                    col(InboxItem.external_id).in_(lost),
                )
            )
        ).all():
            known[row.external_id] = row
            made.pop(row.external_id, None)
    new_items = [item for item in made.values() if item.id in inserted]
    await _adopt_orphans(session, ctx, [i.external_id for i in new_items if i.kind != "message"])
    await _answered_natively(session, [i for i in new_items if i.from_account])
    events: list[outbox.NewEvent] = []
    for key, item in made.items():
        if item.needs_reply and item.id in inserted:
            events.append(_event(item, ITEM_RECEIVED))
            if notify.get(key):
                events.append(_event(item, NOTIFY, notify=[str(m) for m in notify[key]]))
    await outbox.record_events(session, events)
    answers: list[Stored] = []
    reported: set[str] = set()
    for inbound in ordered:
        key = inbound.external_id[:255]
        if key in made and made[key].id in inserted:
            answers.append(Stored(made[key], key not in reported))
        elif key in known:
            answers.append(Stored(known[key], False))
        reported.add(key)
    return answers


async def store_one(
    session: AsyncSession, ctx: Context, inbound: InboundItem, now: datetime
) -> Stored:
    [stored] = await store(session, ctx, [inbound], now)
    return stored


def _new_item(
    ctx: Context, inbound: InboundItem, threads: dict[str, uuid.UUID], now: datetime
) -> NewItem:
    account = ctx.account
    language = detect_language(inbound.text) if inbound.text else None
    mood = sentiment_of(inbound.text, language) if inbound.text else None
    needs_reply = not inbound.from_account and not inbound.removed
    return NewItem(
        tenant_id=account.tenant_id,
        id=new_id(),
        social_account_id=account.id,
        brand_id=account.brand_id,
        client_id=ctx.brand.client_id,
        platform=account.platform,
        external_id=inbound.external_id[:255],
        kind=inbound.kind.value,
        thread_id=threads.get((inbound.thread_external_id or "")[:255]),
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
        status=ItemStatus.new if needs_reply else ItemStatus.done,
        moderation=ModerationState.deleted
        if inbound.removed
        else (ModerationState.hidden if inbound.hidden else ModerationState.visible),
        parent_id=None,
        assignee_id=None,
        labels=[],
        priority=Priority.normal,
        pinned_until=None,
        crisis_id=None,
        rules_applied=[],
        response_due_at=None,
        first_response_at=None,
        first_response_by=None,
        last_response_at=None,
        sla_breached_at=None,
        version=1,
        created_at=now,
        updated_at=now,
    )


async def _link_parents(session: AsyncSession, ctx: Context, made: dict[str, NewItem]) -> None:
    """Each new reply's parent, if we hold it (stored before, or in this same batch)."""
    wanted = {i.parent_external_id for i in made.values() if i.parent_external_id}
    if not wanted:
        return
    found = {
        external: item_id
        for external, item_id in (
            await session.execute(
                select(InboxItem.external_id, InboxItem.id).where(
                    InboxItem.tenant_id == ctx.account.tenant_id,
                    InboxItem.social_account_id == ctx.account.id,
                    col(InboxItem.external_id).in_(wanted),
                )
            )
        ).all()
    }
    found |= {key: item.id for key, item in made.items() if key in wanted}
    for item in made.values():
        if item.parent_external_id:
            item.parent_id = found.get(item.parent_external_id)


async def _answered_in_threads(
    session: AsyncSession, ctx: Context, items: Iterable[NewItem]
) -> set[tuple[uuid.UUID | None, str]]:
    """(thread, author) pairs we already answered: their new messages run on the
    next-response target, not the first-response one."""
    threads = {i.thread_id for i in items if i.thread_id is not None and i.needs_reply}
    if not threads:
        return set()
    rows = await session.execute(
        select(InboxItem.thread_id, InboxItem.author_id)
        .where(
            InboxItem.tenant_id == ctx.account.tenant_id,
            col(InboxItem.thread_id).in_(threads),
            col(InboxItem.first_response_at).is_not(None),
        )
        .distinct()
    )
    return {(thread, author) for thread, author in rows.all()}


def _row(item: NewItem) -> dict[str, Any]:
    # Every column by name: a column the item lacks fails here, not as a silent NULL.
    return {name: getattr(item, name) for name in _COLUMNS}


def _apply_rules(session: AsyncSession, ctx: Context, item: NewItem) -> list[uuid.UUID]:
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


_ADOPT_ORPHANS = text(
    "UPDATE inbox_items AS child SET parent_id = parent.id FROM inbox_items AS parent "
    "WHERE child.tenant_id = :tenant_id AND child.social_account_id = :account_id "
    "AND child.parent_id IS NULL AND child.parent_external_id = ANY(:parents) "
    "AND parent.tenant_id = child.tenant_id "
    "AND parent.social_account_id = child.social_account_id "
    "AND parent.external_id = child.parent_external_id"
)
"""Built once, the parents as one array: the same update built with aliased ORM classes and an
IN list of a batch's every key cost more than the rest of storing the batch's items."""


async def _adopt_orphans(session: AsyncSession, ctx: Context, parents: list[str]) -> None:
    """Replies that came before their parent now hang under it."""
    if not parents:
        return
    await session.execute(
        _ADOPT_ORPHANS,
        {"tenant_id": ctx.account.tenant_id, "account_id": ctx.account.id, "parents": parents},
    )


async def _answered_natively(session: AsyncSession, ours: list[NewItem]) -> None:
    """The brand answered on the platform itself (or our reply came back): the item it
    answers counts as answered at that time."""
    by_parent = {i.parent_id: i for i in ours if i.parent_id is not None}
    if not by_parent:
        return
    tenant_id = ours[0].tenant_id
    parents = (
        await session.scalars(
            select(InboxItem)
            .where(InboxItem.tenant_id == tenant_id, col(InboxItem.id).in_(by_parent))
            .with_for_update()
        )
    ).all()
    for parent in parents:
        answer = by_parent[parent.id]
        if parent.first_response_at is not None:
            continue
        parent.first_response_at = answer.platform_created_at
        parent.last_response_at = answer.platform_created_at
        if parent.status in (ItemStatus.new, ItemStatus.assigned):
            parent.status = ItemStatus.waiting
        parent.version += 1
        parent.updated_at = answer.received_at


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
