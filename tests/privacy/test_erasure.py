"""A person's erasure: a client contact, an external approver and an inbox author lose their
name, address and words in this agency, while decisions keep a stable anonymous actor."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from devtools.smtp import text_of
from devtools.webhook_receiver import Receiver
from infra import outbox
from infra.clock import utcnow
from social.models import SocialAccount
from tests.support.factories import PASSWORD, add_person, make_post, new_world, unique, walk
from tests.support.inbox import seed_item
from tests.support.problems import assert_problem
from tests.support.worker import run_worker
from workflows.models import ApprovalDecision, ApprovalLink, ContentComment


async def decide(db, tenant_id, post_id, **fields) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        revision_id = await session.scalar(
            text("SELECT id FROM content_revisions WHERE content_item_id = :c LIMIT 1"),
            {"c": post_id},
        )
        step = fields.pop("step_index")
        session.add(
            ApprovalDecision(
                tenant_id=tenant_id,
                content_item_id=post_id,
                revision_id=revision_id,
                round=1,
                step_index=step,
                step_kind="client",
                decision="approve",
                channel="portal",
                **fields,
            )
        )
        if fields.get("email"):
            session.add(
                ApprovalLink(
                    tenant_id=tenant_id,
                    content_item_id=post_id,
                    revision_id=revision_id,
                    round=1,
                    step_index=step,
                    email=fields["email"],
                    expires_at=utcnow(),
                )
            )
        session.add(
            ContentComment(
                tenant_id=tenant_id,
                content_item_id=post_id,
                visibility="client",
                body="Mon numéro perso: 514-555-0199",
                author_type="user" if fields.get("user_id") else "link",
                author_id=fields.get("user_id"),
                author_email=fields.get("email"),
                author_name="Julie Client",
            )
        )


async def rows(db, tenant_id, sql, **params):
    async with db.tenant_transaction(tenant_id) as session:
        return (await session.execute(text(sql), params)).all()


async def test_client_contact_and_external_approver_are_erased(client, db, resources):
    world = await new_world(client)
    tenant_id = world.agency.tenant_id
    contact = await add_person(
        client,
        db,
        resources.passwords,
        world.agency,
        "client",
        name="Julie Client",
        client_id=uuid.UUID(world.customer["id"]),
    )
    member = await add_person(client, db, resources.passwords, world.agency, "member")
    post = await make_post(client, world.boss, world.brands["brand"]["id"])
    post_id = uuid.UUID(post["id"])
    await decide(
        db,
        tenant_id,
        post_id,
        step_index=0,
        approver=f"user:{contact.user_id}",
        actor_type="user",
        user_id=contact.user_id,
        email=None,
        comment="OK, appelez-moi au 514-555-0199",
    )
    await decide(
        db,
        tenant_id,
        post_id,
        step_index=1,
        approver="email:pierre@example.org",
        actor_type="link",
        email="pierre@example.org",
        comment="Approuvé — Pierre",
    )

    body = {"subject": "client_contact", "user_id": str(contact.user_id)}
    denied = await client.post("/v1/erasures", json=body, headers=member.headers)
    assert denied.status_code == 403, denied.text
    first = await client.post("/v1/erasures", json=body, headers=world.boss)
    assert first.status_code == 201, first.text
    erased = first.json()
    assert erased["pseudonym"].startswith("Personne ")
    assert erased["scope"] == "global"
    again = await client.post("/v1/erasures", json=body, headers=world.boss)
    assert again.status_code == 200, again.text
    assert again.json()["pseudonym"] == erased["pseudonym"]
    assert again.json()["id"] == erased["id"]

    # The contact can no longer sign in; their account holds nothing of them.
    login = await client.post("/v1/auth/login", json={"email": contact.email, "password": PASSWORD})
    assert login.status_code == 401, login.text
    [user] = await rows(db, tenant_id, "SELECT * FROM users WHERE id = :u", u=contact.user_id)
    assert user.name == erased["pseudonym"]
    assert contact.email not in user.email
    assert user.password_hash is None
    # Their decision stands, by the same (anonymous) actor, without their words.
    [decision] = await rows(db, tenant_id, "SELECT * FROM approval_decisions WHERE step_index = 0")
    assert decision.user_id == contact.user_id
    assert decision.decision == "approve"
    assert decision.comment == "[effacé / erased]"
    [comment] = await rows(
        db, tenant_id, "SELECT * FROM content_comments WHERE author_id = :u", u=contact.user_id
    )
    assert comment.author_name == erased["pseudonym"]
    assert "514" not in comment.body

    approver = {"subject": "external_approver", "email": "Pierre@Example.org"}
    done = await client.post("/v1/erasures", json=approver, headers=world.boss)
    assert done.status_code == 201, done.text
    pseudonym = done.json()["pseudonym"]
    assert pseudonym != erased["pseudonym"]
    everything = await rows(
        db,
        tenant_id,
        "SELECT 1 FROM approval_decisions WHERE approver ILIKE '%pierre%' OR email ILIKE "
        "'%pierre%' UNION ALL SELECT 1 FROM approval_links WHERE email ILIKE '%pierre%' "
        "UNION ALL SELECT 1 FROM content_comments WHERE author_email ILIKE '%pierre%' "
        "OR author_name ILIKE '%julie%'",
    )
    assert everything == []
    [decision] = await rows(db, tenant_id, "SELECT * FROM approval_decisions WHERE step_index = 1")
    assert decision.decision == "approve" and "Pierre" not in decision.comment
    # The same address erased again keeps the same pseudonym.
    repeat = await client.post("/v1/erasures", json=approver, headers=world.boss)
    assert repeat.json()["pseudonym"] == pseudonym


async def test_contact_of_two_agencies_keeps_their_account(client, db, resources):
    first, second = await new_world(client), await new_world(client)
    contact = await add_person(
        client,
        db,
        resources.passwords,
        first.agency,
        "client",
        client_id=uuid.UUID(first.customer["id"]),
    )
    async with db.tenant_transaction(second.agency.tenant_id) as session:
        await session.execute(
            text(
                "INSERT INTO memberships (tenant_id, id, user_id, role, status, client_id, "
                "monthly_capacity_minutes, version, updated_at, created_at) VALUES (:t, :i, :u, "
                "'client', 'active', :c, 0, 1, now(), now())"
            ),
            {
                "t": second.agency.tenant_id,
                "i": uuid.uuid4(),
                "u": contact.user_id,
                "c": uuid.UUID(second.customer["id"]),
            },
        )
    body = {"subject": "client_contact", "user_id": str(contact.user_id)}
    done = await client.post("/v1/erasures", json=body, headers=first.boss)
    assert done.status_code == 201, done.text
    assert done.json()["scope"] == "tenant"
    # Still a contact of the second agency, with their account as it was.
    login = await client.post(
        "/v1/auth/login",
        json={"email": contact.email, "password": PASSWORD, "tenant": second.agency.slug},
    )
    assert login.status_code == 200, login.text
    # Another agency cannot erase the first one's contact: for it, the id names nobody.
    other = await client.post("/v1/erasures", json=body, headers=(await new_world(client)).boss)
    assert_problem(other, 422)


async def test_inbox_author_is_erased(client, db, settings, resources, receiver):
    world = await new_world(client)
    tenant_id = world.agency.tenant_id
    partner = receiver.inbox()
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": partner.url, "event_types": ["inbox.item_received"]},
        headers=world.boss,
    )
    assert endpoint.status_code == 201, endpoint.text
    async with db.tenant_transaction(tenant_id) as session:
        account = SocialAccount(
            tenant_id=tenant_id,
            brand_id=uuid.UUID(world.brands["brand"]["id"]),
            platform="sandbox",
            external_id=f"acct-{uuid.uuid4().hex[:8]}",
        )
        session.add(account)
        account_id = account.id
    mine = await seed_item(db, tenant_id, account_id, "Je m'appelle Marie", author_id="marie-1")
    other = await seed_item(
        db, tenant_id, account_id, "Bonjour", author_id="paul-2", author_handle="paul.b"
    )
    # Partners were told of both items, in the item's words and with its author's handle.
    ctx = {"db": db, "settings": settings, "signer": resources.signer, "redis": resources.queue}
    await outbox.deliver_pending(ctx, tenant_id)
    await run_worker(settings)
    assert sorted("marie.t" in r.body.decode() for r in partner.requests) == [False, True]
    body = {"subject": "inbox_author", "social_account_id": str(account_id), "author_id": "marie-1"}
    done = await client.post("/v1/erasures", json=body, headers=world.boss)
    assert done.status_code == 201, done.text
    assert done.json()["counts"]["inbox_items"] == 1
    [item] = await rows(db, tenant_id, "SELECT * FROM inbox_items WHERE id = :i", i=mine.id)
    assert item.author_name == done.json()["pseudonym"]
    assert item.author_handle is None and "Marie" not in item.text
    assert item.author_id != "marie-1"
    [kept] = await rows(db, tenant_id, "SELECT * FROM inbox_items WHERE id = :i", i=other.id)
    assert kept.text == "Bonjour"
    kept_by_outbox = await rows(
        db,
        tenant_id,
        "SELECT e.aggregate_id, e.payload AS sent, w.payload AS delivered FROM events e "
        "JOIN webhook_deliveries w ON w.event_id = e.id WHERE e.type = 'inbox.item_received'",
    )
    assert sorted(((r.sent["author_handle"], r.sent["text"]) for r in kept_by_outbox), key=str) == [
        ("paul.b", "Bonjour"),
        (None, "[effacé / erased]"),
    ]
    assert all(r.delivered["data"] == r.sent for r in kept_by_outbox)
    assert "Marie" not in str(kept_by_outbox) and "marie.t" not in str(kept_by_outbox)
    again = await client.post("/v1/erasures", json=body, headers=world.boss)
    assert again.status_code == 200
    assert again.json()["pseudonym"] == done.json()["pseudonym"]

    bad = await client.post(
        "/v1/erasures", json={"subject": "inbox_author", "author_id": "x"}, headers=world.boss
    )
    assert_problem(bad, 422)


LINK = re.compile(r"https?://[^\s\"<>]+/approve/([A-Za-z0-9_\-.]+)")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


async def test_an_erased_approver_leaves_nothing_in_the_audit_trail_or_the_outbox(
    client, db, settings, mailbox, receiver
):
    """The audit trail, the post, its workflow, the outbox and the partner webhooks keep what
    happened, by the pseudonym: the address the approver was asked at, invited at and refused
    at, and the words they wrote, are gone from this agency only."""
    world, other = await new_world(client), await new_world(client)
    tenant_id = world.tenant_id
    email = f"{unique('pierre')}@externe.example"
    # Someone else, whose address holds the erased one: they keep theirs.
    neighbour = f"jo{email}"
    said = "Appelez-moi au 514-555-0199, Pierre Lavoie"
    template = await client.post(
        "/v1/workflow-templates",
        json={
            "name": unique("Tpl"),
            "steps": [
                {"name": "Client", "kind": "client", "rule": "any", "emails": [email, neighbour]}
            ],
            "brand_ids": [world.brand["id"]],
        },
        headers=world.boss,
    )
    assert template.status_code == 201, template.text
    partner = receiver.inbox()
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": partner.url, "event_types": ["content.changes_requested"]},
        headers=world.boss,
    )
    assert endpoint.status_code == 201, endpoint.text
    post = await make_post(client, world.boss, world.brand["id"])
    submitted = await client.post(f"/v1/content/{post['id']}/submit", json={}, headers=world.boss)
    assert submitted.status_code == 200, submitted.text
    await run_worker(settings)
    sent = await mailbox.wait_for(email, count=2)
    [message] = [m for m in sent if str(m["To"]).lower() == email]
    [token] = LINK.findall(text_of(message))
    decided = await client.post(
        f"/v1/approval-links/{token}", json={"decision": "request_changes", "comment": said}
    )
    assert decided.status_code == 201, decided.text
    # Invited as a contact too, at an address the relay refuses; the other agency, at the
    # same address, keeps its own record of it.
    mailbox.refuse[email] = f"550 5.1.1 <{email}>: mailbox unavailable"
    try:
        for agency in (world, other):
            invited = await client.post(
                "/v1/invitations",
                json={"email": email.upper(), "role": "member"},
                headers=agency.boss,
            )
            assert invited.status_code == 201, invited.text
        await run_worker(settings)
    finally:
        del mailbox.refuse[email]
    assert [said in r.body.decode() for r in partner.requests] == [True]
    before = await walk(client, "/v1/audit-events", world.boss)
    actions = sorted(e["action"] for e in before)
    assert {"content.decided", "content.changes_requested", "invitation.mail_refused"} <= set(
        actions
    )
    assert email in json.dumps(before).lower() and said in json.dumps(before)

    theirs = await walk(client, "/v1/audit-events", other.boss)
    done = await client.post(
        "/v1/erasures", json={"subject": "external_approver", "email": email}, headers=world.boss
    )
    assert done.status_code == 201, done.text
    assert done.json()["counts"]["audit_events"] >= 5

    after = await walk(client, "/v1/audit-events", world.boss)
    shown = json.dumps(after, ensure_ascii=False).lower()
    assert email not in shown.replace(neighbour, "")
    assert "514-555-0199" not in shown and "lavoie" not in shown
    [created] = [e for e in after if e["action"] == "workflow_template.created"]
    assert created["changes"]["steps"][0]["emails"][1] == neighbour
    # The facts stay: every entry, by the same actor, about the same subject, at the same time.
    assert [
        (e["id"], e["action"], e["actor_id"], e["subject_id"], e["created_at"])
        for e in after
        if e["action"] != "person.erased"
    ] == [(e["id"], e["action"], e["actor_id"], e["subject_id"], e["created_at"]) for e in before]
    [decision] = [e for e in after if e["action"] == "content.decided"]
    assert decision["changes"]["email"].startswith("erased-")
    assert decision["changes"]["comment"] == "[effacé / erased]"
    assert decision["changes"]["decision"] == "request_changes"
    [refusal] = [e for e in after if e["action"] == "invitation.mail_refused"]
    assert refusal["changes"]["email"].startswith("erased-")
    assert refusal["changes"]["reason"].startswith("SMTP 550:")

    # As the application sees this agency's rows: nothing of them anywhere they were kept.
    found = await rows(
        db,
        tenant_id,
        "SELECT 'audit' FROM audit_events WHERE changes::text ~* :e "
        "OR changes::text LIKE :s UNION ALL SELECT 'outbox' FROM events "
        "WHERE payload::text ~* :e OR payload::text LIKE :s "
        "OR last_error ~* :e UNION ALL SELECT 'post' FROM content_items "
        "WHERE status_reason LIKE :s OR workflow::text ~* :e "
        "UNION ALL SELECT 'template' FROM workflow_templates WHERE steps::text ~* :e "
        "UNION ALL SELECT 'webhook' FROM webhook_deliveries "
        "WHERE payload::text ~* :e OR payload::text LIKE :s",
        # The address, not the neighbour's that ends with it.
        e=f"(^|[^a-z0-9._%+-]){re.escape(email)}",
        s="%514-555-0199%",
    )
    assert found == []
    [delivered] = await rows(db, tenant_id, "SELECT payload FROM webhook_deliveries")
    assert delivered.payload["data"]["reason"] == "[effacé / erased]"
    steps = (
        await client.get(f"/v1/workflow-templates/{template.json()['id']}", headers=world.boss)
    ).json()["steps"]
    assert steps[0]["emails"][0].startswith("erased-") and steps[0]["emails"][1] == neighbour
    item = await client.get(f"/v1/content/{post['id']}", headers=world.boss)
    assert item.json()["status"] == "changes_requested"
    assert item.json()["status_reason"] == "[effacé / erased]"

    # The other agency's record of the same address is its own, untouched.
    assert await walk(client, "/v1/audit-events", other.boss) == theirs
    [refused] = [e for e in theirs if e["action"] == "invitation.mail_refused"]
    assert refused["changes"]["email"].lower() == email
    assert email in refused["changes"]["reason"].lower()


async def test_an_erased_client_contact_leaves_nothing_in_the_audit_trail(
    client, db, settings, mailbox
):
    """Invited, joined and deciding in the portal through the API: after the erasure, the
    agency's audit trail still says who was invited and who decided what, without their
    address, name or words."""
    world = await new_world(client)
    tenant_id = world.tenant_id
    email, name = f"{unique('julie')}@client.example", f"Julie {unique('Tremblay')}"
    said = "Changez la photo, mon cellulaire: 438-555-0142"
    invited = await client.post(
        "/v1/invitations",
        json={"email": email, "role": "client", "client_id": world.customer["id"]},
        headers=world.boss,
    )
    assert invited.status_code == 201, invited.text
    await run_worker(settings)
    [message] = await mailbox.wait_for(email)
    [token] = re.findall(r"/portal/invitations/([A-Za-z0-9_\-.]+)", text_of(message))
    joined = await client.post(
        f"/v1/invitations/{token}/accept", json={"name": name, "password": PASSWORD}
    )
    assert joined.status_code == 200, joined.text
    contact = {"Authorization": f"Bearer {joined.json()['access_token']}"}
    user_id = (await client.get("/v1/me", headers=contact)).json()["user"]["id"]
    template = await client.post(
        "/v1/workflow-templates",
        json={
            "name": unique("Tpl"),
            "steps": [{"name": "Client", "kind": "client", "user_ids": [user_id]}],
            "brand_ids": [world.brand["id"]],
        },
        headers=world.boss,
    )
    assert template.status_code == 201, template.text
    post = await make_post(client, world.boss, world.brand["id"])
    submitted = await client.post(f"/v1/content/{post['id']}/submit", json={}, headers=world.boss)
    assert submitted.status_code == 200, submitted.text
    decided = await client.post(
        f"/v1/content/{post['id']}/decisions",
        json={
            "revision_id": submitted.json()["revision"]["id"],
            "decision": "request_changes",
            "comment": said,
        },
        headers=contact,
    )
    assert decided.status_code == 201, decided.text
    await run_worker(settings)
    before = await walk(client, "/v1/audit-events", world.boss)
    assert email in json.dumps(before) and said in json.dumps(before)

    done = await client.post(
        "/v1/erasures", json={"subject": "client_contact", "user_id": user_id}, headers=world.boss
    )
    assert done.status_code == 201, done.text

    after = await walk(client, "/v1/audit-events", world.boss)
    shown = json.dumps(after, ensure_ascii=False)
    assert email not in shown.lower() and "438-555-0142" not in shown and name not in shown
    [decision] = [e for e in after if e["action"] == "content.decided"]
    assert decision["actor_id"] == user_id
    assert decision["changes"]["comment"] == "[effacé / erased]"
    [invitation] = [e for e in after if e["action"] == "invitation.created"]
    assert invitation["changes"]["email"].startswith("erased-")
    assert invitation["changes"]["role"] == "client"
    found = await rows(
        db,
        tenant_id,
        "SELECT 'audit' FROM audit_events WHERE lower(changes::text) LIKE :e "
        "OR changes::text LIKE :s OR changes::text LIKE :n UNION ALL SELECT 'outbox' FROM events "
        "WHERE lower(payload::text) LIKE :e OR payload::text LIKE :s OR payload::text LIKE :n "
        "OR lower(last_error) LIKE :e UNION ALL SELECT 'post' FROM content_items "
        "WHERE status_reason LIKE :s",
        e=f"%{email}%",
        s="%438-555-0142%",
        n=f"%{name}%",
    )
    assert found == []
