"""Settings of the tracking service: the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from minio.helpers import check_bucket_name

from modelreg_server.idempotency import DEFAULT_RETENTION_HOURS
from modelreg_server.settings import AuthSettings, ConfigError, EnvReader, TlsSettings
from modelreg_server.streams import StreamLimits
from tracking_service.artifacts import S3Options
from tracking_service.domain import rules

__all__ = ["ConfigError", "Settings"]


@dataclass(frozen=True)
class Settings:
    """Tracking service settings, each read from one environment variable.

    - MODELREG_TRACKING_HOST: interface to listen on (default ``127.0.0.1``: this machine only; set ``0.0.0.0``
      to serve the network, which needs MODELREG_AUTH set).
    - MODELREG_TRACKING_PORT: port, 0 picks a free one (default ``50051``).
    - MODELREG_TRACKING_DATABASE_URL: SQLAlchemy URL of the tracking database
      (default ``sqlite:///./.modelreg/tracking.db``; PostgreSQL and MySQL/MariaDB also work).
    - MODELREG_ARTIFACT_ROOT: where artifacts go: ``file://<dir>`` (a relative dir is resolved to an
      absolute ``file:///`` URI; default ``file://./.modelreg/artifacts``) or ``s3://bucket/prefix``.
    - MODELREG_ARTIFACT_EXTRA_ROOTS: comma-separated roots, of the artifact root's scheme, where an
      experiment's ``artifact_location`` may also lie (e.g. a previous root). The one store serves
      them all, so each is checked at start like the root: a file:// directory this process can
      write, or an s3:// bucket the same endpoint and credentials reach. No other location is
      accepted.
    - MODELREG_S3_ENDPOINT (host:port), MODELREG_S3_ACCESS_KEY, MODELREG_S3_SECRET_KEY,
      MODELREG_S3_SECURE (true/false, default false), MODELREG_S3_REGION: the S3-compatible server,
      required when the artifact root is s3://.
    - MODELREG_TRACKING_WORKERS: gRPC worker threads, also the database pool size (default 16).
    - MODELREG_MAX_STREAMS: streams of either direction (uploads, metric streams, downloads)
      running at once, fewer than the workers (default: the workers less a quarter); one more is
      RESOURCE_EXHAUSTED.
    - MODELREG_STREAM_IDLE_SECONDS (default 30), MODELREG_STREAM_MAX_SECONDS (default 3600): how
      long a client stream may wait between messages, or a download's message wait for its client
      to take it, and how long either may last in all (DEADLINE_EXCEEDED; a download is cancelled).
    - MODELREG_AUTO_MIGRATE: true (default) creates the schema of a fresh, empty database at start;
      an existing database is only ever upgraded by ``python -m tracking_service db upgrade``.
    - MODELREG_AUTH, MODELREG_AUTH_DATABASE_URL, MODELREG_BOOTSTRAP_ADMIN_TOKEN, MODELREG_OIDC_*,
      MODELREG_ADMIN_GROUP, MODELREG_DEFAULT_PERMISSION, MODELREG_CREATOR_PERMISSION: access
      control, see modelreg_server.settings.AuthSettings.
    - MODELREG_REFLECTION: serve gRPC server reflection (default true; compose turns it off).
    - MODELREG_IDEMPOTENCY_HOURS: how long the idempotency key of an applied write is kept, i.e.
      how long a client may retry it and be answered without applying it again (default 24; each
      server process deletes older keys every 5 minutes).
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
    port: int = 50051
    database_url: str = "sqlite:///./.modelreg/tracking.db"
    artifact_root: str = "file://./.modelreg/artifacts"
    extra_artifact_roots: tuple[str, ...] = ()
    s3: S3Options | None = None
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        read = EnvReader(env)
        artifact_root = _artifact_root(read.text("MODELREG_ARTIFACT_ROOT", cls.artifact_root))
        extra_roots = _extra_roots(read.text("MODELREG_ARTIFACT_EXTRA_ROOTS", ""), artifact_root)
        return cls(
            host=(host := read.text("MODELREG_TRACKING_HOST", cls.host)),
            port=read.integer("MODELREG_TRACKING_PORT", cls.port, 0, 65535),
            database_url=read.database_url("MODELREG_TRACKING_DATABASE_URL", cls.database_url),
            artifact_root=artifact_root,
            extra_artifact_roots=extra_roots,
            s3=_s3_options(read) if artifact_root.startswith("s3://") else None,
            workers=(workers := read.integer("MODELREG_TRACKING_WORKERS", cls.workers, 1, 1024)),
            auto_migrate=read.boolean("MODELREG_AUTO_MIGRATE", cls.auto_migrate),
            log_level=read.log_level(cls.log_level),
            json_logs=read.json_logs(),
            grace_seconds=read.number("MODELREG_GRACE_SECONDS", cls.grace_seconds, 0, 3600),
            metrics_port=read.integer("MODELREG_METRICS_PORT", cls.metrics_port, 0, 65535),
            metrics_host=read.text("MODELREG_METRICS_HOST", cls.metrics_host),
            auth=read.auth(host, "MODELREG_TRACKING_HOST"),
            tls=read.tls(),
            reflection=read.boolean("MODELREG_REFLECTION", cls.reflection),
            idempotency_hours=read.number(
                "MODELREG_IDEMPOTENCY_HOURS", cls.idempotency_hours, 0.01, 24 * 365
            ),
            streams=read.stream_limits(workers),
        )

    @property
    def artifact_roots(self) -> tuple[str, ...]:
        """Every root an experiment's artifact_location may lie under, the artifact root first."""
        return (self.artifact_root, *self.extra_artifact_roots)


def _artifact_root(raw: str, variable: str = "MODELREG_ARTIFACT_ROOT") -> str:
    """``file://<dir>`` becomes an absolute ``file:///...`` URI; ``s3://bucket[/prefix]`` stays."""
    root = raw.rstrip("/")
    if root.startswith("s3://"):
        bucket = root.removeprefix("s3://").split("/")[0]
        try:  # S3's naming rules, as the minio SDK would enforce them at the first request
            check_bucket_name(bucket)
        except ValueError:
            raise ConfigError(f"{variable} {raw!r} does not name a valid S3 bucket") from None
    elif root.startswith("file://"):
        root = "file://" + str(Path(root.removeprefix("file://") or "/").expanduser().resolve())
    else:
        raise ConfigError(f"{variable} must start with file:// or s3://, got {raw!r}")
    # Locations are compared with the roots segment by segment (rules.root_segments).
    if rules.root_segments(root) is None:
        raise ConfigError(
            f"{variable} {raw!r} must have no '.', '..' or empty segments or control characters"
        )
    return root


def _extra_roots(raw: str, artifact_root: str) -> tuple[str, ...]:
    """The extra roots, each normalized like the root and of its scheme: the one artifact store
    the service opens serves a single scheme (and, for s3://, a single set of credentials)."""
    variable = "MODELREG_ARTIFACT_EXTRA_ROOTS"
    scheme = artifact_root.split("://")[0] + "://"
    roots = tuple(_artifact_root(item.strip(), variable) for item in raw.split(",") if item.strip())
    mixed = [root for root in roots if not root.startswith(scheme)]
    if mixed:
        raise ConfigError(
            f"{variable} must hold {scheme} roots like MODELREG_ARTIFACT_ROOT, got {mixed[0]!r}"
        )
    return roots


def _s3_options(read: EnvReader) -> S3Options:
    names = ("MODELREG_S3_ENDPOINT", "MODELREG_S3_ACCESS_KEY", "MODELREG_S3_SECRET_KEY")
    endpoint, access_key, secret_key = (read.text(name, "") for name in names)
    missing = [
        name for name, value in zip(names, (endpoint, access_key, secret_key), strict=True) if not value
    ]
    if missing:
        raise ConfigError(f"an s3:// MODELREG_ARTIFACT_ROOT needs {', '.join(missing)}")
    return S3Options(
        endpoint=endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=read.boolean("MODELREG_S3_SECURE", False),
        region=read.text("MODELREG_S3_REGION", "") or None,
    )
