"""Where the application's tables are declared, and all of them imported at once.

The export (privacy/scope.py) and the tests' generic walks (tests/support/walk.py) both need
every table, including one a new domain adds without telling them: they find the models by
walking the domain packages instead of naming each module."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from sqlalchemy import Table
from sqlmodel import SQLModel

ROOT = Path(__file__).resolve().parents[1]

# The top-level packages that may hold `models.py` files (or `models/` sub-packages).
MODEL_PACKAGES = (
    "api",
    "infra",
    "tenants",
    "workflows",
    "billing",
    "social",
    "publishing",
    "inbox",
    "partners",
    "privacy",
)
# Modules that declare tables without being called models.py.
EXTRA_MODEL_MODULES = ("infra.outbox",)


def model_modules() -> list[str]:
    """Every `models.py` (or `models/` package) under the domain packages, plus the modules
    that declare tables under another name."""
    names: list[str] = []
    for package in MODEL_PACKAGES:
        base = ROOT / package
        if not (base / "__init__.py").exists():
            continue
        for path in sorted(base.rglob("models.py")) + sorted(base.rglob("models/__init__.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            names.append(".".join(parts))
    return names + list(EXTRA_MODEL_MODULES)


@cache
def import_all_models() -> tuple[str, ...]:
    modules = tuple(model_modules())
    for name in modules:
        importlib.import_module(name)
    return modules


def all_tables() -> dict[str, Table]:
    import_all_models()
    return dict(SQLModel.metadata.tables)
