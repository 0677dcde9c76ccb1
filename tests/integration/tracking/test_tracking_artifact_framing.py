"""The artifact streams' chunk framing on the server (tracking_service.api.servicer.add_to_server):
every valid encoding of a message is read as the generated parser reads it, and the servicer
still works when registered through the generated code alone."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from modelreg import wire as transfer
from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg.tracking.v1 import tracking_pb2_grpc as pb_grpc
from modelreg_server.db import create_db_engine, ensure_schema
from modelreg_server.interceptor import ServiceInterceptor
from tracking_service.api.servicer import SERVICE_NAME, TrackingServicer
from tracking_service.artifacts import FileArtifactStore
from tracking_service.config import Settings
from tracking_service.domain.service import TrackingService
from tracking_service.server import ERROR_DOMAIN
from tracking_service.store import MIGRATIONS, UPGRADE_COMMAND
from tracking_service.store.sql import SqlTrackingStore

from .conftest import Tracking, rpc_error

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def upload_frames(channel: grpc.Channel, frames: list[bytes]) -> pb.FileInfo:
    """UploadArtifact with each message given as its serialized bytes."""
    call = channel.stream_unary(
        f"/{SERVICE_NAME}/UploadArtifact",
        request_serializer=None,
        response_deserializer=pb.UploadArtifactResponse.FromString,
    )
    response: pb.UploadArtifactResponse = call(iter(frames), timeout=10)
    return response.file


def download(stub: pb_grpc.TrackingServiceStub, run_id: str, path: str) -> tuple[pb.FileInfo, bytes]:
    responses = list(stub.DownloadArtifact(pb.DownloadArtifactRequest(run_id=run_id, path=path), timeout=10))
    assert responses[0].WhichOneof("payload") == "metadata"
    assert all(r.WhichOneof("payload") == "chunk" for r in responses[1:])
    return responses[0].metadata, b"".join(r.chunk for r in responses[1:])


def new_run_id(stub: pb_grpc.TrackingServiceStub) -> str:
    return stub.CreateRun(pb.CreateRunRequest()).run.info.run_id


@pytest.mark.parametrize(
    ("frame", "content"),
    [
        (transfer.encode_chunk(b"plain"), b"plain"),
        # A non-minimal varint length (5 as 0x85 0x00).
        (b"\x12\x85\x00hello", b"hello"),
        # A chunk followed by an unknown field 15 (varint 1).
        (transfer.encode_chunk(b"tail") + b"\x78\x01", b"tail"),
        # Two chunk fields: protobuf keeps the last one.
        (transfer.encode_chunk(b"first") + transfer.encode_chunk(b"second"), b"second"),
        (transfer.encode_chunk(b""), b""),
    ],
)
def test_upload_reads_every_valid_chunk_encoding(tracking: Tracking, frame: bytes, content: bytes) -> None:
    run_id = new_run_id(tracking.stub)
    metadata = transfer.encode_metadata(pb.UploadArtifactMetadata(run_id=run_id, path="f.bin"))
    expected = b"head:" + content
    end = transfer.encode_end(len(expected), hashlib.sha256(expected).hexdigest())
    stored = upload_frames(tracking.channel, [metadata, transfer.encode_chunk(b"head:"), frame, end])
    assert (stored.file_size, stored.sha256) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert download(tracking.stub, run_id, "f.bin")[1] == expected


def test_upload_refuses_metadata_after_the_first_message(tracking: Tracking) -> None:
    run_id = new_run_id(tracking.stub)
    metadata = pb.UploadArtifactMetadata(run_id=run_id, path="f.bin")
    requests = [
        pb.UploadArtifactRequest(metadata=metadata),
        pb.UploadArtifactRequest(chunk=b"1"),
        pb.UploadArtifactRequest(metadata=metadata),
    ]
    assert rpc_error(lambda: tracking.stub.UploadArtifact(iter(requests))) == (INVALID, "DUPLICATE_METADATA")
    # The chunk-first refusal also holds when the first frame is a chunk the fast path decodes.
    frames = [transfer.encode_chunk(b"1")]
    assert rpc_error(lambda: upload_frames(tracking.channel, frames)) == (INVALID, "MISSING_METADATA")


@pytest.mark.parametrize(
    "frame",
    [b"\x12\x09hello", b"\xff\xff\xff", b"", b"\x78\x01"],
    ids=["truncated-chunk", "garbage", "empty", "unknown-field-only"],
)
def test_a_malformed_or_empty_upload_message_is_invalid_argument(tracking: Tracking, frame: bytes) -> None:
    run_id = new_run_id(tracking.stub)
    metadata = transfer.encode_metadata(pb.UploadArtifactMetadata(run_id=run_id, path="f.bin"))
    frames = [metadata, transfer.encode_chunk(b"head"), frame, transfer.encode_end(4, "0" * 64)]
    assert rpc_error(lambda: upload_frames(tracking.channel, frames)) == (INVALID, "MALFORMED_REQUEST")
    assert rpc_error(lambda: download(tracking.stub, run_id, "f.bin"))[1] == "ARTIFACT_NOT_FOUND"


@pytest.fixture
def generated_only(tracking_settings: Settings, tmp_path: Path) -> Iterator[pb_grpc.TrackingServiceStub]:
    """The servicer registered through the generated add_TrackingServiceServicer_to_server alone
    (behind the interceptor, which gives each call the context the servicer reads)."""
    engine = create_db_engine(tracking_settings.database_url)
    ensure_schema(engine, MIGRATIONS, auto_upgrade=True, fix_command=UPGRADE_COMMAND)
    store = SqlTrackingStore(engine, tracking_settings.artifact_root)
    store.ensure_default_experiment()
    servicer = TrackingServicer(
        TrackingService(store, FileArtifactStore(tmp_path / "artifacts"), [(tmp_path / "artifacts").as_uri()])
    )
    server = grpc.server(ThreadPoolExecutor(2), interceptors=[ServiceInterceptor("tracking", ERROR_DOMAIN)])
    pb_grpc.add_TrackingServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.TrackingServiceStub(channel)
    finally:
        channel.close()
        server.stop(None).wait()
        engine.dispose()


def test_generated_registration_moves_the_same_bytes(generated_only: pb_grpc.TrackingServiceStub) -> None:
    stub = generated_only
    run_id = new_run_id(stub)
    content = [b"a" * transfer.CHUNK_BYTES, b"b" * 10]
    requests = [
        pb.UploadArtifactRequest(metadata=pb.UploadArtifactMetadata(run_id=run_id, path="m/w.bin")),
        *(pb.UploadArtifactRequest(chunk=c) for c in content),
    ]
    digest = hashlib.sha256(b"".join(content)).hexdigest()
    requests.append(
        pb.UploadArtifactRequest(end=pb.UploadArtifactEnd(size=len(b"".join(content)), sha256=digest))
    )
    stored = stub.UploadArtifact(iter(requests), timeout=10).file
    assert (stored.file_size, stored.sha256) == (transfer.CHUNK_BYTES + 10, digest)
    metadata, data = download(stub, run_id, "m/w.bin")
    assert (metadata.sha256, data) == (digest, b"".join(content))
