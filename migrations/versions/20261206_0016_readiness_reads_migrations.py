"""The application may read which migration the database is at.

`/readyz` answers 503 while the database is behind the code's migrations (a deploy whose
`passerelle migrate` has not run yet): the application role needs to read `alembic_version`,
and only that, the version being no tenant's data.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

from migrations.helpers import APP_ROLE

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(f"GRANT SELECT ON alembic_version TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ON alembic_version FROM {APP_ROLE}")  # noqa: S608
