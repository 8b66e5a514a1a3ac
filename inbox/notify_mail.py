"""The e-mail a rule's `notify` sends (`inbox.notify`, internal): the people it names read
who wrote what, on which brand and account, with a link to the item, in their language."""

from __future__ import annotations

import html
import uuid
from typing import Any

from sqlmodel import col, select

from infra.i18n import language as language_of
from infra.mail import Mail, MailBatch
from infra.outbox import Event
from tenants.models import Brand, Membership, MembershipStatus, User

EXCERPT = 500

_WORDS = {
    "en": {
        "subject": "{brand}: a message your rules flagged",
        "said": "{author} wrote on {platform}:",
        "open": "Open it in the inbox",
    },
    "fr": {
        "subject": "{brand} : un message signalé par vos règles",
        "said": "{author} a écrit sur {platform} :",
        "open": "L'ouvrir dans la boîte de réception",
    },
}


async def recipients(
    ctx: dict[str, Any], tenant_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> list[tuple[str, str]]:
    """Active members among the users a rule names: (e-mail, locale)."""
    async with ctx["db"].tenant_transaction(tenant_id) as session:
        rows = (
            await session.execute(
                select(User.email, User.locale)
                .join(Membership, col(Membership.user_id) == col(User.id))
                .where(
                    Membership.tenant_id == tenant_id,
                    col(Membership.user_id).in_(user_ids),
                    Membership.status == MembershipStatus.active,
                )
            )
        ).all()
    return sorted({(email, locale) for email, locale in rows})


async def mail_notify(ctx: dict[str, Any], event: Event) -> None:
    payload = event.payload
    users = [uuid.UUID(u) for u in payload.get("notify") or []]
    if not users:
        return
    async with ctx["db"].tenant_transaction(event.tenant_id) as session:
        brand = await session.get(Brand, (event.tenant_id, uuid.UUID(payload["brand_id"])))
        brand_name = brand.name if brand is not None else ""
    settings = ctx["settings"]
    url = f"{settings.app_base_url}/inbox/{payload['item_id']}"
    text = (payload.get("text") or "")[:EXCERPT]
    author = payload.get("author_handle") or "?"
    batch = MailBatch(settings)
    for email, locale in await recipients(ctx, event.tenant_id, users):
        language = language_of(locale)
        words = _WORDS[language]
        said = words["said"].format(author=author, platform=payload["platform"])
        await batch.send(
            Mail(
                to=email,
                subject=words["subject"].format(brand=brand_name),
                text=f"{said}\n\n{text}\n\n{words['open']}: {url}\n",
                html=(
                    f"<p>{html.escape(said)}</p><blockquote>{html.escape(text)}</blockquote>"
                    f'<p><a href="{html.escape(url)}">{html.escape(words["open"])}</a></p>'
                ),
                language=language,
            ),
        )
    batch.raise_refused()
