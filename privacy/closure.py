"""The end of an agency's contract: archive what the law keeps, revoke, cancel, delete.

The owner asks (`request_closure`); an outbox event starts the `close_agency` job, which walks
the steps of `ClosureStep`, committing each before the next, so a worker killed at any point
resumes where it stopped: archiving is an upsert, revoking and canceling are harmless twice,
and the deletion of every tenant row is one transaction. The deletion walks SQLModel's
metadata (children before parents), so a table added later is covered without a change here.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

# Every model module, so that the metadata walked below knows every tenant table.
import billing.budgets.models
import billing.invoices.models
import inbox.models
import partners.models
import publishing.models
import social.models
import workflows.models
from billing.invoices.models import CreditNote, Invoice, InvoiceLine
from billing.subscription.models import Subscription
from billing.subscription.stripe_gateway import gateway
from infra import outbox
from infra.clock import utcnow
from infra.db import Database, set_acting_user
from infra.logging import get_logger
from infra.settings import Settings
from privacy.errors import ClosureNotConfirmed
from privacy.models import RETAINED_AFTER_CLOSURE, AgencyClosure, ClosureStep, InvoiceArchive
from social.kit import SocialKit
from social.models import SocialAccount
from tenants.errors import PermissionDenied
from tenants.models import Client, Membership, Role, Tenant, TenantStatus, User
from tenants.principal import Principal
from tenants.service.common import record_audit

del billing, inbox, partners, publishing, social, workflows  # imported for the metadata only

log = get_logger(__name__)

CLOSURE_REQUESTED = "agency.closure_requested"


def tenant_tables() -> list[Table]:
    """Every tenant-owned table but the retained ones, children before their parents."""
    return [
        table
        for table in reversed(SQLModel.metadata.sorted_tables)
        if "tenant_id" in table.c and table.name not in RETAINED_AFTER_CLOSURE
    ]


async def request_closure(
    session: AsyncSession, principal: Principal, confirm: str
) -> tuple[AgencyClosure, bool]:
    """The closure record (new, or the one already asked for) and whether it is new."""
    if principal.role != Role.owner:
        raise PermissionDenied("Only the agency's owner may close it.")
    tenant = await session.get(Tenant, principal.tenant_id)
    assert tenant is not None
    if confirm != tenant.slug:
        raise ClosureNotConfirmed(f"`confirm` must be the agency's slug, {tenant.slug!r}.")
    found = await _closure(session, principal.tenant_id)
    if found is not None:
        return found, False
    closure = AgencyClosure(
        tenant_id=principal.tenant_id, requested_by=principal.actor_id, updated_at=utcnow()
    )
    session.add(closure)
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="agency.closure_requested",
        subject_type="agency",
        subject_id=principal.tenant_id,
    )
    outbox.record_event(
        session,
        tenant_id=principal.tenant_id,
        type=CLOSURE_REQUESTED,
        aggregate_type="agency",
        aggregate_id=principal.tenant_id,
        payload={"closure_id": str(closure.id)},
        request_id=principal.request_id,
    )
    await session.flush()
    return closure, True


async def get_closure(session: AsyncSession, principal: Principal) -> AgencyClosure | None:
    if principal.role not in (Role.owner, Role.admin):
        raise PermissionDenied("Only owners and admins see the agency's closure.")
    return await _closure(session, principal.tenant_id)


async def _closure(
    session: AsyncSession, tenant_id: uuid.UUID, *, lock: bool = False
) -> AgencyClosure | None:
    query = select(AgencyClosure).where(col(AgencyClosure.tenant_id) == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def run_closure(
    db: Database, settings: Settings, tenant_id: uuid.UUID, kit: SocialKit | None = None
) -> str:
    """Takes the closure from its recorded step to the end; answers the step reached. With
    the worker's social kit, platform tokens are revoked at the platforms that can."""
    while True:
        async with db.tenant_transaction(tenant_id) as session:
            closure = await _closure(session, tenant_id, lock=True)
            if closure is None:
                return "none"
            step = closure.step
            if step == ClosureStep.closed:
                break
            closure.attempts += 1
            closure.updated_at = utcnow()
            if step == ClosureStep.requested:
                closure.archived_invoices = await archive_invoices(session, settings, tenant_id)
                closure.step = ClosureStep.archived
                continue
            if step == ClosureStep.archived:
                sealed = (
                    await session.execute(
                        select(
                            SocialAccount.platform,
                            SocialAccount.access_token,
                            SocialAccount.refresh_token,
                        ).where(
                            col(SocialAccount.tenant_id) == tenant_id,
                            col(SocialAccount.access_token).is_not(None)
                            | col(SocialAccount.refresh_token).is_not(None),
                        )
                    )
                ).all()
            if step == ClosureStep.tokens_revoked:
                subscription_id = await session.scalar(
                    select(Subscription.stripe_subscription_id)
                    .where(col(Subscription.tenant_id) == tenant_id)
                    .order_by(col(Subscription.created_at).desc())
                    .limit(1)
                )
                closure.stripe_subscription_id = subscription_id
        # Outside any transaction: a call to a platform or Stripe must not hold rows locked.
        if step == ClosureStep.archived:
            if kit is not None:
                await revoke_at_platforms(kit, tenant_id, sealed)
            async with db.tenant_transaction(tenant_id) as session:
                closure = await _closure(session, tenant_id, lock=True)
                assert closure is not None
                closure.revoked_accounts = await revoke_tokens(session, tenant_id)
                closure.step = ClosureStep.tokens_revoked
            continue
        if step == ClosureStep.tokens_revoked:
            if subscription_id is not None and settings.stripe_configured:
                await cancel_subscription(settings, subscription_id)
            async with db.tenant_transaction(tenant_id) as session:
                closure = await _closure(session, tenant_id, lock=True)
                assert closure is not None
                closure.step = ClosureStep.subscription_canceled
            continue
        if step == ClosureStep.subscription_canceled:
            async with db.tenant_transaction(tenant_id) as session:
                deleted = await delete_tenant_rows(session, tenant_id)
                closure = await _closure(session, tenant_id, lock=True)
                assert closure is not None
                closure.deleted_rows = deleted
                closure.step = ClosureStep.closed
                closure.last_error = None
                closure.closed_at = closure.updated_at = utcnow()
            log.info("privacy.agency_closed", tenant_id=str(tenant_id), deleted_rows=deleted)
            continue
    # After the rows' commit, and again on a rerun: a worker killed in between left the
    # agency's export files, whose rows (and so the expiry sweep) are gone.
    await asyncio.to_thread(shutil.rmtree, settings.export_dir / str(tenant_id), ignore_errors=True)
    return ClosureStep.closed


async def record_failure(db: Database, tenant_id: uuid.UUID, error: str) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        await session.execute(
            update(AgencyClosure)
            .where(col(AgencyClosure.tenant_id) == tenant_id)
            .values(last_error=error[:2000], updated_at=utcnow())
        )


async def archive_invoices(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> int:
    """Copies every issued invoice (finalized or voided; drafts were never sent) with what it
    takes to reproduce it; an upsert, so a second run after a crash changes nothing."""
    keep_until = years_later(utcnow(), settings.invoice_retention_years)
    invoices = (
        await session.scalars(
            select(Invoice).where(
                col(Invoice.tenant_id) == tenant_id, col(Invoice.number).is_not(None)
            )
        )
    ).all()
    for invoice in invoices:
        client = await session.get(Client, (tenant_id, invoice.client_id))
        lines = (
            await session.scalars(
                select(InvoiceLine)
                .where(
                    col(InvoiceLine.tenant_id) == tenant_id,
                    col(InvoiceLine.invoice_id) == invoice.id,
                )
                .order_by(col(InvoiceLine.position))
            )
        ).all()
        credits = (
            await session.scalars(
                select(CreditNote).where(
                    col(CreditNote.tenant_id) == tenant_id,
                    col(CreditNote.invoice_id) == invoice.id,
                )
            )
        ).all()
        document: dict[str, Any] = {
            "invoice": invoice.model_dump(mode="json"),
            "lines": [line.model_dump(mode="json") for line in lines],
            "credit_notes": [credit.model_dump(mode="json") for credit in credits],
        }
        row = {
            "tenant_id": tenant_id,
            "id": uuid.uuid4(),
            "created_at": utcnow(),
            "invoice_id": invoice.id,
            "number": invoice.number,
            "month": invoice.month,
            "client_name": client.name if client else "",
            "client_legal_name": client.legal_name if client else None,
            "client_billing_email": client.billing_email if client else None,
            "document": document,
            "keep_until": keep_until,
        }
        await session.execute(
            insert(InvoiceArchive)
            .values(row)
            .on_conflict_do_nothing(constraint="uq_invoice_archives_invoice")
        )
    return len(invoices)


def years_later(at: datetime, years: int) -> datetime:
    """The same date `years` later; 29 February becomes the 28th in a common year."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, day=28)


async def revoke_at_platforms(kit: SocialKit, tenant_id: uuid.UUID, sealed: Any) -> None:
    """Best effort: a platform that fails or has no revocation endpoint still loses the
    tokens on our side (the next step deletes them); a rerun after a crash revokes again,
    which is harmless."""
    for platform, access, refresh in sealed:
        try:
            connector = kit.connector(platform)
            revoke = getattr(connector, "revoke", None)
            if revoke is None:
                continue
            for token in (kit.vault.decrypt(access), kit.vault.decrypt(refresh)):
                if token:
                    await revoke(token)
        except Exception as exc:
            log.warning(
                "privacy.revoke_failed",
                tenant_id=str(tenant_id),
                platform=platform,
                error=type(exc).__name__,
            )


async def revoke_tokens(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """Forgets every platform token of the agency and pauses its accounts, so no sync or
    publication uses them again before the rows go."""
    result = await session.execute(
        update(SocialAccount)
        .where(
            col(SocialAccount.tenant_id) == tenant_id,
            col(SocialAccount.access_token).is_not(None)
            | col(SocialAccount.refresh_token).is_not(None),
        )
        .values(access_token=None, refresh_token=None, status="paused", next_sync_at=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def cancel_subscription(settings: Settings, subscription_id: str) -> None:
    stripe = gateway(settings)
    current = await stripe.retrieve_subscription(subscription_id)
    if current.get("status") not in ("canceled", "incomplete_expired"):
        await stripe.cancel_subscription(subscription_id)


async def delete_tenant_rows(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """Deletes every row of the agency in every tenant table but the retained ones, marks the
    agency closed, and anonymizes the accounts that belonged to this agency alone."""
    user_ids = (
        await session.scalars(
            select(Membership.user_id).where(col(Membership.tenant_id) == tenant_id)
        )
    ).all()
    deleted = 0
    for table in tenant_tables():
        # Through migration 0017's function: some tables are append-only for the application.
        deleted += int(
            await session.scalar(
                text("SELECT delete_closing_tenant_rows(:tenant, :table)"),
                {"tenant": tenant_id, "table": table.name},
            )
            or 0
        )
    await session.execute(
        update(Tenant)
        .where(col(Tenant.id) == tenant_id)
        .values(status=TenantStatus.closed, updated_at=utcnow(), version=Tenant.version + 1)
    )
    for user_id in user_ids:
        await set_acting_user(session, user_id)
        elsewhere = await session.scalar(
            select(func.count()).select_from(Membership).where(col(Membership.user_id) == user_id)
        )
        if not elsewhere:
            await anonymize_user(session, user_id, name="Compte supprimé")
    await session.execute(text("SELECT set_config('app.user_id', '', true)"))
    return deleted


async def anonymize_user(session: AsyncSession, user_id: uuid.UUID, *, name: str) -> None:
    """The account of a person who belongs to no agency any more: no e-mail, name or
    password left (the row stays, since other rows point at its id)."""
    await session.execute(
        update(User)
        .where(col(User.id) == user_id)
        .values(
            email=f"erased-{user_id.hex}@invalid",
            name=name,
            password_hash=None,
            updated_at=utcnow(),
            version=User.version + 1,
        )
    )
