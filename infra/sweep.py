"""Cron passes over the agencies that have due work.

A pass has two steps, always the same: list the due agencies with a query that reads only
non-tenant data (the tenants table, or a `*_due_tenants` SECURITY DEFINER function), then work
on each agency in a transaction scoped to it. One agency's failure is logged and the pass goes
on: it must not hold back the others' reminders, syncs or invoices.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from infra.db import Database
from infra.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")


async def due_tenants(
    db: Database, query: Executable, params: Mapping[str, Any] | None = None
) -> Sequence[Any]:
    """The rows of a query across tenants; its first column is the tenant id."""
    async with db.session() as session:
        rows = (await session.execute(query, params or {})).all()
        await session.commit()
    return rows


async def for_each_tenant(
    db: Database,
    tenant_ids: Iterable[uuid.UUID],
    work: Callable[[AsyncSession, uuid.UUID], Awaitable[T]],
    *,
    failed: str,
) -> list[tuple[uuid.UUID, T]]:
    """Runs `work` for each agency in its own tenant transaction, committed before the next one
    starts. Answers what each agency's work answered, for those that succeeded; a failure is
    logged as the `failed` event with the tenant id and rolls back that agency's work only."""
    done: list[tuple[uuid.UUID, T]] = []
    for tenant_id in tenant_ids:
        try:
            async with db.tenant_transaction(tenant_id) as session:
                result = await work(session, tenant_id)
        except Exception:
            log.exception(failed, tenant_id=str(tenant_id))
            continue
        done.append((tenant_id, result))
    return done
