"""The demo agency, loaded by `make run` (idempotent: a second load changes nothing)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.db import Database
from infra.ids import new_id
from infra.plans import plan_with_every_feature
from infra.resources import Resources
from infra.security import Passwords
from infra.settings import Settings
from tenants import service
from tenants.models import (
    Assignment,
    AssignmentRole,
    Brand,
    Client,
    Membership,
    Role,
    Tenant,
    User,
)
from tenants.schemas import SignupRequest

DEMO_SLUG = "agence-demo"
# A fixed id, so the demo client contact keeps pointing at the same client once clients exist.
DEMO_CLIENT_ID = uuid.UUID("0192f000-0000-7000-8000-00000000c001")

DEMO_PEOPLE: list[tuple[Role, str, str, str]] = [
    (Role.owner, "Camille Tremblay", "camille@demo.passerelle.app", "demo-proprio-2026"),
    (Role.manager, "Mathieu Gagnon", "mathieu@demo.passerelle.app", "demo-gestion-2026"),
    (Role.member, "Léa Roy", "lea@demo.passerelle.app", "demo-membre-2026"),
    (Role.member, "Samuel Côté", "samuel@demo.passerelle.app", "demo-membre-2026"),
    (Role.client, "Julie Bouchard", "julie@client.demo.passerelle.app", "demo-client-2026"),
]


async def create_tenant(settings: Settings, request: SignupRequest) -> uuid.UUID:
    db = Database.from_settings(settings)
    passwords = Passwords(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    try:
        tenant_id = new_id()
        async with db.tenant_transaction(tenant_id) as session:
            await service.signup(
                session, passwords, request, tenant_id=tenant_id, plan_id=settings.default_plan
            )
        return tenant_id
    finally:
        await db.dispose()


async def load_demo(settings: Settings) -> list[tuple[str, str, str]]:
    resources = await Resources.open(settings)
    try:
        async with resources.db.session() as session:
            existing = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
        tenant_id = existing or new_id()
        # Every feature, whatever DEFAULT_PLAN says: a newcomer tries the portal and the
        # partner API without Stripe.
        demo_plan = plan_with_every_feature(settings.plans)
        async with resources.db.tenant_transaction(tenant_id) as session:
            if existing is None:
                owner = DEMO_PEOPLE[0]
                await service.signup(
                    session,
                    resources.passwords,
                    SignupRequest(
                        agency_name="Agence Démo",
                        slug=DEMO_SLUG,
                        timezone="America/Montreal",
                        locale="fr-CA",
                        currency="CAD",
                        owner_name=owner[1],
                        email=owner[2],
                        password=owner[3],
                    ),
                    tenant_id=tenant_id,
                    plan_id=demo_plan,
                )
            else:
                # A demo loaded before it had every feature gets them on the next load.
                await session.execute(
                    update(Tenant).where(col(Tenant.id) == tenant_id).values(plan_id=demo_plan)
                )
            await _demo_clients(session, tenant_id)
            for role, name, email, password in DEMO_PEOPLE[1:]:
                user = (
                    await session.scalars(select(User).where(func.lower(User.email) == email))
                ).first()
                if user is None:
                    user = User(
                        email=email,
                        name=name,
                        password_hash=await resources.passwords.hash(password),
                        locale="fr",
                    )
                    session.add(user)
                    await session.flush()
                exists = (
                    await session.scalars(
                        select(Membership.id).where(
                            Membership.tenant_id == tenant_id, Membership.user_id == user.id
                        )
                    )
                ).first()
                if exists is None:
                    session.add(
                        Membership(
                            tenant_id=tenant_id,
                            user_id=user.id,
                            role=role,
                            client_id=DEMO_CLIENT_ID if role == Role.client else None,
                        )
                    )
            await session.flush()
            await _demo_assignments(session, tenant_id)
    finally:
        await resources.close()
    return [(role.value, email, password) for role, _, email, password in DEMO_PEOPLE]


def _demo_id(name: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_CLIENT_ID, name)


DEMO_CLIENTS = [
    (DEMO_CLIENT_ID, "Boulangerie Saint-Laurent", "fr-CA"),
    (_demo_id("client:velo"), "Vélo Québec Boutique", "fr-CA"),
]
DEMO_BRANDS = [
    (_demo_id("brand:pains"), DEMO_CLIENT_ID, "Pains du Plateau", "pains-du-plateau", "fr"),
    (_demo_id("brand:cafe"), DEMO_CLIENT_ID, "Café Saint-Laurent", "cafe-saint-laurent", "fr"),
    (_demo_id("brand:velo"), _demo_id("client:velo"), "Vélo Urbain", "velo-urbain", "en"),
]
# (e-mail, brand index, role, monthly hours)
DEMO_ASSIGNMENTS = [
    ("camille@demo.passerelle.app", 0, AssignmentRole.lead, 10),
    ("mathieu@demo.passerelle.app", 2, AssignmentRole.lead, 20),
    ("lea@demo.passerelle.app", 0, AssignmentRole.community_manager, 60),
    ("lea@demo.passerelle.app", 1, AssignmentRole.community_manager, 40),
    ("samuel@demo.passerelle.app", 2, AssignmentRole.content_creator, 50),
    ("samuel@demo.passerelle.app", 1, AssignmentRole.analyst, 15),
]
DEMO_CAPACITY_HOURS = {"camille": 80, "mathieu": 120, "lea": 100, "samuel": 60}


async def _demo_clients(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    for client_id, name, locale in DEMO_CLIENTS:
        client = await session.get(Client, (tenant_id, client_id))
        if client is None:
            session.add(
                Client(
                    tenant_id=tenant_id,
                    id=client_id,
                    name=name,
                    locale=locale,
                    currency="CAD",
                    billing_email="factures@example.com",
                )
            )
        elif client.name == "Client":  # the placeholder a migration made for the contact
            client.name = name
    await session.flush()
    for brand_id, client_id, name, slug, language in DEMO_BRANDS:
        if await session.get(Brand, (tenant_id, brand_id)) is None:
            session.add(
                Brand(
                    tenant_id=tenant_id,
                    id=brand_id,
                    client_id=client_id,
                    name=name,
                    slug=slug,
                    timezone="America/Montreal",
                    default_language=language,
                    guidelines={
                        "tone_of_voice": "Chaleureux, local, jamais condescendant.",
                        "netiquette": "Répondre en 4 h ouvrables; aucun débat politique.",
                        "banned_words": ["cheap", "pas cher"],
                        "hashtags": ["#MTL", "#AchatLocal"],
                    },
                )
            )
    await session.flush()


async def _demo_assignments(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    # From the first of last month: the demo's time goes back that far, in January too.
    start = (utcnow().date().replace(day=1) - timedelta(days=1)).replace(day=1)
    for email, brand_index, role, hours in DEMO_ASSIGNMENTS:
        membership = (
            await session.scalars(
                select(Membership)
                .join(User, col(User.id) == col(Membership.user_id))
                .where(Membership.tenant_id == tenant_id, func.lower(User.email) == email)
            )
        ).one()
        membership.monthly_capacity_minutes = DEMO_CAPACITY_HOURS[email.split("@")[0]] * 60
        assignment_id = _demo_id(f"assignment:{email}:{brand_index}:{role}")
        if await session.get(Assignment, (tenant_id, assignment_id)) is None:
            session.add(
                Assignment(
                    tenant_id=tenant_id,
                    id=assignment_id,
                    brand_id=DEMO_BRANDS[brand_index][0],
                    membership_id=membership.id,
                    user_id=membership.user_id,
                    role=role,
                    monthly_minutes=hours * 60,
                    start_date=start,
                )
            )
    await session.flush()
