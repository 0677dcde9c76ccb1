"""The model directory: the model file(s), an optional input example and ``modelreg-model.json``.

``modelreg-model.json`` describes the directory (format version 1)::

    {
      "format_version": 1,
      "flavor": "sklearn",
      "serialization": "skops",            # or "pickle"
      "model_file": "model.skops",
      "python_version": "3.11.7", "sklearn_version": "1.9.1", "modelreg_version": "0.1.0",
      "created_at": 1767225600000,          # ms since epoch
      "signature": {"inputs": [{"name": "sqft", "type": "float64"}, ...], "outputs": [...]},
      "input_example": "input_example.json",
      "files": {"model.skops": "<sha256>", "input_example.json": "<sha256>"}
    }

A custom Python model (``modelreg.pyfunc.log_model(python_model="model.py")``, models from code)
has ``"flavor": "python_function"`` and ``"serialization": "code"``: ``model_file`` is the Python
file that calls ``modelreg.models.set_model``, and four optional fields appear::

      "artifacts": {"weights": "artifacts/weights/weights.csv"},   # key -> file or directory
      "code_paths": ["code"],                # directories put on sys.path before model_file runs
      "model_config": {"threshold": 0.5},    # handed to the model as context.model_config
      "requirements": "requirements.txt"     # pip requirements, one per line

``files`` holds the sha256 of every other file of the directory, so a directory checks itself; the
registry's lineage (or the tracking service's upload record) covers ``modelreg-model.json`` too.
Every path in it (``model_file``, ``input_example``, ``requirements``, the values of ``artifacts``,
``code_paths``, the keys of ``files``) is a plain relative path that stays inside the directory
(:func:`modelreg.paths.safe_join`). ``model_file``, ``input_example`` and ``requirements`` must be
keys of ``files``, and every file below an ``artifacts`` value or a ``code_paths`` entry must be one
too (:func:`check_code_tree`): a file that is loaded, imported or handed to a model is a file whose
digest was checked. Readers of format version 1 that predate these fields refuse a
``python_function`` model as an unsupported flavor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelreg.exceptions import FailedPrecondition, UnsafePathError
from modelreg.models.errors import ModelIntegrityError
from modelreg.models.signature import ModelSignature
from modelreg.paths import safe_join

METADATA_FILE = "modelreg-model.json"
INPUT_EXAMPLE_FILE = "input_example.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelMetadata:
    flavor: str
    serialization: str
    model_file: str
    python_version: str
    sklearn_version: str
    modelreg_version: str
    created_at: int
    files: Mapping[str, str] = field(default_factory=dict)
    signature: ModelSignature | None = None
    input_example: str | None = None
    format_version: int = FORMAT_VERSION
    # Custom Python models only (see the module docstring).
    artifacts: Mapping[str, str] = field(default_factory=dict)
    code_paths: tuple[str, ...] = ()
    model_config: Mapping[str, Any] | None = None
    requirements: str | None = None

    def named_paths(self) -> list[tuple[str, str]]:
        """(field, path) of each file the metadata points the loader at."""
        named = [("model_file", self.model_file)]
        if self.input_example is not None:
            named.append(("input_example", self.input_example))
        if self.requirements is not None:
            named.append(("requirements", self.requirements))
        return named

    def named_trees(self) -> list[tuple[str, str]]:
        """(field, path) of each file or directory whose every file must have a recorded digest."""
        return [("artifacts", path) for path in self.artifacts.values()] + [
            ("code_paths", path) for path in self.code_paths
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "serialization": self.serialization,
            "model_file": self.model_file,
            "python_version": self.python_version,
            "sklearn_version": self.sklearn_version,
            "modelreg_version": self.modelreg_version,
            "created_at": self.created_at,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "files": dict(sorted(self.files.items())),
        } | self._code_fields()

    def _code_fields(self) -> dict[str, Any]:
        """The fields of a custom Python model, left out of other models' metadata."""
        fields: dict[str, Any] = {}
        if self.artifacts:
            fields["artifacts"] = dict(sorted(self.artifacts.items()))
        if self.code_paths:
            fields["code_paths"] = list(self.code_paths)
        if self.model_config is not None:
            fields["model_config"] = dict(self.model_config)
        if self.requirements is not None:
            fields["requirements"] = self.requirements
        return fields

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        version = data.get("format_version")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise FailedPrecondition(
                f"{METADATA_FILE} has format_version {version!r}; this modelreg reads 1..{FORMAT_VERSION}",
                code="FAILED_PRECONDITION",
                reason="UNSUPPORTED_MODEL_FORMAT",
            )
        signature = data.get("signature")
        return cls(
            format_version=version,
            flavor=str(data["flavor"]),
            serialization=str(data["serialization"]),
            model_file=str(data["model_file"]),
            python_version=str(data["python_version"]),
            sklearn_version=str(data["sklearn_version"]),
            modelreg_version=str(data["modelreg_version"]),
            created_at=int(data["created_at"]),
            signature=None if signature is None else ModelSignature.from_dict(signature),
            input_example=None if data.get("input_example") is None else str(data["input_example"]),
            files={str(k): str(v) for k, v in data.get("files", {}).items()},
            artifacts={str(k): str(v) for k, v in data.get("artifacts", {}).items()},
            code_paths=tuple(str(p) for p in data.get("code_paths", ())),
            model_config=None if data.get("model_config") is None else dict(data["model_config"]),
            requirements=None if data.get("requirements") is None else str(data["requirements"]),
        )


def unsafe_model_path(exc: UnsafePathError, field: str = "") -> ModelIntegrityError:
    """The model-load form of an UnsafePathError (``field``: the ``modelreg-model.json`` field that
    named the path): a model whose paths leave its directory is refused as a damaged one."""
    if field:
        return ModelIntegrityError(METADATA_FILE, f"{field} {exc.path!r} {exc.why}", field=field)
    return ModelIntegrityError(exc.path, f"{exc.why}: a model's files stay inside its directory")


def model_path(directory: Path, path: str, field: str = "") -> Path:
    """``directory / path`` for a path a model's metadata or recorded digests name (``field`` of
    ``modelreg-model.json`` when it is one of its fields); ModelIntegrityError when it would leave
    the directory."""
    try:
        return safe_join(directory, path)
    except UnsafePathError as exc:
        raise unsafe_model_path(exc, field) from None


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def directory_digests(directory: Path) -> dict[str, str]:
    """sha256 of every file below ``directory`` except the metadata file, by '/'-separated path."""
    return {
        p.relative_to(directory).as_posix(): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).as_posix() != METADATA_FILE
    }


def write_metadata(directory: Path, metadata: ModelMetadata) -> None:
    (directory / METADATA_FILE).write_text(json.dumps(metadata.to_dict(), indent=2) + "\n", encoding="utf-8")


def read_metadata(directory: Path) -> ModelMetadata:
    path = directory / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelIntegrityError(METADATA_FILE, "missing: not a modelreg model directory") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(METADATA_FILE, f"not valid JSON ({exc})") from None
    metadata = ModelMetadata.from_dict(data)
    for field_name, named in [*metadata.named_paths(), *metadata.named_trees()]:
        model_path(directory, named, field_name)
    for named in metadata.files:
        model_path(directory, named, "files")
    return metadata


def check_files(metadata: ModelMetadata, verified: Mapping[str, str]) -> None:
    """Checks the metadata's ``files`` map against digests already verified from the bytes on disk.

    Every file the metadata names must be among ``verified`` with the same sha256: a metadata file
    that disagrees with what was registered means the directory was assembled from mixed parts.
    ``model_file`` and ``input_example`` must be keys of ``files`` (so of ``verified`` too): a
    file that is deserialized is one whose digest was checked.
    """
    for path, expected in metadata.files.items():
        actual = verified.get(path)
        if actual is None:
            raise ModelIntegrityError(path, f"listed in {METADATA_FILE} but absent", expected=expected)
        if actual != expected:
            raise ModelIntegrityError(
                path, f"sha256 differs from {METADATA_FILE}", expected=expected, actual=actual
            )
    for field_name, named in metadata.named_paths():
        if named not in metadata.files:  # then also verified, by the loop above
            raise ModelIntegrityError(
                METADATA_FILE,
                f"{field_name} {named!r} has no recorded digest (not a key of files)",
                field=field_name,
            )


def check_code_tree(directory: Path, metadata: ModelMetadata) -> None:
    """Every file below an ``artifacts`` value or a ``code_paths`` entry of an already verified
    directory must be a key of ``files``: an unrecorded file there (left by an earlier download into
    the same directory, or put there by hand) could be imported or read by the model's code, so it
    is refused (ModelIntegrityError naming it) rather than trusted. A tree without any file is
    refused too: it was named but never recorded."""
    for field_name, named in metadata.named_trees():
        root = model_path(directory, named, field_name)
        found = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        if not found:
            raise ModelIntegrityError(
                METADATA_FILE, f"{field_name} {named!r} holds no recorded file", field=field_name
            )
        for file in found:
            path = file.relative_to(directory).as_posix()
            if path not in metadata.files:
                raise ModelIntegrityError(path, f"below {field_name} {named!r} but has no recorded digest")


def verify_model_dir(directory: Path) -> ModelMetadata:
    """Reads a local model directory and checks every file against its metadata's digests."""
    metadata = read_metadata(directory)
    local = {path: model_path(directory, path, "files") for path in metadata.files}
    digests = {path: sha256_file(file) for path, file in local.items() if file.is_file()}
    check_files(metadata, digests)
    return metadata


def write_input_example(directory: Path, example: Any) -> str:
    """Saves a DataFrame (pandas 'split' layout) or an array-like as JSON; returns the file name."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        content = {"type": "dataframe", **json.loads(example.to_json(orient="split", index=False))}
    else:
        content = {"type": "ndarray", "data": np.asarray(example).tolist()}
    (directory / INPUT_EXAMPLE_FILE).write_text(json.dumps(content), encoding="utf-8")
    return INPUT_EXAMPLE_FILE


def read_input_example(directory: Path, metadata: ModelMetadata) -> Any:
    """The saved input example as a DataFrame or ndarray, or None when the model has none."""
    import numpy as np
    import pandas as pd

    if metadata.input_example is None:
        return None
    file = model_path(directory, metadata.input_example, "input_example")
    content = json.loads(file.read_text(encoding="utf-8"))
    if content["type"] == "dataframe":
        return pd.DataFrame(content["data"], columns=content["columns"])
    return np.asarray(content["data"])
