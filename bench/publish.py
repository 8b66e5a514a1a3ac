"""Publishing benchmark: 5,000 publications due at the same minute over 500 agencies and the
network platforms, published by real `passerelle worker` processes against the simulator.

The platform simulator runs as its own process with 200 ms per request and accepts the seeded
tokens ``sim-<platform>-<external id>``. Each agency has one account per platform with a
publishing connector (Instagram is left out: it fetches media itself from a public https URL,
which the loopback media server is not; the run says so); its publications go round robin over
them. Facebook, X and LinkedIn posts are text only;
YouTube and TikTok need a video: a small generated MP4 from devtools/media_server.py (served by
this process on loopback), downloaded by the worker as in production.

Baseline, in the same run and the same worker: one publication per platform alone (planned a
few seconds ahead, its job queued as the API queues it) gives each platform's attempt time d_p,
the simulator requests per publication, and the start delay of a lone post (target: <= 5 s).

Then every publication is planned for the same instant T, and the worker's own sweep (every
minute at :50, two minutes ahead) queues them, as in production. The benchmark polls the
database until none is pending, then reads each publication's lateness (published_at -
planned_at). The bound, printed beside it:

    bound = s0 + max( sum_p N_p * d_p / (workers * WORKER_MAX_JOBS),
                      max_p [ max(0, N_p * u_p - burst_p) / rate_p + d_p ] )

s0 the lone post's start delay, N_p publications on platform p, u_p budget units each (the
simulator requests of its baseline publication; YouTube: the 1,600 quota units of an upload),
burst_p and rate_p the platform's SOCIAL_RATES bucket. Target: p99 lateness <= 1.2 x bound and
no post made twice (the simulator's own count).

Scale: BENCH_PUBLICATIONS (5000), BENCH_AGENCIES (500), BENCH_WORKERS (1), BENCH_MAX_JOBS (100),
BENCH_RATE (requests per second of each platform's app budget, 50), BENCH_POOL_SIZE (each
worker's DATABASE_POOL_SIZE, 30), BENCH_TIMEOUT (s, 1800).
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
from datetime import UTC, datetime, timedelta
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
    recreate_database,
    redis_with_db,
    require_env,
    with_database,
    write_results,
)

NAME = "publish"
DATABASE = "passerelle_bench_publish"
NETWORK = ("facebook_page", "instagram_business", "linkedin_organization", "x", "youtube", "tiktok")
VARIANT = {
    "facebook_page": "facebook",
    "instagram_business": "instagram",
    "linkedin_organization": "linkedin",
    "x": "x",
    "youtube": "youtube",
    "tiktok": "tiktok",
}
VIDEO_PLATFORMS = ("youtube", "tiktok")
NEEDS_PUBLIC_MEDIA = ("instagram_business",)
"""Instagram takes media only from a public https URL, and needs media on every post."""
LATENCY_S = 0.2
DEFAULT_PUBLICATIONS = 5000
DEFAULT_AGENCIES = 500
DEFAULT_WORKERS = 1
DEFAULT_MAX_JOBS = 100
DEFAULT_RATE = 50
DEFAULT_POOL_SIZE = 30
RECONCILE_MINUTES = 2
POLL_S = 1.0
TARGET = 1.2
LONE_TARGET_S = 5.0
BUSY_WARNING_PERCENT = 15
FAR = timedelta(days=30)
"""Seeded publications wait this far ahead until the run plans them all for T."""
SWEEP_SECOND = 50
SWEEP_LEAD = timedelta(seconds=40)
"""T is this long after a sweep of the worker, which queues what is due within 2 minutes."""

_SET_TENANT = "SELECT set_config('app.tenant_id', $1, true)"


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _publishing_platforms() -> tuple[list[str], list[str]]:
    """(the network platforms the run publishes on, those it leaves out)."""
    from social.connectors import PLATFORMS
    from social.connectors.types import Platform

    can = [
        p
        for p in NETWORK
        if hasattr(PLATFORMS[Platform(p)], "prepare") and p not in NEEDS_PUBLIC_MEDIA
    ]
    return can, [p for p in NETWORK if p not in can]


# ---------------------------------------------------------------------------------------------
# Seed (owner role; row-level security is forced for it too, so agency by agency)


@dataclass(frozen=True)
class Seeded:
    tenants: list[uuid.UUID]
    publications: dict[uuid.UUID, list[uuid.UUID]]
    """Per agency, its publications of the big run."""
    per_platform: dict[str, int]
    max_per_account: int
    baseline_tenant: uuid.UUID
    baseline: list[tuple[str, uuid.UUID]]
    """(platform, publication) of the baseline agency, the warm-up first."""
    seconds: float


def _media(platform: str, video_url: str) -> list[dict[str, Any]]:
    return [{"url": video_url, "type": "video"}] if platform in VIDEO_PLATFORMS else []


async def _seed_agency(
    conn: Any,
    vault: Any,
    idx: int,
    slug: str,
    platforms: list[str],
    plan: list[str],
    video_url: str,
    serial: list[int],
) -> tuple[uuid.UUID, list[tuple[str, uuid.UUID]]]:
    """One agency, one account per platform, one approved and scheduled item (with its
    revision and publication) per entry of `plan` (a platform each), all far ahead."""
    tenant_id, client_id, brand_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    planned = datetime.now(UTC) + FAR
    accounts: dict[str, uuid.UUID] = {}
    externals: dict[str, str] = {}
    for platform in platforms:
        serial[0] += 1
        accounts[platform] = uuid.uuid4()
        externals[platform] = str(20_000_000 + serial[0])
    items = [uuid.uuid4() for _ in plan]
    revisions = [uuid.uuid4() for _ in plan]
    publications = [uuid.uuid4() for _ in plan]
    texts = [f"Bench {idx:03d} #{n} {p}: le pain est sorti du four" for n, p in enumerate(plan)]
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO tenants (id, slug, name, timezone, locale, currency, plan_id) "
            "VALUES ($1, $2, $3, 'America/Montreal', 'fr-CA', 'CAD', 'agency')",
            tenant_id,
            slug,
            f"Agence {slug}",
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
                status, access_token, refresh_token, token_expires_at, handle)
            SELECT $1, a.id, $2, a.platform, a.external_id, 'connected', a.token, a.token,
                   $3, 'bench_' || a.external_id
            FROM unnest($4::uuid[], $5::text[], $6::text[], $7::bytea[])
                AS a(id, platform, external_id, token)
            """,
            tenant_id,
            brand_id,
            datetime.now(UTC) + timedelta(days=3650),
            [accounts[p] for p in platforms],
            platforms,
            [externals[p] for p in platforms],
            [vault.encrypt(f"sim-{p}-{externals[p]}") for p in platforms],
        )
        await conn.execute(
            """
            INSERT INTO content_items (tenant_id, id, brand_id, title, status, planned_at,
                current_revision_id, revision_number)
            SELECT $1, i.id, $2, 'Fournée du matin', 'scheduled', $3, i.rev, 1
            FROM unnest($4::uuid[], $5::uuid[]) AS i(id, rev)
            """,
            tenant_id,
            brand_id,
            planned,
            items,
            revisions,
        )
        await conn.execute(
            """
            INSERT INTO content_revisions (tenant_id, id, content_item_id, number, title,
                variants, media, planned_at, social_account_ids)
            SELECT $1, r.id, r.item, 1, 'Fournée du matin', r.variants::jsonb, r.media::jsonb,
                   $2, ARRAY[r.account]
            FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::uuid[])
                AS r(id, item, variants, media, account)
            """,
            tenant_id,
            planned,
            revisions,
            items,
            [json.dumps({VARIANT[p]: t}) for p, t in zip(plan, texts, strict=True)],
            [json.dumps(_media(p, video_url)) for p in plan],
            [accounts[p] for p in plan],
        )
        await conn.execute(
            """
            INSERT INTO publications (tenant_id, id, content_item_id, revision_id, brand_id,
                social_account_id, platform, planned_at, deadline_at, status)
            SELECT $1, p.id, p.item, p.rev, $2, p.account, p.platform, $3, $4, 'scheduled'
            FROM unnest($5::uuid[], $6::uuid[], $7::uuid[], $8::uuid[], $9::text[])
                AS p(id, item, rev, account, platform)
            """,
            tenant_id,
            brand_id,
            planned,
            planned + timedelta(hours=2),
            publications,
            items,
            revisions,
            [accounts[p] for p in plan],
            plan,
        )
    return tenant_id, list(zip(plan, publications, strict=True))


async def _seed(
    owner_dsn: str, vault: Any, platforms: list[str], total: int, agencies: int, video_url: str
) -> Seeded:
    import asyncpg

    started = time.monotonic()
    conn = await asyncpg.connect(owner_dsn)
    serial = [0]
    tenants: list[uuid.UUID] = []
    publications: dict[uuid.UUID, list[uuid.UUID]] = {}
    per_platform: dict[str, int] = dict.fromkeys(platforms, 0)
    per_account = 0
    n = 0
    try:
        for idx in range(agencies):
            # Publications spread evenly over agencies, then round robin over the platforms.
            count = total // agencies + (1 if idx < total % agencies else 0)
            plan = [platforms[(n + k) % len(platforms)] for k in range(count)]
            n += count
            for p in plan:
                per_platform[p] += 1
            per_account = max([per_account, *(plan.count(p) for p in platforms)])
            tenant_id, made = await _seed_agency(
                conn, vault, idx, f"bench-publish-{idx:03d}", platforms, plan, video_url, serial
            )
            tenants.append(tenant_id)
            publications[tenant_id] = [pub for _, pub in made]
        # The baseline's agency: a warm-up publication, then one per platform.
        plan = [platforms[0], *platforms]
        baseline_tenant, baseline = await _seed_agency(
            conn, vault, agencies, "bench-publish-baseline", platforms, plan, video_url, serial
        )
        for table in (
            "tenants",
            "social_accounts",
            "content_items",
            "content_revisions",
            "publications",
        ):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
    return Seeded(
        tenants=tenants,
        publications=publications,
        per_platform=per_platform,
        max_per_account=per_account,
        baseline_tenant=baseline_tenant,
        baseline=baseline,
        seconds=time.monotonic() - started,
    )


# ---------------------------------------------------------------------------------------------
# Reading the publications back (owner role, agency by agency)


@dataclass(frozen=True)
class Row:
    platform: str
    status: str
    planned_at: datetime
    started_at: datetime | None
    published_at: datetime | None
    attempts: int
    error_code: str | None
    first_start: datetime | None
    """The first attempt's start."""
    last_finish: datetime | None


_ROW_SQL = """
SELECT p.id, p.platform, p.status, p.planned_at, p.started_at, p.published_at, p.attempts,
       p.error_code,
       (SELECT min(a.started_at) FROM publication_attempts a
         WHERE a.tenant_id = p.tenant_id AND a.publication_id = p.id) AS first_start,
       (SELECT max(a.finished_at) FROM publication_attempts a
         WHERE a.tenant_id = p.tenant_id AND a.publication_id = p.id) AS last_finish
FROM publications p WHERE p.tenant_id = $1 AND p.id = ANY($2::uuid[])
"""


async def _read(conn: Any, tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, Row]:
    async with conn.transaction():
        await conn.execute(_SET_TENANT, str(tenant_id))
        rows = await conn.fetch(_ROW_SQL, tenant_id, ids)
    return {
        r["id"]: Row(
            platform=r["platform"],
            status=r["status"],
            planned_at=r["planned_at"],
            started_at=r["started_at"],
            published_at=r["published_at"],
            attempts=r["attempts"],
            error_code=r["error_code"],
            first_start=r["first_start"],
            last_finish=r["last_finish"],
        )
        for r in rows
    }


_PENDING_FN = """
CREATE FUNCTION pg_temp.bench_pending()
RETURNS TABLE (o_status text, o_n bigint)
LANGUAGE plpgsql AS $$
DECLARE t uuid;
BEGIN
  FOR t IN SELECT id FROM tenants WHERE slug <> 'bench-publish-baseline' LOOP
    PERFORM set_config('app.tenant_id', t::text, true);
    RETURN QUERY
      SELECT p.status::text, count(*) FROM publications p WHERE p.tenant_id = t
      GROUP BY p.status;
  END LOOP;
  PERFORM set_config('app.tenant_id', '', true);
END $$;
"""

_PLAN_ALL_FN = """
CREATE FUNCTION pg_temp.bench_plan_all(at timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE t uuid; total bigint := 0; n bigint;
BEGIN
  FOR t IN SELECT id FROM tenants WHERE slug <> 'bench-publish-baseline' LOOP
    PERFORM set_config('app.tenant_id', t::text, true);
    UPDATE publications SET planned_at = at, deadline_at = at + interval '2 hours'
      WHERE tenant_id = t AND status = 'scheduled';
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    UPDATE content_items SET planned_at = at WHERE tenant_id = t;
    UPDATE content_revisions SET planned_at = at WHERE tenant_id = t;
  END LOOP;
  PERFORM set_config('app.tenant_id', '', true);
  RETURN total;
END $$;
"""


async def _plan_one(owner_dsn: str, redis_url: str, tenant_id: uuid.UUID, pub: uuid.UUID) -> None:
    """Plan one publication a moment ahead and queue its job as the API does
    (publishing.service.enqueue_publish: the publish job deferred to the planned time)."""
    import asyncpg

    from infra.queue import create_queue
    from publishing.jobs import PUBLISH_JOB

    at = datetime.now(UTC) + timedelta(seconds=2)
    conn = await asyncpg.connect(owner_dsn)
    try:
        async with conn.transaction():
            await conn.execute(_SET_TENANT, str(tenant_id))
            await conn.execute(
                "UPDATE publications SET planned_at = $3, deadline_at = $4 "
                "WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                pub,
                at,
                at + timedelta(hours=2),
            )
    finally:
        await conn.close()
    queue = await create_queue(redis_url)
    try:
        await queue.enqueue_job(
            PUBLISH_JOB,
            str(tenant_id),
            str(pub),
            _job_id=f"publish:{pub}:{int(at.timestamp())}:0",
            _defer_until=at,
        )
    finally:
        await queue.aclose()


async def _sim_stats(sim_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        return dict((await client.get(f"{sim_url}/_sim/stats")).json())


@dataclass(frozen=True)
class Lone:
    platform: str
    start_delay_s: float
    attempt_s: float
    lateness_s: float
    requests: int


async def _baseline(
    owner_dsn: str, redis_url: str, sim_url: str, seeded: Seeded, workers: list[Server]
) -> list[Lone]:
    """Each baseline publication alone, one after the other, through the running worker."""
    import asyncpg

    out: list[Lone] = []
    for platform, pub in seeded.baseline:
        before = (await _sim_stats(sim_url))["requests"].get(platform, 0)
        await _plan_one(owner_dsn, redis_url, seeded.baseline_tenant, pub)
        # The first one also waits out the workers' start-up.
        deadline = time.monotonic() + (180 if not out else 90)
        conn = await asyncpg.connect(owner_dsn)
        try:
            while True:
                for w in workers:
                    w.check_alive()
                row = (await _read(conn, seeded.baseline_tenant, [pub]))[pub]
                if row.status in ("published", "failed", "unconfirmed"):
                    break
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"baseline publication on {platform} still {row.status}; end of the "
                        f"worker's log:\n{workers[0].log_tail()}"
                    )
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        if row.status != "published":
            raise BenchError(
                f"baseline publication on {platform} ended {row.status} ({row.error_code}); end "
                f"of the worker's log:\n{workers[0].log_tail()}"
            )
        sent = (await _sim_stats(sim_url))["requests"].get(platform, 0) - before
        assert row.first_start and row.last_finish and row.published_at
        out.append(
            Lone(
                platform=platform,
                start_delay_s=(row.first_start - row.planned_at).total_seconds(),
                attempt_s=(row.last_finish - row.first_start).total_seconds(),
                lateness_s=(row.published_at - row.planned_at).total_seconds(),
                requests=sent,
            )
        )
    return out[1:]  # the first was the warm-up


@dataclass
class Progress:
    counts: dict[str, int]
    done_at: float


async def _wait_settled(
    owner_dsn: str, total: int, workers: list[Server], timeout_s: float
) -> Progress:
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    deadline = time.monotonic() + timeout_s
    last_report = time.monotonic()
    try:
        await conn.execute(_PENDING_FN)
        while True:
            for w in workers:
                w.check_alive()
            async with conn.transaction():
                rows = await conn.fetch("SELECT * FROM pg_temp.bench_pending()")
            counts: dict[str, int] = {}
            for r in rows:
                counts[r["o_status"]] = counts.get(r["o_status"], 0) + int(r["o_n"])
            pending = sum(counts.get(s, 0) for s in ("scheduled", "publishing", "unconfirmed"))
            if pending == 0 and sum(counts.values()) == total:
                return Progress(counts, time.time())
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                print(f"   … {counts}", flush=True)
            if time.monotonic() > deadline:
                raise BenchError(
                    f"still pending after {timeout_s:.0f} s: {counts}; end of the worker's "
                    f"log:\n{workers[0].log_tail()}"
                )
            await asyncio.sleep(POLL_S)
    finally:
        await conn.close()


async def _plan_all(owner_dsn: str, at: datetime) -> int:
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(_PLAN_ALL_FN)
        async with conn.transaction():
            return int(await conn.fetchval("SELECT pg_temp.bench_plan_all($1)", at))
    finally:
        await conn.close()


async def _read_all(owner_dsn: str, seeded: Seeded) -> list[Row]:
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    rows: list[Row] = []
    try:
        for tenant_id, ids in seeded.publications.items():
            rows += (await _read(conn, tenant_id, ids)).values()
    finally:
        await conn.close()
    return rows


def _next_t(now: datetime) -> datetime:
    """T: SWEEP_LEAD after the next sweep at least 5 s away."""
    sweep = now.replace(second=SWEEP_SECOND, microsecond=0)
    while sweep < now + timedelta(seconds=5):
        sweep += timedelta(minutes=1)
    return sweep + SWEEP_LEAD


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
    total = env_int("BENCH_PUBLICATIONS", DEFAULT_PUBLICATIONS)
    agencies = env_int("BENCH_AGENCIES", DEFAULT_AGENCIES)
    n_workers = env_int("BENCH_WORKERS", DEFAULT_WORKERS)
    max_jobs = env_int("BENCH_MAX_JOBS", DEFAULT_MAX_JOBS)
    rate = env_int("BENCH_RATE", DEFAULT_RATE)
    timeout_s = env_int("BENCH_TIMEOUT", 1800)
    pool_size = env_int("BENCH_POOL_SIZE", DEFAULT_POOL_SIZE)
    redis_index = int(os.environ.get("BENCH_REDIS_DB", "14"))

    from devtools.media_server import MediaServer
    from infra.settings import DEFAULT_SOCIAL_RATES, Settings
    from infra.vault import TokenVault
    from social.connectors.youtube import INSERT_UNITS
    from social.ratebudget import Rate

    platforms, left_out = _publishing_platforms()
    owner_url = with_database(env["DATABASE_OWNER_URL"], DATABASE)
    app_url = with_database(env["DATABASE_URL"], DATABASE)
    owner_dsn = libpq_url(owner_url)
    redis_url = redis_with_db(env["REDIS_URL"], redis_index)
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    base_urls = {p: f"{sim_url}/{p}" for p in NETWORK}
    clients = {p: {"client_id": f"cid-{p}", "client_secret": f"secret-{p}"} for p in NETWORK}
    # Each platform's app budget at BENCH_RATE requests a second (YouTube in quota units:
    # BENCH_RATE / 2 uploads a second); the per-token budgets stay the app's own.
    social_rates = {
        **DEFAULT_SOCIAL_RATES,
        **{p: f"{rate}/1" for p in NETWORK if p != "youtube"},
        "youtube": f"{int(rate / 2 * INSERT_UNITS)}/1",
    }
    worker_settings = {
        "DATABASE_URL": app_url,
        "DATABASE_OWNER_URL": owner_url,
        "REDIS_URL": redis_url,
        "SOCIAL_BASE_URLS": json.dumps(base_urls),
        "SOCIAL_CLIENTS": json.dumps(clients),
        "SOCIAL_RATES": json.dumps(social_rates),
        "WORKER_MAX_JOBS": str(max_jobs),
        # The app's default pool (10) with 100 jobs and the outbox's deliveries starves: checkouts
        # time out (10 s) and a publication's own write inside the create call then reads as an
        # unknown outcome.
        "DATABASE_POOL_SIZE": str(pool_size),
        # An unconfirmed publication settles (found, or failed) within the run.
        "PUBLISHING_RECONCILE_MINUTES": str(RECONCILE_MINUTES),
        "PUBLISHING_MEDIA_ALLOWED_NETWORKS": "127.0.0.0/8",
        "LOG_LEVEL": "WARNING",
    }
    settings = Settings(
        database_url=app_url,
        database_owner_url=owner_url,
        redis_url=redis_url,
        social_base_urls=base_urls,
        social_clients=clients,
        social_rates=social_rates,
        worker_max_jobs=max_jobs,
        database_pool_size=pool_size,
        log_level="WARNING",
    )
    vault = TokenVault.from_secret(settings.token_encryption_keys)
    versions = package_versions("arq", "redis", "httpx", "sqlalchemy", "asyncpg", "uvicorn")
    slots = n_workers * max_jobs

    print(
        f"== bench publish: {total:,} publications due at the same instant, {agencies} agencies, "
        f"{n_workers} worker process{'es' if n_workers > 1 else ''} =="
    )
    print(
        f"   {machine_note().replace('wrk, the server under test', 'the workers, the simulator')}"
    )
    print(
        f"   platforms: {', '.join(platforms)} (round robin, one account per platform per agency)"
        + (
            f"; left out (media from a public https URL only): {', '.join(left_out)}"
            if left_out
            else ""
        )
    )
    print(
        f"   simulator latency {LATENCY_S * 1000:.0f} ms per request, its own process; video for "
        f"{'/'.join(VIDEO_PLATFORMS)} from devtools.media_server"
    )
    print(
        f"   workers: WORKER_MAX_JOBS={max_jobs} (BENCH_MAX_JOBS) x {n_workers} (BENCH_WORKERS), "
        f"DATABASE_POOL_SIZE={pool_size} (BENCH_POOL_SIZE; the app's default is 10), "
        f"PUBLISHING_RECONCILE_MINUTES={RECONCILE_MINUTES}, LOG_LEVEL=WARNING"
    )
    print(f"   SOCIAL_RATES={json.dumps(social_rates)} (BENCH_RATE={rate})")

    RESULTS.mkdir(parents=True, exist_ok=True)
    media = MediaServer().start()
    video_url = f"{media.url}/video.mp4?w=1080&h=1920&seconds=8&bytes=150000"
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
    workers = [
        Server(
            f"worker {n + 1}",
            [str(VENV_BIN / "passerelle"), "worker"],
            env={**os.environ, **worker_settings},
            port=0,
            log_path=RESULTS / f"{NAME}-worker-{n + 1}.log",
        )
        for n in range(n_workers)
    ]
    with ExitStack() as stack:
        stack.callback(media.stop)
        stack.callback(sim.stop)
        for w in workers:
            stack.callback(w.stop)  # run first
        started_setup = time.monotonic()
        print(f"-- building database {DATABASE} (drop, create, migrate) …", flush=True)
        _run_async(recreate_database(env["DATABASE_OWNER_URL"], DATABASE))
        migrate(owner_url)
        sim.start()
        sim.wait_ready("/_sim/health")
        httpx.post(f"{sim_url}/_sim/config", json={"youtube_daily_quota": 10**9}, timeout=10)
        print(f"-- seeding {total:,} publications (owner role, agency by agency) …", flush=True)
        seeded = _run_async(_seed(owner_dsn, vault, platforms, total, agencies, video_url))
        print(
            f"-- seeded in {seeded.seconds:.1f} s: {seeded.per_platform}; at most "
            f"{seeded.max_per_account} publications per account",
            flush=True,
        )
        _run_async(flush_redis(redis_url))
        for w in workers:
            w.start()
        print(
            "-- baseline: a warm-up, then one publication per platform alone, through the "
            "worker (waits out its start-up) …",
            flush=True,
        )
        lone = _run_async(_baseline(owner_dsn, redis_url, sim_url, seeded, workers))
        for b in lone:
            print(
                f"   {b.platform:<22} start delay {b.start_delay_s:5.2f} s, attempt "
                f"{b.attempt_s:5.2f} s, lateness {b.lateness_s:5.2f} s, {b.requests} requests",
                flush=True,
            )
        print(f"-- setup {time.monotonic() - started_setup:.1f} s", flush=True)

        d = {b.platform: b.attempt_s for b in lone}
        s0 = statistics.median(b.start_delay_s for b in lone)
        units = {
            b.platform: (INSERT_UNITS if b.platform == "youtube" else float(b.requests))
            for b in lone
        }
        work = sum(seeded.per_platform[p] * d[p] for p in platforms)
        conc = work / slots
        rate_terms: dict[str, float] = {}
        for p in platforms:
            bucket = Rate.parse(social_rates[p])
            spent = seeded.per_platform[p] * units[p]
            rate_terms[p] = max(0.0, spent - bucket.burst) / bucket.per_second + d[p]
        worst_rate = max(rate_terms, key=lambda p: rate_terms[p])
        bound = s0 + max(conc, rate_terms[worst_rate])
        binding = "concurrency" if conc >= rate_terms[worst_rate] else f"{worst_rate} budget"

        busy = machine_busy_percent()
        if busy is not None and busy > BUSY_WARNING_PERCENT:
            print(
                f"   WARNING: the machine was {busy:.0f}% busy before measuring (something else "
                "is running): the figures will be low and noisy.",
                flush=True,
            )
        t = _next_t(datetime.now(UTC))
        planned = _run_async(_plan_all(owner_dsn, t))
        if planned != total:
            raise BenchError(f"planned {planned} publications, seeded {total}")
        print(
            f"-- every publication planned for {t.isoformat(timespec='seconds')} (the worker's "
            f"sweep at :{SWEEP_SECOND} queues them); waiting …",
            flush=True,
        )
        stats_before = _run_async(_sim_stats(sim_url))
        cpu_before = [w.cpu_seconds() for w in workers]
        progress = _run_async(
            _wait_settled(
                owner_dsn,
                total,
                workers,
                timeout_s + (t - datetime.now(UTC)).total_seconds(),
            )
        )
        cpu_after = [w.cpu_seconds() for w in workers]
        stats = _run_async(_sim_stats(sim_url))
        for w in workers:
            w.stop()

    rows = _run_async(_read_all(owner_dsn, seeded))
    published = [r for r in rows if r.status == "published" and r.published_at]
    late = [(r.published_at - r.planned_at).total_seconds() for r in published if r.published_at]
    starts = [(r.first_start - r.planned_at).total_seconds() for r in rows if r.first_start]
    p50, p99, worst = (_pct(late, 50), _pct(late, 99), max(late)) if late else (0.0, 0.0, 0.0)
    ratio = p99 / bound if bound > 0 else float("inf")
    duplicates = int(stats.get("duplicates", -1))
    posts = stats.get("posts_created", {})
    made = sum(posts.values()) - sum(stats_before.get("posts_created", {}).values())
    lone_worst = max(b.start_delay_s for b in lone)
    retried = sum(1 for r in rows if r.attempts > 1)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    verdict = "PASS" if ratio <= TARGET and duplicates == 0 else "MISS"
    lone_verdict = "PASS" if lone_worst <= LONE_TARGET_S else "MISS"
    cpu = (
        sum(
            a - b
            for a, b in zip(cpu_after, cpu_before, strict=True)
            if a is not None and b is not None
        )
        if None not in cpu_before and None not in cpu_after
        else None
    )
    span = progress.done_at - t.timestamp()

    print()
    print(
        f"publications:     {total:,} planned for one instant; {statuses}; "
        f"{retried} needed more than one attempt"
    )
    print(
        f"lateness:         p50 {p50:.1f} s  p99 {p99:.1f} s  max {worst:.1f} s  "
        "(published_at - planned_at)"
    )
    print(
        f"start delay:      p50 {_pct(starts, 50):.1f} s  p99 {_pct(starts, 99):.1f} s  "
        f"max {max(starts):.1f} s  (first attempt's start - planned_at)"
        if starts
        else "start delay:      none started"
    )
    print(f"bound:            {bound:.1f} s  ({binding})")
    print(
        "  = s0 + max(sum_p N_p*d_p / (workers*WORKER_MAX_JOBS), "
        "max_p [max(0, N_p*u_p - burst_p)/rate_p + d_p])"
    )
    print(
        f"  s0 {s0:.2f} s (a lone post's start delay, median); concurrency "
        f"{work:.0f} s of attempts / {slots} slots = {conc:.1f} s"
    )
    for p in platforms:
        bucket = Rate.parse(social_rates[p])
        print(
            f"  {p:<22} N {seeded.per_platform[p]:>5}  d {d[p]:.2f} s  u {units[p]:g}  "
            f"budget {social_rates[p]} -> {rate_terms[p]:.1f} s"
        )
    print(
        f"  per-token budgets (x:token {social_rates.get('x:token')}, tiktok:init:token "
        f"{social_rates.get('tiktok:init:token')}) do not bind: at most "
        f"{seeded.max_per_account} publications per account"
    )
    print(f"ratio:            p99 / bound = {ratio:.2f}  target <= {TARGET}  {verdict}")
    print(
        f"duplicates:       {duplicates} (simulator: posts made again on an account); "
        f"{made:,} posts made for {len(published):,} published"
    )
    print(
        f"lone post:        start delay max {lone_worst:.2f} s over {len(lone)} platforms  "
        f"target <= {LONE_TARGET_S:.0f} s  {lone_verdict}"
    )
    print(f"all settled:      {span:.1f} s after T")
    if cpu is not None:
        print(
            f"CPU (of one core): workers {cpu:.1f} s = {1000 * cpu / total:.1f} ms per "
            f"publication: {n_workers} process{'es' if n_workers > 1 else ''} cannot pass "
            f"{n_workers * total / cpu:.0f} publications/s on a core each (the bound ignores CPU)"
        )

    out = write_results(
        NAME,
        {
            "benchmark": NAME,
            "finished_at": datetime.now(UTC).isoformat(),
            "data": {
                "publications": total,
                "agencies": agencies,
                "platforms": platforms,
                "left_out": left_out,
                "per_platform": seeded.per_platform,
                "simulator_latency_s": LATENCY_S,
                "seed_seconds": round(seeded.seconds, 2),
            },
            "config": {
                "workers": n_workers,
                "worker_max_jobs": max_jobs,
                "database_pool_size": settings.database_pool_size,
                "social_rates": social_rates,
            },
            "baseline": [b.__dict__ for b in lone],
            "bound": {
                "s0": round(s0, 3),
                "concurrency_s": round(conc, 2),
                "rate_s": {p: round(v, 2) for p, v in rate_terms.items()},
                "bound_s": round(bound, 2),
                "binding": binding,
            },
            "run": {
                "planned_for": t.isoformat(),
                "statuses": statuses,
                "lateness_s": {"p50": round(p50, 2), "p99": round(p99, 2), "max": round(worst, 2)},
                "start_delay_s": {
                    "p50": round(_pct(starts, 50), 2) if starts else None,
                    "p99": round(_pct(starts, 99), 2) if starts else None,
                },
                "ratio": round(ratio, 3),
                "target": TARGET,
                "verdict": verdict,
                "duplicates": duplicates,
                "posts_made": made,
                "retried": retried,
                "settled_after_s": round(span, 1),
                "workers_cpu_s": cpu,
            },
            "lone_post": {"start_delay_max_s": round(lone_worst, 3), "verdict": lone_verdict},
            "cpu_count": os.cpu_count(),
            "machine_busy_percent_before": None if busy is None else round(busy, 1),
            "note": machine_note(),
            "versions": versions,
            "root": str(ROOT),
        },
    )
    print(f"figures written to {out.relative_to(ROOT)}")
    if duplicates:
        raise BenchError(f"{duplicates} posts were made twice")
