"""Settings from environment variables and `.env`, validated once at start-up."""

from __future__ import annotations

import ipaddress
import sys
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PostgresDsn,
    RedisDsn,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from infra.plans import DEFAULT_PLAN, DEFAULT_PLANS, Plan
from infra.ssrf import is_loopback

# Each platform's documented ceilings, a little under them. YouTube counts quota units
# (10,000 a day), X counts per user token as well as per app.
DEFAULT_SOCIAL_RATES: dict[str, str] = {
    "facebook_page": "200/60",
    "instagram_business": "200/60",
    "linkedin_organization": "100/60",
    "x": "450/900",
    "x:token": "75/900",
    "youtube": "9000/86400",
    "tiktok": "500/60",
    # TikTok's post init: 6 a minute per user token; a bucket of 3 refilled over a minute
    # never makes more than 6 in any minute.
    "tiktok:init:token": "3/60",
}


class SocialClient(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str
    client_secret: SecretStr


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: str = "development"
    database_url: PostgresDsn
    """The application role (no table ownership, no BYPASSRLS)."""
    database_owner_url: PostgresDsn | None = None
    """The schema owner, used only by migrations."""
    database_pool_size: int = Field(default=10, ge=1, le=200)
    api_concurrency: int | None = Field(default=None, ge=1, le=1000)
    """Requests each API process works on at once; the others wait their turn, in the order
    they came (api/admission.py). Unset: DATABASE_POOL_SIZE, so the line forms before the
    pool rather than in it."""
    database_pooler: Literal["none", "transaction"] = "none"
    """`transaction` when DATABASE_URL goes through a pooler in transaction mode (pgbouncer):
    statements are then unnamed, so no two processes' names collide on a server connection and
    none is left behind on one (see infra/db.py)."""
    redis_url: RedisDsn

    jwt_private_keys: str
    """JSON Web Key Set of ES256 private keys; the first signs, all verify (rotation)."""
    jwt_issuer: str = "passerelle"
    jwt_audience: str = "passerelle-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=300)
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=300)
    approval_link_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)
    """How long an external approver's single-use link stays valid."""
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)

    public_base_url: str = "http://127.0.0.1:8000"
    app_base_url: str = "http://127.0.0.1:5173"
    """The single-page app, where invitation links point."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "Passerelle <no-reply@passerelle.local>"
    smtp_timeout_seconds: float = 10.0
    smtp_tls: Literal["none", "starttls", "implicit"] = "none"
    """How the connection to the relay is protected: `starttls` (usually port 587), `implicit`
    (TLS from the first byte, usually port 465), or `none`, which only a relay on loopback may
    use once a user name is set: a password never crosses a network in clear."""
    smtp_username: str | None = None
    """With a user name, every message is sent after AUTH with SMTP_PASSWORD."""
    smtp_password: SecretStr | None = None
    smtp_ca_file: Path | None = None
    """A PEM bundle trusted instead of the system's authorities (a private relay's CA)."""
    dev_mail_dir: Path = Path(".dev/mail")
    """The Maildir where the development SMTP catcher (`python -m devtools`) keeps what it
    captures; `passerelle mail` and, in development, the `/dev/mail` page read it."""

    # Only failed logins count (a success never does): see infra/ratelimit.py, _ADMIT_CHECK.
    login_rate_limit_per_pair: str = "10/900"
    """Failed logins per window seconds for one e-mail from one client address; then that pair
    waits. A successful login clears its failures."""
    login_rate_limit_per_address: str = "50/900"
    """Failed logins per window seconds from one client address (an IPv6 /64), any e-mail."""
    login_rate_limit_per_email: str = "10/900"
    """Failed logins per window seconds on one e-mail, from anywhere, after which addresses that
    have failed on it wait 1 s, then 2 s, 4 s… between attempts. Addresses that have not failed
    on it are never slowed by it, so nobody can lock an owner out."""
    login_slowdown_max_seconds: int = Field(default=300, ge=1, le=3600)
    """The longest wait the per-e-mail slowdown imposes."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    stripe_api_key: SecretStr | None = None
    """With no key, Stripe routes answer `stripe-not-configured` and client invoices are
    external; everything else works."""
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_timeout_seconds: float = Field(default=20.0, gt=0)
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    """A webhook signed longer ago than this is refused (replay protection)."""
    billing_grace_days: int = Field(default=7, ge=0, le=90)
    """How long a past-due agency keeps writing before it is suspended."""
    seat_sync_delay_seconds: int = Field(default=30, ge=0)
    """Membership changes within this window become one subscription update."""
    job_retry_base_seconds: float = Field(default=5.0, gt=0)
    """First backoff of a job retrying an external call; it doubles each try, up to an hour."""
    token_encryption_keys: SecretStr | None = None
    """Comma-separated Fernet keys for the platforms' OAuth tokens at rest. The first
    encrypts, all decrypt: put a new key first, run `passerelle tokens rotate`, then drop
    the old one. Without it, social accounts cannot be connected."""
    social_clients: dict[str, SocialClient] = Field(default_factory=dict)
    """Per platform, the OAuth app: {"x": {"client_id": "...", "client_secret": "..."}}."""
    social_base_urls: dict[str, str] = Field(default_factory=dict)
    """Per platform, a base URL that replaces the platform's own hosts (tests, proxies)."""
    social_rates: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SOCIAL_RATES))
    """Request budgets, COUNT/SECONDS, per platform and per token ("x:token")."""
    social_sync_interval_minutes: int = Field(default=360, ge=1)
    social_backfill_days: int = Field(default=90, ge=1, le=365)
    social_http_timeout_seconds: float = Field(default=20.0, gt=0)
    social_sync_timeout_seconds: int = Field(default=300, ge=1)
    """A sync job running longer is cancelled; a crashed worker's job is retried after this."""
    social_sync_now_rate: str = "3/600"
    """Manual syncs per account: COUNT/SECONDS."""
    worker_max_jobs: int = Field(default=50, ge=1, le=1000)

    publishing_deadline_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    """Transient failures (429, 5xx, network) retry until the planned time plus this."""
    publishing_lease_seconds: int = Field(default=900, ge=2, le=6 * 3600)
    """How long one publishing attempt may run (a video upload included) before another worker
    takes it for dead. Also the publish job's timeout."""
    publishing_reconcile_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    """How long reconciliation looks for a post whose outcome is unknown before it fails with
    "outcome unknown, check the account before retrying"."""
    publishing_figures_days: int = Field(default=30, ge=1, le=365)
    """How long after publication a post's own figures are read (once a day)."""

    platform_webhook_verify_token: SecretStr | None = None
    """What Meta's webhook subscription echoes as `hub.verify_token` (set the same value in the
    Meta app's webhook settings). Unset: the verification challenge is refused."""
    inbox_reads: bool = True
    """Whether the worker reads (polls) accounts for the inbox. Off: only webhooks bring items
    in (an operator pausing reads during a platform's incident, or a worker that must do
    nothing else)."""
    inbox_poll_minutes: int = Field(default=5, ge=1, le=24 * 60)
    """How often accounts of platforms without push (YouTube, X, TikTok, the sandbox) are read."""
    inbox_webhook_gap_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    """A push account with no webhook for this long gets a catch-up poll."""
    inbox_reconcile_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    """How long reconciliation looks for a reply whose outcome is unknown before it fails."""
    inbox_lease_seconds: int = Field(default=120, ge=2, le=3600)
    """How long one reply or moderation attempt may run before it is presumed dead."""
    inbox_viewer_seconds: int = Field(default=60, ge=5, le=3600)
    """How long a colleague opening an item shows as viewing it."""

    partner_token_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    """Lifetime of a partner access token (client credentials; no refresh token)."""
    partner_secret_overlap_seconds: int = Field(default=86400, ge=0, le=30 * 86400)
    """After a rotation, how long the previous partner secret still works, by default."""
    partner_rate_per_app: str = "600/60"
    """Requests per window seconds, per partner app."""
    partner_rate_per_tenant: str = "1200/60"
    """Requests per window seconds, for all partner apps of one agency together."""
    partner_token_rate: str = "30/60"  # noqa: S105 - a rate, not a secret
    """Failed token requests per window seconds, per client id and client address."""
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    """Seconds to wait before each retry (comma-separated): the default retries for about
    27 hours. A delivery that fails them all disables its endpoint."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """CIDR blocks that webhooks may reach although private, loopback or link-local
    (comma-separated, for example 127.0.0.0/8 in tests). Empty: only public addresses."""
    publishing_media_max_image_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    """Largest image or GIF the worker downloads to publish (Instagram's own limit is 8 MB)."""
    publishing_media_max_video_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    """Largest video or document the worker downloads to publish; it is streamed to disk."""
    publishing_media_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """CIDR blocks that media downloads may reach although private, loopback or link-local
    (comma-separated, for example 127.0.0.0/8 in tests). Empty: only public addresses."""
    export_dir: Path = Path(".dev/exports")
    """Where the worker writes data exports (one ZIP per export, under the agency's id); the
    API serves them from there, so both need the same directory (a shared volume)."""
    export_ttl_days: int = Field(default=7, ge=1, le=90)
    """How long a finished export can be downloaded; then its file is deleted."""
    export_link_ttl_seconds: int = Field(default=300, ge=30, le=86400)
    """How long a signed download link of an export works."""
    export_lease_seconds: int = Field(default=120, ge=2, le=3600)
    """A running export's lease, renewed as it progresses: past it, another worker restarts
    the export (its worker died)."""
    export_max_attempts: int = Field(default=3, ge=1, le=10)
    """How many times an export is started (its worker died, its lease ran out) before it is
    marked failed."""
    retention_raw_events_days: int = Field(default=30, ge=1, le=3650)
    """How long raw platform and Stripe webhook events are kept once processed."""
    retention_webhook_deliveries_days: int = Field(default=90, ge=1, le=3650)
    """How long finished partner webhook deliveries (their log) are kept."""
    retention_inbox_items_days: int = Field(default=730, ge=1, le=3650)
    """How long inbox items (comments and messages from the public) are kept after arrival."""
    invoice_retention_years: int = Field(default=6, ge=1, le=20)
    """How long a closed agency's invoices are archived (Quebec: 6 years)."""
    pseudonym_key: SecretStr | None = None
    """Keys the pseudonyms given to erased people ("Personne 1a2b3c"); unset, one is derived
    from JWT_PRIVATE_KEYS, so set it before rotating those keys or pseudonyms will change."""
    plans: dict[str, Plan] = Field(default_factory=lambda: dict(DEFAULT_PLANS))
    default_plan: str = DEFAULT_PLAN
    log_level: str = "INFO"
    log_json: bool = True
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Port of the Prometheus `/metrics` endpoint of `passerelle serve` and `passerelle worker`
    (each process takes its own with `--metrics-port`). Unset: no metrics endpoint."""
    metrics_host: str = "127.0.0.1"
    """Interface of the metrics endpoint: never the public API's, so scrapers reach it only
    where the operator opens it."""
    otel_exporter_otlp_endpoint: str | None = None
    """OTLP/HTTP collector (`http://collector:4318`); unset: no tracing at all, and no
    instrumentation installed. The exporter also reads the other OTEL_EXPORTER_OTLP_* variables."""
    otel_service_name: str = "passerelle"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("social_rates")
    @classmethod
    def _social_rates(cls, value: dict[str, str]) -> dict[str, str]:
        for rate in value.values():
            parse_rate(rate)
        return value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [float(v) for v in value.split(",") if v.strip()]
        return value

    @field_validator("webhook_allowed_networks", "publishing_media_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value

    @field_validator(
        "login_rate_limit_per_pair",
        "login_rate_limit_per_email",
        "login_rate_limit_per_address",
        "social_sync_now_rate",
        "partner_rate_per_app",
        "partner_rate_per_tenant",
        "partner_token_rate",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @model_validator(mode="after")
    def _default_plan_exists(self) -> Settings:
        if self.default_plan not in self.plans:
            raise ValueError(f"DEFAULT_PLAN {self.default_plan!r} is not in PLANS")
        return self

    @model_validator(mode="after")
    def _smtp_auth_protected(self) -> Settings:
        if self.smtp_username and self.smtp_tls == "none" and not is_loopback(self.smtp_host):
            raise ValueError(
                "SMTP_USERNAME over SMTP_TLS=none sends the password in clear: "
                "use starttls or implicit (only a loopback relay may go without)"
            )
        if self.smtp_username and self.smtp_password is None:
            raise ValueError("SMTP_USERNAME needs SMTP_PASSWORD")
        return self

    @property
    def stripe_configured(self) -> bool:
        return self.stripe_api_key is not None and bool(self.stripe_api_key.get_secret_value())

    @property
    def approval_link_ttl(self) -> timedelta:
        return timedelta(hours=self.approval_link_ttl_hours)

    def plan(self, plan_id: str) -> Plan:
        """A tenant on a plan that left the catalogue keeps the default plan's limits."""
        return self.plans.get(plan_id) or self.plans[self.default_plan]

    @property
    def sqlalchemy_url(self) -> str:
        return _asyncpg_url(str(self.database_url))

    @property
    def sqlalchemy_owner_url(self) -> str:
        if self.database_owner_url is None:
            raise RuntimeError("DATABASE_OWNER_URL is required to run migrations")
        return _asyncpg_url(str(self.database_owner_url))


def _asyncpg_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return f"postgresql+asyncpg://{rest}"
    return url


def parse_rate(value: str) -> tuple[int, int]:
    """'10/900' -> (10 attempts, 900 seconds)."""
    try:
        count, window = value.split("/")
        parsed = int(count), int(window)
    except ValueError as exc:
        raise ValueError("expected COUNT/SECONDS, for example 10/900") from exc
    if parsed[0] < 1 or parsed[1] < 1:
        raise ValueError("COUNT and SECONDS must be positive")
    return parsed


class DevMailSettings(BaseSettings):
    """What `passerelle mail` needs, alone: reading captured e-mails needs no database or keys,
    so it works in any terminal, .dev/env loaded or not."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    dev_mail_dir: Path = Path(".dev/mail")


@lru_cache
def get_settings() -> Settings:
    return Settings()


def load_settings_or_exit() -> Settings:
    """Start-up entry: one clear line naming the bad setting, then exit."""
    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"]).upper()
            print(f"configuration error: {name}: {error['msg']}", file=sys.stderr)
            break
        raise SystemExit(2) from None
