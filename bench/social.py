"""Social sync benchmark: 10,000 accounts over 200 agencies, one worker process.

The platform simulator runs as its own process with 100 ms per request and accepts the seeded
tokens ``sim-<platform>-<external id>``. Every account is a LinkedIn organization page (its
connector makes the same requests on every sync: organization, networkSizes, then follower
statistics, share statistics and one page of posts at once), due now, synced through the day
before yesterday, so a sync fetches the last days, not a 90-day backfill. Agencies' sizes are
skewed (Zipf: the biggest has about 2,000 accounts, a third of them 5 to 10).

Baseline, in the same run: a few accounts synced one at a time in this process with the
application's own `sync_account` give the latency floor d1 (median) and the simulator
requests per account. The bound is min(WORKER_MAX_JOBS / d1, the LinkedIn request budget of
SOCIAL_RATES in requests/s / requests per account). Then ONE `passerelle worker` syncs every
account (its cron queues the due accounts at start-up and every minute, round robin over
agencies); the benchmark polls the database until every account has synced, then reads each
job's start and finish times from arq's results.

Figures: accounts/s against the bound (target: at least 80 %), completion time per agency
(p50/p90/max, the small agencies' worst against the biggest's), and the daily rows: no
(account, day) twice, no day missing.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    RESULTS,
    ROOT,
    VENV_BIN,
    BenchError,
    Server,
    env_int,
    flush_redis,
    free_port,
    libpq_url,
    machine_busy_percent,
    machine_note,
    migrate,
    package_versions,
    profiled,
    recreate_database,
    redis_with_db,
    require_env,
    with_database,
    write_results,
)

NAME = "social"
# What `BENCH_RUNS=N make bench` summarizes over the runs (keys of bench/results/social.json).
HEADLINE = ("run.ratio", "run.accounts_per_s", "run.worker_cpu_ms_per_account")
DATABASE = "passerelle_bench_social"
PLATFORM = "linkedin_organization"
TENANTS = 200
ACCOUNTS = 10_000
ZIPF_S = 1.05  # the biggest agency ~2,000 accounts, the smallest 7
MIN_ACCOUNTS = 5
SMALL_TENANT = 10  # "small": at most this many accounts
LATENCY_S = 0.1
DEFAULT_MAX_JOBS = 100
DEFAULT_RATE = 300  # LinkedIn requests per second (SOCIAL_RATES linkedin_organization)
BASELINE_WARMUP = 2
BASELINE_SAMPLES = 10
POLL_S = 0.5
TARGET = 0.80
BUSY_WARNING_PERCENT = 15
CLIENT = {"client_id": f"cid-{PLATFORM}", "client_secret": f"secret-{PLATFORM}"}


def _sizes() -> list[int]:
    """Accounts per agency, biggest first, summing to ACCOUNTS."""
    raw = [1 / (i**ZIPF_S) for i in range(1, TENANTS + 1)]
    scale = ACCOUNTS / sum(raw)
    sizes = [max(MIN_ACCOUNTS, int(scale * r)) for r in raw]
    sizes[0] += ACCOUNTS - sum(sizes)
    return sizes


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# ---------------------------------------------------------------------------------------------
# Seed (owner role; row-level security is forced for it too, so tenant by tenant)

_SET_TENANT = "SELECT set_config('app.tenant_id', $1, true)"


@dataclass(frozen=True)
class Seeded:
    tenants: list[tuple[uuid.UUID, int]]
    """(tenant id, accounts), biggest first."""
    seconds: float


async def _seed(owner_dsn: str, vault: Any, sizes: list[int]) -> Seeded:
    import asyncpg

    started = time.monotonic()
    today = datetime.now(UTC).date()
    synced_through = today - timedelta(days=2)  # yesterday - 1
    far = datetime.now(UTC) + timedelta(days=3650)
    due = datetime.now(UTC) - timedelta(minutes=1)
    tenants: list[tuple[uuid.UUID, int]] = []
    conn = await asyncpg.connect(owner_dsn)
    serial = 0
    try:
        for idx, size in enumerate(sizes):
            tenant_id, client_id, brand_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            ids, externals, tokens = [], [], []
            for _ in range(size):
                serial += 1
                external = str(10_000_000 + serial)
                ids.append(uuid.uuid4())
                externals.append(external)
                tokens.append(vault.encrypt(f"sim-{PLATFORM}-{external}"))
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO tenants (id, slug, name, timezone, locale, currency, plan_id) "
                    "VALUES ($1, $2, $3, 'America/Montreal', 'fr-CA', 'CAD', 'agency')",
                    tenant_id,
                    f"bench-social-{idx:03d}",
                    f"Agence sociale {idx:03d}",
                )
                await conn.execute(_SET_TENANT, str(tenant_id))
                await conn.execute(
                    "INSERT INTO clients (tenant_id, id, name, locale, currency) "
                    "VALUES ($1, $2, $3, 'fr-CA', 'CAD')",
                    tenant_id,
                    client_id,
                    f"Client {idx:03d}",
                )
                await conn.execute(
                    "INSERT INTO brands (tenant_id, id, client_id, name, slug, timezone, "
                    "default_language) VALUES ($1, $2, $3, $4, $5, 'America/Montreal', 'fr')",
                    tenant_id,
                    brand_id,
                    client_id,
                    f"Marque {idx:03d}",
                    f"marque-{idx:03d}",
                )
                await conn.execute(
                    """
                    INSERT INTO social_accounts (tenant_id, id, brand_id, platform, external_id,
                        status, access_token, refresh_token, token_expires_at, next_sync_at,
                        synced_through)
                    SELECT $1, a.id, $2, $3, a.external_id, 'connected', a.token, a.token,
                           $4, $5, $6
                    FROM unnest($7::uuid[], $8::text[], $9::bytea[]) AS a(id, external_id, token)
                    """,
                    tenant_id,
                    brand_id,
                    PLATFORM,
                    far,
                    due,
                    synced_through,
                    ids,
                    externals,
                    tokens,
                )
            tenants.append((tenant_id, size))
        for table in ("tenants", "clients", "brands", "social_accounts"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
    return Seeded(tenants=tenants, seconds=time.monotonic() - started)


# ---------------------------------------------------------------------------------------------
# Baseline: one account at a time, in this process, through the application's sync


@dataclass(frozen=True)
class Baseline:
    durations_s: list[float]
    d1_s: float
    requests_per_account: float


async def _sim_requests(sim_url: str) -> int:
    async with httpx.AsyncClient(timeout=10.0) as client:
        body = (await client.get(f"{sim_url}/_sim/stats")).json()
    return int(body["requests"].get(PLATFORM, 0))


async def _baseline(
    settings: Any, sim_url: str, owner_dsn: str, tenants: list[uuid.UUID]
) -> Baseline:
    """Sync BASELINE_WARMUP + BASELINE_SAMPLES accounts (one per agency) one after the other,
    then put them back as they were seeded (due, never synced; their rows stay, so the big
    run rewrites them: the duplicate check sees it)."""
    import asyncpg
    from redis.asyncio import Redis

    import main.worker  # noqa: F401  (every model mapped, as in the worker process)
    from infra.db import Database
    from social.kit import SocialKit
    from social.sync import sync_account

    picked: list[tuple[uuid.UUID, uuid.UUID]] = []
    conn = await asyncpg.connect(owner_dsn)
    try:
        for tenant_id in tenants[: BASELINE_WARMUP + BASELINE_SAMPLES]:
            async with conn.transaction():
                await conn.execute(_SET_TENANT, str(tenant_id))
                account_id = await conn.fetchval(
                    "SELECT id FROM social_accounts WHERE tenant_id = $1 ORDER BY id LIMIT 1",
                    tenant_id,
                )
            picked.append((tenant_id, account_id))
    finally:
        await conn.close()

    db = Database(settings.sqlalchemy_url, pool_size=settings.database_pool_size)
    redis = Redis.from_url(str(settings.redis_url))
    http = httpx.AsyncClient(
        timeout=settings.social_http_timeout_seconds,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        follow_redirects=False,
    )
    kit = SocialKit(settings=settings, http=http, redis=redis)
    durations: list[float] = []
    try:
        for tenant_id, account_id in picked[:BASELINE_WARMUP]:
            outcome = await sync_account(db, kit, tenant_id, account_id)
            if outcome.status != "synced":
                raise BenchError(f"baseline warm-up sync: {outcome}")
        before = await _sim_requests(sim_url)
        for tenant_id, account_id in picked[BASELINE_WARMUP:]:
            start = time.perf_counter()
            outcome = await sync_account(db, kit, tenant_id, account_id)
            durations.append(time.perf_counter() - start)
            if outcome.status != "synced":
                raise BenchError(f"baseline sync of {account_id}: {outcome}")
        sent = await _sim_requests(sim_url) - before
    finally:
        await http.aclose()
        await redis.aclose()
        await db.dispose()

    synced_through = datetime.now(UTC).date() - timedelta(days=2)
    due = datetime.now(UTC) - timedelta(minutes=1)
    conn = await asyncpg.connect(owner_dsn)
    try:
        for tenant_id, account_id in picked:
            async with conn.transaction():
                await conn.execute(_SET_TENANT, str(tenant_id))
                await conn.execute(
                    "UPDATE social_accounts SET last_success_at = NULL, next_sync_at = $3, "
                    "synced_through = $4 WHERE tenant_id = $1 AND id = $2",
                    tenant_id,
                    account_id,
                    due,
                    synced_through,
                )
    finally:
        await conn.close()
    return Baseline(
        durations_s=durations,
        d1_s=statistics.median(durations),
        requests_per_account=sent / len(durations),
    )


# ---------------------------------------------------------------------------------------------
# Progress (owner role, one statement a poll: a temporary function walks the agencies)

_PROGRESS_FN = """
CREATE FUNCTION pg_temp.bench_progress(started timestamptz)
RETURNS TABLE (o_tenant uuid, o_total bigint, o_done bigint, o_stuck bigint)
LANGUAGE plpgsql AS $$
DECLARE t uuid;
BEGIN
  FOR t IN SELECT id FROM tenants ORDER BY id LOOP
    PERFORM set_config('app.tenant_id', t::text, true);
    RETURN QUERY
      SELECT t, count(*),
             count(*) FILTER (WHERE a.last_success_at >= started),
             count(*) FILTER (WHERE a.status NOT IN ('connected'))
      FROM social_accounts a WHERE a.tenant_id = t;
  END LOOP;
  PERFORM set_config('app.tenant_id', '', true);
END $$;
"""

_RECENT_FN = """
CREATE FUNCTION pg_temp.bench_recent(since timestamptz)
RETURNS TABLE (o_account uuid, o_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE t uuid;
BEGIN
  FOR t IN SELECT id FROM tenants ORDER BY id LOOP
    PERFORM set_config('app.tenant_id', t::text, true);
    RETURN QUERY
      SELECT a.id, a.last_success_at FROM social_accounts a
      WHERE a.tenant_id = t AND a.last_success_at >= since;
  END LOOP;
  PERFORM set_config('app.tenant_id', '', true);
END $$;
"""
RECENT_EVERY = 10  # polls: every 5 s, the syncs that started in the last RECENT_WINDOW
RECENT_WINDOW = timedelta(seconds=30)


@dataclass
class Progress:
    done_at: dict[uuid.UUID, float]
    """Wall-clock time (time.time()) of the poll that first saw each agency fully synced."""
    all_done_at: float
    polls: int
    poll_ms: list[float]
    synced_twice: int
    """Accounts seen with two different last_success_at (two syncs started) in this run: a
    lower bound, a sync overwritten within one look (every 5 s) is not seen."""


async def _wait_all_synced(
    owner_dsn: str,
    started: datetime,
    sizes: dict[uuid.UUID, int],
    worker: Server,
    timeout_s: float,
) -> Progress:
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    done_at: dict[uuid.UUID, float] = {}
    poll_ms: list[float] = []
    deadline = time.monotonic() + timeout_s
    last_report = time.monotonic()
    polls = 0
    seen: dict[uuid.UUID, set[datetime]] = {}

    async def look(since: datetime) -> None:
        for r in await conn.fetch("SELECT * FROM pg_temp.bench_recent($1)", since):
            seen.setdefault(r["o_account"], set()).add(r["o_at"])

    try:
        await conn.execute(_PROGRESS_FN)
        await conn.execute(_RECENT_FN)
        while True:
            worker.check_alive()
            t0 = time.perf_counter()
            rows = await conn.fetch("SELECT * FROM pg_temp.bench_progress($1)", started)
            now = time.time()
            poll_ms.append(1000 * (time.perf_counter() - t0))
            polls += 1
            done = stuck = 0
            for row in rows:
                done += row["o_done"]
                stuck += row["o_stuck"]
                if row["o_done"] == row["o_total"] and row["o_tenant"] not in done_at:
                    done_at[row["o_tenant"]] = now
            if done == ACCOUNTS:
                await look(started)
                twice = sum(1 for stamps in seen.values() if len(stamps) > 1)
                return Progress(done_at, now, polls, poll_ms, twice)
            if polls % RECENT_EVERY == 0:
                await look(max(started, datetime.now(UTC) - RECENT_WINDOW))
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                print(
                    f"   … {done:,} of {ACCOUNTS:,} synced, {len(done_at)} of {TENANTS} agencies "
                    f"done, {stuck} accounts not 'connected'",
                    flush=True,
                )
            if stuck and done + stuck >= ACCOUNTS:
                raise BenchError(
                    f"{stuck} accounts left 'connected' (needs_reauth or error) and will not "
                    f"sync in this run; end of the worker's log:\n{worker.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise BenchError(
                    f"only {done:,} of {ACCOUNTS:,} accounts synced after {timeout_s:.0f} s "
                    f"({stuck} not 'connected'); end of the worker's log:\n{worker.log_tail()}"
                )
            await asyncio.sleep(POLL_S)
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------
# After the run: arq's job results, the daily rows


@dataclass(frozen=True)
class Job:
    tenant_id: uuid.UUID
    account_id: uuid.UUID
    tries: int
    success: bool
    result: Any
    enqueued: float
    started: float
    finished: float


async def _job_results(redis_url: str) -> list[Job]:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    jobs: list[Job] = []
    try:
        keys = [k async for k in redis.scan_iter(match="arq:result:social-sync:*", count=1000)]
        for i in range(0, len(keys), 500):
            for raw in await redis.mget(keys[i : i + 500]):
                if raw is None:
                    continue
                d = json.loads(raw)
                jobs.append(
                    Job(
                        tenant_id=uuid.UUID(d["a"][0]),
                        account_id=uuid.UUID(d["a"][1]),
                        tries=int(d["t"]),
                        success=bool(d["s"]),
                        result=d["r"],
                        enqueued=d["et"] / 1000,
                        started=d["st"] / 1000,
                        finished=d["ft"] / 1000,
                    )
                )
    finally:
        await redis.aclose()
    return jobs


@dataclass(frozen=True)
class RowCheck:
    rows: int
    distinct: int
    accounts_with_rows: int
    missing_days: int
    accounts_missing_days: int
    first_day_min: date | None
    first_day_max: date | None
    last_day_min: date | None
    statuses: dict[str, int]
    metric_errors: int
    anomalies: int


async def _check_rows(owner_dsn: str, tenants: list[uuid.UUID], yesterday: date) -> RowCheck:
    import asyncpg

    rows = distinct = with_rows = missing = accounts_missing = metric_errors = anomalies = 0
    firsts: list[date] = []
    lasts: list[date] = []
    statuses: dict[str, int] = {}
    conn = await asyncpg.connect(owner_dsn)
    try:
        for tenant_id in tenants:
            async with conn.transaction():
                await conn.execute(_SET_TENANT, str(tenant_id))
                r = await conn.fetchrow(
                    "SELECT count(*) AS n, count(DISTINCT (account_id, day)) AS d "
                    "FROM social_stats_daily WHERE tenant_id = $1",
                    tenant_id,
                )
                rows += r["n"]
                distinct += r["d"]
                # Every account has every day from its first stored day to yesterday.
                per = await conn.fetch(
                    """
                    SELECT a.id, min(s.day) AS first, max(s.day) AS last,
                           count(DISTINCT s.day) AS days
                    FROM social_accounts a
                    LEFT JOIN social_stats_daily s
                      ON s.tenant_id = a.tenant_id AND s.account_id = a.id AND s.day <= $2
                    WHERE a.tenant_id = $1
                    GROUP BY a.id
                    """,
                    tenant_id,
                    yesterday,
                )
                for p in per:
                    if p["first"] is None:
                        accounts_missing += 1
                        continue
                    with_rows += 1
                    firsts.append(p["first"])
                    lasts.append(p["last"])
                    expected = (yesterday - p["first"]).days + 1
                    if p["days"] != expected:
                        missing += expected - p["days"]
                        accounts_missing += 1
                for s in await conn.fetch(
                    "SELECT status, count(*) AS n FROM social_accounts WHERE tenant_id = $1 "
                    "GROUP BY status",
                    tenant_id,
                ):
                    statuses[s["status"]] = statuses.get(s["status"], 0) + s["n"]
                metric_errors += await conn.fetchval(
                    "SELECT count(*) FROM social_accounts WHERE tenant_id = $1 "
                    "AND metric_errors <> '{}'::jsonb",
                    tenant_id,
                )
                anomalies += await conn.fetchval(
                    "SELECT count(*) FROM social_anomalies WHERE tenant_id = $1", tenant_id
                )
    finally:
        await conn.close()
    return RowCheck(
        rows=rows,
        distinct=distinct,
        accounts_with_rows=with_rows,
        missing_days=missing,
        accounts_missing_days=accounts_missing,
        first_day_min=min(firsts) if firsts else None,
        first_day_max=max(firsts) if firsts else None,
        last_day_min=min(lasts) if lasts else None,
        statuses=statuses,
        metric_errors=metric_errors,
        anomalies=anomalies,
    )


async def _sync_starts(owner_dsn: str, started: datetime) -> tuple[float, float]:
    """min and max last_success_at (each account's last sync start) among this run's syncs."""
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    try:
        lo = hi = None
        for (tenant_id,) in await conn.fetch("SELECT id FROM tenants"):
            async with conn.transaction():
                await conn.execute(_SET_TENANT, str(tenant_id))
                row = await conn.fetchrow(
                    "SELECT min(last_success_at) AS lo, max(last_success_at) AS hi "
                    "FROM social_accounts WHERE tenant_id = $1 AND last_success_at >= $2",
                    tenant_id,
                    started,
                )
            if row["lo"] is not None:
                lo = row["lo"] if lo is None else min(lo, row["lo"])
                hi = row["hi"] if hi is None else max(hi, row["hi"])
    finally:
        await conn.close()
    if lo is None or hi is None:
        raise BenchError("no account synced in this run")
    return lo.timestamp(), hi.timestamp()


# ---------------------------------------------------------------------------------------------
# The worker's memory


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc), should the worker fork."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def _peak_rss_kib(server: Server) -> int | None:
    """Peak resident set (VmHWM) of the server's processes, summed, in KiB; None if unknown."""
    if server.proc is None:
        return None
    total = 0
    for pid in _process_tree(server.proc.pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total or None


# ---------------------------------------------------------------------------------------------


def _run_async(coro: Any) -> Any:
    return asyncio.run(coro)


def run() -> None:
    env = require_env(
        "DATABASE_URL",
        "DATABASE_OWNER_URL",
        "REDIS_URL",
        "JWT_PRIVATE_KEYS",
        "TOKEN_ENCRYPTION_KEYS",
    )
    max_jobs = env_int("BENCH_MAX_JOBS", DEFAULT_MAX_JOBS)
    rate = env_int("BENCH_RATE", DEFAULT_RATE)
    timeout_s = env_int("BENCH_TIMEOUT", 900)
    redis_index = int(os.environ.get("BENCH_REDIS_DB", "12"))

    from infra.settings import DEFAULT_SOCIAL_RATES, Settings
    from infra.vault import TokenVault
    from social.ratebudget import Rate

    owner_url = with_database(env["DATABASE_OWNER_URL"], DATABASE)
    app_url = with_database(env["DATABASE_URL"], DATABASE)
    owner_dsn = libpq_url(owner_url)
    redis_url = redis_with_db(env["REDIS_URL"], redis_index)
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    base_urls = {p: f"{sim_url}/{p}" for p in DEFAULT_SOCIAL_RATES if ":" not in p}
    clients = {p: {"client_id": f"cid-{p}", "client_secret": f"secret-{p}"} for p in base_urls}
    social_rates = {**DEFAULT_SOCIAL_RATES, PLATFORM: f"{rate}/1"}
    # The budgets that govern the requests of PLATFORM's accounts (LinkedIn: the app's only).
    governing = {k: v for k, v in social_rates.items() if k.split(":")[0] == PLATFORM}
    tightest_key = min(governing, key=lambda k: Rate.parse(governing[k]).per_second)
    tightest_rps = Rate.parse(governing[tightest_key]).per_second
    worker_settings = {
        "DATABASE_URL": app_url,
        "DATABASE_OWNER_URL": owner_url,
        "REDIS_URL": redis_url,
        "SOCIAL_BASE_URLS": json.dumps(base_urls),
        "SOCIAL_CLIENTS": json.dumps(clients),
        "SOCIAL_RATES": json.dumps(social_rates),
        "WORKER_MAX_JOBS": str(max_jobs),
        "LOG_LEVEL": "WARNING",
        # The inbox's reads of every account (its own cron, measured by bench inbox) would
        # spend the same LinkedIn budget and the same job slots as the syncs measured here:
        # the bound counts the syncs' requests only.
        "INBOX_READS": "false",
        # This checkout's code, not the one the shared venv's editable install points to.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    settings = Settings(
        database_url=app_url,
        database_owner_url=owner_url,
        redis_url=redis_url,
        social_base_urls=base_urls,
        social_clients=clients,
        social_rates=social_rates,
        worker_max_jobs=max_jobs,
        log_level="WARNING",
    )
    vault = TokenVault.from_secret(settings.token_encryption_keys)
    sizes = _sizes()
    small = sum(1 for s in sizes if s <= SMALL_TENANT)
    versions = package_versions("arq", "redis", "httpx", "sqlalchemy", "asyncpg", "uvicorn")

    print(f"== bench social: {ACCOUNTS:,} accounts over {TENANTS} agencies, ONE worker ==")
    print(f"   {machine_note().replace('wrk, the server under test', 'the worker, the simulator')}")
    print(
        f"   agencies' sizes Zipf s={ZIPF_S}: biggest {sizes[0]:,}, then {sizes[1]}, {sizes[2]}, "
        f"{sizes[3]} …; smallest {sizes[-1]}; {small} agencies with <= {SMALL_TENANT} accounts"
    )
    print(
        f"   platform {PLATFORM} for every account; simulator latency {LATENCY_S * 1000:.0f} ms "
        f"per request, its own process (devtools.platforms --accounts-from-seed)"
    )
    print(
        f"   worker: WORKER_MAX_JOBS={max_jobs} (BENCH_MAX_JOBS), DATABASE_POOL_SIZE="
        f"{settings.database_pool_size} (app default), LOG_LEVEL=WARNING"
    )
    print(f"   SOCIAL_RATES={json.dumps(social_rates)}")
    print(
        f"   (the budget governing {PLATFORM}: {tightest_key} = {governing[tightest_key]}, "
        f"{tightest_rps:g} requests/s; BENCH_RATE)"
    )

    started_setup = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    sim = Server(
        "platform simulator",
        [
            str(VENV_BIN / "python"),
            "-m",
            "devtools.platforms",
            "--port",
            str(sim_port),
            "--latency",
            str(LATENCY_S),
            "--accounts-from-seed",
            "--clients",
            json.dumps(clients),
        ],
        env={**os.environ},
        port=sim_port,
        log_path=RESULTS / f"{NAME}-simulator.log",
    )
    worker = Server(
        "worker",
        [str(VENV_BIN / "passerelle"), "worker"],
        env={**os.environ, **worker_settings},
        port=0,
        log_path=RESULTS / f"{NAME}-worker.log",
    )
    with ExitStack() as stack:
        stack.callback(sim.stop)
        stack.callback(worker.stop)  # runs first
        print(f"-- building database {DATABASE} (drop, create, migrate) …", flush=True)
        _run_async(recreate_database(env["DATABASE_OWNER_URL"], DATABASE))
        migrate(owner_url)
        sim.start()
        sim.wait_ready("/_sim/health")
        print(f"-- seeding {ACCOUNTS:,} accounts (owner role, agency by agency) …", flush=True)
        seeded = _run_async(_seed(owner_dsn, vault, sizes))
        print(f"-- seeded in {seeded.seconds:.1f} s", flush=True)
        _run_async(flush_redis(redis_url))

        tenant_ids = [t for t, _ in seeded.tenants]
        print(
            f"-- baseline: {BASELINE_WARMUP} warm-up then {BASELINE_SAMPLES} syncs one at a time "
            "(social.sync.sync_account in this process) …",
            flush=True,
        )
        # Small agencies: their accounts are the ones reset; any would do.
        baseline = _run_async(_baseline(settings, sim_url, owner_dsn, tenant_ids[::-1]))
        ms = sorted(round(1000 * d) for d in baseline.durations_s)
        print(
            f"-- d1 (median) {1000 * baseline.d1_s:.0f} ms (all: {ms} ms); "
            f"{baseline.requests_per_account:g} simulator requests per account",
            flush=True,
        )
        bound_jobs = max_jobs / baseline.d1_s
        bound_rate = tightest_rps / baseline.requests_per_account
        bound = min(bound_jobs, bound_rate)
        binding = "concurrency" if bound_jobs <= bound_rate else "rate budget"
        print(
            f"-- bound = min({max_jobs} / {baseline.d1_s:.3f} s = {bound_jobs:.1f}, "
            f"{tightest_rps:g} req/s / {baseline.requests_per_account:g} = {bound_rate:.1f}) = "
            f"{bound:.1f} accounts/s ({binding} bound)",
            flush=True,
        )
        _run_async(flush_redis(redis_url))
        print(f"-- setup {time.monotonic() - started_setup:.1f} s", flush=True)

        busy = machine_busy_percent()
        if busy is not None and busy > BUSY_WARNING_PERCENT:
            print(
                f"   WARNING: the machine was {busy:.0f}% busy before measuring (something else "
                "is running): the figures will be low and noisy.",
                flush=True,
            )
        sim_before = _run_async(_sim_requests(sim_url))
        sim_cpu_before = sim.cpu_seconds()
        started_dt = datetime.now(UTC)
        launched = time.time()
        print("-- running ONE `passerelle worker` until every account has synced …", flush=True)
        worker.start()
        with profiled(worker.proc.pid if worker.proc else None, f"{NAME}-worker"):
            progress = _run_async(
                _wait_all_synced(owner_dsn, started_dt, dict(seeded.tenants), worker, timeout_s)
            )
        worker_cpu = worker.cpu_seconds()
        worker_rss = _peak_rss_kib(worker)
        sim_cpu_after = sim.cpu_seconds()
        sim_sent = _run_async(_sim_requests(sim_url)) - sim_before
        worker.stop()

    # Everything below reads what the run left behind (the processes are gone).
    first_start, last_start = _run_async(_sync_starts(owner_dsn, started_dt))
    jobs = _run_async(_job_results(redis_url))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    rows = _run_async(_check_rows(owner_dsn, tenant_ids, yesterday))

    size_of = dict(seeded.tenants)
    end = progress.all_done_at
    by_job_finish: dict[uuid.UUID, float] = {}
    for job in jobs:
        if job.success and str(job.result).startswith("synced"):
            by_job_finish[job.tenant_id] = max(by_job_finish.get(job.tenant_id, 0.0), job.finished)
    precise = len(by_job_finish) == TENANTS and len(jobs) >= ACCOUNTS
    last_finish = max(j.finished for j in jobs) if jobs else end
    first_finish = min(j.finished for j in jobs) if jobs else first_start
    first_job_start = min(j.started for j in jobs) if jobs else first_start
    # Completion of an agency: its last job's finish (arq results), else the poll that saw it.
    done_at = by_job_finish if precise else progress.done_at
    finish = last_finish if precise else end
    # Without arq's results (sync jobs keep none), from the worker's launch: the syncs' own
    # start stamps are overwritten when an account syncs twice.
    origin = first_job_start if precise else launched
    span = finish - origin
    origin_name = "the first job's start" if precise else "the worker's launch"
    rate_measured = ACCOUNTS / span
    rate_from_launch = ACCOUNTS / (finish - launched)
    ratio = rate_measured / bound
    verdict = "PASS" if ratio >= TARGET else "MISS"

    completion = {t: done_at[t] - origin for t in size_of}
    values = list(completion.values())
    small_tenants = [t for t, n in size_of.items() if n <= SMALL_TENANT]
    biggest = seeded.tenants[0][0]
    small_worst = max(completion[t] for t in small_tenants)
    small_p50 = statistics.median(completion[t] for t in small_tenants)

    durations = [j.finished - j.started for j in jobs]
    waits = [j.started - j.enqueued for j in jobs]
    tries = [j.tries for j in jobs]
    retried = sum(1 for t in tries if t > 1)
    in_flight = sum(durations) / span if span > 0 else 0.0

    print()
    print(f"accounts synced:  {ACCOUNTS:,} in {span:.1f} s")
    print(
        f"accounts/s:       {rate_measured:.1f}  (N / "
        + (
            f"(last job finish - first job start)); {rate_from_launch:.1f} from the worker's launch"
            if precise
            else "(the poll that saw the last account synced - the worker's launch))"
        )
    )
    print(
        f"bound:            {bound:.1f}  = min(WORKER_MAX_JOBS {max_jobs} / d1 "
        f"{baseline.d1_s:.3f} s = {bound_jobs:.1f}, {tightest_rps:g} req/s / "
        f"{baseline.requests_per_account:g} req = {bound_rate:.1f})"
    )
    print(f"ratio:            {100 * ratio:.1f} %  target >= {100 * TARGET:.0f} %  {verdict}")
    print(
        f"jobs (arq):       {len(jobs):,} results; duration p50 {1000 * _pct(durations, 50):.0f} ms"
        f" p90 {1000 * _pct(durations, 90):.0f} ms max {1000 * max(durations):.0f} ms "
        f"(d1 {1000 * baseline.d1_s:.0f} ms); mean in flight {in_flight:.1f} of {max_jobs}; "
        f"{retried} retried (max tries {max(tries)})"
        if jobs
        else "jobs (arq):       no results (the sync jobs keep none): no per-job times"
    )
    syncs = sim_sent / baseline.requests_per_account
    print(
        f"simulator:        {sim_sent:,} requests = {sim_sent / ACCOUNTS:.2f} per account "
        f"(baseline {baseline.requests_per_account:g}): about {syncs:,.0f} syncs for "
        f"{ACCOUNTS:,} accounts; {progress.synced_twice:,} accounts seen synced twice "
        "(a lower bound)"
    )
    wcpu = "n/a" if worker_cpu is None else f"{worker_cpu:.1f} s = {100 * worker_cpu / span:.0f} %"
    scpu = (
        "n/a"
        if sim_cpu_after is None or sim_cpu_before is None
        else f"{sim_cpu_after - sim_cpu_before:.1f} s = "
        f"{100 * (sim_cpu_after - sim_cpu_before) / span:.0f} %"
    )
    print(f"CPU (of one core): worker {wcpu}; simulator {scpu}")
    print(
        "memory:           worker peak RSS (VmHWM) "
        + ("n/a" if worker_rss is None else f"{worker_rss / 1024:.0f} MiB")
    )
    if worker_cpu:
        per = worker_cpu / ACCOUNTS
        print(
            f"  worker CPU per account {1000 * per:.1f} ms (start-up and cron included): one "
            f"process cannot pass {1 / per:.0f} accounts/s on a core of its own, whatever "
            "WORKER_MAX_JOBS"
        )
    if jobs:
        enq = [j.enqueued - origin for j in jobs]
        print(
            f"  queued by the cron: 50 % by {_pct(enq, 50):.1f} s, 90 % by {_pct(enq, 90):.1f} s, "
            f"the last at {max(enq):.1f} s (start-up pass, then one pass a minute, at most "
            "1,000 accounts of an agency each)"
        )
    print(
        f"completion per agency (its last account done, from {origin_name}): "
        f"p50 {_pct(values, 50):.1f} s  p90 {_pct(values, 90):.1f} s  max {max(values):.1f} s"
    )
    print(
        f"  small agencies (<= {SMALL_TENANT} accounts, {len(small_tenants)}): median "
        f"{small_p50:.1f} s, worst {small_worst:.1f} s; biggest ({size_of[biggest]:,} accounts): "
        f"{completion[biggest]:.1f} s"
    )
    waits_note = (
        f"  queue wait (enqueue -> start) p50 {_pct(waits, 50):.1f} s p90 {_pct(waits, 90):.1f} s "
        f"max {max(waits):.1f} s"
        if waits
        else ""
    )
    if waits_note:
        print(waits_note)
    dup = rows.rows - rows.distinct
    print(
        f"daily rows:       {rows.rows:,} rows, {rows.distinct:,} distinct (account, day): "
        f"{dup} duplicated; {rows.missing_days} days missing in {rows.accounts_missing_days} "
        f"accounts (every day from each account's first stored day "
        f"[{rows.first_day_min}..{rows.first_day_max}] to yesterday {yesterday})"
    )
    print(
        f"accounts:         {rows.statuses}; {rows.metric_errors} with metric errors; "
        f"{rows.anomalies} anomalies recorded"
    )

    out = write_results(
        NAME,
        {
            "benchmark": NAME,
            "finished_at": datetime.now(UTC).isoformat(),
            "data": {
                "accounts": ACCOUNTS,
                "tenants": TENANTS,
                "zipf_s": ZIPF_S,
                "sizes": sizes,
                "platform": PLATFORM,
                "simulator_latency_s": LATENCY_S,
                "seed_seconds": round(seeded.seconds, 2),
            },
            "config": {
                "worker_max_jobs": max_jobs,
                "database_pool_size": settings.database_pool_size,
                "social_rates": social_rates,
                "governing_budget": {tightest_key: governing[tightest_key]},
            },
            "baseline": {
                "durations_ms": [round(1000 * d, 1) for d in baseline.durations_s],
                "d1_ms": round(1000 * baseline.d1_s, 1),
                "requests_per_account": baseline.requests_per_account,
            },
            "bound": {
                "concurrency": round(bound_jobs, 2),
                "rate_budget": round(bound_rate, 2),
                "bound": round(bound, 2),
            },
            "run": {
                "span_s": round(span, 2),
                "span_definition": (
                    "last job finish - first job start (arq results)"
                    if precise
                    else "poll that saw the last account synced - worker launch"
                ),
                "accounts_per_s": round(rate_measured, 2),
                "accounts_per_s_from_worker_launch": round(rate_from_launch, 2),
                "first_job_finish_s": round(first_finish - origin, 2),
                "last_sync_start_s": round(last_start - origin, 2),
                "ratio": round(ratio, 4),
                "target": TARGET,
                "verdict": verdict,
                "jobs": len(jobs),
                "job_ms_p50": round(1000 * _pct(durations, 50), 1) if jobs else None,
                "job_ms_p90": round(1000 * _pct(durations, 90), 1) if jobs else None,
                "job_ms_max": round(1000 * max(durations), 1) if jobs else None,
                "mean_in_flight": round(in_flight, 2),
                "queue_wait_s_p50": round(_pct(waits, 50), 2) if jobs else None,
                "queue_wait_s_max": round(max(waits), 2) if jobs else None,
                "retried_jobs": retried,
                "simulator_requests": sim_sent,
                "syncs_estimated": round(syncs),
                "accounts_seen_synced_twice": progress.synced_twice,
                "worker_cpu_s": worker_cpu,
                "worker_peak_rss_kib": worker_rss,
                "worker_cpu_ms_per_account": (
                    round(1000 * worker_cpu / ACCOUNTS, 2) if worker_cpu else None
                ),
                "enqueued_s_p50": round(_pct([j.enqueued - origin for j in jobs], 50), 2)
                if jobs
                else None,
                "enqueued_s_max": round(max(j.enqueued - origin for j in jobs), 2)
                if jobs
                else None,
                "simulator_cpu_s": (
                    None
                    if sim_cpu_after is None or sim_cpu_before is None
                    else round(sim_cpu_after - sim_cpu_before, 2)
                ),
                "polls": progress.polls,
                "poll_ms_p50": round(statistics.median(progress.poll_ms), 2),
            },
            "completion_s": {
                "p50": round(_pct(values, 50), 2),
                "p90": round(_pct(values, 90), 2),
                "max": round(max(values), 2),
                "small_tenants": len(small_tenants),
                "small_median": round(small_p50, 2),
                "small_worst": round(small_worst, 2),
                "biggest_accounts": size_of[biggest],
                "biggest": round(completion[biggest], 2),
                "per_tenant": sorted(
                    ({"accounts": size_of[t], "s": round(c, 2)} for t, c in completion.items()),
                    key=lambda e: -e["accounts"],
                ),
            },
            "rows": {
                "rows": rows.rows,
                "distinct_account_day": rows.distinct,
                "duplicated": dup,
                "missing_days": rows.missing_days,
                "accounts_missing_days": rows.accounts_missing_days,
                "first_day_min": rows.first_day_min,
                "first_day_max": rows.first_day_max,
                "yesterday": yesterday,
                "statuses": rows.statuses,
                "metric_errors": rows.metric_errors,
                "anomalies": rows.anomalies,
            },
            "cpu_count": os.cpu_count(),
            "machine_busy_percent_before": None if busy is None else round(busy, 1),
            "note": machine_note(),
            "versions": versions,
        },
    )
    print(f"figures written to {out.relative_to(ROOT)}")
    if dup or rows.missing_days or rows.accounts_missing_days:
        raise BenchError(
            f"daily rows are wrong: {dup} duplicated, {rows.missing_days} days missing in "
            f"{rows.accounts_missing_days} accounts"
        )
