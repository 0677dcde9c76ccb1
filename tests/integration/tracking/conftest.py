"""The tracking server in-process on 127.0.0.1:0 over each database backend, file:// artifacts,
driven through the generated stubs over a real channel."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from modelreg.tracking.v1 import tracking_pb2_grpc as pb_grpc
from tests.conftest import Backend
from tests.integration.ops.conftest import free_port
from tracking_service.artifacts.file import LOCK_NAME
from tracking_service.config import Settings
from tracking_service.server import create_server


@dataclass(frozen=True)
class Tracking:
    stub: pb_grpc.TrackingServiceStub
    channel: grpc.Channel
    settings: Settings
    target: str  # host:port


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[Tracking]:
    """Starts a server for ``settings`` and yields a connected stub; stops both afterwards."""
    server, port = create_server(settings)
    server.start()
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target)
    try:
        yield Tracking(pb_grpc.TrackingServiceStub(channel), channel, settings, target)
    finally:
        channel.close()
        server.stop(None).wait()


@contextlib.contextmanager
def serving_process(
    root: Path, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], pb_grpc.TrackingServiceStub]]:
    """``python -m tracking_service serve`` on SQLite and file:// artifacts under ``root``, once
    healthy, with a connected stub; stopped afterwards unless the test ended it."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tracking_service", "serve"],
        env={
            **os.environ,
            "MODELREG_TRACKING_HOST": "127.0.0.1",
            "MODELREG_TRACKING_PORT": str(port),
            "MODELREG_TRACKING_DATABASE_URL": f"sqlite:///{root / 'tracking.db'}",
            "MODELREG_ARTIFACT_ROOT": (root / "artifacts").as_uri(),
            "MODELREG_LOG_LEVEL": "WARNING",
            **env,
        },
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 30
        while True:
            try:
                health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline, "server did not become healthy"
                assert server.poll() is None, "server exited"
                time.sleep(0.2)
        yield server, pb_grpc.TrackingServiceStub(channel)
    finally:
        channel.close()
        if server.poll() is None:
            server.terminate()
            server.wait(30)


@pytest.fixture
def tracking_settings(backend: Backend, tmp_path: Path) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        database_url=backend.url,
        artifact_root=(tmp_path / "artifacts").as_uri(),
        # 6 client streams at once (the concurrent-upload tests' writers): 8 workers less a reserve.
        workers=8,
    )


@pytest.fixture
def tracking(tracking_settings: Settings) -> Iterator[Tracking]:
    with running(tracking_settings) as started:
        yield started


def error_info(call: Callable[[], object]) -> tuple[grpc.RpcError, error_details_pb2.ErrorInfo]:
    """Runs a failing call; returns its error and the single ErrorInfo it carries."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None and len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.domain == "tracking.modelreg"
    return error, info


def rpc_error(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    """Runs a failing call; returns its status code and the reason of its single ErrorInfo."""
    error, info = error_info(call)
    return error.code(), info.reason  # type: ignore[attr-defined]


def stored_files(root: Path) -> list[Path]:
    """Every file under an artifact root, staging included, but the staging directories' lock files."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != LOCK_NAME)
