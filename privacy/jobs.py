"""arq jobs of the data rights."""

from __future__ import annotations

import uuid
from typing import Any

from arq import Retry
from sqlalchemy import text

from billing.subscription.jobs import MAX_TRIES
from billing.subscription.stripe_gateway import describe
from infra import outbox
from infra.clock import utcnow
from infra.logging import get_logger
from infra.outbox import Event
from infra.retry import backoff, final_try
from infra.sweep import due_tenants
from privacy import archive, closure, retention
from privacy.export import EXPORT_JOB, export_job_id
from social.kit import kit_of

log = get_logger(__name__)

# ---------------------------------------------------------------------------------------------
# Exports


async def write_data_export(ctx: dict[str, Any], tenant_id: str, export_id: str) -> str:
    """Write one export (job id per export and attempt). A duplicate, or a job of an export a
    live worker holds, does nothing; a dead worker's export is started over."""
    settings, db = ctx["settings"], ctx["db"]
    attempt = await archive.claim(db, settings, uuid.UUID(tenant_id), uuid.UUID(export_id))
    if attempt is None:
        return "skipped"
    await archive.write(db, settings, ctx["resources"].http, attempt)
    return "written"


_DUE = text("SELECT * FROM exports_due(:due)")


async def sweep_exports(ctx: dict[str, Any]) -> int:
    """arq cron (every minute): restart exports whose worker died (lease passed) or whose job
    was lost, and delete the files of expired ones."""
    queued = 0
    for tenant_id, export_id, kind, attempts in await due_tenants(
        ctx["db"], _DUE, {"due": utcnow()}
    ):
        if kind == "expire":
            try:
                await archive.expire(ctx["db"], ctx["settings"], tenant_id, export_id)
            except Exception:
                log.exception("export.expire_failed", tenant_id=str(tenant_id))
            continue
        # An id of its own per attempt: the dead job's id may still be held by arq.
        job = await ctx["redis"].enqueue_job(
            EXPORT_JOB,
            str(tenant_id),
            str(export_id),
            _job_id=export_job_id(export_id, attempts) + f":r{int(utcnow().timestamp()) // 60}",
        )
        queued += job is not None
    return queued


# ---------------------------------------------------------------------------------------------
# Erasures and closures

CLOSE_JOB = "close_agency"


@outbox.handler(closure.CLOSURE_REQUESTED)
async def start_closure(ctx: dict[str, Any], event: Event) -> None:
    await ctx["redis"].enqueue_job(
        CLOSE_JOB, str(event.tenant_id), _job_id=f"closure:{event.tenant_id}"
    )


async def close_agency(ctx: dict[str, Any], tenant_id: str) -> str:
    """Takes an agency's closure through its remaining steps (idempotent: it resumes). A
    failure (Stripe unreachable...) is recorded on the closure, which owners see, and retried
    with backoff."""
    agency = uuid.UUID(tenant_id)
    try:
        return await closure.run_closure(
            ctx["db"], ctx["settings"], agency, kit_of(ctx["resources"])
        )
    except Exception as exc:
        await closure.record_failure(ctx["db"], agency, describe(exc))
        if final_try(ctx, MAX_TRIES):
            raise
        raise Retry(defer=backoff(ctx)) from exc


async def apply_retention(ctx: dict[str, Any]) -> dict[str, int]:
    """arq cron: deletes what is past its retention."""
    return await retention.apply_retention(ctx["db"], ctx["settings"])
