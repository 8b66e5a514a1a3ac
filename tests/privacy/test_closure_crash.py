"""A real `passerelle worker` killed with SIGKILL while the closure waits on Stripe, then
another one started: the closure resumes at its recorded step and ends with every tenant row
gone, the invoices archived once and the subscription canceled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from sqlalchemy import text

from privacy.models import RETAINED_AFTER_CLOSURE
from tests.billing.test_billing_subscriptions import subscribe
from tests.privacy.test_closure import counts, seed
from tests.support.factories import new_world
from tests.support.worker import start_worker_process, stop_process

JOB_TIMEOUT = 20
"""The worker's job timeout: a killed worker's job runs again this (plus 10 s) later."""


def _start_worker(log: Path) -> subprocess.Popen:
    env = {
        "INBOX_READS": "false",
        "SOCIAL_SYNC_TIMEOUT_SECONDS": str(JOB_TIMEOUT),
    }
    return start_worker_process(log, env)


async def step_of(db, tenant_id) -> str | None:
    async with db.tenant_transaction(tenant_id) as session:
        return await session.scalar(text("SELECT step FROM agency_closures"))


async def test_a_worker_killed_mid_closure_resumes_it(
    client, db, settings, stripe_server, tmp_path
):
    world = await new_world(client)
    tenant_id = world.agency.tenant_id
    await seed(db, world)
    sub = await subscribe(client, settings, stripe_server, world.agency)
    asked = await client.post(
        "/v1/agency/closure", json={"confirm": world.agency.slug}, headers=world.boss
    )
    assert asked.status_code == 202, asked.text
    # Stripe answers slowly: the kill lands while the closure waits on it.
    # Within STRIPE_TIMEOUT_SECONDS (2 s in the tests), so the retry's own calls succeed.
    stripe_server.delay_next(1, seconds=1.5)

    log = tmp_path / "worker.log"
    workers: list[subprocess.Popen] = []
    try:
        workers.append(_start_worker(log))
        async with asyncio.timeout(120):
            while await step_of(db, tenant_id) != "tokens_revoked":
                assert workers[0].poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.05)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        assert await step_of(db, tenant_id) == "tokens_revoked"

        workers.append(_start_worker(log))
        async with asyncio.timeout(180):
            while await step_of(db, tenant_id) != "closed":
                assert workers[1].poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.3)
    finally:
        for worker in workers:
            stop_process(worker)

    after = await counts(db, tenant_id)
    assert {n: c for n, c in after.items() if c and n not in RETAINED_AFTER_CLOSURE} == {}
    assert after["invoice_archives"] == 1
    assert stripe_server.subscription(sub["id"])["status"] == "canceled"
