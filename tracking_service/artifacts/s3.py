"""Artifacts in S3 or an S3-compatible server (``s3://bucket/key``), through the minio SDK.

Keys are used verbatim. Every write is hashed as it streams, and the final object carries the
digest as user metadata ``x-amz-meta-sha256``. Readers never see a partial or unverified object:

- up to PART_SIZE bytes, the object is verified in memory, then PUT in one request, which S3
  publishes atomically;
- larger, it streams to a staging key ``.modelreg-staging/<hex>`` in the destination bucket with
  minio's multipart upload (``length=-1``); only when the stream ended normally and the digest
  matches is it copied server-side onto the final key. The staging key is removed either way, and
  minio aborts its multipart upload when the stream fails.

Leftovers survive only a process that dies mid-write: give the bucket a lifecycle rule expiring
``.modelreg-staging/`` and aborting incomplete multipart uploads after a day.

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
from typing import BinaryIO, cast

import urllib3
from minio import Minio
from minio.commonconfig import ComposeSource
from minio.error import MinioException, S3Error

from .base import (
    DEFAULT_READ_CHUNK,
    STAGING_DIR,
    ArtifactConfigError,
    ArtifactMissing,
    Chunk,
    StoredObject,
    check_digest,
    check_segments,
    invalid_path,
)

SCHEME = "s3://"
STAGING_PREFIX = f"{STAGING_DIR}/"
PART_SIZE = 8 * 1024 * 1024
SHA256_METADATA = "sha256"  # minio prefixes it: x-amz-meta-sha256

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

    def write(self, uri: str, chunks: Iterable[Chunk], expected_sha256: str | None = None) -> StoredObject:
        bucket, key = s3_location(uri)
        hashed = HashedChunks(chunks)
        reader = ChunkReader(hashed)
        whole = reader.read_whole(PART_SIZE)
        if whole is None:
            self._write_via_staging(bucket, key, reader, hashed, expected_sha256)
        else:
            # Small objects are in memory already: verify first, then one PUT, which S3 publishes
            # atomically. Saves the staging round trips (HEAD, COPY, DELETE) for the common case.
            check_digest(hashed.hexdigest(), expected_sha256)
            self._client.put_object(
                bucket,
                key,
                io.BytesIO(whole),
                len(whole),
                metadata={SHA256_METADATA: hashed.hexdigest()},
                part_size=PART_SIZE,
            )
        return StoredObject(hashed.size, hashed.hexdigest())

    def _write_via_staging(
        self, bucket: str, key: str, reader: ChunkReader, hashed: HashedChunks, expected_sha256: str | None
    ) -> None:
        staging = f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        try:
            # One part in flight at a time: parallel uploads would hold several parts in memory.
            # The cast is sound: put_object only ever calls read(n).
            self._client.put_object(
                bucket,
                staging,
                cast(BinaryIO, reader),
                length=-1,
                part_size=PART_SIZE,
                num_parallel_uploads=1,
            )
            check_digest(hashed.hexdigest(), expected_sha256)
            # compose_object is a plain CopyObject up to 5 GiB and a multipart UploadPartCopy beyond.
            self._client.compose_object(
                bucket, key, [ComposeSource(bucket, staging)], metadata={SHA256_METADATA: hashed.hexdigest()}
            )
        finally:
            self._discard(bucket, staging)

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

    def check(self) -> None:
        where = f"S3 artifact store {self._endpoint}"
        try:
            exists = self._client.bucket_exists(self._bucket)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            detail = " ".join(str(exc).split())
            raise ArtifactConfigError(f"{where}: cannot reach bucket {self._bucket!r}: {detail}") from exc
        if not exists:
            raise ArtifactConfigError(f"{where}: bucket {self._bucket!r} does not exist")

    def _discard(self, bucket: str, key: str) -> None:
        # Cleanup must not mask the write's own outcome; a leftover is reaped by the lifecycle rule.
        try:
            self._client.remove_object(bucket, key)
        except (MinioException, urllib3.exceptions.HTTPError, OSError):
            _log.warning("could not remove staging object s3://%s/%s", bucket, key, exc_info=True)


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
