"""Every tenant-owned table is declared in privacy/scope.py: client data with its path to a
client, the agency's own, or never exported; and secret-looking columns are declared."""

from __future__ import annotations

import re

import pytest

from privacy import scope
from tests.support.walk import tenant_tables

SECRET_LOOKING = re.compile(r"secret|token|password|verifier|hash|sha256|api_key|private")


def test_every_tenant_table_is_declared_once():
    tables = set(tenant_tables())
    assert set(scope.tenant_tables()) == tables
    declared = [set(scope.CLIENT_PATHS), set(scope.AGENCY_ONLY), set(scope.NEVER_EXPORTED)]
    undeclared = tables - set().union(*declared)
    assert not undeclared, f"declare these tables in privacy/scope.py: {sorted(undeclared)}"
    for i, a in enumerate(declared):
        for b in declared[i + 1 :]:
            assert not a & b, a & b
    assert not set().union(*declared) - tables, "privacy/scope.py names tables that do not exist"


@pytest.mark.parametrize("table", sorted(scope.CLIENT_PATHS))
def test_each_client_path_leads_to_a_client(table: str):
    seen = []
    while True:
        via = scope.CLIENT_PATHS[table]
        assert via.column in scope.tenant_tables()[table].c, (table, via.column)
        if via.parent is None:
            break
        assert via.parent not in seen, f"a loop: {seen}"
        seen.append(table)
        table = via.parent
    assert table == "clients" or via.column == "client_id"


def test_secret_looking_columns_are_declared():
    undeclared = []
    for name, table in scope.tenant_tables().items():
        for column in table.columns:
            if not SECRET_LOOKING.search(column.name):
                continue
            hidden = column.name in scope.SECRET_COLUMNS.get(name, frozenset())
            if not hidden and (name, column.name) not in scope.NOT_SECRET:
                undeclared.append(f"{name}.{column.name}")
    assert not undeclared, (
        "declare them in privacy/scope.py: SECRET_COLUMNS or NOT_SECRET: " + ", ".join(undeclared)
    )
    for name, hidden in scope.SECRET_COLUMNS.items():
        assert hidden <= set(scope.tenant_tables()[name].c.keys()), name
