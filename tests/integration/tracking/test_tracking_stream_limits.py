"""Client streams cannot take the server's threads: a bounded number run at once, each waits a
bounded time for its next message and lasts a bounded time (modelreg_server.streams)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from modelreg import RegistryClient, TrackingClient
from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1.tracking_pb2_grpc import TrackingServiceStub
from modelreg_server.settings import ConfigError, EnvReader
from modelreg_server.streams import StreamLimits
from tests.servers import running_services
from tracking_service.config import Settings

from .conftest import rpc_error, running, stored_files
from .test_tracking_upload_integrity import end_of, error_info, frames

SILENT = 64
UNARY_CALLS = 50
UNARY_DEADLINE = 20  # seconds: far below the held streams' idle limit, far above a slow machine's stall
WORKERS = 4  # the bound is then 3, the reserve 1
DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def settings_for(tmp_path: Path, limits: StreamLimits) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite:///{tmp_path / 'tracking.db'}",
        artifact_root=(tmp_path / "artifacts").as_uri(),
        workers=WORKERS,
        streams=limits,
    )


@contextmanager
def silent_uploads(target: str, run_id: str, count: int) -> Iterator[list[grpc.Future]]:
    """``count`` uploads (at least the service's stream limit) on a channel of their own, each
    sending its metadata and then nothing until the block ends. Yields once every slot is held."""
    release = threading.Event()
    channel = grpc.insecure_channel(target)
    stub = TrackingServiceStub(channel)

    def requests(path: str) -> Iterator[pb.UploadArtifactRequest]:
        yield frames(run_id, path, [], None)[0]
        release.wait()

    def start(i: int) -> grpc.Future:
        return stub.UploadArtifact.future(requests(f"silent/{i}.bin"))

    futures = [start(i) for i in range(count)]
    try:
        hold_every_slot(stub, futures, start)
        yield futures
    finally:
        release.set()
        for future in futures:
            future.cancel()
        channel.close()


def hold_every_slot(
    stub: TrackingServiceStub, futures: list[grpc.Future], start: Callable[[int], grpc.Future]
) -> None:
    """Returns once a probe upload is refused TOO_MANY_STREAMS. The probe sends no message: one
    the service admits fails MISSING_METADATA and stores nothing, but may have taken a slot before
    a silent upload did, so each silent upload refused by then is started again."""
    deadline = time.monotonic() + 10
    while rpc_error(lambda: stub.UploadArtifact(iter(()), timeout=5)) != (EXHAUSTED, "TOO_MANY_STREAMS"):
        assert time.monotonic() < deadline, "the silent uploads never held every stream slot"
        for i, future in enumerate(futures):
            if future.done():
                futures[i] = start(i)
        time.sleep(0.02)


def refused(futures: list[grpc.Future], timeout: float = 10) -> list[grpc.Future]:
    """The uploads that failed within ``timeout``, each with RESOURCE_EXHAUSTED TOO_MANY_STREAMS."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sum(f.done() for f in futures) < len(futures) - WORKERS + 1:
        time.sleep(0.05)
    done = [f for f in futures if f.done()]
    assert {rpc_error(f.result) for f in done} <= {(EXHAUSTED, "TOO_MANY_STREAMS")}
    return done


def test_silent_uploads_leave_unary_calls_a_thread(tmp_path: Path) -> None:
    """64 uploads that send metadata and then nothing: all but the bound are refused at once, and
    another client's GetRun succeeds every time while they hang. Were the unary calls left without
    a thread, each would wait for the silent uploads' 60 s idle limit and pass its 20 s deadline."""
    with running(settings_for(tmp_path, StreamLimits(idle_seconds=60))) as tracking:
        run_id = tracking.stub.CreateRun(pb.CreateRunRequest()).run.info.run_id
        with silent_uploads(tracking.target, run_id, SILENT) as futures:
            time.sleep(0.5)  # the streams reach the server first
            for _ in range(UNARY_CALLS):
                got = tracking.stub.GetRun(pb.GetRunRequest(run_id=run_id), timeout=UNARY_DEADLINE)
                assert got.run.info.run_id == run_id
            # All but the bound were refused at once; the admitted still wait.
            assert len(refused(futures)) == SILENT - (WORKERS - 1)
        # The slots come back once their clients leave.
        time.sleep(0.5)
        data = b"after"
        tracking.stub.UploadArtifact(iter(frames(run_id, "after.bin", [data], end_of(data))), timeout=5)
        listed = tracking.stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, recursive=True))
        assert [f.path for f in listed.files] == ["after.bin"]


def test_registry_registers_while_tracking_holds_silent_uploads(tmp_path: Path) -> None:
    """The registry's checks of a run are unary calls to tracking: they find a thread too."""
    with running_services(tmp_path) as services:
        tracking, registry = TrackingClient(services.tracking), RegistryClient(services.registry)
        run_id = tracking.create_run(tracking.create_experiment("load").experiment_id).info.run_id
        model = tmp_path / "model.bin"
        model.write_bytes(b"weights")
        tracking.log_artifact(run_id, model, "model")
        registry.create_registered_model("Loaded")
        with silent_uploads(services.tracking, run_id, SILENT):
            for _ in range(3):
                registry.create_model_version("Loaded", f"runs:/{run_id}/model", run_id=run_id)
        assert [v.version for v in registry.search_model_versions("name = 'Loaded'")] == [3, 2, 1]


@contextmanager
def stub_for(tmp_path: Path, limits: StreamLimits) -> Iterator[tuple[TrackingServiceStub, Settings]]:
    settings = settings_for(tmp_path, limits)
    with running(settings) as tracking:
        yield tracking.stub, settings


def test_an_idle_upload_is_cut_and_stores_nothing(tmp_path: Path) -> None:
    with stub_for(tmp_path, StreamLimits(idle_seconds=0.5)) as (stub, settings):
        run_id = stub.CreateRun(pb.CreateRunRequest()).run.info.run_id
        release = threading.Event()

        def requests() -> Iterator[pb.UploadArtifactRequest]:
            yield from frames(run_id, "m.bin", [b"half of it"], None)
            release.wait(30)

        started = time.monotonic()
        try:
            code, info, message = error_info(lambda: stub.UploadArtifact(requests(), timeout=30))
            # The status ended the call, and with it the read: no thread stays behind, though
            # the client is still silent.
            time.sleep(0.3)
            assert not [t for t in threading.enumerate() if t.name == "modelreg-stream-reader"]
        finally:
            release.set()
        assert time.monotonic() - started < 10
        assert (code, info.reason, info.metadata["limit_seconds"]) == (DEADLINE, "STREAM_IDLE", "0.5")
        assert "0.5s" in message
        assert list(stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, recursive=True)).files) == []
        assert stored_files(Path(settings.artifact_root.removeprefix("file://"))) == []


def test_a_metric_stream_keeps_its_batches_before_going_idle(tmp_path: Path) -> None:
    with stub_for(tmp_path, StreamLimits(idle_seconds=0.5)) as (stub, _):
        run_id = stub.CreateRun(pb.CreateRunRequest()).run.info.run_id
        release = threading.Event()

        def requests() -> Iterator[pb.LogMetricsRequest]:
            yield pb.LogMetricsRequest(run_id=run_id, metrics=[pb.Metric(key="loss", value=1.0, step=1)])
            release.wait(30)

        try:
            assert rpc_error(lambda: stub.LogMetrics(requests(), timeout=30)) == (DEADLINE, "STREAM_IDLE")
        finally:
            release.set()
        run = stub.GetRun(pb.GetRunRequest(run_id=run_id)).run
        assert [(m.key, m.value) for m in run.data.metrics] == [("loss", 1.0)]


def test_a_stream_that_never_stops_is_cut_at_its_total_limit(tmp_path: Path) -> None:
    """A client that trickles a byte often enough never goes idle, but the stream still ends."""
    with stub_for(tmp_path, StreamLimits(idle_seconds=0.5, max_seconds=1.5)) as (stub, settings):
        run_id = stub.CreateRun(pb.CreateRunRequest()).run.info.run_id
        stop = threading.Event()

        def requests() -> Iterator[pb.UploadArtifactRequest]:
            yield frames(run_id, "m.bin", [], None)[0]
            while not stop.wait(0.1):
                yield pb.UploadArtifactRequest(chunk=b"x")

        started = time.monotonic()
        try:
            code, info, _ = error_info(lambda: stub.UploadArtifact(requests(), timeout=30))
        finally:
            stop.set()
        assert 1.5 <= time.monotonic() - started < 10
        assert (code, info.reason, info.metadata["limit_seconds"]) == (DEADLINE, "STREAM_TOO_LONG", "1.5")
        assert list(stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, recursive=True)).files) == []
        assert stored_files(Path(settings.artifact_root.removeprefix("file://"))) == []


def test_streams_within_the_limits_are_untouched(tmp_path: Path) -> None:
    """Uploads and metric streams one after another, each slot given back, none cut."""
    with stub_for(tmp_path, StreamLimits(idle_seconds=2, max_seconds=30)) as (stub, _):
        run_id = stub.CreateRun(pb.CreateRunRequest()).run.info.run_id
        for i in range(2 * WORKERS):
            data = bytes([i]) * 100
            stub.UploadArtifact(iter(frames(run_id, f"f{i}.bin", [data], end_of(data))), timeout=10)
            batch = pb.LogMetricsRequest(run_id=run_id, metrics=[pb.Metric(key="m", value=i, step=i)])
            assert stub.LogMetrics(iter([batch]), timeout=10).stored_count == 1
        listed = stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, recursive=True)).files
        assert len(listed) == 2 * WORKERS


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, StreamLimits(30.0, 3600.0, None)),
        (
            {
                "MODELREG_STREAM_IDLE_SECONDS": "5",
                "MODELREG_STREAM_MAX_SECONDS": "60",
                "MODELREG_MAX_STREAMS": "15",
            },
            StreamLimits(5.0, 60.0, 15),
        ),
    ],
)
def test_stream_settings(env: dict[str, str], expected: StreamLimits) -> None:
    assert EnvReader(env).stream_limits(16) == expected
    assert expected.concurrent(16) == (expected.max_streams or 12)


def test_the_stream_bound_stays_below_the_workers() -> None:
    with pytest.raises(ConfigError, match="MODELREG_MAX_STREAMS must be between 1 and 15"):
        EnvReader({"MODELREG_MAX_STREAMS": "16"}).stream_limits(16)
    assert [StreamLimits().concurrent(w) for w in (1, 2, 4, 8, 16)] == [1, 1, 3, 6, 12]
