"""The e-mails of a suspected crisis (`inbox.crisis_suspected`): the brand's lead (the agency's
owners and admins when the brand has none) gets the figures, a few of the items and a link to
the inbox; the client's contacts, when the brand's guidelines say so (`crisis_notify_client`),
get the figures and the news that the team is on it — not the items, which they do not see in
Passerelle either. Each person reads it in their own language."""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from inbox.models import InboxItem
from infra.i18n import language as language_of
from infra.mail import Mail, MailBatch, masthead
from infra.outbox import Event
from social.jobs import brand_lead_recipients
from social.models import SocialAccount
from tenants.models import Brand, Membership, MembershipStatus, Role, User
from tenants.service.branding import AgencyMark, agency_mark

EXCERPTS = 3
"""Items quoted to the lead: enough to judge the tone without opening the inbox."""
EXCERPT_LENGTH = 200

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Possible crisis on {brand}{where}: {reason}",
        "negative_reason": "a surge of negative messages",
        "volume_reason": "an unusual surge of messages",
        "keyword_reason": "watch-list words",
        "negative": "{observed} negative messages in the last {hours} hours, where about "
        "{usual} is usual at these hours.",
        "volume": "{observed} messages in the last {hours} hours, where about {usual} is usual "
        "at these hours.",
        "keyword": "{hits} messages used words of the watch list: {words}.",
        "keyword_one": "1 message used words of the watch list: {words}.",
        "lead": "The messages are pinned at the top of the inbox for 24 hours:",
        "some": "Some of them:",
        "client": "Your community management team has been told and is looking after it.",
    },
    "fr": {
        "subject": "Crise possible pour {brand}{where} : {reason}",
        "negative_reason": "une vague de messages négatifs",
        "volume_reason": "une vague inhabituelle de messages",
        "keyword_reason": "des mots surveillés",
        "negative": "{observed} messages négatifs dans les {hours} dernières heures, pour "
        "environ {usual} d'habitude à ces heures-là.",
        "volume": "{observed} messages dans les {hours} dernières heures, pour environ {usual} "
        "d'habitude à ces heures-là.",
        "keyword": "{hits} messages emploient des mots de la liste de surveillance : {words}.",
        "keyword_one": "1 message emploie des mots de la liste de surveillance : {words}.",
        "lead": "Les messages sont épinglés en haut de la boîte de réception pendant 24 heures :",
        "some": "Quelques-uns :",
        "client": "Votre équipe de gestion de communauté est prévenue et s'en occupe.",
    },
}


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def findings(payload: dict[str, Any], language: str) -> tuple[str, list[str]]:
    """The main reason (for the subject) and one sentence per trigger, in `language`."""
    words = _WORDS[language]
    figures = payload.get("figures") or {}
    start = datetime.fromisoformat(figures["window_start"])
    end = datetime.fromisoformat(figures["window_end"])
    hours = round((end - start).total_seconds() / 3600)
    lines = []
    for trigger in figures.get("triggers") or [payload["trigger"]]:
        if trigger == "keyword":
            hits = figures.get("keyword_hits", 0)
            lines.append(
                words["keyword_one" if hits == 1 else "keyword"].format(
                    hits=hits, words=", ".join(figures.get("keywords") or [])
                )
            )
        elif figures.get(trigger):
            measure = figures[trigger]
            lines.append(
                words[trigger].format(
                    observed=measure["observed"], hours=hours, usual=_number(measure["median"])
                )
            )
    return words[f"{payload['trigger']}_reason"], lines


async def _facts(
    ctx: dict[str, Any], tenant_id: uuid.UUID, payload: dict[str, Any]
) -> tuple[Brand | None, str, list[tuple[str, str]], list[str], AgencyMark | None]:
    """The brand, where it happens (an account), the client's contacts, a few items, and the
    agency as its e-mails show it."""
    brand_id = uuid.UUID(payload["brand_id"])
    async with ctx["db"].tenant_transaction(tenant_id) as session:
        brand = await session.get(Brand, (tenant_id, brand_id))
        if brand is None:
            return None, "", [], [], None
        agency = await agency_mark(session, ctx["settings"], tenant_id)
        where = ""
        if payload.get("social_account_id"):
            account = await session.get(
                SocialAccount, (tenant_id, uuid.UUID(payload["social_account_id"]))
            )
            if account is not None:
                where = f" ({account.platform} {account.handle or account.display_name or ''})"
                where = where.replace(" )", ")")
        contacts: Sequence[Any] = []
        if brand.guidelines.get("crisis_notify_client"):
            contacts = (
                await session.execute(
                    select(User.email, User.locale)
                    .join(Membership, col(Membership.user_id) == col(User.id))
                    .where(
                        Membership.tenant_id == tenant_id,
                        Membership.role == Role.client,
                        Membership.client_id == brand.client_id,
                        Membership.status == MembershipStatus.active,
                    )
                )
            ).all()
        ids = [uuid.UUID(i) for i in (payload.get("item_ids") or [])[:EXCERPTS]]
        texts: list[str] = []
        if ids:
            found = {
                i.id: i.text
                for i in (
                    await session.scalars(
                        select(InboxItem).where(
                            InboxItem.tenant_id == tenant_id, col(InboxItem.id).in_(ids)
                        )
                    )
                ).all()
            }
            texts = [found[i] for i in ids if found.get(i)]
    return brand, where, [(e, loc) for e, loc in contacts], texts, agency


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_LENGTH else flat[: EXCERPT_LENGTH - 1] + "…"


async def mail_crisis(ctx: dict[str, Any], event: Event) -> None:
    payload = event.payload
    brand, where, contacts, texts, agency = await _facts(ctx, event.tenant_id, payload)
    if brand is None or agency is None:
        return
    _, leads = await brand_lead_recipients(ctx, event.tenant_id, brand.id)
    settings = ctx["settings"]
    url = f"{settings.app_base_url}/inbox?brand={brand.id}"
    # A person who is both (a lead who is also a contact) is written to once, as a lead.
    lead_emails = {email.lower() for email, _ in leads}
    people = [(email, locale, True) for email, locale in sorted(set(leads))] + [
        (email, locale, False)
        for email, locale in sorted(set(contacts))
        if email.lower() not in lead_emails
    ]
    batch = MailBatch(settings)
    for email, locale, is_lead in people:
        language = language_of(locale)
        words = _WORDS[language]
        reason, lines = findings(payload, language)
        subject = words["subject"].format(brand=brand.name, where=where, reason=reason)
        said = "\n".join(lines)
        if is_lead:
            quoted = "\n".join(f"> {_excerpt(t)}" for t in texts)
            text = f"{said}\n\n{words['lead']}\n{url}\n"
            markup = (
                "".join(f"<p>{html.escape(line)}</p>" for line in lines)
                + f'<p>{html.escape(words["lead"])} <a href="{html.escape(url)}">'
                f"{html.escape(url)}</a></p>"
            )
            if texts:
                text += f"\n{words['some']}\n{quoted}\n"
                markup += f"<p>{html.escape(words['some'])}</p>" + "".join(
                    f"<blockquote>{html.escape(_excerpt(t))}</blockquote>" for t in texts
                )
        else:
            text = f"{said}\n\n{words['client']}\n"
            markup = "".join(f"<p>{html.escape(line)}</p>" for line in lines) + (
                f"<p>{html.escape(words['client'])}</p>"
            )
        text = f"{agency.name}\n\n{text}"
        markup = masthead(agency.name, agency.logo_url) + markup
        await batch.send(
            Mail(to=email, subject=subject, text=text, html=markup, language=language),
        )
    batch.raise_refused()
