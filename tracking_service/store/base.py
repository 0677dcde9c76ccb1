"""The storage port of the tracking service.

Every method runs in one transaction. Its input is valid already (TrackingService validated it and
parsed any filter, order_by and page token), so the store raises only the errors that depend on the
data: RunNotFound, ExperimentAlreadyExists, RunDeleted, ParamValueConflict and the others of
tracking_service.domain.errors. Run ids are strings, experiment ids the integers they stand for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelreg_server.access.policy import Grant, Grantee, GrantEvent, Subject
from modelreg_server.context import CallContext
from modelreg_server.idempotency import WriteKey
from tracking_service.domain.entities import (
    ArtifactFile,
    Experiment,
    ExperimentAccess,
    Metric,
    MetricPoint,
    NewGrant,
    Run,
    RunEvent,
    RunEventAction,
    RunInfo,
    RunStatus,
    ViewType,
)
from tracking_service.domain.filters import Comparison, OrderBy


class TrackingStore(Protocol):
    """Searches return up to ``limit`` rows from ``offset`` on, in the order asked for (ties broken
    by id): the caller asks for one row past its page to learn whether another page follows.

    A write taking ``write`` applies it at most once per key: it claims the key in its own
    transaction, and a key applied before returns what the call returns now for what the first
    write created or changed, without applying anything (modelreg_server.idempotency)."""

    # Experiments
    def create_experiment(
        self,
        name: str,
        artifact_location: str,
        tags: Mapping[str, str],
        creator: NewGrant | None = None,
        *,
        write: WriteKey | None = None,
    ) -> Experiment:
        """``artifact_location`` "" places the experiment's artifacts under the store's root; any
        other must not be, lie below or lie above another experiment's (ArtifactLocationInUse),
        checked race-free. ``creator`` is granted (and the grant's event recorded) in the same
        transaction."""
        ...

    def get_experiment(self, experiment_id: int) -> Experiment: ...
    def get_experiment_by_name(self, name: str) -> Experiment: ...
    def search_experiments(
        self,
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        view: ViewType,
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[Experiment]:
        """With ``readable_by``, only the experiments granted to that user or its groups."""
        ...

    def rename_experiment(
        self, experiment_id: int, new_name: str, *, write: WriteKey | None = None
    ) -> Experiment: ...
    def set_experiment_tag(
        self, experiment_id: int, key: str, value: str, *, write: WriteKey | None = None
    ) -> None: ...
    def delete_experiment_tag(
        self, experiment_id: int, key: str, *, write: WriteKey | None = None
    ) -> None: ...
    def delete_experiment(
        self, experiment_id: int, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None: ...
    def restore_experiment(
        self, experiment_id: int, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None: ...

    # Permissions
    def access(
        self, grantee: Grantee, *, experiment_id: int | None = None, run_id: str | None = None
    ) -> ExperimentAccess | None:
        """The experiment (``experiment_id``'s, or ``run_id``'s) and the grantee's highest grant on
        it, in one query; None when it does not exist."""
        ...

    def set_permission(self, experiment_id: int, grant: NewGrant, *, write: WriteKey | None = None) -> Grant:
        """Grants (replacing an earlier grant to the same subject) and records the SET event."""
        ...

    def delete_permission(
        self, experiment_id: int, subject: Subject, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        """Removes the grant (PermissionNotFound without one) and records the DELETE event."""
        ...

    def list_permissions(self, experiment_id: int, max_events: int) -> tuple[list[Grant], list[GrantEvent]]:
        """The grants, users then groups by name, and the latest ``max_events`` events, oldest first."""
        ...

    # Runs
    def create_run(
        self,
        experiment_id: int,
        run_name: str,
        start_time: int,
        tags: Mapping[str, str],
        parent_run_id: str | None,
        *,
        write: WriteKey | None = None,
    ) -> Run:
        """``start_time`` 0 means now."""
        ...

    def get_run(self, run_id: str) -> Run: ...
    def update_run(
        self,
        run_id: str,
        status: RunStatus | None,
        end_time: int | None,
        run_name: str | None,
        ctx: CallContext,
        *,
        write: WriteKey | None = None,
    ) -> RunInfo:
        """Sets the fields that are not None on a live run."""
        ...

    def delete_run(self, run_id: str, ctx: CallContext, *, write: WriteKey | None = None) -> None: ...
    def restore_run(self, run_id: str, ctx: CallContext, *, write: WriteKey | None = None) -> None: ...
    def list_run_events(
        self,
        experiment_ids: Sequence[int],
        run_id: str,
        actions: Sequence[RunEventAction],
        after: int,
        limit: int,
        readable_by: Grantee | None = None,
    ) -> tuple[list[RunEvent], int]: ...
    def search_runs(
        self,
        experiment_ids: Sequence[int],
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        view: ViewType,
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[Run]:
        """Runs of ``experiment_ids`` (every experiment when empty) that match every filter; with
        ``readable_by``, only those of experiments granted to that user or its groups."""
        ...

    # Run data
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricPoint],
        params: Mapping[str, str],
        tags: Mapping[str, str],
        *,
        write: WriteKey | None = None,
    ) -> None:
        """Logs all of it to a live run, or nothing. A point's timestamp 0 means now; a param
        already logged with another value is ParamValueConflict."""
        ...

    def delete_tag(self, run_id: str, key: str, *, write: WriteKey | None = None) -> None: ...
    def get_metric_history(self, run_id: str, key: str, limit: int, offset: int) -> list[Metric]:
        """The key's points by step, then timestamp."""
        ...

    # Artifact manifest (the bytes live in the ArtifactStore)
    def artifact_root_for_upload(self, run_id: str, path: str) -> str:
        """The run's artifact URI, once the run is live and ``path`` collides with no file or
        directory of the manifest (a file cannot also be a directory)."""
        ...

    def artifact_root(self, run_id: str) -> str:
        """The run's artifact URI (RunNotFound when the run does not exist)."""
        ...

    def record_artifact(
        self, run_id: str, path: str, size: int, sha256: str, *, publish: Callable[[], None]
    ) -> ArtifactFile:
        """In one transaction: locks the run's row, checks that the run is live and ``path`` is
        neither sealed nor colliding, calls ``publish`` (which puts the object in place), then
        records the file. A check or ``publish`` that raises leaves the manifest unchanged."""
        ...

    def get_artifact(self, run_id: str, path: str) -> ArtifactFile | None: ...
    def list_artifact_files(self, run_id: str, prefix: str) -> list[ArtifactFile]:
        """Files at ``prefix`` or below it ("" = all), sorted by path."""
        ...

    def seal_artifacts(self, run_id: str, path: str) -> list[ArtifactFile]:
        """Seals ``path`` of a live run against later uploads at or below it (idempotent) and
        returns the files there, sorted, in the same transaction; ArtifactNotFound when none."""
        ...

    # Garbage collection (``python -m tracking_service gc``)
    def deleted_runs(
        self, experiment_ids: Sequence[int], run_ids: Sequence[str], after: str, limit: int
    ) -> list[DeletedRun]:
        """Up to ``limit`` deleted runs by run id after ``after``, of ``experiment_ids`` and among
        ``run_ids`` (each when not empty)."""
        ...

    def purge_run(self, run_id: str, deleted_before: int, delete_files: Callable[[str], None]) -> str | None:
        """In one transaction: locks the run's row, checks it is still deleted, deleted at or
        before ``deleted_before`` (ms) and holds no sealed file, calls ``delete_files`` with its
        artifact URI, then removes its rows. None when removed, else why it was kept (a
        PURGE_KEPT reason); a ``delete_files`` that raises leaves every row in place."""
        ...

    def deleted_experiments(
        self, experiment_ids: Sequence[int], after: int, limit: int
    ) -> list[DeletedExperiment]:
        """Up to ``limit`` deleted experiments by id after ``after``, among ``experiment_ids``
        when not empty."""
        ...

    def purge_experiment(
        self, experiment_id: int, deleted_before: int, remove_location: Callable[[str], None]
    ) -> str | None:
        """In one transaction: locks the experiment's row, checks it is still deleted, deleted at
        or before ``deleted_before`` and holds no run, calls ``remove_location`` with its artifact
        location, then removes its rows (tags, grants and their history). None when removed,
        else why it was kept (a PURGE_KEPT reason)."""
        ...


# Why purge_run or purge_experiment kept what they were asked to remove.
KEPT_RESTORED = "not deleted any more"
KEPT_RECENT = "deleted too recently"
KEPT_SEALED = "holds registered model files"
KEPT_GONE = "removed already"
KEPT_HAS_RUNS = "holds runs that are kept"
PURGE_KEPT = (KEPT_RESTORED, KEPT_RECENT, KEPT_SEALED, KEPT_GONE, KEPT_HAS_RUNS)


@dataclass(frozen=True)
class DeletedRun:
    run_id: str
    experiment_id: int
    artifact_uri: str
    deleted_time: int  # ms; 0 when the run was deleted before deletion times were kept
    sealed: bool  # holds files a registered model version was made from


@dataclass(frozen=True)
class DeletedExperiment:
    experiment_id: int
    artifact_location: str
    deleted_time: int  # ms (the experiment's last update, which its deletion was)
    live_runs: int  # its runs that are not deleted (a run restored alone)
