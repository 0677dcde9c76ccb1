from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LinearRegression

import modelreg.pyfunc
import modelreg.sklearn
from modelreg.exceptions import FailedPrecondition, InvalidArgument
from modelreg.models import METADATA_FILE, ModelIntegrityError, PickleNotAllowedError
from modelreg.models.model_dir import read_input_example, read_metadata, sha256_file, verify_model_dir

Houses = tuple[pd.DataFrame, np.ndarray]


def test_writes_a_self_describing_directory(tmp_path: Path, houses: Houses, fitted: LinearRegression) -> None:
    features, _ = houses
    model_dir = tmp_path / "model"
    modelreg.sklearn.save_model(fitted, model_dir, input_example=features.head(5))

    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        ["input_example.json", METADATA_FILE, "model.skops"]
    )
    raw = json.loads((model_dir / METADATA_FILE).read_text())
    assert raw["format_version"] == 1
    assert raw["flavor"] == "sklearn"
    assert raw["serialization"] == "skops"
    assert raw["python_version"] == platform.python_version()
    assert raw["sklearn_version"] == sklearn.__version__
    assert raw["input_example"] == "input_example.json"
    assert raw["files"] == {
        "input_example.json": sha256_file(model_dir / "input_example.json"),
        "model.skops": sha256_file(model_dir / "model.skops"),
    }
    assert [spec["name"] for spec in raw["signature"]["inputs"]] == ["sqft", "bedrooms", "age"]
    assert raw["signature"]["outputs"] == [{"name": None, "type": "float64", "shape": [-1]}]

    metadata = read_metadata(model_dir)
    pd.testing.assert_frame_equal(
        read_input_example(model_dir, metadata), features.head(5).reset_index(drop=True)
    )


def test_without_example_there_is_no_signature(tmp_path: Path, fitted: LinearRegression) -> None:
    metadata = modelreg.sklearn.save_model(fitted, tmp_path / "m")
    assert metadata.signature is None
    assert metadata.input_example is None
    assert set(metadata.files) == {"model.skops"}


def test_refuses_a_non_empty_target(tmp_path: Path, fitted: LinearRegression) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        modelreg.sklearn.save_model(fitted, tmp_path / "m")


@pytest.mark.parametrize("fmt", ["skops", "pickle"])
def test_round_trip_predicts_identically(
    tmp_path: Path, houses: Houses, fitted: LinearRegression, fmt: str
) -> None:
    features, _ = houses
    modelreg.sklearn.save_model(fitted, tmp_path / "m", serialization_format=fmt)
    loaded = modelreg.sklearn.load_model(str(tmp_path / "m"), allow_pickle=fmt == "pickle")
    assert type(loaded) is LinearRegression
    np.testing.assert_array_equal(loaded.predict(features), fitted.predict(features))
    np.testing.assert_array_equal(loaded.coef_, fitted.coef_)


def test_unknown_serialization_format_is_refused(tmp_path: Path, fitted: LinearRegression) -> None:
    with pytest.raises(InvalidArgument) as caught:
        modelreg.sklearn.save_model(fitted, tmp_path / "m", serialization_format="joblib")
    assert caught.value.reason == "INVALID_SERIALIZATION_FORMAT"


@pytest.mark.parametrize("victim", ["model.skops", "input_example.json"])
def test_a_changed_file_is_caught(
    tmp_path: Path, houses: Houses, fitted: LinearRegression, victim: str
) -> None:
    model_dir = tmp_path / "m"
    modelreg.sklearn.save_model(fitted, model_dir, input_example=houses[0].head(3))
    with (model_dir / victim).open("ab") as f:
        f.write(b" ")
    with pytest.raises(ModelIntegrityError) as caught:
        verify_model_dir(model_dir)
    assert caught.value.path == victim
    assert caught.value.reason == "MODEL_INTEGRITY_ERROR"
    with pytest.raises(ModelIntegrityError):
        modelreg.pyfunc.load_model(str(model_dir))


def test_a_missing_file_is_caught(tmp_path: Path, fitted: LinearRegression) -> None:
    modelreg.sklearn.save_model(fitted, tmp_path / "m")
    (tmp_path / "m" / "model.skops").unlink()
    with pytest.raises(ModelIntegrityError) as caught:
        verify_model_dir(tmp_path / "m")
    assert caught.value.path == "model.skops"


def test_a_newer_format_is_refused(tmp_path: Path, fitted: LinearRegression) -> None:
    modelreg.sklearn.save_model(fitted, tmp_path / "m")
    path = tmp_path / "m" / METADATA_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 2}))
    with pytest.raises(FailedPrecondition) as caught:
        read_metadata(tmp_path / "m")
    assert caught.value.reason == "UNSUPPORTED_MODEL_FORMAT"


def test_pyfunc_orders_columns_by_signature(tmp_path: Path, houses: Houses, fitted: LinearRegression) -> None:
    features, _ = houses
    modelreg.sklearn.save_model(fitted, tmp_path / "m", input_example=features.head(2))
    model = modelreg.pyfunc.load_model(str(tmp_path / "m"))
    shuffled = features[["age", "sqft", "bedrooms"]].assign(extra=1)
    np.testing.assert_array_equal(model.predict(shuffled), fitted.predict(features))
    np.testing.assert_array_equal(model.predict(features.to_dict(orient="list")), fitted.predict(features))
    assert model.metadata.flavor == "sklearn"
    assert model.model_uri == str(tmp_path / "m")


def test_pyfunc_refuses_missing_columns(tmp_path: Path, houses: Houses, fitted: LinearRegression) -> None:
    features, _ = houses
    modelreg.sklearn.save_model(fitted, tmp_path / "m", input_example=features.head(2))
    model = modelreg.pyfunc.load_model(str(tmp_path / "m"))
    with pytest.raises(InvalidArgument) as caught:
        model.predict(features.drop(columns=["age"]))
    assert caught.value.reason == "SCHEMA_MISMATCH"


RAN: list[str] = []


def _record(what: str) -> None:
    RAN.append(what)


class _Payload:
    """Unpickling this runs code (a call of ``_record``): the stand-in for a shell command."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_record, ("code ran",))


def test_a_pickle_loads_only_when_the_caller_allows_it(tmp_path: Path, fitted: LinearRegression) -> None:
    """The model's files say "pickle"; only the caller may decide that code runs."""
    modelreg.sklearn.save_model(_Payload(), tmp_path / "m", serialization_format="pickle")
    RAN.clear()
    for load in (modelreg.sklearn.load_model, modelreg.pyfunc.load_model):
        with pytest.raises(PickleNotAllowedError) as caught:
            load(str(tmp_path / "m"))
        assert caught.value.reason == "PICKLE_NOT_ALLOWED"
    assert RAN == []
    modelreg.sklearn.load_model(str(tmp_path / "m"), allow_pickle=True)
    assert RAN == ["code ran"]


# --- paths named by modelreg-model.json -----------------------------------------------------------


def _rewrite_metadata(model_dir: Path, **changes: object) -> None:
    path = model_dir / METADATA_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _pickled_payload(path: Path) -> str:
    import pickle

    path.write_bytes(pickle.dumps(_Payload()))
    return sha256_file(path)


def test_model_file_outside_files_is_never_deserialized(tmp_path: Path, fitted: LinearRegression) -> None:
    """A file the metadata points the loader at but has no digest for is refused unread, even with
    allow_pickle: the digests are what prove where the bytes come from."""
    model_dir = tmp_path / "m"
    modelreg.sklearn.save_model(fitted, model_dir, serialization_format="pickle")
    _pickled_payload(model_dir / "other.pkl")
    _rewrite_metadata(model_dir, model_file="other.pkl")
    RAN.clear()
    for load in (modelreg.sklearn.load_model, modelreg.pyfunc.load_model):
        with pytest.raises(ModelIntegrityError) as caught:
            load(str(model_dir), allow_pickle=True)
        assert caught.value.path == METADATA_FILE
        assert caught.value.field == "model_file"
        assert caught.value.metadata["field"] == "model_file"
        assert "model_file 'other.pkl'" in caught.value.message
    assert RAN == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model_file", "../outside.pkl"),
        ("model_file", "/tmp/outside.pkl"),
        ("model_file", "sub/../../outside.pkl"),
        ("model_file", "C:\\outside.pkl"),
        ("model_file", "link/outside.pkl"),
        ("input_example", "../outside.json"),
        ("input_example", "link/outside.json"),
    ],
)
def test_metadata_paths_stay_inside_the_directory(
    tmp_path: Path, houses: Houses, fitted: LinearRegression, field: str, value: str
) -> None:
    """model_file and input_example are plain relative paths inside the model directory, even
    when ``files`` vouches for them: no symlink or '..' reaches a file outside."""
    model_dir, outside = tmp_path / "m", tmp_path / "outside"
    modelreg.sklearn.save_model(
        fitted, model_dir, serialization_format="pickle", input_example=houses[0].head(2)
    )
    outside.mkdir()
    digest = _pickled_payload(outside / "outside.pkl")
    (model_dir / "link").symlink_to(outside)
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    _rewrite_metadata(model_dir, **{field: value}, files={**metadata["files"], value: digest})
    RAN.clear()
    with pytest.raises(ModelIntegrityError) as caught:
        modelreg.pyfunc.load_model(str(model_dir), allow_pickle=True)
    assert caught.value.path == METADATA_FILE
    assert caught.value.field in (field, "files")
    assert repr(value) in caught.value.message
    assert RAN == []


@pytest.mark.parametrize("key", ["../outside.pkl", "/etc/passwd", "a//b", "link/outside.pkl"])
def test_files_keys_stay_inside_the_directory(tmp_path: Path, fitted: LinearRegression, key: str) -> None:
    model_dir = tmp_path / "m"
    modelreg.sklearn.save_model(fitted, model_dir)
    (tmp_path / "outside").mkdir()
    (model_dir / "link").symlink_to(tmp_path / "outside")
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    _rewrite_metadata(model_dir, files={**metadata["files"], key: "0" * 64})
    with pytest.raises(ModelIntegrityError) as caught:
        verify_model_dir(model_dir)
    assert caught.value.field == "files" and repr(key) in caught.value.message


def test_input_example_outside_files_is_refused(
    tmp_path: Path, houses: Houses, fitted: LinearRegression
) -> None:
    model_dir = tmp_path / "m"
    modelreg.sklearn.save_model(fitted, model_dir, input_example=houses[0].head(2))
    (model_dir / "other.json").write_text((model_dir / "input_example.json").read_text())
    _rewrite_metadata(model_dir, input_example="other.json")
    with pytest.raises(ModelIntegrityError) as caught:
        verify_model_dir(model_dir)
    assert caught.value.field == "input_example"
