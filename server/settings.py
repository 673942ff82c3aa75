"""The one settings object. Built once (from the environment, prefix ``UNIVERSE_MCP_``) and passed down.

Every field has a description and a safe default; docs/CONFIGURATION.md is generated from this class
(``universe-mcp config docs``) and a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "TOOLSET_NAMES"]

TOOLSET_NAMES = ("universes", "assets", "jobs", "health", "dashboard")


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("universe-mcp")


class Settings(BaseSettings):
    """Configuration of a Universe MCP process (server, worker or scheduler)."""

    model_config = SettingsConfigDict(env_prefix="UNIVERSE_MCP_", extra="ignore", validate_default=True)

    # --- where things live -------------------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the embedded SQLite store and provider caches.",
    )
    database_admin_url: SecretStr | None = Field(
        None,
        description="URL of the role that owns the tables (runs migrations, workers and the scheduler). "
        "Unset: database_url. On PostgreSQL the server's own role should not own the tables, so that row-level "
        "security applies to it.",
    )
    database_app_role: str | None = Field(
        None, description="PostgreSQL role the server connects as; migrations grant it table access."
    )
    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy async URL of the store (e.g. postgresql+asyncpg://user@host/db). "
        "Unset: an SQLite file `universe.db` in the data directory.",
    )
    redis_url: SecretStr | None = Field(
        None,
        description="Redis URL for the shared cache, rate limits and job counters (e.g. redis://127.0.0.1:6379/0). "
        "Unset: in-process cache and limits (embedded mode).",
    )

    # --- serving -------------------------------------------------------------------------------------------------
    transport: Literal["http", "stdio"] = Field("http", description="Transport used by `universe-mcp serve`.")
    host: str = Field("127.0.0.1", description="Address the HTTP transport binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the HTTP transport binds to.")
    auth: Literal["none", "token", "jwt"] = Field(
        "none",
        description="How HTTP callers are identified: `none` (single local user, loopback only), "
        "`token` (bearer tokens issued by `universe-mcp token create`) or `jwt` (an identity provider).",
    )
    public_url: str | None = Field(
        None,
        description="The MCP URL clients use (e.g. https://universe.example.com/mcp); names this resource "
        "in OAuth protected-resource metadata. Default: http://HOST:PORT/mcp.",
    )
    jwt_issuer: str | None = Field(None, description="With auth=jwt: the identity provider's issuer (iss).")
    jwt_audience: str | None = Field(None, description="With auth=jwt: the audience (aud) tokens must carry.")
    jwt_jwks_url: str | None = Field(None, description="With auth=jwt: where the provider publishes its signing keys.")
    token_cache_s: float = Field(
        5.0, ge=0, le=300, description="How long a token verification is reused; bounds how fast revocation applies."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host headers accepted over HTTP besides loopback ones (e.g. "
        "universe.example.com,universe.example.com:443); DNS-rebinding protection rejects others with 421.",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origin headers accepted from browsers besides loopback ones."
    )
    local_user: str = Field(
        "local", min_length=1, max_length=64, description="Owner of all data when auth is `none` (and on stdio)."
    )
    # NoDecode: the environment gives a comma-separated list, not JSON.
    toolsets: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(TOOLSET_NAMES),
        description="Toolsets to expose, comma separated: " + ", ".join(TOOLSET_NAMES) + ".",
    )
    read_only: bool = Field(False, description="Expose only tools that change nothing.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Operator log level (stderr).")

    # --- limits --------------------------------------------------------------------------------------------------
    max_symbols_per_call: int = Field(
        1000, ge=1, le=10_000, description="Most symbols one add/remove/create call accepts."
    )
    max_inline_validation: int = Field(50, ge=1, le=500, description="Most symbols `validate_symbols` answers inline.")
    max_bulk_symbols: int = Field(10_000, ge=1, description="Most symbols one bulk validation job accepts.")
    page_size_default: int = Field(50, ge=1, le=1000, description="Default page size of paginated lists.")
    page_size_max: int = Field(200, ge=1, le=1000, description="Largest page size a caller may ask for.")
    max_request_bytes: int = Field(
        2_000_000, ge=10_000, description="Largest accepted JSON-RPC message, in bytes (checked where messages enter)."
    )
    max_json_depth: int = Field(32, ge=4, le=128, description="Deepest accepted JSON nesting in a message.")

    rate_limit_read: str = Field(
        "600/minute", description="Per-owner limit on read tools (a `limits` expression; empty disables it)."
    )
    rate_limit_write: str = Field("240/minute", description="Per-owner limit on tools that change universes.")
    rate_limit_validate: str = Field(
        "120/minute;2000/hour", description="Per-owner limit on tools that ask market-data providers."
    )

    # --- validation and providers --------------------------------------------------------------------------------
    offline: bool = Field(False, description="Disable the network providers (Yahoo, Alpha Vantage): catalog only.")
    validate_on_add: bool = Field(
        True, description="Validate symbols when they are added to a universe (callers may pass validate=false)."
    )
    validation_deadline_s: float = Field(
        4.0, gt=0, le=60, description="Deadline for one inline validation call, however providers behave."
    )
    yahoo_enabled: bool = Field(True, description="Use Yahoo Finance (yfinance) as the first real-time provider.")
    yahoo_timeout_s: float = Field(3.0, gt=0, le=30, description="Cap on every HTTP request yfinance makes.")
    alpha_vantage_api_key: SecretStr | None = Field(
        None, description="Alpha Vantage API key. Unset: the Alpha Vantage provider is not configured."
    )
    alpha_vantage_base_url: str = Field(
        "https://www.alphavantage.co/query", description="Alpha Vantage endpoint (tests point it at a local server)."
    )
    alpha_vantage_timeout_s: float = Field(3.0, gt=0, le=30, description="Timeout of one Alpha Vantage request.")
    cache_valid_ttl_s: int = Field(86_400, ge=1, description="How long a `valid` verdict is cached.")
    cache_invalid_ttl_s: int = Field(3_600, ge=1, description="How long an `invalid` verdict is cached.")
    verdict_fresh_s: int = Field(
        86_400, ge=1, description="A verdict in the store younger than this is trusted without asking a provider."
    )
    yahoo_rate_limit: str = Field("5/second", description="Shared budget of calls to Yahoo Finance.")
    alpha_vantage_rate_limit: str = Field(
        "1/second;25/day", description="Shared budget of calls to Alpha Vantage (the free tier's limits)."
    )
    seed_catalog: bool = Field(True, description="Load the offline catalog into the store on start (once).")
    redis_timeout_s: float = Field(0.25, gt=0, le=10, description="Connect and read timeout of cache calls to Redis.")

    # --- CSV interchange and the dashboard -----------------------------------------------------------------------
    csv_max_bytes: int = Field(
        1_000_000, ge=1_000, description="Largest file `import_universe_csv` accepts, in bytes (UTF-8)."
    )
    csv_max_rows: int = Field(10_000, ge=1, le=100_000, description="Most data rows one CSV import accepts.")
    csv_job_threshold: int = Field(
        1_000,
        ge=1,
        description="Imports with more symbols than this add members without waiting for validation and "
        "validate them as a background job (when the jobs toolset is enabled); smaller ones validate inline.",
    )

    # --- bulk validation jobs, workers and periodic jobs (workers/, docs/WORKERS.md) -------------------------------
    job_batch_size: int = Field(50, ge=1, le=1000, description="Symbols per worker message of a bulk validation job.")
    job_batch_deadline_s: float = Field(
        20.0,
        gt=0,
        le=600,
        description="Deadline for validating one batch, providers included (like "
        "validation_deadline_s, for background work).",
    )
    job_batch_time_limit_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Hard time limit of one batch message; a batch over it is retried, then its "
        "symbols are recorded as `error`. Keep it above job_batch_deadline_s.",
    )
    job_max_retries: int = Field(
        4,
        ge=0,
        le=50,
        description="Retries of a symbol no provider could answer (outage, deadline), and of a batch "
        "that failed, before the symbol is recorded as pending or error.",
    )
    job_max_rate_limit_retries: int = Field(
        30,
        ge=0,
        le=500,
        description="Retries of a symbol held up by a provider's rate limit (each after the "
        "provider's retry-after) before it is recorded as pending.",
    )
    job_retry_base_s: float = Field(
        5.0, gt=0, le=3600, description="First retry delay when the provider gave no retry-after; doubles per retry."
    )
    job_retry_max_delay_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="Longest wait before a retry; symbols whose provider asks for longer are "
        "recorded as pending at once (the periodic refresh takes them later).",
    )
    job_auto_delay_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Delay before the automatic job for symbols added to a universe as pending "
        "starts (a provider that just failed is not asked again at once).",
    )
    job_wait_s: float = Field(
        45.0,
        ge=0,
        le=600,
        description="Longest time `start_bulk_validation(wait=true)` streams progress before "
        "returning the job's current status (keep it below clients' request timeouts).",
    )
    job_retention_s: int = Field(
        7 * 86_400, ge=60, description="How long a job and its per-symbol outcomes are kept after it finishes."
    )
    job_stall_s: int = Field(
        1_800,
        ge=60,
        description="A job with no progress for this long gets its remaining symbols queued again "
        "(checked by the cleanup job; messages can be lost, e.g. by a Redis restart without persistence).",
    )
    max_active_jobs: int = Field(
        10, ge=1, le=1000, description="Most unfinished bulk validation jobs one owner may have."
    )
    broker_namespace: str = Field(
        "universe-mcp",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of the job broker's Redis keys (queues, worker heartbeats, live job counters, locks).",
    )
    worker_processes: int | None = Field(
        None, ge=1, le=256, description="Processes `universe-mcp worker` starts. Unset: one per CPU."
    )
    worker_threads: int = Field(8, ge=1, le=256, description="Worker threads per `universe-mcp worker` process.")
    embedded_worker_threads: int = Field(
        4, ge=1, le=64, description="Threads of the in-process worker that runs jobs in embedded mode (no Redis)."
    )
    worker_heartbeat_timeout_s: float = Field(
        10.0,
        ge=1,
        le=3600,
        description="A worker silent this long is dead: its unfinished messages go back to the "
        "queue, and get_service_health reports it dead (dramatiq's default is 60 s).",
    )
    broker_maintenance_chance: int = Field(
        100_000,
        ge=1,
        le=1_000_000,
        description="Out of a million broker commands, how many look for dead workers' "
        "messages to requeue (dramatiq's default, 1,000, recovers them only after minutes).",
    )
    worker_idle_poll_ms: int = Field(
        100,
        ge=10,
        le=10_000,
        description="How often an idle worker asks Redis for messages (dramatiq's "
        "worker_timeout; its default, 1,000 ms, delays the start of every job by up to a second).",
    )
    worker_shutdown_timeout_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="How long a stopping worker lets running batches finish; unfinished ones are redelivered.",
    )
    refresh_interval_s: int = Field(
        3_600, ge=1, description="How often the periodic refresh re-validates stale and pending verdicts."
    )
    refresh_max_age_s: int = Field(
        86_400, ge=60, description="The periodic refresh re-validates universe members whose verdict is older."
    )
    refresh_limit: int = Field(2_000, ge=1, le=100_000, description="Most symbols one periodic refresh re-validates.")
    cleanup_interval_s: int = Field(
        21_600, ge=1, description="How often expired job data is deleted and stalled jobs are resumed."
    )
    provider: Literal["auto", "fake"] = Field(
        "auto",
        description="`fake` replaces every provider by a deterministic in-memory one (it knows SYM00001 ... "
        "up to fake_provider_symbols): FOR TESTS AND BENCHMARKS ONLY.",
    )
    fake_provider_symbols: int = Field(10_000, ge=0, le=1_000_000, description="With provider=fake: symbols it knows.")
    fake_provider_latency_s: float = Field(
        0.02, ge=0, le=60, description="With provider=fake: the delay of each answer."
    )
    fake_provider_rate_limit_every: int = Field(
        0, ge=0, description="With provider=fake: every n-th call is refused as rate limited (0: never)."
    )
    fake_provider_retry_after_s: float = Field(
        1.0, ge=0, le=3600, description="With provider=fake: the retry-after of a simulated rate limit."
    )
    sec_user_agent: str | None = Field(
        None,
        description="User-Agent sent to SEC EDGAR when syncing listings (company_tickers_exchange.json); the SEC "
        "asks for a company name and a contact e-mail, e.g. 'Example Corp ops@example.com'. Unset: the SEC source "
        "is not fetched.",
    )

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("toolsets", mode="before")
    @classmethod
    def _split_toolsets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("toolsets")
    @classmethod
    def _known_toolsets(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(TOOLSET_NAMES))
        if unknown:
            raise ValueError(f"unknown toolsets {unknown}; choose from {list(TOOLSET_NAMES)}")
        return value

    # --- derived -------------------------------------------------------------------------------------------------
    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'universe.db'}"

    @property
    def admin_sqlalchemy_url(self) -> str:
        if self.database_admin_url is not None:
            return self.database_admin_url.get_secret_value()
        return self.sqlalchemy_url

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    def describe_store(self) -> str:
        """Where the data lives, without credentials (for banners and health)."""
        if self.is_sqlite:
            return self.sqlalchemy_url.split("///", 1)[-1]
        from sqlalchemy.engine import make_url

        return make_url(self.sqlalchemy_url).render_as_string(hide_password=True)
