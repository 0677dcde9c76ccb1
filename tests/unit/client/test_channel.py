"""The channel's behaviour against a scripted fake tracking server: retries for reads only,
deadlines, and the metadata every call carries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from modelreg import TrackingClient, wire
from modelreg.exceptions import DeadlineExceeded, Unavailable
from modelreg.tracking.v1 import tracking_pb2 as pb


class ScriptedTracking:
    """GetRun and CreateRun fail with UNAVAILABLE ``failures`` times, then answer."""

    def __init__(self) -> None:
        self.failures = 0
        self.attempts: dict[str, int] = {"GetRun": 0, "CreateRun": 0}
        self.metadata: list[dict[str, str]] = []
        self.delay = 0.0

    def _answer(self, method: str, context: grpc.ServicerContext) -> None:
        self.attempts[method] += 1
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
        if self.delay:
            time.sleep(self.delay)
        if self.attempts[method] <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")

    def get_run(self, request: pb.GetRunRequest, context: grpc.ServicerContext) -> pb.GetRunResponse:
        self._answer("GetRun", context)
        return pb.GetRunResponse(
            run=pb.Run(info=pb.RunInfo(run_id=request.run_id, status=pb.RUN_STATUS_RUNNING))
        )

    def create_run(self, request: pb.CreateRunRequest, context: grpc.ServicerContext) -> pb.CreateRunResponse:
        self._answer("CreateRun", context)
        return pb.CreateRunResponse(run=pb.Run(info=pb.RunInfo(run_id="new")))


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedTracking, str]]:
    fake = ScriptedTracking()
    handlers = {
        "GetRun": grpc.unary_unary_rpc_method_handler(
            fake.get_run, pb.GetRunRequest.FromString, pb.GetRunResponse.SerializeToString
        ),
        "CreateRun": grpc.unary_unary_rpc_method_handler(
            fake.create_run, pb.CreateRunRequest.FromString, pb.CreateRunResponse.SerializeToString
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("modelreg.tracking.v1.TrackingService", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, f"127.0.0.1:{port}"
    server.stop(None)


def test_reads_are_retried_on_unavailable(scripted: tuple[ScriptedTracking, str]) -> None:
    fake, target = scripted
    fake.failures = 2
    with TrackingClient(target, timeout=10) as client:
        assert client.get_run("abc").info.run_id == "abc"
    assert fake.attempts["GetRun"] == 3


def test_reads_give_up_after_four_attempts(scripted: tuple[ScriptedTracking, str]) -> None:
    fake, target = scripted
    fake.failures = 10
    with TrackingClient(target, timeout=10) as client, pytest.raises(Unavailable):
        client.get_run("abc")
    assert fake.attempts["GetRun"] == 4


def test_writes_are_never_retried(scripted: tuple[ScriptedTracking, str]) -> None:
    fake, target = scripted
    fake.failures = 1
    with TrackingClient(target, timeout=10) as client, pytest.raises(Unavailable):
        client.create_run()
    assert fake.attempts["CreateRun"] == 1


def test_every_call_has_a_deadline(scripted: tuple[ScriptedTracking, str]) -> None:
    fake, target = scripted
    fake.delay = 1.0
    with TrackingClient(target, timeout=0.2) as client, pytest.raises(DeadlineExceeded):
        client.get_run("abc")


def test_metadata_carries_request_id_and_actor(
    scripted: tuple[ScriptedTracking, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, target = scripted
    monkeypatch.setenv("MODELREG_USER", "ana")
    with TrackingClient(target) as client:
        client.get_run("a")
        client.get_run("b")
        with wire.forwarding_request_id("from-the-registry-call"):
            client.get_run("c")
    first, second, propagated = fake.metadata
    assert first["x-modelreg-actor"] == "ana"
    assert len(first["x-request-id"]) == 32 and first["x-request-id"] != second["x-request-id"]
    assert propagated["x-request-id"] == "from-the-registry-call"
