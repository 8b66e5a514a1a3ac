"""The development mail catcher on a free port, writing into a fresh DEV_MAIL_DIR, and the
application's own sender pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.smtp import Mailbox, free_port
from infra.mail import Mail, send_mail

APPROVAL = Mail(
    to="julie@client.example.com",
    subject="Approve <b>Croissants</b> & co",
    text="Bonjour Julie,\nOpen https://portal.example.com/approve/abc?x=1&y=2. Merci!\n"
    "<script>alert('text')</script>\n",
    html='<p style="color:#c00">Bonjour</p><script>alert("x")</script>'
    '<a href="https://portal.example.com/a">go</a>',
)
INVITATION = Mail(
    to="lea@agency.example.com",
    subject="You are invited",
    text="Join: https://app.example.com/invitations/xyz\n",
)


@pytest.fixture
def mail_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DEV_MAIL_DIR, for the CLI (which reads it from the environment)."""
    directory = tmp_path / "mail"
    monkeypatch.setenv("DEV_MAIL_DIR", str(directory))
    return directory


@pytest.fixture
def catcher(mail_dir: Path) -> Iterator[Mailbox]:
    """`python -m devtools`'s catcher, on a free port, writing into DEV_MAIL_DIR."""
    box = Mailbox(free_port(), mail_dir)
    box.start()
    yield box
    box.stop()


async def send(settings, catcher: Mailbox, mail: Mail) -> None:
    """The application's own sender, over SMTP to the catcher."""
    await send_mail(settings.model_copy(update={"smtp_port": catcher.port}), mail)
