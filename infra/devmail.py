"""Reading the e-mails captured in development: the Maildir (`DEV_MAIL_DIR`) that the local
SMTP catcher (`python -m devtools`, started by `make run`) writes, for `passerelle mail` and
the `/dev/mail` page.

A message's id is a short hash of its Maildir key: stable while the file exists, short enough
to type, and checked against a strict pattern before it names anything on disk.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

_ID = re.compile(r"[0-9a-f]{12}")
# Transport details a reader does not need; everything else is shown.
_HIDDEN_HEADERS = {"content-type", "content-transfer-encoding", "mime-version"}


@dataclass(frozen=True)
class CapturedMail:
    id: str
    received_at: datetime
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [
            (name, str(value))
            for name, value in self.message.items()
            if name.lower() not in _HIDDEN_HEADERS
        ]

    def text(self) -> str | None:
        return _part(self.message, "plain")

    def html(self) -> str | None:
        return _part(self.message, "html")


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    # SMTP carries CRLF line ends; readers (a terminal, a <pre>) want plain newlines.
    return str(part.get_content()).replace("\r\n", "\n")


def mail_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _maildir(directory: Path) -> mailbox.Maildir | None:
    if not (directory / "new").is_dir() and not (directory / "cur").is_dir():
        return None  # nothing captured yet: not an error, and nothing is created by reading
    return mailbox.Maildir(directory, create=False)


def _read(box: mailbox.Maildir, key: str) -> CapturedMail:
    delivered = box.get_message(key).get_date()  # the file's time: when it was captured
    raw = box.get_bytes(key)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return CapturedMail(mail_id(key), datetime.fromtimestamp(delivered, UTC), message)


def _entries(directory: Path) -> Iterator[CapturedMail]:
    box = _maildir(directory)
    if box is None:
        return
    for key in box.iterkeys():
        try:
            yield _read(box, key)
        except KeyError:
            continue  # removed between the listing and the read


def list_mail(directory: Path) -> list[CapturedMail]:
    """Every captured message, oldest first (the newest is last, as in a terminal)."""
    return sorted(_entries(directory), key=lambda m: (m.received_at, m.id))


def find_mail(directory: Path, wanted: str) -> CapturedMail | None:
    if not _ID.fullmatch(wanted):
        return None
    box = _maildir(directory)
    if box is None:
        return None
    for key in box.iterkeys():
        if mail_id(key) == wanted:
            try:
                return _read(box, key)
            except KeyError:
                return None
    return None
