"""Custom Python models stored as code, saved to and loaded from a local directory (no servers)."""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression

import modelreg.pyfunc
import modelreg.sklearn
from modelreg.exceptions import FailedPrecondition, InvalidArgument
from modelreg.models import METADATA_FILE, CodeNotAllowedError, ModelConfig, ModelIntegrityError, set_model
from modelreg.models.model_dir import read_metadata, sha256_file

FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0]})


def write_model(tmp_path: Path, body: str, name: str = "model.py") -> Path:
    """A model file whose module-level code first writes ``ran.marker`` beside it."""
    path = tmp_path / name
    header = f"from pathlib import Path\nPath({str(tmp_path / 'ran.marker')!r}).write_text('ran')\nimport modelreg\n"
    path.write_text(header + textwrap.dedent(body))
    return path


def save_and_reload(tmp_path: Path, body: str, **kwargs: object) -> modelreg.pyfunc.PyFuncModel:
    modelreg.pyfunc.save_model(tmp_path / "saved", write_model(tmp_path, body), **kwargs)  # type: ignore[arg-type]
    return modelreg.pyfunc.load_model(str(tmp_path / "saved"), allow_code=True)


@pytest.mark.parametrize(
    "predict",
    [
        "def predict(self, context, model_input, params=None):\n"
        "        return model_input['x'] * context.model_config['k'] + (params or {}).get('add', 0)",
        "def predict(self, model_input, params=None):\n"
        "        return model_input['x'] * self.k + (params or {}).get('add', 0)",
        # Any name for the context, as MLflow allows: two parameters besides params.
        "def predict(self, ctx, model_input, params=None):\n"
        "        return model_input['x'] * ctx.model_config['k'] + (params or {}).get('add', 0)",
    ],
)
def test_predict_with_or_without_the_context(tmp_path: Path, predict: str) -> None:
    body = (
        "class M(modelreg.pyfunc.PythonModel):\n"
        "    def load_context(self, context):\n"
        "        self.k = context.model_config['k']\n\n"
        f"    {predict}\n\n"
        "modelreg.models.set_model(M())\n"
    )
    model = save_and_reload(tmp_path, body, model_config={"k": 3})
    np.testing.assert_allclose(model.predict(FRAME), [3.0, 6.0, 9.0])
    np.testing.assert_allclose(model.predict(FRAME, params={"add": 1}), [4.0, 7.0, 10.0])


def test_params_reach_predict_only_when_it_declares_them(tmp_path: Path) -> None:
    body = """
    class M(modelreg.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input["x"] + 1

    modelreg.models.set_model(M())
    """
    np.testing.assert_allclose(
        save_and_reload(tmp_path, body).predict(FRAME, params={"a": 1}), [2.0, 3.0, 4.0]
    )


def test_a_function_is_a_model(tmp_path: Path) -> None:
    body = """
    def double(model_input):
        return model_input["x"] * 2

    modelreg.models.set_model(double)
    """
    model = save_and_reload(tmp_path, body)
    np.testing.assert_allclose(model.predict(FRAME), [2.0, 4.0, 6.0])
    assert isinstance(model.unwrap_python_model(), modelreg.pyfunc.PythonModel)


def test_model_config_inside_the_file_and_replaced_at_load(tmp_path: Path) -> None:
    body = """
    config = modelreg.models.ModelConfig(development_config={"k": 100})
    k = config.get("k")
    modelreg.models.set_model(lambda model_input: model_input["x"] * k)
    """
    model = save_and_reload(tmp_path, body, model_config={"k": 2})
    np.testing.assert_allclose(model.predict(FRAME), [2.0, 4.0, 6.0])
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"k": 5}))
    replaced = modelreg.pyfunc.load_model(
        str(tmp_path / "saved"), allow_code=True, model_config=str(config_file)
    )
    np.testing.assert_allclose(replaced.predict(FRAME), [5.0, 10.0, 15.0])
    # Outside of logging and loading, the development config answers.
    assert ModelConfig(development_config={"k": 100}).to_dict() == {"k": 100}
    with pytest.raises(KeyError):
        ModelConfig(development_config={"k": 1}).get("missing")
    # Logged without a model_config, the development config does not stand in for it (as MLflow).
    with pytest.raises(FailedPrecondition, match="without a model_config"):
        modelreg.pyfunc.save_model(tmp_path / "other", tmp_path / "model.py")


def test_the_metadata_records_every_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "table.csv").write_text("a\n1\n")
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("K = 4\n")
    body = """
    from helpers import K
    modelreg.models.set_model(lambda model_input: model_input["x"] * K)
    """
    metadata = modelreg.pyfunc.save_model(
        tmp_path / "saved",
        write_model(tmp_path, body),
        artifacts={"table": tmp_path / "table.csv"},
        code_paths=[tmp_path / "helpers"],
        model_config={"k": 1},
        input_example=FRAME,
    )
    saved = tmp_path / "saved"
    raw = json.loads((saved / METADATA_FILE).read_text())
    assert raw["flavor"] == "python_function"
    assert raw["serialization"] == "code"
    assert raw["model_file"] == "model.py"
    assert raw["artifacts"] == {"table": "artifacts/table/table.csv"}
    assert raw["code_paths"] == ["code"]
    assert raw["model_config"] == {"k": 1}
    assert raw["requirements"] == "requirements.txt"
    assert set(raw["files"]) == {
        "model.py",
        "requirements.txt",
        "input_example.json",
        "artifacts/table/table.csv",
        "code/helpers/__init__.py",
    }
    assert raw["files"]["model.py"] == sha256_file(saved / "model.py")
    assert metadata.signature is not None and metadata.signature.input_names == ["x"]
    assert read_metadata(saved) == metadata
    # A scikit-learn model's metadata holds none of the custom model's fields.
    modelreg.sklearn.save_model(LinearRegression().fit(FRAME, [1, 2, 3]), tmp_path / "sk")
    assert not {"artifacts", "code_paths", "model_config", "requirements"} & set(
        json.loads((tmp_path / "sk" / METADATA_FILE).read_text())
    )


def test_loading_needs_allow_code_and_runs_nothing_without_it(tmp_path: Path) -> None:
    modelreg.pyfunc.save_model(tmp_path / "saved", write_model(tmp_path, "modelreg.models.set_model(len)\n"))
    (tmp_path / "ran.marker").unlink()
    with pytest.raises(CodeNotAllowedError):
        modelreg.pyfunc.load_model(str(tmp_path / "saved"))
    assert not (tmp_path / "ran.marker").exists()


def save_with_code_and_artifacts(tmp_path: Path) -> None:
    """A saved model with a helper in its code paths and a directory artifact; then no marker."""
    (tmp_path / "helper.py").write_text("X = 1\n")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "a.txt").write_text("a")
    modelreg.pyfunc.save_model(
        tmp_path / "saved",
        write_model(tmp_path, "import helper\nmodelreg.models.set_model(len)\n"),
        code_paths=[tmp_path / "helper.py"],
        artifacts={"a": tmp_path / "tables"},
    )
    (tmp_path / "ran.marker").unlink()


@pytest.mark.parametrize(
    "victim",
    [
        # Recorded files, changed: their digests no longer match.
        "model.py",
        "code/helper.py",
        "artifacts/a/tables/a.txt",
        # Files nobody recorded, added where the model's code could import or read them.
        "code/extra.py",
        "code/pkg/__init__.py",
        "artifacts/a/tables/extra.txt",
    ],
)
def test_a_changed_or_added_file_is_refused_before_any_code_runs(tmp_path: Path, victim: str) -> None:
    save_with_code_and_artifacts(tmp_path)
    target = tmp_path / "saved" / victim
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((target.read_text() if target.exists() else "") + "\nimport os\n")
    with pytest.raises(ModelIntegrityError) as caught:
        modelreg.pyfunc.load_model(str(tmp_path / "saved"), allow_code=True)
    assert caught.value.path == victim
    assert not (tmp_path / "ran.marker").exists()


@pytest.mark.parametrize("field", ["artifacts", "code_paths", "requirements"])
def test_metadata_paths_that_leave_the_directory_are_refused(tmp_path: Path, field: str) -> None:
    modelreg.pyfunc.save_model(tmp_path / "saved", write_model(tmp_path, "modelreg.models.set_model(len)\n"))
    meta_file = tmp_path / "saved" / METADATA_FILE
    raw = json.loads(meta_file.read_text())
    raw[field] = (
        {"k": "../outside"} if field == "artifacts" else ["../outside"] if field == "code_paths" else "../x"
    )
    meta_file.write_text(json.dumps(raw))
    with pytest.raises(ModelIntegrityError) as caught:
        modelreg.pyfunc.load_model(str(tmp_path / "saved"), allow_code=True)
    assert caught.value.field == field


def test_a_model_file_must_call_set_model(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        modelreg.pyfunc.save_model(tmp_path / "saved", write_model(tmp_path, "x = 1\n"))
    assert caught.value.reason == "INVALID_PYTHON_MODEL"
    with pytest.raises(InvalidArgument):
        set_model("model.py")


@pytest.mark.parametrize("python_model", ["missing.py", "model.txt", 3, modelreg.pyfunc.PythonModel()])
def test_python_model_must_be_a_python_file(tmp_path: Path, python_model: object) -> None:
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(InvalidArgument) as caught:
        modelreg.pyfunc.save_model(
            tmp_path / "saved",
            tmp_path / python_model if isinstance(python_model, str) else python_model,  # type: ignore[arg-type]
        )
    assert caught.value.reason == "MODEL_NOT_FROM_CODE"


@pytest.mark.parametrize(
    ("config", "why"), [({"f": object()}, "JSON-serializable"), ([1, 2], "dictionary or a file")]
)
def test_model_config_must_be_a_json_dictionary(tmp_path: Path, config: object, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why) as caught:
        modelreg.pyfunc.save_model(
            tmp_path / "saved",
            write_model(tmp_path, "modelreg.models.set_model(len)\n"),
            model_config=config,  # type: ignore[arg-type]
        )
    assert caught.value.reason == "INVALID_MODEL_CONFIG"


def test_artifact_uris_of_other_stores_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        modelreg.pyfunc.save_model(
            tmp_path / "saved",
            write_model(tmp_path, "modelreg.models.set_model(len)\n"),
            artifacts={"w": "s3://bucket/weights.csv"},
        )
    assert caught.value.reason == "INVALID_ARTIFACT_URI"


@settings(max_examples=60, deadline=None)
@given(key=st.text(min_size=0, max_size=12))
def test_an_artifact_key_is_one_plain_segment(key: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "a.txt").write_text("a")
        model = base / "model.py"
        model.write_text("import modelreg\nmodelreg.models.set_model(len)\n")
        try:
            metadata = modelreg.pyfunc.save_model(base / "saved", model, artifacts={key: base / "a.txt"})
        except InvalidArgument as exc:
            assert exc.reason == "INVALID_ARTIFACT_KEY"
            assert key in ("", ".", "..") or any(c in key for c in "/\\\0") or key[:2][1:] == ":"
            return
        except OSError:  # a name the file system itself refuses
            return
        stored = metadata.artifacts[key]
        assert stored == f"artifacts/{key}/a.txt"
        assert (base / "saved" / stored).resolve().is_relative_to((base / "saved" / "artifacts").resolve())


def test_get_model_dependencies_of_a_local_model(tmp_path: Path) -> None:
    (tmp_path / "reqs.txt").write_text("# pinned\nscipy==1.14.1\n\nnumpy\n")
    modelreg.pyfunc.save_model(
        tmp_path / "saved",
        write_model(tmp_path, "modelreg.models.set_model(len)\n"),
        pip_requirements=tmp_path / "reqs.txt",
        extra_pip_requirements=["pandas"],
    )
    path = modelreg.pyfunc.get_model_dependencies(str(tmp_path / "saved"))
    assert Path(path) == tmp_path / "saved" / "requirements.txt"
    assert Path(path).read_text() == "scipy==1.14.1\nnumpy\npandas\n"
    with pytest.raises(InvalidArgument):
        modelreg.pyfunc.get_model_dependencies(str(tmp_path / "saved"), format="docker")


def test_unwrap_python_model_is_for_custom_models(tmp_path: Path) -> None:
    modelreg.sklearn.save_model(LinearRegression().fit(FRAME, [1, 2, 3]), tmp_path / "sk")
    with pytest.raises(FailedPrecondition):
        modelreg.pyfunc.load_model(str(tmp_path / "sk")).unwrap_python_model()


def test_code_paths_are_imported_from_the_stored_copy(tmp_path: Path) -> None:
    import sys

    module = f"helper_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text("K = 2\n")
    body = f"import {module}\nmodelreg.models.set_model(lambda model_input: model_input['x'] * {module}.K)\n"
    modelreg.pyfunc.save_model(
        tmp_path / "saved", write_model(tmp_path, body), code_paths=[tmp_path / f"{module}.py"]
    )
    # The check run at saving leaves neither the module nor its temporary directory behind.
    assert module not in sys.modules
    (tmp_path / f"{module}.py").write_text("K = 100\n")  # the project moves on; the model does not
    sys.path.insert(0, str(tmp_path))
    try:
        model = modelreg.pyfunc.load_model(str(tmp_path / "saved"), allow_code=True)
    finally:
        sys.path.remove(str(tmp_path))
    np.testing.assert_allclose(model.predict(FRAME), [2.0, 4.0, 6.0])
    assert Path(sys.modules[module].__file__ or "").parent == (tmp_path / "saved" / "code")


def test_bytecode_is_neither_recorded_nor_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys
    from importlib._bootstrap_external import _code_to_timestamp_pyc  # type: ignore[import-not-found]

    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on a user's machine
    module = f"helper_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text("K = 2\n")
    body = f"import {module}\nmodelreg.models.set_model(lambda model_input: model_input['x'] * {module}.K)\n"
    metadata = modelreg.pyfunc.save_model(
        tmp_path / "saved", write_model(tmp_path, body), code_paths=[tmp_path / f"{module}.py"]
    )
    assert not [path for path in metadata.files if "__pycache__" in path]
    # A .pyc planted beside the verified source, with the source's size and time: Python would run
    # it instead of the source.
    source = tmp_path / "saved" / "code" / f"{module}.py"
    planted = _code_to_timestamp_pyc(
        compile("K = 9\n", str(source), "exec"), int(source.stat().st_mtime), source.stat().st_size
    )
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.parent.mkdir(exist_ok=True)
    cached.write_bytes(planted)
    for _ in range(2):  # the first load's own bytecode does not make the second one fail
        sys.modules.pop(module, None)
        model = modelreg.pyfunc.load_model(str(tmp_path / "saved"), allow_code=True)
        np.testing.assert_allclose(model.predict(FRAME), [2.0, 4.0, 6.0])
    assert cached.exists()  # written by the second load's import, from the checked source
