"""A person's own decisions, newest first: the client portal's history page
(`workflows.service.portal.my_decisions`) reads them by tenant and user, which no index served.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_decisions_by_person",
        "approval_decisions",
        ["tenant_id", "user_id", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_decisions_by_person", table_name="approval_decisions")
