"""Content approvals: templates, content items, revisions, decisions, links, comments.

Revisions, decisions and comments are append-only for the application role (SELECT and
INSERT only): the approval record cannot be rewritten by the application.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table, tenant_fk

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)
STATUSES = (
    "'draft', 'in_review', 'awaiting_client', 'approved', 'scheduled', "
    "'changes_requested', 'rejected', 'expired'"
)


def _jsonb(name: str, default: str) -> sa.Column:
    return sa.Column(name, JSONB, nullable=False, server_default=sa.text(f"'{default}'::jsonb"))


def _append_only(name: str) -> None:
    op.execute(f"REVOKE UPDATE, DELETE ON {name} FROM {APP_ROLE}")


def upgrade() -> None:
    create_tenant_table(
        "workflow_templates",
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.String(1000)),
        _jsonb("steps", "[]"),
        sa.Column("allow_self_approval", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("client_agreed_auto_approve", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("blocking_checks", ARRAY(sa.String(32)), nullable=False, server_default="{}"),
        sa.Column("is_tenant_default", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("archived_at", tstz),
        sa.Column("created_by", uuid),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("jsonb_typeof(steps) = 'array'", name="ck_templates_steps"),
    )
    # One fallback per agency.
    op.create_index(
        "ux_templates_tenant_default",
        "workflow_templates",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("is_tenant_default"),
    )

    create_tenant_table(
        "brand_workflows",
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("template_id", uuid, nullable=False),
        tenant_fk("brands", "brand_id"),
        tenant_fk("workflow_templates", "template_id"),
        sa.UniqueConstraint("tenant_id", "brand_id", name="uq_brand_workflows_brand"),
    )

    create_tenant_table(
        "content_items",
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(24), nullable=False, server_default="draft"),
        sa.Column("status_reason", sa.Text),
        sa.Column("reason_for_client", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("planned_at", tstz),
        sa.Column("campaign", sa.String(120)),
        sa.Column("labels", ARRAY(sa.String(60)), nullable=False, server_default="{}"),
        sa.Column("template_id", uuid),
        sa.Column("current_revision_id", uuid),
        sa.Column("revision_number", sa.Integer, nullable=False, server_default="0"),
        sa.Column("client_revision_id", uuid),
        _jsonb("workflow", "{}"),
        sa.Column("round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("step_index", sa.Integer),
        sa.Column("step_started_at", tstz),
        _jsonb("step_approvers", "{}"),
        sa.Column("next_deadline_at", tstz),
        sa.Column("timeouts_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("submitted_by", uuid),
        sa.Column("submitted_at", tstz),
        sa.Column("created_by", uuid),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("brands", "brand_id"),
        tenant_fk("workflow_templates", "template_id"),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_content_status"),
        sa.CheckConstraint(
            "(status IN ('in_review', 'awaiting_client')) = (step_index IS NOT NULL)",
            name="ck_content_step",
        ),
    )
    op.create_index(
        "ix_content_brand_planned", "content_items", ["tenant_id", "brand_id", "planned_at"]
    )
    op.create_index(
        "ix_content_brand_created", "content_items", ["tenant_id", "brand_id", "created_at", "id"]
    )
    # The timeout sweep reads only what is due.
    op.create_index(
        "ix_content_deadline",
        "content_items",
        ["tenant_id", "next_deadline_at"],
        postgresql_where=sa.text("next_deadline_at IS NOT NULL"),
    )

    create_tenant_table(
        "content_revisions",
        sa.Column("content_item_id", uuid, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("author_id", uuid),
        sa.Column("title", sa.String(200), nullable=False),
        _jsonb("variants", "{}"),
        _jsonb("media", "[]"),
        sa.Column("planned_at", tstz),
        sa.Column("campaign", sa.String(120)),
        sa.Column("labels", ARRAY(sa.String(60)), nullable=False, server_default="{}"),
        sa.Column("social_account_ids", ARRAY(uuid), nullable=False, server_default="{}"),
        tenant_fk("content_items", "content_item_id"),
        sa.UniqueConstraint("tenant_id", "content_item_id", "number", name="uq_revisions_number"),
    )
    _append_only("content_revisions")
    op.create_foreign_key(
        "fk_content_current_revision",
        "content_items",
        "content_revisions",
        ["tenant_id", "current_revision_id"],
        ["tenant_id", "id"],
        deferrable=True,
        initially="DEFERRED",
    )

    create_tenant_table(
        "approval_links",
        sa.Column("content_item_id", uuid, nullable=False),
        sa.Column("revision_id", uuid, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("expires_at", tstz, nullable=False),
        sa.Column("used_at", tstz),
        tenant_fk("content_items", "content_item_id"),
        tenant_fk("content_revisions", "revision_id"),
        sa.UniqueConstraint(
            "tenant_id", "content_item_id", "round", "step_index", "email", name="uq_links_step"
        ),
    )

    create_tenant_table(
        "approval_decisions",
        sa.Column("content_item_id", uuid, nullable=False),
        sa.Column("revision_id", uuid, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("step_kind", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(300), nullable=False),
        sa.Column("decision", sa.String(24), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("user_id", uuid),
        sa.Column("link_id", uuid),
        sa.Column("email", sa.String(254)),
        sa.Column("channel", sa.String(16), nullable=False),
        tenant_fk("content_items", "content_item_id"),
        tenant_fk("content_revisions", "revision_id"),
        tenant_fk("approval_links", "link_id"),
        sa.UniqueConstraint(
            "tenant_id",
            "content_item_id",
            "round",
            "step_index",
            "approver",
            name="uq_decisions_approver",
        ),
        sa.CheckConstraint(
            "decision IN ('approve', 'request_changes', 'reject')", name="ck_decisions_decision"
        ),
        sa.CheckConstraint(
            "decision <> 'request_changes' OR length(btrim(comment)) > 0",
            name="ck_decisions_reason",
        ),
        sa.CheckConstraint(
            "channel IN ('app', 'portal', 'link', 'api', 'system')", name="ck_decisions_channel"
        ),
    )
    _append_only("approval_decisions")

    create_tenant_table(
        "content_comments",
        sa.Column("content_item_id", uuid, nullable=False),
        sa.Column("parent_id", uuid),
        sa.Column("revision_id", uuid),
        sa.Column("anchor", JSONB),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("author_type", sa.String(16), nullable=False),
        sa.Column("author_id", uuid),
        sa.Column("author_email", sa.String(254)),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("mentions", ARRAY(uuid), nullable=False, server_default="{}"),
        tenant_fk("content_items", "content_item_id"),
        tenant_fk("content_comments", "parent_id"),
        tenant_fk("content_revisions", "revision_id"),
        sa.CheckConstraint("visibility IN ('internal', 'client')", name="ck_comments_visibility"),
    )
    _append_only("content_comments")
    op.create_index(
        "ix_comments_item",
        "content_comments",
        ["tenant_id", "content_item_id", "created_at", "id"],
    )

    # Time logged on a content item now points at a real one.
    # NOT VALID: entries logged before this migration named items that could not exist yet;
    # invoiced ones cannot be rewritten, so only new and changed rows are checked.
    op.execute(
        "ALTER TABLE time_entries ADD CONSTRAINT fk_time_entries_content_item "
        "FOREIGN KEY (tenant_id, content_item_id) REFERENCES content_items (tenant_id, id) "
        "NOT VALID"
    )

    # The timeout cron lists the agencies with a due step without reading their rows as one
    # tenant: the same narrow, per-tenant walk as the forgotten-timer sweep.
    op.execute(
        """
        CREATE FUNCTION due_approval_tenants(due timestamptz)
        RETURNS TABLE (due_tenant_id uuid)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            IF EXISTS (
              SELECT 1 FROM content_items WHERE tenant_id = t AND next_deadline_at <= due
            ) THEN
              due_tenant_id := t;
              RETURN NEXT;
            END IF;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION due_approval_tenants(timestamptz) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION due_approval_tenants(timestamptz)")
    op.drop_constraint("fk_time_entries_content_item", "time_entries", type_="foreignkey")
    op.drop_constraint("fk_content_current_revision", "content_items", type_="foreignkey")
    for table in (
        "content_comments",
        "approval_decisions",
        "approval_links",
        "content_revisions",
        "content_items",
        "brand_workflows",
        "workflow_templates",
    ):
        op.drop_table(table)
