"""Fuzz the API from outside: a real `passerelle serve` on loopback, its own database, and
the schemathesis CLI pointed at its /openapi.json as the owner of a seeded agency.

The server gets the suite's settings (the environment `tests/conftest.py` prepared) with two
changes: a database of its own, built by the migrations and dropped afterwards, so that the
thousands of rows the fuzzer writes (outbox events, invitations, webhooks...) never reach the
jobs that later tests run; and the same Redis number, emptied afterwards for the same reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from devtools.smtp import free_port
from tests.support.worker import stop_process

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin_execute(*statements: str) -> None:
    admin = make_url(os.environ["PASSERELLE_TEST_ADMIN_URL"])
    conn = await asyncpg.connect(
        host=admin.host,
        port=admin.port,
        user=admin.username,
        password=admin.password,
        database="postgres",
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def private_database(name: str) -> Iterator[dict[str, str]]:
    """A fresh database built by the migrations; yields the environment that points at it."""
    from alembic import command

    from main.cli import alembic_config

    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    asyncio.run(_admin_execute(drop, f'CREATE DATABASE "{name}"'))
    env = {
        "DATABASE_URL": _with_database(os.environ["DATABASE_URL"], name),
        "DATABASE_OWNER_URL": _with_database(os.environ["DATABASE_OWNER_URL"], name),
    }
    try:
        command.upgrade(alembic_config(env["DATABASE_OWNER_URL"]), "head")  # type: ignore[arg-type]
        yield env
    finally:
        asyncio.run(_admin_execute(drop))


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def log_tail(self, lines: int = 200) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def serve(env: dict[str, str], log: Path, *, timeout: float = 60) -> Iterator[Server]:
    """`passerelle serve` on a free loopback port, as in production; stopped on exit."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "passerelle"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(url=f"http://127.0.0.1:{port}", log=log, process=process)
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        stop_process(process, grace=15)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the API server exited:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the API server did not become ready:\n{server.log_tail()}")


# ---------------------------------------------------------------------------------------------
# The run and its verdict


@dataclass
class FuzzResult:
    label: str
    exit_code: int
    output: str
    report: dict[str, Any]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return list(self.report.get("failures") or [])

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.report.get("errors") or [])

    @property
    def passed(self) -> bool:
        return bool(self.report) and self.exit_code == 0 and not self.failures and not self.errors

    def counts(self) -> str:
        ops = self.report.get("operations") or {}
        cases = self.report.get("test_cases") or {}
        server_errors = sum(f["count"] for f in self.failures if f.get("type") == "ServerError")
        phases = ", ".join(
            f"{name} {state['status']}"
            for name, state in (self.report.get("phases") or {}).items()
            if state["status"] != "skip"
        )
        return (
            f"schemathesis {self.label}: {ops.get('tested', 0)}/{ops.get('total', 0)} operations, "
            f"{cases.get('generated', 0)} test cases, {server_errors} server errors, "
            f"{sum(f['count'] for f in self.failures)} failures, "
            f"{sum(e['count'] for e in self.errors)} errors in "
            f"{self.report.get('running_time', 0):.0f} s ({phases})"
        )

    def summary(self) -> str:
        """The counts, then one line per failing check with the operations it failed on."""
        lines = [self.counts()]
        for failure in self.failures:
            lines.append(f"  {failure['title']} ({failure['type']}) x{failure['count']}:")
            lines += [f"      {operation}" for operation in failure.get("operations") or []]
        lines += [f"  error: {e['title']} x{e['count']}" for e in self.errors]
        return "\n".join(lines)

    def details(self, limit: int = 20_000) -> str:
        """The CLI's own account of the failures (with curl reproductions), lines shortened."""
        marker = self.output.find("=== FAILURES ===")
        text = self.output[marker:] if marker >= 0 else self.output
        text = "\n".join(
            line if len(line) < 400 else line[:400] + " [...]" for line in text.splitlines()
        )
        return text[:limit]


def run_schemathesis(
    label: str,
    schema_url: str,
    config: Path,
    workdir: Path,
    *,
    phases: str,
    max_time: int,
    extra: list[str] | tuple[str, ...] = (),
) -> FuzzResult:
    """The CLI, as a developer would run it; its JSON report gives the verdict. A run that
    outlives its budget by far (a server that hangs) is killed."""
    report = workdir / f"{label}.json"
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        schema_url,
        "--phases",
        phases,
        "--max-time",
        str(max_time),
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
        *extra,
    ]
    try:
        completed = subprocess.run(
            command,
            cwd=workdir,
            env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "COLUMNS": "120"},
            capture_output=True,
            text=True,
            timeout=max_time * 3 + 60,
            check=False,
        )
        exit_code, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as exc:
        exit_code = -1
        output = f"killed after {exc.timeout:.0f} s\n{exc.stdout or ''}"
    document = json.loads(report.read_text()) if report.exists() else {}
    return FuzzResult(label=label, exit_code=exit_code, output=str(output), report=document)


def server_errors(log: Path, limit: int = 30) -> str:
    """The server's logged exceptions (JSON log lines), last line of each traceback."""
    found: list[str] = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("level") not in ("error", "critical"):
            continue
        if not record.get("path"):
            continue  # uvicorn's echo of the same exception
        exception = str(record.get("exception") or "").strip().splitlines()
        cause = next((x for x in reversed(exception) if "Error" in x or "Exception" in x), "")
        found.append(f"{record.get('path')} {record.get('event')}: {cause.strip()[:300]}")
    return "\n".join(found[-limit:])
