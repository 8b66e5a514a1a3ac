"""Outbox handlers and jobs of the directory."""

from __future__ import annotations

import html as html_lib
from typing import Any

from infra import outbox
from infra.i18n import language as language_of
from infra.mail import Mail, masthead, send_mail
from infra.outbox import Event
from tenants import service
from tenants.models import Invitation, InvitationStatus, Tenant, User
from tenants.service.branding import agency_mark

_INVITE = {
    "fr": (
        "{inviter} vous invite à rejoindre {agency} sur Passerelle",
        "Bonjour,\n\n{inviter} vous invite à rejoindre l'agence {agency} sur Passerelle.\n\n"
        "Acceptez l'invitation ici :\n{link}\n\nCe lien expire le {expires}.\n",
        "Accepter l'invitation",
    ),
    "en": (
        "{inviter} invited you to join {agency} on Passerelle",
        "Hello,\n\n{inviter} invited you to join the agency {agency} on Passerelle.\n\n"
        "Accept the invitation here:\n{link}\n\nThis link expires on {expires}.\n",
        "Accept the invitation",
    ),
}


_BUTTON_STYLE = (
    "padding:10px 16px;background:#1d4ed8;color:#fff;border-radius:6px;text-decoration:none"
)


@outbox.handler("member.invited")
async def send_invitation(ctx: dict[str, Any], event: Event) -> None:
    async with ctx["db"].tenant_transaction(event.tenant_id) as session:
        invitation = await session.get(
            Invitation, (event.tenant_id, event.payload["invitation_id"])
        )
        tenant = await session.get(Tenant, event.tenant_id)
        inviter = await session.get(User, event.payload["invited_by"])
        agency = await agency_mark(session, ctx["settings"], event.tenant_id)
    if invitation is None or invitation.status != InvitationStatus.pending:
        return  # withdrawn or already accepted: nothing to send
    assert tenant is not None and inviter is not None
    settings = ctx["settings"]
    token = service.invitation_token(ctx["signer"], invitation)
    link = f"{settings.app_base_url}/invitations/{token}"
    language = language_of(tenant.locale)
    subject, body, button = _INVITE[language]
    values = {
        "inviter": inviter.name,
        "agency": tenant.name,
        "link": link,
        "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    text = body.format(**values)
    lines = [html_lib.escape(line) for line in text.splitlines()]
    html = (
        masthead(agency.name, agency.logo_url) + f"<p>{lines[0]}</p><p>{lines[2]}</p>"
        f'<p><a href="{html_lib.escape(link)}" style="{_BUTTON_STYLE}">{button}</a></p>'
    )
    await send_mail(
        settings,
        Mail(
            to=invitation.email,
            subject=subject.format(**values),
            text=text,
            html=html,
            language=language,
        ),
    )
