"""The storage Protocol of the registry. Every method is one transaction."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

from modelreg_server.access.policy import Grant, Grantee, Level, Subject
from modelreg_server.context import CallContext
from modelreg_server.idempotency import WriteKey
from registry_service.domain.entities import (
    EncodedLineage,
    EventAction,
    ModelAccess,
    ModelEvent,
    ModelPermissions,
    ModelProtection,
    ModelVersion,
    RegisteredModel,
    RollbackResult,
    Stage,
)
from registry_service.domain.filters import Comparison, OrderBy
from registry_service.domain.gates import ApprovalRequest, ApprovalStatus, PromotionCheck, PromotionGate
from registry_service.domain.rules import ModelUri


class RegistryStore(Protocol):
    """Persists the registry. Raises the domain errors (NotFound, AlreadyExists, ...).

    ``ctx`` is the call making the change: its actor and request id are recorded in the history
    event the change appends. A write taking ``write`` applies it at most once per key: it claims
    the key in its own transaction, and a key applied before returns what the call returns now
    for what the first write created or changed, appending no event (modelreg_server.idempotency).
    """

    def create_model(
        self,
        name: str,
        description: str,
        tags: Mapping[str, str],
        ctx: CallContext,
        creator_level: Level | None = None,
        *,
        write: WriteKey | None = None,
    ) -> RegisteredModel:
        """``creator_level``: the grant ``ctx.actor`` gets on the new model, in the same transaction."""
        ...

    def get_model(self, name: str) -> RegisteredModel: ...
    def require_model(self, name: str) -> None:
        """Raises NotFound (REGISTERED_MODEL_NOT_FOUND) unless the model exists."""
        ...

    def rename_model(
        self, name: str, new_name: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> RegisteredModel: ...
    def update_model(
        self, name: str, description: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> RegisteredModel: ...
    def delete_model(self, name: str, ctx: CallContext, *, write: WriteKey | None = None) -> None: ...
    def search_models(
        self,
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[RegisteredModel]:
        """``readable_by``: only models it holds READ or more on (a condition of the query)."""
        ...

    def set_model_tag(
        self, name: str, key: str, value: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None: ...
    def delete_model_tag(
        self, name: str, key: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None: ...

    def create_version(
        self,
        name: str,
        *,
        source: str,
        run_id: str,
        description: str,
        tags: Mapping[str, str],
        lineage: EncodedLineage | None,
        ctx: CallContext,
        write: WriteKey | None = None,
    ) -> ModelVersion: ...
    def get_version(self, name: str, version: int) -> ModelVersion: ...
    def version_lineage(self, name: str, version: int) -> EncodedLineage | None:
        """The stored lineage of a version (None: registered without a run); NotFound otherwise."""
        ...

    def update_version(
        self, name: str, version: int, description: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> ModelVersion: ...
    def delete_version(
        self, name: str, version: int, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None: ...
    def search_versions(
        self,
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[ModelVersion]: ...
    def set_version_tag(
        self,
        name: str,
        version: int,
        key: str,
        value: str,
        ctx: CallContext,
        *,
        write: WriteKey | None = None,
    ) -> None: ...
    def delete_version_tag(
        self, name: str, version: int, key: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None: ...

    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage,
        *,
        archive_existing: bool,
        comment: str,
        ctx: CallContext,
        protected: Stage | None = None,
        check: PromotionCheck | None = None,
        write: WriteKey | None = None,
    ) -> ModelVersion:
        """``protected``: a stage the version may neither enter nor leave (ProtectedStage), checked
        under the model's lock, where the version's current stage is known. ``check``: judges the
        move against the stage's gate and its holder under the lock; a refusal changes nothing
        and is recorded (PROMOTION_REFUSED) in a transaction of its own."""
        ...

    def latest_versions(self, name: str, stages: Sequence[Stage]) -> list[ModelVersion]: ...
    def rollback_stage(
        self,
        name: str,
        stage: Stage,
        comment: str,
        ctx: CallContext,
        protected: Stage | None = None,
        *,
        check: PromotionCheck | None = None,
        write: WriteKey | None = None,
    ) -> RollbackResult:
        """``protected`` and ``check`` as for transition_stage, for the stage rolled back and the
        restored version."""
        ...

    def rollback_target(self, name: str, stage: Stage) -> int | None:
        """The version a rollback of ``stage`` would restore now (None: none)."""
        ...

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        ctx: CallContext,
        *,
        check: PromotionCheck | None = None,
        write: WriteKey | None = None,
    ) -> None:
        """``check`` as for transition_stage, against the version the alias points to."""
        ...

    def delete_alias(
        self, name: str, alias: str, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None: ...
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...

    def model_access(self, name: str, grantee: Grantee) -> ModelAccess:
        """``grantee``'s highest grant on the model and its protection, in one query;
        REGISTERED_MODEL_NOT_FOUND when there is no such model."""
        ...

    def model_access_by_id(self, model_id: int, grantee: Grantee) -> ModelAccess | None:
        """As model_access, for the model of this id; None when it no longer exists."""
        ...

    def set_permission(
        self, name: str, subject: Subject, level: Level, ctx: CallContext, *, write: WriteKey | None = None
    ) -> Grant: ...
    def delete_permission(
        self, name: str, subject: Subject, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None: ...
    def set_protection(
        self, name: str, protection: ModelProtection, ctx: CallContext, *, write: WriteKey | None = None
    ) -> ModelProtection: ...
    def permissions(self, name: str) -> ModelPermissions: ...

    def list_events(
        self, name: str, version: int, limit: int, offset: int, *, include_deleted: bool = False
    ) -> list[ModelEvent]: ...
    def event_head(self) -> int:
        """The last position of the event log (0 when empty); every event up to it is visible."""
        ...

    def events_after(
        self,
        after: int,
        limit: int,
        *,
        until: int | None = None,
        model_id: int | None = None,
        actions: Collection[EventAction] = (),
    ) -> list[ModelEvent]:
        """Events of positions in (``after``, ``until``], in log order, at most ``limit``; of one
        model and of some actions when given. Positions follow commit order: a reader moving
        ``after`` to the last id it read never skips an event."""
        ...

    def model_id(self, name: str) -> int:
        """The id of the model of this name (REGISTERED_MODEL_NOT_FOUND)."""
        ...

    def stage_holders_at(self, name: str, stage: Stage, time: int) -> list[int]: ...
    def resolve(self, uri: ModelUri) -> ModelVersion: ...

    def promotion_gates(self, name: str) -> list[PromotionGate]: ...
    def set_promotion_gate(
        self,
        name: str,
        gate: PromotionGate,
        ctx: CallContext,
        *,
        weaken: Callable[[str], None],
        write: WriteKey | None = None,
    ) -> PromotionGate:
        """Creates or replaces the gate on ``gate.target`` (TOO_MANY_GATES past the cap). A
        replacement requiring fewer approvals than the stored gate first calls ``weaken`` with
        the change (under the lock; it raises when the caller may not)."""
        ...

    def delete_promotion_gate(
        self,
        name: str,
        target: str,
        ctx: CallContext,
        *,
        weaken: Callable[[str], None],
        write: WriteKey | None = None,
    ) -> None:
        """``weaken`` as for set_promotion_gate, when the gate deleted requires approvals."""
        ...

    def record_serving(
        self,
        name: str,
        version: int,
        action: EventAction,
        detail: str,
        instance: str,
        ctx: CallContext,
        per_minute: int,
        *,
        write: WriteKey | None = None,
    ) -> ModelEvent:
        """Appends a SERVING_LOADED or SERVING_LOAD_FAILED event of an existing version (instance
        as to_value, detail as comment) and returns it; the model itself is left unchanged.
        LimitExceeded (TOO_MANY_SERVING_REPORTS) when ``ctx.actor`` has ``per_minute`` serving
        events of the model in the last 60 s."""
        ...

    def request_approval(
        self,
        name: str,
        version: int,
        target: str,
        comment: str,
        ctx: CallContext,
        *,
        write: WriteKey | None = None,
    ) -> ApprovalRequest: ...
    def decide_approval(
        self,
        name: str,
        request_id: int,
        approve: bool,
        comment: str,
        ctx: CallContext,
        *,
        write: WriteKey | None = None,
    ) -> ApprovalRequest:
        """SELF_APPROVAL when ``ctx.actor`` made the request; APPROVAL_NOT_PENDING unless pending."""
        ...

    def approval_request(self, name: str, request_id: int) -> ApprovalRequest: ...
    def approval_requests(
        self, name: str, status: ApprovalStatus | None, limit: int, offset: int
    ) -> list[ApprovalRequest]: ...
