"""A real `passerelle worker` killed with SIGKILL in the middle of publishing, then another one
started: every due publication ends published exactly once (or failed with its reason), and
the platforms never receive a post twice.

The subprocesses run on real time (no clock travel): publications are planned a few seconds
ahead. The simulator answers slowly (`platforms.latency`) so that each step can be caught while
it runs: the media upload before the create call, the create call itself in flight (the
dangerous case: the platform makes the post after the worker is gone), several publications of
two agencies at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from devtools.platforms import PlatformSimulator
from infra.settings import DEFAULT_SOCIAL_RATES
from publishing.models import Publication
from tests.support.factories import World, new_world
from tests.support.publishing import approved_item, platform_account, publication, schedule
from tests.support.worker import start_worker_process, stop_process

LEASE_SECONDS = 10
"""Long enough for one unhurried attempt's media upload, short enough to take over quickly."""
LATENCY = 1.0
"""Seconds each simulator answer takes: the window in which the kill lands."""
CREATE_CALLS = {
    "x": ("POST", "/2/tweets"),
    "linkedin_organization": ("POST", "/rest/posts"),
    "youtube": ("PUT", "/upload/youtube/v3/videos"),
    "tiktok": ("POST", "/v2/post/publish/video/init/"),
}
"""The request that may make the post on each platform."""
FINAL = {"published", "failed"}
BACK = timedelta(minutes=3)


def _start_worker(log: Path) -> subprocess.Popen:
    env = {
        # About its own crash, not the inbox: no reads of every account the shared database
        # holds (the other tests' sandbox accounts), which would take the worker's slots.
        "INBOX_READS": "false",
        "PUBLISHING_LEASE_SECONDS": str(LEASE_SECONDS),
        # A create call cut before it reached the platform is never found: it fails after this.
        "PUBLISHING_RECONCILE_MINUTES": "1",
        "WORKER_MAX_JOBS": "10",
        # Other tests of the session spend the app's budgets (YouTube's is 5 uploads a day).
        "SOCIAL_RATES": json.dumps(
            {**DEFAULT_SOCIAL_RATES, "youtube": "1000000/86400", "x": "100000/900"}
        ),
    }
    return start_worker_process(log, env)


@dataclass
class Target:
    world: World
    platform: str
    account_id: str
    external_id: str
    item: str
    text: str


def _media(media_server, platform: str) -> list[dict]:
    if platform == "x":
        # An image: X's prepare uploads it (initialize, append, finalize, metadata) before
        # the create call, the step a kill may cut.
        return [
            {
                "url": f"{media_server.url}/image.png?w=800&h=600",
                "type": "image",
                "alt_text": "A loaf of bread",
            }
        ]
    if platform in ("youtube", "tiktok"):
        return [
            {
                "url": f"{media_server.url}/video.mp4?w=1080&h=1920&seconds=8&bytes=150000",
                "type": "video",
            }
        ]
    return []


async def _targets(
    client, db, resources, platforms, media_server, worlds: list[World], platform_names
) -> list[Target]:
    out = []
    for n, world in enumerate(worlds):
        for platform in platform_names:
            account_id, external_id = await platform_account(
                db, resources, platforms, world, platform
            )
            text = f"Fournée {n}-{platform} {uuid.uuid4().hex[:8]}"
            variant = {
                "x": "x",
                "linkedin_organization": "linkedin",
                "youtube": "youtube",
                "tiktok": "tiktok",
            }[platform]
            item = await approved_item(
                client,
                world,
                [account_id],
                variants={variant: text},
                media=_media(media_server, platform),
                title=f"Pain {n}",
            )
            out.append(Target(world, platform, account_id, external_id, item, text))
    return out


def _creates(platforms: PlatformSimulator) -> list[tuple[str, float]]:
    """(platform, time) of every create call the simulator received."""
    return [
        (r.platform, r.time)
        for r in list(platforms.requests)
        if CREATE_CALLS.get(r.platform) == (r.method, r.path)
    ]


def _posts(platforms: PlatformSimulator, target: Target) -> list:
    return platforms.posts_of(target.platform, target.external_id)


async def _rows(db, targets: list[Target]) -> dict[str, Publication]:
    rows: dict[str, Publication] = {}
    for t in targets:
        async with db.tenant_transaction(t.world.tenant_id) as session:
            found = (
                await session.scalars(
                    select(Publication).where(
                        Publication.tenant_id == t.world.tenant_id,
                        Publication.content_item_id == uuid.UUID(t.item),
                    )
                )
            ).one()
            rows[t.item] = found
    return rows


# --- when to kill ----------------------------------------------------------------------------


Moment = Callable[[PlatformSimulator, list[Target], dict[str, Publication]], bool]


def before_create(platforms, targets, rows) -> bool:
    """X's media upload has begun, and no create call has been sent."""
    uploading = platforms.count("x", "/2/media/upload") > 0
    return uploading and not _creates(platforms)


def create_in_flight(platforms, targets, rows) -> bool:
    """The create call was sent and the simulator has not answered it yet (no post made, the
    publication not settled): the worker dies before it can commit the answer."""
    [target] = targets
    sent = _creates(platforms)
    return bool(sent) and not _posts(platforms, target) and rows[target.item].status != "published"


def many_in_flight(platforms, targets, rows) -> bool:
    """At least one create call unanswered while other publications are still preparing."""
    made = sum(len(_posts(platforms, t)) for t in targets)
    unsettled = sum(1 for r in rows.values() if r.status not in FINAL)
    return len(_creates(platforms)) > made and unsettled >= 3


@dataclass(frozen=True)
class Case:
    name: str
    agencies: int
    platforms: tuple[str, ...]
    kill_when: Moment


CASES = [
    Case("before the create call (media upload running)", 1, ("x",), before_create),
    Case("after the create call was sent, before its answer", 1, ("x",), create_in_flight),
    Case(
        "several publications of two agencies in flight",
        2,
        ("x", "linkedin_organization", "youtube"),
        many_in_flight,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.kill_when.__name__ for c in CASES])
async def test_a_worker_killed_mid_publication_never_posts_twice(
    case: Case, client, db, resources, settings, platforms, media_server, clock, tmp_path
):
    # A post is scheduled at least a minute ahead: the API's clock is set back while the
    # agencies plan, as if they had planned a few minutes ago, for a time seconds from now.
    clock.set(datetime.now(UTC) - BACK)
    worlds = [await new_world(client) for _ in range(case.agencies)]
    targets = await _targets(client, db, resources, platforms, media_server, worlds, case.platforms)
    for t in targets:
        # Scheduling checks the media (downloads them): slow on a loaded machine.
        await schedule(client, t.world, t.item, datetime.now(UTC) + BACK + timedelta(seconds=5))
    clock.stop()  # the workers run on real time, and so does every check below
    platforms.latency = LATENCY

    log = tmp_path / "worker.log"
    workers: list[subprocess.Popen] = []
    try:
        workers.append(_start_worker(log))
        # A loaded machine may take tens of seconds to start a worker.
        async with asyncio.timeout(120):
            while True:
                assert workers[0].poll() is None, log.read_text()[-3000:]
                rows = await _rows(db, targets)
                if case.kill_when(platforms, targets, rows):
                    break
                await asyncio.sleep(0.02)
        killed_at = time.time()
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        rows = await _rows(db, targets)
        cut = {t.item for t in targets if rows[t.item].status not in FINAL}
        assert cut, "the kill landed after every publication was settled"

        # The dead attempts' leases pass; the next worker's start-up sweep takes them over.
        async with asyncio.timeout(30):
            while True:
                rows = await _rows(db, targets)
                now = datetime.now(UTC)
                if all(r.claimed_until is None or r.claimed_until <= now for r in rows.values()):
                    break
                await asyncio.sleep(0.2)
        workers.append(_start_worker(log))
        try:
            async with asyncio.timeout(240):
                while True:
                    assert workers[1].poll() is None, log.read_text()[-3000:]
                    rows = await _rows(db, targets)
                    if all(r.status in FINAL for r in rows.values()):
                        break
                    await asyncio.sleep(0.3)
        except TimeoutError:
            stuck = {t.platform: (rows[t.item].status, rows[t.item].claimed_until) for t in targets}
            raise AssertionError(f"still unsettled: {stuck}\n{log.read_text()[-6000:]}") from None
    finally:
        for worker in workers:
            stop_process(worker)

    # What the people of each agency see, and what each platform holds.
    assert platforms.duplicates() == []
    for t in targets:
        done = await publication(client, t.world, t.item)
        posts = _posts(platforms, t)
        assert len(posts) <= 1, (t.platform, posts)
        if done["status"] == "published":
            [post] = posts
            assert (post.text, post.post_id) == (t.text, done["external_post_id"])
            assert done["error"] is None
        else:
            # Only a create call whose answer never came may fail: not found on the account.
            assert (done["status"], done["error_code"]) == ("failed", "outcome_unknown"), done
            assert posts == [] and "check the account" in done["error"], done
        if t.item in cut:
            # The killed attempt is on record: a new one went on with it, or reconciliation
            # settled it; nothing shows as still running.
            outcomes = [a["outcome"] for a in done["attempts"]]
            assert outcomes[0] in ("crashed", "published"), done
            assert None not in outcomes, done

    if case.kill_when is before_create:
        [t] = targets
        done = await publication(client, t.world, t.item)
        assert done["status"] == "published", done
        # The dead attempt never reached the create call, so the next one posted.
        assert [(a["outcome"], a["create_started_at"] is None) for a in done["attempts"]] == [
            ("crashed", True),
            ("published", False),
        ]
    if case.kill_when is create_in_flight:
        [t] = targets
        done = await publication(client, t.world, t.item)
        # The platform made the post after the worker died; the next worker did not send it
        # again but found it on the account.
        [post] = _posts(platforms, t)
        assert post.created_at > killed_at
        assert done["status"] == "published", done
        assert [a["outcome"] for a in done["attempts"]] == ["crashed"]
        assert len(_creates(platforms)) == 1
