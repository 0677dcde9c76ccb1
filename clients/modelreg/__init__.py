"""modelreg: experiment tracking and a model registry over gRPC, with MLflow's workflow.

``import modelreg`` gives the fluent API (``start_run``, ``log_param``, ``log_metric``, ...),
``Client`` (MLflow's ``MlflowClient`` method names; ``MlflowClient`` is the same class), the
lower-level ``TrackingClient`` and ``RegistryClient``, ``entities`` and ``exceptions``. The flavors load on first use
(``modelreg.sklearn``, ``modelreg.pyfunc``), so importing modelreg never imports scikit-learn or
pandas.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from modelreg import entities, exceptions
from modelreg._autolog import autolog
from modelreg.client import Client
from modelreg.config import TlsConfig
from modelreg.entities import Experiment, Metric, ModelVersion, Param, RegisteredModel, Run, RunTag
from modelreg.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    flush_async_logging,
    flush_metrics,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_parent_run,
    get_registry_uri,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_table,
    log_text,
    register_model,
    search_experiments,
    search_runs,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_registry_uri,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from modelreg.registry_client import RegistryClient
from modelreg.tracking_client import TrackingClient

MlflowClient = Client
"""MLflow's name for :class:`Client` (also ``modelreg.tracking.MlflowClient``)."""

__version__ = "0.1.0"

# Submodules imported on first attribute access (`modelreg.sklearn.log_model(...)`).
_LAZY_SUBMODULES = frozenset({"sklearn", "pyfunc", "models", "uris", "cli"})


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"modelreg.{name}")
    raise AttributeError(f"module 'modelreg' has no attribute {name!r}")


__all__ = [
    "ActiveRun",
    "Client",
    "Experiment",
    "Metric",
    "MlflowClient",
    "ModelVersion",
    "Param",
    "RegisteredModel",
    "RegistryClient",
    "Run",
    "RunTag",
    "TlsConfig",
    "TrackingClient",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "entities",
    "exceptions",
    "flush_async_logging",
    "flush_metrics",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "register_model",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
