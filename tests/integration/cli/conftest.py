"""Both real servers in-process on 127.0.0.1:0, seeded through the modelreg client with two runs and
two versions of one model, for the `modelreg` CLI to read and change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import modelreg
import modelreg.sklearn
from modelreg import config
from tests.servers import running_services


@dataclass(frozen=True)
class Seeded:
    tracking: str
    registry: str
    model: str
    run_ids: tuple[str, str]

    def targets(self) -> list[str]:
        return ["--tracking-uri", self.tracking, "--registry-uri", self.registry]


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with running_services(tmp_path_factory.mktemp("cli")) as services:
        yield _seed(services.tracking, services.registry)


def _seed(tracking_target: str, registry_target: str) -> Seeded:
    """Two runs and two registered versions, logged through the fluent API as a user would."""
    modelreg.set_tracking_uri(tracking_target)
    modelreg.set_registry_uri(registry_target)
    model = f"Prices-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    y = 3 * x["a"] - x["b"]
    modelreg.set_experiment("cli-experiment")
    run_ids = []
    for name, fit_intercept in (("first", True), ("second", False)):
        with modelreg.start_run(run_name=name) as run:
            modelreg.log_param("fit_intercept", fit_intercept)
            modelreg.log_metric("rmse", 0.5)
            modelreg.sklearn.log_model(
                LinearRegression(fit_intercept=fit_intercept).fit(x, y), "model", registered_model_name=model
            )
            run_ids.append(run.info.run_id)
    config.set_default_uri("tracking", None)
    config.set_default_uri("registry", None)
    return Seeded(tracking_target, registry_target, model, (run_ids[0], run_ids[1]))


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
