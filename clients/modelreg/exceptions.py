"""The errors the modelreg client raises.

Every failed call raises a subclass of :class:`ModelregError`, chosen by the gRPC status code,
carrying the server's google.rpc.ErrorInfo: ``reason`` (UPPER_SNAKE, e.g. ``RUN_NOT_FOUND``) and
``metadata``. Branch on the class and ``reason``; the message is for people.

MLflow code keeps working: ``MlflowException`` is :class:`ModelregError` (so ``except
MlflowException`` catches every modelreg error) and ``error_code`` is MLflow's name of the
error's kind (``RESOURCE_DOES_NOT_EXIST``, ``INVALID_PARAMETER_VALUE``, ...).
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
    ``misconfigured`` is true for a failed connection that a setting must fix (TLS on one side
    only, an untrusted certificate): retrying it cannot help.
    """

    misconfigured = False

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

    @property
    def error_code(self) -> str:
        """MLflow's error code for this error's gRPC status (``NOT_FOUND`` →
        ``RESOURCE_DOES_NOT_EXIST``, ``INVALID_ARGUMENT`` → ``INVALID_PARAMETER_VALUE``, ...)."""
        return MLFLOW_ERROR_CODES.get(self.code, "INTERNAL_ERROR")

    @classmethod
    def invalid_parameter_value(cls, message: str) -> InvalidArgument:
        """MLflow's ``MlflowException.invalid_parameter_value``."""
        return InvalidArgument(message, code="INVALID_ARGUMENT")


MlflowException = ModelregError
"""MLflow's base exception: every modelreg client error is one."""

# gRPC status name → MLflow's ErrorCode name (what MlflowException.error_code holds).
MLFLOW_ERROR_CODES: dict[str, str] = {
    "INVALID_ARGUMENT": "INVALID_PARAMETER_VALUE",
    "OUT_OF_RANGE": "INVALID_PARAMETER_VALUE",
    "NOT_FOUND": "RESOURCE_DOES_NOT_EXIST",
    "ALREADY_EXISTS": "RESOURCE_ALREADY_EXISTS",
    "FAILED_PRECONDITION": "INVALID_STATE",
    "PERMISSION_DENIED": "PERMISSION_DENIED",
    "UNAUTHENTICATED": "UNAUTHENTICATED",
    "RESOURCE_EXHAUSTED": "RESOURCE_EXHAUSTED",
    "UNAVAILABLE": "TEMPORARILY_UNAVAILABLE",
    "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED",
    "CANCELLED": "CANCELLED",
    "DATA_LOSS": "DATA_LOSS",
    "UNIMPLEMENTED": "NOT_IMPLEMENTED",
    "INTERNAL": "INTERNAL_ERROR",
}


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


class ResourceExhausted(ModelregError):
    """A write refused because it would leave an entity over a cap (``TOO_MANY_PARAMS``,
    ``RUN_TOO_LARGE``, ...: the ``field`` and ``limit`` are in ``metadata``; nothing of the write
    was kept), a stream refused while the server holds its most (``TOO_MANY_STREAMS``), or a
    message over gRPC's size limit. Deleting something makes room under a cap; a refused stream
    may be tried again later."""


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


class UnsafePathError(DataLoss):
    """A server named a path the client will not turn into a local file (reason ``UNSAFE_PATH``):
    absolute, with ``..`` or empty segments, a backslash or NUL, outside the requested directory,
    or reaching outside the destination through a symlink. Nothing is written for it.

    A DataLoss, as a damaged download is: the client cannot use what the server sent, and code
    that already catches DataLoss around a download keeps catching this. ``path`` is the path as
    the server sent it. Model loads report it as a ModelIntegrityError instead.
    """

    def __init__(self, path: str, why: str) -> None:
        super().__init__(
            f"refusing path {path!r}: it {why}",
            code="DATA_LOSS",
            reason="UNSAFE_PATH",
            metadata={"path": path},
        )
        self.path = path
        self.why = why


_BY_CODE: dict[grpc.StatusCode, type[ModelregError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
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


def _connection_hint(message: str, tls: bool) -> str | None:
    """What a failed connection most likely means, from gRPC's connect error (which names neither
    side's TLS setting): a TLS client that met a plaintext server fails the handshake; a server
    that refuses the client (plaintext against TLS, no client certificate against mTLS) closes
    the socket."""
    if "failed to connect" not in message:
        return None
    if tls and "handshake failed" in message.lower():
        if "WRONG_VERSION_NUMBER" in message:
            return "TLS handshake failed: is the server plaintext? use host:port instead of grpcs://"
        if "CERTIFICATE_VERIFY_FAILED" in message:
            return "TLS handshake failed: the server's certificate is not trusted (MODELREG_CA_FILE)"
        return "TLS handshake failed"
    if "Socket closed" in message:
        if tls:
            return (
                "the server closed the connection: if it requires a client certificate (mTLS), set "
                "MODELREG_CLIENT_CERT_FILE and MODELREG_CLIENT_KEY_FILE to one its CA signed"
            )
        return "the server closed the connection: if it serves TLS, use grpcs://"
    return None


def from_rpc_error(err: grpc.RpcError, *, tls: bool | None = None) -> ModelregError:
    """Translates a failed gRPC call into the matching :class:`ModelregError` subclass.

    ``tls`` says whether the channel used TLS (None: unknown); a connection that failed for a TLS
    reason then says what is likely wrong ahead of gRPC's message.
    """
    code: grpc.StatusCode = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = (err.details() if isinstance(err, grpc.Call) else None) or str(err)
    hint = _connection_hint(message, tls) if tls is not None and code == grpc.StatusCode.UNAVAILABLE else None
    if hint is not None:
        message = f"{hint} ({message})"
    info = _error_info(err)
    cls = _BY_CODE.get(code, ModelregError)
    error = cls(
        message,
        code=code.name,
        reason=info.reason if info is not None else "",
        metadata=dict(info.metadata) if info is not None else None,
    )
    error.misconfigured = hint is not None
    return error
