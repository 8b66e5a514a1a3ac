"""The demo agency's publishing (idempotent): one post already out on each demo brand's sandbox
accounts, its figures read so the client report shows top posts, and one post planned for
tomorrow 09:00 on a sandbox account.

Everything runs the real path as the demo people: the item is written, approved at each step
by whoever the step asks (a link decision for an e-mail approver), scheduled, planned through
the publishing checks, and published by the runner on the sandbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra.clock import utcnow
from infra.db import Database
from infra.logging import get_logger
from infra.resources import Resources
from infra.settings import Settings
from publishing import figures, jobs, runner
from publishing import service as publishing
from publishing.checks import Checker, checker
from publishing.machine import PubStatus
from publishing.models import Publication
from social.connectors.types import Platform
from social.demo import DEMO_CHANNELS, demo_account_names
from social.models import SocialAccount
from social.service.accounts import accounts_of_brand
from tenants.demo import DEMO_BRANDS, DEMO_SLUG
from tenants.models import Membership, Role, Tenant, User
from tenants.principal import Principal
from workflows import service
from workflows.engine import Status
from workflows.models import ApprovalLink, ContentItem
from workflows.schemas import (
    ContentCreate,
    DecisionCreate,
    LinkDecision,
    ScheduleRequest,
    SubmitRequest,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class DemoPost:
    brand: int
    """Index in DEMO_BRANDS."""
    author: str
    title: str
    text: str
    channels: tuple[str, ...]


WENT_OUT = (
    DemoPost(
        0,
        "lea@demo.passerelle.app",
        "Baguettes de tradition",
        "Nos baguettes de tradition sortent du four à 7 h, tous les matins. #MTL #AchatLocal",
        DEMO_CHANNELS,
    ),
    DemoPost(
        1,
        "lea@demo.passerelle.app",
        "Torréfaction maison",
        "Notre espresso est maintenant torréfié à deux rues du café. #AchatLocal",
        DEMO_CHANNELS,
    ),
    DemoPost(
        2,
        "samuel@demo.passerelle.app",
        "Spring tune-up",
        "Book your spring tune-up: the workshop is open six days a week.",
        DEMO_CHANNELS,
    ),
)
"""Published when the demo loads, on both sandbox accounts of each brand."""

TOMORROW = DemoPost(
    0,
    "lea@demo.passerelle.app",
    "Pain de la semaine",
    "Le pain de la semaine : miche aux noix et canneberges, dès 9 h.",
    ("instagram",),
)
"""Planned for tomorrow 09:00 in the agency's timezone."""


async def load_publishing_demo(settings: Settings) -> None:
    resources = await Resources.open(settings)
    try:
        db = resources.db
        async with db.session() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
        if tenant_id is None:
            return
        check = checker(resources.http, settings)
        async with db.tenant_transaction(tenant_id) as session:
            tenant = await session.get(Tenant, tenant_id)
            assert tenant is not None
            accounts = await _sandbox_accounts(session, tenant_id)
            if not accounts:
                return  # the social demo made none (no TOKEN_ENCRYPTION_KEYS)
            went_out = [
                await _post(session, tenant, post, accounts, check, settings, at=None)
                for post in WENT_OUT
            ]
            tomorrow = datetime.combine(
                utcnow().astimezone(ZoneInfo(tenant.timezone)).date() + timedelta(days=1),
                time(9),
                tzinfo=ZoneInfo(tenant.timezone),
            )
            await _post(session, tenant, TOMORROW, accounts, check, settings, at=tomorrow)
        # What the worker's publish job does, now rather than whenever the worker runs (both
        # may: an attempt is claimed under the row lock, so a post never goes out twice).
        deps = jobs.deps(
            {"resources": resources, "settings": settings, "redis": resources.queue, "db": db}
        )
        for publication_id in await _publications(db, tenant_id, went_out, PubStatus.scheduled):
            outcome = await runner.publish(deps, tenant_id, publication_id)
            if outcome != "published":
                log.warning("demo.publish", publication_id=str(publication_id), outcome=outcome)
        await _read_figures(deps, tenant_id, went_out)
    finally:
        await resources.close()


async def _sandbox_accounts(
    session: AsyncSession, tenant_id: uuid.UUID
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """(brand, channel) -> the brand's sandbox account standing for that channel."""
    rows = (
        await session.scalars(
            select(SocialAccount).where(
                SocialAccount.tenant_id == tenant_id,
                SocialAccount.platform == Platform.sandbox.value,
            )
        )
    ).all()
    by_handle = {(a.brand_id, a.handle): a.id for a in rows}
    found = {}
    for brand_id, _client, name, slug, _language in DEMO_BRANDS:
        for channel in DEMO_CHANNELS:
            handle, _ = demo_account_names(name, slug, channel)
            if (brand_id, handle) in by_handle:
                found[brand_id, channel] = by_handle[brand_id, handle]
    return found


async def _post(
    session: AsyncSession,
    tenant: Tenant,
    post: DemoPost,
    accounts: dict[tuple[uuid.UUID, str], uuid.UUID],
    check: Checker,
    settings: Settings,
    *,
    at: datetime | None,
) -> uuid.UUID:
    """The demo item (made, approved and scheduled if missing): at `at`, or now (publish-now).
    Its publications are planned through the same checks as scheduling in the app."""
    brand_id = DEMO_BRANDS[post.brand][0]
    existing = await session.scalar(
        select(ContentItem.id).where(
            ContentItem.tenant_id == tenant.id,
            ContentItem.brand_id == brand_id,
            ContentItem.title == post.title,
        )
    )
    if existing is not None:
        return existing
    author = await _person(session, tenant, email=post.author)
    item = await service.create_content(
        session,
        author,
        brand_id,
        ContentCreate.model_validate(
            {
                "title": post.title,
                "variants": {"instagram": post.text, "facebook": post.text},
                "social_account_ids": [accounts[brand_id, c] for c in post.channels],
            }
        ),
        accounts_of_brand=accounts_of_brand,
    )
    await service.submit_content(
        session, author, item.id, SubmitRequest(), link_ttl=settings.approval_link_ttl
    )
    await _approve(session, tenant, item.id, settings)
    if at is None:
        await service.schedule_now(session, author, item.id)
    else:
        await service.schedule_content(session, author, item.id, ScheduleRequest(planned_at=at))
    await publishing.plan(session, author, item.id, check=check, settings=settings)
    return item.id


async def _approve(
    session: AsyncSession, tenant: Tenant, item_id: uuid.UUID, settings: Settings
) -> None:
    """Each step approved by one of the people it asks, as they would in the app (or, for an
    e-mail address, through its approval link), until the item is approved."""
    while True:
        item = await session.get(ContentItem, (tenant.id, item_id), populate_existing=True)
        assert item is not None
        if item.status not in (Status.in_review, Status.awaiting_client):
            if item.status != Status.approved:
                raise RuntimeError(f"demo item {item.title!r} ended {item.status}")
            return
        index = item.step_index
        decided = set(item.step_approvers.get(f"{index}:decided", []))
        key = next(
            k
            for k in item.step_approvers[str(index)]
            if k not in decided and k != f"user:{item.submitted_by}"
        )
        if key.startswith("email:"):
            link_id = await session.scalar(
                select(ApprovalLink.id).where(
                    ApprovalLink.tenant_id == tenant.id,
                    ApprovalLink.content_item_id == item.id,
                    ApprovalLink.round == item.round,
                    ApprovalLink.step_index == index,
                    ApprovalLink.email == key.removeprefix("email:"),
                )
            )
            assert link_id is not None
            await service.decide_by_link(
                session,
                service.SignedLink(tenant.id, link_id),
                LinkDecision(decision="approve"),
                link_ttl=settings.approval_link_ttl,
                request_id=None,
            )
            continue
        who = await _person(session, tenant, user_id=uuid.UUID(key.removeprefix("user:")))
        await service.decide(
            session,
            who,
            item.id,
            DecisionCreate.model_validate(
                {"revision_id": item.current_revision_id, "decision": "approve"}
            ),
            channel="portal" if who.role == Role.client else "app",
            link_ttl=settings.approval_link_ttl,
        )


async def _person(
    session: AsyncSession,
    tenant: Tenant,
    *,
    email: str | None = None,
    user_id: uuid.UUID | None = None,
) -> Principal:
    query = select(Membership, User.id).join(User, col(User.id) == col(Membership.user_id))
    query = query.where(Membership.tenant_id == tenant.id)
    query = query.where(User.email == email) if email else query.where(User.id == user_id)
    membership, found = (await session.execute(query)).one()
    return Principal(
        tenant_id=tenant.id,
        user_id=found,
        membership_id=membership.id,
        session_id=uuid.uuid4(),
        role=Role(membership.role),
        client_id=membership.client_id,
        timezone=tenant.timezone,
    )


async def _publications(
    db: Database, tenant_id: uuid.UUID, item_ids: list[uuid.UUID], status: PubStatus
) -> list[uuid.UUID]:
    async with db.tenant_transaction(tenant_id) as session:
        rows = await session.scalars(
            select(Publication.id)
            .where(
                Publication.tenant_id == tenant_id,
                col(Publication.content_item_id).in_(item_ids),
                Publication.status == status,
            )
            .order_by(col(Publication.planned_at), col(Publication.id))
        )
        return list(rows.all())


async def _read_figures(deps: runner.Deps, tenant_id: uuid.UUID, item_ids: list[uuid.UUID]) -> None:
    """The posts' first figures, read now rather than an hour after they went out (the demo
    shows them at once); later reads follow the usual daily schedule."""
    unread = []
    async with deps.db.tenant_transaction(tenant_id) as session:
        rows = await session.scalars(
            select(Publication).where(
                Publication.tenant_id == tenant_id,
                col(Publication.content_item_id).in_(item_ids),
                Publication.status == PubStatus.published,
                col(Publication.figures_at).is_(None),
            )
        )
        now = utcnow()
        for publication in rows:
            publication.next_figures_at = now
            unread.append(publication.id)
    for publication_id in unread:
        await figures.read(deps.db, deps.kit, deps.settings, tenant_id, publication_id)
