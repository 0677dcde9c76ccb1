"""MLflow 3's LoggedModels, kept as files and tags of the run that logged them (see :mod:`mlflow_gateway.ids`).

A LoggedModel's state is one JSON object (:class:`State`) in a tag of its run, written with the
run's other LoggedModel tags in one LogBatch, so a change is all or nothing. State longer than a
tag value is split over continuation tags (``ids.state_part_tag``); its first tag then holds
``{"parts": n}``. A LoggedModel logged outside a run gets a run of its own, named after it (the
service names the run, and so the model, when no name is given); finalizing the model ends that
run (FINISHED, or FAILED).

Writes read the state, change it and write it back: two clients changing one LoggedModel at the
same instant may lose one change (the tracking service has no compare-and-set on a tag). MLflow's
client changes a LoggedModel from one thread, one call after another.

Not kept: metrics linked to a LoggedModel (the tracking service records metrics per run only):
``data.metrics`` is empty, and a search filtering or ordering by metrics or datasets is refused.
Deletion is MLflow's soft delete: the model is hidden (GET with ``allow_deleted`` still shows it)
and its files stay in the run. A LoggedModel in a deleted run is hidden the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from typing import Any

from mlflow_gateway import convert, ids
from mlflow_gateway.endpoint import Call, Endpoint, Json
from mlflow_gateway.protocol import INT64_MAX, INT64_MIN, Fields, MlflowError, int64, load_json
from modelreg import TrackingClient
from modelreg import entities as e
from modelreg.exceptions import ModelregError, NotFound
from modelreg.wire import now_ms
from modelreg_server import filters as f
from modelreg_server.errors import InvalidArgumentError

# MLflow's LoggedModelStatus: its proto names (what the JSON carries), numbers and short names.
STATUSES = (
    "LOGGED_MODEL_STATUS_UNSPECIFIED",
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
)
SHORT_STATUS = dict(zip(STATUSES, ("UNSPECIFIED", "PENDING", "READY", "FAILED"), strict=True))
RUN_STATUS_AFTER = {"LOGGED_MODEL_READY": "FINISHED", "LOGGED_MODEL_UPLOAD_FAILED": "FAILED"}

MAX_TAG_VALUE = 8000  # the tracking service's limit on a tag value, in characters
MAX_PARAM_VALUE = 6000
MAX_KEY = 250
MAX_NAME = 250
MAX_STATE_PARTS = 90  # continuation tags; one LogBatch takes 100 tags
NAME_FORBIDDEN = ("/", ":", ".", "%", '"', "'")  # as MLflow's _validate_logged_model_name
SEARCH_PAGE_DEFAULT = 100  # MLflow's SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT
SEARCH_PAGE_MAX = 10_000


@dataclass
class State:
    """What a LoggedModel is, besides its id, run and files. ``source_run_id`` is "" for a
    LoggedModel in a run of its own (MLflow shows none)."""

    name: str
    created: int
    updated: int
    status: str = "LOGGED_MODEL_PENDING"
    status_message: str = ""
    model_type: str = ""
    source_run_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    deleted: bool = False


_STATE_TYPES: dict[str, type] = {
    "name": str,
    "created": int,
    "updated": int,
    "status": str,
    "status_message": str,
    "model_type": str,
    "source_run_id": str,
    "tags": dict,
    "params": dict,
    "deleted": bool,
}
_STATE_REQUIRED = frozenset({"name", "created", "updated"})  # State's fields without a default


def state_of(values: object) -> State | None:
    """``values`` as a State when it is one as :func:`state_tags` writes it (every field of its
    type, tags and params of strings, a known status), else None."""
    if not isinstance(values, dict) or not _STATE_REQUIRED <= values.keys() <= _STATE_TYPES.keys():
        return None
    for name, value in values.items():
        if type(value) is not _STATE_TYPES[name]:  # exact: a bool is no timestamp
            return None
        if isinstance(value, dict) and not all(isinstance(x, str) for kv in value.items() for x in kv):
            return None
    if not all(INT64_MIN <= values[t] <= INT64_MAX for t in ("created", "updated")):
        return None
    state = State(**values)
    return state if state.status in SHORT_STATUS else None


@dataclass(frozen=True)
class Stored:
    """A LoggedModel as read from its run."""

    model_id: str
    run: e.Run
    state: State
    parts: int  # continuation tags in use

    @property
    def run_id(self) -> str:
        return self.run.info.run_id


# --- storage in the run's tags -----------------------------------------------------------------


def read_state(tags: Mapping[str, str], model_id: str) -> tuple[State, int] | None:
    """The state in ``tags`` and how many continuation tags it uses; None when absent, or when
    the tags were not written by this module (a caller may set any run tag): no such model."""
    head = tags.get(ids.state_tag(model_id))
    if head is None:
        return None
    try:
        values = load_json(head)
        parts = 0
        if isinstance(values, dict) and values.keys() == {"parts"}:
            parts = values["parts"]
            # As state_tags writes it: 2..MAX_STATE_PARTS, every part present.
            if type(parts) is not int or not 2 <= parts <= MAX_STATE_PARTS:
                return None
            pieces = [tags.get(ids.state_part_tag(model_id, i)) for i in range(1, parts + 1)]
            if not all(pieces):
                return None
            values = load_json("".join(pieces))  # type: ignore[arg-type]
    except ValueError:
        return None
    state = state_of(values)
    return None if state is None else (state, parts)


def state_text(state: State, field_name: str) -> tuple[str, list[str]]:
    """``state`` as JSON, and its continuation parts when it is longer than a tag value (else
    none); INVALID_PARAMETER_VALUE naming ``field_name`` when it needs more than MAX_STATE_PARTS."""
    text = json.dumps(asdict(state), separators=(",", ":"), ensure_ascii=False)
    if len(text) <= MAX_TAG_VALUE:
        return text, []
    pieces = [text[i : i + MAX_TAG_VALUE] for i in range(0, len(text), MAX_TAG_VALUE)]
    if len(pieces) > MAX_STATE_PARTS:
        raise MlflowError.invalid(
            f"{field_name}: the LoggedModel would hold {len(text)} characters of tags and params, "
            f"the limit is {MAX_STATE_PARTS * MAX_TAG_VALUE}"
        )
    return text, pieces


def state_tags(model_id: str, state: State, old_parts: int, field_name: str) -> tuple[list[e.RunTag], int]:
    """The tags holding ``state`` and how many continuation tags they use; continuation tags no
    longer used are emptied in the same batch."""
    text, pieces = state_text(state, field_name)
    if not pieces:
        tags = [e.RunTag(ids.state_tag(model_id), text)]
    else:
        tags = [e.RunTag(ids.state_tag(model_id), json.dumps({"parts": len(pieces)}))]
    tags += [e.RunTag(ids.state_part_tag(model_id, i), piece) for i, piece in enumerate(pieces, 1)]
    tags += [e.RunTag(ids.state_part_tag(model_id, i), "") for i in range(len(pieces) + 1, old_parts + 1)]
    return tags, len(pieces)


def save(
    tracking: TrackingClient,
    model: Stored,
    state: State,
    field_name: str,
    extra: Iterable[e.RunTag] = (),
) -> Stored:
    tags, parts = state_tags(model.model_id, state, model.parts, field_name)
    try:
        tracking.log_batch(model.run_id, tags=[*tags, *extra])
    except ModelregError as error:
        if error.code == "RESOURCE_EXHAUSTED":  # the run's caps: the caller sent too much
            raise MlflowError.invalid(f"{field_name}: {error.message}") from None
        raise
    return replace(model, state=state, parts=parts)


def not_found(model_id: str) -> MlflowError:
    return MlflowError.not_found(f"Logged model with ID '{model_id}' not found.")


def load(tracking: TrackingClient, model_id: str, *, allow_deleted: bool = False) -> Stored:
    run_id = ids.run_of_model(model_id)
    try:
        run = tracking.get_run(run_id)
    except NotFound:
        raise not_found(model_id) from None
    found = read_state(run.data.tags, model_id)
    # A LoggedModel goes with its run: a search (of active runs) no longer finds it either.
    hidden = found is not None and (found[0].deleted or run.info.lifecycle_stage == "deleted")
    if found is None or (hidden and not allow_deleted):
        raise not_found(model_id)
    return Stored(model_id, run, found[0], found[1])


def stored_in(run: e.Run) -> list[Stored]:
    """The LoggedModels kept in ``run``, deleted ones included."""
    models = []
    for key in run.data.tags:
        model_id = ids.model_of_state_tag(key)
        if model_id is not None and ids.run_of_model(model_id) == run.info.run_id:
            found = read_state(run.data.tags, model_id)
            if found is not None:
                models.append(Stored(model_id, run, *found))
    return models


# --- MLflow's JSON ---------------------------------------------------------------------------


def to_json(model: Stored) -> Json:
    state = model.state
    experiment_id = model.run.info.experiment_id
    return {
        "info": {
            "model_id": model.model_id,
            "experiment_id": experiment_id,
            "name": state.name,
            "creation_timestamp_ms": state.created,
            "last_updated_timestamp_ms": state.updated,
            "artifact_uri": ids.logged_model_artifact_uri(experiment_id, model.model_id),
            "status": state.status,
            "model_type": state.model_type,
            "source_run_id": state.source_run_id,
            "status_message": state.status_message,
            "tags": convert.key_values(state.tags),
        },
        "data": {"params": convert.key_values(state.params), "metrics": []},
    }


# --- request fields --------------------------------------------------------------------------


def key_values(fields: Fields, name: str, max_value: int) -> dict[str, str]:
    """A repeated ``{key, value}`` field; the last value of a repeated key wins, as in MLflow."""
    result: dict[str, str] = {}
    for i, item in enumerate(fields.objects(name, ("key", "value"))):
        key = item.string("key", required=True)
        value = item.string("value")
        if len(key) > MAX_KEY:
            raise MlflowError.invalid(f"{name}[{i}].key: {len(key)} characters, the limit is {MAX_KEY}")
        if len(value) > max_value:
            raise MlflowError.invalid(f"{name}[{i}].value: {len(value)} characters, the limit is {max_value}")
        result[key] = value
    return result


def add_params(params: dict[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """Params are immutable, as a run's: the same value again is fine, another is refused."""
    for key, value in new.items():
        if params.get(key, value) != value:
            raise MlflowError.invalid(
                f"params: '{key}' is already logged with another value ({params[key][:100]!r})"
            )
    return {**params, **new}


def status_of(fields: Fields) -> str:
    """A LoggedModelStatus given by proto name, short name or number."""
    raw = fields.values.get("status")
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(STATUSES):
        return STATUSES[raw]
    if isinstance(raw, str):
        name = raw.strip().upper()
        number = int64(name)
        if number is not None and 0 <= number < len(STATUSES):
            return STATUSES[number]
        for proto, short in SHORT_STATUS.items():
            if name in (proto, short):
                return proto
    if raw is None:
        raise MlflowError.invalid("Missing value for required parameter 'status'.")
    raise MlflowError.invalid(f"status: expected one of {', '.join(STATUSES)}, got {raw!r:.80}")


def check_name(name: str) -> str:
    if len(name) > MAX_NAME:
        raise MlflowError.invalid(f"name: {len(name)} characters, the limit is {MAX_NAME}")
    if not name.strip() or any(c in name for c in NAME_FORBIDDEN):
        raise MlflowError.invalid(
            f"name: invalid model name ({name[:100]!r}): it must be non-empty and cannot contain "
            f"any of {' '.join(NAME_FORBIDDEN)}"
        )
    return name


def path_model(call: Call) -> str:
    """The path's model id; a ``model_id`` in the body must name the same one."""
    model_id = call.path_params["model_id"]
    given = call.fields.string("model_id")
    if given and given != model_id:
        raise MlflowError.invalid(f"model_id: {given[:100]!r} in the body, {model_id[:100]!r} in the path")
    return model_id


# --- handlers --------------------------------------------------------------------------------


def create_logged_model(call: Call) -> Json:
    fields, tracking = call.fields, call.services.tracking
    experiment_id = fields.string("experiment_id", required=True)
    name = fields.optional_string("name")
    if name is not None:
        check_name(name)
    source_run_id = fields.string("source_run_id")
    tags = key_values(fields, "tags", MAX_TAG_VALUE)
    params = add_params({}, key_values(fields, "params", MAX_PARAM_VALUE))
    model_type = fields.string("model_type")
    if len(model_type) > MAX_KEY:
        raise MlflowError.invalid(f"model_type: {len(model_type)} characters, the limit is {MAX_KEY}")
    now = now_ms()
    state = State(
        name=name or "",
        created=now,
        updated=now,
        model_type=model_type,
        source_run_id=source_run_id,
        tags=tags,
        params=params,
    )
    content = " and ".join(name for name in ("tags", "params") if getattr(state, name)) or "name"
    state_text(state, content)  # a state too large is refused before a run is made for it
    if source_run_id:
        run = tracking.get_run(source_run_id)
        if run.info.experiment_id != experiment_id:
            raise MlflowError.invalid(
                f"experiment_id: run '{source_run_id}' is in experiment {run.info.experiment_id}, "
                f"not {experiment_id[:20]}"
            )
    else:
        run = tracking.create_run(experiment_id, run_name=name)
        name = name or run.info.run_name  # the service names the run, and so the model
    model_id = ids.new_model_id(run.info.run_id)
    state.name = name or f"model-{model_id[-8:]}"
    try:
        model = save(
            tracking,
            Stored(model_id, run, state, 0),
            state,
            content,
            [e.RunTag(ids.INDEX_TAG, ids.INDEX_TAG_VALUE)],
        )
    except (MlflowError, ModelregError):
        if not source_run_id:  # the run made for the model goes with it
            tracking.delete_run(run.info.run_id)
        raise
    return {"model": to_json(model)}


def get_logged_model(call: Call) -> Json:
    allow_deleted = call.fields.boolean("allow_deleted")
    model = load(call.services.tracking, call.path_params["model_id"], allow_deleted=allow_deleted)
    return {"model": to_json(model)}


def finalize_logged_model(call: Call) -> Json:
    tracking = call.services.tracking
    model = load(tracking, path_model(call))
    status = status_of(call.fields)
    model = save(tracking, model, replace(model.state, status=status, updated=now_ms()), "status")
    if not model.state.source_run_id and status in RUN_STATUS_AFTER:
        tracking.set_terminated(model.run_id, RUN_STATUS_AFTER[status])
    return {"model": to_json(model)}


def delete_logged_model(call: Call) -> Json:
    tracking = call.services.tracking
    model = load(tracking, path_model(call))
    save(tracking, model, replace(model.state, deleted=True, updated=now_ms()), "model_id")
    return {}


def set_logged_model_tags(call: Call) -> Json:
    tracking = call.services.tracking
    model = load(tracking, path_model(call))
    tags = {**model.state.tags, **key_values(call.fields, "tags", MAX_TAG_VALUE)}
    save(tracking, model, replace(model.state, tags=tags, updated=now_ms()), "tags")
    return {}


def delete_logged_model_tag(call: Call) -> Json:
    tracking = call.services.tracking
    model = load(tracking, call.path_params["model_id"])
    key = call.path_params["tag_key"]
    if key not in model.state.tags:
        raise MlflowError.not_found(
            f"No tag with key {key[:250]!r} found for model with ID {model.model_id!r}."
        )
    tags = {k: v for k, v in model.state.tags.items() if k != key}
    save(tracking, model, replace(model.state, tags=tags, updated=now_ms()), "tag_key")
    return {}


def log_logged_model_params(call: Call) -> Json:
    tracking = call.services.tracking
    model = load(tracking, path_model(call))
    params = add_params(model.state.params, key_values(call.fields, "params", MAX_PARAM_VALUE))
    save(tracking, model, replace(model.state, params=params, updated=now_ms()), "params")
    return {}


def list_logged_model_artifacts(call: Call) -> Json:
    tracking = call.services.tracking
    model = load(tracking, call.path_params["model_id"])
    below = call.fields.string("artifact_directory_path").strip("/")
    if below:
        ids.file_path(below, field="artifact_directory_path")
    root = ids.model_files(model.model_id)
    entries = tracking.list_artifacts(model.run_id, f"{root}/{below}" if below else root)
    start = len(root) + 1
    files = [
        {"path": f.path[start:], "is_dir": True}
        if f.is_dir
        else {"path": f.path[start:], "is_dir": False, "file_size": f.file_size}
        for f in entries
    ]
    root_uri = ids.logged_model_artifact_uri(model.run.info.experiment_id, model.model_id)
    return {"root_uri": root_uri, "files": files}


# --- search ----------------------------------------------------------------------------------


def _status_name(value: str) -> str | None:
    name = value.strip().upper()
    return next((short for proto, short in SHORT_STATUS.items() if name in (proto, short)), None)


STRING_OPS = f.STRING_OPS
SEARCH = f.SearchSpec(
    entity_ops={f.Entity.PARAM: STRING_OPS, f.Entity.TAG: STRING_OPS},
    attributes=(
        f.Attribute("name", f.Kind.STRING, STRING_OPS),
        f.Attribute("model_id", f.Kind.STRING, STRING_OPS),
        f.Attribute("model_type", f.Kind.STRING, STRING_OPS),
        f.Attribute("source_run_id", f.Kind.STRING, STRING_OPS),
        f.Attribute("status", f.Kind.ENUM, frozenset({"=", "!=", "IN", "NOT IN"}), normalise=_status_name),
        f.Attribute("creation_timestamp", f.Kind.INT, f.NUMERIC_OPS, aliases=("creation_time",)),
        f.Attribute("last_updated_timestamp", f.Kind.INT, f.NUMERIC_OPS, aliases=("last_updated_time",)),
    ),
)
ORDERABLE = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "source_run_id": "source_run_id",
    "status": "status",
    "creation_timestamp": "creation_timestamp",
    "creation_time": "creation_timestamp",
    "creation_timestamp_ms": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "last_updated_time": "last_updated_timestamp",
    "last_updated_timestamp_ms": "last_updated_timestamp",
}


def attributes(model: Stored) -> dict[str, str | int]:
    state = model.state
    return {
        "name": state.name,
        "model_id": model.model_id,
        "model_type": state.model_type,
        "source_run_id": state.source_run_id,
        "status": SHORT_STATUS[state.status],
        "creation_timestamp": state.created,
        "last_updated_timestamp": state.updated,
    }


@cache
def like_pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """``%`` any run, ``_`` one character, a backslash makes the next ``%``, ``_`` or ``\\`` literal
    (modelreg's LIKE, see modelreg_server.filters)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(value: str | int | None, op: str, wanted: f.Value) -> bool:
    """One clause, as MLflow's: a param or tag the model lacks matches nothing."""
    if value is None:
        return False
    if op in ("IN", "NOT IN"):
        assert isinstance(wanted, tuple)
        return (value in wanted) == (op == "IN")
    if op in ("LIKE", "ILIKE"):
        return bool(like_pattern(str(wanted), op == "ILIKE").fullmatch(str(value)))
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return compare[op](value, wanted)


def selected(model: Stored, clauses: list[f.Comparison]) -> bool:
    for clause in clauses:
        if clause.entity is f.Entity.PARAM:
            value: str | int | None = model.state.params.get(clause.key)
        elif clause.entity is f.Entity.TAG:
            value = model.state.tags.get(clause.key)
        else:
            value = attributes(model)[clause.key]
        if not matches(value, clause.op, clause.value):
            return False
    return True


def order_keys(fields: Fields) -> list[tuple[str, bool]]:
    """(attribute, ascending) from MLflow's ``order_by`` objects."""
    result = []
    allowed = ("field_name", "ascending", "dataset_name", "dataset_digest")
    for i, item in enumerate(fields.objects("order_by", allowed)):
        name = item.string("field_name", required=True).strip()
        if item.has("dataset_name") or item.has("dataset_digest"):
            raise MlflowError.invalid(f"order_by[{i}].dataset_name: LoggedModel metrics are not kept here")
        if name.lower() not in ORDERABLE:
            raise MlflowError.invalid(
                f"order_by[{i}].field_name: cannot order LoggedModels by {name[:100]!r} "
                f"(one of {', '.join(sorted(set(ORDERABLE.values())))})"
            )
        result.append((ORDERABLE[name.lower()], item.boolean("ascending", default=True)))
    return result


def search_logged_models(call: Call) -> Json:
    fields, tracking = call.fields, call.services.tracking
    experiment_ids = fields.strings("experiment_ids")
    if not experiment_ids:
        raise MlflowError.invalid("Missing value for required parameter 'experiment_ids'.")
    if fields.objects("datasets", ("dataset_name", "dataset_digest")):
        raise MlflowError.invalid("datasets: LoggedModel metrics are not kept here, so no dataset filter")
    try:
        clauses = f.parse_filter(fields.string("filter"), SEARCH)
    except InvalidArgumentError as error:
        raise MlflowError.invalid(f"filter: {error.message}") from None
    ordering = order_keys(fields)
    size = fields.integer("max_results", default=None) or SEARCH_PAGE_DEFAULT
    if not 0 < size <= SEARCH_PAGE_MAX:
        raise MlflowError.invalid(f"max_results: {size} is outside 1..{SEARCH_PAGE_MAX}")
    token = fields.string("page_token")
    offset = int64(token) if token else 0
    if offset is None or offset < 0:
        raise MlflowError.invalid(f"page_token: {token[:100]!r} is not a token this search returned")

    marked = f"tags.`{ids.INDEX_TAG}` = '{ids.INDEX_TAG_VALUE}'"
    models = [
        model
        for run in tracking.search_runs(experiment_ids, marked)
        for model in stored_in(run)
        if not model.state.deleted and selected(model, clauses)
    ]
    # MLflow's order: the keys asked for, then newest first, then by id. Sorted by the last key
    # first: each sort is stable, so earlier keys decide.
    keys = [*ordering]
    if not any(name == "creation_timestamp" for name, _ in keys):
        keys.append(("creation_timestamp", False))
    keys.append(("model_id", True))
    for name, ascending in reversed(keys):
        models.sort(key=lambda m, name=name: attributes(m)[name], reverse=not ascending)  # type: ignore[misc]
    page = models[offset : offset + size]
    result: Json = {"models": [to_json(m) for m in page]}
    if offset + size < len(models):
        result["next_page_token"] = str(offset + size)
    return result


ENDPOINTS = [
    Endpoint(
        "POST",
        "/mlflow/logged-models",
        create_logged_model,
        ("experiment_id", "name", "model_type", "source_run_id", "params", "tags"),
    ),
    Endpoint(
        "POST",
        "/mlflow/logged-models/search",
        search_logged_models,
        ("experiment_ids", "filter", "datasets", "max_results", "order_by", "page_token"),
    ),
    Endpoint("GET", "/mlflow/logged-models/{model_id}", get_logged_model, ("allow_deleted",)),
    Endpoint("PATCH", "/mlflow/logged-models/{model_id}", finalize_logged_model, ("model_id", "status")),
    Endpoint("DELETE", "/mlflow/logged-models/{model_id}", delete_logged_model, ("model_id",)),
    Endpoint("PATCH", "/mlflow/logged-models/{model_id}/tags", set_logged_model_tags, ("model_id", "tags")),
    Endpoint(
        "DELETE",
        "/mlflow/logged-models/{model_id}/tags/{tag_key:path}",
        delete_logged_model_tag,
        ("model_id",),
    ),
    Endpoint(
        "POST",
        "/mlflow/logged-models/{model_id}/params",
        log_logged_model_params,
        ("model_id", "params"),
    ),
    Endpoint(
        "GET",
        "/mlflow/logged-models/{model_id}/artifacts/directories",
        list_logged_model_artifacts,
        ("artifact_directory_path",),
    ),
]
