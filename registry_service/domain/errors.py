"""The registry's error reasons and constructors for the errors the rules raise.

Every error is a ``modelreg_server.errors.ServiceError``: the interceptor maps its kind to a
gRPC status and its reason to the one google.rpc.ErrorInfo of the response.
"""

from __future__ import annotations

from modelreg_server.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from registry_service.domain.entities import Stage

ERROR_DOMAIN = "registry.modelreg"

REGISTERED_MODEL_NOT_FOUND = "REGISTERED_MODEL_NOT_FOUND"
REGISTERED_MODEL_ALREADY_EXISTS = "REGISTERED_MODEL_ALREADY_EXISTS"
MODEL_VERSION_NOT_FOUND = "MODEL_VERSION_NOT_FOUND"
TAG_NOT_FOUND = "TAG_NOT_FOUND"
ALIAS_NOT_FOUND = "ALIAS_NOT_FOUND"
INVALID_NAME = "INVALID_NAME"
INVALID_TAG = "INVALID_TAG"
INVALID_STAGE = "INVALID_STAGE"
INVALID_ALIAS = "INVALID_ALIAS"
INVALID_SOURCE = "INVALID_SOURCE"
INVALID_VERSION = "INVALID_VERSION"
INVALID_DESCRIPTION = "INVALID_DESCRIPTION"
INVALID_FILTER = "INVALID_FILTER"
INVALID_ORDER_BY = "INVALID_ORDER_BY"
INVALID_MODEL_URI = "INVALID_MODEL_URI"
RUN_NOT_FOUND = "RUN_NOT_FOUND"
RUN_DELETED = "RUN_DELETED"
ARTIFACT_NOT_FOUND = "ARTIFACT_NOT_FOUND"
NO_ROLLBACK_TARGET = "NO_ROLLBACK_TARGET"
TRACKING_UNAVAILABLE = "TRACKING_UNAVAILABLE"


def model_not_found(name: str) -> NotFoundError:
    return NotFoundError(
        REGISTERED_MODEL_NOT_FOUND, f"registered model '{name}' does not exist", {"name": name}
    )


def model_exists(name: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        REGISTERED_MODEL_ALREADY_EXISTS, f"registered model '{name}' already exists", {"name": name}
    )


def version_not_found(name: str, version: int) -> NotFoundError:
    return NotFoundError(
        MODEL_VERSION_NOT_FOUND,
        f"version {version} of registered model '{name}' does not exist",
        {"name": name, "version": str(version)},
    )


def no_version(name: str, stage: Stage | None) -> NotFoundError:
    where = f" in stage {stage.value}" if stage is not None else ""
    return NotFoundError(
        MODEL_VERSION_NOT_FOUND, f"registered model '{name}' has no version{where}", {"name": name}
    )


def alias_not_found(name: str, alias: str) -> NotFoundError:
    return NotFoundError(
        ALIAS_NOT_FOUND, f"registered model '{name}' has no alias '{alias}'", {"name": name, "alias": alias}
    )


def tag_not_found(key: str) -> NotFoundError:
    return NotFoundError(TAG_NOT_FOUND, f"tag '{key}' does not exist", {"key": key})


def invalid(reason: str, message: str, field: str) -> InvalidArgumentError:
    return InvalidArgumentError(reason, message, {"field": field})


def run_not_found(run_id: str) -> FailedPreconditionError:
    return FailedPreconditionError(RUN_NOT_FOUND, f"run '{run_id}' does not exist", {"run_id": run_id})


def run_deleted(run_id: str) -> FailedPreconditionError:
    return FailedPreconditionError(RUN_DELETED, f"run '{run_id}' is deleted", {"run_id": run_id})


def artifact_not_found(run_id: str, path: str) -> FailedPreconditionError:
    return FailedPreconditionError(
        ARTIFACT_NOT_FOUND,
        f"run '{run_id}' has no artifact at '{path}'",
        {"run_id": run_id, "path": path},
    )


def no_rollback_target(name: str, stage: str) -> FailedPreconditionError:
    return FailedPreconditionError(
        NO_ROLLBACK_TARGET,
        f"no earlier live version of '{name}' held stage {stage}",
        {"name": name, "stage": stage},
    )


def tracking_unavailable(detail: str) -> UnavailableError:
    return UnavailableError(TRACKING_UNAVAILABLE, f"the tracking service did not answer: {detail}")
