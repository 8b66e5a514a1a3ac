"""A schema that distributes by tenant (Citus), and a tenant setting that reaches its workers.

* The tenant is set with `SET LOCAL app.tenant_id = ...` instead of
  `set_config('app.tenant_id', ..., true)`: Citus propagates `SET LOCAL` to the worker nodes
  (with `citus.propagate_set_commands = 'local'`), not `set_config`, and the policies there
  would see no tenant (fail-closed: reads empty, inserts refused). The SQL functions that enter
  a tenant (the sweepers that visit every agency, and `enter_tenant_as_member`) are rewritten
  from their current definitions, so each keeps its body and grants; only that statement
  changes. `set_tenant(uuid)` and `set_acting_user(uuid)` are new: the application's one way to
  run the same statement with a bind parameter (a `SET` takes none), so its text is the same
  for every tenant and prepared once per connection.
* Every unique constraint of a tenant table includes `tenant_id`, as Citus requires of a table
  distributed by it:
  - `events.seq` orders one tenant's outbox (the only `ORDER BY seq` is within a tenant), so
    `UNIQUE (tenant_id, seq)` keeps its meaning.
  - `partner_apps.client_id` embeds the tenant and the app id (`pa_<tenant>_<app>`), and the
    token endpoint parses the tenant out of it before reading, so no lookup spans agencies:
    `UNIQUE (tenant_id, client_id)`.
  - `subscriptions.stripe_subscription_id`: the Stripe webhook finds the agency through
    `tenants.stripe_customer_id` (a global, unique column), never through the subscription id,
    and an agency has one subscription row (`UNIQUE (tenant_id)`), so the global unique
    constraint is dropped rather than widened.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

import re
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from migrations.helpers import APP_ROLE

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every function of the schema that sets the tenant (checked by tests/infra/test_distribution.py,
# which fails on any function still calling set_config on it).
FUNCTIONS = (
    "outbox_due_tenants",
    "overdue_timer_tenants",
    "due_approval_tenants",
    "webhook_due_tenants",
    "publishing_due",
    "inbox_account_owners",
    "inbox_due",
    "exports_due",
    "enter_tenant_as_member",
)

_SET_CONFIG = re.compile(r"PERFORM set_config\('app\.tenant_id', (.+?), true\);")
_SET_LOCAL = re.compile(r"EXECUTE format\('SET LOCAL app\.tenant_id = %L', (.+?)\);")


def _rewrite(pattern: re.Pattern[str], replacement: str) -> None:
    bind = op.get_bind()
    for name in FUNCTIONS:
        definition = bind.scalar(
            text(
                "SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
                "WHERE p.proname = :name AND p.pronamespace = 'public'::regnamespace"
            ),
            {"name": name},
        )
        changed, count = pattern.subn(replacement, definition)
        if not count:
            raise RuntimeError(f"{name}: no tenant setting to rewrite")
        # The function's own definition, as PostgreSQL printed it, with one statement changed.
        op.execute(text(changed))


def _setter(name: str, setting: str) -> None:
    # Both names are constants of this file; the value is quoted by format's %L.
    op.execute(
        f"""
        CREATE FUNCTION {name}(p_value uuid) RETURNS void
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        BEGIN
          EXECUTE format('SET LOCAL {setting} = %L', p_value);
        END $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {name}(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {name}(uuid) TO {APP_ROLE}")


def upgrade() -> None:
    _rewrite(_SET_CONFIG, r"EXECUTE format('SET LOCAL app.tenant_id = %L', \1);")
    _setter("set_tenant", "app.tenant_id")
    _setter("set_acting_user", "app.user_id")

    op.execute("ALTER TABLE events DROP CONSTRAINT events_seq_key")
    op.execute("ALTER TABLE events ADD CONSTRAINT uq_events_seq UNIQUE (tenant_id, seq)")
    op.execute("ALTER TABLE partner_apps DROP CONSTRAINT uq_partner_apps_client_id")
    op.execute(
        "ALTER TABLE partner_apps ADD CONSTRAINT uq_partner_apps_client_id "
        "UNIQUE (tenant_id, client_id)"
    )
    op.execute("ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_stripe_subscription_id_key")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_stripe_subscription_id_key "
        "UNIQUE (stripe_subscription_id)"
    )
    op.execute("ALTER TABLE partner_apps DROP CONSTRAINT uq_partner_apps_client_id")
    op.execute(
        "ALTER TABLE partner_apps ADD CONSTRAINT uq_partner_apps_client_id UNIQUE (client_id)"
    )
    op.execute("ALTER TABLE events DROP CONSTRAINT uq_events_seq")
    op.execute("ALTER TABLE events ADD CONSTRAINT events_seq_key UNIQUE (seq)")

    op.execute("DROP FUNCTION set_acting_user(uuid)")
    op.execute("DROP FUNCTION set_tenant(uuid)")
    _rewrite(_SET_LOCAL, r"PERFORM set_config('app.tenant_id', \1, true);")
