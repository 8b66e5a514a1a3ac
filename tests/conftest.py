"""Test wiring: one database per test worker, built by the migrations, reached as the
non-owner application role (so row-level security applies exactly as in production).

The database, the Stripe test server and the platform simulator are built lazily, by the first
test that needs them (through `settings`): a pure test (diff, policy, arithmetic) runs with no
PostgreSQL, no Redis and no environment at all.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from devtools.media_server import MediaServer
from devtools.platforms import PlatformSimulator
from devtools.smtp import Mailbox
from devtools.stripe_server import StripeServer
from infra.logging import configure_logging
from infra.security import generate_signing_key
from tests.support.clock import Clock

# The real-browser fixtures (live_server, page, phone_page): see tests/support/browser.py.
pytest_plugins = ["tests.support.browser"]

STRIPE_KEY = "sk_test_passerelle"
STRIPE_WEBHOOK_SECRET = "whsec_test_passerelle"
_stripe = StripeServer(api_key=STRIPE_KEY)
NETWORK_PLATFORMS = (
    "facebook_page",
    "instagram_business",
    "linkedin_organization",
    "x",
    "youtube",
    "tiktok",
)
SOCIAL_CLIENTS = {
    p: {"client_id": f"cid-{p}", "client_secret": f"secret-{p}"} for p in NETWORK_PLATFORMS
}
_platforms = PlatformSimulator(
    clients={p: (c["client_id"], c["client_secret"]) for p, c in SOCIAL_CLIENTS.items()}
)

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
WORKER_NUMBER = int(WORKER.removeprefix("gw") or 0) if WORKER.startswith("gw") else 0
# Several suites may run at once on one machine (two checkouts, a benchmark beside the
# tests): PASSERELLE_TEST_SLOT gives each its own databases and Redis numbers.
SLOT = int(os.environ.get("PASSERELLE_TEST_SLOT", "0") or 0)
TEST_DB = f"passerelle_test_{WORKER}" + (f"_s{SLOT}" if SLOT else "")
SERVICES = ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL")


def _with_database(url: str, name: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


def _services_given() -> bool:
    return all(os.environ.get(name) for name in SERVICES)


def pytest_configure(config: pytest.Config) -> None:
    if _services_given():
        _point_at_this_workers_services()
    keys = [generate_signing_key(), generate_signing_key()]
    os.environ["JWT_PRIVATE_KEYS"] = json.dumps({"keys": keys})
    os.environ.update(
        ENVIRONMENT="test",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_KIB="1024",
        LOGIN_RATE_LIMIT_PER_EMAIL="5/60",
        LOGIN_RATE_LIMIT_PER_ADDRESS="10000/60",
        SMTP_PORT=str(_listening_port()),
        APP_BASE_URL="https://app.passerelle.test",
        # Where the live server (tests/support/browser.py) listens, when a test asks for it: the
        # worker builds e-mail links from this same setting, so a link a test reads in the
        # mailbox opens in the browser. Chosen here, like SMTP_PORT, before settings are read.
        PUBLIC_BASE_URL=f"http://127.0.0.1:{_listening_port()}",
        LOG_LEVEL="WARNING",
        LOG_JSON="true",
        SEAT_SYNC_DELAY_SECONDS="0",
        STRIPE_API_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        STRIPE_API_BASE=_stripe.start().url,
        STRIPE_TIMEOUT_SECONDS="2",
        JOB_RETRY_BASE_SECONDS="0.05",
        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SOCIAL_CLIENTS=json.dumps(SOCIAL_CLIENTS),
        SOCIAL_HTTP_TIMEOUT_SECONDS="3",
        # Webhook receivers in tests listen on loopback; retries are fractions of a second.
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",
        WEBHOOK_RETRY_SCHEDULE="0.1,0.2,0.3",
        WEBHOOK_TIMEOUT_SECONDS="2",
        # The media server of the publishing tests listens on loopback too.
        PUBLISHING_MEDIA_ALLOWED_NETWORKS="127.0.0.0/8,::1/128",
    )


def _point_at_this_workers_services() -> None:
    """This worker's (and slot's) own database and Redis number on the servers given."""
    owner = os.environ["DATABASE_OWNER_URL"]
    os.environ.setdefault("PASSERELLE_TEST_ADMIN_URL", owner)
    os.environ["DATABASE_OWNER_URL"] = _with_database(owner, TEST_DB)
    os.environ["DATABASE_URL"] = _with_database(os.environ["DATABASE_URL"], TEST_DB)
    redis = make_url(os.environ["REDIS_URL"].replace("redis://", "postgresql://", 1))
    os.environ["REDIS_URL"] = (
        f"redis://{redis.host or '127.0.0.1'}:{redis.port or 6379}/"
        f"{1 + (2 * SLOT + WORKER_NUMBER) % 15}"
    )


async def _drop_database(conn: asyncpg.Connection) -> None:
    """FORCE ends the last run's leftover sessions, but refuses when one is an autovacuum worker
    (still cleaning the last run's database); a plain DROP cancels those, so it is retried."""
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
        return
    except asyncpg.InsufficientPrivilegeError:
        pass
    for _ in range(30):
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}"')
            return
        except asyncpg.ObjectInUseError:
            await asyncio.sleep(1)
    await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')


async def _recreate_database() -> None:
    admin = make_url(os.environ["PASSERELLE_TEST_ADMIN_URL"])
    conn = await asyncpg.connect(
        host=admin.host,
        port=admin.port,
        user=admin.username,
        password=admin.password,
        database="postgres",
    )
    try:
        await _drop_database(conn)
        await conn.execute(f'CREATE DATABASE "{TEST_DB}"')
    finally:
        await conn.close()


def _listening_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999), for a server the session binds
    later: a port from that range can meanwhile become the local end of any process's outgoing
    connection ("address already in use" for the mail catcher, once, in a full run)."""
    import random
    import socket

    while True:
        port = random.randint(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """This worker's database, rebuilt by the migrations: for tests that talk to the app."""
    from alembic import command

    from main.cli import alembic_config

    if not _services_given():
        pytest.exit(
            f"{', '.join(SERVICES)} must be set for tests that use the database: run `make test`.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    asyncio.run(_recreate_database())
    command.upgrade(alembic_config(os.environ["DATABASE_OWNER_URL"]), "head")  # type: ignore[arg-type]
    yield TEST_DB


@pytest.fixture(scope="session")
def stripe_started() -> Iterator[StripeServer]:
    os.environ["STRIPE_API_BASE"] = _stripe.start().url
    yield _stripe
    _stripe.stop()


@pytest.fixture(scope="session")
def platforms_started() -> Iterator[PlatformSimulator]:
    _platforms.start()
    os.environ["SOCIAL_BASE_URLS"] = json.dumps(
        {p: _platforms.base_url(p) for p in NETWORK_PLATFORMS}
    )
    yield _platforms
    _platforms.stop()


@pytest.fixture(scope="session")
def media_server() -> Iterator[MediaServer]:
    """Generated images, videos and documents over real HTTP on loopback (see
    devtools/media_server.py); PUBLISHING_MEDIA_ALLOWED_NETWORKS lets the app reach it."""
    server = MediaServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(database: str, stripe_started: StripeServer, platforms_started: PlatformSimulator):
    from infra.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    # As the API and the worker do on start-up. Unconfigured, structlog renders an exception
    # with rich and every frame's locals: tens of seconds for one 500 in a test.
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


@pytest.fixture(scope="session")
def mailbox_server(settings) -> Iterator[Mailbox]:
    box = Mailbox(settings.smtp_port)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def mailbox(mailbox_server: Mailbox) -> Mailbox:
    mailbox_server.messages.clear()
    return mailbox_server


@pytest.fixture
def platforms(platforms_started: PlatformSimulator) -> PlatformSimulator:
    """The platform simulator the app's settings point at, emptied for each test."""
    platforms_started.reset()
    return platforms_started


@pytest.fixture
def stripe_server(stripe_started: StripeServer) -> StripeServer:
    """The local Stripe test server the app's settings point at, emptied for each test."""
    stripe_started.reset()
    return stripe_started


@pytest.fixture(scope="session")
async def app(settings):
    from api.app import create_app

    application = create_app(settings)
    async with LifespanManager(application) as manager:
        application.state.asgi = manager.app  # the app with its lifespan state attached
        await application.state.resources.redis.flushdb()
        yield application


@pytest.fixture(scope="session")
def resources(app):
    return app.state.resources


@pytest.fixture(scope="session")
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app.state.asgi, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def db(resources):
    return resources.db


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The application clock, for a test that needs a given date: `clock.set(datetime(...))`."""
    c = Clock()
    yield c
    c.stop()
