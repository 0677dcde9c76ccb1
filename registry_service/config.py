"""Settings of the registry service: the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelreg._grpc import parse_target
from modelreg.config import TlsConfig
from modelreg_server.idempotency import DEFAULT_RETENTION_HOURS
from modelreg_server.settings import AuthSettings, ConfigError, EnvReader, TlsSettings
from modelreg_server.streams import StreamLimits
from registry_service.domain.rules import SERVING_REPORTS_PER_MINUTE
from registry_service.domain.watch import WatchLimits
from registry_service.domain.webhooks import WebhookSettings

__all__ = ["ConfigError", "Settings"]


@dataclass(frozen=True)
class Settings:
    """Registry service settings, each read from one environment variable.

    - MODELREG_REGISTRY_HOST: interface to listen on (default ``127.0.0.1``: this machine only; set ``0.0.0.0``
      to serve the network, which needs MODELREG_AUTH set).
    - MODELREG_REGISTRY_PORT: port, 0 picks a free one (default ``50052``).
    - MODELREG_REGISTRY_DATABASE_URL: SQLAlchemy URL of the registry's own database (default
      ``sqlite:///./.modelreg/registry.db``; PostgreSQL and MySQL/MariaDB also work). Never the
      tracking database: the registry learns about runs only over gRPC.
    - MODELREG_TRACKING_TARGET: ``host:port`` of the tracking service the registry asks about runs
      (default ``localhost:50051``), ``grpcs://host:port`` when it serves TLS.
    - MODELREG_TRACKING_CA_FILE: PEM CA certificates the registry trusts for a grpcs:// tracking
      target (default: the system roots).
    - MODELREG_TRACKING_CLIENT_CERT_FILE, MODELREG_TRACKING_CLIENT_KEY_FILE: the registry's own
      client certificate and key (PEM, both or neither), for a tracking service that requires
      client certificates (mTLS).
    - MODELREG_TRACKING_TIMEOUT_SECONDS: overall deadline of one lineage check, retries included
      (default 5). When it passes, CreateModelVersion fails with UNAVAILABLE and writes nothing.
    - MODELREG_REGISTRY_WORKERS: gRPC worker threads, also the database pool size (default 16).
    - MODELREG_MAX_STREAMS: streams of either direction (uploads, metric streams, downloads)
      running at once, fewer than the workers (default: the workers less a quarter); one more is
      RESOURCE_EXHAUSTED.
    - MODELREG_STREAM_IDLE_SECONDS (default 30), MODELREG_STREAM_MAX_SECONDS (default 3600): how
      long a client stream may wait between messages, or a download's message wait for its client
      to take it, and how long either may last in all (DEADLINE_EXCEEDED; a download is cancelled).
    - MODELREG_MAX_WATCHERS: WatchModelEvents streams running at once (default 1,000; one more is
      RESOURCE_EXHAUSTED). They take none of the MODELREG_MAX_STREAMS slots: the server has a
      thread for each on top of the workers.
    - MODELREG_WATCH_MAX_SECONDS: how long one watch lasts before it ends with OK and its client
      resumes (default 900). MODELREG_WATCH_HEARTBEAT_SECONDS: how often a watch sends its cursor
      when no event matched (default 10; below MODELREG_STREAM_IDLE_SECONDS).
    - MODELREG_SERVING_REPORTS_PER_MINUTE: ReportServingStatus calls one caller may make on one
      model in any 60 s (default 600; one more is RESOURCE_EXHAUSTED TOO_MANY_SERVING_REPORTS and
      writes nothing). Each report is kept in the history and a READ token may make them.
    - MODELREG_AUTO_MIGRATE: true (default) creates the schema of a fresh, empty database at start;
      an existing database is only ever upgraded by ``python -m registry_service db upgrade``.
    - MODELREG_AUTH, MODELREG_AUTH_DATABASE_URL, MODELREG_BOOTSTRAP_ADMIN_TOKEN, MODELREG_OIDC_*,
      MODELREG_ADMIN_GROUP, MODELREG_DEFAULT_PERMISSION, MODELREG_CREATOR_PERMISSION: access
      control, see modelreg_server.settings.AuthSettings.
    - MODELREG_REFLECTION: serve gRPC server reflection (default true; compose turns it off).
    - MODELREG_IDEMPOTENCY_HOURS: how long the idempotency key of an applied write is kept, i.e.
      how long a client may retry it and be answered without applying it again (default 24; each
      server process deletes older keys every 5 minutes).
    - MODELREG_WEBHOOK_ALLOW_HTTP, MODELREG_WEBHOOK_ALLOW_PRIVATE: accept http:// webhook URLs,
      and hosts on private, loopback or link-local addresses (default false: https to public
      addresses only).
    - MODELREG_WEBHOOK_RETRY_SECONDS: the waits after each failed delivery attempt, comma-separated
      (default ``5,30,120,600,3600,10800,21600``); past the last the delivery is dead (1 to 20 waits).
    - MODELREG_WEBHOOK_TIMEOUT_SECONDS: deadline of one whole webhook attempt (default 10).
    - MODELREG_WEBHOOK_DNS_TIMEOUT_SECONDS: longest wait for a webhook host's name lookup (default 5).
    - MODELREG_WEBHOOK_POLL_SECONDS: how often the delivery worker looks for new events (default 1).
    - MODELREG_WEBHOOK_SECRET_GRACE_HOURS: how long a rotated-out secret keeps signing (default 24).
    - MODELREG_WEBHOOK_CONCURRENCY: webhook requests in flight per process (default 8).
    - MODELREG_WEBHOOK_WORKER: false stops this process delivering (others still do; default true).
    - MODELREG_WEBHOOK_RETENTION_DAYS: how long succeeded and dead deliveries are listed before
      each worker deletes them (default 30).
    - MODELREG_LOG_LEVEL: DEBUG, INFO (default), WARNING, ERROR.
    - MODELREG_LOG_FORMAT: ``text`` (default) or ``json`` (one JSON object per call log line).
    - MODELREG_GRACE_SECONDS: how long in-flight calls may finish after SIGTERM (default 10).
    - MODELREG_METRICS_PORT: port of the Prometheus ``/metrics`` HTTP endpoint; 0 (default) = off.
    - MODELREG_METRICS_HOST: interface the metrics endpoint listens on (default ``0.0.0.0``).
    - MODELREG_TLS_CERT_FILE, MODELREG_TLS_KEY_FILE: the server's certificate chain and private key
      (PEM, both or neither): set, the port serves TLS only; unset, plaintext.
    - MODELREG_TLS_CLIENT_CA_FILE: PEM CA certificates; set, every client must present a
      certificate they signed (mTLS). Needs the two above.
    """

    host: str = "127.0.0.1"
    port: int = 50052
    database_url: str = "sqlite:///./.modelreg/registry.db"
    tracking_target: str = "localhost:50051"
    tracking_timeout_seconds: float = 5.0
    tracking_tls: TlsConfig | None = None
    workers: int = 16
    auto_migrate: bool = True
    log_level: str = "INFO"
    json_logs: bool = False
    grace_seconds: float = 10.0
    metrics_port: int = 0
    metrics_host: str = "0.0.0.0"
    # Off unless asked: Settings() in tests and embedding code serves without access control.
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: TlsSettings | None = None
    reflection: bool = True
    idempotency_hours: float = DEFAULT_RETENTION_HOURS
    streams: StreamLimits = field(default_factory=StreamLimits)
    watch: WatchLimits = field(default_factory=WatchLimits)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    serving_reports_per_minute: int = SERVING_REPORTS_PER_MINUTE

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        read = EnvReader(env)
        return cls(
            host=(host := read.text("MODELREG_REGISTRY_HOST", cls.host)),
            port=read.integer("MODELREG_REGISTRY_PORT", cls.port, 0, 65535),
            database_url=read.database_url("MODELREG_REGISTRY_DATABASE_URL", cls.database_url),
            tracking_target=_tracking_target(read.text("MODELREG_TRACKING_TARGET", cls.tracking_target)),
            tracking_timeout_seconds=read.number(
                "MODELREG_TRACKING_TIMEOUT_SECONDS", cls.tracking_timeout_seconds, 0.1, 600
            ),
            tracking_tls=_tracking_tls(read),
            workers=(workers := read.integer("MODELREG_REGISTRY_WORKERS", cls.workers, 1, 1024)),
            auto_migrate=read.boolean("MODELREG_AUTO_MIGRATE", cls.auto_migrate),
            log_level=read.log_level(cls.log_level),
            json_logs=read.json_logs(),
            grace_seconds=read.number("MODELREG_GRACE_SECONDS", cls.grace_seconds, 0, 3600),
            metrics_port=read.integer("MODELREG_METRICS_PORT", cls.metrics_port, 0, 65535),
            metrics_host=read.text("MODELREG_METRICS_HOST", cls.metrics_host),
            auth=read.auth(host, "MODELREG_REGISTRY_HOST"),
            tls=read.tls(),
            reflection=read.boolean("MODELREG_REFLECTION", cls.reflection),
            idempotency_hours=read.number(
                "MODELREG_IDEMPOTENCY_HOURS", cls.idempotency_hours, 0.01, 24 * 365
            ),
            streams=read.stream_limits(workers),
            watch=WatchLimits(
                max_watchers=read.integer("MODELREG_MAX_WATCHERS", WatchLimits.max_watchers, 1, 100_000),
                max_seconds=read.number("MODELREG_WATCH_MAX_SECONDS", WatchLimits.max_seconds, 1, 86_400),
                heartbeat_seconds=read.number(
                    "MODELREG_WATCH_HEARTBEAT_SECONDS", WatchLimits.heartbeat_seconds, 0.05, 3600
                ),
            ),
            webhooks=_webhooks(read),
            serving_reports_per_minute=read.integer(
                "MODELREG_SERVING_REPORTS_PER_MINUTE", cls.serving_reports_per_minute, 1, 1_000_000
            ),
        )


def _webhooks(read: EnvReader) -> WebhookSettings:
    default = WebhookSettings()
    name = "MODELREG_WEBHOOK_RETRY_SECONDS"
    raw = read.text(name, ",".join(f"{s:g}" for s in default.retry_seconds))
    try:
        waits = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated seconds, got {raw!r}") from None
    if not 1 <= len(waits) <= 20 or not all(0 <= wait <= 7 * 24 * 3600 for wait in waits):
        raise ConfigError(f"{name} must be 1 to 20 waits of 0 to 604800 seconds, got {raw!r}")
    return WebhookSettings(
        allow_http=read.boolean("MODELREG_WEBHOOK_ALLOW_HTTP", default.allow_http),
        allow_private=read.boolean("MODELREG_WEBHOOK_ALLOW_PRIVATE", default.allow_private),
        retry_seconds=waits,
        timeout_seconds=read.number("MODELREG_WEBHOOK_TIMEOUT_SECONDS", default.timeout_seconds, 0.1, 60),
        poll_seconds=read.number("MODELREG_WEBHOOK_POLL_SECONDS", default.poll_seconds, 0.01, 60),
        secret_grace_hours=read.number(
            "MODELREG_WEBHOOK_SECRET_GRACE_HOURS", default.secret_grace_hours, 0, 24 * 30
        ),
        concurrency=read.integer("MODELREG_WEBHOOK_CONCURRENCY", default.concurrency, 1, 256),
        worker=read.boolean("MODELREG_WEBHOOK_WORKER", default.worker),
        retention_days=read.number("MODELREG_WEBHOOK_RETENTION_DAYS", default.retention_days, 0.00001, 3650),
        dns_timeout_seconds=read.number(
            "MODELREG_WEBHOOK_DNS_TIMEOUT_SECONDS", default.dns_timeout_seconds, 0.1, 60
        ),
    )


def _tracking_target(raw: str) -> str:
    try:
        parse_target(raw)
    except ValueError as exc:
        raise ConfigError(f"MODELREG_TRACKING_TARGET: {exc}") from None
    return raw


def _tracking_tls(read: EnvReader) -> TlsConfig | None:
    """The files of the registry's TLS channel to tracking, checked now (the client reads them
    again when it connects) so that a bad one stops the start, not the first registration."""
    names = {
        "ca_file": "MODELREG_TRACKING_CA_FILE",
        "client_cert_file": "MODELREG_TRACKING_CLIENT_CERT_FILE",
        "client_key_file": "MODELREG_TRACKING_CLIENT_KEY_FILE",
    }
    read.certificates(names["ca_file"])
    read.key_pair(names["client_cert_file"], names["client_key_file"])
    files = {field: read.text(name, "") or None for field, name in names.items()}
    if any(files.values()) and not parse_target(read.text("MODELREG_TRACKING_TARGET", ""))[1]:
        raise ConfigError(
            f"{', '.join(names[f] for f, v in files.items() if v)} is set but MODELREG_TRACKING_TARGET is not "
            "grpcs://: the registry would reach tracking in plaintext"
        )
    return TlsConfig(**files) if any(files.values()) else None
