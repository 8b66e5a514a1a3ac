"""Outbox handlers and jobs of time budgets: threshold e-mails and the forgotten-timer sweep."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.budgets.models import Timer
from billing.budgets.service.entries import Worker, close_timer
from billing.budgets.timekeeping import FORGOTTEN_AFTER
from infra import outbox
from infra.clock import utcnow
from infra.db import Database
from infra.errors import ProblemError
from infra.i18n import language as language_of
from infra.logging import get_logger
from infra.mail import Mail, MailBatch
from infra.outbox import Event
from infra.sweep import due_tenants, for_each_tenant
from tenants.models import (
    Assignment,
    AssignmentRole,
    Brand,
    Client,
    Membership,
    MembershipStatus,
    Tenant,
    User,
)
from tenants.policy import local_date
from tenants.service.common import record_audit

log = get_logger(__name__)

_THRESHOLD = {
    "fr": (
        "{client} : {threshold} % du forfait de {month} utilisé",
        "Bonjour,\n\nLe forfait de {client} pour {month} a atteint {threshold} % : "
        "{used} h sur {available} h utilisées.\n\nVoir le budget :\n{link}\n",
    ),
    "en": (
        "{client}: {threshold}% of the {month} retainer used",
        "Hello,\n\n{client}'s retainer for {month} has reached {threshold}%: "
        "{used} h of {available} h used.\n\nSee the budget:\n{link}\n",
    ),
}


def _hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}".rstrip("0").rstrip(".")


@outbox.handler("budget.threshold_crossed")
async def mail_brand_leads(ctx: dict[str, Any], event: Event) -> None:
    """The client's brand leads learn of it by e-mail, each in their own language."""
    payload = event.payload
    client_id = uuid.UUID(payload["client_id"])
    async with ctx["db"].tenant_transaction(event.tenant_id) as session:
        tenant = await session.get(Tenant, event.tenant_id)
        client = await session.get(Client, (event.tenant_id, client_id))
        assert tenant is not None
        today = local_date(tenant.timezone, utcnow())
        leads = (
            await session.execute(
                select(User.email, User.locale)
                .join(Assignment, col(Assignment.user_id) == col(User.id))
                .join(
                    Brand,
                    (col(Brand.tenant_id) == col(Assignment.tenant_id))
                    & (col(Brand.id) == col(Assignment.brand_id)),
                )
                .join(
                    Membership,
                    (col(Membership.tenant_id) == col(Assignment.tenant_id))
                    & (col(Membership.id) == col(Assignment.membership_id)),
                )
                .where(
                    Assignment.tenant_id == event.tenant_id,
                    Brand.client_id == client_id,
                    Assignment.role == AssignmentRole.lead,
                    col(Assignment.start_date) <= today,
                    col(Assignment.end_date).is_(None) | (col(Assignment.end_date) >= today),
                    Membership.status == MembershipStatus.active,
                )
                .distinct()
            )
        ).all()
    if client is None:
        return
    link = f"{ctx['settings'].app_base_url}/clients/{client_id}/budget?month={payload['month']}"
    values = {
        "client": client.name,
        "month": payload["month"],
        "threshold": payload["threshold"],
        "used": _hours(payload["used_minutes"]),
        "available": _hours(payload["available_minutes"]),
        "link": link,
    }
    batch = MailBatch(ctx["settings"])
    for email, locale in leads:
        language = language_of(locale)
        subject, body = _THRESHOLD[language]
        await batch.send(
            Mail(
                to=email,
                subject=subject.format(**values),
                text=body.format(**values),
                language=language,
            ),
        )
    batch.raise_refused()


async def stop_forgotten_timers(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """arq cron: timers running for over 12 hours are stopped at 12 hours and flagged.

    Each timer closes in its own savepoint; one that cannot be logged (a locked week, a
    capped retainer, a full day) is discarded and the audit trail says why.
    """
    db: Database = ctx["db"]
    now = now or utcnow()
    cutoff = now - FORGOTTEN_AFTER
    rows = await due_tenants(
        db, text("SELECT due_tenant_id FROM overdue_timer_tenants(:cutoff)"), {"cutoff": cutoff}
    )

    async def stop(session: AsyncSession, tenant_id: uuid.UUID) -> int:
        stopped = 0
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        timers = (
            await session.scalars(
                select(Timer)
                .where(Timer.tenant_id == tenant_id, col(Timer.started_at) < cutoff)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for timer in timers:
            worker = Worker(tenant_id, timer.membership_id, timer.user_id, tenant.timezone)
            changes: dict[str, Any]
            try:
                async with session.begin_nested():
                    entries, _ = await close_timer(session, worker, timer, now=now, request_id=None)
                action, changes = "timer.stopped", {"entries": [str(e.id) for e in entries]}
            except ProblemError as exc:
                await session.delete(timer)
                action, changes = "timer.discarded", {"reason": exc.type_slug}
            record_audit(
                session,
                tenant_id=tenant_id,
                actor=None,
                action=action,
                subject_type="timer",
                subject_id=timer.id,
                changes={**changes, "forgotten": True},
                actor_id=None,
            )
            stopped += 1
        return stopped

    done = await for_each_tenant(
        db, (tenant_id for (tenant_id,) in rows), stop, failed="timers.forgotten_failed"
    )
    stopped = sum(count for _, count in done)
    if stopped:
        log.info("timers.forgotten_stopped", count=stopped)
    return stopped
