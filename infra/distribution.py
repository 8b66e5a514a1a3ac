"""How each table would be placed on a Citus cluster, and the SQL that places them.

Every table of the schema has one declared role:

* `tenant`: distributed by `tenant_id`, all colocated, so that one agency's rows of every table
  sit on the same node and the joins, foreign keys and triggers between them stay on that node;
* `reference`: small, global, read by every tenant (agencies, users, Stripe's events),
  copied to every node;
* `local`: stays a plain table on the coordinator (alembic's bookkeeping, the raw platform
  webhook queue, which only the receiver writes and the drainer reads, never joined with a
  tenant's table).

tests/infra/test_distribution.py walks the migrated database against this declaration (a new
table without a role fails), and `passerelle citus-sql` prints the runbook from the same walk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


class Role(StrEnum):
    tenant = "tenant"
    reference = "reference"
    local = "local"


_TENANT_TABLES = """
    agency_branding agency_closures approval_decisions approval_links assignments audit_events
    auth_sessions brand_workflows brands budget_alerts clients content_comments content_items
    content_revisions credit_notes data_exports erasures events inbox_actions inbox_crises
    inbox_cursors inbox_items inbox_rules inbox_threads invitations invoice_archives
    invoice_lines invoices memberships partner_apps publication_attempts publications rates
    refresh_tokens response_policies retainer_terms retainers saved_replies social_accounts
    social_anomalies social_connections social_stats_daily subscriptions time_entries timers
    timesheets webhook_deliveries webhook_endpoints workflow_templates
"""

TABLES: dict[str, Role] = {
    **dict.fromkeys(_TENANT_TABLES.split(), Role.tenant),
    "tenants": Role.reference,
    "users": Role.reference,
    "stripe_events": Role.reference,
    "alembic_version": Role.local,
    "platform_events": Role.local,
}

# Triggers Citus only accepts with `citus.enable_unsafe_triggers`, and why each is safe: it
# reads only rows of the same tenant, which colocation keeps on the same node.
SAFE_TRIGGERS: dict[str, str] = {
    "tr_time_entries_invoiced": ("reads the entry's own invoice (same tenant_id, colocated shard)"),
}


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    referenced: str
    columns: tuple[str, ...]
    referenced_columns: tuple[str, ...]
    definition: str


@dataclass(frozen=True)
class UniqueKey:
    name: str
    table: str
    columns: tuple[str, ...]
    """Column names; an expression in the key is an empty string."""


@dataclass
class Schema:
    tables: set[str]
    tenant_id_tables: set[str]
    foreign_keys: list[ForeignKey]
    unique_keys: list[UniqueKey]
    triggers: dict[str, list[str]] = field(default_factory=dict)


_TABLES = text(
    "SELECT c.relname FROM pg_class c "
    "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
)
_TENANT_ID = text(
    "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
    "AND a.attname = 'tenant_id' AND NOT a.attisdropped"
)
_FOREIGN_KEYS = text(
    """
    SELECT con.conname, c.relname, f.relname,
           ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
                 ORDER BY k.i),
           ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
                 ORDER BY k.i),
           pg_get_constraintdef(con.oid)
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_class f ON f.oid = con.confrelid
    WHERE con.contype = 'f' AND c.relnamespace = 'public'::regnamespace
    """
)
# Primary keys, unique constraints, unique indexes and exclusion constraints: each is enforced
# by an index, and Citus needs the distribution column in each. An expression in the key reads
# as an empty name.
_UNIQUE_KEYS = text(
    """
    SELECT x.relname, c.relname,
           ARRAY(SELECT coalesce(a.attname::text, '')
                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                 LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
                 ORDER BY k.o)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_class x ON x.oid = i.indexrelid
    WHERE (i.indisunique OR i.indisexclusion) AND c.relnamespace = 'public'::regnamespace
    """
)
_TRIGGERS = text(
    "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace ORDER BY 1, 2"
)


async def read_schema(connection: AsyncConnection) -> Schema:
    """The schema as migrated, from the catalog (readable by any role)."""
    tables = set((await connection.execute(_TABLES)).scalars())
    tenant_id_tables = set((await connection.execute(_TENANT_ID)).scalars())
    foreign_keys = [
        ForeignKey(name, table, referenced, tuple(cols), tuple(ref_cols), definition)
        for name, table, referenced, cols, ref_cols, definition in await connection.execute(
            _FOREIGN_KEYS
        )
    ]
    unique_keys = [
        UniqueKey(name, table, tuple(cols))
        for name, table, cols in await connection.execute(_UNIQUE_KEYS)
    ]
    triggers: dict[str, list[str]] = {}
    for table, trigger in await connection.execute(_TRIGGERS):
        triggers.setdefault(table, []).append(trigger)
    return Schema(tables, tenant_id_tables, foreign_keys, unique_keys, triggers)


def undeclared(schema: Schema) -> set[str]:
    return schema.tables - TABLES.keys()


def _order(
    tables: Iterable[str], foreign_keys: list[ForeignKey]
) -> tuple[list[str], list[ForeignKey]]:
    """Parents before children; where a cycle leaves no table free, the foreign keys of the
    least-blocked table (by name on a tie) are set aside, to be added once all are placed."""
    remaining = set(tables)
    edges = [
        fk
        for fk in foreign_keys
        if fk.table in remaining and fk.referenced in remaining and fk.table != fk.referenced
    ]
    ordered: list[str] = []
    deferred: list[ForeignKey] = []
    while remaining:

        def blockers(table: str) -> list[ForeignKey]:
            return [
                fk
                for fk in edges
                if fk.table == table and fk.referenced in remaining and fk not in deferred
            ]

        free = sorted(t for t in remaining if not blockers(t))
        if not free:
            table = min(remaining, key=lambda t: (len(blockers(t)), t))
            deferred.extend(blockers(table))
            free = [table]
        for table in free:
            remaining.discard(table)
            ordered.append(table)
    return ordered, deferred


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def citus_sql(schema: Schema, app_role: str) -> list[str]:
    """The ordered statements (with `--` comments) that distribute the schema on Citus."""
    reference, reference_deferred = _order(
        (t for t in sorted(schema.tables) if TABLES.get(t) == Role.reference),
        schema.foreign_keys,
    )
    tenant, tenant_deferred = _order(
        (t for t in sorted(schema.tables) if TABLES.get(t) == Role.tenant), schema.foreign_keys
    )
    deferred = reference_deferred + tenant_deferred
    out = [
        "-- Run as the schema owner on the Citus coordinator, after `passerelle migrate`,",
        "-- on a schema whose nodes were added (citus_add_node), in one session.",
        "",
        "-- The application sets its tenant with SET LOCAL; Citus forwards it to the workers",
        "-- only with this setting (row-level security there reads app.tenant_id).",
        f"ALTER ROLE {_identifier(app_role)} SET citus.propagate_set_commands = 'local';",
    ]
    triggered = sorted(t for t in schema.triggers if TABLES.get(t) == Role.tenant)
    if triggered:
        out += ["", "-- Triggers on distributed tables (each reads only its own tenant's rows):"]
        for table in triggered:
            for trigger in schema.triggers[table]:
                why = SAFE_TRIGGERS.get(trigger, "NOT REVIEWED: check it before distributing")
                out.append(f"--   {table}.{trigger}: {why}")
        out.append("SET citus.enable_unsafe_triggers = on;")
    if deferred:
        out += ["", "-- Foreign key cycles: set aside, then added back once both sides are placed."]
        out += [
            f"ALTER TABLE {_identifier(fk.table)} DROP CONSTRAINT {_identifier(fk.name)};"
            for fk in deferred
        ]
    out += ["", "-- Reference tables (a copy on every node), parents first."]
    out += [f"SELECT create_reference_table({_literal(t)});" for t in reference]
    out += ["", "-- Tenant tables, distributed by tenant_id and colocated, parents first."]
    for index, table in enumerate(tenant):
        colocation = "" if index == 0 else f", colocate_with => {_literal(tenant[0])}"
        out.append(f"SELECT create_distributed_table({_literal(table)}, 'tenant_id'{colocation});")
    if deferred:
        out += [""]
        out += [
            f"ALTER TABLE {_identifier(fk.table)} ADD CONSTRAINT {_identifier(fk.name)} "
            f"{fk.definition};"
            for fk in deferred
        ]
    local = sorted(t for t in schema.tables if TABLES.get(t) == Role.local)
    out += ["", "-- Left on the coordinator: " + ", ".join(local) + "."]
    return out
