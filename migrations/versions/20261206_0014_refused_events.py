"""An outbox event may end `refused`: a handler met a permanent refusal (a mail server's 5xx),
which retrying would only meet again. Like `dead`, it is final; `last_error` says why.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("ck_events_status", "events", type_="check")
    op.create_check_constraint(
        "ck_events_status", "events", "status IN ('pending', 'delivered', 'dead', 'refused')"
    )


def downgrade() -> None:
    # A refused event was given up on, as a dead one was. Forced RLS would hide every row from
    # the owner too: lifted for this one statement, inside the migration's transaction.
    op.execute("ALTER TABLE events NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE events SET status = 'dead' WHERE status = 'refused'")
    op.execute("ALTER TABLE events FORCE ROW LEVEL SECURITY")
    op.drop_constraint("ck_events_status", "events", type_="check")
    op.create_check_constraint(
        "ck_events_status", "events", "status IN ('pending', 'delivered', 'dead')"
    )
