"""Typed errors of the tracking service; each names the offending id, key or field.

They subclass modelreg_server.errors so the shared interceptor maps them to a status code plus one
ErrorInfo whose reason is the UPPER_SNAKE constant given here.
"""

from __future__ import annotations

from modelreg_server.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)


class RunNotFound(NotFoundError):
    def __init__(self, run_id: str, reason: str = "RUN_NOT_FOUND") -> None:
        super().__init__(reason, f"run '{run_id}' does not exist", {"run_id": run_id})


class ExperimentNotFound(NotFoundError):
    def __init__(self, what: str) -> None:
        super().__init__("EXPERIMENT_NOT_FOUND", f"experiment {what} does not exist", {"experiment": what})


class ExperimentAlreadyExists(AlreadyExistsError):
    def __init__(self, name: str) -> None:
        super().__init__(
            "EXPERIMENT_ALREADY_EXISTS", f"an experiment named '{name}' already exists", {"name": name}
        )


class RunDeleted(FailedPreconditionError):
    def __init__(self, run_id: str) -> None:
        super().__init__("RUN_DELETED", f"run '{run_id}' is deleted; restore it first", {"run_id": run_id})


class ExperimentDeleted(FailedPreconditionError):
    def __init__(self, experiment_id: str) -> None:
        super().__init__(
            "EXPERIMENT_DELETED",
            f"experiment '{experiment_id}' is deleted; restore it first",
            {"experiment_id": experiment_id},
        )


class DefaultExperimentProtected(FailedPreconditionError):
    def __init__(self) -> None:
        super().__init__(
            "DEFAULT_EXPERIMENT_PROTECTED", "the Default experiment (id 0) cannot be deleted", {}
        )


class TagNotFound(NotFoundError):
    def __init__(self, key: str) -> None:
        super().__init__("TAG_NOT_FOUND", f"tag '{key}' is not set", {"key": key})


class ParamValueConflict(InvalidArgumentError):
    def __init__(self, key: str, old: str, new: str) -> None:
        super().__init__(
            "PARAM_VALUE_CONFLICT",
            f"param '{key}' is already logged with value '{old[:100]}'; params are immutable "
            f"(attempted '{new[:100]}')",
            {"key": key},
        )


class InvalidArtifactPath(InvalidArgumentError):
    def __init__(self, path: str, why: str) -> None:
        super().__init__("INVALID_ARTIFACT_PATH", f"artifact path '{path[:200]}' {why}", {"field": "path"})


class ArtifactNotFound(NotFoundError):
    def __init__(self, run_id: str, path: str) -> None:
        super().__init__(
            "ARTIFACT_NOT_FOUND",
            f"run '{run_id}' has no artifact at '{path}'",
            {"run_id": run_id, "path": path},
        )


class ArtifactSealed(FailedPreconditionError):
    def __init__(self, run_id: str, path: str, sealed: str) -> None:
        super().__init__(
            "ARTIFACT_SEALED",
            f"run '{run_id}' cannot take an upload to '{path}': '{sealed}' is sealed, as the files of a"
            " registered model version stay as registered (upload under another path)",
            {"run_id": run_id, "path": path, "sealed_path": sealed},
        )


class ArtifactLocationNotAllowed(FailedPreconditionError):
    """The run's experiment keeps its artifacts outside the server's roots (it was created before
    they were enforced, or its root was dropped from the settings)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(
            "ARTIFACT_LOCATION_NOT_ALLOWED",
            f"run '{run_id}' keeps its artifacts outside the server's artifact roots; uploads to it are refused",
            {"run_id": run_id},
        )


class BatchTooLarge(InvalidArgumentError):
    def __init__(self, field: str, count: int, limit: int) -> None:
        super().__init__(
            "BATCH_TOO_LARGE", f"{field} holds {count} entries, the limit is {limit}", {"field": field}
        )


class PermissionNotFound(NotFoundError):
    def __init__(self, experiment_id: int, kind: str, name: str) -> None:
        super().__init__(
            "PERMISSION_NOT_FOUND",
            f"experiment '{experiment_id}' has no grant to {kind} '{name}'",
            {"experiment_id": str(experiment_id), kind: name},
        )
