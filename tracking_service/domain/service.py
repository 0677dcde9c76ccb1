"""The tracking service's use cases: validate input, parse searches and page tokens, call the stores.

The service owns the order of effects. Every input is validated (rules) and every filter, order_by
and page token parsed before the store is called, so a bad request never opens a transaction and
the store receives only valid values. Each write is then one store call, i.e. one transaction
(an upload also asks the store where the bytes go before it writes them); searches hand the store
a row limit and offset and split the page off what comes back.

Artifacts: the bytes live in an ArtifactStore (file:// or s3://) at ``<run artifact_uri>/<path>``;
the tracking database's manifest holds (path, size, sha256) and is the source of truth for list and
stat (directories are derived from the paths). An upload is whole or absent: its content is staged
and verified (against the size and sha256 the sender declares at the end of its stream, and
``expected_sha256`` when given), then published and recorded in one manifest transaction, under the
run's row lock, after the run is found live and the path free. Concurrent uploads to one path are
thereby serialized at publication: the manifest row always describes the object last published.
An interrupted, cancelled or undeclared stream publishes and records nothing, and its staging copy
is removed (or, if the server dies, swept at the next start). One window remains: a server killed
after publishing and before its commit (or whose commit fails) leaves the new object under the
previous manifest row (or none); reads then fail DIGEST_MISMATCH (or list nothing) until the path
is uploaded again.

Artifact locations: an experiment's must lie under the server's artifact roots, away from where
default locations go (rules.artifact_location), and apart from every other experiment's (the
store's check, in its transaction); a run's is checked again before an upload, so the store writes
nowhere else. Store errors reach callers as the run id and the path in the run: the full URI is the
server's directory or bucket, and stays in the log (_object_errors).

Every method takes the call's :class:`CallContext` first, as the registry's do. Its actor and
request id reach the store only where a grant changes (the grant event records them).

Permissions (access control on, i.e. ``ctx.principal`` set): each use case needs a level on one
experiment (READ to see it and its runs, EDIT to change them, MANAGE to delete it or grant on it).
When the policy grants that level unconditionally (an admin, a service reading, a sufficient default
level) nothing is looked up. Otherwise the store answers whether the experiment (or the run's) exists
and what the caller holds there in one query, an unknown id staying NOT_FOUND; the answer is cached
for LEVEL_CACHE_SECONDS per caller and resource, so a training loop logging to one run pays one query
per half second, not one per call. A removed grant may therefore be honoured for up to 0.5 s (the
same bound as for a revoked token); grants changed by this process drop their experiment's entries at
once. Checks go by experiment and run id, never by an artifact path. Searches are restricted in SQL
(``readable_by``), so their pages are full.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from modelreg_server.access.policy import (
    AccessPolicy,
    Grant,
    GrantEvent,
    Level,
    Subject,
    TtlCache,
    denied,
    grantee,
    parse_level,
)
from modelreg_server.access.service import subject
from modelreg_server.context import CallContext
from modelreg_server.errors import InvalidArgumentError
from modelreg_server.event_log import CursorAhead, decode_cursor
from modelreg_server.idempotency import WriteKey
from modelreg_server.memo import cache_small
from modelreg_server.pagination import fingerprint, parse_page
from tracking_service.artifacts.base import (
    ArtifactMissing,
    ArtifactStore,
    Chunk,
    StoredObject,
    check_declared,
    check_digest,
)
from tracking_service.domain import rules
from tracking_service.domain.entities import (
    DEFAULT_EXPERIMENT_ID,
    ArtifactFile,
    Experiment,
    ExperimentAccess,
    Metric,
    MetricPoint,
    NewGrant,
    Page,
    Param,
    Run,
    RunEvent,
    RunEventAction,
    RunInfo,
    RunStatus,
    ViewType,
)
from tracking_service.domain.errors import (
    ArtifactLocationNotAllowed,
    ArtifactNotFound,
    DefaultExperimentProtected,
    ExperimentNotFound,
    RunNotFound,
)
from tracking_service.domain.filters import (
    EXPERIMENT_SEARCH,
    Comparison,
    OrderBy,
    parse_filter,
    parse_order_by,
    parse_run_filter,
    parse_run_order_by,
)
from tracking_service.store.base import TrackingStore

SearchQuery = tuple[tuple[Comparison, ...], tuple[OrderBy, ...]]
# How long a looked-up level is trusted: the bound on honouring a removed grant.
LEVEL_CACHE_SECONDS = 0.5
MAX_PERMISSION_EVENTS = 1_000
EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX = 100, 1_000
# How many experiments one ListRunEvents may name.
MAX_EVENT_EXPERIMENTS = 100
_log = logging.getLogger(__name__)


class UploadContent(Protocol):
    """An upload's chunks; iterating raises (INCOMPLETE_UPLOAD) unless the stream ended with its
    declaration, which :attr:`declared` then holds."""

    def __iter__(self) -> Iterator[Chunk]: ...

    @property
    def declared(self) -> tuple[int, str]:
        """(size, sha256) as the sender declared them; read once the chunks are consumed."""
        ...


# Searches repeat (a dashboard, a pager): parsing the same text again would cost a tenth of a
# search. Invalid text raises and is not cached, nor is text over CACHED_QUERY_LENGTH characters
# (a parsed filter holds its values: see modelreg_server.memo).
CACHED_QUERY_LENGTH = 2_048


def _short_query(filter_text: str, order_by: tuple[str, ...]) -> bool:
    return len(filter_text) + sum(map(len, order_by)) <= CACHED_QUERY_LENGTH


@cache_small(256, _short_query)
def _run_query(filter_text: str, order_by: tuple[str, ...]) -> SearchQuery:
    return (
        tuple(parse_run_filter(filter_text)),
        tuple(parse_run_order_by(list(order_by))),
    )


@contextlib.contextmanager
def _object_errors(run_id: str, path: str, uri: str) -> Iterator[None]:
    """Artifact store errors as a caller may see them: the run id and the path in the run. The
    store names the object by its full URI, i.e. the server's directory or bucket: that goes to the
    log only."""
    try:
        yield
    except ArtifactMissing:
        _log.warning("run %s: artifact '%s' is in the manifest but %s is missing", run_id, path, uri)
        raise ArtifactNotFound(run_id, path) from None
    except InvalidArgumentError as exc:
        # The path was validated, so a URI the store refuses means a stored location is malformed:
        # the server's fault, INTERNAL (the interceptor logs it with the request id).
        if exc.reason == "INVALID_ARTIFACT_PATH":
            raise RuntimeError(f"run {run_id}: its stored artifact location is malformed") from exc
        raise


def _root_segments(root: str) -> tuple[str, ...]:
    segments = rules.root_segments(root)
    if segments is None:
        raise ValueError(
            f"artifact root {root!r} is not a file:/// or s3:// URI without '.', '..' or empty segments"
        )
    return segments


def _part(ctx: CallContext, index: int, run_id: str, metrics: Sequence[MetricPoint]) -> WriteKey | None:
    """The claim of a LogMetrics stream's ``index``-th batch, when the stream has a key."""
    if ctx.write is None:
        return None
    return ctx.write.part(index, run_id, [(m.key, m.value, m.timestamp, m.step) for m in metrics])


class TrackingService:
    def __init__(
        self,
        store: TrackingStore,
        artifacts: ArtifactStore,
        artifact_roots: Sequence[str],
        policy: AccessPolicy | None = None,
    ) -> None:
        """``artifact_roots``: where experiments' artifacts may lie, the artifact root first, then
        the extra roots an operator lists; at least one."""
        if not artifact_roots:
            raise ValueError("artifact_roots needs at least the artifact root")
        self._store = store
        self._artifacts = artifacts
        self._policy = policy or AccessPolicy()
        self._roots = tuple(map(_root_segments, artifact_roots))
        # (user, groups: the grantee, experiment id (int) or run id (str)) -> what the store said.
        # Keyed by the principal's own fields: building a Grantee per call would cost more than
        # the rest of a cached check.
        self._levels: TtlCache[tuple[str, frozenset[str], int | str], ExperimentAccess] = TtlCache(
            LEVEL_CACHE_SECONDS
        )

    # -- access checks -------------------------------------------------------------------------

    def _require(self, ctx: CallContext, need: Level, resource: int | str) -> None:
        """PERMISSION_DENIED unless the caller holds ``need`` on the experiment ``resource`` (an
        experiment id) or on the experiment of the run ``resource`` (a run id); NOT_FOUND when it
        does not exist and the level had to be looked up."""
        principal = ctx.principal
        if principal is None or self._policy.unconditional(principal, need):
            return
        key = (principal.name, principal.groups, resource)
        access = self._levels.get(key)
        if access is None:
            if isinstance(resource, str):
                access = self._store.access(grantee(principal), run_id=resource)
                if access is None:
                    raise RunNotFound(resource)
            else:
                access = self._store.access(grantee(principal), experiment_id=resource)
                if access is None:
                    raise ExperimentNotFound(f"'{resource}'")
            self._levels.put(key, access)
        has = max(self._policy.default_level, access.granted or Level.NONE)
        if has < need:
            raise denied(principal, need, "experiment", str(access.experiment_id), has)

    def _creator(self, ctx: CallContext) -> NewGrant | None:
        """The grant the creator of an experiment gets; a service creates nothing in its own name."""
        level = self._policy.creator_grant(ctx.principal, "experiment")
        return (
            None
            if level is None or ctx.principal is None
            else NewGrant(Subject("user", ctx.principal.name), level, ctx)
        )

    # -- experiments ---------------------------------------------------------------------------

    def create_experiment(
        self,
        ctx: CallContext,
        name: str,
        artifact_location: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        """Any authenticated caller but a service principal; the creator is granted the policy's
        creator_level in the same transaction."""
        name = rules.name(name)
        checked_tags = rules.new_experiment_tags(tags or {})
        location = rules.artifact_location(artifact_location, self._roots)
        return self._store.create_experiment(
            name, location, checked_tags, self._creator(ctx), write=ctx.write
        )

    def get_experiment(self, ctx: CallContext, experiment_id: str) -> Experiment:
        numeric_id = rules.experiment_id(experiment_id)
        self._require(ctx, Level.READ, numeric_id)
        return self._store.get_experiment(numeric_id)

    def get_experiment_by_name(self, ctx: CallContext, name: str) -> Experiment:
        experiment = self._store.get_experiment_by_name(rules.name(name))
        self._require(ctx, Level.READ, int(experiment.experiment_id))
        return experiment

    def search_experiments(
        self,
        ctx: CallContext,
        filter_text: str,
        order_by: Sequence[str],
        view: ViewType,
        page_size: int,
        page_token: str,
    ) -> Page[Experiment]:
        filters = parse_filter(filter_text, EXPERIMENT_SEARCH)
        order = parse_order_by(list(order_by), EXPERIMENT_SEARCH)
        page = parse_page(
            page_size,
            page_token,
            default=rules.SEARCH_PAGE_DEFAULT,
            maximum=rules.SEARCH_PAGE_MAX,
            query=fingerprint("experiments", filter_text, tuple(order_by), view.value),
        )
        items, token = page.split(
            self._store.search_experiments(
                filters, order, view, page.fetch_limit, page.offset, self._policy.readable_by(ctx.principal)
            ),
            rules.experiment_bytes,
        )
        return Page(tuple(items), token)

    def rename_experiment(self, ctx: CallContext, experiment_id: str, new_name: str) -> Experiment:
        new_name = rules.name(new_name, "new_name")
        numeric_id = rules.experiment_id(experiment_id)
        self._require(ctx, Level.EDIT, numeric_id)
        return self._store.rename_experiment(numeric_id, new_name, write=ctx.write)

    def set_experiment_tag(self, ctx: CallContext, experiment_id: str, key: str, value: str) -> None:
        rules.tag(key, value)
        numeric_id = rules.experiment_id(experiment_id)
        self._require(ctx, Level.EDIT, numeric_id)
        self._store.set_experiment_tag(numeric_id, key, value, write=ctx.write)

    def delete_experiment_tag(self, ctx: CallContext, experiment_id: str, key: str) -> None:
        numeric_id, key = rules.experiment_id(experiment_id), rules.tag_key(key)
        self._require(ctx, Level.EDIT, numeric_id)
        self._store.delete_experiment_tag(numeric_id, key, write=ctx.write)

    def delete_experiment(self, ctx: CallContext, experiment_id: str) -> None:
        """Soft-deletes the experiment and, as MLflow does, its live runs."""
        numeric_id = rules.experiment_id(experiment_id)
        if numeric_id == int(DEFAULT_EXPERIMENT_ID):  # "00" names the Default experiment too
            raise DefaultExperimentProtected()
        self._require(ctx, Level.MANAGE, numeric_id)
        self._store.delete_experiment(numeric_id, ctx, write=ctx.write)

    def restore_experiment(self, ctx: CallContext, experiment_id: str) -> None:
        """Restores the experiment and the runs deleted together with it."""
        numeric_id = rules.experiment_id(experiment_id)
        self._require(ctx, Level.MANAGE, numeric_id)
        self._store.restore_experiment(numeric_id, ctx, write=ctx.write)

    # -- runs ----------------------------------------------------------------------------------

    def create_run(
        self,
        ctx: CallContext,
        experiment_id: str = "",
        run_name: str = "",
        start_time: int = 0,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str = "",
    ) -> Run:
        """A run in ``experiment_id`` (the Default experiment when ""), named ``run_name`` or a
        generated name; ``start_time`` 0 means now. The tags ``mlflow.runName`` and
        ``mlflow.parentRunId`` (how MLflow's clients name a run and its parent) give the name and
        parent when the fields are empty."""
        numeric_id = rules.experiment_id(experiment_id or DEFAULT_EXPERIMENT_ID)
        checked_tags = rules.new_run_tags(tags or {})
        run_name, parent_run_id = rules.column_tags(checked_tags, run_name, parent_run_id)
        name = rules.name(run_name, "run_name") if run_name else rules.generate_run_name()
        parent = rules.run_id(parent_run_id, "parent_run_id") if parent_run_id else None
        self._require(ctx, Level.EDIT, numeric_id)
        if parent:
            # A child names its parent: only a parent the caller may read, or a caller without
            # READ there would learn that the run exists and attach runs to it.
            try:
                self._require(ctx, Level.READ, parent)
            except RunNotFound:
                raise RunNotFound(parent, "PARENT_RUN_NOT_FOUND") from None
        return self._store.create_run(numeric_id, name, start_time, checked_tags, parent, write=ctx.write)

    def get_run(self, ctx: CallContext, run_id: str) -> Run:
        run_id = rules.run_id(run_id)
        self._require(ctx, Level.READ, run_id)
        return self._store.get_run(run_id)

    def update_run(
        self,
        ctx: CallContext,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Changes the fields given (None = unchanged) of a live run."""
        if run_name is not None:
            rules.name(run_name, "run_name")
        run_id = rules.run_id(run_id)
        self._require(ctx, Level.EDIT, run_id)
        return self._store.update_run(run_id, status, end_time, run_name, ctx, write=ctx.write)

    def delete_run(self, ctx: CallContext, run_id: str) -> None:
        run_id = rules.run_id(run_id)
        self._require(ctx, Level.EDIT, run_id)
        self._store.delete_run(run_id, ctx, write=ctx.write)

    def restore_run(self, ctx: CallContext, run_id: str) -> None:
        run_id = rules.run_id(run_id)
        self._require(ctx, Level.EDIT, run_id)
        self._store.restore_run(run_id, ctx, write=ctx.write)

    def list_run_events(
        self,
        ctx: CallContext,
        experiment_ids: Sequence[str],
        run_id: str,
        actions: Sequence[RunEventAction],
        cursor: str,
        page_size: int,
    ) -> tuple[list[RunEvent], int]:
        """The lifecycle events after ``cursor`` and the position the next call resumes from.
        Named experiments or a run need READ on each; otherwise READ is a condition of the query."""
        if len(experiment_ids) > MAX_EVENT_EXPERIMENTS:
            raise InvalidArgumentError(
                "INVALID_EXPERIMENT_ID",
                f"experiment_ids holds {len(experiment_ids)} ids; at most {MAX_EVENT_EXPERIMENTS}",
                {"field": "experiment_ids"},
            )
        numeric_ids = sorted({rules.experiment_id(e, "experiment_ids") for e in experiment_ids})
        run_id = rules.run_id(run_id) if run_id else ""
        after = decode_cursor(cursor) if cursor else 0
        limit = parse_page(page_size, "", default=EVENTS_PAGE_DEFAULT, maximum=EVENTS_PAGE_MAX, query="").size
        for numeric_id in numeric_ids:
            self._require(ctx, Level.READ, numeric_id)
        if run_id:
            self._require(ctx, Level.READ, run_id)
        readable_by = None if numeric_ids or run_id else self._policy.readable_by(ctx.principal)
        events, head = self._store.list_run_events(numeric_ids, run_id, actions, after, limit, readable_by)
        if after > head:
            raise CursorAhead(head)
        return events, events[-1].position if events else after

    def search_runs(
        self,
        ctx: CallContext,
        experiment_ids: Sequence[str],
        filter_text: str,
        order_by: Sequence[str],
        view: ViewType,
        page_size: int,
        page_token: str,
    ) -> Page[Run]:
        numeric_ids = tuple(rules.experiment_id(e, "experiment_ids") for e in experiment_ids)
        filters, order = _run_query(filter_text, tuple(order_by))
        page = parse_page(
            page_size,
            page_token,
            default=rules.SEARCH_PAGE_DEFAULT,
            maximum=rules.SEARCH_PAGE_MAX,
            query=fingerprint("runs", sorted(numeric_ids), filter_text, tuple(order_by), view.value),
        )
        items, token = page.split(
            self._store.search_runs(
                numeric_ids,
                filters,
                order,
                view,
                page.fetch_limit,
                page.offset,
                self._policy.readable_by(ctx.principal),
            ),
            rules.run_bytes,
        )
        return Page(tuple(items), token)

    # -- run data ------------------------------------------------------------------------------
    # Every write of run data is the store's log_batch: one transaction that locks the run.

    def log_param(self, ctx: CallContext, run_id: str, param: Param) -> None:
        self.log_batch(ctx, run_id, params=(param,))

    def log_metric(self, ctx: CallContext, run_id: str, metric: MetricPoint) -> None:
        self.log_batch(ctx, run_id, metrics=(metric,))

    def set_tag(self, ctx: CallContext, run_id: str, key: str, value: str) -> None:
        """Sets a tag; ``mlflow.runName`` renames the run, as in MLflow."""
        if key == rules.RUN_NAME_TAG:
            self.update_run(ctx, run_id, run_name=value)
            return
        rules.tag(key, value)
        rules.no_column_tags((key,), "key")
        run_id = rules.run_id(run_id)
        self._require(ctx, Level.EDIT, run_id)
        self._store.log_batch(run_id, metrics=(), params={}, tags={key: value}, write=ctx.write)

    def delete_tag(self, ctx: CallContext, run_id: str, key: str) -> None:
        run_id, key = rules.run_id(run_id), rules.tag_key(key)
        self._require(ctx, Level.EDIT, run_id)
        self._store.delete_tag(run_id, key, write=ctx.write)

    def log_batch(
        self,
        ctx: CallContext,
        run_id: str,
        metrics: Sequence[MetricPoint] = (),
        params: Iterable[Param] = (),
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Logs it all or nothing. A point's timestamp 0 means now; a param already logged with
        another value (in the run or in the batch) is PARAM_VALUE_CONFLICT."""
        rules.metrics(metrics, rules.MAX_BATCH_METRICS)
        checked_params = rules.params(params)
        checked_tags = rules.tags(tags or {})
        rules.no_column_tags(checked_tags)
        run_id = rules.run_id(run_id)
        self._require(ctx, Level.EDIT, run_id)
        self._store.log_batch(
            run_id, metrics=metrics, params=checked_params, tags=checked_tags, write=ctx.write
        )

    def log_metrics(self, ctx: CallContext, run_id: str, metrics: Sequence[MetricPoint]) -> int:
        """Stores up to 10,000 points atomically (one LogMetrics message); returns how many."""
        return self.log_metrics_stream(ctx, [(run_id, metrics)])

    def log_metrics_stream(
        self, ctx: CallContext, batches: Iterable[tuple[str, Sequence[MetricPoint]]]
    ) -> int:
        """Stores each (run id, points) batch of a LogMetrics stream atomically as it arrives;
        returns how many points. With an idempotency key, the n-th batch is stored once per key
        (claimed as ``<key>/<n>``, see WriteKey.part): a stream sent again after a break stores
        only the batches not stored before, and counts them all. EDIT is checked before every batch (a cache hit but once per
        0.5 s), so a grant removed while a training loop streams stops it within that bound."""
        stored = 0
        for index, (run_id, metrics) in enumerate(batches):
            rules.metrics(metrics, rules.MAX_STREAM_BATCH_METRICS)
            run_id = rules.run_id(run_id)
            self._require(ctx, Level.EDIT, run_id)
            self._store.log_batch(
                run_id, metrics=metrics, params={}, tags={}, write=_part(ctx, index, run_id, metrics)
            )
            stored += len(metrics)
        return stored

    def get_metric_history(
        self, ctx: CallContext, run_id: str, key: str, page_size: int = 0, page_token: str = ""
    ) -> Page[Metric]:
        page = parse_page(
            page_size,
            page_token,
            default=rules.HISTORY_PAGE_DEFAULT,
            maximum=rules.HISTORY_PAGE_MAX,
            query=fingerprint("history", run_id, key),
        )
        run_id, key = rules.run_id(run_id), rules.metric_history_key(key)
        self._require(ctx, Level.READ, run_id)
        items, token = page.split(
            self._store.get_metric_history(run_id, key, page.fetch_limit, page.offset),
            rules.metric_bytes(key),
        )
        return Page(tuple(items), token)

    # -- artifacts -----------------------------------------------------------------------------

    def upload_artifact(
        self,
        ctx: CallContext,
        run_id: str,
        path: str,
        content: UploadContent,
        expected_sha256: str | None = None,
    ) -> ArtifactFile:
        """Stages and verifies the content, then publishes it at ``path`` of a live run and records
        it in the manifest in one transaction; on any failure the staged copy is discarded."""
        run_id = rules.run_id(run_id)
        path = rules.artifact_path(path)
        expected_sha256 = rules.expected_sha256(expected_sha256)
        self._require(ctx, Level.EDIT, run_id)  # before a byte is read or written
        # Refuses a deleted run or a colliding path before the bytes arrive; record_artifact
        # checks again under the run's lock.
        root = self._store.artifact_root_for_upload(run_id, path)
        if not rules.under_roots(root, self._roots):
            raise ArtifactLocationNotAllowed(run_id)
        uri = f"{root}/{path}"
        with _object_errors(run_id, path, uri):
            staged = self._artifacts.stage(uri, content)
        with staged:
            check_declared(staged.stored, StoredObject(*content.declared))
            check_digest(staged.stored.sha256, expected_sha256)
            return self._store.record_artifact(
                run_id, path, staged.stored.size, staged.stored.sha256, publish=staged.publish
            )

    def download_artifact(
        self, ctx: CallContext, run_id: str, path: str
    ) -> tuple[ArtifactFile, Iterator[bytes]]:
        """The file's manifest entry and an iterator over its content in 1 MiB chunks."""
        path = rules.artifact_path(path)
        run_id = rules.run_id(run_id)
        self._require(ctx, Level.READ, run_id)
        root = self._store.artifact_root(run_id)
        file = self._store.get_artifact(run_id, path)
        if file is None:
            raise ArtifactNotFound(run_id, path)
        uri = f"{root}/{path}"
        with _object_errors(run_id, path, uri):
            return file, self._artifacts.read(uri)

    def list_artifacts(
        self, ctx: CallContext, run_id: str, path: str = "", recursive: bool = False
    ) -> list[ArtifactFile]:
        """Entries directly under directory ``path`` (every file below it when recursive).

        A path that is a file or names nothing lists as empty, as in MLflow.
        """
        path, run_id = rules.artifact_path(path, allow_root=True), rules.run_id(run_id)
        self._require(ctx, Level.READ, run_id)
        files = [f for f in self._store.list_artifact_files(run_id, path) if f.path != path]
        if recursive:
            return files
        start = len(path) + 1 if path else 0
        entries: dict[str, ArtifactFile] = {}
        for file in files:
            child, separator, _ = file.path[start:].partition("/")
            child_path = file.path[: start + len(child)]
            entries.setdefault(child_path, ArtifactFile(child_path, is_dir=True) if separator else file)
        return sorted(entries.values(), key=lambda f: f.path)

    def stat_artifact(self, ctx: CallContext, run_id: str, path: str) -> ArtifactFile:
        """The file at ``path``, or a directory when files lie below it (the root always is one)."""
        path, run_id = rules.artifact_path(path, allow_root=True), rules.run_id(run_id)
        self._require(ctx, Level.READ, run_id)
        files = self._store.list_artifact_files(run_id, path)
        exact = next((f for f in files if f.path == path), None)
        if exact is not None:
            return exact
        if files or not path:
            return ArtifactFile(path, is_dir=True)
        raise ArtifactNotFound(run_id, path)

    def seal_artifacts(self, ctx: CallContext, run_id: str, path: str) -> list[ArtifactFile]:
        """Freezes the file or directory at ``path`` (see SealArtifacts) and returns its files.

        A service registering a version for a user (``via``) needs that user's READ: whoever may
        read the run may register a version from it. Anyone else sealing directly needs EDIT, as
        a seal forbids the run's writers to upload there: a reader must not be able to freeze a
        run's paths without a registered version to show for it.
        """
        path, run_id = rules.artifact_path(path), rules.run_id(run_id)
        registering = ctx.principal is not None and bool(ctx.principal.via)
        self._require(ctx, Level.READ if registering else Level.EDIT, run_id)
        return self._store.seal_artifacts(run_id, path)

    # -- permissions ---------------------------------------------------------------------------

    def set_experiment_permission(
        self, ctx: CallContext, experiment_id: str, user: str, group: str, level: int | str
    ) -> Grant:
        """Grants ``level`` to the user or the group (exactly one), replacing an earlier grant."""
        numeric_id = rules.experiment_id(experiment_id)
        grant = NewGrant(subject(user, group), parse_level(level), ctx)
        self._require(ctx, Level.MANAGE, numeric_id)
        granted = self._store.set_permission(numeric_id, grant, write=ctx.write)
        self._forget_levels(numeric_id)
        return granted

    def delete_experiment_permission(
        self, ctx: CallContext, experiment_id: str, user: str, group: str
    ) -> None:
        numeric_id = rules.experiment_id(experiment_id)
        grantee = subject(user, group)
        self._require(ctx, Level.MANAGE, numeric_id)
        self._store.delete_permission(numeric_id, grantee, ctx, write=ctx.write)
        self._forget_levels(numeric_id)

    def list_experiment_permissions(
        self, ctx: CallContext, experiment_id: str
    ) -> tuple[list[Grant], list[GrantEvent]]:
        numeric_id = rules.experiment_id(experiment_id)
        self._require(ctx, Level.READ, numeric_id)
        return self._store.list_permissions(numeric_id, MAX_PERMISSION_EVENTS)

    def _forget_levels(self, experiment_id: int) -> None:
        """Grants changed here take effect here at once (other processes: within the cache's ttl)."""
        self._levels.discard(lambda _key, access: access.experiment_id == experiment_id)
