"""Captured mail, readable: the development SMTP catcher keeps what it receives in a Maildir,
and `passerelle mail` reads it from another process's point of view (only the directory)."""

from __future__ import annotations

import asyncio
import re

import pytest
from typer.testing import CliRunner, Result

from main.cli import app as cli
from tests.support.devmail import APPROVAL, INVITATION, catcher, mail_dir, send

__all__ = ["catcher", "mail_dir"]  # fixtures

LINE = re.compile(r"^(?P<id>[0-9a-f]{12})  (?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  (?P<rest>.*)$")


async def passerelle(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_mail_list_shows_each_captured_mail_newest_last(settings, catcher, mail_dir):
    empty = await passerelle("mail", "list")
    assert empty.exit_code == 0
    assert "no e-mail captured" in empty.output

    await send(settings, catcher, APPROVAL)
    await send(settings, catcher, INVITATION)

    listed = await passerelle("mail", "list")
    assert listed.exit_code == 0, listed.output
    lines = [LINE.match(line) for line in listed.stdout.splitlines()]
    assert all(lines) and len(lines) == 2, listed.stdout
    first, last = lines
    assert first["rest"] == "julie@client.example.com  Approve <b>Croissants</b> & co"
    assert last["rest"] == "lea@agency.example.com  You are invited"
    assert first["id"] != last["id"]


async def test_mail_show_prints_the_headers_and_the_text(settings, catcher, monkeypatch):
    await send(settings, catcher, APPROVAL)
    # A fresh terminal, .dev/env not loaded: reading mail needs no database or keys.
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "JWT_PRIVATE_KEYS"):
        monkeypatch.delenv(name)
    (line,) = (await passerelle("mail", "list")).stdout.splitlines()
    mail_id = line.split()[0]

    shown = await passerelle("mail", "show", mail_id)
    assert shown.exit_code == 0, shown.output
    head, _, body = shown.stdout.partition("\n\n")
    assert "To: julie@client.example.com" in head.splitlines()
    assert "Subject: Approve <b>Croissants</b> & co" in head.splitlines()
    assert any(h.startswith("From: ") for h in head.splitlines())
    assert "Content-Type" not in head
    assert "https://portal.example.com/approve/abc?x=1&y=2" in body
    assert 'alert("x")' not in body  # the text part, not the HTML one


@pytest.mark.parametrize("wanted", ["000000000000", "../../etc/passwd", "", "ABCDEF123456"])
async def test_mail_show_of_an_unknown_id_is_a_clear_error(settings, catcher, wanted):
    await send(settings, catcher, INVITATION)
    shown = await passerelle("mail", "show", wanted)
    assert shown.exit_code == 1
    assert "no captured e-mail with id" in shown.output
    assert "passerelle mail list" in shown.output
    assert "Traceback" not in shown.output


async def test_the_catcher_keeps_messages_for_other_processes(settings, catcher, mail_dir):
    await send(settings, catcher, INVITATION)
    # A Maildir: one file per message in new/, readable by any process.
    (stored,) = list((mail_dir / "new").iterdir())
    assert b"Subject: You are invited" in stored.read_bytes()
    # And still in memory, for the tests that read the catcher directly.
    assert [m["Subject"] for m in catcher.messages] == ["You are invited"]
