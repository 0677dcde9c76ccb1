"""Entities -> protos (the registry takes plain fields in, so only outputs need converters)."""

from __future__ import annotations

from typing import Any

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

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
        model_id=event.model_id,
        gate_results=[gate_result(result) for result in event.gate_results],
        approver=event.approver,
        gate_overridden=event.gate_overridden,
    )


def gate_result(result: GateResult) -> pb.GateResult:
    return pb.GateResult(
        clause=result.clause,
        passed=result.passed,
        left=result.left,
        right=result.right,
        message=result.message,
    )


def promotion_gate(gate: PromotionGate) -> pb.PromotionGate:
    return pb.PromotionGate(
        name=gate.name,
        target=gate.target,
        condition=gate.condition,
        require_signature=gate.require_signature,
        require_digests=gate.require_digests,
        approvals_required=gate.approvals_required,
        updated_by=gate.updated_by,
        updated_time=gate.updated_time,
    )


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
    return pb.ApprovalRequest(
        request_id=request.request_id,
        name=request.name,
        version=request.version,
        target=request.target,
        status=_APPROVAL_STATUSES[request.status],
        requested_by=request.requested_by,
        requested_time=request.requested_time,
        expires_time=request.expires_time,
        comment=request.comment,
        decided_by=request.decided_by,
        decided_time=request.decided_time,
        decision_comment=request.decision_comment,
    )


def protection(value: ModelProtection) -> pb.ModelProtection:
    return pb.ModelProtection(production=value.production, aliases=value.aliases)


def file_digest(digest: FileDigest) -> pb.FileDigest:
    return pb.FileDigest(path=digest.path, size=digest.size, sha256=digest.sha256)


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
