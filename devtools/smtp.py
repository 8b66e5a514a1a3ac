"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives: in memory (for the
tests) and, given a directory, in a Maildir too, so that other processes (`passerelle mail`,
the `/dev/mail` page) read what `make run` captured."""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
import socket
import threading
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # bytes: the controller is not built with decode_data=True
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.box.keep(message, envelope.content)
        return "250 OK"


class Mailbox:
    def __init__(self, port: int, maildir: Path | None = None) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        # Maildir's tmp-then-rename delivery lets readers list it while a message arrives.
        self.maildir = mailbox.Maildir(maildir, create=True) if maildir is not None else None
        self._lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=port)

    def keep(self, message: EmailMessage, raw: bytes) -> None:
        with self._lock:
            if self.maildir is not None:
                self.maildir.add(raw)  # the bytes as sent, not a re-serialization
            self.messages.append(message)

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
