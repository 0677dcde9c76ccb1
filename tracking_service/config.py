"""Settings of the tracking service: the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from minio.helpers import check_bucket_name

from modelreg._service.db import database_url_error
from tracking_service.artifacts import S3Options

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


class ConfigError(ValueError):
    """A setting is invalid; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    """Tracking service settings, each read from one environment variable.

    - MODELREG_TRACKING_HOST: interface to listen on (default ``0.0.0.0``).
    - MODELREG_TRACKING_PORT: port, 0 picks a free one (default ``50051``).
    - MODELREG_TRACKING_DATABASE_URL: SQLAlchemy URL of the tracking database
      (default ``sqlite:///./.modelreg/tracking.db``; PostgreSQL and MySQL/MariaDB also work).
    - MODELREG_ARTIFACT_ROOT: where artifacts go: ``file://<dir>`` (a relative dir is resolved to an
      absolute ``file:///`` URI; default ``file://./.modelreg/artifacts``) or ``s3://bucket/prefix``.
    - MODELREG_S3_ENDPOINT (host:port), MODELREG_S3_ACCESS_KEY, MODELREG_S3_SECRET_KEY,
      MODELREG_S3_SECURE (true/false, default false), MODELREG_S3_REGION: the S3-compatible server,
      required when the artifact root is s3://.
    - MODELREG_TRACKING_WORKERS: gRPC worker threads, also the database pool size (default 16).
    - MODELREG_AUTO_MIGRATE: true (default) creates the schema of a fresh, empty database at start;
      an existing database is only ever upgraded by ``python -m tracking_service db upgrade``.
    - MODELREG_LOG_LEVEL: DEBUG, INFO (default), WARNING, ERROR.
    - MODELREG_LOG_FORMAT: ``text`` (default) or ``json`` (one JSON object per call log line).
    - MODELREG_GRACE_SECONDS: how long in-flight calls may finish after SIGTERM (default 10).
    - MODELREG_METRICS_PORT: port of the Prometheus ``/metrics`` HTTP endpoint; 0 (default) = off.
    - MODELREG_METRICS_HOST: interface the metrics endpoint listens on (default ``0.0.0.0``).
    """

    host: str = "0.0.0.0"
    port: int = 50051
    database_url: str = "sqlite:///./.modelreg/tracking.db"
    artifact_root: str = "file://./.modelreg/artifacts"
    s3: S3Options | None = None
    workers: int = 16
    auto_migrate: bool = True
    log_level: str = "INFO"
    json_logs: bool = False
    grace_seconds: float = 10.0
    metrics_port: int = 0
    metrics_host: str = "0.0.0.0"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        def get(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        database_url = get("MODELREG_TRACKING_DATABASE_URL", cls.database_url)
        _check_database_url("MODELREG_TRACKING_DATABASE_URL", database_url)
        artifact_root = _artifact_root(get("MODELREG_ARTIFACT_ROOT", cls.artifact_root))
        log_format = get("MODELREG_LOG_FORMAT", "text").lower()
        if log_format not in ("text", "json"):
            raise ConfigError(f"MODELREG_LOG_FORMAT must be text or json, got {log_format!r}")
        log_level = get("MODELREG_LOG_LEVEL", cls.log_level).upper()
        if log_level not in _LOG_LEVELS:
            raise ConfigError(f"MODELREG_LOG_LEVEL must be one of {sorted(_LOG_LEVELS)}, got {log_level!r}")
        return cls(
            host=get("MODELREG_TRACKING_HOST", cls.host),
            port=_integer(env, "MODELREG_TRACKING_PORT", cls.port, 0, 65535),
            database_url=database_url,
            artifact_root=artifact_root,
            s3=_s3_options(env) if artifact_root.startswith("s3://") else None,
            workers=_integer(env, "MODELREG_TRACKING_WORKERS", cls.workers, 1, 1024),
            auto_migrate=_boolean(env, "MODELREG_AUTO_MIGRATE", cls.auto_migrate),
            log_level=log_level,
            json_logs=log_format == "json",
            grace_seconds=_integer(env, "MODELREG_GRACE_SECONDS", int(cls.grace_seconds), 0, 3600),
            metrics_port=_integer(env, "MODELREG_METRICS_PORT", cls.metrics_port, 0, 65535),
            metrics_host=get("MODELREG_METRICS_HOST", cls.metrics_host),
        )


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE | _FALSE:
        return raw in _TRUE
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _artifact_root(raw: str) -> str:
    """``file://<dir>`` becomes an absolute ``file:///...`` URI; ``s3://bucket[/prefix]`` stays."""
    root = raw.rstrip("/")
    if root.startswith("s3://"):
        bucket = root.removeprefix("s3://").split("/")[0]
        try:  # S3's naming rules, as the minio SDK would enforce them at the first request
            check_bucket_name(bucket)
        except ValueError:
            raise ConfigError(f"MODELREG_ARTIFACT_ROOT {raw!r} does not name a valid S3 bucket") from None
        return root
    if root.startswith("file://"):
        path = root.removeprefix("file://") or "/"
        return "file://" + str(Path(path).expanduser().resolve())
    raise ConfigError(f"MODELREG_ARTIFACT_ROOT must start with file:// or s3://, got {raw!r}")


def _s3_options(env: Mapping[str, str]) -> S3Options:
    missing = [
        name
        for name in ("MODELREG_S3_ENDPOINT", "MODELREG_S3_ACCESS_KEY", "MODELREG_S3_SECRET_KEY")
        if not env.get(name, "").strip()
    ]
    if missing:
        raise ConfigError(f"an s3:// MODELREG_ARTIFACT_ROOT needs {', '.join(missing)}")
    return S3Options(
        endpoint=env["MODELREG_S3_ENDPOINT"].strip(),
        access_key=env["MODELREG_S3_ACCESS_KEY"].strip(),
        secret_key=env["MODELREG_S3_SECRET_KEY"].strip(),
        secure=_boolean(env, "MODELREG_S3_SECURE", False),
        region=env.get("MODELREG_S3_REGION", "").strip() or None,
    )


def _check_database_url(name: str, url: str) -> None:
    problem = database_url_error(url)
    if problem is None:
        return
    try:  # never print a password
        shown = sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        shown = url
    raise ConfigError(f"{name} {problem}: {shown!r}")
