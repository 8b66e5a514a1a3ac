"""What an export holds, declared in one place for every tenant-owned table.

Each table is either client data, reached from a client by a path (`CLIENT_PATHS`), or the
agency's own (`AGENCY_ONLY`, exported only with the whole agency), or never exported
(`NEVER_EXPORTED`: nothing in it is anyone's data but credentials). Columns holding secrets are
dropped everywhere (`SECRET_COLUMNS`). tests/privacy/test_export_scope.py fails when a tenant
table is in none of the three, so a new table must be declared here before it ships.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Table

from infra.tables import all_tables


@dataclass(frozen=True)
class Via:
    """A row belongs to the client that `column` leads to: the client's own id when `parent`
    is None, else the id of a `parent` row, which is itself reached by its own path."""

    column: str
    parent: str | None = None


CLIENT = Via("client_id")
BRAND = Via("brand_id", "brands")
CONTENT = Via("content_item_id", "content_items")

CLIENT_PATHS: dict[str, Via] = {
    "clients": Via("id"),
    # The client's own people (role `client`); staff memberships have no client.
    "memberships": CLIENT,
    "invitations": CLIENT,
    "brands": CLIENT,
    "brand_workflows": BRAND,
    "content_items": BRAND,
    "content_revisions": CONTENT,
    "approval_links": CONTENT,
    "approval_decisions": CONTENT,
    "content_comments": CONTENT,
    "retainers": CLIENT,
    "retainer_terms": Via("retainer_id", "retainers"),
    "rates": CLIENT,
    "time_entries": CLIENT,
    "timers": BRAND,
    "budget_alerts": CLIENT,
    "invoices": CLIENT,
    "invoice_lines": Via("invoice_id", "invoices"),
    "credit_notes": Via("invoice_id", "invoices"),
    "social_accounts": BRAND,
    "social_stats_daily": Via("account_id", "social_accounts"),
    "social_anomalies": Via("account_id", "social_accounts"),
    "publications": BRAND,
    "publication_attempts": Via("publication_id", "publications"),
    "inbox_threads": BRAND,
    "inbox_items": BRAND,
    "inbox_actions": Via("item_id", "inbox_items"),
    "inbox_crises": BRAND,
    "saved_replies": BRAND,
    "inbox_rules": BRAND,
    "response_policies": CLIENT,
}

AGENCY_ONLY: dict[str, str] = {
    "auth_sessions": "sign-in records of the agency's accounts (security, not client data)",
    "audit_events": "the agency's own record of who did what",
    "assignments": "the agency's staffing of brands (memberships of staff)",
    "agency_branding": "the agency's own logo and address",
    "workflow_templates": "the agency's approval processes, shared by its clients",
    "timesheets": "staff weeks across clients",
    "subscriptions": "the agency's own Passerelle subscription",
    "inbox_cursors": "polling positions of the inbox reader (machinery)",
    "partner_apps": "the agency's partner software",
    "webhook_endpoints": "the agency's partner software",
    "webhook_deliveries": "the agency's partner software",
    "events": "the transactional outbox (machinery)",
    "data_exports": "the agency's record of its exports",
    "erasures": "the agency's record of whom it erased: pseudonyms and keyed digests only",
    "agency_closures": "the agency's record of its own closure",
    "invoice_archives": "invoices kept by law after a closure, when no one can export",
}

NEVER_EXPORTED: dict[str, str] = {
    "refresh_tokens": "only digests of sign-in tokens: credentials, nobody's data",
    "social_connections": "OAuth handshakes in flight: PKCE verifiers, minutes long",
}

SECRET_COLUMNS: dict[str, frozenset[str]] = {
    "social_accounts": frozenset({"access_token", "refresh_token"}),
    "partner_apps": frozenset({"secret_hash", "previous_secret_hash"}),
    "webhook_endpoints": frozenset({"secret"}),
    "refresh_tokens": frozenset({"token_hash"}),
    "social_connections": frozenset({"code_verifier"}),
}

# Column names that look like secrets and are not: the test that looks for secret-looking
# names accepts these.
NOT_SECRET: frozenset[tuple[str, str]] = frozenset(
    {
        ("agency_branding", "logo_sha256"),
        ("social_accounts", "token_expires_at"),
        ("social_accounts", "token_scope"),
        ("data_exports", "sha256"),
        ("partner_apps", "previous_secret_expires_at"),
        ("partner_apps", "last_token_at"),
    }
)


@cache
def tenant_tables() -> dict[str, Table]:
    """Every tenant-owned table of the application (a `tenant_id` column), found by importing
    each domain's models, so that a new table is exported (or refused) without an edit here."""
    return {name: table for name, table in sorted(all_tables().items()) if "tenant_id" in table.c}


class Undeclared(Exception):
    """A tenant table that this module does not declare: an export refuses to guess."""


def exported_tables(*, whole_agency: bool) -> list[str]:
    tables = tenant_tables()
    undeclared = [
        t
        for t in tables
        if t not in CLIENT_PATHS and t not in AGENCY_ONLY and t not in NEVER_EXPORTED
    ]
    if undeclared:
        raise Undeclared(", ".join(undeclared))
    if whole_agency:
        return [t for t in tables if t not in NEVER_EXPORTED]
    return [t for t in tables if t in CLIENT_PATHS]


def columns(table: str) -> list[str]:
    hidden = SECRET_COLUMNS.get(table, frozenset())
    return [c.name for c in tenant_tables()[table].columns if c.name not in hidden]


def client_condition(table: str, alias: str, depth: int = 0) -> str:
    """SQL that holds for the rows of `table` (as `alias`) that belong to the client bound as
    `:client_id`. Table and column names come from this module and the metadata only."""
    via = CLIENT_PATHS[table]
    if via.parent is None:
        return f"{alias}.{via.column} = :client_id"
    inner = f"p{depth}"
    return (
        f"{alias}.{via.column} IN (SELECT {inner}.id FROM {via.parent} {inner} "  # noqa: S608
        f"WHERE {inner}.tenant_id = :tenant_id AND "
        f"{client_condition(via.parent, inner, depth + 1)})"
    )
