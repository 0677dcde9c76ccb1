"""Behaviour shared by the file:// and s3:// artifact stores."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from minio import Minio

from modelreg_server.errors import ErrorKind, InvalidArgumentError, ServiceError
from tracking_service.artifacts import (
    ArtifactConfigError,
    ArtifactMissing,
    S3Options,
    StoredObject,
    open_artifact_store,
)
from tracking_service.artifacts import s3 as s3_module
from tracking_service.artifacts.base import STAGING_DIR
from tracking_service.artifacts.file import LOCK_NAME
from tracking_service.artifacts.s3 import PART_SIZE, STAGING_PREFIX, ChunkReader, HashedChunks

from .conftest import S3Server, Target, boto_client, s3_inventory, s3_options

MiB = 1024 * 1024


def odd_chunks(data: bytes, sizes: tuple[int, ...] = (1, 7919, 65_537, 1_048_583)) -> Iterator[bytes]:
    """Cuts data into chunks of cycling, deliberately unaligned sizes."""
    offset, i = 0, 0
    while offset < len(data):
        size = sizes[i % len(sizes)]
        yield data[offset : offset + size]
        offset += size
        i += 1


def failing_after(data: bytes, chunk: int = MiB) -> Iterator[bytes]:
    for offset in range(0, len(data), chunk):
        yield data[offset : offset + chunk]
    raise RuntimeError("client went away")


def read_all(target: Target, name: str, chunk_size: int = MiB) -> bytes:
    return b"".join(target.store.read(target.uri(name), chunk_size))


def assert_error(exc: ServiceError, kind: ErrorKind, reason: str) -> None:
    assert (exc.kind, exc.reason) == (kind, reason)


# PART_SIZE is the largest object S3 PUTs in one request; one byte more goes through staging.
SIZES = pytest.mark.parametrize(
    "size", [0, 10, 5 * MiB + 3, PART_SIZE, PART_SIZE + 1], ids=["empty", "small", "5MiB", "part", "part+1"]
)


@SIZES
def test_round_trip(target: Target, size: int) -> None:
    data = os.urandom(size)
    stored = target.store.write(target.uri("run/model/data.bin"), odd_chunks(data))
    assert stored == StoredObject(size, hashlib.sha256(data).hexdigest())
    assert read_all(target, "run/model/data.bin") == data
    assert target.inventory() == {"run/model/data.bin"}


@SIZES
def test_round_trip_of_views(target: Target, size: int) -> None:
    # The gRPC layer hands over views into the received messages, not bytes.
    data = os.urandom(size)
    stored = target.store.write(target.uri("views.bin"), (memoryview(c) for c in odd_chunks(data)))
    assert stored == StoredObject(size, hashlib.sha256(data).hexdigest())
    assert read_all(target, "views.bin") == data


def test_read_streams_in_chunk_size_blocks(target: Target) -> None:
    data = os.urandom(10_000)
    target.store.write(target.uri("f"), [data])
    blocks = list(target.store.read(target.uri("f"), chunk_size=4096))
    assert b"".join(blocks) == data
    assert max(len(b) for b in blocks) <= 4096
    assert len(blocks) >= 3


def test_expected_digest_accepted(target: Target) -> None:
    data = b"weights"
    digest = hashlib.sha256(data).hexdigest()
    assert target.store.write(target.uri("w"), [data], expected_sha256=digest.upper()).sha256 == digest


@pytest.mark.parametrize("size", [7, PART_SIZE + 1], ids=["one-put", "staged"])
def test_digest_mismatch_publishes_nothing(target: Target, size: int) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        target.store.write(target.uri("w"), odd_chunks(os.urandom(size)), expected_sha256="0" * 64)
    assert_error(caught.value, ErrorKind.INVALID_ARGUMENT, "DIGEST_MISMATCH")
    assert caught.value.metadata["field"] == "expected_sha256"
    with pytest.raises(ArtifactMissing):
        target.store.read(target.uri("w"))
    assert target.inventory() == set()


# Over two S3 parts, so the failure lands inside a started multipart upload.
@pytest.mark.parametrize("size", [3 * MiB, 2 * PART_SIZE + 3], ids=["single-part", "multipart"])
def test_failing_iterator_publishes_nothing(target: Target, size: int) -> None:
    with pytest.raises(RuntimeError, match="client went away"):
        target.store.write(target.uri("dir/w"), failing_after(os.urandom(size)))
    with pytest.raises(ArtifactMissing):
        target.store.read(target.uri("dir/w"))
    assert target.inventory() == set()


def test_overwrite_replaces_and_failed_overwrite_keeps_old(target: Target) -> None:
    target.store.write(target.uri("w"), [b"old"])
    target.store.write(target.uri("w"), [b"new", b"er"])
    assert read_all(target, "w") == b"newer"
    with pytest.raises(RuntimeError):
        target.store.write(target.uri("w"), failing_after(b"partial"))
    with pytest.raises(InvalidArgumentError):
        target.store.write(target.uri("w"), [b"bad"], expected_sha256="0" * 64)
    assert read_all(target, "w") == b"newer"
    assert target.inventory() == {"w"}


def test_delete_is_idempotent(target: Target) -> None:
    target.store.delete(target.uri("never/written"))
    target.store.write(target.uri("a/b"), [b"x"])
    target.store.delete(target.uri("a/b"))
    target.store.delete(target.uri("a/b"))
    with pytest.raises(ArtifactMissing):
        target.store.read(target.uri("a/b"))
    assert target.inventory() == set()


def test_read_missing(target: Target) -> None:
    with pytest.raises(ArtifactMissing) as caught:
        target.store.read(target.uri("nope/x"))
    assert_error(caught.value, ErrorKind.NOT_FOUND, "ARTIFACT_NOT_FOUND")


@pytest.mark.parametrize("name", ["a/../b", "./a", "a//b", "a/"])
def test_rejects_unsafe_object_paths(target: Target, name: str) -> None:
    for attempt in (
        lambda: target.store.write(target.uri(name), [b"x"]),
        lambda: target.store.read(target.uri(name)),
        lambda: target.store.delete(target.uri(name)),
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            attempt()
        assert_error(caught.value, ErrorKind.INVALID_ARGUMENT, "INVALID_ARTIFACT_PATH")


@pytest.mark.parametrize("uri", ["file://relative/x", "file:///abs/../etc/passwd", "s3://bucket/x"])
def test_file_store_rejects_non_absolute_or_foreign_uris(tmp_path: Path, uri: str) -> None:
    store = open_artifact_store(tmp_path.as_uri(), None)
    with pytest.raises(InvalidArgumentError) as caught:
        store.read(uri)
    assert_error(caught.value, ErrorKind.INVALID_ARGUMENT, "INVALID_ARTIFACT_PATH")


def test_file_store_publishes_with_umask_permissions(tmp_path: Path) -> None:
    store = open_artifact_store(tmp_path.as_uri(), None)
    previous = os.umask(0o022)
    try:
        store.write((tmp_path / "f").as_uri(), [b"x"])
    finally:
        os.umask(previous)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_check_passes_on_a_usable_root(target: Target) -> None:
    target.store.check()


def test_file_check_fails_when_root_cannot_exist(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_bytes(b"")
    store = open_artifact_store((tmp_path / "plain-file" / "root").as_uri(), None)
    with pytest.raises(ArtifactConfigError):
        store.check()


@pytest.mark.parametrize(
    ("root", "s3"),
    [
        ("ftp://host/artifacts", None),
        ("artifacts", None),
        ("s3://bucket/prefix", None),
        ("s3:///prefix", S3Options("127.0.0.1:1", "k", "s")),
        ("file://relative", None),
    ],
)
def test_open_rejects_unusable_roots(root: str, s3: S3Options | None) -> None:
    with pytest.raises(ArtifactConfigError):
        open_artifact_store(root, s3)


@pytest.mark.s3
@pytest.mark.parametrize("size", [3, PART_SIZE + 1], ids=["one-put", "staged"])
def test_s3_stores_digest_as_metadata_and_accepts_other_buckets(
    s3_server: S3Server, s3_bucket: str, size: int
) -> None:
    from minio import Minio

    client = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
    other = f"{s3_bucket}-b"
    client.make_bucket(other)
    store = open_artifact_store(f"s3://{s3_bucket}/root", s3_options(s3_server))
    data = os.urandom(size)
    stored = store.write(f"s3://{other}/x/y", [data])
    metadata = client.stat_object(other, "x/y").metadata
    assert metadata is not None
    assert metadata["x-amz-meta-sha256"] == stored.sha256 == hashlib.sha256(data).hexdigest()
    assert [o.object_name for o in client.list_objects(other, recursive=True)] == ["x/y"]


@pytest.mark.s3
def test_s3_check_fails_fast_on_closed_port() -> None:
    store = open_artifact_store("s3://bucket", S3Options("127.0.0.1:1", "k", "s"))
    started = time.monotonic()
    with pytest.raises(ArtifactConfigError):
        store.check()
    assert time.monotonic() - started < 10


@pytest.mark.s3
def test_s3_check_fails_on_missing_bucket(s3_server: S3Server) -> None:
    store = open_artifact_store("s3://no-such-bucket-here/prefix", s3_options(s3_server))
    with pytest.raises(ArtifactConfigError):
        store.check()


@pytest.mark.s3
def test_s3_read_of_missing_bucket_is_missing_artifact(s3_server: S3Server) -> None:
    store = open_artifact_store("s3://no-such-bucket-here", s3_options(s3_server))
    with pytest.raises(ArtifactMissing):
        store.read("s3://no-such-bucket-here/x")


def test_chunk_reader_returns_exact_sizes_across_chunks() -> None:
    data = os.urandom(100_000)
    reader = ChunkReader(odd_chunks(data))
    parts = [reader.read(30_000) for _ in range(4)]
    assert [len(p) for p in parts] == [30_000, 30_000, 30_000, 10_000]
    assert reader.read(5) == b""
    assert b"".join(parts) == data


def test_chunk_reader_read_whole_consumes_nothing_when_too_big() -> None:
    reader = ChunkReader([b"ab", b"", b"cd", b"e"])
    assert reader.read(1) == b"a"
    assert reader.read_whole(3) is None
    assert reader.read() == b"bcde"
    assert ChunkReader([b"ab", b"c"]).read_whole(3) == b"abc"


def test_hashed_chunks_tally_what_passes() -> None:
    data = os.urandom(70_000)
    hashed = HashedChunks(odd_chunks(data))
    assert b"".join(hashed) == data
    assert (hashed.size, hashed.hexdigest()) == (len(data), hashlib.sha256(data).hexdigest())


def test_staged_content_is_invisible_until_published(target: Target) -> None:
    for size in (3, PART_SIZE + 1):
        data = os.urandom(size)
        with target.store.stage(target.uri(f"s{size}"), odd_chunks(data)) as staged:
            assert staged.stored == StoredObject(size, hashlib.sha256(data).hexdigest())
            with pytest.raises(ArtifactMissing):
                target.store.read(target.uri(f"s{size}"))
            staged.publish()
        assert read_all(target, f"s{size}") == data
        with target.store.stage(target.uri(f"s{size}"), [b"discarded"]):
            pass  # leaving without publish discards
        assert read_all(target, f"s{size}") == data
    assert target.inventory() == {"s3", f"s{PART_SIZE + 1}"}


def test_file_sweep_removes_only_the_staging_of_dead_processes(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    live = open_artifact_store(root.as_uri(), None)
    staged = live.stage((root / "x").as_uri(), [b"in flight"])  # a live process mid-upload
    dead = root / STAGING_DIR / "otherhost-4242-deadbeef"
    dead.mkdir(parents=True)
    (dead / LOCK_NAME).touch()
    (dead / "0123abcd").write_bytes(b"left by a killed process")
    restarted = open_artifact_store(root.as_uri(), None)
    restarted.sweep()
    assert not dead.exists()
    staged.publish()  # the live process's staging survived the other's sweep
    assert (root / "x").read_bytes() == b"in flight"
    live.sweep()
    assert [p.name for p in (root / STAGING_DIR).iterdir()] != []  # its own directory stays


def test_file_sweep_removes_nothing_but_dead_staging_directories(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "artifacts", tmp_path / "elsewhere"
    (elsewhere / "projectA").mkdir(parents=True)
    (elsewhere / "projectA" / "data.csv").write_text("precious")
    area = root / STAGING_DIR
    area.mkdir(parents=True)
    unlocked = area / "host-1-0123abcd"  # named like staging, but no lock file: not ours
    unlocked.mkdir()
    (area / "notes").mkdir()  # not a staging name
    (area / "host-2-89abcdef").symlink_to(elsewhere / "projectA", target_is_directory=True)
    open_artifact_store(root.as_uri(), None).sweep()
    assert unlocked.is_dir() and (area / "notes").is_dir()
    assert (elsewhere / "projectA" / "data.csv").read_text() == "precious"
    # A staging area that is itself a symlink stops the start instead of being swept.
    shutil.rmtree(area)
    area.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ArtifactConfigError, match="staging area"):
        open_artifact_store(root.as_uri(), None).sweep()
    assert (elsewhere / "projectA" / "data.csv").read_text() == "precious"


@pytest.mark.s3
def test_s3_sweep_removes_stale_staging_and_multipart_uploads(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = s3_inventory(s3_server, s3_bucket)
    store = open_artifact_store(f"s3://{s3_bucket}", s3_options(s3_server))
    staged = store.stage(f"s3://{s3_bucket}/big", odd_chunks(os.urandom(PART_SIZE + 1)))
    (staging_key,) = inventory()
    assert staging_key.startswith(STAGING_PREFIX)
    store.sweep()  # nothing is older than STALE_SECONDS: a live replica's staging stays
    assert inventory() == {staging_key}
    # (moto dates every multipart upload 2010, so it only shows that one is aborted.)
    boto_client(s3_server).create_multipart_upload(Bucket=s3_bucket, Key=f"{STAGING_PREFIX}abandoned")
    assert inventory() == {staging_key, f"multipart:{STAGING_PREFIX}abandoned"}
    monkeypatch.setattr(s3_module, "STALE_SECONDS", -60)
    store.sweep()
    assert inventory() == set()
    staged.discard()


def test_file_store_stages_under_the_root_holding_the_destination(tmp_path: Path) -> None:
    # Each root may be its own filesystem: os.replace only publishes within one.
    main, extra = tmp_path / "main", tmp_path / "extra"
    store = open_artifact_store(main.as_uri(), None, [extra.as_uri()])
    with store.stage((extra / "e" / "x").as_uri(), [b"x"]) as staged:
        assert [p.parent.parent for p in extra.rglob("*") if p.is_file() and p.name != LOCK_NAME] == [
            extra / STAGING_DIR
        ]
        assert not main.exists()
        staged.publish()
    assert (extra / "e" / "x").read_bytes() == b"x"


@pytest.mark.s3
@pytest.mark.parametrize("written", [True, False], ids=["answer-lost", "not-written"])
def test_an_s3_publish_whose_answer_is_lost_is_judged_by_what_is_in_place(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, written: bool
) -> None:
    store = open_artifact_store(f"s3://{s3_bucket}", s3_options(s3_server))
    uri = f"s3://{s3_bucket}/model.bin"
    store.write(uri, [b"version one"])
    put_object = Minio.put_object

    def connection_dropped(self: Minio, *args: Any, **kwargs: Any) -> Any:
        if written:
            put_object(self, *args, **kwargs)
        raise urllib3.exceptions.ProtocolError("connection dropped before the answer")

    monkeypatch.setattr(Minio, "put_object", connection_dropped)
    staged = store.stage(uri, [b"version two"])
    if written:
        staged.publish()  # S3 did replace it: the manifest may record version two
    else:
        with pytest.raises(urllib3.exceptions.ProtocolError):
            staged.publish()  # it did not: the manifest keeps version one
    monkeypatch.undo()
    assert b"".join(store.read(uri)) == (b"version two" if written else b"version one")
