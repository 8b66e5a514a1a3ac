"""`Database.read_transaction`, the hottest reads' transaction: read-only, scoped to the tenant
its first statement enters, and gone with the block (the next one starts clean)."""

from __future__ import annotations

import asyncpg
import pytest

from infra.db import enter_tenant_on_driver
from tests.support.factories import new_agency


async def test_a_read_transaction_writes_nothing_and_sees_only_its_tenant(client, resources):
    ours = await new_agency(client)
    await new_agency(client)  # another agency's members are in the table too
    async with resources.db.read_transaction() as connection:
        # Before entering a tenant, row-level security shows nothing.
        assert await connection.fetchval("SELECT count(*) FROM memberships") == 0
        await enter_tenant_on_driver(connection, ours.tenant_id)
        tenants = await connection.fetch("SELECT DISTINCT tenant_id FROM memberships")
        assert [row["tenant_id"] for row in tenants] == [ours.tenant_id]
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await connection.execute("UPDATE memberships SET version = version + 1")
    async with resources.db.read_transaction() as connection:
        # The tenant was set for that transaction only.
        assert await connection.fetchval("SELECT count(*) FROM memberships") == 0


async def test_a_jobs_tenant_read_transaction_sees_its_tenant_only_and_writes_nothing(
    client, resources
):
    ours = await new_agency(client)
    await new_agency(client)
    async with resources.db.tenant_read_transaction(ours.tenant_id) as connection:
        tenants = await connection.fetch("SELECT DISTINCT tenant_id FROM memberships")
        assert [row["tenant_id"] for row in tenants] == [ours.tenant_id]
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await connection.execute("UPDATE memberships SET version = version + 1")
