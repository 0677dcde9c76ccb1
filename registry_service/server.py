"""Builds and runs the registry gRPC server."""

from __future__ import annotations

import logging
import threading
from typing import Any

import grpc
from grpc_health.v1 import health
from sqlalchemy.engine import Engine

from modelreg.registry.v1 import registry_pb2_grpc, webhooks_pb2_grpc
from modelreg_server.access.service_identity import ServiceIdentity
from modelreg_server.access.servicer import SERVICE_NAME as ACCESS_SERVICE_NAME
from modelreg_server.access.setup import Access, add_access_service, open_access
from modelreg_server.bootstrap import (
    add_health_and_reflection,
    bind,
    configure_logging,
    new_server,
    serve_until_signal,
    tls_note,
)
from modelreg_server.db import create_db_engine, ensure_schema
from modelreg_server.observability import ServiceMetrics
from registry_service.api.servicer import RegistryServicer
from registry_service.api.webhooks_servicer import WebhookServicer
from registry_service.config import Settings
from registry_service.domain.errors import ERROR_DOMAIN
from registry_service.domain.feed import EventFeed
from registry_service.domain.ports import LineagePort
from registry_service.domain.service import RegistryService
from registry_service.domain.webhooks import WebhookService
from registry_service.lineage import TrackingLineage
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.sql import SqlRegistryStore
from registry_service.store.webhooks import SqlWebhookStore
from registry_service.webhook_delivery import DeliveryWorker, HttpSender, resolver

SERVICE_NAME = "modelreg.registry.v1.RegistryService"
WEBHOOK_SERVICE_NAME = "modelreg.registry.v1.WebhookService"
# The registry's own user in the access database: it calls tracking as this service principal.
SERVICE_USER = "modelreg-registry"
UPGRADE_COMMAND = "python -m registry_service db upgrade"

log = logging.getLogger("modelreg.registry")


def _build(settings: Settings, lineage: LineagePort | None) -> tuple[grpc.Server, int, health.HealthServicer]:
    engine = create_db_engine(settings.database_url, pool_size=settings.workers)
    ensure_schema(engine, MIGRATIONS_DIR, auto_upgrade=settings.auto_migrate, fix_command=UPGRADE_COMMAND)
    access = open_access(settings.auth, pool_size=settings.workers, auto_migrate=settings.auto_migrate)
    if lineage is None:
        # With access control on, the registry reaches tracking as its own service user.
        identity = ServiceIdentity(access.store, SERVICE_USER) if access.store is not None else None
        lineage = TrackingLineage.connect(
            settings.tracking_target,
            settings.tracking_timeout_seconds,
            max_checks=settings.workers,
            tls=settings.tracking_tls,
            identity=identity,
        )
    metrics = ServiceMetrics("registry")
    metrics.watch_pool(engine)
    server = new_server(
        service="registry",
        error_domain=ERROR_DOMAIN,
        max_workers=settings.workers,
        observer=metrics.observe_call,
        authenticator=access.authenticator,
        stream_limits=settings.streams,
        long_streams=[f"/{SERVICE_NAME}/WatchModelEvents"],
        long_stream_workers=settings.watch.max_watchers,
    )
    store = SqlRegistryStore(engine)
    store.applied_writes.start_pruning(settings.idempotency_hours)
    # One reader of the event log for every watch of this process, woken by its own commits.
    feed = EventFeed(store, max_watchers=settings.watch.max_watchers)
    store.on_append(feed.wake)
    service = RegistryService(
        store,
        lineage,
        settings.auth.policy,
        watch_limits=settings.watch,
        feed=feed,
        serving_reports_per_minute=settings.serving_reports_per_minute,
    )
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(service), server)
    worker = _add_webhooks(server, engine, service, settings, access)
    add_access_service(server, access)
    health_servicer = add_health_and_reflection(
        server,
        [SERVICE_NAME, WEBHOOK_SERVICE_NAME, ACCESS_SERVICE_NAME],
        enable_reflection=settings.reflection,
    )
    port = bind(server, settings.host, settings.port, settings.tls)
    if settings.metrics_port:
        metrics.serve_http(settings.metrics_port, settings.metrics_host)
    return (server if worker is None else _WithWorker(server, worker)), port, health_servicer


def _add_webhooks(
    server: grpc.Server, engine: Engine, registry: RegistryService, settings: Settings, access: Access
) -> DeliveryWorker | None:
    """The WebhookService; returns this process's delivery worker (None when turned off)."""
    store = SqlWebhookStore(engine)
    sender = HttpSender(settings.webhooks)
    webhooks = WebhookService(
        store,
        registry,
        sender,
        resolver(settings.webhooks.dns_timeout_seconds),
        settings.auth.policy,
        settings.webhooks,
        identities=access.store,
        admin_group=settings.auth.admin_group,
        bootstrap_admin=settings.auth.bootstrap_admin_token is not None,
    )
    webhooks_pb2_grpc.add_WebhookServiceServicer_to_server(WebhookServicer(webhooks), server)
    if not settings.webhooks.worker:
        return None
    return DeliveryWorker(store, sender, settings.webhooks, webhooks.lost_access)


class _WithWorker(grpc.Server):
    """The gRPC server, whose start and stop also start and stop the webhook delivery worker."""

    def __init__(self, server: grpc.Server, worker: DeliveryWorker) -> None:
        self._server = server
        self._worker = worker

    def start(self) -> None:
        self._server.start()
        self._worker.start()

    def stop(self, grace: float | None = None) -> threading.Event:
        self._worker.stop()
        return self._server.stop(grace)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)


def create_server(settings: Settings, lineage: LineagePort | None = None) -> tuple[grpc.Server, int]:
    """A bound, not yet started server and its port.

    Raises SchemaOutOfDate when the database is not at the migration head. ``lineage`` replaces
    the tracking service (tests); by default it is TrackingLineage on MODELREG_TRACKING_TARGET.
    Starts the Prometheus endpoint when settings.metrics_port is set.
    """
    server, port, _ = _build(settings, lineage)
    return server, port


def serve(settings: Settings) -> None:
    """Serves until SIGTERM/SIGINT, then stops gracefully within settings.grace_seconds."""
    configure_logging(settings.log_level, json_format=settings.json_logs)
    server, port, health_servicer = _build(settings, None)
    log.info(
        "registry listening on %s:%d%s (tracking at %s)%s",
        settings.host,
        port,
        tls_note(settings.tls),
        settings.tracking_target,
        f", metrics on :{settings.metrics_port}/metrics" if settings.metrics_port else "",
    )
    serve_until_signal(server, health_servicer, settings.grace_seconds)
