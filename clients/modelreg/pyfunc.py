"""Flavor-independent loading for serving, as ``mlflow.pyfunc``: ``load_model(uri).predict(data)``,
and custom Python models stored as code.

``predict`` accepts a pandas DataFrame, a mapping of column → values, or an array-like. When the
model's signature names its input columns and a DataFrame comes in, the columns are checked and put
in the signature's order (extra columns are dropped, as MLflow does); a missing column raises
InvalidArgument (SCHEMA_MISMATCH) before the model sees the data.

Custom models (MLflow's "models from code"): ``log_model(name="m", python_model="model.py",
artifacts={"weights": "weights.csv"})`` stores ``model.py`` (a file that defines a
:class:`PythonModel` subclass and calls ``modelreg.models.set_model(MyModel())``), the artifacts
and the requirements with the model, every file covered by the model's digests. Nothing is pickled:
passing a PythonModel *instance* (which MLflow would cloudpickle) is refused. **Loading such a model
imports its file, which runs its code**, so :func:`load_model` refuses one
(:class:`~modelreg.models.CodeNotAllowedError`) unless the caller passes ``allow_code=True``, as
pickles need ``allow_pickle=True``: the model's own files never decide it. The digests are checked
before any of its code runs; they prove the code is what was registered, not that it is harmless.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelreg import sklearn as sklearn_flavor
from modelreg.entities import ModelVersion
from modelreg.exceptions import FailedPrecondition, InvalidArgument, UnsafePathError
from modelreg.models.errors import CodeNotAllowedError
from modelreg.models.fetch import FetchedModel, fetch_model
from modelreg.models.model_dir import (
    ModelMetadata,
    check_code_tree,
    directory_digests,
    model_path,
    write_input_example,
    write_metadata,
)
from modelreg.models.python_model import (
    PythonModel,
    PythonModelContext,
    call_predict,
    code_on_path_while,
    drop_bytecode,
    put_code_on_path,
    read_model_config,
    run_model_code,
)
from modelreg.models.signature import ModelSignature, infer_signature
from modelreg.paths import check_relative
from modelreg.sklearn import _modelreg_version
from modelreg.uris import MODELS_SCHEME, RUNS_SCHEME, RunsUri, parse_model_uri

FLAVOR = "python_function"
CODE_SERIALIZATION = "code"
ARTIFACTS_DIR = "artifacts"
CODE_DIR = "code"
REQUIREMENTS_FILE = "requirements.txt"


class PyFuncModel:
    """A loaded model: ``predict``, plus where it came from (``model_uri``, ``metadata``,
    ``model_version`` for ``models:/`` URIs)."""

    def __init__(
        self,
        raw_model: Any,
        metadata: ModelMetadata,
        model_uri: str,
        model_version: ModelVersion | None = None,
        local_path: Path | None = None,
        context: PythonModelContext | None = None,
    ) -> None:
        self._model = raw_model
        self.metadata = metadata
        self.model_uri = model_uri
        self.model_version = model_version
        self.local_path = local_path
        self._context = context

    def get_raw_model(self) -> Any:
        """The underlying model: the scikit-learn estimator, or a custom model's PythonModel."""
        return self._model

    def unwrap_python_model(self) -> PythonModel:
        """The :class:`PythonModel` of a custom model (FailedPrecondition for any other model)."""
        if not isinstance(self._model, PythonModel):
            raise FailedPrecondition(
                f"unwrap_python_model is for custom Python models; this model's flavor is "
                f"{self.metadata.flavor!r}",
                code="FAILED_PRECONDITION",
                reason="UNSUPPORTED_FLAVOR",
            )
        return self._model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data``; ``params`` reaches a custom model's ``predict`` when it
        declares a ``params`` parameter (other models take none, and ignore it)."""
        conformed = self._conform(data)
        if isinstance(self._model, PythonModel):
            assert self._context is not None
            return call_predict(self._model, self._context, conformed, params)
        return self._model.predict(conformed)

    def _conform(self, data: Any) -> Any:
        import pandas as pd

        if isinstance(data, Mapping):
            data = pd.DataFrame(data)
        signature = self.metadata.signature
        names = [] if signature is None else signature.input_names
        if names and isinstance(data, pd.DataFrame):
            missing = [name for name in names if name not in data.columns]
            if missing:
                raise InvalidArgument(
                    f"input lacks the column(s) {missing} of the model's signature {names}",
                    code="INVALID_ARGUMENT",
                    reason="SCHEMA_MISMATCH",
                    metadata={"missing": ",".join(missing)},
                )
            return data[names]
        return data

    def __repr__(self) -> str:
        return f"PyFuncModel(uri={self.model_uri!r}, flavor={self.metadata.flavor!r})"


def load_model(
    model_uri: str,
    dst_path: str | os.PathLike[str] | None = None,
    *,
    model_config: str | Mapping[str, Any] | None = None,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
    allow_code: bool = False,
    suppress_warnings: bool = False,
) -> PyFuncModel:
    """Loads any modelreg model for prediction; URIs as in :func:`modelreg.sklearn.load_model`.

    Every file is checked against its recorded sha256 first (ModelIntegrityError on a mismatch,
    before anything is deserialized or run). A pickled model loads only with ``allow_pickle=True``
    (PickleNotAllowedError otherwise). A custom Python model loads only with ``allow_code=True``
    (CodeNotAllowedError otherwise, and none of its code runs): loading it imports its model file
    and code paths, which RUNS THAT CODE in this process; then ``load_context`` gets the model's
    artifacts as local paths inside the verified model directory. ``model_config`` replaces the
    configuration stored with a custom model (a dictionary, or a JSON or YAML file's path).
    ``suppress_warnings`` is accepted for MLflow compatibility: loading here warns of nothing.
    """
    del suppress_warnings
    return load_fetched(
        fetch_model(model_uri, dst_path=dst_path),
        model_uri,
        model_config=model_config,
        trusted_types=trusted_types,
        allow_pickle=allow_pickle,
        allow_code=allow_code,
    )


def load_fetched(
    fetched: FetchedModel,
    model_uri: str,
    *,
    model_config: str | Mapping[str, Any] | None = None,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
    allow_code: bool = False,
) -> PyFuncModel:
    """Loads a model directory :mod:`modelreg.models.fetch` has brought and verified, as
    :func:`load_model` does (``model_uri``: where it came from, as the caller names it)."""
    version = None if fetched.source is None else fetched.source.model_version
    metadata = fetched.metadata
    if metadata.flavor != FLAVOR:
        raw = sklearn_flavor.load_local_model(
            fetched.path, metadata, trusted_types, allow_pickle=allow_pickle
        )
        return PyFuncModel(raw, metadata, model_uri, version, fetched.path)
    if metadata.serialization != CODE_SERIALIZATION:
        raise FailedPrecondition(
            f"unknown serialization {metadata.serialization!r}",
            code="FAILED_PRECONDITION",
            reason="UNSUPPORTED_MODEL_FORMAT",
        )
    if not allow_code:
        raise CodeNotAllowedError(metadata.model_file)
    code_dirs = [model_path(fetched.path, path, "code_paths") for path in metadata.code_paths]
    drop_bytecode(code_dirs)
    check_code_tree(fetched.path, metadata)
    config = metadata.model_config if model_config is None else read_model_config(model_config)
    put_code_on_path(code_dirs)
    python_model = run_model_code(model_path(fetched.path, metadata.model_file, "model_file"), config)
    artifacts = {
        key: str(model_path(fetched.path, path, "artifacts").resolve())
        for key, path in metadata.artifacts.items()
    }
    context = PythonModelContext(artifacts, config)
    python_model.load_context(context)
    return PyFuncModel(python_model, metadata, model_uri, version, fetched.path, context)


def _requirement_lines(requirements: str | os.PathLike[str] | Sequence[str]) -> list[str]:
    """pip requirements given as a list, or as a requirements file's path."""
    if isinstance(requirements, (str, os.PathLike)):
        text = Path(requirements).read_text(encoding="utf-8")
        lines = [line.strip() for line in text.splitlines()]
        return [line for line in lines if line and not line.startswith("#")]
    return [str(line) for line in requirements]


def default_pip_requirements() -> list[str]:
    """What a custom model needs at least: this modelreg (with pandas, which ``predict`` uses)."""
    import pandas as pd

    return [f"modelreg=={_modelreg_version()}", f"pandas=={pd.__version__}"]


def _artifact_key(key: str) -> str:
    try:
        if "/" in check_relative(key):
            raise UnsafePathError(key, "has a '/'")
    except UnsafePathError as exc:
        raise InvalidArgument(
            f"artifact key {key!r} {exc.why}: a key is one plain path segment",
            code="INVALID_ARGUMENT",
            reason="INVALID_ARTIFACT_KEY",
            metadata={"key": key},
        ) from None
    return key


def _copy_artifact(key: str, source: str | os.PathLike[str], directory: Path) -> str:
    """Brings one artifact into ``artifacts/<key>/`` of the model directory; returns its path there.

    ``source`` is a local file or directory, a ``runs:/<run_id>/<path>`` URI (downloaded through
    the tracking service, checked against its recorded digests) or a ``models:/`` URI (the model
    directory, fetched and verified as by load_model).
    """
    target_dir = directory / ARTIFACTS_DIR / _artifact_key(key)
    target_dir.mkdir(parents=True)
    uri = str(source)
    if uri.startswith(MODELS_SCHEME):
        fetch_model(uri, dst_path=target_dir / "model")
        name = "model"
    elif uri.startswith(RUNS_SCHEME):
        from modelreg import fluent

        parsed = parse_model_uri(uri)
        assert isinstance(parsed, RunsUri)
        with tempfile.TemporaryDirectory(prefix="modelreg-artifact-") as tmp:
            local = Path(
                fluent.tracking_client().download_artifacts(parsed.run_id, parsed.artifact_path, tmp)
            )
            name = local.name
            shutil.move(local, target_dir / name)
    elif "://" in uri or ":/" in uri.split("/", 1)[0]:
        raise InvalidArgument(
            f"artifact {key!r}: {uri!r} is neither a local path nor a runs:/ or models:/ URI",
            code="INVALID_ARGUMENT",
            reason="INVALID_ARTIFACT_URI",
            metadata={"key": key},
        )
    else:
        local = Path(source)
        if not local.exists():
            raise FileNotFoundError(f"artifact {key!r}: {local} does not exist")
        name = local.resolve().name
        if local.is_dir():
            shutil.copytree(local, target_dir / name, symlinks=False)
        else:
            shutil.copy2(local, target_dir / name)
    return f"{ARTIFACTS_DIR}/{key}/{name}"


def _copy_code_paths(code_paths: Sequence[str | os.PathLike[str]], directory: Path) -> None:
    """Each file or directory into ``code/`` under its own name, which goes on sys.path at load."""
    code = directory / CODE_DIR
    code.mkdir()
    for entry in code_paths:
        local = Path(entry)
        target = code / local.resolve().name
        if target.exists():
            raise InvalidArgument(
                f"two code_paths are named {target.name!r}",
                code="INVALID_ARGUMENT",
                reason="DUPLICATE_CODE_PATH",
            )
        if local.is_dir():
            shutil.copytree(local, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(local, target)


def _model_file(python_model: Any) -> Path:
    """The model file's path, or InvalidArgument for anything that is not a .py file's path."""
    if isinstance(python_model, PythonModel) or (
        python_model is not None and not isinstance(python_model, (str, os.PathLike))
    ):
        raise InvalidArgument(
            "python_model must be the path of a .py file that calls "
            "modelreg.models.set_model(YourModel()) (models from code): modelreg never pickles a "
            f"model object, and {type(python_model).__name__} instances would need a pickle",
            code="INVALID_ARGUMENT",
            reason="MODEL_NOT_FROM_CODE",
        )
    if python_model is None:
        raise InvalidArgument(
            "python_model is required: the path of a .py file that calls modelreg.models.set_model",
            code="INVALID_ARGUMENT",
            reason="MODEL_NOT_FROM_CODE",
        )
    path = Path(python_model)
    if path.suffix != ".py" or not path.is_file():
        raise InvalidArgument(
            f"python_model {str(path)!r} is not an existing .py file",
            code="INVALID_ARGUMENT",
            reason="MODEL_NOT_FROM_CODE",
        )
    return path


def save_model(
    path: str | os.PathLike[str],
    python_model: str | os.PathLike[str],
    *,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    model_config: str | Mapping[str, Any] | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: str | os.PathLike[str] | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike[str] | Sequence[str] | None = None,
) -> ModelMetadata:
    """Writes a custom model directory at ``path`` (absent or empty); returns its metadata.

    The model file is run once here (it is the caller's own file) to check that it calls
    ``set_model`` and, with ``input_example`` and no ``signature``, to infer one from its prediction.
    ``pip_requirements`` replaces the default requirements (this modelreg and pandas);
    ``extra_pip_requirements`` adds to them; either may be a list or a requirements file's path.
    """
    source = _model_file(python_model)
    directory = Path(path)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} exists and is not empty")
    config = None if model_config is None else read_model_config(model_config)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, directory / source.name)
    stored_artifacts = {
        key: _copy_artifact(key, value, directory) for key, value in (artifacts or {}).items()
    }
    if code_paths:
        _copy_code_paths(code_paths, directory)
    requirements = (
        default_pip_requirements() if pip_requirements is None else _requirement_lines(pip_requirements)
    )
    if extra_pip_requirements is not None:
        requirements += _requirement_lines(extra_pip_requirements)
    (directory / REQUIREMENTS_FILE).write_text(
        "".join(f"{line}\n" for line in requirements), encoding="utf-8"
    )
    example_file = None
    if input_example is not None:
        example_file = write_input_example(directory, input_example)
    with code_on_path_while([directory / CODE_DIR] if code_paths else []):
        model = run_model_code(directory / source.name, config)
        if input_example is not None and signature is None:
            context = PythonModelContext(
                {key: str((directory / value).resolve()) for key, value in stored_artifacts.items()}, config
            )
            model.load_context(context)
            signature = infer_signature(input_example, call_predict(model, context, input_example, None))
    metadata = ModelMetadata(
        flavor=FLAVOR,
        serialization=CODE_SERIALIZATION,
        model_file=source.name,
        python_version=platform.python_version(),
        sklearn_version="",
        modelreg_version=_modelreg_version(),
        created_at=time.time_ns() // 1_000_000,
        signature=signature,
        input_example=example_file,
        files=directory_digests(directory),
        artifacts=stored_artifacts,
        code_paths=(CODE_DIR,) if code_paths else (),
        model_config=config,
        requirements=REQUIREMENTS_FILE,
    )
    write_metadata(directory, metadata)
    return metadata


def log_model(
    artifact_path: str | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    python_model: str | os.PathLike[str] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    await_registration_for: int | None = None,
    pip_requirements: str | os.PathLike[str] | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike[str] | Sequence[str] | None = None,
    model_config: str | Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
) -> sklearn_flavor.ModelInfo:
    """Saves a custom model (see :func:`save_model`), uploads it under the active run at ``name``
    (or ``artifact_path``, MLflow's older spelling; default ``"model"``) and, with
    ``registered_model_name``, registers it as a new version, as :func:`modelreg.sklearn.log_model`.

    ``python_model`` must be a .py file's path (models from code); a PythonModel instance is
    refused (MODEL_NOT_FROM_CODE), since storing it would mean a pickle. ``artifacts`` maps keys
    to local files or directories, ``runs:/`` or ``models:/`` URIs; each is copied into the model
    and reaches ``load_context`` as ``context.artifacts[key]``, a local path.
    """
    del await_registration_for
    path = sklearn_flavor.model_artifact_path(name, artifact_path)
    source = _model_file(python_model)  # refuses an instance before a run is started
    return sklearn_flavor.log_model_dir(
        lambda local: save_model(
            local,
            source,
            artifacts=artifacts,
            model_config=model_config,
            code_paths=code_paths,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
        ),
        path,
        registered_model_name,
    )


def get_model_dependencies(model_uri: str, format: str = "pip") -> str:
    """The local path of the model's pip requirements file (``format="pip"``) or of a conda
    environment file built from them (``format="conda"``), as MLflow returns.

    The model is fetched and verified as by :func:`load_model`, and nothing of it runs. A custom
    model stores its requirements (``requirements.txt``, digest-checked); a scikit-learn model
    records the versions it was saved with, from which the file is written: ``modelreg``,
    ``scikit-learn`` and, for the default format, ``skops``. Written files go to a new temporary
    directory, never into the model's cached files.
    """
    if format not in ("pip", "conda"):
        raise InvalidArgument(
            f"format must be 'pip' or 'conda', not {format!r}",
            code="INVALID_ARGUMENT",
            reason="INVALID_DEPENDENCIES_FORMAT",
        )
    fetched = fetch_model(model_uri)
    metadata = fetched.metadata
    if metadata.requirements is not None:
        stored = model_path(fetched.path, metadata.requirements, "requirements")
        if format == "pip":
            return str(stored)
        lines = _requirement_lines(stored)
    else:
        lines = [f"modelreg=={metadata.modelreg_version}"]
        if metadata.sklearn_version:
            lines.append(f"scikit-learn=={metadata.sklearn_version}")
        if metadata.serialization == "skops":
            lines.append("skops")
    out = Path(tempfile.mkdtemp(prefix="modelreg-deps-"))
    if format == "pip":
        target = out / REQUIREMENTS_FILE
        target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return str(target)
    target = out / "conda.yaml"
    pip_entries = "".join(f"    - {json.dumps(line)}\n" for line in lines)
    target.write_text(
        f"name: modelreg-env\nchannels:\n- conda-forge\ndependencies:\n- python={metadata.python_version}\n"
        f"- pip\n- pip:\n{pip_entries}",
        encoding="utf-8",
    )
    return str(target)


__all__ = [
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "get_model_dependencies",
    "load_model",
    "log_model",
    "save_model",
]
