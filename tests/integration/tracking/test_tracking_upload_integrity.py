"""An upload is whole or absent: the stream's declared end, concurrent uploads to one path, and
staging left by a server or a client that died mid-upload."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1.tracking_pb2_grpc import TrackingServiceStub
from tests.conftest import Backend, S3Server
from tracking_service.artifacts import S3Options, open_artifact_store
from tracking_service.artifacts.base import STAGING_DIR
from tracking_service.config import Settings

from .conftest import Tracking, rpc_error, running, serving_process, stored_files

INVALID = grpc.StatusCode.INVALID_ARGUMENT
MiB = 1024 * 1024


def new_run_id(stub: TrackingServiceStub) -> str:
    return stub.CreateRun(pb.CreateRunRequest()).run.info.run_id


def frames(
    run_id: str, path: str, chunks: list[bytes], end: pb.UploadArtifactEnd | None
) -> list[pb.UploadArtifactRequest]:
    return [
        pb.UploadArtifactRequest(metadata=pb.UploadArtifactMetadata(run_id=run_id, path=path)),
        *(pb.UploadArtifactRequest(chunk=c) for c in chunks),
        *([pb.UploadArtifactRequest(end=end)] if end is not None else []),
    ]


def end_of(data: bytes) -> pb.UploadArtifactEnd:
    return pb.UploadArtifactEnd(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def error_info(call: Callable[[], object]) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return caught.value.code(), info, status.message  # type: ignore[attr-defined]


def assert_absent(stub: TrackingServiceStub, run_id: str, path: str) -> None:
    assert list(stub.ListArtifacts(pb.ListArtifactsRequest(run_id=run_id, recursive=True)).files) == []
    stat = pb.StatArtifactRequest(run_id=run_id, path=path)
    assert rpc_error(lambda: stub.StatArtifact(stat)) == (grpc.StatusCode.NOT_FOUND, "ARTIFACT_NOT_FOUND")


def artifact_dir(settings: Settings) -> Path:
    return Path(settings.artifact_root.removeprefix("file://"))


# ---------------------------------------------------------------- the declared end


@pytest.mark.parametrize("size", [0, 3, 2 * MiB + 5], ids=["empty", "small", "chunks"])
def test_upload_without_its_end_publishes_nothing(tracking: Tracking, size: int) -> None:
    """A client interrupted mid-file half-closes its stream as if it were done: without the end
    message nothing is stored, however many bytes arrived."""
    run_id = new_run_id(tracking.stub)
    data = os.urandom(size)
    chunks = [data[i : i + MiB] for i in range(0, size, MiB)]
    code, info, message = error_info(
        lambda: tracking.stub.UploadArtifact(iter(frames(run_id, "m.bin", chunks, None)))
    )
    assert (code, info.reason, info.metadata["field"]) == (INVALID, "INCOMPLETE_UPLOAD", "end")
    assert "end" in message
    assert_absent(tracking.stub, run_id, "m.bin")
    assert stored_files(artifact_dir(tracking.settings)) == []


def test_nothing_may_follow_the_end(tracking: Tracking) -> None:
    run_id = new_run_id(tracking.stub)
    requests = [*frames(run_id, "m.bin", [b"abc"], end_of(b"abc")), pb.UploadArtifactRequest(chunk=b"d")]
    code, info, _ = error_info(lambda: tracking.stub.UploadArtifact(iter(requests)))
    assert (code, info.reason, info.metadata["field"]) == (INVALID, "INCOMPLETE_UPLOAD", "end")
    assert_absent(tracking.stub, run_id, "m.bin")


@pytest.mark.parametrize(
    ("end", "reason", "field"),
    [
        (
            pb.UploadArtifactEnd(size=4, sha256=hashlib.sha256(b"abc").hexdigest()),
            "SIZE_MISMATCH",
            "end.size",
        ),
        (
            pb.UploadArtifactEnd(size=3, sha256=hashlib.sha256(b"abd").hexdigest()),
            "DIGEST_MISMATCH",
            "end.sha256",
        ),
    ],
    ids=["size", "sha256"],
)
def test_an_end_that_disagrees_publishes_nothing(
    tracking: Tracking, end: pb.UploadArtifactEnd, reason: str, field: str
) -> None:
    run_id = new_run_id(tracking.stub)
    code, info, message = error_info(
        lambda: tracking.stub.UploadArtifact(iter(frames(run_id, "m.bin", [b"ab", b"c"], end)))
    )
    assert (code, info.reason, info.metadata["field"]) == (INVALID, reason, field)
    assert field in message
    assert_absent(tracking.stub, run_id, "m.bin")
    assert stored_files(artifact_dir(tracking.settings)) == []


def test_a_failed_overwrite_keeps_the_previous_file(tracking: Tracking) -> None:
    run_id = new_run_id(tracking.stub)
    tracking.stub.UploadArtifact(iter(frames(run_id, "m.bin", [b"old"], end_of(b"old"))))
    for requests in (
        frames(run_id, "m.bin", [b"new"], None),
        frames(run_id, "m.bin", [b"new"], end_of(b"neu")),
    ):
        with pytest.raises(grpc.RpcError):
            tracking.stub.UploadArtifact(iter(requests))
    stat = tracking.stub.StatArtifact(pb.StatArtifactRequest(run_id=run_id, path="m.bin")).file
    assert (stat.file_size, stat.sha256) == (3, hashlib.sha256(b"old").hexdigest())
    assert (artifact_dir(tracking.settings) / "0" / run_id / "artifacts" / "m.bin").read_bytes() == b"old"


def test_an_upload_sealed_while_in_flight_replaces_nothing(tracking: Tracking) -> None:
    """The seal is checked under the run's lock before publishing: an upload that passed the
    early check and was sealed meanwhile leaves the sealed bytes in place."""
    stub = tracking.stub
    run_id = new_run_id(stub)
    stub.UploadArtifact(iter(frames(run_id, "model/w.bin", [b"v1"], end_of(b"v1"))))
    sent, sealed = threading.Event(), threading.Event()

    def requests() -> Iterator[pb.UploadArtifactRequest]:
        yield from frames(run_id, "model/w.bin", [b"v2"], None)
        sent.set()
        sealed.wait(10)
        yield pb.UploadArtifactRequest(end=end_of(b"v2"))

    future = stub.UploadArtifact.future(requests())
    assert sent.wait(10)
    stub.SealArtifacts(pb.SealArtifactsRequest(run_id=run_id, path="model"))
    sealed.set()
    assert rpc_error(future.result) == (grpc.StatusCode.FAILED_PRECONDITION, "ARTIFACT_SEALED")
    stat = stub.StatArtifact(pb.StatArtifactRequest(run_id=run_id, path="model/w.bin")).file
    assert stat.sha256 == hashlib.sha256(b"v1").hexdigest()
    assert (
        artifact_dir(tracking.settings) / "0" / run_id / "artifacts" / "model" / "w.bin"
    ).read_bytes() == b"v1"


# ---------------------------------------------------------------- concurrent uploads to one path

WRITERS = 6
TRIALS = 4


def upload_together(stub: TrackingServiceStub, run_id: str, path: str, contents: list[bytes]) -> None:
    """Uploads each of ``contents`` to ``path`` at once: each stream waits for all to have started."""
    barrier = threading.Barrier(len(contents))

    def upload(data: bytes) -> None:
        def requests() -> Iterator[pb.UploadArtifactRequest]:
            yield frames(run_id, path, [], None)[0]
            barrier.wait()
            for i in range(0, len(data), MiB):
                yield pb.UploadArtifactRequest(chunk=data[i : i + MiB])
            yield pb.UploadArtifactRequest(end=end_of(data))

        stub.UploadArtifact(requests(), timeout=60)

    with ThreadPoolExecutor(len(contents)) as pool:
        list(pool.map(upload, contents))  # raises the first failure


def race_one_path(stub: TrackingServiceStub, read_object: Callable[[str], bytes], size: int) -> None:
    """WRITERS uploads of different content to one path at once, TRIALS times: afterwards the
    manifest's digest is the stored object's, and the download verifies."""
    run = stub.CreateRun(pb.CreateRunRequest()).run
    run_id = run.info.run_id
    for trial in range(TRIALS):
        contents = [bytes([trial * WRITERS + w]) * size for w in range(WRITERS)]
        upload_together(stub, run_id, "model/w.bin", contents)
        stat = stub.StatArtifact(pb.StatArtifactRequest(run_id=run_id, path="model/w.bin")).file
        stored = read_object(f"{run.info.artifact_uri}/model/w.bin")
        assert stored in contents
        assert (stat.sha256, stat.file_size) == (hashlib.sha256(stored).hexdigest(), len(stored)), trial
        responses = list(stub.DownloadArtifact(pb.DownloadArtifactRequest(run_id=run_id, path="model/w.bin")))
        assert b"".join(r.chunk for r in responses[1:]) == stored


def test_concurrent_uploads_to_one_path_leave_manifest_and_file_agreeing(tracking: Tracking) -> None:
    store = open_artifact_store(tracking.settings.artifact_root, None)
    race_one_path(tracking.stub, lambda uri: b"".join(store.read(uri)), 3 * MiB)
    assert not [p for p in stored_files(artifact_dir(tracking.settings)) if STAGING_DIR in p.parts]


@pytest.mark.s3
@pytest.mark.parametrize("size", [2 * MiB, 9 * MiB], ids=["one-put", "staged"])
def test_concurrent_uploads_to_one_path_on_s3(
    backend: Backend, s3_server: S3Server, s3_bucket: str, tmp_path: Path, size: int
) -> None:
    if backend.name != "sqlite":
        pytest.skip("the S3 path does not depend on the database backend")
    s3 = S3Options(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    settings = Settings(
        host="127.0.0.1",
        port=0,
        database_url=backend.url,
        artifact_root=f"s3://{s3_bucket}",
        s3=s3,
        workers=8,
    )
    store = open_artifact_store(settings.artifact_root, s3)
    with running(settings) as started:
        race_one_path(started.stub, lambda uri: b"".join(store.read(uri)), size)


# ---------------------------------------------------------------- a server killed mid-upload


def test_staging_of_a_killed_server_is_removed_at_restart(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    staging = root / STAGING_DIR
    with serving_process(tmp_path) as (server, stub):
        run_id = new_run_id(stub)
        hold = threading.Event()

        def requests() -> Iterator[pb.UploadArtifactRequest]:
            yield frames(run_id, "big.bin", [], None)[0]
            for _ in range(8):
                yield pb.UploadArtifactRequest(chunk=b"x" * MiB)
            hold.wait(30)

        future = stub.UploadArtifact.future(requests())
        deadline = time.monotonic() + 20
        while not [p for p in stored_files(root) if STAGING_DIR in p.parts and p.stat().st_size >= 8 * MiB]:
            assert time.monotonic() < deadline, "the upload never reached the staging area"
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        hold.set()
        future.exception()  # type: ignore[no-untyped-call]
        left = [p for p in stored_files(root) if STAGING_DIR in p.parts]
        assert left, "a killed server leaves its staging behind"
    with serving_process(tmp_path) as (_, stub):
        assert stored_files(root) == []
        assert [p.name for p in staging.iterdir()] == []
        assert_absent(stub, run_id, "big.bin")


# ---------------------------------------------------------------- a client killed mid-upload

CLIENT = """
import sys, time
from modelreg import TrackingClient

target, run_id, path = sys.argv[1:4]
announced = False


def progress(done, total):
    global announced
    if done >= 8 * 1024 * 1024 and not announced:
        print("uploading", flush=True)
        announced = True
    time.sleep(0.02)  # about 1.5 s for the file: the signal lands mid-upload


TrackingClient(target).log_artifact(run_id, path, "data", progress=progress)
print("finished", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_client_killed_mid_upload_leaves_nothing(
    tracking: Tracking, tmp_path: Path, caplog: pytest.LogCaptureFixture, sig: signal.Signals
) -> None:
    caplog.set_level(logging.INFO)
    run_id = new_run_id(tracking.stub)
    big = tmp_path / "big.bin"
    with big.open("wb") as out:  # 64 MiB: sparse but for one random MiB
        out.truncate(64 * MiB)
        out.seek(32 * MiB)
        out.write(os.urandom(MiB))
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, tracking.target, run_id, str(big)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "uploading"
        client.send_signal(sig)
        client.wait(20)
        assert client.stdout.read().strip() == "", "the upload finished before the signal"
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    deadline = time.monotonic() + 20
    while not (upload_lines := [r for r in caplog.records if "method=UploadArtifact" in r.getMessage()]):
        assert time.monotonic() < deadline, "the server never finished the call"
        time.sleep(0.05)
    assert_absent(tracking.stub, run_id, "data/big.bin")
    assert stored_files(artifact_dir(tracking.settings)) == []
    assert ["code=CANCELLED" in r.getMessage() for r in upload_lines] == [True]
    assert [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()] == []
