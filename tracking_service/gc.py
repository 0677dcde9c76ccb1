"""Garbage collection: removes the artifact files and the rows of runs and experiments deleted
longer ago than a given age, as ``mlflow gc`` does (``python -m tracking_service gc``, which
``modelreg gc`` runs with the service's settings).

What stays, and why, is reported with what goes:

- a run holding sealed files (a registered model version was made from them) is kept whole, rows
  and files: a version's files are never removed;
- a run whose artifact URI lies outside the configured artifact roots keeps its files and rows
  (nothing outside them is ever touched);
- an experiment goes only once deleted long enough and all of its runs are gone; its artifact
  location directory goes only when nothing else is left in it.

Each run is removed in a transaction of its own that locks the run's row and checks again that it
is still deleted, old enough and unsealed, removes its files, then its rows: a run restored while
the collection runs keeps its files, and a crash between the two steps leaves a deleted run
without files, which the next collection removes. Runs are read in batches of BATCH_SIZE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from minio.error import MinioException

from modelreg.wire import now_ms
from modelreg_server.errors import InvalidArgumentError
from modelreg_server.startup import one_line
from tracking_service.artifacts import ArtifactStore, TreeUsage
from tracking_service.domain import rules
from tracking_service.store.base import KEPT_HAS_RUNS, KEPT_RECENT, KEPT_SEALED, DeletedRun, TrackingStore

BATCH_SIZE = 100
KEPT_OUTSIDE_ROOTS = "artifact location outside the configured artifact roots"
KEPT_NOT_DELETED = "not deleted"
# What one run's file removal may raise: the run is then kept (rows untouched) and reported.
_REMOVAL_ERRORS = (OSError, MinioException, InvalidArgumentError)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GcRequest:
    older_than_ms: int
    experiment_ids: tuple[int, ...] = ()
    run_ids: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True)
class RemovedRun:
    run_id: str
    experiment_id: str
    files: int
    bytes: int


@dataclass(frozen=True)
class KeptRun:
    run_id: str
    experiment_id: str
    reason: str


@dataclass(frozen=True)
class RemovedExperiment:
    experiment_id: str
    location_removed: bool  # its (now empty) artifact location directory went too


@dataclass(frozen=True)
class KeptExperiment:
    experiment_id: str
    reason: str


@dataclass
class GcReport:
    dry_run: bool
    deleted_before: int  # ms since the epoch: what was deleted at or before it is old enough
    removed_runs: list[RemovedRun] = field(default_factory=list)
    kept_runs: list[KeptRun] = field(default_factory=list)
    removed_experiments: list[RemovedExperiment] = field(default_factory=list)
    kept_experiments: list[KeptExperiment] = field(default_factory=list)
    failed: bool = False  # some files could not be removed (their runs are kept, with the error)

    @property
    def files(self) -> int:
        return sum(run.files for run in self.removed_runs)

    @property
    def bytes(self) -> int:
        return sum(run.bytes for run in self.removed_runs)


class GarbageCollector:
    def __init__(self, store: TrackingStore, objects: ArtifactStore, artifact_roots: Sequence[str]) -> None:
        self._store = store
        self._objects = objects
        self._roots = [segments for root in artifact_roots if (segments := rules.root_segments(root))]

    def collect(self, request: GcRequest) -> GcReport:
        report = GcReport(request.dry_run, now_ms() - request.older_than_ms)
        self._collect_runs(request, report)
        if request.experiment_ids or not request.run_ids:
            self._collect_experiments(request, report)
        return report

    def _collect_runs(self, request: GcRequest, report: GcReport) -> None:
        seen: set[str] = set()
        after = ""
        while batch := self._store.deleted_runs(request.experiment_ids, request.run_ids, after, BATCH_SIZE):
            after = batch[-1].run_id
            for run in batch:
                seen.add(run.run_id)
                self._collect_run(run, report)
        for run_id in request.run_ids:
            if run_id not in seen:
                report.kept_runs.append(KeptRun(run_id, "", KEPT_NOT_DELETED))

    def _collect_run(self, run: DeletedRun, report: GcReport) -> None:
        experiment_id = str(run.experiment_id)
        reason = self._run_kept(run, report.deleted_before)
        usage = TreeUsage()
        if reason is None:
            try:
                if report.dry_run:
                    usage = self._objects.tree_usage(run.artifact_uri)
                else:
                    usage, reason = self._purge_run(run, report.deleted_before)
            except _REMOVAL_ERRORS as exc:
                _log.warning("could not remove the files of run %s", run.run_id, exc_info=True)
                report.failed = True
                reason = f"its files could not be removed: {one_line(exc)}"
        if reason is None:
            report.removed_runs.append(RemovedRun(run.run_id, experiment_id, usage.files, usage.bytes))
        else:
            report.kept_runs.append(KeptRun(run.run_id, experiment_id, reason))

    def _run_kept(self, run: DeletedRun, deleted_before: int) -> str | None:
        if run.deleted_time > deleted_before:
            return KEPT_RECENT
        if run.sealed:
            return KEPT_SEALED
        if not rules.under_roots(run.artifact_uri, self._roots):
            return KEPT_OUTSIDE_ROOTS
        return None

    def _purge_run(self, run: DeletedRun, deleted_before: int) -> tuple[TreeUsage, str | None]:
        removed: list[TreeUsage] = []

        def delete_files(artifact_uri: str) -> None:
            removed.append(self._objects.delete_tree(artifact_uri))
            # Runs keep their files in <location>/<run id>/artifacts: the run's directory goes too.
            run_directory, _, leaf = artifact_uri.rpartition("/")
            if leaf == "artifacts" and run_directory.endswith(f"/{run.run_id}"):
                self._objects.remove_empty_directory(run_directory)

        reason = self._store.purge_run(run.run_id, deleted_before, delete_files)
        return (removed[0] if removed else TreeUsage()), reason

    def _collect_experiments(self, request: GcRequest, report: GcReport) -> None:
        # In a dry run the runs stay: an experiment would go when none of its runs is kept.
        keeping = {run.experiment_id for run in report.kept_runs}
        seen: set[int] = set()
        after = -1
        while batch := self._store.deleted_experiments(request.experiment_ids, after, BATCH_SIZE):
            after = batch[-1].experiment_id
            for experiment in batch:
                seen.add(experiment.experiment_id)
                experiment_id = str(experiment.experiment_id)
                reason: str | None
                location_removed: list[bool] = []
                if experiment.deleted_time > report.deleted_before:
                    reason = KEPT_RECENT
                elif report.dry_run:
                    reason = KEPT_HAS_RUNS if experiment.live_runs or experiment_id in keeping else None
                else:
                    remove = self._location_remover(location_removed)
                    try:
                        reason = self._store.purge_experiment(
                            experiment.experiment_id, report.deleted_before, remove
                        )
                    except _REMOVAL_ERRORS as exc:
                        _log.warning("could not remove experiment %s", experiment_id, exc_info=True)
                        report.failed = True
                        reason = f"its artifact location could not be removed: {one_line(exc)}"
                if reason is None:
                    removed = RemovedExperiment(experiment_id, any(location_removed))
                    report.removed_experiments.append(removed)
                else:
                    report.kept_experiments.append(KeptExperiment(experiment_id, reason))
        for named in request.experiment_ids:
            if named not in seen:
                report.kept_experiments.append(KeptExperiment(str(named), KEPT_NOT_DELETED))

    def _location_remover(self, removed: list[bool]) -> Callable[[str], None]:
        def remove(location: str) -> None:
            if rules.under_roots(location, self._roots):
                removed.append(self._objects.remove_empty_directory(location))

        return remove
