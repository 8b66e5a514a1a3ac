"""The client portal's pages for a signed-in contact: what awaits them, the decision page,
their history, the month's budget in hours and the monthly reports (page and PDF).

Each page calls the service the API's matching endpoint calls, with the contact as principal;
another agency's or another client's ids meet the same 404 page as unknown ones.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from billing.budgets import errors as budget_errors
from billing.budgets import service as budgets
from inbox.service import figures as community
from infra.clock import utcnow
from infra.errors import NotFound, ProblemError
from infra.i18n import month_name
from publishing import figures
from social.report_pdf import render_report_pdf
from social.service import reports
from tenants import service as tenants
from web.csrf import verified_form
from web.deps import ResourcesDep, SessionDep
from web.errors import PageError
from web.preview import comment_views, post_view, with_partials
from web.render import render
from web.session import PORTAL_TEXT, Contact, ContactDep
from workflows import service as workflows
from workflows.link_expiry import expiry_moment
from workflows.schemas import DecisionCreate
from workflows.service.approvals import LINK_DECISIONS, MENTION
from workflows.service.portal import my_decisions

router = APIRouter()

PAGE_SIZE = 25
MAX_COMMENT = 10_000
REPORT_MONTHS = 24
MONTH = re.compile(r"^(20[0-9]{2})-(0[1-9]|1[0-2])$")

TEXT = {
    "en": {
        **PORTAL_TEXT["en"],
        "nav.label": "Portal",
        "nav.inbox": "To decide",
        "nav.history": "History",
        "nav.budget": "Budget",
        "nav.reports": "Reports",
        "nav.sign_out": "Sign out",
        "inbox.title": "Awaiting your decision",
        "inbox.empty": "Nothing awaits your decision.",
        "inbox.planned": "Planned for {when}",
        "inbox.unplanned": "No date planned yet",
        "inbox.due": "Decide by {when}",
        "more": "More",
        "content.decided": "Your decision is recorded. Thank you.",
        "content.not_yours": "There is nothing for you to decide on this post now.",
        "history.approve": "Approved",
        "history.request_changes": "Changes requested",
        "history.reject": "Rejected",
        "problem.revision-superseded": "The post changed while you were reading it. Read the "
        "new version below and decide again.",
        "problem.step-closed": "This approval step is closed: someone else already decided, or "
        "the time to decide ran out.",
        "problem.already-decided": "You already decided on this version.",
        "problem.not-an-approver": "You are not one of the approvers of this step.",
        "problem.invalid-transition": "The post is no longer awaiting a decision.",
        "problem.other": "Your decision could not be recorded. Reload the page and try again.",
        "history.title": "Your decisions",
        "history.empty": "You have not decided on any post yet.",
        "history.on": "on {when}",
        "budget.title": "Budget for {month}",
        "budget.none": "No budget is set for {month}.",
        "budget.used": "Used",
        "budget.available": "Available this month",
        "budget.remaining": "Remaining",
        "budget.projected": "Projected by month end",
        "budget.overage": "Over the budget",
        "budget.by_brand": "By brand",
        "budget.previous": "Previous month",
        "budget.next": "Next month",
        "budget.hours": "{hours} h",
        "reports.title": "Monthly reports",
        "reports.pdf": "PDF",
        "report.title": "Report for {month}",
        "report.download": "Download the PDF",
        "report.followers": "Followers at month end",
        "report.follower_change": "Follower change",
        "report.impressions": "Impressions",
        "report.reach": "Reach",
        "report.engagements": "Engagements",
        "report.posts": "Posts published",
        "report.top_posts": "Top posts",
        "report.none": "—",
    },
    "fr": {
        **PORTAL_TEXT["fr"],
        "nav.label": "Espace client",
        "nav.inbox": "À décider",
        "nav.history": "Historique",
        "nav.budget": "Budget",
        "nav.reports": "Rapports",
        "nav.sign_out": "Se déconnecter",
        "inbox.title": "En attente de votre décision",
        "inbox.empty": "Rien n'attend votre décision.",
        "inbox.planned": "Prévu le {when}",
        "inbox.unplanned": "Pas encore de date prévue",
        "inbox.due": "À décider avant le {when}",
        "more": "Suite",
        "content.decided": "Votre décision est enregistrée. Merci.",
        "content.not_yours": "Vous n'avez rien à décider sur cette publication pour l'instant.",
        "history.approve": "Approuvée",
        "history.request_changes": "Modifications demandées",
        "history.reject": "Refusée",
        "problem.revision-superseded": "La publication a changé pendant votre lecture. Lisez "
        "la nouvelle version ci-dessous et décidez de nouveau.",
        "problem.step-closed": "Cette étape d'approbation est close : quelqu'un d'autre a "
        "décidé, ou le délai est écoulé.",
        "problem.already-decided": "Vous avez déjà décidé sur cette version.",
        "problem.not-an-approver": "Vous ne faites pas partie des approbateurs de cette étape.",
        "problem.invalid-transition": "La publication n'attend plus de décision.",
        "problem.other": "Votre décision n'a pas pu être enregistrée. Rechargez la page et "
        "réessayez.",
        "history.title": "Vos décisions",
        "history.empty": "Vous n'avez encore décidé sur aucune publication.",
        "history.on": "le {when}",
        "budget.title": "Budget de {month}",
        "budget.none": "Aucun budget n'est prévu pour {month}.",
        "budget.used": "Utilisé",
        "budget.available": "Disponible ce mois-ci",
        "budget.remaining": "Restant",
        "budget.projected": "Projection à la fin du mois",
        "budget.overage": "Au-delà du budget",
        "budget.by_brand": "Par marque",
        "budget.previous": "Mois précédent",
        "budget.next": "Mois suivant",
        "budget.hours": "{hours} h",
        "reports.title": "Rapports mensuels",
        "reports.pdf": "PDF",
        "report.title": "Rapport de {month}",
        "report.download": "Télécharger le PDF",
        "report.followers": "Abonnés en fin de mois",
        "report.follower_change": "Variation des abonnés",
        "report.impressions": "Impressions",
        "report.reach": "Portée",
        "report.engagements": "Interactions",
        "report.posts": "Publications",
        "report.top_posts": "Meilleures publications",
        "report.none": "—",
    },
}


PAGE_TEXT = with_partials(TEXT)


def _page(
    request: Request,
    contact: Contact,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        template,
        {**context, "contact": contact, "fmt": _Formats(contact)},
        language=contact.language,
        agency=contact.agency,
        text=PAGE_TEXT,
        status_code=status_code,
    )


class _Formats:
    """Dates and hours as the contact reads them, for the templates."""

    def __init__(self, contact: Contact) -> None:
        self._language = contact.language

    def moment(self, when: datetime | None, zone: str) -> str:
        return expiry_moment(when, self._language, zone) if when else ""

    def hours(self, minutes: int) -> str:
        text = f"{minutes / 60:.1f}".removesuffix(".0")
        return text.replace(".", ",") if self._language == "fr" else text

    def month(self, value: str) -> str:
        year, number = (int(part) for part in value.split("-"))
        return month_name(date(year, number, 1), self._language)

    def number(self, value: int | None) -> str:
        if value is None:
            return "—"
        text = f"{value:,}"
        return text.replace(",", "\u202f") if self._language == "fr" else text


def _not_found(contact: Contact) -> PageError:
    return PageError(404, "error.not_found", language=contact.language, agency=contact.agency)


@asynccontextmanager
async def _found(contact: Contact) -> AsyncIterator[None]:
    """A service's "not found" (unknown, another client's, another agency's) is the 404 page;
    any other refusal (a bad cursor or month) a 400 page."""
    try:
        yield
    except NotFound as exc:
        raise _not_found(contact) from exc
    except ProblemError as exc:
        raise PageError(
            400, "error.bad_request", language=contact.language, agency=contact.agency
        ) from exc


def _content_id(value: str, contact: Contact) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise _not_found(contact) from exc


def _cursor(request: Request, contact: Contact) -> str | None:
    cursor = request.query_params.get("cursor") or None
    if cursor is not None and len(cursor) > 1000:
        raise PageError(400, "error.bad_request", language=contact.language, agency=contact.agency)
    return cursor


@router.get("/portal", response_class=HTMLResponse)
async def inbox_page(request: Request, contact: ContactDep, session: SessionDep) -> HTMLResponse:
    principal = contact.principal
    async with _found(contact):
        page = await workflows.inbox(
            session, principal, limit=PAGE_SIZE, cursor=_cursor(request, contact)
        )
        zones = {
            brand_id: (await tenants.get_brand(session, principal, brand_id)).timezone
            for brand_id in {item.brand_id for item in page.items}
        }
    return _page(request, contact, "portal/inbox.html", {"page": page, "zones": zones})


async def _content_context(
    session: SessionDep, contact: Contact, content_id: uuid.UUID
) -> dict[str, Any]:
    """The decision page's post, comments and form, built like the external approver's."""
    principal = contact.principal
    async with _found(contact):
        item = await workflows.get_content(session, principal, content_id)
        comments = await workflows.list_comments(
            session, principal, content_id, limit=200, cursor=None
        )
        brand = await tenants.get_brand(session, principal, item.brand_id)
    revision = item.revision
    post = post_view(
        title=item.title,
        brand_name=brand.name,
        variants=revision.variants if revision else {},
        media=revision.media if revision else [],
        planned_at=item.planned_at,
        revision_number=revision.number if revision else 0,
        step_name=item.step.name if item.step else "",
        language=contact.language,
        zone=brand.timezone,
    )
    # A colleague's mention reads "@Name" to the client, as in the approver's page.
    shown = [c.model_copy(update={"body": MENTION.sub(r"@\1", c.body)}) for c in comments.items]
    return {
        "post": post,
        "comments": comment_views(shown, contact.language, brand.timezone),
        "decisions": LINK_DECISIONS,
        "max_comment": MAX_COMMENT,
        "comment": "",
        "can_decide": item.status == "awaiting_client" and revision is not None,
        # The revision read travels with the form: a newer one makes the decision stale.
        "action": f"/portal/content/{item.id}/decision?revision={revision.id if revision else ''}",
    }


@router.get("/portal/content/{content_id}", response_class=HTMLResponse)
async def content_page(
    content_id: str, request: Request, contact: ContactDep, session: SessionDep
) -> HTMLResponse:
    context = await _content_context(session, contact, _content_id(content_id, contact))
    decided = request.query_params.get("decided") == "1"
    return _page(
        request,
        contact,
        "portal/content.html",
        {**context, "notice": "content.decided" if decided else None, "problem": None},
    )


def _decision_input(request: Request, form: Any) -> tuple[DecisionCreate | None, str | None, str]:
    """The decision, or the key of what is wrong with it; and the comment to show again."""
    comment = form.get("comment")
    comment = comment if isinstance(comment, str) else ""
    if len(comment) > MAX_COMMENT:
        return None, "decision.error.comment_too_long", comment[:MAX_COMMENT]
    try:
        data = DecisionCreate(
            revision_id=uuid.UUID(request.query_params.get("revision", "")),
            decision=str(form.get("decision")),
            comment=comment.strip() or None,
        )
    except (ValueError, ValidationError):
        return None, "decision.error.decision", comment
    return data, None, comment


# The service's refusals, as the page words them.
_PROBLEMS = {
    "reason-required": "decision.error.comment_required",
    "revision-superseded": "problem.revision-superseded",
    "step-closed": "problem.step-closed",
    "already-decided": "problem.already-decided",
    "not-an-approver": "problem.not-an-approver",
    "invalid-transition": "problem.invalid-transition",
}


@router.post("/portal/content/{content_id}/decision", response_class=HTMLResponse)
async def decide(
    content_id: str,
    request: Request,
    contact: ContactDep,
    session: SessionDep,
    resources: ResourcesDep,
) -> Response:
    item_id = _content_id(content_id, contact)
    form = await verified_form(request)
    data, problem, comment = _decision_input(request, form)
    status_code = 400
    if data is not None:
        try:
            # A refused decision leaves nothing behind, though the page still renders.
            async with session.begin_nested():
                await workflows.decide(
                    session,
                    contact.principal,
                    item_id,
                    data,
                    channel="portal",
                    link_ttl=resources.settings.approval_link_ttl,
                )
        except NotFound as exc:
            raise _not_found(contact) from exc
        except ProblemError as exc:
            problem = _PROBLEMS.get(exc.type_slug, "problem.other")
            status_code = exc.status
        else:
            return RedirectResponse(f"/portal/content/{item_id}?decided=1", status_code=303)
    context = await _content_context(session, contact, item_id)
    return _page(
        request,
        contact,
        "portal/content.html",
        {**context, "notice": None, "problem": problem, "comment": comment},
        status_code=status_code,
    )


@router.get("/portal/history", response_class=HTMLResponse)
async def history_page(request: Request, contact: ContactDep, session: SessionDep) -> HTMLResponse:
    async with _found(contact):
        page = await my_decisions(
            session, contact.principal, limit=PAGE_SIZE, cursor=_cursor(request, contact)
        )
    return _page(request, contact, "portal/history.html", {"page": page})


def _this_month(contact: Contact) -> date:
    local = utcnow().astimezone(ZoneInfo(contact.principal.timezone))
    return date(local.year, local.month, 1)


def _shift(month: date, by: int) -> date:
    index = month.year * 12 + month.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


def _month_param(value: str | None, contact: Contact) -> date:
    if value is None:
        return _this_month(contact)
    found = MONTH.match(value)
    if not found:
        raise PageError(400, "error.bad_request", language=contact.language, agency=contact.agency)
    return date(int(found[1]), int(found[2]), 1)


@router.get("/portal/budget", response_class=HTMLResponse)
async def budget_page(request: Request, contact: ContactDep, session: SessionDep) -> HTMLResponse:
    month = _month_param(request.query_params.get("month"), contact)
    label = f"{month:%Y-%m}"
    async with _found(contact):
        try:
            budget = await budgets.portal_budget(session, contact.principal, label)
        except budget_errors.BudgetNotFound:
            budget = None  # no retainer that month: the page says so
    previous, following = _shift(month, -1), _shift(month, 1)
    return _page(
        request,
        contact,
        "portal/budget.html",
        {
            "budget": budget,
            "month": label,
            "previous": f"{previous:%Y-%m}",
            "next": f"{following:%Y-%m}" if following <= _this_month(contact) else None,
        },
    )


@router.get("/portal/reports", response_class=HTMLResponse)
async def reports_page(request: Request, contact: ContactDep, session: SessionDep) -> HTMLResponse:
    principal = contact.principal
    assert principal.client_id is not None
    async with _found(contact):
        client = await tenants.get_client(session, principal, principal.client_id)
    zone = ZoneInfo(principal.timezone)
    since = client.created_at.astimezone(zone)
    first, current = date(since.year, since.month, 1), _this_month(contact)
    months: list[str] = []
    month = current
    while month >= first and len(months) < REPORT_MONTHS:
        months.append(f"{month:%Y-%m}")
        month = _shift(month, -1)
    return _page(request, contact, "portal/reports.html", {"months": months})


@router.get("/portal/reports/{month}", response_class=HTMLResponse)
async def report_page(
    month: str, request: Request, contact: ContactDep, session: SessionDep
) -> Response:
    pdf = month.endswith(".pdf")
    label = month.removesuffix(".pdf")
    if not MONTH.match(label):
        raise _not_found(contact)
    principal = contact.principal
    assert principal.client_id is not None
    async with _found(contact):
        report = await reports.client_report(session, principal, principal.client_id, label)
        report = await figures.add_top_posts(session, principal, report)
        report = await community.add_community(session, principal, report)
    if pdf:
        return Response(
            render_report_pdf(report, timezone=principal.timezone),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="report-{report.month}.pdf"',
                "Cache-Control": "no-store",
            },
        )
    return _page(request, contact, "portal/report.html", {"report": report, "month": label})
