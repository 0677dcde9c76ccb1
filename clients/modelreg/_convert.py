"""Generated messages → entities (and the few enums the client sends). Only the clients use it.

Conversions run once per item of every listing (300 versions with their lineage, 100 metrics of a
run), so they read each field once, look enum names up in dicts built at import and copy maps with
:func:`_dict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import attrgetter
from typing import TypeVar

from modelreg import entities as e
from modelreg.access.v1 import access_pb2 as access_pb
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.tracking.v1 import tracking_pb2 as tpb

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")

_STAGE_NAMES = {
    rpb.STAGE_UNSPECIFIED: "None",
    rpb.STAGE_NONE: "None",
    rpb.STAGE_STAGING: "Staging",
    rpb.STAGE_PRODUCTION: "Production",
    rpb.STAGE_ARCHIVED: "Archived",
}


_RUN_STATUS_NAMES = {number: name.removeprefix("RUN_STATUS_") for name, number in tpb.RunStatus.items()}
_VERSION_STATUS_NAMES = {
    number: name.removeprefix("MODEL_VERSION_STATUS_") for name, number in rpb.ModelVersionStatus.items()
}
_EVENT_ACTION_NAMES = {number: name.removeprefix("EVENT_ACTION_") for name, number in rpb.EventAction.items()}
# (key, value) of a Metric or Param message, for dict(map(...)): a third cheaper than a comprehension.
_KEY_VALUE = attrgetter("key", "value")

# RunInfo's fields in e.RunInfo's order.
_RUN_INFO_FIELDS = attrgetter(
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
    "lifecycle_stage",
    "parent_run_id",
)

K = TypeVar("K")
V = TypeVar("V")


def _dict(proto_map: Mapping[K, V]) -> dict[K, V]:
    """A plain copy of a map field. upb maps are not dicts, so ``dict(m)`` runs the Python-level
    Mapping mixins; a comprehension over the map's C iterator is a quarter cheaper."""
    return {key: proto_map[key] for key in proto_map}


def run_status_to_proto(status: str) -> tpb.RunStatus.ValueType:
    """``"FINISHED"`` (any case) → RUN_STATUS_FINISHED; unknown names raise ValueError."""
    name = status.upper()
    if name not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {', '.join(RUN_STATUSES)}")
    return tpb.RunStatus.Value(f"RUN_STATUS_{name}")


def view_type_to_proto(view_type: str | int) -> tpb.ViewType.ValueType:
    """Accepts MLflow's ``ViewType`` names ("ACTIVE_ONLY", "DELETED_ONLY", "ALL") or its ints 1/2/3."""
    if isinstance(view_type, int):
        if view_type not in (1, 2, 3):
            raise ValueError(f"unknown view type {view_type!r}")
        return tpb.ViewType.ValueType(view_type)
    name = view_type.upper()
    if name not in VIEW_TYPES:
        raise ValueError(f"unknown view type {view_type!r}; expected one of {', '.join(VIEW_TYPES)}")
    return tpb.ViewType.Value(f"VIEW_TYPE_{name}")


def _lifecycle(stage: tpb.LifecycleStage.ValueType) -> str:
    return "deleted" if stage == tpb.LIFECYCLE_STAGE_DELETED else "active"


def metric(m: tpb.Metric) -> e.Metric:
    return e.Metric(key=m.key, value=m.value, timestamp=m.timestamp, step=m.step)


def metrics_request(run_id: str, points: Iterable[e.Metric]) -> tpb.LogMetricsRequest:
    """One LogMetrics message: ``add`` builds each point inside the message, twice as fast as
    building Metric messages and copying them in (this is the client's share of the metric path)."""
    request = tpb.LogMetricsRequest(run_id=run_id)
    add = request.metrics.add
    for m in points:
        add(key=m.key, value=m.value, timestamp=m.timestamp, step=m.step)
    return request


def run_info(info: tpb.RunInfo) -> e.RunInfo:
    run_id, experiment_id, run_name, status, start_time, end_time, artifact_uri, stage, parent = (
        _RUN_INFO_FIELDS(info)
    )
    return e.RunInfo(
        run_id,
        experiment_id,
        run_name,
        _RUN_STATUS_NAMES[status],
        start_time,
        end_time or None,
        artifact_uri,
        _lifecycle(stage),
        parent or None,
    )


def run(r: tpb.Run) -> e.Run:
    """One run of a search page (a thousand of them): each field read once, in one C call for
    the info, and the tag map copied only when it holds something."""
    data = r.data
    tags = data.tags
    return e.Run(
        run_info(r.info),
        e.RunData(
            dict(map(_KEY_VALUE, data.metrics)),
            dict(map(_KEY_VALUE, data.params)),
            _dict(tags) if tags else {},
        ),
    )


def experiment(x: tpb.Experiment) -> e.Experiment:
    return e.Experiment(
        experiment_id=x.experiment_id,
        name=x.name,
        artifact_location=x.artifact_location,
        lifecycle_stage=_lifecycle(x.lifecycle_stage),
        creation_time=x.creation_time,
        last_update_time=x.last_update_time,
        tags=_dict(x.tags),
    )


def file_info(f: tpb.FileInfo) -> e.FileInfo:
    return e.FileInfo(path=f.path, is_dir=f.is_dir, file_size=f.file_size, sha256=f.sha256)


def stage_name(stage: rpb.Stage.ValueType) -> str:
    return _STAGE_NAMES[stage]


def lineage(li: rpb.Lineage) -> e.Lineage:
    return e.Lineage(
        run_id=li.run_id,
        experiment_id=li.experiment_id,
        run_name=li.run_name,
        params=_dict(li.params),
        metrics=_dict(li.metrics),
        run_tags=_dict(li.run_tags),
        artifact_path=li.artifact_path,
        files=tuple([e.FileDigest(f.path, f.size, f.sha256) for f in li.files]),
    )


def model_version(mv: rpb.ModelVersion) -> e.ModelVersion:
    return e.ModelVersion(
        name=mv.name,
        version=mv.version,
        creation_timestamp=mv.creation_time,
        last_updated_timestamp=mv.last_updated_time,
        current_stage=stage_name(mv.current_stage),
        description=mv.description,
        source=mv.source,
        run_id=mv.run_id or None,
        status=_VERSION_STATUS_NAMES[mv.status],
        status_message=mv.status_message,
        tags=_dict(mv.tags),
        aliases=list(mv.aliases),
        lineage=lineage(mv.lineage) if mv.HasField("lineage") else None,
        user_id=mv.user_id,
    )


def registered_model(rm: rpb.RegisteredModel) -> e.RegisteredModel:
    return e.RegisteredModel(
        name=rm.name,
        creation_timestamp=rm.creation_time,
        last_updated_timestamp=rm.last_updated_time,
        description=rm.description,
        tags=_dict(rm.tags),
        latest_versions=[model_version(v) for v in rm.latest_versions],
        aliases={a.alias: a.version for a in rm.aliases},
    )


def model_event(ev: rpb.ModelEvent) -> e.ModelEvent:
    return e.ModelEvent(
        event_id=ev.event_id,
        name=ev.name,
        version=ev.version,
        action=_EVENT_ACTION_NAMES[ev.action],
        from_value=ev.from_value,
        to_value=ev.to_value,
        actor=ev.actor,
        time=ev.time,
        comment=ev.comment,
    )


_LEVEL_NAMES = {
    access_pb.PERMISSION_LEVEL_READ: "READ",
    access_pb.PERMISSION_LEVEL_EDIT: "EDIT",
    access_pb.PERMISSION_LEVEL_MANAGE: "MANAGE",
}


_LEVELS = {name: number for number, name in _LEVEL_NAMES.items()}


def permission_level(level: str) -> access_pb.PermissionLevel.ValueType:
    """READ, EDIT or MANAGE (any case) → the enum; anything else is sent as UNSPECIFIED, which the
    server refuses with INVALID_PERMISSION_LEVEL."""
    return _LEVELS.get(level.upper(), access_pb.PERMISSION_LEVEL_UNSPECIFIED)


def principal(user: str, group: str) -> access_pb.Principal:
    return access_pb.Principal(user=user, group=group)


def permission(p: access_pb.Permission) -> e.Permission:
    return e.Permission(
        p.principal.user, p.principal.group, _LEVEL_NAMES.get(p.level, ""), p.granted_by, p.granted_at
    )


def permission_event(v: access_pb.PermissionEvent) -> e.PermissionEvent:
    return e.PermissionEvent(
        v.time,
        v.actor,
        v.action,
        v.principal.user,
        v.principal.group,
        _LEVEL_NAMES.get(v.level, ""),
        v.request_id,
    )


def model_protection(p: rpb.ModelProtection) -> e.ModelProtection:
    return e.ModelProtection(p.production, tuple(p.aliases))
