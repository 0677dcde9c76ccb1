"""A metric point read by the endpoint's plain-point path is the point its field-by-field path
reads: the same key, value (bit for bit), timestamp and step, for any JSON a point may hold."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_gateway.protocol import INT64_MAX, INT64_MIN, Fields, MlflowError
from mlflow_gateway.tracking import METRIC_FIELDS, _checked_point, _plain_point
from modelreg import entities as e

# ASCII, other code points and lone surrogates (JSON's "\ud800" escape decodes to one), each often.
ANY_TEXT = st.text(st.sampled_from(["k", "0", " ", "é", "€", "\U0001f600", "\ud800", "\udfff"]), max_size=6)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=INT64_MIN - 2, max_value=INT64_MIN + 2),
    st.integers(min_value=INT64_MAX - 2, max_value=INT64_MAX + 2),
    st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT,
    st.sampled_from(["", "NaN", "-Infinity", "12", "1.5", "ключ", "\ud800"]),
    st.lists(st.integers(), max_size=2),
)
# What MLflow's client sends, so that the plain path is taken often.
PLAIN = st.fixed_dictionaries(
    {
        "key": st.one_of(st.text(min_size=1, max_size=12), ANY_TEXT),
        "value": st.one_of(st.floats(), st.integers(min_value=INT64_MIN, max_value=INT64_MAX)),
        "timestamp": st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    },
    optional={"step": st.integers(min_value=INT64_MIN, max_value=INT64_MAX)},
)
# A sent point with one field changed to anything: the plain path's edges.
NEAR_PLAIN = st.tuples(PLAIN, st.sampled_from(METRIC_FIELDS), JSON_SCALARS).map(
    lambda t: {**t[0], t[1]: t[2]}
)
ANY_POINT = st.one_of(
    NEAR_PLAIN, st.dictionaries(st.sampled_from(METRIC_FIELDS), JSON_SCALARS, max_size=len(METRIC_FIELDS))
)


def as_tuple(metric: e.Metric) -> tuple[str, bytes, int, int]:
    """The point with its value's bits (a NaN's sign and payload included)."""
    return metric.key, struct.pack("<d", metric.value), metric.timestamp, metric.step


@settings(max_examples=2_000)
@given(st.one_of(PLAIN, ANY_POINT), st.booleans())
def test_the_plain_path_reads_what_the_checked_path_reads(
    values: dict[str, Any], timestamp_required: bool
) -> None:
    plain = _plain_point(values)
    if plain is None:
        return
    assert as_tuple(plain) == as_tuple(_checked_point(Fields(values), timestamp_required=timestamp_required))


@settings(max_examples=2_000)
@given(ANY_POINT)
def test_a_point_the_checked_path_refuses_is_not_taken_by_the_plain_path(values: dict[str, Any]) -> None:
    try:
        _checked_point(Fields(values), timestamp_required=True)
    except MlflowError:
        assert _plain_point(values) is None


def test_what_the_mlflow_client_sends_takes_the_plain_path() -> None:
    sent = {"key": "loss", "value": 0.25, "timestamp": 1_700_000_000_000, "step": 3}
    assert _plain_point(sent) == e.Metric("loss", 0.25, 1_700_000_000_000, 3)
    assert _plain_point({"key": "loss", "value": 1, "timestamp": 0}) == e.Metric("loss", 1.0, 0, 0)
    for other in ({**sent, "model_id": "m-1"}, {**sent, "value": "0.25"}, {**sent, "key": "ключ"}):
        assert _plain_point(other) is None
