"""TrackingLineage against a scripted tracking client: concurrency, error precedence, deadline.

The integration suite checks the same answers against the real tracking service; here each
call's answer and timing are controlled, so the order in which answers arrive can be forced.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg import exceptions, wire
from modelreg.entities import FileInfo, Run, RunData, RunInfo
from modelreg_server.context import CallContext
from modelreg_server.errors import ErrorKind, ServiceError
from registry_service import lineage_codec
from registry_service.domain.entities import FileDigest
from registry_service.lineage import TrackingLineage

CTX = CallContext("alice", "req-2")
RUN = "d" * 32
ROOT = f"file:///artifacts/1/{RUN}/artifacts"
WAIT = 5.0  # far above any real wait: only a broken implementation reaches it


def _run(stage: str = "active") -> Run:
    info = RunInfo(RUN, "1", "train", "FINISHED", 1, 2, ROOT, stage)
    return Run(info, RunData(metrics={"rmse": 0.5}, params={"alpha": "1"}, tags={"git": "abc"}))


Answer = Callable[[], object]


def _raise(error: Exception) -> Answer:
    def answer() -> object:
        raise error

    return answer


@dataclass
class ScriptedTracking:
    """Answers each call from a script; records the calls and the request id each one carried."""

    run: Answer = _run
    sealed: Answer = lambda: [
        FileInfo("model/MLmodel", False, 3, "aa"),
        FileInfo("model/sub/w.bin", False, 9, "bb"),
    ]
    # What the run holds now, by artifact path: what artifact_stream answers.
    stored: dict[str, tuple[FileInfo, bytes]] = field(default_factory=dict)
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    seal_started: threading.Event = field(default_factory=threading.Event)
    # Raised by a download when it opens, or after its first message (tracking failing midway).
    download_fails: Exception | None = None
    download_fails_midway: Exception | None = None
    # Every download opened, kept (so none is closed by being collected).
    streams: list[Generator[FileInfo | memoryview, None, None]] = field(default_factory=list)

    def _called(self, name: str) -> None:
        self.calls.append((name, wire.forwarded_request_id()))

    def get_run(self, run_id: str) -> Run:
        self._called("GetRun")
        answer = self.run()
        assert isinstance(answer, Run)
        return answer

    def seal_artifacts(self, run_id: str, path: str) -> list[FileInfo]:
        self._called("SealArtifacts")
        self.seal_started.set()
        answer = self.sealed()
        assert isinstance(answer, list)
        return answer

    def artifact_stream(self, run_id: str, path: str) -> Generator[FileInfo | memoryview, None, None]:
        self._called(f"DownloadArtifact {path}")
        if self.download_fails is not None:
            raise self.download_fails
        if path not in self.stored:
            raise exceptions.NotFound("no artifact")
        info, content = self.stored[path]
        midway = self.download_fails_midway

        def stream() -> Generator[FileInfo | memoryview, None, None]:
            yield info
            if midway is not None:
                raise midway
            yield memoryview(content)

        self.streams.append(stream())
        return self.streams[-1]

    def close(self) -> None:
        pass


@pytest.fixture
def tracking() -> ScriptedTracking:
    return ScriptedTracking()


@pytest.fixture
def lineage(tracking: ScriptedTracking) -> Iterator[TrackingLineage]:
    checker = TrackingLineage(tracking, timeout=WAIT, max_checks=2)
    yield checker
    checker.close()


def fails(call: Callable[[], object]) -> tuple[ErrorKind, str]:
    with pytest.raises(ServiceError) as info:
        call()
    return info.value.kind, info.value.reason


def test_a_runs_source_asks_for_run_and_artifact_at_once(
    tracking: ScriptedTracking, lineage: TrackingLineage
) -> None:
    # GetRun answers only once SealArtifacts has started: a sequential check would wait for ever.
    tracking.run = lambda: _run() if tracking.seal_started.wait(WAIT) else None
    record = lineage_codec.decode(lineage.fetch(CallContext("alice", "req-1"), RUN, f"runs:/{RUN}/model"))
    assert (record.artifact_path, record.params, record.metrics) == ("model", {"alpha": "1"}, {"rmse": 0.5})
    assert record.files == (FileDigest("MLmodel", 3, "aa"), FileDigest("sub/w.bin", 9, "bb"))
    # Every call, on whichever thread, carries the registry call's request id.
    assert sorted(tracking.calls) == [("GetRun", "req-1"), ("SealArtifacts", "req-1")]


def test_a_file_source_is_recorded_by_its_name(tracking: ScriptedTracking, lineage: TrackingLineage) -> None:
    tracking.sealed = lambda: [FileInfo("model.pkl", False, 10, "cc")]
    record = lineage_codec.decode(lineage.fetch(CTX, RUN, f"{ROOT}/model.pkl"))
    assert (record.artifact_path, record.files) == ("model.pkl", (FileDigest("model.pkl", 10, "cc"),))


def test_run_answers_come_first_whatever_arrives_first(
    tracking: ScriptedTracking, lineage: TrackingLineage
) -> None:
    tracking.sealed = _raise(exceptions.NotFound("no artifact"))

    def late(answer: Answer) -> Answer:
        def wait_then_answer() -> object:
            time.sleep(0.05)  # the seal's NotFoundError is in before the run's answer
            return answer()

        return wait_then_answer

    tracking.run = late(_raise(exceptions.NotFound("no run")))
    assert fails(lambda: lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")) == (
        ErrorKind.FAILED_PRECONDITION,
        "RUN_NOT_FOUND",
    )
    tracking.run = late(lambda: _run("deleted"))
    assert fails(lambda: lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")) == (
        ErrorKind.FAILED_PRECONDITION,
        "RUN_DELETED",
    )
    tracking.run = late(_run)
    assert fails(lambda: lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")) == (
        ErrorKind.FAILED_PRECONDITION,
        "ARTIFACT_NOT_FOUND",
    )


def test_an_invalid_source_is_reported_after_the_run_checks(
    tracking: ScriptedTracking, lineage: TrackingLineage
) -> None:
    escaping = f"runs:/{RUN}/../other/model"
    tracking.run = _raise(exceptions.NotFound("no run"))
    assert fails(lambda: lineage.fetch(CTX, RUN, escaping)) == (
        ErrorKind.FAILED_PRECONDITION,
        "RUN_NOT_FOUND",
    )
    tracking.run = _run
    tracking.calls.clear()
    assert fails(lambda: lineage.fetch(CTX, RUN, escaping)) == (ErrorKind.INVALID_ARGUMENT, "INVALID_SOURCE")
    assert [name for name, _ in tracking.calls] == ["GetRun"]  # no artifact call for a bad path
    tracking.sealed = _raise(exceptions.InvalidArgument("bad path"))
    assert fails(lambda: lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_SOURCE",
    )


def test_tracking_failures_and_the_deadline_are_unavailable(tracking: ScriptedTracking) -> None:
    tracking.sealed = _raise(exceptions.Unavailable("down"))
    checker = TrackingLineage(tracking, timeout=0.2, max_checks=1)
    try:
        assert fails(lambda: checker.fetch(CTX, RUN, f"runs:/{RUN}/model")) == (
            ErrorKind.UNAVAILABLE,
            "TRACKING_UNAVAILABLE",
        )
        release = threading.Event()
        tracking.sealed = lambda: release.wait(WAIT)  # an artifact call that outlives the check
        started = time.monotonic()
        assert fails(lambda: checker.fetch(CTX, RUN, f"runs:/{RUN}/model")) == (
            ErrorKind.UNAVAILABLE,
            "TRACKING_UNAVAILABLE",
        )
        assert time.monotonic() - started < WAIT
        release.set()
    finally:
        checker.close()


def _stored(path: str, content: bytes, sha256: str | None = None) -> tuple[FileInfo, bytes]:
    return FileInfo(path, False, len(content), sha256 or hashlib.sha256(content).hexdigest()), content


def test_a_file_is_served_only_while_the_run_holds_its_registered_digest(
    tracking: ScriptedTracking, lineage: TrackingLineage
) -> None:
    content = b"weights"
    tracking.sealed = lambda: [FileInfo("model/w.bin", False, 7, hashlib.sha256(content).hexdigest())]
    encoded = lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")
    tracking.stored["model/w.bin"] = _stored("model/w.bin", content)
    opened = lineage.open_file(CTX, encoded, "w.bin")
    assert opened is not None and b"".join(opened.chunks) == content
    assert lineage.open_file(CTX, encoded, "other.bin") is None  # not a file of the version
    # A version registered before sealing existed can still meet a rewritten file: refused.
    tracking.stored["model/w.bin"] = _stored("model/w.bin", b"rewritten")
    assert fails(lambda: lineage.open_file(CTX, encoded, "w.bin")) == (ErrorKind.DATA_LOSS, "DIGEST_MISMATCH")


def test_a_version_registered_from_one_file_is_served_from_that_file(
    tracking: ScriptedTracking, lineage: TrackingLineage
) -> None:
    content = b"a single-file model"
    tracking.sealed = lambda: [FileInfo("model/model.skops", False, 19, hashlib.sha256(content).hexdigest())]
    encoded = lineage.fetch(CTX, RUN, f"runs:/{RUN}/model/model.skops")
    tracking.stored["model/model.skops"] = _stored("model/model.skops", content)
    opened = lineage.open_file(CTX, encoded, "model.skops")
    assert opened is not None and b"".join(opened.chunks) == content
    # A directory holding one file of its own name is recorded alike: the file below it is found.
    tracking.sealed = lambda: [FileInfo("m/m", False, 19, hashlib.sha256(content).hexdigest())]
    tracking.stored = {"m/m": _stored("m/m", content)}
    opened = lineage.open_file(CTX, lineage.fetch(CTX, RUN, f"runs:/{RUN}/m"), "m")
    assert opened is not None and b"".join(opened.chunks) == content


def test_a_reader_that_stops_early_closes_the_download(
    tracking: ScriptedTracking, lineage: TrackingLineage
) -> None:
    content = b"an MLmodel over the cap"
    tracking.sealed = lambda: [FileInfo("model/MLmodel", False, 23, hashlib.sha256(content).hexdigest())]
    encoded = lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")
    tracking.stored["model/MLmodel"] = _stored("model/MLmodel", content)
    opened = lineage.open_file(CTX, encoded, "MLmodel")
    assert opened is not None and next(opened.chunks) == content
    assert tracking.streams[-1].gi_frame is not None  # the download is open, suspended
    opened.chunks.close()
    assert tracking.streams[-1].gi_frame is None  # closed: the call to tracking is cancelled


def test_a_run_deleted_between_its_check_and_the_seal_is_deleted(
    tracking: ScriptedTracking, lineage: TrackingLineage
) -> None:
    tracking.sealed = _raise(exceptions.FailedPrecondition("deleted", reason="RUN_DELETED"))
    assert fails(lambda: lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")) == (
        ErrorKind.FAILED_PRECONDITION,
        "RUN_DELETED",
    )


def test_bytes_that_differ_from_the_manifest_end_the_stream_with_data_loss(
    tracking: ScriptedTracking, lineage: TrackingLineage
) -> None:
    registered = hashlib.sha256(b"weights").hexdigest()
    tracking.sealed = lambda: [FileInfo("model/w.bin", False, 7, registered)]
    encoded = lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")
    # The manifest still vouches for the registered digest; the stored object was replaced.
    tracking.stored["model/w.bin"] = _stored("model/w.bin", b"replaced", sha256=registered)
    opened = lineage.open_file(CTX, encoded, "w.bin")
    assert opened is not None
    assert fails(lambda: b"".join(opened.chunks)) == (ErrorKind.DATA_LOSS, "DIGEST_MISMATCH")


class _FailedCall(grpc.RpcError):
    """What a gRPC call that failed with a status raises, for the client's own translation."""

    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        self._code = code
        status = status_pb2.Status(code=code.value[0], message="it failed")
        if reason:
            status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="tracking.modelreg"))
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._status.message

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return (("grpc-status-details-bin", self._status.SerializeToString()),)


grpc.Call.register(_FailedCall)

# Codes that mean something about the run or the caller's right to it, answered as such.
_ANSWERS = {"NOT_FOUND", "INVALID_ARGUMENT", "OUT_OF_RANGE", "FAILED_PRECONDITION", "PERMISSION_DENIED"}
_ANSWERS |= {"UNAUTHENTICATED"}
_FAILURES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]


@settings(max_examples=150, deadline=None)
@given(
    code=st.sampled_from(_FAILURES),
    reason=st.sampled_from(["", "TOO_MANY_STREAMS", "RUN_TOO_LARGE"]),
    step=st.sampled_from(["GetRun", "SealArtifacts", "DownloadArtifact", "midway"]),
)
def test_every_failure_of_tracking_is_a_defined_registry_error(
    code: grpc.StatusCode, reason: str, step: str
) -> None:
    """Whatever tracking answers, in either the registration's calls or a file download, the
    registry answers a defined error, never INTERNAL: tracking's TOO_MANY_STREAMS as its own
    (a client tries again later), a status that says nothing about the run as
    TRACKING_UNAVAILABLE."""
    tracking = ScriptedTracking()
    lineage = TrackingLineage(tracking, timeout=WAIT, max_checks=1)
    content = b"weights"
    tracking.sealed = lambda: [FileInfo("model/w.bin", False, 7, hashlib.sha256(content).hexdigest())]
    tracking.stored["model/w.bin"] = _stored("model/w.bin", content)
    encoded = lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")
    error = exceptions.from_rpc_error(_FailedCall(code, reason))
    if step == "GetRun":
        tracking.run = _raise(error)
    elif step == "SealArtifacts":
        tracking.sealed = _raise(error)
    elif step == "DownloadArtifact":
        tracking.download_fails = error
    else:
        tracking.download_fails_midway = error

    def call() -> object:
        if step in ("GetRun", "SealArtifacts"):
            return lineage.fetch(CTX, RUN, f"runs:/{RUN}/model")
        opened = lineage.open_file(CTX, encoded, "w.bin")
        assert opened is not None
        return b"".join(opened.chunks)

    try:
        kind, answered = fails(call)
    finally:
        lineage.close()
    assert kind is not ErrorKind.INTERNAL
    if (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS"):
        assert (kind, answered) == (ErrorKind.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS")
    elif code.name not in _ANSWERS:
        assert (kind, answered) == (ErrorKind.UNAVAILABLE, "TRACKING_UNAVAILABLE")
