"""Outbox handlers and jobs of the directory."""

from __future__ import annotations

import html as html_lib
import uuid
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from infra import outbox
from infra.i18n import language as language_of
from infra.mail import Mail, MailRefused, masthead, send_mail
from infra.outbox import Event
from tenants import errors, service
from tenants.models import AuditEvent, Client, Invitation, InvitationStatus, Role, Tenant, User
from tenants.service import portal
from tenants.service.branding import agency_mark, client_link_base

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


# A client contact is invited to the portal, in the client's language, not to the team.
_INVITE_CLIENT = {
    "fr": (
        "{inviter} vous invite à l'espace client de {agency}",
        "Bonjour,\n\n{inviter} vous invite à l'espace client de {agency}, où vous lirez et "
        "approuverez ce que l'agence prépare pour vous.\n\n"
        "Acceptez l'invitation ici :\n{link}\n\nCe lien expire le {expires}.\n",
        "Accepter l'invitation",
    ),
    "en": (
        "{inviter} invited you to {agency}'s client portal",
        "Hello,\n\n{inviter} invited you to {agency}'s client portal, where you will read and "
        "approve what the agency prepares for you.\n\n"
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
        # Client contacts land on this project's portal page (or the agency's own app);
        # staff on the agency's app, which is theirs.
        for_client = invitation.role == Role.client
        customer = (
            await session.get(Client, (event.tenant_id, invitation.client_id))
            if for_client and invitation.client_id
            else None
        )
        base = (
            await client_link_base(session, ctx["settings"], event.tenant_id)
            if for_client
            else ctx["settings"].app_base_url
        )
    assert tenant is not None and inviter is not None
    settings = ctx["settings"]
    token = service.invitation_token(ctx["signer"], invitation)
    if for_client:
        link = f"{base}/portal/invitations/{token}"
        language = language_of(customer.locale if customer else tenant.locale)
        subject, body, button = _INVITE_CLIENT[language]
    else:
        link = f"{base}/invitations/{token}"
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
    try:
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
    except MailRefused as exc:
        # The outbox keeps the refusal on its event, which nobody in the agency reads; the
        # invitation's audit trail is where its admins look for what became of it.
        # The outbox delivers at least once: a worker that dies after this commit, before the
        # outbox marks the event refused, runs this again. The entry names its event, and the
        # invitation's row lock makes two runs take turns, so the admins read it once.
        async with ctx["db"].tenant_transaction(event.tenant_id) as session:
            await session.execute(
                select(Invitation.id)
                .where(Invitation.tenant_id == event.tenant_id, Invitation.id == invitation.id)
                .with_for_update()
            )
            recorded = await session.scalar(
                select(AuditEvent.id).where(
                    AuditEvent.tenant_id == event.tenant_id,
                    AuditEvent.subject_type == "invitation",
                    AuditEvent.subject_id == invitation.id,
                    AuditEvent.action == "invitation.mail_refused",
                    col(AuditEvent.changes).contains({"event_id": str(event.id)}),
                )
            )
            if recorded is None:
                service.record_audit(
                    session,
                    tenant_id=event.tenant_id,
                    actor=None,
                    action="invitation.mail_refused",
                    subject_type="invitation",
                    subject_id=invitation.id,
                    changes={
                        "email": invitation.email,
                        "reason": str(exc),
                        "event_id": str(event.id),
                    },
                    request_id=event.request_id,
                )
        raise


_SIGN_IN = {
    "fr": (
        "Votre lien de connexion à l'espace client de {agency}",
        "Bonjour,\n\nVoici votre lien pour vous connecter à l'espace client de {agency} :\n"
        "{link}\n\nIl ne fonctionne qu'une fois et expire dans 15 minutes. Si vous n'avez rien "
        "demandé, ignorez ce message.\n",
        "Se connecter",
    ),
    "en": (
        "Your sign-in link to {agency}'s client portal",
        "Hello,\n\nHere is your link to sign in to {agency}'s client portal:\n{link}\n\n"
        "It works once and expires in 15 minutes. If you did not ask for it, ignore this "
        "message.\n",
        "Sign in",
    ),
}


@outbox.handler(portal.SIGN_IN_LINK_EVENT)
async def send_sign_in_link(ctx: dict[str, Any], event: Event) -> None:
    """The one-time link, in the client's language. Nothing is sent once the contact is no
    longer one or the link's time has run out: a late delivery would only disappoint."""
    payload = event.payload
    link = portal.SignInLink(
        tenant_id=event.tenant_id,
        user_id=uuid.UUID(payload["user_id"]),
        membership_id=uuid.UUID(payload["membership_id"]),
        link_id=uuid.UUID(payload["link_id"]),
        expires_at=datetime.fromisoformat(payload["expires_at"]),
    )
    async with ctx["db"].tenant_transaction(event.tenant_id) as session:
        try:
            account = await portal.account_of_link(session, link)
        except errors.SignInLinkInvalid:
            return
        user = await session.get(User, link.user_id)
        customer = await session.get(Client, (event.tenant_id, account.membership.client_id))
        settings = ctx["settings"]
        base = await client_link_base(session, settings, event.tenant_id)
        agency = await agency_mark(session, settings, event.tenant_id)
    token = portal.sign_in_link_token(ctx["signer"], link)
    if token is None or user is None:
        return
    url = f"{base}/portal/sign-in/link/{token}"
    language = language_of(customer.locale if customer else account.tenant.locale)
    subject, body, button = _SIGN_IN[language]
    values = {"agency": account.tenant.name, "link": url}
    text = body.format(**values)
    lines = [html_lib.escape(line) for line in text.splitlines()]
    html = (
        masthead(agency.name, agency.logo_url) + f"<p>{lines[0]}</p><p>{lines[2]}</p>"
        f'<p><a href="{html_lib.escape(url)}" style="{_BUTTON_STYLE}">{button}</a></p>'
        f"<p>{html_lib.escape(text.splitlines()[5])}</p>"
    )
    await send_mail(
        settings,
        Mail(
            to=user.email,
            subject=subject.format(**values),
            text=text,
            html=html,
            language=language,
        ),
    )
