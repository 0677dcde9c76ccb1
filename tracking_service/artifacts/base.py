"""What every artifact store shares: the Protocol, its result type and its errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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


class ArtifactStore(Protocol):
    """Byte storage for artifacts, addressed by full object URIs (``file:///a/b``, ``s3://bucket/k``)."""

    def write(self, uri: str, chunks: Iterable[Chunk], expected_sha256: str | None = None) -> StoredObject:
        """Consumes ``chunks`` aside (temp file, S3 staging key, or memory up to one part), hashing
        them, and publishes the object at ``uri`` atomically.

        Publishes only when the iterator ends normally and, if ``expected_sha256`` is given, the digest
        matches (else InvalidArgumentError DIGEST_MISMATCH). If the iterator raises, nothing is published, the
        staging copy is removed and the exception propagates unchanged.
        """
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


class ArtifactConfigError(Exception):
    """The artifact store cannot be used as configured; the message is one line, shown at start."""


class ArtifactMissing(NotFoundError):
    def __init__(self, uri: str) -> None:
        super().__init__("ARTIFACT_NOT_FOUND", f"artifact {uri} does not exist", {"uri": uri})


def invalid_path(uri: str, why: str) -> InvalidArgumentError:
    return InvalidArgumentError("INVALID_ARTIFACT_PATH", f"artifact URI {uri!r} {why}", {"uri": uri})


def check_digest(actual: str, expected: str | None) -> None:
    if expected is not None and actual != expected.lower():
        raise InvalidArgumentError(
            "DIGEST_MISMATCH",
            f"content sha256 is {actual}, expected_sha256 says {expected}",
            {"field": "expected_sha256"},
        )


def check_segments(uri: str, path: str) -> None:
    """Rejects '.', '..' and empty segments: each object path must name one file below its root."""
    if "\0" in path or any(segment in ("", ".", "..") for segment in path.split("/")):
        raise invalid_path(uri, "must not contain '.', '..' or empty segments")
