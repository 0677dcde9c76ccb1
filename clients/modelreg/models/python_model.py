"""Custom Python models, stored as code ("models from code", as in MLflow 3).

A model file is a Python file that defines the model and hands it over with :func:`set_model`::

    # model.py
    import modelreg

    class Doubler(modelreg.pyfunc.PythonModel):
        def load_context(self, context):
            self.factor = context.model_config["factor"]

        def predict(self, model_input, params=None):
            return model_input * self.factor

    modelreg.models.set_model(Doubler())

``modelreg.pyfunc.log_model(name="m", python_model="model.py")`` stores that file with the model,
covered by the model's digests; nothing is pickled. Loading the model imports the file again,
which RUNS ITS CODE with the loading process's rights: :func:`run_model_code` is only reached
through ``modelreg.pyfunc.load_model(..., allow_code=True)``, after every file of the model was
checked against its recorded sha256.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import sys
import threading
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelreg.exceptions import FailedPrecondition, InvalidArgument


class PythonModelContext:
    """What a :class:`PythonModel` gets in ``load_context`` and ``predict``: ``artifacts`` (key →
    absolute local path of a file or directory stored with the model, already digest-checked) and
    ``model_config`` (the dictionary given at logging, or the one passed to ``load_model``)."""

    def __init__(self, artifacts: Mapping[str, str], model_config: Mapping[str, Any] | None) -> None:
        self._artifacts = dict(artifacts)
        self._model_config = None if model_config is None else dict(model_config)

    @property
    def artifacts(self) -> dict[str, str]:
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any] | None:
        return self._model_config


class PythonModel:
    """Base class of a custom model: override ``predict``, and ``load_context`` to prepare from the
    model's artifacts and configuration once, at load time.

    ``predict`` may be written ``predict(self, context, model_input, params=None)`` or, as MLflow 3
    allows, without the context: ``predict(self, model_input, params=None)``. The context is
    passed when the method has a parameter named ``context``, or exactly two parameters other
    than ``params`` (MLflow's rule). ``params`` is passed only when ``predict`` declares it.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once when the model is loaded, with artifacts resolved to local paths."""

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement predict")


class _FunctionPythonModel(PythonModel):
    """A plain function handed to :func:`set_model`: ``predict`` calls it with the input."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:  # type: ignore[override]
        del params
        return self.func(model_input)


def call_predict(
    model: PythonModel, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None
) -> Any:
    """Calls ``model.predict`` with or without the context, as its signature asks (MLflow's rule)."""
    parameters = inspect.signature(model.predict).parameters
    kwargs = {"params": params} if "params" in parameters else {}
    with_context = "context" in parameters or len([p for p in parameters if p not in ("self", "params")]) == 2
    if with_context:
        return model.predict(context, model_input, **kwargs)
    return model.predict(model_input, **kwargs)  # type: ignore[call-arg]


# Set by set_model while run_model_code executes a model file; one model file runs at a time.
_loading = threading.local()
_load_lock = threading.Lock()


def set_model(model: Any) -> None:
    """Hands the model a model file defines to :func:`modelreg.pyfunc.log_model` and
    ``load_model``: a :class:`PythonModel` instance, or a function (or other callable) that takes
    the input and returns predictions. Outside of logging or loading it does nothing else."""
    if isinstance(model, str) or not (isinstance(model, PythonModel) or callable(model)):
        raise InvalidArgument(
            f"set_model takes a PythonModel instance or a callable, not {type(model).__name__}",
            code="INVALID_ARGUMENT",
            reason="INVALID_PYTHON_MODEL",
        )
    _loading.model = model


class ModelConfig:
    """The model's configuration, read inside a model file (MLflow's ``ModelConfig``): while the
    model is being logged or loaded, the ``model_config`` of that call (FailedPrecondition when it
    has none, as MLflow refuses); otherwise ``development_config`` (a dictionary, or a JSON or
    YAML file's path), so the file also runs on its own."""

    def __init__(self, *, development_config: str | Mapping[str, Any] | None = None) -> None:
        running = getattr(_loading, "running", False)
        config = getattr(_loading, "config", None) if running else development_config
        if config is None:
            raise FailedPrecondition(
                "the model was logged or loaded without a model_config"
                if running
                else "ModelConfig needs a development_config outside of log_model and load_model",
                code="FAILED_PRECONDITION",
                reason="NO_MODEL_CONFIG",
            )
        self._config = read_model_config(config)

    def get(self, key: str) -> Any:
        if key not in self._config:
            raise KeyError(f"{key!r} is not a key of the model config")
        return self._config[key]

    def to_dict(self) -> dict[str, Any]:
        return dict(self._config)


def read_model_config(config: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A model config as a JSON-serializable dictionary: the mapping itself, or the content of a
    JSON (``.json``) or YAML file; InvalidArgument (INVALID_MODEL_CONFIG) otherwise."""
    if isinstance(config, Mapping):
        data: Any = dict(config)
    elif not isinstance(config, (str, os.PathLike)):
        raise _invalid_config(
            f"model_config must be a dictionary or a file's path, not {type(config).__name__}"
        )
    else:
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _invalid_config(f"model_config file {str(path)!r} cannot be read ({exc})") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else _yaml_load(text)
        except ValueError as exc:
            raise _invalid_config(f"model_config file {str(path)!r} is not valid ({exc})") from None
    if not isinstance(data, dict):
        raise _invalid_config("model_config must be a dictionary (or a file holding one)")
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise _invalid_config(f"model_config must be JSON-serializable ({exc})") from None
    return data


def _yaml_load(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise _invalid_config("a YAML model_config file needs PyYAML; pass a .json file or a dict") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def _invalid_config(message: str) -> InvalidArgument:
    return InvalidArgument(message, code="INVALID_ARGUMENT", reason="INVALID_MODEL_CONFIG")


def drop_bytecode(code_dirs: Sequence[Path]) -> None:
    """Removes every ``__pycache__`` directory below ``code_dirs``. Python trusts a cached .pyc
    whose recorded source size and time match the source, without reading the source: one
    planted beside a verified file would run instead of it. Dropping them before the model's
    code is imported (and before a saved model's digests are taken) means only the checked
    sources are compiled."""
    for directory in code_dirs:
        for cache in sorted(directory.rglob("__pycache__"), reverse=True):
            if cache.is_dir() and not cache.is_symlink():
                shutil.rmtree(cache)


def put_code_on_path(code_dirs: Sequence[Path]) -> None:
    """Puts a loaded model's code directories first on ``sys.path``, where they stay: the model
    may import from them lazily, at predict time."""
    for directory in reversed(code_dirs):
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))


@contextlib.contextmanager
def code_on_path_while(code_dirs: Sequence[Path]) -> Iterator[None]:
    """``code_dirs`` on ``sys.path`` for the block only; then they leave it, and so do the modules
    imported from them, so a later load imports the model's own stored copies, not these."""
    put_code_on_path(code_dirs)
    try:
        yield
    finally:
        drop_bytecode(code_dirs)
        roots = [str(d) for d in code_dirs]
        sys.path[:] = [p for p in sys.path if p not in roots]
        resolved = [d.resolve() for d in code_dirs]
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None)
            if origin and any(Path(origin).resolve().is_relative_to(d) for d in resolved):
                del sys.modules[name]


def run_model_code(model_file: Path, model_config: Mapping[str, Any] | None) -> PythonModel:
    """Imports ``model_file`` (which RUNS it) and returns the model it passed to :func:`set_model`
    (a callable wrapped as a PythonModel); the file runs as a fresh module of a unique name, as
    MLflow does. Its code directories must already be on ``sys.path``.
    """
    module_name = f"_modelreg_code_model_{uuid.uuid4().hex}"
    # Compiled from the source itself: a cached .pyc beside it is neither read nor written.
    code = compile(model_file.read_bytes(), str(model_file), "exec", dont_inherit=True)
    module = types.ModuleType(module_name)
    module.__file__ = str(model_file)
    with _load_lock:
        _loading.model, _loading.config, _loading.running = None, model_config, True
        try:
            sys.modules[module_name] = module  # dataclasses and typing introspection look it up
            exec(code, module.__dict__)  # the caller allowed it: loading a code model runs it
            model = _loading.model
        finally:
            _loading.model, _loading.config, _loading.running = None, None, False
    if model is None:
        raise FailedPrecondition(
            f"{model_file.name} ran but did not call modelreg.models.set_model(...)",
            code="FAILED_PRECONDITION",
            reason="INVALID_PYTHON_MODEL",
        )
    return model if isinstance(model, PythonModel) else _FunctionPythonModel(model)
