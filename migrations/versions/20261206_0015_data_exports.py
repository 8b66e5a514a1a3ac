"""Data exports (#21): one row per export of an agency or of one of its clients.

Tenant-owned with forced row-level security, created here with its policy. The sweep that
takes over exports left by a dead worker and deletes expired files reads across agencies
through `exports_due(due)`, which visits each agency under its own setting (like
publishing_due), so row-level security still applies to what it reads.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table, tenant_fk

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_tenant_table(
        "data_exports",
        sa.Column("client_id", uuid),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("requested_by", uuid, nullable=False),
        sa.Column("kinds_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("kinds_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_written", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("media_files", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_until", tstz),
        sa.Column("started_at", tstz),
        sa.Column("finished_at", tstz),
        sa.Column("expires_at", tstz),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("manifest", JSONB, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("clients", "client_id"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'expired')",
            name="ck_data_exports_status",
        ),
    )
    op.create_index("ix_data_exports_created", "data_exports", ["tenant_id", "created_at", "id"])
    op.create_index(
        "ix_data_exports_open",
        "data_exports",
        ["tenant_id", "status"],
        postgresql_where=sa.text("status IN ('queued', 'running', 'done')"),
    )
    op.execute(
        """
        CREATE FUNCTION exports_due(due timestamptz)
        RETURNS TABLE (due_tenant_id uuid, export_id uuid, kind text, attempts integer)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            RETURN QUERY
              -- 'run': queued (its first job lost) or running past its lease (its worker died).
              SELECT e.tenant_id, e.id, 'run'::text, e.attempts
              FROM data_exports e
              WHERE e.tenant_id = t AND (
                (e.status = 'queued' AND e.created_at <= due - interval '1 minute')
                OR (e.status = 'running' AND e.claimed_until <= due))
              UNION ALL
              SELECT e.tenant_id, e.id, 'expire'::text, e.attempts
              FROM data_exports e
              WHERE e.tenant_id = t AND e.status = 'done' AND e.expires_at <= due;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION exports_due(timestamptz) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION exports_due(timestamptz)")
    op.drop_table("data_exports")
