"""Content items over HTTP: drafting, revisions and their diff, optimistic locking, what an edit
does to a review under way, scheduling, the calendar, checks, who sees what, bad input, and
time logged against a post.

"Now" is the real clock; planned times are taken relative to it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.factories import (
    Person,
    World,
    add_person,
    new_agency,
    new_world,
    walk,
)
from tests.support.problems import assert_field_refused, assert_problem
from tests.support.walk import operations, route_table_app, tenant_snapshot

MTL = ZoneInfo("America/Montreal")


# ---------------------------------------------------------------------------------------------
# Helpers


async def setup(client: httpx.AsyncClient, **brand_fields: Any) -> World:
    return await new_world(
        client,
        customer={"name": "Acme", "locale": "fr-CA"},
        brands={
            "brand": {"default_language": "fr", **brand_fields},
            "other": {"default_language": "fr"},
        },
    )


def later(days: float = 10) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def same_instant(a: str | None, b: datetime) -> bool:
    return a is not None and datetime.fromisoformat(a.replace("Z", "+00:00")) == b


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], brand_id: str, **fields: Any
) -> httpx.Response:
    body = {"title": "Lancement", "variants": {"instagram": "Bonjour à tous"}, **fields}
    return await client.post(f"/v1/brands/{brand_id}/content", json=body, headers=headers)


async def post(
    client: httpx.AsyncClient, headers: dict[str, str], brand_id: str, **fields: Any
) -> dict:
    response = await create(client, headers, brand_id, **fields)
    assert response.status_code == 201, response.text
    return response.json()


async def get(client: httpx.AsyncClient, headers: dict[str, str], path: str) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def edit(
    client: httpx.AsyncClient, headers: dict[str, str], item_id: str, **fields: Any
) -> dict:
    response = await client.patch(f"/v1/content/{item_id}", json=fields, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def template(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict:
    body = {"name": f"Flow {uuid.uuid4().hex[:6]}", "steps": [], **fields}
    response = await client.post("/v1/workflow-templates", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def submit(client: httpx.AsyncClient, headers: dict[str, str], item_id: str) -> dict:
    response = await client.post(f"/v1/content/{item_id}/submit", json={}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def approved_item(client: httpx.AsyncClient, world: World, **fields: Any) -> dict:
    """An item approved at once (a workflow with no steps)."""
    flow = await template(client, world.boss)
    item = await post(client, world.boss, world.brand["id"], template_id=flow["id"], **fields)
    approved = await submit(client, world.boss, item["id"])
    assert approved["status"] == "approved"
    return approved


async def assign(
    client: httpx.AsyncClient, headers: dict[str, str], person: Person, brand_id: str
) -> None:
    start = datetime.now(MTL).date() - timedelta(days=30)
    response = await client.post(
        "/v1/assignments",
        json={
            "brand_id": brand_id,
            "user_id": str(person.user_id),
            "role": "content_creator",
            "monthly_minutes": 0,
            "start_date": start.isoformat(),
            "end_date": None,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text


async def revisions(client: httpx.AsyncClient, headers: dict[str, str], item_id: str) -> list:
    return await walk(client, f"/v1/content/{item_id}/revisions", headers)


async def history_actions(
    client: httpx.AsyncClient, headers: dict[str, str], item_id: str
) -> list[str]:
    return [e["action"] for e in await walk(client, f"/v1/content/{item_id}/history", headers)]


# ---------------------------------------------------------------------------------------------
# Create, read, list


async def test_create_answers_201_with_etag_and_first_revision(client) -> None:
    world = await setup(client)
    planned = later(5)
    response = await create(
        client,
        world.boss,
        world.brand["id"],
        title="  Lancement d'automne  ",
        variants={"instagram": "C'est parti !", "linkedin": "Nouvelle saison."},
        media=[{"url": "https://cdn.example.com/a.png", "type": "image", "alt_text": "Affiche"}],
        planned_at=iso(planned),
        campaign="Automne",
        labels=["promo", "promo", "saison"],
    )
    assert response.status_code == 201, response.text
    item = response.json()
    assert response.headers["etag"] == f'"{item["version"]}"'
    assert item["brand_id"] == world.brand["id"]
    assert item["title"] == "Lancement d'automne"
    assert item["status"] == "draft"
    assert item["round"] == 0 and item["step"] is None and item["submitted_at"] is None
    assert item["campaign"] == "Automne"
    assert item["labels"] == ["promo", "saison"]
    assert same_instant(item["planned_at"], planned)
    revision = item["revision"]
    assert revision["number"] == 1
    assert revision["author_id"] == str(world.owner.user_id)
    assert revision["variants"] == {"instagram": "C'est parti !", "linkedin": "Nouvelle saison."}
    assert revision["media"] == [
        {"url": "https://cdn.example.com/a.png", "type": "image", "alt_text": "Affiche"}
    ]

    read = await client.get(f"/v1/content/{item['id']}", headers=world.boss)
    assert read.status_code == 200, read.text
    assert read.headers["etag"] == response.headers["etag"]
    assert read.json() == item
    assert await history_actions(client, world.boss, item["id"]) == ["content.created"]


async def test_list_per_brand_filters_by_status_and_walks_pages(client) -> None:
    world = await setup(client)
    flow = await template(client, world.boss)
    created = []
    for index in range(7):
        item = await post(
            client, world.boss, world.brand["id"], title=f"Post {index}", template_id=flow["id"]
        )
        created.append(item["id"])
    approved = created[1::3]
    for item_id in approved:
        await submit(client, world.boss, item_id)
    elsewhere = await post(client, world.boss, world.brands["other"]["id"])

    path = f"/v1/brands/{world.brand['id']}/content"
    everything = await walk(client, path, world.boss, limit=2)
    assert [i["id"] for i in everything] == created  # oldest first, no repeat, no gap
    assert elsewhere["id"] not in {i["id"] for i in everything}

    for status, expected in [
        ("approved", approved),
        ("draft", [i for i in created if i not in approved]),
        ("scheduled", []),
    ]:
        found = await walk(client, path, world.boss, limit=2, status=status)
        assert [i["id"] for i in found] == expected, status
        assert {i["status"] for i in found} <= {status}

    both = await walk(client, path, world.boss, limit=3, status=["draft", "approved"])
    assert [i["id"] for i in both] == created

    first = await get(client, world.boss, f"{path}?limit=2")
    assert len(first["items"]) == 2 and first["next_cursor"] is not None
    assert first["items"][0]["revision_number"] == 1

    bad = await client.get(path, params={"status": "published"}, headers=world.boss)
    assert_problem(bad, 422, "validation-error")


# ---------------------------------------------------------------------------------------------
# Revisions


async def test_each_edit_is_a_new_immutable_revision(client) -> None:
    world = await setup(client)
    item = await post(client, world.boss, world.brand["id"], title="V1", labels=["a"])
    edits: list[dict[str, Any]] = [
        {"title": "V2"},
        {"variants": {"instagram": "Texte 3", "x": "Court"}},
        {"labels": ["b"], "campaign": "Hiver"},
        {"media": [{"url": "http://cdn.example.com/v.mp4", "type": "video"}]},
    ]
    seen = await revisions(client, world.boss, item["id"])
    assert [r["number"] for r in seen] == [1]
    version = item["version"]
    for count, change in enumerate(edits, start=2):
        response = await client.patch(f"/v1/content/{item['id']}", json=change, headers=world.boss)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["version"] > version
        version = body["version"]
        assert response.headers["etag"] == f'"{version}"'
        assert body["revision"]["number"] == count
        now = await revisions(client, world.boss, item["id"])
        assert [r["number"] for r in now] == list(range(1, count + 1))
        assert now[:-1] == seen  # earlier revisions are exactly as they were
        assert len({r["id"] for r in now}) == count
        seen = now

    last = seen[-1]
    # Each revision carries every field forward from the one before.
    assert last["title"] == "V2"
    assert last["variants"] == {"instagram": "Texte 3", "x": "Court"}
    assert last["labels"] == ["b"] and last["campaign"] == "Hiver"
    assert last["media"] == [
        {"url": "http://cdn.example.com/v.mp4", "type": "video", "alt_text": ""}
    ]
    assert seen[0]["title"] == "V1" and seen[0]["labels"] == ["a"]
    summary = await get(client, world.boss, f"/v1/brands/{world.brand['id']}/content")
    assert summary["items"][0]["revision_number"] == 5
    actions = await history_actions(client, world.boss, item["id"])
    assert actions == ["content.created"] + ["content.edited"] * 4


async def test_stale_if_match_is_412_and_changes_nothing(client) -> None:
    world = await setup(client)
    item = await post(client, world.boss, world.brand["id"])
    stale = f'"{item["version"]}"'
    fresh = await edit(client, world.boss, item["id"], title="Première retouche")

    refused = await client.patch(
        f"/v1/content/{item['id']}",
        json={"title": "Écrasé"},
        headers={**world.boss, "If-Match": stale},
    )
    assert_problem(refused, 412, "precondition-failed")
    after = await get(client, world.boss, f"/v1/content/{item['id']}")
    assert after == fresh
    assert len(await revisions(client, world.boss, item["id"])) == 2

    accepted = await client.patch(
        f"/v1/content/{item['id']}",
        json={"title": "Deuxième retouche"},
        headers={**world.boss, "If-Match": f'"{fresh["version"]}"'},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["revision"]["number"] == 3


async def test_concurrent_edits_with_the_same_etag_one_wins(client) -> None:
    world = await setup(client)
    item = await post(client, world.boss, world.brand["id"])
    tag = {**world.boss, "If-Match": f'"{item["version"]}"'}
    answers = await asyncio.gather(
        *[
            client.patch(f"/v1/content/{item['id']}", json={"title": f"T{i}"}, headers=tag)
            for i in range(4)
        ]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 412, 412, 412], [a.text for a in answers]
    assert [r["number"] for r in await revisions(client, world.boss, item["id"])] == [1, 2]


async def test_diff_between_revisions_word_by_word(client) -> None:
    world = await setup(client)
    item = await post(
        client,
        world.boss,
        world.brand["id"],
        title="Le lancement est demain",
        variants={"instagram": "Nouvelle collection dès lundi !", "x": "Bientôt"},
    )
    await edit(
        client,
        world.boss,
        item["id"],
        title="Le lancement est reporté à lundi",
        variants={"instagram": "Nouvelle collection dès mardi !", "linkedin": "Annonce"},
        labels=["report"],
    )
    base = f"/v1/content/{item['id']}/revisions"
    diff = await get(client, world.boss, f"{base}/1/diff/2")
    assert (diff["base"], diff["head"]) == (1, 2)
    assert diff["title"] == [
        {"op": "equal", "text": "Le lancement est "},
        {"op": "delete", "text": "demain"},
        {"op": "insert", "text": "reporté à lundi"},
    ]
    assert diff["variants"]["instagram"] == {
        "change": "changed",
        "ops": [
            {"op": "equal", "text": "Nouvelle collection dès "},
            {"op": "delete", "text": "lundi"},
            {"op": "insert", "text": "mardi"},
            {"op": "equal", "text": " !"},
        ],
    }
    assert diff["variants"]["x"] == {
        "change": "removed",
        "ops": [{"op": "delete", "text": "Bientôt"}],
    }
    assert diff["variants"]["linkedin"] == {
        "change": "added",
        "ops": [{"op": "insert", "text": "Annonce"}],
    }
    assert diff["fields"] == {"labels": {"old": [], "new": ["report"]}}

    backwards = await get(client, world.boss, f"{base}/2/diff/1")
    assert backwards["title"] == [
        {"op": "equal", "text": "Le lancement est "},
        {"op": "delete", "text": "reporté à lundi"},
        {"op": "insert", "text": "demain"},
    ]
    same = await get(client, world.boss, f"{base}/2/diff/2")
    assert same["title"] == [{"op": "equal", "text": "Le lancement est reporté à lundi"}]
    assert {v["change"] for v in same["variants"].values()} == {"unchanged"}
    assert same["fields"] == {} and same["media"] == {"added": [], "removed": []}

    for path in (f"{base}/1/diff/3", f"{base}/7/diff/1"):
        assert_problem(await client.get(path, headers=world.boss), 404, "revision-not-found")
    assert_problem(await client.get(f"{base}/0/diff/1", headers=world.boss), 422)


# ---------------------------------------------------------------------------------------------
# An edit during a review


async def test_editing_an_item_under_review_voids_the_review(client, db, resources) -> None:
    world = await setup(client)
    reviewer = await add_person(client, db, resources.passwords, world.agency, "manager")
    flow = await template(
        client,
        world.boss,
        steps=[{"name": "Relecture", "kind": "internal", "user_ids": [str(reviewer.user_id)]}],
    )
    item = await post(client, world.boss, world.brand["id"], template_id=flow["id"])
    submitted = await submit(client, world.boss, item["id"])
    assert submitted["status"] == "in_review"
    old_revision = submitted["revision"]["id"]
    assert submitted["step"]["approvers"] == [f"user:{reviewer.user_id}"]

    edited = await edit(client, world.boss, item["id"], title="Lancement corrigé")
    assert edited["status"] == "draft"
    assert edited["step"] is None
    assert edited["revision"]["number"] == 2

    history = await walk(client, f"/v1/content/{item['id']}/history", world.boss)
    voided = [e for e in history if e["action"] == "content.approvals_voided"]
    assert len(voided) == 1
    assert voided[0]["details"]["revision_id"] == old_revision
    assert voided[0]["details"]["pending"] == [f"user:{reviewer.user_id}"]
    assert [e["action"] for e in history].index("content.approvals_voided") < [
        e["action"] for e in history
    ].index("content.edited")

    decisions = f"/v1/content/{item['id']}/decisions"
    before = await walk(client, decisions, world.boss)
    assert before == []
    late = await client.post(
        decisions,
        json={"revision_id": old_revision, "decision": "approve"},
        headers=reviewer.headers,
    )
    body = assert_problem(late, 409, "revision-superseded")
    assert body["current_revision_id"] == edited["revision"]["id"]
    assert await walk(client, decisions, world.boss) == before
    unchanged = await get(client, world.boss, f"/v1/content/{item['id']}")
    assert unchanged["status"] == "draft" and unchanged["version"] == edited["version"]

    # Submitted again, the old revision still counts for nothing; the new one does.
    again = await submit(client, world.boss, item["id"])
    assert again["round"] == 2 and again["status"] == "in_review"
    late = await client.post(
        decisions,
        json={"revision_id": old_revision, "decision": "approve"},
        headers=reviewer.headers,
    )
    assert_problem(late, 409, "revision-superseded")
    assert await walk(client, decisions, world.boss) == []
    ok = await client.post(
        decisions,
        json={"revision_id": again["revision"]["id"], "decision": "approve"},
        headers=reviewer.headers,
    )
    assert ok.status_code == 201, ok.text
    final = await get(client, world.boss, f"/v1/content/{item['id']}")
    assert final["status"] == "approved"
    [recorded] = await walk(client, decisions, world.boss)
    assert recorded["revision_id"] == again["revision"]["id"] and recorded["round"] == 2


# ---------------------------------------------------------------------------------------------
# Scheduling


async def test_scheduled_item_cannot_be_edited_until_unscheduled(client) -> None:
    world = await setup(client)
    planned = later(3)
    item = await approved_item(client, world, planned_at=iso(planned))
    scheduled = await client.post(f"/v1/content/{item['id']}/schedule", json={}, headers=world.boss)
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    assert same_instant(scheduled.json()["planned_at"], planned)

    refused = await client.patch(
        f"/v1/content/{item['id']}", json={"title": "Retouche"}, headers=world.boss
    )
    assert_problem(refused, 409, "invalid-transition")
    assert len(await revisions(client, world.boss, item["id"])) == 1
    assert (await get(client, world.boss, f"/v1/content/{item['id']}"))["status"] == "scheduled"

    twice = await client.post(f"/v1/content/{item['id']}/schedule", json={}, headers=world.boss)
    assert_problem(twice, 409, "invalid-transition")

    back = await client.post(f"/v1/content/{item['id']}/unschedule", headers=world.boss)
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "approved"
    edited = await edit(client, world.boss, item["id"], title="Retouche")
    assert edited["status"] == "draft" and edited["revision"]["number"] == 2
    again = await client.post(f"/v1/content/{item['id']}/unschedule", headers=world.boss)
    assert_problem(again, 409, "invalid-transition")
    actions = await history_actions(client, world.boss, item["id"])
    assert "content.scheduled" in actions and "content.unscheduled" in actions


@pytest.mark.parametrize(
    ("item_planned", "body"),
    [
        pytest.param(None, {}, id="no-planned-time"),
        pytest.param(-1.0, {}, id="item-planned-yesterday"),
        pytest.param(None, {"planned_at": "past"}, id="given-yesterday"),
        pytest.param(5.0, {"planned_at": "past"}, id="given-past-overrides-future"),
    ],
)
async def test_schedule_requires_a_future_time(
    client, item_planned: float | None, body: dict
) -> None:
    world = await setup(client)
    fields = {} if item_planned is None else {"planned_at": iso(later(item_planned))}
    item = await approved_item(client, world, **fields)
    if body.get("planned_at") == "past":
        body = {"planned_at": iso(later(-1))}
    refused = await client.post(f"/v1/content/{item['id']}/schedule", json=body, headers=world.boss)
    assert_problem(refused, 422, "planned-in-past")
    after = await get(client, world.boss, f"/v1/content/{item['id']}")
    assert after["status"] == "approved" and after["version"] == item["version"]


async def test_schedule_with_a_given_future_time_and_a_naive_time(client) -> None:
    world = await setup(client)
    item = await approved_item(client, world)
    naive = await client.post(
        f"/v1/content/{item['id']}/schedule",
        json={"planned_at": "2030-01-01T10:00:00"},
        headers=world.boss,
    )
    assert_problem(naive, 422, "validation-error")
    draft = await post(client, world.boss, world.brand["id"])
    not_approved = await client.post(
        f"/v1/content/{draft['id']}/schedule",
        json={"planned_at": iso(later(2))},
        headers=world.boss,
    )
    assert_problem(not_approved, 409, "invalid-transition")
    planned = later(2)
    ok = await client.post(
        f"/v1/content/{item['id']}/schedule", json={"planned_at": iso(planned)}, headers=world.boss
    )
    assert ok.status_code == 200, ok.text
    assert same_instant(ok.json()["planned_at"], planned)


# ---------------------------------------------------------------------------------------------
# Calendar


async def test_calendar_range_and_brand_filter(client) -> None:
    world = await setup(client)
    base = later(20)
    at = {name: base + timedelta(days=d) for name, d in [("a", 1), ("b", 2), ("c", 40), ("d", 2)]}
    a = await post(client, world.boss, world.brand["id"], title="A", planned_at=iso(at["a"]))
    b = await post(client, world.boss, world.brand["id"], title="B", planned_at=iso(at["b"]))
    c = await post(client, world.boss, world.brand["id"], title="C", planned_at=iso(at["c"]))
    d = await post(
        client, world.boss, world.brands["other"]["id"], title="D", planned_at=iso(at["d"])
    )
    await post(client, world.boss, world.brand["id"], title="Unplanned")

    def window(start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
        return {"from": iso(start), "to": iso(end), **extra}

    found = await walk(
        client, "/v1/calendar", world.boss, **window(base, base + timedelta(days=10))
    )
    assert [i["id"] for i in found] == [a["id"], *sorted([b["id"], d["id"]])]
    assert found[0]["title"] == "A" and found[0]["status"] == "draft"
    assert same_instant(found[0]["planned_at"], at["a"])

    paged = await walk(
        client, "/v1/calendar", world.boss, **window(base, base + timedelta(days=60)), limit=1
    )
    assert {i["id"] for i in paged} == {a["id"], b["id"], c["id"], d["id"]}
    assert len(paged) == 4

    only = await walk(
        client,
        "/v1/calendar",
        world.boss,
        **window(base, base + timedelta(days=60), brand=world.brand["id"]),
    )
    assert [i["id"] for i in only] == [a["id"], b["id"], c["id"]]

    # `from` is inclusive, `to` exclusive.
    edge = await walk(client, "/v1/calendar", world.boss, **window(at["a"], at["b"]))
    assert [i["id"] for i in edge] == [a["id"]]

    exactly = await client.get(
        "/v1/calendar", params=window(base, base + timedelta(days=92)), headers=world.boss
    )
    assert exactly.status_code == 200, exactly.text


@pytest.mark.parametrize(
    ("start_days", "end_days"),
    [
        pytest.param(0, 92.01, id="over-92-days"),
        pytest.param(0, 365, id="a-year"),
        pytest.param(0, 0, id="to-equals-from"),
        pytest.param(5, 1, id="to-before-from"),
    ],
)
async def test_calendar_refuses_bad_ranges(client, start_days: float, end_days: float) -> None:
    world = await setup(client)
    base = later(1)
    response = await client.get(
        "/v1/calendar",
        params={
            "from": iso(base + timedelta(days=start_days)),
            "to": iso(base + timedelta(days=end_days)),
        },
        headers=world.boss,
    )
    assert 400 <= response.status_code < 500, response.text
    assert_problem(response, response.status_code)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"from": "2030-01-01T00:00:00", "to": "2030-01-05T00:00:00Z"}, id="naive"),
        pytest.param({"from": "2030-01-01T00:00:00Z"}, id="missing-to"),
        pytest.param({"from": "soon", "to": "later"}, id="garbage"),
    ],
)
async def test_calendar_needs_two_aware_datetimes(client, params: dict) -> None:
    world = await setup(client)
    response = await client.get("/v1/calendar", params=params, headers=world.boss)
    assert_problem(response, 422, "validation-error")


async def test_calendar_brand_filter_of_an_unknown_brand_is_404(client) -> None:
    world = await setup(client)
    response = await client.get(
        "/v1/calendar",
        params={"from": iso(later(1)), "to": iso(later(5)), "brand": str(uuid.uuid4())},
        headers=world.boss,
    )
    assert_problem(response, 404)


# ---------------------------------------------------------------------------------------------
# Checks

FR_TEXT = "Profitez de notre offre gratuite : nouvelle publicatoin demain"


async def test_checks_flag_banned_words_and_misspellings_with_positions(client) -> None:
    world = await setup(client, guidelines={"banned_words": ["gratuite"]})
    item = await post(client, world.boss, world.brand["id"], variants={"instagram": FR_TEXT})
    checks = await get(client, world.boss, f"/v1/content/{item['id']}/checks")
    assert checks["revision_id"] == item["revision"]["id"]
    assert checks["language"] == "fr"
    assert checks["blocking"] is False
    by_kind = {w["kind"]: w for w in checks["warnings"]}
    assert set(by_kind) == {"banned_word", "spelling"}, checks["warnings"]
    banned, spelling = by_kind["banned_word"], by_kind["spelling"]
    assert banned["platform"] == "instagram"
    assert FR_TEXT[banned["start"] : banned["end"]] == "gratuite"
    assert banned["start"] == FR_TEXT.index("gratuite")
    assert FR_TEXT[spelling["start"] : spelling["end"]] == "publicatoin"
    assert "publication" in spelling["suggestions"]
    assert not any(w["blocking"] for w in checks["warnings"])


async def test_blocking_check_refuses_submission_and_item_stays_draft(client) -> None:
    world = await setup(client, guidelines={"banned_words": ["gratuite"]})
    flow = await template(client, world.boss, blocking_checks=["banned_word"])
    item = await post(
        client,
        world.boss,
        world.brand["id"],
        variants={"instagram": FR_TEXT},
        template_id=flow["id"],
    )
    checks = await get(client, world.boss, f"/v1/content/{item['id']}/checks")
    assert checks["blocking"] is True
    assert {w["kind"]: w["blocking"] for w in checks["warnings"]} == {
        "banned_word": True,
        "spelling": False,
    }

    refused = await client.post(f"/v1/content/{item['id']}/submit", json={}, headers=world.boss)
    body = assert_problem(refused, 422, "checks-failed")
    assert [w["kind"] for w in body["warnings"]] == ["banned_word"]
    after = await get(client, world.boss, f"/v1/content/{item['id']}")
    assert after["status"] == "draft"
    assert after["round"] == 0 and after["version"] == item["version"]
    assert await history_actions(client, world.boss, item["id"]) == ["content.created"]

    # Fixed, the same item goes through (the workflow has no steps: approved at once).
    await edit(client, world.boss, item["id"], variants={"instagram": "Profitez de notre offre"})
    assert (await submit(client, world.boss, item["id"]))["status"] == "approved"


# ---------------------------------------------------------------------------------------------
# Who sees what


def content_routes() -> list[tuple[str, str]]:
    """Every operation of the app on one content item, found in its route table."""
    return sorted(
        (op.method, op.path)
        for op in operations(route_table_app())
        if op.path.startswith("/v1/content/{content_id}")
    )


def bodies(revision_id: str) -> dict[tuple[str, str], Any]:
    return {
        ("PATCH", "/v1/content/{content_id}"): {"title": "Piraté"},
        ("POST", "/v1/content/{content_id}/submit"): {},
        ("POST", "/v1/content/{content_id}/schedule"): {"planned_at": iso(later(3))},
        ("POST", "/v1/content/{content_id}/unschedule"): None,
        ("POST", "/v1/content/{content_id}/publish-now"): None,
        ("POST", "/v1/content/{content_id}/decisions"): {
            "revision_id": revision_id,
            "decision": "approve",
        },
        ("POST", "/v1/content/{content_id}/comments"): {"body": "Bonjour"},
    }


async def call_every_route(
    client: httpx.AsyncClient, headers: dict[str, str], item: dict
) -> dict[str, httpx.Response]:
    payloads = bodies(item["revision"]["id"])
    answers = {}
    for method, path in content_routes():
        url = path.format(content_id=item["id"], base=1, head=1)
        if method == "GET":
            answers[f"{method} {path}"] = await client.get(url, headers=headers)
        else:
            assert (method, path) in payloads, f"no body for {method} {path}: add one"
            answers[f"{method} {path}"] = await client.request(
                method, url, json=payloads[(method, path)], headers=headers
            )
    return answers


def test_every_content_route_is_covered() -> None:
    routes = content_routes()
    assert len(routes) >= 12
    writes = {r for r in routes if r[0] != "GET"}
    assert writes <= set(bodies(str(uuid.uuid4())))


async def test_member_sees_only_brands_they_are_assigned_to(client, db, resources) -> None:
    world = await setup(client)
    member = await add_person(client, db, resources.passwords, world.agency, "member")
    await assign(client, world.boss, member, world.brand["id"])
    mine = await post(client, world.boss, world.brand["id"], title="Mine")
    theirs = await post(client, world.boss, world.brands["other"]["id"], title="Theirs")

    listed = await walk(client, f"/v1/brands/{world.brand['id']}/content", member.headers)
    assert [i["id"] for i in listed] == [mine["id"]]
    assert (await get(client, member.headers, f"/v1/content/{mine['id']}"))["title"] == "Mine"
    unassigned = await client.get(
        f"/v1/brands/{world.brands['other']['id']}/content", headers=member.headers
    )
    assert_problem(unassigned, 404)

    # Members draft and edit on their brands.
    drafted = await create(client, member.headers, world.brand["id"], title="Par le membre")
    assert drafted.status_code == 201, drafted.text
    assert drafted.json()["revision"]["author_id"] == str(member.user_id)
    edited = await edit(client, member.headers, mine["id"], title="Mine, retouché")
    assert edited["revision"]["author_id"] == str(member.user_id)
    refused = await create(client, member.headers, world.brands["other"]["id"])
    assert_problem(refused, 404)

    before = await tenant_snapshot(db, world.agency.tenant_id)
    answers = await call_every_route(client, member.headers, theirs)
    for route, response in answers.items():
        assert response.status_code == 404, (route, response.text)
        assert_problem(response, 404)
    assert await tenant_snapshot(db, world.agency.tenant_id) == before

    window = {"from": iso(later(-1)), "to": iso(later(60))}
    await edit(client, world.boss, theirs["id"], planned_at=iso(later(5)))
    await edit(client, member.headers, mine["id"], planned_at=iso(later(5)))
    calendar = await walk(client, "/v1/calendar", member.headers, **window)
    assert [i["id"] for i in calendar] == [mine["id"]]
    other = await client.get(
        "/v1/calendar",
        params={**window, "brand": world.brands["other"]["id"]},
        headers=member.headers,
    )
    assert_problem(other, 404)


async def test_client_contact_does_not_see_a_draft_never_sent(client, db, resources) -> None:
    world = await setup(client)
    contact = await add_person(
        client, db, resources.passwords, world.agency, "client", client_id=world.customer["id"]
    )
    draft = await post(client, world.boss, world.brand["id"], planned_at=iso(later(4)))
    for path in ("", "/revisions", "/checks", "/history", "/comments", "/decisions"):
        response = await client.get(f"/v1/content/{draft['id']}{path}", headers=contact.headers)
        assert_problem(response, 404, "content-not-found")
    listed = await walk(client, f"/v1/brands/{world.brand['id']}/content", contact.headers)
    assert listed == []
    calendar = await walk(
        client, "/v1/calendar", contact.headers, **{"from": iso(later(1)), "to": iso(later(9))}
    )
    assert calendar == []
    drafting = await create(client, contact.headers, world.brand["id"])
    assert drafting.status_code in (403, 404), drafting.text
    assert_problem(drafting, drafting.status_code)
    assert len(await walk(client, f"/v1/brands/{world.brand['id']}/content", world.boss)) == 1


async def test_another_agency_reaches_nothing(client, db) -> None:
    world = await setup(client)
    item = await post(client, world.boss, world.brand["id"], planned_at=iso(later(4)))
    stranger = await new_agency(client)
    before = await tenant_snapshot(db, world.agency.tenant_id)

    answers = await call_every_route(client, stranger.owner.headers, item)
    for route, response in answers.items():
        assert response.status_code == 404, (route, response.text)
        assert_problem(response, 404)
    for method in ("GET", "POST"):
        response = await client.request(
            method,
            f"/v1/brands/{world.brand['id']}/content",
            json={"title": "Intrus"} if method == "POST" else None,
            headers=stranger.owner.headers,
        )
        assert_problem(response, 404)
    calendar = await walk(
        client,
        "/v1/calendar",
        stranger.owner.headers,
        **{"from": iso(later(1)), "to": iso(later(9))},
    )
    assert calendar == []
    brand_filter = await client.get(
        "/v1/calendar",
        params={"from": iso(later(1)), "to": iso(later(9)), "brand": world.brand["id"]},
        headers=stranger.owner.headers,
    )
    assert_problem(brand_filter, 404)
    assert await tenant_snapshot(db, world.agency.tenant_id) == before


# ---------------------------------------------------------------------------------------------
# Bad input changes nothing

BAD_EDITS = [
    pytest.param({"title": "x", "colour": "red"}, id="unknown-field"),
    pytest.param({"title": ""}, id="title-empty"),
    pytest.param({"title": "   "}, id="title-blank"),
    pytest.param({"title": "x" * 201}, id="title-too-long"),
    pytest.param({"media": [{"url": "ftp://cdn.example.com/a.png", "type": "image"}]}, id="ftp"),
    pytest.param({"media": [{"url": "cdn.example.com/a.png", "type": "image"}]}, id="no-scheme"),
    pytest.param({"media": [{"url": "https://a.test/x", "type": "sticker"}]}, id="media-type"),
    pytest.param({"variants": {"Instagram": "Bonjour"}}, id="platform-uppercase"),
    pytest.param({"variants": {"insta gram": "Bonjour"}}, id="platform-space"),
    pytest.param({"variants": {"1x": "Bonjour"}}, id="platform-digit-first"),
    pytest.param({"variants": {"x" * 33: "Bonjour"}}, id="platform-too-long"),
    pytest.param({"variants": {"instagram": 12}}, id="variant-not-text"),
    pytest.param({"planned_at": "2030-01-01T10:00:00"}, id="planned-naive"),
    pytest.param({"planned_at": "demain"}, id="planned-garbage"),
    pytest.param({"labels": [""]}, id="label-empty"),
    pytest.param({"template_id": "not-a-uuid"}, id="template-not-uuid"),
]


@pytest.mark.parametrize("change", BAD_EDITS)
async def test_bad_edit_is_422_and_changes_nothing(client, change: dict) -> None:
    world = await setup(client)
    item = await post(client, world.boss, world.brand["id"])
    before = await revisions(client, world.boss, item["id"])
    response = await client.patch(f"/v1/content/{item['id']}", json=change, headers=world.boss)
    assert_problem(response, 422, "validation-error")
    assert await revisions(client, world.boss, item["id"]) == before
    assert await get(client, world.boss, f"/v1/content/{item['id']}") == item


class _Quiet:
    """Stands in for the API's logger: the tests' default console renderer spends tens of
    seconds drawing an unexpected error's traceback with its locals."""

    def exception(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
async def answering_client(app, monkeypatch: pytest.MonkeyPatch):
    """A client that sees an unexpected error as the 500 answer a caller would get."""
    import api.problems

    monkeypatch.setattr(api.problems, "log", _Quiet())
    transport = httpx.ASGITransport(app=app.state.asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.mark.parametrize("field", ["title", "variants", "media", "labels", "social_account_ids"])
async def test_null_for_a_required_field_is_422_and_changes_nothing(
    client, answering_client, field: str
) -> None:
    """`null` may clear planned_at, campaign or template_id; the other fields cannot be null."""
    world = await setup(client)
    item = await post(client, world.boss, world.brand["id"])
    before = await revisions(client, world.boss, item["id"])
    response = await answering_client.patch(
        f"/v1/content/{item['id']}", json={field: None}, headers=world.boss
    )
    assert_problem(response, 422, "validation-error")
    assert await revisions(client, world.boss, item["id"]) == before
    assert await get(client, world.boss, f"/v1/content/{item['id']}") == item


@pytest.mark.parametrize("field", ["planned_at", "campaign"])
async def test_null_clears_an_optional_field_in_a_new_revision(client, field: str) -> None:
    world = await setup(client)
    item = await post(
        client, world.boss, world.brand["id"], planned_at=iso(later(3)), campaign="Hiver"
    )
    edited = await edit(client, world.boss, item["id"], **{field: None})
    assert edited["revision"]["number"] == 2
    assert edited["revision"][field] is None and edited[field] is None


@pytest.mark.parametrize("change", BAD_EDITS)
async def test_bad_create_is_422_and_creates_nothing(client, change: dict) -> None:
    world = await setup(client)
    path = f"/v1/brands/{world.brand['id']}/content"
    body = {"title": "Lancement", **change}
    response = await client.post(path, json=body, headers=world.boss)
    assert_problem(response, 422, "validation-error")
    assert await walk(client, path, world.boss) == []


async def test_unknown_template_is_refused_and_creates_nothing(client) -> None:
    world = await setup(client)
    path = f"/v1/brands/{world.brand['id']}/content"
    response = await client.post(
        path, json={"title": "x", "template_id": str(uuid.uuid4())}, headers=world.boss
    )
    assert_field_refused(response, "/template_id", "workflow-template-not-found")
    assert await walk(client, path, world.boss) == []


BAD_ANCHORS = [
    pytest.param({"start": 3, "end": 3}, 422, "validation-error", id="end-equals-start"),
    pytest.param({"start": 5, "end": 2}, 422, "validation-error", id="end-before-start"),
    pytest.param({"start": -1, "end": 2}, 422, "validation-error", id="negative-start"),
    pytest.param({"start": 0, "end": 999}, 422, "invalid-comment", id="past-the-text"),
    pytest.param(
        {"start": 0, "end": 2, "platform": "linkedin"}, 422, "invalid-comment", id="no-such-variant"
    ),
    pytest.param(
        {"start": 0, "end": 2, "platform": "Instagram"}, 422, "validation-error", id="bad-platform"
    ),
]


@pytest.mark.parametrize(("anchor", "status", "slug"), BAD_ANCHORS)
async def test_bad_comment_anchor_changes_nothing(
    client, anchor: dict, status: int, slug: str
) -> None:
    world = await setup(client)
    item = await post(client, world.boss, world.brand["id"])
    comments = f"/v1/content/{item['id']}/comments"
    response = await client.post(
        comments,
        json={"body": "Ici", "anchor": {"revision_id": item["revision"]["id"], **anchor}},
        headers=world.boss,
    )
    assert_problem(response, status, slug)
    assert await walk(client, comments, world.boss) == []
    assert (await get(client, world.boss, f"/v1/content/{item['id']}"))["comment_count"] == 0


async def test_good_comment_anchor_quotes_the_text(client) -> None:
    world = await setup(client)
    item = await post(client, world.boss, world.brand["id"])
    response = await client.post(
        f"/v1/content/{item['id']}/comments",
        json={
            "body": "Ici",
            "anchor": {
                "revision_id": item["revision"]["id"],
                "platform": "instagram",
                "start": 0,
                "end": 7,
            },
        },
        headers=world.boss,
    )
    assert response.status_code == 201, response.text
    assert response.json()["anchor"]["quote"] == "Bonjour"


# ---------------------------------------------------------------------------------------------
# Time logged against a post


async def test_time_entry_links_to_a_content_item_of_its_brand(client, db, resources) -> None:
    world = await setup(client)
    member = await add_person(client, db, resources.passwords, world.agency, "member")
    await assign(client, world.boss, member, world.brand["id"])
    item = await post(client, world.boss, world.brand["id"])
    elsewhere = await post(client, world.boss, world.brands["other"]["id"])
    today = datetime.now(MTL).date().isoformat()

    def entry(content_item_id: str) -> dict[str, Any]:
        return {
            "brand_id": world.brand["id"],
            "date": today,
            "minutes": 30,
            "activity": "content_creation",
            "billable": False,
            "content_item_id": content_item_id,
        }

    ok = await client.post("/v1/time-entries", json=entry(item["id"]), headers=member.headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["content_item_id"] == item["id"]

    for name, target in [("unknown", str(uuid.uuid4())), ("other-brand", elsewhere["id"])]:
        response = await client.post("/v1/time-entries", json=entry(target), headers=member.headers)
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        assert_problem(response, response.status_code)

    mine = await get(client, member.headers, "/v1/time-entries")
    items = mine["items"] if isinstance(mine, dict) else mine
    assert [e["content_item_id"] for e in items] == [item["id"]]
