"""Social accounts, their daily statistics, OAuth connections in flight, and anomalies.

Tokens are stored encrypted (bytea, Fernet, keys from settings). Daily statistics are keyed
by (tenant, account, day) so a re-run of a sync updates and never duplicates. Every table is
tenant-owned with forced row-level security, created here with its policy.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from migrations.helpers import create_tenant_table, tenant_fk

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

uuid = UUID(as_uuid=True)
tstz = sa.DateTime(timezone=True)

PLATFORMS = (
    "facebook_page",
    "instagram_business",
    "linkedin_organization",
    "x",
    "youtube",
    "tiktok",
    "sandbox",
)
_platform_in = "platform IN (" + ", ".join(f"'{p}'" for p in PLATFORMS) + ")"


def upgrade() -> None:
    create_tenant_table(
        "social_accounts",
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("handle", sa.String(255)),
        sa.Column("display_name", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False, server_default="connected"),
        sa.Column("access_token", sa.LargeBinary),
        sa.Column("refresh_token", sa.LargeBinary),
        sa.Column("token_expires_at", tstz),
        sa.Column("token_scope", sa.Text),
        sa.Column("last_success_at", tstz),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", tstz),
        sa.Column("next_sync_at", tstz),
        sa.Column("synced_through", sa.Date),
        sa.Column("metric_errors", JSONB, nullable=False, server_default="{}"),
        sa.Column("connected_by", uuid),
        sa.Column("connected_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        tenant_fk("brands", "brand_id"),
        # One place per agency for an account: connecting it again updates that row.
        sa.UniqueConstraint("tenant_id", "platform", "external_id", name="uq_social_accounts"),
        sa.CheckConstraint(_platform_in, name="ck_social_accounts_platform"),
        sa.CheckConstraint(
            "status IN ('connected', 'needs_reauth', 'error', 'paused')",
            name="ck_social_accounts_status",
        ),
    )
    op.create_index("ix_social_accounts_brand", "social_accounts", ["tenant_id", "brand_id"])
    op.create_index(
        "ix_social_accounts_due",
        "social_accounts",
        ["tenant_id", "next_sync_at"],
        postgresql_where=sa.text("status IN ('connected', 'error')"),
    )

    create_tenant_table(
        "social_stats_daily",
        sa.Column("account_id", uuid, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("followers", sa.BigInteger),
        sa.Column("follower_change", sa.BigInteger),
        sa.Column("impressions", sa.BigInteger),
        sa.Column("reach", sa.BigInteger),
        sa.Column("engagements", sa.BigInteger),
        sa.Column("posts_published", sa.BigInteger),
        sa.Column("video_views", sa.BigInteger),
        sa.Column("fetched_at", tstz, nullable=False, server_default=sa.func.now()),
        # The no-duplicate guarantee: a re-run of a sync updates this row, never adds one.
        sa.UniqueConstraint("tenant_id", "account_id", "day", name="uq_social_stats_daily_day"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["social_accounts.tenant_id", "social_accounts.id"],
            ondelete="CASCADE",
        ),
    )

    create_tenant_table(
        "social_connections",
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("membership_id", uuid, nullable=False),
        sa.Column("code_verifier", sa.LargeBinary, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("expires_at", tstz, nullable=False),
        sa.Column("used_at", tstz),
        sa.Column("account_id", uuid),
        tenant_fk("brands", "brand_id"),
        sa.CheckConstraint(_platform_in, name="ck_social_connections_platform"),
    )

    create_tenant_table(
        "social_anomalies",
        sa.Column("account_id", uuid, nullable=False),
        sa.Column("brand_id", uuid, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("median", sa.Float, nullable=False),
        sa.Column("mad", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["social_accounts.tenant_id", "social_accounts.id"],
            ondelete="CASCADE",
        ),
        # A re-run of a sync finds the same anomaly again: the key makes it one row, one event.
        sa.UniqueConstraint("tenant_id", "account_id", "day", "metric", name="uq_social_anomalies"),
        sa.CheckConstraint("direction IN ('drop', 'spike')", name="ck_social_anomalies_dir"),
    )
    op.create_index(
        "ix_social_anomalies_brand_day", "social_anomalies", ["tenant_id", "brand_id", "day"]
    )


def downgrade() -> None:
    op.drop_table("social_anomalies")
    op.drop_table("social_connections")
    op.drop_table("social_stats_daily")
    op.drop_table("social_accounts")
