"""A reply reaches the person exactly once, whatever happens to the worker sending it.

A real `passerelle worker` is killed with SIGKILL while the reply call is in flight, then
another one started: the reply exists once on the platform (the simulator), and the action
ends `sent`, found by reconciliation rather than sent again. Without a kill, a reply whose
answer never came is `unconfirmed` until reconciliation finds it. A hide is not a new object:
one that timed out is simply asked again, and the comment ends hidden.

The killed-worker cases run on real time (subprocesses cannot share the test's clock); the
others use the clock fixture and a literal date.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.platforms import PlatformSimulator
from devtools.platforms.core import CommunityItem
from inbox.models import InboxAction
from tests.support.factories import World, new_world, walk
from tests.support.publishing import platform_account
from tests.support.worker import run_due_jobs, run_worker, start_worker_process, stop_process

FB = "facebook_page"
LEASE_SECONDS = 4
"""Long enough for one reply call, short enough for the next worker to take over quickly."""
LATENCY = 2.0
"""Seconds each simulator answer takes while a kill is wanted: the window it lands in."""
FINAL = {"sent", "failed"}
MONDAY = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
"""10:00 in Montréal, for the cases that run on the test's clock."""


@dataclass
class Comment:
    world: World
    account_id: str
    external_id: str
    """The page's id on the platform."""
    comment: str
    """The comment's id on the platform."""
    item: dict[str, Any]
    """The inbox item, as the API shows it."""


async def _comment(client, db, resources, settings, platforms: PlatformSimulator) -> Comment:
    """A visitor's comment on a page, pushed by the platform and made an item by the worker."""
    world = await new_world(client)
    account_id, external_id = await platform_account(db, resources, platforms, world, FB)
    comment = platforms.add_community_item(
        FB,
        external_id,
        "comment",
        f"Ma commande {uuid.uuid4().hex[:6]} n'est jamais arrivée",
        author_id="24001",
        author_name="Marie Tremblay",
        push=False,
    )
    body, headers = platforms.webhook_payload(FB, [comment])
    response = await client.post(f"/v1/platform-webhooks/{FB}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    # The receiver's drain may be asked for the end of this second.
    await run_worker(settings, soon=2.5)
    [item] = await walk(client, "/v1/inbox", world.boss)
    assert item["external_id"] == comment
    return Comment(world, account_id, external_id, comment, item)


async def _ask(client, c: Comment, path: str, body: dict[str, Any]) -> dict[str, Any]:
    current = await client.get(f"/v1/inbox/{c.item['id']}", headers=c.world.boss)
    response = await client.post(
        f"/v1/inbox/{c.item['id']}/{path}",
        json=body,
        headers={**c.world.boss, "If-Match": current.headers["ETag"]},
    )
    assert response.status_code == 202, response.text
    return dict(response.json()["action"])


async def _detail(client, c: Comment) -> dict[str, Any]:
    response = await client.get(f"/v1/inbox/{c.item['id']}", headers=c.world.boss)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _row(db, c: Comment, action_id: str) -> InboxAction:
    async with db.tenant_transaction(c.world.tenant_id) as session:
        row: InboxAction | None = await session.get(
            InboxAction, (c.world.tenant_id, uuid.UUID(action_id))
        )
        assert row is not None
        return row


def _reply_calls(platforms: PlatformSimulator, c: Comment) -> int:
    """How many times the platform was asked to make a reply under the comment."""
    return sum(
        1
        for r in list(platforms.requests)
        if r.platform == FB and r.method == "POST" and r.path.endswith(f"/{c.comment}/comments")
    )


def _ours(platforms: PlatformSimulator, c: Comment, text: str) -> list[CommunityItem]:
    return [r for r in platforms.replies_of(FB, c.external_id) if r.text == text]


# --- a real worker killed mid-call ------------------------------------------------------------


def _start_worker(log: Path) -> subprocess.Popen[bytes]:
    env = {
        # About its own crash, not the inbox: no reads of every account the shared database
        # holds (the other tests' sandbox accounts), which would take the worker's slots.
        "INBOX_READS": "false",
        "INBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "WORKER_MAX_JOBS": "10",
    }
    return start_worker_process(log, env)


Moment = Callable[[PlatformSimulator, Comment, str], bool]


def call_in_flight(platforms: PlatformSimulator, c: Comment, text: str) -> bool:
    """The reply call reached the platform, which has not made the reply yet: it will, after
    the worker is gone."""
    return _reply_calls(platforms, c) == 1 and not _ours(platforms, c, text)


def answer_lost(platforms: PlatformSimulator, c: Comment, text: str) -> bool:
    """The platform made the reply and holds its answer back (fault reply_timeout)."""
    return len(_ours(platforms, c, text)) == 1


@dataclass(frozen=True)
class Case:
    kill_when: Moment
    arrange: Callable[[PlatformSimulator], None]


def _slow(platforms: PlatformSimulator) -> None:
    platforms.latency = LATENCY


def _lose_answer(platforms: PlatformSimulator) -> None:
    platforms.fault(FB, "reply_timeout")


CASES = [Case(call_in_flight, _slow), Case(answer_lost, _lose_answer)]


@pytest.mark.parametrize("case", CASES, ids=[c.kill_when.__name__ for c in CASES])
async def test_a_worker_killed_while_replying_never_replies_twice(
    case: Case, client, db, resources, settings, platforms, tmp_path
):
    c = await _comment(client, db, resources, settings, platforms)
    text = f"Désolés! On s'en occupe: écrivez-nous en privé. ({uuid.uuid4().hex[:6]})"
    case.arrange(platforms)
    action = await _ask(client, c, "reply", {"text": text})
    assert action["status"] == "queued"

    log = tmp_path / "worker.log"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        workers.append(_start_worker(log))
        # A loaded machine may take tens of seconds to start a worker.
        async with asyncio.timeout(120):
            while not case.kill_when(platforms, c, text):
                assert workers[0].poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.02)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        made_before_the_kill = bool(_ours(platforms, c, text))
        platforms.latency = 0.0
        cut = await _row(db, c, action["id"])
        assert (cut.status, cut.create_started_at is not None) == ("sending", True)

        # The dead attempt's lease passes; the next worker's start-up sweep takes it over.
        async with asyncio.timeout(30):
            while True:
                lease = (await _row(db, c, action["id"])).claimed_until
                if lease is None or lease <= datetime.now(UTC):
                    break
                await asyncio.sleep(0.2)
        workers.append(_start_worker(log))
        async with asyncio.timeout(180):
            while (await _row(db, c, action["id"])).status not in FINAL:
                assert workers[1].poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.3)
    finally:
        for worker in workers:
            stop_process(worker)

    # The person got one answer; the platform was asked once; the agent sees it sent.
    [reply] = _ours(platforms, c, text)
    assert platforms.duplicate_replies() == []
    assert _reply_calls(platforms, c) == 1
    if case.kill_when is call_in_flight:
        # The platform made it after the worker had died (the call was still waiting).
        assert not made_before_the_kill
    detail = await _detail(client, c)
    [done] = detail["actions"]
    assert (done["status"], done["external_id"], done["error"]) == ("sent", reply.id, None)
    assert detail["first_response_at"] is not None
    row = await _row(db, c, action["id"])
    # Settled by reading the platform (reconciliation), never by a second call.
    assert row.attempts == 1 and row.unconfirmed_at is not None and row.checks == 0


# --- on the test's clock ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["reply_timeout", "reply_500_after_create"])
async def test_a_reply_whose_answer_never_came_is_found_not_sent_again(
    fault, client, db, resources, settings, platforms, clock
):
    clock.set(MONDAY)
    c = await _comment(client, db, resources, settings, platforms)
    text = "Nous sommes désolés, votre commande part aujourd'hui."
    # The reply is made; then its answer times out (SOCIAL_HTTP_TIMEOUT_SECONDS) or is a 500.
    platforms.fault(FB, fault)
    action = await _ask(client, c, "reply", {"text": text})
    await run_due_jobs(settings)

    waiting = await _detail(client, c)
    [unsure] = waiting["actions"]
    assert (unsure["status"], unsure["error_code"]) == ("unconfirmed", "unconfirmed")
    assert unsure["external_id"] is None
    assert len(_ours(platforms, c, text)) == 1  # it was made all the same

    # Reconciliation's first look comes 20 s later.
    clock.advance(timedelta(seconds=25))
    await run_due_jobs(settings)
    detail = await _detail(client, c)
    [done] = detail["actions"]
    [reply] = _ours(platforms, c, text)
    assert (done["id"], done["status"], done["external_id"]) == (action["id"], "sent", reply.id)
    assert detail["first_response_at"] is not None
    assert _reply_calls(platforms, c) == 1
    assert platforms.duplicate_replies() == []


async def test_a_hide_that_timed_out_is_asked_again_and_the_comment_ends_hidden(
    client, db, resources, settings, platforms, clock
):
    clock.set(MONDAY)
    c = await _comment(client, db, resources, settings, platforms)
    # Slower than the connector waits: the first call times out (the platform hides the
    # comment all the same, once its answer is late).
    platforms.latency = settings.social_http_timeout_seconds + 1
    action = await _ask(client, c, "hide", {"hidden": True})
    await run_due_jobs(settings)
    platforms.latency = 0.0

    retrying = await _detail(client, c)
    [first] = retrying["actions"]
    assert (first["status"], first["error_code"]) == ("queued", "retrying")
    assert retrying["moderation"] == "visible"

    clock.advance(timedelta(seconds=20))  # past the first backoff (15 s)
    await run_due_jobs(settings)
    detail = await _detail(client, c)
    [done] = detail["actions"]
    assert (done["id"], done["status"], done["error"]) == (action["id"], "sent", None)
    assert detail["moderation"] == "hidden"
    assert platforms.community_item(FB, c.comment).hidden is True
    asked = [
        r
        for r in list(platforms.requests)
        if r.platform == FB and r.method == "POST" and r.path.endswith(f"/{c.comment}")
    ]
    assert len(asked) == 2
    assert (await _row(db, c, action["id"])).attempts == 2


async def test_a_private_answer_to_a_comment_goes_once_and_meta_refuses_a_second(
    client, db, resources, settings, platforms, clock
):
    clock.set(MONDAY)
    c = await _comment(client, db, resources, settings, platforms)
    private = await _ask(client, c, "reply", {"text": "En privé: votre adresse?", "private": True})
    await run_due_jobs(settings)
    again = await _ask(client, c, "reply", {"text": "En privé, encore?", "private": True})
    assert private["kind"] == again["kind"] == "private_reply"
    await run_due_jobs(settings)

    detail = await _detail(client, c)
    by_text = {a["text"]: a for a in detail["actions"]}
    assert by_text["En privé: votre adresse?"]["status"] == "sent"
    refused = by_text["En privé, encore?"]
    assert refused["status"] == "failed" and refused["error"], refused
    messages = [r for r in platforms.replies_of(FB, c.external_id) if r.private]
    assert [(m.text, m.recipient) for m in messages] == [("En privé: votre adresse?", "24001")]
    assert platforms.duplicate_replies() == []
