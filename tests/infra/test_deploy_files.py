"""The Dockerfile and compose.yaml cannot be built or run here (no container engine), so this
keeps them in step with what is: the `passerelle` commands and their options (main/cli.py), the
settings (infra/settings.py), the mail catcher's options (devtools), the lock file, the run-time
system packages (scripts/system-packages.sh) and the database roles (scripts/services.sh)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from devtools.__main__ import argument_parser
from infra.settings import Settings
from main.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
APP_SERVICES = [name for name, s in SERVICES.items() if s.get("image", "").startswith("passerelle")]


def _cli() -> Any:
    """The click group typer builds from main/cli.py's app (with typer's own click)."""
    return typer.main.get_command(app)


def _instructions(name: str) -> list[str]:
    return [
        line.split(None, 1)[1]
        for line in DOCKERFILE.replace("\\\n", " ").splitlines()
        if line.startswith(name + " ")
    ]


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in param.opts}


def test_the_app_services_are_the_makefile_processes():
    assert set(APP_SERVICES) == {"migrate", "api", "worker", "mailcatcher"}
    run = (ROOT / "Makefile").read_text()
    for command in ("migrate", "serve", "worker"):
        assert f"$(BIN)/passerelle {command}" in run
    assert "$(BIN)/python -m devtools" in run


@pytest.mark.parametrize("name", ["migrate", "api", "worker"])
def test_each_command_is_a_passerelle_command_with_its_options(name):
    service = SERVICES[name]
    assert "entrypoint" not in service  # the image's: passerelle
    command, *args = service["command"]
    cli = _cli().commands[command]
    options = {a for a in args if a.startswith("-")}
    assert options <= _options(cli), options - _options(cli)


def test_the_image_runs_passerelle_serve_by_default():
    assert _instructions("ENTRYPOINT")[-1] == '["passerelle"]'
    command, *args = yaml.safe_load(_instructions("CMD")[-1])
    assert command == "serve"
    assert {a for a in args if a.startswith("-")} <= _options(_cli().commands["serve"])


def test_the_mail_catcher_takes_its_options():
    catcher = SERVICES["mailcatcher"]
    assert catcher["entrypoint"] == ["python", "-m", "devtools"]
    assert catcher["profiles"] == ["dev"]
    argument_parser().parse_args(catcher["command"])  # exits on an unknown option


def test_every_setting_named_exists():
    known = {name.upper() for name in Settings.model_fields}
    anchor = COMPOSE["x-app"]["environment"]
    for name in APP_SERVICES:
        env = {**anchor, **(SERVICES[name].get("environment") or {})}
        assert set(env) <= known, (name, set(env) - known)


def test_the_app_connects_as_the_app_role_and_migrations_as_the_owner():
    services_sh = (ROOT / "scripts/services.sh").read_text()
    owner = re.search(r'^OWNER_ROLE="(\w+)"', services_sh, re.M)
    app_role = re.search(r'^APP_ROLE="(\w+)"', services_sh, re.M)
    assert owner and app_role
    for name in ("api", "worker", "migrate"):
        env = {**COMPOSE["x-app"]["environment"], **(SERVICES[name].get("environment") or {})}
        assert env["DATABASE_URL"].startswith(f"postgresql+asyncpg://{app_role[1]}:")
    assert "DATABASE_OWNER_URL" not in COMPOSE["x-app"]["environment"]
    owner_url = SERVICES["migrate"]["environment"]["DATABASE_OWNER_URL"]
    assert owner_url.startswith(f"postgresql+asyncpg://{owner[1]}:")


def test_the_database_roles_are_the_ones_services_sh_makes():
    services_sh = (ROOT / "scripts/services.sh").read_text()
    values = dict(re.findall(r'^(\w+_ROLE|DB_NAME)="(\w+)"', services_sh, re.M))
    provision = services_sh.split("provision_pg()", 1)[1].split("\nSQL\n", 1)[0]
    for name, value in values.items():
        provision = provision.replace(f"${name}", value)
    statement = re.compile(r"^(ALTER|GRANT|REVOKE) .*;$", re.M)
    init = (ROOT / "deploy/postgres-init.sh").read_text()
    wanted = {m[0] for m in statement.finditer(provision)}
    got = {m[0] for m in statement.finditer(init) if "PASSWORD" not in m[0]}
    assert wanted and got == wanted


def test_the_image_installs_from_the_lock_without_the_dev_group():
    syncs = [r for r in _instructions("RUN") if r.startswith("uv sync")]
    assert syncs and all("--frozen" in shlex.split(r) for r in syncs)
    builder = DOCKERFILE.split("AS builder\n", 1)[1].split("\nFROM ", 1)[0]
    assert all("--no-dev" in r for r in re.findall(r"^RUN (uv sync.*)$", builder, re.M))
    assert "COPY pyproject.toml uv.lock" in DOCKERFILE


def test_the_runtime_has_the_run_time_system_packages_only():
    script = (ROOT / "scripts/system-packages.sh").read_text()
    packages = re.search(r"^PACKAGES=\((.*)\)$", script, re.M)
    assert packages
    runtime = DOCKERFILE.split("AS runtime\n", 1)[1].split("\nFROM ", 1)[0]
    installed = set(re.search(r"--no-install-recommends ([\w\- ]+)", runtime)[1].split())
    # The tests' own tools; pgbouncer runs as its own service in production, not in the image.
    assert installed == set(packages[1].split()) - {"faketime", "chromium", "pgbouncer"}
    users = re.findall(r"^USER (\S+)$", runtime, re.M)
    assert users and users[-1] not in ("root", "0")


def test_the_catchers_volume_is_the_mail_dir_the_app_reads():
    mail_dir = COMPOSE["x-app"]["environment"]["DEV_MAIL_DIR"]
    command = SERVICES["mailcatcher"]["command"]
    assert command[command.index("--mail-dir") + 1] == mail_dir
    assert f"mail:{mail_dir}" in SERVICES["mailcatcher"]["volumes"]
    assert f"install -d -o passerelle -g passerelle {mail_dir}" in DOCKERFILE
