"""Artifacts in S3 or an S3-compatible server (``s3://bucket/key``), through the minio SDK.

Keys are used verbatim. Every write is hashed as it streams, and the final object carries the
digest as user metadata ``x-amz-meta-sha256``. Readers never see a partial or unverified object:

- up to PART_SIZE bytes, the content is staged in memory and published by one PUT, which S3
  publishes atomically;
- larger, it streams to a staging key ``.modelreg-staging/<hex>`` in the root's bucket with
  minio's multipart upload (``length=-1``); publishing copies it server-side onto the final key
  (a copy of a large object takes a while: it holds the caller's lock meanwhile). The staging key
  is removed either way, and minio aborts its multipart upload when the stream fails.

Leftovers survive only a process that dies mid-write. At start, :meth:`S3ArtifactStore.sweep`
removes staging keys and aborts incomplete multipart uploads under ``.modelreg-staging/`` older
than STALE_SECONDS (24 h: longer than any upload, so a live replica's staging is never touched).
A bucket lifecycle rule doing the same needs no server restart.

Memory per write is about 3 x PART_SIZE: minio still holds the previous part while the next one is
joined from the chunks, then copied once more to prepend and once more to trim its look-ahead byte
(measured: ~27 MiB at 8 MiB parts, ~51 MiB at 16 MiB). 8 MiB, boto3's default part size, allows
objects up to S3's 10,000 parts x 8 MiB = 78 GiB.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sys
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, cast

import urllib3
from minio import Minio
from minio.commonconfig import ComposeSource
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from minio.helpers import DictType

from .base import (
    DEFAULT_READ_CHUNK,
    STAGING_DIR,
    ArtifactConfigError,
    ArtifactMissing,
    Chunk,
    Staged,
    StoredObject,
    TreeUsage,
    check_segments,
    invalid_path,
    write_now,
)

SCHEME = "s3://"
STAGING_PREFIX = f"{STAGING_DIR}/"
PART_SIZE = 8 * 1024 * 1024
# Keys per DeleteObjects request: S3's limit.
DELETE_BATCH = 1000
SHA256_METADATA = "sha256"  # minio prefixes it: x-amz-meta-sha256
STALE_SECONDS = 24 * 3600
_S3_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class S3Options:
    endpoint: str  # host:port (minio SDK form)
    access_key: str
    secret_key: str
    secure: bool = False
    region: str | None = None


def s3_location(uri: str, *, key_required: bool = True) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URI."""
    if not uri.startswith(SCHEME):
        raise invalid_path(uri, "is not an s3:// URI")
    bucket, _, key = uri.removeprefix(SCHEME).partition("/")
    if not bucket:
        raise invalid_path(uri, "names no bucket")
    if key or key_required:
        check_segments(uri, key)
    return bucket, key


def new_minio_client(options: S3Options) -> Minio:
    # minio's default pool retries 5 times with no connect timeout: an unreachable endpoint would
    # stall the service start. Connect fails fast; reads may wait, since server-side copies of large
    # objects answer slowly.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=300.0),
        retries=urllib3.Retry(total=3, connect=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        maxsize=16,
    )
    return Minio(
        options.endpoint,
        access_key=options.access_key,
        secret_key=options.secret_key,
        secure=options.secure,
        region=options.region,
        http_client=http,
    )


class S3ArtifactStore:
    def __init__(self, client: Minio, bucket: str, endpoint: str) -> None:
        self._client = client
        self._bucket = bucket  # the root's bucket, which check() verifies
        self._endpoint = endpoint

    def stage(self, uri: str, chunks: Iterable[Chunk]) -> Staged:
        s3_location(uri)  # a bad URI fails before a byte is read
        hashed = HashedChunks(chunks)
        reader = ChunkReader(hashed)
        whole = reader.read_whole(PART_SIZE)
        if whole is not None:
            # Small objects stay in memory, all read: one PUT publishes them, which saves the
            # staging round trips (PUT, COPY, DELETE) for the common case.
            return _StagedS3(self._client, uri, StoredObject(hashed.size, hashed.hexdigest()), whole)
        staging = Staging(self._bucket, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
        try:
            # One part in flight at a time: parallel uploads would hold several parts in memory.
            # The cast is sound: put_object only ever calls read(n).
            self._client.put_object(
                staging.bucket,
                staging.key,
                cast(BinaryIO, reader),
                length=-1,
                part_size=PART_SIZE,
                num_parallel_uploads=1,
            )
        except BaseException:
            _remove_staging(self._client, staging)
            raise
        return _StagedS3(self._client, uri, StoredObject(hashed.size, hashed.hexdigest()), staging)

    def write(self, uri: str, chunks: Iterable[Chunk], expected_sha256: str | None = None) -> StoredObject:
        return write_now(self.stage(uri, chunks), expected_sha256)

    def sweep(self) -> None:
        """Removes staging keys and aborts multipart uploads under STAGING_PREFIX older than
        STALE_SECONDS (one listing page of uploads per start)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=STALE_SECONDS)
        try:
            for item in self._client.list_objects(self._bucket, prefix=STAGING_PREFIX, recursive=True):
                if item.object_name and item.last_modified and item.last_modified < cutoff:
                    self._client.remove_object(self._bucket, item.object_name)
            # minio has no public listing of multipart uploads; this private call is stable in 7.x.
            uploads = self._client._list_multipart_uploads(self._bucket, prefix=STAGING_PREFIX).uploads
            for upload in uploads:
                if upload.upload_id and upload.initiated_time and upload.initiated_time < cutoff:
                    self._client._abort_multipart_upload(self._bucket, upload.object_name, upload.upload_id)
        except _S3_ERRORS:
            # Leftovers cost storage, not correctness: the next start or a lifecycle rule retries.
            _log.warning("could not remove stale staging in bucket %s", self._bucket, exc_info=True)

    def read(self, uri: str, chunk_size: int = DEFAULT_READ_CHUNK) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        bucket, key = s3_location(uri)
        try:
            response = self._client.get_object(bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise ArtifactMissing(uri) from None
            raise
        return _stream(response, chunk_size)

    def delete(self, uri: str) -> None:
        bucket, key = s3_location(uri)
        self._client.remove_object(bucket, key)  # S3 deletes of absent keys succeed

    def tree_usage(self, uri: str) -> TreeUsage:
        bucket, prefix = self._tree_prefix(uri)
        sizes = [item.size or 0 for item in self._client.list_objects(bucket, prefix=prefix, recursive=True)]
        return TreeUsage(len(sizes), sum(sizes))

    def delete_tree(self, uri: str) -> TreeUsage:
        """Removes the keys below ``uri`` + '/', listed then deleted DELETE_BATCH at a time. S3 has
        no links: a key is only ever what it names."""
        bucket, prefix = self._tree_prefix(uri)
        files = size = 0
        batch: list[DeleteObject] = []
        for item in self._client.list_objects(bucket, prefix=prefix, recursive=True):
            if item.object_name is None:
                continue
            files, size = files + 1, size + (item.size or 0)
            batch.append(DeleteObject(item.object_name))
            if len(batch) == DELETE_BATCH:
                self._delete_objects(bucket, batch)
                batch = []
        if batch:
            self._delete_objects(bucket, batch)
        return TreeUsage(files, size)

    def remove_empty_directory(self, uri: str) -> bool:
        s3_location(uri)
        return False  # S3 has keys, not directories: an empty "directory" is no object at all

    def _tree_prefix(self, uri: str) -> tuple[str, str]:
        bucket, key = s3_location(uri)
        return bucket, f"{key}/"

    def _delete_objects(self, bucket: str, batch: list[DeleteObject]) -> None:
        # remove_objects is lazy: the requests go out as its errors are read.
        for error in self._client.remove_objects(bucket, batch):
            raise OSError(f"could not delete s3://{bucket}/{error.name}: {error.code} {error.message}")

    def check(self) -> None:
        where = f"S3 artifact store {self._endpoint}"
        try:
            exists = self._client.bucket_exists(self._bucket)
        except _S3_ERRORS as exc:
            detail = " ".join(str(exc).split())
            raise ArtifactConfigError(f"{where}: cannot reach bucket {self._bucket!r}: {detail}") from exc
        if not exists:
            raise ArtifactConfigError(f"{where}: bucket {self._bucket!r} does not exist")


@dataclass(frozen=True)
class Staging:
    bucket: str
    key: str


class _StagedS3(Staged):
    def __init__(self, client: Minio, uri: str, stored: StoredObject, content: bytes | Staging) -> None:
        super().__init__(uri, stored)
        self._client = client
        self._content = content

    def _publish(self) -> None:
        bucket, key = s3_location(self.uri)
        metadata: DictType = {SHA256_METADATA: self.stored.sha256}
        try:
            if isinstance(self._content, bytes):
                data = self._content
                self._client.put_object(bucket, key, io.BytesIO(data), len(data), metadata=metadata)
            else:
                # compose_object is a plain CopyObject up to 5 GiB and a multipart UploadPartCopy beyond.
                source = ComposeSource(self._content.bucket, self._content.key)
                self._client.compose_object(bucket, key, [source], metadata=metadata)
        except _S3_ERRORS:
            # A lost answer (a dropped connection, a copy outlasting the read timeout) does not say
            # whether S3 replaced the object. The manifest must describe what is there: when the
            # object now carries this content's digest, the publish happened and is recorded.
            if not self._in_place(bucket, key):
                raise
            _log.warning("publishing s3://%s/%s failed to answer but the object is in place", bucket, key)

    def _in_place(self, bucket: str, key: str) -> bool:
        try:
            stored = self._client.stat_object(bucket, key)
        except _S3_ERRORS:
            return False
        return (stored.metadata or {}).get(f"x-amz-meta-{SHA256_METADATA}") == self.stored.sha256

    def _discard(self) -> None:
        if isinstance(self._content, Staging):
            _remove_staging(self._client, self._content)
        self._content = b""


def _remove_staging(client: Minio, staging: Staging) -> None:
    # Cleanup must not mask the write's own outcome; a leftover is reaped by sweep().
    try:
        client.remove_object(staging.bucket, staging.key)
    except _S3_ERRORS:
        _log.warning("could not remove staging object s3://%s/%s", staging.bucket, staging.key, exc_info=True)


class HashedChunks:
    """Passes chunks through, keeping the sha256 and size of everything that went by."""

    def __init__(self, chunks: Iterable[Chunk]) -> None:
        self._chunks = chunks
        self._digest = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[Chunk]:
        for chunk in self._chunks:
            self._digest.update(chunk)
            self.size += len(chunk)
            yield chunk

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class ChunkReader:
    """A ``read(n)`` file over a chunk iterator, as minio's put_object wants.

    read(n) returns exactly n bytes until the end: minio's read_part_data concatenates short reads
    one by one, which is quadratic for small chunks. read() with no size drains the iterator.
    """

    def __init__(self, chunks: Iterable[Chunk]) -> None:
        self._chunks = iter(chunks)
        self._pending: deque[memoryview] = deque()

    def read(self, n: int = -1) -> bytes:
        pieces: list[memoryview] = []
        wanted = n if n >= 0 else sys.maxsize
        while wanted > 0:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending.append(memoryview(chunk))
            view = self._pending.popleft()
            if len(view) > wanted:
                self._pending.appendleft(view[wanted:])
                view = view[:wanted]
            pieces.append(view)
            wanted -= len(view)
        return b"".join(pieces)

    def read_whole(self, limit: int) -> bytes | None:
        """All that remains if it is at most ``limit`` bytes; else None, with nothing consumed."""
        head = self.read(limit + 1)
        if len(head) <= limit:
            return head
        self._pending.appendleft(memoryview(head))
        return None


def _stream(response: urllib3.BaseHTTPResponse, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from response.stream(chunk_size)
    finally:
        response.close()
        response.release_conn()
