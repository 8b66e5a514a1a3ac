"""Publishing: publications (one per target account of a scheduled item) and their attempts.

Both tenant-owned with forced row-level security, created here with their policy. The due
sweeper reads across agencies through `publishing_due(due)`, which visits each agency under
its own setting (like outbox_due_tenants), so RLS still applies to what it reads.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table, tenant_fk

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)

STATUSES = "'scheduled', 'publishing', 'published', 'failed', 'unconfirmed', 'canceled'"


def upgrade() -> None:
    create_tenant_table(
        "publications",
        sa.Column("content_item_id", uuid, nullable=False),
        sa.Column("revision_id", uuid, nullable=False),
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("social_account_id", uuid, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("planned_at", tstz, nullable=False),
        sa.Column("deadline_at", tstz, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="scheduled"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("current_attempt_id", uuid),
        sa.Column("claimed_until", tstz),
        sa.Column("next_attempt_at", tstz),
        sa.Column("state", JSONB, nullable=False, server_default="{}"),
        sa.Column("external_post_id", sa.String(200)),
        sa.Column("permalink", sa.String(2000)),
        sa.Column("started_at", tstz),
        sa.Column("published_at", tstz),
        sa.Column("lateness_seconds", sa.Float),
        sa.Column("error_code", sa.String(40)),
        sa.Column("error", sa.Text),
        sa.Column("unconfirmed_at", tstz),
        sa.Column("next_check_at", tstz),
        sa.Column("checks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("impressions", sa.Integer),
        sa.Column("reach", sa.Integer),
        sa.Column("engagements", sa.Integer),
        sa.Column("video_views", sa.Integer),
        sa.Column("figures_at", tstz),
        sa.Column("next_figures_at", tstz),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("content_items", "content_item_id"),
        tenant_fk("content_revisions", "revision_id"),
        tenant_fk("brands", "brand_id"),
        tenant_fk("social_accounts", "social_account_id"),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_publications_status"),
    )
    op.create_index(
        "uq_publications_target",
        "publications",
        ["tenant_id", "content_item_id", "revision_id", "social_account_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'canceled'"),
    )
    op.create_index("ix_publications_planned", "publications", ["tenant_id", "planned_at", "id"])
    op.create_index("ix_publications_item", "publications", ["tenant_id", "content_item_id"])
    # What the sweeper looks for: open work by time, per agency.
    op.create_index(
        "ix_publications_open",
        "publications",
        ["tenant_id", "status", "planned_at"],
        postgresql_where=sa.text("status IN ('scheduled', 'publishing', 'unconfirmed')"),
    )
    # The month's top posts of a client's brands (the report).
    op.create_index(
        "ix_publications_brand_published",
        "publications",
        ["tenant_id", "brand_id", "published_at"],
        postgresql_where=sa.text("status = 'published'"),
    )
    op.create_index(
        "ix_publications_figures",
        "publications",
        ["tenant_id", "next_figures_at"],
        postgresql_where=sa.text("next_figures_at IS NOT NULL"),
    )

    create_tenant_table(
        "publication_attempts",
        sa.Column("publication_id", uuid, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("started_at", tstz, nullable=False),
        sa.Column("create_started_at", tstz),
        sa.Column("finished_at", tstz),
        sa.Column("outcome", sa.String(24)),
        sa.Column("error", sa.Text),
        tenant_fk("publications", "publication_id"),
    )
    op.create_index(
        "ix_publication_attempts_pub",
        "publication_attempts",
        ["tenant_id", "publication_id", "number"],
    )

    # Both arguments are this file's constants or the caller's timestamp parameter.
    op.execute(
        """
        CREATE FUNCTION publishing_due(due timestamptz, horizon timestamptz)
        RETURNS TABLE (
          due_tenant_id uuid, publication_id uuid, kind text, at timestamptz,
          planned_at timestamptz, n integer
        )
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            RETURN QUERY
              SELECT p.tenant_id, p.id, 'publish'::text, p.planned_at, p.planned_at, p.attempts
              FROM publications p
              WHERE p.tenant_id = t AND p.status = 'scheduled' AND p.planned_at <= horizon
              UNION ALL
              -- 'recover': an attempt whose lease ran out (its worker died).
              SELECT p.tenant_id, p.id,
                     CASE WHEN p.claimed_until IS NULL THEN 'publish' ELSE 'recover' END,
                     coalesce(p.next_attempt_at, p.claimed_until, due), p.planned_at, p.attempts
              FROM publications p
              WHERE p.tenant_id = t AND p.status = 'publishing'
                AND (p.claimed_until IS NULL OR p.claimed_until <= due)
                AND coalesce(p.next_attempt_at, due) <= horizon
              UNION ALL
              SELECT p.tenant_id, p.id, 'reconcile'::text, p.next_check_at, p.planned_at, p.checks
              FROM publications p
              WHERE p.tenant_id = t AND p.status = 'unconfirmed' AND p.next_check_at <= horizon
              UNION ALL
              SELECT p.tenant_id, p.id, 'figures'::text, p.next_figures_at, p.planned_at, 0
              FROM publications p
              WHERE p.tenant_id = t AND p.status = 'published' AND p.next_figures_at <= due;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION publishing_due(timestamptz, timestamptz) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION publishing_due(timestamptz, timestamptz)")
    op.drop_table("publication_attempts")
    op.drop_table("publications")
