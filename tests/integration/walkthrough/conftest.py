"""Both real servers in-process on 127.0.0.1:0 (SQLite, file:// artifacts), and the environment a
user's script sees: MODELREG_TRACKING_URI / MODELREG_REGISTRY_URI plus modelreg.set_tracking_uri."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import modelreg
from modelreg import config


@dataclass(frozen=True)
class Stack:
    tracking: str
    registry: str
    artifact_root: Path


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from registry_service import config as registry_config
    from registry_service import server as registry_server
    from tracking_service import config as tracking_config
    from tracking_service import server as tracking_server

    root = tmp_path_factory.mktemp("walkthrough")
    artifact_root = root / "artifacts"
    tracking, tracking_port = tracking_server.create_server(
        tracking_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=f"sqlite:///{root / 'tracking.db'}",
            artifact_root=artifact_root.as_uri(),
        )
    )
    tracking.start()
    registry, registry_port = registry_server.create_server(
        registry_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=f"sqlite:///{root / 'registry.db'}",
            tracking_target=f"127.0.0.1:{tracking_port}",
        )
    )
    registry.start()
    yield Stack(f"127.0.0.1:{tracking_port}", f"127.0.0.1:{registry_port}", artifact_root)
    registry.stop(None)
    tracking.stop(None)


@pytest.fixture(autouse=True)
def user_env(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    """What a user's shell and script set; each test gets its own empty model cache."""
    monkeypatch.setenv("MODELREG_TRACKING_URI", stack.tracking)
    monkeypatch.setenv("MODELREG_REGISTRY_URI", stack.registry)
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "cache"))
    modelreg.set_tracking_uri(stack.tracking)
    modelreg.set_registry_uri(stack.registry)
    yield stack
    while modelreg.active_run() is not None:
        modelreg.end_run()
    modelreg.flush_metrics()
    config.set_default_uri("tracking", None)
    config.set_default_uri("registry", None)
