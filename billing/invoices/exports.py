"""An invoice as CSV (for the agency's accounting) and as a PDF in the client's language."""

from __future__ import annotations

import csv
import io

from fpdf import FPDF

from billing.invoices.invoicing import format_minutes, format_money
from billing.invoices.schemas import InvoiceRead
from infra.i18n import language, month_name
from tenants.capacity import parse_month
from tenants.models import Client, Tenant

_LABELS = {
    "en": {
        "invoice": "Invoice",
        "draft": "DRAFT - not a valid invoice",
        "void": "VOID",
        "number": "Number",
        "month": "Period",
        "to": "Billed to",
        "from": "From",
        "description": "Description",
        "quantity": "Hours",
        "rate": "Rate / h",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "credited": "Credited",
        "total": "Total due",
        "due": "Payable within {days} days.",
        "credit_note": "Credit note",
    },
    "fr": {
        "invoice": "Facture",
        "draft": "BROUILLON - facture non valable",
        "void": "ANNULÉE",
        "number": "Numéro",
        "month": "Période",
        "to": "Facturé à",
        "from": "De",
        "description": "Désignation",
        "quantity": "Heures",
        "rate": "Taux / h",
        "amount": "Montant",
        "subtotal": "Sous-total",
        "credited": "Avoirs",
        "total": "Total à payer",
        "due": "Payable sous {days} jours.",
        "credit_note": "Avoir",
    },
}

CSV_HEADER = [
    "invoice_number",
    "client",
    "month",
    "currency",
    "line",
    "kind",
    "description",
    "quantity_minutes",
    "unit_amount_minor",
    "amount_minor",
]


def invoice_csv(invoice: InvoiceRead) -> str:
    """One row per line, then credit notes (negative) and the total: amounts in minor units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    base = [invoice.number or "", _safe(invoice.client_name), invoice.month, invoice.currency]
    for line in invoice.lines:
        writer.writerow(
            [
                *base,
                line.position,
                line.kind,
                _safe(line.description),
                "" if line.quantity_minutes is None else line.quantity_minutes,
                "" if line.unit_amount_minor is None else line.unit_amount_minor,
                line.amount_minor,
            ]
        )
    for note in invoice.credit_notes:
        writer.writerow(
            [
                *base,
                "",
                "credit_note",
                _safe(f"{note.number}: {note.reason}"),
                "",
                "",
                -note.amount_minor,
            ]
        )
    writer.writerow([*base, "", "total", "", "", "", invoice.total_minor])
    return out.getvalue()


def _safe(text: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheets: keep it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def invoice_pdf(invoice: InvoiceRead, tenant: Tenant, client: Client) -> bytes:
    words = _LABELS[language(invoice.locale)]
    locale = invoice.locale

    def money(minor: int) -> str:
        return format_money(minor, invoice.currency, locale)

    pdf = FPDF(format="A4")
    pdf.set_title(f"{words['invoice']} {invoice.number or ''}".strip())
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.cell(
        0, 10, _latin(f"{words['invoice']} {invoice.number or ''}"), new_x="LMARGIN", new_y="NEXT"
    )
    if invoice.status != "finalized":
        pdf.set_text_color(200, 0, 0)
        pdf.set_font("helvetica", "B", 12)
        label = words["draft"] if invoice.status == "draft" else words["void"]
        pdf.cell(0, 8, _latin(label), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.set_font("helvetica", "", 11)
    period = month_name(parse_month(invoice.month)[0], locale)
    for label, value in (
        (words["from"], tenant.name),
        (words["to"], client.legal_name or client.name),
        (words["month"], period),
    ):
        pdf.cell(0, 7, _latin(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("helvetica", "B", 10)
    widths = (95, 25, 30, 40)
    for width, title in zip(
        widths,
        (words["description"], words["quantity"], words["rate"], words["amount"]),
        strict=True,
    ):
        pdf.cell(width, 8, _latin(title), border="B")
    pdf.ln()
    pdf.set_font("helvetica", "", 10)
    for line in invoice.lines:
        pdf.cell(widths[0], 7, _latin(line.description[:60]))
        pdf.cell(
            widths[1], 7, format_minutes(line.quantity_minutes) if line.quantity_minutes else ""
        )
        pdf.cell(
            widths[2], 7, _latin(money(line.unit_amount_minor)) if line.unit_amount_minor else ""
        )
        pdf.cell(widths[3], 7, _latin(money(line.amount_minor)), align="R")
        pdf.ln()
    pdf.ln(2)
    totals: list[tuple[str, int]] = [(words["subtotal"], invoice.subtotal_minor)]
    for note in invoice.credit_notes:
        totals.append((f"{words['credit_note']} {note.number}", -note.amount_minor))
    totals.append((words["total"], invoice.total_minor))
    for caption, figure in totals:
        pdf.cell(sum(widths[:3]), 7, _latin(caption), align="R")
        pdf.cell(widths[3], 7, _latin(money(figure)), align="R")
        pdf.ln()
    pdf.ln(4)
    pdf.cell(
        0, 7, _latin(words["due"].format(days=invoice.due_days)), new_x="LMARGIN", new_y="NEXT"
    )
    if invoice.notes:
        pdf.multi_cell(0, 6, _latin(invoice.notes))
    return bytes(pdf.output())


def _latin(text: str) -> str:
    """The core PDF fonts speak Latin-1: French is covered; other characters become '?'."""
    return (
        text.replace("\u202f", " ").replace("—", "-").encode("latin-1", "replace").decode("latin-1")
    )
