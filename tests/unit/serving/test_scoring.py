"""The scoring protocol's parser and signature checks, without a server."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.models.signature import ColSpec, ModelSignature
from modelreg.serving.scoring import (
    INVALID_PARAMETER_VALUE,
    ScoringError,
    parse_request,
    predictions_json,
)

HOUSE = ModelSignature(
    inputs=(
        ColSpec("float64", "square_feet"),
        ColSpec("int64", "bedrooms"),
        ColSpec("float64", "age"),
    ),
    outputs=(ColSpec("float64", shape=(-1,)),),
)
EXPECTED = pd.DataFrame(
    {"square_feet": [1500.0, 2100.5], "bedrooms": [3, 4], "age": [10.0, 2.5]},
)
JSON = "application/json"


def parse(document: Any, signature: ModelSignature | None = HOUSE, content_type: str = JSON) -> pd.DataFrame:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_request(body, content_type, signature).data


def refusal(
    document: Any, signature: ModelSignature | None = HOUSE, content_type: str = JSON
) -> ScoringError:
    with pytest.raises(ScoringError) as caught:
        parse(document, signature, content_type)
    return caught.value


ROWS = [[1500, 3, 10], [2100.5, 4, 2.5]]
RECORDS = [
    {"square_feet": 1500, "bedrooms": 3, "age": 10},
    {"square_feet": 2100.5, "bedrooms": 4, "age": 2.5},
]


@pytest.mark.parametrize(
    "document",
    [
        {"dataframe_split": {"columns": ["square_feet", "bedrooms", "age"], "data": ROWS}},
        {"dataframe_split": {"data": ROWS}},  # positional: the signature's names
        {"dataframe_records": RECORDS},
        {"instances": RECORDS},
        {"instances": ROWS},
        {"inputs": RECORDS},
        {"inputs": ROWS},
        {"inputs": {"square_feet": [1500, 2100.5], "bedrooms": [3, 4], "age": [10, 2.5]}},
        # extra columns are dropped, and the order is the signature's
        {"dataframe_records": [{"extra": "x", **r} for r in reversed(RECORDS)][::-1]},
        {"dataframe_split": {"columns": ["age", "bedrooms", "square_feet"], "data": [r[::-1] for r in ROWS]}},
    ],
)
def test_every_json_format_gives_the_same_frame(document: dict[str, Any]) -> None:
    frame = parse(document)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), EXPECTED)


def test_csv_and_params_and_index() -> None:
    csv = EXPECTED.to_csv(index=False).encode()
    pd.testing.assert_frame_equal(parse(csv, content_type="text/csv; charset=utf-8"), EXPECTED)
    split = {"columns": ["square_feet", "bedrooms", "age"], "data": ROWS, "index": ["a", "b"]}
    parsed = parse_request(json.dumps({"dataframe_split": split, "params": {"k": 1}}).encode(), JSON, HOUSE)
    assert parsed.params == {"k": 1}
    assert list(parsed.data.index) == ["a", "b"]
    one_row = parse({"inputs": {"square_feet": 1.0, "bedrooms": 2, "age": 3.0}})
    assert one_row.to_dict(orient="records") == [{"square_feet": 1.0, "bedrooms": 2, "age": 3.0}]


def test_without_a_signature_the_frame_is_as_sent() -> None:
    frame = parse({"dataframe_records": [{"a": 1, "b": "x"}]}, signature=None)
    assert frame.to_dict(orient="records") == [{"a": 1, "b": "x"}]


def test_a_missing_column_is_named() -> None:
    error = refusal({"dataframe_records": [{"square_feet": 1.0, "age": 2.0}]})
    assert error.status == 400 and error.error_code == INVALID_PARAMETER_VALUE
    assert "['bedrooms']" in error.message


@pytest.mark.parametrize(
    ("bedrooms", "got"),
    [(2.5, "float64"), ("three", "str"), (None, "missing"), (True, "bool"), (2**70, "range")],
)
def test_a_wrong_type_names_the_column_and_the_type(bedrooms: Any, got: str) -> None:
    error = refusal({"dataframe_records": [{"square_feet": 1.0, "bedrooms": bedrooms, "age": 2.0}]})
    assert error.status == 400
    assert "'bedrooms'" in error.message and "int64" in error.message and got in error.message


def test_nan_is_a_missing_float_and_refused_for_an_integer() -> None:
    frame = parse(b'{"inputs": [[NaN, 3, null]]}')
    assert math.isnan(frame["square_feet"][0]) and math.isnan(frame["age"][0])
    assert "'bedrooms'" in refusal(b'{"inputs": [[1.0, NaN, 2.0]]}').message
    assert "'square_feet'" in refusal({"inputs": [["big", 1, 2.0]]}).message


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"{", JSON, 400, "not valid JSON"),
        (b"", JSON, 400, "empty"),
        (b"  \n", "text/csv", 400, "empty"),
        (b"\xff\xfe", JSON, 400, "not valid JSON"),
        (b'{"inputs": [[1, 2, 3]]}', "text/plain", 415, "content types"),
        (b'{"inputs": [[1, 2, 3]]}', "", 415, "content types"),
        (b"[1, 2]", JSON, 400, "exactly one"),
        (b'{"inputs": [[1, 2, 3]], "instances": [[1, 2, 3]]}', JSON, 400, "exactly one"),
        (b'{"inputs": [[1, 2, 3]], "param": {}}', JSON, 400, "exactly one"),
        (b'{"params": {}}', JSON, 400, "exactly one"),
        (b'{"inputs": [[1, 2, 3]], "params": [1]}', JSON, 400, "params"),
        (b'{"inputs": []}', JSON, 400, "non-empty"),
        (b'{"inputs": [[1, 2], [1]]}', JSON, 400, "same"),
        (b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', JSON, 400, "columns"),
        (b'{"dataframe_split": {"data": [[1, 2, 3]], "extra": 1}}', JSON, 400, "dataframe_split"),
        (b'{"dataframe_records": [1, 2]}', JSON, 400, "record"),
        (b"[" * 100_000, JSON, 400, "not valid JSON"),
        (b'a,b\n"1', "text/csv", 400, "CSV"),
    ],
)
def test_bad_bodies_are_refused_with_mlflow_errors(
    body: bytes, content_type: str, status: int, says: str
) -> None:
    error = refusal(body, content_type=content_type)
    assert error.status == status
    assert says in error.message
    assert error.to_json() == {"error_code": error.error_code, "message": error.message}


def test_predictions_are_plain_json() -> None:
    assert json.loads(predictions_json(np.array([1.5, np.nan, np.inf]))) == {"predictions": [1.5, None, None]}
    assert json.loads(predictions_json(pd.Series([1, 2], dtype="int32"))) == {"predictions": [1, 2]}
    frame = pd.DataFrame({"a": [np.float32(1.5)], "b": ["x"], "t": [pd.Timestamp("2024-01-02")]})
    assert json.loads(predictions_json(frame)) == {
        "predictions": [{"a": 1.5, "b": "x", "t": "2024-01-02T00:00:00"}]
    }
    assert json.loads(predictions_json([np.int64(3), {"k": np.bool_(True)}])) == {
        "predictions": [3, {"k": True}]
    }


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["dataframe_split", "dataframe_records", "instances", "inputs", "params", "columns", "data"]
)
DOCUMENTS = JSON_VALUES | st.dictionaries(KEYS, JSON_VALUES, max_size=3)
SPLITS = st.fixed_dictionaries(
    {"data": st.lists(st.lists(JSON_VALUES, max_size=4), max_size=4)},
    optional={"columns": st.lists(st.text(max_size=3), max_size=4), "index": JSON_VALUES},
).map(lambda split: {"dataframe_split": split})


@settings(max_examples=400, deadline=None)
@given(document=DOCUMENTS | SPLITS, signed=st.booleans())
def test_any_json_gives_a_frame_or_a_refusal(document: Any, signed: bool) -> None:
    body = json.dumps(document).encode()
    try:
        parsed = parse_request(body, JSON, HOUSE if signed else None)
    except ScoringError as error:
        assert error.status == 400 and error.message
        return
    assert isinstance(parsed.data, pd.DataFrame)
    if signed:
        assert list(parsed.data.columns) == HOUSE.input_names
        assert [str(t) for t in parsed.data.dtypes] == ["float64", "int64", "float64"]


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64), content_type=st.sampled_from([JSON, "text/csv"]))
def test_any_bytes_give_a_frame_or_a_refusal(body: bytes, content_type: str) -> None:
    try:
        parsed = parse_request(body, content_type, HOUSE)
    except ScoringError as error:
        assert error.status == 400
        return
    assert list(parsed.data.columns) == HOUSE.input_names


@pytest.mark.parametrize("key", ["dataframe_records", "instances", "inputs"])
def test_records_with_a_new_key_each_are_refused_before_a_frame_is_built(key: str) -> None:
    # 4,000 records of one distinct key each would be a 4,000 x 4,000 frame (16 million cells).
    records = [{f"k{i}": 1} for i in range(4_000)]
    error = refusal(json.dumps({key: records}).encode())
    assert error.status == 400
    assert "distinct columns" in error.message
