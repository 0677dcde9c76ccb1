"""Artifacts on a local or mounted filesystem (``file:///abs/path``).

The path after ``file://`` is used verbatim (no percent-decoding), so whatever name the caller
writes is the name it reads back. A write goes to a hidden sibling ``.<name>.upload-<hex>`` in the
destination directory (same filesystem), is fsynced, then ``os.replace``d onto the final name:
readers see the old object or the new one, never a partial file.

Receiving, hashing and writing overlap: the receiving thread hands chunks through a small bounded
queue (memory stays flat whatever the size) to a writer thread that hashes and writes them, and
starts writeback every few MiB, so the fsync that must precede the rename finds little left to do.
hashlib and file I/O release the GIL, so the writer runs beside the receiving thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .base import (
    DEFAULT_READ_CHUNK,
    ArtifactConfigError,
    ArtifactMissing,
    Chunk,
    StoredObject,
    check_digest,
    check_segments,
    invalid_path,
)

SCHEME = "file://"
# 8 chunks of at most 1 MiB wait for the writer; past that the receiving thread waits.
QUEUED_CHUNKS = 8
# Written bytes handed to the disk this often while the upload is still arriving.
WRITEBACK_EVERY_BYTES = 4 * 1024 * 1024


def file_path(uri: str) -> Path:
    """The absolute local path of a ``file:///...`` URI, refusing anything that could escape a root."""
    if not uri.startswith(SCHEME):
        raise invalid_path(uri, "is not a file:// URI")
    path = uri.removeprefix(SCHEME)
    if not path.startswith("/"):
        raise invalid_path(uri, "must be an absolute path (file:///...)")
    check_segments(uri, path[1:])
    return Path(path)


class FileArtifactStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def write(self, uri: str, chunks: Iterable[Chunk], expected_sha256: str | None = None) -> StoredObject:
        path = file_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.upload-{uuid.uuid4().hex}")
        try:
            # "x" = O_EXCL with mode 0o666 & ~umask, so the published file has ordinary permissions.
            with staging.open("xb") as out:
                stored = _write_durably(out, chunks)
            check_digest(stored.sha256, expected_sha256)
            os.replace(staging, path)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)  # makes the rename itself durable
        return stored

    def read(self, uri: str, chunk_size: int = DEFAULT_READ_CHUNK) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        path = file_path(uri)
        try:
            stream = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArtifactMissing(uri) from None
        return _stream(stream, chunk_size)

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            file_path(uri).unlink()

    def check(self) -> None:
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactConfigError(f"artifact root {self._root} cannot be created: {exc}") from exc
        if not os.access(self._root, os.W_OK | os.X_OK):
            raise ArtifactConfigError(f"artifact root {self._root} is not writable by this process")


def _write_durably(out: BinaryIO, chunks: Iterable[Chunk]) -> StoredObject:
    """Writes and hashes ``chunks`` into ``out`` on a writer thread while this thread keeps
    receiving them; returns once the content is on disk (fsynced).

    If ``chunks`` raises, the writer stops and the exception propagates; if writing fails, the
    receiving stops and the writer's exception propagates.
    """
    pending: queue.Queue[Chunk | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
    digest = hashlib.sha256()
    failures: list[BaseException] = []
    abandoned = threading.Event()

    def write_all() -> None:
        written = handed_over = 0
        # Drains to the end marker even after a failure, so the receiving thread never blocks.
        while (chunk := pending.get()) is not None:
            if failures or abandoned.is_set():
                continue
            try:
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                if written - handed_over >= WRITEBACK_EVERY_BYTES:
                    out.flush()
                    _start_writeback(out.fileno(), handed_over)
                    handed_over = written
            except BaseException as exc:
                failures.append(exc)
        if not failures and not abandoned.is_set():
            try:
                out.flush()
                os.fsync(out.fileno())
            except BaseException as exc:
                failures.append(exc)

    writer = threading.Thread(target=write_all, name="artifact-writer", daemon=True)
    writer.start()
    size = 0
    try:
        for chunk in chunks:
            if failures:
                break
            pending.put(chunk)
            size += len(chunk)
    except BaseException:
        abandoned.set()
        raise
    finally:
        pending.put(None)
        writer.join()
    if failures:
        raise failures[0]
    return StoredObject(size, digest.hexdigest())


def _start_writeback(fd: int, start: int) -> None:
    """Starts writing the bytes from ``start`` on to the disk, without waiting for them.

    On Linux, POSIX_FADV_DONTNEED starts writeback of a range's dirty pages and drops only its
    clean ones; the range given is the one just written, all dirty, so it stays cached. fdatasync
    here blocked the writer ~10 ms per 16 MiB (~40 ms of a 64 MiB upload). Started early, the
    writes are done by the final fsync, which still makes the content durable before the rename.
    Paired A/B on the bench's 64 MiB upload: +7% to +19%.
    """
    os.posix_fadvise(fd, start, 0, os.POSIX_FADV_DONTNEED)


def _stream(stream: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with stream:
        while block := stream.read(chunk_size):
            yield block


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
