"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives: in memory (for the
tests) and, given a directory, in a Maildir too, so that other processes (`passerelle mail`,
the `/dev/mail` page) read what `make run` captured.

The tests also run it as a production relay would be: TLS (STARTTLS or implicit), AUTH
required, and recipients it refuses."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import mailbox
import socket
import ssl
import threading
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self.box.refuse.get(address.lower())
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # bytes: the controller is not built with decode_data=True
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object")
        self.box.keep(message, envelope.content, tls=bool(tls))
        return "250 OK"


# aiosmtpd itself sets the attribute it deprecates on every successful AUTH: a warning per
# message that says nothing about the mail.
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage()
)


class _Authenticator:
    def __init__(self, logins: dict[str, str]) -> None:
        self.logins = logins

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode()
            expected = self.logins.get(user)
            if expected is not None and auth_data.password.decode() == expected:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class Mailbox:
    def __init__(
        self,
        port: int,
        maildir: Path | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        logins: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """`tls`: the server's context, offered by STARTTLS (and then required), or from the
        first byte with `implicit_tls`. `logins`: user -> password; AUTH is then required, and
        accepted only over TLS when there is TLS."""
        self.port = port
        self.messages: list[EmailMessage] = []
        self.over_tls: list[bool] = []
        """Per message kept: whether it came over TLS."""
        self.refuse: dict[str, str] = {}
        """Recipient address (lower case) -> the answer to its RCPT, such as '550 5.1.1 …'."""
        # Maildir's tmp-then-rename delivery lets readers list it while a message arrives.
        self.maildir = mailbox.Maildir(maildir, create=True) if maildir is not None else None
        self._lock = threading.Lock()
        options: dict[str, Any] = {}
        if tls is not None and implicit_tls:
            options["ssl_context"] = tls
        elif tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if logins is not None:
            options.update(
                authenticator=_Authenticator(dict(logins)),
                auth_required=True,
                # aiosmtpd counts only STARTTLS as TLS: with implicit TLS, all of it is.
                auth_require_tls=tls is not None and not implicit_tls,
            )
        self._controller = Controller(_Handler(self), hostname=host, port=port, **options)

    def keep(self, message: EmailMessage, raw: bytes, *, tls: bool = False) -> None:
        with self._lock:
            if self.maildir is not None:
                self.maildir.add(raw)  # the bytes as sent, not a re-serialization
            self.messages.append(message)
            self.over_tls.append(tls)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    async def wait_for(self, address: str, *, count: int = 1) -> list[EmailMessage]:
        try:
            async with asyncio.timeout(5):
                while len(self.to(address)) < count:  # noqa: ASYNC110 (the SMTP thread fills it)
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"no e-mail to {address} within 5 s") from None
        return self.to(address)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
