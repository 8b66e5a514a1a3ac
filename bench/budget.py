"""Budget benchmark: the budget status endpoint against the one SQL aggregation it needs.

One million time entries over 200 agencies (5 clients, 10 brands and 8 staff each, a retainer
per client since 2026-01). The full stack answers GET /v1/clients/{id}/budget?month=2026-11
for the measured agency's busiest client; the baseline runs only `BUDGET_SQL` (the grouping-set
aggregation behind that answer) on a raw asyncpg pool as the application role, each time in its
own transaction (BEGIN; set_tenant; BUDGET_SQL; COMMIT). The figure that matters is how many
raw queries per second one endpoint request costs: raw queries/s over endpoint requests/s.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench.common import (
    RESULTS,
    ROOT,
    VENV_BIN,
    BenchError,
    Contestant,
    Measured,
    Server,
    WrkRound,
    app_pool_shape,
    env_int,
    flush_redis,
    free_port,
    libpq_url,
    login_owner,
    machine_busy_percent,
    machine_note,
    migrate,
    package_versions,
    pooled_measure,
    recreate_database,
    redis_with_db,
    require_env,
    token_claims,
    warm_up,
    with_database,
    write_results,
    wrk_binary,
    wrk_round,
)

NAME = "budget"
# What `BENCH_RUNS=N make bench` summarizes over the runs (keys of bench/results/budget.json).
HEADLINE = ("ratio_raw_over_endpoint",)
DATABASE = "passerelle_bench_budget"
TENANTS = 200  # the measured agency included
CLIENTS = 5  # per agency
BRANDS_PER_CLIENT = 2
STAFF = 8  # per agency, the owner included
ENTRIES = 5_000  # per agency
FIRST_DAY = date(2026, 1, 1)
LAST_DAY = date(2026, 11, 20)
RETAINER_START = date(2026, 1, 1)
APPROVED_BEFORE = date(2026, 10, 26)  # the last weeks are not approved yet
MONTH = "2026-11"
MONTH_FIRST = date(2026, 11, 1)
MONTH_LAST = date(2026, 11, 30)
# Included minutes per month of each agency's clients, busiest first (the brand draw is
# skewed towards the first client), so thresholds and overage happen as in real life.
MONTHLY_MINUTES = (15_000, 9_000, 7_200, 6_000, 6_000)
ROLLOVER_MINUTES = 600
ROLLOVER_MONTHS = 2
OVERAGE_RATE_MINOR = 12_000  # per hour
HOURLY_FEE_MINOR = 9_000
ACTIVITIES = (  # drawn uniformly from this list, so repeats weigh more
    ("community_animation",) * 4
    + ("moderation",) * 3
    + ("content_creation",) * 6
    + ("reporting",) * 2
    + ("meeting",) * 3
    + ("other",)
    + ("crisis",)
)
TARGET_RATIO = 2.0
BUSY_WARNING_PERCENT = 15
WARMUP_S = 3
ROUND_S = 5  # the endpoint and the raw side are measured in turns of this long
THREADS = 2
CONNECTIONS = 8
STATEMENT_SAMPLES = 100
OWNER_EMAIL = "owner@bench-budget.example.com"
SLUG = "bench-budget"
_SET_TENANT = "SELECT set_config('app.tenant_id', $1, true)"
# How the app enters a tenant (the statement `infra.db.enter_tenant_on_driver` sends: the
# `set_tenant` function, a SET LOCAL); only the edge and jobs may call that helper itself.
_ENTER_TENANT = "SELECT set_tenant($1)"


# ---------------------------------------------------------------------------------------------
# Data

T = TypeVar("T")


def _runner() -> asyncio.Runner:
    """An event loop on uvloop (the server runs on it too)."""
    import uvloop

    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _run_async(factory: Callable[[], Awaitable[T]]) -> T:
    with _runner() as runner:
        return runner.run(factory())  # type: ignore[arg-type]


async def _signup(settings: Any, password: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """The measured agency's owner through the real sign-up service, so that login works."""
    from infra.db import Database
    from infra.ids import new_id
    from infra.security import Passwords
    from tenants import service
    from tenants.schemas import SignupRequest

    db = Database(settings.sqlalchemy_url, pool_size=1)
    passwords = Passwords(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    try:
        tenant_id = new_id()
        async with db.tenant_transaction(tenant_id) as session:
            _, user, membership = await service.signup(
                session,
                passwords,
                SignupRequest(
                    agency_name="Agence Budget Banc",
                    slug=SLUG,
                    owner_name="Propriétaire Budget",
                    email=OWNER_EMAIL,
                    password=password,
                ),
                tenant_id=tenant_id,
                plan_id=settings.default_plan,
            )
        return tenant_id, user.id, membership.id
    finally:
        await db.dispose()


def _sql_text(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _build_statements(
    tenant_id: uuid.UUID, owner_id: uuid.UUID, owner_membership_id: uuid.UUID
) -> list[tuple[str, str]]:
    """(label, SQL) run in order on one owner connection. Everything is generated inside the
    server; tenant tables are written tenant by tenant under that tenant's setting, because
    row-level security is forced for the owner too. Only our own constants are inlined."""
    roles = "CASE WHEN p = 0 THEN 'owner' WHEN p = 1 THEN 'admin' WHEN p <= 3 THEN 'manager' "
    roles += "ELSE 'member' END"
    minutes = "ARRAY[" + ", ".join(str(m) for m in MONTHLY_MINUTES) + "]"
    return [
        (
            "directory",
            f"""
            CREATE TEMP TABLE b_tenants (idx int PRIMARY KEY, id uuid NOT NULL);
            INSERT INTO b_tenants VALUES (0, '{tenant_id}');
            INSERT INTO b_tenants
              SELECT i, gen_random_uuid() FROM generate_series(1, {TENANTS - 1}) i;
            INSERT INTO tenants (id, slug, name, timezone, locale, currency, plan_id)
              SELECT id, 'bench-budget-' || lpad(idx::text, 3, '0'),
                     'Agence ' || lpad(idx::text, 3, '0'), 'America/Montreal', 'fr-CA', 'CAD',
                     'agency'
              FROM b_tenants WHERE idx > 0;
            CREATE TEMP TABLE b_clients AS
              SELECT t.id AS tenant_id, t.idx, c AS n, gen_random_uuid() AS id,
                     gen_random_uuid() AS retainer_id, ({minutes})[c + 1] AS monthly_minutes
              FROM b_tenants t, generate_series(0, {CLIENTS - 1}) c;
            CREATE TEMP TABLE b_brands AS
              SELECT c.tenant_id, c.n * {BRANDS_PER_CLIENT} + k AS n, c.n AS client_n,
                     c.id AS client_id, k, gen_random_uuid() AS id
              FROM b_clients c, generate_series(0, {BRANDS_PER_CLIENT - 1}) k;
            CREATE TEMP TABLE b_people AS
              SELECT t.id AS tenant_id, t.idx, p AS n, gen_random_uuid() AS membership_id,
                     gen_random_uuid() AS user_id, {roles} AS role, true AS is_new
              FROM b_tenants t, generate_series(0, {STAFF - 1}) p
              WHERE NOT (t.idx = 0 AND p = 0);
            INSERT INTO b_people VALUES
              ('{tenant_id}', 0, 0, '{owner_membership_id}', '{owner_id}', 'owner', false);
            INSERT INTO users (id, email, name, locale)
              SELECT user_id, 'staff' || n || '.t' || lpad(idx::text, 3, '0')
                              || '@bench-budget.example.com',
                     'Personne ' || n || ' Agence ' || lpad(idx::text, 3, '0'), 'fr'
              FROM b_people WHERE is_new;
            """,
        ),
        (
            "agencies",
            f"""
            DO $$
            DECLARE t record;
            BEGIN
              FOR t IN SELECT id, idx FROM b_tenants ORDER BY idx LOOP
                PERFORM set_config('app.tenant_id', t.id::text, true);
                INSERT INTO clients (tenant_id, id, name, legal_name, billing_email, locale,
                                     currency)
                  SELECT tenant_id, id, 'Client ' || (n + 1) || ' de l''agence ' || idx,
                         'Client ' || (n + 1) || ' inc.',
                         'factures' || (n + 1) || '@client.example.com',
                         'fr-CA', 'CAD'
                  FROM b_clients WHERE tenant_id = t.id;
                INSERT INTO brands (tenant_id, id, client_id, name, slug, timezone,
                                    default_language)
                  SELECT tenant_id, id, client_id, 'Marque ' || (client_n + 1) || chr(65 + k),
                         'marque-' || (client_n + 1) || '-' || k, 'America/Montreal', 'fr'
                  FROM b_brands WHERE tenant_id = t.id;
                INSERT INTO memberships (tenant_id, id, user_id, role, status,
                                         monthly_capacity_minutes)
                  SELECT tenant_id, membership_id, user_id, role, 'active', 8400
                  FROM b_people WHERE tenant_id = t.id AND is_new;
                INSERT INTO retainers (tenant_id, id, client_id, currency, start_month)
                  SELECT tenant_id, retainer_id, id, 'CAD', DATE '{RETAINER_START}'
                  FROM b_clients WHERE tenant_id = t.id;
                INSERT INTO retainer_terms (tenant_id, id, retainer_id, effective_month,
                    monthly_minutes, fee_minor, brand_ids, rollover_max_minutes,
                    rollover_max_months, overage_policy, overage_rate_minor, thresholds)
                  SELECT tenant_id, gen_random_uuid(), retainer_id, DATE '{RETAINER_START}',
                         monthly_minutes, monthly_minutes / 60 * {HOURLY_FEE_MINOR}, NULL,
                         {ROLLOVER_MINUTES}, {ROLLOVER_MONTHS}, 'bill_at_rate',
                         {OVERAGE_RATE_MINOR}, ARRAY[50, 80, 100]
                  FROM b_clients WHERE tenant_id = t.id;
                -- The agency's default rate, a role rate, and one person's rate on client 1.
                INSERT INTO rates (tenant_id, id, membership_id, client_id, role, rate_minor,
                                   currency)
                  VALUES (t.id, gen_random_uuid(), NULL, NULL, NULL, 9500, 'CAD'),
                         (t.id, gen_random_uuid(), NULL, NULL, 'manager', 11000, 'CAD');
                INSERT INTO rates (tenant_id, id, membership_id, user_id, client_id, role,
                                   rate_minor, currency)
                  SELECT t.id, gen_random_uuid(), p.membership_id, p.user_id, c.id, NULL, 10500,
                         'CAD'
                  FROM b_people p JOIN b_clients c ON c.tenant_id = p.tenant_id AND c.n = 0
                  WHERE p.tenant_id = t.id AND p.n = 1;
              END LOOP;
              PERFORM set_config('app.tenant_id', '', true);
            END $$;
            """,
        ),
        (
            "entries drawn",
            f"""
            SELECT setseed(0.2026);  -- the same draw on every run (ids aside)
            CREATE TEMP TABLE b_days AS
              SELECT (row_number() OVER (ORDER BY d) - 1)::int AS i, d::date AS d
              FROM generate_series(DATE '{FIRST_DAY}', DATE '{LAST_DAY}', interval '1 day') d
              WHERE extract(isodow FROM d) < 6;
            -- Each agency logs the same number of entries every working day (exactly
            -- {ENTRIES} in all); brand, person, length and activity are drawn per entry.
            CREATE TEMP TABLE b_entries AS
            WITH x AS MATERIALIZED (
              SELECT t.id AS tenant_id, g.n,
                     (g.n::bigint * (SELECT count(*) FROM b_days) / {ENTRIES})::int AS day_i,
                     floor({CLIENTS * BRANDS_PER_CLIENT} * power(random(), 1.5))::int AS bn,
                     floor(3 * random())::int AS shift,
                     15 * (1 + floor(16 * power(random(), 1.5)))::int AS minutes,
                     ({_sql_text(ACTIVITIES)})[1 + floor(random() * {len(ACTIVITIES)})::int]
                       AS activity,
                     random() < 0.9 AS billable,
                     random() AS r_content,
                     floor(random() * 30)::int AS item
              FROM b_tenants t CROSS JOIN generate_series(0, {ENTRIES - 1}) g(n)
            )
            SELECT x.tenant_id, gen_random_uuid() AS id, p.membership_id, p.user_id,
                   b.id AS brand_id, b.client_id, d.d AS work_date, x.minutes, x.activity,
                   x.billable,
                   CASE WHEN x.activity IN ('content_creation', 'moderation',
                                            'community_animation')
                             AND x.r_content < 0.5
                        THEN md5(b.id::text || ':' || x.item)::uuid END AS content_item_id,
                   CASE WHEN d.d < DATE '{APPROVED_BEFORE}' THEN 'approved' ELSE 'open' END
                     AS status,
                   CASE WHEN d.d < DATE '{APPROVED_BEFORE}' THEN 8000 + 500 * p.n END
                     AS rate_minor,
                   CASE WHEN d.d < DATE '{APPROVED_BEFORE}' THEN 'CAD' END AS rate_currency
            FROM x
            JOIN b_days d ON d.i = x.day_i
            JOIN b_brands b ON b.tenant_id = x.tenant_id AND b.n = x.bn
            JOIN b_people p ON p.tenant_id = x.tenant_id AND p.n = (x.bn + x.shift) % {STAFF};
            CREATE INDEX ON b_entries (work_date, tenant_id);
            ANALYZE b_entries;
            """,
        ),
        (
            "content items",
            # The posts that entries name: time_entries.content_item_id is a foreign key.
            """
            DO $$
            DECLARE t uuid;
            BEGIN
              FOR t IN SELECT id FROM b_tenants ORDER BY idx LOOP
                PERFORM set_config('app.tenant_id', t::text, true);
                INSERT INTO content_items (tenant_id, id, brand_id, title)
                  SELECT DISTINCT tenant_id, content_item_id, brand_id, 'Post'
                  FROM b_entries WHERE tenant_id = t AND content_item_id IS NOT NULL;
              END LOOP;
              PERFORM set_config('app.tenant_id', '', true);
            END $$;
            """,
        ),
        (
            "entries written",
            # Day by day and agency by agency, as time is logged in production: a client's
            # entries end up spread over the table as they would be, not packed together.
            """
            DO $$
            DECLARE day date; t uuid;
            BEGIN
              FOR day IN SELECT d FROM b_days ORDER BY d LOOP
                FOR t IN SELECT id FROM b_tenants ORDER BY idx LOOP
                  PERFORM set_config('app.tenant_id', t::text, true);
                  INSERT INTO time_entries (tenant_id, id, membership_id, user_id, brand_id,
                      client_id, work_date, minutes, activity, billable, content_item_id,
                      status, rate_minor, rate_currency, source)
                    SELECT tenant_id, id, membership_id, user_id, brand_id, client_id,
                           work_date, minutes, activity, billable, content_item_id, status,
                           rate_minor, rate_currency, 'manual'
                    FROM b_entries WHERE work_date = day AND tenant_id = t;
                END LOOP;
              END LOOP;
              PERFORM set_config('app.tenant_id', '', true);
            END $$;
            """,
        ),
    ]


VACUUMED = (
    "tenants",
    "users",
    "memberships",
    "clients",
    "brands",
    "retainers",
    "retainer_terms",
    "rates",
    "time_entries",
)


@dataclass(frozen=True)
class Built:
    seconds: float
    steps: dict[str, float]
    entries: int
    billable_share: float
    client_id: uuid.UUID
    client_entries: int
    month_entries: int
    since: date


async def _build(
    owner_dsn: str, tenant_id: uuid.UUID, owner_id: uuid.UUID, owner_membership_id: uuid.UUID
) -> Built:
    import asyncpg

    started = time.monotonic()
    steps: dict[str, float] = {}
    conn = await asyncpg.connect(owner_dsn)
    try:
        for label, sql in _build_statements(tenant_id, owner_id, owner_membership_id):
            step = time.monotonic()
            await conn.execute(sql)
            steps[label] = time.monotonic() - step
        step = time.monotonic()
        for table in VACUUMED:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        steps["vacuum analyze"] = time.monotonic() - step
        async with conn.transaction():
            await conn.execute(_SET_TENANT, str(tenant_id))
            busiest = await conn.fetchrow(
                "SELECT client_id, count(*) AS n FROM time_entries WHERE tenant_id = $1 "
                "GROUP BY client_id ORDER BY n DESC, client_id LIMIT 1",
                tenant_id,
            )
            if busiest is None:
                raise BenchError("the measured agency has no time entries after the build")
            month_entries = await conn.fetchval(
                "SELECT count(*) FROM time_entries WHERE tenant_id = $1 AND client_id = $2 "
                "AND work_date BETWEEN $3 AND $4",
                tenant_id,
                busiest["client_id"],
                MONTH_FIRST,
                MONTH_LAST,
            )
            since = await conn.fetchval(
                "SELECT start_month FROM retainers WHERE tenant_id = $1 AND client_id = $2",
                tenant_id,
                busiest["client_id"],
            )
        # Counted under each agency's own setting (RLS), in one statement per agency.
        entries = 0
        billable = 0
        for (tid,) in await conn.fetch("SELECT id FROM b_tenants ORDER BY idx"):
            async with conn.transaction():
                await conn.execute(_SET_TENANT, str(tid))
                row = await conn.fetchrow(
                    "SELECT count(*) AS n, count(*) FILTER (WHERE billable) AS b "
                    "FROM time_entries WHERE tenant_id = $1",
                    tid,
                )
                assert row is not None
                entries += row["n"]
                billable += row["b"]
    finally:
        await conn.close()
    if entries != TENANTS * ENTRIES:
        raise BenchError(f"built {entries} time entries, expected {TENANTS * ENTRIES}")
    return Built(
        seconds=time.monotonic() - started,
        steps=steps,
        entries=entries,
        billable_share=billable / entries,
        client_id=busiest["client_id"],
        client_entries=int(busiest["n"]),
        month_entries=int(month_entries),
        since=since,
    )


# ---------------------------------------------------------------------------------------------
# The raw side: BUDGET_SQL on asyncpg


async def _no_reset(_: Any) -> None:
    """The app's pool sends nothing when a connection comes back (its transaction is over);
    asyncpg's default reset would add a round trip the endpoint does not pay."""


@dataclass(frozen=True)
class RawResult:
    queries_per_s: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    queries: int
    duration_s: float
    client_cpu_s: float

    @property
    def client_cpu_percent(self) -> float:
        return 100 * self.client_cpu_s / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries_per_s": self.queries_per_s,
            "p50_ms": self.p50_ms,
            "p75_ms": self.p75_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "queries": self.queries,
            "duration_s": self.duration_s,
            "bench_client_cpu_s": self.client_cpu_s,
            "bench_client_cpu_percent_of_one_core": self.client_cpu_percent,
        }


def _percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class RawCheck:
    rows: int
    month_billable: int
    month_non_billable: int
    rows_without_tenant: int
    server_ms: float | None


class RawSide:
    def __init__(self, dsn: str, pool_size: int, tenant_id: uuid.UUID, client_id: uuid.UUID):
        from billing.budgets.service.budgets import BUDGET

        self.dsn = dsn
        self.pool_size = pool_size
        self.tenant_id = tenant_id
        # The very text and parameters the endpoint sends to asyncpg.
        self.sql = BUDGET.sql
        self.args = BUDGET.args(
            {
                "tenant_id": tenant_id,
                "client_id": client_id,
                "since": RETAINER_START,
                "until": MONTH_LAST,
                "first": MONTH_FIRST,
            }
        )
        self.pool: Any = None

    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.pool_size,
            max_size=self.pool_size,
            reset=_no_reset,
            server_settings={"application_name": "passerelle_bench_budget_raw"},
        )

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def once(self) -> list[Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_ENTER_TENANT, self.tenant_id)
            return list(await conn.fetch(self.sql, *self.args))

    async def check(self, since: date) -> RawCheck:
        if since != RETAINER_START:
            raise BenchError(f"the retainer starts {since}, expected {RETAINER_START}")
        rows = await self.once()
        month = [r for r in rows if r["g"] == 7 and r["month"] == MONTH_FIRST]
        async with self.pool.acquire() as conn, conn.transaction():
            # Without the tenant setting, forced row-level security hides every row.
            bare = await conn.fetch(self.sql, *self.args)
            await conn.execute(_ENTER_TENANT, self.tenant_id)
            plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + self.sql, *self.args)
        server_ms: float | None = None
        try:
            server_ms = float(json.loads(plan)[0]["Execution Time"])
        except (TypeError, ValueError, KeyError, IndexError):
            server_ms = None
        return RawCheck(
            rows=len(rows),
            month_billable=sum(int(r["billable"]) for r in month),
            month_non_billable=sum(int(r["non_billable"]) for r in month),
            rows_without_tenant=len(bare),
            server_ms=server_ms,
        )

    async def drive(self, seconds: float, concurrency: int) -> RawRound:
        latencies: list[float] = []
        start = time.perf_counter()
        deadline = start + seconds
        cpu_before = time.process_time()

        async def worker() -> None:
            while True:
                began = time.perf_counter()
                if began >= deadline:
                    return
                await self.once()
                ended = time.perf_counter()
                if ended <= deadline:  # as wrk: only what completed within the duration
                    latencies.append(ended - began)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return RawRound(latencies, seconds, time.process_time() - cpu_before)


@dataclass(frozen=True)
class RawRound:
    latencies: list[float]
    seconds: float
    client_cpu_s: float


def _pool_raw(rounds: Sequence[RawRound]) -> RawResult:
    """The raw side's rounds as one run: queries over their time, percentiles of them all."""
    latencies = sorted(latency for r in rounds for latency in r.latencies)
    if not latencies:
        raise BenchError("the raw side completed no query within the duration")
    seconds = sum(r.seconds for r in rounds)
    return RawResult(
        queries_per_s=len(latencies) / seconds,
        p50_ms=_percentile(latencies, 50) * 1000,
        p75_ms=_percentile(latencies, 75) * 1000,
        p90_ms=_percentile(latencies, 90) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000,
        queries=len(latencies),
        duration_s=seconds,
        client_cpu_s=sum(r.client_cpu_s for r in rounds),
    )


def _measure_in_turns(
    server: Server, path: str, token: str, raw: RawSide, duration_s: int
) -> tuple[Measured, RawResult]:
    """The endpoint and its raw SQL, each warmed up, then measured in turns (endpoint, raw;
    raw, endpoint; …), as bench.common.measure_in_turns does for servers: on a shared
    machine, one long run each would compare two different machines. The raw pool stays
    open on one event loop from round to round."""
    rounds = max(1, duration_s // ROUND_S)
    round_s = duration_s // rounds
    endpoint = Contestant(server, server.base_url + path, f"{NAME}-endpoint")
    load = {"threads": THREADS, "connections": CONNECTIONS}
    endpoint_rounds: list[WrkRound] = []
    raw_rounds: list[RawRound] = []
    with _runner() as runner:
        runner.run(raw.open())
        try:
            print(f"  endpoint and raw BUDGET_SQL: warm-up {WARMUP_S} s each …", flush=True)
            warm_up(endpoint, token, warmup_s=WARMUP_S, **load)
            runner.run(raw.drive(WARMUP_S, CONNECTIONS))
            for turn in range(rounds):
                for side in ("endpoint", "raw") if turn % 2 == 0 else ("raw", "endpoint"):
                    print(f"  {side}: round {turn + 1} of {rounds}, {round_s} s …", flush=True)
                    if side == "endpoint":
                        endpoint_rounds.append(
                            wrk_round(endpoint, token, turn, round_s=round_s, **load)
                        )
                    else:
                        raw_rounds.append(runner.run(raw.drive(round_s, CONNECTIONS)))
        finally:
            runner.run(raw.close())
    return pooled_measure(endpoint, endpoint_rounds), _pool_raw(raw_rounds)


def _check_raw(raw: RawSide, since: date) -> RawCheck:
    async def go() -> RawCheck:
        await raw.open()
        try:
            return await raw.check(since)
        finally:
            await raw.close()

    return _run_async(go)


# ---------------------------------------------------------------------------------------------
# The endpoint side


def _peak_rss_kib(server: Server) -> int | None:
    """The server process's peak resident set (VmHWM, Linux /proc) so far, or None."""
    if server.proc is None:
        return None
    try:
        status = Path(f"/proc/{server.proc.pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])  # "VmHWM:    123456 kB"
    return None


def _check_endpoint(server: Server, path: str, token: str) -> dict[str, Any]:
    response = httpx.get(
        server.base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    )
    if response.status_code != 200:
        raise BenchError(f"GET {path} answered {response.status_code}: {response.text[:500]}")
    return response.json()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class StatementProfile:
    statements: list[tuple[str, float]]
    """One request's SQL statements (first words) and their mean time in ms."""
    request_ms: float
    sql_ms: float


def _label(statement: str) -> str:
    text = " ".join(statement.split())
    if "GROUPING" in text:
        return "BUDGET_SQL (grouping sets)"
    return text[:72] + ("…" if len(text) > 72 else "")


async def _profile_statements(settings: Any, path: str, token: str) -> StatementProfile:
    """The endpoint's SQL, seen from inside the application: the app in this process (same
    settings, same token), one request at a time, statements timed at the driver. A
    diagnosis, not the measurement."""
    from sqlalchemy import event

    from api.app import create_app
    from infra.logging import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)  # as `passerelle serve` does
    app = create_app(settings)
    per_request: list[list[tuple[str, float]]] = []
    current: list[tuple[str, float]] = []
    began: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}

    def before(*_: Any) -> None:
        began.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *__: Any) -> None:
        current.append((_label(statement), time.perf_counter() - began.pop()))

    # Statements run straight on the driver connection (`infra.db.driver_connection`) pass
    # SQLAlchemy's events by: asyncpg's query logger reports them, timed by asyncpg.
    def driver(query: Any) -> None:
        current.append((_label(query.query), query.elapsed))

    watched: list[Any] = []

    def watch(dbapi_connection: Any, *_: Any) -> None:
        if not watched.count(dbapi_connection.driver_connection):
            dbapi_connection.driver_connection.add_query_logger(driver)
            watched.append(dbapi_connection.driver_connection)

    async with app.router.lifespan_context(app):
        engine = app.state.resources.db.engine.sync_engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(10):  # warm: prepared statements, pool
                (await client.get(path, headers=headers)).raise_for_status()
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
            event.listen(engine.pool, "checkout", watch)
            try:
                total = 0.0
                for _ in range(STATEMENT_SAMPLES):
                    current = []
                    start = time.perf_counter()
                    (await client.get(path, headers=headers)).raise_for_status()
                    total += time.perf_counter() - start
                    await asyncio.sleep(0)  # asyncpg reports its statements with call_soon
                    per_request.append(current)
            finally:
                event.remove(engine, "before_cursor_execute", before)
                event.remove(engine, "after_cursor_execute", after)
                event.remove(engine.pool, "checkout", watch)
                for connection in watched:
                    connection.remove_query_logger(driver)
    shapes = {tuple(label for label, _ in r) for r in per_request}
    if len(shapes) != 1:
        raise BenchError(
            f"the endpoint ran different statements from one request to the next: {shapes}"
        )
    n = len(per_request)
    statements = [
        (label, 1000 * sum(r[i][1] for r in per_request) / n)
        for i, (label, _) in enumerate(per_request[0])
    ]
    return StatementProfile(
        statements=statements,
        request_ms=1000 * total / n,
        sql_ms=sum(ms for _, ms in statements),
    )


# ---------------------------------------------------------------------------------------------


def run() -> None:
    env = require_env("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL")
    duration = env_int("BENCH_DURATION", 15)
    redis_index = int(os.environ.get("BENCH_REDIS_DB", "13"))
    wrk_binary()  # fail before building anything

    from infra.security import generate_key_set_json
    from infra.settings import Settings

    owner_url = with_database(env["DATABASE_OWNER_URL"], DATABASE)
    app_url = with_database(env["DATABASE_URL"], DATABASE)
    redis_url = redis_with_db(env["REDIS_URL"], redis_index)
    bench_settings = {
        "DATABASE_URL": app_url,
        "DATABASE_OWNER_URL": owner_url,
        "REDIS_URL": redis_url,
        "JWT_PRIVATE_KEYS": generate_key_set_json(),
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
        "LOG_LEVEL": "WARNING",
    }
    server_env = {**os.environ, **bench_settings}
    settings = Settings(**{k.lower(): v for k, v in bench_settings.items()})  # type: ignore[arg-type]
    pool_size = settings.database_pool_size
    app_pool = app_pool_shape(settings)
    versions = package_versions("fastapi", "uvicorn", "uvloop", "sqlalchemy", "asyncpg", "pydantic")

    print(
        f"== bench budget: GET /v1/clients/{{id}}/budget?month={MONTH} vs its BUDGET_SQL "
        "on raw asyncpg =="
    )
    print(f"   {machine_note()}")
    print(
        f"   {TENANTS * ENTRIES:,} time entries over {TENANTS} agencies ({CLIENTS} clients, "
        f"{CLIENTS * BRANDS_PER_CLIENT} brands, {STAFF} staff, {ENTRIES:,} entries each, "
        f"{FIRST_DAY}..{LAST_DAY}); {CONNECTIONS} concurrent connections, {WARMUP_S} s warm-up "
        f"(discarded) then {duration} s each, in turns of {ROUND_S} s"
    )
    print(
        f"   endpoint: `passerelle serve` (uvicorn, 1 process), wrk -t{THREADS} "
        f"-c{CONNECTIONS}, bearer token; database pool SQLAlchemy {app_pool}"
    )
    print(
        f"   raw: asyncpg pool min=max={pool_size} (DATABASE_POOL_SIZE) as the app role, "
        f"{CONNECTIONS} workers in this process, each query in its own transaction "
        "(BEGIN; set_tenant; BUDGET_SQL; COMMIT), no HTTP, no JWT, no ORM, no JSON"
    )

    started = time.monotonic()
    print(f"-- building database {DATABASE} (drop, create, migrate) …", flush=True)
    asyncio.run(recreate_database(env["DATABASE_OWNER_URL"], DATABASE))
    migrate(owner_url)
    password = "bench-" + secrets.token_urlsafe(12)
    tenant_id, owner_id, owner_membership_id = asyncio.run(_signup(settings, password))
    print(f"-- seeding {TENANTS * ENTRIES:,} time entries (set-based, owner role) …", flush=True)
    built = _run_async(
        lambda: _build(libpq_url(owner_url), tenant_id, owner_id, owner_membership_id)
    )
    steps = ", ".join(f"{label} {s:.1f} s" for label, s in built.steps.items())
    print(
        f"-- built {built.entries:,} entries ({100 * built.billable_share:.1f} % billable) in "
        f"{built.seconds:.1f} s ({steps})",
        flush=True,
    )
    asyncio.run(flush_redis(redis_url))

    path = f"/v1/clients/{built.client_id}/budget?month={MONTH}"
    raw = RawSide(libpq_url(app_url), pool_size, tenant_id, built.client_id)
    check = _check_raw(raw, built.since)
    if check.rows == 0:
        raise BenchError("BUDGET_SQL returned no rows as the app role with the tenant set")
    if check.rows_without_tenant != 0:
        raise BenchError(
            f"BUDGET_SQL returned {check.rows_without_tenant} rows without the tenant setting: "
            "row-level security is not in force, the comparison would be meaningless"
        )
    if check.month_billable <= 0:
        raise BenchError(f"no billable minutes in {MONTH} for the measured client")

    RESULTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = Server(
        "endpoint",
        [str(VENV_BIN / "passerelle"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        port=port,
        log_path=RESULTS / f"{NAME}-server.log",
    )
    with ExitStack() as stack:
        stack.callback(server.stop)
        server.start()
        server.wait_ready("/readyz")
        token = login_owner(server, OWNER_EMAIL, password)
        claims = token_claims(token)
        if claims.get("tid") != str(tenant_id):
            raise BenchError(f"logged into tenant {claims.get('tid')}, expected {tenant_id}")
        body = _check_endpoint(server, path, token)
        if (body.get("used_minutes"), body.get("non_billable_minutes")) != (
            check.month_billable,
            check.month_non_billable,
        ):
            raise BenchError(
                "the endpoint and BUDGET_SQL disagree on the month: endpoint used_minutes="
                f"{body.get('used_minutes')} non_billable_minutes="
                f"{body.get('non_billable_minutes')}, raw (g = 7 rows of {MONTH}) billable="
                f"{check.month_billable} non_billable={check.month_non_billable}"
            )
        print(
            f"-- both agree: client {body.get('client_name')!r} ({built.client_entries:,} "
            f"entries, {built.month_entries} in {MONTH}), used_minutes {body['used_minutes']:,} "
            f"= raw billable minutes of {MONTH}; BUDGET_SQL returns {check.rows} rows "
            f"(none without the tenant setting), executes in "
            + ("n/a" if check.server_ms is None else f"{check.server_ms:.2f} ms")
            + " on the server (EXPLAIN ANALYZE)",
            flush=True,
        )
        profile = asyncio.run(_profile_statements(settings, path, token))
        print(
            f"-- one request from inside the app (sequential, {STATEMENT_SAMPLES} samples): "
            f"{profile.request_ms:.2f} ms, of which {profile.sql_ms:.2f} ms in "
            f"{len(profile.statements)} SQL statements (SQLAlchemy's BEGIN and COMMIT are not "
            "statements it reports; asyncpg's are):",
            flush=True,
        )
        for label, ms in profile.statements:
            print(f"     {ms:6.2f} ms  {label}")
        print(f"-- setup {time.monotonic() - started:.1f} s", flush=True)

        busy = machine_busy_percent()
        if busy is not None and busy > BUSY_WARNING_PERCENT:
            print(
                f"   WARNING: the machine was {busy:.0f}% busy before measuring (something else "
                "is running): the figures will be low and noisy.",
                flush=True,
            )
        endpoint, raw_result = _measure_in_turns(server, path, token, raw, duration)
        peak_rss_kib = _peak_rss_kib(server)  # read while the server still runs

    ratio = (
        raw_result.queries_per_s / endpoint.wrk.requests_per_s
        if endpoint.wrk.requests_per_s
        else math.inf
    )
    verdict = "PASS" if ratio <= TARGET_RATIO else "ABOVE TARGET"

    print()
    cpu_head = "CPU % of one core"
    print(f"{'name':<30} {'per second':>11} {'p50 ms':>8} {'p99 ms':>8}   {cpu_head:>28}")
    e = endpoint.wrk
    e_cpu = "n/a" if endpoint.cpu_percent is None else f"{endpoint.cpu_percent:.0f}"
    print(
        f"{'endpoint (HTTP, wrk)':<30} {e.requests_per_s:>11.1f} {e.p50_ms:>8.2f} "
        f"{e.p99_ms:>8.2f}   {'server ' + e_cpu:>28}"
    )
    r = raw_result
    print(
        f"{'raw BUDGET_SQL (asyncpg)':<30} {r.queries_per_s:>11.1f} {r.p50_ms:>8.2f} "
        f"{r.p99_ms:>8.2f}   {f'bench client {r.client_cpu_percent:.0f}':>28}"
    )
    print(
        "(endpoint: requests/s; raw: queries/s, each BEGIN; set_tenant; BUDGET_SQL; COMMIT. "
        "PostgreSQL's CPU is not counted here.)"
    )
    rss = "n/a" if peak_rss_kib is None else f"{peak_rss_kib / 1024:.1f} MiB"
    print(f"server peak RSS (VmHWM) after the endpoint run: {rss}")
    print()
    print(f"raw/endpoint throughput ratio: {ratio:.2f}  target <= {TARGET_RATIO:.2f}  {verdict}")

    out = write_results(
        NAME,
        {
            "benchmark": NAME,
            "finished_at": datetime.now(UTC).isoformat(),
            "request": f"GET /v1/clients/{{client_id}}/budget?month={MONTH}",
            "data": {
                "tenants": TENANTS,
                "clients_per_tenant": CLIENTS,
                "brands_per_tenant": CLIENTS * BRANDS_PER_CLIENT,
                "staff_per_tenant": STAFF,
                "time_entries": built.entries,
                "billable_share": round(built.billable_share, 4),
                "first_day": FIRST_DAY,
                "last_day": LAST_DAY,
                "build_seconds": round(built.seconds, 2),
                "build_steps_seconds": {k: round(v, 2) for k, v in built.steps.items()},
                "measured_client_entries": built.client_entries,
                "measured_client_month_entries": built.month_entries,
            },
            "check": {
                "used_minutes": body["used_minutes"],
                "non_billable_minutes": body["non_billable_minutes"],
                "budget_sql_rows": check.rows,
                "budget_sql_server_ms": check.server_ms,
            },
            "endpoint_sql": {
                "request_ms_sequential_in_process": round(profile.request_ms, 3),
                "sql_ms": round(profile.sql_ms, 3),
                "statements": [
                    {"statement": label, "mean_ms": round(ms, 3)}
                    for label, ms in profile.statements
                ],
            },
            "cpu_count": os.cpu_count(),
            "machine_busy_percent_before": None if busy is None else round(busy, 1),
            "note": machine_note(),
            "load": {
                "connections": CONNECTIONS,
                "wrk_threads": THREADS,
                "warmup_s": WARMUP_S,
                "duration_s": duration,
                "measured_in_turns_of_s": duration // max(1, duration // ROUND_S),
            },
            "server_peak_rss_kib": peak_rss_kib,
            "database_pool_size": pool_size,
            "endpoint_pool": app_pool,
            "versions": versions,
            "results": {"endpoint": endpoint.as_dict(), "raw_budget_sql": raw_result.as_dict()},
            "ratio_raw_over_endpoint": round(ratio, 4),
            "target_ratio": TARGET_RATIO,
            "verdict": verdict,
        },
    )
    print(f"figures written to {out.relative_to(ROOT)}")
