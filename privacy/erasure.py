"""A person's erasure: their personal data in this agency replaced by a stable pseudonym.

The pseudonym ("Personne 1a2b3c") is an HMAC of the agency and the person under a server key:
erasing the same person twice gives the same one, and every decision, comment or inbox item
they left names the same anonymous actor, so the audit trail stays consistent. Text they wrote
(comments, decision comments, inbox messages) is removed; the facts (who approved what, when)
stay. A client contact's account (`users` row, global) is anonymized only when they belong to
no other agency; otherwise only this agency's traces go (their membership ends).

The address and the words also travelled: into the audit trail's `changes` (invitations, a
relay's refusal, decisions), a post's reason and its copy of the workflow, the agency's workflow
templates, the outbox's payloads and errors, and what partner webhooks were sent. Each is
rewritten in this agency's rows; what happened, who did it and when stay.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from sqlalchemy import String, cast, delete, distinct, false, func, literal, or_, text, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.models import InboxItem, InboxThread
from infra.clock import utcnow
from infra.db import set_acting_user
from infra.errors import InvalidFields, body_reference
from infra.outbox import Event
from infra.settings import Settings
from partners.models import WebhookDelivery
from privacy.closure import anonymize_user
from privacy.errors import ErasureSubjectNotFound
from privacy.models import Erasure
from privacy.schemas import FIELDS_OF, ErasureCreate
from social.models import SocialAccount
from tenants.errors import PermissionDenied
from tenants.models import (
    AuthSession,
    Invitation,
    Membership,
    MembershipStatus,
    RefreshToken,
    Role,
    User,
)
from tenants.principal import Principal
from tenants.service.common import record_audit
from workflows.models import ApprovalDecision, ApprovalLink, ContentItem, WorkflowTemplate

ERASED_TEXT = "[effacé / erased]"
# Around an address: no character of an address before it, and no more of one after it (a
# full stop may end a sentence).
ADDRESS_BEFORE = r"(?<![a-z0-9._%+-])"
ADDRESS_AFTER = r"(?![a-z0-9_-]|\.[a-z0-9])"


def check_fields(body: ErasureCreate) -> None:
    """Each kind of person is named by its own fields: those, all of them, and no other."""
    wanted = FIELDS_OF[body.subject]
    errors = [
        {"pointer": f"/{name}", "message": f"Required for {body.subject}.", "code": "missing"}
        for name in wanted
        if getattr(body, name) is None
    ] + [
        {
            "pointer": f"/{name}",
            "message": f"Not a field of {body.subject}.",
            "code": "not-allowed",
        }
        for names in FIELDS_OF.values()
        for name in names
        if name not in wanted and getattr(body, name) is not None
    ]
    if errors:
        raise InvalidFields(errors)


def _key(settings: Settings) -> bytes:
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode()
    return hashlib.sha256(b"pseudonym:" + settings.jwt_private_keys.encode()).digest()


def identity_of(body: ErasureCreate) -> str:
    if body.subject == "client_contact":
        return f"user:{body.user_id}"
    if body.subject == "external_approver":
        return f"email:{str(body.email).lower()}"
    return f"author:{body.social_account_id}:{body.author_id}"


def digest(settings: Settings, tenant_id: uuid.UUID, identity: str) -> str:
    return hmac.new(_key(settings), f"{tenant_id}|{identity}".encode(), hashlib.sha256).hexdigest()


def pseudonym_of(person_digest: str) -> str:
    return f"Personne {person_digest[:6]}"


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def erase(
    session: AsyncSession, principal: Principal, settings: Settings, body: ErasureCreate
) -> tuple[Erasure, bool]:
    """Erases the person (again, harmlessly, if asked twice); answers the record and whether
    it is new."""
    if principal.role not in (Role.owner, Role.admin) or principal.kind != "user":
        raise PermissionDenied("Only the agency's owners and admins erase a person.")
    check_fields(body)
    tenant_id = principal.tenant_id
    person = digest(settings, tenant_id, identity_of(body))
    name = pseudonym_of(person)
    anon_email = f"erased-{person[:16]}@invalid"
    scope = "tenant"
    if body.subject == "client_contact":
        assert body.user_id is not None
        with body_reference("/user_id"):
            counts, scope = await _client_contact(
                session, tenant_id, body.user_id, name, anon_email
            )
    elif body.subject == "external_approver":
        counts = await _by_email(session, tenant_id, str(body.email).lower(), name, anon_email)
    else:
        with body_reference("/social_account_id"):
            counts = await _inbox_author(session, tenant_id, body, name, person)
    found = (
        await session.scalars(
            select(Erasure).where(
                col(Erasure.tenant_id) == tenant_id,
                col(Erasure.subject) == body.subject,
                col(Erasure.subject_digest) == person,
            )
        )
    ).first()
    now = utcnow()
    created = found is None
    if found is None:
        found = Erasure(
            tenant_id=tenant_id,
            subject=body.subject,
            subject_digest=person,
            pseudonym=name,
            requested_by=principal.actor_id,
            counts=counts,
            scope=scope,
            updated_at=now,
        )
        session.add(found)
    else:
        found.counts = counts
        found.updated_at = now
    record_audit(
        session,
        tenant_id=tenant_id,
        actor=principal,
        action="person.erased",
        subject_type="erasure",
        subject_id=found.id,
        changes={"subject": body.subject, "pseudonym": name, "counts": counts},
    )
    await session.flush()
    return found, created


async def _client_contact(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    name: str,
    anon_email: str,
) -> tuple[dict[str, int], str]:
    membership = (
        await session.scalars(
            select(Membership).where(
                col(Membership.tenant_id) == tenant_id, col(Membership.user_id) == user_id
            )
        )
    ).first()
    if membership is None or membership.role != Role.client:
        raise ErasureSubjectNotFound(f"No client contact {user_id} in this agency.")
    user = await session.get(User, user_id)
    assert user is not None
    email = user.email.lower()
    counts = await _by_email(session, tenant_id, email, name, anon_email, user_id=user_id)
    sessions = select(AuthSession.id).where(
        col(AuthSession.tenant_id) == tenant_id, col(AuthSession.user_id) == user_id
    )
    await session.execute(
        delete(RefreshToken).where(
            col(RefreshToken.tenant_id) == tenant_id, col(RefreshToken.session_id).in_(sessions)
        )
    )
    await session.execute(
        update(AuthSession)
        .where(col(AuthSession.tenant_id) == tenant_id, col(AuthSession.user_id) == user_id)
        .values(revoked_at=utcnow(), revoked_reason="erased")
    )
    membership.status = MembershipStatus.disabled
    membership.version += 1
    membership.updated_at = utcnow()
    await set_acting_user(session, user_id)
    elsewhere = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(col(Membership.user_id) == user_id, col(Membership.tenant_id) != tenant_id)
    )
    await session.execute(text("SELECT set_config('app.user_id', '', true)"))
    if elsewhere:
        return counts, "tenant"
    await anonymize_user(session, user_id, name=name)
    return counts, "global"


async def _by_email(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    email: str,
    name: str,
    anon_email: str,
    *,
    user_id: uuid.UUID | None = None,
) -> dict[str, int]:
    """What an address left in this agency: approval links, decisions and comments made
    through them, invitations, approver keys, e-mails in the outbox, and the audit trail's
    mentions of the address and of the person's words."""
    old_key, new_key = f"email:{email}", f"email:{anon_email}"
    counts = {
        "approval_links": _count(
            await session.execute(
                update(ApprovalLink)
                .where(
                    col(ApprovalLink.tenant_id) == tenant_id,
                    func.lower(col(ApprovalLink.email)) == email,
                )
                .values(email=anon_email)
            )
        ),
        "invitations": _count(
            await session.execute(
                delete(Invitation).where(
                    col(Invitation.tenant_id) == tenant_id,
                    func.lower(col(Invitation.email)) == email,
                )
            )
        ),
    }
    # The audit trail is append-only for the application: migration 0019's function, before
    # 0017's below, since it finds the person's words in their decisions, which that one erases.
    counts["audit_events"] = int(
        await session.scalar(
            text("SELECT erase_person_audit(:tenant, :user, :email, :new_email, :text)"),
            {
                "tenant": tenant_id,
                "user": user_id,
                "email": email,
                "new_email": anon_email,
                "text": ERASED_TEXT,
            },
        )
        or 0
    )
    # A decision's words also became the post's reason, and the `reason` of its outbox events
    # and partner webhooks: replaced where they are the whole value, on the posts decided.
    said = (
        select(col(ApprovalDecision.content_item_id), col(ApprovalDecision.comment))
        .where(
            col(ApprovalDecision.tenant_id) == tenant_id,
            col(ApprovalDecision.comment).is_not(None),
            col(ApprovalDecision.comment) != ERASED_TEXT,
            or_(
                col(ApprovalDecision.user_id) == user_id if user_id else false(),
                func.lower(col(ApprovalDecision.email)) == email,
                col(ApprovalDecision.approver) == old_key,
            ),
        )
        .subquery()
    )
    await session.execute(
        update(ContentItem)
        .where(
            col(ContentItem.tenant_id) == tenant_id,
            col(ContentItem.id) == said.c.content_item_id,
            col(ContentItem.status_reason) == said.c.comment,
        )
        .values(status_reason=ERASED_TEXT)
    )
    by_item = (
        select(
            said.c.content_item_id,
            func.array_agg(distinct(said.c.comment)).label("texts"),
        )
        .group_by(said.c.content_item_id)
        .subquery()
    )
    await session.execute(
        update(Event)
        .where(
            col(Event.tenant_id) == tenant_id,
            col(Event.aggregate_id) == by_item.c.content_item_id,
        )
        .values(payload=_without_words(col(Event.payload), by_item.c.texts))
    )
    await session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.tenant_id) == tenant_id,
            col(WebhookDelivery.payload)["data"]["content_id"].astext
            == cast(by_item.c.content_item_id, String),
        )
        .values(payload=_without_words(col(WebhookDelivery.payload), by_item.c.texts))
    )
    # Decisions and comments are append-only for the application: migration 0017's function.
    traces = (
        await session.execute(
            text(
                "SELECT decisions, comments FROM erase_person_traces(:tenant, :user, :email, "
                ":new_email, :name, :text)"
            ),
            {
                "tenant": tenant_id,
                "user": user_id,
                "email": email,
                "new_email": anon_email,
                "name": name,
                "text": ERASED_TEXT,
            },
        )
    ).one()
    counts["decisions"], counts["comments"] = int(traces.decisions), int(traces.comments)
    # Approver keys and queued e-mails hold the address inside JSON: replaced as text.
    await session.execute(
        update(ContentItem)
        .where(
            col(ContentItem.tenant_id) == tenant_id,
            cast(col(ContentItem.step_approvers), String).contains(old_key),
        )
        .values(
            step_approvers=cast(
                func.replace(cast(col(ContentItem.step_approvers), String), old_key, new_key),
                JSONB,
            )
        )
    )
    # Where the address is configured as an approver: the post's copy of its workflow, and
    # the agency's templates, which would otherwise ask the erased person again.
    await session.execute(
        update(ContentItem)
        .where(col(ContentItem.tenant_id) == tenant_id, _mentions(col(ContentItem.workflow), email))
        .values(workflow=_replaced(col(ContentItem.workflow), email, anon_email))
    )
    counts["workflow_templates"] = _count(
        await session.execute(
            update(WorkflowTemplate)
            .where(
                col(WorkflowTemplate.tenant_id) == tenant_id,
                _mentions(col(WorkflowTemplate.steps), email),
            )
            .values(
                steps=_replaced(col(WorkflowTemplate.steps), email, anon_email),
                version=col(WorkflowTemplate.version) + 1,
                updated_at=utcnow(),
            )
        )
    )
    # What partner software was sent stays on its deliveries, for replays.
    await session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.tenant_id) == tenant_id,
            _mentions(col(WebhookDelivery.payload), email),
        )
        .values(payload=_replaced(col(WebhookDelivery.payload), email, anon_email))
    )
    # A refused e-mail's event also keeps the relay's answer, which names the address.
    counts["outbox_events"] = _count(
        await session.execute(
            update(Event)
            .where(
                col(Event.tenant_id) == tenant_id,
                _mentions(col(Event.payload), email) | _mentions(col(Event.last_error), email),
            )
            .values(
                payload=_replaced(col(Event.payload), email, anon_email),
                last_error=func.regexp_replace(
                    col(Event.last_error), _address(email), anon_email, "gi"
                ),
            )
        )
    )
    return counts


def _mentions(column: Any, email: str) -> Any:
    return cast(column, String).op("~*", is_comparison=True)(_address(email))


def _replaced(column: Any, email: str, anon_email: str) -> Any:
    return cast(func.regexp_replace(cast(column, String), _address(email), anon_email, "gi"), JSONB)


def _without_words(column: Any, texts: Any) -> Any:
    """The document with each string that is one of `texts` replaced (migration 0019)."""
    nothing = literal(None, String)
    return func.erased_jsonb(column, nothing, nothing, texts, ERASED_TEXT, type_=JSONB)


def _address(email: str) -> Any:
    """A regular expression for the address as a whole: erasing ann@x.com leaves joann@x.com
    and ann@x.com.au alone (the same expression as migration 0019's)."""
    escaped = func.regexp_replace(literal(email), r"([.*+?^${}()|\[\]\\])", r"\\\1", "g")
    return func.concat(ADDRESS_BEFORE, escaped, ADDRESS_AFTER)


async def _inbox_author(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    body: ErasureCreate,
    name: str,
    person: str,
) -> dict[str, int]:
    account = await session.scalar(
        select(SocialAccount.id).where(
            col(SocialAccount.tenant_id) == tenant_id,
            col(SocialAccount.id) == body.social_account_id,
        )
    )
    if account is None:
        raise ErasureSubjectNotFound(f"No social account {body.social_account_id} here.")
    anon_id = f"erased:{person[:16]}"
    items = _count(
        await session.execute(
            update(InboxItem)
            .where(
                col(InboxItem.tenant_id) == tenant_id,
                col(InboxItem.social_account_id) == body.social_account_id,
                col(InboxItem.author_id).in_([body.author_id, anon_id]),
            )
            .values(
                author_id=anon_id, author_handle=None, author_name=name, text=ERASED_TEXT, media=[]
            )
        )
    )
    threads = _count(
        await session.execute(
            update(InboxThread)
            .where(
                col(InboxThread.tenant_id) == tenant_id,
                col(InboxThread.social_account_id) == body.social_account_id,
                col(InboxThread.participant_id) == body.author_id,
            )
            .values(participant_id=anon_id, participant_name=name)
        )
    )
    # Partners were sent each item's handle and words, and the outbox keeps what it sent.
    mine = (
        col(InboxItem.tenant_id) == tenant_id,
        col(InboxItem.social_account_id) == body.social_account_id,
        col(InboxItem.author_id) == anon_id,
    )
    blanked = literal({"author_handle": None, "text": ERASED_TEXT}, JSONB)
    events = _count(
        await session.execute(
            update(Event)
            .where(
                col(Event.tenant_id) == tenant_id,
                col(Event.aggregate_type) == "inbox_item",
                col(Event.aggregate_id).in_(select(col(InboxItem.id)).where(*mine)),
            )
            .values(payload=col(Event.payload).op("||")(blanked))
        )
    )
    await session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.tenant_id) == tenant_id,
            col(WebhookDelivery.payload)["data"]["item_id"].astext.in_(
                select(cast(col(InboxItem.id), String)).where(*mine)
            ),
        )
        .values(
            payload=func.jsonb_set(
                col(WebhookDelivery.payload),
                literal(["data"], ARRAY(String)),
                col(WebhookDelivery.payload)["data"].op("||")(blanked),
            )
        )
    )
    return {"inbox_items": items, "inbox_threads": threads, "outbox_events": events}
