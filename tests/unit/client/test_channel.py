"""The channel's behaviour against a scripted fake tracking server: retries (of reads and writes,
a write keeping its idempotency key), deadlines, and the metadata every call carries."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent import futures
from types import SimpleNamespace

import grpc
import pytest

from modelreg import TrackingClient, _grpc, wire
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


class ClientClock:
    """The client's clock and sleep, so a retry budget is checked without waiting for it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("jitter", "pauses"),
    [
        # Each pause is drawn from [ceiling/2, ceiling], the ceiling 0.1, 0.2, 0.4, 0.8 s...: the
        # client stops when the next pause would end past the 1 s budget.
        ("longest", [0.1, 0.2, 0.4]),
        ("shortest", [0.05, 0.1, 0.2, 0.4]),
    ],
)
def test_calls_give_up_when_the_next_pause_would_pass_the_retry_time(
    scripted: tuple[ScriptedTracking, str],
    monkeypatch: pytest.MonkeyPatch,
    jitter: str,
    pauses: list[float],
) -> None:
    fake, target = scripted
    fake.failures = 1_000
    monkeypatch.setenv("MODELREG_RETRY_SECONDS", "1")
    clock = ClientClock()
    monkeypatch.setattr(_grpc, "time", clock)
    pick = max if jitter == "longest" else min
    monkeypatch.setattr(_grpc, "random", SimpleNamespace(uniform=pick))
    with TrackingClient(target, timeout=10) as client, pytest.raises(Unavailable):
        client.get_run("abc")
    assert clock.pauses == pytest.approx(pauses)
    assert fake.attempts["GetRun"] == len(pauses) + 1


def test_zero_retry_seconds_disables_retries(
    scripted: tuple[ScriptedTracking, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, target = scripted
    fake.failures = 1
    monkeypatch.setenv("MODELREG_RETRY_SECONDS", "0")
    with TrackingClient(target, timeout=10) as client, pytest.raises(Unavailable):
        client.create_run()
    assert fake.attempts["CreateRun"] == 1


def test_writes_are_retried_with_one_idempotency_key(scripted: tuple[ScriptedTracking, str]) -> None:
    fake, target = scripted
    fake.failures = 2
    with TrackingClient(target, timeout=10) as client:
        assert client.create_run().info.run_id == "new"
        assert client._rpc.retried == 2
        client.create_run()
        client.get_run("abc")
    keys = [m.get(wire.IDEMPOTENCY_HEADER) for m in fake.metadata]
    first, retry1, retry2, second, *reads = keys  # GetRun fails twice too
    assert first is not None and len(first) == 32
    assert first == retry1 == retry2, "every attempt of one call carries its key"
    assert second is not None and second != first, "each call has its own key"
    assert reads == [None, None, None], "reads carry no key"
    assert len({m["x-request-id"] for m in fake.metadata[:3]}) == 1


def test_ctrl_c_stops_retrying_at_once(scripted: tuple[ScriptedTracking, str]) -> None:
    fake, target = scripted
    fake.failures = 1_000

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    started = time.monotonic()
    try:
        with TrackingClient(target, timeout=10) as client, pytest.raises(KeyboardInterrupt):
            client.create_run()  # retries for 60 s unless interrupted
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 30, "the interrupt ended the 60 s of retries"
    attempts = fake.attempts["CreateRun"]
    time.sleep(0.5)
    assert fake.attempts["CreateRun"] == attempts, "no attempt after the interrupt"


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
