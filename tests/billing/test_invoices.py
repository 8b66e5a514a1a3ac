"""Client invoices over HTTP: a draft per client and closed month from approved time, edited
by staff, finalized once under real concurrency (numbered, its time locked), voided or credited,
exported as CSV and PDF, pushed to the agency's connected Stripe account by the real worker
(retries, idempotency, refusals), built by the monthly cron in each agency's timezone, and
closed to other agencies and to people without the right role.

"Now" is the real clock: every invoiced month here (October 2026) has ended.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlmodel import select

from billing.invoices.jobs import build_due_invoices, push_invoice
from billing.invoices.models import Invoice
from tests.support.factories import (
    Agency,
    Person,
    add_person,
    make_client,
    new_agency,
    new_world,
    walk,
)
from tests.support.problems import assert_field_refused, assert_problem
from tests.support.worker import run_worker

MTL = ZoneInfo("America/Montreal")
OCT = "2026-10"
# October 2026, three ISO weeks that stay inside the month.
W41 = (date(2026, 10, 6), date(2026, 10, 7), date(2026, 10, 8))
W42 = (date(2026, 10, 13), date(2026, 10, 14))
W43 = (date(2026, 10, 20), date(2026, 10, 21))

FEE, INCLUDED, RATE = 100_000, 600, 6_000
# No budget alert: fewer outbox deliveries for the worker to run in the Stripe tests.
QUIET = {"thresholds": [500]}


# ---------------------------------------------------------------------------------------------
# Helpers


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def this_month() -> str:
    return datetime.now(UTC).astimezone(MTL).strftime("%Y-%m")


@dataclass
class Shop:
    """An agency (Montréal unless told) with one retainer client ("Acme") of one brand, and a
    member who works on it."""

    http: httpx.AsyncClient
    agency: Agency
    acme: dict
    brand: dict
    member: Person

    @property
    def boss(self) -> dict[str, str]:
        return self.agency.owner.headers

    @property
    def acme_id(self) -> str:
        return str(self.acme["id"])

    async def log(self, day: date, minutes: int, **extra: Any) -> dict:
        body = {
            "brand_id": self.brand["id"],
            "date": day.isoformat(),
            "minutes": minutes,
            "activity": "moderation",
            **extra,
        }
        response = await self.http.post("/v1/time-entries", json=body, headers=self.member.headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def sheet(self, day: date, action: str, headers: dict[str, str], **body: Any):
        return await self.http.post(
            f"/v1/timesheets/{self.member.user_id}/{iso_week(day)}/{action}",
            json=body or None,
            headers=headers,
        )

    async def submit(self, day: date) -> None:
        response = await self.sheet(day, "submit", self.member.headers)
        assert response.status_code == 200, response.text

    async def approve(self, day: date) -> None:
        await self.submit(day)
        response = await self.sheet(day, "approve", self.boss)
        assert response.status_code == 200, response.text

    async def entry(self, entry_id: str) -> dict:
        response = await self.http.get(f"/v1/time-entries/{entry_id}", headers=self.boss)
        assert response.status_code == 200, response.text
        return response.json()

    async def create(self, month: str = OCT, headers: dict | None = None, **body: Any):
        payload = {"client_id": self.acme_id, "month": month, **body}
        return await self.http.post("/v1/invoices", json=payload, headers=headers or self.boss)

    async def draft(self, month: str = OCT) -> dict:
        response = await self.create(month)
        assert response.status_code == 201, response.text
        return response.json()

    async def get(self, invoice_id: str) -> dict:
        response = await self.http.get(f"/v1/invoices/{invoice_id}", headers=self.boss)
        assert response.status_code == 200, response.text
        return response.json()

    async def act(self, invoice_id: str, action: str, headers: dict | None = None, **body: Any):
        return await self.http.post(
            f"/v1/invoices/{invoice_id}/{action}", json=body or None, headers=headers or self.boss
        )

    async def finalized(self, invoice_id: str) -> dict:
        response = await self.act(invoice_id, "finalize")
        assert response.status_code == 200, response.text
        return response.json()


async def assign(http, boss, brand_id: str, person: Person) -> None:
    response = await http.post(
        "/v1/assignments",
        json={
            "brand_id": brand_id,
            "user_id": str(person.user_id),
            "role": "community_manager",
            "start_date": "2026-01-01",
        },
        headers=boss,
    )
    assert response.status_code == 201, response.text


async def add_retainer(http, boss, client_id: str, **overrides: Any) -> dict:
    body = {
        "client_id": client_id,
        "start_month": "2026-01",
        "monthly_minutes": INCLUDED,
        "fee_minor": FEE,
        "overage": {"policy": "bill_at_rate", "rate_minor": RATE},
        **overrides,
    }
    response = await http.post("/v1/retainers", json=body, headers=boss)
    assert response.status_code == 201, response.text
    return response.json()


async def shop(
    http,
    db,
    resources,
    *,
    locale: str = "en",
    timezone: str | None = None,
    retainer: dict | None = None,
) -> Shop:
    world = await new_world(
        http,
        customer={
            "name": f"Acme {uuid.uuid4().hex[:6]}",
            "legal_name": "Acme Inc.",
            "billing_email": "billing@acme.example",
            "locale": locale,
            "currency": "CAD",
        },
        brands={"brand": {"name": "Acme Brand"}},
        **({"timezone": timezone} if timezone else {}),
    )
    agency, boss, acme, brand = world.agency, world.boss, world.customer, world.brand
    member = await add_person(http, db, resources.passwords, agency, "member", name="Camille")
    await assign(http, boss, brand["id"], member)
    await add_retainer(http, boss, acme["id"], **(retainer or {}))
    return Shop(http, agency, acme, brand, member)


async def billed_month(http, db, resources, **kw: Any) -> Shop:
    """Acme's October: 700 approved billable minutes (100 over the retainer)."""
    s = await shop(http, db, resources, **kw)
    await s.log(W41[0], 400)
    await s.log(W41[1], 300)
    await s.approve(W41[0])
    return s


def lines_by_kind(invoice: dict) -> dict[str, dict]:
    return {line["kind"]: line for line in invoice["lines"]}


def amounts(invoice: dict) -> list[int]:
    return [line["amount_minor"] for line in invoice["lines"]]


async def stored_invoices(db, tenant_id: uuid.UUID) -> list[Invoice]:
    async with db.tenant_transaction(tenant_id) as session:
        return list((await session.scalars(select(Invoice))).all())


def pdf_text(data: bytes) -> bytes:
    """The PDF with its compressed streams inflated, to look for words in it."""
    parts = [data]
    # `\r` is not stripped before `endstream`: it may be the compressed data's last byte.
    for match in re.finditer(rb"stream\r?\n(.*?)\nendstream", data, re.S):
        try:
            parts.append(zlib.decompressobj().decompress(match.group(1)))
        except zlib.error:
            parts.append(match.group(1))
    return b"\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Drafts


async def test_a_draft_bills_approved_billable_time_only(client, db, resources):
    s = await shop(client, db, resources)
    await s.log(W41[0], 400)
    await s.log(W41[1], 300)
    await s.log(W41[2], 50, billable=False)  # approved, but not billable
    await s.approve(W41[0])
    await s.log(W42[0], 45)
    await s.submit(W42[0])  # submitted, not approved
    await s.log(W43[0], 120)  # still open

    response = await s.create()
    assert response.status_code == 201, response.text
    invoice = response.json()
    assert response.headers["etag"] == f'"{invoice["version"]}"'
    assert invoice["status"] == "draft"
    assert invoice["number"] is None and invoice["mode"] is None
    assert invoice["month"] == OCT and invoice["currency"] == "CAD"
    assert invoice["client_id"] == s.acme_id
    assert invoice["unapproved_minutes"] == 165
    fee, overage = invoice["lines"]
    assert (fee["kind"], fee["amount_minor"], fee["position"]) == ("retainer_fee", FEE, 1)
    assert fee["description"] == "Monthly retainer — October 2026"
    assert fee["computation"]["used_minutes"] == 700
    assert fee["computation"]["included_minutes"] == INCLUDED
    assert (overage["kind"], overage["position"]) == ("overage", 2)
    assert overage["quantity_minutes"] == 100
    assert overage["unit_amount_minor"] == RATE
    assert overage["amount_minor"] == 10_000
    assert overage["computation"]["overage_minutes"] == 100
    assert overage["computation"]["available_minutes"] == INCLUDED
    assert overage["computation"]["explanation"] == (
        "11 h 40 used - 10 h 00 available (10 h 00 included + 0 h 00 rolled over) = "
        "1 h 40 x CAD 60.00/h = CAD 100.00"
    )
    assert invoice["subtotal_minor"] == invoice["total_minor"] == FEE + 10_000
    assert invoice["credited_minor"] == 0

    listed = await walk(client, "/v1/invoices", s.boss, client_id=s.acme_id)
    assert [(i["id"], i["status"], i["total_minor"]) for i in listed] == [
        (invoice["id"], "draft", FEE + 10_000)
    ]
    assert await s.get(invoice["id"]) == invoice


async def test_the_overage_line_is_rounded_half_up_and_uses_rollover(client, db, resources):
    # 600 included, up to 300 carried one month; September leaves 200 for October.
    s = await shop(
        client,
        db,
        resources,
        retainer={
            "start_month": "2026-09",
            "overage": {"policy": "bill_at_rate", "rate_minor": 9_999},
            "rollover": {"max_minutes": 300, "max_months": 1},
        },
    )
    await s.log(date(2026, 9, 15), 400)
    await s.approve(date(2026, 9, 15))
    await s.log(W41[0], 600)
    await s.log(W41[1], 207)
    await s.approve(W41[0])
    invoice = await s.draft()
    overage = lines_by_kind(invoice)["overage"]
    assert overage["quantity_minutes"] == 7  # 807 used - (600 + 200)
    assert overage["amount_minor"] == 1_167  # 7 x 99.99 / 60 = 1166.55
    assert overage["computation"]["rolled_over_minutes"] == 200
    assert overage["computation"]["available_minutes"] == 800
    assert invoice["subtotal_minor"] == FEE + 1_167


async def test_a_month_that_has_not_ended_is_not_invoiced(client, db, resources):
    s = await shop(client, db, resources)
    current = this_month()
    year, month = map(int, current.split("-"))
    following = f"{year + month // 12}-{month % 12 + 1:02d}"
    for when in (current, following):
        assert_problem(await s.create(when), 422, "month-not-closed")
    assert await walk(client, "/v1/invoices", s.boss) == []


async def test_a_second_invoice_for_the_month_is_refused(client, db, resources):
    s = await billed_month(client, db, resources)
    first = await s.draft()
    problem = assert_problem(await s.create(), 409, "invoice-exists")
    assert problem["invoice_id"] == first["id"]
    assert len(await walk(client, "/v1/invoices", s.boss)) == 1


async def test_concurrent_creates_make_one_invoice(client, db, resources):
    s = await billed_month(client, db, resources)
    responses = await asyncio.gather(s.create(), s.create())
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    made = next(r for r in responses if r.status_code == 201).json()
    refused = next(r for r in responses if r.status_code == 409)
    assert assert_problem(refused, 409, "invoice-exists")["invoice_id"] == made["id"]
    stored = await stored_invoices(db, s.agency.tenant_id)
    assert [str(i.id) for i in stored] == [made["id"]]


async def test_a_draft_for_a_client_without_time_is_the_fee(client, db, resources):
    s = await shop(client, db, resources, locale="fr-CA")
    invoice = await s.draft()
    assert [(x["kind"], x["amount_minor"]) for x in invoice["lines"]] == [("retainer_fee", FEE)]
    assert invoice["lines"][0]["description"] == "Forfait mensuel — octobre 2026"
    assert invoice["locale"] == "fr-CA"
    assert invoice["unapproved_minutes"] == 0


# ---------------------------------------------------------------------------------------------
# Editing drafts


async def test_draft_notes_and_terms_follow_if_match(client, db, resources):
    s = await billed_month(client, db, resources)
    invoice = await s.draft()
    url = f"/v1/invoices/{invoice['id']}"
    v1 = {**s.boss, "If-Match": f'"{invoice["version"]}"'}

    response = await client.patch(url, json={"notes": "Merci!", "due_days": 15}, headers=v1)
    assert response.status_code == 200, response.text
    edited = response.json()
    assert (edited["notes"], edited["due_days"]) == ("Merci!", 15)
    assert edited["version"] == invoice["version"] + 1
    assert response.headers["etag"] == f'"{edited["version"]}"'

    stale = await client.patch(url, json={"notes": "Overwritten"}, headers=v1)
    assert_problem(stale, 412, "precondition-failed")
    assert (await s.get(invoice["id"]))["notes"] == "Merci!"

    response = await client.patch(url, json={"notes": None}, headers=s.boss)
    assert response.status_code == 200, response.text
    assert response.json()["notes"] is None and response.json()["due_days"] == 15


async def test_manual_lines_are_added_edited_and_removed_with_totals(client, db, resources):
    s = await billed_month(client, db, resources)
    invoice = await s.draft()
    base = f"/v1/invoices/{invoice['id']}/lines"
    start = invoice["subtotal_minor"]

    response = await client.post(
        base, json={"description": "Photo shoot", "amount_minor": 25_000}, headers=s.boss
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        base, json={"description": "Loyalty discount", "amount_minor": -5_000}, headers=s.boss
    )
    assert response.status_code == 201, response.text
    after = response.json()
    assert [x["kind"] for x in after["lines"]] == ["retainer_fee", "overage", "manual", "manual"]
    assert [x["position"] for x in after["lines"]] == [1, 2, 3, 4]
    assert after["subtotal_minor"] == after["total_minor"] == start + 20_000
    shoot, discount = after["lines"][2], after["lines"][3]
    assert shoot["computation"]["rule"] == "entered by staff"

    response = await client.patch(
        f"{base}/{shoot['id']}",
        json={"description": "Photo shoot (half day)", "amount_minor": 12_500},
        headers=s.boss,
    )
    assert response.status_code == 200, response.text
    edited = {x["id"]: x for x in response.json()["lines"]}
    assert edited[shoot["id"]]["description"] == "Photo shoot (half day)"
    assert edited[shoot["id"]]["amount_minor"] == 12_500
    assert response.json()["subtotal_minor"] == start + 7_500

    overage = lines_by_kind(invoice)["overage"]
    response = await client.patch(
        f"{base}/{overage['id']}", json={"amount_minor": 5_000}, headers=s.boss
    )
    assert response.status_code == 200, response.text
    adjusted = {x["id"]: x for x in response.json()["lines"]}[overage["id"]]
    assert adjusted["amount_minor"] == 5_000
    assert adjusted["computation"]["overage_minutes"] == 100  # the working stays
    assert adjusted["computation"]["adjusted"]["from_minor"] == 10_000
    assert adjusted["computation"]["adjusted"]["to_minor"] == 5_000
    assert adjusted["computation"]["adjusted"]["by"] == str(s.agency.owner.user_id)

    response = await client.delete(f"{base}/{discount['id']}", headers=s.boss)
    assert response.status_code == 200, response.text
    final = response.json()
    assert discount["id"] not in {x["id"] for x in final["lines"]}
    assert final["subtotal_minor"] == final["total_minor"] == FEE + 5_000 + 12_500
    assert await s.get(invoice["id"]) == final

    response = await client.delete(f"{base}/{discount['id']}", headers=s.boss)
    assert_problem(response, 404, "invoice-line-not-found")

    response = await client.post(
        base, json={"description": "Refund", "amount_minor": -200_000}, headers=s.boss
    )
    assert response.status_code == 201, response.text
    assert response.json()["total_minor"] < 0
    assert_problem(await s.act(invoice["id"], "finalize"), 422, "negative-invoice")
    assert (await s.get(invoice["id"]))["status"] == "draft"


# ---------------------------------------------------------------------------------------------
# Finalizing


async def test_finalizing_numbers_the_invoice_and_locks_its_time(client, db, resources):
    s = await shop(client, db, resources)
    billed = [await s.log(W41[0], 400), await s.log(W41[1], 300)]
    await s.approve(W41[0])
    open_entry = await s.log(W43[0], 30)
    invoice = await s.draft()

    done = await s.finalized(invoice["id"])
    assert done["status"] == "finalized"
    assert done["number"] == "2026-00001"
    assert done["mode"] == "external" and done["stripe_status"] is None
    assert done["finalized_at"] is not None
    assert amounts(done) == amounts(invoice)
    assert done["total_minor"] == invoice["total_minor"]

    for entry in billed:
        assert (await s.entry(entry["id"]))["status"] == "invoiced"
    assert (await s.entry(open_entry["id"]))["status"] == "open"
    response = await client.patch(
        f"/v1/time-entries/{billed[0]['id']}", json={"minutes": 10}, headers=s.boss
    )
    assert_problem(response, 409, "time-entry-locked")
    response = await s.sheet(W41[0], "return", s.boss, reason="Fix a typo")
    assert_problem(response, 409, "time-entry-locked")
    assert (await s.entry(billed[0]["id"]))["minutes"] == 400

    url = f"/v1/invoices/{invoice['id']}"
    for response in (
        await client.patch(url, json={"notes": "late"}, headers=s.boss),
        await client.post(
            f"{url}/lines", json={"description": "x", "amount_minor": 1}, headers=s.boss
        ),
        await client.patch(
            f"{url}/lines/{invoice['lines'][0]['id']}", json={"amount_minor": 1}, headers=s.boss
        ),
        await client.delete(f"{url}/lines/{invoice['lines'][0]['id']}", headers=s.boss),
        await s.act(invoice["id"], "refresh"),
        await s.act(invoice["id"], "finalize"),
    ):
        assert_problem(response, 409, "invoice-not-draft")
    assert await s.get(invoice["id"]) == done


async def test_non_billable_time_is_not_marked_invoiced(client, db, resources):
    s = await shop(client, db, resources)
    billed = await s.log(W41[0], 60)
    free = await s.log(W41[1], 60, billable=False)
    await s.approve(W41[0])
    invoice = await s.draft()
    await s.finalized(invoice["id"])
    assert (await s.entry(billed["id"]))["status"] == "invoiced"
    # The invoice does not bill it: it stays approved time, not invoiced time.
    assert (await s.entry(free["id"]))["status"] == "approved"


async def test_concurrent_finalizes_issue_one_number(client, db, resources):
    s = await billed_month(client, db, resources)
    invoice = await s.draft()
    responses = await asyncio.gather(
        s.act(invoice["id"], "finalize"), s.act(invoice["id"], "finalize")
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    won = next(r for r in responses if r.status_code == 200).json()
    assert_problem(next(r for r in responses if r.status_code == 409), 409, "invoice-not-draft")
    assert won["number"] == "2026-00001"
    assert (await s.get(invoice["id"]))["number"] == "2026-00001"

    # The loser used no number: the agency's next invoice gets the next one.
    other = await make_client(client, s.boss, name="Beta", locale="en")
    await add_retainer(client, s.boss, other["id"])
    response = await client.post(
        "/v1/invoices", json={"client_id": other["id"], "month": OCT}, headers=s.boss
    )
    assert response.status_code == 201, response.text
    assert (await s.finalized(response.json()["id"]))["number"] == "2026-00002"


async def test_time_approved_after_the_draft_makes_it_stale_until_refreshed(client, db, resources):
    s = await billed_month(client, db, resources)
    invoice = await s.draft()
    response = await client.post(
        f"/v1/invoices/{invoice['id']}/lines",
        json={"description": "Ad budget", "amount_minor": 3_000},
        headers=s.boss,
    )
    assert response.status_code == 201, response.text
    late = await s.log(W42[0], 60)
    await s.approve(W42[0])

    assert_problem(await s.act(invoice["id"], "finalize"), 409, "invoice-stale")
    assert (await s.get(invoice["id"]))["status"] == "draft"
    assert (await s.entry(late["id"]))["status"] == "approved"

    response = await s.act(invoice["id"], "refresh")
    assert response.status_code == 200, response.text
    fresh = response.json()
    lines = lines_by_kind(fresh)
    assert lines["overage"]["quantity_minutes"] == 160
    assert lines["overage"]["amount_minor"] == 16_000
    assert lines["manual"]["description"] == "Ad budget"  # manual lines survive a refresh
    assert [x["kind"] for x in fresh["lines"]] == ["retainer_fee", "overage", "manual"]
    assert fresh["subtotal_minor"] == FEE + 16_000 + 3_000

    done = await s.finalized(invoice["id"])
    assert done["total_minor"] == FEE + 16_000 + 3_000
    assert (await s.entry(late["id"]))["status"] == "invoiced"


# ---------------------------------------------------------------------------------------------
# Void and credit notes


async def test_voiding_releases_the_time_for_a_new_invoice(client, db, resources):
    s = await shop(client, db, resources)
    entry = await s.log(W41[0], 700)
    await s.approve(W41[0])
    invoice = await s.draft()
    assert_problem(await s.act(invoice["id"], "void", reason="x"), 409, "invoice-not-finalized")
    await s.finalized(invoice["id"])

    response = await s.act(invoice["id"], "void", reason="Wrong client address")
    assert response.status_code == 200, response.text
    voided = response.json()
    assert voided["status"] == "void" and voided["void_reason"] == "Wrong client address"
    assert voided["voided_at"] is not None and voided["number"] == "2026-00001"
    assert (await s.entry(entry["id"]))["status"] == "approved"
    assert_problem(await s.act(invoice["id"], "void", reason="again"), 409, "invoice-not-finalized")

    replacement = await s.draft()
    assert replacement["id"] != invoice["id"]
    assert amounts(replacement) == amounts(invoice)
    again = await s.finalized(replacement["id"])
    assert again["number"] == "2026-00002"
    assert (await s.entry(entry["id"]))["status"] == "invoiced"
    statuses = {i["id"]: i["status"] for i in await walk(client, "/v1/invoices", s.boss)}
    assert statuses == {invoice["id"]: "void", replacement["id"]: "finalized"}
    assert [i["id"] for i in await walk(client, "/v1/invoices", s.boss, status="void")] == [
        invoice["id"]
    ]


async def test_credit_notes_reduce_the_total_and_never_exceed_it(client, db, resources):
    s = await billed_month(client, db, resources)
    invoice = await s.draft()
    total = invoice["total_minor"]
    response = await s.act(invoice["id"], "credit-notes", amount_minor=100, reason="Goodwill")
    assert_problem(response, 409, "invoice-not-finalized")
    await s.finalized(invoice["id"])

    response = await s.act(invoice["id"], "credit-notes", amount_minor=10_000, reason="Overage")
    assert response.status_code == 201, response.text
    credited = response.json()
    assert credited["credited_minor"] == 10_000
    assert credited["subtotal_minor"] == total
    assert credited["total_minor"] == total - 10_000
    [note] = credited["credit_notes"]
    assert (note["number"], note["amount_minor"], note["reason"]) == (
        "2026-00001-C1",
        10_000,
        "Overage",
    )
    assert note["created_by"] == str(s.agency.owner.user_id)

    problem = assert_problem(
        await s.act(invoice["id"], "credit-notes", amount_minor=total - 9_999, reason="Too much"),
        422,
        "credit-too-large",
    )
    assert problem["available_minor"] == total - 10_000
    response = await s.act(
        invoice["id"], "credit-notes", amount_minor=total - 10_000, reason="The rest"
    )
    assert response.status_code == 201, response.text
    assert response.json()["total_minor"] == 0
    assert [n["number"] for n in response.json()["credit_notes"]] == [
        "2026-00001-C1",
        "2026-00001-C2",
    ]
    response = await s.act(invoice["id"], "credit-notes", amount_minor=1, reason="One more")
    assert_problem(response, 422, "credit-too-large")
    assert (await s.get(invoice["id"]))["credited_minor"] == total


# ---------------------------------------------------------------------------------------------
# Exports


async def test_csv_export_lists_lines_credits_and_total_safely(client, db, resources):
    s = await billed_month(client, db, resources)
    invoice = await s.draft()
    response = await client.post(
        f"/v1/invoices/{invoice['id']}/lines",
        json={"description": '=HYPERLINK("http://evil.example","Click")', "amount_minor": 500},
        headers=s.boss,
    )
    assert response.status_code == 201, response.text
    await s.finalized(invoice["id"])
    response = await s.act(invoice["id"], "credit-notes", amount_minor=1_000, reason="-Sorry")
    assert response.status_code == 201, response.text

    response = await client.get(f"/v1/invoices/{invoice['id']}/csv", headers=s.boss)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="invoice-2026-00001.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["kind"] for r in rows] == [
        "retainer_fee",
        "overage",
        "manual",
        "credit_note",
        "total",
    ]
    assert {r["invoice_number"] for r in rows} == {"2026-00001"}
    assert {r["month"] for r in rows} == {OCT}
    assert [int(r["amount_minor"]) for r in rows] == [FEE, 10_000, 500, -1_000, FEE + 9_500]
    assert rows[1]["quantity_minutes"] == "100" and rows[1]["unit_amount_minor"] == str(RATE)
    assert rows[2]["description"] == '\'=HYPERLINK("http://evil.example","Click")'
    assert rows[3]["description"] == "2026-00001-C1: -Sorry"
    for row in rows:
        assert row["description"][:1] not in ("=", "+", "-", "@"), row


async def test_csv_export_neutralises_a_formula_in_the_client_name(client, db, resources):
    s = await shop(client, db, resources)
    response = await client.patch(
        f"/v1/clients/{s.acme_id}", json={"name": "=cmd|' /C calc'!A0"}, headers=s.boss
    )
    assert response.status_code == 200, response.text
    invoice = await s.draft()
    response = await client.get(f"/v1/invoices/{invoice['id']}/csv", headers=s.boss)
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text)))[1:]
    assert rows and all(row[1] == "'=cmd|' /C calc'!A0" for row in rows), rows
    for row in rows:
        assert all(cell[:1] not in ("=", "+", "@") for cell in row), row


async def test_pdf_export_speaks_the_clients_language(client, db, resources):
    french = await billed_month(client, db, resources, locale="fr-CA")
    invoice = await french.draft()
    response = await client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=french.boss)
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"%PDF")
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="invoice-draft-2026-10.pdf"' in response.headers["content-disposition"]
    text = pdf_text(response.content)
    assert b"Facture" in text and b"BROUILLON" in text

    await french.finalized(invoice["id"])
    response = await client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=french.boss)
    assert response.content.startswith(b"%PDF")
    assert 'filename="invoice-2026-00001.pdf"' in response.headers["content-disposition"]
    text = pdf_text(response.content)
    assert b"Facture 2026-00001" in text and b"Total \xe0 payer" in text
    assert b"octobre 2026" in text and b"BROUILLON" not in text

    english = await billed_month(client, db, resources, locale="en")
    other = await english.draft()
    response = await client.get(f"/v1/invoices/{other['id']}/pdf", headers=english.boss)
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert b"Invoice" in text and b"October 2026" in text and b"Facture" not in text


# ---------------------------------------------------------------------------------------------
# Stripe


async def connect(s: Shop, stripe_server) -> str:
    account = stripe_server.add_account()
    response = await s.http.put(
        "/v1/billing/connected-account", json={"account_id": account}, headers=s.boss
    )
    assert response.status_code == 200, response.text
    return account


async def test_a_finalized_invoice_is_made_on_the_connected_account(
    client, db, resources, settings, stripe_server, mailbox
):
    s = await billed_month(client, db, resources, retainer=QUIET)
    account = await connect(s, stripe_server)
    invoice = await s.draft()
    done = await s.finalized(invoice["id"])
    assert (done["mode"], done["stripe_status"]) == ("stripe", "pending")

    await run_worker(settings)

    synced = await s.get(invoice["id"])
    assert synced["stripe_status"] == "synced" and synced["stripe_error"] is None
    [made] = stripe_server.invoices(account=account)
    assert stripe_server.invoices() == []  # not on the platform account
    assert synced["stripe_invoice_id"] == made["id"]
    assert synced["stripe_hosted_url"] == made["hosted_invoice_url"]
    assert made["hosted_invoice_url"]
    assert made["status"] == "open"
    assert made["currency"] == "cad"
    assert made["collection_method"] == "send_invoice"
    assert made["metadata"]["passerelle_invoice_id"] == invoice["id"]
    assert made["metadata"]["number"] == "2026-00001"
    assert [line["amount"] for line in made["lines"]["data"]] == amounts(invoice)
    assert [line["description"] for line in made["lines"]["data"]] == [
        x["description"] for x in invoice["lines"]
    ]
    assert made["total"] == invoice["total_minor"]
    [customer] = stripe_server.customers(account=account)
    assert made["customer"] == customer["id"]
    assert customer["name"] == "Acme Inc." and customer["email"] == "billing@acme.example"
    for call in stripe_server.calls_to("POST", "/v1/"):
        assert call.account == account and call.idempotency_key, call


async def test_stripe_outages_are_retried_without_duplicates(
    client, db, resources, settings, stripe_server, mailbox
):
    s = await billed_month(client, db, resources, retainer=QUIET)
    account = await connect(s, stripe_server)
    invoice = await s.draft()
    response = await client.post(
        f"/v1/invoices/{invoice['id']}/lines",
        json={"description": "Shoot", "amount_minor": 7_000},
        headers=s.boss,
    )
    assert response.status_code == 201, response.text
    invoice = response.json()
    await s.finalized(invoice["id"])
    stripe_server.fail_next(3)

    await run_worker(settings)

    synced = await s.get(invoice["id"])
    assert synced["stripe_status"] == "synced" and synced["stripe_error"] is None
    [made] = stripe_server.invoices(account=account)
    assert made["status"] == "open"
    assert sorted(line["amount"] for line in made["lines"]["data"]) == sorted(amounts(invoice))
    assert len(stripe_server.customers(account=account)) == 1
    posts = stripe_server.calls_to("POST", "/v1/")
    assert [c.status for c in posts[:3]] == [500, 500, 500]
    assert len(stripe_server.calls_to("POST", "/v1/invoices/")) >= 1
    created_items = [
        c for c in stripe_server.calls_to("POST", "/v1/invoiceitems") if c.status == 200
    ]
    assert len({c.params["metadata"]["passerelle_line_id"] for c in created_items}) == 3


async def test_a_push_retried_after_a_lost_write_makes_nothing_twice(
    client, db, resources, settings, stripe_server, mailbox
):
    s = await billed_month(client, db, resources, retainer=QUIET)
    account = await connect(s, stripe_server)
    invoice = await s.draft()
    await s.finalized(invoice["id"])
    await run_worker(settings)
    [first] = stripe_server.invoices(account=account)
    made_before = len(stripe_server.calls)

    # As if the worker died after Stripe made the invoice, before we stored what it made.
    async with db.tenant_transaction(s.agency.tenant_id) as session:
        row = await session.get(Invoice, (s.agency.tenant_id, uuid.UUID(invoice["id"])))
        assert row is not None
        row.stripe_invoice_id, row.stripe_status, row.stripe_hosted_url = None, "pending", None
        session.add(row)
    ctx = {"db": db, "settings": settings, "job_try": 1}
    assert await push_invoice(ctx, str(s.agency.tenant_id), invoice["id"]) == "synced"

    [again] = stripe_server.invoices(account=account)
    assert again["id"] == first["id"]
    assert [line["amount"] for line in again["lines"]["data"]] == amounts(invoice)
    assert len(stripe_server.customers(account=account)) == 1
    retried = stripe_server.calls[made_before:]
    assert retried and all(c.replayed for c in retried if c.method == "POST"), retried
    synced = await s.get(invoice["id"])
    assert synced["stripe_status"] == "synced"
    assert synced["stripe_invoice_id"] == first["id"]
    assert synced["stripe_hosted_url"] == first["hosted_invoice_url"]


async def test_a_stripe_refusal_is_shown_on_the_invoice(
    client, db, resources, settings, stripe_server, mailbox
):
    s = await billed_month(client, db, resources, retainer=QUIET)
    account = await connect(s, stripe_server)
    invoice = await s.draft()
    await s.finalized(invoice["id"])
    stripe_server.fail_next(1, status=400)

    await run_worker(settings)

    failed = await s.get(invoice["id"])
    assert failed["stripe_status"] == "failed"
    assert "Injected failure" in failed["stripe_error"]
    assert failed["status"] == "finalized" and failed["number"] == "2026-00001"
    assert stripe_server.invoices(account=account) == []
    assert len(stripe_server.calls_to("POST", "/v1/")) == 1  # a refusal is not retried
    listed = await walk(client, "/v1/invoices", s.boss)
    assert [i["stripe_status"] for i in listed] == ["failed"]


async def test_without_a_connected_account_invoices_are_external(
    client, db, resources, settings, stripe_server, mailbox
):
    s = await billed_month(client, db, resources, retainer=QUIET)
    response = await client.put(
        "/v1/billing/connected-account", json={"account_id": "acct_unknown1"}, headers=s.boss
    )
    assert_problem(response, 422, "unknown-stripe-account")
    invoice = await s.draft()
    done = await s.finalized(invoice["id"])
    assert (done["mode"], done["stripe_status"]) == ("external", None)
    await run_worker(settings)
    after = await s.get(invoice["id"])
    assert after["stripe_status"] is None and after["stripe_invoice_id"] is None
    assert stripe_server.calls_to("POST", "/v1/invoices") == []


# ---------------------------------------------------------------------------------------------
# The monthly cron


async def cron_agency(client, timezone: str) -> tuple[Agency, list[dict]]:
    """An agency with two retainer clients, one client without, and one whose retainer ended."""
    agency = await new_agency(client, timezone=timezone)
    boss = agency.owner.headers
    clients = [await make_client(client, boss, locale="fr-CA") for _ in range(4)]
    await add_retainer(client, boss, clients[0]["id"])
    await add_retainer(client, boss, clients[1]["id"], fee_minor=55_000)
    await add_retainer(client, boss, clients[3]["id"], end_month="2026-09")
    return agency, clients


async def test_the_cron_builds_one_draft_per_retainer_client_on_the_1st(client, db, resources):
    paris, clients = await cron_agency(client, "Europe/Paris")
    first_in_paris = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 03:00 in Paris

    await build_due_invoices(db, first_in_paris)

    listed = await walk(client, "/v1/invoices", paris.owner.headers)
    assert sorted((i["client_id"], i["month"], i["status"], i["total_minor"]) for i in listed) == (
        sorted(
            [
                (clients[0]["id"], OCT, "draft", FEE),
                (clients[1]["id"], OCT, "draft", 55_000),
            ]
        )
    )
    assert await build_due_invoices(db, first_in_paris) == []
    later_that_night = datetime(2026, 11, 1, 3, 30, tzinfo=UTC)  # still Oct 31 in Montréal
    assert await build_due_invoices(db, later_that_night) == []
    assert len(await walk(client, "/v1/invoices", paris.owner.headers)) == 2


async def test_the_cron_waits_for_the_1st_in_the_agencys_timezone(client, db, resources):
    montreal, clients = await cron_agency(client, "America/Montreal")
    first_in_utc = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 22:00 on Oct 31 in Montréal

    await build_due_invoices(db, first_in_utc)
    assert await walk(client, "/v1/invoices", montreal.owner.headers) == []

    await build_due_invoices(db, datetime(2026, 11, 1, 12, 0, tzinfo=UTC))  # 07:00 in Montréal
    listed = await walk(client, "/v1/invoices", montreal.owner.headers)
    assert sorted(i["client_id"] for i in listed) == sorted([clients[0]["id"], clients[1]["id"]])
    assert {i["month"] for i in listed} == {OCT}


async def test_the_cron_does_not_rebuild_a_voided_or_existing_invoice(client, db, resources):
    s = await shop(client, db, resources, timezone="Europe/Paris")  # no time: the fee alone
    invoice = await s.draft()
    await s.finalized(invoice["id"])
    response = await s.act(invoice["id"], "void", reason="Redo by hand")
    assert response.status_code == 200, response.text
    beta = await make_client(client, s.boss, name="Beta")
    await add_retainer(client, s.boss, beta["id"])
    response = await client.post(
        "/v1/invoices", json={"client_id": beta["id"], "month": OCT}, headers=s.boss
    )
    assert response.status_code == 201, response.text
    betas = response.json()

    await build_due_invoices(db, datetime(2026, 11, 1, 9, 0, tzinfo=UTC))

    listed = await walk(client, "/v1/invoices", s.boss)
    assert sorted((i["id"], i["status"]) for i in listed) == sorted(
        [(invoice["id"], "void"), (betas["id"], "draft")]
    )


# ---------------------------------------------------------------------------------------------
# Isolation, roles and bad input


def invoice_requests(invoice_id: str, line_id: str) -> list[tuple[str, str, dict | None]]:
    base = f"/v1/invoices/{invoice_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"notes": "x"}),
        ("POST", f"{base}/lines", {"description": "x", "amount_minor": 1}),
        ("PATCH", f"{base}/lines/{line_id}", {"amount_minor": 1}),
        ("DELETE", f"{base}/lines/{line_id}", None),
        ("POST", f"{base}/refresh", None),
        ("POST", f"{base}/finalize", None),
        ("POST", f"{base}/void", {"reason": "x"}),
        ("POST", f"{base}/credit-notes", {"amount_minor": 1, "reason": "x"}),
        ("GET", f"{base}/csv", None),
        ("GET", f"{base}/pdf", None),
    ]


async def test_another_agencys_invoice_is_not_found_on_every_route(client, db, resources):
    s = await billed_month(client, db, resources)
    invoice = await s.draft()
    other = await new_agency(client)
    for method, url, body in invoice_requests(invoice["id"], invoice["lines"][0]["id"]):
        response = await client.request(method, url, json=body, headers=other.owner.headers)
        assert_problem(response, 404, "invoice-not-found")
    assert await walk(client, "/v1/invoices", other.owner.headers) == []
    response = await client.post(
        "/v1/invoices", json={"client_id": s.acme_id, "month": OCT}, headers=other.owner.headers
    )
    assert_field_refused(response, "/client_id", "client-not-found")
    assert await s.get(invoice["id"]) == invoice


async def test_members_and_client_contacts_have_no_access(client, db, resources):
    s = await billed_month(client, db, resources)
    invoice = await s.draft()
    contact = await add_person(
        client, db, resources.passwords, s.agency, "client", client_id=uuid.UUID(s.acme_id)
    )
    for person in (s.member, contact):
        assert_problem(await client.get("/v1/invoices", headers=person.headers), 403)
        assert_problem(await s.create(headers=person.headers), 403)
        for method, url, body in invoice_requests(invoice["id"], invoice["lines"][0]["id"]):
            response = await client.request(method, url, json=body, headers=person.headers)
            assert response.status_code in (403, 404), (method, url, response.text)
            assert_problem(response, response.status_code)
            assert response.status_code == 403, (method, url, response.text)
    assert await s.get(invoice["id"]) == invoice


async def test_managers_prepare_invoices_but_do_not_issue_them(client, db, resources):
    s = await billed_month(client, db, resources)
    manager = await add_person(client, db, resources.passwords, s.agency, "manager")
    h = manager.headers
    response = await s.create(headers=h)
    assert response.status_code == 201, response.text
    invoice = response.json()
    url = f"/v1/invoices/{invoice['id']}"
    assert (await client.patch(url, json={"notes": "Prepared"}, headers=h)).status_code == 200
    response = await client.post(
        f"{url}/lines", json={"description": "Extra", "amount_minor": 900}, headers=h
    )
    assert response.status_code == 201, response.text
    assert (await s.act(invoice["id"], "refresh", headers=h)).status_code == 200
    assert (await client.get(f"{url}/csv", headers=h)).status_code == 200

    assert_problem(await s.act(invoice["id"], "finalize", headers=h), 403)
    assert (await s.get(invoice["id"]))["status"] == "draft"
    await s.finalized(invoice["id"])
    assert_problem(await s.act(invoice["id"], "void", headers=h, reason="x"), 403)
    response = await s.act(invoice["id"], "credit-notes", headers=h, amount_minor=1, reason="x")
    assert_problem(response, 403)
    final = await s.get(invoice["id"])
    assert (final["status"], final["credited_minor"]) == ("finalized", 0)


async def test_bad_input_is_refused(client, db, resources):
    s = await billed_month(client, db, resources)
    for month in ("2026-13", "2026-00", "2026-1", "October", ""):
        assert_problem(await s.create(month), 422, "validation-error")
    assert_problem(await s.create(extra="field"), 422, "validation-error")
    response = await client.post(
        "/v1/invoices", json={"client_id": str(uuid.uuid4()), "month": OCT}, headers=s.boss
    )
    assert_field_refused(response, "/client_id", "client-not-found")
    response = await client.post(
        "/v1/invoices",
        content=b'{"client_id": ',
        headers={**s.boss, "content-type": "application/json"},
    )
    assert_problem(response, 400, "malformed-json")
    response = await client.post("/v1/invoices", json=[{"month": OCT}], headers=s.boss)
    assert_problem(response, 422, "validation-error")
    assert await walk(client, "/v1/invoices", s.boss) == []

    invoice = await s.draft()
    await s.finalized(invoice["id"])
    for amount in (-100, 0, 1.5, "ten", None):
        response = await s.act(invoice["id"], "credit-notes", amount_minor=amount, reason="x")
        assert_problem(response, 422, "validation-error")
    response = await s.act(invoice["id"], "credit-notes", amount_minor=100, reason="   ")
    assert_problem(response, 422, "validation-error")
    assert (await s.get(invoice["id"]))["credit_notes"] == []

    assert_problem(
        await client.get(f"/v1/invoices/{uuid.uuid4()}", headers=s.boss), 404, "invoice-not-found"
    )
    assert_problem(await client.get("/v1/invoices/12", headers=s.boss), 422, "validation-error")
    response = await client.get("/v1/invoices", params={"month": "2026-13"}, headers=s.boss)
    assert_problem(response, 422, "validation-error")
    response = await client.get("/v1/invoices", params={"status": "paid"}, headers=s.boss)
    assert_problem(response, 422, "validation-error")
