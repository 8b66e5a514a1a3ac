"""The community inbox: raw platform events, threads, items, outbound actions (replies and
moderation), saved replies, rules, response policies, crisis episodes and poll cursors.

`platform_events` is not tenant-owned (like `stripe_events`): a webhook is stored before anyone
knows which agency it concerns. Every other table is tenant-owned with forced RLS, created here
with its policy. `inbox_account_owners` finds, for a platform account id, the agencies that
connected it, visiting each agency under its own setting (like `publishing_due`), so RLS still
applies to what it reads; `inbox_due` lists the inbox's timed work the same way (with
`reads`: the accounts due for a read; without: breaches, replies to send or reconcile).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table, grant_app, tenant_fk

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)
labels = sa.ARRAY(sa.String(40))

KINDS = "'comment', 'reply', 'mention', 'message', 'review'"
STATUSES = "'new', 'assigned', 'waiting', 'done'"
MODERATION = "'visible', 'hidden', 'deleted'"
PRIORITIES = "'low', 'normal', 'high', 'urgent'"
ACTIONS = "'reply', 'private_reply', 'hide', 'unhide', 'delete'"
ACTION_STATUSES = (
    "'awaiting_approval', 'queued', 'sending', 'sent', 'failed', 'unconfirmed', 'canceled'"
)


def upgrade() -> None:
    op.create_table(
        "platform_events",
        sa.Column("id", uuid, primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("received_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.Column("processed_at", tstz),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        # The same delivery twice (a platform retrying) is stored once.
        sa.UniqueConstraint("platform", "digest", name="uq_platform_events_digest"),
    )
    op.create_index(
        "ix_platform_events_unprocessed",
        "platform_events",
        ["received_at"],
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    grant_app("platform_events", "SELECT, INSERT, UPDATE, DELETE")

    create_tenant_table(
        "inbox_threads",
        sa.Column("social_account_id", uuid, nullable=False),
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("participant_id", sa.String(255)),
        sa.Column("participant_name", sa.String(255)),
        sa.Column("last_item_at", tstz),
        tenant_fk("social_accounts", "social_account_id"),
        tenant_fk("brands", "brand_id"),
        sa.UniqueConstraint(
            "tenant_id", "social_account_id", "external_id", name="uq_inbox_threads"
        ),
        sa.CheckConstraint("kind IN ('post', 'conversation')", name="ck_inbox_threads_kind"),
    )

    create_tenant_table(
        "inbox_items",
        sa.Column("social_account_id", uuid, nullable=False),
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("client_id", uuid, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("thread_id", uuid),
        sa.Column("parent_external_id", sa.String(255)),
        sa.Column("parent_id", uuid),
        sa.Column("author_id", sa.String(255), nullable=False),
        sa.Column("author_handle", sa.String(255)),
        sa.Column("author_name", sa.String(255)),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("media", JSONB, nullable=False, server_default="[]"),
        sa.Column("platform_created_at", tstz, nullable=False),
        sa.Column("received_at", tstz, nullable=False),
        sa.Column("language", sa.String(8)),
        sa.Column("sentiment", sa.String(8)),
        sa.Column("sentiment_score", sa.Float),
        sa.Column("from_account", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("needs_reply", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("status", sa.String(16), nullable=False, server_default="new"),
        sa.Column("assignee_id", uuid),
        sa.Column("labels", labels, nullable=False, server_default="{}"),
        sa.Column("priority", sa.String(8), nullable=False, server_default="normal"),
        sa.Column("moderation", sa.String(8), nullable=False, server_default="visible"),
        sa.Column("pinned_until", tstz),
        sa.Column("crisis_id", uuid),
        sa.Column("rules_applied", JSONB, nullable=False, server_default="[]"),
        sa.Column("response_due_at", tstz),
        sa.Column("first_response_at", tstz),
        sa.Column("first_response_by", uuid),
        sa.Column("last_response_at", tstz),
        sa.Column("sla_breached_at", tstz),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("social_accounts", "social_account_id"),
        tenant_fk("brands", "brand_id"),
        tenant_fk("clients", "client_id"),
        tenant_fk("inbox_threads", "thread_id"),
        # People are named by user id everywhere in the API (assignments, members).
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"]),
        sa.UniqueConstraint("tenant_id", "social_account_id", "external_id", name="uq_inbox_items"),
        sa.CheckConstraint(f"kind IN ({KINDS})", name="ck_inbox_items_kind"),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_inbox_items_status"),
        sa.CheckConstraint(f"moderation IN ({MODERATION})", name="ck_inbox_items_moderation"),
        sa.CheckConstraint(f"priority IN ({PRIORITIES})", name="ck_inbox_items_priority"),
    )
    # The inbox's default order: newest first, per brand.
    op.create_index(
        "ix_inbox_items_brand_received", "inbox_items", ["tenant_id", "brand_id", "received_at"]
    )
    op.create_index("ix_inbox_items_received", "inbox_items", ["tenant_id", "received_at", "id"])
    op.create_index("ix_inbox_items_thread", "inbox_items", ["tenant_id", "thread_id"])
    # A reply that came before its parent waits here for it.
    op.create_index(
        "ix_inbox_items_orphans",
        "inbox_items",
        ["tenant_id", "social_account_id", "parent_external_id"],
        postgresql_where=sa.text("parent_external_id IS NOT NULL AND parent_id IS NULL"),
    )
    # What the SLA sweeper looks for: open items with a due time, not yet breached.
    op.create_index(
        "ix_inbox_items_due",
        "inbox_items",
        ["tenant_id", "response_due_at"],
        postgresql_where=sa.text(
            "response_due_at IS NOT NULL AND sla_breached_at IS NULL AND "
            "first_response_at IS NULL AND status <> 'done'"
        ),
    )

    create_tenant_table(
        "inbox_actions",
        sa.Column("item_id", uuid, nullable=False),
        sa.Column("social_account_id", uuid, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", uuid),
        sa.Column("approved_by", uuid),
        sa.Column("minutes_spent", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_until", tstz),
        sa.Column("next_attempt_at", tstz),
        sa.Column("create_started_at", tstz),
        sa.Column("sent_at", tstz),
        sa.Column("external_id", sa.String(255)),
        sa.Column("permalink", sa.String(2000)),
        sa.Column("error_code", sa.String(40)),
        sa.Column("error", sa.Text),
        sa.Column("unconfirmed_at", tstz),
        sa.Column("next_check_at", tstz),
        sa.Column("checks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("inbox_items", "item_id"),
        tenant_fk("social_accounts", "social_account_id"),
        sa.CheckConstraint(f"kind IN ({ACTIONS})", name="ck_inbox_actions_kind"),
        sa.CheckConstraint(f"status IN ({ACTION_STATUSES})", name="ck_inbox_actions_status"),
    )
    op.create_index("ix_inbox_actions_item", "inbox_actions", ["tenant_id", "item_id"])
    op.create_index(
        "ix_inbox_actions_open",
        "inbox_actions",
        ["tenant_id", "status"],
        postgresql_where=sa.text("status IN ('queued', 'sending', 'unconfirmed')"),
    )

    create_tenant_table(
        "saved_replies",
        sa.Column("brand_id", uuid),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_by", uuid),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("brands", "brand_id"),
        sa.CheckConstraint("language IN ('fr', 'en')", name="ck_saved_replies_language"),
    )
    op.create_index("ix_saved_replies_brand", "saved_replies", ["tenant_id", "brand_id"])

    create_tenant_table(
        "inbox_rules",
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("stop_processing", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("condition", JSONB, nullable=False, server_default="{}"),
        sa.Column("action", JSONB, nullable=False, server_default="{}"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("brands", "brand_id"),
    )
    op.create_index("ix_inbox_rules_brand", "inbox_rules", ["tenant_id", "brand_id", "position"])

    create_tenant_table(
        "response_policies",
        sa.Column("client_id", uuid, nullable=False),
        sa.Column("policy", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("clients", "client_id"),
        sa.UniqueConstraint("tenant_id", "client_id", name="uq_response_policies_client"),
    )

    create_tenant_table(
        "inbox_crises",
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("social_account_id", uuid),
        sa.Column("trigger", sa.String(24), nullable=False),
        sa.Column("started_at", tstz, nullable=False),
        sa.Column("last_signal_at", tstz, nullable=False),
        sa.Column("figures", JSONB, nullable=False, server_default="{}"),
        sa.Column("item_ids", JSONB, nullable=False, server_default="[]"),
        tenant_fk("brands", "brand_id"),
        tenant_fk("social_accounts", "social_account_id"),
    )
    op.create_index(
        "ix_inbox_crises_brand", "inbox_crises", ["tenant_id", "brand_id", "started_at"]
    )

    # Per account: when it was last polled and how far, and when a webhook last reached it.
    create_tenant_table(
        "inbox_cursors",
        sa.Column("social_account_id", uuid, nullable=False),
        sa.Column("polled_at", tstz),
        sa.Column("polled_through", tstz),
        sa.Column("next_poll_at", tstz),
        sa.Column("last_push_at", tstz),
        sa.Column("last_error", sa.Text),
        tenant_fk("social_accounts", "social_account_id"),
        sa.UniqueConstraint("tenant_id", "social_account_id", name="uq_inbox_cursors_account"),
    )

    # Time spent answering, linked to the item answered.
    op.add_column("time_entries", sa.Column("inbox_item_id", uuid))
    op.create_foreign_key(
        "fk_time_entries_inbox_item",
        "time_entries",
        "inbox_items",
        ["tenant_id", "inbox_item_id"],
        ["tenant_id", "id"],
    )

    # Both functions read as the caller (the app role), one agency at a time under its own
    # setting: RLS still applies. Arguments are bound by the caller.
    op.execute(
        """
        CREATE FUNCTION inbox_account_owners(p_platform text, p_external_ids text[])
        RETURNS TABLE (owner_tenant_id uuid, account_id uuid, external_id text)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            RETURN QUERY
              SELECT a.tenant_id, a.id, a.external_id::text FROM social_accounts a
              WHERE a.tenant_id = t AND a.platform = p_platform
                AND a.external_id = ANY (p_external_ids);
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION inbox_due(due timestamptz, reads boolean)
        RETURNS TABLE (due_tenant_id uuid, kind text, object_id uuid, at timestamptz)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            RETURN QUERY
              SELECT i.tenant_id, 'breach'::text, i.id, i.response_due_at
              FROM inbox_items i
              WHERE NOT reads AND i.tenant_id = t AND i.response_due_at <= due
                AND i.sla_breached_at IS NULL AND i.first_response_at IS NULL
                AND i.status <> 'done'
              UNION ALL
              SELECT x.tenant_id,
                     CASE x.status WHEN 'unconfirmed' THEN 'reconcile' ELSE 'send' END,
                     x.id, coalesce(x.next_check_at, x.next_attempt_at, x.claimed_until, due)
              FROM inbox_actions x
              WHERE NOT reads AND x.tenant_id = t AND (
                (x.status = 'queued' AND coalesce(x.next_attempt_at, due) <= due)
                OR (x.status = 'sending' AND x.claimed_until <= due)
                OR (x.status = 'unconfirmed' AND x.next_check_at <= due))
              UNION ALL
              SELECT a.tenant_id, 'poll'::text, a.id, coalesce(c.next_poll_at, due)
              FROM social_accounts a
              LEFT JOIN inbox_cursors c
                ON c.tenant_id = a.tenant_id AND c.social_account_id = a.id
              WHERE reads AND a.tenant_id = t AND a.status IN ('connected', 'error')
                AND coalesce(c.next_poll_at, due) <= due;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION inbox_account_owners(text, text[]) TO {APP_ROLE}")
    op.execute(f"GRANT EXECUTE ON FUNCTION inbox_due(timestamptz, boolean) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION inbox_due(timestamptz, boolean)")
    op.execute("DROP FUNCTION inbox_account_owners(text, text[])")
    op.drop_constraint("fk_time_entries_inbox_item", "time_entries", type_="foreignkey")
    op.drop_column("time_entries", "inbox_item_id")
    for table in (
        "inbox_cursors",
        "inbox_crises",
        "response_policies",
        "inbox_rules",
        "saved_replies",
        "inbox_actions",
        "inbox_items",
        "inbox_threads",
        "platform_events",
    ):
        op.drop_table(table)
