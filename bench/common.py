"""Shared pieces of the benchmarks: scratch databases, server processes, wrk."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent


class BenchError(Exception):
    """The benchmark could not run, or its measurement is invalid."""


# ---------------------------------------------------------------------------------------------
# Environment and URLs


def require_env(*names: str) -> dict[str, str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise BenchError(f"set {', '.join(missing)} (run `make bench`, which exports them)")
    return {n: os.environ[n] for n in names}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BenchError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise BenchError(f"{name} must be at least 1")
    return value


def with_database(url: str, database: str) -> str:
    """The same server and role, another database (asyncpg SQLAlchemy URL)."""
    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


def libpq_url(url: str) -> str:
    """postgresql+asyncpg://… -> postgresql://… (what asyncpg.connect takes)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def redis_with_db(url: str, index: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{index}", parts.query, ""))


async def _connect_as_owner(owner_url: str, *, database: str | None = None) -> Any:
    """A plain asyncpg connection as the owner role, to its database or to `database`."""
    import asyncpg

    owner = make_url(owner_url)
    return await asyncpg.connect(
        host=owner.host,
        port=owner.port,
        user=owner.username,
        password=owner.password,
        database=database or owner.database,
    )


async def recreate_database(owner_url: str, database: str) -> None:
    """Drop and create `database` as the owner role, from the `postgres` maintenance database."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise BenchError(f"unsafe database name {database!r}")
    conn = await _connect_as_owner(owner_url, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


async def settle_database(owner_url: str) -> None:
    """VACUUM (ANALYZE) the owner's tables once seeded: else autovacuum wakes within its
    minute-long naptime to analyze every new table, and takes CPU from whichever server is
    measured first (the api benchmark's full stack measured 0.45 to 0.56 of the bare app in
    two of three runs where the seed had just ended, and 0.73 in the other)."""
    conn = await _connect_as_owner(owner_url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def migrate(owner_url: str) -> None:
    from alembic import command

    from main.cli import alembic_config

    command.upgrade(alembic_config(owner_url), "head")  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_note() -> str:
    cores = os.cpu_count() or 1
    return (
        f"{cores} CPU core{'s' if cores != 1 else ''}: wrk, the server under test and PostgreSQL "
        "share them, so absolute figures are modest; compare the ratio, not the numbers."
    )


def _cpu_times() -> tuple[int, int] | None:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:]]
    return sum(values), values[3] + (values[4] if len(values) > 4 else 0)  # total, idle+iowait


def machine_busy_percent(sample_s: float = 1.0) -> float | None:
    """How busy all cores were over a short sample before measuring (Linux), or None."""
    before = _cpu_times()
    time.sleep(sample_s)
    after = _cpu_times()
    if before is None or after is None or after[0] == before[0]:
        return None
    return 100.0 * (1 - (after[1] - before[1]) / (after[0] - before[0]))


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# Processes: CPU time, memory


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (Linux /proc; threads' children included)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
    return found


def process_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After "pid (comm)": state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident set size so far (VmHWM), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


# ---------------------------------------------------------------------------------------------
# Profiles: BENCH_PROFILE=1 samples a server with py-spy while it is measured


def profiling_enabled() -> bool:
    return os.environ.get("BENCH_PROFILE", "").strip() not in ("", "0")


@contextmanager
def profiled(pid: int | None, label: str, *, report: bool = True) -> Iterator[None]:
    """With BENCH_PROFILE=1, py-spy samples `pid` and its subprocesses for the duration of
    the block into bench/results/<label>.folded (collapsed stacks: the input of any flame
    graph viewer, speedscope.app or flamegraph.pl), then the top frames are printed. py-spy
    samples from outside without blocking the process (--nonblocking), but figures measured
    while profiling are still a little low: compare profiles with profiles."""
    if not profiling_enabled() or pid is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if spy is None:
        raise BenchError("BENCH_PROFILE needs py-spy (make install puts it in .venv)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{label}.folded"
    argv = [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    argv += ["--rate", "250", "--format", "raw", "--output", str(out)]
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            _, err = recorder.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, err = recorder.communicate()
    if not out.exists():
        raise BenchError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
    if report:
        report_profile(out)


def report_profile(folded: Path) -> None:
    print(f"   profile of {folded.stem}: {folded.relative_to(ROOT)}")
    for line in top_frames(folded.read_text()):
        print(f"     {line}")


def _join_profiles(slug: str, rounds: int) -> None:
    """One profile per server: its rounds' collapsed stacks, one after the other (a stack
    that appears in several rounds is summed by any viewer, and by `top_frames`)."""
    parts = [RESULTS / f"{slug}.round{turn}.folded" for turn in range(rounds)]
    if not profiling_enabled() or not all(part.exists() for part in parts):
        return
    joined = RESULTS / f"{slug}.folded"
    joined.write_text("".join(part.read_text() for part in parts))
    for part in parts:
        part.unlink()
    report_profile(joined)


# The application's own packages: their frames' total time says where a request goes.
OUR_PACKAGES = (
    *("api/", "web/", "main/", "billing/", "partners/", "publishing/", "inbox/"),
    *("workflows/", "social/", "tenants/", "infra/"),
)


def top_frames(folded: str, *, count: int = 12) -> list[str]:
    """The functions that hold most samples by own time, and the application's functions by
    total time (a function counted once per stack), from py-spy's collapsed stacks
    ("f1 (file:line);f2 … N")."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in folded.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        weight = int(n)
        samples += weight
        own[_function_of(frames[-1])] += weight
        for frame in {_function_of(f) for f in frames if _where(f).startswith(OUR_PACKAGES)}:
            total[frame] += weight
    if not samples:
        return ["(no samples)"]
    lines = [f"{samples} samples; own time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(count)]
    lines.append("the application's functions, total time (with callees):")
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in total.most_common(count)]
    return lines


def _where(frame: str) -> str:
    return frame.rpartition(" (")[2]


_LINE_NUMBER = re.compile(r":\d+\)$")


def _function_of(frame: str) -> str:
    """'f (tenants/service/members.py:124)' -> 'f (tenants/service/members.py)': a function's
    lines count as one."""
    return _LINE_NUMBER.sub(")", frame)


# ---------------------------------------------------------------------------------------------
# Server processes


class Server:
    """A server in its own process (and process group); output goes to a log file."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict[str, str], port: int, log_path: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop it in order
        )

    def pids(self) -> list[int]:
        """The server process and every live descendant (uvicorn's workers, say)."""
        return [] if self.proc is None else process_tree(self.proc.pid)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server and its live descendants have used so far (Linux
        /proc), or None."""
        if self.proc is None:
            return None
        times = [process_cpu_seconds(pid) for pid in self.pids()]
        known = [t for t in times if t is not None]
        return sum(known) if known else None

    def peak_rss_mib(self) -> float | None:
        """The largest peak resident set (VmHWM) of the server's processes, in MiB: what one
        process of it needs at most."""
        peaks = [p for p in (peak_rss_kib(pid) for pid in self.pids()) if p is not None]
        return max(peaks) / 1024 if peaks else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(
                f"{self.name} is not running (exit status {code}); end of {self.log_path}:\n"
                f"{self.log_tail()}"
            )

    def wait_ready(self, path: str, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = httpx.get(self.base_url + path, timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        raise BenchError(
            f"{self.name} not ready on {path} after {timeout:.0f} s ({last}); "
            f"end of {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


# ---------------------------------------------------------------------------------------------
# wrk


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    duration_s: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$", re.M)
_SOCKET = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$", re.M
)


def parse_wrk(output: str) -> WrkResult:
    """Read wrk's report (run with --latency). Raises BenchError if a figure is missing."""
    percentiles = {p: float(v) * _TIME_UNITS_MS[u] for p, v, u in _PERCENTILE.findall(output)}
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    if rps is None or total is None or set(percentiles) != {"50", "75", "90", "99"}:
        raise BenchError(f"could not read wrk's report:\n{output}")
    non_2xx = _NON_2XX.search(output)
    sockets = _SOCKET.search(output)
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True))
        if sockets
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=percentiles["50"],
        p75_ms=percentiles["75"],
        p90_ms=percentiles["90"],
        p99_ms=percentiles["99"],
        requests=int(total.group(1)),
        duration_s=float(total.group(2)) * _TIME_UNITS_MS[total.group(3)] / 1000.0,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
    )


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not installed (Debian: apt-get install -y wrk)")
    return path


def run_wrk(
    url: str,
    *,
    duration_s: int,
    threads: int,
    connections: int,
    headers: dict[str, str] | None = None,
    discarded: bool = False,
    script: Path | None = None,
) -> tuple[WrkResult, str]:
    """One wrk run; fails loudly when any response was not 2xx/3xx or a socket failed, unless
    the run is `discarded` (a warm-up: a cold server may be slow to answer the first ones)."""
    argv = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["--script", str(script)]
    argv.append(url)
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {exc}") from None
    if done.returncode != 0:
        raise BenchError(f"wrk failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    result = parse_wrk(done.stdout)
    if discarded:
        return result, done.stdout
    if result.non_2xx_3xx:
        raise BenchError(
            f"{result.non_2xx_3xx} of {result.requests} responses were not 2xx/3xx against "
            f"{url}: the measurement is invalid.\n{done.stdout}"
        )
    if any(result.socket_errors.values()):
        raise BenchError(
            f"wrk reported socket errors {result.socket_errors} against {url}: the measurement "
            f"is invalid.\n{done.stdout}"
        )
    return result, done.stdout


# wrk's latency histogram read at every 0.1 % (bench/wrk_quantiles.lua), to pool rounds.
_QUANTILES_SCRIPT = Path(__file__).with_name("wrk_quantiles.lua")
_QUANTILES = re.compile(r"^latency quantiles us: ([\d. ]+)$", re.M)
QUANTILE_STEPS = 1000


def _run_wrk_with_quantiles(url: str, **options: Any) -> tuple[WrkResult, str, list[float]]:
    result, raw = run_wrk(url, script=_QUANTILES_SCRIPT, **options)
    found = _QUANTILES.search(raw)
    quantiles = [float(v) / 1000.0 for v in found.group(1).split()] if found else []
    if len(quantiles) != QUANTILE_STEPS:
        raise BenchError(f"wrk printed no latency quantiles (bench/wrk_quantiles.lua):\n{raw}")
    return result, raw, quantiles


def pool_rounds(rounds: Sequence[tuple[WrkResult, Sequence[float]]]) -> WrkResult:
    """One server's rounds as one run: requests over their summed time, and latency
    percentiles of all their requests. Each round's distribution is its quantiles at every
    0.1 % (in ms), each standing for a thousandth of that round's requests."""
    if len(rounds) == 1:
        return rounds[0][0]  # wrk's own figures, read from its full histogram
    requests = sum(result.requests for result, _ in rounds)
    duration = sum(result.duration_s for result, _ in rounds)
    points = sorted(
        (value, result.requests / len(quantiles))
        for result, quantiles in rounds
        for value in quantiles
    )

    def percentile(p: float) -> float:
        wanted, seen = requests * p / 100.0, 0.0
        for value, weight in points:
            seen += weight
            if seen >= wanted:
                return value
        return points[-1][0]

    errors: Counter[str] = Counter()
    for result, _ in rounds:
        errors.update(result.socket_errors)
    return WrkResult(
        requests_per_s=requests / duration if duration else 0.0,
        p50_ms=percentile(50),
        p75_ms=percentile(75),
        p90_ms=percentile(90),
        p99_ms=percentile(99),
        requests=requests,
        duration_s=duration,
        non_2xx_3xx=sum(result.non_2xx_3xx for result, _ in rounds),
        socket_errors={kind: errors[kind] for kind in ("connect", "read", "write", "timeout")},
    )


# ---------------------------------------------------------------------------------------------
# What every HTTP benchmark does: a clean Redis, the owner's token, a measured wrk run


async def flush_redis(url: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


def token_claims(token: str) -> dict[str, Any]:
    """The payload of our own freshly issued token (the server verifies it; we only read)."""
    import base64

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def login_owner(server: Server, email: str, password: str) -> str:
    response = httpx.post(
        server.base_url + "/v1/auth/login",
        json={"email": email, "password": password},
        timeout=30.0,
    )
    if response.status_code != 200:
        raise BenchError(f"login failed: {response.status_code} {response.text[:500]}")
    body = response.json()
    if body.get("expires_in", 0) < 3600:
        raise BenchError(f"the access token lives {body.get('expires_in')} s, expected 3600")
    return str(body["access_token"])


@dataclass(frozen=True)
class Measured:
    wrk: WrkResult
    server_cpu_s: float | None
    """CPU time the server process used during the measured run (None if unknown)."""
    peak_rss_mib: float | None = None
    """The server's largest process at its peak so far (VmHWM), in MiB."""

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.wrk.requests:
            return None
        return self.server_cpu_s * 1000 / self.wrk.requests

    @property
    def cpu_percent(self) -> float | None:
        if self.server_cpu_s is None or not self.wrk.duration_s:
            return None
        return 100 * self.server_cpu_s / self.wrk.duration_s

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.wrk.as_dict(),
            "server_cpu_s": self.server_cpu_s,
            "server_cpu_ms_per_request": self.cpu_ms_per_request,
            "server_cpu_percent_of_one_core": self.cpu_percent,
            "server_peak_rss_mib": self.peak_rss_mib,
        }


@dataclass(frozen=True)
class Contestant:
    """A server, the URL wrk loads it with, and where its raw reports and profile go."""

    server: Server
    url: str
    slug: str
    """File stem under bench/results: <slug>.wrk.txt, and <slug>.folded when profiled."""


def measure_in_turns(
    contestants: Sequence[Contestant],
    token: str,
    *,
    rounds: int,
    round_s: int,
    warmup_s: int,
    threads: int,
    connections: int,
) -> dict[str, Measured]:
    """Each server warmed up (discarded), then measured in turns: `rounds` runs of `round_s`
    each, the order reversed every round (A B, B A, A B …). On a shared machine the speed
    drifts from one quarter-minute to the next; servers compared in one long run each would
    see different machines, in turns they see the same one. Each server's figures pool its
    rounds: requests over time, latency percentiles from the rounds' distributions (wrk's
    own histogram, read at every 0.1 %, each round weighted by its requests), its CPU time
    summed."""
    for c in contestants:
        warm_up(c, token, warmup_s=warmup_s, threads=threads, connections=connections)
    runs: dict[str, list[WrkRound]] = {c.server.name: [] for c in contestants}
    for turn in range(rounds):
        order = contestants if turn % 2 == 0 else list(reversed(contestants))
        for c in order:
            if rounds > 1:
                print(f"  {c.server.name}: round {turn + 1} of {rounds}, {round_s} s …", flush=True)
            runs[c.server.name].append(
                wrk_round(c, token, turn, round_s=round_s, threads=threads, connections=connections)
            )
    return {c.server.name: pooled_measure(c, runs[c.server.name]) for c in contestants}


@dataclass(frozen=True)
class WrkRound:
    result: WrkResult
    quantiles: list[float]
    server_cpu_s: float | None
    report: str


def warm_up(c: Contestant, token: str, *, warmup_s: int, threads: int, connections: int) -> None:
    run_wrk(
        c.url,
        duration_s=warmup_s,
        threads=threads,
        connections=connections,
        headers={"Authorization": f"Bearer {token}"},
        discarded=True,
    )
    c.server.check_alive()


def wrk_round(
    c: Contestant, token: str, turn: int, *, round_s: int, threads: int, connections: int
) -> WrkRound:
    """One measured round of `c`, with its server's CPU time around it (profiled with
    BENCH_PROFILE=1; `pooled_measure` joins the rounds' profiles)."""
    server = c.server
    cpu_before = server.cpu_seconds()
    pid = server.proc.pid if server.proc else None
    with profiled(pid, f"{c.slug}.round{turn}", report=False):
        result, raw, quantiles = _run_wrk_with_quantiles(
            c.url,
            duration_s=round_s,
            threads=threads,
            connections=connections,
            headers={"Authorization": f"Bearer {token}"},
        )
    cpu_after = server.cpu_seconds()
    server.check_alive()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return WrkRound(result, quantiles, cpu, raw)


def pooled_measure(c: Contestant, rounds: Sequence[WrkRound]) -> Measured:
    """`c`'s rounds as one measurement: wrk's reports in <slug>.wrk.txt, one profile."""
    (RESULTS / f"{c.slug}.wrk.txt").write_text("\n".join(r.report for r in rounds))
    _join_profiles(c.slug, len(rounds))
    cpus = [r.server_cpu_s for r in rounds]
    return Measured(
        pool_rounds([(r.result, r.quantiles) for r in rounds]),
        None if None in cpus else sum(cpu for cpu in cpus if cpu is not None),
        c.server.peak_rss_mib(),
    )


def app_pool_shape(settings: Any) -> str:
    """The full stack's pool as infra.db builds it (read, not assumed)."""
    import asyncio

    from infra.db import Database

    db = Database.from_settings(settings)
    pool: Any = db.engine.pool
    shape = f"pool_size={pool.size()}, max_overflow={getattr(pool, '_max_overflow', '?')}"
    asyncio.run(db.dispose())
    return shape


def package_versions(*packages: str) -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
