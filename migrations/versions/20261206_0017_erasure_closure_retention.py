"""A person's erasure, the end of an agency's contract, and retention.

`erasures` records who was erased (by keyed digest only) and their pseudonym;
`agency_closures` the steps of an agency's closure; `invoice_archives` the invoices kept for the
legal retention period after it. All three are tenant-owned with forced RLS. A closed agency
keeps its `tenants` row with status `closed`. The retention cron deletes old raw Stripe
events, which the application role could not delete until now.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)
CLOSE_SIGNATURE = "delete_closing_tenant_rows(p_tenant uuid, p_table text)"
ERASE_SIGNATURE = (
    "erase_person_traces(p_tenant uuid, p_user uuid, p_email text, p_new_email text, "
    "p_name text, p_text text)"
)


def upgrade() -> None:
    op.drop_constraint("ck_tenants_status", "tenants", type_="check")
    op.create_check_constraint(
        "ck_tenants_status",
        "tenants",
        "status IN ('active', 'past_due', 'suspended', 'canceled', 'closed')",
    )
    create_tenant_table(
        "erasures",
        sa.Column("subject", sa.String(24), nullable=False),
        sa.Column("subject_digest", sa.String(64), nullable=False),
        sa.Column("pseudonym", sa.String(40), nullable=False),
        sa.Column("requested_by", uuid),
        sa.Column("counts", JSONB, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("updated_at", tstz, nullable=False),
        sa.UniqueConstraint("tenant_id", "subject", "subject_digest", name="uq_erasures_subject"),
        sa.CheckConstraint(
            "subject IN ('client_contact', 'external_approver', 'inbox_author')",
            name="ck_erasures_subject",
        ),
    )
    create_tenant_table(
        "agency_closures",
        sa.Column("requested_by", uuid),
        sa.Column("step", sa.String(24), nullable=False),
        sa.Column("archived_invoices", sa.Integer, nullable=False),
        sa.Column("revoked_accounts", sa.Integer, nullable=False),
        sa.Column("stripe_subscription_id", sa.String(255)),
        sa.Column("deleted_rows", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String),
        sa.Column("closed_at", tstz),
        sa.Column("updated_at", tstz, nullable=False),
        sa.UniqueConstraint("tenant_id", name="uq_agency_closures_tenant"),
    )
    create_tenant_table(
        "invoice_archives",
        sa.Column("invoice_id", uuid, nullable=False),
        sa.Column("number", sa.String(32)),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("client_name", sa.String(200), nullable=False),
        sa.Column("client_legal_name", sa.String(200)),
        sa.Column("client_billing_email", sa.String(254)),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("keep_until", tstz, nullable=False),
        sa.UniqueConstraint("tenant_id", "invoice_id", name="uq_invoice_archives_invoice"),
    )
    op.create_index("ix_invoice_archives_keep_until", "invoice_archives", ["keep_until"])
    op.execute(f"GRANT DELETE ON stripe_events TO {APP_ROLE}")
    # Some tables are append-only for the application (decisions, audit); a closing agency's
    # rows still go, through this function only, and only once the closure reached its
    # deletion step, for the tenant the transaction is in.
    op.execute(
        f"""
        CREATE FUNCTION {CLOSE_SIGNATURE}
        RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
        DECLARE
          deleted bigint;
        BEGIN
          IF p_tenant IS DISTINCT FROM
               NULLIF(current_setting('app.tenant_id', true), '')::uuid
             OR NOT EXISTS (
               SELECT 1 FROM agency_closures c
               WHERE c.tenant_id = p_tenant AND c.step = 'subscription_canceled')
             OR NOT EXISTS (
               SELECT 1 FROM information_schema.columns col
               WHERE col.table_schema = 'public' AND col.table_name = p_table
                 AND col.column_name = 'tenant_id')
             OR p_table IN ('agency_closures', 'invoice_archives') THEN
            RAISE EXCEPTION 'not a closing agency''s table';
          END IF;
          EXECUTE format('DELETE FROM %I WHERE tenant_id = $1', p_table) USING p_tenant;
          GET DIAGNOSTICS deleted = ROW_COUNT;
          RETURN deleted;
        END $$
        """  # noqa: S608 - CLOSE_SIGNATURE is a constant of this file
    )
    op.execute(f"REVOKE ALL ON FUNCTION {CLOSE_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {CLOSE_SIGNATURE} TO {APP_ROLE}")
    # Decisions and comments are append-only for the application too; a person's erasure
    # replaces their address, name and words there, in the transaction's tenant only.
    op.execute(
        f"""
        CREATE FUNCTION {ERASE_SIGNATURE}
        RETURNS TABLE (decisions bigint, comments bigint)
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
        DECLARE
          n_decisions bigint;
          n_comments bigint;
        BEGIN
          IF p_tenant IS DISTINCT FROM
               NULLIF(current_setting('app.tenant_id', true), '')::uuid THEN
            RAISE EXCEPTION 'not the transaction''s tenant';
          END IF;
          UPDATE approval_decisions d SET
            email = CASE WHEN d.email IS NULL THEN NULL ELSE p_new_email END,
            approver = CASE WHEN left(d.approver, 6) = 'email:' THEN 'email:' || p_new_email
                            ELSE d.approver END,
            comment = CASE WHEN d.comment IS NULL THEN NULL ELSE p_text END
          WHERE d.tenant_id = p_tenant
            AND ((p_user IS NOT NULL AND d.user_id = p_user)
                 OR (p_email IS NOT NULL
                     AND (lower(d.email) = p_email OR d.approver = 'email:' || p_email)));
          GET DIAGNOSTICS n_decisions = ROW_COUNT;
          UPDATE content_comments c SET author_name = p_name, author_email = NULL, body = p_text
          WHERE c.tenant_id = p_tenant
            AND ((p_user IS NOT NULL AND c.author_id = p_user)
                 OR (p_email IS NOT NULL AND lower(c.author_email) = p_email));
          GET DIAGNOSTICS n_comments = ROW_COUNT;
          RETURN QUERY SELECT n_decisions, n_comments;
        END $$
        """  # noqa: S608 - ERASE_SIGNATURE is a constant of this file
    )
    op.execute(f"REVOKE ALL ON FUNCTION {ERASE_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {ERASE_SIGNATURE} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {ERASE_SIGNATURE}")
    op.execute(f"DROP FUNCTION {CLOSE_SIGNATURE}")
    op.execute(f"REVOKE DELETE ON stripe_events FROM {APP_ROLE}")
    op.drop_table("invoice_archives")
    op.drop_table("agency_closures")
    op.drop_table("erasures")
    op.drop_constraint("ck_tenants_status", "tenants", type_="check")
    op.create_check_constraint(
        "ck_tenants_status", "tenants", "status IN ('active', 'past_due', 'suspended', 'canceled')"
    )
