"""The one place that gathers every job and cron into arq's WorkerSettings."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

from arq import cron
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function, func

from billing.budgets import jobs as budget_jobs
from billing.invoices import jobs as invoice_jobs
from billing.subscription import jobs as subscription_jobs
from inbox import jobs as inbox_jobs
from infra import metrics, outbox, tracing
from infra.logging import configure_logging
from infra.memory import settle_heap
from infra.queue import deserialize, serialize
from infra.resources import Resources
from infra.settings import get_settings
from partners import jobs as partner_jobs
from privacy import jobs as privacy_jobs
from publishing import jobs as publishing_jobs
from social import jobs as social_jobs
from social.kit import close_worker_kit, open_worker_kit
from tenants import jobs as tenant_jobs
from workflows import jobs as workflow_jobs

# Imported for their outbox handler registrations.
DOMAIN_JOB_MODULES = (
    tenant_jobs,
    budget_jobs,
    invoice_jobs,
    subscription_jobs,
    workflow_jobs,
    social_jobs,
    publishing_jobs,
    inbox_jobs,
    partner_jobs,
    privacy_jobs,
)


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    tracing.configure_tracing(settings)
    resources = await Resources.open(settings)
    open_worker_kit(resources)
    settle_heap()
    ctx.update(
        resources=resources,
        settings=settings,
        db=resources.db,
        signer=resources.signer,
        webhook_http=partner_jobs.webhook_client(settings),
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["webhook_http"].aclose()
    await close_worker_kit(ctx["resources"])
    await ctx["resources"].close()
    metrics.process_ended()


def observed(name: str, coroutine: WorkerCoroutine) -> WorkerCoroutine:
    """A job counted (running, outcome, duration) and, when tracing, run in a span that
    continues the trace of whatever queued it."""

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        traceparent = kwargs.pop(tracing.JOB_KWARG, None)
        with tracing.job_span(name, traceparent, ctx.get("job_id")), metrics.JobRun(name):
            return await coroutine(ctx, *args, **kwargs)

    return run


def _observe_function(entry: Any) -> Function:
    function = entry if isinstance(entry, Function) else func(entry)
    return dataclasses.replace(function, coroutine=observed(function.name, function.coroutine))


def _observe_cron(job: CronJob) -> CronJob:
    return dataclasses.replace(job, coroutine=observed(job.name, job.coroutine))


class WorkerSettings:
    """`redis_settings` is given at start (see main.cli), from REDIS_URL."""

    functions: ClassVar[list[Any]] = [
        outbox.deliver_outbox,
        subscription_jobs.process_stripe_event,
        subscription_jobs.sync_seats,
        invoice_jobs.push_invoice,
        invoice_jobs.void_stripe_invoice,
        # No result kept: a sync that died (timeout, crash) frees its job id, so the next
        # minute's scheduler queues the still-due account again.
        func(social_jobs.sync_social_account, max_tries=social_jobs.MAX_TRIES, keep_result=0),
        # Retries are scheduled by the job itself (the delivery's own backoff), not by arq.
        func(partner_jobs.deliver_webhook, max_tries=1),
        # No result kept: the publication's row says what is left to do, so a finished job
        # must not hold its id. No timeout of its own: arq keeps every job's in-progress mark
        # for the longest function timeout, and a long one would hold a killed worker's syncs
        # that long. An attempt cut at the worker's job timeout is taken over after its lease.
        func(publishing_jobs.publish_publication, keep_result=0),
        func(publishing_jobs.reconcile_publication, keep_result=0),
        func(publishing_jobs.read_post_figures, keep_result=0),
        # Like publishing's: the action's row says what is left; no timeout of its own.
        func(inbox_jobs.send_inbox_action, keep_result=0),
        func(inbox_jobs.reconcile_inbox_action, keep_result=0),
        func(inbox_jobs.process_platform_event, keep_result=0),
        func(inbox_jobs.drain_platform_events, keep_result=0),
        func(inbox_jobs.poll_inbox_account, keep_result=0),
        # One try: the export's row and its lease say what is left; the sweep restarts it.
        func(privacy_jobs.write_data_export, keep_result=0, max_tries=1),
        # No result kept: the closure's row says which step is next, and a rerun resumes there.
        func(privacy_jobs.close_agency, keep_result=0),
    ]
    cron_jobs: ClassVar[list[Any]] = [  # observed below, like the functions
        cron(outbox.sweep_outbox, second=0, run_at_startup=True, unique=True),
        cron(
            budget_jobs.stop_forgotten_timers,
            minute=set(range(0, 60, 5)),
            second=30,
            unique=True,
        ),
        cron(workflow_jobs.approval_timeouts, second=15, unique=True),
        cron(subscription_jobs.sweep_stripe_events, second=45, unique=True),
        # Hourly, so every timezone's 1st is seen; a client's month has one invoice anyway.
        cron(invoice_jobs.build_monthly_invoices, minute=7, second=0, unique=True),
        cron(social_jobs.schedule_social_syncs, second=5, run_at_startup=True, unique=True),
        cron(partner_jobs.sweep_webhooks, second=20, unique=True),
        cron(publishing_jobs.sweep_publications, second=50, run_at_startup=True, unique=True),
        cron(inbox_jobs.sweep_inbox, second=40, run_at_startup=True, unique=True),
        cron(inbox_jobs.schedule_inbox_reads, second=35, run_at_startup=True, unique=True),
        cron(privacy_jobs.sweep_exports, second=55, run_at_startup=True, unique=True),
        # Daily, at night in the Americas; a missed day only leaves rows a day longer.
        cron(privacy_jobs.apply_retention, hour=8, minute=17, second=0, unique=True),
        cron(inbox_jobs.scan_crises, minute=set(range(0, 60, 5)), second=25, unique=True),
    ]
    on_startup = startup
    on_shutdown = shutdown
    job_serializer = serialize
    job_deserializer = deserialize
    max_tries = subscription_jobs.MAX_TRIES
    health_check_interval = 30


WorkerSettings.functions = [_observe_function(f) for f in WorkerSettings.functions]
WorkerSettings.cron_jobs = [_observe_cron(c) for c in WorkerSettings.cron_jobs]
