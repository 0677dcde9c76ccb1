"""Autologging for scikit-learn, as ``mlflow.sklearn.autolog()`` / ``mlflow.autolog()``.

After ``modelreg.sklearn.autolog()`` (or ``modelreg.autolog()``), calling ``fit``,
``fit_transform`` or ``fit_predict`` on a scikit-learn estimator records, on the active run (or on
a run started for the fit and ended after it, tagged ``mlflow.autologging=sklearn``):

- **params**: ``estimator.get_params(deep=True)`` (``deep=False`` for GridSearchCV and
  RandomizedSearchCV, whose seed estimator's untuned params would mislead), as strings; keys longer
  than 250 characters and values longer than 6,000 are truncated (the tracking service's limits);
- **tags**: ``estimator_name`` (the class name) and ``estimator_class`` (module and class name);
- **training metrics**, when ``fit`` was given labels: ``training_score`` (``estimator.score``),
  for classifiers ``training_accuracy_score``, ``training_precision_score``,
  ``training_recall_score``, ``training_f1_score`` (weighted averages, or binary ones for
  ``pos_label``) and, with ``predict_proba``, ``training_log_loss`` and ``training_roc_auc``; for
  regressors ``training_mean_squared_error``, ``training_root_mean_squared_error``,
  ``training_mean_absolute_error`` and ``training_r2_score``;
- **the fitted model** at artifact path ``model`` (:func:`modelreg.sklearn.log_model`, with a
  signature inferred from the first 5 training rows, and those rows as input example when
  ``log_input_examples=True``), registered as ``registered_model_name`` when given;
- ``estimator.html``, scikit-learn's HTML view of the estimator;
- for GridSearchCV / RandomizedSearchCV: the best estimator at ``best_estimator``, the
  ``best_cv_score`` metric, ``best_<param>`` params, ``cv_results.csv``, and one child run per
  candidate (the ``max_tuning_runs`` best by ``rank_test_score``, 5 by default, all with ``None``)
  with the candidate's full params and its ``mean_*``, ``std_*`` and ``rank_*`` results, tagged
  ``mlflow.parentRunId``, ``mlflow.autologging`` and the seed estimator's names.

Only the outermost fit is logged: the steps of a pipeline and the candidates of a search fitted
inside it are not (nor fits in worker threads of a logged fit that have no run of their own).
A failure to log never fails the fit: it is reported as a warning on the ``modelreg`` logger
("Encountered unexpected error during sklearn autologging: ...") and training goes on; an error
raised by ``fit`` itself propagates unchanged (a run started for that fit ends FAILED).
``autolog(disable=True)`` puts the original methods back.

Differences from MLflow: ``log_datasets`` is accepted but no dataset is recorded (modelreg has no
dataset inputs); ``log_post_training_metrics`` is accepted but metrics computed after training
(``sklearn.metrics`` calls on predictions) are not logged; the models are logged in modelreg's
format (skops by default, ``serialization_format="pickle"`` on request), under the run's artifacts
(``runs:/<run_id>/model``), not as MLflow 3 ``LoggedModel`` entities; the training-plot artifacts
(confusion matrix, ROC and precision-recall curves) are not drawn.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import inspect
import logging
import numbers
import tempfile
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelreg import entities as e
from modelreg import fluent
from modelreg.wire import now_ms

log = logging.getLogger("modelreg")

FLAVOR = "sklearn"
AUTOLOGGING_TAG = "mlflow.autologging"
PARENT_RUN_TAG = "mlflow.parentRunId"
TRAINING_PREFIX = "training_"
INPUT_EXAMPLE_ROWS = 5
# The tracking service's limits (the same as MLflow's): longer keys and values are truncated.
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
# LogBatch's limits per call (tracking.proto).
_BATCH_LIMITS = {"params": 100, "tags": 100, "metrics": 1000}
_FIT_METHODS = ("fit", "fit_transform", "fit_predict")
# Data preparation, not learning: fitted alone they are not logged (inside a pipeline they are).
_EXCLUDED_MODULES = (
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
)
_EXCLUDED_CLASSES = frozenset({"sklearn.compose._column_transformer.ColumnTransformer"})
_PATCH_MARK = "_modelreg_autolog_patch"
_MISSING = object()


@dataclass(frozen=True)
class AutologConfig:
    """The options of the last ``autolog()`` call that enabled autologging."""

    log_input_examples: bool = False
    log_model_signatures: bool = True
    log_models: bool = True
    exclusive: bool = False
    silent: bool = False
    max_tuning_runs: int | None = 5
    serialization_format: str = "skops"
    registered_model_name: str | None = None
    pos_label: Any = None
    extra_tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Patch:
    """One replaced attribute: ``owner.name`` held ``original`` (``_MISSING``: inherited)."""

    owner: Any
    name: str
    original: Any


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.config: AutologConfig | None = None
        self.patches: list[_Patch] = []
        self.sessions = 0  # logged fits in progress, in any thread
        self.local = threading.local()  # .fitting: this thread is inside a logged fit


_state = _State()


def sklearn_autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str = "skops",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: Mapping[str, object] | None = None,
) -> None:
    """Enables (or, with ``disable=True``, disables) autologging of scikit-learn fits, with the
    options of ``mlflow.sklearn.autolog``; see the module docstring for what is logged.

    - ``log_models=False``: no model artifacts; ``registered_model_name`` registers the logged
      model as a new version of that model.
    - ``exclusive=True``: nothing is logged into runs the caller started; fits without an active
      run still get their own run.
    - ``silent=True``: no warnings or info messages from autologging.
    - ``max_tuning_runs``: child runs of a parameter search (the best ones); ``None`` for all.
    - ``extra_tags``: set on the runs autologging starts.
    - ``log_datasets``, ``log_post_training_metrics`` and ``disable_for_unsupported_versions`` are
      accepted for MLflow compatibility and have no effect.
    """
    del log_datasets, log_post_training_metrics, disable_for_unsupported_versions
    if disable:
        _unpatch_all()
        return
    if max_tuning_runs is not None and max_tuning_runs < 0:
        raise ValueError(f"max_tuning_runs must be None or >= 0, not {max_tuning_runs}")
    tags = {str(k): str(v) for k, v in (extra_tags or {}).items() if k != AUTOLOGGING_TAG}
    config = AutologConfig(
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_models=log_models,
        exclusive=exclusive,
        silent=silent,
        max_tuning_runs=max_tuning_runs,
        serialization_format=serialization_format,
        registered_model_name=registered_model_name,
        pos_label=pos_label,
        extra_tags=tags,
    )
    with _state.lock:
        _state.config = config
        if not _state.patches:
            for cls in _estimators_to_patch():
                _patch_class(cls)


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: Mapping[str, object] | None = None,
    exclude_flavors: list[str] | None = None,
) -> None:
    """Enables (or disables) autologging for every supported library that is installed, as
    ``mlflow.autolog``: here scikit-learn only (see :func:`modelreg.sklearn.autolog`).
    ``log_traces`` is accepted for MLflow compatibility (modelreg has no traces)."""
    del log_traces
    if FLAVOR in (exclude_flavors or ()) or importlib.util.find_spec("sklearn") is None:
        return
    sklearn_autolog(
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        log_models=log_models,
        log_datasets=log_datasets,
        disable=disable,
        exclusive=exclusive,
        disable_for_unsupported_versions=disable_for_unsupported_versions,
        silent=silent,
        extra_tags=extra_tags,
    )


# Patching


def _estimators_to_patch() -> list[type]:
    """scikit-learn's estimators (``all_estimators``) and its meta estimators, less data preparation."""
    import warnings

    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    with warnings.catch_warnings():  # importing every module warns about deprecated ones
        warnings.simplefilter("ignore")
        classes = {cls for _, cls in all_estimators()} | {GridSearchCV, RandomizedSearchCV, Pipeline}
    return sorted(
        (
            cls
            for cls in classes
            if not cls.__module__.startswith(_EXCLUDED_MODULES)
            and f"{cls.__module__}.{cls.__name__}" not in _EXCLUDED_CLASSES
        ),
        key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
    )


def _patch_class(cls: type) -> None:
    for name in _FIT_METHODS:
        raw = inspect.getattr_static(cls, name, None)
        if isinstance(raw, types.FunctionType):
            owner, attribute, function = cls, name, raw
        elif hasattr(raw, "check") and isinstance(getattr(raw, "fn", None), types.FunctionType):
            # scikit-learn's available_if descriptor (Pipeline.fit_predict): patch the function
            # it guards, so hasattr() keeps answering as before.
            owner, attribute, function = raw, "fn", raw.fn
        else:
            continue
        if getattr(function, _PATCH_MARK, False):  # inherited from a class patched already
            continue
        _state.patches.append(_Patch(owner, attribute, vars(owner).get(attribute, _MISSING)))
        setattr(owner, attribute, _patched(function))


def _unpatch_all() -> None:
    with _state.lock:
        _state.config = None
        while _state.patches:
            patch = _state.patches.pop()
            if patch.original is _MISSING:
                delattr(patch.owner, patch.name)
            else:
                setattr(patch.owner, patch.name, patch.original)


def _patched(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _autologged_fit(original, self, args, kwargs)

    setattr(fit, _PATCH_MARK, True)
    return fit


def _autologged_fit(
    original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    config = _state.config
    if config is None or not _should_log(config):
        return original(estimator, *args, **kwargs)
    local = _state.local
    local.fitting = True
    with _state.lock:
        _state.sessions += 1
    try:
        return _Session(config, estimator).fit(original, args, kwargs)
    finally:
        local.fitting = False
        with _state.lock:
            _state.sessions -= 1


def _should_log(config: AutologConfig) -> bool:
    if getattr(_state.local, "fitting", False):  # a pipeline step or search candidate of a logged fit
        return False
    if fluent.active_run() is None:
        return _state.sessions == 0  # else a worker thread of a logged fit: part of that fit
    return not config.exclusive


# One logged fit


class _Session:
    def __init__(self, config: AutologConfig, estimator: Any) -> None:
        self.config = config
        self.estimator = estimator

    def warn(self, message: str, *args: object) -> None:
        if not self.config.silent:
            log.warning(message, *args)

    def info(self, message: str, *args: object) -> None:
        if not self.config.silent:
            log.info(message, *args)

    @contextlib.contextmanager
    def guarded(self) -> Iterator[None]:
        """Logging errors become warnings: they never fail the user's fit."""
        try:
            yield
        except Exception as exc:
            self.warn("Encountered unexpected error during %s autologging: %s", FLAVOR, exc)

    def fit(self, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        run: e.Run | None = None
        owned = False
        with self.guarded():
            run = fluent.active_run()
            if run is None:
                run = fluent.start_run(tags={AUTOLOGGING_TAG: FLAVOR, **self.config.extra_tags})
                owned = True
                self.info(
                    "Created autologging run with ID '%s' for the current %s workflow",
                    run.info.run_id,
                    FLAVOR,
                )
        if run is None:  # could not start a run: train without logging
            return original(self.estimator, *args, **kwargs)
        X = y = sample_weight = example = None
        with self.guarded():
            X, y, sample_weight = _fit_data(original, args, kwargs)
            example = _input_example(X)
        with self.guarded():
            self.log_before(run)
        try:
            result = original(self.estimator, *args, **kwargs)
        except BaseException:
            if owned:
                with self.guarded():
                    fluent.end_run("FAILED")
            raise
        with self.guarded():
            self.log_after(run, X, y, sample_weight, example)
        if owned:
            with self.guarded():
                fluent.end_run("FINISHED")
        return result

    def log_before(self, run: e.Run) -> None:
        estimator = self.estimator
        params = estimator.get_params(deep=not _is_search(estimator))
        self.log_batch(run.info.run_id, params=params, tags=_estimator_tags(estimator))

    def log_after(self, run: e.Run, X: Any, y: Any, sample_weight: Any, example: Any) -> None:
        estimator = self.estimator
        run_id = run.info.run_id
        signature = None
        if self.config.log_models:
            signature = self.signature(example)
            self.log_model(estimator, "model", signature, example, self.config.registered_model_name)
        metrics: dict[str, Any] = {}
        if y is not None:
            with self.guarded():
                metrics = self.training_metrics(X, y, sample_weight)
        if y is None and not metrics:
            self.warn(
                "Training metrics will not be recorded because training labels were not specified. To "
                "automatically record training metrics, provide training labels as inputs to the model "
                "training function."
            )
        with self.guarded():
            self.log_batch(run_id, metrics=metrics)
        with self.guarded():
            self.log_estimator_html(run_id)
        if _is_search(estimator):
            self.log_search(run, signature, example)

    # What is logged

    def signature(self, example: Any) -> Any:
        if example is None or not self.config.log_model_signatures:
            return None
        from modelreg.models.signature import infer_signature

        try:
            if hasattr(self.estimator, "predict"):
                output = self.estimator.predict(copy.deepcopy(example))
            elif hasattr(self.estimator, "transform"):
                output = self.estimator.transform(copy.deepcopy(example))
            else:
                raise TypeError("the model has neither predict nor transform")
            return infer_signature(example, output)
        except Exception as exc:
            self.warn("Failed to infer model signature: %s", exc)
            return None

    def log_model(
        self, model: Any, path: str, signature: Any, example: Any, registered_model_name: str | None
    ) -> None:
        from modelreg import sklearn as sklearn_flavor

        with self.guarded():
            sklearn_flavor.log_model(
                model,
                path,
                registered_model_name=registered_model_name,
                signature=signature,
                input_example=example if self.config.log_input_examples else None,
                serialization_format=self.config.serialization_format,
            )

    def training_metrics(self, X: Any, y: Any, sample_weight: Any) -> dict[str, Any]:
        from sklearn.base import is_classifier, is_regressor

        estimator = self.estimator
        metrics: dict[str, Any] = {}
        if is_classifier(estimator):
            metrics = self.computed(
                _classifier_metrics(estimator, X, y, sample_weight, self.config.pos_label)
            )
        elif is_regressor(estimator):
            metrics = self.computed(_regressor_metrics(estimator, X, y, sample_weight))
            if f"{TRAINING_PREFIX}mean_squared_error" in metrics:
                metrics[f"{TRAINING_PREFIX}root_mean_squared_error"] = (
                    metrics[f"{TRAINING_PREFIX}mean_squared_error"] ** 0.5
                )
        if hasattr(estimator, "score"):
            try:
                takes_weight = "sample_weight" in inspect.signature(estimator.score).parameters
                score_args = (X, y, sample_weight) if takes_weight else (X, y)
                metrics[f"{TRAINING_PREFIX}score"] = estimator.score(*score_args)
            except Exception as exc:
                self.warn(
                    "%s failed. The 'training_score' metric will not be recorded. Scoring error: %s",
                    type(estimator).score.__qualname__,
                    exc,
                )
        return metrics

    def computed(self, metrics: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, compute in metrics.items():
            try:
                values[name] = compute()
            except Exception as exc:
                self.warn("Failed to autolog the %s metric: %s", name, exc)
        return values

    def log_estimator_html(self, run_id: str) -> None:
        from sklearn.utils import estimator_html_repr

        page = (
            '<!DOCTYPE html>\n<html lang="en">\n  <head>\n    <meta charset="UTF-8"/>\n  </head>\n'
            f"  <body>\n    {estimator_html_repr(self.estimator)}\n  </body>\n</html>\n"
        )
        self.log_file(run_id, "estimator.html", page)

    def log_file(self, run_id: str, name: str, text: str) -> None:
        with tempfile.TemporaryDirectory(prefix="modelreg-autolog-") as tmp:
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            fluent.tracking_client().log_artifact(run_id, path)

    def log_search(self, run: e.Run, signature: Any, example: Any) -> None:
        import pandas as pd

        search = self.estimator
        run_id = run.info.run_id
        if hasattr(search, "best_estimator_") and self.config.log_models:
            self.log_model(search.best_estimator_, "best_estimator", signature, example, None)
        with self.guarded():
            best_score = {"best_cv_score": search.best_score_} if hasattr(search, "best_score_") else {}
            best_params = getattr(search, "best_params_", {})
            self.log_batch(
                run_id, params={f"best_{k}": v for k, v in best_params.items()}, metrics=best_score
            )
        if not hasattr(search, "cv_results_"):
            return
        results = pd.DataFrame.from_dict(search.cv_results_)
        try:
            self.log_child_runs(run, results)
        except Exception as exc:
            self.warn(
                "Encountered exception during creation of child runs for parameter search. Child runs "
                "may be missing. Exception: %s",
                exc,
            )
        try:
            self.log_file(run_id, "cv_results.csv", results.to_csv(index=False))
        except Exception as exc:
            self.warn("Failed to log parameter search results as an artifact. Exception: %s", exc)

    def log_child_runs(self, parent: e.Run, results: Any) -> None:
        """One finished child run per candidate, the ``max_tuning_runs`` best ones (by rank)."""
        search = self.estimator
        limit = self.config.max_tuning_runs
        if limit is not None:
            rank = "rank_test_score"
            if rank not in results.columns:
                rank = next(c for c in results.columns if "rank_test_" in c)
                self.warn(
                    "Top %s child runs will be created based on ordering in %s column. You can choose not "
                    "to limit the number of child runs created by setting `max_tuning_runs=None`.",
                    limit,
                    rank,
                )
            self.info("Logging %s, %s will be omitted.", *_child_runs_phrases(limit, len(results)))
            results = results.nsmallest(limit, rank)
        seed = search.estimator
        base_params = seed.get_params(deep=not _is_search(seed))
        lineage = {
            k: v for k, v in parent.data.tags.items() if k == "mlflow.user" or k.startswith("mlflow.source.")
        }
        tags = {
            **lineage,
            AUTOLOGGING_TAG: FLAVOR,
            PARENT_RUN_TAG: parent.info.run_id,
            **_estimator_tags(seed),
        }
        client = fluent.tracking_client()
        end_time = now_ms()
        for _, row in results.iterrows():
            child = client.create_run(
                experiment_id=parent.info.experiment_id,
                start_time=parent.info.start_time,
                tags=tags,
                parent_run_id=parent.info.run_id,
            )
            metrics = {
                str(k): v
                for k, v in row.items()
                if not str(k).startswith(("param", "split")) and isinstance(v, numbers.Number)
            }
            self.log_batch(
                child.info.run_id, params={**base_params, **row.get("params", {})}, metrics=metrics
            )
            client.set_terminated(child.info.run_id, "FINISHED", end_time=end_time)

    def log_batch(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Logs through LogBatch, as many calls as its limits need; params truncated as MLflow does."""
        stamp = now_ms()
        items: dict[str, list[Any]] = {
            "params": [e.Param(k, v) for k, v in self.truncated(params or {}).items()],
            "metrics": [e.Metric(str(k), float(v), stamp, 0) for k, v in (metrics or {}).items()],
            "tags": [e.RunTag(str(k), str(v)) for k, v in (tags or {}).items()],
        }
        client = fluent.tracking_client()
        calls = max(-(-len(values) // _BATCH_LIMITS[kind]) for kind, values in items.items())
        for i in range(calls):
            part = {
                kind: values[i * _BATCH_LIMITS[kind] : (i + 1) * _BATCH_LIMITS[kind]]
                for kind, values in items.items()
            }
            client.log_batch(run_id, metrics=part["metrics"], params=part["params"], tags=part["tags"])

    def truncated(self, params: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in params.items():
            k, v = str(key), str(value)
            if len(k) > MAX_KEY_LENGTH:
                self.warn("Truncated the key %s...: longer than %d characters", k[:20], MAX_KEY_LENGTH)
                k = k[:MAX_KEY_LENGTH]
            if len(v) > MAX_PARAM_VALUE_LENGTH:
                self.warn(
                    "Truncated the value of param %s: longer than %d characters", k, MAX_PARAM_VALUE_LENGTH
                )
                v = v[:MAX_PARAM_VALUE_LENGTH]
            out[k] = v
        return out


# Helpers without state


def _is_search(estimator: Any) -> bool:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    return isinstance(estimator, (GridSearchCV, RandomizedSearchCV))


def _estimator_tags(estimator: Any) -> dict[str, str]:
    cls = type(estimator)
    return {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}


def _fit_data(
    fit: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, Any, Any]:
    """``(X, y, sample_weight)`` of a fit call, by the fit method's parameter names (``None`` when
    not given): the first two parameters after ``self`` are the data and the labels."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = inspect.signature(fit).parameters.items()
    names = [name for name, p in parameters if name != "self" and p.kind not in variadic]
    x_name, y_name = [*names, "X", "y"][:2]
    X = args[0] if args else kwargs.get(x_name)
    y = args[1] if len(args) > 1 else kwargs.get(y_name)
    sample_weight = None
    if "sample_weight" in names:
        index = names.index("sample_weight")
        sample_weight = args[index] if len(args) > index else kwargs.get("sample_weight")
    return X, y, sample_weight


def _input_example(X: Any) -> Any:
    """A copy of the first rows, taken before training can change them (None when X cannot be sliced)."""
    if X is None:
        return None
    try:
        return copy.deepcopy(X[:INPUT_EXAMPLE_ROWS])
    except Exception:
        return None


def _classifier_metrics(
    estimator: Any, X: Any, y: Any, sample_weight: Any, pos_label: Any
) -> dict[str, Callable[[], Any]]:
    """MLflow's training metrics of a classifier: weighted averages unless ``pos_label`` is given."""
    from sklearn import metrics as m

    average = "weighted" if pos_label is None else "binary"
    y_pred = estimator.predict(X)
    labels = {"y_true": y, "y_pred": y_pred, "sample_weight": sample_weight}
    averaged = {**labels, "pos_label": pos_label, "average": average}
    out: dict[str, Callable[[], Any]] = {
        f"{TRAINING_PREFIX}precision_score": functools.partial(m.precision_score, **averaged),
        f"{TRAINING_PREFIX}recall_score": functools.partial(m.recall_score, **averaged),
        f"{TRAINING_PREFIX}f1_score": functools.partial(m.f1_score, **averaged),
        f"{TRAINING_PREFIX}accuracy_score": functools.partial(m.accuracy_score, normalize=True, **labels),
    }
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(X)
        out[f"{TRAINING_PREFIX}log_loss"] = functools.partial(
            m.log_loss, y, proba, sample_weight=sample_weight
        )
        scores = proba[:, 1] if proba.shape[1] == 2 else proba  # binary: the greater label's scores
        out[f"{TRAINING_PREFIX}roc_auc"] = functools.partial(
            m.roc_auc_score, y, scores, average="weighted", sample_weight=sample_weight, multi_class="ovo"
        )
    return out


def _regressor_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, Callable[[], Any]]:
    from sklearn import metrics as m

    args = {
        "y_true": y,
        "y_pred": estimator.predict(X),
        "sample_weight": sample_weight,
        "multioutput": "uniform_average",
    }
    return {
        f"{TRAINING_PREFIX}mean_squared_error": functools.partial(m.mean_squared_error, **args),
        f"{TRAINING_PREFIX}mean_absolute_error": functools.partial(m.mean_absolute_error, **args),
        f"{TRAINING_PREFIX}r2_score": functools.partial(m.r2_score, **args),
    }


def _child_runs_phrases(limit: int, total: int) -> tuple[str, str]:
    """MLflow's wording of "Logging <the 5 best runs>, <3 runs> will be omitted."."""
    logged = min(limit, total)
    rest = total - logged
    logged_phrase = {0: "no runs", 1: "the best run"}.get(logged, f"the {logged} best runs")
    rest_phrase = {0: "no runs", 1: "one run"}.get(rest, f"{rest} runs") if rest > 0 else "no runs"
    return logged_phrase, rest_phrase
