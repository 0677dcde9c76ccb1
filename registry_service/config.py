"""Settings of the registry service: the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from modelreg._service.db import database_url_error

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


class ConfigError(ValueError):
    """A setting is invalid; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    """Registry service settings, each read from one environment variable.

    - MODELREG_REGISTRY_HOST: interface to listen on (default ``0.0.0.0``).
    - MODELREG_REGISTRY_PORT: port, 0 picks a free one (default ``50052``).
    - MODELREG_REGISTRY_DATABASE_URL: SQLAlchemy URL of the registry's own database (default
      ``sqlite:///./.modelreg/registry.db``; PostgreSQL and MySQL/MariaDB also work). Never the
      tracking database: the registry learns about runs only over gRPC.
    - MODELREG_TRACKING_TARGET: ``host:port`` of the tracking service the registry asks about runs
      (default ``localhost:50051``).
    - MODELREG_TRACKING_TIMEOUT_SECONDS: overall deadline of one lineage check, retries included
      (default 5). When it passes, CreateModelVersion fails with UNAVAILABLE and writes nothing.
    - MODELREG_REGISTRY_WORKERS: gRPC worker threads, also the database pool size (default 16).
    - MODELREG_AUTO_MIGRATE: true (default) creates the schema of a fresh, empty database at start;
      an existing database is only ever upgraded by ``python -m registry_service db upgrade``.
    - MODELREG_LOG_LEVEL: DEBUG, INFO (default), WARNING, ERROR.
    - MODELREG_LOG_FORMAT: ``text`` (default) or ``json`` (one JSON object per call log line).
    - MODELREG_GRACE_SECONDS: how long in-flight calls may finish after SIGTERM (default 10).
    - MODELREG_METRICS_PORT: port of the Prometheus ``/metrics`` HTTP endpoint; 0 (default) = off.
    - MODELREG_METRICS_HOST: interface the metrics endpoint listens on (default ``0.0.0.0``).
    """

    host: str = "0.0.0.0"
    port: int = 50052
    database_url: str = "sqlite:///./.modelreg/registry.db"
    tracking_target: str = "localhost:50051"
    tracking_timeout_seconds: float = 5.0
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

        database_url = get("MODELREG_REGISTRY_DATABASE_URL", cls.database_url)
        _check_database_url("MODELREG_REGISTRY_DATABASE_URL", database_url)
        log_format = get("MODELREG_LOG_FORMAT", "text").lower()
        if log_format not in ("text", "json"):
            raise ConfigError(f"MODELREG_LOG_FORMAT must be text or json, got {log_format!r}")
        log_level = get("MODELREG_LOG_LEVEL", cls.log_level).upper()
        if log_level not in _LOG_LEVELS:
            raise ConfigError(f"MODELREG_LOG_LEVEL must be one of {sorted(_LOG_LEVELS)}, got {log_level!r}")
        return cls(
            host=get("MODELREG_REGISTRY_HOST", cls.host),
            port=int(_number(env, "MODELREG_REGISTRY_PORT", cls.port, 0, 65535, integer=True)),
            database_url=database_url,
            tracking_target=get("MODELREG_TRACKING_TARGET", cls.tracking_target),
            tracking_timeout_seconds=_number(
                env, "MODELREG_TRACKING_TIMEOUT_SECONDS", cls.tracking_timeout_seconds, 0.1, 600
            ),
            workers=int(_number(env, "MODELREG_REGISTRY_WORKERS", cls.workers, 1, 1024, integer=True)),
            auto_migrate=_boolean(env, "MODELREG_AUTO_MIGRATE", cls.auto_migrate),
            log_level=log_level,
            json_logs=log_format == "json",
            grace_seconds=_number(env, "MODELREG_GRACE_SECONDS", cls.grace_seconds, 0, 3600),
            metrics_port=int(_number(env, "MODELREG_METRICS_PORT", cls.metrics_port, 0, 65535, integer=True)),
            metrics_host=get("MODELREG_METRICS_HOST", cls.metrics_host),
        )


def _number(
    env: Mapping[str, str], name: str, default: float, low: float, high: float, *, integer: bool = False
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {'an integer' if integer else 'a number'}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE | _FALSE:
        return raw in _TRUE
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _check_database_url(name: str, url: str) -> None:
    problem = database_url_error(url)
    if problem is None:
        return
    try:  # never print a password
        shown = sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        shown = url
    raise ConfigError(f"{name} {problem}: {shown!r}")
