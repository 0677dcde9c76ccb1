"""The errors the modelreg client raises.

Every failed call raises a subclass of :class:`ModelregError`, chosen by the gRPC status code,
carrying the server's google.rpc.ErrorInfo: ``reason`` (UPPER_SNAKE, e.g. ``RUN_NOT_FOUND``) and
``metadata``. Branch on the class and ``reason``; the message is for people.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class ModelregError(Exception):
    """Base of every modelreg client error.

    Attributes: ``code`` (gRPC status name, e.g. ``"NOT_FOUND"``), ``reason`` (the ErrorInfo
    reason, or the code when the server sent none), ``message`` and ``metadata``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "UNKNOWN",
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason or code
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class InvalidArgument(ModelregError):
    pass


class NotFound(ModelregError):
    pass


class AlreadyExists(ModelregError):
    pass


class FailedPrecondition(ModelregError):
    pass


class PermissionDenied(ModelregError):
    pass


class Unauthenticated(PermissionDenied):
    """Missing, malformed, expired or revoked credentials (set MODELREG_TOKEN or pass ``token=``).
    A PermissionDenied, so code that catches that catches this too."""


class Unavailable(ModelregError):
    pass


class DeadlineExceeded(ModelregError):
    pass


class Internal(ModelregError):
    pass


class Cancelled(ModelregError):
    pass


class DataLoss(ModelregError):
    """Content arrived damaged, e.g. a downloaded file whose sha256 differs from the recorded one."""


_BY_CODE: dict[grpc.StatusCode, type[ModelregError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.DATA_LOSS: DataLoss,
}


def _error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    if not isinstance(err, grpc.Call):
        return None
    try:
        status = rpc_status.from_call(err)
    except ValueError:  # the rich status disagrees with the call's code/message: ignore it
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def from_rpc_error(err: grpc.RpcError) -> ModelregError:
    """Translates a failed gRPC call into the matching :class:`ModelregError` subclass."""
    code: grpc.StatusCode = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = (err.details() if isinstance(err, grpc.Call) else None) or str(err)
    info = _error_info(err)
    cls = _BY_CODE.get(code, ModelregError)
    return cls(
        message,
        code=code.name,
        reason=info.reason if info is not None else "",
        metadata=dict(info.metadata) if info is not None else None,
    )
