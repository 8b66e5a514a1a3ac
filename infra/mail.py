"""Outgoing e-mail over SMTP. Only outbox handlers call this, never a request."""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from infra.settings import Settings


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None = None
    language: str = "en"


def masthead(name: str, logo_url: str | None) -> str:
    """The sender's logo and name atop an e-mail's HTML. The logo's alt is empty: the name
    beside it says the same, and shows when the reader's mail client blocks images."""
    logo = (
        f'<img src="{html.escape(logo_url)}" alt="" height="48" '
        'style="height:48px;max-width:200px;vertical-align:middle;margin-right:12px">'
        if logo_url
        else ""
    )
    return (
        f'<div style="margin:0 0 16px">{logo}'
        f'<strong style="font-size:18px;vertical-align:middle">{html.escape(name)}</strong></div>'
    )


async def send_mail(settings: Settings, mail: Mail) -> None:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = mail.to
    # A header may not hold a line break: one in user text must not stop the e-mail.
    message["Subject"] = " ".join(mail.subject.split())
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    # After set_content, which clears every Content-* header.
    message["Content-Language"] = mail.language
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        timeout=settings.smtp_timeout_seconds,
    )
