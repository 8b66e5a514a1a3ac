"""Foundation: tenants, users, memberships, login sessions, invitations, audit, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table, grant_app

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Global directory tables: no tenant_id, read by login and by cross-tenant jobs.
    op.create_table(
        "tenants",
        sa.Column("id", uuid, primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'", name="ck_tenants_slug"
        ),
        sa.CheckConstraint(
            "status IN ('active', 'past_due', 'suspended', 'canceled')", name="ck_tenants_status"
        ),
    )
    grant_app("tenants", "SELECT, INSERT, UPDATE")

    op.create_table(
        "users",
        sa.Column("id", uuid, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("locale", sa.String(8), nullable=False, server_default="en"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ux_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    grant_app("users", "SELECT, INSERT, UPDATE")

    create_tenant_table(
        "memberships",
        sa.Column("user_id", uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("client_id", uuid),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "user_id", name="uq_memberships_user"),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'manager', 'member', 'client')", name="ck_memberships_role"
        ),
        sa.CheckConstraint(
            "status IN ('invited', 'active', 'disabled')", name="ck_memberships_status"
        ),
        sa.CheckConstraint(
            "role <> 'client' OR client_id IS NOT NULL", name="ck_memberships_client"
        ),
    )
    op.create_index("ix_memberships_user", "memberships", ["user_id"])
    # A person may read their own memberships in every agency (login, the agency switcher);
    # nothing else crosses the tenant line.
    op.execute(
        "CREATE POLICY own_memberships ON memberships FOR SELECT "
        "USING (user_id = NULLIF(current_setting('app.user_id', true), '')::uuid)"
    )

    create_tenant_table(
        "auth_sessions",
        sa.Column("user_id", uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("membership_id", uuid, nullable=False),
        sa.Column("revoked_at", tstz),
        sa.Column("revoked_reason", sa.String(32)),
        sa.Column("user_agent", sa.String(300)),
        sa.ForeignKeyConstraint(
            ["tenant_id", "membership_id"], ["memberships.tenant_id", "memberships.id"]
        ),
    )

    create_tenant_table(
        "refresh_tokens",
        sa.Column("session_id", uuid, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", tstz, nullable=False),
        sa.Column("used_at", tstz),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["auth_sessions.tenant_id", "auth_sessions.id"]
        ),
    )
    op.create_index("ix_refresh_tokens_session", "refresh_tokens", ["tenant_id", "session_id"])

    create_tenant_table(
        "invitations",
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("client_id", uuid),
        sa.Column("invited_by", uuid, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("expires_at", tstz, nullable=False),
        sa.Column("accepted_at", tstz),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'revoked')", name="ck_invitations_status"
        ),
        sa.CheckConstraint(
            "role <> 'client' OR client_id IS NOT NULL", name="ck_invitations_client"
        ),
    )
    op.create_index(
        "ux_invitations_pending_email",
        "invitations",
        ["tenant_id", sa.text("lower(email)")],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )

    create_tenant_table(
        "audit_events",
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_id", uuid),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject_type", sa.String(32), nullable=False),
        sa.Column("subject_id", uuid, nullable=False),
        sa.Column("changes", JSONB, nullable=False, server_default="{}"),
        sa.Column("request_id", sa.String(128)),
    )
    op.create_index("ix_audit_subject", "audit_events", ["tenant_id", "subject_type", "subject_id"])
    op.create_index("ix_audit_created", "audit_events", ["tenant_id", "created_at"])
    # The audit trail is append-only for the application.
    op.execute(f"REVOKE UPDATE, DELETE ON audit_events FROM {APP_ROLE}")

    create_tenant_table(
        "events",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("aggregate_type", sa.String(50), nullable=False),
        sa.Column("aggregate_id", uuid, nullable=False),
        sa.Column("payload", JSONB, nullable=False, server_default="{}"),
        sa.Column("request_id", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", tstz),
        sa.Column("delivered_at", tstz),
        sa.Column("last_error", sa.Text),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="ck_events_status"),
    )
    op.create_index(
        "ix_events_pending",
        "events",
        ["tenant_id", "seq"],
        postgresql_where=sa.text("status = 'pending'"),
    )

    # The outbox sweeper must find tenants with due events without a cross-tenant read:
    # it visits each tenant under that tenant's own setting, so RLS still applies.
    op.execute(
        """
        CREATE FUNCTION outbox_due_tenants() RETURNS TABLE (due_tenant_id uuid)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            IF EXISTS (
              SELECT 1 FROM events e
              WHERE e.tenant_id = t AND e.status = 'pending'
                AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= now())
            ) THEN
              due_tenant_id := t;
              RETURN NEXT;
            END IF;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION outbox_due_tenants() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION outbox_due_tenants()")
    for table in (
        "events",
        "audit_events",
        "invitations",
        "refresh_tokens",
        "auth_sessions",
        "memberships",
        "users",
        "tenants",
    ):
        op.drop_table(table)
