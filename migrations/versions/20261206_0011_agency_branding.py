"""The agency's branding: its logo (shown on the client pages and in client e-mails) and the
address of its own client-facing app, where e-mail links then point.

One row per agency at most, so the key is the tenant alone; row-level security is enabled,
forced and given the fail-closed policy in this same migration (`isolate`). The logo is stored
in the row (at most 256 KiB, checked by the API) and served by its content hash.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from migrations.helpers import isolate

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

tstz = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agency_branding",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("logo", sa.LargeBinary),
        sa.Column("logo_content_type", sa.String(32)),
        sa.Column("logo_sha256", sa.String(64)),
        sa.Column("logo_size", sa.Integer),
        sa.Column("app_base_url", sa.String(2048)),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", tstz, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_agency_branding"),
        sa.CheckConstraint(
            "(logo IS NULL) = (logo_content_type IS NULL) AND (logo IS NULL) = "
            "(logo_sha256 IS NULL) AND (logo IS NULL) = (logo_size IS NULL)",
            name="ck_agency_branding_logo_whole",
        ),
        sa.CheckConstraint(
            "logo_content_type IN ('image/png', 'image/jpeg', 'image/webp')",
            name="ck_agency_branding_logo_type",
        ),
        sa.CheckConstraint(
            "logo_size BETWEEN 1 AND 262144 AND logo_size = octet_length(logo)",
            name="ck_agency_branding_logo_size",
        ),
    )
    isolate("agency_branding")


def downgrade() -> None:
    op.drop_table("agency_branding")
