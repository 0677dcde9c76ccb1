"""Artifact byte storage for the tracking service, chosen by the root URI's scheme.

``file://`` roots use :class:`FileArtifactStore`, ``s3://`` roots :class:`S3ArtifactStore` (minio SDK).
A store accepts object URIs under any root of its scheme; both publish writes atomically.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelreg_server.errors import InvalidArgumentError

from .base import ArtifactConfigError, ArtifactMissing, ArtifactStore, Chunk, StoredObject, TreeUsage
from .file import FileArtifactStore, file_path
from .s3 import S3ArtifactStore, S3Options, new_minio_client, s3_location

__all__ = [
    "ArtifactConfigError",
    "ArtifactMissing",
    "ArtifactStore",
    "Chunk",
    "FileArtifactStore",
    "S3ArtifactStore",
    "S3Options",
    "StoredObject",
    "TreeUsage",
    "open_artifact_store",
]


def open_artifact_store(
    root_uri: str, s3: S3Options | None, extra_roots: Sequence[str] = ()
) -> ArtifactStore:
    """The store for ``root_uri``; ArtifactConfigError for an unknown scheme or a malformed root.

    A file store stages under whichever of ``root_uri`` and the ``extra_roots`` holds the
    destination, so the rename that publishes stays on one filesystem."""
    root = root_uri.rstrip("/")
    try:
        if root.startswith("file://"):
            extras = [file_path(e.rstrip("/")) for e in extra_roots if e.startswith("file://")]
            return FileArtifactStore(file_path(root), extras)
        if root.startswith("s3://"):
            if s3 is None:
                raise ArtifactConfigError(f"artifact root {root_uri} needs S3 endpoint and credentials")
            bucket, _ = s3_location(root, key_required=False)
            return S3ArtifactStore(new_minio_client(s3), bucket, s3.endpoint)
    except InvalidArgumentError as exc:
        raise ArtifactConfigError(f"artifact root {root_uri!r} is malformed: {exc.message}") from exc
    raise ArtifactConfigError(f"artifact root {root_uri!r}: only file:// and s3:// are supported")
