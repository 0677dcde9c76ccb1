"""The registry's use cases: validate input, ask tracking about runs, call the store.

The service owns the order of effects: inputs are validated first, the tracking service is asked
about the run (``LineagePort.fetch``) before any database transaction opens, and each write is
then one store call, i.e. one transaction. Every method takes the call's :class:`CallContext` first;
writes hand it to the store, which records its actor and request id in the history event.

Permissions (when ``ctx.principal`` is set; None means access control is off): each call needs a
level on its model (READ, EDIT or MANAGE; see the proto), checked before anything else runs. The
caller's level is the highest of the policy's default, its own grant and its groups' grants;
where the policy decides alone (admins, a default that suffices) no grant is read. Otherwise one
store query answers "does the model exist, what do the caller's grants give, what is protected",
cached for :data:`ACCESS_CACHE_SECONDS` per (grantee, model): a changed grant or protection is
honoured on every replica within that bound. Searches put READ into the query itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelreg_server.access import service as access_rules
from modelreg_server.access.policy import (
    AccessPolicy,
    Grant,
    Grantee,
    Level,
    TtlCache,
    denied,
    grantee,
    parse_level,
)
from modelreg_server.context import CallContext
from modelreg_server.pagination import fingerprint, parse_page
from registry_service.domain import errors, filters, rules
from registry_service.domain.entities import (
    ModelAccess,
    ModelEvent,
    ModelFile,
    ModelPermissions,
    ModelProtection,
    ModelVersion,
    Page,
    RegisteredModel,
    RollbackResult,
    Stage,
)
from registry_service.domain.ports import LineagePort
from registry_service.store.base import RegistryStore

MODELS_PAGE_DEFAULT, MODELS_PAGE_MAX = 100, 1_000
VERSIONS_PAGE_DEFAULT, VERSIONS_PAGE_MAX = 1_000, 10_000
EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX = 100, 1_000
# How long a looked-up grant or protection is reused: the bound on how long a removed grant (or
# a protection just set) may go unnoticed by one replica.
ACCESS_CACHE_SECONDS = 0.5
_KIND = "registered_model"


class RegistryService:
    def __init__(
        self, store: RegistryStore, lineage: LineagePort, policy: AccessPolicy | None = None
    ) -> None:
        self._store = store
        self._lineage = lineage
        self._policy = policy or AccessPolicy()
        self._access: TtlCache[tuple[Grantee, str], ModelAccess] = TtlCache(ACCESS_CACHE_SECONDS)

    # -- permission checks ---------------------------------------------------------------------

    def _model_access(self, ctx: CallContext, name: str) -> tuple[Level, ModelProtection]:
        """The caller's level on the model and its protection (REGISTERED_MODEL_NOT_FOUND)."""
        assert ctx.principal is not None
        key = (grantee(ctx.principal), name)
        access = self._access.get(key)
        if access is None:
            access = self._store.model_access(name, key[0])
            self._access.put(key, access)
        return max(self._policy.default_level, access.granted or Level.NONE), access.protection

    def _require(self, ctx: CallContext, name: str, need: Level) -> bool:
        """PERMISSION_DENIED unless the caller holds ``need`` on the model; True when the model
        was looked up (so it exists), False when the policy alone allowed the call."""
        if self._policy.unconditional(ctx.principal, need):
            return False
        self._level_at_least(ctx, name, need, self._model_access(ctx, name)[0])
        return True

    def _level_at_least(self, ctx: CallContext, name: str, need: Level, has: Level) -> None:
        if has < need:
            assert ctx.principal is not None
            raise denied(ctx.principal, need, _KIND, name, has)

    def _protected(self, ctx: CallContext, name: str) -> tuple[Level, ModelProtection] | None:
        """For changes that protection may lift to MANAGE: EDIT is checked; None when the caller
        may do anything (MANAGE without looking), else its level and the model's protection."""
        if self._policy.unconditional(ctx.principal, Level.MANAGE):
            return None
        level, protection = self._model_access(ctx, name)
        self._level_at_least(ctx, name, Level.EDIT, level)
        return level, protection

    def _stage_guard(self, ctx: CallContext, name: str, stage: Stage) -> Stage | None:
        """Checks a move into ``stage``; returns the stage the store must refuse to move a version
        out of (Production, when protected and the caller lacks MANAGE), which only the store
        knows under the model's lock."""
        access = self._protected(ctx, name)
        if access is None or access[0] >= Level.MANAGE or not access[1].production:
            return None
        if stage == Stage.PRODUCTION:
            self._level_at_least(ctx, name, Level.MANAGE, access[0])
        return Stage.PRODUCTION

    def _alias_guard(self, ctx: CallContext, name: str, alias: str) -> None:
        access = self._protected(ctx, name)
        if access is not None and alias in access[1].aliases:
            self._level_at_least(ctx, name, Level.MANAGE, access[0])

    # -- registered models ---------------------------------------------------------------------

    def create_registered_model(
        self, ctx: CallContext, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        name = rules.model_name(name)
        description = rules.description(description)
        checked_tags = rules.tags(dict(tags or {}))
        creator_level = self._policy.creator_grant(ctx.principal, _KIND)
        return self._store.create_model(name, description, checked_tags, ctx, creator_level)

    def get_registered_model(self, ctx: CallContext, name: str) -> RegisteredModel:
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        return self._store.get_model(name)

    def rename_registered_model(self, ctx: CallContext, name: str, new_name: str) -> RegisteredModel:
        name, new_name = rules.model_name(name), rules.model_name(new_name, "new_name")
        self._require(ctx, name, Level.MANAGE)
        return self._store.rename_model(name, new_name, ctx)

    def update_registered_model(
        self, ctx: CallContext, name: str, description: str | None
    ) -> RegisteredModel:
        if description is None:
            return self.get_registered_model(ctx, name)
        name = rules.model_name(name)
        description = rules.description(description)
        self._require(ctx, name, Level.EDIT)
        return self._store.update_model(name, description)

    def delete_registered_model(self, ctx: CallContext, name: str) -> None:
        name = rules.model_name(name)
        self._require(ctx, name, Level.MANAGE)
        self._store.delete_model(name, ctx)

    def search_registered_models(
        self, ctx: CallContext, filter_text: str, order_by: Sequence[str], page_size: int, page_token: str
    ) -> Page[RegisteredModel]:
        comparisons = filters.parse_filter(filter_text, filters.MODEL_SEARCH)
        order = filters.parse_order_by(order_by, filters.MODEL_SEARCH)
        page = parse_page(
            page_size,
            page_token,
            default=MODELS_PAGE_DEFAULT,
            maximum=MODELS_PAGE_MAX,
            query=fingerprint("models", filter_text, tuple(order_by)),
        )
        readable_by = self._policy.readable_by(ctx.principal)
        items, token = page.split(
            self._store.search_models(comparisons, order, page.fetch_limit, page.offset, readable_by)
        )
        return Page(tuple(items), token)

    def set_registered_model_tag(self, ctx: CallContext, name: str, key: str, value: str) -> None:
        name, tag = rules.model_name(name), rules.tag(key, value)
        self._require(ctx, name, Level.EDIT)
        self._store.set_model_tag(name, *tag)

    def delete_registered_model_tag(self, ctx: CallContext, name: str, key: str) -> None:
        name, key = rules.model_name(name), rules.tag_key(key)
        self._require(ctx, name, Level.EDIT)
        self._store.delete_model_tag(name, key)

    # -- model versions ------------------------------------------------------------------------

    def create_model_version(
        self,
        ctx: CallContext,
        name: str,
        source: str,
        run_id: str = "",
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Registers a version. A ``runs:/<run_id>/...`` source implies its run: MLflow's client
        fills run_id from such a source, and a run URI is never registered unchecked."""
        name = rules.model_name(name)
        source = rules.source(source)
        checked_tags = rules.tags(dict(tags or {}))
        description = rules.description(description)
        run_id = rules.run_id(run_id) if run_id else rules.runs_uri_run_id(source) or ""
        looked_up = self._require(ctx, name, Level.EDIT)
        lineage = None
        if run_id:
            if not looked_up:  # a missing model is NOT_FOUND before tracking is asked
                self._store.require_model(name)
            # Tracking answers as the caller: the run's experiment must be readable by them.
            lineage = self._lineage.fetch(ctx, run_id, source)
        return self._store.create_version(
            name,
            source=source,
            run_id=run_id,
            description=description,
            tags=checked_tags,
            lineage=lineage,
            ctx=ctx,
        )

    def get_model_version(self, ctx: CallContext, name: str, version: int) -> ModelVersion:
        name, version = rules.model_name(name), rules.version_number(version)
        self._require(ctx, name, Level.READ)
        return self._store.get_version(name, version)

    def update_model_version(
        self, ctx: CallContext, name: str, version: int, description: str | None
    ) -> ModelVersion:
        if description is None:
            return self.get_model_version(ctx, name, version)
        name, version = rules.model_name(name), rules.version_number(version)
        description = rules.description(description)
        self._require(ctx, name, Level.EDIT)
        return self._store.update_version(name, version, description)

    def delete_model_version(self, ctx: CallContext, name: str, version: int) -> None:
        name, version = rules.model_name(name), rules.version_number(version)
        self._require(ctx, name, Level.MANAGE)
        self._store.delete_version(name, version, ctx)

    def download_model_version_file(self, ctx: CallContext, name: str, version: int, path: str) -> ModelFile:
        """A registered file of a version: READ on the model is enough (the registry reads the
        run's artifacts as itself)."""
        name, version, path = rules.model_name(name), rules.version_number(version), rules.file_path(path)
        self._require(ctx, name, Level.READ)
        lineage = self._store.version_lineage(name, version)
        if lineage is None:
            raise errors.NoLineage(name, version)
        opened = self._lineage.open_file(ctx, lineage, path)
        if opened is None:
            raise errors.ModelFileNotFound(name, version, path[: rules.MAX_SOURCE_LENGTH])
        return opened

    def search_model_versions(
        self, ctx: CallContext, filter_text: str, order_by: Sequence[str], page_size: int, page_token: str
    ) -> Page[ModelVersion]:
        comparisons = filters.parse_filter(filter_text, filters.VERSION_SEARCH)
        order = filters.parse_order_by(order_by, filters.VERSION_SEARCH)
        page = parse_page(
            page_size,
            page_token,
            default=VERSIONS_PAGE_DEFAULT,
            maximum=VERSIONS_PAGE_MAX,
            query=fingerprint("versions", filter_text, tuple(order_by)),
        )
        readable_by = self._policy.readable_by(ctx.principal)
        items, token = page.split(
            self._store.search_versions(comparisons, order, page.fetch_limit, page.offset, readable_by)
        )
        return Page(tuple(items), token)

    def set_model_version_tag(self, ctx: CallContext, name: str, version: int, key: str, value: str) -> None:
        name, version, tag = rules.model_name(name), rules.version_number(version), rules.tag(key, value)
        self._require(ctx, name, Level.EDIT)
        self._store.set_version_tag(name, version, *tag)

    def delete_model_version_tag(self, ctx: CallContext, name: str, version: int, key: str) -> None:
        name, version, key = rules.model_name(name), rules.version_number(version), rules.tag_key(key)
        self._require(ctx, name, Level.EDIT)
        self._store.delete_version_tag(name, version, key)

    # -- stages --------------------------------------------------------------------------------

    def transition_model_version_stage(
        self,
        ctx: CallContext,
        name: str,
        version: int,
        stage: str,
        archive_existing_versions: bool,
        comment: str = "",
    ) -> ModelVersion:
        name, version, target = rules.model_name(name), rules.version_number(version), rules.stage(stage)
        comment = rules.description(comment, "comment")
        protected = self._stage_guard(ctx, name, target)
        return self._store.transition_stage(
            name,
            version,
            target,
            archive_existing=archive_existing_versions,
            comment=comment,
            ctx=ctx,
            protected=protected,
        )

    def get_latest_versions(self, ctx: CallContext, name: str, stages: Sequence[str]) -> list[ModelVersion]:
        parsed = [rules.stage(stage, "stages") for stage in stages]
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        return self._store.latest_versions(name, parsed)

    def rollback_stage(self, ctx: CallContext, name: str, stage: str, comment: str = "") -> RollbackResult:
        name, target, comment = (
            rules.model_name(name),
            rules.rollback_stage(stage),
            rules.description(comment, "comment"),
        )
        protected = self._stage_guard(ctx, name, target)
        return self._store.rollback_stage(name, target, comment, ctx, protected)

    # -- aliases -------------------------------------------------------------------------------

    def set_registered_model_alias(self, ctx: CallContext, name: str, alias: str, version: int) -> None:
        name, alias, version = rules.model_name(name), rules.alias(alias), rules.version_number(version)
        self._alias_guard(ctx, name, alias)
        self._store.set_alias(name, alias, version, ctx)

    def delete_registered_model_alias(self, ctx: CallContext, name: str, alias: str) -> None:
        name, alias = rules.model_name(name), rules.alias_name(alias)
        self._alias_guard(ctx, name, alias)
        self._store.delete_alias(name, alias, ctx)

    def get_model_version_by_alias(self, ctx: CallContext, name: str, alias: str) -> ModelVersion:
        name, alias = rules.model_name(name), rules.alias_name(alias)
        self._require(ctx, name, Level.READ)
        return self._store.get_version_by_alias(name, alias)

    # -- history and resolution ----------------------------------------------------------------

    def list_model_events(
        self, ctx: CallContext, name: str, version: int, page_size: int, page_token: str
    ) -> Page[ModelEvent]:
        if version < 0:
            rules.version_number(version)
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        page = parse_page(
            page_size,
            page_token,
            default=EVENTS_PAGE_DEFAULT,
            maximum=EVENTS_PAGE_MAX,
            query=fingerprint("events", name, version),
        )
        items, token = page.split(self._store.list_events(name, version, page.fetch_limit, page.offset))
        return Page(tuple(items), token)

    def get_stage_holder_at(self, ctx: CallContext, name: str, stage: str, time: int) -> list[int]:
        name, parsed = rules.model_name(name), rules.stage(stage)
        self._require(ctx, name, Level.READ)
        return self._store.stage_holders_at(name, parsed, time)

    def resolve_model_uri(self, ctx: CallContext, uri: str) -> ModelVersion:
        parsed = rules.model_uri(uri)
        self._require(ctx, parsed.name, Level.READ)
        return self._store.resolve(parsed)

    # -- permissions ---------------------------------------------------------------------------

    def set_registered_model_permission(
        self, ctx: CallContext, name: str, user: str, group: str, level: int
    ) -> Grant:
        name, subject, parsed = rules.model_name(name), access_rules.subject(user, group), parse_level(level)
        self._require(ctx, name, Level.MANAGE)
        return self._store.set_permission(name, subject, parsed, ctx)

    def delete_registered_model_permission(self, ctx: CallContext, name: str, user: str, group: str) -> None:
        name, subject = rules.model_name(name), access_rules.subject(user, group)
        self._require(ctx, name, Level.MANAGE)
        self._store.delete_permission(name, subject, ctx)

    def list_registered_model_permissions(self, ctx: CallContext, name: str) -> ModelPermissions:
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        return self._store.permissions(name)

    def set_registered_model_protection(
        self, ctx: CallContext, name: str, production: bool, aliases: Sequence[str]
    ) -> ModelProtection:
        name, protection = rules.model_name(name), rules.protection(production, list(aliases))
        self._require(ctx, name, Level.MANAGE)
        return self._store.set_protection(name, protection, ctx)
