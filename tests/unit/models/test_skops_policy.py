"""Which types a skops file may hold before load_model refuses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import modelreg.sklearn
from modelreg.models import UntrustedTypesError


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


X = np.arange(30, dtype=float).reshape(10, 3)
Y = X.sum(axis=1)


def test_sklearn_types_outside_skops_defaults_load_automatically(tmp_path: Path) -> None:
    # A forest holds sklearn.tree._tree.Tree, which skops itself does not trust by default.
    forest = RandomForestRegressor(n_estimators=3, random_state=0).fit(X, Y)
    modelreg.sklearn.save_model(forest, tmp_path / "m")
    np.testing.assert_array_equal(
        modelreg.sklearn.load_model(str(tmp_path / "m")).predict(X), forest.predict(X)
    )


def test_numpy_functions_load_automatically(tmp_path: Path) -> None:
    pipeline = make_pipeline(FunctionTransformer(np.log1p), StandardScaler()).fit(X)
    modelreg.sklearn.save_model(pipeline, tmp_path / "m")
    loaded = modelreg.sklearn.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.transform(X), pipeline.transform(X))


def test_foreign_code_is_refused_until_trusted_explicitly(tmp_path: Path) -> None:
    pipeline = make_pipeline(FunctionTransformer(double)).fit(X)
    modelreg.sklearn.save_model(pipeline, tmp_path / "m")
    name = f"{__name__}.double"
    with pytest.raises(UntrustedTypesError) as caught:
        modelreg.sklearn.load_model(str(tmp_path / "m"))
    assert caught.value.reason == "UNTRUSTED_TYPES"
    assert caught.value.types == (name,)

    loaded = modelreg.sklearn.load_model(str(tmp_path / "m"), trusted_types=[name])
    np.testing.assert_array_equal(loaded.transform(X), X * 2)


@pytest.mark.parametrize(
    ("type_name", "trusted"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("numpy.random._pcg64.PCG64", True),
        ("scipy.sparse._csr.csr_matrix", True),
        ("builtins.slice", True),
        ("builtins.eval", False),
        ("builtins.exec", False),
        ("builtins.__import__", False),
        ("sklearnx.Evil", False),
        ("os.system", False),
        ("__main__.MyTransformer", False),
    ],
)
def test_auto_trust_rule(type_name: str, trusted: bool) -> None:
    assert modelreg.sklearn._auto_trusted(type_name) is trusted
