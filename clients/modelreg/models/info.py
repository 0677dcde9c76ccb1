"""MLflow's ``mlflow.models.Model`` and ``get_model_info`` over modelreg's model directory.

A modelreg model directory is described by ``modelreg-model.json`` (not MLflow's ``MLmodel``);
:class:`Model` shows it with the attributes MLflow users read (``flavors``, ``signature``,
``run_id``, ``artifact_path``, ``utc_time_created``).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from modelreg.models.fetch import fetch_model
from modelreg.models.model_dir import ModelMetadata
from modelreg.models.signature import ColSpec, ModelSignature

if TYPE_CHECKING:
    from modelreg.sklearn import ModelInfo

PYFUNC_FLAVOR = "python_function"


def utc_time_created(metadata: ModelMetadata) -> str:
    """``created_at`` as MLflow writes ``utc_time_created`` ("2026-01-01 00:00:00.123000")."""
    seconds, millis = divmod(metadata.created_at, 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}000"


def flavors(metadata: ModelMetadata) -> dict[str, dict[str, Any]]:
    """The model's flavors as MLflow lists them: its own (with the fields modelreg records) and
    ``python_function`` (every modelreg model loads with ``modelreg.pyfunc.load_model``)."""
    own: dict[str, Any] = {"serialization_format": metadata.serialization, "model_file": metadata.model_file}
    if metadata.sklearn_version:
        own["sklearn_version"] = metadata.sklearn_version
    pyfunc = {"loader_module": "modelreg.pyfunc", "python_version": metadata.python_version}
    if metadata.flavor == PYFUNC_FLAVOR:  # a custom Python model: the one flavor
        return {PYFUNC_FLAVOR: {**own, **pyfunc}}
    return {metadata.flavor: own, PYFUNC_FLAVOR: pyfunc}


class Model:
    """A logged model's description, as MLflow's ``Model``: ``flavors``, ``signature``,
    ``run_id``, ``artifact_path``, ``utc_time_created``, ``saved_input_example_info``,
    ``get_input_schema()``/``get_output_schema()``; ``metadata`` is modelreg's own record."""

    def __init__(self, metadata: ModelMetadata, run_id: str | None = None, artifact_path: str | None = None):
        self.metadata = metadata
        self.run_id = run_id
        self.artifact_path = artifact_path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """From a model URI (``models:/...``, ``runs:/...``) or a local model directory; the
        files are fetched and digest-checked as by ``load_model``."""
        fetched = fetch_model(str(path))
        source = fetched.source
        if source is None:
            return cls(fetched.metadata)
        return cls(fetched.metadata, source.run_id, source.artifact_path)

    @property
    def flavors(self) -> dict[str, dict[str, Any]]:
        return flavors(self.metadata)

    @property
    def signature(self) -> ModelSignature | None:
        return self.metadata.signature

    @property
    def utc_time_created(self) -> str:
        return utc_time_created(self.metadata)

    @property
    def saved_input_example_info(self) -> dict[str, str] | None:
        example = self.metadata.input_example
        return None if example is None else {"artifact_path": example, "type": "dataframe"}

    def get_input_schema(self) -> tuple[ColSpec, ...] | None:
        return None if self.signature is None else tuple(self.signature.inputs)

    def get_output_schema(self) -> tuple[ColSpec, ...] | None:
        return None if self.signature is None else tuple(self.signature.outputs)

    def __repr__(self) -> str:
        return f"Model(flavors={sorted(self.flavors)}, run_id={self.run_id!r}, artifact_path={self.artifact_path!r})"


def get_model_info(model_uri: str) -> ModelInfo:
    """What was logged at ``model_uri`` (``models:/Name/3``, ``models:/Name@alias``,
    ``runs:/<run_id>/<path>``, or a local model directory), as ``log_model`` returned it: the
    files are fetched and checked as by ``load_model`` (a cached model is not fetched again)."""
    from modelreg.sklearn import ModelInfo

    fetched = fetch_model(model_uri)
    source = fetched.source
    if source is None:
        return ModelInfo.of(model_uri, "", "", fetched.metadata)
    return ModelInfo.of(
        model_uri, source.run_id, source.artifact_path, fetched.metadata, source.model_version
    )
