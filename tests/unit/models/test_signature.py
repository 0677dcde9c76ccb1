from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from modelreg.models import ColSpec, ModelSignature, infer_signature


def test_dataframe_columns_and_prediction(
    houses: tuple[pd.DataFrame, np.ndarray], fitted: LinearRegression
) -> None:
    features, _ = houses
    signature = infer_signature(features, fitted.predict(features))
    assert signature.inputs == (
        ColSpec(type="float64", name="sqft"),
        ColSpec(type="int64", name="bedrooms"),
        ColSpec(type="float64", name="age"),
    )
    assert signature.outputs == (ColSpec(type="float64", shape=(-1,)),)
    assert signature.input_names == ["sqft", "bedrooms", "age"]


def test_ndarray_gives_an_unnamed_tensor_with_batch_dimension() -> None:
    signature = infer_signature(np.zeros((5, 3), dtype=np.float32))
    assert signature.inputs == (ColSpec(type="float32", shape=(-1, 3)),)
    assert signature.outputs == ()
    assert signature.input_names == []


def test_series_output_keeps_its_name() -> None:
    signature = infer_signature(pd.DataFrame({"a": [1, 2]}), pd.Series([True, False], name="approved"))
    assert signature.outputs == (ColSpec(type="bool", name="approved"),)


def test_round_trips_through_dict() -> None:
    frame = pd.DataFrame({"a": [1.0], "b": ["x"]})
    signature = infer_signature(frame, np.array([[1, 2]]))
    assert ModelSignature.from_dict(signature.to_dict()) == signature
    # String columns are "object" before pandas 3 and "str" from it on: the dtype name as pandas says it.
    assert signature.to_dict()["inputs"] == [
        {"name": "a", "type": "float64"},
        {"name": "b", "type": str(frame["b"].dtype)},
    ]
    assert signature.to_dict()["outputs"] == [{"name": None, "type": "int64", "shape": [-1, 2]}]
