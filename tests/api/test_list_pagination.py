"""Every list is a page: `{items, next_cursor}`, a bounded `limit` and an opaque `cursor`.

The lists are found by walking the OpenAPI document, so a new list endpoint is held to the
convention the day it is added. The behavioural walk seeds more rows than a page for every list
that used to answer a bare array and pages through it; the older lists have their own paging
tests next to their features.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from infra.clock import utcnow
from infra.pagination import MAX_LIMIT, encode_cursor
from social.models import Anomaly
from tests.support import contract, walk
from tests.support.factories import Agency, add_person, make_brand, make_client, new_agency, unique
from tests.support.problems import assert_problem
from tests.support.statements import captured_statements
from workflows.models import ContentItem

_APP = walk.route_table_app()
_DOC = _APP.openapi()
_SCHEMAS = _DOC["components"]["schemas"]
_GETS = {op.path: op for op in walk.operations(_APP) if op.method == "GET"}


def _deref(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _ok_json_schema(path: str) -> dict[str, Any] | None:
    ok = _DOC["paths"][path]["get"]["responses"].get("200", {})
    media = ok.get("content", {}).get("application/json")
    return None if media is None else _deref(media.get("schema", {}))


def _query_params(path: str) -> dict[str, dict[str, Any]]:
    params = _DOC["paths"][path]["get"].get("parameters", [])
    return {p["name"]: p for p in params if p["in"] == "query"}


def _is_list(schema: dict[str, Any] | None) -> bool:
    """A bare array, or an object carrying its rows in `items` (a page, or meant to be one)."""
    if schema is None:
        return False
    if schema.get("type") == "array":
        return True
    items = schema.get("properties", {}).get("items")
    return items is not None and _deref(items).get("type") == "array"


GET_PATHS = sorted(path for path, item in _DOC["paths"].items() if "get" in item)
LIST_PATHS = sorted(path for path in GET_PATHS if _is_list(_ok_json_schema(path)))

# The lists that answered bare arrays before issue 15, named so that the walk above cannot
# silently lose them.
CONVERTED = {
    "/v1/portal/inbox",
    "/v1/content/{content_id}/comments",
    "/v1/content/{content_id}/revisions",
    "/v1/content/{content_id}/decisions",
    "/v1/content/{content_id}/history",
    "/v1/brands/{brand_id}/social-accounts",
    "/v1/brands/{brand_id}/anomalies",
    "/v1/workflow-templates",
    "/v1/rates",
    "/v1/webhook-endpoints",
}

# Lists that only some roles may read: path -> the role of the caller.
CALLER_ROLE = {"/v1/portal/inbox": "client"}


def _this_month() -> str:
    return utcnow().astimezone(ZoneInfo("America/Montreal")).strftime("%Y-%m")


# Query parameters a list requires, beyond those tests/support/contract.py registers.
LIST_QUERY: dict[str, Callable[[], dict[str, str]]] = {
    "/v1/team/capacity": lambda: {"month": _this_month()},
}


def _forged(*values: Any) -> str:
    """A cursor made by hand (JSON-escaped, so that it may carry a lone surrogate)."""
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Cursors nobody was given: not base64, not JSON, the wrong number of values, values of the
# wrong kind, a NUL that PostgreSQL would refuse, a lone surrogate no driver can send.
FORGED_CURSORS = [
    "%%%not-base64%%%",
    "bm90IGpzb24",  # base64 of "not json"
    encode_cursor(),
    _forged(1, 2, 3),
    *(encode_cursor(*["not-a-value"] * n) for n in range(1, 5)),
    *(encode_cursor(*["\x00"] * n) for n in range(1, 5)),
    *(_forged(*["\ud800"] * n) for n in range(1, 5)),
    encode_cursor("name", "a\x00b", uuid.uuid4()),
    _forged("name", "\ud800", str(uuid.uuid4())),
]

# Cursors of the right shape for one list, with a value that list cannot take.
FORGED_FOR: dict[str, Callable[[dict[str, str]], list[str]]] = {
    "/v1/content/{content_id}/revisions": lambda query: [
        encode_cursor("revisions", 10**12, uuid.uuid4()),
        encode_cursor("revisions", "1.5", uuid.uuid4()),
    ],
    "/v1/rates": lambda query: [
        encode_cursor("rates", 10**12, utcnow().isoformat(), uuid.uuid4()),
        encode_cursor("rates", 1, "yesterday", uuid.uuid4()),
    ],
    "/v1/portal/inbox": lambda query: [encode_cursor("inbox", "2027-01-01T00:00:00+00:00", "x")],
    "/v1/brands/{brand_id}/social-accounts": lambda query: [
        encode_cursor("accounts", "sandbox", "no-prefix", uuid.uuid4())
    ],
    "/v1/budgets": lambda query: [encode_cursor(f"risk:{query['month']}", "²")],
}


# ---------------------------------------------------------------------------------------------
# The shape, read from the OpenAPI document


def test_the_walk_finds_every_list():
    assert set(LIST_PATHS) >= CONVERTED, CONVERTED - set(LIST_PATHS)
    assert "/v1/clients" in LIST_PATHS and "/v1/clients/{client_id}" not in LIST_PATHS


@pytest.mark.parametrize("path", GET_PATHS)
def test_no_get_answers_a_bare_array(path):
    schema = _ok_json_schema(path)
    assert schema is None or schema.get("type") != "array", f"GET {path} answers a bare array"


@pytest.mark.parametrize("path", LIST_PATHS)
def test_every_list_is_a_bounded_page(path):
    schema = _ok_json_schema(path)
    assert schema is not None
    assert set(schema["properties"]) == {"items", "next_cursor"}, schema
    assert set(schema.get("required", [])) == {"items", "next_cursor"}, schema
    assert _deref(schema["properties"]["items"])["type"] == "array"
    assert {o.get("type") for o in schema["properties"]["next_cursor"]["anyOf"]} == {
        "string",
        "null",
    }

    params = _query_params(path)
    assert {"limit", "cursor"} <= set(params), f"GET {path} takes no limit/cursor"
    limit, cursor = params["limit"], params["cursor"]
    assert not limit.get("required") and not cursor.get("required")
    assert limit["schema"]["type"] == "integer"
    assert limit["schema"]["minimum"] == 1
    assert 1 <= limit["schema"]["maximum"] <= MAX_LIMIT
    assert limit["schema"]["default"] <= limit["schema"]["maximum"]
    cursor_types = {o.get("type") for o in cursor["schema"].get("anyOf", [cursor["schema"]])}
    assert "string" in cursor_types
    assert all(
        o.get("maxLength") for o in cursor["schema"].get("anyOf", []) if o.get("type") == "string"
    ), "an unbounded cursor"


# ---------------------------------------------------------------------------------------------
# Bounds and forged cursors, over HTTP


async def _caller(ctx: contract.Ctx, agency: Agency, path: str) -> dict[str, str]:
    role = CALLER_ROLE.get(path)
    if role is None:
        return agency.owner.headers
    person = await add_person(ctx.client, ctx.db, ctx.resources.passwords, agency, role)
    return person.headers


@pytest.mark.parametrize("path", LIST_PATHS)
async def test_a_list_refuses_an_unbounded_limit_and_a_forged_cursor(path, client, db, resources):
    op = _GETS[path]
    contract.require_registered(op)
    ctx = contract.Ctx(client, db, resources)
    agency = await new_agency(client)
    url = op.info.fill(await contract.path_ids(ctx, op, agency))
    headers = await _caller(ctx, agency, path)
    query = {**contract.REQUIRED_QUERY.get(path, {}), **LIST_QUERY.get(path, dict)()}
    maximum = _query_params(path)["limit"]["schema"]["maximum"]

    async def get(**params: Any) -> httpx.Response:
        return await client.get(url, params={**query, **params}, headers=headers)

    # The control: the list answers, so the refusals below are about the parameters.
    response = await get(limit=1)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items", "next_cursor"}

    for bad in (0, -1, maximum + 1, "ten", "true"):
        problem = assert_problem(await get(limit=bad), 422, "validation-error")
        assert any("limit" in e["pointer"] for e in problem["errors"]), (bad, problem)
    for forged in FORGED_CURSORS + FORGED_FOR.get(path, lambda query: [])(query):
        assert_problem(await get(cursor=forged), 400, "invalid-cursor")


# ---------------------------------------------------------------------------------------------
# Paging through more rows than a page


@dataclass
class Seeded:
    url: str
    headers: dict[str, str]
    rows: int  # at least this many rows are listed
    params: dict[str, str] = field(default_factory=dict)
    # Asserts the documented order on the whole list.
    order: Callable[[list[dict[str, Any]]], None] = lambda items: None


Seeder = Callable[[contract.Ctx, Agency], Awaitable[Seeded]]


async def _post(ctx: contract.Ctx, headers: dict[str, str], path: str, body: Any) -> dict:
    response = await ctx.client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _brand(ctx: contract.Ctx, agency: Agency) -> tuple[dict, dict]:
    customer = await make_client(ctx.client, agency.owner.headers)
    return customer, await make_brand(ctx.client, agency.owner.headers, customer["id"])


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


async def _client_review(
    ctx: contract.Ctx, agency: Agency, contacts: int, rule: str = "any"
) -> tuple[dict, list[Any]]:
    """A brand whose workflow is one client step, and the client contacts who approve it."""
    customer, brand = await _brand(ctx, agency)
    people = [
        await add_person(
            ctx.client,
            ctx.db,
            ctx.resources.passwords,
            agency,
            "client",
            client_id=uuid.UUID(customer["id"]),
        )
        for _ in range(contacts)
    ]
    step = {
        "name": "Client",
        "kind": "client",
        "rule": rule,
        "user_ids": [str(p.user_id) for p in people],
    }
    await _post(
        ctx,
        agency.owner.headers,
        "/v1/workflow-templates",
        {"name": unique("Circuit"), "steps": [step], "brand_ids": [brand["id"]]},
    )
    return brand, people


async def _submitted(ctx: contract.Ctx, agency: Agency, brand: dict) -> dict:
    headers = agency.owner.headers
    item = await _post(
        ctx,
        headers,
        f"/v1/brands/{brand['id']}/content",
        {"title": unique("Post"), "variants": {"instagram": "Bonjour"}},
    )
    response = await ctx.client.post(f"/v1/content/{item['id']}/submit", json={}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def seed_inbox(ctx: contract.Ctx, agency: Agency) -> Seeded:
    brand, (contact,) = await _client_review(ctx, agency, 1)
    items = [await _submitted(ctx, agency, brand) for _ in range(5)]
    ids = [uuid.UUID(i["id"]) for i in items]
    # Deadlines that tie and deadlines that are missing: the order must still be total.
    due = utcnow() + timedelta(days=3)
    async with ctx.db.tenant_transaction(agency.tenant_id) as session:
        for item_id, deadline in zip(
            ids, [due, due, None, None, due - timedelta(hours=1)], strict=True
        ):
            await session.execute(
                update(ContentItem)
                .where(ContentItem.id == item_id)  # type: ignore[arg-type]
                .values(next_deadline_at=deadline)
            )

    def soonest_due_first(listed: list[dict[str, Any]]) -> None:
        expected = [ids[4], *sorted(ids[:2]), *sorted(ids[2:4])]
        assert _ids(listed) == [str(i) for i in expected]

    return Seeded("/v1/portal/inbox", contact.headers, 5, order=soonest_due_first)


async def _draft(ctx: contract.Ctx, agency: Agency) -> str:
    return await contract.content_id(ctx, agency, {})


async def seed_comments(ctx: contract.Ctx, agency: Agency) -> Seeded:
    item = await _draft(ctx, agency)
    for n in range(5):
        body = {"body": f"Comment {n}", "visibility": "internal"}
        await _post(ctx, agency.owner.headers, f"/v1/content/{item}/comments", body)

    def oldest_first(listed: list[dict[str, Any]]) -> None:
        assert [c["body"] for c in listed] == [f"Comment {n}" for n in range(5)]

    return Seeded(f"/v1/content/{item}/comments", agency.owner.headers, 5, order=oldest_first)


async def _edited(ctx: contract.Ctx, agency: Agency, edits: int) -> str:
    item = await _draft(ctx, agency)
    headers = agency.owner.headers
    version = (await ctx.client.get(f"/v1/content/{item}", headers=headers)).headers["etag"]
    for n in range(edits):
        response = await ctx.client.patch(
            f"/v1/content/{item}",
            json={"title": f"Edit {n}"},
            headers={**headers, "If-Match": version},
        )
        assert response.status_code == 200, response.text
        version = response.headers["etag"]
    return item


async def seed_revisions(ctx: contract.Ctx, agency: Agency) -> Seeded:
    item = await _edited(ctx, agency, 4)

    def by_number(listed: list[dict[str, Any]]) -> None:
        assert [r["number"] for r in listed] == [1, 2, 3, 4, 5]

    return Seeded(f"/v1/content/{item}/revisions", agency.owner.headers, 5, order=by_number)


async def seed_history(ctx: contract.Ctx, agency: Agency) -> Seeded:
    item = await _edited(ctx, agency, 4)

    def oldest_first(listed: list[dict[str, Any]]) -> None:
        times = [e["created_at"] for e in listed]
        assert times == sorted(times)
        assert [e["action"] for e in listed].count("content.edited") == 4

    return Seeded(f"/v1/content/{item}/history", agency.owner.headers, 5, order=oldest_first)


async def seed_decisions(ctx: contract.Ctx, agency: Agency) -> Seeded:
    brand, contacts = await _client_review(ctx, agency, 5, rule="all")
    item = await _submitted(ctx, agency, brand)
    for person in contacts:
        body = {"revision_id": item["revision"]["id"], "decision": "approve"}
        await _post(ctx, person.headers, f"/v1/content/{item['id']}/decisions", body)

    def in_the_order_made(listed: list[dict[str, Any]]) -> None:
        assert [d["user_id"] for d in listed] == [str(p.user_id) for p in contacts]

    return Seeded(
        f"/v1/content/{item['id']}/decisions", agency.owner.headers, 5, order=in_the_order_made
    )


async def seed_templates(ctx: contract.Ctx, agency: Agency) -> Seeded:
    # Equal names (the id breaks the tie) and a long accented one (its cursor must fit).
    names = ["Même", "Même", "Même", "Alpha", "é" * 120]
    made = [
        await _post(ctx, agency.owner.headers, "/v1/workflow-templates", {"name": n, "steps": []})
        for n in names
    ]
    same = sorted(t["id"] for t in made[:3])

    def by_name_then_id(listed: list[dict[str, Any]]) -> None:
        assert [t["id"] for t in listed if t["name"] == "Même"] == same

    return Seeded("/v1/workflow-templates", agency.owner.headers, 5, order=by_name_then_id)


async def seed_rates(ctx: contract.Ctx, agency: Agency) -> Seeded:
    headers = agency.owner.headers
    first, second = [await make_client(ctx.client, headers) for _ in range(2)]
    member = await add_person(ctx.client, ctx.db, ctx.resources.passwords, agency, "member")
    for body in (
        {"rate_minor": 9000},
        {"rate_minor": 8000, "role": "member"},
        {"rate_minor": 12000, "client_id": first["id"]},
        {"rate_minor": 11000, "client_id": second["id"]},
        {"rate_minor": 10000, "client_id": first["id"], "user_id": str(member.user_id)},
    ):
        await _post(ctx, headers, "/v1/rates", body)

    def most_specific_first(listed: list[dict[str, Any]]) -> None:
        assert [(r["kind"], r["rate_minor"]) for r in listed] == [
            ("member_client", 10000),
            ("client", 12000),
            ("client", 11000),
            ("role", 8000),
            ("default", 9000),
        ]

    return Seeded("/v1/rates", headers, 5, order=most_specific_first)


async def seed_webhook_endpoints(ctx: contract.Ctx, agency: Agency) -> Seeded:
    made = [
        await _post(
            ctx,
            agency.owner.headers,
            "/v1/webhook-endpoints",
            contract.VALID_BODIES[("POST", "/v1/webhook-endpoints")](),
        )
        for _ in range(5)
    ]

    def oldest_first(listed: list[dict[str, Any]]) -> None:
        assert _ids(listed) == _ids(made)

    return Seeded("/v1/webhook-endpoints", agency.owner.headers, 5, order=oldest_first)


async def seed_social_accounts(ctx: contract.Ctx, agency: Agency) -> Seeded:
    _, brand = await _brand(ctx, agency)
    for _ in range(5):
        await contract.account_id(ctx, agency, {"brand_id": brand["id"]})

    def by_platform_and_handle(listed: list[dict[str, Any]]) -> None:
        keys = [(a["platform"], a["handle"] is None, a["handle"] or "") for a in listed]
        assert keys == sorted(keys)

    return Seeded(
        f"/v1/brands/{brand['id']}/social-accounts",
        agency.owner.headers,
        5,
        order=by_platform_and_handle,
    )


async def seed_anomalies(ctx: contract.Ctx, agency: Agency) -> Seeded:
    _, brand = await _brand(ctx, agency)
    account = uuid.UUID(await contract.account_id(ctx, agency, {"brand_id": brand["id"]}))
    today = utcnow().astimezone(ZoneInfo("America/Montreal")).date()
    found = [(4, "followers"), (2, "followers"), (3, "engagement"), (2, "engagement"), (4, "x")]
    async with ctx.db.tenant_transaction(agency.tenant_id) as session:
        for days_ago, metric in found:
            session.add(
                Anomaly(
                    tenant_id=agency.tenant_id,
                    account_id=account,
                    brand_id=uuid.UUID(brand["id"]),
                    day=today - timedelta(days=days_ago),
                    metric=metric,
                    value=100,
                    median=1000.0,
                    mad=10.0,
                    score=-9.0,
                    direction="drop",
                )
            )

    def newest_day_first_then_metric(listed: list[dict[str, Any]]) -> None:
        expected = sorted(found, key=lambda f: (f[0], f[1]))
        assert [(a["day"], a["metric"]) for a in listed] == [
            ((today - timedelta(days=d)).isoformat(), m) for d, m in expected
        ]

    window = {
        "from": (today - timedelta(days=10)).isoformat(),
        "to": (today - timedelta(days=1)).isoformat(),
    }
    return Seeded(
        f"/v1/brands/{brand['id']}/anomalies",
        agency.owner.headers,
        5,
        params=window,
        order=newest_day_first_then_metric,
    )


SEEDERS: dict[str, Seeder] = {
    "/v1/portal/inbox": seed_inbox,
    "/v1/content/{content_id}/comments": seed_comments,
    "/v1/content/{content_id}/revisions": seed_revisions,
    "/v1/content/{content_id}/decisions": seed_decisions,
    "/v1/content/{content_id}/history": seed_history,
    "/v1/brands/{brand_id}/social-accounts": seed_social_accounts,
    "/v1/brands/{brand_id}/anomalies": seed_anomalies,
    "/v1/workflow-templates": seed_templates,
    "/v1/rates": seed_rates,
    "/v1/webhook-endpoints": seed_webhook_endpoints,
}


def test_every_converted_list_has_a_seeder():
    assert set(SEEDERS) == CONVERTED


async def _pages(
    client: httpx.AsyncClient, seeded: Seeded, limit: int
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {**seeded.params, "limit": limit}
    for _ in range(100):
        response = await client.get(seeded.url, params=params, headers=seeded.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["items"])
        if page["next_cursor"] is None:
            return pages
        assert len(page["items"]) == limit, "a page short of the limit that is not the last"
        params["cursor"] = page["next_cursor"]
    raise AssertionError("the cursor never ends")


@pytest.mark.parametrize("path", sorted(SEEDERS))
async def test_paging_lists_every_row_once_in_a_stable_order(path, client, db, resources):
    ctx = contract.Ctx(client, db, resources)
    agency = await new_agency(client)
    seeded = await SEEDERS[path](ctx, agency)

    [whole] = await _pages(client, seeded, MAX_LIMIT)
    assert len(whole) >= seeded.rows
    seeded.order(whole)
    if all("id" in row for row in whole):
        assert len({row["id"] for row in whole}) == len(whole)

    for limit in (2, 1):
        pages = await _pages(client, seeded, limit)
        assert len(pages) == -(-len(whole) // limit)
        assert [row for page in pages for row in page] == whole, f"limit={limit}"

    # No query per row: a page of one and a page of everything cost the same statements.
    one, one_row = await _statements(resources, client, seeded, 1)
    every, all_rows = await _statements(resources, client, seeded, MAX_LIMIT)
    assert (one_row, all_rows) == (1, len(whole))
    assert one == every, (one, every)


async def _statements(
    resources: Any, client: httpx.AsyncClient, seeded: Seeded, limit: int
) -> tuple[int, int]:
    """How many SQL statements one page costs, and how many rows it has."""
    with captured_statements(resources) as statements:
        response = await client.get(
            seeded.url, params={**seeded.params, "limit": limit}, headers=seeded.headers
        )
    assert response.status_code == 200, response.text
    return len(statements), len(response.json()["items"])


async def test_a_row_added_while_paging_neither_repeats_nor_hides_the_others(client):
    """Keyset pages: what was listed stays listed once, even when rows arrive meanwhile."""
    agency = await new_agency(client)
    headers = agency.owner.headers
    for n in range(3):
        await client.post(
            "/v1/workflow-templates", json={"name": f"B{n}", "steps": []}, headers=headers
        )
    first = (
        await client.get("/v1/workflow-templates", params={"limit": 2}, headers=headers)
    ).json()
    # Sorts before the cursor: an OFFSET would now show "B1" again on the next page.
    await client.post("/v1/workflow-templates", json={"name": "A", "steps": []}, headers=headers)
    rest = (
        await client.get(
            "/v1/workflow-templates",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=headers,
        )
    ).json()
    names = [t["name"] for t in first["items"] + rest["items"]]
    assert names == ["B0", "B1", "B2"]
