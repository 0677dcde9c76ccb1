"""Real tracking and registry servers, in-process on 127.0.0.1:0 with SQLite and file:// artifacts,
driven through the modelreg client as users drive them."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelreg
from modelreg import config, fluent
from tests.servers import Services, running_services

ACTOR = "integration-tester"


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with running_services(tmp_path_factory.mktemp("services")) as running:
        yield running


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELREG_USER", ACTOR)


@pytest.fixture
def client(services: Services) -> Iterator[modelreg.Client]:
    with modelreg.Client(services.tracking, services.registry) as c:
        yield c


@pytest.fixture
def fluent_targets(services: Services) -> Iterator[Services]:
    """Points the fluent API at the test servers; ends leftover runs and forgets the targets after."""
    modelreg.set_tracking_uri(services.tracking)
    modelreg.set_registry_uri(services.registry)
    yield services
    while modelreg.active_run() is not None:
        modelreg.end_run()
    fluent.flush_metrics()
    config.set_default_uri("tracking", None)
    config.set_default_uri("registry", None)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small directory standing for a saved model."""
    directory = tmp_path / "model"
    (directory / "sub").mkdir(parents=True)
    (directory / "MLmodel").write_text("flavor: test\n")
    (directory / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 10)
    return directory


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
