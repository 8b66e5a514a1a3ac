"""Outgoing e-mail over SMTP. Only outbox handlers call this, never a request."""

from __future__ import annotations

import html
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from infra.outbox import Refused
from infra.settings import Settings


class MailRefused(Refused):
    """The relay answered a permanent (5xx) refusal: the recipient, the sender, the content or
    our credentials. Sending again would only be refused again, so the outbox records it on the
    event instead of retrying. A 4xx answer or an unreachable relay raises aiosmtplib's own
    error, which the outbox retries with backoff."""


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
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.smtp_timeout_seconds,
            username=settings.smtp_username or None,
            password=password if settings.smtp_username else None,
            use_tls=settings.smtp_tls == "implicit",
            # False, not None: aiosmtplib's None upgrades only when offered, and a relay that
            # stops offering STARTTLS must not receive the password in clear.
            start_tls=settings.smtp_tls == "starttls",
            tls_context=_tls_context(settings) if settings.smtp_tls != "none" else None,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        if all(500 <= code < 600 for code in codes):
            raise MailRefused(_reason(exc.recipients[0].code, exc.recipients[0].message)) from None
        raise
    except aiosmtplib.SMTPResponseException as exc:
        if 500 <= exc.code < 600:
            # The server's words only: never the exception's chain, which holds our AUTH line.
            raise MailRefused(_reason(exc.code, exc.message)) from None
        raise


def _reason(code: int, message: str) -> str:
    return f"SMTP {code}: {' '.join(message.split())}"[:500]


def _tls_context(settings: Settings) -> ssl.SSLContext:
    cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    return ssl.create_default_context(cafile=cafile)


class MailBatch:
    """Mail for several recipients of one event: a recipient's permanent refusal must not keep
    the others from theirs. Refusals are raised together once all were tried (`raise_refused`),
    so the event is recorded refused; any other error still stops the batch, to be retried."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.refused: list[str] = []

    async def send(self, mail: Mail) -> None:
        try:
            await send_mail(self.settings, mail)
        except MailRefused as exc:
            self.refused.append(f"{mail.to}: {exc}")

    def raise_refused(self) -> None:
        if self.refused:
            raise MailRefused("; ".join(self.refused)[:1000])
