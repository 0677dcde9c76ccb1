"""Both real servers in-process on 127.0.0.1:0 (SQLite, file:// artifacts), and the environment a
user's script sees: MODELREG_TRACKING_URI / MODELREG_REGISTRY_URI plus modelreg.set_tracking_uri."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import modelreg
from modelreg import config
from tests.servers import Services as Stack
from tests.servers import running_services


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_services(tmp_path_factory.mktemp("walkthrough")) as running:
        yield running


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
