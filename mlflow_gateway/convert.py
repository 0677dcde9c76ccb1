"""modelreg's entities as MLflow's REST JSON (protobuf's JSON mapping of MLflow's messages, field
names as in MLflow's .proto files, int64 as JSON numbers, repeated key/value pairs as lists).

A run's inputs and outputs (MLflow's ``run.inputs`` and ``run.outputs``) have no place of their
own in modelreg: they are kept in the run's tags, under keys MLflow never uses, and shown only as
``inputs`` / ``outputs`` (never among ``data.tags``):

- a dataset input (dataset and input tags, as MLflow's ``DatasetInput`` JSON) under
  ``mlflow.datasetInput.<h>.<n>``: ``<h>`` names the dataset (32 hex digits of the sha256 of its
  name and digest: a run holds a dataset once, as in MLflow), ``<n>`` numbers the parts of a JSON
  text longer than a tag value (8,000 characters) from 0;
- a model input under ``mlflow.modelInput.<model id>`` (the value is empty);
- a model output under ``mlflow.modelOutput.<model id>``, its value the step.

The LoggedModel state tags (:mod:`mlflow_gateway.ids`) are not shown either. Only the endpoint
writes these tags (:func:`refuse_hidden` refuses a caller's), yet a run may hold any tag (a
modelreg client writes tags unchecked): each is read strictly, and one that is not as written here
is left out, never an error for the run's readers.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from mlflow_gateway import ids
from mlflow_gateway.endpoint import Json
from mlflow_gateway.protocol import MlflowError, int64, load_json
from modelreg import entities as e

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_ID_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"
DATASET_INPUT_PREFIX = "mlflow.datasetInput."
MODEL_INPUT_PREFIX = "mlflow.modelInput."
MODEL_OUTPUT_PREFIX = "mlflow.modelOutput."
TAG_VALUE_LIMIT = 8000  # the tracking service's limit on a tag value
MAX_DATASET_PARTS = 100  # what one LogBatch stores: a dataset input is written in one
# The endpoint's own run tags (the LoggedModels' marker and state included): hidden from
# ``data.tags`` and written only by the endpoint.
HIDDEN_PREFIXES = (DATASET_INPUT_PREFIX, MODEL_INPUT_PREFIX, MODEL_OUTPUT_PREFIX, ids.STATE_TAG_PREFIX)
assert ids.INDEX_TAG.startswith("mlflow.") and not ids.INDEX_TAG.startswith(HIDDEN_PREFIXES)


def is_hidden(key: str) -> bool:
    """Whether run tag ``key`` is one of the endpoint's own (see the module's docstring)."""
    # Every hidden key starts with "mlflow.": one cheap test passes most tags.
    return key.startswith("mlflow.") and (key.startswith(HIDDEN_PREFIXES) or key == ids.INDEX_TAG)


def refuse_hidden(keys: Iterable[str], field: str) -> None:
    """INVALID_PARAMETER_VALUE naming the first of ``keys`` that is one of the endpoint's own tags:
    a caller writing them could forge or break a run's inputs, outputs and LoggedModels."""
    for key in keys:
        if is_hidden(key):
            raise MlflowError.invalid(
                f"{field}: tag {key[:250]!r} is reserved (the endpoint keeps a run's inputs, outputs "
                f"and LoggedModels under {', '.join(HIDDEN_PREFIXES)} and {ids.INDEX_TAG})"
            )


def key_values(tags: Mapping[str, str]) -> list[Json]:
    """A map as MLflow's repeated ``{key, value}`` messages."""
    return [{"key": key, "value": value} for key, value in tags.items()]


def experiment(exp: e.Experiment) -> Json:
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": ids.experiment_artifact_location(exp.experiment_id),
        "lifecycle_stage": exp.lifecycle_stage,
        "creation_time": exp.creation_time,
        "last_update_time": exp.last_update_time,
        "tags": key_values(exp.tags),
    }


def run_info(info: e.RunInfo, user_id: str) -> Json:
    """MLflow's RunInfo; ``end_time`` is absent while the run has not ended (as MLflow sends it)."""
    body: Json = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": user_id,
        "status": info.status,
        "start_time": info.start_time,
        "artifact_uri": ids.run_artifact_uri(info.experiment_id, info.run_id),
        "lifecycle_stage": info.lifecycle_stage,
    }
    if info.end_time:
        body["end_time"] = info.end_time
    return body


def double(value: float) -> float | str:
    """A double in protobuf's JSON form: NaN and the infinities as "NaN", "Infinity", "-Infinity"."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def metric(m: e.Metric) -> Json:
    return {"key": m.key, "value": double(m.value), "timestamp": m.timestamp, "step": m.step}


def run(r: e.Run) -> Json:
    """MLflow's Run as MLflow's client sees it: its name (``mlflow.runName``) and parent
    (``mlflow.parentRunId``) among its tags, ``user_id`` from ``mlflow.user`` (as ``modelreg.Client``
    shows a run), inputs and outputs from their tags (see the module's docstring)."""
    info, data = r.info, r.data
    tags: dict[str, str] = {}
    held: dict[str, str] = {}  # the tags holding inputs, outputs and LoggedModel state
    for key, value in data.tags.items():
        if is_hidden(key):
            held[key] = value
        else:
            tags[key] = value
    tags[RUN_NAME_TAG] = info.run_name
    if info.parent_run_id:
        tags[PARENT_RUN_ID_TAG] = info.parent_run_id
    return {
        "info": run_info(info, data.tags.get(USER_TAG, "")),
        "data": {
            "metrics": [metric(m) for m in data.latest_metrics],
            "params": key_values(data.params),
            "tags": key_values(tags),
        },
        **_inputs_outputs(held),
    }


def _inputs_outputs(held: Mapping[str, str]) -> Json:
    if not held:  # most runs: a search answers hundreds, and this was a fifth of each one's conversion
        return {"inputs": {"dataset_inputs": [], "model_inputs": []}, "outputs": {"model_outputs": []}}
    return {
        "inputs": {
            "dataset_inputs": dataset_inputs(held),
            "model_inputs": [
                {"model_id": key.removeprefix(MODEL_INPUT_PREFIX)}
                for key in sorted(held)
                if key.startswith(MODEL_INPUT_PREFIX)
            ],
        },
        "outputs": {
            "model_outputs": [
                {"model_id": key.removeprefix(MODEL_OUTPUT_PREFIX), "step": step}
                for key, value in sorted(held.items())
                if key.startswith(MODEL_OUTPUT_PREFIX) and (step := int64(value)) is not None
            ]
        },
    }


def dataset_key(name: str, digest: str) -> str:
    """The ``<h>`` naming a dataset in its input's tag keys."""
    return hashlib.sha256(json.dumps([name, digest]).encode()).hexdigest()[:32]


def dataset_input_tags(dataset_input: Json) -> dict[str, str]:
    """The run tags holding one dataset input (MLflow's DatasetInput JSON)."""
    dataset = dataset_input["dataset"]
    text = json.dumps(dataset_input, separators=(",", ":"), ensure_ascii=False)
    prefix = f"{DATASET_INPUT_PREFIX}{dataset_key(dataset['name'], dataset['digest'])}."
    parts = [text[i : i + TAG_VALUE_LIMIT] for i in range(0, len(text), TAG_VALUE_LIMIT)]
    return {f"{prefix}{n}": part for n, part in enumerate(parts)}


def dataset_inputs(tags: Mapping[str, str]) -> list[Json]:
    """The dataset inputs held in a run's tags, by dataset name and digest. An input whose parts
    do not make one DatasetInput as :func:`dataset_input_tags` writes it (tags written by other
    means) is left out rather than shown broken."""
    parts: dict[str, dict[int, str]] = {}
    for key, value in tags.items():
        if key.startswith(DATASET_INPUT_PREFIX):
            dataset, _, number = key.removeprefix(DATASET_INPUT_PREFIX).rpartition(".")
            n = int64(number)
            if n is not None and 0 <= n < MAX_DATASET_PARTS:
                parts.setdefault(dataset, {})[n] = value
    inputs = []
    for numbered in parts.values():
        if sorted(numbered) != list(range(len(numbered))):
            continue
        try:
            value = load_json("".join(numbered[n] for n in range(len(numbered))))
        except ValueError:
            continue
        if _is_dataset_input(value):
            inputs.append(value)
    return sorted(inputs, key=lambda i: (i["dataset"]["name"], i["dataset"]["digest"]))


_DATASET_REQUIRED = ("name", "digest", "source_type", "source")
_DATASET_OPTIONAL = ("schema", "profile")


def _is_dataset_input(value: Any) -> bool:
    """Whether ``value`` is a DatasetInput as the endpoint stores one: a dataset of strings (name,
    digest, source type and source; schema and profile optional), tags as ``{key, value}`` strings."""
    if not isinstance(value, dict) or set(value) != {"tags", "dataset"}:
        return False
    dataset, tags = value["dataset"], value["tags"]
    return (
        isinstance(dataset, dict)
        and set(_DATASET_REQUIRED) <= set(dataset) <= {*_DATASET_REQUIRED, *_DATASET_OPTIONAL}
        and all(isinstance(v, str) for v in dataset.values())
        and isinstance(tags, list)
        and all(
            isinstance(t, dict) and set(t) == {"key", "value"} and all(isinstance(v, str) for v in t.values())
            for t in tags
        )
    )


def file_info(f: e.FileInfo) -> Json:
    """MLflow's FileInfo: directories carry no size."""
    return (
        {"path": f.path, "is_dir": True}
        if f.is_dir
        else {"path": f.path, "is_dir": False, "file_size": f.file_size}
    )


def metrics_with_run_id(run_id: str, metrics: Iterable[e.Metric]) -> list[Json]:
    return [{**metric(m), "run_id": run_id} for m in metrics]
