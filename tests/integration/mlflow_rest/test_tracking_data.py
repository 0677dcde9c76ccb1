"""A run's data through MLflow's REST API: params, metrics, tags, batches, logged models, inputs,
outputs, metric history and artifact listings, checked against what the tracking service holds."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_gateway import ids, tracking
from modelreg import entities as e
from tests.integration.mlflow_rest.conftest import Rest
from tests.integration.mlflow_rest.test_tracking import error, new_experiment, new_run, ok, tags_of

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def run_id_of(rest: Rest, experiment_id: str = "0") -> str:
    run_id: str = new_run(rest, experiment_id)["info"]["run_id"]
    return run_id


def get_run(rest: Rest, run_id: str) -> Any:
    return ok(rest, "GET", "/runs/get", run_id=run_id)["run"]


# Params, metrics, tags


def test_log_metric_param_and_tags(rest: Rest) -> None:
    run_id = run_id_of(rest)
    ok(
        rest,
        "POST",
        "/runs/log-metric",
        {"run_uuid": run_id, "key": "loss", "value": 0.5, "timestamp": 7, "step": 3},
    )
    ok(
        rest,
        "POST",
        "/runs/log-metric",
        {
            "run_id": run_id,
            "run_uuid": run_id,
            "key": "loss",
            "value": "0.25",
            "timestamp": "9",
            "step": 2,
            "model_id": "m-1",
            "dataset_name": "d",
            "dataset_digest": "abc",
        },
    )
    ok(
        rest,
        "POST",
        "/runs/log-parameter",
        {"run_id": run_id, "run_uuid": run_id, "key": "alpha", "value": "0.1"},
    )
    ok(rest, "POST", "/runs/set-tag", {"run_id": run_id, "key": "team", "value": "x"})
    ok(rest, "POST", "/runs/set-tag", {"run_uuid": run_id, "key": "gone", "value": "y"})
    ok(rest, "POST", "/runs/delete-tag", {"run_id": run_id, "key": "gone"})

    stored = rest.tracking.get_run(run_id)
    assert stored.data.params == {"alpha": "0.1"}
    assert stored.data.tags == {"team": "x"}
    assert [(m.value, m.timestamp, m.step) for m in rest.tracking.get_metric_history(run_id, "loss")] == [
        (0.25, 9, 2),
        (0.5, 7, 3),
    ]
    data = get_run(rest, run_id)["data"]
    # The latest point is the one of the highest step, with its own timestamp and step.
    assert data["metrics"] == [{"key": "loss", "value": 0.5, "timestamp": 7, "step": 3}]
    assert data["params"] == [{"key": "alpha", "value": "0.1"}]
    assert tags_of(data) == {"team": "x", "mlflow.runName": stored.info.run_name}


def test_a_run_name_tag_renames_the_run(rest: Rest) -> None:
    run_id = run_id_of(rest)
    ok(rest, "POST", "/runs/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "renamed"})
    assert rest.tracking.get_run(run_id).info.run_name == "renamed"
    ok(
        rest,
        "POST",
        "/runs/log-batch",
        {
            "run_id": run_id,
            "tags": [{"key": "mlflow.runName", "value": "batched"}, {"key": "k", "value": "v"}],
        },
    )
    stored = rest.tracking.get_run(run_id)
    assert (stored.info.run_name, stored.data.tags) == ("batched", {"k": "v"})
    assert get_run(rest, run_id)["info"]["run_name"] == "batched"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            "/runs/log-metric",
            {"run_id": None, "key": "k", "value": 1, "timestamp": 1},
            (400, "INVALID_PARAMETER_VALUE"),
        ),
        (
            "/runs/log-metric",
            {"run_id": "0" * 32, "key": "k", "value": 1, "timestamp": 1},
            (404, "RESOURCE_DOES_NOT_EXIST"),
        ),
        (
            "/runs/log-metric",
            {"run_id": "z", "key": "k", "value": 1, "timestamp": 1},
            (400, "INVALID_PARAMETER_VALUE"),
        ),
        ("/runs/log-metric", {"key": "k", "value": 1}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/log-metric", {"key": "k", "timestamp": 1}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/log-metric", {"value": 1, "timestamp": 1}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/log-metric", {"key": "k", "value": "high", "timestamp": 1}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/log-metric", {"key": "k", "value": True, "timestamp": 1}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/log-metric", {"key": "k", "value": 1, "timestamp": 1.5}, (400, "INVALID_PARAMETER_VALUE")),
        (
            "/runs/log-metric",
            {"key": "k", "value": 1, "timestamp": 1, "step": 2**63},
            (400, "INVALID_PARAMETER_VALUE"),
        ),
        (
            "/runs/log-metric",
            {"key": "k", "value": 1, "timestamp": 1, "model": "m"},
            (400, "INVALID_PARAMETER_VALUE"),
        ),
        ("/runs/log-parameter", {"value": "v"}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/log-parameter", {"key": "k", "value": 5}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/log-parameter", {"key": "k", "value": "v" * 6001}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/set-tag", {"value": "v"}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/set-tag", {"key": "mlflow.parentRunId", "value": "0" * 32}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/set-tag", {"key": "k", "value": "v" * 8001}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/delete-tag", {}, (400, "INVALID_PARAMETER_VALUE")),
        ("/runs/delete-tag", {"run_id": "0" * 32, "key": "k"}, (404, "RESOURCE_DOES_NOT_EXIST")),
    ],
)
def test_run_data_writes_refuse_bad_requests(
    rest: Rest, path: str, body: dict[str, Any], expected: tuple[int, str]
) -> None:
    run_id = run_id_of(rest)
    status, code, _ = error(rest, "POST", path, {"run_id": run_id, **body})
    assert (status, code) == expected
    stored = rest.tracking.get_run(run_id)
    assert (stored.data.metrics, stored.data.params, stored.data.tags) == ({}, {}, {})


def test_a_param_keeps_its_first_value(rest: Rest) -> None:
    run_id = run_id_of(rest)
    ok(rest, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "k", "value": "1"})
    ok(rest, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "k", "value": "1"})
    status, code, _ = error(rest, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "k", "value": "2"})
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert rest.tracking.get_run(run_id).data.params == {"k": "1"}


# Batches


def test_log_batch_stores_everything(rest: Rest) -> None:
    run_id = run_id_of(rest)
    body = {
        "run_id": run_id,
        "metrics": [
            {"key": "acc", "value": 0.9, "timestamp": 10, "step": 1, "run_id": run_id, "model_id": "m-x"},
            {"key": "acc", "value": 0.95, "timestamp": 11, "step": 2},
            {"key": "nan", "value": "NaN", "timestamp": 12},
        ],
        "params": [{"key": "p", "value": "1"}, {"key": "q", "value": ""}],
        "tags": [{"key": "t", "value": "v"}],
    }
    assert ok(rest, "POST", "/runs/log-batch", body) == {}
    stored = rest.tracking.get_run(run_id)
    assert stored.data.params == {"p": "1", "q": ""}
    assert stored.data.tags == {"t": "v"}
    assert stored.data.metrics["acc"] == 0.95 and math.isnan(stored.data.metrics["nan"])
    metrics = {m["key"]: m for m in get_run(rest, run_id)["data"]["metrics"]}
    assert metrics["acc"] == {"key": "acc", "value": 0.95, "timestamp": 11, "step": 2}
    assert metrics["nan"] == {"key": "nan", "value": "NaN", "timestamp": 12, "step": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"key": "k", "value": 1, "timestamp": 1, "colour": "red"}]},
        {"metrics": [{"key": "k", "timestamp": 1}]},
        {"metrics": {"key": "k"}},
        {"params": [{"key": "p", "value": 1}]},
        {"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]},
        {"tags": [{"value": "v"}]},
        {"tags": [{"key": "mlflow.parentRunId", "value": "0" * 32}]},
        {"metrics": [{"key": "k", "value": 1, "timestamp": 1}] * 1001},
    ],
)
def test_log_batch_is_refused_whole(rest: Rest, body: dict[str, Any]) -> None:
    run_id = run_id_of(rest)
    valid = {"metrics": [{"key": "ok", "value": 1, "timestamp": 1}], "params": [{"key": "ok", "value": "1"}]}
    status, code, _ = error(rest, "POST", "/runs/log-batch", {"run_id": run_id, **valid, **body})
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    stored = rest.tracking.get_run(run_id)
    assert (stored.data.metrics, stored.data.params, stored.data.tags) == ({}, {}, {})


def test_log_batch_needs_a_known_run(rest: Rest) -> None:
    assert error(rest, "POST", "/runs/log-batch", {"run_id": "0" * 32})[:2] == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert error(rest, "POST", "/runs/log-batch", {})[:2] == (400, "INVALID_PARAMETER_VALUE")


# Any double, NaN and the infinities included, or an integer (sent as a JSON integer: a double
# on arrival, as in MLflow).
metric_value = st.floats(allow_nan=True, allow_infinity=True) | INT64
point = st.tuples(metric_value, st.integers(min_value=1, max_value=2**63 - 1), INT64)


def json_number(value: float | int) -> Any:
    """A value as MLflow's client sends it: protobuf's JSON for doubles ("NaN", "Infinity")."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def canonical(value: float | str) -> str:
    """A double read back from JSON or the client, comparable ("NaN" strings and -0.0 too)."""
    number = float(value)
    return "nan" if math.isnan(number) else repr(number + 0.0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=st.lists(point, min_size=1, max_size=20), via_batch=st.booleans())
def test_metric_values_round_trip(
    rest: Rest, points: list[tuple[float | int, int, int]], via_batch: bool
) -> None:
    """Stored as sent and shown back in MLflow's JSON (strict JSON: no bare NaN), through the
    history, get-run's latest point and the modelreg client."""
    run_id = run_id_of(rest)
    sent = [{"key": "m", "value": json_number(v), "timestamp": t, "step": s} for v, t, s in points]
    if via_batch:
        ok(rest, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": sent})
    else:
        for metric in sent:
            ok(rest, "POST", "/runs/log-metric", {"run_id": run_id, **metric})
    expected = sorted((s, t, canonical(float(v))) for v, t, s in points)
    response = rest.http.get(
        "/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}
    )
    assert response.status_code == 200
    shown = json.loads(response.text, parse_constant=lambda token: pytest.fail(f"bare {token} in JSON"))
    history = shown["metrics"]
    assert [(m["step"], m["timestamp"]) for m in history] == [(s, t) for s, t, _ in expected]
    assert sorted((m["step"], m["timestamp"], canonical(m["value"])) for m in history) == expected
    by_client = rest.tracking.get_metric_history(run_id, "m")
    assert sorted((m.step, m.timestamp, canonical(m.value)) for m in by_client) == expected
    latest = get_run(rest, run_id)["data"]["metrics"]
    assert len(latest) == 1 and latest[0] in history
    assert (latest[0]["step"], latest[0]["timestamp"]) == max((s, t) for s, t, _ in expected)


# Logged models


def model_json(run_id: str, path: str = "model") -> str:
    return json.dumps(
        {
            "run_id": run_id,
            "artifact_path": path,
            "utc_time_created": "2024-01-01 00:00:00.000000",
            "model_uuid": f"uuid-{path}",
            "flavors": {
                "python_function": {"loader_module": "x", "config": {"big": 1}},
                "sklearn": {"v": "1"},
            },
            "signature": {"inputs": "[]"},
            "mlflow_version": "2.22.0",
        }
    )


def test_log_model_appends_to_the_model_history_tag(rest: Rest) -> None:
    run_id = run_id_of(rest)
    ok(rest, "POST", "/runs/log-model", {"run_id": run_id, "model_json": model_json(run_id, "a")})
    ok(rest, "POST", "/runs/log-model", {"run_id": run_id, "model_json": model_json(run_id, "b")})
    history = json.loads(rest.tracking.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert history == [
        {
            "run_id": run_id,
            "artifact_path": path,
            "utc_time_created": "2024-01-01 00:00:00.000000",
            "model_uuid": f"uuid-{path}",
            "flavors": {"python_function": {"loader_module": "x"}, "sklearn": {"v": "1"}},
        }
        for path in ("a", "b")
    ]
    shown = tags_of(get_run(rest, run_id)["data"])["mlflow.log-model.history"]
    assert json.loads(shown) == history


@pytest.mark.parametrize(
    "model",
    [
        "{not json",
        "[1]",
        json.dumps({"run_id": "r", "artifact_path": "m", "utc_time_created": "t"}),
        json.dumps({"run_id": "r", "artifact_path": "m", "utc_time_created": "t", "flavors": []}),
        7,
        None,
    ],
)
def test_log_model_refuses_malformed_models(rest: Rest, model: Any) -> None:
    run_id = run_id_of(rest)
    status, code, _ = error(rest, "POST", "/runs/log-model", {"run_id": run_id, "model_json": model})
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert rest.tracking.get_run(run_id).data.tags == {}


def test_log_model_needs_a_known_run(rest: Rest) -> None:
    body = {"run_id": "0" * 32, "model_json": model_json("0" * 32)}
    assert error(rest, "POST", "/runs/log-model", body)[:2] == (404, "RESOURCE_DOES_NOT_EXIST")


def test_log_model_refuses_a_history_tag_that_is_not_a_list(rest: Rest) -> None:
    run_id = run_id_of(rest)
    rest.tracking.set_tag(run_id, "mlflow.log-model.history", "{}")
    status, code, _ = error(
        rest, "POST", "/runs/log-model", {"run_id": run_id, "model_json": model_json(run_id)}
    )
    assert (status, code) == (400, "INVALID_STATE")
    assert rest.tracking.get_run(run_id).data.tags["mlflow.log-model.history"] == "{}"


# Inputs and outputs


def dataset(name: str, digest: str, **extra: str) -> dict[str, Any]:
    return {"name": name, "digest": digest, "source_type": "local", "source": '{"uri": "/data"}', **extra}


def test_log_inputs_are_shown_in_run_inputs_not_tags(rest: Rest) -> None:
    run_id = run_id_of(rest)
    schema = json.dumps(
        {"mlflow_colspec": [{"type": "double", "name": f"column {n:04d} é"} for n in range(400)]}
    )
    assert len(schema) > 8000  # kept across several tags
    training = {
        "tags": [{"key": "mlflow.data.context", "value": "training"}],
        "dataset": dataset("train", "d1", schema=schema, profile='{"num_rows": 3}'),
    }
    evaluation = {"tags": [], "dataset": dataset("eval", "d2")}
    body = {"run_id": run_id, "datasets": [training, evaluation], "models": [{"model_id": "m-abc"}]}
    assert ok(rest, "POST", "/runs/log-inputs", body) == {}
    run = get_run(rest, run_id)
    assert run["inputs"]["dataset_inputs"] == [evaluation, training]  # by name
    assert run["inputs"]["model_inputs"] == [{"model_id": "m-abc"}]
    assert set(tags_of(run["data"])) == {"mlflow.runName"}
    searched = ok(rest, "POST", "/runs/search", {"experiment_ids": ["0"]})["runs"][0]
    assert searched["inputs"] == run["inputs"]
    assert len(rest.tracking.get_run(run_id).data.tags) > 3  # the service holds them as tags

    # A dataset the run holds is kept as first logged, as in MLflow.
    again = {"tags": [{"key": "mlflow.data.context", "value": "other"}], "dataset": dataset("train", "d1")}
    ok(rest, "POST", "/runs/log-inputs", {"run_id": run_id, "datasets": [again]})
    assert get_run(rest, run_id)["inputs"]["dataset_inputs"] == [evaluation, training]
    # Same name, another digest: another dataset.
    newer = {"tags": [], "dataset": dataset("train", "d3")}
    ok(rest, "POST", "/runs/log-inputs", {"run_id": run_id, "datasets": [newer]})
    assert get_run(rest, run_id)["inputs"]["dataset_inputs"] == [evaluation, training, newer]


@pytest.mark.parametrize(
    "body",
    [
        {"datasets": [{"tags": []}]},
        {"datasets": [{"dataset": {"name": "n", "digest": "d", "source_type": "local"}}]},
        {"datasets": [{"dataset": {**dataset("n", "d"), "colour": "red"}}]},
        {"datasets": [{"dataset": dataset("n", "d"), "tags": [{"value": "v"}]}]},
        {"datasets": {"dataset": dataset("n", "d")}},
        {"models": [{}]},
        {"models": [{"model_id": 5}]},
        {"datasets": [{"dataset": dataset("n", "d", schema="x" * 900_000)}]},
    ],
)
def test_log_inputs_refuses_bad_requests(rest: Rest, body: dict[str, Any]) -> None:
    run_id = run_id_of(rest)
    status, code, _ = error(rest, "POST", "/runs/log-inputs", {"run_id": run_id, **body})
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert rest.tracking.get_run(run_id).data.tags == {}


def test_log_outputs_are_shown_in_run_outputs(rest: Rest) -> None:
    run_id = run_id_of(rest)
    body = {"run_id": run_id, "models": [{"model_id": "m-1", "step": 3}, {"model_id": "m-2", "step": "0"}]}
    assert ok(rest, "POST", "/runs/outputs", body) == {}
    run = get_run(rest, run_id)
    assert run["outputs"] == {
        "model_outputs": [{"model_id": "m-1", "step": 3}, {"model_id": "m-2", "step": 0}]
    }
    assert set(tags_of(run["data"])) == {"mlflow.runName"}
    assert rest.tracking.get_run(run_id).data.tags == {
        "mlflow.modelOutput.m-1": "3",
        "mlflow.modelOutput.m-2": "0",
    }


def test_only_the_endpoints_own_tags_are_kept_from_data_tags(rest: Rest) -> None:
    run_id = run_id_of(rest)
    model_id = ids.new_model_id(run_id)
    shown = {
        "mlflow.source.name": "train.py",
        "mlflow.modelOutputs": "x",
        "mlflow.datasetInput": "y",
        "plain": "z",
    }
    held = {f"{ids.STATE_TAG_PREFIX}{model_id}": "{}", ids.INDEX_TAG: model_id}
    rest.tracking.log_batch(run_id, tags=[e.RunTag(k, v) for k, v in {**shown, **held}.items()])
    run = get_run(rest, run_id)
    assert tags_of(run["data"]) == {**shown, "mlflow.runName": run["info"]["run_name"]}
    assert run["inputs"] == {"dataset_inputs": [], "model_inputs": []}


# Tags a modelreg client (which does not check them) may leave in a run, each as the endpoint
# would never write it.
FOREIGN_HIDDEN_TAGS = [
    ("mlflow.modelOutput.m-1", "--5"),
    ("mlflow.modelOutput.m-1", "9" * 5000),
    ("mlflow.modelOutput.m-1", "\uff15"),  # a fullwidth 5: a digit to str.isdecimal, not to JSON
    ("mlflow.datasetInput.h.--1", "{}"),
    ("mlflow.datasetInput.h." + "9" * 200, "{}"),
    ("mlflow.datasetInput.h.0", "[" * 3999 + "]" * 3999),  # past json's recursion limit
    ("mlflow.datasetInput.h.0", '{"tags":[],"dataset":{"name":1,"digest":2}}'),
    (
        "mlflow.datasetInput.h.0",
        '{"tags":"x","dataset":{"name":"n","digest":"d","source_type":"s","source":"s"}}',
    ),
]


@pytest.mark.parametrize(("key", "value"), FOREIGN_HIDDEN_TAGS)
def test_an_endpoint_tag_not_as_written_here_is_left_out_never_an_error(
    rest: Rest, key: str, value: str
) -> None:
    experiment_id = new_experiment(rest)
    run_id = run_id_of(rest, experiment_id)
    rest.tracking.set_tag(run_id, key, value)
    run = get_run(rest, run_id)
    assert run["inputs"]["dataset_inputs"] == []
    assert run["outputs"]["model_outputs"] == []
    found = ok(rest, "POST", "/runs/search", {"experiment_ids": [experiment_id]})["runs"]
    assert [r["info"]["run_id"] for r in found] == [run_id]


@pytest.mark.parametrize(
    "key",
    [
        "mlflow.loggedModel.m-" + "0" * 40,
        "mlflow.loggedModels",
        "mlflow.datasetInput.h.0",
        "mlflow.modelInput.m-1",
        "mlflow.modelOutput.m-1",
    ],
)
def test_callers_cannot_write_the_endpoints_own_tags(rest: Rest, key: str) -> None:
    run_id = run_id_of(rest)
    tag = {"key": key, "value": "1"}
    refused: list[tuple[str, dict[str, Any], str]] = [
        ("/runs/set-tag", {"run_id": run_id, **tag}, "key"),
        ("/runs/delete-tag", {"run_id": run_id, "key": key}, "key"),
        ("/runs/log-batch", {"run_id": run_id, "tags": [{"key": "fine", "value": "1"}, tag]}, "tags[1].key"),
        ("/runs/create", {"experiment_id": "0", "tags": [tag]}, "tags[0].key"),
    ]
    for path, body, named in refused:
        status, code, message = error(rest, "POST", path, body)
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), path
        assert message.startswith(f"{named}: tag {key!r}"), message
    assert rest.tracking.get_run(run_id).data.tags == {}
    assert len(list(rest.tracking.search_runs(["0"]))) == 1


@pytest.mark.parametrize(
    "refused",
    [
        {"params": [{"key": "p", "value": "x" * 7000}]},  # over the value limit
        {"params": [{"key": "kept", "value": "other"}]},  # another value for a logged param
        {"metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 1001},  # over the batch limit
    ],
)
def test_a_refused_log_batch_changes_nothing_not_even_the_name(rest: Rest, refused: dict[str, Any]) -> None:
    run_id = run_id_of(rest)
    ok(rest, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "kept", "value": "first"})
    before = rest.tracking.get_run(run_id)
    body = {"run_id": run_id, "tags": [{"key": "mlflow.runName", "value": "renamed"}], **refused}
    assert error(rest, "POST", "/runs/log-batch", body)[0] == 400
    after = rest.tracking.get_run(run_id)
    assert after.info.run_name == before.info.run_name != "renamed"
    assert (after.data.params, after.data.tags, after.data.metrics) == ({"kept": "first"}, {}, {})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"models": []}, (400, "INVALID_PARAMETER_VALUE")),
        ({"models": [{"step": 1}]}, (400, "INVALID_PARAMETER_VALUE")),
        ({"models": [{"model_id": "m", "step": "x"}]}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_id": "0" * 32, "models": [{"model_id": "m", "step": 1}]}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"run_id": "", "models": [{"model_id": "m", "step": 1}]}, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_log_outputs_refuses_bad_requests(
    rest: Rest, body: dict[str, Any], expected: tuple[int, str]
) -> None:
    run_id = run_id_of(rest)
    status, code, _ = error(rest, "POST", "/runs/outputs", {"run_id": run_id, **body})
    assert (status, code) == expected
    assert rest.tracking.get_run(run_id).data.tags == {}


# Metric history


def test_metric_history_pages_with_tokens(rest: Rest) -> None:
    run_id = run_id_of(rest)
    rest.tracking.log_batch(run_id, metrics=[e.Metric("m", float(n), 100 + n, n) for n in range(7)])
    everything = ok(rest, "GET", "/metrics/get-history", run_id=run_id, metric_key="m")
    assert [m["step"] for m in everything["metrics"]] == list(range(7))
    assert "next_page_token" not in everything
    steps: list[int] = []
    token = None
    while True:
        params: dict[str, Any] = {"run_uuid": run_id, "metric_key": "m", "max_results": 3}
        if token:
            params["page_token"] = token
        page = ok(rest, "GET", "/metrics/get-history", **params)
        assert len(page["metrics"]) <= 3
        steps += [m["step"] for m in page["metrics"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert steps == list(range(7))
    assert everything["metrics"][4] == {"key": "m", "value": 4.0, "timestamp": 104, "step": 4}
    assert ok(rest, "GET", "/metrics/get-history", run_id=run_id, metric_key="other") == {"metrics": []}
    # Beyond any page size: a page of what there is (MLflow sets no upper bound).
    huge = ok(rest, "GET", "/metrics/get-history", run_id=run_id, metric_key="m", max_results=str(2**40))
    assert huge == everything


def test_metric_history_without_max_results_is_one_page_of_mlflows_size(rest: Rest) -> None:
    run_id = run_id_of(rest)
    total = tracking.HISTORY_PAGE_LIMIT + 3
    points = [e.Metric("m", float(n), n, n) for n in range(total)]
    rest.tracking.log_metrics_stream((run_id, points[i : i + 10_000]) for i in range(0, total, 10_000))
    first = ok(rest, "GET", "/metrics/get-history", run_id=run_id, metric_key="m")
    assert len(first["metrics"]) == tracking.HISTORY_PAGE_LIMIT
    rest_of_it = ok(
        rest,
        "GET",
        "/metrics/get-history",
        run_id=run_id,
        metric_key="m",
        page_token=first["next_page_token"],
    )
    assert "next_page_token" not in rest_of_it
    assert [m["step"] for m in first["metrics"] + rest_of_it["metrics"]] == list(range(total))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"metric_key": "m", "max_results": "0"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"metric_key": "m", "max_results": "x"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"metric_key": "m", "page_token": "garbage"}, (400, "INVALID_PARAMETER_VALUE")),
        ({}, (400, "INVALID_PARAMETER_VALUE")),
        ({"metric_key": "m", "run_id": "0" * 32}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"metric_key": "m", "run_id": "nope"}, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_metric_history_refuses_bad_requests(
    rest: Rest, params: dict[str, Any], expected: tuple[int, str]
) -> None:
    run_id = run_id_of(rest)
    status, code, _ = error(rest, "GET", "/metrics/get-history", **{"run_id": run_id, **params})
    assert (status, code) == expected


def test_bulk_interval_samples_each_run_keeping_first_and_last(rest: Rest) -> None:
    first, second = run_id_of(rest), run_id_of(rest)
    rest.tracking.log_batch(first, metrics=[e.Metric("m", float(n), 1000 + n, n) for n in range(100)])
    rest.tracking.log_batch(second, metrics=[e.Metric("m", -1.0, 5, 7)])
    all_points = ok(
        rest, "GET", "/metrics/get-history-bulk-interval", run_ids=[first, second], metric_key="m"
    )
    by_run = [m for m in all_points["metrics"] if m["run_id"] == first]
    assert [m["step"] for m in by_run] == list(range(100))
    assert all_points["metrics"][-1] == {
        "key": "m",
        "value": -1.0,
        "timestamp": 5,
        "step": 7,
        "run_id": second,
    }

    sampled = ok(
        rest, "GET", "/metrics/get-history-bulk-interval", run_ids=[first], metric_key="m", max_results="10"
    )["metrics"]
    steps = [m["step"] for m in sampled]
    assert len(steps) == 10 and steps[0] == 0 and steps[-1] == 99 and steps == sorted(steps)
    ranged = ok(
        rest,
        "GET",
        "/metrics/get-history-bulk-interval",
        run_ids=[first, second],
        metric_key="m",
        start_step="20",
        end_step="29",
        max_results="5",
    )["metrics"]
    ranged_steps = [m["step"] for m in ranged]
    assert (ranged_steps[0], ranged_steps[-1]) == (20, 29)
    assert len(ranged) == 5 and {m["run_id"] for m in ranged} == {first}
    last_only = ok(
        rest, "GET", "/metrics/get-history-bulk-interval", run_ids=[first], metric_key="m", max_results="1"
    )["metrics"]
    assert [m["step"] for m in last_only] == [99]


def test_bulk_interval_reads_a_run_named_twice_once(rest: Rest) -> None:
    run_id = run_id_of(rest)
    rest.tracking.log_batch(run_id, metrics=[e.Metric("m", float(n), n, n) for n in range(5)])
    twice = ok(rest, "GET", "/metrics/get-history-bulk-interval", run_ids=[run_id] * 100, metric_key="m")
    assert [(m["run_id"], m["step"]) for m in twice["metrics"]] == [(run_id, n) for n in range(5)]


def test_bulk_interval_reads_up_to_the_window_and_caps_what_it_reads(
    rest: Rest, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = run_id_of(rest), run_id_of(rest)
    for run_id in (first, second):
        rest.tracking.log_batch(run_id, metrics=[e.Metric("m", float(n), n, n) for n in range(100)])
    # The endpoint runs in this process: a cap of 150 points is met by two whole histories.
    monkeypatch.setattr(tracking, "BULK_INTERVAL_MAX_SCANNED", 150)
    status, code, message = error(
        rest, "GET", "/metrics/get-history-bulk-interval", run_ids=[first, second], metric_key="m"
    )
    assert (status, code) == (400, "RESOURCE_EXHAUSTED") and "150" in message
    # A window ending at step 20 reads 22 points of each run (the one past the end stops it).
    window = ok(
        rest,
        "GET",
        "/metrics/get-history-bulk-interval",
        run_ids=[first, second],
        metric_key="m",
        start_step="10",
        end_step="20",
    )["metrics"]
    assert [(m["run_id"], m["step"]) for m in window] == [
        (run_id, step) for run_id in (first, second) for step in range(10, 21)
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"run_ids": [], "metric_key": "m"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_ids": ["0" * 32]}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_ids": ["0" * 32], "metric_key": "m"}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"run_ids": [f"{n:032x}" for n in range(101)], "metric_key": "m"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"metric_key": "m", "start_step": "1"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"metric_key": "m", "start_step": "5", "end_step": "1"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"metric_key": "m", "max_results": "0"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"metric_key": "m", "max_results": "2501"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"metric_key": "m", "end_step": "x", "start_step": "1"}, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_bulk_interval_refuses_bad_requests(
    rest: Rest, params: dict[str, Any], expected: tuple[int, str]
) -> None:
    run_id = run_id_of(rest)
    status, code, _ = error(
        rest, "GET", "/metrics/get-history-bulk-interval", **{"run_ids": [run_id], **params}
    )
    assert (status, code) == expected


# Artifacts

LIST = "/api/2.0/mlflow/artifacts/list"  # its field "path" is not a keyword the helpers can take


def test_list_artifacts_lists_one_level_with_run_relative_paths(rest: Rest, tmp_path: Path) -> None:
    experiment_id = new_experiment(rest)
    run_id = run_id_of(rest, experiment_id)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "notes.txt").write_text("hello")
    rest.tracking.log_artifact(run_id, str(tmp_path / "notes.txt"))
    rest.tracking.log_artifacts(run_id, str(tmp_path / "model"), "model")
    root = ok(rest, "GET", "/artifacts/list", run_id=run_id)
    assert root == {
        "root_uri": f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
        "files": [{"path": "model", "is_dir": True}, {"path": "notes.txt", "is_dir": False, "file_size": 5}],
    }
    listed = rest.http.get(LIST, params={"run_uuid": run_id, "path": "model", "page_token": ""})
    inside = listed.json()
    slashed = rest.http.get(LIST, params={"run_id": run_id, "path": "model/"}).json()
    assert slashed == inside
    assert rest.http.get(LIST, params={"run_id": run_id, "path": "absent"}).json()["files"] == []
    assert inside["files"] == [{"path": "model/MLmodel", "is_dir": False, "file_size": 12}]
    assert [f.path for f in rest.tracking.list_artifacts(run_id, "model")] == ["model/MLmodel"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"path": "../other"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"path": "/etc"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_id": "0" * 32}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"run_id": "bad"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_id": ""}, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_list_artifacts_refuses_bad_paths_and_runs(
    rest: Rest, params: dict[str, Any], expected: tuple[int, str]
) -> None:
    run_id = run_id_of(rest)
    response = rest.http.get(LIST, params={"run_id": run_id, **params})
    assert (response.status_code, response.json()["error_code"]) == expected


def test_points_mlflow3s_log_model_logs_again_for_its_model_are_stored_once(rest: Rest) -> None:
    """MLflow 3's log_model logs the run's latest metrics again with the new model's id; MLflow's
    store keeps one of identical points, so the run's history must not show them twice."""
    run_id = run_id_of(rest)
    first = {"key": "rmse", "value": 0.5, "timestamp": 10, "step": 0}
    nan = {"key": "nan", "value": "NaN", "timestamp": 10, "step": 0}
    later = {"key": "rmse", "value": 0.3, "timestamp": 20, "step": 5}
    ok(rest, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": [first, nan, later]})
    model_id = ids.new_model_id(run_id)
    linked = [{**first, "model_id": model_id}, {**nan, "model_id": model_id}]
    ok(rest, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": linked})
    ok(rest, "POST", "/runs/log-metric", {"run_id": run_id, **first, "model_id": model_id})
    new_point = {**first, "value": 0.4, "step": 1, "model_id": model_id}
    ok(rest, "POST", "/runs/log-metric", {"run_id": run_id, **new_point})
    # The step-0 point again although the run's latest rmse is at step 5: log_model logs the
    # points of its own step, whatever the latest.
    history = sorted((m.step, m.value) for m in rest.tracking.get_metric_history(run_id, "rmse"))
    assert history == [(0, 0.5), (1, 0.4), (5, 0.3)]
    assert len(list(rest.tracking.get_metric_history(run_id, "nan"))) == 1
    # Without a model's id a point is a point: logged twice, kept twice (as modelreg always did).
    ok(rest, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": [first]})
    assert len(list(rest.tracking.get_metric_history(run_id, "rmse"))) == 4
