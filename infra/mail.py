"""Outgoing e-mail over SMTP. Only outbox handlers call this, never a request."""

from __future__ import annotations

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
