"""What client and servers agree on below the generated messages: timestamps, call metadata
headers, the request id a service forwards when it calls another, artifact bytes on the wire
and on disk, and how a string is quoted in a search filter.

Timestamps on the wire are int64 milliseconds since the epoch; :func:`now_ms` reads the clock in
that unit for the client and both servers.

Call metadata: every call carries ``x-request-id`` and ``x-modelreg-actor`` (recorded only by a
server without access control), and ``authorization: Bearer <token>`` when the client has a
token. A service that calls another one while serving a call wraps the outgoing calls in
:func:`forwarding_request_id`, so both services log one id, and in :func:`forwarding_end_user`
when it acts for the end user (``x-modelreg-on-behalf-of``, honoured only from a service principal).
A gateway that relays other people's calls (the MLflow REST endpoint) wraps each in
:func:`calling_as`, so the call carries the caller's own actor and token, never the gateway's.
Every write (and every LogMetrics stream) carries ``x-modelreg-idempotency-key``: one random key
per logical call, the same on each retry of it, so the server applies the write at most once.

Artifact bytes are kept off the critical path of the stream.

Profiling a 64 MiB download showed the client's time split between gRPC receiving (its own
thread), sha256 and the file write, with the generated message classes adding two copies of every
1 MiB chunk. So:

- Chunks skip the generated classes. ``UploadArtifactRequest`` and ``DownloadArtifactResponse``
  are ``oneof {metadata = 1; chunk = 2}``: a chunk message is the tag byte 0x12, the varint length
  and the bytes. :func:`encode_chunk` writes that with one copy; :func:`decode_download` and
  :func:`decode_upload` return a zero-copy view of a chunk and hand anything else (the metadata
  message, or a chunk encoded in an unexpected but valid way) to the generated parser, so every
  valid encoding decodes. The tracking server frames its side of both streams with the same
  functions (``tracking_service.api.servicer.add_to_server``): the generated classes cost it two
  extra copies of every chunk, each into freshly allocated memory.
- Downloads write on a helper thread at most ``DEPTH`` chunks behind (memory stays flat):
  :class:`ChunkWriter`. File writes and sha256 release the GIL, so the write of one chunk, the hash
  of the next and gRPC receiving the one after run in parallel, and a write that blocks on the disk
  no longer stalls the stream. Files of one chunk (most model files) never start a thread.
- An upload ends with ``UploadArtifactEnd`` (:func:`encode_end`): the size and sha256 of what
  was sent, computed while sending. The server publishes only a stream that ends with it and
  agrees with it, so an interrupted client (Ctrl-C half-closes the stream as if it were done)
  never leaves a truncated file recorded as complete.
- Uploads read, hash and encode in the iterator gRPC pulls from (:func:`chunk_messages`), whether
  the bytes come from a file or from a relayed stream (the MLflow endpoint's uploads). A
  read-ahead thread was measured too: it cost ~0.2 ms/MiB more CPU (handing 1 MiB buffers between
  cores) and gained nothing, because the server, not the client, bounds upload speed; page-cache
  reads take ~0.06 ms/MiB.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import BinaryIO

from google.protobuf.message import DecodeError

from modelreg.tracking.v1 import tracking_pb2 as pb


def now_ms() -> int:
    """Now, as timestamps travel: milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


REQUEST_ID_HEADER = "x-request-id"
ACTOR_HEADER = "x-modelreg-actor"
AUTHORIZATION_HEADER = "authorization"
ON_BEHALF_HEADER = "x-modelreg-on-behalf-of"
IDEMPOTENCY_HEADER = "x-modelreg-idempotency-key"


def new_request_id() -> str:
    """32 random hex digits, the shape of ``uuid4().hex`` at a fifth of its cost: a request id,
    or an idempotency key."""
    return os.urandom(16).hex()


_forwarded_request_id: ContextVar[str | None] = ContextVar("modelreg_forwarded_request_id", default=None)


@contextmanager
def forwarding_request_id(request_id: str) -> Iterator[None]:
    """Calls made inside the block (and in contexts copied from it) carry ``request_id``."""
    token = _forwarded_request_id.set(request_id or None)
    try:
        yield
    finally:
        _forwarded_request_id.reset(token)


def forwarded_request_id() -> str | None:
    """The request id set by :func:`forwarding_request_id`, if any."""
    return _forwarded_request_id.get()


_forwarded_end_user: ContextVar[str | None] = ContextVar("modelreg_forwarded_end_user", default=None)


def encode_end_user(name: str, groups: Iterable[str], admin: bool) -> str:
    """The ``x-modelreg-on-behalf-of`` value naming an end user: compact JSON."""
    return json.dumps({"name": name, "groups": sorted(groups), "admin": admin}, separators=(",", ":"))


@contextmanager
def forwarding_end_user(encoded: str | None) -> Iterator[None]:
    """Calls made inside the block (and in contexts copied from it) act for ``encoded``
    (:func:`encode_end_user`); None forwards nobody."""
    token = _forwarded_end_user.set(encoded)
    try:
        yield
    finally:
        _forwarded_end_user.reset(token)


def forwarded_end_user() -> str | None:
    return _forwarded_end_user.get()


_caller: ContextVar[tuple[str, str | None] | None] = ContextVar("modelreg_caller", default=None)


@contextmanager
def calling_as(actor: str, token: str | None) -> Iterator[None]:
    """Calls made inside the block carry ``actor`` and ``token`` (none when None) instead of the
    client's own: a gateway serves many callers with one client, and must never lend its own
    credentials to a caller who sent none."""
    reset = _caller.set((actor, token))
    try:
        yield
    finally:
        _caller.reset(reset)


def caller() -> tuple[str, str | None] | None:
    """The ``(actor, token)`` set by :func:`calling_as`, if any."""
    return _caller.get()


CHUNK_BYTES = 1024 * 1024
# Chunks queued for the writer thread: enough to ride out a slow write, few enough that a
# download holds a handful of MiB whatever the file size.
DEPTH = 4
_CHUNK_TAG = b"\x12"  # field 2 (chunk), wire type 2 (length-delimited)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_chunk(chunk: bytes | memoryview) -> bytes:
    """The serialized ``UploadArtifactRequest(chunk=chunk)``, which is also the serialized
    ``DownloadArtifactResponse(chunk=chunk)``."""
    return b"".join((_CHUNK_TAG, _varint(len(chunk)), chunk))


def encode_metadata(metadata: pb.UploadArtifactMetadata) -> bytes:
    """The serialized ``UploadArtifactRequest(metadata=metadata)``."""
    return pb.UploadArtifactRequest(metadata=metadata).SerializeToString()


def encode_end(size: int, sha256: str) -> bytes:
    """The serialized ``UploadArtifactRequest(end=...)``: the last message of an upload."""
    return pb.UploadArtifactRequest(end=pb.UploadArtifactEnd(size=size, sha256=sha256)).SerializeToString()


def encode_download_metadata(info: pb.FileInfo) -> bytes:
    """The serialized ``DownloadArtifactResponse(metadata=info)``."""
    return pb.DownloadArtifactResponse(metadata=info).SerializeToString()


def _chunk_start(data: bytes) -> int | None:
    """Where the content starts when ``data`` is exactly one chunk field, else None."""
    if data[:1] != _CHUNK_TAG:
        return None
    length = shift = 0
    for pos in range(1, min(len(data), 11)):  # a length takes at most 10 varint bytes
        byte = data[pos]
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return pos + 1 if pos + 1 + length == len(data) else None
        shift += 7
    return None


def decode_download(data: bytes) -> pb.FileInfo | memoryview:
    """A serialized ``DownloadArtifactResponse`` → its metadata, or a view of its chunk."""
    start = _chunk_start(data)
    if start is not None:
        return memoryview(data)[start:]
    message = pb.DownloadArtifactResponse.FromString(data)
    if message.WhichOneof("payload") == "metadata":
        return message.metadata
    return memoryview(message.chunk)


def decode_upload(data: bytes) -> pb.UploadArtifactRequest | memoryview:
    """A serialized ``UploadArtifactRequest`` → a view of its chunk, or else the parsed message
    (the metadata, the end, or a chunk encoded another valid way): the caller checks which payload
    it has. Bytes that do not parse come back as a message without a payload, which the servicer
    refuses as INVALID_ARGUMENT: raising here would end the call INTERNAL inside gRPC."""
    start = _chunk_start(data)
    if start is not None:
        return memoryview(data)[start:]
    try:
        return pb.UploadArtifactRequest.FromString(data)
    except DecodeError:
        return pb.UploadArtifactRequest()


class ChunkWriter:
    """Writes chunks to ``out`` in order; from the second chunk on, on a helper thread at most
    ``DEPTH`` chunks behind the caller. Use as a context manager: a normal exit waits for every
    write and raises the first write error; an exit by exception drops the writes not started."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[int]] = deque()

    def write(self, chunk: memoryview) -> None:
        if self._pool is None:
            # The first chunk is written inline: a one-chunk file is not worth a thread.
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="modelreg-download")
            self._out.write(chunk)
            return
        if len(self._pending) >= DEPTH:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._out.write, chunk))

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is None:
            return
        try:
            if exc_type is None:
                while self._pending:
                    self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def chunk_messages(chunks: Iterable[bytes], digest: hashlib._Hash) -> Iterator[tuple[bytes, int]]:
    """(encoded chunk message, content length) for each chunk of ``chunks``, each hashed into
    ``digest`` in order. A chunk over CHUNK_BYTES is sent as several (a message must stay under
    the channels' limit); an empty one is skipped."""
    for chunk in chunks:
        if len(chunk) <= CHUNK_BYTES:
            if chunk:
                digest.update(chunk)
                yield encode_chunk(chunk), len(chunk)
            continue
        view = memoryview(chunk)
        for start in range(0, len(view), CHUNK_BYTES):
            piece = view[start : start + CHUNK_BYTES]
            digest.update(piece)
            yield encode_chunk(piece), len(piece)


def quote(value: str, mark: str = "'") -> str:
    """``value`` as a quoted filter string (or key, with mark "`" or '"') that the services parse
    back to ``value``: backslashes escaped, the mark doubled."""
    return mark + value.replace("\\", "\\\\").replace(mark, mark * 2) + mark
