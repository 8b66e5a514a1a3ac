"""Agencies' invoices to their clients: drafts, edits, finalization, void, credit notes,
exports."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentPrincipal, IfMatch, ResourcesDep, SessionDep, tagged
from api.problems import responses
from billing.invoices import service as invoices
from billing.invoices.exports import invoice_csv, invoice_pdf
from billing.invoices.schemas import (
    CreditNoteCreate,
    InvoiceCreate,
    InvoiceRead,
    InvoiceSummary,
    InvoiceUpdate,
    InvoiceVoid,
    LineCreate,
    LineUpdate,
    MonthStr,
)
from infra.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/invoices", tags=["invoices"])


@router.get("", summary="List client invoices, newest month first")
async def list_invoices(
    principal: CurrentPrincipal,
    session: SessionDep,
    client_id: uuid.UUID | None = None,
    month: MonthStr | None = None,
    invoice_status: Annotated[
        Literal["draft", "finalized", "void"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[InvoiceSummary]:
    return await invoices.list_invoices(
        session,
        principal,
        client_id=client_id,
        month=month,
        status=invoice_status,
        limit=limit,
        cursor=cursor,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Build the draft invoice of a client's closed month now",
)
async def create_invoice(
    body: InvoiceCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> InvoiceRead:
    return tagged(response, await invoices.create_invoice(session, principal, body))


@router.get("/{invoice_id}", summary="An invoice with its lines, their working and credit notes")
async def get_invoice(
    invoice_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> InvoiceRead:
    return tagged(response, await invoices.get_invoice(session, principal, invoice_id))


@router.patch(
    "/{invoice_id}", responses=responses(409, 412), summary="Edit a draft's notes and terms"
)
async def update_invoice(
    invoice_id: uuid.UUID,
    body: InvoiceUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> InvoiceRead:
    return tagged(
        response, await invoices.update_invoice(session, principal, invoice_id, body, if_match)
    )


@router.post(
    "/{invoice_id}/lines",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Add a manual line to a draft",
)
async def add_invoice_line(
    invoice_id: uuid.UUID,
    body: LineCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
) -> InvoiceRead:
    return tagged(response, await invoices.add_line(session, principal, invoice_id, body))


@router.patch(
    "/{invoice_id}/lines/{line_id}",
    responses=responses(409),
    summary="Change a draft line's description or amount (the change is recorded on it)",
)
async def update_invoice_line(
    invoice_id: uuid.UUID,
    line_id: uuid.UUID,
    body: LineUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
) -> InvoiceRead:
    return tagged(
        response, await invoices.update_line(session, principal, invoice_id, line_id, body)
    )


@router.delete(
    "/{invoice_id}/lines/{line_id}", responses=responses(409), summary="Remove a draft line"
)
async def delete_invoice_line(
    invoice_id: uuid.UUID,
    line_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
) -> InvoiceRead:
    return tagged(response, await invoices.delete_line(session, principal, invoice_id, line_id))


@router.post(
    "/{invoice_id}/refresh",
    responses=responses(409, 412),
    summary="Recompute a draft's time lines from the time approved now",
)
async def refresh_invoice(
    invoice_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> InvoiceRead:
    return tagged(
        response, await invoices.refresh_invoice(session, principal, invoice_id, if_match)
    )


@router.post(
    "/{invoice_id}/finalize",
    responses=responses(409, 412),
    summary="Number the invoice, lock its time, and issue it (Stripe or external)",
)
async def finalize_invoice(
    invoice_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    if_match: IfMatch,
    response: Response,
) -> InvoiceRead:
    return tagged(
        response,
        await invoices.finalize_invoice(
            session, principal, invoice_id, if_match, resources.settings
        ),
    )


@router.post(
    "/{invoice_id}/void",
    responses=responses(409, 412),
    summary="Void a finalized invoice; its time can be invoiced again",
)
async def void_invoice(
    invoice_id: uuid.UUID,
    body: InvoiceVoid,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> InvoiceRead:
    return tagged(
        response, await invoices.void_invoice(session, principal, invoice_id, body, if_match)
    )


@router.post(
    "/{invoice_id}/credit-notes",
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Credit part or all of a finalized invoice",
)
async def create_credit_note(
    invoice_id: uuid.UUID,
    body: CreditNoteCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    response: Response,
) -> InvoiceRead:
    return tagged(response, await invoices.add_credit_note(session, principal, invoice_id, body))


@router.get(
    "/{invoice_id}/csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The invoice as CSV"}},
    summary="Export an invoice as CSV (amounts in minor units)",
)
async def export_invoice_csv(
    invoice_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    invoice, _, _ = await invoices.export_data(session, principal, invoice_id)
    name = invoice.number or f"draft-{invoice.month}"
    return Response(
        invoice_csv(invoice),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="invoice-{name}.csv"'},
    )


@router.get(
    "/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The invoice as PDF"}},
    summary="Export an invoice as a PDF in the client's language",
)
async def export_invoice_pdf(
    invoice_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    invoice, tenant, client = await invoices.export_data(session, principal, invoice_id)
    name = invoice.number or f"draft-{invoice.month}"
    return Response(
        invoice_pdf(invoice, tenant, client),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="invoice-{name}.pdf"'},
    )
