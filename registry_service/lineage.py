"""The real LineagePort: asks the tracking service about a run through the modelreg client.

Per registration it makes at most three read calls (GetRun, StatArtifact, ListArtifacts for a
directory). Each gets a third of MODELREG_TRACKING_TIMEOUT_SECONDS as its deadline, and the
client's retry policy (UNAVAILABLE, 4 attempts with backoff) runs inside that deadline, so the
whole check ends within the configured timeout. The request id of the registry call travels to
tracking (the client reads it from the call context), so both logs show one id.
"""

from __future__ import annotations

from modelreg import exceptions
from modelreg.entities import FileInfo
from modelreg.tracking_client import TrackingClient
from registry_service.domain import errors
from registry_service.domain.entities import FileDigest, LineageRecord

_CALLS_PER_CHECK = 3
# Failures of the tracking service itself, as opposed to answers about the run.
_UNAVAILABLE = (
    exceptions.Unavailable,
    exceptions.DeadlineExceeded,
    exceptions.Internal,
    exceptions.Cancelled,
)


def artifact_path(source: str, run_id: str, artifact_uri: str) -> str:
    """The path under the run's artifact root that ``source`` names; INVALID_SOURCE otherwise.

    Accepted: ``runs:/<run_id>/<path>`` and ``<artifact_uri>/<path>``, where the path is relative,
    non-empty and has no '.', '..' or empty segments (it cannot leave the run's root).
    """
    root = artifact_uri.rstrip("/") + "/"
    if source.startswith("runs:/"):
        source_run, _, path = source.removeprefix("runs:/").partition("/")
        if source_run != run_id:
            raise errors.invalid(
                errors.INVALID_SOURCE, f"source names run '{source_run}', not run '{run_id}'", "source"
            )
    elif artifact_uri and source.startswith(root):
        path = source.removeprefix(root)
    else:
        raise errors.invalid(
            errors.INVALID_SOURCE,
            f"source must be runs:/{run_id}/<path> or lie under the run's artifact root {artifact_uri}",
            "source",
        )
    segments = path.strip("/").split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise errors.invalid(
            errors.INVALID_SOURCE, f"source path '{path}' must be a relative path inside the run", "source"
        )
    return "/".join(segments)


def _digests(path: str, stat: FileInfo, listing: list[FileInfo]) -> tuple[FileDigest, ...]:
    if not stat.is_dir:
        return (FileDigest(path.rsplit("/", 1)[-1], stat.file_size, stat.sha256),)
    prefix = path + "/"
    return tuple(
        FileDigest(f.path.removeprefix(prefix), f.file_size, f.sha256) for f in listing if not f.is_dir
    )


class TrackingLineage:
    """LineagePort over gRPC; thread-safe (one channel shared by the server's workers)."""

    def __init__(self, target: str, timeout: float) -> None:
        self._client = TrackingClient(target, timeout=timeout / _CALLS_PER_CHECK)

    def close(self) -> None:
        self._client.close()

    def fetch(self, run_id: str, source: str) -> LineageRecord:
        try:
            return self._fetch(run_id, source)
        except _UNAVAILABLE as exc:
            raise errors.tracking_unavailable(f"{exc.code} {exc.message}") from exc

    def _fetch(self, run_id: str, source: str) -> LineageRecord:
        try:
            run = self._client.get_run(run_id)
        except (exceptions.NotFound, exceptions.InvalidArgument) as exc:  # a malformed id names no run
            raise errors.run_not_found(run_id) from exc
        if run.info.lifecycle_stage == "deleted":
            raise errors.run_deleted(run_id)
        path = artifact_path(source, run_id, run.info.artifact_uri)
        try:
            stat = self._client.stat_artifact(run_id, path)
        except exceptions.NotFound as exc:
            raise errors.artifact_not_found(run_id, path) from exc
        except exceptions.InvalidArgument as exc:
            raise errors.invalid(
                errors.INVALID_SOURCE, f"'{path}' is not a valid artifact path", "source"
            ) from exc
        listing = self._client.list_artifacts(run_id, path, recursive=True) if stat.is_dir else []
        return LineageRecord(
            run_id=run_id,
            experiment_id=run.info.experiment_id,
            run_name=run.info.run_name,
            artifact_path=path,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            run_tags=dict(run.data.tags),
            files=_digests(path, stat, listing),
        )
