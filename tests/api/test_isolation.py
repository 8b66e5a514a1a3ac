"""Row-level security, for every tenant-owned table found in the metadata.

Nothing here lists tables by hand: every `models.py` of the domain packages is imported and
every table with a `tenant_id` column is checked, in the catalog and with real rows. A new
tenant-owned table is covered the day it is added; if no request in `seed_every_table` writes
a row into it, the data-level tests fail and say so.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from infra import tables
from infra.db import Database, set_tenant
from partners.events import EventType
from tests.support import walk
from tests.support.factories import Agency, login, new_agency, unique

tables.import_all_models()
TENANT_TABLES = walk.tenant_tables()

# The fail-closed predicate of DESIGN.md, as PostgreSQL prints it back in pg_policies.
TENANT_PREDICATE = (
    "(tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)"
)

# Permissive policies other than the tenant one widen what a row-level check lets through, so
# each must be known, read-only, and justified here.
EXTRA_PERMISSIVE_POLICIES = {
    ("memberships", "own_memberships"): (
        "a person reads their own memberships in every agency (login, agency switcher); "
        "keyed on app.user_id, SELECT only"
    ),
}


def normalised(sql: str | None) -> str:
    """Whitespace and redundant parentheses are the printer's business, not the policy's."""
    return re.sub(r"[\s()]", "", sql or "")


@asynccontextmanager
async def rolled_back(db: Database, tenant_id: uuid.UUID | None) -> AsyncIterator[AsyncSession]:
    """A transaction (with the tenant set the application's way, or none) that is always
    rolled back, so that a test's writes can never stay."""
    async with db.sessionmaker() as session:
        try:
            if tenant_id is not None:
                await set_tenant(session, tenant_id)
            yield session
        finally:
            await session.rollback()


async def scalar(session: AsyncSession, sql: str, **params: object) -> object:
    return (await session.execute(text(sql), params)).scalar_one()


# ---------------------------------------------------------------------------------------------
# Which tables are tenant-owned


def test_every_domain_models_module_is_imported():
    modules = tables.import_all_models()
    assert "tenants.models" in modules
    assert "infra.outbox" in modules
    for name in modules:
        assert name in sys.modules, name
    # Every models.py of every package, not only those of infra.tables.MODEL_PACKAGES: a
    # package left out there would leave its tables out of every check in this file.
    found = set()
    for package in walk.ROOT.iterdir():
        if package.name == "tests" or not (package / "__init__.py").exists():
            continue
        for path in sorted(package.rglob("models.py")):
            found.add(".".join(path.relative_to(walk.ROOT).with_suffix("").parts))
    assert found - set(modules) == set(), "add their packages to infra.tables.MODEL_PACKAGES"
    assert {"memberships", "events"} <= set(TENANT_TABLES)
    assert {"partner_apps", "webhook_endpoints", "webhook_deliveries"} <= set(TENANT_TABLES)


async def test_tenant_tables_in_metadata_and_database_are_the_same(db):
    async with db.session() as session:
        rows = await session.execute(
            text(
                """
                SELECT c.relname
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                  AND c.relname <> 'alembic_version'
                  AND EXISTS (
                    SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
                """
            )
        )
        in_database = {name for (name,) in rows}
    in_metadata = set(TENANT_TABLES)
    assert in_database - in_metadata == set(), "tables with tenant_id that no model declares"
    assert in_metadata - in_database == set(), "tenant-owned models whose table lacks tenant_id"


# ---------------------------------------------------------------------------------------------
# The catalog: RLS on and forced, the fail-closed policy, the key, the role


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_row_level_security_is_enabled_and_forced(db, table):
    async with db.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relname = :t"
                ),
                {"t": table},
            )
        ).one()
    assert row.relrowsecurity, f"{table}: ENABLE ROW LEVEL SECURITY is missing"
    assert row.relforcerowsecurity, f"{table}: FORCE ROW LEVEL SECURITY is missing"


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_policy_is_the_fail_closed_tenant_predicate(db, table):
    async with db.session() as session:
        policies = (
            await session.execute(
                text(
                    "SELECT policyname, permissive, roles, cmd, qual, with_check "
                    "FROM pg_policies WHERE schemaname = 'public' AND tablename = :t"
                ),
                {"t": table},
            )
        ).all()
    expected = normalised(TENANT_PREDICATE)
    tenant_policies = [
        p
        for p in policies
        if p.cmd == "ALL"
        and p.permissive == "PERMISSIVE"
        and list(p.roles) == ["public"]
        and normalised(p.qual) == expected
        and normalised(p.with_check) == expected
    ]
    assert tenant_policies, (
        f"{table}: no policy FOR ALL with USING and WITH CHECK "
        f"{TENANT_PREDICATE}; found {[tuple(p) for p in policies]}"
    )
    for p in policies:
        if p in tenant_policies or p.permissive != "PERMISSIVE":
            continue
        reason = EXTRA_PERMISSIVE_POLICIES.get((table, p.policyname))
        assert reason, f"{table}: permissive policy {p.policyname} widens the tenant policy"
        assert p.cmd == "SELECT", f"{table}: extra policy {p.policyname} must be SELECT only"
        assert "tenant_id" in p.qual or "current_setting" in p.qual, p.qual


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_primary_key_starts_with_tenant_id(db, table):
    async with db.session() as session:
        columns = (
            (
                await session.execute(
                    text(
                        """
                    SELECT a.attname
                    FROM pg_index i
                    JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                    WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary
                    ORDER BY k.ord
                    """
                    ),
                    {"t": f"public.{table}"},
                )
            )
            .scalars()
            .all()
        )
        tenant_column = (
            await session.execute(
                text(
                    "SELECT format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull "
                    "FROM pg_attribute a WHERE a.attrelid = CAST(:t AS regclass) "
                    "AND a.attname = 'tenant_id'"
                ),
                {"t": f"public.{table}"},
            )
        ).one()
    assert columns, f"{table} has no primary key"
    assert columns[0] == "tenant_id", f"{table}: primary key is {columns}"
    assert tenant_column.type == "uuid" and tenant_column.attnotnull, tuple(tenant_column)


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_foreign_keys_to_tenant_tables_carry_tenant_id(db, table):
    """A row can never point into another tenant: a reference to a tenant-owned table goes
    through (tenant_id, ...) = (tenant_id, ...)."""
    async with db.session() as session:
        fks = (
            await session.execute(
                text(
                    """
                    SELECT con.conname, ref.relname AS target,
                      ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
                            JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
                            ORDER BY k.o) AS cols,
                      ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                            JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
                            ORDER BY k.o) AS ref_cols
                    FROM pg_constraint con JOIN pg_class ref ON ref.oid = con.confrelid
                    WHERE con.contype = 'f' AND con.conrelid = CAST(:t AS regclass)
                    """
                ),
                {"t": f"public.{table}"},
            )
        ).all()
    for fk in fks:
        if fk.target not in TENANT_TABLES:
            continue
        pairs = dict(zip(fk.cols, fk.ref_cols, strict=True))
        assert pairs.get("tenant_id") == "tenant_id", (
            f"{table}.{fk.conname} references {fk.target}{tuple(fk.ref_cols)} without tenant_id"
        )


async def test_application_role_cannot_bypass_row_level_security(db):
    async with db.session() as session:
        role = (
            await session.execute(
                text(
                    "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles "
                    "WHERE rolname = current_user"
                )
            )
        ).one()
        owned = (
            await session.execute(
                text("SELECT schemaname, tablename FROM pg_tables WHERE tableowner = current_user")
            )
        ).all()
    assert role.rolname == "passerelle_app", "the tests must connect as the application role"
    assert not role.rolsuper
    assert not role.rolbypassrls
    assert owned == [], f"the application role owns {owned}"


async def test_audit_trail_is_append_only_for_the_application(db):
    async with db.session() as session:
        rights = (
            await session.execute(
                text(
                    "SELECT has_table_privilege(current_user, 'audit_events', 'INSERT'), "
                    "has_table_privilege(current_user, 'audit_events', 'UPDATE'), "
                    "has_table_privilege(current_user, 'audit_events', 'DELETE')"
                )
            )
        ).one()
    assert tuple(rights) == (True, False, False)


@pytest.mark.parametrize("table", ["content_revisions", "approval_decisions", "content_comments"])
async def test_the_approval_record_is_append_only_for_the_application(db, table):
    """Who approved which revision cannot be rewritten, even by a bug in the application."""
    async with db.session() as session:
        rights = (
            await session.execute(
                text(
                    "SELECT has_table_privilege(current_user, :t, 'INSERT'), "
                    "has_table_privilege(current_user, :t, 'UPDATE'), "
                    "has_table_privilege(current_user, :t, 'DELETE')"
                ),
                {"t": table},
            )
        ).one()
    assert tuple(rights) == (True, False, False)


# ---------------------------------------------------------------------------------------------
# Real rows: one agency cannot see, change, remove or forge another's


async def seed_directory(client, agency: Agency) -> None:
    """clients, brands, assignments (and their audit rows)."""
    headers = agency.owner.headers

    async def post(path: str, body: dict) -> str:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    client_id = await post("/v1/clients", {"name": unique("Client")})
    brand_id = await post(
        "/v1/brands", {"client_id": client_id, "name": "Brand", "slug": unique("brand")}
    )
    await post(
        "/v1/assignments",
        {
            "brand_id": brand_id,
            "user_id": str(agency.owner.user_id),
            "role": "lead",
            "start_date": "2026-01-01",
        },
    )
    await seed_time(client, agency, client_id, brand_id)
    await seed_content(client, agency, brand_id)
    await seed_invoices(client, agency, client_id)
    await seed_social(client, agency, brand_id)


async def seed_branding(client, agency: Agency) -> None:
    """agency_branding: a logo and the agency's own app address."""
    from tests.support.images import image_bytes

    response = await client.put(
        "/v1/agency/logo",
        content=image_bytes("PNG"),
        headers={**agency.owner.headers, "content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    response = await client.patch(
        "/v1/agency/branding",
        json={"app_base_url": "https://portail.agence.example"},
        headers=agency.owner.headers,
    )
    assert response.status_code == 200, response.text


async def seed_partners(client, agency: Agency, hook_url: str) -> None:
    """partner_apps, webhook_endpoints; the worker (run by seed_subscription) then writes
    webhook_deliveries for the invoice seed_invoices finalizes, and sends them to `hook_url`."""
    for path, body in (
        ("/v1/partner-apps", {"name": "Reporting tool", "scopes": ["brands:read"]}),
        (
            "/v1/webhook-endpoints",
            {"url": hook_url, "event_types": [EventType.invoice_finalized.value]},
        ),
    ):
        response = await client.post(path, json=body, headers=agency.owner.headers)
        assert response.status_code == 201, response.text


async def seed_export(client, agency: Agency) -> None:
    """data_exports: an export of the agency (queued; the worker may write it)."""
    response = await client.post("/v1/exports", json={}, headers=agency.owner.headers)
    assert response.status_code == 202, response.text


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[str]:
    """A loopback HTTP server (loopback is allowed in tests) answering 204 to every webhook;
    yields the URL to subscribe."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:[ \t]*(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        server.close()
        await server.wait_closed()


async def seed_social(client, agency: Agency, brand_id: str) -> None:
    """social_connections, social_accounts; the worker (run by seed_subscription) then writes
    social_stats_daily, and seed_anomaly a social_anomalies row."""
    started = await client.post(
        f"/v1/brands/{brand_id}/social-accounts/connect",
        params={"platform": "sandbox"},
        headers=agency.owner.headers,
    )
    assert started.status_code == 200, started.text
    url = httpx.URL(started.json()["authorization_url"])
    response = await client.get(url.path, params=dict(url.params))
    assert response.status_code == 200, response.text


async def seed_data_rights(client, agency: Agency) -> None:
    """erasures through the API; agency_closures and invoice_archives directly, since asking
    for a closure through the API would close the agency when the worker runs."""
    from datetime import date

    from infra.clock import utcnow
    from infra.settings import get_settings
    from privacy.models import AgencyClosure, InvoiceArchive

    response = await client.post(
        "/v1/erasures",
        json={"subject": "external_approver", "email": f"{unique('approver')}@example.com"},
        headers=agency.owner.headers,
    )
    assert response.status_code == 201, response.text
    db = Database.from_settings(get_settings())
    try:
        async with db.tenant_transaction(agency.tenant_id) as session:
            session.add(
                AgencyClosure(tenant_id=agency.tenant_id, step="closed", updated_at=utcnow())
            )
            session.add(
                InvoiceArchive(
                    tenant_id=agency.tenant_id,
                    invoice_id=uuid.uuid4(),
                    month=date(2026, 1, 1),
                    client_name="Client",
                    keep_until=utcnow(),
                )
            )
    finally:
        await db.dispose()


async def seed_anomaly(agency: Agency) -> None:
    """The sandbox reports yesterday's followers falling far below their usual change, and
    the sync's own anomaly check records it."""
    from datetime import timedelta

    from infra.clock import utcnow
    from infra.settings import get_settings

    yesterday = utcnow().date() - timedelta(days=1)
    db = Database.from_settings(get_settings())
    try:
        await _seed_anomaly(db, agency, yesterday)
    finally:
        await db.dispose()


async def _seed_anomaly(db: Database, agency: Agency, yesterday) -> None:
    from sqlmodel import col, select

    from social.models import SocialAccount
    from social.sync import judge_recent

    async with db.tenant_transaction(agency.tenant_id) as session:
        # The directory's account (connected first; publishing's brand has its own).
        account = (
            await session.scalars(select(SocialAccount).order_by(col(SocialAccount.connected_at)))
        ).first()
        assert account is not None
        await session.execute(
            text(
                "UPDATE social_stats_daily SET follower_change = -5000 "
                "WHERE account_id = :a AND day = :d"
            ),
            {"a": account.id, "d": yesterday},
        )
        assert await judge_recent(session, account, yesterday, None) >= 1


async def seed_invoices(client, agency: Agency, client_id: str) -> None:
    """invoices, invoice_lines, credit_notes."""
    headers = agency.owner.headers

    async def post(path: str, body: dict | None = None, status: int = 201) -> dict:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == status, response.text
        return response.json()

    invoice = await post("/v1/invoices", {"client_id": client_id, "month": "2026-01"})
    await post(
        f"/v1/invoices/{invoice['id']}/lines", {"description": "Shoot", "amount_minor": 5000}
    )
    await post(f"/v1/invoices/{invoice['id']}/finalize", status=200)
    await post(
        f"/v1/invoices/{invoice['id']}/credit-notes", {"amount_minor": 100, "reason": "Goodwill"}
    )


async def seed_subscription(client, agency: Agency) -> None:
    """subscriptions: written only by Stripe's webhooks, so made the way Stripe makes it."""
    from devtools.stripe_server import deliver
    from infra.settings import get_settings
    from tests.conftest import STRIPE_WEBHOOK_SECRET, _stripe
    from tests.support.worker import run_worker

    response = await client.post(
        "/v1/billing/checkout-session", json={"plan_id": "growth"}, headers=agency.owner.headers
    )
    assert response.status_code == 200, response.text
    session_id = response.json()["url"].rstrip("/").rsplit("/", 1)[-1]
    _, events = _stripe.complete_checkout(session_id)
    for event in events:
        delivered = await deliver(client, event, secret=STRIPE_WEBHOOK_SECRET)
        assert delivered.status_code == 200, delivered.text
    await run_worker(get_settings())


async def seed_content(client, agency: Agency, brand_id: str) -> None:
    """workflow_templates, brand_workflows, content_items, content_revisions,
    content_comments, approval_decisions, approval_links."""
    headers = agency.owner.headers

    async def post(path: str, body: dict) -> dict:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return response.json()

    owner = str(agency.owner.user_id)
    await post(
        "/v1/workflow-templates",
        {
            "name": "Owner, then the client",
            "allow_self_approval": True,
            "brand_ids": [brand_id],
            "steps": [
                {"name": "Owner", "kind": "internal", "user_ids": [owner]},
                {"name": "Client", "kind": "client", "emails": ["client@example.com"]},
            ],
        },
    )
    item = await post(f"/v1/brands/{brand_id}/content", {"title": "Hello", "variants": {"x": "Hi"}})
    await post(
        f"/v1/content/{item['id']}/comments", {"body": "Looks good", "visibility": "internal"}
    )
    submitted = await post(f"/v1/content/{item['id']}/submit", {})
    await post(
        f"/v1/content/{item['id']}/decisions",
        {"revision_id": submitted["revision"]["id"], "decision": "approve"},
    )


async def seed_time(client, agency: Agency, client_id: str, brand_id: str) -> None:
    """retainers, retainer_terms, rates, time_entries, budget_alerts (and their events),
    timesheets, timers."""
    headers = agency.owner.headers

    async def post(path: str, body: dict | None = None, status: int = 201) -> dict:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == status, response.text
        return response.json()

    await post(
        "/v1/retainers",
        {
            "client_id": client_id,
            "start_month": "2026-01",
            "monthly_minutes": 600,
            "fee_minor": 100000,
            "overage": {"policy": "hard_cap"},
        },
    )
    await post("/v1/rates", {"rate_minor": 9000})
    # 360 of 600 minutes: past the 50 % threshold.
    await post(
        "/v1/time-entries",
        {"brand_id": brand_id, "date": "2026-11-02", "minutes": 360, "activity": "moderation"},
    )
    await post(f"/v1/timesheets/{agency.owner.user_id}/2026-W45/submit", status=200)
    await post("/v1/timers/start", {"brand_id": brand_id, "activity": "crisis"})


async def seed_publishing(client, agency: Agency) -> None:
    """publications; the worker (run by seed_subscription) then writes publication_attempts
    by publishing it on a sandbox account."""
    headers = agency.owner.headers

    async def post(path: str, body: dict, status: int = 201) -> Any:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == status, response.text
        return response.json()

    made = await post("/v1/clients", {"name": unique("Publishing client")})
    brand = await post(
        "/v1/brands", {"client_id": made["id"], "name": "Published", "slug": unique("pub")}
    )
    await post(
        "/v1/workflow-templates", {"name": unique("None"), "steps": [], "brand_ids": [brand["id"]]}
    )
    await seed_social(client, agency, brand["id"])
    accounts = await client.get(f"/v1/brands/{brand['id']}/social-accounts", headers=headers)
    [account] = accounts.json()["items"]
    item = await post(
        f"/v1/brands/{brand['id']}/content",
        {"title": "Out now", "variants": {"x": "Out now"}, "social_account_ids": [account["id"]]},
    )
    await post(f"/v1/content/{item['id']}/submit", {}, status=200)
    await post(f"/v1/content/{item['id']}/publish-now", {}, status=200)


async def seed_inbox(client, agency: Agency) -> None:
    """inbox_threads and inbox_items (a comment stored as the worker stores it), inbox_actions
    (a reply), saved_replies, inbox_rules, response_policies, inbox_crises, inbox_cursors."""
    from datetime import timedelta

    from sqlmodel import col, select

    from inbox.models import Crisis, InboxCursor, InboxRule, ResponsePolicyRow, SavedReply
    from infra.clock import utcnow
    from infra.settings import get_settings
    from social.models import SocialAccount
    from tenants.models import Brand
    from tests.support.inbox import seed_item

    db = Database.from_settings(get_settings())
    try:
        async with db.tenant_transaction(agency.tenant_id) as session:
            account = (
                await session.scalars(
                    select(SocialAccount).order_by(col(SocialAccount.connected_at))
                )
            ).first()
            assert account is not None
            brand = await session.get(Brand, (agency.tenant_id, account.brand_id))
            assert brand is not None
            now = utcnow()
            session.add_all(
                [
                    SavedReply(
                        tenant_id=agency.tenant_id, name="Merci", language="fr", body="Merci!"
                    ),
                    InboxRule(
                        tenant_id=agency.tenant_id,
                        brand_id=brand.id,
                        name="Negative",
                        position=0,
                        condition={"sentiments": ["negative"]},
                        action={"priority": "high"},
                    ),
                    ResponsePolicyRow(
                        tenant_id=agency.tenant_id,
                        client_id=brand.client_id,
                        policy={
                            "first_response_minutes": 60,
                            "next_response_minutes": 120,
                            "timezone": "America/Montreal",
                        },
                    ),
                    Crisis(
                        tenant_id=agency.tenant_id,
                        brand_id=brand.id,
                        social_account_id=account.id,
                        trigger="keyword",
                        started_at=now - timedelta(hours=1),
                        last_signal_at=now,
                    ),
                    InboxCursor(
                        tenant_id=agency.tenant_id, social_account_id=account.id, polled_at=now
                    ),
                ]
            )
            account_id = account.id
        item = await seed_item(db, agency.tenant_id, account_id)
    finally:
        await db.dispose()
    response = await client.post(
        f"/v1/inbox/{item.id}/reply",
        json={"text": "Merci de nous écrire!"},
        headers=agency.owner.headers,
    )
    assert response.status_code == 202, response.text


_SEEDED: list[tuple[Agency, Agency]] = []


async def seed_every_table(client) -> tuple[Agency, Agency]:
    """Seeded once per test process: the tests here only read, or try writes that isolation
    refuses, so they can share the two agencies (seeding runs the worker, which is slow)."""
    if not _SEEDED:
        _SEEDED.append(await _seed_every_table(client))
    return _SEEDED[0]


async def _seed_every_table(client) -> tuple[Agency, Agency]:
    """Two agencies, A and B, each with at least one row in every tenant-owned table, made
    through the API the way users make them.

    When a new tenant-owned table appears, add here the requests that write its rows: the
    data-level tests fail with "seed <table> in seed_every_table" until then.
    """
    agencies = []
    async with webhook_receiver() as hook_url:
        for _ in range(2):
            # tenants, users, memberships, auth_sessions, refresh_tokens, audit_events
            agency = await new_agency(client)
            # a second login: another auth session and refresh token
            await login(client, agency.owner.email)
            # invitations, events (outbox), an invited membership, audit_events
            response = await client.post(
                "/v1/invitations",
                json={"email": f"{unique('invitee')}@example.com", "role": "member"},
                headers=agency.owner.headers,
            )
            assert response.status_code == 201, response.text
            await seed_partners(client, agency, hook_url)
            await seed_branding(client, agency)
            await seed_directory(client, agency)
            await seed_publishing(client, agency)
            await seed_subscription(client, agency)
            await seed_anomaly(agency)
            await seed_inbox(client, agency)
            await seed_export(client, agency)
            await seed_data_rights(client, agency)
            agencies.append(agency)
    return agencies[0], agencies[1]


async def require_rows(db: Database, agency: Agency, table: str) -> int:
    async with db.tenant_transaction(agency.tenant_id) as session:
        count = await scalar(
            session,
            f"SELECT count(*) FROM {walk.quoted(table)} WHERE tenant_id = :t",
            t=agency.tenant_id,
        )
    assert count, f"seed {table} in seed_every_table"
    return int(count)  # type: ignore[call-overload]


async def privileges(db: Database, table: str) -> dict[str, bool]:
    async with db.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT has_table_privilege(current_user, :t, 'INSERT') AS insert, "
                    "has_table_privilege(current_user, :t, 'UPDATE') AS update, "
                    "has_table_privilege(current_user, :t, 'DELETE') AS delete"
                ),
                {"t": f"public.{table}"},
            )
        ).one()
    return dict(row._mapping)


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_tenant_sees_only_its_own_rows(client, db, table):
    a, b = await seed_every_table(client)
    await require_rows(db, a, table)
    await require_rows(db, b, table)
    t = walk.quoted(table)
    async with db.tenant_transaction(a.tenant_id) as session:
        assert (
            await scalar(session, f"SELECT count(*) FROM {t} WHERE tenant_id = :b", b=b.tenant_id)
            == 0
        )
        assert await scalar(session, f"SELECT count(*) FROM {t}") > 0  # type: ignore[operator]
        assert (
            await scalar(session, f"SELECT count(*) FROM {t} WHERE tenant_id <> :a", a=a.tenant_id)
            == 0
        )


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_transaction_without_tenant_sees_nothing(client, db, table):
    _, b = await seed_every_table(client)
    await require_rows(db, b, table)
    async with db.engine.connect() as conn, conn.begin():
        setting = (
            await conn.execute(text("SELECT current_setting('app.tenant_id', true)"))
        ).scalar_one()
        assert setting in (None, ""), f"a fresh transaction carries tenant {setting!r}"
        count = (await conn.execute(text(f"SELECT count(*) FROM {walk.quoted(table)}"))).scalar()
        assert count == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_tenant_cannot_update_or_delete_another_tenants_rows(client, db, table):
    a, b = await seed_every_table(client)
    before = await require_rows(db, b, table)
    rights = await privileges(db, table)
    t = walk.quoted(table)
    for verb, sql in (
        ("update", f"UPDATE {t} SET tenant_id = tenant_id WHERE tenant_id = :b"),
        ("delete", f"DELETE FROM {t} WHERE tenant_id = :b"),
    ):
        async with rolled_back(db, a.tenant_id) as session:
            if rights[verb]:
                result = await session.execute(text(sql), {"b": b.tenant_id})
                assert result.rowcount == 0, f"{verb} reached {result.rowcount} rows of B"
            else:
                # The grant is withheld (the audit trail is append-only): refused even sooner.
                with pytest.raises(DBAPIError, match="permission denied"):
                    await session.execute(text(sql), {"b": b.tenant_id})
    assert await require_rows(db, b, table) == before


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_tenant_cannot_write_rows_labelled_as_another_tenant(client, db, table):
    a, b = await seed_every_table(client)
    await require_rows(db, a, table)
    before = await require_rows(db, b, table)
    rights = await privileges(db, table)
    t = walk.quoted(table)
    forge = (
        f"INSERT INTO {t} OVERRIDING SYSTEM VALUE "
        f"SELECT (jsonb_populate_record(NULL::{t}, to_jsonb(r) || "
        f"jsonb_build_object('tenant_id', CAST(:b AS text), 'id', gen_random_uuid()))).* "
        f"FROM {t} r LIMIT 1"
    )
    async with rolled_back(db, a.tenant_id) as session:
        expected = "row-level security" if rights["insert"] else "permission denied"
        with pytest.raises(DBAPIError, match=expected):
            await session.execute(text(forge), {"b": str(b.tenant_id)})
    # Moving one of A's rows into B is refused the same way (WITH CHECK on UPDATE).
    if rights["update"]:
        async with rolled_back(db, a.tenant_id) as session:
            with pytest.raises(DBAPIError, match="row-level security"):
                await session.execute(
                    text(
                        # ctid, not id: some tables are keyed by their natural key.
                        f"UPDATE {t} SET tenant_id = :b WHERE ctid = "
                        f"(SELECT ctid FROM {t} WHERE tenant_id = :a LIMIT 1)"
                    ),
                    {"a": a.tenant_id, "b": b.tenant_id},
                )
    assert await require_rows(db, b, table) == before


async def test_tenant_setting_does_not_outlive_its_transaction(client, settings):
    a, _ = await seed_every_table(client)
    single = Database(settings.sqlalchemy_url, pool_size=1)
    try:
        async with single.tenant_transaction(a.tenant_id) as session:
            first_pid = await scalar(session, "SELECT pg_backend_pid()")
            for table in TENANT_TABLES:
                seen = await scalar(session, f"SELECT count(*) FROM {walk.quoted(table)}")
                assert seen, f"seed {table} in seed_every_table"
        # Committed. The same pooled connection, a new transaction, no tenant set:
        async with single.engine.connect() as conn, conn.begin():
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert pid == first_pid, "the pool handed out another connection"
            setting = (
                await conn.execute(text("SELECT current_setting('app.tenant_id', true)"))
            ).scalar_one()
            assert setting in (None, ""), f"the tenant leaked: {setting!r}"
            for table in TENANT_TABLES:
                count = (
                    await conn.execute(text(f"SELECT count(*) FROM {walk.quoted(table)}"))
                ).scalar_one()
                assert count == 0, f"{table}: {count} rows visible without a tenant"
    finally:
        await single.dispose()
