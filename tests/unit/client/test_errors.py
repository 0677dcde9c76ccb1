"""Error translation: a real gRPC status with one ErrorInfo becomes the matching exception."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.rpc import code_pb2

from modelreg import exceptions
from modelreg_server.grpc_errors import status_for

_METHOD = "/test.Failing/Fail"


@pytest.fixture(scope="module")
def failing_channel() -> Iterator[grpc.Channel]:
    """A server whose one method aborts with the status named by the request bytes."""

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        code_name, reason = request.decode().split(":")
        if not reason:  # a plain status, without ErrorInfo, as a proxy or an old server sends
            context.abort(grpc.StatusCode[code_name], "plain failure")
        context.abort_with_status(
            status_for(getattr(code_pb2, code_name), reason, "it failed", "test.modelreg", {"field": "name"})
        )
        raise AssertionError("abort raises")

    handler = grpc.method_handlers_generic_handler(
        "test.Failing", {"Fail": grpc.unary_unary_rpc_method_handler(fail)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    channel.close()
    server.stop(None)


def _translate(channel: grpc.Channel, code: str, reason: str) -> exceptions.ModelregError:
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        _METHOD, request_serializer=bytes, response_deserializer=bytes
    )
    with pytest.raises(grpc.RpcError) as info:
        call(f"{code}:{reason}".encode(), timeout=5)
    return exceptions.from_rpc_error(info.value)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("INVALID_ARGUMENT", exceptions.InvalidArgument),
        ("NOT_FOUND", exceptions.NotFound),
        ("ALREADY_EXISTS", exceptions.AlreadyExists),
        ("FAILED_PRECONDITION", exceptions.FailedPrecondition),
        ("PERMISSION_DENIED", exceptions.PermissionDenied),
        ("UNAVAILABLE", exceptions.Unavailable),
        ("DEADLINE_EXCEEDED", exceptions.DeadlineExceeded),
        ("INTERNAL", exceptions.Internal),
        ("RESOURCE_EXHAUSTED", exceptions.ResourceExhausted),
    ],
)
def test_status_with_error_info_maps_to_class_and_reason(
    failing_channel: grpc.Channel, code: str, cls: type[exceptions.ModelregError]
) -> None:
    err = _translate(failing_channel, code, "SOME_REASON")
    assert type(err) is cls
    assert err.code == code
    assert err.reason == "SOME_REASON"
    assert err.metadata == {"field": "name"}


def test_status_without_error_info_uses_the_code_as_reason(failing_channel: grpc.Channel) -> None:
    err = _translate(failing_channel, "NOT_FOUND", "")
    assert isinstance(err, exceptions.NotFound)
    assert (err.code, err.reason, err.metadata) == ("NOT_FOUND", "NOT_FOUND", {})


def test_every_error_is_a_modelreg_error() -> None:
    for cls in (exceptions.NotFound, exceptions.Unavailable, exceptions.DataLoss, exceptions.Cancelled):
        assert issubclass(cls, exceptions.ModelregError)
