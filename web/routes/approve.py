"""External approvers: the signed link from the e-mail opens the post and its decision form.

The page is built on the same services as `/v1/approval-links/{token}`: the link's signature
names the tenant, which the request then enters; the service says whether the link is open,
used, expired or superseded, and records the one decision it allows. Every page speaks the
client's language, never only the browser's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from infra.errors import ProblemError
from infra.resources import Resources
from web.agency import Agency, agency_of
from web.csrf import verified_form
from web.deps import ResourcesDep, SessionDep
from web.errors import PageError
from web.i18n import Catalogue, language_for
from web.preview import Moment, comment_views, moment, post_view, with_partials
from web.render import render
from web.tenancy import enter_tenant
from workflows import errors as workflow_errors
from workflows import service
from workflows.schemas import LinkDecision, LinkView, Reason

router = APIRouter()

MAX_COMMENT: int = next(m.max_length for m in get_args(Reason)[1:] if hasattr(m, "max_length"))
"""The API's limit on a decision's comment, so that both edges accept the same."""

TEXT: Catalogue = {
    "en": {
        "approve.title": "Your approval is requested: {title}",
        "approve.answering_as": "You are answering as {email}. This link works once and expires on",
        "approve.done.title": "Thank you, your decision was recorded",
        "approve.done.detail": "Your answer: {decision}.",
        "approve.your_comment": "Your comment:",
        "approve.recorded_on": "Recorded on",
        "approve.used.title": "You already answered with this link",
        "approve.used.detail": "Each link records one answer; this one was used on",
        "approve.expired.title": "This link has expired",
        "approve.expired.detail": "It could be used until",
        "approve.superseded.title": "This post changed since the e-mail was sent",
        "approve.superseded.detail": "The post was edited or withdrawn after this link was sent. "
        "If your approval is needed again, you will receive a new link.",
        "approve.closed.title": "This approval step is closed",
        "approve.closed.detail": "Someone else already answered for this step; nothing is "
        "awaiting your decision.",
        "approve.timed_out.title": "The time to decide on this post ran out",
        "approve.timed_out.detail": "The agency will send a new link if your approval is "
        "needed again.",
        "approve.refused.title": "Your decision could not be recorded",
        "approve.refused.detail": "This post no longer accepts this decision.",
        "approve.contact.sender": "Questions? Write to {name}, who sent this post for "
        "approval at {agency}:",
        "approve.contact.owner": "Questions? Write to {name}, who runs {agency}:",
        "approve.contact.none": "Questions? Contact {agency}.",
        "decision.word.approve": "approved",
        "decision.word.request_changes": "changes requested",
        "decision.word.reject": "rejected",
    },
    "fr": {
        "approve.title": "Votre approbation est demandée : {title}",
        "approve.answering_as": "Vous répondez en tant que {email}. Ce lien ne fonctionne "
        "qu'une fois et expire le",
        "approve.done.title": "Merci, votre décision est enregistrée",
        "approve.done.detail": "Votre réponse : {decision}.",
        "approve.your_comment": "Votre commentaire :",
        "approve.recorded_on": "Enregistrée le",
        "approve.used.title": "Vous avez déjà répondu avec ce lien",
        "approve.used.detail": "Chaque lien enregistre une seule réponse ; celui-ci a servi le",
        "approve.expired.title": "Ce lien a expiré",
        "approve.expired.detail": "Il pouvait servir jusqu'au",
        "approve.superseded.title": "Cette publication a changé depuis l'envoi du courriel",
        "approve.superseded.detail": "La publication a été modifiée ou retirée après l'envoi "
        "de ce lien. Si votre approbation est de nouveau nécessaire, vous recevrez un nouveau "
        "lien.",
        "approve.closed.title": "Cette étape d'approbation est close",
        "approve.closed.detail": "Quelqu'un d'autre a déjà répondu pour cette étape ; rien "
        "n'attend votre décision.",
        "approve.timed_out.title": "Le délai pour décider de cette publication est écoulé",
        "approve.timed_out.detail": "L'agence vous enverra un nouveau lien si votre "
        "approbation est de nouveau nécessaire.",
        "approve.refused.title": "Votre décision n'a pas pu être enregistrée",
        "approve.refused.detail": "Cette publication n'accepte plus cette décision.",
        "approve.contact.sender": "Des questions ? Écrivez à {name}, qui a soumis cette "
        "publication à votre approbation chez {agency} :",
        "approve.contact.owner": "Des questions ? Écrivez à {name}, responsable de {agency} :",
        "approve.contact.none": "Des questions ? Communiquez avec {agency}.",
        "decision.word.approve": "approuvée",
        "decision.word.request_changes": "modifications demandées",
        "decision.word.reject": "refusée",
    },
}
PAGE_TEXT = with_partials(TEXT)


@dataclass(frozen=True)
class LinkPage:
    """A link whose signature holds and whose row exists, with what frames its pages."""

    token: str
    signed: service.SignedLink
    context: service.LinkContext
    language: str
    agency: Agency


def _browser_language(request: Request) -> str:
    """Only for a link that names no client: its language is all we can go by."""
    first = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    return language_for(first)


async def _open(
    request: Request, session: AsyncSession, resources: Resources, token: str
) -> LinkPage:
    """The link, or the same 'not valid' page for an altered token, one naming no link, or one
    naming another agency's link: which of them it was is not disclosed."""
    try:
        signed = service.read_link(resources.signer, token)
    except workflow_errors.LinkInvalid as exc:
        raise PageError(404, "error.link_invalid", language=_browser_language(request)) from exc
    await enter_tenant(session, signed.tenant_id)
    context = await service.link_context(session, signed)
    if context is None:
        raise PageError(404, "error.link_invalid", language=_browser_language(request))
    return LinkPage(
        token=token,
        signed=signed,
        context=context,
        language=language_for(context.locale),
        agency=await agency_of(session, signed.tenant_id, settings=resources.settings),
    )


def _page(
    request: Request,
    page: LinkPage,
    template: str,
    values: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    contact = page.context.contact
    return render(
        request,
        template,
        {**values, "contact": contact},
        language=page.language,
        agency=page.agency,
        text=PAGE_TEXT,
        status_code=status_code,
    )


def _when(page: LinkPage, value: datetime | None) -> Moment | None:
    return moment(value, page.language, page.context.timezone) if value else None


def _decision_page(
    request: Request,
    page: LinkPage,
    view: LinkView,
    *,
    error: str | None = None,
    comment: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    language, zone = page.language, page.context.timezone
    post = post_view(
        title=view.title,
        brand_name=view.brand_name,
        variants=view.variants,
        media=view.media,
        planned_at=view.planned_at,
        revision_number=view.revision_number,
        step_name=view.step_name,
        language=language,
        zone=zone,
    )
    return _page(
        request,
        page,
        "approve.html",
        {
            "post": post,
            "comments": comment_views(view.comments, language, zone),
            "email": view.email,
            "expires": _when(page, view.expires_at),
            "decisions": view.decisions,
            "error": error,
            "comment": comment,
            "max_comment": MAX_COMMENT,
        },
        status_code=status_code,
    )


# Each reason the service refuses a link, and the page's status and words for it.
REFUSALS: list[tuple[type[Exception], int, str]] = [
    (workflow_errors.LinkUsed, 410, "approve.used"),
    (workflow_errors.LinkExpired, 410, "approve.expired"),
    (workflow_errors.LinkSuperseded, 410, "approve.superseded"),
    (workflow_errors.StepTimedOut, 410, "approve.timed_out"),
    (workflow_errors.StepClosed, 410, "approve.closed"),
]
REFUSED = tuple(kind for kind, _, _ in REFUSALS)


def _refused_page(request: Request, page: LinkPage, exc: Exception) -> HTMLResponse:
    status, key = next((s, k) for kind, s, k in REFUSALS if isinstance(exc, kind))
    context = page.context
    when = {
        "approve.used": _when(page, context.used_at),
        "approve.expired": _when(page, context.expires_at),
    }.get(key)
    return _page(
        request,
        page,
        "approve_closed.html",
        {"key": key, "when": when, "answer": _answer(page) if key == "approve.used" else None},
        status_code=status,
    )


def _answer(page: LinkPage) -> dict[str, Any] | None:
    answer = page.context.answer
    if answer is None:
        return None
    return {
        "decision": answer.decision,
        "comment": answer.comment,
        "when": _when(page, answer.created_at),
    }


@router.get("/approve/{token}", response_class=HTMLResponse)
async def approval_page(
    token: str, request: Request, session: SessionDep, resources: ResourcesDep
) -> HTMLResponse:
    page = await _open(request, session, resources, token)
    try:
        view = await service.view_link(session, page.signed)
    except REFUSED as exc:
        return _refused_page(request, page, exc)
    return _decision_page(request, page, view)


def _parse_decision(form: FormData) -> tuple[LinkDecision | None, str | None, str]:
    """The decision, or the catalogue key of what is wrong with it; and the comment as typed, to
    show it again."""
    raw_comment = form.get("comment")
    comment = raw_comment if isinstance(raw_comment, str) else ""
    try:
        decision = LinkDecision.model_validate(
            {"decision": form.get("decision"), "comment": comment.strip() or None}
        )
    except ValidationError as exc:
        fields = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        key = (
            "decision.error.decision" if "decision" in fields else "decision.error.comment_too_long"
        )
        return None, key, comment
    if decision.decision == "request_changes" and not decision.comment:
        return None, "decision.error.comment_required", comment
    return decision, None, comment


@router.post("/approve/{token}", response_class=HTMLResponse)
async def decide(
    token: str, request: Request, session: SessionDep, resources: ResourcesDep
) -> Response:
    page = await _open(request, session, resources, token)
    try:
        form = await verified_form(request)
    except PageError as exc:
        exc.language, exc.agency = page.language, page.agency
        raise
    decision, error, comment = _parse_decision(form)
    done = RedirectResponse(f"/approve/{token}/done", status_code=303)
    if decision is not None:
        try:
            # A refusal leaves nothing behind: the savepoint drops whatever was begun.
            async with session.begin_nested():
                await service.decide_by_link(
                    session,
                    page.signed,
                    decision,
                    link_ttl=resources.settings.approval_link_ttl,
                    request_id=getattr(request.state, "request_id", None),
                )
            return done
        except workflow_errors.LinkUsed:
            return done  # a second click, a reload, another tab: the first answer stands
        except workflow_errors.ReasonRequired:
            error = "decision.error.comment_required"
        except REFUSED as exc:
            return _refused_page(request, page, exc)
        except ProblemError as exc:
            raise PageError(
                exc.status if 400 <= exc.status < 500 else 409,
                "approve.refused",
                language=page.language,
                agency=page.agency,
                text=PAGE_TEXT,
            ) from exc
    try:
        view = await service.view_link(session, page.signed)
    except workflow_errors.LinkUsed:
        return done
    except REFUSED as exc:
        return _refused_page(request, page, exc)
    return _decision_page(request, page, view, error=error, comment=comment, status_code=422)


@router.get("/approve/{token}/done", response_class=HTMLResponse)
async def decision_recorded(
    token: str, request: Request, session: SessionDep, resources: ResourcesDep
) -> Response:
    page = await _open(request, session, resources, token)
    answer = _answer(page)
    if answer is None:  # nothing answered yet: the page to answer on
        return RedirectResponse(f"/approve/{token}", status_code=303)
    return _page(request, page, "approve_done.html", {"answer": answer})
