"""Building and running the tracking gRPC server."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1.health import HealthServicer

from modelreg._service import bootstrap
from modelreg._service.db import create_db_engine, ensure_schema
from modelreg.tracking.v1 import tracking_pb2_grpc as pb_grpc
from tracking_service.api.servicer import SERVICE_NAME, TrackingServicer
from tracking_service.artifacts import open_artifact_store
from tracking_service.config import Settings
from tracking_service.domain.artifacts import ArtifactService
from tracking_service.store import MIGRATIONS, UPGRADE_COMMAND
from tracking_service.store.sql import SqlTrackingStore

ERROR_DOMAIN = "tracking.modelreg"
log = logging.getLogger("modelreg.tracking")


def create_server(settings: Settings) -> tuple[grpc.Server, int]:
    """A ready-to-start server bound to settings.host:settings.port, and the port it got.

    Checks the schema (creating a fresh database when settings.auto_migrate allows; raises
    SchemaOutOfDate otherwise), opens the artifact store (ArtifactConfigError when unusable) and
    ensures the Default experiment exists.
    """
    server, port, _ = _build(settings)
    return server, port


def _build(settings: Settings) -> tuple[grpc.Server, int, HealthServicer]:
    engine = create_db_engine(settings.database_url, pool_size=settings.workers)
    ensure_schema(engine, MIGRATIONS, auto_upgrade=settings.auto_migrate, fix_command=UPGRADE_COMMAND)
    objects = open_artifact_store(settings.artifact_root, settings.s3)
    objects.check()
    store = SqlTrackingStore(engine, settings.artifact_root)
    store.ensure_default_experiment()
    server = bootstrap.new_server(
        service="tracking",
        error_domain=ERROR_DOMAIN,
        max_workers=settings.workers,
        json_logs=settings.json_logs,
    )
    pb_grpc.add_TrackingServiceServicer_to_server(
        TrackingServicer(store, ArtifactService(store, objects)), server
    )
    health = bootstrap.add_health_and_reflection(server, [SERVICE_NAME])
    port = bootstrap.bind(server, settings.host, settings.port)
    return server, port, health


def serve(settings: Settings) -> None:
    """Serves until SIGTERM/SIGINT, then drains in-flight calls for settings.grace_seconds."""
    bootstrap.configure_logging(settings.log_level)
    server, port, health = _build(settings)
    log.info(
        "tracking service listening on %s:%d, artifacts at %s", settings.host, port, settings.artifact_root
    )
    bootstrap.serve_until_signal(server, health, settings.grace_seconds)
