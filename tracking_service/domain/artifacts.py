"""Artifact paths and the upload/download flow.

The bytes live in an ArtifactStore (file:// or s3://) at ``<run artifact_uri>/<path>``; the
tracking database's manifest holds (path, size, sha256) and is the source of truth for list and
stat (directories are derived from the paths). An upload publishes the object atomically, then
records it; an interrupted stream publishes nothing and records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tracking_service.artifacts import ArtifactStore, Chunk
from tracking_service.domain import rules
from tracking_service.domain.entities import ArtifactFile
from tracking_service.domain.errors import ArtifactNotFound, InvalidArtifactPath
from tracking_service.store.base import TrackingStore

MAX_PATH_LENGTH = 1024
CHUNK_SIZE = 1024 * 1024


def check_path(path: str, *, allow_root: bool = False) -> str:
    """A relative '/'-separated path: no leading '/', backslash, NUL, '.', '..' or empty segment."""
    if not path:
        if allow_root:
            return path
        raise InvalidArtifactPath(path, "must not be empty")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidArtifactPath(path, f"is {len(path)} characters, the limit is {MAX_PATH_LENGTH}")
    if path.startswith("/"):
        raise InvalidArtifactPath(path, "must be relative (no leading '/')")
    if "\\" in path or "\0" in path:
        raise InvalidArtifactPath(path, "must not contain backslashes or NUL characters")
    if any(segment in ("", ".", "..") for segment in path.split("/")):
        raise InvalidArtifactPath(path, "must not contain '.', '..' or empty segments")
    return path


class ArtifactService:
    def __init__(self, store: TrackingStore, objects: ArtifactStore) -> None:
        self._store = store
        self._objects = objects

    def upload(
        self, run_id: str, path: str, chunks: Iterable[Chunk], expected_sha256: str | None = None
    ) -> ArtifactFile:
        rules.run_id(run_id)
        check_path(path)
        root = self._store.artifact_root_for_upload(run_id, path)
        stored = self._objects.write(f"{root}/{path}", chunks, expected_sha256)
        return self._store.record_artifact(run_id, path, stored.size, stored.sha256)

    def download(self, run_id: str, path: str) -> tuple[ArtifactFile, Iterator[bytes]]:
        """The file's manifest entry and an iterator over its content in 1 MiB chunks."""
        check_path(path)
        root = self._store.artifact_root(run_id)
        file = self._store.get_artifact(run_id, path)
        if file is None:
            raise ArtifactNotFound(run_id, path)
        return file, self._objects.read(f"{root}/{path}", CHUNK_SIZE)

    def list(self, run_id: str, path: str = "", recursive: bool = False) -> list[ArtifactFile]:
        """Entries directly under directory ``path`` (every file below it when recursive).

        A path that is a file or names nothing lists as empty, as in MLflow.
        """
        check_path(path, allow_root=True)
        files = [f for f in self._store.list_artifact_files(run_id, path) if f.path != path]
        if recursive:
            return files
        start = len(path) + 1 if path else 0
        entries: dict[str, ArtifactFile] = {}
        for file in files:
            child, separator, _ = file.path[start:].partition("/")
            child_path = file.path[: start + len(child)]
            entries.setdefault(child_path, ArtifactFile(child_path, is_dir=True) if separator else file)
        return sorted(entries.values(), key=lambda f: f.path)

    def stat(self, run_id: str, path: str) -> ArtifactFile:
        check_path(path, allow_root=True)
        files = self._store.list_artifact_files(run_id, path)
        exact = next((f for f in files if f.path == path), None)
        if exact is not None:
            return exact
        if files or not path:
            return ArtifactFile(path, is_dir=True)
        raise ArtifactNotFound(run_id, path)
