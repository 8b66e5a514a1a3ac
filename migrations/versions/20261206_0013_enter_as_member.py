"""Enter a tenant and read the signed-in member in one round trip.

Every authenticated request used to send two statements before its own work: one that set
`app.tenant_id`, then the principal query (is this member still active, this login still
open?). Both now run in one call: the function sets the tenant for the transaction, then reads
the member under row-level security as the calling role (SECURITY INVOKER), in a second
statement so that the policies see the tenant just set. No row means no access, as before.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

from migrations.helpers import APP_ROLE

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "enter_tenant_as_member(p_tenant uuid, p_membership uuid, p_user uuid, p_session uuid)"


def upgrade() -> None:
    # SIGNATURE is a constant of this file.
    op.execute(
        f"""
        CREATE FUNCTION {SIGNATURE}
        RETURNS TABLE (
          role varchar, client_id uuid, timezone varchar, tenant_status varchar,
          past_due_since timestamptz
        )
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        #variable_conflict use_column
        BEGIN
          PERFORM set_config('app.tenant_id', p_tenant::text, true);
          RETURN QUERY
            SELECT m.role::varchar, m.client_id, t.timezone::varchar, t.status::varchar,
                   t.past_due_since
            FROM memberships m
            JOIN auth_sessions s ON s.tenant_id = m.tenant_id AND s.membership_id = m.id
            JOIN tenants t ON t.id = m.tenant_id
            WHERE m.tenant_id = p_tenant AND m.id = p_membership AND m.user_id = p_user
              AND m.status = 'active' AND s.id = p_session AND s.revoked_at IS NULL;
        END $$
        """  # noqa: S608
    )
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
