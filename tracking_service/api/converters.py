"""Proto <-> entity conversion. Unknown enum numbers become INVALID_ARGUMENT, never a crash."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelreg.tracking.v1 import tracking_pb2 as pb
from modelreg_server.errors import InvalidArgumentError
from modelreg_server.event_log import encode_cursor
from tracking_service.domain.entities import (
    ArtifactFile,
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunEvent,
    RunEventAction,
    RunInfo,
    RunStatus,
    ViewType,
)

_STAGES: dict[LifecycleStage, pb.LifecycleStage.ValueType] = {
    LifecycleStage.ACTIVE: pb.LIFECYCLE_STAGE_ACTIVE,
    LifecycleStage.DELETED: pb.LIFECYCLE_STAGE_DELETED,
}
_STATUSES: dict[RunStatus, pb.RunStatus.ValueType] = {
    RunStatus.RUNNING: pb.RUN_STATUS_RUNNING,
    RunStatus.SCHEDULED: pb.RUN_STATUS_SCHEDULED,
    RunStatus.FINISHED: pb.RUN_STATUS_FINISHED,
    RunStatus.FAILED: pb.RUN_STATUS_FAILED,
    RunStatus.KILLED: pb.RUN_STATUS_KILLED,
}
_STATUSES_FROM_PROTO: dict[int, RunStatus] = {int(number): status for status, number in _STATUSES.items()}
_VIEWS: dict[int, ViewType] = {
    pb.VIEW_TYPE_UNSPECIFIED: ViewType.ACTIVE_ONLY,
    pb.VIEW_TYPE_ACTIVE_ONLY: ViewType.ACTIVE_ONLY,
    pb.VIEW_TYPE_DELETED_ONLY: ViewType.DELETED_ONLY,
    pb.VIEW_TYPE_ALL: ViewType.ALL,
}


_RUN_EVENT_ACTIONS: dict[RunEventAction, pb.RunEventAction.ValueType] = {
    action: pb.RunEventAction.Value(f"RUN_EVENT_ACTION_{action.value}") for action in RunEventAction
}
_RUN_EVENT_ACTIONS_FROM_PROTO = {int(number): action for action, number in _RUN_EVENT_ACTIONS.items()}


def run_event_actions(numbers: Iterable[int]) -> list[RunEventAction]:
    """The actions of a ListRunEventsRequest; INVALID_EVENT_ACTION for any other number."""
    try:
        return [_RUN_EVENT_ACTIONS_FROM_PROTO[number] for number in numbers]
    except KeyError as missing:
        raise InvalidArgumentError(
            "INVALID_EVENT_ACTION",
            f"actions: {missing.args[0]} is not a RunEventAction",
            {"field": "actions"},
        ) from None


def run_event_to_proto(event: RunEvent) -> pb.RunEvent:
    return pb.RunEvent(
        cursor=encode_cursor(event.position),
        run_id=event.run_id,
        experiment_id=str(event.experiment_id),
        action=_RUN_EVENT_ACTIONS[event.action],
        actor=event.actor,
        time=event.time,
        request_id=event.request_id,
    )


def view_type(number: int, field: str) -> ViewType:
    try:
        return _VIEWS[number]
    except KeyError:
        raise InvalidArgumentError(
            "INVALID_VIEW_TYPE", f"{field} {number} is not a ViewType", {"field": field}
        ) from None


def run_status(number: int) -> RunStatus:
    try:
        return _STATUSES_FROM_PROTO[number]
    except KeyError:
        raise InvalidArgumentError(
            "INVALID_STATUS", f"status {number} is not a settable RunStatus", {"field": "status"}
        ) from None


def experiment_to_proto(experiment: Experiment) -> pb.Experiment:
    return pb.Experiment(
        experiment_id=experiment.experiment_id,
        name=experiment.name,
        artifact_location=experiment.artifact_location,
        lifecycle_stage=_STAGES[experiment.lifecycle_stage],
        creation_time=experiment.creation_time,
        last_update_time=experiment.last_update_time,
        tags=dict(experiment.tags),
    )


def run_info_to_proto(info: RunInfo) -> pb.RunInfo:
    return pb.RunInfo(**_run_info_fields(info))


def _run_info_fields(info: RunInfo) -> dict[str, Any]:
    return {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "status": _STATUSES[info.status],
        "start_time": info.start_time,
        "end_time": info.end_time or 0,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": _STAGES[info.lifecycle_stage],
        "parent_run_id": info.parent_run_id or "",
    }


def metric_to_proto(metric: Metric) -> pb.Metric:
    return pb.Metric(key=metric.key, value=metric.value, timestamp=metric.timestamp, step=metric.step)


def run_to_proto(run: Run) -> pb.Run:
    return pb.Run(**_run_fields(run))


def runs_to_proto(runs: Iterable[Run]) -> list[Any]:
    """Runs as the field dicts a message constructor takes (``SearchRunsResponse(runs=...)``).

    upb builds nested messages from plain dicts inside one constructor call at under half the cost
    of building each sub-message object and copying it into its parent; a search returns a
    thousand runs with their data. (Typed Any: the generated stubs declare message arguments only.)
    """
    return [_run_fields(run) for run in runs]


def _run_fields(run: Run) -> dict[str, Any]:
    data = run.data
    data_fields: dict[str, Any] = {
        "metrics": [
            {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step} for m in data.metrics
        ],
        "params": [{"key": p.key, "value": p.value} for p in data.params],
    }
    if data.tags:  # an empty map argument still costs a map initialisation
        data_fields["tags"] = data.tags
    return {"info": _run_info_fields(run.info), "data": data_fields}


def file_to_proto(file: ArtifactFile) -> pb.FileInfo:
    return pb.FileInfo(path=file.path, is_dir=file.is_dir, file_size=file.size, sha256=file.sha256)


def param_from_proto(param: pb.Param) -> Param:
    return Param(key=param.key, value=param.value)
