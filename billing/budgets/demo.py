"""The demo agency's retainers, rates and a month and a half of time (idempotent)."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.budgets.budget import add_months
from billing.budgets.models import Activity, EntryStatus, Rate, Retainer, RetainerTerms, TimeEntry
from infra.clock import utcnow
from infra.db import Database
from infra.settings import Settings
from tenants.demo import DEMO_ASSIGNMENTS, DEMO_BRANDS, DEMO_CLIENTS, DEMO_SLUG, _demo_id
from tenants.models import Membership, Tenant, User
from tenants.policy import local_date

# (client index, monthly hours, fee in dollars, rollover (hours, months) or None, overage)
DEMO_RETAINERS = [
    (0, 40, 3800, (10, 2), ("bill_at_rate", 95_00)),
    (1, 25, 2250, None, ("hard_cap", None)),
]
ACTIVITIES = [
    Activity.community_animation,
    Activity.community_animation,
    Activity.moderation,
    Activity.moderation,
    Activity.content_creation,
    Activity.reporting,
    Activity.meeting,
]


async def load_time_demo(settings: Settings) -> None:
    db = Database.from_settings(settings)
    try:
        async with db.session() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))
        if tenant_id is None:
            return
        async with db.tenant_transaction(tenant_id) as session:
            tenant = await session.get(Tenant, tenant_id)
            assert tenant is not None
            today = local_date(tenant.timezone, utcnow())
            first = add_months(today.replace(day=1), -1)
            for index, hours, fee, rollover, (policy, rate) in DEMO_RETAINERS:
                client_id = DEMO_CLIENTS[index][0]
                retainer_id = _demo_id(f"retainer:{client_id}")
                if await session.get(Retainer, (tenant_id, retainer_id)) is not None:
                    continue
                session.add(
                    Retainer(
                        tenant_id=tenant_id,
                        id=retainer_id,
                        client_id=client_id,
                        currency="CAD",
                        start_month=first,
                    )
                )
                await session.flush()
                session.add(
                    RetainerTerms(
                        tenant_id=tenant_id,
                        retainer_id=retainer_id,
                        effective_month=first,
                        monthly_minutes=hours * 60,
                        fee_minor=fee * 100,
                        rollover_max_minutes=rollover[0] * 60 if rollover else 0,
                        rollover_max_months=rollover[1] if rollover else 0,
                        overage_policy=policy,
                        overage_rate_minor=rate,
                        thresholds=[50, 80, 100],
                    )
                )
            for key, rate_minor, role in (("default", 85_00, None), ("member", 75_00, "member")):
                rate_id = _demo_id(f"rate:{key}")
                if await session.get(Rate, (tenant_id, rate_id)) is None:
                    session.add(
                        Rate(
                            tenant_id=tenant_id,
                            id=rate_id,
                            role=role,
                            rate_minor=rate_minor,
                            currency="CAD",
                        )
                    )
            await session.flush()
            await _demo_entries(session, tenant_id, first, today)
    finally:
        await db.dispose()


async def _demo_entries(
    session: AsyncSession, tenant_id: uuid.UUID, first: date, today: date
) -> None:
    """Weekdays of last month (approved, rates frozen) and this month so far (open), today
    included whatever the day, so that this month is never empty (on the 1st, or a weekend)."""
    people = {
        email: membership
        for email, membership in (
            await session.execute(
                select(User.email, Membership)
                .join(Membership, col(Membership.user_id) == col(User.id))
                .where(Membership.tenant_id == tenant_id)
            )
        ).all()
    }
    brands = {brand_id: client_id for brand_id, client_id, *_ in DEMO_BRANDS}
    this_month = today.replace(day=1)
    day = first
    while day <= today:
        if day.weekday() < 5 or day == today:
            for email, brand_index, role, _ in DEMO_ASSIGNMENTS:
                membership = people.get(email)
                if membership is None:
                    continue
                brand_id = DEMO_BRANDS[brand_index][0]
                entry_id = _demo_id(f"entry:{email}:{brand_index}:{role}:{day.isoformat()}")
                if await session.get(TimeEntry, (tenant_id, entry_id)) is not None:
                    continue
                luck = random.Random(str(entry_id))
                if luck.random() < 0.35 and day < today:
                    continue
                approved = day < this_month
                rate = 75_00 if membership.role == "member" else 85_00
                session.add(
                    TimeEntry(
                        tenant_id=tenant_id,
                        id=entry_id,
                        membership_id=membership.id,
                        user_id=membership.user_id,
                        brand_id=brand_id,
                        client_id=brands[brand_id],
                        work_date=day,
                        minutes=luck.choice([15, 30, 30, 45, 60, 60, 90, 120]),
                        activity=luck.choice(ACTIVITIES),
                        billable=luck.random() > 0.1,
                        note=None,
                        status=EntryStatus.approved if approved else EntryStatus.open,
                        rate_minor=rate if approved else None,
                        rate_currency="CAD" if approved else None,
                    )
                )
        day += timedelta(days=1)
    await session.flush()
