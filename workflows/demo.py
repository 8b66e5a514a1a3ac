"""The demo agency's workflows and posts, one in every status (idempotent).

Everything goes through the same service functions as the API, as the demo people, so the
demo shows real revisions, decisions, comments, history and pending approvals.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from infra.clock import utcnow
from infra.db import Database
from infra.settings import Settings
from tenants.demo import DEMO_BRANDS, DEMO_SLUG
from tenants.models import Membership, Role, Tenant, User
from tenants.principal import Principal
from workflows import service
from workflows.models import ContentItem
from workflows.schemas import (
    CommentCreate,
    ContentCreate,
    ContentRead,
    ContentUpdate,
    DecisionCreate,
    ScheduleRequest,
    Step,
    SubmitRequest,
    TemplateCreate,
    Timeout,
)
from workflows.service.timeouts import run_tenant_due_steps

EXTERNAL_APPROVER = "marketing@velo-quebec.example"


async def _no_accounts(
    session: AsyncSession, tenant_id: uuid.UUID, brand_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """The demo's posts name no social account (those come with the social demo, loaded
    after this one)."""
    return set()


async def _principal(session: AsyncSession, tenant: Tenant, email: str) -> Principal:
    row = (
        await session.execute(
            select(Membership, User.id)
            .join(User, User.id == Membership.user_id)  # type: ignore[arg-type]
            .where(Membership.tenant_id == tenant.id, User.email == email)
        )
    ).one()
    membership, user_id = row
    return Principal(
        tenant_id=tenant.id,
        user_id=user_id,
        membership_id=membership.id,
        session_id=uuid.uuid4(),
        role=Role(membership.role),
        client_id=membership.client_id,
        timezone=tenant.timezone,
    )


async def load_content_demo(settings: Settings) -> None:
    db = Database.from_settings(settings)
    try:
        async with db.session() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
        if tenant_id is None:
            return
        async with db.tenant_transaction(tenant_id) as session:
            if (await session.scalars(select(ContentItem.id).limit(1))).first() is not None:
                return
            tenant = await session.get(Tenant, tenant_id)
            assert tenant is not None
            await _load(session, tenant, settings.approval_link_ttl)
        # The one post whose client never answered: its step was due an hour ago.
        await run_tenant_due_steps(
            db, tenant_id, now=utcnow() + timedelta(hours=2), link_ttl=settings.approval_link_ttl
        )
    finally:
        await db.dispose()


async def _load(session: AsyncSession, tenant: Tenant, link_ttl: timedelta) -> None:
    lea = await _principal(session, tenant, "lea@demo.passerelle.app")
    samuel = await _principal(session, tenant, "samuel@demo.passerelle.app")
    mathieu = await _principal(session, tenant, "mathieu@demo.passerelle.app")
    julie = await _principal(session, tenant, "julie@client.demo.passerelle.app")
    pains, cafe, velo = (b[0] for b in DEMO_BRANDS)
    review = Step(name="Relecture", kind="internal", user_ids=[mathieu.user_id], due_hours=24)
    await service.create_template(
        session,
        mathieu,
        TemplateCreate(
            name="Relecture puis client",
            steps=[review, Step(name="Approbation client", kind="client", due_hours=48)],
            blocking_checks=["banned_word"],
            brand_ids=[pains, cafe],
            is_tenant_default=True,
        ),
    )
    await service.create_template(
        session,
        mathieu,
        TemplateCreate(
            name="Vélo : relecture puis courriel",
            steps=[
                review,
                Step(
                    name="Marketing Vélo Québec",
                    kind="client",
                    emails=[EXTERNAL_APPROVER],
                    due_hours=72,
                ),
            ],
            brand_ids=[velo],
        ),
    )
    hurry = await service.create_template(
        session,
        mathieu,
        TemplateCreate(
            name="Réponse client sous une heure (expire)",
            steps=[
                Step(
                    name="Client, vite",
                    kind="client",
                    due_hours=1,
                    timeout=Timeout(policy="expire"),
                )
            ],
        ),
    )
    soon = utcnow() + timedelta(days=3)

    async def draft(
        who: Principal, brand: uuid.UUID, title: str, text: str, **extra: object
    ) -> ContentRead:
        return await service.create_content(
            session,
            who,
            brand,
            ContentCreate.model_validate(
                {"title": title, "variants": {"instagram": text, "facebook": text}, **extra}
            ),
            accounts_of_brand=_no_accounts,
        )

    async def submit(who: Principal, item_id: uuid.UUID) -> uuid.UUID:
        done = await service.submit_content(
            session, who, item_id, SubmitRequest(), link_ttl=link_ttl
        )
        assert done.revision is not None
        return done.revision.id

    async def decide(
        who: Principal, item_id: uuid.UUID, revision: uuid.UUID, what: str, why: str | None = None
    ) -> None:
        await service.decide(
            session,
            who,
            item_id,
            DecisionCreate.model_validate(
                {"revision_id": revision, "decision": what, "comment": why}
            ),
            channel="portal" if who.role == Role.client else "app",
            link_ttl=link_ttl,
        )

    await draft(lea, pains, "Nouveau pain au levain", "Notre levain de seigle arrive samedi.")

    item = await draft(lea, cafe, "Menu d'automne", "Le latte à l'érable est de retour !")
    await submit(lea, item.id)

    item = await draft(
        lea,
        pains,
        "Portes ouvertes",
        "Venez voir le fournil ce dimanche dès 9 h.",
        planned_at=soon.isoformat(),
    )
    await service.add_comment(
        session,
        lea,
        item.id,
        CommentCreate(body="Photo du fournil à refaire ?", visibility="internal"),
    )
    revision = await submit(lea, item.id)
    await decide(mathieu, item.id, revision, "approve")
    await service.add_comment(
        session,
        mathieu,
        item.id,
        CommentCreate(body="Julie, l'heure vous convient-elle ?", visibility="client"),
    )

    item = await draft(samuel, velo, "Vélo d'hiver", "Winter tires are in: ride all season.")
    revision = await submit(samuel, item.id)
    await decide(mathieu, item.id, revision, "approve")

    for title, text, then in (
        ("Croissants du dimanche", "Des croissants pur beurre tout le week-end.", "approve"),
        ("Concours de Noël", "Gagnez une bûche en commentant ce message.", "changes"),
    ):
        item = await draft(lea, pains, title, text)
        revision = await submit(lea, item.id)
        await decide(mathieu, item.id, revision, "approve")
        if then == "approve":
            await decide(julie, item.id, revision, "approve")
        else:
            await decide(
                julie,
                item.id,
                revision,
                "request_changes",
                "Le règlement du concours doit être mentionné.",
            )

    item = await draft(
        lea,
        cafe,
        "Soirée jazz",
        "Jazz au café jeudi soir, entrée libre.",
        planned_at=soon.isoformat(),
    )
    revision = await submit(lea, item.id)
    await decide(mathieu, item.id, revision, "approve")
    await decide(julie, item.id, revision, "approve")
    await service.schedule_content(session, lea, item.id, ScheduleRequest())

    item = await draft(lea, cafe, "Promo éclair", "Tout à moitié prix, dernière chance !")
    revision = await submit(lea, item.id)
    await decide(mathieu, item.id, revision, "reject", "Pas de promotions sur cette marque.")

    item = await draft(lea, pains, "Fermeture exceptionnelle", "Fermé lundi pour inventaire.")
    await service.update_content(
        session,
        lea,
        item.id,
        ContentUpdate(template_id=hurry.id),
        if_match=None,
        accounts_of_brand=_no_accounts,
    )
    await submit(lea, item.id)
