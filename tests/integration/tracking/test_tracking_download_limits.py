"""Server streams cannot take the server's threads: downloads share the bound on concurrent
streams with uploads, and a download whose client stops reading is cancelled once its pending
message has waited the idle limit, or once it has lasted the total limit (modelreg_server.streams).

The clients here stop reading after the first message; with the channel's flow-control windows
kept small and a file of many chunks, the server's send really blocks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from modelreg import TrackingClient
from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1.tracking_pb2_grpc import TrackingServiceStub
from modelreg_server.streams import StreamLimits

from .conftest import Tracking, rpc_error, running
from .test_tracking_stream_limits import UNARY_CALLS, UNARY_DEADLINE, settings_for

WORKERS = 8  # as the suites' servers: the bound is then 6, the reserve 2
STALLED = 16
CHUNKS = 24  # of 1 MiB: far more than any window and socket buffer hold
# No BDP probing and a small look-ahead: the client's window stays near 64 KiB, so a client that
# stops reading stops the server's send within a chunk.
SMALL_WINDOWS = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 64 * 1024)]


@contextmanager
def with_big_file(tmp_path: Path, limits: StreamLimits) -> Iterator[tuple[Tracking, str]]:
    """A server under ``limits`` and a run holding ``big/big.bin`` of CHUNKS MiB."""
    with running(replace(settings_for(tmp_path, limits), workers=WORKERS)) as tracking:
        client = TrackingClient(tracking.target)
        run_id = client.create_run(client.create_experiment("downloads").experiment_id).info.run_id
        big = tmp_path / "big.bin"
        big.write_bytes(bytes(range(256)) * (CHUNKS * 4096))
        client.log_artifact(run_id, big, "big")
        client.close()
        yield tracking, run_id


@contextmanager
def stalled_downloads(target: str, run_id: str, count: int) -> Iterator[list[object]]:
    """``count`` downloads of the big file on a channel of their own, each reading its first
    message and then nothing until the block ends. Yields, per download, what its first read
    gave within 5 s: the error it raised (refused), FIRST (admitted, now stalled) or None (not
    even started: no thread took it)."""
    channel = grpc.insecure_channel(target, options=SMALL_WINDOWS)
    stub = TrackingServiceStub(channel)
    request = pb.DownloadArtifactRequest(run_id=run_id, path="big/big.bin")
    calls = [stub.DownloadArtifact(request, timeout=60) for _ in range(count)]

    def first(call: Iterator[pb.DownloadArtifactResponse]) -> object:
        try:
            next(call)
            return FIRST
        except grpc.RpcError as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(first, call) for call in calls]
        wait(futures, timeout=5)
        try:
            yield [f.result() if f.done() else None for f in futures]
        finally:
            for call in calls:
                call.cancel()
            channel.close()


FIRST = "first message read"


def test_stalled_downloads_leave_unary_calls_a_thread(tmp_path: Path) -> None:
    """Downloads that read one message and stop: all but the bound are refused at once, and
    another client's GetRun succeeds every time while they hang. Were the unary calls left without
    a thread, each would wait for the stalled downloads' 60 s idle limit and pass its 20 s deadline."""
    with (
        with_big_file(tmp_path, StreamLimits(idle_seconds=60)) as (tracking, run_id),
        stalled_downloads(tracking.target, run_id, STALLED) as firsts,
    ):
        time.sleep(0.5)  # the admitted ones are blocked in their sends
        for _ in range(UNARY_CALLS):
            got = tracking.stub.GetRun(pb.GetRunRequest(run_id=run_id), timeout=UNARY_DEADLINE)
            assert got.run.info.run_id == run_id
        assert firsts.count(FIRST) == 6
        refused = [e for e in firsts if isinstance(e, grpc.RpcError)]
        assert len(refused) == STALLED - 6
        assert {rpc_error(lambda e=e: _raise(e)) for e in refused} == {
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS")
        }


def _raise(error: grpc.RpcError) -> None:
    raise error


def test_a_stalled_download_is_cancelled_after_the_idle_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every slot taken by stalled downloads: once they have been idle 0.5 s they are cancelled,
    the call log says why, and their slots serve the next download in full."""
    caplog.set_level(logging.INFO, logger="modelreg.calls")
    with (
        with_big_file(tmp_path, StreamLimits(idle_seconds=0.5)) as (tracking, run_id),
        stalled_downloads(tracking.target, run_id, 6) as firsts,
    ):
        assert firsts == [FIRST] * 6
        time.sleep(2)
        cut = [r for r in caplog.records if getattr(r, "call", {}).get("method") == "DownloadArtifact"]
        assert [(r.call["code"], r.call["reason"]) for r in cut] == [  # type: ignore[attr-defined]
            ("DEADLINE_EXCEEDED", "STREAM_IDLE")
        ] * 6
        assert all("reason=STREAM_IDLE" in r.getMessage() for r in cut)
        # The slots are free again, while the stalled clients are still connected.
        client = TrackingClient(tracking.target)
        target = client.download_artifacts(run_id, "big/big.bin", tmp_path / "again")
        assert Path(target).read_bytes() == (tmp_path / "big.bin").read_bytes()
        client.close()


def slow_download(target: str, run_id: str, pause: float) -> tuple[int, float]:
    """The big file, read one message every ``pause`` seconds; (bytes received, seconds taken).
    A refused start is tried again, as a client would."""
    channel = grpc.insecure_channel(target, options=SMALL_WINDOWS)
    stub = TrackingServiceStub(channel)
    started = time.monotonic()
    try:
        while True:
            received = 0
            try:
                for response in stub.DownloadArtifact(
                    pb.DownloadArtifactRequest(run_id=run_id, path="big/big.bin"), timeout=30
                ):
                    received += len(response.chunk)
                    time.sleep(pause)
                return received, time.monotonic() - started
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:  # type: ignore[attr-defined]
                    raise
                time.sleep(0.2)
    finally:
        channel.close()


def test_a_slow_download_that_keeps_reading_completes(tmp_path: Path) -> None:
    """While stalled downloads hold every slot and are cut, a download that reads a chunk every
    0.2 s gets a slot and runs well past the 1 s idle limit to its end."""
    with (
        with_big_file(tmp_path, StreamLimits(idle_seconds=1)) as (tracking, run_id),
        stalled_downloads(tracking.target, run_id, WORKERS),
    ):
        received, seconds = slow_download(tracking.target, run_id, 0.2)
        assert received == CHUNKS * 1024 * 1024
        assert seconds > CHUNKS * 0.2


def test_a_download_is_cancelled_at_its_total_limit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A client that reads often enough never goes idle, but the stream still ends at 2 s."""
    caplog.set_level(logging.INFO, logger="modelreg.calls")
    with with_big_file(tmp_path, StreamLimits(idle_seconds=1, max_seconds=2)) as (tracking, run_id):
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            slow_download(tracking.target, run_id, 0.2)
        assert caught.value.code() == grpc.StatusCode.CANCELLED  # type: ignore[attr-defined]
        assert 2 <= time.monotonic() - started < 10
        time.sleep(0.2)
        cut = [r for r in caplog.records if getattr(r, "call", {}).get("method") == "DownloadArtifact"]
        assert [(r.call["code"], r.call["reason"]) for r in cut] == [  # type: ignore[attr-defined]
            ("DEADLINE_EXCEEDED", "STREAM_TOO_LONG")
        ]


def test_downloads_within_the_limits_are_untouched(tmp_path: Path) -> None:
    """More downloads than slots, one after another: each slot given back, none cut."""
    with with_big_file(tmp_path, StreamLimits(idle_seconds=2, max_seconds=30)) as (tracking, run_id):
        client = TrackingClient(tracking.target)
        expected = (tmp_path / "big.bin").read_bytes()
        for i in range(WORKERS + 2):
            assert (
                Path(client.download_artifacts(run_id, "big/big.bin", tmp_path / f"d{i}")).read_bytes()
                == expected
            )
        client.close()
        # With no server stream left, the service's watchdog thread ends.
        until = time.monotonic() + 2
        while [t for t in threading.enumerate() if t.name == "modelreg-stream-watchdog"]:
            assert time.monotonic() < until
            time.sleep(0.05)
