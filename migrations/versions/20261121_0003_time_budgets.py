"""Time budgets: retainers and their terms, rates, time entries, timers, timesheets, alerts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from migrations.helpers import APP_ROLE, create_tenant_table

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)

ACTIVITIES = (
    "'community_animation', 'moderation', 'content_creation', 'reporting', 'crisis', "
    "'meeting', 'other'"
)


def _fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])


def upgrade() -> None:
    create_tenant_table(
        "retainers",
        sa.Column("client_id", uuid, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("start_month", sa.Date, nullable=False),
        sa.Column("end_month", sa.Date),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        _fk("clients", "client_id"),
        sa.CheckConstraint("extract(day FROM start_month) = 1", name="ck_retainers_start"),
        sa.CheckConstraint(
            "end_month IS NULL OR (extract(day FROM end_month) = 1 AND end_month >= start_month)",
            name="ck_retainers_end",
        ),
    )
    op.create_index("ix_retainers_client", "retainers", ["tenant_id", "client_id"])
    # One retainer per client for any month: the budget of a month is never ambiguous.
    op.execute(
        "ALTER TABLE retainers ADD CONSTRAINT ex_retainers_overlap EXCLUDE USING gist "
        "(tenant_id WITH =, client_id WITH =, daterange(start_month, end_month, '[]') WITH &&)"
    )

    create_tenant_table(
        "retainer_terms",
        sa.Column("retainer_id", uuid, nullable=False),
        sa.Column("effective_month", sa.Date, nullable=False),
        sa.Column("monthly_minutes", sa.Integer, nullable=False),
        sa.Column("fee_minor", sa.BigInteger, nullable=False),
        sa.Column("brand_ids", ARRAY(uuid)),
        sa.Column("rollover_max_minutes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rollover_max_months", sa.Integer, nullable=False, server_default="0"),
        sa.Column("overage_policy", sa.String(16), nullable=False),
        sa.Column("overage_rate_minor", sa.BigInteger),
        sa.Column("thresholds", ARRAY(sa.Integer), nullable=False),
        sa.Column("created_by", uuid),
        _fk("retainers", "retainer_id"),
        sa.UniqueConstraint("tenant_id", "retainer_id", "effective_month", name="uq_terms_month"),
        sa.CheckConstraint("extract(day FROM effective_month) = 1", name="ck_terms_month"),
        sa.CheckConstraint("monthly_minutes BETWEEN 0 AND 744 * 60", name="ck_terms_minutes"),
        sa.CheckConstraint("fee_minor >= 0", name="ck_terms_fee"),
        sa.CheckConstraint(
            "rollover_max_minutes >= 0 AND rollover_max_months BETWEEN 0 AND 24",
            name="ck_terms_rollover",
        ),
        sa.CheckConstraint(
            "overage_policy IN ('bill_at_rate', 'hard_cap')", name="ck_terms_overage"
        ),
        sa.CheckConstraint(
            "overage_policy <> 'bill_at_rate' OR overage_rate_minor >= 0", name="ck_terms_rate"
        ),
    )

    create_tenant_table(
        "rates",
        sa.Column("membership_id", uuid),
        sa.Column("user_id", uuid, sa.ForeignKey("users.id")),
        sa.Column("client_id", uuid),
        sa.Column("role", sa.String(16)),
        sa.Column("rate_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        _fk("clients", "client_id"),
        _fk("memberships", "membership_id"),
        sa.CheckConstraint("rate_minor >= 0", name="ck_rates_amount"),
        # Exactly one of the four kinds: member on a client, client, role, default.
        sa.CheckConstraint(
            "(membership_id IS NULL OR client_id IS NOT NULL) "
            "AND ((membership_id IS NULL) = (user_id IS NULL)) "
            "AND (role IS NULL OR (membership_id IS NULL AND client_id IS NULL))",
            name="ck_rates_kind",
        ),
    )
    op.execute(
        "CREATE UNIQUE INDEX ux_rates_scope ON rates (tenant_id, "
        "coalesce(membership_id, '00000000-0000-0000-0000-000000000000'::uuid), "
        "coalesce(client_id, '00000000-0000-0000-0000-000000000000'::uuid), "
        "coalesce(role, ''))"
    )

    create_tenant_table(
        "time_entries",
        sa.Column("membership_id", uuid, nullable=False),
        sa.Column("user_id", uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("client_id", uuid, nullable=False),
        sa.Column("work_date", sa.Date, nullable=False),
        sa.Column("started_at", tstz),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("activity", sa.String(24), nullable=False),
        sa.Column("billable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("note", sa.Text),
        sa.Column("content_item_id", uuid),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("rate_minor", sa.BigInteger),
        sa.Column("rate_currency", sa.String(3)),
        sa.Column("source", sa.String(16), nullable=False, server_default="manual"),
        sa.Column("flagged_reason", sa.String(64)),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        _fk("brands", "brand_id"),
        _fk("clients", "client_id"),
        _fk("memberships", "membership_id"),
        # 25 hours: the longest local day, when the clocks go back.
        sa.CheckConstraint("minutes BETWEEN 1 AND 1500", name="ck_time_entries_minutes"),
        sa.CheckConstraint(f"activity IN ({ACTIVITIES})", name="ck_time_entries_activity"),
        sa.CheckConstraint(
            "status IN ('open', 'submitted', 'approved', 'invoiced')",
            name="ck_time_entries_status",
        ),
        sa.CheckConstraint("source IN ('manual', 'timer')", name="ck_time_entries_source"),
    )
    op.create_index(
        "ix_time_entries_client_date", "time_entries", ["tenant_id", "client_id", "work_date"]
    )
    op.create_index(
        "ix_time_entries_person_date", "time_entries", ["tenant_id", "membership_id", "work_date"]
    )
    # Invoiced time is part of a bill sent to a client: nobody, not even the application
    # through a bug, may change or delete it.
    op.execute(
        """
        CREATE FUNCTION time_entries_invoiced_immutable() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'time entry % is invoiced and cannot change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER tr_time_entries_invoiced BEFORE UPDATE OR DELETE ON time_entries "
        "FOR EACH ROW WHEN (OLD.status = 'invoiced') "
        "EXECUTE FUNCTION time_entries_invoiced_immutable()"
    )

    create_tenant_table(
        "timers",
        sa.Column("membership_id", uuid, nullable=False),
        sa.Column("user_id", uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("activity", sa.String(24), nullable=False),
        sa.Column("billable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("note", sa.Text),
        sa.Column("content_item_id", uuid),
        sa.Column("started_at", tstz, nullable=False),
        _fk("brands", "brand_id"),
        _fk("memberships", "membership_id"),
        sa.UniqueConstraint("tenant_id", "membership_id", name="uq_timers_person"),
        sa.CheckConstraint(f"activity IN ({ACTIVITIES})", name="ck_timers_activity"),
    )

    create_tenant_table(
        "timesheets",
        sa.Column("membership_id", uuid, nullable=False),
        sa.Column("user_id", uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("week_start", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("submitted_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.Column("decided_by", uuid),
        sa.Column("decided_at", tstz),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        _fk("memberships", "membership_id"),
        sa.UniqueConstraint("tenant_id", "membership_id", "week_start", name="uq_timesheets_week"),
        sa.CheckConstraint(
            "status IN ('submitted', 'approved', 'returned')", name="ck_timesheets_status"
        ),
        sa.CheckConstraint("extract(isodow FROM week_start) = 1", name="ck_timesheets_monday"),
    )

    create_tenant_table(
        "budget_alerts",
        sa.Column("client_id", uuid, nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("used_minutes", sa.Integer, nullable=False),
        sa.Column("available_minutes", sa.Integer, nullable=False),
        _fk("clients", "client_id"),
        sa.UniqueConstraint(
            "tenant_id", "client_id", "month", "threshold", name="uq_budget_alerts_once"
        ),
    )

    # The forgotten-timer sweeper visits each tenant under its own setting, as the outbox
    # sweeper does, so RLS applies to it too.
    op.execute(
        """
        CREATE FUNCTION overdue_timer_tenants(cutoff timestamptz)
        RETURNS TABLE (due_tenant_id uuid)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            IF EXISTS (SELECT 1 FROM timers WHERE tenant_id = t AND started_at < cutoff) THEN
              due_tenant_id := t;
              RETURN NEXT;
            END IF;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION overdue_timer_tenants(timestamptz) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION overdue_timer_tenants(timestamptz)")
    for table in (
        "budget_alerts",
        "timesheets",
        "timers",
        "time_entries",
        "rates",
        "retainer_terms",
        "retainers",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION time_entries_invoiced_immutable()")
