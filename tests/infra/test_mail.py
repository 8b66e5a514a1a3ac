"""Mail to a relay as production has one: TLS (STARTTLS or implicit) with a certificate from a
CA made for the test, AUTH required. A permanent refusal is recorded on the outbox event (and,
for an invitation, in its audit trail), a temporary one retries, and the password shows
nowhere."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from devtools.smtp import Mailbox, free_port, text_of
from infra import outbox
from infra.mail import Mail, MailBatch, MailRefused, send_mail
from infra.outbox import Event
from infra.settings import Settings
from tenants.jobs import send_invitation
from tests.support.factories import new_agency, unique
from tests.support.tls import Pki, make_pki

# The worker's handlers, as the worker registers them (tenants' invitation mail among them).
import main.worker  # noqa: F401  isort: skip

USER = "passerelle@relay.example"
PASSWORD = "s3cret-relay-Pa55word"
WRONG = "not-the-relay-password"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _relay(pki: Pki, *, implicit: bool) -> Iterator[Mailbox]:
    box = Mailbox(
        free_port(), tls=pki.server_context(), implicit_tls=implicit, logins={USER: PASSWORD}
    )
    box.start()
    yield box
    box.stop()


@pytest.fixture
def starttls_relay(pki: Pki) -> Iterator[Mailbox]:
    yield from _relay(pki, implicit=False)


@pytest.fixture
def implicit_relay(pki: Pki) -> Iterator[Mailbox]:
    yield from _relay(pki, implicit=True)


def through(
    settings: Settings, relay: Mailbox, pki: Pki, tls: str, password: str = PASSWORD
) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": relay.port,
            "smtp_tls": tls,
            "smtp_username": USER,
            "smtp_password": SecretStr(password),
            "smtp_ca_file": pki.ca_file,
        }
    )


def letter(to: str) -> Mail:
    return Mail(to=to, subject="Bonjour", text="Un message.\n")


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_mail_goes_over_tls_after_auth(settings, pki, request, tls):
    relay: Mailbox = request.getfixturevalue(f"{tls}_relay")
    to = f"{unique('lea')}@example.com"

    await send_mail(through(settings, relay, pki, tls), letter(to))

    [message] = await relay.wait_for(to)
    assert text_of(message).strip() == "Un message."
    assert relay.over_tls == [True]


async def test_a_relay_not_offering_starttls_gets_nothing(settings, pki):
    # A relay (or someone between) that drops STARTTLS must not receive the password in clear.
    plain = Mailbox(free_port(), logins={USER: PASSWORD})
    plain.start()
    try:
        with pytest.raises(aiosmtplib.SMTPException, match="STARTTLS"):
            await send_mail(through(settings, plain, pki, "starttls"), letter("a@example.com"))
    finally:
        plain.stop()
    assert plain.messages == []


async def test_an_untrusted_certificate_is_refused(settings, pki, starttls_relay, tmp_path: Path):
    stranger = make_pki(tmp_path / "other")
    config = through(settings, starttls_relay, pki, "starttls").model_copy(
        update={"smtp_ca_file": stranger.ca_file}
    )
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):
        await send_mail(config, letter("a@example.com"))
    assert starttls_relay.messages == []


async def test_a_wrong_password_is_a_permanent_refusal(settings, pki, starttls_relay):
    config = through(settings, starttls_relay, pki, "starttls", password=WRONG)
    with pytest.raises(MailRefused, match="SMTP 535:") as refused:
        await send_mail(config, letter("a@example.com"))
    assert WRONG not in str(refused.value) and refused.value.__cause__ is None
    assert starttls_relay.messages == []


def test_auth_in_clear_is_refused_unless_the_relay_is_on_loopback(settings):
    base = settings.model_dump()
    with pytest.raises(ValidationError, match="in clear"):
        Settings(
            **base
            | {"smtp_host": "smtp.example.com", "smtp_username": USER, "smtp_password": PASSWORD}
        )
    loopback = Settings(**base | {"smtp_username": USER, "smtp_password": PASSWORD})
    assert loopback.smtp_tls == "none"
    with pytest.raises(ValidationError, match="SMTP_PASSWORD"):
        Settings(
            **base
            | {"smtp_host": "smtp.example.com", "smtp_tls": "implicit", "smtp_username": USER}
        )
    assert PASSWORD not in repr(loopback)


async def _invite(client, agency, email: str) -> str:
    response = await client.post(
        "/v1/invitations", json={"email": email, "role": "member"}, headers=agency.owner.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _event(db, tenant_id, invitation_id: str) -> Event:
    async with db.tenant_transaction(tenant_id) as session:
        return (
            await session.scalars(
                select(Event).where(
                    Event.tenant_id == tenant_id,
                    Event.type == "member.invited",
                    Event.aggregate_id == invitation_id,
                )
            )
        ).one()


async def _audit(client, agency, invitation_id: str) -> list[dict]:
    response = await client.get(
        "/v1/audit-events",
        params={"subject_type": "invitation", "subject_id": invitation_id},
        headers=agency.owner.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.fixture
def worker_ctx(db, resources):
    def make(settings: Settings) -> dict:
        return {
            "db": db,
            "settings": settings,
            "signer": resources.signer,
            "redis": resources.queue,
        }

    return make


async def test_an_invitation_to_a_refused_address_is_recorded_not_retried(
    client, db, settings, pki, starttls_relay, worker_ctx, caplog
):
    agency = await new_agency(client)
    email = f"{unique('gone')}@example.com"
    starttls_relay.refuse[email] = f"550 5.1.1 <{email}>: mailbox unavailable"
    invitation_id = await _invite(client, agency, email)
    ctx = worker_ctx(through(settings, starttls_relay, pki, "starttls"))

    caplog.set_level(logging.DEBUG)
    await outbox.deliver_pending(ctx, agency.tenant_id)

    event = await _event(db, agency.tenant_id, invitation_id)
    assert (event.status, event.attempts) == ("refused", 1)
    assert event.last_error == f"SMTP 550: 5.1.1 <{email}>: mailbox unavailable"
    assert event.next_attempt_at is None
    audit = await _audit(client, agency, invitation_id)
    [refusal] = [a for a in audit if a["action"] == "invitation.mail_refused"]
    assert refusal["changes"]["email"] == email
    assert refusal["changes"]["reason"].startswith("SMTP 550:")

    # Never tried again: the relay would refuse it again.
    await outbox.deliver_pending(ctx, agency.tenant_id)
    assert (await _event(db, agency.tenant_id, invitation_id)).attempts == 1
    assert starttls_relay.messages == []
    assert PASSWORD not in caplog.text


async def test_a_rerun_after_a_crash_records_the_refusal_once(
    client, db, settings, pki, starttls_relay, worker_ctx
):
    """The outbox delivers at least once: a worker that died after the handler recorded the
    refusal, before the outbox marked the event, runs the handler again on the same event."""
    agency = await new_agency(client)
    email = f"{unique('gone')}@example.com"
    starttls_relay.refuse[email] = f"550 5.1.1 <{email}>: mailbox unavailable"
    invitation_id = await _invite(client, agency, email)
    ctx = worker_ctx(through(settings, starttls_relay, pki, "starttls"))
    event = await _event(db, agency.tenant_id, invitation_id)

    # The first run, as far as it got: its audit entry committed, the event still pending.
    with pytest.raises(MailRefused):
        await send_invitation(ctx, event)
    assert (await _event(db, agency.tenant_id, invitation_id)).status == "pending"
    await outbox.deliver_pending(ctx, agency.tenant_id)

    event = await _event(db, agency.tenant_id, invitation_id)
    assert (event.status, event.attempts) == ("refused", 1)
    audit = await _audit(client, agency, invitation_id)
    [refusal] = [a for a in audit if a["action"] == "invitation.mail_refused"]
    assert refusal["changes"]["email"] == email
    # A rerun of the handler itself, once more, still adds nothing.
    with pytest.raises(MailRefused):
        await send_invitation(ctx, event)
    assert [a["id"] for a in await _audit(client, agency, invitation_id)] == [
        a["id"] for a in audit
    ]
    assert starttls_relay.messages == []


async def test_a_wrong_relay_password_is_recorded_and_never_shown(
    client, db, settings, pki, implicit_relay, worker_ctx, caplog, capsys
):
    agency = await new_agency(client)
    invitation_id = await _invite(client, agency, f"{unique('lea')}@example.com")
    ctx = worker_ctx(through(settings, implicit_relay, pki, "implicit", password=WRONG))

    caplog.set_level(logging.DEBUG)
    await outbox.deliver_pending(ctx, agency.tenant_id)

    event = await _event(db, agency.tenant_id, invitation_id)
    assert event.status == "refused" and event.last_error.startswith("SMTP 535:")
    audit = await _audit(client, agency, invitation_id)
    printed = capsys.readouterr()
    assert "outbox.refused" in caplog.text + printed.out + printed.err  # the log was looked at
    for shown in (caplog.text, printed.out, printed.err, event.last_error, str(audit)):
        assert WRONG not in shown and PASSWORD not in shown


async def test_a_temporary_refusal_retries_then_delivers(
    client, db, settings, pki, starttls_relay, worker_ctx
):
    agency = await new_agency(client)
    email = f"{unique('busy')}@example.com"
    starttls_relay.refuse[email] = "451 4.3.0 try again later"
    invitation_id = await _invite(client, agency, email)
    ctx = worker_ctx(through(settings, starttls_relay, pki, "starttls"))

    await outbox.deliver_pending(ctx, agency.tenant_id)
    event = await _event(db, agency.tenant_id, invitation_id)
    assert (event.status, event.attempts) == ("pending", 1)
    assert event.next_attempt_at is not None and "451" in event.last_error

    del starttls_relay.refuse[email]
    async with db.tenant_transaction(agency.tenant_id) as session:
        row = await session.get(Event, (agency.tenant_id, event.id))
        row.next_attempt_at = None
    await outbox.deliver_pending(ctx, agency.tenant_id)
    assert (await _event(db, agency.tenant_id, invitation_id)).status == "delivered"
    await starttls_relay.wait_for(email)


async def test_one_refused_recipient_does_not_keep_the_others_from_their_mail(
    settings, pki, starttls_relay
):
    gone, here = f"{unique('gone')}@example.com", f"{unique('here')}@example.com"
    starttls_relay.refuse[gone] = "550 5.1.1 no such user"
    batch = MailBatch(through(settings, starttls_relay, pki, "starttls"))

    await batch.send(letter(gone))
    await batch.send(letter(here))

    await starttls_relay.wait_for(here)
    with pytest.raises(MailRefused) as refused:
        batch.raise_refused()
    assert str(refused.value) == f"{gone}: SMTP 550: 5.1.1 no such user"
