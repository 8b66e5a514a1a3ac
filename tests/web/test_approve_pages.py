"""The external approver's pages: the link from the e-mail opens the post, records one decision,
and says plainly why a link no longer works and whom to ask. Driven over HTTP like a browser
without JavaScript: each test has its own cookie jar, takes the CSRF token from the page and
checks through the API what was recorded."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
from markupsafe import escape

from devtools.smtp import text_of
from infra.settings import get_settings
from tests.support.factories import Agency, add_person, new_agency, new_world, unique
from tests.support.worker import run_worker
from workflows.jobs import approval_timeouts

# The e-mail's link, whichever base address it is built on.
LINK = re.compile(r"/approve/([A-Za-z0-9_\-.]+)")
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
POST_TEXT = "Notre nouvelle baguette au levain arrive en boutique samedi matin."
LINKEDIN_TEXT = "Our sourdough baguette reaches the shop on Saturday morning."
PHOTO = {"url": "https://cdn.example/four.jpg", "type": "image", "alt_text": "Le four à pain"}
VIDEO = {"url": "https://cdn.example/four.mp4", "type": "video", "alt_text": "Le boulanger"}


@dataclass
class Sent:
    agency: Agency
    brand: dict
    item_id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return self.agency.owner.headers

    @property
    def page(self) -> str:
        return f"/approve/{self.token}"


@pytest.fixture
async def browser(app) -> AsyncIterator[httpx.AsyncClient]:
    """A visitor of its own: cookies (the CSRF one) are not shared with other tests."""
    transport = httpx.ASGITransport(app=app.state.asgi, client=("198.51.100.4", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def _send(
    client,
    settings,
    mailbox,
    *,
    locale: str = "fr-CA",
    zone: str = "America/Montreal",
    emails: list[str] | None = None,
    extra: dict | None = None,
    comments: list[dict] | None = None,
    submitter_headers: dict[str, str] | None = None,
    step: dict | None = None,
    world=None,
) -> Sent:
    """A post submitted to an external approver, and the token from the e-mail they got."""
    world = world or await new_world(
        client,
        customer={"locale": locale},
        brands={"brand": {"default_language": locale[:2], "timezone": zone}},
    )
    emails = emails or [f"{unique('ext')}@externe.example"]
    h = world.boss
    r = await client.post(
        "/v1/workflow-templates",
        json={
            "name": unique("Tpl"),
            "steps": [
                {
                    "name": "Client OK",
                    "kind": "client",
                    "rule": "any",
                    "emails": emails,
                    **(step or {}),
                }
            ],
            "brand_ids": [world.brand["id"]],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/brands/{world.brand['id']}/content",
        json={"title": "Baguette au levain", "variants": {"instagram": POST_TEXT}, **(extra or {})},
        headers=h,
    )
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    for body in comments or []:
        r = await client.post(f"/v1/content/{item_id}/comments", json=body, headers=h)
        assert r.status_code == 201, r.text
    r = await client.post(f"/v1/content/{item_id}/submit", json={}, headers=submitter_headers or h)
    assert r.status_code == 200, r.text
    await run_worker(settings)
    [message] = await mailbox.wait_for(emails[0])
    [token] = LINK.findall(text_of(message))
    return Sent(world.agency, world.brand, item_id, emails[0], token)


async def _csrf(browser: httpx.AsyncClient, path: str) -> str:
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    return CSRF_FIELD.findall(page.text)[0]


async def _decide(browser, s: Sent, decision: str, comment: str = "") -> httpx.Response:
    csrf = await _csrf(browser, s.page)
    return await browser.post(s.page, data={"csrf": csrf, "decision": decision, "comment": comment})


async def _decisions(client, s: Sent) -> list[dict]:
    r = await client.get(f"/v1/content/{s.item_id}/decisions", headers=s.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def _status(client, s: Sent) -> str:
    r = await client.get(f"/v1/content/{s.item_id}", headers=s.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def _nothing_recorded(client, s: Sent) -> None:
    assert await _decisions(client, s) == []
    assert await _status(client, s) == "awaiting_client"


def _text(html: str) -> str:
    """The page's words, tags dropped and spaces folded, as a person reads them."""
    inline = re.sub(r"</?(?:time|a|strong|em|b)\b[^>]*>", "", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", inline)).split())


# ---------------------------------------------------------------------------------------------
# What the page shows


PAGES = [
    pytest.param(
        "fr-CA",
        {
            "lang": "fr",
            "title": "Votre approbation est demandée : Baguette au levain",
            "step": "étape « Client OK » · version 1",
            "buttons": ["Approuver", "Demander des modifications", "Refuser"],
            "alt": "Texte alternatif : Le four à pain",
            "video": "Voir la vidéo : ",
            "comments": "Commentaires",
        },
        id="fr-CA",
    ),
    pytest.param(
        "en",
        {
            "lang": "en",
            "title": "Your approval is requested: Baguette au levain",
            "step": "step “Client OK” · version 1",
            "buttons": ["Approve", "Request changes", "Reject"],
            "alt": "Alt text: Le four à pain",
            "video": "Watch the video: ",
            "comments": "Comments",
        },
        id="en",
    ),
]


@pytest.mark.parametrize(("locale", "words"), PAGES)
async def test_the_page_shows_the_post_per_platform_in_the_clients_language(
    client, browser, settings, mailbox, locale, words
):
    s = await _send(
        client,
        settings,
        mailbox,
        locale=locale,
        extra={
            "variants": {"instagram": POST_TEXT, "linkedin": LINKEDIN_TEXT},
            "media": [PHOTO, VIDEO],
        },
        comments=[
            {"body": "Marge trop faible, ne pas le dire au client", "visibility": "internal"},
            {"body": "Photo prise au four ce matin", "visibility": "client"},
        ],
    )
    # The browser asks for the other language: the client's own wins.
    other = "en-US,en;q=0.9" if locale.startswith("fr") else "fr-CA,fr;q=0.9"
    r = await browser.get(s.page, headers={"Accept-Language": other})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert f'<html lang="{words["lang"]}">' in r.text
    text = _text(r.text)
    assert words["title"] in text
    assert f"Agence {s.agency.slug}" in text  # the agency's name heads the page
    assert f"{s.brand['name']} · {words['step']}" in text
    # One card per platform, each with its own text.
    assert re.search(r"<h3[^>]*>Instagram</h3>\s*<p class=\"post-text\">" + POST_TEXT, r.text)
    assert re.search(r"<h3[^>]*>LinkedIn</h3>\s*<p class=\"post-text\">" + LINKEDIN_TEXT, r.text)
    # The picture with its alt text; the video as a link labelled by its description.
    assert f'<img src="{PHOTO["url"]}" alt="{PHOTO["alt_text"]}"' in r.text
    assert words["alt"] in text
    assert f'href="{VIDEO["url"]}"' in r.text and f"{words['video']}Le boulanger" in text
    # The client's comments only.
    assert words["comments"] in text and "Photo prise au four ce matin" in text
    assert "Marge trop faible" not in r.text
    # The form: its CSRF token, the comment and three buttons.
    assert CSRF_FIELD.search(r.text)
    for label, value in zip(
        words["buttons"], ("approve", "request_changes", "reject"), strict=True
    ):
        assert f'value="{value}"' in r.text and label in text
    assert s.email in text
    assert '<script src="/static/decide.js" defer></script>' in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert (await browser.get("/static/decide.js")).status_code == 200


ZONES = [
    pytest.param(
        "fr-CA",
        "America/Montreal",
        "Publication prévue le 9 décembre 2026 à 21 h 30 (heure de Montréal)",
        "expire le 8 décembre 2026 à 17 h 00 (heure de Montréal)",
        id="Montreal",
    ),
    pytest.param(
        "fr",
        "Europe/Paris",
        "Publication prévue le 10 décembre 2026 à 3 h 30 (heure de Paris)",
        "expire le 8 décembre 2026 à 23 h 00 (heure de Paris)",
        id="Paris",
    ),
    pytest.param(
        "en",
        "America/Vancouver",
        "Planned for December 9, 2026 at 6:30 PM (Vancouver time)",
        "expires on December 8, 2026 at 2:00 PM (Vancouver time)",
        id="Vancouver",
    ),
]


@pytest.mark.parametrize(("locale", "zone", "planned", "expires"), ZONES)
async def test_the_planned_time_and_the_expiry_are_in_the_brands_time_zone(
    client, browser, settings, mailbox, clock, locale, zone, planned, expires
):
    clock.set(datetime(2026, 12, 5, 22, 0, tzinfo=UTC))  # links live 72 hours
    s = await _send(
        client,
        settings,
        mailbox,
        locale=locale,
        zone=zone,
        extra={"planned_at": "2026-12-10T02:30:00Z"},
    )
    r = await browser.get(s.page)
    assert r.status_code == 200, r.text
    text = _text(r.text)
    assert planned in text
    assert expires in text
    assert '<time datetime="2026-12-10T02:30:00+00:00">' in r.text


async def test_comments_and_their_html_are_shown_as_text(client, browser, settings, mailbox):
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    s = await _send(client, settings, mailbox, comments=[{"body": hostile, "visibility": "client"}])
    r = await browser.get(s.page)
    assert r.status_code == 200, r.text
    assert str(escape(hostile)) in r.text
    assert "<script>alert" not in r.text and "<img src=x" not in r.text

    # The approver's own comment: text on the page, the very same text in the API.
    r = await _decide(browser, s, "request_changes", hostile)
    assert r.status_code == 303, r.text
    done = await browser.get(r.headers["location"])
    assert done.status_code == 200, done.text
    assert str(escape(hostile)) in done.text
    assert "<script>alert" not in done.text and "<img src=x" not in done.text
    [row] = await _decisions(client, s)
    assert row["comment"] == hostile


# ---------------------------------------------------------------------------------------------
# Deciding


DECISIONS = [
    pytest.param("approve", "", "approved", "Votre réponse : approuvée.", id="approve"),
    pytest.param(
        "request_changes",
        "Le prix manque",
        "changes_requested",
        "Votre réponse : modifications demandées.",
        id="request_changes",
    ),
    pytest.param("reject", "", "rejected", "Votre réponse : refusée.", id="reject"),
    pytest.param(
        "reject", "Pas cette semaine", "rejected", "Votre réponse : refusée.", id="reject-why"
    ),
]


@pytest.mark.parametrize(("decision", "comment", "status", "answer"), DECISIONS)
async def test_each_decision_is_recorded_and_the_page_says_so(
    client, browser, settings, mailbox, decision, comment, status, answer
):
    s = await _send(client, settings, mailbox)
    r = await _decide(browser, s, decision, comment)
    # Post/Redirect/Get: reloading the answer does not post again.
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{s.page}/done"
    done = await browser.get(r.headers["location"])
    assert done.status_code == 200, done.text
    text = _text(done.text)
    assert "Merci, votre décision est enregistrée" in text
    assert answer in text
    if comment:
        assert comment in text

    assert await _status(client, s) == status
    [row] = await _decisions(client, s)
    assert (row["decision"], row["channel"], row["email"]) == (decision, "link", s.email)
    assert row["comment"] == (comment or None)


@pytest.mark.parametrize("comment", ["", "   \n  "], ids=["empty", "blank"])
async def test_requesting_changes_needs_a_comment(client, browser, settings, mailbox, comment):
    s = await _send(client, settings, mailbox)
    r = await _decide(browser, s, "request_changes", comment)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("text/html")
    # The error is next to the field, which says it is wrong; the form is there to try again.
    assert re.search(
        r'<p id="comment-error" class="error" role="alert">Dites ce qu&#39;il faut changer',
        r.text,
    )
    assert 'aria-describedby="comment-hint comment-error" aria-invalid="true"' in r.text
    assert CSRF_FIELD.search(r.text)
    await _nothing_recorded(client, s)

    r = await browser.post(
        s.page,
        data={
            "csrf": CSRF_FIELD.findall(r.text)[0],
            "decision": "request_changes",
            "comment": "Ajoutez le prix",
        },
    )
    assert r.status_code == 303, r.text
    assert await _status(client, s) == "changes_requested"


async def test_an_oversize_comment_is_refused_and_kept_to_shorten(
    client, browser, settings, mailbox
):
    s = await _send(client, settings, mailbox)
    too_long = "Trop long. " * 910  # 10,010 characters: the API allows 10,000
    r = await _decide(browser, s, "reject", too_long)
    assert r.status_code == 422, r.text
    assert "Ce commentaire est trop long : au plus 10000 caractères." in _text(r.text)
    assert too_long.strip() in r.text  # given back, so that nothing typed is lost
    await _nothing_recorded(client, s)

    r = await _decide(browser, s, "reject", "x" * 10_000)
    assert r.status_code == 303, r.text
    [row] = await _decisions(client, s)
    assert row["comment"] == "x" * 10_000


async def test_an_unknown_decision_is_refused(client, browser, settings, mailbox):
    s = await _send(client, settings, mailbox)
    for decision in ("", "approve_all", "<b>approve</b>"):
        r = await _decide(browser, s, decision)
        assert r.status_code == 422, r.text
        assert "Choisissez l&#39;un des trois boutons." in r.text
    await _nothing_recorded(client, s)


async def test_a_post_without_its_csrf_token_records_nothing(client, browser, settings, mailbox):
    s = await _send(client, settings, mailbox)
    csrf = await _csrf(browser, s.page)
    cases = [
        {"decision": "approve"},  # no field
        {"decision": "approve", "csrf": csrf[:-2] + "xx"},  # not the cookie's
    ]
    for data in cases:
        r = await browser.post(s.page, data=data)
        assert r.status_code == 403, r.text
        assert "Veuillez réessayer" in r.text  # in the client's language
    # Another site's form: the browser sends no strict same-site cookie with it.
    browser.cookies.clear()
    r = await browser.post(s.page, data={"decision": "approve", "csrf": csrf})
    assert r.status_code == 403, r.text
    await _nothing_recorded(client, s)


async def test_a_second_post_shows_the_answer_already_given(client, browser, settings, mailbox):
    s = await _send(client, settings, mailbox)
    csrf = await _csrf(browser, s.page)
    first = await browser.post(s.page, data={"csrf": csrf, "decision": "approve"})
    assert first.status_code == 303, first.text
    # The same click again, then a change of mind from another tab: the first answer stands.
    for decision in ("approve", "reject"):
        again = await browser.post(s.page, data={"csrf": csrf, "decision": decision})
        assert again.status_code == 303, again.text
        assert again.headers["location"] == f"{s.page}/done"
        done = await browser.get(again.headers["location"])
        assert done.status_code == 200
        assert "Votre réponse : approuvée." in _text(done.text)
    assert len(await _decisions(client, s)) == 1
    assert await _status(client, s) == "approved"


async def test_the_answer_page_before_any_answer_leads_to_the_form(
    client, browser, settings, mailbox
):
    s = await _send(client, settings, mailbox)
    r = await browser.get(f"{s.page}/done")
    assert r.status_code == 303
    assert r.headers["location"] == s.page
    await _nothing_recorded(client, s)


# ---------------------------------------------------------------------------------------------
# Links that no longer work


async def test_a_used_link_says_when_and_what_was_answered_and_whom_to_ask(
    client, browser, settings, mailbox, clock
):
    clock.set(datetime(2026, 12, 5, 22, 0, tzinfo=UTC))
    s = await _send(client, settings, mailbox)
    clock.set(datetime(2026, 12, 6, 14, 15, tzinfo=UTC))
    r = await _decide(browser, s, "reject", "Pas cette semaine")
    assert r.status_code == 303, r.text

    r = await browser.get(s.page)
    assert r.status_code == 410
    text = _text(r.text)
    assert "Vous avez déjà répondu avec ce lien" in text
    assert "celui-ci a servi le 6 décembre 2026 à 9 h 15 (heure de Montréal)." in text
    assert "Votre réponse : refusée." in text and "Pas cette semaine" in text
    # The owner submitted it: they are the person to write to.
    assert f"qui a soumis cette publication à votre approbation chez Agence {s.agency.slug}" in (
        text
    )
    assert f'href="mailto:{s.agency.owner.email}"' in r.text
    assert "Baguette au levain" not in text  # the post is no longer shown


async def test_an_expired_link_says_when_it_expired_and_records_nothing(
    client, browser, settings, mailbox, clock
):
    start = clock.set(datetime(2026, 12, 5, 22, 0, tzinfo=UTC))
    s = await _send(client, settings, mailbox)
    csrf = await _csrf(browser, s.page)
    clock.set(start + timedelta(hours=73))
    r = await browser.get(s.page)
    assert r.status_code == 410
    text = _text(r.text)
    assert "Ce lien a expiré" in text
    assert "Il pouvait servir jusqu'au 8 décembre 2026 à 17 h 00 (heure de Montréal)." in text
    assert f"mailto:{s.agency.owner.email}" in r.text
    r = await browser.post(s.page, data={"csrf": csrf, "decision": "approve"})
    assert r.status_code == 410
    assert "Ce lien a expiré" in r.text
    clock.set(start + timedelta(minutes=5))  # the owner's session is still valid then
    await _nothing_recorded(client, s)


async def test_a_link_sent_before_an_edit_is_superseded(client, browser, settings, mailbox):
    s = await _send(client, settings, mailbox)
    csrf = await _csrf(browser, s.page)
    r = await client.patch(
        f"/v1/content/{s.item_id}", json={"title": "Baguette v2"}, headers=s.headers
    )
    assert r.status_code == 200, r.text
    for method in ("GET", "POST"):
        r = await browser.request(
            method, s.page, data={"csrf": csrf, "decision": "approve"} if method == "POST" else None
        )
        assert r.status_code == 410, r.text
        assert "Cette publication a changé depuis l'envoi du courriel" in _text(r.text)
    assert await _decisions(client, s) == []
    assert await _status(client, s) == "draft"


async def test_a_step_another_approver_decided_is_closed(client, browser, settings, mailbox):
    first, second = f"{unique('first')}@externe.example", f"{unique('second')}@externe.example"
    s = await _send(client, settings, mailbox, emails=[first, second])
    [message] = await mailbox.wait_for(second)
    [second_token] = LINK.findall(text_of(message))
    assert (await _decide(browser, s, "approve")).status_code == 303

    r = await browser.get(f"/approve/{second_token}")
    assert r.status_code == 410
    assert "Cette étape d'approbation est close" in _text(r.text)
    assert len(await _decisions(client, s)) == 1


async def test_a_step_whose_time_ran_out_says_so(client, browser, db, settings, mailbox):
    s = await _send(
        client, settings, mailbox, step={"due_hours": 2, "timeout": {"policy": "expire"}}
    )
    r = await client.get(f"/v1/content/{s.item_id}", headers=s.headers)
    started = datetime.fromisoformat(r.json()["step"]["started_at"])
    await approval_timeouts(
        {"db": db, "settings": get_settings()}, now=started + timedelta(hours=2)
    )
    assert await _status(client, s) == "expired"
    r = await browser.get(s.page)
    assert r.status_code == 410
    assert "Le délai pour décider de cette publication est écoulé" in _text(r.text)
    assert await _decisions(client, s) == []


async def test_the_contact_is_whoever_sent_the_post_for_approval(
    client, browser, db, resources, settings, mailbox
):
    world = await new_world(client, customer={"locale": "en"})
    manager = await add_person(client, db, resources.passwords, world.agency, "manager")
    s = await _send(client, settings, mailbox, world=world, submitter_headers=manager.headers)
    r = await browser.get(s.page)
    assert r.status_code == 200
    text = _text(r.text)
    assert f"Questions? Write to {manager.email}, who sent this post for approval" in text
    assert f'href="mailto:{manager.email}"' in r.text


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _altered(token: str) -> str:
    """One character of the signature changed."""
    head, _, signature = token.rpartition(".")
    flipped = "B" if signature[5] == "A" else "A"
    return f"{head}.{signature[:5]}{flipped}{signature[6:]}"


async def test_an_altered_or_foreign_link_is_the_same_not_found_page(
    client, browser, resources, settings, mailbox
):
    s = await _send(client, settings, mailbox)
    claims = json.loads(_b64(s.token.split(".")[1]))
    other = await new_agency(client)

    def signed(payload: dict) -> str:
        return resources.signer.sign(payload, audience="passerelle-approval-link", ttl_seconds=600)

    bad = {
        "altered": _altered(s.token),
        "truncated": s.token[:-6],
        "unknown link": signed({"sub": str(uuid.uuid4()), "tid": claims["tid"]}),
        "another agency": signed({"sub": claims["sub"], "tid": str(other.tenant_id)}),
    }
    pages = []
    csrf = await _csrf(browser, s.page)
    for name, token in bad.items():
        r = await browser.get(f"/approve/{token}")
        assert r.status_code == 404, name
        assert "This link is not valid" in r.text, name
        assert "Baguette" not in r.text and s.email not in r.text, name
        pages.append(_text(r.text))
        r = await browser.post(f"/approve/{token}", data={"csrf": csrf, "decision": "approve"})
        assert r.status_code == 404, name
        r = await browser.get(f"/approve/{token}/done")
        assert r.status_code == 404, name
    assert len(set(pages)) == 1  # which of them it was is not disclosed
    # A link that names no client speaks the browser's language, all there is to go by.
    r = await browser.get(f"/approve/{bad['altered']}", headers={"Accept-Language": "fr-CA"})
    assert r.status_code == 404 and "Ce lien n'est pas valide" in _text(r.text)
    await _nothing_recorded(client, s)
