"""Prometheus metrics for both services, served on their own HTTP port (off by default), and the
JSON log formatter (MODELREG_LOG_FORMAT=json).

Each service owns a ``ServiceMetrics`` bound to its own CollectorRegistry, so two services in one
process (tests, ``modelreg server``) never collide on metric names.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

# Buckets sized for sub-millisecond local calls up to multi-second artifact streams.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    """Call counts and latency by method and code, artifact bytes, database pool use."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self._calls = Counter(
            "modelreg_rpc_calls",
            "gRPC calls handled, by method and status code.",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "modelreg_rpc_duration_seconds",
            "gRPC call duration, by method and status code.",
            ["service", "method", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._artifact_bytes = Counter(
            "modelreg_artifact_bytes",
            "Artifact bytes moved, by direction (in = uploaded, out = downloaded).",
            ["service", "direction"],
            registry=self.registry,
        )

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        """The interceptor's CallObserver."""
        short = method.rsplit("/", 1)[-1]
        self._calls.labels(self.service, short, code).inc()
        self._latency.labels(self.service, short, code).observe(seconds)

    def artifact_bytes(self, direction: str, count: int) -> None:
        self._artifact_bytes.labels(self.service, direction).inc(count)

    def watch_pool(self, engine: Engine) -> None:
        """Exposes the database connection pool's size and checked-out connections."""
        pool = engine.pool
        if not isinstance(pool, QueuePool):
            return
        in_use = Gauge(
            "modelreg_db_pool_checked_out",
            "Database connections in use.",
            ["service"],
            registry=self.registry,
        )
        in_use.labels(self.service).set_function(pool.checkedout)
        size = Gauge(
            "modelreg_db_pool_size", "Database connection pool size.", ["service"], registry=self.registry
        )
        size.labels(self.service).set_function(pool.size)

    def serve_http(self, port: int, host: str = "0.0.0.0") -> int:
        """Starts the /metrics HTTP endpoint in a daemon thread; returns the bound port.

        The thread lives as long as the process: a service process serves one gRPC server.
        """
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the call fields of a call record
    (``extra={"call": {...}}``) as top-level keys, and a traceback as one escaped string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        call = getattr(record, "call", None)
        if isinstance(call, dict):
            entry.update(call)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
