"""Typed errors of the registry service; each names the offending model, version, alias or field.

They subclass modelreg_server.errors so the shared interceptor maps them to a status code plus one
ErrorInfo whose reason is the UPPER_SNAKE constant of the class. Errors about the run behind a
version are FAILED_PRECONDITION here (the registry's request is well-formed; the run it names is
not in a state that allows it), unlike tracking's own RUN_NOT_FOUND, which is NOT_FOUND.
"""

from __future__ import annotations

from typing import ClassVar

from modelreg_server.errors import (
    AlreadyExistsError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
)
from registry_service.domain.entities import Stage

ERROR_DOMAIN = "registry.modelreg"


class RegisteredModelNotFound(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(
            "REGISTERED_MODEL_NOT_FOUND", f"registered model '{name}' does not exist", {"name": name}
        )


class RegisteredModelAlreadyExists(AlreadyExistsError):
    def __init__(self, name: str) -> None:
        super().__init__(
            "REGISTERED_MODEL_ALREADY_EXISTS", f"registered model '{name}' already exists", {"name": name}
        )


class ModelVersionNotFound(NotFoundError):
    def __init__(self, name: str, version: int) -> None:
        super().__init__(
            "MODEL_VERSION_NOT_FOUND",
            f"version {version} of registered model '{name}' does not exist",
            {"name": name, "version": str(version)},
        )


class NoVersionInStage(NotFoundError):
    """A URI or lookup by stage (or "latest") that no version satisfies."""

    def __init__(self, name: str, stage: Stage | None) -> None:
        where = f" in stage {stage.value}" if stage is not None else ""
        super().__init__(
            "MODEL_VERSION_NOT_FOUND", f"registered model '{name}' has no version{where}", {"name": name}
        )


class AliasNotFound(NotFoundError):
    def __init__(self, name: str, alias: str) -> None:
        super().__init__(
            "ALIAS_NOT_FOUND",
            f"registered model '{name}' has no alias '{alias}'",
            {"name": name, "alias": alias},
        )


class TagNotFound(NotFoundError):
    def __init__(self, key: str) -> None:
        super().__init__("TAG_NOT_FOUND", f"tag '{key}' does not exist", {"key": key})


class InvalidField(InvalidArgumentError):
    """Bad input in one request field; the subclass names the reason, ``field`` travels in the
    ErrorInfo metadata."""

    reason_code: ClassVar[str]

    def __init__(self, message: str, field: str) -> None:
        super().__init__(self.reason_code, message, {"field": field})


class InvalidName(InvalidField):
    reason_code = "INVALID_NAME"


class InvalidTag(InvalidField):
    reason_code = "INVALID_TAG"


class InvalidStage(InvalidField):
    reason_code = "INVALID_STAGE"


class InvalidAlias(InvalidField):
    reason_code = "INVALID_ALIAS"


class InvalidSource(InvalidField):
    reason_code = "INVALID_SOURCE"


class InvalidVersion(InvalidField):
    reason_code = "INVALID_VERSION"


class InvalidDescription(InvalidField):
    reason_code = "INVALID_DESCRIPTION"


class InvalidModelUri(InvalidField):
    reason_code = "INVALID_MODEL_URI"


class InvalidPath(InvalidField):
    reason_code = "INVALID_PATH"


class InvalidOutcome(InvalidField):
    reason_code = "INVALID_OUTCOME"


class InvalidDetail(InvalidField):
    reason_code = "INVALID_DETAIL"


class InvalidInstance(InvalidField):
    reason_code = "INVALID_INSTANCE"


class RunNotFound(FailedPreconditionError):
    def __init__(self, run_id: str) -> None:
        super().__init__("RUN_NOT_FOUND", f"run '{run_id}' does not exist", {"run_id": run_id})


class RunDeleted(FailedPreconditionError):
    def __init__(self, run_id: str) -> None:
        super().__init__("RUN_DELETED", f"run '{run_id}' is deleted", {"run_id": run_id})


class SourceArtifactNotFound(FailedPreconditionError):
    def __init__(self, run_id: str, path: str) -> None:
        super().__init__(
            "ARTIFACT_NOT_FOUND",
            f"run '{run_id}' has no artifact at '{path}'",
            {"run_id": run_id, "path": path},
        )


class NoRollbackTarget(FailedPreconditionError):
    def __init__(self, name: str, stage: str) -> None:
        super().__init__(
            "NO_ROLLBACK_TARGET",
            f"no earlier live version of '{name}' held stage {stage}",
            {"name": name, "stage": stage},
        )


class PermissionNotFound(NotFoundError):
    def __init__(self, name: str, kind: str, subject: str) -> None:
        super().__init__(
            "PERMISSION_NOT_FOUND",
            f"registered model '{name}' has no grant to {kind} '{subject}'",
            {"name": name, kind: subject},
        )


class ModelFileNotFound(NotFoundError):
    def __init__(self, name: str, version: int, path: str) -> None:
        super().__init__(
            "MODEL_FILE_NOT_FOUND",
            f"version {version} of registered model '{name}' has no registered file '{path}'",
            {"name": name, "version": str(version), "path": path},
        )


class ModelFileChanged(DataLossError):
    """The file a version was registered with is no longer what the run holds at its path."""

    def __init__(self, path: str, registered: str, now: str) -> None:
        super().__init__(
            "DIGEST_MISMATCH",
            f"file '{path}' changed since registration: sha256 {now}, registered {registered}",
            {"path": path, "registered_sha256": registered, "sha256": now},
        )


class NoLineage(FailedPreconditionError):
    def __init__(self, name: str, version: int) -> None:
        super().__init__(
            "NO_LINEAGE",
            f"version {version} of registered model '{name}' was not registered from a run",
            {"name": name, "version": str(version)},
        )


class ProtectedStage(PermissionDeniedError):
    """A change that would move a version into or out of a protected Production, found under the
    model's lock (the version's stage is known only there)."""

    def __init__(self, name: str, version: int) -> None:
        super().__init__(
            "PERMISSION_DENIED",
            f"MANAGE on registered_model '{name}' is needed to move version {version} "
            f"into or out of {Stage.PRODUCTION.value}",
            {"permission": "MANAGE", "resource": f"registered_models/{name}"},
        )


class TrackingUnavailable(UnavailableError):
    def __init__(self, detail: str) -> None:
        super().__init__("TRACKING_UNAVAILABLE", f"the tracking service did not answer: {detail}")


class TrackingBusy(ResourceExhaustedError):
    """The tracking service refused the registry's download: it runs its limit of streams. The
    reason is the one the registry gives for its own limit, so a client tries again alike."""

    def __init__(self, limit: str) -> None:
        super().__init__(
            "TOO_MANY_STREAMS",
            "the tracking service is running its limit of uploads, downloads and metric streams: "
            "try again shortly",
            {"limit": limit} if limit else {},
        )


class InvalidAction(InvalidField):
    reason_code = "INVALID_ACTION"


class InvalidCursor(InvalidField):
    reason_code = "INVALID_CURSOR"


class TooManyFilters(InvalidField):
    reason_code = "TOO_MANY_FILTERS"


class WatchNeedsModel(PermissionDeniedError):
    """A registry-wide watch by a caller who may not read every model unconditionally."""

    def __init__(self) -> None:
        super().__init__(
            "PERMISSION_DENIED",
            "watching every model needs READ on all of them (an admin, or a default permission of "
            "READ): watch one model by name instead",
            {"permission": "READ", "resource": "registered_models/*", "field": "name"},
        )


class TooManyWatchers(ResourceExhaustedError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "TOO_MANY_WATCHERS",
            f"the service is running its limit of {limit} event watches: try again shortly",
            {"limit": str(limit)},
        )
