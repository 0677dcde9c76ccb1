"""The two real servers in-process on 127.0.0.1:0, as the integration suites start them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from modelreg.config import TlsConfig
from modelreg_server.settings import TlsSettings
from registry_service import config as registry_config
from registry_service import server as registry_server
from tracking_service import config as tracking_config
from tracking_service import server as tracking_server


@dataclass(frozen=True)
class Services:
    """Targets (``host:port``) of running services and where the tracking service keeps files."""

    tracking: str
    registry: str
    artifact_root: Path


@contextmanager
def running_tracking(
    root: Path, database_url: str | None = None, *, tls: TlsSettings | None = None
) -> Iterator[tuple[str, Path]]:
    """A tracking server on SQLite under ``root`` (or ``database_url``) with file:// artifacts,
    serving TLS with ``tls``."""
    artifact_root = root / "artifacts"
    server, port = tracking_server.create_server(
        tracking_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=database_url or f"sqlite:///{root / 'tracking.db'}",
            artifact_root=artifact_root.as_uri(),
            tls=tls,
        )
    )
    server.start()
    try:
        yield f"127.0.0.1:{port}", artifact_root
    finally:
        server.stop(None).wait()


@contextmanager
def running_registry(
    root: Path,
    tracking_target: str,
    database_url: str | None = None,
    *,
    tls: TlsSettings | None = None,
    tracking_tls: TlsConfig | None = None,
) -> Iterator[str]:
    server: grpc.Server
    server, port = registry_server.create_server(
        registry_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=database_url or f"sqlite:///{root / 'registry.db'}",
            tracking_target=tracking_target,
            tls=tls,
            tracking_tls=tracking_tls,
        )
    )
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


@contextmanager
def running_services(root: Path) -> Iterator[Services]:
    """Both services on SQLite files under ``root``, the registry pointed at the tracking server."""
    with running_tracking(root) as (tracking, artifact_root), running_registry(root, tracking) as registry:
        yield Services(tracking, registry, artifact_root)
