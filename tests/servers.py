"""The two real servers in-process on 127.0.0.1:0, as the integration suites start them, and a
tiny workflow to run against them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelreg import RegistryClient, TrackingClient
from modelreg.config import TlsConfig
from modelreg.entities import ModelVersion
from modelreg_server.settings import AuthSettings, TlsSettings
from registry_service import config as registry_config
from registry_service import server as registry_server
from tests.conftest import _free_port as free_port
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
    serving_reports_per_minute: int = registry_config.Settings.serving_reports_per_minute,
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
            serving_reports_per_minute=serving_reports_per_minute,
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


class RegistryProcess:
    """``python -m registry_service serve`` on a database already at the schema's head, on a fixed
    port: stopped (SIGTERM), killed (SIGKILL) and started again at will. ``env`` adds settings."""

    def __init__(self, database_url: str, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        base = {key: value for key, value in os.environ.items() if not key.startswith("MODELREG_")}
        self._env = {
            **base,
            "MODELREG_REGISTRY_HOST": "127.0.0.1",
            "MODELREG_REGISTRY_PORT": str(self.port),
            "MODELREG_REGISTRY_DATABASE_URL": database_url,
            "MODELREG_AUTO_MIGRATE": "false",
            "MODELREG_LOG_LEVEL": "WARNING",
            # Versions registered without a run never ask tracking.
            "MODELREG_TRACKING_TARGET": "127.0.0.1:9",
            **(env or {}),
        }
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Starts the server and waits until its health check answers SERVING."""
        process = subprocess.Popen(
            [sys.executable, "-m", "registry_service", "serve"],
            env=self._env,
            cwd=self._cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._process = process
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    raise AssertionError(f"registry exited early: {stderr}")
                try:
                    request = health_pb2.HealthCheckRequest(service="modelreg.registry.v1.RegistryService")
                    if stub.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    time.sleep(0.1)
        raise AssertionError(f"{self.target} did not become SERVING")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stops the server (SIGTERM: gracefully; SIGKILL: at once); its exit status."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else 0
        process.send_signal(sig)
        return process.wait(timeout=30)
