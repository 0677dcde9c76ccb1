"""Building and running the tracking gRPC server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from grpc_health.v1.health import HealthServicer

from modelreg_server import bootstrap
from modelreg_server.access.servicer import SERVICE_NAME as ACCESS_SERVICE_NAME
from modelreg_server.access.setup import add_access_service, open_access
from modelreg_server.db import create_db_engine, ensure_schema
from modelreg_server.observability import ServiceMetrics
from tracking_service.api.servicer import SERVICE_NAME, TrackingServicer, add_to_server
from tracking_service.artifacts import open_artifact_store
from tracking_service.config import Settings
from tracking_service.domain.service import TrackingService
from tracking_service.store import MIGRATIONS, UPGRADE_COMMAND
from tracking_service.store.sql import SqlTrackingStore

ERROR_DOMAIN = "tracking.modelreg"
log = logging.getLogger("modelreg.tracking")


def create_server(settings: Settings) -> tuple[grpc.Server, int]:
    """A ready-to-start server bound to settings.host:settings.port, and the port it got.

    Checks the schema (creating a fresh database when settings.auto_migrate allows; raises
    SchemaOutOfDate otherwise), opens the artifact store (ArtifactConfigError when unusable),
    ensures the Default experiment exists, and starts the Prometheus endpoint when
    settings.metrics_port is set.
    """
    server, port, _ = _build(settings)
    return server, port


def _build(settings: Settings) -> tuple[grpc.Server, int, HealthServicer]:
    # The artifact store first: an unreachable S3 endpoint must not leave a half-created database.
    objects = open_artifact_store(settings.artifact_root, settings.s3, settings.extra_artifact_roots)
    with _quiet("urllib3"):  # its retry warnings would bury the one line that says what failed
        objects.check()
        # Experiments may lie under the extra roots too, written by the same store: each must be
        # usable by it (a writable directory, a bucket these credentials reach).
        for extra in settings.extra_artifact_roots:
            open_artifact_store(extra, settings.s3).check()
    objects.sweep()  # staging copies left by processes that died mid-upload
    engine = create_db_engine(settings.database_url, pool_size=settings.workers)
    ensure_schema(engine, MIGRATIONS, auto_upgrade=settings.auto_migrate, fix_command=UPGRADE_COMMAND)
    store = SqlTrackingStore(engine, settings.artifact_root)
    store.ensure_default_experiment()
    store.applied_writes.start_pruning(settings.idempotency_hours)
    access = open_access(settings.auth, pool_size=settings.workers, auto_migrate=settings.auto_migrate)
    metrics = ServiceMetrics("tracking")
    metrics.watch_pool(engine)
    server = bootstrap.new_server(
        service="tracking",
        error_domain=ERROR_DOMAIN,
        max_workers=settings.workers,
        observer=metrics.observe_call,
        authenticator=access.authenticator,
        stream_limits=settings.streams,
    )
    servicer = TrackingServicer(
        TrackingService(store, objects, settings.artifact_roots, settings.auth.policy),
        count_bytes=metrics.artifact_bytes,
    )
    add_to_server(servicer, server)
    add_access_service(server, access)
    health = bootstrap.add_health_and_reflection(
        server, [SERVICE_NAME, ACCESS_SERVICE_NAME], enable_reflection=settings.reflection
    )
    port = bootstrap.bind(server, settings.host, settings.port, settings.tls)
    if settings.metrics_port:
        metrics.serve_http(settings.metrics_port, settings.metrics_host)
    return server, port, health


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def serve(settings: Settings) -> None:
    """Serves until SIGTERM/SIGINT, then drains in-flight calls for settings.grace_seconds."""
    bootstrap.configure_logging(settings.log_level, json_format=settings.json_logs)
    server, port, health = _build(settings)
    log.info(
        "tracking service listening on %s:%d%s, artifacts at %s%s",
        settings.host,
        port,
        bootstrap.tls_note(settings.tls),
        settings.artifact_root,
        f", metrics on :{settings.metrics_port}/metrics" if settings.metrics_port else "",
    )
    bootstrap.serve_until_signal(server, health, settings.grace_seconds)
