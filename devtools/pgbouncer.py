"""Debian's pgbouncer in transaction mode, in front of the development PostgreSQL.

Used by the tests (tests/infra/test_pgbouncer.py) and the API benchmark (bench/api.py), which
start it on a free loopback port with a generated configuration and stop it afterwards:

    with run_pgbouncer([app_url, owner_url], pool_size=3) as bouncer:
        url = bouncer.url(app_url)  # the same user and database, through pgbouncer

The package is installed by scripts/system-packages.sh.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

BINARY = Path("/usr/sbin/pgbouncer")
# pgbouncer refuses to run as root; as root it is told to switch to this user.
UNPRIVILEGED_USER = "nobody"


@dataclass
class Pgbouncer:
    host: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def url(self, server_url: str) -> str:
        """`server_url` (user, password, database) pointed at pgbouncer instead."""
        parts = urlsplit(server_url)
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = f"{userinfo}@{self.host}:{self.port}" if userinfo else f"{self.host}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def log_tail(self, lines: int = 50) -> str:
        log = self.directory / "pgbouncer.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _address(host: str, port: int) -> str:
    """The host's address as the system resolves it (/etc/hosts included): pgbouncer resolves
    names through DNS alone (c-ares), where `localhost` may take a minute to fail."""
    sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4]
    return str(sockaddr[0])


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def config(
    server_urls: Sequence[str],
    *,
    port: int,
    directory: Path,
    pool_size: int,
    max_client_conn: int,
) -> tuple[str, str]:
    """The ini and the auth file. Every database of `server_urls` is served under its own
    name; `auth_type = trust` lets the clients in without a password, and pgbouncer answers
    the server's challenge with the password of the auth file (the URL's, if any)."""
    databases: dict[str, str] = {}
    users: dict[str, str] = {}
    for url in server_urls:
        parts = urlsplit(url)
        name = parts.path.lstrip("/")
        host = _address(parts.hostname or "127.0.0.1", parts.port or 5432)
        databases[name] = f"host={host} port={parts.port or 5432} dbname={name}"
        if parts.username:
            users[unquote(parts.username)] = unquote(parts.password or "")
    ini = "\n".join(
        [
            "[databases]",
            *(f"{name} = {target}" for name, target in databases.items()),
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {directory / 'users.txt'}",
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            "min_pool_size = 0",
            "reserve_pool_size = 0",
            f"max_client_conn = {max_client_conn}",
            f"max_db_connections = {pool_size}",
            # A client waits for a server connection rather than failing while all are busy.
            "query_wait_timeout = 60",
            f"logfile = {directory / 'pgbouncer.log'}",
            f"pidfile = {directory / 'pgbouncer.pid'}",
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        ]
    )
    auth = "".join(f"{_quote(user)} {_quote(password)}\n" for user, password in users.items())
    return ini, auth


@contextmanager
def run_pgbouncer(
    server_urls: Sequence[str],
    *,
    pool_size: int = 3,
    max_client_conn: int = 1000,
    timeout: float = 10.0,
) -> Iterator[Pgbouncer]:
    """pgbouncer on a free loopback port in front of the databases of `server_urls`, with
    `pool_size` server connections per database and user; stopped on exit."""
    if not BINARY.exists():
        raise RuntimeError(f"{BINARY} is missing: run scripts/system-packages.sh")
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    port = _free_port()
    ini, auth = config(
        server_urls,
        port=port,
        directory=directory,
        pool_size=pool_size,
        max_client_conn=max_client_conn,
    )
    (directory / "pgbouncer.ini").write_text(ini)
    (directory / "users.txt").write_text(auth)
    command = [str(BINARY), str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
        for path in (directory, *directory.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        command[1:1] = ["-u", UNPRIVILEGED_USER]
    os.chmod(directory / "users.txt", 0o600)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    bouncer = Pgbouncer(host="127.0.0.1", port=port, directory=directory, process=process)
    try:
        _wait_listening(bouncer, timeout)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_listening(bouncer: Pgbouncer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bouncer.process.poll() is not None:
            stderr = bouncer.process.stderr.read().decode() if bouncer.process.stderr else ""
            raise RuntimeError(f"pgbouncer exited:\n{stderr}\n{bouncer.log_tail()}")
        try:
            with socket.create_connection((bouncer.host, bouncer.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen:\n{bouncer.log_tail()}")
