"""SQLAlchemy implementation of TrackingStore (SQLite, PostgreSQL, MySQL/MariaDB).

Every public method is one transaction with a handful of statements, over input TrackingService
has validated and parsed: the store raises only the errors that depend on the data. Writes to a
run's data first lock the run row (``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``
serialises writers anyway), so the read-merge-write of params (immutability) and latest_metrics
(MLflow's newest-point rule) is race-free without dialect-specific upserts. Pure reads (get,
search, list) run in read-only transactions (``db.read_only``): on SQLite they begin DEFERRED and
never queue behind a writer. Batches go out as one executemany per table.
Searches are filtered, ordered and limited in SQL; the params, metrics and tags of the runs found
are then loaded with one IN query per table.

Runs and their data are read and written with Core statements over the tables (plain rows, no ORM
identity map): these are the per-call hot paths. Experiments, rarely touched, use the ORM.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import operator
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import SQLCoreOperations

from modelreg.wire import now_ms
from modelreg_server.access.policy import Grant, Grantee, GrantEvent, Level, Subject, grants_limit
from modelreg_server.context import CallContext
from modelreg_server.db import discard_after_large_search, read_only, small_search
from modelreg_server.event_log import PositionCounter
from modelreg_server.idempotency import AppliedWrites, WriteKey, current_grant, nothing, replayed
from modelreg_server.memo import cache_small
from modelreg_server.sqlfilter import like
from modelreg_server.sqlsize import total_bytes
from modelreg_server.validation import text_bytes
from tracking_service.domain import rules
from tracking_service.domain.entities import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    TERMINAL_STATUS_EVENTS,
    ArtifactFile,
    Experiment,
    ExperimentAccess,
    LifecycleStage,
    Metric,
    MetricPoint,
    NewGrant,
    Param,
    Run,
    RunData,
    RunEvent,
    RunEventAction,
    RunInfo,
    RunStatus,
    ViewType,
)
from tracking_service.domain.errors import (
    ArtifactLocationInUse,
    ArtifactNotFound,
    ArtifactSealed,
    ExperimentAlreadyExists,
    ExperimentDeleted,
    ExperimentNotFound,
    InvalidArtifactPath,
    ParamValueConflict,
    PermissionNotFound,
    RunDeleted,
    RunNotFound,
    TagNotFound,
)
from tracking_service.domain.filters import Comparison, Entity, OrderBy
from tracking_service.store.base import (
    KEPT_GONE,
    KEPT_HAS_RUNS,
    KEPT_RECENT,
    KEPT_RESTORED,
    KEPT_SEALED,
    DeletedExperiment,
    DeletedRun,
)
from tracking_service.store.models import (
    APPLIED_WRITES,
    RUN_EVENT_COUNTER,
    ArtifactRow,
    ArtifactSealRow,
    Base,
    ExperimentPermissionEventRow,
    ExperimentPermissionRow,
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    MetricRow,
    ParamRow,
    RunEventRow,
    RunRow,
    RunTagRow,
)

# Bound on the ids of one expanding IN (...) list, one bound parameter per id: a default page of
# 1,000 plus the row fetched past it, which says whether another page follows.
_IN_CHUNK = rules.SEARCH_PAGE_DEFAULT + 1

_STATUSES = {status.value: status for status in RunStatus}
_STAGES = {stage.value: stage for stage in LifecycleStage}
_ACTIVE = LifecycleStage.ACTIVE.value
_DELETED = LifecycleStage.DELETED.value
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Condition = sa.ColumnElement[bool]
AnySelect = sa.Select[*tuple[Any, ...]]
AnyRow = sa.Row[*tuple[Any, ...]]
# A mapped attribute or a column expression: anything SQL operators apply to.
Column = SQLCoreOperations[Any]


_TABLES = Base.metadata.tables
_RUNS = _TABLES[RunRow.__tablename__]
_PARAMS = _TABLES[ParamRow.__tablename__]
_RUN_TAGS = _TABLES[RunTagRow.__tablename__]
_METRICS = _TABLES[MetricRow.__tablename__]
_LATEST = _TABLES[LatestMetricRow.__tablename__]
_ARTIFACTS = _TABLES[ArtifactRow.__tablename__]
_EXPERIMENTS = _TABLES[ExperimentRow.__tablename__]
_EXPERIMENT_TAGS = _TABLES[ExperimentTagRow.__tablename__]
_PERMISSIONS = _TABLES[ExperimentPermissionRow.__tablename__]
_PERMISSION_EVENTS = _TABLES[ExperimentPermissionEventRow.__tablename__]
_SEALS = _TABLES[ArtifactSealRow.__tablename__]
_RUN_EVENTS = _TABLES[RunEventRow.__tablename__]
_RUN_OF_EVENT = sa.select(_RUNS.c.run_id, _RUNS.c.experiment_id)
_DATA_TABLES = {Entity.METRIC: _LATEST, Entity.PARAM: _PARAMS, Entity.TAG: _RUN_TAGS}
_IN_VIEW = {view: _RUNS.c.lifecycle_stage.in_([stage.value for stage in view.stages]) for view in ViewType}

# The hot paths run Core statements built once here: building a statement and its cache key on
# every call costs more than SQLite takes to run it, and ORM entities cost more again per row.
_RUN_ID: sa.BindParameter[str] = sa.bindparam("run_id")
_KEYS: sa.BindParameter[list[str]] = sa.bindparam("keys", expanding=True)
_RUN_INFO_COLUMNS = (
    _RUNS.c.run_id,
    _RUNS.c.experiment_id,
    _RUNS.c.run_name,
    _RUNS.c.status,
    _RUNS.c.start_time,
    _RUNS.c.end_time,
    _RUNS.c.artifact_uri,
    _RUNS.c.lifecycle_stage,
    _RUNS.c.parent_run_id,
)
_SELECT_RUN_INFO: AnySelect = sa.select(*_RUN_INFO_COLUMNS)
_RUN_INFO = _SELECT_RUN_INFO.where(_RUNS.c.run_id == _RUN_ID)
_RUN_STAGE = sa.select(_RUNS.c.lifecycle_stage).where(_RUNS.c.run_id == _RUN_ID)
_RUN_STATUS = sa.select(_RUNS.c.status).where(_RUNS.c.run_id == _RUN_ID)
_RUN_STAGE_FOR_UPDATE = _RUN_STAGE.with_for_update()
_RUN_ARTIFACT_URI = sa.select(_RUNS.c.artifact_uri).where(_RUNS.c.run_id == _RUN_ID)
_EXPERIMENT_STATE = sa.select(_EXPERIMENTS.c.lifecycle_stage, _EXPERIMENTS.c.artifact_location).where(
    _EXPERIMENTS.c.experiment_id == sa.bindparam("experiment_id")
)
_INSERT_RUN = sa.insert(_RUNS)
_LOCK_DEFAULT_EXPERIMENT = (
    sa.select(_EXPERIMENTS.c.experiment_id)
    .where(_EXPERIMENTS.c.experiment_id == 0)
    .with_for_update(key_share=True)
)
_PARAMS_OF_KEYS = sa.select(_PARAMS.c.key, _PARAMS.c.value).where(
    _PARAMS.c.run_id == _RUN_ID, _PARAMS.c.key.in_(_KEYS)
)
_INSERT_PARAM = sa.insert(_PARAMS)
_DELETE_RUN_TAGS = sa.delete(_RUN_TAGS).where(_RUN_TAGS.c.run_id == _RUN_ID, _RUN_TAGS.c.key.in_(_KEYS))
_INSERT_RUN_TAG = sa.insert(_RUN_TAGS)
# Sort key of (run_id, key, ...) rows.
_KEY = operator.itemgetter(1)
# Column order of the metric rows built by _metric_rows (the metrics and latest_metrics columns).
_METRIC_COLUMNS = ("run_id", "key", "value", "is_nan", "is_inf", "timestamp", "step")
_INSERT_METRIC = sa.insert(_METRICS).values({name: sa.bindparam(name) for name in _METRIC_COLUMNS})
_INSERT_LATEST = sa.insert(_LATEST)
_LATEST_OF_KEYS = sa.select(
    _LATEST.c.key, _LATEST.c.value, _LATEST.c.is_nan, _LATEST.c.is_inf, _LATEST.c.timestamp, _LATEST.c.step
).where(_LATEST.c.run_id == _RUN_ID, _LATEST.c.key.in_(_KEYS))
# Bind names of _UPDATE_LATEST in _METRIC_COLUMNS order (a SET column's own name cannot be reused
# for the WHERE parameters).
_LATEST_UPDATE_PARAMS = ("b_run_id", "b_key", "value", "is_nan", "is_inf", "timestamp", "step")
_UPDATE_LATEST = (
    sa.update(_LATEST)
    .where(_LATEST.c.run_id == sa.bindparam("b_run_id"), _LATEST.c.key == sa.bindparam("b_key"))
    .values({name: sa.bindparam(name) for name in _METRIC_COLUMNS[2:]})
)
_METRIC_HISTORY = (
    sa.select(_METRICS.c.value, _METRICS.c.is_nan, _METRICS.c.is_inf, _METRICS.c.timestamp, _METRICS.c.step)
    .where(_METRICS.c.run_id == _RUN_ID, _METRICS.c.key == sa.bindparam("key"))
    .order_by(_METRICS.c.step, _METRICS.c.timestamp, _METRICS.c.id)
    .offset(sa.bindparam("offset", type_=sa.Integer))
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_ARTIFACT = sa.select(_ARTIFACTS.c.path, _ARTIFACTS.c.size, _ARTIFACTS.c.sha256).where(
    _ARTIFACTS.c.run_id == _RUN_ID, _ARTIFACTS.c.path_digest == sa.bindparam("path_digest")
)
# What a run or an experiment holds, for its caps (rules.MAX_RUN_TAGS and the like).
_RUN_SIZE = sa.select(
    sa.select(sa.func.count()).select_from(_PARAMS).where(_PARAMS.c.run_id == _RUN_ID).scalar_subquery(),
    sa.select(sa.func.count()).select_from(_RUN_TAGS).where(_RUN_TAGS.c.run_id == _RUN_ID).scalar_subquery(),
    sa.select(total_bytes(_PARAMS.c.key, _PARAMS.c.value))
    .where(_PARAMS.c.run_id == _RUN_ID)
    .scalar_subquery()
    + sa.select(total_bytes(_RUN_TAGS.c.key, _RUN_TAGS.c.value))
    .where(_RUN_TAGS.c.run_id == _RUN_ID)
    .scalar_subquery(),
)
# The other files of a run's manifest: an upload replacing a path takes no new place.
_OTHER_ARTIFACTS = sa.select(sa.func.count(), total_bytes(_ARTIFACTS.c.path)).where(
    _ARTIFACTS.c.run_id == _RUN_ID, _ARTIFACTS.c.path_digest != sa.bindparam("path_digest")
)
_RUN_METRIC_KEYS = sa.select(sa.func.count()).select_from(_LATEST).where(_LATEST.c.run_id == _RUN_ID)
_EXPERIMENT_SIZE = sa.select(
    sa.func.count(), total_bytes(_EXPERIMENT_TAGS.c.key, _EXPERIMENT_TAGS.c.value)
).where(_EXPERIMENT_TAGS.c.experiment_id == sa.bindparam("experiment_id"))

# The grants of a caller: to its user name or to one of its groups. Bound per call (see
# _grantee_binds), so every caller shares one statement and its compiled form.
_TO_GRANTEE = sa.or_(
    sa.and_(
        _PERMISSIONS.c.subject_kind == "user", _PERMISSIONS.c.subject_name == sa.bindparam("grantee_user")
    ),
    sa.and_(
        _PERMISSIONS.c.subject_kind == "group",
        _PERMISSIONS.c.subject_name.in_(sa.bindparam("grantee_groups", expanding=True)),
    ),
)


def _grantee_binds(grantee: Grantee) -> dict[str, object]:
    return {"grantee_user": grantee.user, "grantee_groups": list(grantee.groups)}


def _granted_level(experiment_id: Column) -> sa.ScalarSelect[Any]:
    """The caller's highest grant on the experiment of ``experiment_id`` (NULL without one)."""
    return (
        sa.select(sa.func.max(_PERMISSIONS.c.level))
        .where(_PERMISSIONS.c.experiment_id == experiment_id, _TO_GRANTEE)
        .scalar_subquery()
    )


def _readable(experiment_id: Column) -> Condition:
    """The caller holds READ or more on the experiment of ``experiment_id``: a search's restriction,
    applied in SQL so that pages stay full and page offsets stay right."""
    return sa.exists().where(
        _PERMISSIONS.c.experiment_id == experiment_id, _PERMISSIONS.c.level >= int(Level.READ), _TO_GRANTEE
    )


# Existence and the caller's grant in one query: an unknown id stays NOT_FOUND.
_EXPERIMENT_ACCESS = sa.select(
    _EXPERIMENTS.c.experiment_id, _granted_level(_EXPERIMENTS.c.experiment_id)
).where(_EXPERIMENTS.c.experiment_id == sa.bindparam("experiment_id"))
_RUN_ACCESS = sa.select(_RUNS.c.experiment_id, _granted_level(_RUNS.c.experiment_id)).where(
    _RUNS.c.run_id == _RUN_ID
)

MetricValues = tuple[str, str, float, bool, bool, int, int]
"""One metric row in _METRIC_COLUMNS order, values as stored."""


def encode_metric_value(value: float) -> tuple[float, bool, bool]:
    """(finite value, is_nan, is_inf): NaN as 0 and ±inf as ±DBL_MAX, like MLflow, plus flags."""
    if math.isnan(value):
        return 0.0, True, False
    if math.isinf(value):
        return math.copysign(sys.float_info.max, value), False, True
    return value, False, False


def decode_metric_value(value: float, is_nan: bool, is_inf: bool) -> float:
    if is_nan:
        return math.nan
    return math.copysign(math.inf, value) if is_inf else value


def _metric_rows(
    run_id: str, metrics: Iterable[MetricPoint]
) -> tuple[list[MetricValues], dict[str, tuple[tuple[int, int, float], MetricValues]]]:
    """The rows of a batch (timestamp 0 means now) and, per key, the newest point with its rank.
    One pass: this loop runs for every point logged."""
    now = now_ms()
    rows: list[MetricValues] = []
    newest: dict[str, tuple[tuple[int, int, float], MetricValues]] = {}
    for metric in metrics:
        key, value, timestamp, step = metric.key, metric.value, metric.timestamp or now, metric.step
        if math.isfinite(value):
            row: MetricValues = (run_id, key, value, False, False, timestamp, step)
            rank = (step, timestamp, value)
        else:
            row = (run_id, key, *encode_metric_value(value), timestamp, step)
            rank = rules.rank(step, timestamp, value)
        rows.append(row)
        best = newest.get(key)
        if best is None or rank > best[0]:
            newest[key] = (rank, row)
    return rows, newest


def _tag_row(run_id: str, key: str, value: str) -> dict[str, str]:
    return {"run_id": run_id, "key": key, "value": value}


def _files_at(session: Session, run_id: str, path: str) -> list[ArtifactFile]:
    """The file at ``path`` or every file below it (the whole run for ""), sorted by path."""
    statement = sa.select(_ARTIFACTS.c.path, _ARTIFACTS.c.size, _ARTIFACTS.c.sha256).where(
        _ARTIFACTS.c.run_id == run_id
    )
    if path:
        statement = statement.where(
            sa.or_(_ARTIFACTS.c.path == path, _is_prefix(_ARTIFACTS.c.path, f"{path}/"))
        )
    rows = session.execute(statement).all()
    # Matched again in Python: MariaDB's PAD SPACE collations find 'a' for 'a ' with '=', and a
    # seal recorded for 'a ' would then not cover the 'a' it answered.
    exact = (row for row in rows if not path or row[0] == path or row[0].startswith(f"{path}/"))
    # Sorted in Python: SQL collations order '/' and other characters differently per backend.
    return sorted(
        (ArtifactFile(p, is_dir=False, size=s, sha256=h) for p, s, h in exact), key=lambda f: f.path
    )


def _small_search(
    experiment_ids: tuple[int, ...],
    filters: tuple[Comparison, ...],
    view: ViewType,
    order: tuple[OrderBy, ...],
    restricted: bool,
) -> bool:
    """Whether a search's statement is worth keeping (modelreg_server.db.small_search), the key of
    the statement memo (modelreg_server.memo) being the search's arguments."""
    return small_search(filters, len(experiment_ids))


def _purge_kept(stage: str, deleted_time: int | None, deleted_before: int) -> str | None:
    """Why a run or experiment of this lifecycle stage and deletion time is not purged now; None
    when it goes."""
    if stage != _DELETED:
        return KEPT_RESTORED
    return KEPT_RECENT if (deleted_time or 0) > deleted_before else None


def _path_digest(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class _RunDataQueries:
    """The statements loading the params, latest metrics and tags of a list of runs, and how the
    backend takes that list: ``bind(ids)`` is the ``run_ids`` parameter, for ``chunk`` ids at most.

    SQLite reads the ids from one JSON array parameter (json_each) and PostgreSQL from one array
    (= ANY), however many there are: SQLAlchemy renders an expanding IN anew on every execution,
    about 1 µs per id and statement, which cost more than SQLite then took to find the rows. MySQL
    gets the expanding IN.
    """

    params: AnySelect
    latest: AnySelect
    tags: AnySelect
    bind: Callable[[Sequence[str]], object]
    chunk: int

    @classmethod
    def for_dialect(cls, dialect: str) -> _RunDataQueries:
        return cls(
            params=sa.select(_PARAMS.c.run_id, _PARAMS.c.key, _PARAMS.c.value).where(
                _in_run_ids(_PARAMS.c.run_id, dialect)
            ),
            latest=sa.select(*(_LATEST.c[name] for name in _METRIC_COLUMNS)).where(
                _in_run_ids(_LATEST.c.run_id, dialect)
            ),
            tags=sa.select(_RUN_TAGS.c.run_id, _RUN_TAGS.c.key, _RUN_TAGS.c.value).where(
                _in_run_ids(_RUN_TAGS.c.run_id, dialect)
            ),
            bind=json.dumps if dialect == "sqlite" else list,
            chunk=sys.maxsize if dialect in ("sqlite", "postgresql") else _IN_CHUNK,
        )


def _in_run_ids(column: Column, dialect: str) -> Condition:
    """``column`` IN the ``run_ids`` parameter, in the parameter's form on ``dialect``."""
    if dialect == "sqlite":
        ids = sa.func.json_each(sa.bindparam("run_ids", type_=sa.String)).table_valued("value")
        return column.in_(sa.select(ids))
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam("run_ids", type_=sa.ARRAY(sa.String)))
    return column.in_(sa.bindparam("run_ids", expanding=True))


def _run_info(row: AnyRow) -> RunInfo:
    """RunInfo of a row of _RUN_INFO_COLUMNS (unpacked by position and enums looked up in dicts:
    a search builds a thousand of these)."""
    run_id, experiment_id, run_name, status, start_time, end_time, artifact_uri, stage, parent = row
    return RunInfo(
        run_id,
        str(experiment_id),
        run_name,
        _STATUSES[status],
        start_time,
        end_time,
        artifact_uri,
        _STAGES[stage],
        parent,
    )


@functools.cache
def _order_alias(entity: Entity, position: int) -> sa.FromClause:
    """The data table of ``entity`` aliased for the ORDER BY term at ``position``: made once, as
    an alias builds its column collection anew, which costs more than running a small search."""
    table = _DATA_TABLES[entity]
    return table.alias(f"{table.name}_order_{position}")


def _experiment(row: ExperimentRow, tags: Mapping[str, str]) -> Experiment:
    return Experiment(
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
        tags=dict(tags),
    )


# The metric, param or tag keys of a search that get a subquery of their own (see _data_conditions).
_OWN_SUBQUERIES = 3


def _data_conditions(
    owner: sa.Column[Any], tests: Mapping[tuple[sa.Table, str], list[Condition]]
) -> list[Condition]:
    """The WHERE terms requiring ``owner`` (runs.run_id or experiments.experiment_id) to have, for
    each (data table, key) of ``tests``, the row of that key, meeting all of the key's tests. A
    missing key fails every test, != and NOT IN included, as in MLflow.

    The first _OWN_SUBQUERIES keys get a subquery each, ``owner IN (SELECT ...)`` and uncorrelated,
    so the planner may start from the most selective key's index or probe the key per owner. But
    each is a semi-join, and PostgreSQL's join search grows exponentially in their number: over
    5,000 runs 3 plan in 2 ms, 8 in 170 ms and 120 MB, 20 in 1.6 s and 740 MB, and 50 ran a
    backend out of 3 GB.

    The other keys cost one subquery per table: the count of the owner's rows passing their tests,
    a filter on the owners left by the rest of the query. Each (owner, key) has one row at most
    (the primary key), so the owner passes exactly when the count is the number of keys. A scalar
    subquery never becomes a join, so planning stays linear, and each owner costs one probe of the
    primary key per table. (Grouping every owner's rows by owner instead, as the registry does,
    reads the keys' rows of all runs in the database: over 50 experiments of 1,000 runs, a search
    of one with 6 to 40 clauses took 0.1 to 0.6 s that way, 2 to 45 ms this way.)
    """
    conditions: list[Condition] = []
    keys = list(tests)
    for table, key in keys[:_OWN_SUBQUERIES]:
        matching = sa.select(table.c[owner.name]).where(table.c.key == key, *tests[table, key])
        conditions.append(owner.in_(matching))
    rest: dict[sa.Table, dict[str, Condition]] = {}
    for table, key in keys[_OWN_SUBQUERIES:]:
        rest.setdefault(table, {})[key] = sa.and_(table.c.key == key, *tests[table, key])
    for table, passing in rest.items():
        count = (
            sa.select(sa.func.count())
            # The IN list lets MySQL probe the primary key for these keys, not read all the owner's.
            .where(table.c[owner.name] == owner, table.c.key.in_(list(passing)), sa.or_(*passing.values()))
            .correlate(owner.table)
            .scalar_subquery()
        )
        # ">=" means "=" here, but PostgreSQL estimates that a third of the owners pass, not 0.5%:
        # expecting next to none, it chose nested loops over whole tables (over 60 s at 50,000 runs).
        conditions.append(count >= len(passing))
    return conditions


def _grant_key(experiment_id: int, subject: Subject) -> tuple[Condition, ...]:
    return (
        _PERMISSIONS.c.experiment_id == experiment_id,
        _PERMISSIONS.c.subject_kind == subject.kind,
        _PERMISSIONS.c.subject_name == subject.name,
    )


def _is_prefix(column: Column, prefix: str) -> Condition:
    # substr rather than LIKE: exact and case-sensitive on every backend, no wildcard escaping.
    return sa.func.substr(column, 1, len(prefix)) == prefix


def _overlapping(experiment_id: int, location: str) -> AnySelect:
    """Another experiment, deleted or not, whose artifact_location is ``location``, lies above it
    or below it, segment by segment. Default locations are stored resolved (``<root>/<id>``, in
    the creating transaction), so they count like any other. A location stored with a trailing
    '/' (before locations were normalized) matches too."""
    column = _EXPERIMENTS.c.artifact_location
    enclosing = rules.enclosing_locations(location)
    return (
        sa.select(_EXPERIMENTS.c.experiment_id)
        .where(
            _EXPERIMENTS.c.experiment_id != experiment_id,
            sa.or_(
                column.in_(enclosing + [f"{above}/" for above in enclosing]),
                _is_prefix(column, f"{location}/"),
            ),
        )
        .limit(1)
    )


class SqlTrackingStore:
    """TrackingStore over a SQLAlchemy engine whose schema is at head (see store.MIGRATIONS)."""

    def __init__(self, engine: Engine, artifact_root: str) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Pure reads (get, search, list): on SQLite they then never wait for a writer's lock.
        self._reads = sessionmaker(read_only(engine), expire_on_commit=False)
        self.applied_writes = AppliedWrites(APPLIED_WRITES, self._sessions, self._reads)
        self._artifact_root = artifact_root.rstrip("/")
        self._run_events = PositionCounter(RUN_EVENT_COUNTER, engine.dialect.update_returning)
        self._sqlite = engine.dialect.name == "sqlite"
        self._run_data = _RunDataQueries.for_dialect(engine.dialect.name)
        # Searches repeat (a dashboard, a pager): reuse their statements, those of small ones only
        # (a statement holds its values: see _small_search).
        self._search_statement = cache_small(256, _small_search)(self._build_search_statement)
        compiled = _INSERT_METRIC.compile(dialect=engine.dialect)
        if self._sqlite and compiled.positiontup != list(_METRIC_COLUMNS):
            raise RuntimeError(f"metric insert binds {compiled.positiontup}, rows hold {_METRIC_COLUMNS}")
        self._metric_insert_sql = compiled.string

    def ensure_default_experiment(self) -> None:
        """Creates the Default experiment (id 0) unless it exists; safe from concurrent starts."""
        try:
            with self._sessions.begin() as session:
                if session.get(ExperimentRow, 0) is not None:
                    return
                if self._engine.dialect.name in ("mysql", "mariadb"):
                    # MySQL reads an explicit 0 in an AUTO_INCREMENT column as "next value".
                    session.execute(
                        sa.text("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')")
                    )
                now = now_ms()
                session.add(
                    ExperimentRow(
                        experiment_id=0,
                        name=DEFAULT_EXPERIMENT_NAME,
                        artifact_location=f"{self._artifact_root}/{DEFAULT_EXPERIMENT_ID}",
                        lifecycle_stage=_ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                )
        except sa.exc.IntegrityError:
            pass  # another server created it first

    # ---------------------------------------------------------------- experiments

    @replayed(lambda store, result, *_, **__: store.get_experiment(int(result)))
    def create_experiment(
        self,
        name: str,
        artifact_location: str,
        tags: Mapping[str, str],
        creator: NewGrant | None = None,
        *,
        write: WriteKey | None = None,
    ) -> Experiment:
        now = now_ms()
        try:
            with self._sessions.begin() as session:
                if artifact_location:
                    self._lock_custom_locations(session)
                self.applied_writes.claim(session, write)  # after the lock: it sets the isolation
                row = ExperimentRow(
                    name=name,
                    artifact_location=artifact_location,
                    lifecycle_stage=_ACTIVE,
                    creation_time=now,
                    last_update_time=now,
                )
                session.add(row)
                # A taken name fails the flush, before the location is checked: a client retrying
                # its create gets EXPERIMENT_ALREADY_EXISTS, the answer it expects.
                session.flush()
                if not artifact_location:
                    row.artifact_location = f"{self._artifact_root}/{row.experiment_id}"
                elif session.execute(_overlapping(row.experiment_id, artifact_location)).first():
                    raise ArtifactLocationInUse()
                self._put_experiment_tags(session, row.experiment_id, tags)
                if creator is not None:
                    self._put_grant(session, row.experiment_id, creator)
                self.applied_writes.record(session, write, row.experiment_id)
        except sa.exc.IntegrityError:
            raise ExperimentAlreadyExists(name) from None
        return _experiment(row, tags)

    def _lock_custom_locations(self, session: Session) -> None:
        """Serializes the creates of experiments with a custom location until commit, so two
        overlapping ones cannot both pass _overlapping. SQLite serializes writers already (BEGIN
        IMMEDIATE). PostgreSQL and MySQL lock the Default experiment's row (there from the start,
        never removed) as the transaction's first statement, so the check after the wait sees what
        the previous holder committed: MySQL takes its snapshot at the first plain read, after
        the lock; PostgreSQL is set to READ COMMITTED (under a REPEATABLE READ default the snapshot
        would predate the wait) and locks FOR NO KEY UPDATE, which leaves the foreign-key checks of
        runs inserted into experiment 0 alone."""
        if self._sqlite:
            return
        if self._engine.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        if session.execute(_LOCK_DEFAULT_EXPERIMENT).first() is None:
            raise RuntimeError("the Default experiment is missing: run ensure_default_experiment first")

    def get_experiment(self, experiment_id: int) -> Experiment:
        with self._reads.begin() as session:
            row = self._experiment_row(session, experiment_id)
            return _experiment(row, self._experiment_tags(session, [row.experiment_id])[row.experiment_id])

    def get_experiment_by_name(self, name: str) -> Experiment:
        with self._reads.begin() as session:
            row = session.scalars(sa.select(ExperimentRow).where(ExperimentRow.name == name)).first()
            if row is None:
                raise ExperimentNotFound(f"named '{name[:250]}'")
            return _experiment(row, self._experiment_tags(session, [row.experiment_id])[row.experiment_id])

    def search_experiments(
        self,
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        view: ViewType,
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[Experiment]:
        clauses, orders = filters, order
        columns: dict[str, Column] = {
            "name": ExperimentRow.name,
            "experiment_id": ExperimentRow.experiment_id,
            "creation_time": ExperimentRow.creation_time,
            "last_update_time": ExperimentRow.last_update_time,
        }
        conditions: list[Condition] = [ExperimentRow.lifecycle_stage.in_([s.value for s in view.stages])]
        tests: dict[tuple[sa.Table, str], list[Condition]] = {}
        for clause in clauses:
            if clause.entity is Entity.TAG:
                test = self._compare(_EXPERIMENT_TAGS.c.value, clause)
                tests.setdefault((_EXPERIMENT_TAGS, clause.key), []).append(test)
            else:
                conditions.append(self._compare(columns[clause.key], clause))
        conditions += _data_conditions(_EXPERIMENTS.c.experiment_id, tests)
        binds: dict[str, object] = {}
        if readable_by is not None:
            conditions.append(_readable(_EXPERIMENTS.c.experiment_id))
            binds = _grantee_binds(readable_by)
        ordering = [columns[o.key].asc() if o.ascending else columns[o.key].desc() for o in orders] or [
            ExperimentRow.creation_time.desc()
        ]
        statement = (
            sa.select(ExperimentRow)
            .where(*conditions)
            .order_by(*ordering, ExperimentRow.experiment_id.asc())
            .offset(offset)
            .limit(limit)
        )
        with self._reads.begin() as session:
            rows = list(session.scalars(statement, binds))
            discard_after_large_search(session.connection(), filters)
            tags = self._experiment_tags(session, [r.experiment_id for r in rows])
        return [_experiment(r, tags[r.experiment_id]) for r in rows]

    @replayed(lambda store, _result, experiment_id, *_, **__: store.get_experiment(experiment_id))
    def rename_experiment(
        self, experiment_id: int, new_name: str, *, write: WriteKey | None = None
    ) -> Experiment:
        try:
            with self.applied_writes.begin(write) as session:
                row = self._experiment_row(session, experiment_id)
                row.name = new_name
                row.last_update_time = now_ms()
                session.flush()
                tags = self._experiment_tags(session, [row.experiment_id])[row.experiment_id]
        except sa.exc.IntegrityError:
            raise ExperimentAlreadyExists(new_name) from None
        return _experiment(row, tags)

    @replayed(nothing)
    def set_experiment_tag(
        self, experiment_id: int, key: str, value: str, *, write: WriteKey | None = None
    ) -> None:
        with self.applied_writes.begin(write) as session:
            row = self._experiment_row(session, experiment_id, lock=True)
            if row.lifecycle_stage == _DELETED:
                raise ExperimentDeleted(str(experiment_id))
            self._put_experiment_tags(session, row.experiment_id, {key: value})
            # Counted after the write, under the row lock: a key set again counts once.
            count, tag_bytes = session.execute(_EXPERIMENT_SIZE, {"experiment_id": row.experiment_id}).one()
            rules.experiment_size_limits(count, int(tag_bytes), f"'{experiment_id}'")
            row.last_update_time = now_ms()

    @replayed(nothing)
    def delete_experiment_tag(self, experiment_id: int, key: str, *, write: WriteKey | None = None) -> None:
        with self.applied_writes.begin(write) as session:
            row = self._experiment_row(session, experiment_id, lock=True)
            deleted: sa.CursorResult[Any] = session.execute(  # type: ignore[assignment]
                sa.delete(ExperimentTagRow).where(
                    ExperimentTagRow.experiment_id == row.experiment_id, ExperimentTagRow.key == key
                )
            )
            if deleted.rowcount == 0:
                raise TagNotFound(key)
            row.last_update_time = now_ms()

    @replayed(nothing)
    def delete_experiment(
        self, experiment_id: int, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        """Soft-deletes the experiment and, as MLflow does, its live runs (stamped with the same time)."""
        with self.applied_writes.begin(write) as session:
            row = self._experiment_row(session, experiment_id, lock=True)
            if row.lifecycle_stage == _DELETED:
                return
            now = now_ms()
            row.lifecycle_stage, row.last_update_time = _DELETED, now
            session.execute(
                sa.update(RunRow)
                .where(RunRow.experiment_id == row.experiment_id, RunRow.lifecycle_stage == _ACTIVE)
                .values(lifecycle_stage=_DELETED, deleted_time=now)
            )
            deleted_with_it = _RUN_OF_EVENT.where(
                _RUNS.c.experiment_id == row.experiment_id, _RUNS.c.deleted_time == now
            )
            self._record_run_events(session, RunEventAction.DELETED, ctx, deleted_with_it)

    @replayed(nothing)
    def restore_experiment(
        self, experiment_id: int, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        """Restores the experiment and the runs deleted together with it (not those deleted before)."""
        with self.applied_writes.begin(write) as session:
            row = self._experiment_row(session, experiment_id, lock=True)
            if row.lifecycle_stage == _ACTIVE:
                return
            deleted_with_it = (
                _RUNS.c.experiment_id == row.experiment_id,
                _RUNS.c.lifecycle_stage == _DELETED,
                _RUNS.c.deleted_time == row.last_update_time,
            )
            # Recorded first: once restored, these runs no longer differ from the others.
            self._record_run_events(
                session, RunEventAction.RESTORED, ctx, _RUN_OF_EVENT.where(*deleted_with_it)
            )
            session.execute(
                sa.update(_RUNS).where(*deleted_with_it).values(lifecycle_stage=_ACTIVE, deleted_time=None)
            )
            row.lifecycle_stage, row.last_update_time = _ACTIVE, now_ms()

    def _experiment_row(self, session: Session, experiment_id: int, lock: bool = False) -> ExperimentRow:
        row = session.get(ExperimentRow, experiment_id, with_for_update=lock)
        if row is None:
            raise ExperimentNotFound(f"'{experiment_id}'")
        return row

    def _experiment_tags(self, session: Session, ids: Sequence[int]) -> dict[int, dict[str, str]]:
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        for start in range(0, len(ids), _IN_CHUNK):
            statement = sa.select(
                ExperimentTagRow.experiment_id, ExperimentTagRow.key, ExperimentTagRow.value
            )
            for owner, key, value in session.execute(
                statement.where(ExperimentTagRow.experiment_id.in_(ids[start : start + _IN_CHUNK]))
            ):
                tags[owner][key] = value
        return tags

    def _put_experiment_tags(self, session: Session, experiment_id: int, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        session.execute(
            sa.delete(ExperimentTagRow).where(
                ExperimentTagRow.experiment_id == experiment_id, ExperimentTagRow.key.in_(list(tags))
            )
        )
        session.execute(
            sa.insert(ExperimentTagRow),
            [{"experiment_id": experiment_id, "key": k, "value": v} for k, v in tags.items()],
        )

    # ---------------------------------------------------------------- permissions

    def access(
        self, grantee: Grantee, *, experiment_id: int | None = None, run_id: str | None = None
    ) -> ExperimentAccess | None:
        if run_id is not None:
            statement, binds = _RUN_ACCESS, {"run_id": run_id, **_grantee_binds(grantee)}
        else:
            statement, binds = _EXPERIMENT_ACCESS, {"experiment_id": experiment_id, **_grantee_binds(grantee)}
        with self._reads.begin() as session:
            row = session.connection().execute(statement, binds).first()
        if row is None:
            return None
        return ExperimentAccess(row[0], None if row[1] is None else Level(row[1]))

    @replayed(lambda store, _result, experiment_id, grant, **_: store.granted(experiment_id, grant))
    def set_permission(self, experiment_id: int, grant: NewGrant, *, write: WriteKey | None = None) -> Grant:
        with self.applied_writes.begin(write) as session:
            # The lock serialises concurrent grants to one subject (a delete, then an insert).
            self._experiment_row(session, experiment_id, lock=True)
            put = self._put_grant(session, experiment_id, grant)
            count = session.scalar(
                sa.select(sa.func.count())
                .select_from(_PERMISSIONS)
                .where(_PERMISSIONS.c.experiment_id == experiment_id)
            )
            grants_limit(f"experiment {experiment_id}", int(count or 0))
            return put

    @replayed(nothing)
    def delete_permission(
        self, experiment_id: int, subject: Subject, ctx: CallContext, *, write: WriteKey | None = None
    ) -> None:
        with self.applied_writes.begin(write) as session:
            self._experiment_row(session, experiment_id, lock=True)
            deleted: sa.CursorResult[Any] = session.execute(  # type: ignore[assignment]
                sa.delete(_PERMISSIONS).where(*_grant_key(experiment_id, subject))
            )
            if deleted.rowcount == 0:
                raise PermissionNotFound(experiment_id, subject.kind, subject.name)
            self._record_grant_event(session, experiment_id, "DELETE", subject, None, ctx, now_ms())

    def granted(self, experiment_id: int, grant: NewGrant) -> Grant:
        """The grant to ``grant``'s subject now (as asked, if removed since): a replayed SET."""
        return current_grant(
            self.list_permissions(experiment_id, 0)[0], grant.subject, grant.level, grant.ctx.actor
        )

    def list_permissions(self, experiment_id: int, max_events: int) -> tuple[list[Grant], list[GrantEvent]]:
        grants = sa.select(
            _PERMISSIONS.c.subject_kind,
            _PERMISSIONS.c.subject_name,
            _PERMISSIONS.c.level,
            _PERMISSIONS.c.granted_by,
            _PERMISSIONS.c.granted_at,
        ).where(_PERMISSIONS.c.experiment_id == experiment_id)
        events = (
            sa.select(
                _PERMISSION_EVENTS.c.time,
                _PERMISSION_EVENTS.c.actor,
                _PERMISSION_EVENTS.c.action,
                _PERMISSION_EVENTS.c.subject_kind,
                _PERMISSION_EVENTS.c.subject_name,
                _PERMISSION_EVENTS.c.level,
                _PERMISSION_EVENTS.c.request_id,
            )
            .where(_PERMISSION_EVENTS.c.experiment_id == experiment_id)
            .order_by(_PERMISSION_EVENTS.c.id.desc())
            .limit(max_events)
        )
        with self._reads.begin() as session:
            self._experiment_row(session, experiment_id)
            grant_rows = session.execute(grants).all()
            event_rows = session.execute(events).all()
        # Sorted in Python: users first, then groups, each by name in the same order on every backend.
        return (
            [
                Grant(Subject(kind, name), Level(level), granted_by, granted_at)
                for kind, name, level, granted_by, granted_at in sorted(
                    grant_rows, key=lambda r: (r.subject_kind != "user", r.subject_name)
                )
            ],
            [
                GrantEvent(
                    time, actor, action, Subject(kind, name), None if level is None else Level(level), rid
                )
                for time, actor, action, kind, name, level, rid in reversed(event_rows)
            ],
        )

    def _put_grant(self, session: Session, experiment_id: int, grant: NewGrant) -> Grant:
        """Replaces the subject's grant and records the SET event (portable: no dialect's upsert)."""
        now, subject = now_ms(), grant.subject
        session.execute(sa.delete(_PERMISSIONS).where(*_grant_key(experiment_id, subject)))
        session.execute(
            sa.insert(_PERMISSIONS),
            {
                "experiment_id": experiment_id,
                "subject_kind": subject.kind,
                "subject_name": subject.name,
                "level": int(grant.level),
                "granted_by": grant.ctx.actor,
                "granted_at": now,
            },
        )
        self._record_grant_event(session, experiment_id, "SET", subject, grant.level, grant.ctx, now)
        return Grant(subject, grant.level, grant.ctx.actor, now)

    def _record_grant_event(
        self,
        session: Session,
        experiment_id: int,
        action: str,
        subject: Subject,
        level: Level | None,
        ctx: CallContext,
        now: int,
    ) -> None:
        session.execute(
            sa.insert(_PERMISSION_EVENTS),
            {
                "experiment_id": experiment_id,
                "time": now,
                "actor": ctx.actor,
                "action": action,
                "subject_kind": subject.kind,
                "subject_name": subject.name,
                "level": None if level is None else int(level),
                "request_id": ctx.request_id,
            },
        )

    # ---------------------------------------------------------------- runs

    @replayed(lambda store, result, *_, **__: store.get_run(result))
    def create_run(
        self,
        experiment_id: int,
        run_name: str,
        start_time: int,
        tags: Mapping[str, str],
        parent_run_id: str | None,
        *,
        write: WriteKey | None = None,
    ) -> Run:
        run_id = uuid.uuid4().hex
        with self.applied_writes.begin(write, run_id) as session:
            experiment = session.execute(_EXPERIMENT_STATE, {"experiment_id": experiment_id}).first()
            if experiment is None:
                raise ExperimentNotFound(f"'{experiment_id}'")
            if experiment.lifecycle_stage == _DELETED:
                raise ExperimentDeleted(str(experiment_id))
            if parent_run_id and session.execute(_RUN_STAGE, {"run_id": parent_run_id}).first() is None:
                raise RunNotFound(parent_run_id, "PARENT_RUN_NOT_FOUND")
            info = RunInfo(
                run_id=run_id,
                experiment_id=str(experiment_id),
                run_name=run_name,
                status=RunStatus.RUNNING,
                start_time=start_time or now_ms(),
                end_time=None,
                artifact_uri=f"{experiment.artifact_location}/{run_id}/artifacts",
                lifecycle_stage=LifecycleStage.ACTIVE,
                parent_run_id=parent_run_id,
            )
            session.execute(
                _INSERT_RUN,
                {
                    "run_id": run_id,
                    "experiment_id": experiment_id,
                    "run_name": run_name,
                    "status": info.status.value,
                    "start_time": info.start_time,
                    "end_time": None,
                    "artifact_uri": info.artifact_uri,
                    "lifecycle_stage": _ACTIVE,
                    "deleted_time": None,
                    "parent_run_id": info.parent_run_id,
                },
            )
            if tags:  # a new run has no tags to replace
                session.execute(_INSERT_RUN_TAG, [_tag_row(run_id, k, v) for k, v in tags.items()])
        return Run(info, RunData(tags=dict(tags)))

    def get_run(self, run_id: str) -> Run:
        with self._reads.begin() as session:
            row = session.execute(_RUN_INFO, {"run_id": run_id}).first()
            if row is None:
                raise RunNotFound(run_id)
            return self._load_runs(session, [row])[0]

    @replayed(lambda store, _result, run_id, *_, **__: store.get_run(run_id).info)
    def update_run(
        self,
        run_id: str,
        status: RunStatus | None,
        end_time: int | None,
        run_name: str | None,
        ctx: CallContext,
        *,
        write: WriteKey | None = None,
    ) -> RunInfo:
        changes: dict[str, Any] = {}
        if status is not None:
            changes["status"] = status.value
        if end_time is not None:
            changes["end_time"] = end_time
        if run_name is not None:
            changes["run_name"] = run_name
        with self.applied_writes.begin(write) as session:
            self._check_run(session, run_id, lock=True, live=True)
            before = session.execute(_RUN_STATUS, {"run_id": run_id}).one()
            if changes:
                session.execute(sa.update(_RUNS).where(_RUNS.c.run_id == run_id).values(changes))
            row = session.execute(_RUN_INFO, {"run_id": run_id}).one()
            action = TERMINAL_STATUS_EVENTS.get(_STATUSES[row.status])
            if action is not None and row.status != before.status:
                self._record_run_events(session, action, ctx, _RUN_OF_EVENT.where(_RUNS.c.run_id == run_id))
        return _run_info(row)

    @replayed(nothing)
    def delete_run(self, run_id: str, ctx: CallContext, *, write: WriteKey | None = None) -> None:
        with self.applied_writes.begin(write) as session:
            if self._check_run(session, run_id, lock=True) == _ACTIVE:
                session.execute(
                    sa.update(_RUNS)
                    .where(_RUNS.c.run_id == run_id)
                    .values(lifecycle_stage=_DELETED, deleted_time=now_ms())
                )
                self._record_run_events(
                    session, RunEventAction.DELETED, ctx, _RUN_OF_EVENT.where(_RUNS.c.run_id == run_id)
                )

    @replayed(nothing)
    def restore_run(self, run_id: str, ctx: CallContext, *, write: WriteKey | None = None) -> None:
        with self.applied_writes.begin(write) as session:
            if self._check_run(session, run_id, lock=True) == _DELETED:
                session.execute(
                    sa.update(_RUNS)
                    .where(_RUNS.c.run_id == run_id)
                    .values(lifecycle_stage=_ACTIVE, deleted_time=None)
                )
                self._record_run_events(
                    session, RunEventAction.RESTORED, ctx, _RUN_OF_EVENT.where(_RUNS.c.run_id == run_id)
                )

    def _record_run_events(
        self, session: Session, action: RunEventAction, ctx: CallContext, runs: sa.Select[Any]
    ) -> None:
        """Appends ``action`` for each run ``runs`` selects (run_id, experiment_id). Called at the
        end of the transaction: positions follow commit order only because the counter's lock,
        taken here, is held until the commit, so the later the shorter writers wait on it."""
        changed = session.execute(runs.order_by(_RUNS.c.run_id)).all()
        if not changed:
            return
        first = self._run_events.take(session, len(changed))
        now = now_ms()
        session.execute(
            sa.insert(_RUN_EVENTS),
            [
                {
                    "id": first + index,
                    "run_id": row.run_id,
                    "experiment_id": row.experiment_id,
                    "action": action.value,
                    "actor": ctx.actor,
                    "time": now,
                    "request_id": ctx.request_id,
                }
                for index, row in enumerate(changed)
            ],
        )

    def list_run_events(
        self,
        experiment_ids: Sequence[int],
        run_id: str,
        actions: Sequence[RunEventAction],
        after: int,
        limit: int,
        readable_by: Grantee | None = None,
    ) -> tuple[list[RunEvent], int]:
        """Up to ``limit`` events after position ``after``, oldest first, and the log's head."""
        conditions: list[Condition] = [_RUN_EVENTS.c.id > after]
        if experiment_ids:
            conditions.append(_RUN_EVENTS.c.experiment_id.in_(experiment_ids))
        if run_id:
            conditions.append(_RUN_EVENTS.c.run_id == run_id)
        if actions:
            conditions.append(_RUN_EVENTS.c.action.in_([action.value for action in actions]))
        binds: dict[str, object] = {}
        if readable_by is not None:
            conditions.append(_readable(_RUN_EVENTS.c.experiment_id))
            binds = _grantee_binds(readable_by)
        statement = sa.select(_RUN_EVENTS).where(*conditions).order_by(_RUN_EVENTS.c.id).limit(limit)
        with self._reads.begin() as session:
            head = self._run_events.head(session)
            rows = session.execute(statement, binds).all()
        events = [
            RunEvent(
                position=row.id,
                run_id=row.run_id,
                experiment_id=row.experiment_id,
                action=RunEventAction(row.action),
                actor=row.actor,
                time=row.time,
                request_id=row.request_id,
            )
            for row in rows
        ]
        return events, head

    def search_runs(
        self,
        experiment_ids: Sequence[int],
        filters: Sequence[Comparison],
        order: Sequence[OrderBy],
        view: ViewType,
        limit: int,
        offset: int,
        readable_by: Grantee | None = None,
    ) -> list[Run]:
        key = (tuple(experiment_ids), tuple(filters), view, tuple(order), readable_by is not None)
        statement = self._search_statement(*key)
        binds: dict[str, object] = {"offset": offset, "limit": limit}
        if readable_by is not None:
            binds.update(_grantee_binds(readable_by))
        with self._reads.begin() as session:
            connection = session.connection()
            rows = connection.execute(statement, binds).all()
            discard_after_large_search(connection, filters, len(experiment_ids))
            return self._load_runs(session, rows)

    def _build_search_statement(
        self,
        experiment_ids: tuple[int, ...],
        filters: tuple[Comparison, ...],
        view: ViewType,
        order: tuple[OrderBy, ...],
        restricted: bool,
    ) -> AnySelect:
        """The search's SELECT of run info rows, the page bounds left as the offset and limit
        parameters. Memoised per store (see __init__): building it costs more than running it."""
        statement = _SELECT_RUN_INFO.where(_IN_VIEW[view])
        if experiment_ids:
            statement = statement.where(_RUNS.c.experiment_id.in_(experiment_ids))
        if restricted:  # to the experiments the grantee bound at execution may read
            statement = statement.where(_readable(_RUNS.c.experiment_id))
        statement, ordering, clauses = self._run_ordering(statement, list(order), list(filters))
        statement = statement.where(*self._run_conditions(clauses))
        return (
            statement.order_by(*ordering, _RUNS.c.run_id.asc())
            .offset(sa.bindparam("offset", type_=sa.Integer))
            .limit(sa.bindparam("limit", type_=sa.Integer))
        )

    def _run_conditions(self, clauses: Sequence[Comparison]) -> list[Condition]:
        """The WHERE terms of a run search: one per attribute clause, then those of the metric,
        param and tag clauses (see _data_conditions), the clauses on one key tested together."""
        conditions: list[Condition] = []
        tests: dict[tuple[sa.Table, str], list[Condition]] = {}
        for clause in clauses:
            if clause.entity is Entity.ATTRIBUTE:
                conditions.append(self._compare(_RUNS.c[clause.key], clause))
            else:
                data = _DATA_TABLES[clause.entity]
                tests.setdefault((data, clause.key), []).append(self._value_test(data, clause))
        return conditions + _data_conditions(_RUNS.c.run_id, tests)

    def _value_test(self, data: sa.FromClause, clause: Comparison) -> Condition:
        """The clause applied to the value of one params/tags/latest_metrics row."""
        compared = self._compare(data.c.value, clause)
        if clause.entity is not Entity.METRIC:
            return compared
        # NaN is unequal to everything and comparable to nothing (stored value 0 is a stand-in).
        if clause.op == "!=":
            return sa.or_(data.c.is_nan, compared)
        return sa.and_(sa.not_(data.c.is_nan), compared)

    def _run_ordering(
        self, statement: AnySelect, orders: list[OrderBy], clauses: list[Comparison]
    ) -> tuple[AnySelect, list[Column], list[Comparison]]:
        """ORDER BY terms (runs lacking the key sort last, NaN metrics after numbers) and the
        clauses left for WHERE.

        A filter on the key being ordered by means every result has it (and, for a metric compared
        by anything but !=, a number): the key's row is then inner-joined, the filter applied to it
        and the rank terms dropped, so the planner can walk the (key, value) index in order and stop
        at the page's end instead of sorting every matching run.
        """
        if not orders:
            return statement, [_RUNS.c.start_time.desc()], clauses
        ordering: list[Column] = []
        remaining = list(clauses)
        for order in orders:
            if order.entity is Entity.ATTRIBUTE:
                column: Column = _RUNS.c[order.key]
                ordering.append(sa.case((column.is_(None), 1), else_=0))
                ordering.append(column.asc() if order.ascending else column.desc())
                continue
            data = _order_alias(order.entity, len(ordering))
            on = sa.and_(data.c.run_id == _RUNS.c.run_id, data.c.key == order.key)
            own = [c for c in remaining if c.entity is order.entity and c.key == order.key]
            if own:
                remaining = [c for c in remaining if c not in own]
                statement = statement.join(data, on).where(*(self._value_test(data, c) for c in own))
                if order.entity is Entity.METRIC and all(c.op == "!=" for c in own):
                    ordering.append(sa.case((data.c.is_nan, 1), else_=0))
            else:
                statement = statement.outerjoin(data, on)
                if order.entity is Entity.METRIC:
                    ordering.append(sa.case((data.c.run_id.is_(None), 2), (data.c.is_nan, 1), else_=0))
                else:
                    ordering.append(sa.case((data.c.run_id.is_(None), 1), else_=0))
            ordering.append(data.c.value.asc() if order.ascending else data.c.value.desc())
        # Ties broken as MLflow breaks them: newest first, then by run id (added by the caller).
        if not any(o.entity is Entity.ATTRIBUTE and o.key == "start_time" for o in orders):
            ordering.append(_RUNS.c.start_time.desc())
        return statement, ordering, remaining

    def _compare(self, column: Column, clause: Comparison) -> Condition:
        value = clause.value
        if clause.op in _COMPARE:
            return _COMPARE[clause.op](column, value)  # type: ignore[no-any-return]
        if isinstance(value, tuple):
            return column.in_(value) if clause.op == "IN" else column.not_in(value)
        # LIKE is case-sensitive (as in MLflow), ILIKE is not, with one escape rule on every backend.
        return like(column, str(value), self._engine.dialect.name, case_sensitive=clause.op == "LIKE")

    def _check_run(self, session: Session, run_id: str, *, lock: bool = False, live: bool = False) -> str:
        """The run's lifecycle stage; with ``lock``, its row stays locked until the transaction ends.

        The lock is what serialises concurrent writers to one run's params and latest metrics.
        """
        stage = session.execute(_RUN_STAGE_FOR_UPDATE if lock else _RUN_STAGE, {"run_id": run_id}).scalar()
        if stage is None:
            raise RunNotFound(run_id)
        if live and stage == _DELETED:
            raise RunDeleted(run_id)
        return str(stage)

    def _load_runs(self, session: Session, rows: Sequence[AnyRow]) -> list[Run]:
        """The runs of ``rows`` (_RUN_INFO_COLUMNS) with their params, latest metrics and tags: one
        IN query per table and chunk of ids, plain rows grouped in one pass.

        Each table's rows are sorted by key once, before grouping, so every run's list comes out in
        key order without a sort per run (Python's order: collations differ between backends).
        """
        connection = session.connection()  # Core straight away: no ORM bookkeeping per statement
        ids = [row[0] for row in rows]
        params: dict[str, list[Param]] = {run_id: [] for run_id in ids}
        metrics: dict[str, list[Metric]] = {run_id: [] for run_id in ids}
        tags: dict[str, dict[str, str]] = {run_id: {} for run_id in ids}
        queries = self._run_data
        for chunk in _chunks(ids, queries.chunk):
            binds = {"run_ids": queries.bind(chunk)}
            # .all(): iterating a result fetches row by row from the cursor, all() in one call.
            for run_id, key, value in sorted(connection.execute(queries.params, binds).all(), key=_KEY):
                params[run_id].append(Param(key, value))
            for run_id, key, value, is_nan, is_inf, timestamp, step in sorted(
                connection.execute(queries.latest, binds).all(), key=_KEY
            ):
                if is_nan or is_inf:
                    value = decode_metric_value(value, is_nan, is_inf)
                metrics[run_id].append(Metric(key, value, timestamp, step))
            for run_id, key, value in connection.execute(queries.tags, binds).all():
                tags[run_id][key] = value
        return [
            Run(_run_info(row), RunData(tuple(metrics[row[0]]), tuple(params[row[0]]), tags[row[0]]))
            for row in rows
        ]

    # ---------------------------------------------------------------- run data

    @replayed(nothing)
    def delete_tag(self, run_id: str, key: str, *, write: WriteKey | None = None) -> None:
        with self.applied_writes.begin(write) as session:
            self._check_run(session, run_id, lock=True)
            deleted: sa.CursorResult[Any] = session.execute(  # type: ignore[assignment]
                sa.delete(_RUN_TAGS).where(_RUN_TAGS.c.run_id == run_id, _RUN_TAGS.c.key == key)
            )
            if deleted.rowcount == 0:
                raise TagNotFound(key)

    @replayed(nothing)
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricPoint],
        params: Mapping[str, str],
        tags: Mapping[str, str],
        *,
        write: WriteKey | None = None,
    ) -> None:
        with self.applied_writes.begin(write) as session:
            self._check_run(session, run_id, lock=True, live=True)
            self._insert_params(session, run_id, params)
            self._insert_metrics(session, run_id, metrics)
            self._put_run_tags(session, run_id, tags)
            if params or tags:
                # Counted after the writes, under the run's lock (a key set again counts once);
                # over a cap, the error rolls the whole batch back.
                param_count, tag_count, data_bytes = session.execute(_RUN_SIZE, {"run_id": run_id}).one()
                rules.run_size_limits(
                    run_id,
                    int(data_bytes),
                    params=param_count if params else None,
                    tags=tag_count if tags else None,
                )

    def get_metric_history(self, run_id: str, key: str, limit: int, offset: int) -> list[Metric]:
        with self._reads.begin() as session:
            self._check_run(session, run_id)
            rows = session.execute(
                _METRIC_HISTORY, {"run_id": run_id, "key": key, "offset": offset, "limit": limit}
            ).all()
        return [
            Metric(key, decode_metric_value(value, is_nan, is_inf) if is_nan or is_inf else value, ts, step)
            for value, is_nan, is_inf, ts, step in rows
        ]

    def _insert_params(self, session: Session, run_id: str, params: Mapping[str, str]) -> None:
        if not params:
            return
        existing: dict[str, str] = {
            key: value
            for key, value in session.execute(_PARAMS_OF_KEYS, {"run_id": run_id, "keys": list(params)})
        }
        for key, value in params.items():
            if key in existing and existing[key] != value:
                raise ParamValueConflict(key, existing[key], value)
        new = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items() if k not in existing]
        if new:
            session.execute(_INSERT_PARAM, new)

    def _insert_metrics(self, session: Session, run_id: str, metrics: Sequence[MetricPoint]) -> None:
        """Appends the history, then moves latest_metrics forward where a point is newer."""
        if not metrics:
            return
        rows, newest = _metric_rows(run_id, metrics)
        if self._sqlite:
            # Straight to the driver's executemany: SQLAlchemy's per-row parameter processing
            # costs more than SQLite's own insert. The SQL is the Core insert, compiled once.
            session.connection().exec_driver_sql(self._metric_insert_sql, rows)
        else:
            session.execute(_INSERT_METRIC, [dict(zip(_METRIC_COLUMNS, row, strict=True)) for row in rows])
        stored = {
            key: rules.rank(step, timestamp, decode_metric_value(value, is_nan, is_inf))
            for key, value, is_nan, is_inf, timestamp, step in session.execute(
                _LATEST_OF_KEYS, {"run_id": run_id, "keys": list(newest)}
            )
        }
        inserts = [row for key, (_, row) in newest.items() if key not in stored]
        updates = [row for key, (rank, row) in newest.items() if key in stored and rank > stored[key]]
        if inserts:
            session.execute(_INSERT_LATEST, [dict(zip(_METRIC_COLUMNS, row, strict=True)) for row in inserts])
            # Only a new key can take a run past its cap: the hot path (known keys) counts nothing.
            rules.run_metric_keys_limit(
                session.execute(_RUN_METRIC_KEYS, {"run_id": run_id}).scalar_one(), run_id
            )
        if updates:
            session.execute(
                _UPDATE_LATEST, [dict(zip(_LATEST_UPDATE_PARAMS, row, strict=True)) for row in updates]
            )

    def _put_run_tags(self, session: Session, run_id: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        session.execute(_DELETE_RUN_TAGS, {"run_id": run_id, "keys": list(tags)})
        session.execute(_INSERT_RUN_TAG, [_tag_row(run_id, k, v) for k, v in tags.items()])

    # ---------------------------------------------------------------- artifact manifest

    def artifact_root_for_upload(self, run_id: str, path: str) -> str:
        with self._reads.begin() as session:
            self._check_run(session, run_id, live=True)
            self._check_not_sealed(session, run_id, path)
            self._check_no_collision(session, run_id, path)
            self._check_artifact_room(session, run_id, path)  # before the bytes arrive
            return self._artifact_uri(session, run_id)

    def artifact_root(self, run_id: str) -> str:
        with self._reads.begin() as session:
            return self._artifact_uri(session, run_id)

    def _artifact_uri(self, session: Session, run_id: str) -> str:
        uri = session.execute(_RUN_ARTIFACT_URI, {"run_id": run_id}).scalar()
        if uri is None:
            raise RunNotFound(run_id)
        return str(uri)

    def record_artifact(
        self, run_id: str, path: str, size: int, sha256: str, *, publish: Callable[[], None]
    ) -> ArtifactFile:
        digest = _path_digest(path)
        with self._sessions.begin() as session:
            # The run's row lock orders concurrent uploads to one path: each publishes and records
            # before the next one publishes, so the row written describes the object in place.
            self._check_run(session, run_id, lock=True, live=True)
            self._check_not_sealed(session, run_id, path)
            self._check_no_collision(session, run_id, path)
            self._check_artifact_room(session, run_id, path)
            # Checks that refuse an upload go above: nothing is published once they fail.
            publish()
            session.execute(
                sa.delete(ArtifactRow).where(ArtifactRow.run_id == run_id, ArtifactRow.path_digest == digest)
            )
            session.add(
                ArtifactRow(
                    run_id=run_id,
                    path_digest=digest,
                    path=path,
                    size=size,
                    sha256=sha256,
                    created_at=now_ms(),
                )
            )
        return ArtifactFile(path, is_dir=False, size=size, sha256=sha256)

    def _check_artifact_room(self, session: Session, run_id: str, path: str) -> None:
        """The run's caps on its manifest (rules.MAX_RUN_ARTIFACTS), counted with ``path``."""
        count, path_bytes = session.execute(
            _OTHER_ARTIFACTS, {"run_id": run_id, "path_digest": _path_digest(path)}
        ).one()
        rules.run_artifacts_limit(run_id, int(count) + 1, int(path_bytes) + text_bytes(path))

    def get_artifact(self, run_id: str, path: str) -> ArtifactFile | None:
        with self._reads.begin() as session:
            self._check_run(session, run_id)
            row = session.execute(_ARTIFACT, {"run_id": run_id, "path_digest": _path_digest(path)}).first()
        return None if row is None else ArtifactFile(row.path, is_dir=False, size=row.size, sha256=row.sha256)

    def list_artifact_files(self, run_id: str, prefix: str) -> list[ArtifactFile]:
        with self._reads.begin() as session:
            self._check_run(session, run_id)
            return _files_at(session, run_id, prefix)

    def seal_artifacts(self, run_id: str, path: str) -> list[ArtifactFile]:
        with self._sessions.begin() as session:
            # Uploads publish holding this lock too: each lands before the seal or is refused.
            self._check_run(session, run_id, lock=True, live=True)
            files = _files_at(session, run_id, path)
            if not files:
                raise ArtifactNotFound(run_id, path)
            digest = _path_digest(path)
            sealed = session.scalar(
                sa.select(ArtifactSealRow.path).where(
                    ArtifactSealRow.run_id == run_id, ArtifactSealRow.path_digest == digest
                )
            )
            if sealed is None:
                session.add(ArtifactSealRow(run_id=run_id, path_digest=digest, path=path, sealed_at=now_ms()))
        return files

    def _check_not_sealed(self, session: Session, run_id: str, path: str) -> None:
        """Nothing is written at or below a sealed path: the files a version holds stay as registered."""
        segments = path.split("/")
        enclosing = ["/".join(segments[:i]) for i in range(1, len(segments) + 1)]
        seal = session.scalar(
            sa.select(ArtifactSealRow.path).where(
                ArtifactSealRow.run_id == run_id,
                ArtifactSealRow.path_digest.in_([_path_digest(p) for p in enclosing]),
            )
        )
        if seal is not None:
            raise ArtifactSealed(run_id, path, seal)

    def _check_no_collision(self, session: Session, run_id: str, path: str) -> None:
        """A path cannot be a file and a directory at once (``a`` and ``a/b``)."""
        segments = path.split("/")
        parents = ["/".join(segments[:i]) for i in range(1, len(segments))]
        if parents:
            clash = session.scalars(
                sa.select(ArtifactRow.path).where(
                    ArtifactRow.run_id == run_id,
                    ArtifactRow.path_digest.in_([_path_digest(p) for p in parents]),
                )
            ).first()
            if clash is not None:
                raise InvalidArtifactPath(path, f"is below '{clash}', which is a file")
        below = session.scalars(
            sa.select(ArtifactRow.path).where(
                ArtifactRow.run_id == run_id, _is_prefix(ArtifactRow.path, f"{path}/")
            )
        ).first()
        if below is not None:
            raise InvalidArtifactPath(path, f"is a directory (it holds '{below}')")

    # ---------------------------------------------------------------- garbage collection

    def deleted_runs(
        self, experiment_ids: Sequence[int], run_ids: Sequence[str], after: str, limit: int
    ) -> list[DeletedRun]:
        sealed = sa.exists().where(_SEALS.c.run_id == _RUNS.c.run_id)
        statement = sa.select(
            _RUNS.c.run_id, _RUNS.c.experiment_id, _RUNS.c.artifact_uri, _RUNS.c.deleted_time, sealed
        ).where(_RUNS.c.lifecycle_stage == _DELETED, _RUNS.c.run_id > after)
        if experiment_ids:
            statement = statement.where(_RUNS.c.experiment_id.in_(experiment_ids))
        if run_ids:
            statement = statement.where(_RUNS.c.run_id.in_(run_ids))
        with self._reads.begin() as session:
            rows = session.execute(statement.order_by(_RUNS.c.run_id).limit(limit)).all()
        return [DeletedRun(r[0], r[1], r[2], r[3] or 0, bool(r[4])) for r in rows]

    def purge_run(self, run_id: str, deleted_before: int, delete_files: Callable[[str], None]) -> str | None:
        with self._sessions.begin() as session:
            self._read_latest(session)
            # The row lock orders the purge with a concurrent restore or delete of the run: the
            # checks below see what they committed, and they wait for this transaction's end.
            row = session.execute(
                sa.select(_RUNS.c.lifecycle_stage, _RUNS.c.deleted_time, _RUNS.c.artifact_uri)
                .where(_RUNS.c.run_id == run_id)
                .with_for_update()
            ).first()
            if row is None:
                return KEPT_GONE
            if (kept := _purge_kept(row.lifecycle_stage, row.deleted_time, deleted_before)) is not None:
                return kept
            if session.execute(sa.select(_SEALS.c.run_id).where(_SEALS.c.run_id == run_id).limit(1)).first():
                return KEPT_SEALED
            # Files first: if removing them fails, the rows stay and the next purge retries; if the
            # commit fails after, a deleted run without files is left, which the next purge removes.
            delete_files(row.artifact_uri)
            for table in (_METRICS, _LATEST, _PARAMS, _RUN_TAGS, _ARTIFACTS, _RUNS):
                session.execute(sa.delete(table).where(table.c.run_id == run_id))
        return None

    def deleted_experiments(
        self, experiment_ids: Sequence[int], after: int, limit: int
    ) -> list[DeletedExperiment]:
        live_runs = (
            sa.select(sa.func.count())
            .where(_RUNS.c.experiment_id == _EXPERIMENTS.c.experiment_id, _RUNS.c.lifecycle_stage != _DELETED)
            .scalar_subquery()
        )
        statement = sa.select(
            _EXPERIMENTS.c.experiment_id,
            _EXPERIMENTS.c.artifact_location,
            _EXPERIMENTS.c.last_update_time,
            live_runs,
        ).where(_EXPERIMENTS.c.lifecycle_stage == _DELETED, _EXPERIMENTS.c.experiment_id > after)
        if experiment_ids:
            statement = statement.where(_EXPERIMENTS.c.experiment_id.in_(experiment_ids))
        with self._reads.begin() as session:
            rows = session.execute(statement.order_by(_EXPERIMENTS.c.experiment_id).limit(limit)).all()
        return [DeletedExperiment(r[0], r[1], r[2], r[3]) for r in rows]

    def purge_experiment(
        self, experiment_id: int, deleted_before: int, remove_location: Callable[[str], None]
    ) -> str | None:
        with self._sessions.begin() as session:
            self._read_latest(session)
            row = session.execute(
                sa.select(
                    _EXPERIMENTS.c.lifecycle_stage,
                    _EXPERIMENTS.c.last_update_time,
                    _EXPERIMENTS.c.artifact_location,
                )
                .where(_EXPERIMENTS.c.experiment_id == experiment_id)
                .with_for_update()
            ).first()
            if row is None:
                return KEPT_GONE
            if (kept := _purge_kept(row.lifecycle_stage, row.last_update_time, deleted_before)) is not None:
                return kept
            runs = sa.select(_RUNS.c.run_id).where(_RUNS.c.experiment_id == experiment_id).limit(1)
            if session.execute(runs).first():
                return KEPT_HAS_RUNS
            remove_location(row.artifact_location)
            # The grants' history goes too: SQLite may give a later experiment this id again.
            for table in (_EXPERIMENT_TAGS, _PERMISSIONS, _PERMISSION_EVENTS, _EXPERIMENTS):
                session.execute(sa.delete(table).where(table.c.experiment_id == experiment_id))
        return None

    def _read_latest(self, session: Session) -> None:
        """Makes the row lock a purge takes first read the row as the transaction it waited for
        committed it: PostgreSQL under READ COMMITTED (under a REPEATABLE READ default, the lock
        would fail with a serialization error instead). SQLite serialises writers already, and
        MySQL's locking reads always read the latest version."""
        if self._engine.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "READ COMMITTED"})
