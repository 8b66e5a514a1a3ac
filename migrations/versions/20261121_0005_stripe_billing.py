"""Stripe billing: agency subscriptions, received Stripe events, client invoices.

The plan catalogue moves to configuration (`PLANS`), so the placeholder `plans` table goes and
`tenants.plan_id` names a catalogue entry. `stripe_events` is not tenant-owned: an event is
stored before we know whose it is, keyed by Stripe's id so a redelivery stores nothing new.
Credit notes are append-only for the application role.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table, grant_app, tenant_fk

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_constraint("tenants_plan_id_fkey", "tenants", type_="foreignkey")
    op.drop_table("plans")
    op.add_column("tenants", sa.Column("stripe_customer_id", sa.String(255), unique=True))
    op.add_column("tenants", sa.Column("past_due_since", tstz))
    op.add_column("tenants", sa.Column("stripe_account_id", sa.String(255)))
    op.add_column(
        "tenants",
        sa.Column("next_invoice_number", sa.Integer, nullable=False, server_default="1"),
    )
    op.add_column("clients", sa.Column("stripe_customer_id", sa.String(255)))

    create_tenant_table(
        "subscriptions",
        sa.Column("stripe_subscription_id", sa.String(255), nullable=False, unique=True),
        sa.Column("stripe_customer_id", sa.String(255), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("base_item_id", sa.String(255)),
        sa.Column("seat_item_id", sa.String(255)),
        sa.Column("seats", sa.Integer, nullable=False, server_default="0"),
        sa.Column("seats_wanted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("seat_sync_status", sa.String(16), nullable=False, server_default="synced"),
        sa.Column("seat_sync_error", sa.Text),
        sa.Column("seat_sync_round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("current_period_end", tstz),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("stripe_created", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("synced_at", tstz),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", name="uq_subscriptions_tenant"),
        sa.CheckConstraint(
            "seat_sync_status IN ('synced', 'pending', 'failed')", name="ck_subscriptions_sync"
        ),
    )

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("account", sa.String(255)),
        sa.Column("object_id", sa.String(255)),
        sa.Column("customer_id", sa.String(255)),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("received_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.Column("processed_at", tstz),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        # Not `tenant_id`: this table is not tenant-owned, the agency is found after storing.
        sa.Column("agency_id", uuid, sa.ForeignKey("tenants.id")),
    )
    op.create_index(
        "ix_stripe_events_unprocessed",
        "stripe_events",
        ["received_at"],
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    grant_app("stripe_events", "SELECT, INSERT, UPDATE")

    create_tenant_table(
        "invoices",
        sa.Column("client_id", uuid, nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("number", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(16)),
        sa.Column("subtotal_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("approved_minutes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("credited_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("notes", sa.Text),
        sa.Column("due_days", sa.Integer, nullable=False, server_default="30"),
        sa.Column("stripe_invoice_id", sa.String(255)),
        sa.Column("stripe_status", sa.String(16)),
        sa.Column("stripe_error", sa.Text),
        sa.Column("stripe_hosted_url", sa.Text),
        sa.Column("finalized_at", tstz),
        sa.Column("voided_at", tstz),
        sa.Column("void_reason", sa.Text),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("clients", "client_id"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_invoices_number"),
        sa.CheckConstraint("status IN ('draft', 'finalized', 'void')", name="ck_invoices_status"),
        sa.CheckConstraint(
            "mode IS NULL OR mode IN ('stripe', 'external')", name="ck_invoices_mode"
        ),
        sa.CheckConstraint(
            "stripe_status IS NULL OR stripe_status IN ('pending', 'synced', 'failed')",
            name="ck_invoices_stripe_status",
        ),
        sa.CheckConstraint("extract(day FROM month) = 1", name="ck_invoices_month"),
    )
    op.create_index("ix_invoices_month", "invoices", ["tenant_id", "month"])
    # The one guarantee against a second invoice for a client's month, whatever retries or
    # races: a voided invoice frees the month for its replacement.
    op.create_index(
        "ux_invoices_client_month",
        "invoices",
        ["tenant_id", "client_id", "month"],
        unique=True,
        postgresql_where=sa.text("status <> 'void'"),
    )

    create_tenant_table(
        "invoice_lines",
        sa.Column("invoice_id", uuid, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("quantity_minutes", sa.Integer),
        sa.Column("unit_amount_minor", sa.BigInteger),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("computation", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        tenant_fk("invoices", "invoice_id"),
        sa.CheckConstraint(
            "kind IN ('retainer_fee', 'overage', 'manual')", name="ck_invoice_lines_kind"
        ),
    )
    op.create_index("ix_invoice_lines_invoice", "invoice_lines", ["tenant_id", "invoice_id"])

    create_tenant_table(
        "credit_notes",
        sa.Column("invoice_id", uuid, nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", uuid, sa.ForeignKey("users.id"), nullable=False),
        tenant_fk("invoices", "invoice_id"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_credit_notes_number"),
        sa.CheckConstraint("amount_minor > 0", name="ck_credit_notes_amount"),
    )
    op.execute(f"REVOKE UPDATE, DELETE ON credit_notes FROM {APP_ROLE}")

    op.add_column("time_entries", sa.Column("invoice_id", uuid))
    op.create_foreign_key(
        "fk_time_entries_invoice",
        "time_entries",
        "invoices",
        ["tenant_id", "invoice_id"],
        ["tenant_id", "id"],
    )
    # Invoiced time stays immutable, with one exception: voiding its invoice releases it
    # (back to approved, unchanged otherwise) so the month can be invoiced again.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION time_entries_invoiced_immutable() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND NEW.status = 'approved' AND NEW.invoice_id IS NULL
             AND NEW.minutes = OLD.minutes AND NEW.billable = OLD.billable
             AND NEW.work_date = OLD.work_date AND NEW.brand_id = OLD.brand_id
             AND EXISTS (SELECT 1 FROM invoices i WHERE i.tenant_id = OLD.tenant_id
                         AND i.id = OLD.invoice_id AND i.status = 'void') THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'time entry % is invoiced and cannot change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
        END $$
        """
    )


def downgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION time_entries_invoiced_immutable() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'time entry % is invoiced and cannot change', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
        END $$
        """
    )
    op.drop_constraint("fk_time_entries_invoice", "time_entries", type_="foreignkey")
    op.drop_column("time_entries", "invoice_id")
    for table in ("credit_notes", "invoice_lines", "invoices", "stripe_events", "subscriptions"):
        op.drop_table(table)
    op.drop_column("clients", "stripe_customer_id")
    for column in ("next_invoice_number", "stripe_account_id", "past_due_since"):
        op.drop_column("tenants", column)
    op.drop_column("tenants", "stripe_customer_id")
    plans = op.create_table(
        "plans",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("max_active_brands", sa.Integer),
        sa.Column("max_staff_seats", sa.Integer),
        sa.Column("max_social_accounts", sa.Integer),
    )
    op.bulk_insert(
        plans,
        [
            {"id": "starter", "name": "Starter", "max_active_brands": 10},
            {"id": "growth", "name": "Growth", "max_active_brands": 50},
            {"id": "agency", "name": "Agency", "max_active_brands": None},
        ],
    )
    op.execute(f"GRANT SELECT ON plans TO {APP_ROLE}")
    op.create_foreign_key("tenants_plan_id_fkey", "tenants", "plans", ["plan_id"], ["id"])
