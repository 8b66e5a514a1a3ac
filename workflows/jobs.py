"""E-mails of the approval workflow (outbox handlers) and the step-timeout cron.

Handlers re-read the item and send only while the event still describes it: a request for a
step that was since decided or voided sends nothing, so a late or repeated delivery is
harmless. Client-facing e-mails count and quote client-visible comments only.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from infra import outbox
from infra.clock import utcnow
from infra.i18n import language as language_of
from infra.mail import Mail, MailBatch, masthead
from infra.outbox import Event
from infra.settings import Settings
from tenants.models import Brand, Client, Membership, Role, User
from tenants.service.branding import AgencyMark, agency_mark, client_link_base
from workflows.link_expiry import expiry_moment
from workflows.models import ApprovalLink, ContentComment, ContentItem, ContentRevision
from workflows.service import link_token, run_due_steps

PREVIEW_CHARS = 280

_TEXT = {
    "fr": {
        "request": "À approuver : {title} ({brand})",
        "reminder": "Rappel — à approuver : {title} ({brand})",
        "escalated": "Escalade — sans réponse : {title} ({brand})",
        "mentioned": "{author} vous a mentionné : {title}",
        "intro_request": "Une publication pour {brand} attend votre approbation "
        "(étape « {step} »).",
        "intro_reminder": "Rappel : une publication pour {brand} attend toujours votre "
        "approbation (étape « {step} »).",
        "intro_escalated": "L'étape « {step} » de cette publication pour {brand} est restée sans "
        "réponse ; elle vous est confiée.",
        "intro_mentioned": "{author} vous a mentionné dans un commentaire :",
        "comments": "{count} commentaire(s)",
        "button": "Voir et décider",
        "button_mention": "Voir le commentaire",
        "expires": "Ce lien est personnel et ne fonctionne qu'une fois. Il expire le {expires}.",
    },
    "en": {
        "request": "To approve: {title} ({brand})",
        "reminder": "Reminder — to approve: {title} ({brand})",
        "escalated": "Escalated — no answer: {title} ({brand})",
        "mentioned": "{author} mentioned you: {title}",
        "intro_request": "A post for {brand} awaits your approval (step “{step}”).",
        "intro_reminder": "Reminder: a post for {brand} still awaits your approval "
        "(step “{step}”).",
        "intro_escalated": "Step “{step}” of this post for {brand} got no answer in time; it is "
        "now yours to decide.",
        "intro_mentioned": "{author} mentioned you in a comment:",
        "comments": "{count} comment(s)",
        "button": "Review and decide",
        "button_mention": "See the comment",
        "expires": "This link is personal and works only once. It expires on {expires}.",
    },
}


@dataclass(frozen=True)
class Recipient:
    email: str
    language: str
    url: str
    expires_at: datetime | None = None
    client_facing: bool = False
    timezone: str = "UTC"
    """Where the expiry is told: the brand's zone, the client's side of the post."""


def preview_of(revision: ContentRevision) -> str:
    text = next(iter(revision.variants.values()), "") if revision.variants else ""
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1].rstrip() + "…"


def compose(
    kind: str,
    recipient: Recipient,
    *,
    title: str,
    brand: str,
    step: str,
    preview: str,
    comment_count: int,
    agency: AgencyMark,
    author: str = "",
) -> Mail:
    """Subject, plain text and HTML with one clear button, in the recipient's language,
    under the agency's name and logo."""
    words = _TEXT[recipient.language]
    values = {"title": title, "brand": brand, "step": step, "author": author}
    subject = words[kind].format(**values)
    intro = words[f"intro_{kind}"].format(**values)
    button = words["button_mention" if kind == "mentioned" else "button"]
    lines = [agency.name, "", intro, "", title, "", preview, ""]
    if kind != "mentioned":
        lines.append(words["comments"].format(count=comment_count))
    lines += [
        "",
        f"{button} : {recipient.url}"
        if recipient.language == "fr"
        else f"{button}: {recipient.url}",
    ]
    expiry = None
    if recipient.expires_at is not None:
        when = expiry_moment(recipient.expires_at, recipient.language, recipient.timezone)
        expiry = words["expires"].format(expires=when)
        lines += ["", expiry]
    esc = html.escape
    body_html = (
        masthead(agency.name, agency.logo_url) + f"<p>{esc(intro)}</p><h2>{esc(title)}</h2>"
        f"<blockquote>{esc(preview)}</blockquote>"
        + (
            f"<p>{esc(words['comments'].format(count=comment_count))}</p>"
            if kind != "mentioned"
            else ""
        )
        + f'<p><a href="{esc(recipient.url)}" style="display:inline-block;padding:12px 20px;'
        f'background:#1f4fd1;color:#fff;border-radius:6px;text-decoration:none">'
        f"{esc(button)}</a></p>" + (f"<p>{esc(expiry)}</p>" if expiry else "")
    )
    return Mail(
        to=recipient.email,
        subject=subject,
        text="\n".join(lines) + "\n",
        html=body_html,
        language=recipient.language,
    )


async def _recipients(
    session: AsyncSession,
    settings: Settings,
    signer: Any,
    item: ContentItem,
    client: Client,
    brand: Brand,
    keys: list[str],
    step_index: int,
) -> list[Recipient]:
    staff_base = settings.app_base_url
    client_base = await client_link_base(session, settings, item.tenant_id)
    out: list[Recipient] = []
    user_ids = [uuid.UUID(k.removeprefix("user:")) for k in keys if k.startswith("user:")]
    if user_ids:
        rows = (
            await session.execute(
                select(User.email, User.locale, Membership.role)
                .join(Membership, col(Membership.user_id) == col(User.id))
                .where(Membership.tenant_id == item.tenant_id, col(User.id).in_(user_ids))
            )
        ).all()
        for email, locale, role in rows:
            if role == Role.client:
                out.append(
                    Recipient(
                        email,
                        language_of(client.locale),
                        f"{client_base}/portal/content/{item.id}",
                        client_facing=True,
                    )
                )
            else:
                out.append(Recipient(email, language_of(locale), f"{staff_base}/content/{item.id}"))
    emails = [k.removeprefix("email:") for k in keys if k.startswith("email:")]
    if emails:
        links = (
            await session.scalars(
                select(ApprovalLink).where(
                    ApprovalLink.tenant_id == item.tenant_id,
                    ApprovalLink.content_item_id == item.id,
                    ApprovalLink.round == item.round,
                    ApprovalLink.step_index == step_index,
                    col(ApprovalLink.email).in_(emails),
                    col(ApprovalLink.used_at).is_(None),
                )
            )
        ).all()
        for link in links:
            token = link_token(signer, link)
            out.append(
                Recipient(
                    link.email,
                    language_of(client.locale),
                    f"{client_base}/approve/{token}",
                    expires_at=link.expires_at,
                    client_facing=True,
                    timezone=brand.timezone,
                )
            )
    return out


async def _comment_count(session: AsyncSession, item: ContentItem, *, client_only: bool) -> int:
    query = (
        select(func.count())
        .select_from(ContentComment)
        .where(
            ContentComment.tenant_id == item.tenant_id, ContentComment.content_item_id == item.id
        )
    )
    if client_only:
        query = query.where(ContentComment.visibility == "client")
    return int(await session.scalar(query) or 0)


async def _mail_step(ctx: dict[str, Any], event: Event, kind: str, keys_field: str | None) -> None:
    payload = event.payload
    content_id = uuid.UUID(payload["content_id"])
    step_index = int(payload["step_index"])
    mails: list[Mail] = []
    async with ctx["db"].tenant_transaction(event.tenant_id) as session:
        item = await session.get(ContentItem, (event.tenant_id, content_id))
        if (
            item is None
            or item.round != payload["round"]
            or item.step_index != step_index
            or str(item.current_revision_id) != payload["revision_id"]
        ):
            return  # decided, edited or withdrawn since: nothing to ask any more
        brand = await session.get(Brand, (event.tenant_id, item.brand_id))
        assert brand is not None
        client = await session.get(Client, (event.tenant_id, brand.client_id))
        revision = await session.get(ContentRevision, (event.tenant_id, item.current_revision_id))
        assert client is not None and revision is not None
        decided = set(item.step_approvers.get(f"{step_index}:decided", []))
        if keys_field is None:
            keys = [k for k in item.step_approvers.get(str(step_index), []) if k not in decided]
        else:
            wanted = payload[keys_field]
            keys = [
                k for k in ([wanted] if isinstance(wanted, str) else wanted) if k not in decided
            ]
        recipients = await _recipients(
            session, ctx["settings"], ctx["signer"], item, client, brand, keys, step_index
        )
        step_name = item.workflow["steps"][step_index]["name"]
        agency = await agency_mark(session, ctx["settings"], event.tenant_id)
        client_count = await _comment_count(session, item, client_only=True)
        all_count = await _comment_count(session, item, client_only=False)
        for recipient in recipients:
            mails.append(
                compose(
                    kind,
                    recipient,
                    title=revision.title,
                    brand=brand.name,
                    step=step_name,
                    preview=preview_of(revision),
                    comment_count=client_count if recipient.client_facing else all_count,
                    agency=agency,
                )
            )
    batch = MailBatch(ctx["settings"])
    for mail in mails:
        await batch.send(mail)
    batch.raise_refused()


@outbox.handler("approval.requested")
async def mail_approvers(ctx: dict[str, Any], event: Event) -> None:
    await _mail_step(ctx, event, "request", None)


@outbox.handler("approval.reminder_sent")
async def mail_reminders(ctx: dict[str, Any], event: Event) -> None:
    await _mail_step(ctx, event, "reminder", "pending")


@outbox.handler("approval.escalated")
async def mail_escalation(ctx: dict[str, Any], event: Event) -> None:
    await _mail_step(ctx, event, "escalated", "escalated_to")


@outbox.handler("comment.mentioned")
async def mail_mentions(ctx: dict[str, Any], event: Event) -> None:
    payload = event.payload
    async with ctx["db"].tenant_transaction(event.tenant_id) as session:
        item = await session.get(ContentItem, (event.tenant_id, uuid.UUID(payload["content_id"])))
        comment = await session.get(
            ContentComment, (event.tenant_id, uuid.UUID(payload["comment_id"]))
        )
        if item is None or comment is None:
            return
        brand = await session.get(Brand, (event.tenant_id, item.brand_id))
        assert brand is not None
        rows = (
            await session.execute(
                select(User.email, User.locale).where(
                    col(User.id).in_([uuid.UUID(u) for u in payload["user_ids"]])
                )
            )
        ).all()
        agency = await agency_mark(session, ctx["settings"], event.tenant_id)
    base = ctx["settings"].app_base_url
    batch = MailBatch(ctx["settings"])
    for email, locale in rows:
        recipient = Recipient(
            email, language_of(locale), f"{base}/content/{item.id}#comment-{comment.id}"
        )
        await batch.send(
            compose(
                "mentioned",
                recipient,
                title=item.title,
                brand=brand.name,
                step="",
                preview=comment.body[:PREVIEW_CHARS],
                comment_count=0,
                agency=agency,
                author=comment.author_name,
            ),
        )
    batch.raise_refused()


async def approval_timeouts(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """arq cron: steps past their due time remind, escalate, approve by agreement or expire."""
    return await run_due_steps(
        ctx["db"],
        now=now or utcnow(),
        link_ttl=ctx["settings"].approval_link_ttl,
        queue=ctx.get("redis"),
    )
