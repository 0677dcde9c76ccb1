"""The two real servers in-process on 127.0.0.1:0, as the integration suites start them, and a
tiny workflow to run against them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from modelreg import RegistryClient, TrackingClient
from modelreg.config import TlsConfig
from modelreg.entities import ModelVersion
from modelreg_server.settings import AuthSettings, TlsSettings
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
    root: Path,
    database_url: str | None = None,
    auth: AuthSettings | None = None,
    *,
    tls: TlsSettings | None = None,
) -> Iterator[tuple[str, Path]]:
    """A tracking server on SQLite under ``root`` (or ``database_url``) with file:// artifacts;
    access control as ``auth`` says (off by default), serving TLS with ``tls``."""
    artifact_root = root / "artifacts"
    server, port = tracking_server.create_server(
        tracking_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=database_url or f"sqlite:///{root / 'tracking.db'}",
            artifact_root=artifact_root.as_uri(),
            auth=auth or AuthSettings(),
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
    auth: AuthSettings | None = None,
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
            auth=auth or AuthSettings(),
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
def running_services(root: Path, auth: AuthSettings | None = None) -> Iterator[Services]:
    """Both services on SQLite files under ``root``, the registry pointed at the tracking server;
    with ``auth``, both share its access database."""
    with (
        running_tracking(root, auth=auth) as (tracking, artifact_root),
        running_registry(root, tracking, auth=auth) as registry,
    ):
        yield Services(tracking, registry, artifact_root)


def register_a_run(tracking: TrackingClient, registry: RegistryClient, files: Path) -> ModelVersion:
    """An experiment, a run with a metric and a model file, and a version registered from it: the
    registry checks the run at the tracking service before it answers."""
    experiment = tracking.create_experiment(f"tls-{uuid.uuid4().hex[:8]}")
    run_id = tracking.create_run(experiment.experiment_id).info.run_id
    tracking.log_metric(run_id, "rmse", 0.5)
    model = files / "model.bin"
    model.write_bytes(b"weights")
    tracking.log_artifact(run_id, model, "model")
    name = f"Model-{uuid.uuid4().hex[:8]}"
    registry.create_registered_model(name)
    version = registry.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    fetched = registry.get_model_version(name, version.version)
    assert fetched.lineage is not None
    assert (fetched.lineage.run_id, dict(fetched.lineage.metrics)) == (run_id, {"rmse": 0.5})
    return fetched
