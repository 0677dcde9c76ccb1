"""Entities -> protos (the registry takes plain fields in, so only outputs need converters)."""

from __future__ import annotations

from modelreg.registry.v1 import registry_pb2 as pb
from registry_service.domain.entities import (
    EventAction,
    LineageRecord,
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    Stage,
    VersionStatus,
)

_STAGES = {
    Stage.NONE: pb.STAGE_NONE,
    Stage.STAGING: pb.STAGE_STAGING,
    Stage.PRODUCTION: pb.STAGE_PRODUCTION,
    Stage.ARCHIVED: pb.STAGE_ARCHIVED,
}
_STATUSES = {
    status: pb.ModelVersionStatus.Value(f"MODEL_VERSION_STATUS_{status.value}") for status in VersionStatus
}
_ACTIONS = {action: pb.EventAction.Value(f"EVENT_ACTION_{action.value}") for action in EventAction}


def lineage(record: LineageRecord) -> pb.Lineage:
    return pb.Lineage(
        run_id=record.run_id,
        experiment_id=record.experiment_id,
        run_name=record.run_name,
        params=record.params,
        metrics=record.metrics,
        run_tags=record.run_tags,
        artifact_path=record.artifact_path,
        files=[pb.FileDigest(path=f.path, size=f.size, sha256=f.sha256) for f in record.files],
    )


def model_version(version: ModelVersion) -> pb.ModelVersion:
    message = pb.ModelVersion(
        name=version.name,
        version=version.version,
        creation_time=version.creation_time,
        last_updated_time=version.last_updated_time,
        current_stage=_STAGES[version.current_stage],
        description=version.description,
        source=version.source,
        run_id=version.run_id,
        status=_STATUSES[version.status],
        status_message=version.status_message,
        tags=version.tags,
        aliases=version.aliases,
        user_id=version.user_id,
    )
    if version.lineage is not None:
        message.lineage.CopyFrom(lineage(version.lineage))
    return message


def registered_model(model: RegisteredModel) -> pb.RegisteredModel:
    return pb.RegisteredModel(
        name=model.name,
        creation_time=model.creation_time,
        last_updated_time=model.last_updated_time,
        description=model.description,
        tags=model.tags,
        latest_versions=[model_version(v) for v in model.latest_versions],
        aliases=[pb.Alias(alias=alias, version=version) for alias, version in model.aliases.items()],
    )


def model_event(event: ModelEvent) -> pb.ModelEvent:
    return pb.ModelEvent(
        event_id=event.event_id,
        name=event.name,
        version=event.version,
        action=_ACTIONS[event.action],
        from_value=event.from_value,
        to_value=event.to_value,
        actor=event.actor,
        time=event.time,
        comment=event.comment,
    )
