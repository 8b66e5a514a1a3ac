"""The one way a migration creates a tenant-owned table.

Composite key (tenant_id, id), a foreign key to tenants, row-level security enabled and
forced with the fail-closed policy, and grants to the application role — all in the same
migration, so no table ever exists without its isolation.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

APP_ROLE = os.environ.get("PASSERELLE_APP_ROLE", "passerelle_app")

TENANT_PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def create_tenant_table(name: str, *items: Any, **kwargs: Any) -> sa.Table:
    table = op.create_table(
        name,
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        *items,
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{name}"),
        **kwargs,
    )
    isolate(name)
    return table


def tenant_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    """A reference to another tenant-owned row, through the tenant: never across agencies."""
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])


def isolate(name: str) -> None:
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {name} "
        f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
    )
    grant_app(name)


def grant_app(name: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    op.execute(f"GRANT {privileges} ON {name} TO {APP_ROLE}")
