"""Artifact chunks on the wire and the helper threads that move them to and from disk."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from google.protobuf.message import DecodeError

from modelreg import wire as transfer
from modelreg.tracking.v1 import tracking_pb2 as pb

MIB = transfer.CHUNK_BYTES


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, MIB])
def test_encoded_chunks_are_the_generated_encoding(size: int) -> None:
    chunk = os.urandom(size)
    encoded = transfer.encode_chunk(chunk)
    assert encoded == pb.UploadArtifactRequest(chunk=chunk).SerializeToString()
    decoded = transfer.decode_download(encoded)
    assert isinstance(decoded, memoryview) and decoded == chunk


def test_metadata_messages_decode_to_file_info() -> None:
    info = pb.FileInfo(path="model/weights.bin", file_size=3, sha256="ab" * 32)
    decoded = transfer.decode_download(pb.DownloadArtifactResponse(metadata=info).SerializeToString())
    assert decoded == info
    metadata = pb.UploadArtifactMetadata(run_id="r", path="p", expected_sha256="")
    assert pb.UploadArtifactRequest.FromString(transfer.encode_metadata(metadata)).metadata == metadata


@pytest.mark.parametrize(
    "data",
    [
        # Two chunk fields: protobuf keeps the last one.
        transfer.encode_chunk(b"first") + transfer.encode_chunk(b"second"),
        # A chunk followed by an unknown field 15 (varint 1).
        transfer.encode_chunk(b"second") + b"\x78\x01",
        # A non-minimal varint length (5 as 0x85 0x00).
        b"\x12\x85\x00hello",
        b"",
    ],
)
def test_unusual_but_valid_encodings_decode_as_the_generated_parser_does(data: bytes) -> None:
    expected = pb.DownloadArtifactResponse.FromString(data).chunk
    assert transfer.decode_download(data) == expected


def test_truncated_chunk_is_a_decode_error_downloading_and_no_payload_uploading() -> None:
    with pytest.raises(DecodeError):
        transfer.decode_download(transfer.encode_chunk(b"abcdef")[:-1])
    # The server's deserializer must not raise (gRPC would end the call INTERNAL): the servicer
    # refuses a message without a payload as INVALID_ARGUMENT.
    decoded = transfer.decode_upload(transfer.encode_chunk(b"abcdef")[:-1])
    assert isinstance(decoded, pb.UploadArtifactRequest) and decoded.WhichOneof("payload") is None


@pytest.mark.parametrize("size", [0, 1, 128, MIB])
def test_upload_chunks_decode_to_views(size: int) -> None:
    chunk = os.urandom(size)
    decoded = transfer.decode_upload(pb.UploadArtifactRequest(chunk=chunk).SerializeToString())
    assert isinstance(decoded, memoryview) and decoded == chunk


@pytest.mark.parametrize(
    "data",
    [
        pb.UploadArtifactRequest(
            metadata=pb.UploadArtifactMetadata(run_id="r", path="p")
        ).SerializeToString(),
        b"",
        # A chunk followed by an unknown field 15 (varint 1): left to the generated parser.
        transfer.encode_chunk(b"x") + b"\x78\x01",
    ],
)
def test_other_upload_messages_decode_as_the_generated_parser_does(data: bytes) -> None:
    assert transfer.decode_upload(data) == pb.UploadArtifactRequest.FromString(data)


def test_download_metadata_is_the_generated_encoding() -> None:
    info = pb.FileInfo(path="m/w.bin", file_size=7, sha256="cd" * 32)
    encoded = transfer.encode_download_metadata(info)
    assert pb.DownloadArtifactResponse.FromString(encoded).metadata == info


def test_writer_keeps_order_across_many_chunks(tmp_path: Path) -> None:
    chunks = [os.urandom(1000 + i) for i in range(50)]
    with (tmp_path / "f").open("wb") as out, transfer.ChunkWriter(out) as writer:
        for chunk in chunks:
            writer.write(memoryview(chunk))
    assert (tmp_path / "f").read_bytes() == b"".join(chunks)


class FailingFile(io.BytesIO):
    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.writes = 0

    def write(self, data: object) -> int:
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError(28, "No space left on device")
        return super().write(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("fail_at", [1, 3, 20])
def test_write_errors_reach_the_caller(fail_at: int) -> None:
    out = FailingFile(fail_at)
    with pytest.raises(OSError) as raised, transfer.ChunkWriter(out) as writer:
        for _ in range(20):
            writer.write(memoryview(b"x" * 10))
    assert raised.value.errno == 28


@pytest.mark.parametrize(
    "sizes",
    [[], [0], [10], [MIB], [MIB + 1], [5 * MIB + 123], [0, 7, 0, 3 * MIB, MIB - 1, 1]],
)
def test_chunk_messages_hash_and_encode_every_chunk(sizes: list[int]) -> None:
    """Chunks of any size go out in order, none over CHUNK_BYTES and none empty."""
    pieces = [os.urandom(size) for size in sizes]
    data = b"".join(pieces)
    digest = hashlib.sha256()
    items = list(transfer.chunk_messages(pieces, digest))
    chunks = [pb.UploadArtifactRequest.FromString(message).chunk for message, _ in items]
    assert b"".join(chunks) == data
    assert [len(c) for c in chunks] == [length for _, length in items]
    assert all(0 < len(c) <= MIB for c in chunks)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
