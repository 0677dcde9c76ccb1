"""The registry's use cases: validate input, ask tracking about runs, call the store.

The service owns the order of effects: inputs are validated first, the tracking service is asked
about the run (``LineagePort.fetch``) before any database transaction opens, and each write is
then one store call, i.e. one transaction. Every method takes the call's :class:`CallContext` first;
writes hand it to the store, which records its actor and request id in the history event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelreg_server.context import CallContext
from modelreg_server.pagination import fingerprint, parse_page
from registry_service.domain import filters, rules
from registry_service.domain.entities import (
    ModelEvent,
    ModelVersion,
    Page,
    RegisteredModel,
    RollbackResult,
)
from registry_service.domain.ports import LineagePort
from registry_service.store.base import RegistryStore

MODELS_PAGE_DEFAULT, MODELS_PAGE_MAX = 100, 1_000
VERSIONS_PAGE_DEFAULT, VERSIONS_PAGE_MAX = 1_000, 10_000
EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX = 100, 1_000


class RegistryService:
    def __init__(self, store: RegistryStore, lineage: LineagePort) -> None:
        self._store = store
        self._lineage = lineage

    # -- registered models ---------------------------------------------------------------------

    def create_registered_model(
        self, ctx: CallContext, name: str, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        return self._store.create_model(
            rules.model_name(name), rules.description(description), rules.tags(dict(tags or {})), ctx
        )

    def get_registered_model(self, ctx: CallContext, name: str) -> RegisteredModel:
        return self._store.get_model(rules.model_name(name))

    def rename_registered_model(self, ctx: CallContext, name: str, new_name: str) -> RegisteredModel:
        return self._store.rename_model(rules.model_name(name), rules.model_name(new_name, "new_name"), ctx)

    def update_registered_model(
        self, ctx: CallContext, name: str, description: str | None
    ) -> RegisteredModel:
        if description is None:
            return self.get_registered_model(ctx, name)
        return self._store.update_model(rules.model_name(name), rules.description(description))

    def delete_registered_model(self, ctx: CallContext, name: str) -> None:
        self._store.delete_model(rules.model_name(name), ctx)

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
        items, token = page.split(
            self._store.search_models(comparisons, order, page.fetch_limit, page.offset)
        )
        return Page(tuple(items), token)

    def set_registered_model_tag(self, ctx: CallContext, name: str, key: str, value: str) -> None:
        self._store.set_model_tag(rules.model_name(name), *rules.tag(key, value))

    def delete_registered_model_tag(self, ctx: CallContext, name: str, key: str) -> None:
        self._store.delete_model_tag(rules.model_name(name), rules.tag_key(key))

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
        run_id = run_id or rules.runs_uri_run_id(source) or ""
        lineage = None
        if run_id:
            self._store.require_model(name)  # a missing model is NOT_FOUND before tracking is asked
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
        return self._store.get_version(rules.model_name(name), rules.version_number(version))

    def update_model_version(
        self, ctx: CallContext, name: str, version: int, description: str | None
    ) -> ModelVersion:
        if description is None:
            return self.get_model_version(ctx, name, version)
        return self._store.update_version(
            rules.model_name(name), rules.version_number(version), rules.description(description)
        )

    def delete_model_version(self, ctx: CallContext, name: str, version: int) -> None:
        self._store.delete_version(rules.model_name(name), rules.version_number(version), ctx)

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
        items, token = page.split(
            self._store.search_versions(comparisons, order, page.fetch_limit, page.offset)
        )
        return Page(tuple(items), token)

    def set_model_version_tag(self, ctx: CallContext, name: str, version: int, key: str, value: str) -> None:
        self._store.set_version_tag(
            rules.model_name(name), rules.version_number(version), *rules.tag(key, value)
        )

    def delete_model_version_tag(self, ctx: CallContext, name: str, version: int, key: str) -> None:
        self._store.delete_version_tag(
            rules.model_name(name), rules.version_number(version), rules.tag_key(key)
        )

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
        return self._store.transition_stage(
            rules.model_name(name),
            rules.version_number(version),
            rules.stage(stage),
            archive_existing=archive_existing_versions,
            comment=rules.description(comment),
            ctx=ctx,
        )

    def get_latest_versions(self, ctx: CallContext, name: str, stages: Sequence[str]) -> list[ModelVersion]:
        parsed = [rules.stage(stage, "stages") for stage in stages]
        return self._store.latest_versions(rules.model_name(name), parsed)

    def rollback_stage(self, ctx: CallContext, name: str, stage: str, comment: str = "") -> RollbackResult:
        return self._store.rollback_stage(
            rules.model_name(name), rules.rollback_stage(stage), rules.description(comment), ctx
        )

    # -- aliases -------------------------------------------------------------------------------

    def set_registered_model_alias(self, ctx: CallContext, name: str, alias: str, version: int) -> None:
        self._store.set_alias(rules.model_name(name), rules.alias(alias), rules.version_number(version), ctx)

    def delete_registered_model_alias(self, ctx: CallContext, name: str, alias: str) -> None:
        self._store.delete_alias(rules.model_name(name), rules.alias_name(alias), ctx)

    def get_model_version_by_alias(self, ctx: CallContext, name: str, alias: str) -> ModelVersion:
        return self._store.get_version_by_alias(rules.model_name(name), rules.alias_name(alias))

    # -- history and resolution ----------------------------------------------------------------

    def list_model_events(
        self, ctx: CallContext, name: str, version: int, page_size: int, page_token: str
    ) -> Page[ModelEvent]:
        if version < 0:
            rules.version_number(version)
        page = parse_page(
            page_size,
            page_token,
            default=EVENTS_PAGE_DEFAULT,
            maximum=EVENTS_PAGE_MAX,
            query=fingerprint("events", name, version),
        )
        items, token = page.split(
            self._store.list_events(rules.model_name(name), version, page.fetch_limit, page.offset)
        )
        return Page(tuple(items), token)

    def get_stage_holder_at(self, ctx: CallContext, name: str, stage: str, time: int) -> list[int]:
        return self._store.stage_holders_at(rules.model_name(name), rules.stage(stage), time)

    def resolve_model_uri(self, ctx: CallContext, uri: str) -> ModelVersion:
        return self._store.resolve(rules.model_uri(uri))
