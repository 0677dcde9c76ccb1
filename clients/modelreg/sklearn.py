"""The scikit-learn flavor: ``save_model``, ``log_model`` and ``load_model``, as in ``mlflow.sklearn``.

Serialization:

- ``"skops"`` (the default) stores the model with ``skops.io``, which rebuilds objects from a
  description instead of running code. Loading accepts automatically only types from scikit-learn,
  NumPy, SciPy and builtin classes; any other type (your own transformer, a function defined in
  your script) makes :func:`load_model` raise :class:`~modelreg.models.UntrustedTypesError` listing
  them, until you pass them as ``trusted_types=[...]`` after checking where they come from. The
  automatic trust assumes the functions of those libraries are safe to call as parts of a model.
- ``"pickle"`` only when asked (``serialization_format="pickle"``): it handles any Python object,
  but **loading a pickle runs whatever code the file names**, so :func:`load_model` refuses one
  (:class:`~modelreg.models.PickleNotAllowedError`) unless the caller passes
  ``allow_pickle=True``: what the model's files say never decides it. Allow it only for a
  registry whose writers you trust; the digest checks prove the file is the one registered, not
  that it is harmless.

Heavy modules (scikit-learn, skops, pandas) are imported when a function needs them, never when
``modelreg`` is imported.
"""

from __future__ import annotations

import os
import pickle
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Literal

from modelreg._autolog import sklearn_autolog as autolog
from modelreg.entities import ModelVersion, Version
from modelreg.exceptions import FailedPrecondition, InvalidArgument
from modelreg.models.errors import PickleNotAllowedError, UntrustedTypesError
from modelreg.models.fetch import fetch_model
from modelreg.models.info import flavors as model_flavors
from modelreg.models.info import utc_time_created as model_time_created
from modelreg.models.model_dir import (
    ModelMetadata,
    directory_digests,
    model_path,
    write_input_example,
    write_metadata,
)
from modelreg.models.signature import ModelSignature, infer_signature

FLAVOR = "sklearn"
SerializationFormat = Literal["skops", "pickle"]
_MODEL_FILES: dict[str, str] = {"skops": "model.skops", "pickle": "model.pkl"}
# Top-level modules whose types a skops file may hold without being listed in trusted_types.
AUTO_TRUSTED_MODULES = frozenset({"sklearn", "numpy", "scipy"})


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`log_model` logged (MLflow's ``ModelInfo`` attribute names)."""

    artifact_path: str
    model_uri: str
    run_id: str
    flavor: str
    serialization_format: str
    signature: ModelSignature | None
    metadata: ModelMetadata
    # The registered version number when registered_model_name was given, else None: a string
    # that also equals its int, as ModelVersion.version (MLflow hands out "1").
    registered_model_version: Version | None = None
    model_version: ModelVersion | None = None

    @classmethod
    def of(
        cls,
        model_uri: str,
        run_id: str,
        artifact_path: str,
        metadata: ModelMetadata,
        version: ModelVersion | None = None,
    ) -> ModelInfo:
        """The info of the model ``metadata`` describes, logged at ``model_uri`` (and registered
        as ``version``)."""
        return cls(
            artifact_path=artifact_path,
            model_uri=model_uri,
            run_id=run_id,
            flavor=metadata.flavor,
            serialization_format=metadata.serialization,
            signature=metadata.signature,
            metadata=metadata,
            registered_model_version=None if version is None else version.version,
            model_version=version,
        )

    @property
    def flavors(self) -> dict[str, dict[str, Any]]:
        """MLflow's ``ModelInfo.flavors``: this flavor and ``python_function``."""
        return model_flavors(self.metadata)

    @property
    def utc_time_created(self) -> str:
        return model_time_created(self.metadata)


@cache
def _modelreg_version() -> str:
    return importlib_metadata.version("modelreg")


def _check_format(serialization_format: str) -> SerializationFormat:
    if serialization_format == "skops":
        return "skops"
    if serialization_format == "pickle":
        return "pickle"
    raise InvalidArgument(
        f"serialization_format must be 'skops' or 'pickle', not {serialization_format!r}",
        code="INVALID_ARGUMENT",
        reason="INVALID_SERIALIZATION_FORMAT",
    )


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    *,
    serialization_format: str = "skops",
    signature: ModelSignature | None = None,
    input_example: Any = None,
) -> ModelMetadata:
    """Writes a model directory at ``path`` (which must not exist or be empty); returns its metadata.

    Without ``signature``, one is inferred from ``input_example`` and the model's prediction on it.
    """
    import sklearn

    fmt = _check_format(serialization_format)
    directory = Path(path)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} exists and is not empty")
    directory.mkdir(parents=True, exist_ok=True)
    model_file = _MODEL_FILES[fmt]
    if fmt == "skops":
        import skops.io

        skops.io.dump(sk_model, directory / model_file)
    else:
        with (directory / model_file).open("wb") as f:
            pickle.dump(sk_model, f, protocol=pickle.HIGHEST_PROTOCOL)
    example_file = None
    if input_example is not None:
        example_file = write_input_example(directory, input_example)
        if signature is None:
            signature = infer_signature(input_example, sk_model.predict(input_example))
    metadata = ModelMetadata(
        flavor=FLAVOR,
        serialization=fmt,
        model_file=model_file,
        python_version=platform.python_version(),
        sklearn_version=sklearn.__version__,
        modelreg_version=_modelreg_version(),
        created_at=time.time_ns() // 1_000_000,
        signature=signature,
        input_example=example_file,
        files=directory_digests(directory),
    )
    write_metadata(directory, metadata)
    return metadata


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    serialization_format: str = "skops",
    await_registration_for: int | None = None,
    *,
    name: str | None = None,
) -> ModelInfo:
    """Saves the model, uploads it under the active run at ``name`` (MLflow 3's argument; or
    ``artifact_path``, its older spelling; default ``"model"``) and, with
    ``registered_model_name``, registers it as a new version (creating the registered model when
    it does not exist yet). Starts a run when none is active, as MLflow does; that run stays
    active until ``modelreg.end_run()`` (or the end of the process).

    ``await_registration_for`` is accepted for MLflow compatibility: registration here completes
    within the call (the version is READY when this returns), so there is nothing to wait for.
    The run's ``mlflow.log-model.history`` tag records the model, as MLflow's does.
    """
    del await_registration_for
    return log_model_dir(
        lambda local: save_model(
            sk_model,
            local,
            serialization_format=serialization_format,
            signature=signature,
            input_example=input_example,
        ),
        model_artifact_path(name, artifact_path),
        registered_model_name,
    )


def model_artifact_path(name: str | None, artifact_path: str | None) -> str:
    """Where ``log_model`` puts the model: ``name`` (MLflow 3) or ``artifact_path`` (its older
    spelling), ``"model"`` when neither is given; both at once is INVALID_ARGUMENT."""
    if name is not None and artifact_path is not None:
        raise InvalidArgument(
            "pass name or artifact_path (its older spelling), not both",
            code="INVALID_ARGUMENT",
            reason="INVALID_ARTIFACT_PATH",
        )
    return name or artifact_path or "model"


def log_model_dir(
    save: Callable[[Path], ModelMetadata], artifact_path: str, registered_model_name: str | None
) -> ModelInfo:
    """What every flavor's ``log_model`` does once it knows how to save its model: checks
    ``artifact_path``, starts a run when none is active, has ``save`` write the model directory
    into a temporary directory, uploads it under the run at ``artifact_path`` and, with
    ``registered_model_name``, registers it."""
    from modelreg import fluent

    artifact_path = artifact_path.strip("/")
    if not artifact_path:
        raise InvalidArgument(
            "artifact_path must name a directory under the run's artifacts",
            code="INVALID_ARGUMENT",
            reason="INVALID_ARTIFACT_PATH",
        )
    run = fluent.active_run() or fluent.start_run()
    run_id = run.info.run_id
    tracking = fluent.tracking_client()
    with tempfile.TemporaryDirectory(prefix="modelreg-model-") as tmp:
        local = Path(tmp) / "model"
        metadata = save(local)
        tracking.log_artifacts(run_id, local, artifact_path)
    model_uri = f"runs:/{run_id}/{artifact_path}"
    fluent.record_logged_model(run_id, artifact_path, model_flavors(metadata))
    version = None
    if registered_model_name is not None:
        version = fluent.register_model(model_uri, registered_model_name)
    return ModelInfo.of(model_uri, run_id, artifact_path, metadata, version)


def _load_skops(path: Path, trusted_types: Sequence[str]) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not _auto_trusted(t) and t not in trusted_types]
    if refused:
        raise UntrustedTypesError(refused)
    return skops.io.load(path, trusted=untrusted)


def _auto_trusted(type_name: str) -> bool:
    module, _, attr = type_name.rpartition(".")
    if module == "builtins":
        # Builtin classes only: builtin functions include eval, exec, open and __import__.
        import builtins

        return isinstance(getattr(builtins, attr, None), type)
    return module.split(".", 1)[0] in AUTO_TRUSTED_MODULES


def load_local_model(
    directory: Path, metadata: ModelMetadata, trusted_types: Sequence[str] = (), *, allow_pickle: bool = False
) -> Any:
    """Deserializes the model of an already verified directory; a pickle only with ``allow_pickle``."""
    if metadata.flavor != FLAVOR:
        raise FailedPrecondition(
            f"the model's flavor is {metadata.flavor!r}, not {FLAVOR!r}",
            code="FAILED_PRECONDITION",
            reason="UNSUPPORTED_FLAVOR",
        )
    path = model_path(directory, metadata.model_file, "model_file")
    if metadata.serialization == "skops":
        return _load_skops(path, trusted_types)
    if metadata.serialization == "pickle":
        if not allow_pickle:
            raise PickleNotAllowedError(metadata.model_file)
        with path.open("rb") as f:
            return pickle.load(f)  # the caller allowed it: pickles run code; the digests proved the origin
    raise FailedPrecondition(
        f"unknown serialization {metadata.serialization!r}",
        code="FAILED_PRECONDITION",
        reason="UNSUPPORTED_MODEL_FORMAT",
    )


def load_model(
    model_uri: str,
    dst_path: str | os.PathLike[str] | None = None,
    *,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
) -> Any:
    """Loads the scikit-learn model of ``models:/Name/<version|stage|latest>``,
    ``models:/Name@alias``, ``runs:/<run_id>/<path>`` or a local model directory.

    Every file is checked against its recorded sha256 first (ModelIntegrityError on a mismatch).
    A pickled model loads only with ``allow_pickle=True`` (PickleNotAllowedError otherwise).
    """
    fetched = fetch_model(model_uri, dst_path=dst_path)
    return load_local_model(fetched.path, fetched.metadata, trusted_types, allow_pickle=allow_pickle)


__all__ = ["ModelInfo", "autolog", "load_model", "log_model", "save_model"]
