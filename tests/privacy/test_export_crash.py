"""A real `passerelle worker` killed with SIGKILL in the middle of an export, then another one
started: the export is started over from scratch and ends done, with a complete ZIP whose
manifest matches its files; the dead attempt's part file is gone.

The media host answers slowly (`delay=`), so the kill lands while the worker downloads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from privacy.export import file_path
from privacy.models import DataExport
from tests.support.factories import new_world
from tests.support.publishing import approved_item, platform_account
from tests.support.worker import start_worker_process, stop_process

LEASE_SECONDS = 3


def _start_worker(log: Path) -> subprocess.Popen:
    env = {
        "INBOX_READS": "false",
        "EXPORT_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    return start_worker_process(log, env)


async def _row(db, tenant_id: uuid.UUID, export_id: uuid.UUID) -> DataExport:
    async with db.tenant_transaction(tenant_id) as session:
        return (await session.scalars(select(DataExport).where(DataExport.id == export_id))).one()


async def test_a_worker_killed_mid_export_leaves_it_to_the_next_one(
    client, db, resources, settings, platforms, media_server, tmp_path
):
    world = await new_world(client)
    account, _ = await platform_account(db, resources, platforms, world, "x")
    media = [
        {"type": "image", "url": f"{media_server.url}/image.png?w=64&h=64&n={n}&delay=1.5"}
        for n in range(4)
    ]
    await approved_item(client, world, [account], media=media)
    response = await client.post("/v1/exports", json={}, headers=world.boss)
    assert response.status_code == 202, response.text
    export_id = uuid.UUID(response.json()["id"])
    final = file_path(settings, world.tenant_id, export_id)
    part = final.with_suffix(".zip.part")
    asked = len(media_server.requests)

    log = tmp_path / "worker.log"
    workers: list[subprocess.Popen] = []
    try:
        workers.append(_start_worker(log))
        # A loaded machine may take tens of seconds to start a worker.
        async with asyncio.timeout(120):
            while not any("delay=" in r.path for r in media_server.requests[asked:]):
                assert workers[0].poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.05)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        cut = await _row(db, world.tenant_id, export_id)
        assert cut.status == "running" and cut.attempts == 1
        assert cut.kinds_done < cut.kinds_total and cut.rows_written > 0
        assert part.exists() and not final.exists()

        async with asyncio.timeout(30):
            while True:
                lease = (await _row(db, world.tenant_id, export_id)).claimed_until
                if lease is None or lease <= datetime.now(UTC):
                    break
                await asyncio.sleep(0.2)
        workers.append(_start_worker(log))
        async with asyncio.timeout(240):
            while (row := await _row(db, world.tenant_id, export_id)).status != "done":
                assert workers[1].poll() is None, log.read_text()[-3000:]
                assert row.status in ("running", "queued"), row
                await asyncio.sleep(0.3)
    finally:
        for worker in workers:
            stop_process(worker)

    assert row.attempts == 2 and row.error is None
    assert (row.kinds_done, row.media_files) == (row.kinds_total, 4)
    assert final.exists() and not part.exists()
    assert hashlib.sha256(final.read_bytes()).hexdigest() == row.sha256
    with zipfile.ZipFile(final) as archive:
        assert archive.testzip() is None
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest == row.manifest
        for entry in manifest["files"]:
            if entry["kind"] == "media":
                assert entry["rows"] == 4
                for media_file in entry["files"]:
                    data = archive.read(media_file["name"])
                    assert hashlib.sha256(data).hexdigest() == media_file["sha256"]
                continue
            data = archive.read(entry["name"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            assert len(data.splitlines()) == entry["rows"]
    print(json.dumps(manifest, indent=2))
