"""The demo agency's inbox (idempotent): what an agency sets up before its community managers
answer, so `make run` shows a working inbox.

- each demo client gets a response policy (first answer within 2 business hours, next within
  4, Montréal office hours and Québec's holidays);
- saved replies in French and English for the agency, and one of the bakery's own;
- on every demo brand a rule putting negative items first (high priority, a label), and on
  Pains du Plateau a watch list ("arnaque", "boycott", ...) with a rule assigning any item
  that uses one of its words to the brand's lead.

The items themselves come from the sandbox: the demo's sandbox accounts are read by the
worker's sweep like any account (`inbox.jobs.sweep_inbox` queues a poll for each account due),
and the sandbox answers each poll with its steady trickle of comments, mentions and messages.
Rows have fixed ids, so loading the demo again adds nothing and keeps what was edited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from inbox.models import InboxRule, ResponsePolicyRow, SavedReply
from inbox.rules import RuleAction, RuleCondition
from inbox.sla import ResponsePolicy
from infra.clock import utcnow
from infra.db import Database
from infra.settings import Settings
from tenants.demo import DEMO_BRANDS, DEMO_CLIENTS, DEMO_SLUG
from tenants.models import Brand, Tenant

DEMO_NAMESPACE = uuid.UUID("0192f000-0000-7000-8000-0000000e1b0c")

WATCHED_BRAND = 0
"""Pains du Plateau (index in DEMO_BRANDS): the brand with a watch list."""
WATCH_LIST = ("arnaque", "boycott", "intoxication", "scam")
"""Words that, on this brand, mean someone senior should see the item now."""

NEGATIVE_LABEL = "à surveiller"


@dataclass(frozen=True)
class DemoReply:
    key: str
    brand: int | None
    """Index in DEMO_BRANDS, or None for every brand of the agency."""
    name: str
    language: str
    body: str


SAVED_REPLIES = (
    DemoReply(
        "merci",
        None,
        "Merci du message",
        "fr",
        "Bonjour {first_name}, merci de votre message! On vous revient très vite. L'équipe {brand}",
    ),
    DemoReply(
        "thanks",
        None,
        "Thanks for reaching out",
        "en",
        "Hi {first_name}, thanks for reaching out! We'll get back to you shortly. The {brand} team",
    ),
    DemoReply(
        "desole",
        WATCHED_BRAND,
        "Désolés, écrivez-nous en privé",
        "fr",
        "Bonjour {first_name}, nous sommes désolés de votre expérience. Pouvez-vous nous écrire "
        "en message privé avec votre numéro de commande? On va régler ça. {agent_first_name}, "
        "{brand}",
    ),
)


def demo_id(name: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, name)


def demo_policy() -> ResponsePolicy:
    """Two business hours for a first answer, four for the next: Montréal office hours
    (the policy's default week), Québec's holidays, nights and weekends not counted."""
    return ResponsePolicy(
        first_response_minutes=120,
        next_response_minutes=240,
        timezone="America/Montreal",
        holidays_country="CA",
        holidays_subdivision="QC",
    )


def demo_rules(brand_index: int) -> list[tuple[str, str, RuleCondition, RuleAction]]:
    """(key, name, condition, action) of a demo brand's rules, in order."""
    rules = [
        (
            "negative",
            "Négatif : en priorité",
            RuleCondition.model_validate({"sentiments": ["negative"]}),
            RuleAction.model_validate({"priority": "high", "labels": [NEGATIVE_LABEL]}),
        )
    ]
    if brand_index == WATCHED_BRAND:
        rules.append(
            (
                "watch-list",
                "Mot surveillé : au responsable de la marque",
                RuleCondition.model_validate({"keywords": list(WATCH_LIST)}),
                RuleAction.model_validate({"assign_to_lead": True, "labels": ["veille"]}),
            )
        )
    return rules


async def load_inbox_demo(settings: Settings) -> None:
    db = Database.from_settings(settings)
    try:
        async with db.session() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
        if tenant_id is None:
            return
        async with db.tenant_transaction(tenant_id) as session:
            await _policies(session, tenant_id)
            await _saved_replies(session, tenant_id)
            await _watch_list(session, tenant_id)
            await _rules(session, tenant_id)
    finally:
        await db.dispose()


async def _policies(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    for client_id, _name, _locale in DEMO_CLIENTS:
        existing = await session.scalar(
            select(ResponsePolicyRow.id).where(
                ResponsePolicyRow.tenant_id == tenant_id, ResponsePolicyRow.client_id == client_id
            )
        )
        if existing is None:
            session.add(
                ResponsePolicyRow(
                    tenant_id=tenant_id,
                    id=demo_id(f"policy:{client_id}"),
                    client_id=client_id,
                    policy=demo_policy().to_json(),
                )
            )


async def _saved_replies(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    for reply in SAVED_REPLIES:
        reply_id = demo_id(f"saved-reply:{reply.key}")
        if await session.get(SavedReply, (tenant_id, reply_id)) is None:
            session.add(
                SavedReply(
                    tenant_id=tenant_id,
                    id=reply_id,
                    brand_id=None if reply.brand is None else DEMO_BRANDS[reply.brand][0],
                    name=reply.name,
                    language=reply.language,
                    body=reply.body,
                )
            )


async def _watch_list(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    brand = await session.get(Brand, (tenant_id, DEMO_BRANDS[WATCHED_BRAND][0]))
    if brand is not None and "watch_list" not in brand.guidelines:
        # A new dict, not the same one changed: the JSONB column is only written when replaced.
        brand.guidelines = {**brand.guidelines, "watch_list": list(WATCH_LIST)}
        brand.version += 1
        brand.updated_at = utcnow()


async def _rules(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    for index, (brand_id, *_rest) in enumerate(DEMO_BRANDS):
        for position, (key, name, condition, action) in enumerate(demo_rules(index)):
            rule_id = demo_id(f"rule:{brand_id}:{key}")
            if await session.get(InboxRule, (tenant_id, rule_id)) is None:
                session.add(
                    InboxRule(
                        tenant_id=tenant_id,
                        id=rule_id,
                        brand_id=brand_id,
                        name=name,
                        position=position,
                        condition=condition.model_dump(mode="json", exclude_defaults=True),
                        action=action.model_dump(mode="json", exclude_defaults=True),
                    )
                )
