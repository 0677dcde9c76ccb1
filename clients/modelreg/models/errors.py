"""Errors raised while writing, fetching or loading a model directory."""

from __future__ import annotations

from collections.abc import Sequence

from modelreg.exceptions import DataLoss, ModelregError


class ModelIntegrityError(DataLoss):
    """A model file's content does not match the digest recorded for it.

    Raised, and nothing is loaded, when a downloaded or cached file's sha256 differs from the one the
    registry recorded at registration (or the tracking service at upload, for ``runs:/`` URIs), or
    from the model's own metadata, or when a recorded file is missing; also when a path the
    server or ``modelreg-model.json`` names would leave the model directory, or a file the metadata
    points at (``model_file``, ``input_example``) has no recorded digest. ``path`` names the file
    (``modelreg-model.json`` for one of its fields, which ``field`` then names).
    """

    def __init__(
        self, path: str, message: str, *, expected: str = "", actual: str = "", field: str = ""
    ) -> None:
        metadata = {"path": path, "expected_sha256": expected, "actual_sha256": actual}
        super().__init__(
            f"{path}: {message}",
            code="DATA_LOSS",
            reason="MODEL_INTEGRITY_ERROR",
            metadata={**metadata, "field": field} if field else metadata,
        )
        self.path = path
        self.field = field


class _RunsCodeError(ModelregError):
    """Loading the model would run code from its files, and the caller did not allow it."""

    def __init__(self, model_file: str, what: str, flag: str, reason: str) -> None:
        super().__init__(
            f"the model file {model_file!r} is {what}, and loading it runs code from it: "
            f"pass {flag}=True only if you trust everyone who can register models",
            code="FAILED_PRECONDITION",
            reason=reason,
            metadata={"model_file": model_file},
        )


class PickleNotAllowedError(_RunsCodeError):
    """The model is a pickle, and the caller did not pass ``allow_pickle=True``.

    Unpickling runs whatever code the file names, and the model's own files cannot be what
    decides that: only the caller who loads it can.
    """

    def __init__(self, model_file: str) -> None:
        super().__init__(model_file, "a pickle", "allow_pickle", "PICKLE_NOT_ALLOWED")


class UntrustedTypesError(ModelregError):
    """A skops file holds types outside scikit-learn, NumPy, SciPy and builtins.

    Loading such a file could run code from those types' modules; pass them explicitly as
    ``trusted_types=[...]`` once you have checked where they come from.
    """

    def __init__(self, types: Sequence[str]) -> None:
        listed = ", ".join(types)
        super().__init__(
            f"the model file holds types that are not trusted automatically: {listed}; "
            "pass them as trusted_types=[...] after checking them",
            code="FAILED_PRECONDITION",
            reason="UNTRUSTED_TYPES",
            metadata={"types": listed},
        )
        self.types = tuple(types)


class CodeNotAllowedError(_RunsCodeError):
    """The model is Python code (a custom model logged from a file), and the caller did not pass
    ``allow_code=True``.

    Loading such a model imports its file, which runs whatever the file says with the caller's
    rights: as with a pickle, only the caller who loads it can decide that, never the model's files.
    """

    def __init__(self, model_file: str) -> None:
        super().__init__(model_file, "Python code", "allow_code", "CODE_NOT_ALLOWED")
