"""What every artifact store shares: the Protocol, its result and staging types, and its errors.

A write has two steps: :meth:`ArtifactStore.stage` consumes and hashes the content into a staging
copy, and :meth:`Staged.publish` puts that copy at its final URI atomically. Between them the
caller verifies the content and takes whatever lock orders concurrent writers of one URI (the
tracking store publishes inside its manifest transaction, under the run's row lock).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from modelreg.wire import CHUNK_BYTES
from modelreg_server.errors import InvalidArgumentError, NotFoundError

# Reads come in the chunks the download stream sends.
DEFAULT_READ_CHUNK = CHUNK_BYTES
Chunk = bytes | memoryview
"""Content as written: views let the gRPC layer hand over received bytes without copying them."""
# The stores' staging area, a directory or key prefix of this name: no experiment may live in it.
STAGING_DIR = ".modelreg-staging"


@dataclass(frozen=True)
class StoredObject:
    size: int
    sha256: str  # lowercase hex


@dataclass(frozen=True)
class TreeUsage:
    """What a directory tree or key prefix holds: its files (objects) and their bytes."""

    files: int = 0
    bytes: int = 0


class Staged:
    """Content consumed into a staging copy, not yet visible at ``uri``.

    Use as a context manager: leaving the block without :meth:`publish` discards the copy.
    """

    def __init__(self, uri: str, stored: StoredObject) -> None:
        self.uri = uri
        self.stored = stored
        self._done = False

    def publish(self) -> None:
        """Puts the content at ``uri`` atomically (readers see the old object or this one)."""
        if self._done:
            raise RuntimeError(f"{self.uri} was published or discarded already")
        self._done = True
        try:
            self._publish()
        finally:
            self._discard()

    def discard(self) -> None:
        """Removes the staging copy; a no-op once published or discarded."""
        if not self._done:
            self._done = True
            self._discard()

    def _publish(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Staged:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()


class ArtifactStore(Protocol):
    """Byte storage for artifacts, addressed by full object URIs (``file:///a/b``, ``s3://bucket/k``)."""

    def stage(self, uri: str, chunks: Iterable[Chunk]) -> Staged:
        """Consumes ``chunks`` into a staging copy for ``uri`` (staging file, S3 staging key, or
        memory up to one part), hashing them. If the iterator raises, the staging copy is removed
        and the exception propagates unchanged."""
        ...

    def write(self, uri: str, chunks: Iterable[Chunk], expected_sha256: str | None = None) -> StoredObject:
        """Stages ``chunks`` and publishes them at once (:func:`write_now`)."""
        ...

    def sweep(self) -> None:
        """Removes staging copies whose writer died (called at start)."""
        ...

    def read(self, uri: str, chunk_size: int = DEFAULT_READ_CHUNK) -> Iterator[bytes]:
        """Opens the object now (ArtifactMissing if absent) and streams it in ``chunk_size`` blocks.

        The iterator holds an open file or connection until exhausted or closed.
        """
        ...

    def delete(self, uri: str) -> None:
        """Removes the object; a missing object is not an error."""
        ...

    def check(self) -> None:
        """Raises ArtifactConfigError when the store's root is unreachable or misconfigured."""
        ...

    def tree_usage(self, uri: str) -> TreeUsage:
        """The files at or below ``uri`` (a directory, or an S3 key prefix followed by '/')."""
        ...

    def delete_tree(self, uri: str) -> TreeUsage:
        """Removes ``uri`` and everything below it and returns what it held; nothing there is not an
        error. Never follows a symbolic link (a link is removed, not what it points to) and
        refuses (INVALID_ARTIFACT_PATH) a ``uri`` outside the store's roots or reached through a
        link."""
        ...

    def remove_empty_directory(self, uri: str) -> bool:
        """Removes the directory ``uri`` when it holds nothing; whether it did. Stores without
        directories (S3) have nothing to remove."""
        ...


class ArtifactConfigError(Exception):
    """The artifact store cannot be used as configured; the message is one line, shown at start."""


class ArtifactMissing(NotFoundError):
    def __init__(self, uri: str) -> None:
        super().__init__("ARTIFACT_NOT_FOUND", f"artifact {uri} does not exist", {"uri": uri})


def invalid_path(uri: str, why: str) -> InvalidArgumentError:
    return InvalidArgumentError("INVALID_ARTIFACT_PATH", f"artifact URI {uri!r} {why}", {"uri": uri})


def write_now(staged: Staged, expected_sha256: str | None) -> StoredObject:
    """Publishes ``staged`` when its digest is ``expected_sha256`` (if given); discards it otherwise."""
    with staged:
        check_digest(staged.stored.sha256, expected_sha256)
        staged.publish()
    return staged.stored


def check_digest(actual: str, expected: str | None, field: str = "expected_sha256") -> None:
    if expected is not None and actual != expected.lower():
        raise InvalidArgumentError(
            # The sent value is cut: echoed whole, a long one overflowed the status trailer.
            "DIGEST_MISMATCH",
            f"content sha256 is {actual}, {field} says {expected[:64]}",
            {"field": field},
        )


def check_declared(actual: StoredObject, declared: StoredObject) -> None:
    """The content received is what the sender declared at the end of its stream."""
    if actual.size != declared.size:
        raise InvalidArgumentError(
            "SIZE_MISMATCH",
            f"received {actual.size} bytes, end.size says {declared.size}",
            {"field": "end.size"},
        )
    check_digest(actual.sha256, declared.sha256, "end.sha256")


def check_segments(uri: str, path: str) -> None:
    """Rejects '.', '..' and empty segments: each object path must name one file below its root."""
    if "\0" in path or any(segment in ("", ".", "..") for segment in path.split("/")):
        raise invalid_path(uri, "must not contain '.', '..' or empty segments")
