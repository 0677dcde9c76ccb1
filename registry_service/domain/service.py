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

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import replace

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
    require_admin,
)
from modelreg_server.context import CallContext
from modelreg_server.event_log import CursorAhead, encode_cursor
from modelreg_server.pagination import fingerprint, parse_page
from registry_service.domain import errors, filters, gates, rules, watch
from registry_service.domain.entities import (
    EventAction,
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
from registry_service.domain.feed import PAGE, EventFeed
from registry_service.domain.ports import LineagePort
from registry_service.domain.watch import WatchItem, WatchLimits, WatchQuery
from registry_service.store.base import RegistryStore

MODELS_PAGE_DEFAULT, MODELS_PAGE_MAX = 100, 1_000
VERSIONS_PAGE_DEFAULT, VERSIONS_PAGE_MAX = 1_000, 10_000
EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX = 100, 1_000
# How long a looked-up grant or protection is reused: the bound on how long a removed grant (or
# a protection just set) may go unnoticed by one replica.
ACCESS_CACHE_SECONDS = 0.5
# How soon a waiting watch notices that its client left (and lets its thread and feed go).
WATCH_ACTIVE_CHECK_SECONDS = 1.0
_KIND = "registered_model"


class RegistryService:
    def __init__(
        self,
        store: RegistryStore,
        lineage: LineagePort,
        policy: AccessPolicy | None = None,
        *,
        watch_limits: WatchLimits | None = None,
        feed: EventFeed | None = None,
        serving_reports_per_minute: int = rules.SERVING_REPORTS_PER_MINUTE,
    ) -> None:
        self._store = store
        self._lineage = lineage
        self._policy = policy or AccessPolicy()
        self._access: TtlCache[tuple[Grantee, str], ModelAccess] = TtlCache(ACCESS_CACHE_SECONDS)
        # A watch's model is followed by id (across renames): its access is cached by id.
        self._access_by_id: TtlCache[tuple[Grantee, int], ModelAccess | None] = TtlCache(ACCESS_CACHE_SECONDS)
        self._watch = watch_limits or WatchLimits()
        self._feed = feed or EventFeed(store, max_watchers=self._watch.max_watchers)
        self._serving_reports_per_minute = serving_reports_per_minute

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

    def require(self, ctx: CallContext, name: str, need: Level) -> None:
        """PERMISSION_DENIED unless the caller holds ``need`` on the model (REGISTERED_MODEL_NOT_FOUND
        when it is looked up and missing): the check other domains of the registry reuse."""
        self._require(ctx, name, need)

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
        return self._store.create_model(name, description, checked_tags, ctx, creator_level, write=ctx.write)

    def get_registered_model(self, ctx: CallContext, name: str) -> RegisteredModel:
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        return self._store.get_model(name)

    def rename_registered_model(self, ctx: CallContext, name: str, new_name: str) -> RegisteredModel:
        name, new_name = rules.model_name(name), rules.model_name(new_name, "new_name")
        self._require(ctx, name, Level.MANAGE)
        return self._store.rename_model(name, new_name, ctx, write=ctx.write)

    def update_registered_model(
        self, ctx: CallContext, name: str, description: str | None
    ) -> RegisteredModel:
        if description is None:
            return self.get_registered_model(ctx, name)
        name = rules.model_name(name)
        description = rules.description(description)
        self._require(ctx, name, Level.EDIT)
        return self._store.update_model(name, description, ctx, write=ctx.write)

    def delete_registered_model(self, ctx: CallContext, name: str) -> None:
        name = rules.model_name(name)
        self._require(ctx, name, Level.MANAGE)
        self._store.delete_model(name, ctx, write=ctx.write)

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
            self._store.search_models(comparisons, order, page.fetch_limit, page.offset, readable_by),
            rules.model_bytes,
        )
        return Page(tuple(items), token)

    def set_registered_model_tag(self, ctx: CallContext, name: str, key: str, value: str) -> None:
        name, tag = rules.model_name(name), rules.tag(key, value)
        self._require(ctx, name, Level.EDIT)
        self._store.set_model_tag(name, *tag, ctx, write=ctx.write)

    def delete_registered_model_tag(self, ctx: CallContext, name: str, key: str) -> None:
        name, key = rules.model_name(name), rules.tag_key(key)
        self._require(ctx, name, Level.EDIT)
        self._store.delete_model_tag(name, key, ctx, write=ctx.write)

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
        checked_tags = rules.tags(dict(tags or {}), "version")
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
            write=ctx.write,
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
        return self._store.update_version(name, version, description, ctx, write=ctx.write)

    def delete_model_version(self, ctx: CallContext, name: str, version: int) -> None:
        name, version = rules.model_name(name), rules.version_number(version)
        self._require(ctx, name, Level.MANAGE)
        self._store.delete_version(name, version, ctx, write=ctx.write)

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
        self,
        ctx: CallContext,
        filter_text: str,
        order_by: Sequence[str],
        page_size: int,
        page_token: str,
        with_lineage: bool = False,
    ) -> Page[ModelVersion]:
        """A page of versions; ``with_lineage`` says whether the response carries their lineage,
        which counts towards the page's byte budget."""
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
            self._store.search_versions(comparisons, order, page.fetch_limit, page.offset, readable_by),
            lambda version: rules.version_bytes(version, with_lineage),
        )
        return Page(tuple(items), token)

    def set_model_version_tag(self, ctx: CallContext, name: str, version: int, key: str, value: str) -> None:
        name, version, tag = rules.model_name(name), rules.version_number(version), rules.tag(key, value)
        self._require(ctx, name, Level.EDIT)
        self._store.set_version_tag(name, version, *tag, ctx, write=ctx.write)

    def delete_model_version_tag(self, ctx: CallContext, name: str, version: int, key: str) -> None:
        name, version, key = rules.model_name(name), rules.version_number(version), rules.tag_key(key)
        self._require(ctx, name, Level.EDIT)
        self._store.delete_version_tag(name, version, key, ctx, write=ctx.write)

    # -- stages --------------------------------------------------------------------------------

    def transition_model_version_stage(
        self,
        ctx: CallContext,
        name: str,
        version: int,
        stage: str,
        archive_existing_versions: bool,
        comment: str = "",
        override_gates: bool = False,
    ) -> ModelVersion:
        name, version, target = rules.model_name(name), rules.version_number(version), rules.stage(stage)
        comment = rules.description(comment, "comment")
        protected = self._stage_guard(ctx, name, target)
        check = self._promotion_check(ctx, name, gates.stage_target(target), [version], override_gates)
        return self._store.transition_stage(
            name,
            version,
            target,
            archive_existing=archive_existing_versions,
            comment=comment,
            ctx=ctx,
            protected=protected,
            check=check,
            write=ctx.write,
        )

    def get_latest_versions(self, ctx: CallContext, name: str, stages: Sequence[str]) -> list[ModelVersion]:
        parsed = [rules.stage(stage, "stages") for stage in stages]
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        return self._store.latest_versions(name, parsed)

    def rollback_stage(
        self, ctx: CallContext, name: str, stage: str, comment: str = "", override_gates: bool = False
    ) -> RollbackResult:
        name, target, comment = (
            rules.model_name(name),
            rules.rollback_stage(stage),
            rules.description(comment, "comment"),
        )
        protected = self._stage_guard(ctx, name, target)
        check = self._promotion_check(
            ctx, name, target.value, lambda: [self._store.rollback_target(name, target)], override_gates
        )
        return self._store.rollback_stage(name, target, comment, ctx, protected, check=check, write=ctx.write)

    # -- aliases -------------------------------------------------------------------------------

    def set_registered_model_alias(
        self, ctx: CallContext, name: str, alias: str, version: int, *, override_gates: bool = False
    ) -> None:
        name, alias, version = rules.model_name(name), rules.alias(alias), rules.version_number(version)
        self._alias_guard(ctx, name, alias)
        check = self._promotion_check(ctx, name, gates.alias_target(alias), [version], override_gates)
        self._store.set_alias(name, alias, version, ctx, check=check, write=ctx.write)

    def delete_registered_model_alias(self, ctx: CallContext, name: str, alias: str) -> None:
        name, alias = rules.model_name(name), rules.alias_name(alias)
        self._alias_guard(ctx, name, alias)
        self._store.delete_alias(name, alias, ctx, write=ctx.write)

    def get_model_version_by_alias(self, ctx: CallContext, name: str, alias: str) -> ModelVersion:
        name, alias = rules.model_name(name), rules.alias_name(alias)
        self._require(ctx, name, Level.READ)
        return self._store.get_version_by_alias(name, alias)

    # -- history and resolution ----------------------------------------------------------------

    def list_model_events(
        self,
        ctx: CallContext,
        name: str,
        version: int,
        page_size: int,
        page_token: str,
        *,
        include_deleted: bool = False,
    ) -> Page[ModelEvent]:
        """The model's events; with ``include_deleted``, also those of the models deleted under
        its name. Their grants went with them, so with access control on only an admin may ask
        for those: the store is then asked for them, never for more than the caller may read."""
        if version < 0:
            rules.version_number(version)
        name = rules.model_name(name)
        if include_deleted:
            require_admin(
                ctx.principal, f"listing the events of deleted models named '{name}'", f"{_KIND}s/{name}"
            )
        self._require(ctx, name, Level.READ)
        page = parse_page(
            page_size,
            page_token,
            default=EVENTS_PAGE_DEFAULT,
            maximum=EVENTS_PAGE_MAX,
            query=fingerprint("events", name, version, include_deleted),
        )
        events = self._store.list_events(
            name, version, page.fetch_limit, page.offset, include_deleted=include_deleted
        )
        items, token = page.split(events, rules.event_bytes)
        return Page(tuple(items), token)

    def watch_model_events(
        self,
        ctx: CallContext,
        name: str,
        actions: Sequence[str],
        stages: Sequence[str],
        aliases: Sequence[str],
        cursor: str,
        from_beginning: bool,
        active: Callable[[], bool] = lambda: True,
    ) -> Iterator[WatchItem]:
        """The events after ``cursor`` (or from now, or from the beginning) that pass the filters,
        as they are written, with heartbeats (see the proto). Input and access are checked
        before this returns; the iterator checks access again before each batch of events, and
        ends within WATCH_ACTIVE_CHECK_SECONDS once ``active()`` is false (the client left)."""
        query = watch.query(actions, stages, aliases)
        start = watch.decode_cursor(cursor, from_beginning)
        if name:
            name = rules.model_name(name)
            self._require(ctx, name, Level.READ)
            query = replace(query, model_id=self._store.model_id(name), name=name)
        elif not self._policy.unconditional(ctx.principal, Level.READ):
            raise errors.WatchNeedsModel()
        head = self._store.event_head()
        if start is not None and start > head:
            raise CursorAhead(head)
        return self._watching(ctx, query, head if start is None else start, active)

    def _watching(
        self, ctx: CallContext, query: WatchQuery, position: int, active: Callable[[], bool]
    ) -> Iterator[WatchItem]:
        limits = self._watch
        with self._feed.attached():
            now = time.monotonic()
            # The first heartbeat at once: the client holds a cursor before any event arrives.
            end, beat = now + limits.max_seconds, now
            while now < end and active():
                if now >= beat:
                    yield WatchItem(None, encode_cursor(position))
                    beat = time.monotonic() + limits.heartbeat_seconds
                wait = min(beat, end, now + WATCH_ACTIVE_CHECK_SECONDS) - now
                events, upto = self._next_events(query, position, wait)
                matching = [event for event in events if query.matches(event)]
                if matching:
                    self._recheck(ctx, query)
                for event in matching:
                    yield WatchItem(event, encode_cursor(event.event_id))
                    if event.action is EventAction.MODEL_DELETED and query.model_id is not None:
                        raise errors.RegisteredModelNotFound(event.name)
                position = max(position, upto)
                now = time.monotonic()
            if active():
                yield WatchItem(None, encode_cursor(position))  # the last cursor, to resume from

    def _next_events(self, query: WatchQuery, position: int, timeout: float) -> tuple[list[ModelEvent], int]:
        """The events after ``position`` from the shared feed, or, for a position older than its
        window, a page of the store's (model and actions filtered there); and the position read
        up to."""
        found = self._feed.read(position, max(0.0, timeout))
        if found is not None:
            return found
        until = self._feed.head
        events = self._store.events_after(
            position, PAGE, until=until, model_id=query.model_id, actions=query.actions
        )
        return events, events[-1].event_id if len(events) == PAGE else until

    def _recheck(self, ctx: CallContext, query: WatchQuery) -> None:
        """PERMISSION_DENIED once the caller lost READ on the watched model (within the cache's
        bound); a deleted model's remaining events are its last."""
        if query.model_id is None or self._policy.unconditional(ctx.principal, Level.READ):
            return
        assert ctx.principal is not None
        key = (grantee(ctx.principal), query.model_id)
        access = self._access_by_id.get(key)
        if access is None:
            access = self._store.model_access_by_id(query.model_id, key[0])
            self._access_by_id.put(key, access)
        if access is not None:
            level = max(self._policy.default_level, access.granted or Level.NONE)
            self._level_at_least(ctx, query.name, Level.READ, level)

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
        return self._store.set_permission(name, subject, parsed, ctx, write=ctx.write)

    def delete_registered_model_permission(self, ctx: CallContext, name: str, user: str, group: str) -> None:
        name, subject = rules.model_name(name), access_rules.subject(user, group)
        self._require(ctx, name, Level.MANAGE)
        self._store.delete_permission(name, subject, ctx, write=ctx.write)

    def list_registered_model_permissions(self, ctx: CallContext, name: str) -> ModelPermissions:
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        return self._store.permissions(name)

    def set_registered_model_protection(
        self, ctx: CallContext, name: str, production: bool, aliases: Sequence[str]
    ) -> ModelProtection:
        name, protection = rules.model_name(name), rules.protection(production, list(aliases))
        self._require(ctx, name, Level.MANAGE)
        return self._store.set_protection(name, protection, ctx, write=ctx.write)

    # -- serving -------------------------------------------------------------------------------

    def report_serving_status(
        self, ctx: CallContext, name: str, version: int, loaded: bool | None, detail: str, instance: str
    ) -> ModelEvent:
        """Records that a serving process loaded (``loaded``) or refused a version; ``loaded`` is
        None for an outcome the request left unset. READ is enough: serving processes hold read
        tokens, and the event's actor (the caller, from ``ctx``) says who reported. Since every
        report is kept in the history, a caller may make at most ``serving_reports_per_minute`` on
        one model in any 60 s (RESOURCE_EXHAUSTED TOO_MANY_SERVING_REPORTS, nothing written)."""
        name, version = rules.model_name(name), rules.version_number(version)
        if loaded is None:
            raise errors.InvalidOutcome("outcome must be LOADED or LOAD_FAILED", "outcome")
        detail = rules.one_line(detail, "detail", errors.InvalidDetail, rules.MAX_SERVING_DETAIL_LENGTH)
        instance = rules.one_line(
            instance, "instance", errors.InvalidInstance, rules.MAX_SERVING_INSTANCE_LENGTH
        )
        self._require(ctx, name, Level.READ)
        action = EventAction.SERVING_LOADED if loaded else EventAction.SERVING_LOAD_FAILED
        return self._store.record_serving(
            name, version, action, detail, instance, ctx, self._serving_reports_per_minute, write=ctx.write
        )

    # -- promotion gates and approvals ---------------------------------------------------------

    def _promotion_check(
        self,
        ctx: CallContext,
        name: str,
        target: str | None,
        candidates: Sequence[int] | Callable[[], Sequence[int | None]],
        override: bool,
    ) -> gates.PromotionCheck | None:
        """What the store judges a move into ``target`` by, under the model's lock (None for a
        target that is never gated). Only an admin may override. When the target's gate asks for
        a signature, the candidates' MLmodel files are read here, before any transaction (the
        gate is read again under the lock: a gate that began asking since then finds no
        signature read, and refuses)."""
        if override:
            require_admin(ctx.principal, "overriding promotion gates", f"{_KIND}s/{name}")
        if target is None:
            return None
        signatures: dict[int, bool] = {}
        gate = next((g for g in self._store.promotion_gates(name) if g.target == target), None)
        if gate is not None and gate.require_signature:
            versions = candidates() if callable(candidates) else candidates
            for version in versions:
                if version is not None:
                    signatures[version] = self._has_signature(ctx, name, version)
        decode = self._lineage.decode
        return lambda facts: gates.judge(facts, decode, override=override, signatures=signatures)

    def _has_signature(self, ctx: CallContext, name: str, version: int) -> bool:
        lineage = self._store.version_lineage(name, version)
        if lineage is None:
            return False
        opened = self._lineage.open_file(ctx, lineage, gates.MLMODEL)
        if opened is None:
            return False
        content = bytearray()
        with closing(opened.chunks) as chunks:  # over the cap: the download stops here
            for chunk in chunks:
                content += chunk
                if len(content) > gates.MAX_MLMODEL_BYTES:
                    return False
        return gates.has_signature(bytes(content))

    def set_promotion_gate(
        self,
        ctx: CallContext,
        name: str,
        target: str,
        condition: str,
        *,
        require_signature: bool = False,
        require_digests: bool = False,
        approvals_required: int = 0,
    ) -> gates.PromotionGate:
        name = rules.model_name(name)
        target = gates.parse_target(target, rules.alias)
        gates.parse(condition)
        gates.approvals(approvals_required)
        self._require(ctx, name, Level.MANAGE)
        gate = gates.PromotionGate(
            name, target, condition, require_signature, require_digests, approvals_required
        )
        return self._store.set_promotion_gate(
            name, gate, ctx, weaken=self._weakening(ctx, name), write=ctx.write
        )

    def get_promotion_gates(self, ctx: CallContext, name: str) -> list[gates.PromotionGate]:
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        return self._store.promotion_gates(name)

    def delete_promotion_gate(self, ctx: CallContext, name: str, target: str) -> None:
        name, target = rules.model_name(name), gates.parse_target(target, rules.alias)
        self._require(ctx, name, Level.MANAGE)
        self._store.delete_promotion_gate(
            name, target, ctx, weaken=self._weakening(ctx, name), write=ctx.write
        )

    @staticmethod
    def _weakening(ctx: CallContext, name: str) -> Callable[[str], None]:
        """What the store calls, under the model's lock where the stored gate is known, before a
        change that drops a required approval: only an admin may, or one MANAGE holder could lift
        the two-person rule, promote alone and put it back. Strengthening needs MANAGE only."""
        return lambda change: require_admin(
            ctx.principal, f"{change} (it lifts the two-person rule)", f"{_KIND}s/{name}"
        )

    def request_promotion_approval(
        self, ctx: CallContext, name: str, version: int, target: str, comment: str = ""
    ) -> gates.ApprovalRequest:
        """Anyone who may promote (EDIT) may ask; the version must exist."""
        name, version = rules.model_name(name), rules.version_number(version)
        target = gates.parse_target(target, rules.alias)
        comment = rules.description(comment, "comment")
        self._require(ctx, name, Level.EDIT)
        return self._store.request_approval(name, version, target, comment, ctx, write=ctx.write)

    def decide_promotion(
        self, ctx: CallContext, name: str, request_id: int, approve: bool, comment: str = ""
    ) -> gates.ApprovalRequest:
        """Approves or rejects: MANAGE, and not the requester (SELF_APPROVAL, under the lock)."""
        name, comment = rules.model_name(name), rules.description(comment, "comment")
        request_id = gates.request_id(request_id)
        self._require(ctx, name, Level.MANAGE)
        return self._store.decide_approval(name, request_id, approve, comment, ctx, write=ctx.write)

    def list_approval_requests(
        self,
        ctx: CallContext,
        name: str,
        status: gates.ApprovalStatus | None,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[gates.ApprovalRequest]:
        name = rules.model_name(name)
        self._require(ctx, name, Level.READ)
        page = parse_page(
            page_size,
            page_token,
            default=gates.REQUESTS_PAGE_DEFAULT,
            maximum=gates.REQUESTS_PAGE_MAX,
            query=fingerprint("approval_requests", name, status.value if status else ""),
        )
        found = self._store.approval_requests(name, status, page.fetch_limit, page.offset)
        items, token = page.split(found, gates.request_bytes)
        return Page(tuple(items), token)
