"""Server configuration: one typed ``Settings`` object, read from ``FIELDSYNC_*`` variables.

It is built once (by the CLI or a test) and passed into :func:`server.app.create_app`;
nothing imports a global instance, so two apps with different settings can live in one
process (tests do exactly that).

The default ``secret_key`` signs access tokens in development only: outside
``development``/``test`` a server refuses to start with it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "fieldsync-development-secret-change-me"
#: The demo accounts' password; accepted only in development and test.
DEMO_PASSWORD = "fieldsync-demo"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDSYNC_", extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        default="development",
        description="The demo password is refused outside development/test; production "
        "refuses the default secret key.",
    )
    database_url: str = Field(
        default="sqlite:///./var/fieldsync.db",
        description="SQLAlchemy URL: `sqlite:///path.db`, or `postgresql+psycopg://…` "
        "(`postgresql://` is accepted).",
    )
    schema_source: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FIELDSYNC_SCHEMA", "schema_source"),
        description="The schema served: a declarative schema file (`app.toml`, `app.json`; "
        "docs/sdk.md) or `package.module:ATTR` naming a `SchemaRegistry`; unset: the CRM. "
        "Also `fieldsync serve --schema`.",
    )
    secret_key: str = Field(
        default=DEFAULT_SECRET_KEY,
        description="Signs access tokens: at least 16 private characters in production "
        "(the default is for development only).",
    )

    access_token_ttl_s: int = Field(default=900, ge=1, description="Access token lifetime.")
    refresh_token_ttl_s: int = Field(
        default=30 * 24 * 3600,
        ge=60,
        description="Refresh token lifetime (a refresh token is rotated on every use).",
    )

    max_batch: int = Field(
        default=1000, ge=1, description="Mutations per push; more answers `413 batch_too_large`."
    )
    max_pull_limit: int = Field(
        default=5000,
        ge=1,
        le=10_000,
        description="Largest pull page (the request's `limit` is capped).",
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Request body limit, after gzip decoding (`413 payload_too_large`).",
    )
    max_drift_ms: int = Field(
        default=5 * 60 * 1000,
        ge=0,
        description="How far ahead of the server's clock a device's timestamps are accepted.",
    )
    clock_policy: Literal["clamp", "refuse"] = Field(
        default="clamp",
        description="Timestamps further ahead: `clamp` pulls them back (warning "
        "`clock_skew`), `refuse` rejects the push (`409 clock_skew`).",
    )
    tombstone_retention_days: int = Field(
        default=90,
        ge=0,
        description="How long deletes (tombstones) and evictions are kept for offline devices; "
        "a device away longer resyncs from scratch (keeping its unsent writes).",
    )
    idempotency_retention_days: int = Field(
        default=90,
        ge=0,
        description="How long each pushed mutation's answer is kept, so that a retried push "
        "answers `duplicate`.",
    )
    audit_retention_days: int = Field(
        default=365, ge=0, description="How long audit entries are kept; 0 keeps them forever."
    )
    backup_dir: str = Field(
        default="./var/backups",
        description="Where `POST /v1/admin/backups` writes backups (and the restore route "
        "finds them); keep it on another disk than the database.",
    )
    compaction_interval_s: float = Field(
        default=3600,
        ge=0,
        description="How often each server process runs compaction in the background (one "
        "instance at a time on PostgreSQL); 0 turns it off (run `fieldsync maintain` from "
        "cron instead).",
    )

    login_max_failures_per_user: int = Field(
        default=5, ge=1, description="Failed sign-ins per username per window before `429`."
    )
    login_max_attempts_per_address: int = Field(
        default=100,
        ge=1,
        description="Sign-in attempts (any outcome) per client address per window.",
    )
    login_window_s: int = Field(default=300, ge=1, description="The sign-in rate-limit window.")

    #: Days a device may go without reaching the server before its store locks until
    #: the user signs in online again (with the password): a lost phone that never
    #: reconnects does not stay open forever. The server also refuses a refresh token
    #: of a device silent for longer (``lease_expired``). 0 turns the lease off.
    offline_lease_days: int = Field(
        default=14,
        ge=0,
        le=3650,
        description="A device that has not reached the server for this many days locks its "
        "store until the user signs in online (its refresh token is refused: "
        "`lease_expired`); 0 turns the lease off.",
    )

    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Level of the server's log (`fieldsync serve`)."
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="`json`: one JSON object per line with a request id (for log "
        "collectors); `text`: plain lines for a terminal.",
    )
    access_log: bool = Field(
        default=True,
        description="One log line per request: method, route template, status, duration, "
        "request id, device (never a query string or a body).",
    )
    metrics_enabled: bool = Field(
        default=True, description="Serve Prometheus metrics at `/metrics`."
    )
    metrics_multiprocess_dir: str | None = Field(
        default=None,
        description="With `--workers` > 1: a directory for prometheus-client's multiprocess "
        "mode, so `/metrics` adds up every worker (emptied by `fieldsync serve` at start).",
    )
    tracing_endpoint: str | None = Field(
        default=None,
        description="OpenTelemetry: an OTLP/HTTP collector base URL (e.g. "
        "`http://127.0.0.1:4318`). When set, every request and every SQL statement is "
        "traced (spans carry route templates and SQL text with placeholders, never "
        "bound values, bodies or headers). Needs the `otel` extra; off when unset.",
    )
    tracing_service_name: str = Field(
        default="fieldsync-server",
        description="The `service.name` the traces are reported under.",
    )
    console_session_ttl_s: int = Field(
        default=12 * 3600,
        ge=60,
        description="A console (browser) session ends this many seconds after sign-in.",
    )
    console_idle_timeout_s: int = Field(
        default=3600,
        ge=60,
        description="A console session also ends after this many seconds without a request.",
    )
    health_flush_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often each server process writes the fleet-health activity it "
        "buffered (last push and pull, checkpoint, device status, errors) to the database.",
    )

    search_index_interval_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="How often each server process indexes, in the background, the search "
        "text of records written since (one instance at a time on PostgreSQL); 0 turns it "
        "off here (a search still indexes what is pending before it reads).",
    )
    search_index_yield_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="The background search indexing skips its turn until no push has run "
        "for this many seconds (its pinyin work would take the cores from the pushes); 0: "
        "it never gives way.",
    )
    search_index_busy_budget_s: float = Field(
        default=0.05,
        ge=0,
        le=3600,
        description="While pushes come (a turn given way), the background search indexing "
        "still catches up this long per tick — the search text only, PostgreSQL's GIN "
        "indexes wait for a quiet turn — so a burst's backlog does not all wait for the "
        "first search after it; 0: nothing while pushes come.",
    )
    search_index_max_defer_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="Under a sustained burst of pushes the background search indexing "
        "still takes a turn at least this often (seconds).",
    )

    webhook_interval_s: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="How often each server process runs the webhook dispatcher (fan-out of "
        "new events, due reminders, due deliveries); 0 turns outbound webhooks off here.",
    )
    webhook_retry_base_s: float = Field(
        default=5.0,
        gt=0,
        description="Wait after a webhook delivery's first failed attempt; it doubles "
        "after each further failure.",
    )
    webhook_retry_max_s: float = Field(
        default=3600.0, gt=0, description="The longest wait between two webhook attempts."
    )
    webhook_max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        description="Attempts before a webhook delivery is marked failed (the log keeps each).",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="How long a webhook receiver may take to answer."
    )
    live_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="`GET /v1/sync/events`: a heartbeat event this often on an idle stream "
        "(keeps proxies and load balancers from closing it; set their read timeout above it).",
    )
    live_poll_s: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="How often each server process re-reads the change counter on its own "
        "(changes made by other processes on SQLite, a safety net for PostgreSQL's "
        "LISTEN/NOTIFY).",
    )
    live_auth_check_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often open event streams are checked against the database (revoked "
        "device, signed-out session, deactivated user): a stream closes within this time "
        "(at once when the change was made on a PostgreSQL instance).",
    )
    live_notify_interval_ms: int = Field(
        default=15,
        ge=0,
        le=1000,
        description="PostgreSQL: at most one NOTIFY per process per this many milliseconds "
        "(writes in between are announced together).",
    )
    live_reconnect_s: float = Field(
        default=0.1,
        gt=0,
        le=60,
        description="PostgreSQL: the first wait before the LISTEN connection is opened again "
        "after it was lost (doubling up to 5 s); once listening again the process re-reads "
        "the counter, so nothing committed meanwhile is missed.",
    )
    live_max_streams: int = Field(
        default=10_000,
        ge=0,
        description="Event streams one server process holds at most; more answer "
        "`503 service_unavailable` (the device polls instead).",
    )

    #: gzip level of responses: 1..9. Sync pages are large; a low level keeps the CPU
    #: cost per record small while still shrinking JSON by ~5x (server/middleware.py).
    gzip_level: int = Field(
        default=3,
        ge=1,
        le=9,
        description="gzip level of responses (1 fastest … 9 smallest; written by ISA-L, "
        "which maps it onto its own 0–3: 3 → 1, smaller than zlib's 3 and ~5x faster).",
    )
    gzip_min_bytes: int = Field(
        default=1024, ge=0, description="Responses smaller than this are not compressed."
    )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.env == "production" and (
            self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 16
        ):
            raise ValueError(
                "FIELDSYNC_SECRET_KEY must be set to a private value of at least 16 "
                "characters outside development/test"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def demo_password_allowed(self) -> bool:
        return self.env in ("development", "test")
