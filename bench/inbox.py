"""Inbox benchmark: Meta webhook deliveries into the real receiver, against a bare baseline,
then the time from a platform's event to the item in GET /v1/inbox.

1. Accepted events/s at rising rates. Each delivery is a Page `feed` comment in Meta's shape,
   signed as Meta signs (`X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app
   secret>`), one new comment per delivery so none is a duplicate. An open-loop generator (its
   own connections, paced to the rate, latency counted from when each request was due so a
   slow server cannot hide its queue) offers each rate for BENCH_DURATION seconds to the full
   stack (`passerelle serve`, one uvicorn process) and, in the same run, to a bare Starlette +
   asyncpg handler (bench/bare_inbox.py) that checks the same signature and inserts the same
   raw row into the same table (platform_events), and nothing else. A server's capacity is the
   most it accepted per second at any rate; rates rise until it falls behind (accepted < 90 %
   of offered). The figure: full / bare capacity, target >= 0.5.
2. Event to visible. A real worker (`passerelle worker`) runs; deliveries are offered at 200/s
   for BENCH_VISIBLE_SECONDS while the agency's owner polls GET /v1/inbox (every 100 ms, newest
   first, paging back to what it has seen). For each comment: the time from when its delivery
   was due to the first poll that shows it. Target: p99 <= 5 s.

The deliveries go to one agency's four Facebook Pages; BENCH_AGENCIES agencies (one Page each
for the others) are in the database, since the worker looks for a Page's owners agency by
agency. The brand has a response policy and two rules, so each item gets its language,
sentiment, due time and rules as in production. The Pages' catch-up polls are not due during
the run (their cursors say so): the worker does only the webhooks' work.

Scale: BENCH_DURATION (s per rate, 10), BENCH_MAX_RATE (deliveries/s, 3200; the rates double
from 50 up to it), BENCH_VISIBLE_SECONDS (30), BENCH_AGENCIES (20). A quick run:
`BENCH=inbox BENCH_DURATION=3 BENCH_MAX_RATE=400 BENCH_VISIBLE_SECONDS=10 make bench`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import os
import secrets
import sys
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.common import (
    RESULTS,
    ROOT,
    VENV_BIN,
    BenchError,
    Server,
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
    profiled,
    recreate_database,
    redis_with_db,
    require_env,
    with_database,
    write_results,
)

NAME = "inbox"
# What `BENCH_RUNS=N make bench` summarizes over the runs (keys of bench/results/inbox.json).
HEADLINE = ("ratio_full_over_bare", "visible.p50_s", "visible.p99_s")
DATABASE = "passerelle_bench_inbox"
PLATFORM = "facebook_page"
PATH = f"/v1/platform-webhooks/{PLATFORM}"
TARGET_RATIO = 0.5
TARGET_VISIBLE_P99_S = 5.0
VISIBLE_RATE = 200
FIRST_RATE = 50
DEFAULT_MAX_RATE = 3200
DEFAULT_DURATION = 10
DEFAULT_VISIBLE_S = 30
DEFAULT_AGENCIES = 20
PAGES = 4
"""Facebook Pages of the measured agency, the deliveries going round robin over them."""
CONNECTIONS = 64
"""The generator's connections: enough that 1,600 deliveries/s at 40 ms each do not wait."""
WARMUP_S = 2
SATURATED = 0.9
"""A server accepting less than this share of the offered rate has fallen behind."""
POLL_S = 0.1
VISIBLE_TIMEOUT_S = 120
BUSY_WARNING_PERCENT = 15
OWNER_EMAIL = "owner@bench-inbox.example.com"
SLUG = "bench-inbox"
PAGE_BASE = 810_000_000_000_000

# Real-looking comments, French and English, a few negative; none on the brand's watch list.
TEXTS = (
    "Vos croissants sont les meilleurs du Plateau, merci!",
    "Est-ce que vous êtes ouverts le dimanche matin?",
    "Is the sourdough available without sesame?",
    "Love the new coffee blend, great job team",
    "J'ai attendu 25 minutes au comptoir ce matin, c'est long.",
    "The order I picked up was cold and the staff did not care.",
    "Avez-vous des options sans gluten cette semaine?",
    "Super service, je recommande à tout le monde",
    "What time do you close on holidays?",
    "Déçue : la baguette était brûlée et personne ne s'est excusé.",
)
NAMES = (
    "Geneviève Tremblay",
    "Marc-André Gagnon",
    "Emily Carter",
    "Jean-François Roy",
    "Olivia Brown",
    "Chloé Morin",
)


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _rates(max_rate: int) -> list[int]:
    rates = [FIRST_RATE]
    while rates[-1] * 2 <= max_rate:
        rates.append(rates[-1] * 2)
    return rates


# ---------------------------------------------------------------------------------------------
# Deliveries


class Deliveries:
    """Meta Page `feed` deliveries, one new comment each, as complete HTTP/1.1 requests."""

    def __init__(self, secret: str, pages: list[str], port: int) -> None:
        self.secret = secret.encode()
        self.pages = pages
        self.host = f"127.0.0.1:{port}"
        self.count = 0

    def body(self, n: int, at: datetime) -> tuple[bytes, str]:
        page = self.pages[n % len(self.pages)]
        post = f"{page}_{1000 + n // 200}"
        comment = f"{1000 + n // 200}_{n}"
        stamp = int(at.timestamp())
        value = {
            "from": {"id": str(7_100_000 + n % 997), "name": NAMES[n % len(NAMES)]},
            "post": {"status_type": "added_photos", "is_published": True, "id": post},
            "message": f"{TEXTS[n % len(TEXTS)]} #{n}",
            "post_id": post,
            "comment_id": comment,
            "created_time": stamp,
            "item": "comment",
            "parent_id": post,
            "verb": "add",
        }
        payload = {
            "object": "page",
            "entry": [{"id": page, "time": stamp, "changes": [{"field": "feed", "value": value}]}],
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), comment

    def signature(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def take(self, count: int) -> tuple[list[bytes], list[str]]:
        """The next `count` deliveries: the raw requests and their comments' ids."""
        now = datetime.now(UTC)
        requests, comments = [], []
        for _ in range(count):
            body, comment = self.body(self.count, now)
            self.count += 1
            head = (
                f"POST {PATH} HTTP/1.1\r\nHost: {self.host}\r\n"
                "Content-Type: application/json\r\nUser-Agent: facebookexternalua\r\n"
                f"X-Hub-Signature-256: {self.signature(body)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            requests.append(head.encode() + body)
            comments.append(comment)
        return requests, comments


# ---------------------------------------------------------------------------------------------
# The open-loop generator


@dataclass
class Offered:
    rate: int
    planned: int
    due: list[float]
    """When each request was due (event loop time)."""
    done: list[float | None]
    status: list[int | None]
    started: float
    wall_offset: float
    """Add to an event loop time to get a Unix time."""
    errors: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(1 for s in self.status if s is not None)

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.status if s == 200)

    @property
    def accepted_per_s(self) -> float:
        ends = [d for d, s in zip(self.done, self.status, strict=True) if s == 200 and d]
        if not ends:
            return 0.0
        return self.accepted / max(max(ends) - self.started, 1e-9)

    def latencies_ms(self) -> list[float]:
        return [
            (d - due) * 1000
            for due, d, s in zip(self.due, self.done, self.status, strict=True)
            if s == 200 and d is not None
        ]

    def refused(self) -> dict[int, int]:
        found: dict[int, int] = {}
        for s in self.status:
            if s is not None and s != 200:
                found[s] = found.get(s, 0) + 1
        return found


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def offer(
    port: int, requests: list[bytes], rate: int, duration_s: float, *, connections: int
) -> Offered:
    """Send `requests` at `rate` a second over keep-alive connections. A connection takes the
    next request, waits until it is due, sends it and reads the answer; when every connection
    is busy, requests wait and their latency shows it. Nothing new starts once the offered
    window (`duration_s`) is over."""
    loop = asyncio.get_running_loop()
    started = loop.time() + 0.05
    n = len(requests)
    result = Offered(
        rate=rate,
        planned=n,
        due=[started + i / rate for i in range(n)],
        done=[None] * n,
        status=[None] * n,
        started=started,
        wall_offset=time.time() - loop.time(),
    )
    cursor = 0
    stop_at = started + duration_s

    async def one_connection() -> None:
        nonlocal cursor
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while cursor < n and loop.time() <= stop_at:
                i = cursor
                cursor += 1
                wait = result.due[i] - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(requests[i])
                result.status[i] = await _read_response(reader)
                result.done[i] = loop.time()
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            result.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return result


# ---------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Seeded:
    tenant_id: uuid.UUID
    pages: list[str]
    agencies: int


async def _seed(settings: Any, password: str, agencies: int) -> Seeded:
    """`agencies` agencies through the real sign-up; the first one has four Pages on one brand,
    with a response policy and two rules; the others one Page each. Every Page's catch-up poll
    is a day away."""
    from inbox import rules
    from inbox.models import InboxCursor, InboxRule, ResponsePolicyRow
    from inbox.sla import ResponsePolicy
    from infra.db import Database
    from infra.ids import new_id
    from infra.security import Passwords
    from social.models import SocialAccount
    from tenants import service
    from tenants.models import Brand, Client
    from tenants.schemas import SignupRequest

    db = Database(settings.sqlalchemy_url, pool_size=2)
    passwords = Passwords(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    first: uuid.UUID | None = None
    pages: list[str] = []
    later = datetime.now(UTC) + timedelta(days=1)
    try:
        for idx in range(agencies):
            tenant_id = new_id()
            async with db.tenant_transaction(tenant_id) as session:
                await service.signup(
                    session,
                    passwords,
                    SignupRequest(
                        agency_name=f"Agence Boîte {idx:02d}",
                        slug=SLUG if idx == 0 else f"{SLUG}-{idx:02d}",
                        owner_name="Propriétaire Banc",
                        email=OWNER_EMAIL
                        if idx == 0
                        else f"owner{idx:02d}@bench-inbox.example.com",
                        password=password,
                    ),
                    tenant_id=tenant_id,
                    plan_id=settings.default_plan,
                )
            async with db.tenant_transaction(tenant_id) as session:
                client = Client(
                    tenant_id=tenant_id, name=f"Client {idx:02d}", locale="fr-CA", currency="CAD"
                )
                session.add(client)
                await session.flush()
                brand = Brand(
                    tenant_id=tenant_id,
                    client_id=client.id,
                    name=f"Boulangerie {idx:02d}",
                    slug=f"boulangerie-{idx:02d}",
                    timezone="America/Montreal",
                    default_language="fr",
                    guidelines={"watch_list": ["intoxication", "boycott"]},
                )
                session.add(brand)
                await session.flush()
                mine = [str(PAGE_BASE + idx * 100 + k) for k in range(PAGES if idx == 0 else 1)]
                accounts = [
                    SocialAccount(
                        tenant_id=tenant_id,
                        brand_id=brand.id,
                        platform=PLATFORM,
                        external_id=page,
                        handle=f"boulangerie{idx:02d}_{k}",
                        display_name=f"Boulangerie {idx:02d} ({k})",
                    )
                    for k, page in enumerate(mine)
                ]
                session.add_all(accounts)
                await session.flush()
                session.add_all(
                    InboxCursor(tenant_id=tenant_id, social_account_id=a.id, next_poll_at=later)
                    for a in accounts
                )
                if idx == 0:
                    first, pages = tenant_id, mine
                    policy = ResponsePolicy(
                        first_response_minutes=120,
                        next_response_minutes=240,
                        timezone="America/Montreal",
                    )
                    session.add(
                        ResponsePolicyRow(
                            tenant_id=tenant_id, client_id=client.id, policy=policy.to_json()
                        )
                    )
                    for position, (name, condition, action) in enumerate(
                        (
                            (
                                "Négatif : priorité haute",
                                rules.RuleCondition(sentiments=["negative"]),
                                rules.RuleAction(priority="high", labels=["à surveiller"]),
                            ),
                            (
                                "Sans gluten",
                                rules.RuleCondition(keywords=["sans gluten", "gluten-free"]),
                                rules.RuleAction(labels=["produits"]),
                            ),
                        )
                    ):
                        session.add(
                            InboxRule(
                                tenant_id=tenant_id,
                                brand_id=brand.id,
                                name=name,
                                position=position,
                                condition=condition.model_dump(mode="json"),
                                action=action.model_dump(mode="json"),
                            )
                        )
    finally:
        await db.dispose()
    assert first is not None
    return Seeded(first, pages, agencies)


async def _truncate_events(owner_dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute("TRUNCATE platform_events")
        await conn.execute("VACUUM (ANALYZE) platform_events")
    finally:
        await conn.close()


async def _stored_events(owner_dsn: str) -> tuple[int, int]:
    """(rows in platform_events, of which processed)."""
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(processed_at) AS p FROM platform_events"
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["n"]), int(row["p"])


async def _processing_lags(owner_dsn: str) -> tuple[float, float] | None:
    """The worker's share of event to visible: from a delivery stored to its batch committed
    (received_at to processed_at), p50 and p99 in seconds; None when nothing was processed."""
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY lag) AS p50, "
            "percentile_disc(0.99) WITHIN GROUP (ORDER BY lag) AS p99 FROM ("
            "SELECT extract(epoch FROM processed_at - received_at)::float8 AS lag "
            "FROM platform_events WHERE processed_at IS NOT NULL) AS lags"
        )
    finally:
        await conn.close()
    if row is None or row["p50"] is None:
        return None
    return float(row["p50"]), float(row["p99"])


# ---------------------------------------------------------------------------------------------
# 1. Accepted events/s at rising rates


@dataclass(frozen=True)
class Step:
    rate: int
    planned: int
    sent: int
    accepted: int
    accepted_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    refused: dict[int, int]
    errors: int

    @property
    def behind(self) -> bool:
        return self.accepted_per_s < SATURATED * self.rate

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "behind": self.behind}


def _step(o: Offered) -> Step:
    lat = o.latencies_ms()
    return Step(
        rate=o.rate,
        planned=o.planned,
        sent=o.sent,
        accepted=o.accepted,
        accepted_per_s=o.accepted_per_s,
        p50_ms=_pct(lat, 50) if lat else None,
        p99_ms=_pct(lat, 99) if lat else None,
        refused=o.refused(),
        errors=len(o.errors),
    )


def _climb(
    server: Server, deliveries: Deliveries, rates: list[int], duration_s: int
) -> tuple[list[Step], int]:
    """A discarded warm-up, then each rate in turn until the server falls behind. Answers the
    steps and how many warm-up deliveries were accepted."""
    requests, _ = deliveries.take(100 * WARMUP_S)
    warm = asyncio.run(offer(server.port, requests, 100, WARMUP_S, connections=CONNECTIONS))
    if warm.refused() or warm.errors:
        raise BenchError(
            f"{server.name} refused deliveries during the warm-up: {warm.refused()} "
            f"{warm.errors[:3]}; end of {server.log_path}:\n{server.log_tail()}"
        )
    steps = []
    for rate in rates:
        server.check_alive()
        requests, _ = deliveries.take(rate * duration_s)
        o = asyncio.run(offer(server.port, requests, rate, duration_s, connections=CONNECTIONS))
        step = _step(o)
        if step.refused or step.errors:
            raise BenchError(
                f"{server.name} at {rate}/s: refused {step.refused}, connection errors "
                f"{o.errors[:3]}: the measurement is invalid; end of {server.log_path}:\n"
                f"{server.log_tail()}"
            )
        print(
            f"  {server.name:<24} {rate:>6}/s offered -> {step.accepted_per_s:8.1f}/s accepted"
            f"  p50 {step.p50_ms or 0:7.1f} ms  p99 {step.p99_ms or 0:8.1f} ms"
            + ("  (fell behind)" if step.behind else ""),
            flush=True,
        )
        steps.append(step)
        if step.behind:
            break
    return steps, warm.accepted


# ---------------------------------------------------------------------------------------------
# 2. Event to visible in GET /v1/inbox


@dataclass
class Visible:
    due: dict[str, float] = field(default_factory=dict)
    """Comment id -> when its delivery was due (Unix time), for the accepted ones."""
    seen: dict[str, float] = field(default_factory=dict)
    """Comment id -> when a poll first showed it (Unix time)."""
    polls: int = 0
    poll_ms: list[float] = field(default_factory=list)


async def _poll_inbox(
    client: httpx.AsyncClient, token: str, visible: Visible, wanted: set[str]
) -> None:
    """One look at the inbox: newest first, paging back until a page shows nothing new."""
    headers = {"Authorization": f"Bearer {token}"}
    cursor: str | None = None
    started = time.time()
    for _ in range(50):
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/inbox", params=params, headers=headers)
        if response.status_code != 200:
            raise BenchError(
                f"GET /v1/inbox answered {response.status_code}: {response.text[:300]}"
            )
        now = time.time()
        body = response.json()
        new = 0
        for item in body["items"]:
            external = item["external_id"]
            if external in wanted and external not in visible.seen:
                visible.seen[external] = now
                new += 1
        cursor = body.get("next_cursor")
        if not new or not cursor:
            break
    visible.polls += 1
    visible.poll_ms.append((time.time() - started) * 1000)


async def _visible_run(
    server: Server,
    token: str,
    deliveries: Deliveries,
    rate: int,
    duration_s: int,
    timeout_s: float,
) -> tuple[Offered, Visible]:
    """Offer `rate` deliveries a second for `duration_s` while polling the inbox; then keep
    polling until every accepted one is visible or `timeout_s` has passed."""
    requests, comments = deliveries.take(rate * duration_s)
    wanted = set(comments)
    visible = Visible()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        done = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                await _poll_inbox(client, token, visible, wanted)
                with suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), POLL_S)

        watcher = asyncio.create_task(watch())
        offered = await offer(server.port, requests, rate, duration_s, connections=CONNECTIONS)
        for i, comment in enumerate(comments):
            if offered.status[i] == 200:
                visible.due[comment] = offered.due[i] + offered.wall_offset
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not set(visible.due) <= set(visible.seen):
            server.check_alive()
            await asyncio.sleep(0.5)
        done.set()
        await watcher
    return offered, visible


def _wait_visible(server: Server, token: str, deliveries: Deliveries, worker: Server) -> float:
    """A few deliveries, waited for until the inbox shows them: the worker is up (its models
    loaded) before the measured run. Answers how long that took."""
    started = time.monotonic()
    deadline = started + VISIBLE_TIMEOUT_S

    async def go() -> bool:
        requests, comments = deliveries.take(5)
        offered = await offer(server.port, requests, 5, 1, connections=1)
        if offered.accepted != len(requests):
            raise BenchError(f"the warm-up deliveries were refused: {offered.refused()}")
        visible = Visible()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
            while time.monotonic() < deadline:
                worker.check_alive()
                await _poll_inbox(client, token, visible, set(comments))
                if len(visible.seen) == len(comments):
                    return True
                await asyncio.sleep(0.5)
        return False

    if not asyncio.run(go()):
        raise BenchError(
            f"the worker did not make the warm-up deliveries visible in {VISIBLE_TIMEOUT_S} s; "
            f"end of {worker.log_path}:\n{worker.log_tail()}"
        )
    return time.monotonic() - started


# ---------------------------------------------------------------------------------------------


def run() -> None:
    env = require_env("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL")
    duration = env_int("BENCH_DURATION", DEFAULT_DURATION)
    max_rate = env_int("BENCH_MAX_RATE", DEFAULT_MAX_RATE)
    visible_s = env_int("BENCH_VISIBLE_SECONDS", DEFAULT_VISIBLE_S)
    agencies = env_int("BENCH_AGENCIES", DEFAULT_AGENCIES)
    redis_index = int(os.environ.get("BENCH_REDIS_DB", "14"))
    rates = _rates(max_rate)

    from infra.security import generate_key_set_json
    from infra.settings import Settings

    owner_url = with_database(env["DATABASE_OWNER_URL"], DATABASE)
    app_url = with_database(env["DATABASE_URL"], DATABASE)
    owner_dsn = libpq_url(owner_url)
    redis_url = redis_with_db(env["REDIS_URL"], redis_index)
    secret = "bench-meta-app-" + secrets.token_hex(16)
    bench_settings = {
        "DATABASE_URL": app_url,
        "DATABASE_OWNER_URL": owner_url,
        "REDIS_URL": redis_url,
        "JWT_PRIVATE_KEYS": generate_key_set_json(),
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
        "SOCIAL_CLIENTS": json.dumps(
            {PLATFORM: {"client_id": "bench-meta-app", "client_secret": secret}}
        ),
        # Nothing in the run calls Graph (the Pages' polls are not due); should anything try,
        # it meets a closed port on loopback rather than the internet.
        "SOCIAL_BASE_URLS": json.dumps({PLATFORM: "http://127.0.0.1:9"}),
        "PLATFORM_WEBHOOK_VERIFY_TOKEN": secrets.token_hex(8),
        "LOG_LEVEL": "WARNING",
    }
    # The servers run this checkout's code, whichever checkout the virtualenv was installed from
    # (an editable install points at one; a git worktree sharing it is another).
    server_env = {**os.environ, **bench_settings, "PYTHONPATH": str(ROOT)}
    # JSON settings as the environment gives them to the servers; decoded for our own copy.
    settings = Settings(
        **{  # type: ignore[arg-type]
            k.lower(): json.loads(v) if k.startswith("SOCIAL_") else v
            for k, v in bench_settings.items()
        }
    )
    pool_size = settings.database_pool_size
    app_pool = app_pool_shape(settings)
    versions = package_versions(
        "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "sqlalchemy", "asyncpg", "arq"
    )

    print(f"== bench inbox: signed Meta deliveries into POST {PATH}, full stack vs bare ==")
    print(f"   {machine_note().replace('wrk', 'the load generator')}")
    print(
        f"   open loop, {CONNECTIONS} keep-alive connections, latency from when each delivery "
        f"was due; rates {', '.join(map(str, rates))}/s (BENCH_MAX_RATE) for {duration} s each "
        f"(BENCH_DURATION) after a {WARMUP_S} s warm-up, until a server falls behind "
        f"(< {SATURATED:.0%} accepted)"
    )
    print(
        f"   uvicorn 1 process, uvloop {versions['uvloop']} + httptools {versions['httptools']}; "
        f"pool: full stack SQLAlchemy {app_pool}, bare asyncpg min=max={pool_size}"
    )
    print(
        "   bare = Starlette + raw asyncpg: the same HMAC check, JSON parse and INSERT into "
        "platform_events; NO middleware, NO dependency injection, NO response model, NO job "
        "queued in Redis."
    )

    if sys.platform != "linux":
        print("   (CPU figures need Linux's /proc; not shown)")
    started = time.monotonic()
    print(
        f"-- building database {DATABASE} (drop, create, migrate, {agencies} agencies) …",
        flush=True,
    )
    asyncio.run(recreate_database(env["DATABASE_OWNER_URL"], DATABASE))
    migrate(owner_url)
    password = "bench-" + secrets.token_urlsafe(12)
    seeded = asyncio.run(_seed(settings, password, agencies))
    asyncio.run(flush_redis(redis_url))

    RESULTS.mkdir(parents=True, exist_ok=True)
    full_port = free_port()
    bare_port = free_port()
    while bare_port == full_port:
        bare_port = free_port()
    full = Server(
        "full stack",
        [str(VENV_BIN / "passerelle"), "serve", "--host", "127.0.0.1", "--port", str(full_port)],
        env=server_env,
        port=full_port,
        log_path=RESULTS / f"{NAME}-full.log",
    )
    bare = Server(
        "bare asyncpg+starlette",
        [
            sys.executable,
            str(ROOT / "bench" / "bare_inbox.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(bare_port),
        ],
        env={
            **server_env,
            "BARE_DSN": libpq_url(app_url),
            "BARE_POOL_SIZE": str(pool_size),
            "BARE_SECRET": secret,
        },
        port=bare_port,
        log_path=RESULTS / f"{NAME}-bare.log",
    )
    worker = Server(
        "worker",
        [str(VENV_BIN / "passerelle"), "worker"],
        env=server_env,
        port=0,
        log_path=RESULTS / f"{NAME}-worker.log",
    )
    with ExitStack() as stack:
        stack.callback(full.stop)
        stack.callback(bare.stop)
        stack.callback(worker.stop)
        full.start()
        bare.start()
        full.wait_ready("/readyz")
        bare.wait_ready("/readyz")
        token = login_owner(full, OWNER_EMAIL, password)
        print(f"-- setup {time.monotonic() - started:.1f} s", flush=True)

        busy = machine_busy_percent()
        if busy is not None and busy > BUSY_WARNING_PERCENT:
            print(
                f"   WARNING: the machine was {busy:.0f}% busy before measuring (something else "
                "is running): the figures will be low and noisy.",
                flush=True,
            )
        climbs: dict[str, list[Step]] = {}
        cpu: dict[str, float | None] = {}
        for server in (full, bare):
            asyncio.run(_truncate_events(owner_dsn))
            deliveries = Deliveries(secret, seeded.pages, server.port)
            before = server.cpu_seconds()
            with profiled(
                server.proc.pid if server.proc else None, f"{NAME}-{server.name.split()[0]}"
            ):
                climbs[server.name], warmed = _climb(server, deliveries, rates, duration)
            after = server.cpu_seconds()
            stored, _ = asyncio.run(_stored_events(owner_dsn))
            accepted = sum(s.accepted for s in climbs[server.name]) + warmed
            if stored != accepted:
                raise BenchError(
                    f"{server.name} accepted {accepted} deliveries but platform_events holds "
                    f"{stored} rows"
                )
            per_event = (
                None
                if before is None or after is None
                else (after - before) * 1000 / max(accepted, 1)
            )
            cpu[server.name] = per_event
        bare.stop()

        # The throughput run's deliveries were never processed: gone, with their queued jobs,
        # so the worker starts with nothing behind it.
        asyncio.run(_truncate_events(owner_dsn))
        asyncio.run(flush_redis(redis_url))
        print(
            f"-- event to visible: a worker, {VISIBLE_RATE} deliveries/s for {visible_s} s "
            f"(BENCH_VISIBLE_SECONDS), GET /v1/inbox every {POLL_S * 1000:.0f} ms …",
            flush=True,
        )
        worker.start()
        deliveries = Deliveries(secret, seeded.pages, full.port)
        warm_s = _wait_visible(full, token, deliveries, worker)
        print(f"   worker up, warm-up deliveries visible after {warm_s:.1f} s", flush=True)
        worker_cpu_before = worker.cpu_seconds()
        with (
            profiled(worker.proc.pid if worker.proc else None, f"{NAME}-worker"),
            profiled(full.proc.pid if full.proc else None, f"{NAME}-full-visible"),
        ):
            offered, visible = asyncio.run(
                _visible_run(full, token, deliveries, VISIBLE_RATE, visible_s, VISIBLE_TIMEOUT_S)
            )
        worker_cpu_after = worker.cpu_seconds()
        worker.check_alive()
        stored, processed = asyncio.run(_stored_events(owner_dsn))
        processing = asyncio.run(_processing_lags(owner_dsn))

    full_steps, bare_steps = climbs[full.name], climbs[bare.name]
    full_cap = max(s.accepted_per_s for s in full_steps)
    bare_cap = max(s.accepted_per_s for s in bare_steps)
    ratio = full_cap / bare_cap if bare_cap else 0.0
    verdict = "PASS" if ratio >= TARGET_RATIO else "BELOW TARGET"
    lags = [visible.seen[c] - due for c, due in visible.due.items() if c in visible.seen]
    missing = len(visible.due) - len(lags)
    v50, v99, vmax = (_pct(lags, 50), _pct(lags, 99), max(lags)) if lags else (0.0, 0.0, 0.0)
    v_verdict = "PASS" if lags and not missing and v99 <= TARGET_VISIBLE_P99_S else "MISS"
    worker_cpu = (
        None
        if worker_cpu_before is None or worker_cpu_after is None
        else worker_cpu_after - worker_cpu_before
    )

    print()
    print(f"{'name':<24} {'offered/s':>9} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>9}")
    for name, steps in climbs.items():
        for s in steps:
            print(
                f"{name:<24} {s.rate:>9} {s.accepted_per_s:>11.1f} {s.p50_ms or 0:>8.1f} "
                f"{s.p99_ms or 0:>9.1f}" + ("  fell behind" if s.behind else "")
            )
    for name, per_event in cpu.items():
        shown = "n/a" if per_event is None else f"{per_event:.2f} ms"
        print(f"{name:<24} server CPU per accepted delivery: {shown}")
    print()
    print(
        f"capacity (most accepted/s at any rate): full {full_cap:.1f}, bare {bare_cap:.1f}"
        + ("" if full_steps[-1].behind else " (full stack never fell behind: raise BENCH_MAX_RATE)")
        + (
            ""
            if bare_steps[-1].behind
            else " (bare never fell behind: its capacity is higher, so the ratio is at most this)"
        )
    )
    print(f"full/bare accepted events/s: {ratio:.2f}   target >= {TARGET_RATIO:.2f}   {verdict}")
    print()
    print(
        f"event to visible in GET /v1/inbox at {VISIBLE_RATE}/s for {visible_s} s: "
        f"{offered.accepted_per_s:.1f}/s accepted, {len(lags)} of {len(visible.due)} visible"
        + (f" ({missing} not within {VISIBLE_TIMEOUT_S} s)" if missing else "")
    )
    print(
        f"  p50 {v50:.2f} s  p99 {v99:.2f} s  max {vmax:.2f} s   target p99 <= "
        f"{TARGET_VISIBLE_P99_S:.0f} s   {v_verdict}"
    )
    print(
        f"  inbox polls: {visible.polls}, p50 {_pct(visible.poll_ms, 50):.0f} ms each; "
        f"platform_events {processed} of {stored} processed at the end"
        if visible.poll_ms
        else "  no inbox poll finished"
    )
    if processing is not None:
        print(
            f"  of which stored to processed (the worker's part): p50 {processing[0]:.2f} s  "
            f"p99 {processing[1]:.2f} s"
        )
    if worker_cpu is not None:
        print(
            f"  worker CPU {worker_cpu:.1f} s = {1000 * worker_cpu / max(len(visible.due), 1):.1f} "
            f"ms per delivery: one worker cannot pass "
            f"{len(visible.due) / worker_cpu if worker_cpu else 0:.0f} deliveries/s on a core"
        )

    path = write_results(
        NAME,
        {
            "benchmark": NAME,
            "finished_at": datetime.now(UTC).isoformat(),
            "request": f"POST {PATH} (Meta Page feed comment, X-Hub-Signature-256)",
            "agencies": agencies,
            "pages": len(seeded.pages),
            "cpu_count": os.cpu_count(),
            "machine_busy_percent_before": None if busy is None else round(busy, 1),
            "note": machine_note().replace("wrk", "the load generator"),
            "generator": {
                "connections": CONNECTIONS,
                "warmup_s": WARMUP_S,
                "duration_s": duration,
                "rates": rates,
            },
            "database_pool_size": pool_size,
            "full_stack_pool": app_pool,
            "versions": versions,
            "baseline": "Starlette + raw asyncpg pool: same signature check, JSON parse and "
            "INSERT into platform_events; no middleware, no dependency injection, no response "
            "model, no job queued",
            "results": {
                "full_stack": [s.as_dict() for s in full_steps],
                "bare_asyncpg_starlette": [s.as_dict() for s in bare_steps],
                "server_cpu_ms_per_delivery": cpu,
            },
            "capacity": {"full": round(full_cap, 1), "bare": round(bare_cap, 1)},
            "ratio_full_over_bare": round(ratio, 4),
            "target_ratio": TARGET_RATIO,
            "verdict": verdict,
            "visible": {
                "rate": VISIBLE_RATE,
                "duration_s": visible_s,
                "accepted_per_s": round(offered.accepted_per_s, 1),
                "accepted": len(visible.due),
                "visible": len(lags),
                "p50_s": round(v50, 3),
                "p99_s": round(v99, 3),
                "max_s": round(vmax, 3),
                "target_p99_s": TARGET_VISIBLE_P99_S,
                "verdict": v_verdict,
                "polls": visible.polls,
                "worker_cpu_s": worker_cpu,
                "events_stored": stored,
                "events_processed": processed,
                "stored_to_processed_p50_s": processing[0] if processing else None,
                "stored_to_processed_p99_s": processing[1] if processing else None,
            },
        },
    )
    print(f"figures written to {path.relative_to(ROOT)}")
