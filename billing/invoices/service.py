"""Client invoices: a draft per client and closed month from approved time, edited by staff,
finalized once (locking the time it bills), voided or credited afterwards.

One invoice per client and month is a database guarantee (a unique index over the invoices
that are not void), so a retried cron, a double click and a race all end with one invoice.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Select, func, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing.budgets.budget import add_months
from billing.budgets.models import EntryStatus, TimeEntry
from billing.budgets.service.budgets import _month
from billing.budgets.service.ledger import budget_at, month_end, pure_terms, retainers_of
from billing.invoices import errors
from billing.invoices.invoicing import amount_due, credit_room, draft_lines
from billing.invoices.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceMode,
    InvoiceStatus,
    LineKind,
    StripeSync,
)
from billing.invoices.schemas import (
    CreditNoteCreate,
    CreditNoteRead,
    InvoiceCreate,
    InvoiceLineRead,
    InvoiceRead,
    InvoiceSummary,
    InvoiceUpdate,
    InvoiceVoid,
    LineCreate,
    LineUpdate,
)
from infra import outbox
from infra.clock import utcnow
from infra.errors import body_reference
from infra.ids import new_id
from infra.pagination import Keyset, Page, SortKey, id_key
from infra.settings import Settings
from tenants.errors import ClientNotFound
from tenants.models import Client, Tenant
from tenants.policy import Resource, Verb
from tenants.principal import Principal
from tenants.service.common import (
    bump,
    check_version,
    load_readable,
    record_audit,
    require_scope,
)
from tenants.service.directory import today_for

_USAGE = text(
    """
    SELECT date_trunc('month', work_date)::date AS month, brand_id,
           coalesce(sum(minutes) FILTER (WHERE status IN ('approved', 'invoiced')), 0) AS approved,
           coalesce(sum(minutes) FILTER (WHERE status NOT IN ('approved', 'invoiced')), 0)
             AS unapproved
    FROM time_entries
    WHERE tenant_id = :tenant_id AND client_id = :client_id AND billable
      AND work_date >= :since AND work_date <= :until
    GROUP BY 1, 2
    """
)


def _fmt(month: date) -> str:
    return month.strftime("%Y-%m")


async def _client(session: AsyncSession, tenant_id: uuid.UUID, client_id: uuid.UUID) -> Client:
    client = (
        await session.scalars(
            select(Client).where(Client.tenant_id == tenant_id, Client.id == client_id)
        )
    ).first()
    if client is None:
        raise ClientNotFound()
    return client


class Computed:
    """A client's month as invoice lines, from approved time only."""

    def __init__(self, currency: str, lines: list[Any], approved: int, unapproved: int) -> None:
        self.currency = currency
        self.lines = lines
        self.approved = approved
        self.unapproved = unapproved


async def compute(session: AsyncSession, tenant: Tenant, client: Client, month: date) -> Computed:
    views = await retainers_of(session, tenant.id, [client.id], month)
    view = views.get(client.id)
    since = view.retainer.start_month if view else month
    rows = (
        await session.execute(
            _USAGE,
            {
                "tenant_id": tenant.id,
                "client_id": client.id,
                "since": since,
                "until": month_end(month),
            },
        )
    ).all()
    approved_usage: dict[tuple[date, uuid.UUID], int] = {}
    approved = unapproved = 0
    for row in rows:
        approved_usage[(row.month, row.brand_id)] = int(row.approved)
        if row.month == month and (view is None or view.counts(month, row.brand_id)):
            approved += int(row.approved)
            unapproved += int(row.unapproved)
    if view is None:
        return Computed(tenant.currency, [], approved, unapproved)
    budget = budget_at(view, approved_usage, month)
    terms = pure_terms(view.terms_for(month))
    lines = draft_lines(month, view.retainer.currency, terms, budget, client.locale)
    return Computed(view.retainer.currency, lines, approved, unapproved)


def _line_rows(invoice: Invoice, computed: Computed, start: int) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            tenant_id=invoice.tenant_id,
            invoice_id=invoice.id,
            position=start + i,
            kind=line.kind,
            description=line.description,
            quantity_minutes=line.quantity_minutes,
            unit_amount_minor=line.unit_amount_minor,
            amount_minor=line.amount_minor,
            computation=line.computation,
        )
        for i, line in enumerate(computed.lines)
    ]


async def build_draft(
    session: AsyncSession, tenant: Tenant, client: Client, month: date
) -> Invoice | None:
    """The draft for a client's month, or None when the client already has an invoice for it."""
    computed = await compute(session, tenant, client, month)
    invoice_id = new_id()
    created = await session.scalar(
        insert(Invoice)
        .values(
            tenant_id=tenant.id,
            id=invoice_id,
            client_id=client.id,
            month=month,
            currency=computed.currency,
            locale=client.locale,
            approved_minutes=computed.approved,
            subtotal_minor=sum(line.amount_minor for line in computed.lines),
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(
            index_elements=["tenant_id", "client_id", "month"],
            index_where=text("status <> 'void'"),
        )
        .returning(col(Invoice.id))
    )
    if created is None:
        return None
    invoice = await session.get(Invoice, (tenant.id, invoice_id))
    assert invoice is not None
    session.add_all(_line_rows(invoice, computed, 1))
    outbox.record_event(
        session,
        tenant_id=tenant.id,
        type="invoice.draft_created",
        aggregate_type="invoice",
        aggregate_id=invoice_id,
        payload={"invoice_id": str(invoice_id), "client_id": str(client.id), "month": _fmt(month)},
    )
    await session.flush()
    return invoice


def _closed(principal_today: date, month: date) -> None:
    if month >= principal_today.replace(day=1):
        raise errors.MonthNotClosed(
            f"{_fmt(month)} has not ended yet in the agency's timezone; invoice it from the 1st."
        )


async def create_invoice(
    session: AsyncSession, principal: Principal, data: InvoiceCreate
) -> InvoiceRead:
    require_scope(principal, Resource.invoice, Verb.create)
    month = _month(data.month)
    with body_reference("/client_id"):
        client = await _client(session, principal.tenant_id, data.client_id)
    _closed(today_for(principal), month)
    tenant = (await session.scalars(select(Tenant).where(Tenant.id == principal.tenant_id))).one()
    invoice = await build_draft(session, tenant, client, month)
    if invoice is None:
        existing = await session.scalar(
            select(Invoice.id).where(
                Invoice.tenant_id == principal.tenant_id,
                Invoice.client_id == client.id,
                Invoice.month == month,
                Invoice.status != InvoiceStatus.void,
            )
        )
        raise errors.InvoiceExists(
            f"{client.name} already has an invoice for {_fmt(month)}.", invoice_id=str(existing)
        )
    record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor=principal,
        action="invoice.created",
        subject_type="invoice",
        subject_id=invoice.id,
        changes={"client_id": str(client.id), "month": _fmt(month)},
        request_id=principal.request_id,
    )
    return await _read(session, invoice, client.name)


async def build_month(session: AsyncSession, tenant: Tenant, month: date) -> list[uuid.UUID]:
    """The cron's work for one agency: a draft for every client with a retainer in `month`
    that has never had an invoice for it (a voided one is not rebuilt behind staff's back)."""
    views = await retainers_of(session, tenant.id, None, month)
    if not views:
        return []
    invoiced = set(
        (
            await session.scalars(
                select(Invoice.client_id).where(
                    Invoice.tenant_id == tenant.id,
                    Invoice.month == month,
                    col(Invoice.client_id).in_(list(views)),
                )
            )
        ).all()
    )
    created: list[uuid.UUID] = []
    clients = (
        await session.scalars(
            select(Client).where(
                Client.tenant_id == tenant.id,
                col(Client.id).in_([c for c in views if c not in invoiced]),
            )
        )
    ).all()
    for client in sorted(clients, key=lambda c: c.id):
        invoice = await build_draft(session, tenant, client, month)
        if invoice is not None:
            created.append(invoice.id)
    return created


def previous_month(today: date) -> date:
    return add_months(today.replace(day=1), -1)


# Reading


async def _load(
    session: AsyncSession,
    principal: Principal,
    invoice_id: uuid.UUID,
    verb: Verb,
    *,
    lock: bool = False,
) -> Invoice:
    invoice: Invoice = await load_readable(
        session,
        readable_invoices(principal, verb).where(col(Invoice.id) == invoice_id),
        lock=lock,
        missing=errors.InvoiceNotFound(),
    )
    return invoice


def readable_invoices(principal: Principal, verb: Verb = Verb.read) -> Select[Any]:
    """The agency's invoices, for the roles that handle them (require_scope refuses others)."""
    require_scope(principal, Resource.invoice, verb)
    return select(Invoice).where(Invoice.tenant_id == principal.tenant_id)


async def _unapproved(session: AsyncSession, invoice: Invoice) -> int:
    value = await session.scalar(
        select(func.coalesce(func.sum(TimeEntry.minutes), 0)).where(
            TimeEntry.tenant_id == invoice.tenant_id,
            TimeEntry.client_id == invoice.client_id,
            col(TimeEntry.billable).is_(True),
            TimeEntry.work_date >= invoice.month,
            TimeEntry.work_date <= month_end(invoice.month),
            col(TimeEntry.status).in_([EntryStatus.open, EntryStatus.submitted]),
        )
    )
    return int(value or 0)


async def _read(
    session: AsyncSession, invoice: Invoice, client_name: str | None = None
) -> InvoiceRead:
    lines = (
        await session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.tenant_id == invoice.tenant_id, InvoiceLine.invoice_id == invoice.id)
            .order_by(col(InvoiceLine.position))
        )
    ).all()
    notes = (
        await session.scalars(
            select(CreditNote)
            .where(CreditNote.tenant_id == invoice.tenant_id, CreditNote.invoice_id == invoice.id)
            .order_by(col(CreditNote.created_at), col(CreditNote.id))
        )
    ).all()
    if client_name is None:
        client_name = await session.scalar(
            select(Client.name).where(
                Client.tenant_id == invoice.tenant_id, Client.id == invoice.client_id
            )
        )
    return InvoiceRead(
        id=invoice.id,
        client_id=invoice.client_id,
        client_name=client_name or "",
        month=_fmt(invoice.month),
        number=invoice.number,
        status=invoice.status,
        currency=invoice.currency,
        locale=invoice.locale,
        mode=invoice.mode,
        subtotal_minor=invoice.subtotal_minor,
        credited_minor=invoice.credited_minor,
        total_minor=amount_due(invoice.subtotal_minor, invoice.credited_minor),
        notes=invoice.notes,
        due_days=invoice.due_days,
        stripe_status=invoice.stripe_status,
        stripe_error=invoice.stripe_error,
        stripe_invoice_id=invoice.stripe_invoice_id,
        stripe_hosted_url=invoice.stripe_hosted_url,
        unapproved_minutes=await _unapproved(session, invoice)
        if invoice.status == InvoiceStatus.draft
        else 0,
        finalized_at=invoice.finalized_at,
        voided_at=invoice.voided_at,
        void_reason=invoice.void_reason,
        version=invoice.version,
        lines=[
            InvoiceLineRead(
                id=line.id,
                position=line.position,
                kind=line.kind,
                description=line.description,
                quantity_minutes=line.quantity_minutes,
                unit_amount_minor=line.unit_amount_minor,
                amount_minor=line.amount_minor,
                computation=line.computation,
            )
            for line in lines
        ],
        credit_notes=[
            CreditNoteRead(
                id=n.id,
                number=n.number,
                amount_minor=n.amount_minor,
                reason=n.reason,
                created_by=n.created_by,
                created_at=n.created_at,
            )
            for n in notes
        ],
    )


async def get_invoice(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID
) -> InvoiceRead:
    return await _read(session, await _load(session, principal, invoice_id, Verb.read))


async def list_invoices(
    session: AsyncSession,
    principal: Principal,
    *,
    client_id: uuid.UUID | None,
    month: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[InvoiceSummary]:
    """Newest month first, then by id."""
    query = (
        readable_invoices(principal)
        .add_columns(col(Client.name))
        .join(
            Client,
            (col(Client.tenant_id) == col(Invoice.tenant_id))
            & (col(Client.id) == col(Invoice.client_id)),
        )
    )
    if client_id is not None:
        query = query.where(col(Invoice.client_id) == client_id)
    if month is not None:
        query = query.where(col(Invoice.month) == _month(month))
    if status is not None:
        query = query.where(col(Invoice.status) == status)
    rows = (await session.execute(INVOICE_ORDER.apply(query, cursor=cursor, limit=limit))).all()
    page, next_cursor = INVOICE_ORDER.page(rows, limit=limit)
    items = [
        InvoiceSummary(
            id=inv.id,
            client_id=inv.client_id,
            client_name=name,
            month=_fmt(inv.month),
            number=inv.number,
            status=inv.status,
            currency=inv.currency,
            mode=inv.mode,
            total_minor=amount_due(inv.subtotal_minor, inv.credited_minor),
            stripe_status=inv.stripe_status,
        )
        for inv, name in page
    ]
    return Page(items=items, next_cursor=next_cursor)


# Newest month first.
INVOICE_ORDER = Keyset(
    "invoices",
    [
        SortKey(col(Invoice.month), lambda r: r[0].month, date.fromisoformat, descending=True),
        id_key(col(Invoice.id), lambda r: r[0].id),
    ],
)


# Editing drafts


async def _draft(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID, if_match: int | None
) -> Invoice:
    invoice = await _load(session, principal, invoice_id, Verb.update, lock=True)
    check_version(invoice.version, if_match)
    if invoice.status != InvoiceStatus.draft:
        raise errors.InvoiceNotDraft(
            f"This invoice is {invoice.status}.", invoice_status=invoice.status
        )
    return invoice


async def _retotal(session: AsyncSession, invoice: Invoice) -> None:
    await session.flush()
    total = await session.scalar(
        select(func.coalesce(func.sum(InvoiceLine.amount_minor), 0)).where(
            InvoiceLine.tenant_id == invoice.tenant_id, InvoiceLine.invoice_id == invoice.id
        )
    )
    invoice.subtotal_minor = int(total or 0)
    bump(invoice)
    session.add(invoice)
    await session.flush()


async def update_invoice(
    session: AsyncSession,
    principal: Principal,
    invoice_id: uuid.UUID,
    data: InvoiceUpdate,
    if_match: int | None,
) -> InvoiceRead:
    invoice = await _draft(session, principal, invoice_id, if_match)
    changes = data.model_dump(exclude_unset=True)
    if "notes" in changes:
        invoice.notes = changes["notes"]
    if changes.get("due_days") is not None:
        invoice.due_days = changes["due_days"]
    await _retotal(session, invoice)
    return await _read(session, invoice)


async def _line(session: AsyncSession, invoice: Invoice, line_id: uuid.UUID) -> InvoiceLine:
    line = (
        await session.scalars(
            select(InvoiceLine).where(
                InvoiceLine.tenant_id == invoice.tenant_id,
                InvoiceLine.invoice_id == invoice.id,
                InvoiceLine.id == line_id,
            )
        )
    ).first()
    if line is None:
        raise errors.InvoiceLineNotFound()
    return line


async def add_line(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID, data: LineCreate
) -> InvoiceRead:
    invoice = await _draft(session, principal, invoice_id, None)
    last = await session.scalar(
        select(func.coalesce(func.max(InvoiceLine.position), 0)).where(
            InvoiceLine.tenant_id == invoice.tenant_id, InvoiceLine.invoice_id == invoice.id
        )
    )
    session.add(
        InvoiceLine(
            tenant_id=invoice.tenant_id,
            invoice_id=invoice.id,
            position=int(last or 0) + 1,
            kind=LineKind.manual,
            description=data.description,
            amount_minor=data.amount_minor,
            computation={"rule": "entered by staff", "by": str(principal.user_id)},
        )
    )
    await _retotal(session, invoice)
    return await _read(session, invoice)


async def update_line(
    session: AsyncSession,
    principal: Principal,
    invoice_id: uuid.UUID,
    line_id: uuid.UUID,
    data: LineUpdate,
) -> InvoiceRead:
    invoice = await _draft(session, principal, invoice_id, None)
    line = await _line(session, invoice, line_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "amount_minor" in changes and changes["amount_minor"] != line.amount_minor:
        # A computed line keeps its working and says it was adjusted, by whom and from what.
        line.computation = {
            **line.computation,
            "adjusted": {
                "from_minor": line.amount_minor,
                "to_minor": changes["amount_minor"],
                "by": str(principal.user_id),
            },
        }
        line.amount_minor = changes["amount_minor"]
    if "description" in changes:
        line.description = changes["description"]
    session.add(line)
    await _retotal(session, invoice)
    return await _read(session, invoice)


async def delete_line(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID, line_id: uuid.UUID
) -> InvoiceRead:
    invoice = await _draft(session, principal, invoice_id, None)
    line = await _line(session, invoice, line_id)
    await session.delete(line)
    await _retotal(session, invoice)
    return await _read(session, invoice)


async def refresh_invoice(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID, if_match: int | None
) -> InvoiceRead:
    """Recompute the time lines from what is approved now; manual lines stay."""
    invoice = await _draft(session, principal, invoice_id, if_match)
    tenant = (await session.scalars(select(Tenant).where(Tenant.id == invoice.tenant_id))).one()
    client = await _client(session, invoice.tenant_id, invoice.client_id)
    computed = await compute(session, tenant, client, invoice.month)
    old = (
        await session.scalars(
            select(InvoiceLine).where(
                InvoiceLine.tenant_id == invoice.tenant_id,
                InvoiceLine.invoice_id == invoice.id,
            )
        )
    ).all()
    manual = sorted((x for x in old if x.kind == LineKind.manual), key=lambda x: x.position)
    for line in old:
        if line.kind != LineKind.manual:
            await session.delete(line)
    await session.flush()
    for i, line in enumerate(manual):
        line.position = len(computed.lines) + 1 + i
        session.add(line)
    session.add_all(_line_rows(invoice, computed, 1))
    invoice.approved_minutes = computed.approved
    await _retotal(session, invoice)
    return await _read(session, invoice)


# Finalizing, voiding, crediting


async def _approved_minutes(session: AsyncSession, invoice: Invoice, tenant: Tenant) -> int:
    client = await _client(session, invoice.tenant_id, invoice.client_id)
    return (await compute(session, tenant, client, invoice.month)).approved


async def finalize_invoice(
    session: AsyncSession,
    principal: Principal,
    invoice_id: uuid.UUID,
    if_match: int | None,
    settings: Settings,
) -> InvoiceRead:
    """Number it, lock its time, and hand it to Stripe (after commit) or mark it external.

    The invoice row lock serializes finalizations: of two racing requests, the second finds
    the invoice finalized and gets 409."""
    invoice = await _load(session, principal, invoice_id, Verb.approve, lock=True)
    check_version(invoice.version, if_match)
    if invoice.status != InvoiceStatus.draft:
        raise errors.InvoiceNotDraft(
            f"This invoice is {invoice.status}.", invoice_status=invoice.status
        )
    if invoice.subtotal_minor < 0:
        raise errors.NegativeInvoice()
    tenant = (
        await session.scalars(
            select(Tenant).where(Tenant.id == invoice.tenant_id).with_for_update()
        )
    ).one()
    approved = await _approved_minutes(session, invoice, tenant)
    if approved != invoice.approved_minutes:
        raise errors.InvoiceStale(
            f"The draft counts {invoice.approved_minutes} approved minutes; {approved} are "
            "approved now. POST /v1/invoices/{id}/refresh, review, then finalize.",
        )
    number = f"{invoice.month.year}-{tenant.next_invoice_number:05d}"
    tenant.next_invoice_number += 1
    session.add(tenant)
    locked = await session.execute(
        update(TimeEntry)
        .where(
            col(TimeEntry.tenant_id) == invoice.tenant_id,
            col(TimeEntry.client_id) == invoice.client_id,
            col(TimeEntry.work_date) >= invoice.month,
            col(TimeEntry.work_date) <= month_end(invoice.month),
            col(TimeEntry.status) == EntryStatus.approved,
            col(TimeEntry.billable).is_(True),
            col(TimeEntry.invoice_id).is_(None),
        )
        .values(
            invoice_id=invoice.id,
            status=EntryStatus.invoiced,
            version=TimeEntry.version + 1,
            updated_at=utcnow(),
        )
    )
    to_stripe = settings.stripe_configured and tenant.stripe_account_id is not None
    invoice.status = InvoiceStatus.finalized
    invoice.number = number
    invoice.mode = InvoiceMode.stripe if to_stripe else InvoiceMode.external
    invoice.stripe_status = StripeSync.pending if to_stripe else None
    invoice.finalized_at = utcnow()
    bump(invoice)
    session.add(invoice)
    record_audit(
        session,
        tenant_id=invoice.tenant_id,
        actor=principal,
        action="invoice.finalized",
        subject_type="invoice",
        subject_id=invoice.id,
        changes={"number": number, "mode": invoice.mode, "entries_locked": locked.rowcount},  # type: ignore[attr-defined]
        request_id=principal.request_id,
    )
    outbox.record_event(
        session,
        tenant_id=invoice.tenant_id,
        type="invoice.finalized",
        aggregate_type="invoice",
        aggregate_id=invoice.id,
        payload={"invoice_id": str(invoice.id), "number": number, "mode": invoice.mode},
        request_id=principal.request_id,
    )
    await session.flush()
    return await _read(session, invoice)


async def void_invoice(
    session: AsyncSession,
    principal: Principal,
    invoice_id: uuid.UUID,
    data: InvoiceVoid,
    if_match: int | None,
) -> InvoiceRead:
    """Void a finalized invoice: its time is released for a replacement invoice."""
    invoice = await _load(session, principal, invoice_id, Verb.approve, lock=True)
    check_version(invoice.version, if_match)
    if invoice.status != InvoiceStatus.finalized:
        raise errors.InvoiceNotFinalized(
            f"This invoice is {invoice.status}.", invoice_status=invoice.status
        )
    invoice.status = InvoiceStatus.void
    invoice.voided_at = utcnow()
    invoice.void_reason = data.reason
    bump(invoice)
    session.add(invoice)
    # The invoice is void first: the database lets invoiced time go only from a void invoice.
    await session.flush()
    await session.execute(
        update(TimeEntry)
        .where(
            col(TimeEntry.tenant_id) == invoice.tenant_id, col(TimeEntry.invoice_id) == invoice.id
        )
        .values(
            invoice_id=None,
            status=EntryStatus.approved,
            version=TimeEntry.version + 1,
            updated_at=utcnow(),
        )
    )
    record_audit(
        session,
        tenant_id=invoice.tenant_id,
        actor=principal,
        action="invoice.voided",
        subject_type="invoice",
        subject_id=invoice.id,
        changes={"reason": data.reason},
        request_id=principal.request_id,
    )
    outbox.record_event(
        session,
        tenant_id=invoice.tenant_id,
        type="invoice.voided",
        aggregate_type="invoice",
        aggregate_id=invoice.id,
        payload={"invoice_id": str(invoice.id), "number": invoice.number, "mode": invoice.mode},
        request_id=principal.request_id,
    )
    await session.flush()
    return await _read(session, invoice)


async def add_credit_note(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID, data: CreditNoteCreate
) -> InvoiceRead:
    invoice = await _load(session, principal, invoice_id, Verb.approve, lock=True)
    if invoice.status != InvoiceStatus.finalized:
        raise errors.InvoiceNotFinalized(
            f"This invoice is {invoice.status}.", invoice_status=invoice.status
        )
    room = credit_room(invoice.subtotal_minor, invoice.credited_minor)
    if data.amount_minor > room:
        raise errors.CreditTooLarge(
            f"At most {room} more can be credited on this invoice.", available_minor=room
        )
    count = await session.scalar(
        select(func.count())
        .select_from(CreditNote)
        .where(CreditNote.tenant_id == invoice.tenant_id, CreditNote.invoice_id == invoice.id)
    )
    note = CreditNote(
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.id,
        number=f"{invoice.number}-C{int(count or 0) + 1}",
        amount_minor=data.amount_minor,
        reason=data.reason,
        created_by=principal.user_id,
    )
    session.add(note)
    invoice.credited_minor += data.amount_minor
    bump(invoice)
    session.add(invoice)
    record_audit(
        session,
        tenant_id=invoice.tenant_id,
        actor=principal,
        action="invoice.credited",
        subject_type="invoice",
        subject_id=invoice.id,
        changes={"credit_note": note.number, "amount_minor": data.amount_minor},
        request_id=principal.request_id,
    )
    await session.flush()
    return await _read(session, invoice)


async def export_data(
    session: AsyncSession, principal: Principal, invoice_id: uuid.UUID
) -> tuple[InvoiceRead, Tenant, Client]:
    invoice = await _load(session, principal, invoice_id, Verb.read)
    tenant = (await session.scalars(select(Tenant).where(Tenant.id == invoice.tenant_id))).one()
    client = await _client(session, invoice.tenant_id, invoice.client_id)
    return await _read(session, invoice, client.name), tenant, client
