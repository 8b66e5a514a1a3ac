"""External approvers decide through the single-use link e-mailed to them (no account)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html import unescape

import pytest
from sqlmodel import select

from devtools.smtp import text_of
from infra.clock import utcnow
from infra.outbox import Event
from tests.support.factories import (
    Agency,
    add_person,
    make_client,
    new_agency,
    new_world,
    unique,
)
from tests.support.problems import assert_problem
from tests.support.worker import run_worker

# Whatever the base (PUBLIC_BASE_URL, or the agency's own app): the exact address is
# asserted by test_the_email_speaks_the_clients_language_and_hides_internal_comments.
LINK = re.compile(r"https?://[^\s\"<>]+/approve/([A-Za-z0-9_\-.]+)")
POST_TEXT = "Notre nouvelle baguette au levain arrive en boutique samedi matin."


@dataclass
class Setup:
    agency: Agency
    brand: dict
    item: dict
    emails: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return self.agency.owner.headers

    @property
    def item_id(self) -> str:
        return str(self.item["id"])


def _email(tag: str = "ext") -> str:
    return f"{unique(tag)}@externe.example"


async def _setup(
    client,
    *,
    locale: str = "fr-CA",
    steps: list[dict] | None = None,
    emails: list[str] | None = None,
    rule: str = "any",
    title: str = "Baguette au levain",
    extra: dict | None = None,
    brand_fields: dict | None = None,
) -> Setup:
    world = await new_world(
        client,
        customer={"locale": locale},
        brands={"brand": {"default_language": locale[:2], **(brand_fields or {})}},
    )
    agency, brand, h = world.agency, world.brand, world.boss
    emails = emails or [_email()]
    steps = steps or [{"name": "Client OK", "kind": "client", "rule": rule, "emails": emails}]
    r = await client.post(
        "/v1/workflow-templates",
        json={"name": unique("Tpl"), "steps": steps, "brand_ids": [brand["id"]]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/brands/{brand['id']}/content",
        json={"title": title, "variants": {"instagram": POST_TEXT}, **(extra or {})},
        headers=h,
    )
    assert r.status_code == 201, r.text
    return Setup(agency, brand, r.json(), emails)


async def _submit(client, s: Setup) -> dict:
    r = await client.post(f"/v1/content/{s.item_id}/submit", json={}, headers=s.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _mail_for(settings, mailbox, address: str, count: int = 1) -> EmailMessage:
    await run_worker(settings)
    return (await mailbox.wait_for(address, count=count))[count - 1]


def _token(message: EmailMessage) -> str:
    found = LINK.findall(text_of(message))
    assert len(found) == 1, text_of(message)
    return found[0]


async def _link_for(client, settings, mailbox, s: Setup, address: str, count: int = 1) -> str:
    return _token(await _mail_for(settings, mailbox, address, count))


async def _decisions(client, s: Setup) -> list[dict]:
    r = await client.get(f"/v1/content/{s.item_id}/decisions", headers=s.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def _content(client, s: Setup) -> dict:
    r = await client.get(f"/v1/content/{s.item_id}", headers=s.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _events(db, s: Setup) -> list[Event]:
    async with db.tenant_transaction(s.agency.tenant_id) as session:
        rows = (
            await session.scalars(
                select(Event).where(
                    Event.tenant_id == s.agency.tenant_id,
                    Event.aggregate_id == uuid.UUID(s.item_id),
                )
            )
        ).all()
        return list(rows)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _claims(token: str) -> dict:
    return json.loads(_b64(token.split(".")[1]))


def _flip(char: str) -> str:
    return "B" if char == "A" else "A"


def _flip_at(token: str, part: int, position: int) -> str:
    parts = token.split(".")
    text = parts[part]
    parts[part] = text[:position] + _flip(text[position]) + text[position + 1 :]
    return ".".join(parts)


# ---------------------------------------------------------------------------------------------
# The e-mail and what the link shows


@pytest.mark.parametrize(
    ("locale", "subject", "button", "expiry", "count_words"),
    [
        (
            "fr-CA",
            "À approuver : Baguette au levain",
            "Voir et décider",
            "Ce lien est personnel et ne fonctionne qu'une fois. Il expire le",
            "1 commentaire(s)",
        ),
        (
            "en",
            "To approve: Baguette au levain",
            "Review and decide",
            "This link is personal and works only once. It expires on",
            "1 comment(s)",
        ),
    ],
    ids=["fr-CA", "en"],
)
async def test_the_email_speaks_the_clients_language_and_hides_internal_comments(
    client, db, settings, mailbox, locale, subject, button, expiry, count_words
):
    s = await _setup(client, locale=locale)
    for body, visibility in (
        ("Marge trop faible, ne pas le dire au client", "internal"),
        ("Photo prise au four ce matin", "client"),
    ):
        r = await client.post(
            f"/v1/content/{s.item_id}/comments",
            json={"body": body, "visibility": visibility},
            headers=s.headers,
        )
        assert r.status_code == 201, r.text
    submitted = await _submit(client, s)
    assert submitted["status"] == "awaiting_client"
    assert submitted["step"]["approvers"] == [f"email:{s.emails[0]}"]

    message = await _mail_for(settings, mailbox, s.emails[0])
    assert message["Subject"] == f"{subject} ({s.brand['name']})"
    assert message["Content-Language"] == locale[:2]
    text = text_of(message)
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    token = _token(message)
    # A page of this service (PUBLIC_BASE_URL), not of the staff's single-page app.
    url = f"{settings.public_base_url}/approve/{token}"
    assert POST_TEXT in text and POST_TEXT in html
    assert f'href="{url}"' in html and f">{button}</a>" in html
    assert f"{button}" in text and url in text
    assert expiry in text and expiry in unescape(html)
    assert count_words in text and count_words in html  # the internal comment is not counted
    assert "Marge trop faible" not in text and "Marge trop faible" not in html
    assert "Client OK" in text  # the step's name

    r = await client.get(f"/v1/approval-links/{token}")
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["title"] == "Baguette au levain"
    assert view["brand_name"] == s.brand["name"]
    assert view["step_name"] == "Client OK"
    assert view["email"] == s.emails[0]
    assert view["revision_number"] == 1
    assert view["variants"] == {"instagram": POST_TEXT}
    assert [c["body"] for c in view["comments"]] == ["Photo prise au four ce matin"]
    expires = datetime.fromisoformat(view["expires_at"])
    started = datetime.fromisoformat(submitted["step"]["started_at"])
    assert abs(expires - (started + timedelta(hours=72))) < timedelta(seconds=5)
    assert token not in r.text


EXPIRY_MAILS = [
    pytest.param(
        "fr-CA",
        "America/Montreal",
        "Ce lien est personnel et ne fonctionne qu'une fois. "
        "Il expire le 8 décembre 2026 à 17 h 00 (heure de Montréal).",
        id="fr-CA",
    ),
    pytest.param(
        "fr",
        "Europe/Paris",
        "Ce lien est personnel et ne fonctionne qu'une fois. "
        "Il expire le 8 décembre 2026 à 23 h 00 (heure de Paris).",
        id="fr",
    ),
    pytest.param(
        "en",
        "America/Vancouver",
        "This link is personal and works only once. "
        "It expires on December 8, 2026 at 2:00 PM (Vancouver time).",
        id="en",
    ),
]


@pytest.mark.parametrize(("locale", "zone", "sentence"), EXPIRY_MAILS)
async def test_the_email_says_when_the_link_expires_and_that_it_works_once(
    client, settings, mailbox, clock, locale, zone, sentence
):
    # Sent at 17:00 in Montréal; links live 72 hours.
    clock.set(datetime(2026, 12, 5, 22, 0, tzinfo=UTC))
    s = await _setup(client, locale=locale, brand_fields={"timezone": zone})
    await _submit(client, s)
    message = await _mail_for(settings, mailbox, s.emails[0])
    text = " ".join(text_of(message).split())
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = " ".join(unescape(str(html_part.get_content())).split())
    assert sentence in text
    assert sentence in html

    # And it does work once.
    token = _token(message)
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    again = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert_problem(again, 410, "approval-link-used")


def _strings(value: object) -> list[str]:
    """Every key and string value in a JSON document."""
    if isinstance(value, dict):
        return [k for k in value] + [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


async def test_the_link_shows_the_approver_nothing_internal(
    client, db, resources, settings, mailbox
):
    photo = {"url": "https://cdn.example/four.jpg", "type": "image", "alt_text": "Le four"}
    planned = (utcnow() + timedelta(days=10)).replace(microsecond=0)
    s = await _setup(
        client,
        extra={
            "media": [photo],
            "campaign": "Relance marge Q4",
            "labels": ["interne-prix-bas"],
            "planned_at": planned.isoformat(),
        },
    )
    lea = await add_person(client, db, resources.passwords, s.agency, "member", name="Léa Tremblay")
    comments = [
        ({"body": "Marge trop faible, ne pas le dire au client", "visibility": "internal"}),
        (
            {
                "body": f"@[Léa Tremblay]({lea.user_id}) a pris la photo ce matin",
                "visibility": "client",
                "anchor": {
                    "revision_id": s.item["revision"]["id"],
                    "platform": "instagram",
                    "start": 0,
                    "end": 14,
                },
            }
        ),
    ]
    ids = []
    for body in comments:
        r = await client.post(f"/v1/content/{s.item_id}/comments", json=body, headers=s.headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await client.post(
        f"/v1/content/{s.item_id}/comments",
        json={"body": "Réponse pour le client", "visibility": "client", "parent_id": ids[1]},
        headers=s.headers,
    )
    assert r.status_code == 201, r.text
    ids.append(r.json()["id"])
    submitted = await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])

    r = await client.get(f"/v1/approval-links/{token}")
    assert r.status_code == 200, r.text
    view = r.json()
    # What the approver needs: the post as sent, the decisions open to them, the client thread.
    assert set(view) == {
        "brand_name",
        "title",
        "revision_number",
        "variants",
        "media",
        "planned_at",
        "step_name",
        "email",
        "expires_at",
        "decisions",
        "comments",
    }
    assert view["brand_name"] == s.brand["name"]
    assert (view["title"], view["variants"]) == ("Baguette au levain", {"instagram": POST_TEXT})
    assert view["media"] == [photo]
    assert datetime.fromisoformat(view["planned_at"]) == planned
    assert view["decisions"] == ["approve", "request_changes", "reject"]
    assert view["comments"] == [
        {
            "author_name": "Owner",
            "body": "@Léa Tremblay a pris la photo ce matin",
            "anchor": {"platform": "instagram", "start": 0, "end": 14, "quote": POST_TEXT[:14]},
            "created_at": view["comments"][0]["created_at"],
        },
        {
            "author_name": "Owner",
            "body": "Réponse pour le client",
            "anchor": None,
            "created_at": view["comments"][1]["created_at"],
        },
    ]
    # Nothing internal: no id of the agency, its people, the item, its revision or comments;
    # no staff address, internal comment, label, campaign or workflow state.
    secrets = [
        str(s.agency.tenant_id),
        str(s.agency.owner.user_id),
        str(lea.user_id),
        str(lea.membership_id),
        s.agency.owner.email,
        lea.email,
        s.item_id,
        s.brand["id"],
        submitted["revision"]["id"],
        *ids,
        "Marge trop faible",
        "Relance marge Q4",
        "interne-prix-bas",
    ]
    for secret in secrets:
        assert secret not in r.text, secret
    strings = _strings(view)
    for internal in ("author_id", "user_id", "mentions", "approvers", "labels", "campaign"):
        assert internal not in strings, internal
    for word in ("internal", "visibility", "parent_id", "content_id", "revision_id", "id"):
        assert word not in strings, word

    # The answer to a decision is the approver's own, without the agency's ids either.
    r = await client.post(
        f"/v1/approval-links/{token}", json={"decision": "approve", "comment": "Parfait"}
    )
    assert r.status_code == 201, r.text
    answer = r.json()
    assert set(answer) == {"decision", "comment", "email", "created_at"}
    assert (answer["decision"], answer["comment"], answer["email"]) == (
        "approve",
        "Parfait",
        s.emails[0],
    )
    for secret in secrets:
        assert secret not in r.text, secret


async def test_approve_by_link_is_recorded_once_and_the_link_is_then_used(
    client, db, settings, mailbox
):
    s = await _setup(client)
    submitted = await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])

    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    decision = r.json()
    assert decision["decision"] == "approve"
    assert decision["email"] == s.emails[0] and decision["comment"] is None
    assert (await _content(client, s))["status"] == "approved"

    again = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    body = assert_problem(again, 410, "approval-link-used")
    assert body["detail"]
    assert_problem(await client.get(f"/v1/approval-links/{token}"), 410, "approval-link-used")
    assert_problem(
        await client.post(f"/v1/approval-links/{token}", json={"decision": "reject"}),
        410,
        "approval-link-used",
    )

    [row] = await _decisions(client, s)
    assert row["channel"] == "link" and row["actor_type"] == "link"
    assert row["email"] == s.emails[0] and row["user_id"] is None
    assert row["revision_id"] == submitted["revision"]["id"]
    assert row["step_kind"] == "client"

    # The token is in no answer and no event.
    signature = token.split(".")[2]
    for path in ("", "/decisions", "/comments", "/history", "/revisions"):
        r = await client.get(f"/v1/content/{s.item_id}{path}", headers=s.headers)
        assert r.status_code == 200, r.text
        assert signature not in r.text, path
    events = await _events(db, s)
    assert {e.type for e in events} >= {
        "content.submitted",
        "approval.requested",
        "content.approved",
    }
    for event in events:
        dumped = json.dumps(event.payload)
        assert signature not in dumped and token not in dumped, event.type


async def test_a_link_approval_moves_the_item_to_the_next_step(
    client, db, resources, settings, mailbox
):
    email = _email()
    s = await _setup(client, emails=[email])
    reviewer = await add_person(client, db, resources.passwords, s.agency, "manager")
    steps = [
        {"name": "Client OK", "kind": "client", "emails": [email]},
        {"name": "Final check", "kind": "internal", "user_ids": [str(reviewer.user_id)]},
    ]
    r = await client.post(
        "/v1/workflow-templates",
        json={"name": unique("Tpl"), "steps": steps},
        headers=s.headers,
    )
    assert r.status_code == 201, r.text
    r = await client.patch(
        f"/v1/content/{s.item_id}", json={"template_id": r.json()["id"]}, headers=s.headers
    )
    assert r.status_code == 200, r.text
    submitted = await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, email)
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    item = await _content(client, s)
    assert item["status"] == "in_review"
    assert item["step"]["name"] == "Final check"
    assert item["step"]["approvers"] == [f"user:{reviewer.user_id}"]
    r = await client.post(
        f"/v1/content/{s.item_id}/decisions",
        json={"revision_id": submitted["revision"]["id"], "decision": "approve"},
        headers=reviewer.headers,
    )
    assert r.status_code == 201, r.text
    assert (await _content(client, s))["status"] == "approved"
    assert [(d["channel"], d["step_index"]) for d in await _decisions(client, s)] == [
        ("link", 0),
        ("app", 1),
    ]


# ---------------------------------------------------------------------------------------------
# Links that are refused


def _tampered(token: str, kind: str, other: str) -> str:
    if kind == "signature":
        return _flip_at(token, 2, 10)
    if kind == "payload":
        return _flip_at(token, 1, 12)
    if kind == "header":
        return _flip_at(token, 0, 5)
    if kind == "truncated":
        return token[:-6]
    if kind == "garbage":
        return "n0t-a-t0ken." + uuid.uuid4().hex
    if kind == "other-audience":
        return other
    if kind == "too-long":
        return token + "A" * 3000
    if kind == "two-parts":
        return ".".join(token.split(".")[:2])
    raise AssertionError(kind)


TAMPERINGS = [
    "signature",
    "payload",
    "header",
    "truncated",
    "garbage",
    "other-audience",
    "too-long",
    "two-parts",
]


@pytest.mark.parametrize("kind", TAMPERINGS, ids=TAMPERINGS)
async def test_an_altered_link_is_invalid_and_records_nothing(
    client, resources, settings, mailbox, kind
):
    s = await _setup(client)
    await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])
    claims = _claims(token)
    other = resources.signer.sign(
        {"sub": claims["sub"], "tid": claims["tid"]},
        audience="passerelle-invitation",
        ttl_seconds=60,
    )
    bad = _tampered(token, kind, other)
    assert bad != token

    assert_problem(await client.get(f"/v1/approval-links/{bad}"), 404, "approval-link-invalid")
    for decision in ("approve", "reject"):
        r = await client.post(f"/v1/approval-links/{bad}", json={"decision": decision})
        body = assert_problem(r, 404, "approval-link-invalid")
        assert s.item_id not in r.text and "Baguette" not in r.text
        assert body["detail"]

    assert await _decisions(client, s) == []
    assert (await _content(client, s))["status"] == "awaiting_client"
    # The genuine link still works.
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert r.status_code == 201, r.text


async def test_a_token_naming_another_link_or_agency_is_invalid(
    client, resources, settings, mailbox
):
    s = await _setup(client)
    await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])
    claims = _claims(token)
    other_agency = await new_agency(client)
    forged = [
        # Signed by us, right audience, but no such link.
        {"sub": str(uuid.uuid4()), "tid": claims["tid"]},
        # The link, but claimed for another agency: that agency has no such link.
        {"sub": claims["sub"], "tid": str(other_agency.tenant_id)},
        {"sub": claims["sub"], "tid": "not-a-uuid"},
        {"sub": claims["sub"]},
    ]
    for extra in forged:
        bad = resources.signer.sign(extra, audience="passerelle-approval-link", ttl_seconds=600)
        assert_problem(await client.get(f"/v1/approval-links/{bad}"), 404, "approval-link-invalid")
        r = await client.post(f"/v1/approval-links/{bad}", json={"decision": "approve"})
        assert_problem(r, 404, "approval-link-invalid")
    assert await _decisions(client, s) == []

    # The genuine token is bound to agency A and shows A's item.
    r = await client.get(f"/v1/approval-links/{token}")
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Baguette au levain"
    assert r.json()["brand_name"] == s.brand["name"]
    assert claims["tid"] == str(s.agency.tenant_id)
    r = await client.get(f"/v1/content/{s.item_id}", headers=other_agency.owner.headers)
    assert_problem(r, 404, "content-not-found")


async def test_an_expired_link_is_refused_and_records_nothing(
    client, settings, mailbox, monkeypatch
):
    import workflows.service.approvals as approvals

    s = await _setup(client)
    await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])
    later = datetime.now(UTC) + timedelta(hours=73)
    monkeypatch.setattr(approvals, "utcnow", lambda: later)

    body = assert_problem(
        await client.get(f"/v1/approval-links/{token}"), 410, "approval-link-expired"
    )
    assert body["detail"]
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert_problem(r, 410, "approval-link-expired")
    monkeypatch.undo()

    assert await _decisions(client, s) == []
    assert (await _content(client, s))["status"] == "awaiting_client"
    # Still valid before its expiry: it was not consumed by the refused attempt.
    r = await client.get(f"/v1/approval-links/{token}")
    assert r.status_code == 200, r.text


async def test_a_link_sent_before_an_edit_is_superseded(client, settings, mailbox):
    s = await _setup(client)
    await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])
    r = await client.patch(
        f"/v1/content/{s.item_id}", json={"title": "Baguette au levain v2"}, headers=s.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "draft"

    for method in ("GET", "POST"):
        r = await client.request(
            method,
            f"/v1/approval-links/{token}",
            **({"json": {"decision": "approve"}} if method == "POST" else {}),
        )
        body = assert_problem(r, 409, "approval-link-superseded")
        assert body["detail"]
    assert await _decisions(client, s) == []

    # Submitted again: a new link, the old one stays superseded.
    await _submit(client, s)
    new_token = await _link_for(client, settings, mailbox, s, s.emails[0], count=2)
    assert new_token != token
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert_problem(r, 409, "approval-link-superseded")
    r = await client.get(f"/v1/approval-links/{new_token}")
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Baguette au levain v2"
    assert r.json()["revision_number"] == 2
    r = await client.post(f"/v1/approval-links/{new_token}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    assert (await _content(client, s))["status"] == "approved"
    assert len(await _decisions(client, s)) == 1


async def test_under_any_the_second_approvers_link_is_closed_once_the_first_decided(
    client, settings, mailbox
):
    first, second = _email("first"), _email("second")
    s = await _setup(client, emails=[first, second], rule="any")
    await _submit(client, s)
    token_first = await _link_for(client, settings, mailbox, s, first)
    token_second = _token((await mailbox.wait_for(second))[0])

    r = await client.post(f"/v1/approval-links/{token_first}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    assert (await _content(client, s))["status"] == "approved"

    r = await client.post(f"/v1/approval-links/{token_second}", json={"decision": "reject"})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["type"].rsplit("/", 1)[1] in ("step-closed", "approval-link-superseded"), body
    assert_problem(r, 409)
    assert body["detail"]
    r = await client.get(f"/v1/approval-links/{token_second}")
    assert_problem(r, 409)
    assert len(await _decisions(client, s)) == 1
    assert (await _content(client, s))["status"] == "approved"


async def test_a_link_for_a_step_already_passed_is_step_closed(client, settings, mailbox):
    first, second, later = _email("first"), _email("second"), _email("later")
    s = await _setup(
        client,
        steps=[
            {"name": "Marketing", "kind": "client", "rule": "any", "emails": [first, second]},
            {"name": "Direction", "kind": "client", "emails": [later]},
        ],
        emails=[first, second],
    )
    await _submit(client, s)
    token_first = await _link_for(client, settings, mailbox, s, first)
    token_second = _token((await mailbox.wait_for(second))[0])
    r = await client.post(f"/v1/approval-links/{token_first}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    item = await _content(client, s)
    assert item["status"] == "awaiting_client" and item["step"]["name"] == "Direction"

    r = await client.post(f"/v1/approval-links/{token_second}", json={"decision": "approve"})
    assert_problem(r, 409, "step-closed")
    assert_problem(await client.get(f"/v1/approval-links/{token_second}"), 409, "step-closed")
    assert len(await _decisions(client, s)) == 1

    token_later = await _link_for(client, settings, mailbox, s, later)
    r = await client.get(f"/v1/approval-links/{token_later}")
    assert r.status_code == 200 and r.json()["step_name"] == "Direction", r.text
    r = await client.post(f"/v1/approval-links/{token_later}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    assert (await _content(client, s))["status"] == "approved"


async def test_under_all_every_link_must_approve(client, settings, mailbox):
    first, second = _email("first"), _email("second")
    s = await _setup(client, emails=[first, second], rule="all")
    await _submit(client, s)
    token_first = await _link_for(client, settings, mailbox, s, first)
    token_second = _token((await mailbox.wait_for(second))[0])
    r = await client.post(f"/v1/approval-links/{token_first}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    item = await _content(client, s)
    assert item["status"] == "awaiting_client"
    assert item["step"]["decided"] == [f"email:{first}"]
    r = await client.post(f"/v1/approval-links/{token_second}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    assert (await _content(client, s))["status"] == "approved"
    assert [d["email"] for d in await _decisions(client, s)] == [first, second]


async def test_request_changes_by_link_needs_a_comment_shown_to_the_client(
    client, settings, mailbox
):
    s = await _setup(client)
    await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])

    for body in ({"decision": "request_changes"}, {"decision": "request_changes", "comment": "  "}):
        r = await client.post(f"/v1/approval-links/{token}", json=body)
        assert_problem(r, 422, "reason-required")
    assert await _decisions(client, s) == []
    assert (await _content(client, s))["status"] == "awaiting_client"

    r = await client.post(
        f"/v1/approval-links/{token}",
        json={"decision": "request_changes", "comment": "Le prix est faux : 4,50 $"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["comment"] == "Le prix est faux : 4,50 $"
    item = await _content(client, s)
    assert item["status"] == "changes_requested"
    assert item["status_reason"] == "Le prix est faux : 4,50 $"

    r = await client.get(f"/v1/content/{s.item_id}/comments", headers=s.headers)
    assert r.status_code == 200, r.text
    [comment] = r.json()["items"]
    assert comment["body"] == "Le prix est faux : 4,50 $"
    assert comment["visibility"] == "client"
    assert comment["author_type"] == "link"
    assert comment["author_name"] == s.emails[0]
    assert comment["author_id"] is None

    [decision] = await _decisions(client, s)
    assert decision["decision"] == "request_changes"
    assert (decision["channel"], decision["actor_type"]) == ("link", "link")
    assert decision["email"] == s.emails[0]
    assert_problem(await client.get(f"/v1/approval-links/{token}"), 410, "approval-link-used")


async def test_two_simultaneous_answers_on_one_link_record_one_decision(client, settings, mailbox):
    s = await _setup(client)
    await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])
    answers = await asyncio.gather(
        client.post(f"/v1/approval-links/{token}", json={"decision": "approve"}),
        client.post(
            f"/v1/approval-links/{token}",
            json={"decision": "request_changes", "comment": "Non, changez la photo"},
        ),
    )
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 201 and codes[1] in (409, 410), [a.text for a in answers]
    loser = next(a for a in answers if a.status_code != 201)
    assert_problem(loser, loser.status_code)
    assert len(await _decisions(client, s)) == 1
    assert (await _content(client, s))["status"] in ("approved", "changes_requested")


@pytest.mark.parametrize("where", ["title", "brand"], ids=["title", "brand-name"])
async def test_a_line_break_in_user_text_never_stops_the_email(
    client, db, settings, mailbox, where
):
    """Either the text is refused up front, or the e-mail goes out with a one-line subject."""
    agency = await new_agency(client)
    h = agency.owner.headers
    acme = await make_client(client, h)
    email = _email()
    r = await client.post(
        "/v1/brands",
        json={
            "client_id": acme["id"],
            "name": "Boulangerie\r\nSaint-Laurent" if where == "brand" else unique("Brand"),
            "slug": unique("brand"),
        },
        headers=h,
    )
    if r.status_code == 422:
        assert_problem(r, 422, "validation-error")
        return
    assert r.status_code == 201, r.text
    brand = r.json()
    r = await client.post(
        "/v1/workflow-templates",
        json={
            "name": unique("Tpl"),
            "steps": [{"name": "Client OK", "kind": "client", "emails": [email]}],
            "brand_ids": [brand["id"]],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    title = "Baguette\r\nau levain" if where == "title" else "Baguette au levain"
    r = await client.post(
        f"/v1/brands/{brand['id']}/content",
        json={"title": title, "variants": {"instagram": POST_TEXT}},
        headers=h,
    )
    if r.status_code == 422:
        assert_problem(r, 422, "validation-error")
        return
    assert r.status_code == 201, r.text
    s = Setup(agency, brand, r.json(), [email])
    await _submit(client, s)
    await run_worker(settings)
    failed = [(e.type, e.last_error) for e in await _events(db, s) if e.status != "delivered"]
    assert failed == []
    message = (await mailbox.wait_for(email))[0]
    assert "\n" not in message["Subject"] and "Baguette" in message["Subject"]
    assert _token(message)


async def test_a_refused_answer_does_not_echo_the_live_token(client, settings, mailbox):
    s = await _setup(client)
    await _submit(client, s)
    token = await _link_for(client, settings, mailbox, s, s.emails[0])
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "request_changes"})
    assert_problem(r, 422, "reason-required")
    assert token.split(".")[2] not in r.text  # the link still works: it is a credential
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "maybe"})
    assert_problem(r, 422)
    assert token.split(".")[2] not in r.text
