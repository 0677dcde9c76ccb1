"""Typed errors raised by the domain and store layers of both services.

Domain code never imports grpc: it raises a subclass of :class:`ServiceError` carrying an
:class:`ErrorKind` and an UPPER_SNAKE reason. ``modelreg_server.grpc_errors`` turns it into a
gRPC status with exactly one google.rpc.ErrorInfo.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class ErrorKind(enum.Enum):
    """The gRPC status code family of an error, without importing grpc."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    ABORTED = "ABORTED"
    DATA_LOSS = "DATA_LOSS"
    INTERNAL = "INTERNAL"


class ServiceError(Exception):
    """An expected failure: a status family, a machine-readable reason and a human message.

    The message names the offending field or value; ``metadata`` holds machine-readable details
    (e.g. ``{"field": "name"}``) that travel in the ErrorInfo.
    """

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, reason: str, message: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgumentError(ServiceError):
    kind = ErrorKind.INVALID_ARGUMENT


class NotFoundError(ServiceError):
    kind = ErrorKind.NOT_FOUND


class AlreadyExistsError(ServiceError):
    kind = ErrorKind.ALREADY_EXISTS


class FailedPreconditionError(ServiceError):
    kind = ErrorKind.FAILED_PRECONDITION


class UnavailableError(ServiceError):
    kind = ErrorKind.UNAVAILABLE


class DeadlineExceededError(ServiceError):
    kind = ErrorKind.DEADLINE_EXCEEDED


class ResourceExhaustedError(ServiceError):
    kind = ErrorKind.RESOURCE_EXHAUSTED


class DataLossError(ServiceError):
    """Stored bytes are not what was recorded."""

    kind = ErrorKind.DATA_LOSS


class UnauthenticatedError(ServiceError):
    """Missing, malformed, expired, revoked or wrongly signed credentials."""

    kind = ErrorKind.UNAUTHENTICATED


class PermissionDeniedError(ServiceError):
    kind = ErrorKind.PERMISSION_DENIED


class InvalidFilter(InvalidArgumentError):
    """A search filter that does not parse or breaks a limit of modelreg_server.filters."""

    # Where the parser stood when it refused (modelreg_server.filters.parse_condition sets it).
    position: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_FILTER", f"invalid filter: {message}", {"field": "filter"})


class InvalidOrderBy(InvalidArgumentError):
    """An order_by clause that does not parse or names a field the search cannot order by."""

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_ORDER_BY", f"invalid order_by: {message}", {"field": "order_by"})
