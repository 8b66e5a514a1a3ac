"""The schema distributes by tenant (Citus), checked on the migrated database itself.

Citus is not installed here: these tests walk the catalog for what Citus would refuse (a unique
key without the distribution column, a foreign key across tenants, a reference table pointing
into a distributed one, a table nobody placed), and check the runbook `passerelle citus-sql`
prints from the same walk. A new table or constraint is picked up without editing this file.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from infra.db import set_tenant
from infra.distribution import TABLES, Role, Schema, citus_sql, read_schema
from main.cli import app as cli
from migrations.helpers import APP_ROLE


@pytest.fixture
async def schema(settings) -> Schema:
    engine = create_async_engine(settings.sqlalchemy_owner_url)
    try:
        async with engine.connect() as connection:
            return await read_schema(connection)
    finally:
        await engine.dispose()


def _role(table: str) -> Role | None:
    return TABLES.get(table)


async def test_every_table_has_a_declared_distribution_role(schema):
    undeclared = sorted(schema.tables - TABLES.keys())
    assert undeclared == [], f"declare a role in infra/distribution.py TABLES for {undeclared}"
    gone = sorted(TABLES.keys() - schema.tables)
    assert gone == [], f"infra/distribution.py declares tables the schema no longer has: {gone}"


async def test_tenant_tables_are_exactly_those_with_a_tenant_id(schema):
    tenant = {t for t in schema.tables if _role(t) == Role.tenant}
    assert tenant == schema.tenant_id_tables


async def test_every_unique_key_of_a_tenant_table_includes_tenant_id(schema):
    """Primary keys, unique constraints, unique indexes and exclusion constraints alike."""
    keys = [k for k in schema.unique_keys if _role(k.table) == Role.tenant]
    assert {k.table for k in keys if k.name.startswith("pk_")} == schema.tenant_id_tables
    lacking = sorted(f"{k.table}.{k.name}" for k in keys if "tenant_id" not in k.columns)
    assert lacking == []


async def test_foreign_keys_stay_within_a_tenant_or_point_at_a_reference_table(schema):
    wrong = []
    for fk in schema.foreign_keys:
        source, target = _role(fk.table), _role(fk.referenced)
        if source == Role.tenant and target == Role.tenant:
            pairs = list(zip(fk.columns, fk.referenced_columns, strict=True))
            if ("tenant_id", "tenant_id") not in pairs:
                wrong.append(f"{fk.table}.{fk.name}: across tenants")
        elif source == Role.reference and target != Role.reference:
            wrong.append(f"{fk.table}.{fk.name}: reference table into a {target} table")
        elif Role.local in (source, target) and source != target:
            wrong.append(f"{fk.table}.{fk.name}: between a local table and a {target} one")
    assert wrong == []


async def test_no_function_sets_the_tenant_with_set_config(settings):
    """Citus forwards `SET LOCAL` to its workers, never `set_config`: a function setting the
    tenant the old way would see nothing there (or be refused every insert)."""
    engine = create_async_engine(settings.sqlalchemy_owner_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT p.proname, p.prosrc FROM pg_proc p "
                    "WHERE p.pronamespace = 'public'::regnamespace"
                )
            )
            sources = {name: source for name, source in rows}
    finally:
        await engine.dispose()
    old = sorted(n for n, s in sources.items() if re.search(r"set_config\('app\.tenant_id", s))
    assert old == []
    assert "SET LOCAL app.tenant_id" in sources["enter_tenant_as_member"]
    assert "SET LOCAL app.tenant_id" in sources["outbox_due_tenants"]


async def test_the_tenant_setter_takes_only_a_uuid(db):
    """`set_tenant(uuid)` is how the application runs `SET LOCAL` with a bind parameter: a
    string that is not a uuid never reaches the statement, and the transaction sees nothing."""
    async with db.session() as session:
        with pytest.raises(DBAPIError):
            await session.execute(text("SELECT set_tenant('x''; RESET ROLE; --')"))
    async with db.session() as session, session.begin():
        await set_tenant(session, uuid.UUID("0193a8c4-0000-7000-8000-000000000001"))
        setting = await session.scalar(text("SELECT current_setting('app.tenant_id')"))
        assert setting == "0193a8c4-0000-7000-8000-000000000001"


async def test_the_tenant_set_locally_ends_with_its_transaction(db, client):
    """SET LOCAL, like set_config(..., true), is undone at commit: the pooled connection's next
    transaction starts with no tenant, so row-level security shows it nothing."""
    from tests.support.factories import new_agency

    agency = await new_agency(client)
    async with db.tenant_transaction(agency.tenant_id) as session:
        seen = await session.scalar(text("SELECT count(*) FROM memberships"))
        assert seen and seen >= 1
    async with db.engine.connect() as connection:
        # Whichever pooled connection this is, it may well be the one that just ran.
        setting = await connection.scalar(text("SELECT current_setting('app.tenant_id', true)"))
        assert not setting
        assert await connection.scalar(text("SELECT count(*) FROM memberships")) == 0


def _placed(lines: list[str]) -> list[str]:
    found = re.compile(r"create_(?:reference|distributed)_table\('([^']+)'")
    return [m.group(1) for line in lines if (m := found.search(line))]


async def test_the_runbook_places_every_table_once_parents_first(schema):
    lines = citus_sql(schema, app_role=APP_ROLE)
    placed = _placed(lines)
    expected = {t for t in schema.tables if _role(t) in (Role.reference, Role.tenant)}
    assert sorted(placed) == sorted(expected)  # each exactly once
    assert f"ALTER ROLE \"{APP_ROLE}\" SET citus.propagate_set_commands = 'local';" in lines
    # Reference tables first (tenant tables point at them), then parents before children,
    # except for the foreign keys the runbook drops first and adds back at the end.
    dropped = {m.group(1) for line in lines if (m := re.search(r'DROP CONSTRAINT "([^"]+)"', line))}
    readded = {m.group(1) for line in lines if (m := re.search(r'ADD CONSTRAINT "([^"]+)"', line))}
    assert dropped == readded
    position = {table: i for i, table in enumerate(placed)}
    for fk in schema.foreign_keys:
        if fk.table in position and fk.table != fk.referenced and fk.name not in dropped:
            assert position[fk.referenced] < position[fk.table], fk
    last_reference = max(position[t] for t in expected if _role(t) == Role.reference)
    assert all(position[t] > last_reference for t in expected if _role(t) == Role.tenant)
    # The one tenant-table trigger is named with why it is safe, and allowed.
    assert "SET citus.enable_unsafe_triggers = on;" in lines
    assert not [line for line in lines if "NOT REVIEWED" in line]


async def test_the_command_prints_the_runbook(settings, schema):
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["citus-sql"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == citus_sql(schema, app_role=APP_ROLE)
