"""The whole application behind Debian's pgbouncer in transaction mode (issue #22).

Two `passerelle serve` and two `passerelle worker` processes share three server connections
through pgbouncer, while two agencies write and read at once. Named prepared statements break
here (a statement prepared on one server connection is missing on the next, and two processes
number theirs alike); DATABASE_POOLER=transaction is what makes it work.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import httpx
from redis import Redis as SyncRedis
from sqlalchemy import make_url

from devtools.pgbouncer import run_pgbouncer
from devtools.webhook_receiver import Receiver
from tests.support.factories import World, make_post, new_world, walk
from tests.support.fuzz import private_database, serve
from tests.support.worker import start_worker_process, stop_process

SUBMITTED = "content.submitted"
POSTS_PER_AGENCY = 8
SERVER_CONNECTIONS = 3


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker_process(log, env)
    try:
        yield process
    finally:
        stop_process(process, grace=15)


async def new_shop(client: httpx.AsyncClient, hook_url: str) -> World:
    """An agency with a brand, a workflow without steps, and a webhook endpoint for content
    submissions."""
    world = await new_world(client)
    flow = await client.post(
        "/v1/workflow-templates", json={"name": "Straight", "steps": []}, headers=world.boss
    )
    assert flow.status_code == 201, flow.text
    world.ids["template"] = flow.json()["id"]
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": hook_url, "event_types": [SUBMITTED]},
        headers=world.boss,
    )
    assert endpoint.status_code == 201, endpoint.text
    return world


async def submit_posts(client: httpx.AsyncClient, shop: World, count: int) -> set[str]:
    """Posts made and submitted one after another, each followed by a read of the brand's list,
    which must hold only this agency's posts."""
    made: set[str] = set()
    brand = shop.brand["id"]
    for _ in range(count):
        post = await make_post(client, shop.boss, brand, template_id=shop.ids["template"])
        submitted = await client.post(
            f"/v1/content/{post['id']}/submit", json={}, headers=shop.boss
        )
        assert submitted.status_code == 200, submitted.text
        made.add(post["id"])
        listed = await client.get(f"/v1/brands/{brand}/content", headers=shop.boss)
        assert listed.status_code == 200, listed.text
        assert {item["brand_id"] for item in listed.json()["items"]} == {brand}
    return made


def test_two_servers_and_two_workers_share_three_server_connections(tmp_path):
    # A database of its own: the workers' crons see only this test's agencies.
    name = f"{make_url(os.environ['DATABASE_URL']).database}_pgbouncer"
    # Jobs left in this run's Redis by other tests were signed and encrypted with other keys.
    SyncRedis.from_url(os.environ["REDIS_URL"]).flushdb()
    with ExitStack() as stack:
        database = stack.enter_context(private_database(name))
        receiver = Receiver().start()
        stack.callback(receiver.stop)
        app_url = database["DATABASE_URL"]
        bouncer = stack.enter_context(run_pgbouncer([app_url], pool_size=SERVER_CONNECTIONS))
        env = {
            **database,
            "DATABASE_URL": bouncer.url(app_url),
            "DATABASE_POOLER": "transaction",
            "DATABASE_POOL_SIZE": "5",
            # Workers log each job start (arq's "→ job_id" lines) in plain text.
            "LOG_LEVEL": "INFO",
            "LOG_JSON": "false",
            "PYTHONUNBUFFERED": "1",
        }
        # Workers first: they start while the servers do.
        workers = [stack.enter_context(worker(env, tmp_path / f"worker{i}.log")) for i in (1, 2)]
        # (Generous: on a busy machine, importing the application alone can take a minute.)
        servers = [
            stack.enter_context(serve(env, tmp_path / f"serve{i}.log", timeout=180)) for i in (1, 2)
        ]
        asyncio.run(_drive([server.url for server in servers], receiver))
        for process in workers:
            assert process.poll() is None, "a worker exited"

    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.glob("*.log")}
    # No statement failed on the database side, in any process.
    for name, text in logs.items():
        for failure in ("prepared statement", "asyncpg.exceptions", "sqlalchemy.exc"):
            assert failure not in text, f"{name}:\n{text[-3000:]}"
    # Crons are not doubled: each scheduled run of a cron started in one worker only. (arq also
    # runs the run-at-startup crons once as each worker starts: those are left out.)
    # (Which worker takes a cron run is a race, so one of them may run none; and a worker's
    # start-up runs come after its start-up work, a few seconds on a busy machine.)
    worker_logs = [text for name, text in logs.items() if name.startswith("worker")]
    starts = [_started_at(text) for text in worker_logs]
    runs = [_cron_runs(text) for text in worker_logs]
    after_startups = max(starts) + 10
    scheduled = Counter(
        (cron, round(at)) for worker_runs in runs for at, cron in worker_runs if at > after_startups
    )
    assert len(scheduled) >= 2, scheduled
    assert [run for run, count in scheduled.items() if count > 1] == []


def _plain(log: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", log)


def _started_at(log: str) -> float:
    """When arq says the worker started, as a Unix time."""
    found = re.search(r"^(\S+Z) .*Starting worker for", _plain(log), flags=re.MULTILINE)
    assert found, f"a worker never started:\n{log[-3000:]}"
    return datetime.fromisoformat(found.group(1)).timestamp()


def _cron_runs(log: str) -> list[tuple[float, str]]:
    """(When it was due, as a Unix time; the cron) for each cron a worker's log shows starting:
    arq logs its start with how long after its due time."""
    plain = _plain(log)
    return [
        (datetime.fromisoformat(at).timestamp() - float(late), cron)
        for at, late, cron in re.findall(
            r"^(\S+Z) .*? ([\d.]+)s → (cron:\w+)\(\)", plain, flags=re.MULTILINE
        )
    ]


def _content_id(body: bytes) -> str:
    return str(json.loads(body)["data"]["content_id"])


async def _drive(urls: list[str], receiver: Receiver) -> None:
    """Two agencies at once through both servers, then what each sees and what was sent."""
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        inboxes = [receiver.inbox(), receiver.inbox()]
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
            for url in urls
            for _ in range(2)
        ]
        # Agency i is made through server i and then driven through both servers at once.
        shops = [await new_shop(clients[2 * i], inboxes[i].url) for i in (0, 1)]
        batches = await asyncio.gather(
            *(
                submit_posts(clients[2 * server + side], shops[shop], POSTS_PER_AGENCY // 2)
                for shop in (0, 1)
                for server, side in ((0, shop), (1, shop))
            )
        )
        made = [batches[0] | batches[1], batches[2] | batches[3]]
        assert all(len(posts) == POSTS_PER_AGENCY for posts in made)

        # No row crosses agencies: each sees exactly its own posts, through either server.
        for i, shop in enumerate(shops):
            for client in (clients[0], clients[2]):
                seen = await walk(client, f"/v1/brands/{shop.brand['id']}/content", shop.boss)
                assert {item["id"] for item in seen} == made[i]
                other = shops[1 - i].brand["id"]
                stranger = await client.get(f"/v1/brands/{other}/content", headers=shop.boss)
                assert stranger.status_code == 404, stranger.text

        # Each submission reaches its agency's receiver, once.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(len(inboxes[i].requests) >= POSTS_PER_AGENCY for i in (0, 1)):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # time for a duplicate to show up, were there one
        for i in (0, 1):
            requests = inboxes[i].requests
            delivered = Counter(_content_id(r.body) for r in requests)
            assert delivered == Counter(made[i]), (delivered, made[i])
            assert len({r.headers["webhook-id"] for r in requests}) == len(requests)

        # Stay past a few scheduled cron seconds. The crons run at most 15 s apart in each minute
        # and the first 10 s after the later worker's start are set aside: 30 s here (the
        # workers started before the servers) hold at least two scheduled ticks.
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - started)))
