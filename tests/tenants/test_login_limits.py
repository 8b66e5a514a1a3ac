"""Login limits that an attacker cannot turn against a user, through the real app and Redis.

Only failed password checks count (OWASP Authentication Cheat Sheet, "Protect against
automated attacks"): per (e-mail, client address) pair, per address, and per e-mail, where the
per-e-mail count only slows addresses that have themselves failed on that e-mail. Each story
runs against an app with the documented default limits (the suite's own settings are looser),
and every client address is fresh, so stories never share counters.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from asgi_lifespan import LifespanManager

from infra.clock import utcnow
from infra.ratelimit import address_key
from infra.settings import Settings, parse_rate
from tenants.models import Membership, Role, User
from tests.support.factories import PASSWORD, new_agency, signup_body, unique
from tests.support.partners import create_partner_app, enable_public_api, request_token
from tests.support.problems import assert_problem

LOGIN_SETTINGS = (
    "login_rate_limit_per_pair",
    "login_rate_limit_per_address",
    "login_rate_limit_per_email",
    "login_slowdown_max_seconds",
)
DEFAULTS = {name: Settings.model_fields[name].default for name in LOGIN_SETTINGS}
PAIR_LIMIT, PAIR_WINDOW = parse_rate(DEFAULTS["login_rate_limit_per_pair"])
ADDRESS_LIMIT, ADDRESS_WINDOW = parse_rate(DEFAULTS["login_rate_limit_per_address"])
EMAIL_FREE, EMAIL_WINDOW = parse_rate(DEFAULTS["login_rate_limit_per_email"])
MAX_DELAY = DEFAULTS["login_slowdown_max_seconds"]
WRONG = "not-the-password-1"

_hosts = itertools.count(1)


def fresh_ipv4() -> str:
    """An address no other story uses (198.18.0.0/15 is reserved for benchmarks)."""
    n = next(_hosts)
    return f"198.{18 + n // 65536 % 2}.{n // 256 % 256}.{n % 256}"


def fresh_ipv6_network() -> str:
    """The first 64 bits of an IPv6 /64 no other story uses (2001:db8::/32 is documentation)."""
    return f"2001:db8:{next(_hosts):x}:1"


@dataclass
class Site:
    """One running app, reached from any client address."""

    asgi: Any
    resources: Any

    @asynccontextmanager
    async def client(self, host: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=self.asgi, client=(host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    async def post(self, host: str, path: str, **kwargs: Any) -> httpx.Response:
        async with self.client(host) as c:
            return await c.post(path, **kwargs)

    async def login(self, host: str, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.post(host, "/v1/auth/login", json={"email": email, "password": password})


@asynccontextmanager
async def running(settings: Settings, **overrides: Any) -> AsyncIterator[Site]:
    from api.app import create_app

    application = create_app(settings.model_copy(update=overrides))
    async with LifespanManager(application) as manager:
        yield Site(manager.app, application.state.resources)


@pytest.fixture(scope="module")
async def defaults(app, settings) -> AsyncIterator[Site]:
    """The app as deployed with the documented default login limits."""
    async with running(settings, **DEFAULTS) as site:
        yield site


@pytest.fixture(scope="module")
async def no_email_slowdown(app, settings) -> AsyncIterator[Site]:
    """Pair and address limits alone, for stories about those counters only."""
    async with running(
        settings,
        login_rate_limit_per_pair="10/900",
        login_rate_limit_per_address="30/900",
        login_rate_limit_per_email="100000/900",
    ) as site:
        yield site


@pytest.fixture
def frozen(clock):
    """Time stands still unless the test moves it, so waits are exact."""
    clock.set(datetime.now(UTC).replace(microsecond=0), tick=False)
    return clock


def retry_after(response: httpx.Response) -> int:
    assert_problem(response, 429, "rate-limited")
    return int(response.headers["retry-after"])


def refused_for(response: httpx.Response) -> dict[str, Any]:
    """What a refused attempt tells its sender (the request id aside)."""
    body = assert_problem(response, 429, "rate-limited")
    return {
        "retry-after": response.headers["retry-after"],
        **{k: body[k] for k in ("type", "title", "status", "detail")},
    }


class CountingVerify:
    """Wraps the real password check to count how often a hash is computed."""

    def __init__(self, passwords: Any) -> None:
        self.calls = 0
        self._verify = passwords.verify

    async def __call__(self, password_hash: str | None, password: str) -> bool:
        self.calls += 1
        return bool(await self._verify(password_hash, password))


# ---------------------------------------------------------------------------------------------
# The office


async def test_an_office_of_100_signs_in_from_one_address_at_nine(defaults, client, db, clock):
    # The old rule counted every login per address; the office is larger than that limit.
    assert ADDRESS_LIMIT < 100
    agency = await new_agency(client)
    password_hash = await defaults.resources.passwords.hash(PASSWORD)
    emails = [f"{unique('office')}@example.com" for _ in range(100)]
    async with db.tenant_transaction(agency.tenant_id) as session:
        users = [User(email=e, name=e, password_hash=password_hash) for e in emails]
        session.add_all(users)
        await session.flush()
        session.add_all(
            Membership(tenant_id=agency.tenant_id, user_id=u.id, role=Role.member) for u in users
        )

    montreal = ZoneInfo("America/Montreal")
    tomorrow = utcnow().astimezone(montreal).date() + timedelta(days=1)
    clock.set(datetime.combine(tomorrow, time(9, 0), tzinfo=montreal))
    office = fresh_ipv4()
    # A few mistype first, as people do on a Monday.
    for email in emails[:10]:
        assert_problem(await defaults.login(office, email, WRONG), 401, "invalid-credentials")

    answers = await asyncio.gather(*(defaults.login(office, email) for email in emails))

    assert [a.status_code for a in answers] == [200] * 100, [a.text for a in answers[:3]]
    async with defaults.client(office) as c:
        for email, answer in list(zip(emails, answers, strict=True))[::9]:
            headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            me = await c.get("/v1/me", headers=headers)
            assert me.status_code == 200 and me.json()["user"]["email"] == email


# ---------------------------------------------------------------------------------------------
# The stranger


async def test_a_stranger_guessing_a_known_email_cannot_lock_its_owner_out(defaults, client):
    owner = (await new_agency(client)).owner
    stranger, office, phone = fresh_ipv4(), fresh_ipv4(), fresh_ipv4()

    # Changing the e-mail's case changes nothing: it is one account.
    emails = itertools.cycle((owner.email, owner.email.upper()))
    answers = [await defaults.login(stranger, next(emails), f"guess-{n}") for n in range(50)]

    for answer in answers[:PAIR_LIMIT]:
        assert_problem(answer, 401, "invalid-credentials")
    for answer in answers[PAIR_LIMIT:]:
        assert 1 <= retry_after(answer) <= PAIR_WINDOW
    # The stranger's address is refused even the right password, so it learns nothing.
    assert 1 <= retry_after(await defaults.login(stranger, owner.email)) <= PAIR_WINDOW

    # The owner signs in from the office, and from a phone, as if nothing happened.
    for host in (office, phone):
        signed_in = await defaults.login(host, owner.email.upper())
        assert signed_in.status_code == 200, signed_in.text


async def test_refusals_look_the_same_for_known_and_unknown_emails_and_cost_no_hash(
    defaults, client, frozen, monkeypatch
):
    known = (await new_agency(client)).owner.email
    unknown = f"{unique('nobody')}@example.com"
    first, second = fresh_ipv4(), fresh_ipv4()
    verify = CountingVerify(defaults.resources.passwords)
    monkeypatch.setattr(defaults.resources.passwords, "verify", verify)

    for _ in range(PAIR_LIMIT):
        assert_problem(await defaults.login(first, known, WRONG), 401, "invalid-credentials")
        assert_problem(await defaults.login(second, unknown, WRONG), 401, "invalid-credentials")
    assert verify.calls == 2 * PAIR_LIMIT

    on_known = await defaults.login(first, known, WRONG)
    on_unknown = await defaults.login(second, unknown, WRONG)
    assert refused_for(on_known) == refused_for(on_unknown)
    assert int(on_known.headers["retry-after"]) == PAIR_WINDOW

    # Refused attempts, the right password included, never reach the password hash.
    await defaults.login(first, known)
    for _ in range(5):
        await defaults.login(first, known, WRONG)
        await defaults.login(second, unknown, WRONG)
    assert verify.calls == 2 * PAIR_LIMIT


async def test_the_pair_waits_out_its_window_then_may_try_again(defaults, client, frozen):
    owner = (await new_agency(client)).owner
    stranger = fresh_ipv4()
    for _ in range(PAIR_LIMIT):
        assert_problem(await defaults.login(stranger, owner.email, WRONG), 401)

    wait = retry_after(await defaults.login(stranger, owner.email, WRONG))
    assert wait == PAIR_WINDOW
    frozen.advance(timedelta(seconds=wait - 1))
    assert retry_after(await defaults.login(stranger, owner.email, WRONG)) == 1
    frozen.advance(timedelta(seconds=1))
    assert_problem(await defaults.login(stranger, owner.email, WRONG), 401, "invalid-credentials")


async def test_a_stranger_trying_many_emails_is_throttled_per_address(defaults, client, frozen):
    owner = (await new_agency(client)).owner
    stranger, office = fresh_ipv4(), fresh_ipv4()
    for n in range(ADDRESS_LIMIT):
        answer = await defaults.login(stranger, f"{unique(f'spray{n}')}@example.com", PASSWORD)
        assert_problem(answer, 401, "invalid-credentials")

    # Every further e-mail waits, a real one with its right password too.
    assert retry_after(await defaults.login(stranger, owner.email)) == ADDRESS_WINDOW
    refused = await defaults.login(stranger, f"{unique('spray')}@example.com")
    assert retry_after(refused) == ADDRESS_WINDOW
    # Another address is not concerned.
    assert (await defaults.login(office, owner.email)).status_code == 200

    frozen.advance(timedelta(seconds=ADDRESS_WINDOW))
    assert (await defaults.login(stranger, owner.email)).status_code == 200


async def test_a_stranger_spreading_guesses_over_an_ipv6_64_is_one_address(defaults, client):
    owner = (await new_agency(client)).owner
    network = fresh_ipv6_network()
    for n in range(PAIR_LIMIT):
        answer = await defaults.login(f"{network}::{n + 1:x}", owner.email, WRONG)
        assert_problem(answer, 401, "invalid-credentials")
    assert retry_after(await defaults.login(f"{network}:ffff::9", owner.email, WRONG)) > 0
    owners_network = fresh_ipv6_network()
    assert (await defaults.login(f"{owners_network}::1", owner.email)).status_code == 200


async def test_a_forwarded_for_header_from_a_client_is_not_its_address(defaults, client):
    """Only the server (uvicorn's --forwarded-allow-ips) may turn X-Forwarded-For into the
    client address; the app itself never reads it."""
    owner = (await new_agency(client)).owner
    stranger = fresh_ipv4()
    async with defaults.client(stranger) as c:
        for n in range(PAIR_LIMIT + 1):
            answer = await c.post(
                "/v1/auth/login",
                json={"email": owner.email, "password": WRONG},
                headers={"X-Forwarded-For": f"192.0.2.{n + 1}", "X-Real-IP": f"192.0.2.{n + 1}"},
            )
    assert retry_after(answer) > 0


def test_address_key_counts_ipv6_by_64_and_unwraps_mapped_ipv4():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::2")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") != address_key("192.0.2.8")
    assert address_key(None) == address_key("") == "unknown"


# ---------------------------------------------------------------------------------------------
# The per-e-mail slowdown


async def test_guesses_on_one_email_slow_down_failing_addresses_but_not_others(
    defaults, client, frozen
):
    owner = (await new_agency(client)).owner
    strangers = [fresh_ipv4() for _ in range(5)]
    per_stranger = EMAIL_FREE // len(strangers)
    assert per_stranger * len(strangers) == EMAIL_FREE and per_stranger < PAIR_LIMIT
    for host in strangers:
        for _ in range(per_stranger):
            assert_problem(await defaults.login(host, owner.email, WRONG), 401)

    # Every address that failed on this e-mail now waits, the right password or not…
    for host in strangers:
        assert retry_after(await defaults.login(host, owner.email)) == 1
    # …but the owner, from an address that has not failed, signs in at once.
    assert (await defaults.login(fresh_ipv4(), owner.email)).status_code == 200

    # Each further failure doubles the wait, up to the ceiling.
    waits = []
    for host in itertools.islice(itertools.cycle(strangers), 11):
        wait = retry_after(await defaults.login(host, owner.email, WRONG))
        waits.append(wait)
        frozen.advance(timedelta(seconds=wait))
        assert_problem(await defaults.login(host, owner.email, WRONG), 401)
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, MAX_DELAY, MAX_DELAY]
    assert MAX_DELAY < 512

    assert (await defaults.login(fresh_ipv4(), owner.email)).status_code == 200


# ---------------------------------------------------------------------------------------------
# What a success clears, and what it does not


async def test_a_success_clears_the_failures_of_its_pair(no_email_slowdown, client):
    site = no_email_slowdown
    owner = (await new_agency(client)).owner
    home = fresh_ipv4()
    for _ in range(9):
        assert_problem(await site.login(home, owner.email, WRONG), 401)
    assert (await site.login(home, owner.email)).status_code == 200

    # Ten more typos are tolerated, not one: the success started the pair afresh.
    for _ in range(10):
        assert_problem(await site.login(home, owner.email, WRONG), 401, "invalid-credentials")
    assert retry_after(await site.login(home, owner.email)) > 0


async def test_an_attackers_own_successes_do_not_clear_his_address(no_email_slowdown, client):
    site = no_email_slowdown
    own = (await new_agency(client)).owner
    attacker = fresh_ipv4()
    for n in range(30):
        answer = await site.login(attacker, f"{unique(f'victim{n}')}@example.com", WRONG)
        assert_problem(answer, 401, "invalid-credentials")
        if n % 10 == 4:
            assert (await site.login(attacker, own.email)).status_code == 200
    refused = await site.login(attacker, f"{unique('victim')}@example.com", WRONG)
    assert retry_after(refused) > 0


# ---------------------------------------------------------------------------------------------
# Other doors to the same password


async def test_signup_with_an_existing_email_counts_as_a_guess(defaults, client):
    agency = await new_agency(client)
    owner = agency.owner
    stranger, office = fresh_ipv4(), fresh_ipv4()
    for _ in range(PAIR_LIMIT):
        body = signup_body(email=owner.email, password=f"guess-{uuid.uuid4().hex}")
        answer = await defaults.post(stranger, "/v1/auth/signup", json=body)
        assert_problem(answer, 409, "email-taken")

    body = signup_body(email=owner.email, password=PASSWORD)
    assert retry_after(await defaults.post(stranger, "/v1/auth/signup", json=body)) > 0
    assert retry_after(await defaults.login(stranger, owner.email)) > 0

    # From the office, the owner opens a second agency with the account's password.
    second = await defaults.post(office, "/v1/auth/signup", json=body)
    assert second.status_code == 201, second.text
    # Belonging to two agencies now, the owner is asked which one; that is no failure.
    for _ in range(PAIR_LIMIT + 1):
        assert_problem(await defaults.login(office, owner.email), 409, "tenant-required")


async def test_a_stranger_cannot_stop_a_partner_getting_tokens(app, client, db, settings):
    limit, window = parse_rate(settings.partner_token_rate)
    agency = await new_agency(client)
    await enable_public_api(db, agency)
    partner = await create_partner_app(client, agency, ["brands:read"], name=unique("app"))
    site = Site(app.state.asgi, app.state.resources)
    stranger, partner_server = fresh_ipv4(), fresh_ipv4()

    async with site.client(stranger) as c:
        for _ in range(limit):
            answer = await request_token(c, partner.client_id, "pas_" + "y" * 40)
            assert answer.status_code == 401, answer.text
        refused = await request_token(c, partner.client_id, partner.client_secret)
    assert refused.status_code == 429 and refused.json()["error"] == "slow_down"
    assert 1 <= int(refused.headers["retry-after"]) <= window

    # Successful token requests are not counted: more than the limit, all served.
    async with site.client(partner_server) as c:
        for _ in range(limit + 5):
            answer = await request_token(c, partner.client_id, partner.client_secret)
            assert answer.status_code == 200, answer.text


# ---------------------------------------------------------------------------------------------
# Documentation


def test_every_login_setting_is_documented_with_its_default():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in LOGIN_SETTINGS:
        row = re.search(rf"^\|[^|\n]*`{name.upper()}`[^\n]*$", readme, re.MULTILINE)
        assert row is not None, f"{name.upper()} is not in the README's settings table"
        assert f"`{DEFAULTS[name]}`" in row.group(0), (name, row.group(0))
