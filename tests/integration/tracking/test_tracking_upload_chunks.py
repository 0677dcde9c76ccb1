"""TrackingClient.log_artifact_chunks: bytes relayed from an iterable, sent once, whole or absent."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelreg import TrackingClient
from modelreg.exceptions import DataLoss, InvalidArgument, ResourceExhausted
from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1 import tracking_pb2_grpc as pb_grpc
from modelreg_server.streams import StreamLimits

from .conftest import Tracking, running, stored_files
from .test_tracking_stream_limits import settings_for, silent_uploads
from .test_tracking_upload_integrity import artifact_dir

MiB = 1024 * 1024


class Counted:
    """An iterable of chunks that counts how often it is iterated (a retry would iterate it again)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.iterations = 0

    def __iter__(self) -> Iterator[bytes]:
        self.iterations += 1
        return iter(self.chunks)


def test_chunks_of_any_size_are_stored_as_one_file(tracking: Tracking, tmp_path: Path) -> None:
    with TrackingClient(tracking.target) as client:
        run_id = client.create_run("0").info.run_id
        pieces = [os.urandom(n) for n in (0, 5, 3 * MiB + 7, 1, MiB)]
        data = b"".join(pieces)
        stored = client.log_artifact_chunks(run_id, "model/weights.bin", iter(pieces))
        assert (stored.path, stored.file_size, stored.sha256) == (
            "model/weights.bin",
            len(data),
            hashlib.sha256(data).hexdigest(),
        )
        local = Path(client.download_artifacts(run_id, "model/weights.bin", tmp_path / "downloaded"))
        assert local.read_bytes() == data


def test_a_mismatch_with_the_expected_digest_stores_nothing(tracking: Tracking) -> None:
    with TrackingClient(tracking.target) as client:
        run_id = client.create_run("0").info.run_id
        with pytest.raises(InvalidArgument) as refused:
            client.log_artifact_chunks(
                run_id, "f.bin", [b"abc"], expected_sha256=hashlib.sha256(b"abd").hexdigest()
            )
        assert refused.value.reason == "DIGEST_MISMATCH"
        assert client.list_artifacts(run_id) == []
    assert stored_files(artifact_dir(tracking.settings)) == []


def test_an_error_raised_by_the_chunks_is_raised_and_stores_nothing(tracking: Tracking) -> None:
    class BodyBroke(Exception):
        pass

    def chunks() -> Iterator[bytes]:
        yield os.urandom(2 * MiB)
        raise BodyBroke

    with TrackingClient(tracking.target) as client:
        run_id = client.create_run("0").info.run_id
        with pytest.raises(BodyBroke):
            client.log_artifact_chunks(run_id, "f.bin", chunks())
        assert client.list_artifacts(run_id) == []
    assert stored_files(artifact_dir(tracking.settings)) == []


def test_a_refused_stream_is_raised_not_retried(tmp_path: Path) -> None:
    """log_artifact retries TOO_MANY_STREAMS; chunks cannot be sent twice, so this raises it."""
    with running(settings_for(tmp_path, StreamLimits(max_streams=1))) as tracking:
        client = TrackingClient(tracking.target, retry_seconds=60)
        run_id = client.create_run("0").info.run_id
        chunks = Counted([b"x" * 100])
        with silent_uploads(tracking.target, run_id, 1), pytest.raises(ResourceExhausted) as refused:
            client.log_artifact_chunks(run_id, "f.bin", chunks)
        # Refused at once: never tried again, the chunks taken at most once.
        assert (refused.value.reason, client._rpc.retried) == ("TOO_MANY_STREAMS", 0)
        assert chunks.iterations <= 1
        assert client.list_artifacts(run_id) == []
        client.close()


class StoresOtherBytes(pb_grpc.TrackingServiceServicer):
    """A tracking service that reads an upload whole and answers that it stored other bytes."""

    def UploadArtifact(self, request_iterator: Iterator[pb.UploadArtifactRequest], context: Any) -> Any:
        path = next(request_iterator).metadata.path
        received = b"".join(r.chunk for r in request_iterator if r.WhichOneof("payload") == "chunk")
        other = received + b"!"
        return pb.UploadArtifactResponse(
            file=pb.FileInfo(path=path, file_size=len(other), sha256=hashlib.sha256(other).hexdigest())
        )


UPLOADS: dict[str, Callable[[TrackingClient, Path], object]] = {
    "chunks": lambda client, local: client.log_artifact_chunks("a" * 32, local.name, [local.read_bytes()]),
    "file": lambda client, local: client.log_artifact("a" * 32, local),
}


@pytest.mark.parametrize("upload", UPLOADS)
def test_a_service_answering_another_digest_is_data_loss(tmp_path: Path, upload: str) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    pb_grpc.add_TrackingServiceServicer_to_server(StoresOtherBytes(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    local = tmp_path / "weights.bin"
    local.write_bytes(os.urandom(3 * MiB))
    try:
        with TrackingClient(f"127.0.0.1:{port}") as client, pytest.raises(DataLoss) as lost:
            UPLOADS[upload](client, local)
        assert (lost.value.reason, lost.value.metadata["path"]) == ("DIGEST_MISMATCH", "weights.bin")
    finally:
        server.stop(None)
