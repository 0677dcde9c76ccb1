"""Settings of the registry service: the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelreg._grpc import parse_target
from modelreg.config import TlsConfig
from modelreg_server.settings import AuthSettings, ConfigError, EnvReader, TlsSettings
from modelreg_server.streams import StreamLimits

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
    - MODELREG_MAX_STREAMS: client streams (uploads, metric streams) running at once, fewer than
      the workers (default: the workers less a quarter); one more is RESOURCE_EXHAUSTED.
    - MODELREG_STREAM_IDLE_SECONDS (default 30), MODELREG_STREAM_MAX_SECONDS (default 3600): how
      long a client stream may wait between messages and last in all (DEADLINE_EXCEEDED).
    - MODELREG_AUTO_MIGRATE: true (default) creates the schema of a fresh, empty database at start;
      an existing database is only ever upgraded by ``python -m registry_service db upgrade``.
    - MODELREG_AUTH, MODELREG_AUTH_DATABASE_URL, MODELREG_BOOTSTRAP_ADMIN_TOKEN, MODELREG_OIDC_*,
      MODELREG_ADMIN_GROUP, MODELREG_DEFAULT_PERMISSION, MODELREG_CREATOR_PERMISSION: access
      control, see modelreg_server.settings.AuthSettings.
    - MODELREG_REFLECTION: serve gRPC server reflection (default true; compose turns it off).
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
    streams: StreamLimits = field(default_factory=StreamLimits)

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
            streams=read.stream_limits(workers),
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
