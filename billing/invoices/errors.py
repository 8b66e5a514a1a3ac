"""Errors of client invoices, each an RFC 9457 problem with a stable type."""

from __future__ import annotations

from infra.errors import ProblemError


class InvoiceNotFound(ProblemError):
    status = 404
    type_slug = "invoice-not-found"
    title = "Invoice not found"


class InvoiceLineNotFound(ProblemError):
    status = 404
    type_slug = "invoice-line-not-found"
    title = "Invoice line not found"


class InvoiceExists(ProblemError):
    status = 409
    type_slug = "invoice-exists"
    title = "This client already has an invoice for this month"


class InvoiceNotDraft(ProblemError):
    status = 409
    type_slug = "invoice-not-draft"
    title = "Only a draft invoice can be changed or finalized"


class InvoiceNotFinalized(ProblemError):
    status = 409
    type_slug = "invoice-not-finalized"
    title = "Only a finalized invoice can be voided or credited"


class MonthNotClosed(ProblemError):
    status = 422
    type_slug = "month-not-closed"
    title = "A month is invoiced once it has ended"


class NegativeInvoice(ProblemError):
    status = 422
    type_slug = "negative-invoice"
    title = "An invoice cannot total less than zero"


class CreditTooLarge(ProblemError):
    status = 422
    type_slug = "credit-too-large"
    title = "Credit notes cannot exceed what was invoiced"


class EntryInvoiced(ProblemError):
    status = 409
    type_slug = "entry-invoiced"
    title = "This time entry is on a finalized invoice"


class InvoiceStale(ProblemError):
    status = 409
    type_slug = "invoice-stale"
    title = "Time approved since this draft was computed is not on it"
