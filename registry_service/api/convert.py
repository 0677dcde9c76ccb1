"""Entities -> protos (the registry takes plain fields in, so only outputs need converters)."""

from __future__ import annotations

from typing import Any

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from modelreg.registry.v1 import registry_pb2 as pb
from registry_service.domain.entities import (
    EventAction,
    FileDigest,
    ModelEvent,
    ModelProtection,
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


def _version_fields(version: ModelVersion) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": version.name,
        "version": version.version,
        "creation_time": version.creation_time,
        "last_updated_time": version.last_updated_time,
        "current_stage": _STAGES[version.current_stage],
        "description": version.description,
        "source": version.source,
        "run_id": version.run_id,
        "status": _STATUSES[version.status],
        "status_message": version.status_message,
        "user_id": version.user_id,
    }
    # Passing empty maps and lists still costs a conversion each: hundreds per search page.
    if version.tags:
        fields["tags"] = version.tags
    if version.aliases:
        fields["aliases"] = version.aliases
    return fields


def _with_lineage(message: pb.ModelVersion, version: ModelVersion) -> pb.ModelVersion:
    if version.lineage is not None:
        # The stored bytes are the Lineage message itself (registry_service.lineage_codec).
        message.lineage.MergeFromString(version.lineage)
    return message


def add_model_version(
    versions: RepeatedCompositeFieldContainer[pb.ModelVersion], version: ModelVersion, *, with_lineage: bool
) -> None:
    """Appends ``version`` to a repeated field: building in place saves a copy per message."""
    added = versions.add(**_version_fields(version))
    if with_lineage:
        _with_lineage(added, version)


def model_version(version: ModelVersion) -> pb.ModelVersion:
    return _with_lineage(pb.ModelVersion(**_version_fields(version)), version)


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


def protection(value: ModelProtection) -> pb.ModelProtection:
    return pb.ModelProtection(production=value.production, aliases=value.aliases)


def file_digest(digest: FileDigest) -> pb.FileDigest:
    return pb.FileDigest(path=digest.path, size=digest.size, sha256=digest.sha256)
