"""Partner apps (OAuth2 client credentials), webhook endpoints and their deliveries.

Partner secrets are stored as SHA-256 digests (they are 256-bit random, so no slow hash is
needed); a rotated secret keeps working until `previous_secret_expires_at`. Webhook signing
secrets must be read back to sign, so they are stored encrypted (Fernet, TOKEN_ENCRYPTION_KEYS).
A delivery is unique per (endpoint, event) except for replays, so an outbox event delivered
twice fans out once. Every table is tenant-owned with forced row-level security, created here
with its policy.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import APP_ROLE, create_tenant_table, tenant_fk

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_tenant_table(
        "partner_apps",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("client_id", sa.String(80), nullable=False),
        sa.Column("scopes", JSONB, nullable=False, server_default="[]"),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("previous_secret_hash", sa.String(64)),
        sa.Column("previous_secret_expires_at", tstz),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("revoked_at", tstz),
        sa.Column("created_by", uuid, nullable=False),
        sa.Column("created_by_membership", uuid, nullable=False),
        sa.Column("last_token_at", tstz),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("memberships", "created_by_membership"),
        sa.UniqueConstraint("client_id", name="uq_partner_apps_client_id"),
        sa.CheckConstraint("status IN ('active', 'revoked')", name="ck_partner_apps_status"),
    )

    create_tenant_table(
        "webhook_endpoints",
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(500)),
        sa.Column("event_types", JSONB, nullable=False, server_default="[]"),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="enabled"),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("disabled_at", tstz),
        sa.Column("last_success_at", tstz),
        sa.Column("last_failure_at", tstz),
        sa.Column("created_by", uuid),
        # Set when a partner app made the endpoint: that app sees and manages only its own.
        sa.Column("partner_app_id", uuid),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("partner_apps", "partner_app_id"),
        sa.CheckConstraint("status IN ('enabled', 'disabled')", name="ck_webhook_endpoints_status"),
    )

    create_tenant_table(
        "webhook_deliveries",
        sa.Column("endpoint_id", uuid, nullable=False),
        sa.Column("event_id", uuid, nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempt_log", JSONB, nullable=False, server_default="[]"),
        sa.Column("next_attempt_at", tstz),
        sa.Column("last_attempt_at", tstz),
        sa.Column("response_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("replay_of", uuid),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("webhook_endpoints", "endpoint_id"),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')", name="ck_webhook_deliveries_status"
        ),
    )
    # An outbox event that is handled twice (at-least-once) still makes one delivery.
    op.create_index(
        "uq_webhook_deliveries_event",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "event_id"],
        unique=True,
        postgresql_where=sa.text("replay_of IS NULL"),
    )
    op.create_index(
        "ix_webhook_deliveries_recent", "webhook_deliveries", ["tenant_id", "created_at", "id"]
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["tenant_id", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )

    # The sweeper's view across agencies, like outbox_due_tenants(): it visits each tenant
    # under that tenant's own setting, so row-level security still applies.
    op.execute(
        """
        CREATE FUNCTION webhook_due_tenants(cutoff timestamptz)
        RETURNS TABLE (due_tenant_id uuid)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            IF EXISTS (
              SELECT 1 FROM webhook_deliveries d
              WHERE d.tenant_id = t AND d.status = 'pending' AND d.next_attempt_at <= cutoff
            ) THEN
              due_tenant_id := t;
              RETURN NEXT;
            END IF;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION webhook_due_tenants(timestamptz) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION webhook_due_tenants(timestamptz)")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("partner_apps")
