"""Clients, brands, staff assignments, capacity and plan limits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table, grant_app

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Trusted extension: the database owner may create it. Needed for the overlap exclusion.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")

    # A placeholder catalogue; the billing issue fills it from configuration.
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
            {
                "id": "starter",
                "name": "Starter",
                "max_active_brands": 10,
                "max_staff_seats": 5,
                "max_social_accounts": 30,
            },
            {
                "id": "growth",
                "name": "Growth",
                "max_active_brands": 50,
                "max_staff_seats": 25,
                "max_social_accounts": 150,
            },
            {
                "id": "agency",
                "name": "Agency",
                "max_active_brands": None,
                "max_staff_seats": None,
                "max_social_accounts": None,
            },
        ],
    )
    grant_app("plans", "SELECT")
    op.add_column(
        "tenants",
        sa.Column(
            "plan_id",
            sa.String(32),
            sa.ForeignKey("plans.id"),
            nullable=False,
            server_default="starter",
        ),
    )
    op.add_column(
        "memberships",
        sa.Column("monthly_capacity_minutes", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_check_constraint(
        "ck_memberships_capacity",
        "memberships",
        "monthly_capacity_minutes BETWEEN 0 AND 744 * 60",
    )

    create_tenant_table(
        "clients",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("legal_name", sa.String(200)),
        sa.Column("billing_email", sa.String(254)),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("archived_at", tstz),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('active', 'archived')", name="ck_clients_status"),
        sa.CheckConstraint("locale IN ('fr-CA', 'fr', 'en')", name="ck_clients_locale"),
    )
    op.create_index("ix_clients_name", "clients", ["tenant_id", sa.text("lower(name)")])

    create_tenant_table(
        "brands",
        sa.Column("client_id", uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("default_language", sa.String(8), nullable=False),
        sa.Column("guidelines", JSONB, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("archived_at", tstz),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.ForeignKeyConstraint(["tenant_id", "client_id"], ["clients.tenant_id", "clients.id"]),
        sa.UniqueConstraint("tenant_id", "slug", name="uq_brands_slug"),
        sa.CheckConstraint("status IN ('active', 'archived')", name="ck_brands_status"),
    )
    op.create_index("ix_brands_client", "brands", ["tenant_id", "client_id"])
    op.create_index("ix_brands_name", "brands", ["tenant_id", sa.text("lower(name)")])

    create_tenant_table(
        "assignments",
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("membership_id", uuid, nullable=False),
        sa.Column("user_id", uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("monthly_minutes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.ForeignKeyConstraint(["tenant_id", "brand_id"], ["brands.tenant_id", "brands.id"]),
        sa.ForeignKeyConstraint(
            ["tenant_id", "membership_id"], ["memberships.tenant_id", "memberships.id"]
        ),
        sa.CheckConstraint(
            "role IN ('lead', 'community_manager', 'content_creator', 'analyst')",
            name="ck_assignments_role",
        ),
        sa.CheckConstraint("monthly_minutes BETWEEN 0 AND 744 * 60", name="ck_assignments_minutes"),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name="ck_assignments_dates"
        ),
    )
    op.create_index("ix_assignments_brand", "assignments", ["tenant_id", "brand_id"])
    op.create_index("ix_assignments_membership", "assignments", ["tenant_id", "membership_id"])
    # The same person in the same role on one brand never twice over the same days.
    op.execute(
        "ALTER TABLE assignments ADD CONSTRAINT ex_assignments_overlap EXCLUDE USING gist "
        "(tenant_id WITH =, brand_id WITH =, membership_id WITH =, role WITH =, "
        "daterange(start_date, end_date, '[]') WITH &&)"
    )

    # Client contacts now point at real clients. Rows written before clients existed get a
    # placeholder client per dangling id, visited tenant by tenant (RLS is forced for us too).
    op.execute(
        """
        DO $$
        DECLARE t record;
        BEGIN
          FOR t IN SELECT id, locale, currency FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t.id::text, true);
            INSERT INTO clients (tenant_id, id, name, locale, currency)
            SELECT DISTINCT t.id, x.client_id, 'Client', t.locale, t.currency
            FROM (
              SELECT client_id FROM memberships WHERE tenant_id = t.id AND client_id IS NOT NULL
              UNION
              SELECT client_id FROM invitations WHERE tenant_id = t.id AND client_id IS NOT NULL
            ) x
            ON CONFLICT DO NOTHING;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.create_foreign_key(
        "fk_memberships_client",
        "memberships",
        "clients",
        ["tenant_id", "client_id"],
        ["tenant_id", "id"],
    )
    op.create_foreign_key(
        "fk_invitations_client",
        "invitations",
        "clients",
        ["tenant_id", "client_id"],
        ["tenant_id", "id"],
    )
    op.execute(f"GRANT SELECT ON plans TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_constraint("fk_invitations_client", "invitations")
    op.drop_constraint("fk_memberships_client", "memberships")
    op.drop_table("assignments")
    op.drop_table("brands")
    op.drop_table("clients")
    op.drop_constraint("ck_memberships_capacity", "memberships")
    op.drop_column("memberships", "monthly_capacity_minutes")
    op.drop_column("tenants", "plan_id")
    op.drop_table("plans")
