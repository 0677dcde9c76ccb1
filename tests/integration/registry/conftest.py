"""Both real servers in-process on 127.0.0.1:0, each on its own database of the backend under test:
the tracking service, and the registry with the real TrackingLineage pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1 import registry_pb2_grpc
from modelreg.tracking.v1 import tracking_pb2_grpc
from registry_service import config as registry_config
from registry_service import server as registry_server
from tests.conftest import Backend
from tracking_service import config as tracking_config
from tracking_service import server as tracking_server

ACTOR = (("x-modelreg-actor", "carol"),)
# The default: the fault tests check that failures come back within it.
TRACKING_TIMEOUT_SECONDS = 5.0


@dataclass
class Servers:
    tracking: grpc.Server
    registry_stub: registry_pb2_grpc.RegistryServiceStub
    tracking_stub: tracking_pb2_grpc.TrackingServiceStub
    registry_channel: grpc.Channel


@pytest.fixture
def servers(
    backend: Backend, database_url_factory: Callable[[str], str], tmp_path: Path
) -> Iterator[Servers]:
    tracking, tracking_port = tracking_server.create_server(
        tracking_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=database_url_factory(backend.name),
            artifact_root=(tmp_path / "artifacts").as_uri(),
            # 6 uploads at once (racing a registration): 8 workers less a reserve admit them.
            workers=8,
        )
    )
    tracking.start()
    registry, registry_port = registry_server.create_server(
        registry_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=backend.url,
            tracking_target=f"127.0.0.1:{tracking_port}",
            tracking_timeout_seconds=TRACKING_TIMEOUT_SECONDS,
            workers=4,
        )
    )
    registry.start()
    registry_channel = grpc.insecure_channel(f"127.0.0.1:{registry_port}")
    tracking_channel = grpc.insecure_channel(f"127.0.0.1:{tracking_port}")
    yield Servers(
        tracking=tracking,
        registry_stub=registry_pb2_grpc.RegistryServiceStub(registry_channel),
        tracking_stub=tracking_pb2_grpc.TrackingServiceStub(tracking_channel),
        registry_channel=registry_channel,
    )
    registry_channel.close()
    tracking_channel.close()
    registry.stop(None).wait()
    tracking.stop(None).wait()


@pytest.fixture
def model(servers: Servers) -> str:
    """A new registered model's name."""
    name = f"model-{uuid.uuid4().hex[:8]}"
    servers.registry_stub.CreateRegisteredModel(
        rpb.CreateRegisteredModelRequest(name=name), timeout=10, metadata=ACTOR
    )
    return name
