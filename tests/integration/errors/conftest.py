"""Both real servers on one backend, access control on, called as the bootstrap admin with raw
requests: the tests here send what no well-behaved client would, and check the status that
comes back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelreg_server.settings import AuthSettings
from tests.conftest import _fresh_database
from tests.servers import running_registry, running_tracking

BOOTSTRAP = "bootstrap-secret-for-error-tests"
CREDENTIALS = (("authorization", f"Bearer {BOOTSTRAP}"),)
TIMEOUT_SECONDS = 30
TRACKING = "/modelreg.tracking.v1.TrackingService/"
REGISTRY = "/modelreg.registry.v1.RegistryService/"
ACCESS = "/modelreg.access.v1.AccessService/"  # served by both; called on the registry

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Answer:
    """What a call came back with: its status code and, for an error, its ErrorInfo's reason and
    field ("" when it came without one)."""

    code: grpc.StatusCode
    reason: str = ""
    field: str = ""


# Server streams that run until the client leaves.
ENDLESS = frozenset({REGISTRY + "WatchModelEvents"})


def _answer(error: grpc.RpcError) -> Answer:
    assert isinstance(error, grpc.Call)
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return Answer(error.code(), info.reason, info.metadata.get("field", ""))
    return Answer(error.code())


@dataclass(frozen=True)
class Stack:
    """Both services on one backend; ``channels`` maps "tracking" / "registry" to a channel."""

    backend: str
    channels: dict[str, grpc.Channel]

    def channel(self, method: str) -> grpc.Channel:
        """The channel of the service that serves ``method`` (``/package.Service/Name``)."""
        return self.channels["tracking" if method.startswith(TRACKING) else "registry"]

    def ok(self, method: str, request: Message, response: type[M]) -> M:
        """The answer of a call that must succeed."""
        answer = self.channel(method).unary_unary(method)(
            request.SerializeToString(), timeout=TIMEOUT_SECONDS, metadata=CREDENTIALS
        )
        return response.FromString(answer)

    def call(self, method: str, request: Message, *, client_streams: bool = False) -> Answer:
        """Sends ``request`` to ``method`` and reads the whole answer; a client stream gets the
        request as its one message. Of an endless stream (a watch), the first message only."""
        channel = self.channel(method)
        payload = request.SerializeToString()
        try:
            if client_streams:
                channel.stream_unary(method)(iter([payload]), timeout=TIMEOUT_SECONDS, metadata=CREDENTIALS)
            else:
                answer = channel.unary_stream(method)(payload, timeout=TIMEOUT_SECONDS, metadata=CREDENTIALS)
                for _ in answer:  # a unary answer is a stream of one message
                    if method in ENDLESS:
                        answer.cancel()  # type: ignore[attr-defined]
                        break
        except grpc.RpcError as error:
            return _answer(error)
        return Answer(grpc.StatusCode.OK)


def _database(backend: str, root: Path, name: str, stack: ExitStack) -> str:
    if backend == "sqlite":
        return f"sqlite:///{root / name}.db"
    return stack.enter_context(contextmanager(_fresh_database)(backend))


@contextmanager
def running_stack(backend: str, root: Path) -> Iterator[Stack]:
    """Tracking, registry and their shared access database, each a fresh database of ``backend``."""
    with ExitStack() as stack:
        auth = AuthSettings(
            enabled=True,
            database_url=_database(backend, root, "auth", stack),
            bootstrap_admin_token=BOOTSTRAP,
        )
        tracking, _ = stack.enter_context(
            running_tracking(root, _database(backend, root, "tracking", stack), auth)
        )
        registry = stack.enter_context(
            running_registry(root, tracking, _database(backend, root, "registry", stack), auth)
        )
        channels = {
            "tracking": stack.enter_context(grpc.insecure_channel(tracking)),
            "registry": stack.enter_context(grpc.insecure_channel(registry)),
        }
        yield Stack(backend, channels)
