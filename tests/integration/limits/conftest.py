"""Both real servers on one backend (access control off), driven through the modelreg client,
plus raw stubs that see each page of a listing as the server sends it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from modelreg import RegistryClient, TrackingClient
from modelreg.exceptions import ModelregError
from modelreg.registry.v1 import registry_pb2_grpc
from modelreg.tracking.v1 import tracking_pb2_grpc
from modelreg_server.bootstrap import MAX_MESSAGE_BYTES
from tests.conftest import Backend
from tests.servers import running_registry, running_tracking

# An 8,000-character tag value: the longest a tag may hold.
BIG = "x" * 8000


@dataclass(frozen=True)
class Stack:
    backend: str
    tracking: TrackingClient
    registry: RegistryClient
    tracking_stub: tracking_pb2_grpc.TrackingServiceStub
    registry_stub: registry_pb2_grpc.RegistryServiceStub
    targets: tuple[str, str]  # tracking, registry


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELREG_USER", "limits-tester")


@contextmanager
def running_stack(backend: str, tracking_url: str, registry_url: str, root: Path) -> Iterator[Stack]:
    # The stubs accept what the client does: an answer over 8 MiB fails as it would for a user.
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    with ExitStack() as stack:
        tracking, _ = stack.enter_context(running_tracking(root, tracking_url))
        registry = stack.enter_context(running_registry(root, tracking, registry_url))
        yield Stack(
            backend,
            stack.enter_context(TrackingClient(tracking)),
            stack.enter_context(RegistryClient(registry)),
            tracking_pb2_grpc.TrackingServiceStub(
                stack.enter_context(grpc.insecure_channel(tracking, options=options))
            ),
            registry_pb2_grpc.RegistryServiceStub(
                stack.enter_context(grpc.insecure_channel(registry, options=options))
            ),
            (tracking, registry),
        )


@pytest.fixture
def stack(backend: Backend, database_url_factory: Callable[[str], str], tmp_path: Path) -> Iterator[Stack]:
    with running_stack(backend.name, backend.url, database_url_factory(backend.name), tmp_path) as stack:
        yield stack


@pytest.fixture
def latin1_stack(latin1_databases: Callable[[], str], tmp_path: Path) -> Iterator[Stack]:
    """Both servers on latin1 MySQL/MariaDB databases."""
    with running_stack("mysql", latin1_databases(), latin1_databases(), tmp_path) as stack:
        yield stack


def refused(error: pytest.ExceptionInfo[ModelregError]) -> tuple[str, str, str, str]:
    """(code, reason, field, limit) of a refused write."""
    value = error.value
    return value.code, value.reason, value.metadata.get("field", ""), value.metadata.get("limit", "")
