"""A finalized client invoice, made on the agency's connected Stripe account.

Each step is keyed by our own ids (`Idempotency-Key`) and what it made is stored as soon as
it is known, so a retry resumes where the last try stopped and never makes an object twice.
"""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from billing.invoices.models import Invoice, InvoiceLine, InvoiceMode, InvoiceStatus, StripeSync
from billing.subscription.stripe_gateway import StripeGateway
from infra.clock import utcnow
from infra.db import Database
from tenants.models import Client, Tenant


async def push(
    db: Database, stripe_api: StripeGateway, tenant_id: uuid.UUID, invoice_id: uuid.UUID
) -> str:
    async with db.tenant_transaction(tenant_id) as session:
        invoice = await session.get(Invoice, (tenant_id, invoice_id))
        if invoice is None or invoice.mode != InvoiceMode.stripe:
            return "not a Stripe invoice"
        if invoice.stripe_status == StripeSync.synced:
            return "already synced"
        tenant = (await session.scalars(select(Tenant).where(Tenant.id == tenant_id))).one()
        client = (
            await session.scalars(
                select(Client).where(Client.tenant_id == tenant_id, Client.id == invoice.client_id)
            )
        ).one()
        lines = (
            await session.scalars(
                select(InvoiceLine)
                .where(InvoiceLine.tenant_id == tenant_id, InvoiceLine.invoice_id == invoice_id)
                .order_by(col(InvoiceLine.position))
            )
        ).all()
    account = tenant.stripe_account_id
    if account is None:
        raise NoAccount()
    customer = _customer_on(client.stripe_customer_id, account)
    if customer is None:
        made = await stripe_api.create_customer(
            {
                "name": client.legal_name or client.name,
                "email": client.billing_email,
                "preferred_locales": [client.locale],
                "metadata": {"client_id": str(client.id)},
            },
            key=f"client-customer-{client.id}-{account}",
            account=account,
        )
        customer = made["id"]
        async with db.tenant_transaction(tenant_id) as session:
            row = await session.get(Client, (tenant_id, client.id))
            assert row is not None
            row.stripe_customer_id = f"{account}/{customer}"
            session.add(row)
    stripe_invoice_id = invoice.stripe_invoice_id
    if stripe_invoice_id is None:
        made = await stripe_api.create_invoice(
            {
                "customer": customer,
                "currency": invoice.currency.lower(),
                "collection_method": "send_invoice",
                "days_until_due": invoice.due_days,
                "auto_advance": False,
                "pending_invoice_items_behavior": "exclude",
                "description": invoice.notes or "",
                "metadata": {"passerelle_invoice_id": str(invoice.id), "number": invoice.number},
            },
            key=f"invoice-{invoice.id}",
            account=account,
        )
        stripe_invoice_id = made["id"]
        await _store(db, tenant_id, invoice_id, stripe_invoice_id=stripe_invoice_id)
    for line in lines:
        await stripe_api.create_invoice_item(
            {
                "customer": customer,
                "invoice": stripe_invoice_id,
                "amount": line.amount_minor,
                "currency": invoice.currency.lower(),
                "description": line.description,
                "metadata": {"passerelle_line_id": str(line.id)},
            },
            key=f"invoice-line-{line.id}",
            account=account,
        )
    final = await stripe_api.finalize_invoice(
        stripe_invoice_id, key=f"invoice-finalize-{invoice.id}", account=account
    )
    await _store(
        db,
        tenant_id,
        invoice_id,
        stripe_status=StripeSync.synced,
        stripe_error=None,
        stripe_hosted_url=final.get("hosted_invoice_url"),
    )
    return "synced"


class NoAccount(Exception):
    def __str__(self) -> str:
        return "the agency has disconnected its Stripe account"


def _customer_on(stored: str | None, account: str) -> str | None:
    """Stored as 'acct/cus': a customer belongs to one connected account."""
    if not stored or "/" not in stored:
        return None
    owner, customer = stored.split("/", 1)
    return customer if owner == account else None


async def _store(
    db: Database, tenant_id: uuid.UUID, invoice_id: uuid.UUID, **values: object
) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        invoice = await session.get(Invoice, (tenant_id, invoice_id))
        assert invoice is not None
        for key, value in values.items():
            setattr(invoice, key, value)
        invoice.updated_at = utcnow()
        session.add(invoice)


async def record_failure(
    db: Database, tenant_id: uuid.UUID, invoice_id: uuid.UUID, error: str, *, final: bool
) -> None:
    """The invoice shows the reason; it stays `pending` while retries remain."""
    await _store(
        db,
        tenant_id,
        invoice_id,
        stripe_error=error,
        stripe_status=StripeSync.failed if final else StripeSync.pending,
    )


async def void(
    db: Database, stripe_api: StripeGateway, tenant_id: uuid.UUID, invoice_id: uuid.UUID
) -> str:
    async with db.tenant_transaction(tenant_id) as session:
        invoice = await session.get(Invoice, (tenant_id, invoice_id))
        tenant = (await session.scalars(select(Tenant).where(Tenant.id == tenant_id))).one()
    if invoice is None or invoice.status != InvoiceStatus.void:
        return "not void"
    if invoice.stripe_status == StripeSync.pending:
        return "wait"  # the push is still under way; void what it makes once it is done
    if invoice.stripe_invoice_id is None or tenant.stripe_account_id is None:
        return "nothing on Stripe"
    await stripe_api.void_invoice(
        invoice.stripe_invoice_id,
        key=f"invoice-void-{invoice.id}",
        account=tenant.stripe_account_id,
    )
    return "voided"
