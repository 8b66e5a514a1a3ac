"""scripts/services.sh with servers a person named: one that does not answer stops the script
with one line naming the setting (its password hidden), exit 1, and nothing written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from devtools.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]


def services(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def env_file() -> bytes | None:
    path = ROOT / ".dev" / "env"
    return path.read_bytes() if path.exists() else None


def test_a_database_url_that_does_not_answer_is_named_in_one_line() -> None:
    before = env_file()
    port = free_port()
    url = f"postgresql+asyncpg://app:s3cret-pw@127.0.0.1:{port}/nowhere"
    result = services(DATABASE_URL=url, DATABASE_OWNER_URL=url)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"services: error: DATABASE_URL (postgresql+asyncpg://app:***@127.0.0.1:{port}/nowhere)"
        " does not answer: "
    ), line
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert env_file() == before


def test_a_redis_url_that_does_not_answer_is_named_in_one_line(settings) -> None:
    before = env_file()
    port = free_port()
    result = services(
        DATABASE_URL=os.environ["DATABASE_URL"],
        DATABASE_OWNER_URL=os.environ["DATABASE_OWNER_URL"],
        REDIS_URL=f"redis://:s3cret-pw@127.0.0.1:{port}/0",
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"services: error: REDIS_URL (redis://:***@127.0.0.1:{port}/0) does not answer: "
    ), line
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert env_file() == before
