"""The outbox sweeper is told the time: outbox_due_tenants(due timestamptz).

Business time is the application's clock (infra/clock.py), which tests move; PostgreSQL's
now() is not moved with it. Like due_approval_tenants(due) and webhook_due_tenants(cutoff),
the function now takes "now" as a parameter instead of reading the database clock.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

from migrations.helpers import APP_ROLE

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(signature: str, due: str) -> None:
    # Visits each tenant under that tenant's own setting, so RLS still applies (see 0001).
    # Both arguments are constants of this file.
    op.execute(
        f"""
        CREATE FUNCTION {signature} RETURNS TABLE (due_tenant_id uuid)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
          FOR t IN SELECT id FROM tenants LOOP
            PERFORM set_config('app.tenant_id', t::text, true);
            IF EXISTS (
              SELECT 1 FROM events e
              WHERE e.tenant_id = t AND e.status = 'pending'
                AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= {due})
            ) THEN
              due_tenant_id := t;
              RETURN NEXT;
            END IF;
          END LOOP;
          PERFORM set_config('app.tenant_id', '', true);
        END $$
        """  # noqa: S608
    )


def upgrade() -> None:
    op.execute("DROP FUNCTION outbox_due_tenants()")
    _create("outbox_due_tenants(due timestamptz)", "due")
    op.execute(f"GRANT EXECUTE ON FUNCTION outbox_due_tenants(timestamptz) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION outbox_due_tenants(timestamptz)")
    _create("outbox_due_tenants()", "now()")
    op.execute(f"GRANT EXECUTE ON FUNCTION outbox_due_tenants() TO {APP_ROLE}")
