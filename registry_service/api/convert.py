"""Entities -> protos (the registry takes plain fields in, so only outputs need converters)."""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.descriptor import Descriptor
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.message import Message

from modelreg.registry.v1 import registry_pb2 as pb
from registry_service.domain.entities import (
    EventAction,
    FileDigest,
    GateResult,
    ModelEvent,
    ModelProtection,
    ModelVersion,
    RegisteredModel,
    Stage,
    VersionStatus,
)
from registry_service.domain.gates import ApprovalRequest, ApprovalStatus, PromotionGate

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_M = TypeVar("_M", bound=Message)

_STAGES = {
    Stage.NONE: pb.STAGE_NONE,
    Stage.STAGING: pb.STAGE_STAGING,
    Stage.PRODUCTION: pb.STAGE_PRODUCTION,
    Stage.ARCHIVED: pb.STAGE_ARCHIVED,
}
_STATUSES = {
    status: pb.ModelVersionStatus.Value(f"MODEL_VERSION_STATUS_{status.value}") for status in VersionStatus
}
ACTION_NUMBERS = {action: pb.EventAction.Value(f"EVENT_ACTION_{action.value}") for action in EventAction}


@functools.cache
def _fields_in_common(entity_type: type[DataclassInstance], message: Descriptor) -> tuple[str, ...]:
    return tuple(
        field.name for field in dataclasses.fields(entity_type) if field.name in message.fields_by_name
    )


def message_from(message_type: type[_M], entity: DataclassInstance, **converted: Any) -> _M:
    """A ``message_type`` holding each field of ``entity`` that the message has by the same
    name, as it is; ``converted`` sets the others and those the proto holds otherwise (enums,
    nested messages)."""
    same = {
        name: getattr(entity, name)
        for name in _fields_in_common(type(entity), message_type.DESCRIPTOR)
        if name not in converted
    }
    return message_type(**same, **converted)


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
    """The model with its latest versions without their lineage (GetModelVersion has it): four
    lineages of runs at their caps would take a model past the message limit."""
    message = pb.RegisteredModel(
        name=model.name,
        creation_time=model.creation_time,
        last_updated_time=model.last_updated_time,
        description=model.description,
        tags=model.tags,
        aliases=[pb.Alias(alias=alias, version=version) for alias, version in model.aliases.items()],
    )
    for version in model.latest_versions:
        add_model_version(message.latest_versions, version, with_lineage=False)
    return message


def model_event(event: ModelEvent) -> pb.ModelEvent:
    return message_from(
        pb.ModelEvent,
        event,
        action=ACTION_NUMBERS[event.action],
        gate_results=[gate_result(result) for result in event.gate_results],
    )


def gate_result(result: GateResult) -> pb.GateResult:
    return message_from(pb.GateResult, result)


def promotion_gate(gate: PromotionGate) -> pb.PromotionGate:
    return message_from(pb.PromotionGate, gate)


_APPROVAL_STATUSES = {
    status: pb.ApprovalStatus.Value(f"APPROVAL_STATUS_{status.value}") for status in ApprovalStatus
}
_APPROVAL_STATUSES_IN: dict[int, ApprovalStatus] = {
    int(v): status for status, v in _APPROVAL_STATUSES.items()
}


def approval_status_in(value: int) -> ApprovalStatus | None:
    """A request's status filter; UNSPECIFIED (or a number this server does not know): any."""
    return _APPROVAL_STATUSES_IN.get(int(value))


def approval_request(request: ApprovalRequest) -> pb.ApprovalRequest:
    return message_from(pb.ApprovalRequest, request, status=_APPROVAL_STATUSES[request.status])


def protection(value: ModelProtection) -> pb.ModelProtection:
    return message_from(pb.ModelProtection, value)


def file_digest(digest: FileDigest) -> pb.FileDigest:
    return message_from(pb.FileDigest, digest)


def event_action_name(value: int) -> str:
    """An EventAction of a request by name, for the domain to check: a number this proto does not
    define (or UNSPECIFIED) keeps its number, which names no action."""
    try:
        return pb.EventAction.Name(value)  # type: ignore[arg-type]
    except ValueError:
        return str(value)


def serving_outcome(value: int) -> bool | None:
    """A ReportServingStatusRequest outcome: True for LOADED, False for LOAD_FAILED, None for
    UNSPECIFIED or a number this proto does not define (the domain refuses it)."""
    if value == pb.SERVING_OUTCOME_LOADED:
        return True
    return False if value == pb.SERVING_OUTCOME_LOAD_FAILED else None
