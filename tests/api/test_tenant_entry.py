"""The tenant is entered in one place: the API's edge (api/tenancy.py), or a job.

Row-level security shows a transaction only the rows of the tenant it entered, so where the
tenant is set decides what every query can see. Domain services never set it: a request enters
its tenant from the verified token (users and partner apps alike), a signed link enters the
tenant the owning service verified, and a job opens `Database.tenant_transaction`. Pure: this
reads the source tree, never the database.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Everything but the tests (which set up tenants to prove isolation) and what is not ours.
_SET_LOCAL = re.compile(r"\bSET\s+(LOCAL\s+)?app\.tenant_id\b", re.IGNORECASE)

SKIPPED = {"tests", "migrations", ".venv", ".git", "node_modules"}

# infra/db.py defines it (and Database.tenant_transaction uses it); api/tenancy.py is the edge.
ALLOWED = {"infra/db.py", "api/tenancy.py", "web/tenancy.py"}
SETTERS = {
    "set_tenant",
    "enter_tenant_as_member",
    "enter_tenant_on_driver",
    "enter_tenant_as_member_on_driver",
}


def _allowed(relative: str) -> bool:
    # Job modules may set a tenant for the work they run (they usually open a tenant
    # transaction instead).
    return relative in ALLOWED or Path(relative).name == "jobs.py"


def tenant_setters(source: str, *, raw_sql: bool = True) -> list[int]:
    """Lines that call or import `set_tenant` or `enter_tenant_as_member`, or (with
    `raw_sql`) set `app.tenant_id` by hand, whichever way."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and any(a.name in SETTERS for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in SETTERS:
                lines.append(node.lineno)
        elif (
            raw_sql
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (
                "set_config('app.tenant_id'" in node.value.replace('"', "'")
                or _SET_LOCAL.search(node.value)
                # The SQL functions that set the tenant (migration 0018), and set it then read
                # the member (migration 0013).
                or "set_tenant(" in node.value
                or "enter_tenant_as_member(" in node.value
            )
        ):
            lines.append(node.lineno)
    return sorted(set(lines))


def _sources() -> list[Path]:
    return [
        path for path in ROOT.rglob("*.py") if not SKIPPED & set(path.relative_to(ROOT).parts[:-1])
    ]


def test_only_the_edge_and_jobs_set_the_tenant():
    offenders = {}
    for path in _sources():
        relative = path.relative_to(ROOT).as_posix()
        if _allowed(relative):
            continue
        # The benchmarks time the bare driver path, SQL and all, against the application's.
        raw_sql = not relative.startswith("bench/")
        lines = tenant_setters(path.read_text(encoding="utf-8"), raw_sql=raw_sql)
        if lines:
            offenders[relative] = lines
    assert offenders == {}, (
        "Set the tenant at the edge (api/tenancy.py: enter_tenant / enter_claimed_tenant) or "
        f"open Database.tenant_transaction in a job; these modules set it themselves: {offenders}"
    )


def test_the_edge_module_is_where_the_api_sets_it():
    """The allowed modules really do set it: the scan is looking at the right thing."""
    for relative in sorted(ALLOWED):
        assert tenant_setters((ROOT / relative).read_text(encoding="utf-8")), relative


def test_the_scan_sees_each_way_of_setting_the_tenant():
    service = """
from infra.db import set_tenant as enter
from infra import db

async def load(session, tenant_id):
    await db.set_tenant(session, tenant_id)
    await session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": "x"})
    await session.execute(text(f"SET LOCAL app.tenant_id = '{tenant_id}'"))
    await session.execute(text("SELECT set_tenant(:t)"), {"t": tenant_id})
    await session.execute(text("set  app.tenant_id to 'x'"))
"""
    assert tenant_setters(service) == [2, 6, 7, 8, 9, 10]
    job = "async def run(db, t):\n    async with db.tenant_transaction(t):\n        pass\n"
    assert tenant_setters(job) == []
