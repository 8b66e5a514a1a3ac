"""Decisions and comments, from staff, client contacts and external approvers' links."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.errors import InvalidFields, body_reference
from infra.pagination import Keyset, Page, SortKey
from infra.security import InvalidToken, TokenSigner
from tenants.errors import PermissionDenied
from tenants.models import Brand, Client, Membership, MembershipStatus, Role, User
from tenants.policy import Resource, Scope, Verb, scope_of
from tenants.principal import Principal
from tenants.service.directory import brand_visibility, today_for
from workflows import errors
from workflows.engine import Decision, StepKind
from workflows.models import ApprovalDecision, ApprovalLink, ContentComment, ContentItem
from workflows.schemas import (
    CommentCreate,
    CommentRead,
    DecisionCreate,
    DecisionField,
    DecisionRead,
    InboxItem,
    LinkAnchor,
    LinkComment,
    LinkDecision,
    LinkDecisionRead,
    LinkMedia,
    LinkView,
)
from workflows.service.access import (
    CLIENT_VISIBLE,
    is_client,
    load_item,
    load_revision,
    step_due_at,
    user_key,
)
from workflows.service.content import tenant_timezone
from workflows.service.flow import Actor, approver_check, emit, record_decision

LINK_AUDIENCE = "passerelle-approval-link"
MENTION = re.compile(r"@\[([^\]\n]{1,100})\]\(([0-9a-fA-F-]{36})\)")
"""`@[Name](user-id)`: what the app inserts when someone picks a colleague to mention."""


def decision_read(row: ApprovalDecision) -> DecisionRead:
    return DecisionRead(
        id=row.id,
        revision_id=row.revision_id,
        round=row.round,
        step_index=row.step_index,
        step_kind=row.step_kind,
        decision=row.decision,
        comment=row.comment,
        actor_type=row.actor_type,
        user_id=row.user_id,
        email=row.email,
        channel=row.channel,
        created_at=row.created_at,
    )


async def decide(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    data: DecisionCreate,
    *,
    channel: str,
    link_ttl: timedelta,
) -> DecisionRead:
    item = await load_item(session, principal, content_id, lock=True)
    if data.revision_id != item.current_revision_id:
        with body_reference("/revision_id"):
            await load_revision(session, item.tenant_id, item.id, data.revision_id)
        raise errors.RevisionSuperseded(
            "This revision was replaced by a newer one; nothing was recorded. Review the "
            "current revision.",
            current_revision_id=str(item.current_revision_id) if not is_client(principal) else None,
        )
    actor = Actor(
        key=user_key(principal.user_id),
        actor_type="user",
        channel=channel,
        principal=principal,
        user_id=principal.user_id,
    )
    approver_check(item, actor)
    brand = await session.get(Brand, (item.tenant_id, item.brand_id))
    assert brand is not None
    row = await record_decision(
        session,
        item,
        brand,
        actor,
        Decision(data.decision),
        data.comment,
        timezone=principal.timezone,
        now=utcnow(),
        link_ttl=link_ttl,
        request_id=principal.request_id,
    )
    await _decision_comment(session, item, row, author_name=await _name(session, principal.user_id))
    await session.flush()
    return decision_read(row)


async def _name(session: AsyncSession, user_id: uuid.UUID) -> str:
    return (await session.scalar(select(User.name).where(User.id == user_id))) or "?"


async def _decision_comment(
    session: AsyncSession, item: ContentItem, row: ApprovalDecision, *, author_name: str
) -> None:
    """A decision's comment joins the thread, visible to whoever the step belongs to."""
    if not row.comment:
        return
    session.add(
        ContentComment(
            tenant_id=item.tenant_id,
            content_item_id=item.id,
            revision_id=row.revision_id,
            visibility=CLIENT_VISIBLE if row.step_kind == StepKind.client else "internal",
            body=row.comment,
            author_type="link" if row.link_id else "user",
            author_id=row.user_id,
            author_email=row.email,
            author_name=author_name,
        )
    )


def readable_decisions(principal: Principal, item: ContentItem) -> Select[Any]:
    """The decisions on an item the principal reads (load_item answered for the item) that
    they may see: staff every one, a client contact those of client steps."""
    query = select(ApprovalDecision).where(
        ApprovalDecision.tenant_id == principal.tenant_id,
        ApprovalDecision.content_item_id == item.id,
    )
    if is_client(principal):
        query = query.where(ApprovalDecision.step_kind == StepKind.client)
    return query


DECISION_ORDER = Keyset(
    "decisions",
    (
        SortKey(col(ApprovalDecision.created_at), lambda r: r.created_at, datetime.fromisoformat),
        SortKey(col(ApprovalDecision.id), lambda r: r.id, uuid.UUID),
    ),
)


async def list_decisions(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[DecisionRead]:
    """Every decision on the item, oldest first; a client contact sees those of client steps."""
    item = await load_item(session, principal, content_id)
    query = DECISION_ORDER.apply(readable_decisions(principal, item), cursor=cursor, limit=limit)
    rows, next_page = DECISION_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[decision_read(r) for r in rows], next_cursor=next_page)


# ---------------------------------------------------------------------------------------------
# Comments


def comment_read(row: ContentComment) -> CommentRead:
    return CommentRead(
        id=row.id,
        parent_id=row.parent_id,
        visibility=row.visibility,
        body=row.body,
        anchor=row.anchor,
        author_type=row.author_type,
        author_id=row.author_id,
        author_name=row.author_name,
        mentions=list(row.mentions),
        created_at=row.created_at,
    )


COMMENT_ORDER = Keyset(
    "comments",
    (
        SortKey(col(ContentComment.created_at), lambda r: r.created_at, datetime.fromisoformat),
        SortKey(col(ContentComment.id), lambda r: r.id, uuid.UUID),
    ),
)


async def list_comments(
    session: AsyncSession,
    principal: Principal,
    content_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> Page[CommentRead]:
    """Oldest first; a client contact sees the client-visible ones."""
    item = await load_item(session, principal, content_id)
    query = select(ContentComment).where(
        ContentComment.tenant_id == principal.tenant_id, ContentComment.content_item_id == item.id
    )
    if is_client(principal):
        query = query.where(ContentComment.visibility == CLIENT_VISIBLE)
    query = COMMENT_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = COMMENT_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[comment_read(r) for r in rows], next_cursor=next_page)


async def _comments(
    session: AsyncSession, tenant_id: uuid.UUID, item_id: uuid.UUID, *, client_only: bool
) -> list[CommentRead]:
    query = select(ContentComment).where(
        ContentComment.tenant_id == tenant_id, ContentComment.content_item_id == item_id
    )
    if client_only:
        query = query.where(ContentComment.visibility == CLIENT_VISIBLE)
    rows = (
        await session.scalars(
            query.order_by(col(ContentComment.created_at), col(ContentComment.id)).limit(5000)
        )
    ).all()
    return [comment_read(r) for r in rows]


async def _check_anchor(
    session: AsyncSession, principal: Principal, item: ContentItem, data: CommentCreate
) -> dict[str, Any] | None:
    if data.anchor is None:
        return None
    with body_reference("/anchor/revision_id"):
        revision = await load_revision(session, item.tenant_id, item.id, data.anchor.revision_id)
        if is_client(principal) and revision.id != item.client_revision_id:
            raise errors.RevisionNotFound()  # a revision the client never saw
    platform = data.anchor.platform
    if platform is None:
        text_of = revision.title
    elif platform in revision.variants:
        text_of = revision.variants[platform]
    else:
        raise errors.InvalidComment(
            f"Revision {revision.number} has no {platform} text.", field="anchor.platform"
        )
    if data.anchor.end > len(text_of):
        raise errors.InvalidComment(
            f"The anchor ends at {data.anchor.end} but that text has {len(text_of)} characters.",
            field="anchor.end",
        )
    return {
        **data.anchor.model_dump(mode="json"),
        "quote": text_of[data.anchor.start : data.anchor.end],
        "revision_number": revision.number,
    }


async def _mentions(
    session: AsyncSession, principal: Principal, item: ContentItem, body: str
) -> list[uuid.UUID]:
    """Staff named in the body who can see the item; anyone else is left as plain text."""
    wanted: list[uuid.UUID] = []
    for _, raw in MENTION.findall(body):
        try:
            wanted.append(uuid.UUID(raw))
        except ValueError:
            continue
    if not wanted or is_client(principal):
        return []
    rows = (
        await session.execute(
            select(Membership.user_id, Membership.role, Membership.id).where(
                Membership.tenant_id == principal.tenant_id,
                col(Membership.user_id).in_(wanted),
                Membership.status == MembershipStatus.active,
                Membership.role != Role.client,
            )
        )
    ).all()
    found: list[uuid.UUID] = []
    for user_id, role, membership_id in rows:
        scope = scope_of(role, Resource.content, Verb.read)
        if scope is Scope.assigned:
            member = Principal(
                tenant_id=principal.tenant_id,
                user_id=user_id,
                membership_id=membership_id,
                session_id=principal.session_id,
                role=Role(role),
                timezone=principal.timezone,
            )
            reaches = await session.scalar(
                select(func.count())
                .select_from(Brand)
                .where(
                    Brand.tenant_id == principal.tenant_id,
                    Brand.id == item.brand_id,
                    brand_visibility(member, scope, today_for(member)),
                )
            )
            if not reaches:
                continue
        found.append(user_id)
    return [u for u in dict.fromkeys(wanted) if u in found]


async def add_comment(
    session: AsyncSession, principal: Principal, content_id: uuid.UUID, data: CommentCreate
) -> CommentRead:
    item = await load_item(session, principal, content_id)
    visibility = CLIENT_VISIBLE if is_client(principal) else data.visibility
    if data.parent_id is not None:
        parent = await session.get(ContentComment, (principal.tenant_id, data.parent_id))
        if (
            parent is None
            or parent.content_item_id != item.id
            or (is_client(principal) and parent.visibility != CLIENT_VISIBLE)
        ):
            raise InvalidFields.one(
                "/parent_id", "No such comment on this item to reply to.", "comment-not-found"
            )
        if parent.visibility == "internal" and visibility == CLIENT_VISIBLE:
            raise errors.InvalidComment(
                "A reply to an internal comment stays internal: the client never saw it.",
                field="visibility",
            )
    anchor = await _check_anchor(session, principal, item, data)
    mentions = await _mentions(session, principal, item, data.body)
    comment = ContentComment(
        tenant_id=principal.tenant_id,
        content_item_id=item.id,
        parent_id=data.parent_id,
        revision_id=data.anchor.revision_id if data.anchor else None,
        anchor=anchor,
        visibility=visibility,
        body=data.body,
        author_type="user",
        author_id=principal.user_id,
        author_name=await _name(session, principal.user_id),
        mentions=mentions,
    )
    session.add(comment)
    if mentions:
        emit(
            session,
            item,
            "comment.mentioned",
            principal.request_id,
            comment_id=str(comment.id),
            user_ids=[str(u) for u in mentions],
            author_id=str(principal.user_id),
        )
    await session.flush()
    return comment_read(comment)


# ---------------------------------------------------------------------------------------------
# The portal inbox


# Soonest due first; items without a deadline come last.
INBOX_ORDER = Keyset(
    "inbox",
    (
        SortKey(
            col(ContentItem.next_deadline_at),
            lambda r: r[0].next_deadline_at,
            datetime.fromisoformat,
            nullable=True,
        ),
        SortKey(col(ContentItem.id), lambda r: r[0].id, uuid.UUID),
    ),
)


async def inbox(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> Page[InboxItem]:
    """What awaits this client contact's decision, soonest due first."""
    if not is_client(principal):
        raise PermissionDenied("The inbox is for client contacts; staff use /v1/content.")
    key = user_key(principal.user_id)
    query = (
        select(ContentItem, Brand.name)
        .join(
            Brand,
            (col(Brand.tenant_id) == col(ContentItem.tenant_id))
            & (col(Brand.id) == col(ContentItem.brand_id)),
        )
        .where(
            ContentItem.tenant_id == principal.tenant_id,
            Brand.client_id == principal.client_id,
            ContentItem.status == "awaiting_client",
            text(
                "content_items.step_approvers -> (content_items.step_index::text) ? :key "
                "AND NOT (content_items.step_approvers -> "
                "(content_items.step_index::text || '\\:decided')) ? :key"
            ).bindparams(key=key),
        )
    )
    query = INBOX_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = INBOX_ORDER.page((await session.execute(query)).all(), limit=limit)
    counts = await _client_comment_counts(session, principal.tenant_id, [r[0].id for r in rows])
    out = []
    for item, brand_name in rows:
        assert item.step_index is not None and item.client_revision_id is not None
        out.append(
            InboxItem(
                id=item.id,
                brand_id=item.brand_id,
                brand_name=brand_name,
                title=item.title,
                planned_at=item.planned_at,
                revision_id=item.client_revision_id,
                step_name=item.workflow["steps"][item.step_index]["name"],
                due_at=step_due_at(item),
                comment_count=counts.get(item.id, 0),
            )
        )
    return Page(items=out, next_cursor=next_page)


async def _client_comment_counts(
    session: AsyncSession, tenant_id: uuid.UUID, item_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not item_ids:
        return {}
    rows = (
        await session.execute(
            select(ContentComment.content_item_id, func.count())
            .where(
                ContentComment.tenant_id == tenant_id,
                col(ContentComment.content_item_id).in_(item_ids),
                ContentComment.visibility == CLIENT_VISIBLE,
            )
            .group_by(col(ContentComment.content_item_id))
        )
    ).all()
    return {item_id: int(n) for item_id, n in rows}


# ---------------------------------------------------------------------------------------------
# Approval links


def link_token(signer: TokenSigner, link: ApprovalLink) -> str:
    ttl = max(int((link.expires_at - utcnow()).total_seconds()), 1)
    return signer.sign(
        {"sub": str(link.id), "tid": str(link.tenant_id)}, audience=LINK_AUDIENCE, ttl_seconds=ttl
    )


@dataclass(frozen=True)
class SignedLink:
    """What an approval link's signature vouches for; the caller enters its tenant before
    viewing or deciding."""

    tenant_id: uuid.UUID
    link_id: uuid.UUID


def read_link(signer: TokenSigner, token: str) -> SignedLink:
    if len(token) > 2048:
        raise errors.LinkInvalid("This link was altered or is not one of ours.")
    try:
        claims = signer.verify_signature(token, audience=LINK_AUDIENCE)
        return SignedLink(uuid.UUID(str(claims["tid"])), uuid.UUID(str(claims["sub"])))
    except (InvalidToken, KeyError, ValueError) as exc:
        raise errors.LinkInvalid("This link was altered or is not one of ours.") from exc


async def _open_link(
    session: AsyncSession, signed: SignedLink, *, lock: bool
) -> tuple[ApprovalLink, ContentItem]:
    """The link and its item, or the precise reason the link is refused."""
    tenant_id, link_id = signed.tenant_id, signed.link_id
    query = select(ApprovalLink).where(
        ApprovalLink.tenant_id == tenant_id, ApprovalLink.id == link_id
    )
    item_query = select(ContentItem).where(ContentItem.tenant_id == tenant_id)
    if lock:
        item_query = item_query.with_for_update().execution_options(populate_existing=True)
    link = (await session.scalars(query)).first()
    if link is None:
        raise errors.LinkInvalid("This link was altered or is not one of ours.")
    item = (await session.scalars(item_query.where(ContentItem.id == link.content_item_id))).one()
    if lock:
        await session.refresh(link, with_for_update=True)
    if link.used_at is not None:
        raise errors.LinkUsed(
            "You already answered with this link; each link records one decision.",
            used_at=link.used_at.isoformat(),
        )
    if link.revision_id != item.current_revision_id or link.round != item.round:
        raise errors.LinkSuperseded(
            "The post was changed or withdrawn since this e-mail was sent; you will get a new "
            "link if your approval is needed again."
        )
    if item.status == "expired":
        raise errors.StepTimedOut(
            "The time to decide on this post ran out; the agency will send a new link if your "
            "approval is needed again."
        )
    if link.step_index != item.step_index or item.status != "awaiting_client":
        raise errors.StepClosed("This approval step was already decided by someone else.")
    if link.expires_at <= utcnow():
        raise errors.LinkExpired(
            "This link has expired; ask the agency to send it again.",
            expired_at=link.expires_at.isoformat(),
        )
    return link, item


LINK_DECISIONS: list[DecisionField] = ["approve", "request_changes", "reject"]


def _link_media(media: dict[str, Any]) -> LinkMedia:
    return LinkMedia(
        url=str(media.get("url", "")),
        type=str(media.get("type", "")),
        alt_text=str(media.get("alt_text") or ""),
    )


def _link_comment(comment: CommentRead) -> LinkComment:
    """The comment without ids: not its own, its author's, its thread's, and a mention of a
    colleague (`@[Name](user-id)` in the body) reads `@Name`."""
    anchor = comment.anchor
    return LinkComment(
        author_name=comment.author_name,
        body=MENTION.sub(r"@\1", comment.body),
        anchor=None
        if anchor is None
        else LinkAnchor(
            platform=anchor.get("platform"),
            start=int(anchor["start"]),
            end=int(anchor["end"]),
            quote=anchor.get("quote"),
        ),
        created_at=comment.created_at,
    )


async def view_link(session: AsyncSession, signed: SignedLink) -> LinkView:
    link, item = await _open_link(session, signed, lock=False)
    revision = await load_revision(session, item.tenant_id, item.id, link.revision_id)
    brand = await session.get(Brand, (item.tenant_id, item.brand_id))
    assert brand is not None and item.step_index is not None
    comments = await _comments(session, item.tenant_id, item.id, client_only=True)
    return LinkView(
        brand_name=brand.name,
        title=revision.title,
        revision_number=revision.number,
        variants=dict(revision.variants),
        media=[_link_media(m) for m in revision.media],
        planned_at=revision.planned_at,
        step_name=item.workflow["steps"][item.step_index]["name"],
        email=link.email,
        expires_at=link.expires_at,
        decisions=LINK_DECISIONS,
        comments=[_link_comment(c) for c in comments],
    )


async def decide_by_link(
    session: AsyncSession,
    signed: SignedLink,
    data: LinkDecision,
    *,
    link_ttl: timedelta,
    request_id: str | None,
) -> LinkDecisionRead:
    link, item = await _open_link(session, signed, lock=True)
    actor = Actor(
        key=f"email:{link.email}",
        actor_type="link",
        channel="link",
        email=link.email,
        link_id=link.id,
    )
    approver_check(item, actor)
    brand = await session.get(Brand, (item.tenant_id, item.brand_id))
    assert brand is not None
    now = utcnow()
    row = await record_decision(
        session,
        item,
        brand,
        actor,
        Decision(data.decision),
        data.comment,
        timezone=await tenant_timezone(session, item.tenant_id),
        now=now,
        link_ttl=link_ttl,
        request_id=request_id,
    )
    link.used_at = now
    await _decision_comment(session, item, row, author_name=link.email)
    await session.flush()
    return LinkDecisionRead(
        decision=row.decision, comment=row.comment, email=link.email, created_at=row.created_at
    )


@dataclass(frozen=True)
class LinkContact:
    """Whom an approver may ask about a link: the person who sent the post for approval, or the
    agency's owner when that person is gone (or the item was submitted by no one)."""

    name: str
    email: str
    sent_it: bool


@dataclass(frozen=True)
class LinkContext:
    """What frames a link's page whatever the link's state (open, used, expired, superseded):
    the client's language, the brand's time zone, whom to contact, and the answer given
    through the link once it was used."""

    locale: str
    timezone: str
    email: str
    expires_at: datetime
    used_at: datetime | None
    answer: LinkDecisionRead | None
    contact: LinkContact | None


async def link_context(session: AsyncSession, signed: SignedLink) -> LinkContext | None:
    """None when the signed link names no link of this tenant: the caller says it is invalid."""
    tenant_id = signed.tenant_id
    link = (
        await session.scalars(
            select(ApprovalLink).where(
                ApprovalLink.tenant_id == tenant_id, ApprovalLink.id == signed.link_id
            )
        )
    ).first()
    if link is None:
        return None
    item = await session.get(ContentItem, (tenant_id, link.content_item_id))
    assert item is not None
    brand = await session.get(Brand, (tenant_id, item.brand_id))
    assert brand is not None
    client = await session.get(Client, (tenant_id, brand.client_id))
    assert client is not None
    answer = None
    if link.used_at is not None:
        # The item's decisions are indexed by item; a link records at most one of them.
        answer = (
            await session.scalars(
                select(ApprovalDecision).where(
                    ApprovalDecision.tenant_id == tenant_id,
                    ApprovalDecision.content_item_id == link.content_item_id,
                    ApprovalDecision.link_id == link.id,
                )
            )
        ).first()
    return LinkContext(
        locale=client.locale,
        timezone=brand.timezone,
        email=link.email,
        expires_at=link.expires_at,
        used_at=link.used_at,
        answer=None
        if answer is None
        else LinkDecisionRead(
            decision=answer.decision,
            comment=answer.comment,
            email=link.email,
            created_at=answer.created_at,
        ),
        contact=await _link_contact(session, tenant_id, item.submitted_by),
    )


async def _link_contact(
    session: AsyncSession, tenant_id: uuid.UUID, sender: uuid.UUID | None
) -> LinkContact | None:
    staff = (
        select(User.name, User.email)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(
            Membership.tenant_id == tenant_id,
            Membership.status == MembershipStatus.active,
            Membership.role != Role.client,
        )
    )
    if sender is not None:
        row = (await session.execute(staff.where(Membership.user_id == sender))).first()
        if row is not None:
            return LinkContact(name=row.name, email=row.email, sent_it=True)
    owner = (
        await session.execute(
            staff.where(Membership.role == Role.owner).order_by(col(Membership.id)).limit(1)
        )
    ).first()
    return None if owner is None else LinkContact(name=owner.name, email=owner.email, sent_it=False)
