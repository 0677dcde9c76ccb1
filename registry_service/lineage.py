"""The real LineagePort: asks the tracking service about a run through the modelreg client.

Per registration it makes three read calls: GetRun, StatArtifact and ListArtifacts (recursive;
its answer is used only when the source is a directory). They run concurrently: for a
``runs:/<run_id>/<path>`` source the path is known up front, so all three start at once; for a
source under the run's artifact URI the path needs the run, so the two artifact calls start when
GetRun has answered. Answers are read in a fixed order whatever order they arrive in, so the
errors keep their precedence: RUN_NOT_FOUND / RUN_DELETED, then INVALID_SOURCE, then
ARTIFACT_NOT_FOUND.

Deadline: at most two steps run one after the other, so each call gets half of
MODELREG_TRACKING_TIMEOUT_SECONDS as its deadline (the client's retry policy, UNAVAILABLE with
backoff, runs inside it), and waiting for the background calls is bounded by the whole check's
deadline too: the check ends within the configured timeout. The request id of the registry call
travels to tracking from every thread (each call runs in a copy of the caller's context), so
both logs show one id.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from modelreg import exceptions, wire
from modelreg.config import TlsConfig
from modelreg.entities import FileInfo, Run
from modelreg.tracking_client import TrackingClient
from modelreg_server.context import CallContext
from modelreg_server.errors import InvalidArgumentError
from registry_service import lineage_codec
from registry_service.domain import errors
from registry_service.domain.entities import EncodedLineage, FileDigest, LineageRecord

T = TypeVar("T")
_SEQUENTIAL_STEPS = 2  # GetRun, then StatArtifact and ListArtifacts side by side
# The artifact calls run on the pool while the caller's thread runs GetRun.
_POOL_CALLS_PER_CHECK = 2
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
            raise errors.InvalidSource(f"source names run '{source_run}', not run '{run_id}'", "source")
    elif artifact_uri and source.startswith(root):
        path = source.removeprefix(root)
    else:
        raise errors.InvalidSource(
            f"source must be runs:/{run_id}/<path> or lie under the run's artifact root {artifact_uri}",
            "source",
        )
    segments = path.strip("/").split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise errors.InvalidSource(f"source path '{path}' must be a relative path inside the run", "source")
    return "/".join(segments)


def _early_path(source: str, run_id: str) -> str | None:
    """The artifact path of a valid ``runs:/`` source, known before the run is; None otherwise
    (an invalid source is reported after the run checks, which take precedence)."""
    if not source.startswith("runs:/"):
        return None
    try:
        return artifact_path(source, run_id, "")
    except InvalidArgumentError:
        return None


def _digests(path: str, stat: FileInfo, listing: list[FileInfo]) -> tuple[FileDigest, ...]:
    if not stat.is_dir:
        return (FileDigest(path.rsplit("/", 1)[-1], stat.file_size, stat.sha256),)
    prefix = path + "/"
    return tuple(
        FileDigest(f.path.removeprefix(prefix), f.file_size, f.sha256) for f in listing if not f.is_dir
    )


class TrackingReads(Protocol):
    """The calls of TrackingClient a lineage check makes (a test double stands in for it)."""

    def get_run(self, run_id: str) -> Run: ...
    def stat_artifact(self, run_id: str, path: str) -> FileInfo: ...
    def list_artifacts(self, run_id: str, path: str = "", recursive: bool = False) -> list[FileInfo]: ...
    def close(self) -> None: ...


class TrackingLineage:
    """LineagePort over gRPC; thread-safe (one channel and one small thread pool, shared by the
    server's workers). ``max_checks`` is how many checks may run at once (the server's workers):
    the pool is sized so that no check's calls queue behind another's. ``timeout`` bounds a
    whole check."""

    def __init__(self, client: TrackingReads, timeout: float, max_checks: int = 16) -> None:
        self._timeout = timeout
        self._client = client
        self._pool = ThreadPoolExecutor(_POOL_CALLS_PER_CHECK * max_checks, thread_name_prefix="lineage")

    @classmethod
    def connect(
        cls, target: str, timeout: float, max_checks: int = 16, tls: TlsConfig | None = None
    ) -> TrackingLineage:
        """A check against the tracking service at ``target``; each call gets its share of ``timeout``.
        ``tls``: the files of a ``grpcs://`` target (None: none, the system roots)."""
        client = TrackingClient(target, timeout=timeout / _SEQUENTIAL_STEPS, tls=tls or TlsConfig())
        return cls(client, timeout, max_checks)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def fetch(self, ctx: CallContext, run_id: str, source: str) -> EncodedLineage:
        try:
            with wire.forwarding_request_id(ctx.request_id):
                return lineage_codec.encode(self._fetch(run_id, source, time.monotonic() + self._timeout))
        except _UNAVAILABLE as exc:
            raise errors.TrackingUnavailable(f"{exc.code} {exc.message}") from exc
        except TimeoutError as exc:  # a background call still running at the check's deadline
            raise errors.TrackingUnavailable(f"no answer within {self._timeout}s") from exc

    def _submit(self, call: Callable[[], T]) -> Future[T]:
        return self._pool.submit(contextvars.copy_context().run, call)

    def _artifact_calls(self, run_id: str, path: str) -> tuple[Future[FileInfo], Future[list[FileInfo]]]:
        return (
            self._submit(lambda: self._client.stat_artifact(run_id, path)),
            self._submit(lambda: self._client.list_artifacts(run_id, path, recursive=True)),
        )

    def _run(self, run_id: str) -> Run:
        try:
            run = self._client.get_run(run_id)
        except (exceptions.NotFound, exceptions.InvalidArgument) as exc:  # a malformed id names no run
            raise errors.RunNotFound(run_id) from exc
        if run.info.lifecycle_stage == "deleted":
            raise errors.RunDeleted(run_id)
        return run

    def _fetch(self, run_id: str, source: str, deadline: float) -> LineageRecord:
        early_path = _early_path(source, run_id)
        pending = self._artifact_calls(run_id, early_path) if early_path is not None else None
        run = self._run(run_id)
        path = artifact_path(source, run_id, run.info.artifact_uri)
        stat_call, listing_call = pending or self._artifact_calls(run_id, path)
        try:
            stat = stat_call.result(timeout=max(0.0, deadline - time.monotonic()))
        except exceptions.NotFound as exc:
            raise errors.SourceArtifactNotFound(run_id, path) from exc
        except exceptions.InvalidArgument as exc:
            raise errors.InvalidSource(f"'{path}' is not a valid artifact path", "source") from exc
        listing = listing_call.result(timeout=max(0.0, deadline - time.monotonic())) if stat.is_dir else []
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
