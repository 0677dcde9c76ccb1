"""The MLflow user's walkthrough, written as they write it, with `mlflow` replaced by `modelreg`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score

import modelreg
import modelreg.pyfunc
import modelreg.sklearn
from modelreg.exceptions import InvalidArgument, NotFound
from modelreg.models import ModelIntegrityError
from modelreg.registry_client import RegistryClient


def house_data(rows: int = 100, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "square_feet": rng.uniform(600, 3500, rows),
            "bedrooms": rng.integers(1, 6, rows),
            "age": rng.uniform(0, 60, rows),
        }
    )
    y = 50_000 + 140 * x["square_feet"] + 12_000 * x["bedrooms"] - 900 * x["age"] + rng.normal(0, 9_000, rows)
    return x, y


def unique_name() -> str:
    return f"model-{uuid.uuid4().hex[:8]}"


def local_artifact(run_id: str, *parts: str) -> Path:
    """Where the file:// artifact store keeps a run's artifact on disk."""
    root = modelreg.get_run(run_id).info.artifact_uri
    return Path(url2pathname(urlparse(root).path)).joinpath(*parts)


def test_walkthrough() -> None:
    x, y = house_data()
    new_houses, _ = house_data(rows=7, seed=1)

    with modelreg.start_run(run_name="Linear_Regression_V1") as run:
        model = LinearRegression().fit(x, y)
        predictions = model.predict(x)
        rmse = float(np.sqrt(mean_squared_error(y, predictions)))
        r2 = float(r2_score(y, predictions))
        modelreg.log_param("alpha", 0.5)
        modelreg.log_metric("rmse", rmse)
        modelreg.log_metric("r2", r2)
        modelreg.sklearn.log_model(
            sk_model=model,
            artifact_path="linear_regression_model",
            registered_model_name="HousePricePredictor",
        )
        run_v1 = run.info.run_id

    with modelreg.start_run(run_name="Linear_Regression_V2") as run:
        model_v2 = LinearRegression(fit_intercept=False).fit(x, y)
        predictions = model_v2.predict(x)
        modelreg.log_param("fit_intercept", False)
        modelreg.log_metric("rmse", float(np.sqrt(mean_squared_error(y, predictions))))
        modelreg.log_metric("r2", float(r2_score(y, predictions)))
        modelreg.sklearn.log_model(
            sk_model=model_v2,
            artifact_path="linear_regression_model_v2",
            registered_model_name="HousePricePredictor",
        )
        run_v2 = run.info.run_id

    client = modelreg.Client()
    versions = client.search_model_versions(filter_string="name='HousePricePredictor'")
    assert [(v.version, v.current_stage, v.run_id) for v in versions] == [
        (2, "None", run_v2),
        (1, "None", run_v1),
    ]
    assert versions[1].source == f"runs:/{run_v1}/linear_regression_model"
    lineage = client.get_model_version("HousePricePredictor", 1).lineage
    assert lineage is not None
    assert lineage.params == {"alpha": "0.5"}
    assert lineage.metrics == {"rmse": pytest.approx(rmse), "r2": pytest.approx(r2)}

    for version in (1, 2):
        assert client.transition_model_version_stage(
            name="HousePricePredictor", version=version, stage="Staging"
        )
        assert client.transition_model_version_stage(
            name="HousePricePredictor", version=version, stage="Production"
        )
    assert client.get_model_version("HousePricePredictor", 1).current_stage == "Archived"
    production = client.get_latest_versions("HousePricePredictor", stages=["Production"])
    assert [v.version for v in production] == [2]
    assert production[0].source == f"runs:/{run_v2}/linear_regression_model_v2"

    served = modelreg.pyfunc.load_model("models:/HousePricePredictor/Production")
    np.testing.assert_array_equal(served.predict(new_houses), model_v2.predict(new_houses))
    assert served.model_version is not None and served.model_version.version == 2

    stages = [
        (e.version, e.from_value, e.to_value)
        for e in client.get_model_history("HousePricePredictor")
        if e.action == "STAGE_TRANSITIONED"
    ]
    assert stages == [
        (1, "None", "Staging"),
        (1, "Staging", "Production"),
        (2, "None", "Staging"),
        (2, "Staging", "Production"),
        (1, "Production", "Archived"),
    ]


def test_every_uri_form_loads_and_predicts_identically() -> None:
    x, y = house_data(seed=3)
    name = unique_name()
    with modelreg.start_run() as run:
        model = LinearRegression().fit(x, y)
        info = modelreg.sklearn.log_model(model, "model", registered_model_name=name, input_example=x.head(3))
    assert info.registered_model_version == 1
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    client = modelreg.Client()
    client.transition_model_version_stage(name, 1, "Production")
    client.set_registered_model_alias(name, "champion", 1)

    expected = model.predict(x)
    uris = [
        f"models:/{name}/1",
        f"models:/{name}/Production",
        f"models:/{name}/production",
        f"models:/{name}@champion",
        f"models:/{name}/latest",
        f"runs:/{run.info.run_id}/model",
    ]
    for uri in uris:
        served = modelreg.pyfunc.load_model(uri)
        np.testing.assert_array_equal(served.predict(x), expected, err_msg=uri)
        assert served.model_uri == uri
        assert served.metadata.signature is not None
        assert served.metadata.signature.input_names == ["square_feet", "bedrooms", "age"]
        raw = modelreg.sklearn.load_model(uri)
        assert isinstance(raw, LinearRegression)
        np.testing.assert_array_equal(raw.predict(x), expected, err_msg=uri)


def test_a_cached_version_downloads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = house_data(seed=4)
    name = unique_name()
    with modelreg.start_run():
        modelreg.sklearn.log_model(LinearRegression().fit(x, y), "model", registered_model_name=name)
    downloads: list[str] = []
    original = RegistryClient.download_model_version_file

    def counting(
        self: RegistryClient, name: str, version: int | str, path: str, *args: Any, **kwargs: Any
    ) -> Any:
        downloads.append(path)
        return original(self, name, version, path, *args, **kwargs)

    monkeypatch.setattr(RegistryClient, "download_model_version_file", counting)
    first = modelreg.pyfunc.load_model(f"models:/{name}/1")
    second = modelreg.pyfunc.load_model(f"models:/{name}/latest")
    lineage = modelreg.Client().get_model_version(name, 1).lineage
    assert lineage is not None
    assert sorted(downloads) == sorted(f.path for f in lineage.files)  # each file once, then the cache
    assert first.local_path == second.local_path
    np.testing.assert_array_equal(first.predict(x), second.predict(x))


def test_a_damaged_cache_entry_is_fetched_again() -> None:
    x, y = house_data(seed=5)
    name = unique_name()
    with modelreg.start_run():
        model = LinearRegression().fit(x, y)
        modelreg.sklearn.log_model(model, "model", registered_model_name=name)
    cached = modelreg.pyfunc.load_model(f"models:/{name}/1").local_path
    assert cached is not None
    (cached / "model.skops").write_bytes(b"not a model")
    np.testing.assert_array_equal(
        modelreg.pyfunc.load_model(f"models:/{name}/1").predict(x), model.predict(x)
    )


@pytest.mark.parametrize("victim", ["model.skops", "modelreg-model.json"])
def test_a_tampered_file_in_the_artifact_store_is_refused(victim: str) -> None:
    x, y = house_data(seed=6)
    name = unique_name()
    with modelreg.start_run() as run:
        modelreg.sklearn.log_model(LinearRegression().fit(x, y), "model", registered_model_name=name)
    stored = local_artifact(run.info.run_id, "model", victim)
    content = bytearray(stored.read_bytes())
    content[len(content) // 2] ^= 0x01
    stored.write_bytes(bytes(content))

    for uri in (f"models:/{name}/1", f"runs:/{run.info.run_id}/model"):
        with pytest.raises(ModelIntegrityError) as caught:
            modelreg.pyfunc.load_model(uri)
        assert caught.value.path == victim, uri
        assert caught.value.reason == "MODEL_INTEGRITY_ERROR"


def test_log_model_without_an_active_run_starts_one() -> None:
    x, y = house_data(seed=7)
    assert modelreg.active_run() is None
    info = modelreg.sklearn.log_model(LinearRegression().fit(x, y), "model", serialization_format="pickle")
    active = modelreg.active_run()
    assert active is not None and active.info.run_id == info.run_id
    assert info.registered_model_version is None
    assert info.metadata.serialization == "pickle"
    modelreg.end_run()
    assert modelreg.sklearn.load_model(info.model_uri, allow_pickle=True).coef_.tolist() == pytest.approx(
        LinearRegression().fit(x, y).coef_.tolist()
    )


def test_start_run_marks_failed_on_exception() -> None:
    with pytest.raises(RuntimeError), modelreg.start_run(run_name="broken") as run:
        modelreg.log_metric("loss", 1.5)
        raise RuntimeError("training diverged")
    failed = modelreg.get_run(run.info.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.metrics == {"loss": 1.5}
    assert modelreg.active_run() is None


def test_unknown_models_and_malformed_uris() -> None:
    with pytest.raises(NotFound) as missing:
        modelreg.pyfunc.load_model(f"models:/{unique_name()}/Production")
    assert missing.value.reason == "REGISTERED_MODEL_NOT_FOUND"
    with pytest.raises(InvalidArgument) as malformed:
        modelreg.pyfunc.load_model("models:/HousePricePredictor/Prod")
    assert malformed.value.reason == "INVALID_MODEL_URI"
