"""The storage Protocol of the registry. Every method is one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from modelreg_server.access.policy import Grant, Grantee, Level, Subject
from modelreg_server.context import CallContext
from registry_service.domain.entities import (
    EncodedLineage,
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
from registry_service.domain.rules import ModelUri


class RegistryStore(Protocol):
    """Persists the registry. Raises the domain errors (NotFound, AlreadyExists, ...).

    ``ctx`` is the call making the change: its actor and request id are recorded in the history
    event the change appends.
    """

    def create_model(
        self,
        name: str,
        description: str,
        tags: Mapping[str, str],
        ctx: CallContext,
        creator_level: Level | None = None,
    ) -> RegisteredModel:
        """``creator_level``: the grant ``ctx.actor`` gets on the new model, in the same transaction."""
        ...

    def get_model(self, name: str) -> RegisteredModel: ...
    def require_model(self, name: str) -> None:
        """Raises NotFound (REGISTERED_MODEL_NOT_FOUND) unless the model exists."""
        ...

    def rename_model(self, name: str, new_name: str, ctx: CallContext) -> RegisteredModel: ...
    def update_model(self, name: str, description: str) -> RegisteredModel: ...
    def delete_model(self, name: str, ctx: CallContext) -> None: ...
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

    def set_model_tag(self, name: str, key: str, value: str) -> None: ...
    def delete_model_tag(self, name: str, key: str) -> None: ...

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
    ) -> ModelVersion: ...
    def get_version(self, name: str, version: int) -> ModelVersion: ...
    def version_lineage(self, name: str, version: int) -> EncodedLineage | None:
        """The stored lineage of a version (None: registered without a run); NotFound otherwise."""
        ...

    def update_version(self, name: str, version: int, description: str) -> ModelVersion: ...
    def delete_version(self, name: str, version: int, ctx: CallContext) -> None: ...
    def search_versions(
        self,
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[ModelVersion]: ...
    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None: ...
    def delete_version_tag(self, name: str, version: int, key: str) -> None: ...

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
    ) -> ModelVersion:
        """``protected``: a stage the version may neither enter nor leave (ProtectedStage), checked
        under the model's lock, where the version's current stage is known."""
        ...

    def latest_versions(self, name: str, stages: Sequence[Stage]) -> list[ModelVersion]: ...
    def rollback_stage(
        self, name: str, stage: Stage, comment: str, ctx: CallContext, protected: Stage | None = None
    ) -> RollbackResult:
        """``protected`` as for transition_stage, for the stage rolled back and the restored version."""
        ...

    def set_alias(self, name: str, alias: str, version: int, ctx: CallContext) -> None: ...
    def delete_alias(self, name: str, alias: str, ctx: CallContext) -> None: ...
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...

    def model_access(self, name: str, grantee: Grantee) -> ModelAccess:
        """``grantee``'s highest grant on the model and its protection, in one query;
        REGISTERED_MODEL_NOT_FOUND when there is no such model."""
        ...

    def set_permission(self, name: str, subject: Subject, level: Level, ctx: CallContext) -> Grant: ...
    def delete_permission(self, name: str, subject: Subject, ctx: CallContext) -> None: ...
    def set_protection(self, name: str, protection: ModelProtection, ctx: CallContext) -> ModelProtection: ...
    def permissions(self, name: str) -> ModelPermissions: ...

    def list_events(self, name: str, version: int, limit: int, offset: int) -> list[ModelEvent]: ...
    def stage_holders_at(self, name: str, stage: Stage, time: int) -> list[int]: ...
    def resolve(self, uri: ModelUri) -> ModelVersion: ...
