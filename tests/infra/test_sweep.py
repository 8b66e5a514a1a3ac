"""The due-tenant sweep (infra/sweep.py): each agency's work runs in a transaction scoped to
that agency, and one agency's failure neither stops the others nor keeps its own half-done
work. Real PostgreSQL, row-level security included."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from infra.sweep import due_tenants, for_each_tenant
from tests.support.factories import new_agency


@pytest.fixture
async def three(client):
    return [(await new_agency(client)).tenant_id for _ in range(3)]


async def test_due_tenants_reads_across_tenants(db, three):
    rows = await due_tenants(
        db, text("SELECT id FROM tenants WHERE id = ANY(:ids)"), {"ids": three}
    )
    assert sorted(tenant_id for (tenant_id,) in rows) == sorted(three)


async def test_each_agency_works_inside_its_own_tenant(db, three):
    async def work(session: AsyncSession, tenant_id: uuid.UUID) -> str:
        return str(await session.scalar(text("SELECT current_setting('app.tenant_id', true)")))

    done = await for_each_tenant(db, three, work, failed="test.failed")
    assert done == [(tenant_id, str(tenant_id)) for tenant_id in three]


@pytest.mark.parametrize("failing", [0, 1, 2])
async def test_one_agency_failing_is_logged_skipped_and_rolled_back(db, three, failing):
    async def work(session: AsyncSession, tenant_id: uuid.UUID) -> uuid.UUID:
        await session.execute(
            text("UPDATE tenants SET name = 'Swept' WHERE id = :t"), {"t": tenant_id}
        )
        if tenant_id == three[failing]:
            raise RuntimeError("this agency's data is broken")
        return tenant_id

    done = await for_each_tenant(db, three, work, failed="test.sweep_failed")

    assert done == [(t, t) for i, t in enumerate(three) if i != failing]
    names = dict(
        await due_tenants(
            db, text("SELECT id, name FROM tenants WHERE id = ANY(:ids)"), {"ids": three}
        )
    )
    assert [names[t] == "Swept" for t in three] == [i != failing for i in range(3)]
