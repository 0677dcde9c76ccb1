"""The one place where service errors become gRPC statuses with a google.rpc.ErrorInfo."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelreg_server.errors import ErrorKind, ServiceError

_CODES: dict[ErrorKind, int] = {
    ErrorKind.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: code_pb2.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    ErrorKind.UNAVAILABLE: code_pb2.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    ErrorKind.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    ErrorKind.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    ErrorKind.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    ErrorKind.ABORTED: code_pb2.ABORTED,
    ErrorKind.DATA_LOSS: code_pb2.DATA_LOSS,
    ErrorKind.INTERNAL: code_pb2.INTERNAL,
}


def status_for(code: int, reason: str, message: str, domain: str, metadata: dict[str, str]) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[detail]))


def status_from_error(error: ServiceError, domain: str) -> grpc.Status:
    return status_for(_CODES[error.kind], error.reason, error.message, domain, error.metadata)


def internal_status(domain: str, request_id: str) -> grpc.Status:
    """An INTERNAL status that reveals nothing but the request id to look up in the server log."""
    return status_for(
        code_pb2.INTERNAL,
        "INTERNAL",
        f"internal error; see the server log for request id {request_id}",
        domain,
        {"request_id": request_id},
    )
