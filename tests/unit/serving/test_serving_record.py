"""The serving record (what a URI last resolved to, read back for an offline start) is untrusted
input: a valid one reads back as written; anything else is refused with ValueError, and no
record that is accepted names a path outside the model directory or digests that disagree with
its tree digest."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.paths import check_relative
from modelreg.serving.slot import _parse_record, _Record
from modelreg.uris import ModelsUri, RunsUri, parse_model_uri

RUN_ID = "0123456789abcdef0123456789abcdef"
ALIAS = parse_model_uri("models:/Model@champion")
PINNED = parse_model_uri("models:/Model/3")
RUNS = parse_model_uri(f"runs:/{RUN_ID}/model")


def record_of(parsed: ModelsUri | RunsUri, **fields: Any) -> dict[str, Any]:
    models = isinstance(parsed, ModelsUri)
    record = _Record(
        uri=parsed.uri,
        name="Model" if models else None,
        version=3 if models else None,
        run_id=RUN_ID,
        artifact_path="model",
        files={"modelreg-model.json": "a" * 64, "model.skops": "b" * 64},
    )
    return {**record.to_dict(), **fields}


def parse(data: object, parsed: ModelsUri | RunsUri = ALIAS) -> _Record:
    return _parse_record(json.dumps(data).encode(), parsed.uri, parsed)


def refused(data: object, parsed: ModelsUri | RunsUri = ALIAS) -> str:
    try:
        parse(data, parsed)
    except ValueError as exc:
        return str(exc)
    raise AssertionError(f"accepted: {data!r}")


def test_a_valid_record_reads_back_as_written() -> None:
    for parsed in (ALIAS, PINNED, RUNS):
        data = record_of(parsed)
        assert parse(data, parsed).to_dict() == data


def test_records_that_do_not_fit_the_uri_or_leave_the_directory_are_refused() -> None:
    assert "not the URI's" in refused(record_of(ALIAS, name="Other"))
    assert "not the URI's" in refused(record_of(PINNED, version=4), PINNED)
    assert "this URI" in refused(record_of(ALIAS, uri="models:/Model@other"))
    assert "segment" in refused(record_of(ALIAS, files={"../escape": "a" * 64}))
    assert "absolute" in refused(record_of(ALIAS, files={"/etc/passwd": "a" * 64}))
    assert "sha256" in refused(record_of(ALIAS, files={"model.skops": "not hex"}))
    assert "tree_digest" in refused(record_of(ALIAS, tree_digest="c" * 64))
    assert "run" in refused(record_of(RUNS, run_id="f" * 32), RUNS)
    assert "artifact_path" in refused(record_of(ALIAS, artifact_path="../x"))
    assert "files" in refused(record_of(ALIAS, files={}))
    assert refused([1, 2]) and refused("text") and refused(None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(
        ["format", "uri", "name", "version", "run_id", "artifact_path", "tree_digest", "files"]
    ),
    value=json_values,
)
def test_any_field_replaced_is_refused_or_still_safe(field: str, value: object) -> None:
    data = record_of(ALIAS, **{field: value})
    try:
        record = parse(data)
    except ValueError:
        return
    assert record.name == "Model" and isinstance(record.version, int)
    for path in record.files:
        check_relative(path)
    assert record.tree_digest == data["tree_digest"]


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_are_refused_with_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        _parse_record(raw, ALIAS.uri, ALIAS)
