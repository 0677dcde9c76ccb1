"""Custom Python models stored as code, logged, registered and loaded through real servers, as an
MLflow user writes them (``python_model="model.py"`` calling ``set_model``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import modelreg
import modelreg.pyfunc
import modelreg.sklearn
from modelreg.exceptions import InvalidArgument
from modelreg.models import CodeNotAllowedError, ModelIntegrityError
from tests.servers import Services

# Writes a marker when it runs (so a test can prove it did not), reads an artifact and the model
# config in load_context, and imports a helper from its code_paths.
MODEL_CODE = """
import os
from pathlib import Path

import pandas as pd

import modelreg
from price_helpers import weighted

if os.environ.get("PYFUNC_TEST_MARKER"):
    Path(os.environ["PYFUNC_TEST_MARKER"]).write_text("ran")


class PriceModel(modelreg.pyfunc.PythonModel):
    def load_context(self, context):
        table = pd.read_csv(context.artifacts["weights"])
        self.weights = dict(zip(table["column"], table["weight"]))
        self.bias = context.model_config["bias"]
        self.artifacts = dict(context.artifacts)

    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        return (weighted(model_input, self.weights) + self.bias) * scale


modelreg.models.set_model(PriceModel())
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fluent_targets: Services) -> Iterator[Path]:
    """A user's project directory: the model file, a helper module and a weights table; each test
    gets an empty model cache and a marker path that the model file writes when it runs."""
    del fluent_targets
    src = tmp_path / "project"
    src.mkdir()
    (src / "model.py").write_text(MODEL_CODE)
    (src / "price_helpers.py").write_text(
        "def weighted(frame, weights):\n    return sum(frame[c] * w for c, w in weights.items())\n"
    )
    pd.DataFrame({"column": ["sqft", "rooms"], "weight": [2.0, 100.0]}).to_csv(
        src / "weights.csv", index=False
    )
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYFUNC_TEST_MARKER", str(tmp_path / "ran.marker"))
    yield src


def marker(project: Path) -> Path:
    return project.parent / "ran.marker"


def houses() -> pd.DataFrame:
    return pd.DataFrame({"sqft": [1000.0, 1500.0, 2200.0], "rooms": [2, 3, 4]})


def log_price_model(project: Path, name: str | None = None, **kwargs: object) -> modelreg.sklearn.ModelInfo:
    with modelreg.start_run():
        return modelreg.pyfunc.log_model(
            name="price",
            python_model=str(project / "model.py"),
            artifacts={"weights": str(project / "weights.csv")},
            code_paths=[str(project / "price_helpers.py")],
            model_config={"bias": 5.0},
            input_example=houses().head(2),
            registered_model_name=name,
            **kwargs,  # type: ignore[arg-type]
        )


def stored_file(run_id: str, *parts: str) -> Path:
    """Where the file:// artifact store keeps a run's artifact on disk."""
    root = modelreg.get_run(run_id).info.artifact_uri
    return Path(url2pathname(urlparse(root).path)).joinpath(*parts)


def test_logged_registered_and_loaded_by_alias_it_predicts(project: Path, unique: str) -> None:
    name = f"price-{unique}"
    info = log_price_model(project, name)
    assert info.registered_model_version == 1
    modelreg.Client().set_registered_model_alias(name, "champion", 1)
    marker(project).unlink()  # logging ran the file once, to check it and infer the signature

    model = modelreg.pyfunc.load_model(f"models:/{name}@champion", allow_code=True)

    expected = houses()["sqft"] * 2.0 + houses()["rooms"] * 100.0 + 5.0
    np.testing.assert_allclose(model.predict(houses()), expected)
    np.testing.assert_allclose(model.predict(houses(), params={"scale": 2.0}), expected * 2)
    # A mapping is a DataFrame's columns; extra columns are dropped by the signature.
    np.testing.assert_allclose(model.predict({**houses().to_dict("list"), "noise": [0, 0, 0]}), expected)
    assert type(model.unwrap_python_model()).__name__ == "PriceModel"
    assert model.metadata.signature is not None and model.metadata.signature.input_names == ["sqft", "rooms"]
    assert marker(project).read_text() == "ran"


def test_artifacts_reach_load_context_as_verified_local_paths(project: Path, unique: str) -> None:
    # Artifacts from a run (runs:/) and from the registry (models:/) are copied into the model.
    with modelreg.start_run() as run:
        modelreg.log_artifact(str(project / "weights.csv"), "tables")
        sk = modelreg.sklearn.log_model(
            LinearRegression().fit(houses(), [1.0, 2.0, 3.0]), "base", registered_model_name=f"base-{unique}"
        )
        info = modelreg.pyfunc.log_model(
            name="price",
            python_model=str(project / "model.py"),
            artifacts={
                "weights": f"runs:/{run.info.run_id}/tables/weights.csv",
                "base": f"models:/base-{unique}/1",
                "notes": str(project),  # a directory
            },
            code_paths=[str(project / "price_helpers.py")],
            model_config={"bias": 0.0},
        )
    assert sk.registered_model_version == 1

    model = modelreg.pyfunc.load_model(info.model_uri, allow_code=True)

    local = model.local_path
    assert local is not None
    artifacts = model.unwrap_python_model().artifacts  # type: ignore[attr-defined]
    assert artifacts == {
        "weights": str((local / "artifacts/weights/weights.csv").resolve()),
        "base": str((local / "artifacts/base/model").resolve()),
        "notes": str((local / "artifacts/notes/project").resolve()),
    }
    assert Path(artifacts["weights"]).read_bytes() == (project / "weights.csv").read_bytes()
    assert modelreg.sklearn.load_model(artifacts["base"]).predict(houses()).shape == (3,)
    assert (Path(artifacts["notes"]) / "model.py").read_text() == MODEL_CODE
    np.testing.assert_allclose(model.predict(houses()), houses()["sqft"] * 2.0 + houses()["rooms"] * 100.0)


@pytest.mark.parametrize("victim", ["model.py", "code/price_helpers.py"])
def test_a_tampered_code_file_is_refused_before_any_code_runs(
    project: Path, unique: str, victim: str
) -> None:
    name = f"price-{unique}"
    info = log_price_model(project, name)
    marker(project).unlink()
    stored = stored_file(info.run_id, "price", *victim.split("/"))
    stored.write_text(stored.read_text() + "\nprint('tampered')\n")

    for uri in (f"models:/{name}/1", info.model_uri):
        with pytest.raises(ModelIntegrityError) as caught:
            modelreg.pyfunc.load_model(uri, allow_code=True)
        assert caught.value.path == victim, uri
    assert not marker(project).exists()


def test_loading_without_allow_code_is_refused_and_runs_nothing(project: Path, unique: str) -> None:
    name = f"price-{unique}"
    log_price_model(project, name)
    marker(project).unlink()

    with pytest.raises(CodeNotAllowedError) as caught:
        modelreg.pyfunc.load_model(f"models:/{name}/latest")
    assert caught.value.code == "FAILED_PRECONDITION"
    assert caught.value.reason == "CODE_NOT_ALLOWED"
    assert caught.value.metadata == {"model_file": "model.py"}
    assert not marker(project).exists()
    # The scikit-learn flavor never runs it either.
    with pytest.raises(Exception, match="python_function"):
        modelreg.sklearn.load_model(f"models:/{name}/latest")
    assert not marker(project).exists()


def test_a_model_instance_is_refused_and_no_run_starts(project: Path) -> None:
    class Inline(modelreg.pyfunc.PythonModel):
        def predict(self, context: object, model_input: object, params: object = None) -> object:
            return model_input

    with pytest.raises(InvalidArgument) as caught:
        modelreg.pyfunc.log_model(name="inline", python_model=Inline())  # type: ignore[arg-type]
    assert caught.value.reason == "MODEL_NOT_FROM_CODE"
    assert "set_model" in caught.value.message
    assert modelreg.active_run() is None
    del project


def test_get_model_dependencies_returns_the_recorded_requirements(project: Path, unique: str) -> None:
    name = f"price-{unique}"
    log_price_model(
        project, name, pip_requirements=["pandas>=2", "scipy==1.14.1"], extra_pip_requirements=["numpy"]
    )
    with modelreg.start_run():
        modelreg.sklearn.log_model(
            LinearRegression().fit(houses(), [1.0, 2.0, 3.0]), "sk", registered_model_name=f"sk-{unique}"
        )

    marker(project).unlink()

    pip_file = Path(modelreg.pyfunc.get_model_dependencies(f"models:/{name}/1"))
    assert pip_file.name == "requirements.txt"
    assert pip_file.read_text() == "pandas>=2\nscipy==1.14.1\nnumpy\n"
    conda = Path(modelreg.pyfunc.get_model_dependencies(f"models:/{name}/1", format="conda")).read_text()
    assert '- "scipy==1.14.1"' in conda
    assert not marker(project).exists()  # reading the requirements ran none of the model's code

    import sklearn

    sk_file = Path(modelreg.pyfunc.get_model_dependencies(f"models:/sk-{unique}/1"))
    assert sk_file.read_text().splitlines() == [
        f"modelreg=={modelreg.sklearn._modelreg_version()}",
        f"scikit-learn=={sklearn.__version__}",
        "skops",
    ]
