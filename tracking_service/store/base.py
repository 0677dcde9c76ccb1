"""The storage port of the tracking service.

Every method validates its input with the domain rules, runs in one transaction and raises the
typed errors of tracking_service.domain.errors. Ids are strings, as on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from tracking_service.domain.entities import (
    ArtifactFile,
    Experiment,
    Metric,
    MetricPoint,
    Page,
    Param,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)


class TrackingStore(Protocol):
    # Experiments
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Experiment: ...
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    def get_experiment_by_name(self, name: str) -> Experiment: ...
    def search_experiments(
        self,
        filter_string: str = "",
        order_by: Sequence[str] = (),
        view: ViewType = ViewType.ACTIVE_ONLY,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Experiment]: ...
    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment: ...
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...
    def delete_experiment(self, experiment_id: str) -> None: ...
    def restore_experiment(self, experiment_id: str) -> None: ...

    # Runs
    def create_run(
        self,
        experiment_id: str = "",
        run_name: str = "",
        start_time: int = 0,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str = "",
    ) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...
    def delete_run(self, run_id: str) -> None: ...
    def restore_run(self, run_id: str) -> None: ...
    def search_runs(
        self,
        experiment_ids: Sequence[str] = (),
        filter_string: str = "",
        view: ViewType = ViewType.ACTIVE_ONLY,
        order_by: Sequence[str] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Run]: ...

    # Run data
    def log_param(self, run_id: str, param: Param) -> None: ...
    def log_metric(self, run_id: str, metric: MetricPoint) -> None: ...
    def set_tag(self, run_id: str, key: str, value: str) -> None: ...
    def delete_tag(self, run_id: str, key: str) -> None: ...
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricPoint] = (),
        params: Sequence[Param] = (),
        tags: Mapping[str, str] | None = None,
    ) -> None: ...
    def log_metrics(self, run_id: str, metrics: Sequence[MetricPoint]) -> int:
        """Stores up to 10,000 points atomically; returns how many were stored."""
        ...

    def get_metric_history(
        self, run_id: str, key: str, page_size: int = 0, page_token: str = ""
    ) -> Page[Metric]: ...

    # Artifact manifest (the bytes live in the ArtifactStore)
    def artifact_root_for_upload(self, run_id: str, path: str) -> str:
        """The run's artifact URI, once the run is live and ``path`` collides with no file or
        directory of the manifest (a file cannot also be a directory)."""
        ...

    def artifact_root(self, run_id: str) -> str:
        """The run's artifact URI (RunNotFound when the run does not exist)."""
        ...

    def record_artifact(self, run_id: str, path: str, size: int, sha256: str) -> ArtifactFile: ...
    def get_artifact(self, run_id: str, path: str) -> ArtifactFile | None: ...
    def list_artifact_files(self, run_id: str, prefix: str) -> list[ArtifactFile]:
        """Files at ``prefix`` or below it ("" = all), sorted by path."""
        ...
