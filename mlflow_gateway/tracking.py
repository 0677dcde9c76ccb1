"""Experiments, runs, metrics, params, tags, batches, inputs and outputs.

Searches pass MLflow's filter strings, ``order_by`` and page tokens through to the tracking
service, whose grammar is MLflow's; a filter it refuses is INVALID_PARAMETER_VALUE. ``max_results``
is checked as MLflow's server checks it (searches: 1..50,000, default 1,000; bulk interval:
1..2,500) and a page holds at most that many items.

A run's system tags behave as in ``modelreg.Client``: ``mlflow.runName`` and ``mlflow.parentRunId``
are the run's name and parent (given at creation as tags or fields; ``mlflow.runName`` set later
renames the run), and ``user_id`` is the ``mlflow.user`` tag (set from ``user_id`` at creation
when the tags do not hold one). Inputs and outputs are kept in run tags: see :mod:`.convert`;
a caller's tag under one of the endpoint's own prefixes is refused (set, deleted, in a batch or
at creation), as only the endpoint writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlflow_gateway import convert, ids
from mlflow_gateway.endpoint import Call, Endpoint, Json
from mlflow_gateway.protocol import INT64_MAX, INT64_MIN, Fields, MlflowError, int64, load_json
from modelreg import entities as e
from modelreg.client import log_batch_renaming

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_LIMIT = 50_000
HISTORY_PAGE_LIMIT = 25_000
BULK_INTERVAL_MAX_RESULTS = 2500
BULK_INTERVAL_MAX_RUNS = 100
# The points one bulk-interval request may read from the service over all its runs: beyond, it
# is refused (narrow the step range or ask for fewer runs) rather than tying up the service.
BULK_INTERVAL_MAX_SCANNED = 1_000_000
MAX_INPUT_TAGS = 100  # what one LogBatch stores atomically
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")  # MLflow's numbers 1..5
VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")  # MLflow's numbers 1..3
_EMPTY: Json = {}


def _enum(f: Fields, name: str, names: tuple[str, ...]) -> str | None:
    """A proto enum field: its name (as MLflow's client sends it) or its number."""
    if not f.has(name):
        return None
    value = f.string(name) if f.from_query else f.values[name]
    if isinstance(value, str):
        if value.upper() in names:
            return value.upper()
        number = int64(value)
        if number is not None and 1 <= number <= len(names):
            return names[number - 1]
    elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(names):
        return names[value - 1]
    raise MlflowError.invalid(f"{name}: expected one of {', '.join(names)}, got {value!r:.80}")


def _max_results(f: Fields, *, default: int, limit: int) -> int:
    value = f.integer("max_results", default=default)
    assert value is not None
    if not 1 <= value <= limit:
        raise MlflowError.invalid(f"max_results: {value} is not between 1 and {limit}")
    return value


def _run_id(f: Fields) -> str:
    """``run_id``, or ``run_uuid`` (its older name, which MLflow's client also sends)."""
    run_uuid = f.string("run_uuid")
    return f.string("run_id", required=not run_uuid) or run_uuid


def _key_values(f: Fields, name: str) -> list[tuple[str, str]]:
    return [(t.string("key", required=True), t.string("value")) for t in f.objects(name, ("key", "value"))]


def _run_tags(f: Fields, name: str) -> list[tuple[str, str]]:
    """A caller's run tags: never the endpoint's own (see :func:`convert.refuse_hidden`)."""
    tags = _key_values(f, name)
    for i, (key, _) in enumerate(tags):
        convert.refuse_hidden([key], f"{name}[{i}].key")
    return tags


# Experiments


def create_experiment(call: Call) -> Json:
    f = call.fields
    name = f.string("name", required=True)
    tags = dict(_key_values(f, "tags"))
    experiment = call.services.tracking.create_experiment(
        name, artifact_location=f.optional_string("artifact_location"), tags=tags
    )
    return {"experiment_id": experiment.experiment_id}


def get_experiment(call: Call) -> Json:
    experiment_id = call.fields.string("experiment_id", required=True)
    return {"experiment": convert.experiment(call.services.tracking.get_experiment(experiment_id))}


def get_experiment_by_name(call: Call) -> Json:
    name = call.fields.string("experiment_name", required=True)
    return {"experiment": convert.experiment(call.services.tracking.get_experiment_by_name(name))}


def search_experiments(call: Call) -> Json:
    f = call.fields
    pager = call.services.tracking.search_experiments(
        filter_string=f.string("filter"),
        view_type=_enum(f, "view_type", VIEW_TYPES) or "ACTIVE_ONLY",
        max_results=_max_results(f, default=SEARCH_MAX_RESULTS_DEFAULT, limit=SEARCH_MAX_RESULTS_LIMIT),
        order_by=f.strings("order_by"),
        page_token=f.string("page_token") or None,
    )
    body: Json = {"experiments": [convert.experiment(x) for x in pager]}
    if pager.token:
        body["next_page_token"] = pager.token
    return body


def delete_experiment(call: Call) -> Json:
    call.services.tracking.delete_experiment(call.fields.string("experiment_id", required=True))
    return _EMPTY


def restore_experiment(call: Call) -> Json:
    call.services.tracking.restore_experiment(call.fields.string("experiment_id", required=True))
    return _EMPTY


def update_experiment(call: Call) -> Json:
    f = call.fields
    experiment_id = f.string("experiment_id", required=True)
    call.services.tracking.rename_experiment(experiment_id, f.string("new_name", required=True))
    return _EMPTY


def set_experiment_tag(call: Call) -> Json:
    f = call.fields
    experiment_id, key = f.string("experiment_id", required=True), f.string("key", required=True)
    call.services.tracking.set_experiment_tag(experiment_id, key, f.string("value"))
    return _EMPTY


def delete_experiment_tag(call: Call) -> Json:
    f = call.fields
    experiment_id, key = f.string("experiment_id", required=True), f.string("key", required=True)
    call.services.tracking.delete_experiment_tag(experiment_id, key)
    return _EMPTY


# Runs


def create_run(call: Call) -> Json:
    f = call.fields
    tags = dict(_run_tags(f, "tags"))
    user_id = f.string("user_id")
    if user_id and convert.USER_TAG not in tags:
        tags[convert.USER_TAG] = user_id
    run = call.services.tracking.create_run(
        experiment_id=f.string("experiment_id", default="0"),
        run_name=f.string("run_name") or None,
        start_time=f.integer("start_time"),
        tags=tags,
        parent_run_id=tags.get(convert.PARENT_RUN_ID_TAG) or None,
    )
    return {"run": convert.run(run)}


def update_run(call: Call) -> Json:
    f = call.fields
    run_id = _run_id(f)
    status = _enum(f, "status", RUN_STATUSES)
    end_time = f.integer("end_time")
    run_name = f.optional_string("run_name")
    info = call.services.tracking.update_run(run_id, status=status, end_time=end_time, run_name=run_name)
    tags = call.services.tracking.get_run(run_id).data.tags
    return {"run_info": convert.run_info(info, tags.get(convert.USER_TAG, ""))}


def delete_run(call: Call) -> Json:
    call.services.tracking.delete_run(call.fields.string("run_id", required=True))
    return _EMPTY


def restore_run(call: Call) -> Json:
    call.services.tracking.restore_run(call.fields.string("run_id", required=True))
    return _EMPTY


def get_run(call: Call) -> Json:
    return {"run": convert.run(call.services.tracking.get_run(_run_id(call.fields)))}


def search_runs(call: Call) -> Json:
    """Runs of the experiments given; none without experiment ids, as in MLflow (modelreg's
    search would take that as every experiment)."""
    f = call.fields
    experiment_ids = f.strings("experiment_ids")
    filter_string = f.string("filter")
    view_type = _enum(f, "run_view_type", VIEW_TYPES) or "ACTIVE_ONLY"
    max_results = _max_results(f, default=SEARCH_MAX_RESULTS_DEFAULT, limit=SEARCH_MAX_RESULTS_LIMIT)
    order_by, page_token = f.strings("order_by"), f.string("page_token") or None
    if not experiment_ids:
        return {"runs": []}
    pager = call.services.tracking.search_runs(
        experiment_ids, filter_string, view_type, max_results, order_by, page_token
    )
    body: Json = {"runs": [convert.run(r) for r in pager]}
    if pager.token:
        body["next_page_token"] = pager.token
    return body


# Params, metrics, tags

METRIC_FIELDS = ("key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest", "run_id")


_PLAIN_POINT_FIELDS = frozenset(("key", "value", "timestamp", "step"))


def _metric(f: Fields, *, timestamp_required: bool) -> e.Metric:
    """A metric point. ``model_id`` and the dataset fields (MLflow 3's links of a point to a
    LoggedModel and a dataset) are accepted and not kept: modelreg's points have no such links."""
    return _plain_point(f.values) or _checked_point(f, timestamp_required=timestamp_required)


def _plain_point(values: Mapping[str, Any]) -> e.Metric | None:
    """The point when it is what MLflow's client sends in a log_batch (an ASCII key, a float or
    int64 value, an int64 timestamp and step, no links), else None. The same point as
    :func:`_checked_point` reads (a property test compares them) for about half its cost: a
    log_batch holds up to 1,000 points. A log_metric request also carries its run id, so it
    takes the checked path (one point: nothing to gain)."""
    key, value = values.get("key"), values.get("value")
    timestamp, step = values.get("timestamp"), values.get("step", 0)
    if not (
        values.keys() <= _PLAIN_POINT_FIELDS
        and type(key) is str
        and key
        and key.isascii()
        and (type(value) is float or (type(value) is int and INT64_MIN <= value <= INT64_MAX))
        and type(timestamp) is int
        and INT64_MIN <= timestamp <= INT64_MAX
        and type(step) is int
        and INT64_MIN <= step <= INT64_MAX
    ):
        return None
    return e.Metric(key, float(value), timestamp, step)


def _checked_point(f: Fields, *, timestamp_required: bool) -> e.Metric:
    """A point of any form :class:`Fields` takes, each field checked and named in its error."""
    for link in ("model_id", "dataset_name", "dataset_digest", "run_id"):
        f.string(link)
    value = f.number("value", required=True)
    timestamp = f.integer("timestamp", required=timestamp_required, default=0)
    assert value is not None and timestamp is not None
    return e.Metric(f.string("key", required=True), value, timestamp, f.integer("step", default=0) or 0)


def _point(metric: e.Metric) -> tuple[str, str, int, int]:
    return metric.key, metric.value.hex(), metric.timestamp, metric.step  # hex: NaN equals NaN


def _new_to_run(call: Call, run_id: str, metrics: list[e.Metric]) -> list[e.Metric]:
    """``metrics`` without the points the run already has (same key, value, timestamp and step).
    MLflow 3's ``log_model`` logs the run's points of one step again, linked to the new
    LoggedModel; MLflow's store keeps one of identical points, and modelreg's points carry no link
    to tell them apart, so a linked point the run has is not stored twice. Only linked points are
    looked up: the history of each of their keys is read once."""
    steps = {m.step for m in metrics}
    stored = {
        _point(point)
        for key in {m.key for m in metrics}
        for point in call.services.tracking.get_metric_history(run_id, key)
        if point.step in steps
    }
    return [m for m in metrics if _point(m) not in stored]


def log_metric(call: Call) -> Json:
    f = call.fields
    run_id = _run_id(f)
    point = _metric(f, timestamp_required=True)
    if f.has("model_id") and not _new_to_run(call, run_id, [point]):
        return _EMPTY
    call.services.tracking.log_metric(run_id, point.key, point.value, point.timestamp, point.step)
    return _EMPTY


def log_param(call: Call) -> Json:
    f = call.fields
    run_id, key = _run_id(f), f.string("key", required=True)
    call.services.tracking.log_param(run_id, key, f.string("value"))
    return _EMPTY


def set_tag(call: Call) -> Json:
    f = call.fields
    run_id, key = _run_id(f), f.string("key", required=True)
    convert.refuse_hidden([key], "key")
    call.services.tracking.set_tag(run_id, key, f.string("value"))
    return _EMPTY


def delete_tag(call: Call) -> Json:
    f = call.fields
    run_id, key = f.string("run_id", required=True), f.string("key", required=True)
    convert.refuse_hidden([key], "key")
    call.services.tracking.delete_tag(run_id, key)
    return _EMPTY


def log_batch(call: Call) -> Json:
    """Stored atomically; an ``mlflow.runName`` tag renames the run, and a refused batch leaves
    the name as it was (as ``modelreg.Client.log_batch``)."""
    f = call.fields
    run_id = f.string("run_id", required=True)
    points = f.objects("metrics", METRIC_FIELDS)
    metrics = [_metric(m, timestamp_required=False) for m in points]
    params = [e.Param(key, value) for key, value in _key_values(f, "params")]
    tags = [e.RunTag(key, value) for key, value in _run_tags(f, "tags")]
    if any(m.has("model_id") for m in points):
        metrics = _new_to_run(call, run_id, metrics)
    log_batch_renaming(call.services.tracking, run_id, metrics, params, tags)
    return _EMPTY


# Models, inputs, outputs

MODEL_JSON_REQUIRED = ("artifact_path", "flavors", "utc_time_created", "run_id")
MODEL_HISTORY_KEYS = ("run_id", "artifact_path", "utc_time_created", "model_uuid")


def log_model(call: Call) -> Json:
    """Appends the model's summary to the run tag ``mlflow.log-model.history`` (a JSON list), as
    MLflow's server does: its run id, artifact path, creation time, uuid, and flavors without
    their ``config``. Read, append, write: two concurrent calls on one run may keep only one."""
    f = call.fields
    run_id = f.string("run_id", required=True)
    try:
        model = load_json(f.string("model_json", required=True))
    except ValueError as error:
        raise MlflowError.invalid(f"model_json: not valid JSON ({error})") from None
    if not isinstance(model, dict):
        raise MlflowError.invalid("model_json: expected a JSON object")
    missing = [key for key in MODEL_JSON_REQUIRED if key not in model]
    if missing:
        raise MlflowError.invalid(f"model_json: missing mandatory fields {', '.join(missing)}")
    if not isinstance(model["flavors"], dict):
        raise MlflowError.invalid("model_json: flavors must be an object")
    entry: dict[str, Any] = {key: model[key] for key in MODEL_HISTORY_KEYS if key in model}
    entry["flavors"] = {
        name: {k: v for k, v in conf.items() if k != "config"} if isinstance(conf, dict) else conf
        for name, conf in model["flavors"].items()
    }
    tracking = call.services.tracking
    previous = tracking.get_run(run_id).data.tags.get(convert.LOG_MODEL_HISTORY_TAG)
    history: Any = []
    if previous is not None:
        try:
            history = load_json(previous)
        except ValueError:
            history = None
        if not isinstance(history, list):
            raise MlflowError(
                "INVALID_STATE", f"run '{run_id}': tag {convert.LOG_MODEL_HISTORY_TAG} is not a JSON list"
            )
    try:
        value = json.dumps([*history, entry])
    except RecursionError:  # JSON nested past the recursion limit, in model_json or the history
        raise MlflowError.invalid("model_json: nested too deeply (with the run's model history)") from None
    if len(value) > convert.TAG_VALUE_LIMIT:
        raise MlflowError.invalid(
            f"run '{run_id}': the model history would be {len(value)} characters, over the tag "
            f"value limit of {convert.TAG_VALUE_LIMIT}"
        )
    tracking.set_tag(run_id, convert.LOG_MODEL_HISTORY_TAG, value)
    return _EMPTY


DATASET_FIELDS = ("name", "digest", "source_type", "source", "schema", "profile")


def _dataset_input(f: Fields) -> Json:
    dataset = f.object("dataset", DATASET_FIELDS)
    if dataset is None:
        raise MlflowError.invalid(f"Missing value for required parameter '{f.path}dataset'.")
    body = {name: dataset.string(name, required=True) for name in ("name", "digest", "source_type", "source")}
    body |= {name: dataset.string(name) for name in ("schema", "profile") if dataset.string(name)}
    tags = [{"key": key, "value": value} for key, value in _key_values(f, "tags")]
    return {"tags": tags, "dataset": body}


def log_inputs(call: Call) -> Json:
    """Dataset and model inputs, kept in run tags (:mod:`.convert`). A dataset the run already
    holds (same name and digest) is kept as first logged, as in MLflow. Stored atomically."""
    f = call.fields
    run_id = f.string("run_id", required=True)
    datasets = [_dataset_input(d) for d in f.objects("datasets", ("tags", "dataset"))]
    models = [m.string("model_id", required=True) for m in f.objects("models", ("model_id",))]
    tracking = call.services.tracking
    held = tracking.get_run(run_id).data.tags
    tags: dict[str, str] = {}
    for dataset_input in datasets:
        parts = convert.dataset_input_tags(dataset_input)
        if next(iter(parts)) not in held:
            tags |= parts
    tags |= {f"{convert.MODEL_INPUT_PREFIX}{model_id}": "" for model_id in models}
    if len(tags) > MAX_INPUT_TAGS:
        raise MlflowError.invalid(
            f"datasets: the inputs take {len(tags)} tags of up to {convert.TAG_VALUE_LIMIT} characters, "
            f"the limit is {MAX_INPUT_TAGS}"
        )
    if tags:
        tracking.log_batch(run_id, tags=[e.RunTag(key, value) for key, value in tags.items()])
    return _EMPTY


def log_outputs(call: Call) -> Json:
    """Model outputs (a LoggedModel and the step it was logged at), kept in run tags."""
    f = call.fields
    run_id = f.string("run_id", required=True)
    models = f.objects("models", ("model_id", "step"))
    if not models:
        raise MlflowError.invalid("Missing value for required parameter 'models'.")
    tags = [
        e.RunTag(
            f"{convert.MODEL_OUTPUT_PREFIX}{m.string('model_id', required=True)}",
            str(m.integer("step", default=0)),
        )
        for m in models
    ]
    call.services.tracking.log_batch(run_id, tags=tags)
    return _EMPTY


# Metric history, artifacts


def get_metric_history(call: Call) -> Json:
    """A page of at most ``max_results`` points (default and limit 25,000, the page MLflow's
    client asks for), with the next page's token."""
    f = call.fields
    run_id, key = _run_id(f), f.string("metric_key", required=True)
    max_results = f.integer("max_results")
    if max_results is not None and max_results < 1:
        raise MlflowError.invalid(f"max_results: {max_results} is not a positive integer")
    pager = call.services.tracking.get_metric_history(
        run_id,
        key,
        max_results=HISTORY_PAGE_LIMIT if max_results is None else min(max_results, HISTORY_PAGE_LIMIT),
        page_token=f.string("page_token") or None,
    )
    body: Json = {"metrics": [convert.metric(m) for m in pager]}
    if pager.token:
        body["next_page_token"] = pager.token
    return body


def _evenly_spaced(total: int, count: int) -> list[int]:
    """At most ``count`` indices into ``total`` items, evenly spaced, the first and last included
    (the last alone when ``count`` is 1): MLflow's sampling."""
    if total <= count:
        return list(range(total))
    if count == 1:
        return [total - 1]
    step = (total - 1) / (count - 1)
    return sorted({round(i * step) for i in range(count)})


def get_metric_history_bulk_interval(call: Call) -> Json:
    """Up to ``max_results`` points of each run, sampled evenly over the points in
    ``[start_step, end_step]`` (ordered by step, then timestamp), as MLflow samples them."""
    f = call.fields
    run_ids = f.strings("run_ids")
    if not run_ids:
        raise MlflowError.invalid("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > BULK_INTERVAL_MAX_RUNS:
        raise MlflowError.invalid(f"run_ids: {len(run_ids)} given, the limit is {BULK_INTERVAL_MAX_RUNS}")
    key = f.string("metric_key", required=True)
    start, end = f.integer("start_step"), f.integer("end_step")
    if (start is None) != (end is None):
        raise MlflowError.invalid("start_step and end_step: give both or neither")
    if start is not None and end is not None and start > end:
        raise MlflowError.invalid(f"end_step ({end}) is less than start_step ({start})")
    max_results = _max_results(f, default=BULK_INTERVAL_MAX_RESULTS, limit=BULK_INTERVAL_MAX_RESULTS)
    metrics: list[Json] = []
    scanned = 0
    for run_id in dict.fromkeys(run_ids):  # a run named twice is sampled once
        points: list[e.Metric] = []
        # Ordered by step: the pages are read up to the window's end only.
        for m in call.services.tracking.get_metric_history(run_id, key):
            scanned += 1
            if scanned > BULK_INTERVAL_MAX_SCANNED:
                raise MlflowError(
                    "RESOURCE_EXHAUSTED",
                    f"run_ids: over {BULK_INTERVAL_MAX_SCANNED} points of '{key}' to read; "
                    "narrow start_step and end_step or ask for fewer runs",
                    status=400,
                )
            if end is not None and m.step > end:
                break
            if start is None or m.step >= start:
                points.append(m)
        sampled = [points[i] for i in _evenly_spaced(len(points), max_results)]
        metrics.extend(convert.metrics_with_run_id(run_id, sampled))
    return {"metrics": metrics}


def list_artifacts(call: Call) -> Json:
    """The entries directly under ``path``, in one page (``page_token`` is accepted, as MLflow's
    server accepts it, and there is never a next page)."""
    f = call.fields
    # A directory's trailing '/' (as a browser may send it) names the directory.
    run_id, path = _run_id(f), f.string("path").rstrip("/")
    f.string("page_token")
    tracking = call.services.tracking
    run = tracking.get_run(run_id)
    files = tracking.list_artifacts(run_id, path)
    return {
        "root_uri": ids.run_artifact_uri(run.info.experiment_id, run_id),
        "files": [convert.file_info(x) for x in files],
    }


SEARCH_EXPERIMENTS_FIELDS = ("max_results", "page_token", "filter", "order_by", "view_type")

ENDPOINTS = [
    Endpoint("POST", "/mlflow/experiments/create", create_experiment, ("name", "artifact_location", "tags")),
    Endpoint("GET", "/mlflow/experiments/get", get_experiment, ("experiment_id",)),
    Endpoint("GET", "/mlflow/experiments/get-by-name", get_experiment_by_name, ("experiment_name",)),
    Endpoint("GET", "/mlflow/experiments/search", search_experiments, SEARCH_EXPERIMENTS_FIELDS),
    Endpoint("POST", "/mlflow/experiments/search", search_experiments, SEARCH_EXPERIMENTS_FIELDS),
    Endpoint("POST", "/mlflow/experiments/delete", delete_experiment, ("experiment_id",)),
    Endpoint("POST", "/mlflow/experiments/restore", restore_experiment, ("experiment_id",)),
    Endpoint("POST", "/mlflow/experiments/update", update_experiment, ("experiment_id", "new_name")),
    Endpoint(
        "POST",
        "/mlflow/experiments/set-experiment-tag",
        set_experiment_tag,
        ("experiment_id", "key", "value"),
    ),
    Endpoint(
        "POST", "/mlflow/experiments/delete-experiment-tag", delete_experiment_tag, ("experiment_id", "key")
    ),
    Endpoint(
        "POST",
        "/mlflow/runs/create",
        create_run,
        ("experiment_id", "user_id", "run_name", "start_time", "tags"),
    ),
    Endpoint(
        "POST", "/mlflow/runs/update", update_run, ("run_id", "run_uuid", "status", "end_time", "run_name")
    ),
    Endpoint("POST", "/mlflow/runs/delete", delete_run, ("run_id",)),
    Endpoint("POST", "/mlflow/runs/restore", restore_run, ("run_id",)),
    Endpoint("GET", "/mlflow/runs/get", get_run, ("run_id", "run_uuid")),
    Endpoint(
        "POST",
        "/mlflow/runs/search",
        search_runs,
        ("experiment_ids", "filter", "run_view_type", "max_results", "order_by", "page_token"),
    ),
    Endpoint("POST", "/mlflow/runs/log-metric", log_metric, ("run_uuid", *METRIC_FIELDS)),
    Endpoint("POST", "/mlflow/runs/log-parameter", log_param, ("run_id", "run_uuid", "key", "value")),
    Endpoint("POST", "/mlflow/runs/set-tag", set_tag, ("run_id", "run_uuid", "key", "value")),
    Endpoint("POST", "/mlflow/runs/delete-tag", delete_tag, ("run_id", "key")),
    Endpoint("POST", "/mlflow/runs/log-batch", log_batch, ("run_id", "metrics", "params", "tags")),
    Endpoint("POST", "/mlflow/runs/log-model", log_model, ("run_id", "model_json")),
    Endpoint("POST", "/mlflow/runs/log-inputs", log_inputs, ("run_id", "datasets", "models")),
    Endpoint("POST", "/mlflow/runs/outputs", log_outputs, ("run_id", "models")),
    Endpoint(
        "GET",
        "/mlflow/metrics/get-history",
        get_metric_history,
        ("run_id", "run_uuid", "metric_key", "page_token", "max_results"),
    ),
    Endpoint(
        "GET",
        "/mlflow/metrics/get-history-bulk-interval",
        get_metric_history_bulk_interval,
        ("run_ids", "metric_key", "start_step", "end_step", "max_results"),
    ),
    Endpoint("GET", "/mlflow/artifacts/list", list_artifacts, ("run_id", "run_uuid", "path", "page_token")),
]
