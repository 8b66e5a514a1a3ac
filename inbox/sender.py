"""Replies and moderation, sent exactly once, the way publications are.

A reply is claimed under its row lock with a lease; the claim holder commits
`create_started_at` before the platform call. From that moment an unclear end (a timeout, a
dropped connection, a 5xx on the call, or a worker found dead) makes the reply `unconfirmed`,
and reconciliation reads the item's replies on the platform to find it: found, it is `sent`;
not found within INBOX_RECONCILE_MINUTES, `failed` ("outcome unknown, check the platform
before answering again"). A reply is never sent again on its own.

Moderation (hide, unhide, delete) asks the platform for a state, not a new object: doing it
twice is harmless, so an unclear end simply tries again (at least once).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from inbox.models import (
    ActionKind,
    ActionStatus,
    InboxAction,
    InboxItem,
    InboxThread,
    ItemStatus,
    ModerationState,
)
from inbox.service.ingest import emit
from infra.clock import utcnow
from infra.db import Database
from infra.logging import get_logger
from infra.settings import Settings
from social.connectors.types import (
    ConnectorError,
    InboxConnector,
    InboxKind,
    ItemRef,
    Moderation,
    OutcomeUnknown,
    PublishRejected,
    RateLimited,
    SentReply,
    TokenInvalid,
)
from social.kit import SocialKit
from social.models import SYNCABLE, SocialAccount
from social.sync import fresh_tokens, mark_needs_reauth

log = get_logger(__name__)

EARLY = timedelta(seconds=1)
MAX_TRIES = 8
CHECK_FIRST = timedelta(seconds=20)
CHECK_MAX = timedelta(minutes=10)
FIND_SLACK = timedelta(minutes=2)
REPLIES = (ActionKind.reply, ActionKind.private_reply)
MODERATED = {
    ActionKind.hide: ModerationState.hidden,
    ActionKind.unhide: ModerationState.visible,
    ActionKind.delete: ModerationState.deleted,
}

Enqueue = Callable[[str, InboxAction, datetime], Awaitable[None]]


@dataclass(frozen=True)
class Deps:
    db: Database
    kit: SocialKit
    settings: Settings
    enqueue: Enqueue
    """(job kind "send" | "reconcile", action, when), after the state that asks commits."""


@dataclass(frozen=True)
class Claim:
    tenant_id: uuid.UUID
    action_id: uuid.UUID
    attempt: int
    kind: ActionKind
    text: str | None
    account_id: uuid.UUID
    platform: str
    external_id: str
    item: ItemRef
    started: datetime | None = None


def connector_of(kit: SocialKit, platform: str) -> InboxConnector:
    return cast(InboxConnector, kit.connector(platform))


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=15 * 2 ** max(attempts - 1, 0)), timedelta(minutes=15))


async def _locked(
    session: AsyncSession, tenant_id: uuid.UUID, action_id: uuid.UUID
) -> InboxAction | None:
    return (
        await session.scalars(
            select(InboxAction)
            .where(InboxAction.tenant_id == tenant_id, InboxAction.id == action_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()


def _touch(action: InboxAction, now: datetime) -> None:
    action.version += 1
    action.updated_at = now


def _fail(action: InboxAction, code: str, error: str, now: datetime) -> None:
    action.status = ActionStatus.failed
    action.error_code = code
    action.error = error[:2000]
    action.claimed_until = action.next_attempt_at = action.next_check_at = None
    _touch(action, now)


def _unconfirm(action: InboxAction, reason: str, now: datetime) -> None:
    action.status = ActionStatus.unconfirmed
    action.unconfirmed_at = now
    action.next_check_at = now + CHECK_FIRST
    action.claimed_until = None
    action.error_code = "unconfirmed"
    action.error = f"No definite answer from the platform ({reason}); looking for the reply."[:2000]
    _touch(action, now)


async def claim(deps: Deps, tenant_id: uuid.UUID, action_id: uuid.UUID) -> Claim | str:
    answer = await _claim(deps, tenant_id, action_id)
    if isinstance(answer, tuple):
        action, at = answer
        await deps.enqueue("reconcile", action, at)
        return "unconfirmed"
    return answer


async def _claim(
    deps: Deps, tenant_id: uuid.UUID, action_id: uuid.UUID
) -> Claim | str | tuple[InboxAction, datetime]:
    async with deps.db.tenant_transaction(tenant_id) as session:
        action = await _locked(session, tenant_id, action_id)
        if action is None:
            return "skip"
        now = utcnow()
        if action.status == ActionStatus.sending:
            if action.claimed_until is not None and action.claimed_until > now:
                return "skip"  # another attempt holds it
            if action.create_started_at is not None and action.kind in REPLIES:
                # Its worker died after the call may have gone out: never send again.
                _unconfirm(action, "the worker stopped after sending the reply", now)
                await session.flush()
                return action, action.next_check_at or now
        elif action.status == ActionStatus.queued:
            if action.next_attempt_at is not None and action.next_attempt_at > now + EARLY:
                return "skip"  # waiting out a transient failure; its job is deferred
        else:
            return "skip"
        account = await session.get(SocialAccount, (tenant_id, action.social_account_id))
        item = await session.get(InboxItem, (tenant_id, action.item_id))
        assert account is not None and item is not None  # foreign keys
        if account.status not in SYNCABLE:
            _fail(
                action,
                "needs_reauth",
                f"Reconnect the {account.platform} account "
                f"{account.handle or account.external_id}, then answer again.",
                now,
            )
            return "failed"
        action.status = ActionStatus.sending
        action.attempts += 1
        action.claimed_until = now + timedelta(seconds=deps.settings.inbox_lease_seconds)
        action.next_attempt_at = None
        action.create_started_at = None
        _touch(action, now)
        return Claim(
            tenant_id=tenant_id,
            action_id=action.id,
            attempt=action.attempts,
            kind=ActionKind(action.kind),
            text=action.text,
            account_id=account.id,
            platform=account.platform,
            external_id=account.external_id,
            item=ItemRef(
                external_id=item.external_id,
                kind=InboxKind(item.kind),
                author_id=item.author_id,
                thread_external_id=await _thread_external_id(session, item),
                parent_external_id=item.parent_external_id,
            ),
        )


async def _thread_external_id(session: AsyncSession, item: InboxItem) -> str | None:
    if item.thread_id is None:
        return None
    thread = await session.get(InboxThread, (item.tenant_id, item.thread_id))
    return thread.external_id if thread is not None else None


async def _settle(
    deps: Deps,
    c: Claim,
    apply: Callable[[AsyncSession, InboxAction, InboxItem, datetime], Any],
    *,
    owned: bool = True,
) -> tuple[InboxAction, Any] | None:
    """Write an outcome under the row lock if this attempt still holds the action (`owned`);
    a reply that went out is written whoever holds it now."""
    async with deps.db.tenant_transaction(c.tenant_id) as session:
        action = await _locked(session, c.tenant_id, c.action_id)
        if action is None:
            return None
        if owned and (action.status != ActionStatus.sending or action.attempts != c.attempt):
            return None
        item = await session.get(InboxItem, (c.tenant_id, action.item_id), with_for_update=True)
        assert item is not None
        result = apply(session, action, item, utcnow())
        await session.flush()
        return action, result


async def _mark_call(deps: Deps, c: Claim) -> bool:
    """Commit the moment of the platform call. False: this attempt lost the action."""

    def apply(session: AsyncSession, action: InboxAction, item: InboxItem, now: datetime) -> Any:
        action.create_started_at = now
        action.claimed_until = now + timedelta(seconds=deps.settings.inbox_lease_seconds)
        _touch(action, now)
        return True

    return await _settle(deps, c, apply) is not None


async def _sent(deps: Deps, c: Claim, reply: SentReply | None) -> None:
    def apply(session: AsyncSession, action: InboxAction, item: InboxItem, now: datetime) -> Any:
        if action.status == ActionStatus.sent:
            return
        action.status = ActionStatus.sent
        action.sent_at = (reply.created_at if reply and reply.created_at else None) or now
        if reply is not None:
            action.external_id = reply.external_id[:255]
            action.permalink = (reply.permalink or None) and reply.permalink[:2000]
        action.error_code = action.error = None
        action.claimed_until = action.next_attempt_at = action.next_check_at = None
        _touch(action, now)
        if action.kind in REPLIES:
            if item.first_response_at is None:
                item.first_response_at = action.sent_at
                item.first_response_by = action.requested_by
            item.last_response_at = action.sent_at
        else:
            item.moderation = MODERATED[ActionKind(action.kind)]
        item.version += 1
        item.updated_at = now
        if action.kind in REPLIES:
            emit(session, item, "inbox.replied", action_id=str(action.id))

    await _settle(deps, c, apply, owned=False)


async def _transient(deps: Deps, c: Claim, exc: ConnectorError) -> str:
    reason = str(exc) or type(exc).__name__

    def apply(session: AsyncSession, action: InboxAction, item: InboxItem, now: datetime) -> Any:
        if action.attempts >= MAX_TRIES:
            _fail(action, "gave_up", f"The platform kept failing; the last try said: {reason}", now)
            return None
        wait = backoff(action.attempts)
        if isinstance(exc, RateLimited):
            wait = max(wait, timedelta(seconds=exc.retry_after))
        action.status = ActionStatus.queued
        action.next_attempt_at = now + wait
        action.claimed_until = None
        action.create_started_at = None
        action.error_code = "retrying"
        action.error = f"Retrying at {action.next_attempt_at.isoformat()}: {reason}"[:2000]
        _touch(action, now)
        return action.next_attempt_at

    done = await _settle(deps, c, apply)
    if done is None:
        return "skip"
    action, at = done
    if at is None:
        return "failed"
    await deps.enqueue("send", action, at)
    return "retry"


async def _refused(deps: Deps, c: Claim, code: str, error: str) -> str:
    def apply(session: AsyncSession, action: InboxAction, item: InboxItem, now: datetime) -> Any:
        _fail(action, code, error, now)
        # The answer did not go: the item is open again.
        if (
            action.kind in REPLIES
            and item.first_response_at is None
            and item.status == ItemStatus.waiting
        ):
            item.status = ItemStatus.assigned if item.assignee_id else ItemStatus.new
            item.version += 1
            item.updated_at = now

    await _settle(deps, c, apply)
    return "failed"


async def _unknown(deps: Deps, c: Claim, reason: str) -> str:
    if c.kind not in REPLIES:
        # Asking again for the same moderation state changes nothing: try again.
        return await _transient(deps, c, ConnectorError(reason))

    def apply(session: AsyncSession, action: InboxAction, item: InboxItem, now: datetime) -> Any:
        _unconfirm(action, reason, now)
        return action.next_check_at

    done = await _settle(deps, c, apply)
    if done is not None and done[1] is not None:
        await deps.enqueue("reconcile", done[0], done[1])
    return "unconfirmed"


async def send(deps: Deps, tenant_id: uuid.UUID, action_id: uuid.UUID) -> str:
    """Run one attempt; answers sent, retry, failed, unconfirmed or skip."""
    c = await claim(deps, tenant_id, action_id)
    if isinstance(c, str):
        return c
    connector = connector_of(deps.kit, c.platform)
    try:
        tokens = await fresh_tokens(deps.db, deps.kit, tenant_id, c.account_id, utcnow())
        if tokens is None:
            return await _refused(
                deps, c, "needs_reauth", "Reconnect the account, then answer again."
            )
        if not await _mark_call(deps, c):
            return "skip"
        if c.kind in REPLIES:
            assert c.text is not None
            sent = await connector.reply(
                tokens, c.external_id, c.item, c.text, private=c.kind == ActionKind.private_reply
            )
            await _sent(deps, c, sent)
        else:
            await connector.moderate(tokens, c.external_id, c.item, Moderation(c.kind.value))
            await _sent(deps, c, None)
        return "sent"
    except TokenInvalid as exc:
        await mark_needs_reauth(deps.db, tenant_id, c.account_id, str(exc) or "token refused")
        return await _refused(
            deps,
            c,
            "needs_reauth",
            f"The platform refused our access: reconnect the account. ({exc})",
        )
    except PublishRejected as exc:
        return await _refused(deps, c, exc.code, exc.reason)
    except OutcomeUnknown as exc:
        return await _unknown(deps, c, str(exc) or "no answer")
    except ConnectorError as exc:
        return await _transient(deps, c, exc)


async def reconcile(deps: Deps, tenant_id: uuid.UUID, action_id: uuid.UUID) -> str:
    """Look for an unconfirmed reply on the platform: found -> sent; not found by the end of
    the window -> failed, "outcome unknown"; else look again later."""
    async with deps.db.tenant_transaction(tenant_id) as session:
        action = await _locked(session, tenant_id, action_id)
        if action is None or action.status != ActionStatus.unconfirmed:
            return "skip"
        now = utcnow()
        if action.next_check_at is not None and action.next_check_at > now + EARLY:
            return "skip"
        account = await session.get(SocialAccount, (tenant_id, action.social_account_id))
        item = await session.get(InboxItem, (tenant_id, action.item_id))
        assert account is not None and item is not None
        c = Claim(
            tenant_id=tenant_id,
            action_id=action.id,
            attempt=action.attempts,
            kind=ActionKind(action.kind),
            text=action.text,
            account_id=account.id,
            platform=account.platform,
            external_id=account.external_id,
            item=ItemRef(
                external_id=item.external_id,
                kind=InboxKind(item.kind),
                author_id=item.author_id,
                thread_external_id=await _thread_external_id(session, item),
                parent_external_id=item.parent_external_id,
            ),
            started=action.create_started_at or now,
        )
    found: SentReply | None = None
    problem: str | None = None
    try:
        tokens = await fresh_tokens(deps.db, deps.kit, tenant_id, c.account_id, utcnow())
        if tokens is None:
            problem = "the account is not connected"
        else:
            assert c.text is not None and c.started is not None
            found = await connector_of(deps.kit, c.platform).find_reply(
                tokens, c.external_id, c.item, c.text, c.started - FIND_SLACK
            )
    except ConnectorError as exc:
        problem = str(exc) or type(exc).__name__
    if found is not None:
        await _sent(deps, c, found)
        return "sent"
    window = timedelta(minutes=deps.settings.inbox_reconcile_minutes)

    def apply(session: AsyncSession, action: InboxAction, item: InboxItem, now: datetime) -> Any:
        if action.status != ActionStatus.unconfirmed:
            return None
        action.checks += 1
        if now >= (action.unconfirmed_at or now) + window:
            _fail(
                action,
                "outcome_unknown",
                "Outcome unknown, check the platform before answering again: it did not confirm "
                "the reply and we could not find it" + (f" ({problem})" if problem else "") + ".",
                now,
            )
            return None
        action.next_check_at = now + min(CHECK_FIRST * 2**action.checks, CHECK_MAX)
        _touch(action, now)
        return action.next_check_at

    done = await _settle(deps, c, apply, owned=False)
    if done is None:
        return "skip"
    action, at = done
    if at is None:
        return "failed"
    await deps.enqueue("reconcile", action, at)
    return "checking"
