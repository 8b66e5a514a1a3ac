"""Re-encrypt stored secrets under the first TOKEN_ENCRYPTION_KEYS key, agency by agency, so
that the old key can then be removed.

Generic over what is encrypted: each domain declares its vault-encrypted columns as
`EncryptedColumns` next to its models, and the composition root (main.tokens) gathers them and
the agencies' ids. This module knows no domain."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlmodel import col, select

from infra.db import Database
from infra.models import TenantScoped
from infra.vault import TokenVault


@dataclass(frozen=True)
class EncryptedColumns:
    """A tenant-owned table's vault-encrypted columns, and which of its rows still hold a
    secret worth rotating."""

    model: type[TenantScoped]
    fields: tuple[str, ...]
    where: ColumnElement[bool] | None = None
    lock: bool = True
    """Lock the rows (FOR UPDATE) so a concurrent writer does not put back the old bytes."""


@dataclass
class Rotated:
    tenants: int = 0
    tokens: int = 0


async def rotate_tokens(
    db: Database,
    vault: TokenVault,
    tenant_ids: Iterable[uuid.UUID],
    columns: Sequence[EncryptedColumns],
) -> Rotated:
    done = Rotated()
    for tenant_id in tenant_ids:
        # One transaction per agency: a failure leaves every agency either all old or all new,
        # and both keys still decrypt while the rotation runs.
        async with db.tenant_transaction(tenant_id) as session:
            for table in columns:
                query = select(table.model).where(col(table.model.tenant_id) == tenant_id)
                if table.where is not None:
                    query = query.where(table.where)
                if table.lock:
                    query = query.with_for_update()
                for row in (await session.scalars(query)).all():
                    for field in table.fields:
                        value = getattr(row, field)
                        if value is not None:
                            setattr(row, field, vault.rotate(value))
                            done.tokens += 1
        done.tenants += 1
    return done
