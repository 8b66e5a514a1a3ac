"""The `passerelle` command: the one place that wires commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from infra.security import generate_key_set_json, generate_signing_key
from infra.settings import load_settings_or_exit

app = typer.Typer(help="Passerelle: API, worker and operations.", no_args_is_help=True)
keys_app = typer.Typer(help="Access-token signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
tokens_app = typer.Typer(
    help="Encryption of the platforms' OAuth tokens at rest.", no_args_is_help=True
)
app.add_typer(tokens_app, name="tokens")
plans_app = typer.Typer(
    help="Agencies' plans, set by the operator (an install without Stripe).",
    no_args_is_help=True,
)
app.add_typer(plans_app, name="plans")
mail_app = typer.Typer(
    help="E-mails captured in development (DEV_MAIL_DIR, written by `make run`'s catcher).",
    no_args_is_help=True,
)
app.add_typer(mail_app, name="mail")

ROOT = Path(__file__).resolve().parents[1]


MetricsPort = Annotated[
    int | None,
    typer.Option(help="Port of the Prometheus endpoint (default: METRICS_PORT; unset: none)"),
]


def _serve_metrics(port: int | None, host: str) -> None:
    """Every process of this program (uvicorn's workers are forked or spawned from here) writes
    its metrics as files in one directory, which the endpoint adds up. prometheus_client reads
    PROMETHEUS_MULTIPROC_DIR once, on import: it is set here, before anything imports it. A
    directory the operator gives is theirs to empty between runs (shared, it lets one endpoint
    export several programs); one made here is fresh."""
    import os
    import tempfile

    if port is None:
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="passerelle-metrics-")
    from infra.metrics import serve_metrics

    serve_metrics(port, host)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    metrics_port: MetricsPort = None,
) -> None:
    """Run the HTTP API."""
    settings = load_settings_or_exit()
    _serve_metrics(metrics_port or settings.metrics_port, settings.metrics_host)
    import uvicorn

    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


@app.command()
def worker(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 0 if a worker reported healthy recently")
    ] = False,
    metrics_port: MetricsPort = None,
) -> None:
    """Run the background worker (every job and cron)."""
    settings = load_settings_or_exit()
    if not check:
        _serve_metrics(metrics_port or settings.metrics_port, settings.metrics_host)
    from arq import run_worker
    from arq.worker import async_check_health

    from infra.queue import redis_settings
    from main.worker import WorkerSettings

    redis = redis_settings(str(settings.redis_url))
    if check:
        raise typer.Exit(asyncio.run(async_check_health(redis)))
    import uvloop

    from infra.logging import configure_logging

    # Before arq starts, so its start-up lines (its functions, its Redis) are logged too.
    configure_logging(settings.log_level, json=settings.log_json)
    # The loop the API's processes run on (uvicorn picks uvloop): arq makes its loop from the
    # policy, and the sync jobs' many small HTTP and database round trips cost less CPU on it.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    run_worker(
        WorkerSettings,  # type: ignore[arg-type]
        redis_settings=redis,
        max_jobs=settings.worker_max_jobs,
        # Also how long a crashed worker's job waits before another worker runs it again.
        job_timeout=settings.social_sync_timeout_seconds,
    )


def alembic_config(owner_url: str) -> object:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", owner_url.replace("%", "%%"))
    return config


@app.command()
def migrate(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations as the owner role (DATABASE_OWNER_URL)."""
    from alembic import command

    settings = load_settings_or_exit()
    command.upgrade(alembic_config(settings.sqlalchemy_owner_url), revision)  # type: ignore[arg-type]
    typer.echo(f"migrated to {revision}")


@app.command("citus-sql")
def citus_sql_command() -> None:
    """Print the SQL that distributes the migrated schema on Citus (the README's runbook)."""
    from sqlalchemy.engine import make_url

    from infra.db import Database
    from infra.distribution import citus_sql, read_schema, undeclared

    settings = load_settings_or_exit()

    async def run() -> list[str]:
        db = Database.from_settings(settings)
        try:
            async with db.engine.connect() as connection:
                schema = await read_schema(connection)
        finally:
            await db.dispose()
        if "alembic_version" not in schema.tables:
            typer.echo("error: this database has no schema yet: run `passerelle migrate`", err=True)
            raise typer.Exit(1)
        missing = undeclared(schema)
        if missing:
            typer.echo(
                f"error: no distribution role declared for {sorted(missing)} "
                "(infra/distribution.py)",
                err=True,
            )
            raise typer.Exit(1)
        # The application's role is the one DATABASE_URL signs in as.
        return citus_sql(schema, app_role=make_url(settings.sqlalchemy_url).username or "")

    for line in asyncio.run(run()):
        typer.echo(line)


@app.command()
def demo() -> None:
    """Load the demo agency (idempotent) and print its logins."""
    from billing.budgets.demo import load_time_demo
    from inbox.demo import load_inbox_demo
    from publishing.demo import load_publishing_demo
    from social.demo import load_social_demo
    from tenants.demo import load_demo
    from workflows.demo import load_content_demo

    settings = load_settings_or_exit()
    logins = asyncio.run(load_demo(settings))
    asyncio.run(load_time_demo(settings))
    asyncio.run(load_content_demo(settings))
    asyncio.run(load_social_demo(settings))
    asyncio.run(load_publishing_demo(settings))
    asyncio.run(load_inbox_demo(settings))
    for role, email, password in logins:
        typer.echo(f"  {role:<8} {email:<40} {password}")


@app.command("create-tenant")
def create_tenant(
    slug: Annotated[str, typer.Option(help="Address of the agency, e.g. agence-nord")],
    name: Annotated[str, typer.Option(help="Display name")],
    owner_email: Annotated[str, typer.Option(help="The owner's e-mail")],
    owner_name: Annotated[str, typer.Option(help="The owner's name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    timezone: str = "America/Montreal",
    locale: str = "fr-CA",
    currency: str = "CAD",
) -> None:
    """Create an agency and its owner."""
    from pydantic import ValidationError

    from tenants.demo import create_tenant as _create
    from tenants.schemas import SignupRequest

    settings = load_settings_or_exit()
    try:
        request = SignupRequest(
            agency_name=name,
            slug=slug,
            timezone=timezone,
            locale=locale,
            currency=currency,
            owner_name=owner_name,
            email=owner_email,
            password=password,
        )
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    tenant_id = asyncio.run(_create(settings, request))
    typer.echo(f"created tenant {slug} ({tenant_id})")


@tokens_app.command("generate-key")
def tokens_generate_key() -> None:
    """Print a new key for TOKEN_ENCRYPTION_KEYS (put it first, then run `tokens rotate`)."""
    from infra.vault import TokenVault

    typer.echo(TokenVault.generate_key())


@tokens_app.command("rotate")
def tokens_rotate() -> None:
    """Re-encrypt every stored platform token under the first TOKEN_ENCRYPTION_KEYS key."""
    from infra.db import Database
    from infra.vault import TokenVault
    from main.tokens import rotate_tokens

    settings = load_settings_or_exit()

    async def run() -> None:
        db = Database.from_settings(settings)
        try:
            done = await rotate_tokens(db, TokenVault.from_secret(settings.token_encryption_keys))
        finally:
            await db.dispose()
        typer.echo(f"re-encrypted {done.tokens} tokens in {done.tenants} agencies")

    asyncio.run(run())


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new key set (the value of JWT_PRIVATE_KEYS)."""
    typer.echo(generate_key_set_json())


@keys_app.command("rotate")
def keys_rotate(
    current: Annotated[str, typer.Argument(help="The current JWT_PRIVATE_KEYS value")],
    keep: Annotated[int, typer.Option(help="How many old keys stay to verify")] = 1,
) -> None:
    """Print a key set whose new first key signs while the old ones still verify."""
    old = json.loads(current)["keys"][:keep]
    typer.echo(json.dumps({"keys": [generate_signing_key(), *old]}, separators=(",", ":")))


@plans_app.command("list")
def plans_list() -> None:
    """Print the plan catalogue (PLANS): id, name and features."""
    settings = load_settings_or_exit()
    for plan_id, plan in settings.plans.items():
        features = ", ".join(sorted(plan.features)) or "-"
        marker = " (DEFAULT_PLAN)" if plan_id == settings.default_plan else ""
        typer.echo(f"{plan_id:<12} {plan.name:<12} features: {features}{marker}")


@plans_app.command("set")
def plans_set(
    slug: Annotated[str, typer.Argument(help="The agency's address, e.g. agence-demo")],
    plan: Annotated[str, typer.Argument(help="A plan of the catalogue (passerelle plans list)")],
) -> None:
    """Put an agency on a plan, without Stripe (recorded in its audit log as the operator's)."""
    from billing.subscription.service import set_plan_by_operator
    from infra.db import Database
    from infra.errors import ProblemError

    settings = load_settings_or_exit()

    async def run() -> None:
        db = Database.from_settings(settings)
        try:
            change = await set_plan_by_operator(db, settings, slug=slug, plan_id=plan)
        finally:
            await db.dispose()
        if change.before == change.after:
            typer.echo(f"{slug} is already on {plan}")
        else:
            typer.echo(f"{slug}: plan {change.before} -> {change.after}")
        if change.billed_by_stripe:
            typer.echo(
                f"warning: {slug} has a Stripe subscription; its next event sets the plan "
                "Stripe bills.",
                err=True,
            )

    try:
        asyncio.run(run())
    except ProblemError as exc:
        typer.echo(f"error: {exc.detail or exc.title}", err=True)
        raise typer.Exit(1) from None


@mail_app.command("list")
def mail_list() -> None:
    """One line per captured e-mail, newest last: id, time, recipient, subject."""
    from infra.devmail import list_mail
    from infra.settings import DevMailSettings

    directory = DevMailSettings().dev_mail_dir
    messages = list_mail(directory)
    if not messages:
        typer.echo(f"no e-mail captured in {directory}", err=True)
    for mail in messages:
        when = mail.received_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{mail.id}  {when}  {mail.to}  {mail.subject}")


@mail_app.command("show")
def mail_show(
    mail_id: Annotated[str, typer.Argument(metavar="ID", help="An id from `passerelle mail list`")],
) -> None:
    """Print one captured e-mail: its headers, then its text."""
    from infra.devmail import find_mail
    from infra.settings import DevMailSettings

    directory = DevMailSettings().dev_mail_dir
    mail = find_mail(directory, mail_id)
    if mail is None:
        typer.echo(
            f"error: no captured e-mail with id {mail_id!r} in {directory} "
            "(see `passerelle mail list`)",
            err=True,
        )
        raise typer.Exit(1)
    for name, value in mail.headers:
        typer.echo(f"{name}: {value}")
    typer.echo("")
    text = mail.text()
    typer.echo(text if text is not None else "(no text part)")
