"""API benchmark: the full stack against a bare asyncpg + Starlette baseline.

Both answer an authenticated GET /v1/members?limit=50 for an agency of 60 members, with the
same SQL statements in one transaction; the baseline skips everything else (JWT, middleware,
dependency injection, response validation). The figure that matters is the ratio of their
throughputs: how much of the raw capacity the framework layers leave to the application.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import (
    RESULTS,
    ROOT,
    VENV_BIN,
    BenchError,
    Contestant,
    Measured,
    Server,
    app_pool_shape,
    env_int,
    flush_redis,
    free_port,
    libpq_url,
    login_owner,
    machine_busy_percent,
    machine_note,
    measure_in_turns,
    migrate,
    package_versions,
    recreate_database,
    redis_with_db,
    require_env,
    settle_database,
    token_claims,
    with_database,
    write_results,
    wrk_binary,
)
from devtools.pgbouncer import run_pgbouncer

NAME = "api"
DATABASE = "passerelle_bench"
MEMBERS = 60  # the owner included
LIMIT = 50
PATH = f"/v1/members?limit={LIMIT}"
TARGET_RATIO = 0.6
# What `BENCH_RUNS=N make bench` summarizes over the runs (keys of bench/results/api.json).
HEADLINE = (
    "ratio_full_over_bare",
    "full_stack_p99_ms",
    "ratio_full_over_bare_2_processes",
    "ratio_pgbouncer_over_bare_2_processes",
)
TARGET_P99_MS = 50.0
PROCESSES = 2  # the scale-out row: N processes of each
BUSY_WARNING_PERCENT = 15
WARMUP_S = 3
ROUND_S = 5  # servers compared are measured in turns of this long (bench.common)
THREADS = 2
CONNECTIONS = 32
OWNER_EMAIL = "owner@bench-agency.example.com"
SLUG = "bench-agency"
PGBOUNCER = "full stack via pgbouncer"


# ---------------------------------------------------------------------------------------------
# Data


async def _seed(settings: Any, password: str) -> uuid.UUID:
    """One agency: the owner through the real sign-up service, then 59 members as the app
    role in one tenant transaction (row-level security applies as in production)."""
    from infra.db import Database
    from infra.ids import new_id
    from infra.security import Passwords
    from tenants import service
    from tenants.models import Client, Membership, MembershipStatus, Role, User
    from tenants.schemas import SignupRequest

    db = Database(settings.sqlalchemy_url, pool_size=2)
    passwords = Passwords(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    try:
        tenant_id = new_id()
        async with db.tenant_transaction(tenant_id) as session:
            await service.signup(
                session,
                passwords,
                SignupRequest(
                    agency_name="Agence Banc d'essai",
                    slug=SLUG,
                    owner_name="Propriétaire Banc",
                    email=OWNER_EMAIL,
                    password=password,
                ),
                tenant_id=tenant_id,
                plan_id=settings.default_plan,
            )
        # Members never log in here: one real argon2 hash serves them all.
        shared_hash = await passwords.hash(secrets.token_urlsafe(16))
        roles = [Role.admin] * 3 + [Role.manager] * 8 + [Role.client] * 12
        roles += [Role.member] * (MEMBERS - 1 - len(roles))
        async with db.tenant_transaction(tenant_id) as session:
            users = [
                User(
                    email=f"membre{i:02d}@bench-agency.example.com",
                    name=f"Membre {i:02d} Banc",
                    password_hash=shared_hash,
                    locale="fr",
                )
                for i in range(1, MEMBERS)
            ]
            contact_of = Client(
                tenant_id=tenant_id, name="Client Banc", locale="fr-CA", currency="CAD"
            )
            session.add_all([*users, contact_of])
            await session.flush()
            session.add_all(
                Membership(
                    tenant_id=tenant_id,
                    user_id=user.id,
                    role=role,
                    status=(
                        MembershipStatus.invited
                        if i % 15 == 7
                        else MembershipStatus.disabled
                        if i % 20 == 11
                        else MembershipStatus.active
                    ),
                    client_id=contact_of.id if role == Role.client else None,
                )
                for i, (user, role) in enumerate(zip(users, roles, strict=True))
            )
        return tenant_id
    finally:
        await db.dispose()


def _check_answer(server: Server, token: str) -> dict[str, Any]:
    response = httpx.get(
        server.base_url + PATH, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    )
    if response.status_code != 200:
        raise BenchError(
            f"{server.name}: GET {PATH} answered {response.status_code}: {response.text[:500]}"
        )
    body = response.json()
    items = body.get("items")
    if not isinstance(items, list) or len(items) != LIMIT or not body.get("next_cursor"):
        raise BenchError(
            f"{server.name}: expected {LIMIT} items and a next_cursor, got "
            f"{len(items) if isinstance(items, list) else items!r} items, "
            f"next_cursor={body.get('next_cursor')!r}"
        )
    return body  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# Measurement


def run() -> None:
    env = require_env("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL")
    duration = env_int("BENCH_DURATION", 15)
    redis_index = int(os.environ.get("BENCH_REDIS_DB", "14"))
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
    # The bare server imports bench.bare_serve: the checkout on the path.
    server_env = {**os.environ, **bench_settings, "PYTHONPATH": str(ROOT)}
    settings = Settings(**{k.lower(): v for k, v in bench_settings.items()})  # type: ignore[arg-type]
    pool_size = settings.database_pool_size
    app_pool = app_pool_shape(settings)
    versions = package_versions(
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "sqlalchemy",
        "asyncpg",
        "pydantic",
    )

    print(f"== bench api: GET {PATH}, full stack vs bare asyncpg+starlette ==")
    print(f"   {machine_note()}")
    print(
        f"   wrk -t{THREADS} -c{CONNECTIONS}, {WARMUP_S} s warm-up (discarded) then {duration} s "
        f"each, in turns; uvicorn 1 then {PROCESSES} processes, "
        f"uvloop {versions['uvloop']} + httptools "
        f"{versions['httptools']}; database pool: full stack SQLAlchemy {app_pool}, "
        f"bare asyncpg min=max={pool_size} (DATABASE_POOL_SIZE)"
    )
    print(
        "   bare = Starlette + raw asyncpg, the same SQL in one transaction (BEGIN; the tenant "
        "and the member in one call; the list query; COMMIT) and the same JSON, but NO JWT "
        "verification, NO middleware, NO dependency injection, NO response validation."
    )

    started = time.monotonic()
    print(
        f"-- building database {DATABASE} (drop, create, migrate, seed {MEMBERS} members) …",
        flush=True,
    )
    asyncio.run(recreate_database(env["DATABASE_OWNER_URL"], DATABASE))
    migrate(owner_url)
    password = "bench-" + secrets.token_urlsafe(12)
    tenant_id = asyncio.run(_seed(settings, password))
    asyncio.run(settle_database(owner_url))
    asyncio.run(flush_redis(redis_url))

    RESULTS.mkdir(parents=True, exist_ok=True)

    def full_stack(processes: int, pooler_url: str | None = None) -> Server:
        port = free_port()
        through = {"DATABASE_URL": pooler_url or "", "DATABASE_POOLER": "transaction"}
        return Server(
            _name(PGBOUNCER if pooler_url else "full stack", processes),
            [
                *(str(VENV_BIN / "passerelle"), "serve", "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", str(processes)),
            ],
            env={**server_env, **through} if pooler_url else server_env,
            port=port,
            log_path=RESULTS / f"{NAME}-full-{processes}p{'-pgbouncer' if pooler_url else ''}.log",
        )

    def bare_app(processes: int, claims: dict[str, Any]) -> Server:
        port = free_port()
        return Server(
            _name("bare asyncpg+starlette", processes),
            [
                *(sys.executable, str(ROOT / "bench" / "bare_app.py"), "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", str(processes)),
            ],
            env={
                **server_env,
                "BARE_DSN": libpq_url(app_url),
                "BARE_POOL_SIZE": str(pool_size),
                "BARE_TENANT_ID": claims["tid"],
                "BARE_MEMBERSHIP_ID": claims["mid"],
                "BARE_USER_ID": claims["sub"],
                "BARE_SESSION_ID": claims["sid"],
            },
            port=port,
            log_path=RESULTS / f"{NAME}-bare-{processes}p.log",
        )

    results: dict[str, Measured] = {}
    busy: float | None = None
    for processes in (1, PROCESSES):
        with ExitStack() as stack:
            full = full_stack(processes)
            stack.callback(full.stop)
            full.start()
            full.wait_ready("/readyz")
            token = login_owner(full, OWNER_EMAIL, password)
            claims = token_claims(token)
            if claims.get("tid") != str(tenant_id):
                raise BenchError(f"logged into tenant {claims.get('tid')}, expected {tenant_id}")
            bare = bare_app(processes, claims)
            stack.callback(bare.stop)
            bare.start()
            bare.wait_ready("/readyz")

            full_body = _check_answer(full, token)
            bare_body = _check_answer(bare, token)
            if full_body != bare_body:
                raise BenchError(
                    "the two servers do not answer the same document:\n"
                    f"  full: {json.dumps(full_body)[:600]}\n  bare: {json.dumps(bare_body)[:600]}"
                )
            print(
                f"-- {processes} process(es) each: both answer 200 with {LIMIT} items and "
                f"identical bodies (setup {time.monotonic() - started:.1f} s)",
                flush=True,
            )
            if busy is None:
                busy = machine_busy_percent()
                if busy is not None and busy > BUSY_WARNING_PERCENT:
                    print(
                        f"   WARNING: the machine was {busy:.0f}% busy before measuring "
                        "(something else is running): the figures will be low and noisy.",
                        flush=True,
                    )
            contestants = [
                Contestant(full, full.base_url + PATH, f"{NAME}-full-{processes}p"),
                Contestant(bare, bare.base_url + PATH, f"{NAME}-bare-{processes}p"),
            ]
            if processes == PROCESSES:
                # The same full stack through pgbouncer in transaction mode
                # (DATABASE_POOLER=transaction), its processes sharing DATABASE_POOL_SIZE server
                # connections where the rows above have that many each: what pooling and
                # unnamed statements cost, measured in the same turns as the direct rows.
                bouncer = stack.enter_context(run_pgbouncer([app_url], pool_size=pool_size))
                pooled = full_stack(PROCESSES, bouncer.url(app_url))
                stack.callback(pooled.stop)
                pooled.start()
                pooled.wait_ready("/readyz")
                if _check_answer(pooled, token) != full_body:
                    raise BenchError("the full stack through pgbouncer answers another document")
                print(
                    f"   and the full stack through pgbouncer (pool_mode=transaction, "
                    f"default_pool_size={pool_size}) answers the same",
                    flush=True,
                )
                contestants.append(
                    Contestant(pooled, pooled.base_url + PATH, f"{NAME}-pgbouncer-{processes}p")
                )
            rounds = max(1, duration // ROUND_S)
            print(
                f"   measuring in turns: warm-up {WARMUP_S} s each, then {rounds} rounds of "
                f"{duration // rounds} s each, the order reversed every round",
                flush=True,
            )
            results.update(
                measure_in_turns(
                    contestants,
                    token,
                    rounds=rounds,
                    round_s=duration // rounds,
                    warmup_s=WARMUP_S,
                    threads=THREADS,
                    connections=CONNECTIONS,
                )
            )

    def ratio_of(processes: int) -> float:
        full_rps = results[_name("full stack", processes)].wrk.requests_per_s
        bare_rps = results[_name("bare asyncpg+starlette", processes)].wrk.requests_per_s
        return full_rps / bare_rps if bare_rps else 0.0

    ratio, ratio_processes = ratio_of(1), ratio_of(PROCESSES)
    pooled_rps = results[_name(PGBOUNCER, PROCESSES)].wrk.requests_per_s
    bare_rps = results[_name("bare asyncpg+starlette", PROCESSES)].wrk.requests_per_s
    direct_rps = results[_name("full stack", PROCESSES)].wrk.requests_per_s
    ratio_pooled = pooled_rps / bare_rps if bare_rps else 0.0
    pooled_over_direct = pooled_rps / direct_rps if direct_rps else 0.0
    full_p99 = results[_name("full stack", 1)].wrk.p99_ms
    verdict = "PASS" if ratio >= TARGET_RATIO and full_p99 < TARGET_P99_MS else "BELOW TARGET"

    print()
    print(
        f"{'name':<38} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8}"
        f"   {'server CPU ms/req':>17} {'server CPU %':>12} {'peak RSS MiB':>12}"
    )
    for name, m in results.items():
        r = m.wrk
        per_request = "n/a" if m.cpu_ms_per_request is None else f"{m.cpu_ms_per_request:.2f}"
        percent = "n/a" if m.cpu_percent is None else f"{m.cpu_percent:.0f}"
        rss = "n/a" if m.peak_rss_mib is None else f"{m.peak_rss_mib:.0f}"
        print(
            f"{name:<38} {r.requests_per_s:>11.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
            f"   {per_request:>17} {percent:>12} {rss:>12}"
        )
    print(
        "(server CPU %: of one core, summed over the server's processes; peak RSS: its largest "
        "process)"
    )
    print()
    print(
        f"full/bare throughput, 1 process: {ratio:.2f}   target >= {TARGET_RATIO:.2f}, with the "
        f"full stack's p99 {full_p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms)   {verdict}"
    )
    print(f"full/bare throughput, {PROCESSES} processes each: {ratio_processes:.2f}")
    print(
        f"full through pgbouncer / bare straight to PostgreSQL, {PROCESSES} processes each: "
        f"{ratio_pooled:.2f} (through pgbouncer / straight, full stack: {pooled_over_direct:.2f})"
    )

    path = write_results(
        NAME,
        {
            "benchmark": NAME,
            "finished_at": datetime.now(UTC).isoformat(),
            "request": f"GET {PATH}",
            "members_in_agency": MEMBERS,
            "cpu_count": os.cpu_count(),
            "machine_busy_percent_before": None if busy is None else round(busy, 1),
            "note": machine_note(),
            "wrk": {
                "threads": THREADS,
                "connections": CONNECTIONS,
                "warmup_s": WARMUP_S,
                "duration_s": duration,
                "measured_in_turns_of_s": duration // max(1, duration // ROUND_S),
            },
            "database_pool_size": pool_size,
            "full_stack_pool": app_pool,
            "versions": versions,
            "baseline": "Starlette + raw asyncpg pool, same SQL statements and JSON; no JWT, "
            "no middleware, no dependency injection, no response validation",
            "results": {name: m.as_dict() for name, m in results.items()},
            "ratio_full_over_bare": round(ratio, 4),
            f"ratio_full_over_bare_{PROCESSES}_processes": round(ratio_processes, 4),
            f"ratio_pgbouncer_over_bare_{PROCESSES}_processes": round(ratio_pooled, 4),
            f"ratio_pgbouncer_over_direct_{PROCESSES}_processes": round(pooled_over_direct, 4),
            "pgbouncer": {"pool_mode": "transaction", "default_pool_size": pool_size},
            "full_stack_p99_ms": full_p99,
            "target_ratio": TARGET_RATIO,
            "target_p99_ms": TARGET_P99_MS,
            "verdict": verdict,
        },
    )
    print(f"figures written to {path.relative_to(ROOT)}")


def _name(base: str, processes: int) -> str:
    return f"{base}, {processes} process{'es' if processes > 1 else ''}"
