"""Content approvals over HTTP: templates, multi-step flows, decisions, comments, the client
portal and the e-mails the worker sends (read from a real SMTP server)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from devtools.smtp import text_of
from infra.outbox import Event
from tenants.models import User
from tests.support.factories import (
    Person,
    World,
    add_person,
    make_brand,
    make_client,
    new_agency,
    new_world,
    walk,
)
from tests.support.problems import assert_field_refused, assert_problem
from tests.support.worker import run_worker

APP = "https://app.passerelle.test"
START = (date.today() - timedelta(days=30)).isoformat()

# ---------------------------------------------------------------------------------------------
# Helpers


async def shop(client: httpx.AsyncClient, *, locale: str = "fr-CA") -> World:
    """An agency with one client (of the given locale) and one brand of that client."""
    language = "fr" if locale.startswith("fr") else "en"
    return await new_world(
        client, customer={"locale": locale}, brands={"brand": {"default_language": language}}
    )


async def staff(client, db, resources, s: World, role: str = "manager", name: str | None = None):
    return await add_person(client, db, resources.passwords, s.agency, role, name=name)


async def contact(client, db, resources, s: World, customer: dict | None = None) -> Person:
    customer_id = (customer or s.customer)["id"]
    return await add_person(
        client, db, resources.passwords, s.agency, "client", client_id=customer_id
    )


async def assign(client, s: World, person: Person, role: str, brand: dict | None = None) -> None:
    r = await client.post(
        "/v1/assignments",
        json={
            "brand_id": (brand or s.brand)["id"],
            "user_id": str(person.user_id),
            "role": role,
            "start_date": START,
            "monthly_minutes": 0,
        },
        headers=s.boss,
    )
    assert r.status_code == 201, r.text


def key(person: Person) -> str:
    return f"user:{person.user_id}"


def internal(*people: Person, rule: str = "any", name: str = "Revue interne", **extra: Any):
    return {
        "name": name,
        "kind": "internal",
        "rule": rule,
        "user_ids": [str(p.user_id) for p in people],
        **extra,
    }


def client_step(
    *people: Person, emails: tuple[str, ...] = (), rule: str = "any", name: str = "Client"
):
    return {
        "name": name,
        "kind": "client",
        "rule": rule,
        "user_ids": [str(p.user_id) for p in people],
        "emails": list(emails),
    }


async def template(client, headers, steps: list[dict], **fields: Any) -> dict:
    r = await client.post(
        "/v1/workflow-templates",
        json={"name": fields.pop("name", "Circuit"), "steps": steps, **fields},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def draft(client, headers, brand: dict, **fields: Any) -> dict:
    body = {"title": "Lancement du printemps", "variants": {"instagram": "Bonjour tout le monde"}}
    r = await client.post(
        f"/v1/brands/{brand['id']}/content", json={**body, **fields}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def submit(client, headers, item: dict) -> dict:
    r = await client.post(f"/v1/content/{item['id']}/submit", json={}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def submitted(client, s: World, **fields: Any) -> dict:
    return await submit(client, s.boss, await draft(client, s.boss, s.brand, **fields))


async def decide(
    client, who: Person, item: dict, decision: str = "approve", comment: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"revision_id": item["revision"]["id"], "decision": decision}
    if comment is not None:
        body["comment"] = comment
    return await client.post(f"/v1/content/{item['id']}/decisions", json=body, headers=who.headers)


async def decided(client, who: Person, item: dict, decision="approve", comment=None) -> dict:
    r = await decide(client, who, item, decision, comment)
    assert r.status_code == 201, r.text
    return r.json()


async def read(client, headers, item: dict, what: str = "") -> Any:
    """The item, or (with a suffix such as "/decisions") every row of its list."""
    if what:
        return await walk(client, f"/v1/content/{item['id']}{what}", headers)
    r = await client.get(f"/v1/content/{item['id']}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def comment(client, headers, item: dict, body: str, **fields: Any) -> httpx.Response:
    return await client.post(
        f"/v1/content/{item['id']}/comments", json={"body": body, **fields}, headers=headers
    )


async def commented(client, headers, item: dict, body: str, **fields: Any) -> dict:
    r = await comment(client, headers, item, body, **fields)
    assert r.status_code == 201, r.text
    return r.json()


async def events_of(db, tenant_id: uuid.UUID, item: dict) -> list[tuple[str, dict]]:
    async with db.tenant_transaction(tenant_id) as session:
        rows = (
            await session.scalars(
                select(Event)
                .where(Event.tenant_id == tenant_id, Event.aggregate_id == uuid.UUID(item["id"]))
                .order_by(col(Event.seq))
            )
        ).all()
        return [(e.type, dict(e.payload)) for e in rows]


async def set_locale(db, tenant_id: uuid.UUID, person: Person, locale: str) -> None:
    async with db.tenant_transaction(tenant_id) as session:
        await session.execute(
            update(User).where(col(User.id) == person.user_id).values(locale=locale)
        )


def html_of(message) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the e-mail has no HTML part"
    return str(part.get_content())


def button_href(message) -> str:
    found = re.findall(r'<a href="([^"]+)"', html_of(message))
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------------------------------------
# Templates


async def test_templates_are_created_listed_read_and_replaced_with_if_match(client, db, resources):
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    r = await client.post(
        "/v1/workflow-templates",
        json={"name": "Revue", "steps": [internal(reviewer)], "description": "Une étape"},
        headers=s.boss,
    )
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == '"1"'
    created = r.json()
    assert created["version"] == 1
    assert created["brand_ids"] == [] and created["is_tenant_default"] is False
    assert created["steps"][0]["user_ids"] == [str(reviewer.user_id)]
    assert created["steps"][0]["due_hours"] == 48  # defaults are filled in
    assert created["allow_self_approval"] is False

    r = await client.get("/v1/workflow-templates", headers=s.boss)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["items"]] == [created["id"]]
    r = await client.get(f"/v1/workflow-templates/{created['id']}", headers=s.boss)
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    assert r.json() == created

    replacement = {
        "name": "Revue et client",
        "steps": [internal(reviewer), client_step(name="Approbation client")],
        "brand_ids": [s.brand["id"]],
    }
    path = f"/v1/workflow-templates/{created['id']}"
    r = await client.put(path, json=replacement, headers={**s.boss, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    replaced = r.json()
    assert replaced["version"] == 2 and replaced["name"] == "Revue et client"
    assert [step["kind"] for step in replaced["steps"]] == ["internal", "client"]
    assert replaced["brand_ids"] == [s.brand["id"]]

    stale = await client.put(path, json=replacement, headers={**s.boss, "If-Match": '"1"'})
    body = assert_problem(stale, 412, "precondition-failed")
    assert body["current_version"] == 2
    assert (await client.get(path, headers=s.boss)).json()["name"] == "Revue et client"


async def test_who_may_read_and_shape_templates(client, db, resources):
    s = await shop(client)
    member = await staff(client, db, resources, s, "member")
    someone = await contact(client, db, resources, s)
    t = await template(client, s.boss, [internal(member)])

    r = await client.get("/v1/workflow-templates", headers=member.headers)
    assert r.status_code == 200 and [x["id"] for x in r.json()["items"]] == [t["id"]]
    r = await client.post(
        "/v1/workflow-templates",
        json={"name": "Le mien", "steps": []},
        headers=member.headers,
    )
    assert_problem(r, 403, "permission-denied")
    r = await client.put(
        f"/v1/workflow-templates/{t['id']}",
        json={"name": "Le mien", "steps": []},
        headers=member.headers,
    )
    assert_problem(r, 403, "permission-denied")

    assert_problem(
        await client.get("/v1/workflow-templates", headers=someone.headers),
        403,
        "permission-denied",
    )
    assert_problem(
        await client.get(f"/v1/workflow-templates/{t['id']}", headers=someone.headers),
        403,
        "permission-denied",
    )

    other = await shop(client)
    r = await client.get(f"/v1/workflow-templates/{t['id']}", headers=other.boss)
    assert_problem(r, 404, "workflow-template-not-found")
    r = await client.put(
        f"/v1/workflow-templates/{t['id']}", json={"name": "Volé", "steps": []}, headers=other.boss
    )
    assert_problem(r, 404, "workflow-template-not-found")
    assert (await client.get("/v1/workflow-templates", headers=other.boss)).json()["items"] == []
    # Nor can another agency's item follow it, or a template claim another agency's brand.
    r = await client.post(
        f"/v1/brands/{other.brand['id']}/content",
        json={"title": "x", "template_id": t["id"]},
        headers=other.boss,
    )
    assert_field_refused(r, "/template_id", "workflow-template-not-found")
    r = await client.post(
        "/v1/workflow-templates",
        json={"name": "x", "steps": [], "brand_ids": [s.brand["id"]]},
        headers=other.boss,
    )
    assert_field_refused(r, "/brand_ids/0", "unknown-reference")
    unchanged = await client.get(f"/v1/workflow-templates/{t['id']}", headers=s.boss)
    assert unchanged.json()["version"] == 1


# Each case builds a template body from the people of the agency (and of another one).
InvalidCase = Callable[[dict[str, Person]], dict[str, Any]]
INVALID: dict[str, tuple[InvalidCase, str]] = {
    # The name is stored in 120 characters; a longer one used to answer 500.
    "name-longer-than-120-characters": (
        lambda p: {"name": "N" * 121, "steps": []},
        "validation-error",
    ),
    "internal-step-with-emails": (
        lambda p: {"steps": [{**internal(p["manager"]), "emails": ["x@example.com"]}]},
        "validation-error",
    ),
    "internal-step-without-approvers": (
        lambda p: {"steps": [{"name": "Personne", "kind": "internal"}]},
        "validation-error",
    ),
    "client-step-with-assignment-role": (
        lambda p: {"steps": [{**client_step(), "assignment_role": "lead"}]},
        "validation-error",
    ),
    "auto-approve-on-internal-step": (
        lambda p: {
            "client_agreed_auto_approve": True,
            "steps": [internal(p["manager"], timeout={"policy": "auto_approve"})],
        },
        "validation-error",
    ),
    "auto-approve-without-client-agreement": (
        lambda p: {"steps": [{**client_step(p["contact"]), "timeout": {"policy": "auto_approve"}}]},
        "validation-error",
    ),
    "escalate-without-target": (
        lambda p: {"steps": [internal(p["manager"], timeout={"policy": "escalate"})]},
        "validation-error",
    ),
    "user-of-another-agency": (
        lambda p: {"steps": [internal(p["stranger"])]},
        "invalid-workflow-template",
    ),
    "client-contact-on-internal-step": (
        lambda p: {"steps": [internal(p["contact"])]},
        "invalid-workflow-template",
    ),
    "staff-on-client-step": (
        lambda p: {"steps": [client_step(p["manager"])]},
        "invalid-workflow-template",
    ),
    "escalation-to-a-client-contact": (
        lambda p: {
            "steps": [
                internal(
                    p["manager"],
                    timeout={"policy": "escalate", "escalate_to": str(p["contact"].user_id)},
                )
            ]
        },
        "invalid-workflow-template",
    ),
}


@pytest.fixture(scope="module")
async def template_people(client, db, resources) -> tuple[World, dict[str, Person]]:
    s = await shop(client)
    other = await shop(client)
    people = {
        "manager": await staff(client, db, resources, s),
        "contact": await contact(client, db, resources, s),
        "stranger": await staff(client, db, resources, other),
    }
    return s, people


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
async def test_templates_that_cannot_work_are_refused(client, template_people, case):
    s, people = template_people
    build, slug = INVALID[case]
    body = {"name": "Invalide", **build(people)}
    assert_problem(
        await client.post("/v1/workflow-templates", json=body, headers=s.boss), 422, slug
    )
    assert (await client.get("/v1/workflow-templates", headers=s.boss)).json()["items"] == []


async def test_auto_approve_is_accepted_on_a_client_step_the_client_agreed_to(
    client, db, resources
):
    s = await shop(client)
    someone = await contact(client, db, resources, s)
    t = await template(
        client,
        s.boss,
        [{**client_step(someone), "timeout": {"policy": "auto_approve"}}],
        client_agreed_auto_approve=True,
    )
    assert t["steps"][0]["timeout"]["policy"] == "auto_approve"
    # And a valid template replaced by an invalid one is refused as well, unchanged.
    r = await client.put(
        f"/v1/workflow-templates/{t['id']}",
        json={
            "name": "Invalide",
            "steps": [{**client_step(someone), "timeout": {"policy": "auto_approve"}}],
        },
        headers=s.boss,
    )
    assert_problem(r, 422, "validation-error")
    unchanged = await client.get(f"/v1/workflow-templates/{t['id']}", headers=s.boss)
    assert unchanged.json()["version"] == 1


async def test_which_template_an_item_follows(client, db, resources):
    s = await shop(client)
    plain_brand = await make_brand(client, s.boss, s.customer["id"])
    by_tenant, by_brand, by_item, by_new_default = [
        await staff(client, db, resources, s) for _ in range(4)
    ]
    tenant_default = await template(
        client, s.boss, [internal(by_tenant, name="Agence")], is_tenant_default=True
    )
    brand_default = await template(
        client, s.boss, [internal(by_brand, name="Marque")], brand_ids=[s.brand["id"]]
    )
    chosen = await template(client, s.boss, [internal(by_item, name="Choisi")])
    assert brand_default["brand_ids"] == [s.brand["id"]]

    async def step_of(brand: dict, **fields: Any) -> tuple[str, list[str]]:
        item = await submit(client, s.boss, await draft(client, s.boss, brand, **fields))
        return item["step"]["name"], item["step"]["approvers"]

    assert await step_of(s.brand) == ("Marque", [key(by_brand)])
    assert await step_of(plain_brand) == ("Agence", [key(by_tenant)])
    assert await step_of(s.brand, template_id=chosen["id"]) == ("Choisi", [key(by_item)])
    assert await step_of(plain_brand, template_id=chosen["id"]) == ("Choisi", [key(by_item)])

    # A new agency default takes over from the old one; a brand moved to another template
    # leaves the first.
    await template(
        client, s.boss, [internal(by_new_default, name="Nouveau")], is_tenant_default=True
    )
    old = await client.get(f"/v1/workflow-templates/{tenant_default['id']}", headers=s.boss)
    assert old.json()["is_tenant_default"] is False
    assert await step_of(plain_brand) == ("Nouveau", [key(by_new_default)])
    r = await client.put(
        f"/v1/workflow-templates/{chosen['id']}",
        json={"name": "Choisi", "steps": chosen["steps"], "brand_ids": [s.brand["id"]]},
        headers=s.boss,
    )
    assert r.status_code == 200, r.text
    brands = await client.get(f"/v1/workflow-templates/{brand_default['id']}", headers=s.boss)
    assert brands.json()["brand_ids"] == []
    assert await step_of(s.brand) == ("Choisi", [key(by_item)])


async def test_an_item_under_review_keeps_the_template_it_started_with(client, db, resources):
    s = await shop(client)
    first, second = await staff(client, db, resources, s), await staff(client, db, resources, s)
    t = await template(client, s.boss, [internal(first)], brand_ids=[s.brand["id"]])
    item = await submitted(client, s)
    r = await client.put(
        f"/v1/workflow-templates/{t['id']}",
        json={"name": "Autre", "steps": [internal(second)], "brand_ids": [s.brand["id"]]},
        headers=s.boss,
    )
    assert r.status_code == 200, r.text
    assert (await read(client, s.boss, item))["step"]["approvers"] == [key(first)]
    assert_problem(await decide(client, second, item), 403, "not-an-approver")
    await decided(client, first, item)
    assert (await read(client, s.boss, item))["status"] == "approved"


async def test_without_any_template_the_brand_lead_reviews(client, db, resources):
    s = await shop(client)
    lead = await staff(client, db, resources, s, "member")
    helper = await staff(client, db, resources, s, "member")
    await assign(client, s, helper, "community_manager")
    item = await draft(client, s.boss, s.brand)

    r = await client.post(f"/v1/content/{item['id']}/submit", json={}, headers=s.boss)
    body = assert_problem(r, 422, "no-approver")
    assert body["step_index"] == 0
    assert (await read(client, s.boss, item))["status"] == "draft"

    await assign(client, s, lead, "lead")
    under_review = await submit(client, s.boss, item)
    assert under_review["status"] == "in_review"
    assert under_review["step"]["name"] == "Lead review"
    assert under_review["step"]["approvers"] == [key(lead)]
    assert_problem(await decide(client, helper, under_review), 403, "not-an-approver")
    await decided(client, lead, under_review)
    assert (await read(client, s.boss, item))["status"] == "approved"
    assert (await client.get("/v1/workflow-templates", headers=s.boss)).json()["items"] == []


async def test_a_template_without_steps_approves_at_once(client, db):
    s = await shop(client)
    await template(client, s.boss, [], name="Sans approbation", brand_ids=[s.brand["id"]])
    item = await submitted(client, s)
    assert item["status"] == "approved"
    assert item["step"] is None and item["round"] == 1
    events = await events_of(db, s.agency.tenant_id, item)
    assert [t for t, _ in events] == ["content.submitted", "content.approved"]
    assert events[1][1]["without_approval"] is True
    assert events[1][1]["status"] == "approved"
    decisions = await read(client, s.boss, item, "/decisions")
    assert decisions == []


# ---------------------------------------------------------------------------------------------
# Multi-step flows


async def test_internal_any_then_client_all_then_approved(client, db, resources):
    s = await shop(client)
    r1, r2 = await staff(client, db, resources, s), await staff(client, db, resources, s)
    a, b = await contact(client, db, resources, s), await contact(client, db, resources, s)
    await template(
        client,
        s.boss,
        [internal(r1, r2), client_step(a, b, rule="all")],
        brand_ids=[s.brand["id"]],
    )
    item = await draft(client, s.boss, s.brand)
    # Not sent to the client yet: contacts do not see it.
    r = await client.get(f"/v1/content/{item['id']}", headers=a.headers)
    assert_problem(r, 404, "content-not-found")

    item = await submit(client, s.boss, item)
    assert item["status"] == "in_review" and item["round"] == 1
    assert item["step"]["index"] == 0 and item["step"]["kind"] == "internal"
    assert item["step"]["approvers"] == [key(r1), key(r2)]

    first = await decided(client, r1, item)
    assert (first["channel"], first["step_index"], first["step_kind"], first["round"]) == (
        "app",
        0,
        "internal",
        1,
    )
    assert first["user_id"] == str(r1.user_id) and first["actor_type"] == "user"
    now = await read(client, s.boss, item)
    assert now["status"] == "awaiting_client"
    assert (now["step"]["index"], now["step"]["kind"], now["step"]["rule"]) == (1, "client", "all")
    assert now["step"]["approvers"] == [key(a), key(b)] and now["step"]["decided"] == []
    seen_by_a = await read(client, a.headers, item)
    assert seen_by_a["status"] == "awaiting_client"
    assert seen_by_a["step"]["approvers"] == [] and seen_by_a["step"]["decided"] == []

    by_a = await decided(client, a, item)
    assert (by_a["channel"], by_a["step_index"], by_a["step_kind"]) == ("portal", 1, "client")
    now = await read(client, s.boss, item)
    assert now["status"] == "awaiting_client", "`all` needs both contacts"
    assert now["step"]["index"] == 1 and now["step"]["decided"] == [key(a)]
    assert_problem(await decide(client, a, item), 409, "already-decided")

    await decided(client, b, item)
    now = await read(client, s.boss, item)
    assert now["status"] == "approved" and now["step"] is None
    assert_problem(await decide(client, r2, item), 409, "step-closed")

    decisions = await read(client, s.boss, item, "/decisions")
    assert [(d["step_index"], d["channel"], d["user_id"]) for d in decisions] == [
        (0, "app", str(r1.user_id)),
        (1, "portal", str(a.user_id)),
        (1, "portal", str(b.user_id)),
    ]
    client_view = await read(client, b.headers, item, "/decisions")
    assert [d["user_id"] for d in client_view] == [str(a.user_id), str(b.user_id)]


@pytest.mark.parametrize("reason", [None, "", "   "], ids=["missing", "empty", "blank"])
async def test_requesting_changes_needs_a_comment(client, db, resources, reason):
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    await template(client, s.boss, [internal(reviewer)], brand_ids=[s.brand["id"]])
    item = await submitted(client, s)
    r = await decide(client, reviewer, item, "request_changes", reason)
    assert_problem(r, 422, "reason-required")
    assert (await read(client, s.boss, item))["status"] == "in_review"
    assert await read(client, s.boss, item, "/decisions") == []
    # The reviewer can still decide: nothing was recorded.
    await decided(client, reviewer, item, "request_changes", "Le titre est trop long")
    assert (await read(client, s.boss, item))["status"] == "changes_requested"


async def test_client_requesting_changes_sends_the_item_back_with_the_reason(client, db, resources):
    s = await shop(client)
    a = await contact(client, db, resources, s)
    await template(client, s.boss, [client_step(a)], brand_ids=[s.brand["id"]])
    item = await submitted(client, s)
    assert item["status"] == "awaiting_client"
    row = await decided(client, a, item, "request_changes", "  Le logo est trop petit  ")
    assert row["comment"] == "Le logo est trop petit"
    now = await read(client, s.boss, item)
    assert now["status"] == "changes_requested"
    assert now["status_reason"] == "Le logo est trop petit"
    assert now["step"] is None
    for viewer in (s.boss, a.headers):
        thread = await read(client, viewer, item, "/comments")
        assert [(c["body"], c["visibility"], c["author_id"]) for c in thread] == [
            ("Le logo est trop petit", "client", str(a.user_id))
        ]
    assert (await read(client, a.headers, item))["comment_count"] == 1


async def test_rejection_ends_the_review(client, db, resources):
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    a = await contact(client, db, resources, s)
    await template(client, s.boss, [internal(reviewer), client_step(a)], brand_ids=[s.brand["id"]])
    item = await submitted(client, s)
    await decided(client, reviewer, item, "reject", "Hors sujet pour cette marque")
    now = await read(client, s.boss, item)
    assert now["status"] == "rejected" and now["step"] is None
    assert now["status_reason"] == "Hors sujet pour cette marque"
    thread = await read(client, s.boss, item, "/comments")
    assert [(c["body"], c["visibility"]) for c in thread] == [
        ("Hors sujet pour cette marque", "internal")
    ]
    # Never sent to the client: they do not see it, and no client step was requested.
    assert_problem(await client.get(f"/v1/content/{item['id']}", headers=a.headers), 404)
    events = [t for t, _ in await events_of(db, s.agency.tenant_id, item)]
    assert events == ["content.submitted", "approval.requested", "content.rejected"]
    assert_problem(await decide(client, reviewer, item), 409, "step-closed")


async def test_a_new_round_does_not_count_the_last_rounds_decisions(client, db, resources):
    s = await shop(client)
    a, b = await contact(client, db, resources, s), await contact(client, db, resources, s)
    await template(client, s.boss, [client_step(a, b, rule="all")], brand_ids=[s.brand["id"]])
    item = await submitted(client, s)
    await decided(client, a, item)
    await decided(client, b, item, "request_changes", "Ajoutez le prix")
    assert (await read(client, s.boss, item))["status"] == "changes_requested"

    # Resubmitted as is (same revision): a second round, where A's approval no longer counts.
    again = await submit(client, s.boss, item)
    assert again["status"] == "awaiting_client" and again["round"] == 2
    assert again["status_reason"] is None
    assert again["step"]["index"] == 0 and again["step"]["decided"] == []
    await decided(client, b, again)
    now = await read(client, s.boss, item)
    assert now["status"] == "awaiting_client"
    assert now["step"]["decided"] == [key(b)]
    inbox = (await client.get("/v1/portal/inbox", headers=a.headers)).json()["items"]
    assert [i["id"] for i in inbox] == [item["id"]]
    second = await decided(client, a, again)
    assert second["round"] == 2
    assert (await read(client, s.boss, item))["status"] == "approved"
    decisions = await read(client, s.boss, item, "/decisions")
    assert [(d["round"], d["user_id"], d["decision"]) for d in decisions] == [
        (1, str(a.user_id), "approve"),
        (1, str(b.user_id), "request_changes"),
        (2, str(b.user_id), "approve"),
        (2, str(a.user_id), "approve"),
    ]


async def test_a_client_never_sees_an_internal_reviewers_reason(client, db, resources):
    """Round 1 reached the client, so they still see the item in round 2; an internal reviewer's
    request for changes there is internal (its comment and history entry are hidden from the
    client), so the item's status_reason must not show it to them either."""
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    a = await contact(client, db, resources, s)
    await template(client, s.boss, [internal(reviewer), client_step(a)], brand_ids=[s.brand["id"]])
    item = await submitted(client, s)
    await decided(client, reviewer, item)
    await decided(client, a, item, "request_changes", "Plus court, svp")
    item = await submit(client, s.boss, item)
    secret = "Entre nous : ce client ne relit jamais rien"
    await decided(client, reviewer, item, "request_changes", secret)
    assert (await read(client, s.boss, item))["status_reason"] == secret

    seen = await read(client, a.headers, item)
    assert secret not in [c["body"] for c in await read(client, a.headers, item, "/comments")]
    assert secret not in str(await read(client, a.headers, item, "/history"))
    assert seen["comment_count"] == 1
    assert seen["status_reason"] != secret


async def test_a_withdrawn_review_does_not_tell_the_client_who_else_was_asked(
    client, db, resources
):
    """Client contacts never see a step's approvers (GET /content hides them); the history entry
    left when an edit voids their review must not list them either."""
    s = await shop(client)
    a, b = await contact(client, db, resources, s), await contact(client, db, resources, s)
    outsider = f"ext-{uuid.uuid4().hex[:8]}@example.com"
    await template(
        client, s.boss, [client_step(a, b, emails=(outsider,))], brand_ids=[s.brand["id"]]
    )
    item = await submitted(client, s, variants={"instagram": "Nouveau menu"})
    assert (await read(client, a.headers, item))["step"]["approvers"] == []
    r = await client.patch(
        f"/v1/content/{item['id']}", json={"title": "Nouveau menu (v2)"}, headers=s.boss
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "draft"

    seen = await read(client, a.headers, item)
    assert seen["status"] == "draft" and seen["step"] is None
    assert seen["revision"]["number"] == 1, "the client still sees what was sent to them"
    history = await read(client, a.headers, item, "/history")
    assert "content.withdrawn_from_client" in [h["action"] for h in history]
    assert outsider not in str(history)
    assert str(b.user_id) not in str(history)

    # Their comments anchor to what they were sent, never to the newer draft.
    sent, newer = item["revision"]["id"], r.json()["revision"]["id"]
    on_sent = await commented(
        client,
        a.headers,
        item,
        "Joli",
        anchor={"revision_id": sent, "platform": "instagram", "start": 0, "end": 7},
    )
    assert on_sent["anchor"]["quote"] == "Nouveau"
    r = await comment(
        client, a.headers, item, "?", anchor={"revision_id": newer, "start": 0, "end": 1}
    )
    assert_field_refused(r, "/anchor/revision_id", "revision-not-found")


# ---------------------------------------------------------------------------------------------
# Self-approval and who may decide


async def test_the_submitter_is_not_an_approver_of_their_own_item(client, db, resources):
    s = await shop(client)
    author = await staff(client, db, resources, s)
    reviewer = await staff(client, db, resources, s)
    await template(client, s.boss, [internal(author, reviewer)], brand_ids=[s.brand["id"]])
    item = await submit(client, author.headers, await draft(client, author.headers, s.brand))
    assert item["step"]["approvers"] == [key(reviewer)]
    assert_problem(await decide(client, author, item), 403, "self-approval-refused")
    assert await read(client, s.boss, item, "/decisions") == []
    await decided(client, reviewer, item)
    assert (await read(client, s.boss, item))["status"] == "approved"


async def test_a_step_whose_only_approver_is_the_submitter_cannot_start(client, db, resources):
    s = await shop(client)
    author = await staff(client, db, resources, s)
    await template(client, s.boss, [internal(author)], brand_ids=[s.brand["id"]])
    item = await draft(client, author.headers, s.brand)
    r = await client.post(f"/v1/content/{item['id']}/submit", json={}, headers=author.headers)
    assert_problem(r, 422, "no-approver")
    assert (await read(client, s.boss, item))["status"] == "draft"
    # Someone else may submit it: then the author is a fine approver.
    other = await submit(client, s.boss, item)
    assert other["step"]["approvers"] == [key(author)]


async def test_self_approval_when_the_template_allows_it(client, db, resources):
    s = await shop(client)
    author = await staff(client, db, resources, s)
    await template(
        client,
        s.boss,
        [internal(author)],
        allow_self_approval=True,
        brand_ids=[s.brand["id"]],
    )
    item = await submit(client, author.headers, await draft(client, author.headers, s.brand))
    assert item["step"]["approvers"] == [key(author)]
    await decided(client, author, item)
    assert (await read(client, s.boss, item))["status"] == "approved"


async def test_only_the_steps_approvers_may_decide(client, db, resources):
    s = await shop(client)
    reviewer, bystander = (
        await staff(client, db, resources, s),
        await staff(client, db, resources, s),
    )
    named, unnamed = (
        await contact(client, db, resources, s),
        await contact(client, db, resources, s),
    )
    await template(
        client, s.boss, [internal(reviewer), client_step(named)], brand_ids=[s.brand["id"]]
    )
    item = await submitted(client, s)
    assert_problem(await decide(client, bystander, item), 403, "not-an-approver")
    # The owner sees everything but is not named (and submitted it).
    r = await client.post(
        f"/v1/content/{item['id']}/decisions",
        json={"revision_id": item["revision"]["id"], "decision": "approve"},
        headers=s.boss,
    )
    assert_problem(r, 403)
    # Client contacts do not even see an item before it is sent to them.
    assert_problem(await decide(client, named, item), 404, "content-not-found")
    await decided(client, reviewer, item)
    # Now on the client step: another contact of the same client sees it but may not decide,
    # and neither may staff.
    assert_problem(await decide(client, unnamed, item), 403, "not-an-approver")
    assert_problem(await decide(client, bystander, item), 403, "not-an-approver")
    late = await decide(client, reviewer, item)
    assert late.status_code in (403, 409), late.text
    assert (await read(client, s.boss, item))["status"] == "awaiting_client"
    assert len(await read(client, s.boss, item, "/decisions")) == 1


async def test_deciding_when_nothing_is_under_review(client, db, resources):
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    a = await contact(client, db, resources, s)
    await template(client, s.boss, [internal(reviewer)], brand_ids=[s.brand["id"]])
    item = await draft(client, s.boss, s.brand)
    assert_problem(await decide(client, reviewer, item), 409, "step-closed")
    assert await read(client, s.boss, item, "/decisions") == []
    assert (await read(client, s.boss, item))["status"] == "draft"

    # A client contact on an item approved after their step.
    theirs = await template(client, s.boss, [client_step(a)], name="Client")
    sent = await submitted(client, s, template_id=theirs["id"])
    await decided(client, a, sent)
    assert (await read(client, a.headers, sent))["status"] == "approved"
    assert_problem(await decide(client, a, sent), 409, "step-closed")
    assert len(await read(client, s.boss, sent, "/decisions")) == 1


# ---------------------------------------------------------------------------------------------
# Two decisions at the same moment


async def test_two_approvers_of_an_any_step_at_the_same_moment(client, db, resources):
    s = await shop(client)
    r1, r2, boss = [await staff(client, db, resources, s) for _ in range(3)]
    await template(
        client,
        s.boss,
        [internal(r1, r2), internal(boss, name="Direction")],
        brand_ids=[s.brand["id"]],
    )
    for _ in range(3):
        item = await submitted(client, s)
        answers = await asyncio.gather(decide(client, r1, item), decide(client, r2, item))
        assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
        loser = next(r for r in answers if r.status_code == 409)
        assert_problem(loser, 409, "step-closed")

        assert len(await read(client, s.boss, item, "/decisions")) == 1
        history = await read(client, s.boss, item, "/history")
        assert [
            h["details"]["step_index"] for h in history if h["action"] == "content.decided"
        ] == [0]
        requested = [
            p["step_index"]
            for t, p in await events_of(db, s.agency.tenant_id, item)
            if t == "approval.requested"
        ]
        assert requested == [0, 1]
        now = await read(client, s.boss, item)
        assert now["status"] == "in_review"
        assert now["step"]["index"] == 1 and now["step"]["approvers"] == [key(boss)]
        assert now["step"]["decided"] == []


async def test_two_approvers_of_an_all_step_at_the_same_moment(client, db, resources):
    s = await shop(client)
    r1, r2 = await staff(client, db, resources, s), await staff(client, db, resources, s)
    a = await contact(client, db, resources, s)
    await template(
        client, s.boss, [internal(r1, r2, rule="all"), client_step(a)], brand_ids=[s.brand["id"]]
    )
    for _ in range(3):
        item = await submitted(client, s)
        answers = await asyncio.gather(decide(client, r1, item), decide(client, r2, item))
        assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
        now = await read(client, s.boss, item)
        assert now["status"] == "awaiting_client" and now["step"]["index"] == 1
        requested = [
            p["step_index"]
            for t, p in await events_of(db, s.agency.tenant_id, item)
            if t == "approval.requested"
        ]
        assert requested == [0, 1]
        history = [h["action"] for h in await read(client, s.boss, item, "/history")]
        assert history.count("content.sent_to_client") == 1


# ---------------------------------------------------------------------------------------------
# Comments


async def test_comment_threads_and_who_sees_them(client, db, resources):
    s = await shop(client)
    a = await contact(client, db, resources, s)
    await template(client, s.boss, [client_step(a)], brand_ids=[s.brand["id"]])
    item = await submitted(client, s)

    inside = await commented(client, s.boss, item, "Interne : la marge est faible")
    assert inside["visibility"] == "internal"
    shared = await commented(client, s.boss, item, "Voici la version finale", visibility="client")
    reply_inside = await commented(
        client, s.boss, item, "D'accord, on garde", parent_id=inside["id"]
    )
    assert reply_inside["parent_id"] == inside["id"]
    # An internal comment's thread stays internal.
    r = await comment(
        client, s.boss, item, "Le client doit voir ça", parent_id=inside["id"], visibility="client"
    )
    assert_problem(r, 422, "invalid-comment")

    # A client contact's comments are always client-visible; they reply to client comments only.
    from_client = await commented(
        client, a.headers, item, "Merci !", parent_id=shared["id"], visibility="internal"
    )
    assert from_client["visibility"] == "client" and from_client["parent_id"] == shared["id"]
    assert from_client["author_id"] == str(a.user_id)
    r = await comment(client, a.headers, item, "Quelle marge ?", parent_id=inside["id"])
    assert_field_refused(r, "/parent_id", "comment-not-found")

    everything = await read(client, s.boss, item, "/comments")
    assert [c["id"] for c in everything] == [
        inside["id"],
        shared["id"],
        reply_inside["id"],
        from_client["id"],
    ]
    for_client = await read(client, a.headers, item, "/comments")
    assert [c["id"] for c in for_client] == [shared["id"], from_client["id"]]
    assert all(c["visibility"] == "client" for c in for_client)
    assert (await read(client, s.boss, item))["comment_count"] == 4
    assert (await read(client, a.headers, item))["comment_count"] == 2
    inbox = (await client.get("/v1/portal/inbox", headers=a.headers)).json()["items"]
    assert [(i["id"], i["comment_count"]) for i in inbox] == [(item["id"], 2)]


async def test_a_client_email_counts_and_shows_only_client_comments(
    client, db, resources, settings, mailbox
):
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    a = await contact(client, db, resources, s)
    outsider = f"ext-{uuid.uuid4().hex[:8]}@example.com"
    await template(
        client,
        s.boss,
        [internal(reviewer), client_step(a, emails=(outsider,))],
        brand_ids=[s.brand["id"]],
    )
    item = await submitted(client, s)
    await commented(client, s.boss, item, "SECRET-INTERNE ne pas montrer")
    await commented(client, s.boss, item, "Bonjour, voici la publication", visibility="client")
    await decided(client, reviewer, item, "approve", "NOTE-INTERNE du relecteur")
    assert (await read(client, s.boss, item))["comment_count"] == 3
    assert (await read(client, a.headers, item))["comment_count"] == 1

    await run_worker(settings)
    for address in (a.email, outsider):
        (message,) = await mailbox.wait_for(address)
        text, html = text_of(message), html_of(message)
        assert "1 commentaire(s)" in text and "1 commentaire(s)" in html
        for hidden in ("SECRET-INTERNE", "NOTE-INTERNE", "3 commentaire"):
            assert hidden not in text and hidden not in html
    # The reviewer's own request was for a step decided since: nothing sent to them.
    assert mailbox.to(reviewer.email) == []


async def test_anchored_comments(client, db, resources):
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    await template(client, s.boss, [internal(reviewer)], brand_ids=[s.brand["id"]])
    item = await draft(
        client, s.boss, s.brand, title="Soldes d'été", variants={"instagram": "Tout à -50 %"}
    )
    elsewhere = await draft(client, s.boss, s.brand)
    rev = item["revision"]["id"]

    on_text = await commented(
        client,
        s.boss,
        item,
        "Vraiment tout ?",
        anchor={"revision_id": rev, "platform": "instagram", "start": 0, "end": 4},
    )
    assert on_text["anchor"]["quote"] == "Tout"
    assert on_text["anchor"]["revision_number"] == 1
    on_title = await commented(
        client, s.boss, item, "Été ?", anchor={"revision_id": rev, "start": 0, "end": 6}
    )
    assert on_title["anchor"]["quote"] == "Soldes"

    too_far = {"revision_id": rev, "platform": "instagram", "start": 5, "end": 13}
    assert_problem(await comment(client, s.boss, item, "x", anchor=too_far), 422, "invalid-comment")
    no_text = {"revision_id": rev, "platform": "tiktok", "start": 0, "end": 1}
    assert_problem(await comment(client, s.boss, item, "x", anchor=no_text), 422, "invalid-comment")
    backwards = {"revision_id": rev, "platform": "instagram", "start": 3, "end": 3}
    assert_problem(await comment(client, s.boss, item, "x", anchor=backwards), 422)
    foreign = {"revision_id": elsewhere["revision"]["id"], "start": 0, "end": 1}
    assert_field_refused(
        await comment(client, s.boss, item, "x", anchor=foreign),
        "/anchor/revision_id",
        "revision-not-found",
    )
    assert len(await read(client, s.boss, item, "/comments")) == 2


async def test_mentions_reach_staff_who_can_see_the_brand(client, db, resources, settings, mailbox):
    s = await shop(client)
    on_brand = await staff(client, db, resources, s, "member", name="Léa")
    off_brand = await staff(client, db, resources, s, "member", name="Samuel")
    manager = await staff(client, db, resources, s, "manager", name="Mathieu")
    someone = await contact(client, db, resources, s)
    await assign(client, s, on_brand, "community_manager")
    item = await draft(client, s.boss, s.brand, title="Rentrée")

    body = (
        f"@[Léa]({on_brand.user_id}) @[Samuel]({off_brand.user_id}) "
        f"@[Mathieu]({manager.user_id}) @[Client]({someone.user_id}) à revoir"
    )
    row = await commented(client, s.boss, item, body)
    assert row["mentions"] == [str(on_brand.user_id), str(manager.user_id)]
    assert row["body"] == body

    lonely = await commented(client, s.boss, item, f"@[Samuel]({off_brand.user_id}) tu vois ?")
    assert lonely["mentions"] == []
    mentioned = [
        p for t, p in await events_of(db, s.agency.tenant_id, item) if t == "comment.mentioned"
    ]
    assert [(p["comment_id"], p["user_ids"]) for p in mentioned] == [
        (row["id"], [str(on_brand.user_id), str(manager.user_id)])
    ]

    await run_worker(settings)
    for person in (on_brand, manager):
        (message,) = await mailbox.wait_for(person.email)
        assert message["Subject"].endswith("mentioned you: Rentrée"), message["Subject"]
        assert f"{APP}/content/{item['id']}#comment-{row['id']}" in text_of(message)
    assert mailbox.to(off_brand.email) == []
    assert mailbox.to(someone.email) == []


# ---------------------------------------------------------------------------------------------
# The client portal


async def test_the_portal_inbox_shows_what_awaits_this_contact(client, db, resources):
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    a, b = await contact(client, db, resources, s), await contact(client, db, resources, s)
    other_customer = await make_client(client, s.boss)
    other_brand = await make_brand(client, s.boss, other_customer["id"])
    c = await contact(client, db, resources, s, other_customer)
    flow = await template(
        client, s.boss, [internal(reviewer), client_step(a, b, rule="all")], name="Maison"
    )
    theirs = await template(client, s.boss, [client_step(c)], name="Autre client")

    mine = await submitted(client, s, template_id=flow["id"])
    for_other = await submit(
        client, s.boss, await draft(client, s.boss, other_brand, template_id=theirs["id"])
    )
    still_internal = await submitted(client, s, template_id=flow["id"])
    await decided(client, reviewer, mine)

    async def inbox(who: Person) -> list[str]:
        return [i["id"] for i in await walk(client, "/v1/portal/inbox", who.headers)]

    assert await inbox(a) == [mine["id"]]
    assert await inbox(b) == [mine["id"]]
    assert await inbox(c) == [for_other["id"]]
    entry = (await client.get("/v1/portal/inbox", headers=a.headers)).json()["items"][0]
    assert entry["revision_id"] == mine["revision"]["id"]
    assert entry["step_name"] == "Client" and entry["brand_name"] == s.brand["name"]
    assert still_internal["id"] not in await inbox(a)
    assert_problem(
        await client.get(f"/v1/content/{for_other['id']}", headers=a.headers),
        404,
        "content-not-found",
    )

    by_portal = await decided(client, a, mine)
    assert by_portal["channel"] == "portal"
    assert await inbox(a) == []
    assert await inbox(b) == [mine["id"]]
    await decided(client, b, mine)
    assert await inbox(b) == []

    for who in (s.boss, reviewer.headers):
        assert_problem(await client.get("/v1/portal/inbox", headers=who), 403, "permission-denied")

    staff_history = [h["action"] for h in await read(client, s.boss, mine, "/history")]
    assert "content.submitted" in staff_history
    client_history = await read(client, a.headers, mine, "/history")
    assert [h["action"] for h in client_history] == [
        "content.sent_to_client",
        "content.decided",
        "content.decided",
        "content.approved",
    ]
    assert all(h["details"].get("step_index", 1) == 1 for h in client_history)
    assert {h["details"].get("channel") for h in client_history} == {None, "portal"}


# ---------------------------------------------------------------------------------------------
# E-mails asking for approval


@pytest.mark.parametrize(
    ("locale", "subject"),
    [("en", "To approve: Rentrée (Boulangerie)"), ("fr", "À approuver : Rentrée (Boulangerie)")],
    ids=["en", "fr"],
)
async def test_an_internal_approver_is_asked_in_their_language(
    client, db, resources, settings, mailbox, locale, subject
):
    agency = await new_agency(client)
    customer = await make_client(client, agency.owner.headers, locale="fr-CA")
    brand = await make_brand(client, agency.owner.headers, customer["id"], name="Boulangerie")
    s = World(agency, clients={"customer": customer}, brands={"brand": brand})
    reviewer = await staff(client, db, resources, s)
    await set_locale(db, agency.tenant_id, reviewer, locale)
    await template(client, s.boss, [internal(reviewer)], brand_ids=[brand["id"]])
    item = await submitted(client, s, title="Rentrée")

    await run_worker(settings)
    (message,) = await mailbox.wait_for(reviewer.email)
    assert message["Subject"] == subject
    assert message["Content-Language"] == locale
    assert button_href(message) == f"{APP}/content/{item['id']}"
    assert f"{APP}/content/{item['id']}" in text_of(message)
    assert "Bonjour tout le monde" in text_of(message)


@pytest.mark.parametrize(
    ("locale", "prefix", "language"),
    [("fr-CA", "À approuver : ", "fr"), ("en", "To approve: ", "en")],
    ids=["fr-CA", "en"],
)
async def test_client_approvers_are_asked_in_the_clients_language(
    client, db, resources, settings, mailbox, locale, prefix, language
):
    s = await shop(client, locale=locale)
    a = await contact(client, db, resources, s)
    await set_locale(db, s.agency.tenant_id, a, "fr" if language == "en" else "en")
    outsider = f"ext-{uuid.uuid4().hex[:8]}@example.com"
    await template(client, s.boss, [client_step(a, emails=(outsider,))], brand_ids=[s.brand["id"]])
    item = await submitted(client, s, title="Nouveautés")

    await run_worker(settings)
    (to_contact,) = await mailbox.wait_for(a.email)
    (to_outsider,) = await mailbox.wait_for(outsider)
    for message in (to_contact, to_outsider):
        assert message["Subject"] == f"{prefix}Nouveautés ({s.brand['name']})"
        assert message["Content-Language"] == language
    # Client-facing links lead to this service's pages; staff links (above) to the staff app.
    pages = settings.public_base_url
    assert button_href(to_contact) == f"{pages}/portal/content/{item['id']}"
    link = button_href(to_outsider)
    assert link.startswith(f"{pages}/approve/")
    token = link.removeprefix(f"{pages}/approve/")
    assert link in text_of(to_outsider)
    view = await client.get(f"/v1/approval-links/{token}")
    assert view.status_code == 200, view.text
    assert view.json()["title"] == "Nouveautés" and view.json()["email"] == outsider


async def test_a_title_is_one_line_because_it_becomes_an_e_mail_subject(client, db, resources):
    """A line break in a title would break the approval e-mail's Subject header: refused."""
    s = await shop(client)
    before = await client.get(f"/v1/brands/{s.brand['id']}/content", headers=s.boss)
    for title in ("Soldes\nd'été", "Soldes\rd'été", "Soldes\x00"):
        response = await client.post(
            f"/v1/brands/{s.brand['id']}/content",
            json={"title": title, "variants": {"instagram": "Bonjour"}},
            headers=s.boss,
        )
        problem = assert_problem(response, 422, "validation-error")
        assert "/title" in [e["pointer"] for e in problem["errors"]], problem
    after = await client.get(f"/v1/brands/{s.brand['id']}/content", headers=s.boss)
    assert after.json()["items"] == before.json()["items"]


# ---------------------------------------------------------------------------------------------
# Other agencies and other items


async def test_another_agency_reaches_nothing_of_an_item(client, db, resources):
    s = await shop(client)
    reviewer = await staff(client, db, resources, s)
    await template(client, s.boss, [internal(reviewer)], brand_ids=[s.brand["id"]])
    item = await submitted(client, s)
    note = await commented(client, s.boss, item, "Première remarque")

    other = await shop(client)
    intruder = await staff(client, db, resources, other)
    path = f"/v1/content/{item['id']}"
    body = {"revision_id": item["revision"]["id"], "decision": "approve"}
    for headers in (other.boss, intruder.headers):
        for r in (
            await client.get(f"{path}/decisions", headers=headers),
            await client.post(f"{path}/decisions", json=body, headers=headers),
            await client.get(f"{path}/comments", headers=headers),
            await client.post(f"{path}/comments", json={"body": "coucou"}, headers=headers),
            await client.get(f"{path}/history", headers=headers),
        ):
            assert_problem(r, 404, "content-not-found")
    assert await read(client, s.boss, item, "/decisions") == []
    assert [c["id"] for c in await read(client, s.boss, item, "/comments")] == [note["id"]]

    # A parent comment must belong to the same item (and agency).
    sibling = await draft(client, s.boss, s.brand)
    r = await comment(client, s.boss, sibling, "réponse", parent_id=note["id"])
    assert_field_refused(r, "/parent_id", "comment-not-found")
    theirs = await draft(client, other.boss, other.brand)
    r = await comment(client, other.boss, theirs, "réponse", parent_id=note["id"])
    assert_field_refused(r, "/parent_id", "comment-not-found")
    r = await comment(client, s.boss, item, "réponse", parent_id=str(uuid.uuid4()))
    assert_field_refused(r, "/parent_id", "comment-not-found")
