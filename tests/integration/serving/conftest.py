"""A model logged and registered through the client on real services, loaded with
modelreg.pyfunc.load_model, served by the real app under uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sklearn.linear_model import LinearRegression

import modelreg
import modelreg.pyfunc
import modelreg.sklearn
from modelreg import config
from modelreg.models.signature import ModelSignature
from modelreg.pyfunc import PyFuncModel
from modelreg.serving import logs
from modelreg.serving.app import ServeSettings, Slot, create_app
from modelreg.serving.metrics import ServingMetrics
from tests.conftest import _free_port
from tests.integration.walkthrough.test_walkthrough import house_data
from tests.servers import Services, running_services

# Small enough to test 413 cheaply, large enough for every other body of the suite.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Loaded:
    """The fields of slot.LoadedVersion the app reads."""

    name: str | None
    version: int | None
    model: PyFuncModel
    signature: ModelSignature | None
    metadata: Mapping[str, Any]


@dataclass
class SimpleSlot:
    """A slot over one loaded model that tests can empty; it counts leases and records stop()."""

    loaded: Loaded | None
    following: bool = True
    leases: int = 0
    stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Loaded]:
        loaded = self.loaded
        if loaded is None:
            raise RuntimeError("no model loaded")
        with self.lock:
            self.leases += 1
        yield loaded

    @property
    def current(self) -> Loaded | None:
        return self.loaded

    def stop(self, timeout: float = 10.0) -> None:
        self.stopped = True


@dataclass
class Served:
    url: str
    slot: SimpleSlot
    metrics: ServingMetrics
    model: PyFuncModel
    log: io.StringIO


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with running_services(tmp_path_factory.mktemp("services")) as running:
        yield running


@pytest.fixture(scope="module")
def model(services: Services, tmp_path_factory: pytest.TempPathFactory) -> PyFuncModel:
    """HousePricePredictor version 1, with the signature its input example gives."""
    return _registered_model(services, tmp_path_factory.mktemp("model"))


def _registered_model(services: Services, root: Path) -> PyFuncModel:
    modelreg.set_tracking_uri(services.tracking)
    modelreg.set_registry_uri(services.registry)
    try:
        x, y = house_data()
        with modelreg.start_run():
            modelreg.sklearn.log_model(
                sk_model=LinearRegression().fit(x, y),
                artifact_path="model",
                registered_model_name="HousePricePredictor",
                input_example=x.head(3),
            )
        return modelreg.pyfunc.load_model("models:/HousePricePredictor/1", dst_path=root / "loaded")
    finally:
        config.set_default_uri("tracking", None)
        config.set_default_uri("registry", None)


def loaded_version(model: PyFuncModel) -> Loaded:
    assert model.model_version is not None
    return Loaded(
        name=model.model_version.name,
        version=int(model.model_version.version),
        model=model,
        signature=model.metadata.signature,
        metadata={"served_uri": "models:/HousePricePredictor/1", "version": 1},
    )


SETTINGS = ServeSettings(max_body_bytes=MAX_BODY_BYTES)


@contextlib.contextmanager
def serving(
    slot: Slot,
    metrics: ServingMetrics,
    settings: ServeSettings = SETTINGS,
) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread; stopped (gracefully) on exit."""
    port = _free_port()
    app = create_app(slot, settings, metrics)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            thread.join(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def served(model: PyFuncModel) -> Iterator[Served]:
    log = io.StringIO()
    logs.configure(log)
    slot = SimpleSlot(loaded_version(model))
    metrics = ServingMetrics()
    try:
        with serving(slot, metrics) as url:
            yield Served(url, slot, metrics, model, log)
    finally:
        logs.configure()
