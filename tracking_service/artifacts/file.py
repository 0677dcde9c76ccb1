"""Artifacts on a local or mounted filesystem (``file:///abs/path``).

The path after ``file://`` is used verbatim (no percent-decoding), so whatever name the caller
writes is the name it reads back. A write goes to a hidden sibling ``.<name>.upload-<hex>`` in the
destination directory (same filesystem), is fsynced, then ``os.replace``d onto the final name:
readers see the old object or the new one, never a partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .base import (
    DEFAULT_READ_CHUNK,
    ArtifactConfigError,
    ArtifactMissing,
    StoredObject,
    check_digest,
    check_segments,
    invalid_path,
)

SCHEME = "file://"


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

    def write(self, uri: str, chunks: Iterable[bytes], expected_sha256: str | None = None) -> StoredObject:
        path = file_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.upload-{uuid.uuid4().hex}")
        digest = hashlib.sha256()
        size = 0
        try:
            # "x" = O_EXCL with mode 0o666 & ~umask, so the published file has ordinary permissions.
            with staging.open("xb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            check_digest(digest.hexdigest(), expected_sha256)
            os.replace(staging, path)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)  # makes the rename itself durable
        return StoredObject(size, digest.hexdigest())

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
