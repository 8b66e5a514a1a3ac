"""The demo agency, loaded by `make run` (idempotent: a second load changes nothing)."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlmodel import select

from infra.db import Database, set_tenant
from infra.resources import Resources
from infra.security import Passwords
from infra.settings import Settings
from tenants import service
from tenants.models import Membership, Role, Tenant, User
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
        async with db.session() as session, session.begin():
            tenant, _, _ = await service.signup(session, passwords, request)
            return tenant.id
    finally:
        await db.dispose()


async def load_demo(settings: Settings) -> list[tuple[str, str, str]]:
    resources = await Resources.open(settings)
    try:
        async with resources.db.session() as session, session.begin():
            tenant = (await session.scalars(select(Tenant).where(Tenant.slug == DEMO_SLUG))).first()
            if tenant is None:
                owner = DEMO_PEOPLE[0]
                tenant, _, _ = await service.signup(
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
                )
            await set_tenant(session, tenant.id)
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
                            Membership.tenant_id == tenant.id, Membership.user_id == user.id
                        )
                    )
                ).first()
                if exists is None:
                    session.add(
                        Membership(
                            tenant_id=tenant.id,
                            user_id=user.id,
                            role=role,
                            client_id=DEMO_CLIENT_ID if role == Role.client else None,
                        )
                    )
    finally:
        await resources.close()
    return [(role.value, email, password) for role, _, email, password in DEMO_PEOPLE]
