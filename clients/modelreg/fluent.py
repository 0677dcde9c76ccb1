"""The fluent API for training code, as in MLflow: ``modelreg.start_run()``, ``log_param``, ...

State:
- The tracking/registry targets are process-wide (``set_tracking_uri``).
- The active experiment is process-wide; the stack of active runs is per thread (as in MLflow),
  so threads can each run their own run. ``last_active_run`` is process-wide.
- Calls that need a run and find none start one, as MLflow does.

Metrics are buffered: ``log_metric`` appends to a per-process :class:`MetricBuffer` and returns
at once; a background thread sends the points through the ``LogMetrics`` client stream in
batches (up to 10,000 points per message, the protocol's maximum) every 100 ms or as soon as a
batch fills. Points keep the order they were logged in, and their timestamp is taken when they
are logged. The buffer is flushed by ``end_run``, ``flush_metrics``, ``get_run``, ``search_runs``,
``modelreg.Client`` reads and registrations, and at interpreter exit. A failed send is raised by the next
``log_metric``, ``flush_metrics`` or ``end_run`` of this process: never dropped silently.
``log_param`` and ``set_tag`` are direct calls, so a conflicting param fails at once.

System tags, as MLflow's fluent API sets them on a new run: ``mlflow.user`` (MODELREG_USER, else
the OS user), ``mlflow.source.name`` (the script, ``sys.argv[0]``), ``mlflow.source.type``
(``LOCAL``), ``mlflow.source.git.commit`` (when the script is in a git checkout),
``mlflow.note.content`` (``start_run(description=)``); ``mlflow.runName`` and
``mlflow.parentRunId`` are the run's name and parent (see ``modelreg._convert``). Logging a model
appends to ``mlflow.log-model.history``; ``log_table`` to ``mlflow.loggedArtifacts``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import posixpath
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

from modelreg import _convert as conv
from modelreg import config
from modelreg import entities as e
from modelreg.config import ClientSettings
from modelreg.exceptions import AlreadyExists, FailedPrecondition, InvalidArgument, ModelregError, NotFound
from modelreg.registry_client import RegistryClient
from modelreg.tracking_client import TrackingClient
from modelreg.wire import now_ms

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("modelreg")

MetricSink = Callable[[Iterable[tuple[str, Sequence[e.Metric]]]], int]
"""Sends ``(run_id, points)`` batches; ``TrackingClient.log_metrics_stream`` in production."""

_PARAMS_PER_BATCH = 100  # LogBatch limits (tracking.proto)
_TAGS_PER_BATCH = 100


class MetricBuffer:
    """Accumulates metric points and sends them in batches from a background thread.

    - ``add`` is cheap (a lock and an append); when ``max_pending`` points wait unsent (the
      network cannot keep up), ``add`` sends them itself: back-pressure instead of unbounded memory.
    - One sender at a time (``_send_lock``), taking the pending points in log order, so points
      arrive in the order they were logged even when ``flush`` and the thread race.
    - A send error is kept and raised by the next ``add`` or ``flush``, once.
    """

    def __init__(
        self,
        sink: MetricSink,
        *,
        batch_size: int = 10_000,
        interval: float = 0.1,
        max_pending: int = 100_000,
    ) -> None:
        self._sink = sink
        self._batch_size = batch_size
        self._interval = interval
        self._max_pending = max_pending
        self._pending: list[tuple[str, e.Metric]] = []
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, run_id: str, metric: e.Metric) -> None:
        with self._lock:
            self._raise_error()
            self._pending.append((run_id, metric))
            pending = len(self._pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="modelreg-metrics", daemon=True)
                self._thread.start()
        if pending >= self._max_pending:
            self.flush()
        elif pending >= self._batch_size:
            self._wake.set()

    def flush(self) -> None:
        """Sends every point added so far; raises the first send error since the last raise."""
        self._send()
        with self._lock:
            self._raise_error()

    def close(self) -> None:
        """Stops the thread after a last flush (whose errors are raised)."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self._send()

    def _send(self) -> None:
        with self._send_lock:
            with self._lock:
                points, self._pending = self._pending, []
            if not points:
                return
            try:
                self._sink(self._batches(points))
            except Exception as exc:  # kept for the caller: see the class docstring
                with self._lock:
                    self._error = self._error or exc

    def _batches(self, points: list[tuple[str, e.Metric]]) -> Iterator[tuple[str, list[e.Metric]]]:
        """Consecutive points of one run, at most ``batch_size`` per message, in log order."""
        batch: list[e.Metric] = []
        batch_run = ""
        for run_id, metric in points:
            if batch and (run_id != batch_run or len(batch) >= self._batch_size):
                yield batch_run, batch
                batch = []
            batch_run = run_id
            batch.append(metric)
        if batch:
            yield batch_run, batch


class ActiveRun(e.Run):
    """The run ``start_run`` returns: a :class:`~modelreg.entities.Run` (``run.info.run_id``) and a
    context manager that ends it: FINISHED on normal exit, FAILED on an exception, KILLED on
    KeyboardInterrupt."""

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        end_run(status)
        return False


class _FluentRegistryClient(RegistryClient):
    """The process-wide registry client: sends buffered metrics before registering a version, so
    the lineage the registry copies from the run holds every metric logged before."""

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, object] | None = None,
        description: str | None = None,
    ) -> e.ModelVersion:
        if run_id:
            flush_metrics()
        return super().create_model_version(name, source, run_id, tags, description)


class _State:
    """Process-wide fluent state; the run stack lives in a thread-local."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.client: TrackingClient | None = None
        self.registry: RegistryClient | None = None
        self.buffer: MetricBuffer | None = None
        self.pid = os.getpid()
        self.experiment_id: str | None = None
        self.last_run_id: str | None = None
        self.local = threading.local()

    def stack(self) -> list[ActiveRun]:
        if not hasattr(self.local, "runs"):
            self.local.runs = []
        runs: list[ActiveRun] = self.local.runs
        return runs


_state = _State()


def _reset_after_fork() -> None:
    # A forked child inherits locks that may be held and a channel it must not use.
    global _state
    _state = _State()


os.register_at_fork(after_in_child=_reset_after_fork)


def tracking_client() -> TrackingClient:
    """The process-wide tracking client, for the target configured now (``set_tracking_uri``,
    else MODELREG_TRACKING_URI): a cached client whose target is no longer the configured one is
    replaced, so a changed configuration is never answered by the old server."""
    target = config.default_uri("tracking")
    with _state.lock:
        if _state.client is None or _state.client.target != target:
            if _state.client is not None:
                _state.client.close()
                # Experiment ids are issued by one server; the new one would not know (or would
                # misread) the old one's, so the next run goes to the experiment set from now on.
                _state.experiment_id = None
            _state.client = TrackingClient(target)
        return _state.client


def registry_client() -> RegistryClient:
    """The process-wide registry client, for the target configured now (see tracking_client)."""
    target = config.default_uri("registry")
    with _state.lock:
        if _state.registry is None or _state.registry.target != target:
            if _state.registry is not None:
                _state.registry.close()
            _state.registry = _FluentRegistryClient(target)
        return _state.registry


def _buffer() -> MetricBuffer:
    buffer = _state.buffer
    if buffer is not None:  # every log_metric comes here: skip the lock once the buffer exists
        return buffer
    with _state.lock:
        if _state.buffer is None:
            _state.buffer = MetricBuffer(lambda batches: tracking_client().log_metrics_stream(batches))
        return _state.buffer


def flush_metrics() -> None:
    """Sends every metric point logged so far in this process; raises a failed send's error."""
    buffer = _state.buffer
    if buffer is not None:
        buffer.flush()


flush_async_logging = flush_metrics
"""MLflow's name for :func:`flush_metrics`."""


# Targets


def set_tracking_uri(uri: str) -> None:
    """Points this process at a tracking service (``host:port``, ``grpc://`` or ``grpcs://``)."""
    flush_metrics()  # points logged so far belong to the old target
    with _state.lock:
        config.set_default_uri("tracking", uri)


def get_tracking_uri() -> str:
    return ClientSettings.from_env().tracking_uri


def set_registry_uri(uri: str) -> None:
    """Points this process at a registry service (``host:port``, ``grpc://`` or ``grpcs://``)."""
    config.set_default_uri("registry", uri)


def get_registry_uri() -> str:
    return ClientSettings.from_env().registry_uri


# Experiments


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> e.Experiment:
    """Makes an experiment active, by name (created when missing) or by id."""
    if (experiment_name is None) == (experiment_id is None):
        raise ValueError("give exactly one of experiment_name and experiment_id")
    client = tracking_client()
    if experiment_id is not None:
        experiment = client.get_experiment(experiment_id)
    else:
        assert experiment_name is not None
        try:
            experiment = client.get_experiment_by_name(experiment_name)
        except NotFound:
            experiment = client.create_experiment(experiment_name)
    if experiment.lifecycle_stage == "deleted":
        raise FailedPrecondition(
            f"experiment {experiment.name!r} is deleted; restore it first",
            code="FAILED_PRECONDITION",
            reason="EXPERIMENT_DELETED",
            metadata={"experiment_id": experiment.experiment_id},
        )
    with _state.lock:
        _state.experiment_id = experiment.experiment_id
    return experiment


def get_experiment_by_name(name: str) -> e.Experiment | None:
    try:
        return tracking_client().get_experiment_by_name(name)
    except NotFound:
        return None


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, object] | None = None
) -> str:
    """Creates an experiment; returns its id (AlreadyExists when the name is taken)."""
    return tracking_client().create_experiment(name, artifact_location, tags).experiment_id


def get_experiment(experiment_id: str) -> e.Experiment:
    """Raises NotFound (RESOURCE_DOES_NOT_EXIST to MLflow code) for an unknown id."""
    return tracking_client().get_experiment(experiment_id)


def search_experiments(
    view_type: str | int = "ACTIVE_ONLY",
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[e.Experiment]:
    """Every matching experiment (all of them unless ``max_results``)."""
    return list(tracking_client().search_experiments(filter_string or "", view_type, max_results, order_by))


def set_experiment_tag(key: str, value: object) -> None:
    """Tags the active experiment (the Default one when none was set)."""
    tracking_client().set_experiment_tag(_state.experiment_id or "0", key, value)


def delete_experiment(experiment_id: str) -> None:
    """Marks the experiment and its runs deleted (restorable until garbage-collected)."""
    tracking_client().delete_experiment(experiment_id)


def set_experiment_tags(tags: Mapping[str, object]) -> None:
    for key, value in tags.items():
        set_experiment_tag(key, value)


# Runs


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, object] | None = None,
    description: str | None = None,
) -> ActiveRun:
    """Starts a run (or resumes ``run_id``) and makes it the active run of this thread.

    A run started while another is active must say ``nested=True``; it gets the active run as
    its parent (or ``parent_run_id`` when given). Use as ``with modelreg.start_run() as run:``.
    """
    stack = _state.stack()
    if stack and not nested:
        raise FailedPrecondition(
            f"run {stack[-1].info.run_id} is already active; end it first or pass nested=True",
            code="FAILED_PRECONDITION",
            reason="RUN_ALREADY_ACTIVE",
        )
    client = tracking_client()
    if run_id is not None:
        run = client.get_run(run_id)
        if run.info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        for key, value in (tags or {}).items():
            client.set_tag(run_id, key, value)
        run = client.get_run(run_id)
    else:
        parent = parent_run_id or (stack[-1].info.run_id if stack and nested else None)
        own_tags = dict(tags or {})
        system: dict[str, object] = {k: v for k, v in _source_tags().items() if k not in own_tags}
        if description is not None:
            system[NOTE_TAG] = description
        # The system tags go with the run's own unless together they pass what one call may
        # carry (MAX_TAGS_PER_CALL): then they follow in a second call, so the caller's limit
        # is the documented one, whatever the system adds.
        together = len(own_tags) + len(system) <= MAX_TAGS_PER_CALL
        run = client.create_run(
            experiment_id=experiment_id or _state.experiment_id or "0",
            run_name=run_name,
            tags={**system, **own_tags} if together else own_tags,
            parent_run_id=parent,
        )
        if not together:
            client.log_batch(run.info.run_id, tags=[e.RunTag(k, str(v)) for k, v in system.items()])
            run = client.get_run(run.info.run_id)
    run = conv.mlflow_run(run)
    active = ActiveRun(info=run.info, data=run.data)
    stack.append(active)
    with _state.lock:
        _state.last_run_id = run.info.run_id
    return active


def active_run() -> ActiveRun | None:
    """The active run of this thread, or None."""
    stack = _state.stack()
    return stack[-1] if stack else None


def last_active_run() -> e.Run | None:
    """The active run, else the run most recently started or ended in this process (fresh from the
    server): after a parent run with nested runs, the parent, as in MLflow."""
    current = active_run()
    run_id = current.info.run_id if current is not None else _state.last_run_id
    return get_run(run_id) if run_id is not None else None


def end_run(status: str = "FINISHED") -> None:
    """Ends the active run of this thread (no-op without one) after sending its buffered metrics.

    When the buffered metrics cannot be sent the run is marked FAILED and the error is raised.
    """
    stack = _state.stack()
    if not stack:
        return
    run = stack.pop()
    with _state.lock:
        _state.last_run_id = run.info.run_id
    try:
        flush_metrics()
    except Exception:
        with contextlib.suppress(ModelregError):  # the flush error is the one worth reporting
            tracking_client().set_terminated(run.info.run_id, "FAILED")
        raise
    tracking_client().set_terminated(run.info.run_id, status)


def get_run(run_id: str) -> e.Run:
    """The run, its tags holding MLflow's ``mlflow.runName`` (and ``mlflow.parentRunId``)."""
    flush_metrics()
    return conv.mlflow_run(tracking_client().get_run(run_id))


def get_parent_run(run_id: str) -> e.Run | None:
    """The run's parent (``mlflow.parentRunId``), None for a top-level run."""
    parent = get_run(run_id).info.parent_run_id
    return get_run(parent) if parent else None


def delete_run(run_id: str) -> None:
    """Marks the run deleted (restorable until garbage-collected)."""
    tracking_client().delete_run(run_id)


def _run_id() -> str:
    current = active_run()
    return (current or start_run()).info.run_id


# Logging


def log_param(key: str, value: object) -> object:
    """Logs one param of the active run; another value for a logged key raises InvalidArgument
    (PARAM_VALUE_CONFLICT) at once. Returns ``value``."""
    tracking_client().log_param(_run_id(), key, value)
    return value


def log_params(params: Mapping[str, object]) -> None:
    run_id = _run_id()
    items = [e.Param(str(k), str(v)) for k, v in params.items()]
    for start in range(0, len(items), _PARAMS_PER_BATCH):
        tracking_client().log_batch(run_id, params=items[start : start + _PARAMS_PER_BATCH])


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool = False,
) -> None:
    """Logs one point of the active run. Buffered (see the module docstring) unless
    ``synchronous=True``, which sends it now and raises its error at once."""
    run_id = _run_id()
    metric = e.Metric(key, float(value), timestamp or now_ms(), step or 0)
    if synchronous:
        flush_metrics()  # keep log order
        tracking_client().log_metric(run_id, key, metric.value, metric.timestamp, metric.step)
    else:
        _buffer().add(run_id, metric)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool = False,
) -> None:
    stamp = timestamp or now_ms()
    for key, value in metrics.items():
        log_metric(key, value, step=step, timestamp=stamp, synchronous=synchronous)


def set_tag(key: str, value: object) -> None:
    """Sets a tag of the active run; ``mlflow.runName`` renames the run, as in MLflow."""
    tracking_client().set_tag(_run_id(), key, value)


def set_tags(tags: Mapping[str, object]) -> None:
    """Sets the tags in batches of 100; ``mlflow.runName`` renames the run, as ``set_tag`` does."""
    run_id = _run_id()
    tags = dict(tags)
    if conv.RUN_NAME_TAG in tags:
        tracking_client().set_tag(run_id, conv.RUN_NAME_TAG, tags.pop(conv.RUN_NAME_TAG))
    items = [e.RunTag(str(k), str(v)) for k, v in tags.items()]
    for start in range(0, len(items), _TAGS_PER_BATCH):
        tracking_client().log_batch(run_id, tags=items[start : start + _TAGS_PER_BATCH])


def delete_tag(key: str) -> None:
    tracking_client().delete_tag(_run_id(), key)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    tracking_client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    tracking_client().log_artifacts(_run_id(), local_dir, artifact_path)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The URI of the active run's artifact root, or of ``artifact_path`` under it."""
    current = active_run() or start_run()
    root = current.info.artifact_uri.rstrip("/")
    return f"{root}/{artifact_path.lstrip('/')}" if artifact_path else root


def upload_file(
    tracking: TrackingClient, run_id: str, artifact_file: str, write: Callable[[Path], object]
) -> None:
    """Writes one file with ``write(path)`` in a temporary directory and uploads it as
    ``artifact_file`` (a file path under the run's artifact root)."""
    directory, name = posixpath.split(artifact_file.strip("/"))
    if name in ("", ".", ".."):
        raise InvalidArgument(
            f"artifact_file {artifact_file!r} must name a file",
            code="INVALID_ARGUMENT",
            reason="INVALID_ARTIFACT_PATH",
            metadata={"field": "artifact_file"},
        )
    with tempfile.TemporaryDirectory(prefix="modelreg-") as tmp:
        local = Path(tmp) / name
        write(local)
        tracking.log_artifact(run_id, local, directory or None)


def _log_file(artifact_file: str, write: Callable[[Path], object], run_id: str | None = None) -> None:
    """upload_file to the active run (or ``run_id``) through the process-wide client."""
    upload_file(tracking_client(), run_id or _run_id(), artifact_file, write)


def dict_text(dictionary: Mapping[str, Any], artifact_file: str) -> str:
    """``dictionary`` as YAML for a .yaml/.yml file (needs PyYAML), else as JSON, as MLflow writes it."""
    if artifact_file.endswith((".yaml", ".yml")):
        import yaml

        return str(yaml.safe_dump(dict(dictionary), default_flow_style=False))
    return json.dumps(dictionary, indent=2)


def log_text(text: str, artifact_file: str) -> None:
    """Uploads ``text`` (UTF-8) as the artifact ``artifact_file`` of the active run."""
    _log_file(artifact_file, lambda path: path.write_text(text, encoding="utf-8"))


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> None:
    """Uploads ``dictionary`` as YAML when ``artifact_file`` ends in .yaml or .yml (needs PyYAML),
    else as JSON, as MLflow does."""
    log_text(dict_text(dictionary, artifact_file), artifact_file)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: Mapping[str, Any] | None = None) -> None:
    """Uploads a matplotlib figure (``savefig``) or a plotly figure (``.html`` with
    ``write_html``, else ``write_image``) as ``artifact_file``."""
    kwargs = dict(save_kwargs or {})
    module = type(figure).__module__
    if module.startswith("matplotlib"):
        _log_file(artifact_file, lambda path: figure.savefig(path, **kwargs))
    elif module.startswith("plotly"):
        if artifact_file.endswith(".html"):
            _log_file(artifact_file, lambda path: figure.write_html(str(path), **kwargs))
        else:
            _log_file(artifact_file, lambda path: figure.write_image(str(path), **kwargs))
    else:
        raise TypeError(f"log_figure takes a matplotlib or plotly figure, not {type(figure).__name__}")


def log_image(
    image: Any,
    artifact_file: str | None = None,
    *,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
) -> None:
    """Uploads a PIL image or a numpy array (H x W, or H x W x 1, 3 or 4; integers in 0..255, or floats
    in 0..1 scaled by 255, as MLflow does) as the image ``artifact_file`` (needs Pillow).

    MLflow's ``key``/``step`` form (an image series) is not provided: pass ``artifact_file``."""
    if artifact_file is None or key is not None or step is not None or timestamp is not None:
        raise InvalidArgument(
            "log_image needs artifact_file; the key/step image series is not provided by modelreg",
            code="INVALID_ARGUMENT",
            reason="NOT_SUPPORTED",
            metadata={"field": "key"},
        )
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(_image_array(image))
    _log_file(artifact_file, image.save)


def _image_array(array: Any) -> Any:
    import numpy as np

    values = np.asarray(array)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.ndim not in (2, 3) or (values.ndim == 3 and values.shape[2] not in (3, 4)):
        raise ValueError(f"an image array is H x W, or H x W x 1, 3 or 4; got shape {values.shape}")
    if np.issubdtype(values.dtype, np.floating):
        if values.size and (values.min() < 0 or values.max() > 1):
            raise ValueError("a float image array holds values in [0, 1]")
        return (values * 255).round().astype(np.uint8)
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ValueError("an integer image array holds values in [0, 255]")
    return values.astype(np.uint8)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Uploads a dict of columns or a pandas DataFrame as the JSON MLflow writes
    (``{"columns": [...], "data": [[...], ...]}``), and records it in the run's
    ``mlflow.loggedArtifacts`` tag (``[{"path": ..., "type": "table"}]``)."""
    import pandas as pd

    if not artifact_file.endswith(".json"):
        raise InvalidArgument(
            f"artifact_file {artifact_file!r} must end in .json",
            code="INVALID_ARGUMENT",
            reason="INVALID_ARTIFACT_PATH",
            metadata={"field": "artifact_file"},
        )
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame.from_dict(dict(data))
    target = run_id or _run_id()
    _log_file(artifact_file, lambda path: frame.to_json(path, orient="split", index=False), target)
    _append_tag_list(target, LOGGED_ARTIFACTS_TAG, {"path": artifact_file, "type": "table"})


def log_input(
    dataset: Any,
    context: str | None = None,
    tags: Mapping[str, str] | None = None,
    model: Any = None,
) -> None:
    """Records a dataset the active run used, in the run's ``modelreg.datasets`` tag: a JSON list
    of ``{"name", "digest", "source_type", "source", "context", "tags"}``.

    ``dataset`` is an object with MLflow's Dataset attributes (``name``, ``digest``, optional
    ``source_type``/``source``) or a pandas DataFrame (name "dataset", digest the first 8 hex of
    the sha256 of its JSON). MLflow keeps datasets as run inputs, which modelreg's runs do not
    have, so MLflow's dataset views do not show them; the data itself is not uploaded.
    """
    del model  # MLflow's LoggedModel inputs: modelreg has no logged-model entity
    name, digest = getattr(dataset, "name", None), getattr(dataset, "digest", None)
    if name is None or digest is None:
        import hashlib

        import pandas as pd

        if not isinstance(dataset, pd.DataFrame):
            raise TypeError("log_input takes a dataset (with name and digest) or a pandas DataFrame")
        name, digest = "dataset", hashlib.sha256(dataset.to_json().encode()).hexdigest()[:8]
    source = getattr(dataset, "source", None)
    entry = {
        "name": str(name),
        "digest": str(digest),
        "source_type": str(getattr(dataset, "source_type", "") or ""),
        "source": "" if source is None else str(getattr(source, "uri", source)),
        "context": context or "",
        "tags": dict(tags or {}),
    }
    _append_tag_list(_run_id(), DATASETS_TAG, entry)


def _append_tag_list(run_id: str, key: str, entry: Mapping[str, Any]) -> None:
    """Appends ``entry`` to the JSON list the run's tag ``key`` holds (read, then written: two
    processes appending to one run at once may lose an entry, as in MLflow)."""
    current = tracking_client().get_run(run_id).data.tags.get(key)
    try:
        entries = json.loads(current) if current else []
    except ValueError:
        entries = []
    if not isinstance(entries, list):
        entries = []
    entries.append(dict(entry))
    tracking_client().set_tag(run_id, key, json.dumps(entries))


def record_logged_model(run_id: str, artifact_path: str, flavors: Mapping[str, Any]) -> None:
    """Appends what MLflow records of a logged model to the run's ``mlflow.log-model.history``
    tag: ``run_id``, ``artifact_path``, ``utc_time_created``, ``model_uuid``, ``flavors``."""
    created = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime())
    entry = {
        "run_id": run_id,
        "artifact_path": artifact_path,
        "utc_time_created": created,
        "model_uuid": uuid.uuid4().hex,
        "flavors": dict(flavors),
    }
    _append_tag_list(run_id, LOG_MODEL_HISTORY_TAG, entry)


# System tags

NOTE_TAG = "mlflow.note.content"
# Tags one CreateRun or LogBatch call may carry (the tracking service's batch limit).
MAX_TAGS_PER_CALL = 100
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
DATASETS_TAG = "modelreg.datasets"


def _source_tags() -> dict[str, str]:
    """The system tags of a new run, as MLflow's default and git context providers set them."""
    main = sys.argv[0] if sys.argv else None
    tags = {
        conv.USER_TAG: ClientSettings.from_env().actor,
        SOURCE_NAME_TAG: "<console>" if main is None else main,
        SOURCE_TYPE_TAG: "LOCAL",
    }
    script = main not in (None, "", "-c")
    commit = _commit_of(Path(main).resolve().parent if main and script else Path.cwd())
    if commit:
        tags[GIT_COMMIT_TAG] = commit
    return tags


@functools.lru_cache(maxsize=8)
def _commit_of(directory: Path) -> str | None:
    """git_commit, once per directory runs start from: a checkout seldom changes under a running
    script, and a repository's packed refs (or a ``git`` process) would otherwise cost every run."""
    return git_commit(directory)


def git_commit(directory: Path) -> str | None:
    """The commit checked out in the git work tree holding ``directory``, or None: read from
    ``.git`` (a directory, or a worktree's ``gitdir:`` file; refs loose or packed), else from
    ``git rev-parse HEAD`` (2 s timeout) when the files say something this reader does not know."""
    for top in (directory, *directory.parents):
        dot_git = top / ".git"
        if dot_git.exists():
            break
    else:
        return None
    try:
        commit = _read_head(dot_git)
    except (OSError, ValueError):
        commit = None
    if commit is not None:
        return commit
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=top, capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and _is_sha(out) else None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _read_head(dot_git: Path) -> str | None:
    git_dir = dot_git
    if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
        line = dot_git.read_text().strip()
        if not line.startswith("gitdir:"):
            return None
        git_dir = (dot_git.parent / line.removeprefix("gitdir:").strip()).resolve()
    head = (git_dir / "HEAD").read_text().strip()
    if _is_sha(head):
        return head
    if not head.startswith("ref: "):
        return None
    ref = head.removeprefix("ref: ")
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text().strip()
            return value if _is_sha(value) else None
    packed = common / "packed-refs"
    if packed.is_file():
        with packed.open() as lines:  # line by line: packed-refs may list millions of refs
            for line in lines:
                sha, _, name = line.rstrip("\n").partition(" ")
                if name == ref and _is_sha(sha):
                    return sha
    return None


# Registry


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int | None = None,
    *,
    tags: Mapping[str, object] | None = None,
) -> e.ModelVersion:
    """Registers the model at ``model_uri`` (``runs:/<run_id>/<path>``, or ``models:/...`` to
    register a registered version's files again) as the next version of ``name``, creating the
    registered model on first use. The version is READY when this returns, so
    ``await_registration_for`` has nothing to wait for."""
    from modelreg.uris import RunsUri, parse_model_uri

    del await_registration_for
    parsed = parse_model_uri(model_uri)
    registry = registry_client()
    run_id: str | None
    if isinstance(parsed, RunsUri):
        source, run_id = parsed.uri, parsed.run_id
    else:
        version = registry.resolve_model_uri(parsed.uri)
        source, run_id = version.source, version.run_id
    return create_version(registry, name, source, run_id, tags)


def create_version(
    registry: RegistryClient,
    name: str,
    source: str,
    run_id: str | None,
    tags: Mapping[str, object] | None = None,
) -> e.ModelVersion:
    """The next version of ``name``, creating the registered model on first use."""
    try:  # the model usually exists: one call, not two
        return registry.create_model_version(name, source=source, run_id=run_id, tags=tags)
    except NotFound as exc:
        if exc.reason != "REGISTERED_MODEL_NOT_FOUND":
            raise
    with contextlib.suppress(AlreadyExists):  # another job created it meanwhile: just as good
        registry.create_registered_model(name)
    return registry.create_model_version(name, source=source, run_id=run_id, tags=tags)


# Search


@overload
def search_runs(
    experiment_ids: Sequence[str] | None = ...,
    filter_string: str = ...,
    run_view_type: str | int = ...,
    max_results: int | None = ...,
    order_by: Sequence[str] | None = ...,
    output_format: Literal["pandas"] = ...,
    search_all_experiments: bool = ...,
    experiment_names: Sequence[str] | None = ...,
) -> pd.DataFrame: ...
@overload
def search_runs(
    experiment_ids: Sequence[str] | None = ...,
    filter_string: str = ...,
    run_view_type: str | int = ...,
    max_results: int | None = ...,
    order_by: Sequence[str] | None = ...,
    *,
    output_format: Literal["list"],
    search_all_experiments: bool = ...,
    experiment_names: Sequence[str] | None = ...,
) -> list[e.Run]: ...
def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: str | int = "ACTIVE_ONLY",
    max_results: int | None = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: Literal["pandas", "list"] = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> pd.DataFrame | list[e.Run]:
    """Runs as a pandas DataFrame (MLflow's default) or, with ``output_format="list"``, a list of
    :class:`~modelreg.entities.Run`.

    Searches the active experiment unless ``experiment_ids`` / ``experiment_names`` name others or
    ``search_all_experiments`` is set. DataFrame columns, as MLflow's: run_id, experiment_id,
    run_name, status, artifact_uri, start_time, end_time (UTC datetimes), then ``metrics.<key>``,
    ``params.<key>``, ``tags.<key>``.
    """
    flush_metrics()
    client = tracking_client()
    if search_all_experiments:
        ids: list[str] = []  # no ids: every experiment
    elif experiment_ids is None and experiment_names is None:
        ids = [_state.experiment_id or "0"]
    else:
        ids = list(experiment_ids or ())
        ids += [
            x.experiment_id for n in experiment_names or () if (x := get_experiment_by_name(n)) is not None
        ]
        if not ids:  # only unknown names: nothing matches (an empty list would mean "everything")
            return [] if output_format == "list" else _runs_frame([])
    runs = [
        conv.mlflow_run(r)
        for r in client.search_runs(ids, filter_string, run_view_type, max_results, order_by)
    ]
    if output_format == "list":
        return runs
    if output_format != "pandas":
        raise ValueError(f"unknown output_format {output_format!r}; expected 'pandas' or 'list'")
    return _runs_frame(runs)


def _runs_frame(runs: list[e.Run]) -> pd.DataFrame:
    import pandas as pd  # not at import time: `import modelreg` stays cheap

    rows: list[dict[str, Any]] = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "artifact_uri": run.info.artifact_uri,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(run.info.end_time, unit="ms", utc=True)
            if run.info.end_time
            else pd.NaT,
        }
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    columns = ["run_id", "experiment_id", "run_name", "status", "artifact_uri", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=columns + sorted({c for r in rows for c in r} - set(columns)))


def _at_exit() -> None:
    """Ends this thread's open runs and sends buffered metrics; errors are logged (nobody is left
    to catch them)."""
    try:
        while active_run() is not None:
            end_run()
        if _state.buffer is not None:
            _state.buffer.close()
    except Exception:
        log.exception("modelreg: could not send buffered metrics or end the run at exit")


atexit.register(_at_exit)
