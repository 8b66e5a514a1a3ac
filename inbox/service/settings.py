"""The inbox's settings: saved replies, rules and response policies.

Managers (and admins, owners, partner apps) write them; the team reads them. What a member
reads follows the brands they can read: the agency-wide saved replies and those of the brands
they are assigned to, the rules of those brands, the response policies of those brands'
clients. Another agency's object, or one the caller cannot read, does not exist for them (404).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox import errors, templates
from inbox import sla as sla_clock
from inbox.models import InboxRule, ResponsePolicyRow, SavedReply
from inbox.rules import RuleAction, RuleCondition
from inbox.schemas import (
    InboxRuleCreate,
    InboxRuleRead,
    InboxRuleUpdate,
    RenderedReply,
    RenderRequest,
    ResponsePolicyBody,
    ResponsePolicyRead,
    SavedReplyCreate,
    SavedReplyRead,
    SavedReplyUpdate,
)
from inbox.service import items
from infra.errors import InvalidFields, PreconditionFailed, body_reference
from infra.pagination import Keyset, Page, SortKey, id_key, parse_int
from tenants import errors as directory_errors
from tenants.models import Brand, Client, Membership, MembershipStatus, Role, User
from tenants.policy import Resource, Scope, Verb, scope_of
from tenants.principal import Principal
from tenants.service.common import (
    check_version,
    load_readable,
    record_audit,
    record_update,
    require_scope,
)
from tenants.service.directory import brand_visibility, client_visibility, today_for

SAVED_REPLY_VARIABLES = frozenset(templates.VARIABLES)
"""What a saved reply may say in braces; render_saved_reply fills each of them."""


# --- who reaches what ---------------------------------------------------------------------------


def _settings_scope(principal: Principal, verb: Verb) -> Scope:
    """Refuses a role that may not `verb` the inbox's settings at all (403)."""
    return require_scope(principal, Resource.inbox_settings, verb)


def _readable_brand_ids(principal: Principal) -> Select[Any]:
    """The brands whose settings the principal reaches: those they can read in the directory
    (every brand for managers, the brands they are currently assigned to for members)."""
    scope = scope_of(principal.role, Resource.brand, Verb.read)
    return select(Brand.id).where(
        Brand.tenant_id == principal.tenant_id,
        brand_visibility(principal, scope, today_for(principal)),
    )


async def _brand_named_in_body(
    session: AsyncSession, principal: Principal, brand_id: uuid.UUID
) -> Brand:
    """The brand a body names: one of the agency's that the caller can read, else a 422
    naming /brand_id (a 404 would say the URL is wrong)."""
    with body_reference("/brand_id"):
        brand = (
            await session.scalars(
                select(Brand).where(
                    Brand.tenant_id == principal.tenant_id,
                    Brand.id == brand_id,
                    col(Brand.id).in_(_readable_brand_ids(principal)),
                )
            )
        ).first()
        if brand is None:
            raise directory_errors.BrandNotFound(f"No brand {brand_id} that you can see.")
    return brand


# --- saved replies ------------------------------------------------------------------------------


def _variables(body: str) -> list[str]:
    return sorted(templates.variables_in(body))


def saved_reply_read(reply: SavedReply) -> SavedReplyRead:
    return SavedReplyRead(
        id=reply.id,
        brand_id=reply.brand_id,
        name=reply.name,
        language=reply.language,
        body=reply.body,
        variables=_variables(reply.body),
        version=reply.version,
        created_at=reply.created_at,
        updated_at=reply.updated_at,
    )


def _check_template(body: str) -> None:
    """A saved reply may only use the variables rendering fills: a typo ({prenom}) must be
    caught when it is saved, not when an agent is answering a customer."""
    try:
        used = templates.variables_in(body)
    except ValueError as exc:
        raise InvalidFields.one("/body", str(exc), "invalid-template") from exc
    unknown = sorted(used - SAVED_REPLY_VARIABLES)
    if unknown:
        known = ", ".join("{" + v + "}" for v in sorted(SAVED_REPLY_VARIABLES))
        named = ", ".join("{" + v + "}" for v in unknown)
        raise InvalidFields.one(
            "/body", f"Unknown variables: {named}. Use {known}.", "unknown-variable"
        )


def readable_saved_replies(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    _settings_scope(principal, verb)
    query = select(SavedReply).where(SavedReply.tenant_id == principal.tenant_id)
    if scope_of(principal.role, Resource.brand, Verb.read) is not Scope.all:
        query = query.where(
            col(SavedReply.brand_id).is_(None)
            | col(SavedReply.brand_id).in_(_readable_brand_ids(principal))
        )
    return query


async def _load_saved_reply(
    session: AsyncSession,
    principal: Principal,
    reply_id: uuid.UUID,
    verb: Verb = Verb.read,
    *,
    lock: bool = False,
) -> SavedReply:
    reply: SavedReply = await load_readable(
        session,
        readable_saved_replies(principal, verb).where(col(SavedReply.id) == reply_id),
        lock=lock,
        missing=errors.SavedReplyNotFound(),
    )
    return reply


SAVED_REPLY_ORDER = Keyset(
    "saved-replies",
    (SortKey(col(SavedReply.name), lambda r: r.name), id_key(col(SavedReply.id))),
)


async def list_saved_replies(
    session: AsyncSession,
    principal: Principal,
    *,
    brand_id: uuid.UUID | None,
    language: str | None,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> Page[SavedReplyRead]:
    """By name. `brand_id` gives the replies usable for that brand: its own and the agency's."""
    query = readable_saved_replies(principal)
    if brand_id is not None:
        query = query.where(
            col(SavedReply.brand_id).is_(None) | (col(SavedReply.brand_id) == brand_id)
        )
    if language is not None:
        query = query.where(col(SavedReply.language) == language)
    if q:
        needle = q.lower()
        query = query.where(
            or_(
                func.lower(SavedReply.name).contains(needle, autoescape=True),
                func.lower(SavedReply.body).contains(needle, autoescape=True),
            )
        )
    query = SAVED_REPLY_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = SAVED_REPLY_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[saved_reply_read(r) for r in rows], next_cursor=next_page)


async def create_saved_reply(
    session: AsyncSession, principal: Principal, data: SavedReplyCreate
) -> SavedReplyRead:
    _settings_scope(principal, Verb.create)
    _check_template(data.body)
    if data.brand_id is not None:
        await _brand_named_in_body(session, principal, data.brand_id)
    reply = SavedReply(
        tenant_id=principal.tenant_id,
        brand_id=data.brand_id,
        name=data.name,
        language=data.language,
        body=data.body,
        created_by=principal.user_id,
    )
    session.add(reply)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="saved_reply.created",
        subject_type="saved_reply",
        subject_id=reply.id,
        changes=data.model_dump(mode="json"),
    )
    await session.flush()
    return saved_reply_read(reply)


async def get_saved_reply(
    session: AsyncSession, principal: Principal, reply_id: uuid.UUID
) -> SavedReplyRead:
    return saved_reply_read(await _load_saved_reply(session, principal, reply_id))


async def update_saved_reply(
    session: AsyncSession,
    principal: Principal,
    reply_id: uuid.UUID,
    data: SavedReplyUpdate,
    *,
    if_match: int | None,
) -> SavedReplyRead:
    reply = await _load_saved_reply(session, principal, reply_id, Verb.update, lock=True)
    check_version(reply.version, if_match)
    changes = data.model_dump(mode="json", exclude_unset=True)
    if data.body is not None:
        _check_template(data.body)
        reply.body = data.body
    if data.name is not None:
        reply.name = data.name
    if data.language is not None:
        reply.language = data.language
    record_update(
        session,
        principal,
        reply,
        action="saved_reply.updated",
        subject_type="saved_reply",
        changes=changes,
    )
    await session.flush()
    return saved_reply_read(reply)


async def delete_saved_reply(
    session: AsyncSession, principal: Principal, reply_id: uuid.UUID, *, if_match: int | None
) -> None:
    reply = await _load_saved_reply(session, principal, reply_id, Verb.update, lock=True)
    check_version(reply.version, if_match)
    await session.execute(
        delete(SavedReply).where(
            col(SavedReply.tenant_id) == principal.tenant_id, col(SavedReply.id) == reply.id
        )
    )
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="saved_reply.deleted",
        subject_type="saved_reply",
        subject_id=reply.id,
        changes={"name": reply.name, "brand_id": str(reply.brand_id) if reply.brand_id else None},
    )


async def render_saved_reply(
    session: AsyncSession, principal: Principal, reply_id: uuid.UUID, data: RenderRequest
) -> RenderedReply:
    """The reply as it would go out on this item, and what the pre-send check says of it."""
    reply = await _load_saved_reply(session, principal, reply_id)
    with body_reference("/item_id"):
        item = await items.load_item(session, principal, data.item_id)
    if reply.brand_id is not None and reply.brand_id != item.brand_id:
        raise InvalidFields.one(
            "/item_id",
            "This saved reply belongs to another brand than the item's; use one of the item's "
            "brand or an agency-wide one.",
            "saved-reply-other-brand",
        )
    brand = await session.get(Brand, (principal.tenant_id, item.brand_id))
    agent = await session.get(User, principal.user_id)
    assert brand is not None  # the item's foreign key holds it
    agent_name = agent.name if agent is not None else ""
    handle = item.author_handle or ""
    values = {
        "first_name": templates.first_name(item.author_name),
        "name": item.author_name or handle,
        "handle": f"@{handle.lstrip('@')}" if handle else "",
        "brand": brand.name,
        "agent_first_name": templates.first_name(agent_name),
        "agent_name": agent_name,
    }
    text = templates.render(reply.body, values)
    # Names are no spelling mistakes: the person answered, the brand, the agent.
    names = " ".join((item.author_name or "", brand.name, agent_name)).split()
    warnings = templates.check_reply(
        text,
        platform=item.platform,
        banned_words=list(brand.guidelines.get("banned_words") or []),
        language=reply.language,
        allowed_words=names,
    )
    return RenderedReply(text=text, warnings=[w.as_dict() for w in warnings])


# --- rules --------------------------------------------------------------------------------------


def rule_read(rule: InboxRule) -> InboxRuleRead:
    return InboxRuleRead(
        id=rule.id,
        brand_id=rule.brand_id,
        name=rule.name,
        position=rule.position,
        enabled=rule.enabled,
        stop_processing=rule.stop_processing,
        condition=RuleCondition.model_validate(rule.condition),
        action=RuleAction.model_validate(rule.action),
        version=rule.version,
        created_at=rule.created_at,
    )


def readable_rules(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    _settings_scope(principal, verb)
    query = select(InboxRule).where(InboxRule.tenant_id == principal.tenant_id)
    if scope_of(principal.role, Resource.brand, Verb.read) is not Scope.all:
        query = query.where(col(InboxRule.brand_id).in_(_readable_brand_ids(principal)))
    return query


async def _load_rule(
    session: AsyncSession,
    principal: Principal,
    rule_id: uuid.UUID,
    verb: Verb = Verb.read,
    *,
    lock: bool = False,
) -> InboxRule:
    rule: InboxRule = await load_readable(
        session,
        readable_rules(principal, verb).where(col(InboxRule.id) == rule_id),
        lock=lock,
        missing=errors.RuleNotFound(),
    )
    return rule


async def _check_people(session: AsyncSession, principal: Principal, action: RuleAction) -> None:
    """Whoever a rule assigns or notifies must be a person of the agency's staff who can still
    sign in: an item assigned to a stranger, or to a client contact, would be lost."""
    named = [action.assign_to] if action.assign_to is not None else []
    named += list(action.notify)
    if not named:
        return
    found = set(
        (
            await session.scalars(
                select(Membership.user_id).where(
                    Membership.tenant_id == principal.tenant_id,
                    col(Membership.user_id).in_(named),
                    Membership.role != Role.client,
                    Membership.status != MembershipStatus.disabled,
                )
            )
        ).all()
    )
    problems = []
    if action.assign_to is not None and action.assign_to not in found:
        problems.append(("/action/assign_to", action.assign_to))
    problems += [(f"/action/notify/{i}", m) for i, m in enumerate(action.notify) if m not in found]
    if problems:
        raise InvalidFields(
            [
                {
                    "pointer": pointer,
                    "message": f"No active staff member with user id {value} in this agency.",
                    "code": "unknown-reference",
                }
                for pointer, value in problems
            ]
        )


RULE_ORDER = Keyset(
    "inbox-rules",
    (
        SortKey(col(InboxRule.brand_id), lambda r: r.brand_id, uuid.UUID),
        SortKey(col(InboxRule.position), lambda r: r.position, parse_int),
        id_key(col(InboxRule.id)),
    ),
)


async def list_rules(
    session: AsyncSession,
    principal: Principal,
    *,
    brand_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[InboxRuleRead]:
    """By brand, then in the order they run (position, then the older first)."""
    query = readable_rules(principal)
    if brand_id is not None:
        query = query.where(col(InboxRule.brand_id) == brand_id)
    query = RULE_ORDER.apply(query, cursor=cursor, limit=limit)
    rows, next_page = RULE_ORDER.page((await session.scalars(query)).all(), limit=limit)
    return Page(items=[rule_read(r) for r in rows], next_cursor=next_page)


async def create_rule(
    session: AsyncSession, principal: Principal, data: InboxRuleCreate
) -> InboxRuleRead:
    _settings_scope(principal, Verb.create)
    brand = await _brand_named_in_body(session, principal, data.brand_id)
    await _check_people(session, principal, data.action)
    position = data.position
    if position is None:
        last = await session.scalar(
            select(func.max(InboxRule.position)).where(
                InboxRule.tenant_id == principal.tenant_id, InboxRule.brand_id == brand.id
            )
        )
        position = 0 if last is None else last + 1
    rule = InboxRule(
        tenant_id=principal.tenant_id,
        brand_id=brand.id,
        name=data.name,
        position=position,
        enabled=data.enabled,
        stop_processing=data.stop_processing,
        condition=data.condition.model_dump(mode="json"),
        action=data.action.model_dump(mode="json"),
    )
    session.add(rule)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="inbox_rule.created",
        subject_type="inbox_rule",
        subject_id=rule.id,
        changes=data.model_dump(mode="json"),
    )
    await session.flush()
    return rule_read(rule)


async def get_rule(
    session: AsyncSession, principal: Principal, rule_id: uuid.UUID
) -> InboxRuleRead:
    return rule_read(await _load_rule(session, principal, rule_id))


async def update_rule(
    session: AsyncSession,
    principal: Principal,
    rule_id: uuid.UUID,
    data: InboxRuleUpdate,
    *,
    if_match: int | None,
) -> InboxRuleRead:
    rule = await _load_rule(session, principal, rule_id, Verb.update, lock=True)
    check_version(rule.version, if_match)
    if data.action is not None:
        await _check_people(session, principal, data.action)
        rule.action = data.action.model_dump(mode="json")
    if data.condition is not None:
        rule.condition = data.condition.model_dump(mode="json")
    if data.name is not None:
        rule.name = data.name
    if data.position is not None:
        rule.position = data.position
    if data.enabled is not None:
        rule.enabled = data.enabled
    if data.stop_processing is not None:
        rule.stop_processing = data.stop_processing
    record_update(
        session,
        principal,
        rule,
        action="inbox_rule.updated",
        subject_type="inbox_rule",
        changes=data.model_dump(mode="json", exclude_unset=True),
    )
    await session.flush()
    return rule_read(rule)


async def delete_rule(
    session: AsyncSession, principal: Principal, rule_id: uuid.UUID, *, if_match: int | None
) -> None:
    rule = await _load_rule(session, principal, rule_id, Verb.update, lock=True)
    check_version(rule.version, if_match)
    await session.execute(
        delete(InboxRule).where(
            col(InboxRule.tenant_id) == principal.tenant_id, col(InboxRule.id) == rule.id
        )
    )
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="inbox_rule.deleted",
        subject_type="inbox_rule",
        subject_id=rule.id,
        changes={"name": rule.name, "brand_id": str(rule.brand_id)},
    )


# --- response policies --------------------------------------------------------------------------

# The API writes a day's end of business as 23:59 (a clock has no 24:00); the clock stores the
# end of the day as 24:00, so that a day open until midnight counts its last minute.
_END_OF_DAY_API, _END_OF_DAY_CLOCK = "23:59", "24:00"

# The clock's ValueError messages name what is wrong in words: which field of the body they are.
_POINTERS = (
    ("holidays_subdivision", "/holidays_subdivision"),
    ("holidays subdivision", "/holidays_subdivision"),
    ("holidays_country", "/holidays_country"),
    ("holidays country", "/holidays_country"),
    ("time zone", "/timezone"),
    ("first_response_minutes", "/first_response_minutes"),
    ("next_response_minutes", "/next_response_minutes"),
)


def _policy_pointer(message: str) -> str:
    for words, pointer in _POINTERS:
        if words in message:
            return pointer
    if message.startswith("hours on "):
        day = message.removeprefix("hours on ").split(":", 1)[0]
        return f"/hours/{day}"
    return "/hours" if "hours" in message else ""


def _clock_json(data: ResponsePolicyBody) -> dict[str, Any]:
    stored: dict[str, Any] = {
        "first_response_minutes": data.first_response_minutes,
        "next_response_minutes": data.next_response_minutes,
        "timezone": data.timezone,
        "holidays_country": data.holidays_country,
        # A subdivision without a country means nothing: clearing the country clears it.
        "holidays_subdivision": data.holidays_subdivision if data.holidays_country else None,
        "count_nights": data.count_nights,
        "count_weekends": data.count_weekends,
    }
    if data.hours is not None:
        stored["hours"] = {
            day: [
                [span.start, _END_OF_DAY_CLOCK if span.end == _END_OF_DAY_API else span.end]
                for span in spans
            ]
            for day, spans in data.hours.items()
        }
    return stored


def _valid_policy(data: ResponsePolicyBody) -> sla_clock.ResponsePolicy:
    try:
        return sla_clock.ResponsePolicy.from_json(_clock_json(data))
    except ValueError as exc:
        raise InvalidFields.one(
            _policy_pointer(str(exc)), str(exc), "invalid-response-policy"
        ) from exc


def policy_read(row: ResponsePolicyRow) -> ResponsePolicyRead:
    stored = dict(row.policy)
    hours = {
        day: [
            {"start": start, "end": _END_OF_DAY_API if end == _END_OF_DAY_CLOCK else end}
            for start, end in spans
        ]
        for day, spans in (stored.get("hours") or {}).items()
    }
    return ResponsePolicyRead.model_validate(
        {
            "client_id": row.client_id,
            "first_response_minutes": stored["first_response_minutes"],
            "next_response_minutes": stored["next_response_minutes"],
            "timezone": stored["timezone"],
            "hours": hours,
            "holidays_country": stored.get("holidays_country"),
            "holidays_subdivision": stored.get("holidays_subdivision"),
            "count_nights": stored.get("count_nights", False),
            "count_weekends": stored.get("count_weekends", False),
            "version": row.version,
            "updated_at": row.updated_at,
        }
    )


async def _client_of_policy(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, verb: Verb
) -> Client:
    """The client in the path: one of the agency's that the caller can read (members: the
    clients of the brands they are assigned to), and may `verb` the settings of."""
    _settings_scope(principal, verb)
    scope = scope_of(principal.role, Resource.client, Verb.read)
    query = select(Client).where(
        Client.tenant_id == principal.tenant_id,
        Client.id == client_id,
        client_visibility(principal, scope, today_for(principal)),
    )
    if verb is not Verb.read:
        # Two first PUTs at once: the second waits, then replaces what the first made.
        query = query.with_for_update(key_share=True)
    client: Client = await load_readable(session, query, missing=directory_errors.ClientNotFound())
    return client


async def _policy_row(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, *, lock: bool = False
) -> ResponsePolicyRow | None:
    query = select(ResponsePolicyRow).where(
        ResponsePolicyRow.tenant_id == principal.tenant_id,
        ResponsePolicyRow.client_id == client_id,
    )
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def get_response_policy(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> ResponsePolicyRead:
    client = await _client_of_policy(session, principal, client_id, Verb.read)
    row = await _policy_row(session, principal, client.id)
    if row is None:
        raise errors.ResponsePolicyNotFound(
            "No response targets are set for this client: PUT one to measure response times."
        )
    return policy_read(row)


async def put_response_policy(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID,
    data: ResponsePolicyBody,
    *,
    if_match: int | None,
) -> tuple[ResponsePolicyRead, bool]:
    """Sets the client's policy, or replaces it; answers it and whether it is new. Items that
    arrive from now on are measured with it; those already received keep their deadline."""
    client = await _client_of_policy(session, principal, client_id, Verb.update)
    policy = _valid_policy(data)
    row = await _policy_row(session, principal, client.id, lock=True)
    changes = data.model_dump(mode="json")
    if row is None:
        if if_match is not None:
            raise PreconditionFailed(
                "This client has no response policy yet: leave If-Match out to create one."
            )
        row = ResponsePolicyRow(
            tenant_id=principal.tenant_id, client_id=client.id, policy=policy.to_json()
        )
        session.add(row)
        record_audit(
            session,
            tenant_id=principal.tenant_id,
            actor=principal,
            action="response_policy.created",
            subject_type="response_policy",
            subject_id=row.id,
            changes=changes,
        )
        await session.flush()
        return policy_read(row), True
    check_version(row.version, if_match)
    row.policy = policy.to_json()
    record_update(
        session,
        principal,
        row,
        action="response_policy.updated",
        subject_type="response_policy",
        changes=changes,
    )
    await session.flush()
    return policy_read(row), False


async def delete_response_policy(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, *, if_match: int | None
) -> None:
    """The client's items are no longer measured against targets from now on."""
    client = await _client_of_policy(session, principal, client_id, Verb.update)
    row = await _policy_row(session, principal, client.id, lock=True)
    if row is None:
        raise errors.ResponsePolicyNotFound("This client has no response policy to remove.")
    check_version(row.version, if_match)
    await session.execute(
        delete(ResponsePolicyRow).where(
            col(ResponsePolicyRow.tenant_id) == principal.tenant_id,
            col(ResponsePolicyRow.id) == row.id,
        )
    )
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="response_policy.deleted",
        subject_type="response_policy",
        subject_id=row.id,
        changes={"client_id": str(client.id)},
    )
