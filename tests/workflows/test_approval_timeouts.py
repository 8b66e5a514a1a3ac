"""Steps past their due time, driven by the timeout cron with a controllable clock."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from devtools.smtp import text_of
from infra.outbox import Event, enqueue_delivery
from infra.settings import get_settings
from tests.support.factories import (
    Agency,
    Person,
    add_person,
    new_world,
    unique,
)
from tests.support.problems import assert_problem
from tests.support.worker import run_worker
from workflows.jobs import approval_timeouts

LINK = re.compile(r"https?://[^\s\"<>]+/approve/([A-Za-z0-9_\-.]+)")
H = timedelta(hours=1)


@dataclass
class Setup:
    agency: Agency
    brand: dict
    item: dict
    started: datetime

    @property
    def headers(self) -> dict[str, str]:
        return self.agency.owner.headers

    @property
    def item_id(self) -> str:
        return str(self.item["id"])

    @property
    def revision_id(self) -> str:
        return str(self.item["revision"]["id"])


async def _agency(client) -> tuple[Agency, dict]:
    world = await new_world(
        client, customer={"locale": "fr-CA"}, brands={"brand": {"default_language": "fr"}}
    )
    return world.agency, world.brand


async def _staff(client, db, resources, agency: Agency, n: int) -> list[Person]:
    return [await add_person(client, db, resources.passwords, agency, "manager") for _ in range(n)]


async def _submitted(
    client, agency: Agency, brand: dict, steps: list[dict], *, agreed: bool = False
) -> Setup:
    h = agency.owner.headers
    r = await client.post(
        "/v1/workflow-templates",
        json={"name": unique("Tpl"), "steps": steps, "client_agreed_auto_approve": agreed},
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/brands/{brand['id']}/content",
        json={
            "title": "Soldes d'hiver",
            "variants": {"facebook": "Les soldes commencent lundi."},
            "template_id": r.json()["id"],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/content/{r.json()['id']}/submit", json={}, headers=h)
    assert r.status_code == 200, r.text
    item = r.json()
    return Setup(agency, brand, item, datetime.fromisoformat(item["step"]["started_at"]))


def _step(kind: str, policy: str, *, due: int = 2, rule: str = "any", **fields) -> dict:
    timeout: dict = {"policy": policy}
    if "reminder_hours" in fields:
        timeout["reminder_hours"] = fields.pop("reminder_hours")
    if "escalate_to" in fields:
        timeout["escalate_to"] = fields.pop("escalate_to")
    return {
        "name": f"{kind} step",
        "kind": kind,
        "rule": rule,
        "due_hours": due,
        "timeout": timeout,
        **fields,
    }


def _cron_ctx(db, **extra: object) -> dict[str, object]:
    """What the worker's start-up puts in arq's context: the settings are the cached ones the
    app under test runs with (the `settings` fixture)."""
    return {"db": db, "settings": get_settings(), **extra}


async def _tick(db, at: datetime) -> None:
    await approval_timeouts(_cron_ctx(db), now=at)


async def _events(db, s: Setup, type_: str | None = None) -> list[Event]:
    async with db.tenant_transaction(s.agency.tenant_id) as session:
        query = select(Event).where(
            Event.tenant_id == s.agency.tenant_id, Event.aggregate_id == uuid.UUID(s.item_id)
        )
        rows = (await session.scalars(query)).all()
    rows = sorted(rows, key=lambda e: e.seq or 0)
    return [e for e in rows if type_ is None or e.type == type_]


async def _deliver(resources, settings, s: Setup) -> None:
    """Deliver the agency's pending events now (the outbox sweep would, within a minute)."""
    await enqueue_delivery(resources.queue, s.agency.tenant_id, job_key=uuid.uuid4().hex)
    await run_worker(settings)


async def _content(client, s: Setup) -> dict:
    r = await client.get(f"/v1/content/{s.item_id}", headers=s.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _decide(client, s: Setup, who: Person, decision: str = "approve", **extra):
    return await client.post(
        f"/v1/content/{s.item_id}/decisions",
        json={"revision_id": s.revision_id, "decision": decision, **extra},
        headers=who.headers,
    )


async def _history(client, s: Setup) -> list[dict]:
    r = await client.get(f"/v1/content/{s.item_id}/history", headers=s.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _subjects(mailbox, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mailbox.to(address)]


# ---------------------------------------------------------------------------------------------
# remind


async def test_reminders_go_to_pending_approvers_on_schedule_and_only_once(
    client, db, resources, settings, mailbox
):
    agency, brand = await _agency(client)
    early, late = await _staff(client, db, resources, agency, 2)
    s = await _submitted(
        client,
        agency,
        brand,
        [
            _step(
                "internal",
                "remind",
                rule="all",
                user_ids=[str(early.user_id), str(late.user_id)],
                reminder_hours=[0, 24],
            )
        ],
    )
    await _deliver(resources, settings, s)
    await mailbox.wait_for(early.email)
    await mailbox.wait_for(late.email)
    r = await _decide(client, s, early)
    assert r.status_code == 201, r.text

    await _tick(db, s.started + 1 * H)
    assert await _events(db, s, "approval.reminder_sent") == []

    await _tick(db, s.started + 2 * H)
    [first] = await _events(db, s, "approval.reminder_sent")
    assert first.payload["pending"] == [f"user:{late.user_id}"]
    assert first.payload["reminder"] == 1
    await _deliver(resources, settings, s)
    await mailbox.wait_for(late.email, count=2)
    assert _subjects(mailbox, late.email)[1].startswith("Reminder — to approve: Soldes d'hiver")
    assert "still awaits your approval" in text_of(mailbox.to(late.email)[1])
    assert len(mailbox.to(early.email)) == 1  # who already approved gets no reminder

    await _tick(db, s.started + 2 * H)  # the same instant again: nothing new
    await _tick(db, s.started + 25 * H)
    assert len(await _events(db, s, "approval.reminder_sent")) == 1

    await _tick(db, s.started + 26 * H)
    reminders = await _events(db, s, "approval.reminder_sent")
    assert [e.payload["reminder"] for e in reminders] == [1, 2]
    await _deliver(resources, settings, s)
    await mailbox.wait_for(late.email, count=3)

    await _tick(db, s.started + 100 * H)
    assert len(await _events(db, s, "approval.reminder_sent")) == 2
    item = await _content(client, s)
    assert item["status"] == "in_review"
    assert item["step"]["decided"] == [f"user:{early.user_id}"]
    actions = [e["action"] for e in await _history(client, s)]
    assert actions.count("approval.reminder_sent") == 2
    assert len(mailbox.to(late.email)) == 3 and len(mailbox.to(early.email)) == 1


async def test_an_external_approver_is_reminded_with_a_working_link(
    client, db, resources, settings, mailbox
):
    agency, brand = await _agency(client)
    done, waiting = f"{unique('done')}@ext.example", f"{unique('wait')}@ext.example"
    s = await _submitted(
        client,
        agency,
        brand,
        [_step("client", "remind", rule="all", emails=[done, waiting], reminder_hours=[0])],
    )
    await _deliver(resources, settings, s)
    [first_mail] = await mailbox.wait_for(done)
    token = LINK.findall(text_of(first_mail))[0]
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert r.status_code == 201, r.text

    await _tick(db, s.started + 2 * H)
    [event] = await _events(db, s, "approval.reminder_sent")
    assert event.payload["pending"] == [f"email:{waiting}"]
    await _deliver(resources, settings, s)
    reminder = (await mailbox.wait_for(waiting, count=2))[1]
    assert str(reminder["Subject"]).startswith("Rappel — à approuver : Soldes d'hiver")
    assert len(mailbox.to(done)) == 1
    [reminder_token] = LINK.findall(text_of(reminder))
    r = await client.post(f"/v1/approval-links/{reminder_token}", json={"decision": "approve"})
    assert r.status_code == 201, r.text
    assert (await _content(client, s))["status"] == "approved"


async def test_a_reminder_under_the_default_schedule_carries_a_link_that_still_works(
    client, db, resources, settings, mailbox, monkeypatch
):
    """Defaults: due in 48 h, reminders at +0 h and +24 h; a link lives 72 h."""
    import workflows.service.approvals as approvals

    agency, brand = await _agency(client)
    external = f"{unique('ext')}@ext.example"
    step = {"name": "Client", "kind": "client", "emails": [external]}
    s = await _submitted(client, agency, brand, [step])
    await _deliver(resources, settings, s)
    await mailbox.wait_for(external)

    await _tick(db, s.started + 48 * H)
    await _tick(db, s.started + 72 * H)
    assert len(await _events(db, s, "approval.reminder_sent")) == 2
    await _deliver(resources, settings, s)
    last = (await mailbox.wait_for(external, count=3))[2]
    [token] = LINK.findall(text_of(last))
    # The approver opens the reminder a few minutes after it was sent.
    reading = s.started + 72 * H + timedelta(minutes=5)
    monkeypatch.setattr(approvals, "utcnow", lambda: reading)
    r = await client.get(f"/v1/approval-links/{token}")
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["expires_at"]) > reading


async def test_a_reminder_is_emailed_by_the_worker_without_waiting_for_the_sweep(
    client, db, resources, settings, mailbox
):
    """The cron commits events like a request does: their delivery is queued at once."""
    agency, brand = await _agency(client)
    [approver] = await _staff(client, db, resources, agency, 1)
    s = await _submitted(
        client,
        agency,
        brand,
        [_step("internal", "remind", user_ids=[str(approver.user_id)], reminder_hours=[0])],
    )
    await run_worker(settings)
    await mailbox.wait_for(approver.email)
    # As arq calls the cron: with its Redis connection in the context.
    await approval_timeouts(_cron_ctx(db, redis=resources.queue), now=s.started + 2 * H)
    assert len(await _events(db, s, "approval.reminder_sent")) == 1
    await run_worker(settings)
    await mailbox.wait_for(approver.email, count=2)


# ---------------------------------------------------------------------------------------------
# escalate


@pytest.mark.parametrize("rule", ["any", "all"], ids=["any", "all"])
async def test_escalation_hands_the_step_to_someone_who_can_decide_it(
    client, db, resources, settings, mailbox, rule
):
    agency, brand = await _agency(client)
    first, second, boss = await _staff(client, db, resources, agency, 3)
    s = await _submitted(
        client,
        agency,
        brand,
        [
            _step(
                "internal",
                "escalate",
                rule=rule,
                user_ids=[str(first.user_id), str(second.user_id)],
                escalate_to=str(boss.user_id),
            )
        ],
    )
    await _deliver(resources, settings, s)
    await mailbox.wait_for(second.email)
    if rule == "all":
        r = await _decide(client, s, first)
        assert r.status_code == 201, r.text

    await _tick(db, s.started + 1 * H)
    assert await _events(db, s, "approval.escalated") == []
    r = await _decide(client, s, boss)
    assert_problem(r, 403, "not-an-approver")

    await _tick(db, s.started + 2 * H)
    [event] = await _events(db, s, "approval.escalated")
    assert event.payload["escalated_to"] == f"user:{boss.user_id}"
    item = await _content(client, s)
    assert f"user:{boss.user_id}" in item["step"]["approvers"]
    assert item["status"] == "in_review"
    await _deliver(resources, settings, s)
    [mail] = await mailbox.wait_for(boss.email)
    assert str(mail["Subject"]).startswith("Escalated — no answer: Soldes d'hiver")
    assert f"https://app.passerelle.test/content/{s.item_id}" in text_of(mail)
    assert len(mailbox.to(second.email)) == 1

    await _tick(db, s.started + 50 * H)  # only once
    assert len(await _events(db, s, "approval.escalated")) == 1

    r = await _decide(client, s, boss)
    assert r.status_code == 201, r.text
    item = await _content(client, s)
    assert item["status"] == "approved", item["step"]
    assert len(mailbox.to(boss.email)) == 1


# ---------------------------------------------------------------------------------------------
# auto_approve


async def test_auto_approve_is_refused_without_the_clients_agreement(client):
    agency, _ = await _agency(client)
    for agreed, kind in ((False, "client"), (True, "internal")):
        step = _step(kind, "auto_approve", emails=["x@ext.example"])
        if kind == "internal":
            step = _step(kind, "auto_approve", assignment_role="lead")
        r = await client.post(
            "/v1/workflow-templates",
            json={"name": unique("Tpl"), "steps": [step], "client_agreed_auto_approve": agreed},
            headers=agency.owner.headers,
        )
        assert_problem(r, 422)


@pytest.mark.parametrize("then", ["nothing", "internal"], ids=["last-step", "then-internal"])
async def test_auto_approve_at_due_time_is_a_system_decision(
    client, db, resources, settings, mailbox, then
):
    agency, brand = await _agency(client)
    [lead] = await _staff(client, db, resources, agency, 1)
    external = f"{unique('ext')}@ext.example"
    steps = [_step("client", "auto_approve", emails=[external])]
    if then == "internal":
        steps.append(_step("internal", "remind", due=10, user_ids=[str(lead.user_id)]))
    s = await _submitted(client, agency, brand, steps, agreed=True)
    await _deliver(resources, settings, s)
    token = LINK.findall(text_of((await mailbox.wait_for(external))[0]))[0]

    await _tick(db, s.started + 1 * H)
    assert (await _content(client, s))["status"] == "awaiting_client"

    await _tick(db, s.started + 2 * H)
    item = await _content(client, s)
    if then == "internal":
        assert item["status"] == "in_review"
        assert item["step"]["index"] == 1
        assert item["step"]["approvers"] == [f"user:{lead.user_id}"]
    else:
        assert item["status"] == "approved" and item["step"] is None

    r = await client.get(f"/v1/content/{s.item_id}/decisions", headers=s.headers)
    [decision] = r.json()["items"]
    assert (decision["actor_type"], decision["channel"]) == ("system", "system")
    assert decision["decision"] == "approve" and decision["step_index"] == 0
    assert decision["user_id"] is None and decision["email"] is None
    decided = [e for e in await _history(client, s) if e["action"] == "content.decided"]
    assert len(decided) == 1
    assert decided[0]["actor_type"] == "system"
    assert decided[0]["details"]["channel"] == "system"
    assert decided[0]["details"]["decision"] == "approve"
    if then == "nothing":
        assert len(await _events(db, s, "content.approved")) == 1

    await _tick(db, s.started + 3 * H)  # only once
    r = await client.get(f"/v1/content/{s.item_id}/decisions", headers=s.headers)
    assert len(r.json()["items"]) == 1
    # The external approver's link no longer decides anything.
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "reject"})
    assert_problem(r, 409)


# ---------------------------------------------------------------------------------------------
# expire


async def test_an_expired_step_can_be_edited_and_submitted_again(
    client, db, resources, settings, mailbox
):
    agency, brand = await _agency(client)
    [approver] = await _staff(client, db, resources, agency, 1)
    s = await _submitted(
        client, agency, brand, [_step("internal", "expire", user_ids=[str(approver.user_id)])]
    )
    await _tick(db, s.started + 1 * H)
    assert (await _content(client, s))["status"] == "in_review"

    await _tick(db, s.started + 2 * H)
    item = await _content(client, s)
    assert item["status"] == "expired" and item["step"] is None
    assert item["status_reason"]
    [event] = await _events(db, s, "approval.expired")
    assert event.payload["pending"] == [f"user:{approver.user_id}"]
    assert "approval.expired" in [e["action"] for e in await _history(client, s)]
    r = await _decide(client, s, approver)
    assert_problem(r, 409, "step-closed")

    await _tick(db, s.started + 40 * H)
    assert len(await _events(db, s, "approval.expired")) == 1

    r = await client.patch(
        f"/v1/content/{s.item_id}", json={"title": "Soldes d'hiver prolongés"}, headers=s.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "draft"
    r = await client.post(f"/v1/content/{s.item_id}/submit", json={}, headers=s.headers)
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["status"] == "in_review" and again["round"] == 2
    restarted = datetime.fromisoformat(again["step"]["started_at"])
    assert datetime.fromisoformat(again["step"]["due_at"]) == restarted + 2 * H
    r = await client.post(
        f"/v1/content/{s.item_id}/decisions",
        json={"revision_id": again["revision"]["id"], "decision": "approve"},
        headers=approver.headers,
    )
    assert r.status_code == 201, r.text
    assert (await _content(client, s))["status"] == "approved"


async def test_an_expired_client_step_closes_its_links(client, db, resources, settings, mailbox):
    agency, brand = await _agency(client)
    external = f"{unique('ext')}@ext.example"
    s = await _submitted(client, agency, brand, [_step("client", "expire", emails=[external])])
    await _deliver(resources, settings, s)
    token = LINK.findall(text_of((await mailbox.wait_for(external))[0]))[0]
    await _tick(db, s.started + 2 * H)
    assert (await _content(client, s))["status"] == "expired"
    r = await client.post(f"/v1/approval-links/{token}", json={"decision": "approve"})
    assert_problem(r, 409, "step-closed")
    r = await client.get(f"/v1/content/{s.item_id}/decisions", headers=s.headers)
    assert r.json()["items"] == []
    r = await client.post(f"/v1/content/{s.item_id}/submit", json={}, headers=s.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "awaiting_client"


# ---------------------------------------------------------------------------------------------
# Decided in time; concurrency; robustness

TIMEOUT_EVENTS = ("approval.reminder_sent", "approval.escalated", "approval.expired")


@pytest.mark.parametrize(
    ("policy", "decision"),
    [
        ("remind", "approve"),
        ("escalate", "approve"),
        ("expire", "approve"),
        ("expire", "request_changes"),
        ("remind", "reject"),
    ],
    ids=["remind-approved", "escalate-approved", "expire-approved", "expire-changes", "reject"],
)
async def test_a_step_decided_in_time_is_left_alone(client, db, resources, policy, decision):
    agency, brand = await _agency(client)
    approver, boss = await _staff(client, db, resources, agency, 2)
    extra = {"escalate_to": str(boss.user_id)} if policy == "escalate" else {}
    s = await _submitted(
        client,
        agency,
        brand,
        [_step("internal", policy, user_ids=[str(approver.user_id)], **extra)],
    )
    r = await _decide(client, s, approver, decision, comment="Revoir le visuel")
    assert r.status_code == 201, r.text
    status = (await _content(client, s))["status"]
    for hours in (2, 3, 30, 200):
        await _tick(db, s.started + hours * H)
    assert [e.type for e in await _events(db, s) if e.type in TIMEOUT_EVENTS] == []
    item = await _content(client, s)
    assert item["status"] == status
    r = await client.get(f"/v1/content/{s.item_id}/decisions", headers=s.headers)
    assert len(r.json()["items"]) == 1


async def test_a_decided_first_step_leaves_only_the_next_steps_deadline(client, db, resources):
    agency, brand = await _agency(client)
    first, second = await _staff(client, db, resources, agency, 2)
    s = await _submitted(
        client,
        agency,
        brand,
        [
            _step("internal", "expire", due=2, user_ids=[str(first.user_id)]),
            _step("internal", "expire", due=10, user_ids=[str(second.user_id)]),
        ],
    )
    r = await _decide(client, s, first)
    assert r.status_code == 201, r.text
    item = await _content(client, s)
    assert item["step"]["index"] == 1
    started_second = datetime.fromisoformat(item["step"]["started_at"])
    await _tick(db, s.started + 3 * H)
    assert (await _content(client, s))["status"] == "in_review"
    assert await _events(db, s, "approval.expired") == []
    await _tick(db, started_second + 10 * H)
    assert (await _content(client, s))["status"] == "expired"
    [event] = await _events(db, s, "approval.expired")
    assert event.payload["step_index"] == 1


async def test_two_simultaneous_runs_send_one_reminder(client, db, resources):
    agency, brand = await _agency(client)
    [approver] = await _staff(client, db, resources, agency, 1)
    s = await _submitted(
        client,
        agency,
        brand,
        [_step("internal", "remind", user_ids=[str(approver.user_id)], reminder_hours=[0, 24])],
    )
    at = s.started + 2 * H
    await asyncio.gather(*(approval_timeouts(_cron_ctx(db), now=at) for _ in range(3)))
    assert len(await _events(db, s, "approval.reminder_sent")) == 1
    await asyncio.gather(*(approval_timeouts(_cron_ctx(db), now=at + 24 * H) for _ in range(3)))
    assert len(await _events(db, s, "approval.reminder_sent")) == 2


async def test_an_item_that_cannot_advance_does_not_stop_other_timeouts(
    client, db, resources, monkeypatch
):
    import workflows.service.timeouts as timeouts
    from workflows.engine import StepKind

    # Independent of the auto_approve bug (a step's kind reaches the engine as a plain str):
    # make auto_approve fire so that this test is about the sweep's robustness only.
    original = timeouts.timeout_step

    def with_enum_kind(step):
        plain = original(step)
        return type(plain)(
            kind=StepKind(plain.kind),
            due_hours=plain.due_hours,
            policy=plain.policy,
            reminder_hours=plain.reminder_hours,
        )

    monkeypatch.setattr(timeouts, "timeout_step", with_enum_kind)
    agency, brand = await _agency(client)
    gone, approver = await _staff(client, db, resources, agency, 2)
    stuck = await _submitted(
        client,
        agency,
        brand,
        [
            _step("client", "auto_approve", emails=[f"{unique('ext')}@ext.example"]),
            _step("internal", "remind", user_ids=[str(gone.user_id)]),
        ],
        agreed=True,
    )
    other = await _submitted(
        client,
        agency,
        brand,
        [_step("internal", "remind", user_ids=[str(approver.user_id)], reminder_hours=[0])],
    )
    # The next step's only approver leaves after the submission.
    r = await client.patch(
        f"/v1/members/{gone.user_id}", json={"status": "disabled"}, headers=agency.owner.headers
    )
    assert r.status_code == 200, r.text
    try:
        await _tick(db, other.started + 2 * H)
        assert len(await _events(db, other, "approval.reminder_sent")) == 1
    finally:
        # Never leave an item behind that would trip the cron in later tests of this database.
        r = await client.patch(
            f"/v1/content/{stuck.item_id}", json={"title": "Retiré"}, headers=stuck.headers
        )
        assert r.status_code == 200, r.text
