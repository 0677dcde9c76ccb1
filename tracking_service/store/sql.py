"""SQLAlchemy implementation of TrackingStore (SQLite, PostgreSQL, MySQL/MariaDB).

Every public method is one transaction with a handful of statements. Writes to a run's data first
lock the run row (``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises writers
anyway), so the read-merge-write of params (immutability) and latest_metrics (MLflow's newest-point
rule) is race-free without dialect-specific upserts. Batches go out as one executemany per table.
Searches are filtered, ordered and paginated in SQL; the page's params, metrics and tags are then
loaded with one IN query per table.
"""

from __future__ import annotations

import hashlib
import math
import operator
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.elements import SQLCoreOperations

from modelreg._service.errors import InvalidArgument
from modelreg._service.pagination import fingerprint, parse_page
from tracking_service.domain import rules
from tracking_service.domain.entities import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    ArtifactFile,
    Experiment,
    LifecycleStage,
    Metric,
    Page,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    ViewType,
)
from tracking_service.domain.errors import (
    DefaultExperimentProtected,
    ExperimentAlreadyExists,
    ExperimentDeleted,
    ExperimentNotFound,
    InvalidArtifactPath,
    ParamValueConflict,
    RunDeleted,
    RunNotFound,
    TagNotFound,
)
from tracking_service.domain.filters import (
    EXPERIMENT_ORDERABLE,
    EXPERIMENT_SEARCH,
    RUN_ORDERABLE,
    RUN_SEARCH,
    Comparison,
    Entity,
    OrderBy,
    parse_filter,
    parse_order_by,
)
from tracking_service.store.models import (
    ArtifactRow,
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    MetricRow,
    ParamRow,
    RunRow,
    RunTagRow,
)

SEARCH_PAGE_DEFAULT = 1000
SEARCH_PAGE_MAX = 50_000
HISTORY_PAGE_DEFAULT = 25_000
HISTORY_PAGE_MAX = 100_000
# Bound on the ids of one IN (...) list: SQLite caps bound parameters per statement.
_IN_CHUNK = 500

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
# A mapped attribute or a column expression: anything SQL operators apply to.
Column = SQLCoreOperations[Any]


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


def _metric_from_row(row: Any) -> Metric:
    return Metric(row.key, decode_metric_value(row.value, row.is_nan, row.is_inf), row.timestamp, row.step)


def _metric_row(run_id: str, metric: Metric) -> dict[str, Any]:
    value, is_nan, is_inf = encode_metric_value(metric.value)
    return {
        "run_id": run_id,
        "key": metric.key,
        "value": value,
        "is_nan": is_nan,
        "is_inf": is_inf,
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def _path_digest(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _run_info(row: RunRow) -> RunInfo:
    return RunInfo(
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        run_name=row.run_name,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
        parent_run_id=row.parent_run_id,
    )


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


def _is_prefix(column: Column, prefix: str) -> Condition:
    # substr rather than LIKE: exact and case-sensitive on every backend, no wildcard escaping.
    return sa.func.substr(column, 1, len(prefix)) == prefix


class SqlTrackingStore:
    """TrackingStore over a SQLAlchemy engine whose schema is at head (see store.MIGRATIONS)."""

    def __init__(self, engine: Engine, artifact_root: str) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._artifact_root = artifact_root.rstrip("/")
        self._sqlite = engine.dialect.name == "sqlite"

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
                now = rules.now_ms()
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

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Experiment:
        rules.name(name)
        checked_tags = rules.tags(tags or {})
        if artifact_location and not artifact_location.startswith(("file:///", "s3://")):
            raise InvalidArgument(
                "INVALID_ARTIFACT_LOCATION",
                f"artifact_location must be a file:/// or s3:// URI, got '{artifact_location[:200]}'",
                {"field": "artifact_location"},
            )
        now = rules.now_ms()
        try:
            with self._sessions.begin() as session:
                row = ExperimentRow(
                    name=name,
                    artifact_location=(artifact_location or "").rstrip("/"),
                    lifecycle_stage=_ACTIVE,
                    creation_time=now,
                    last_update_time=now,
                )
                session.add(row)
                session.flush()
                if not artifact_location:
                    row.artifact_location = f"{self._artifact_root}/{row.experiment_id}"
                self._put_experiment_tags(session, row.experiment_id, checked_tags)
        except sa.exc.IntegrityError:
            raise ExperimentAlreadyExists(name) from None
        return _experiment(row, checked_tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._sessions.begin() as session:
            row = self._experiment_row(session, experiment_id)
            return _experiment(row, self._experiment_tags(session, [row.experiment_id])[row.experiment_id])

    def get_experiment_by_name(self, name: str) -> Experiment:
        with self._sessions.begin() as session:
            row = session.scalars(sa.select(ExperimentRow).where(ExperimentRow.name == name)).first()
            if row is None:
                raise ExperimentNotFound(f"named '{name[:250]}'")
            return _experiment(row, self._experiment_tags(session, [row.experiment_id])[row.experiment_id])

    def search_experiments(
        self,
        filter_string: str = "",
        order_by: Sequence[str] = (),
        view: ViewType = ViewType.ACTIVE_ONLY,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Experiment]:
        clauses = parse_filter(filter_string, EXPERIMENT_SEARCH)
        orders = parse_order_by(list(order_by), EXPERIMENT_SEARCH, EXPERIMENT_ORDERABLE)
        page = parse_page(
            page_size,
            page_token,
            default=SEARCH_PAGE_DEFAULT,
            maximum=SEARCH_PAGE_MAX,
            query=fingerprint("experiments", filter_string, tuple(order_by), view.value),
        )
        columns: dict[str, Column] = {
            "name": ExperimentRow.name,
            "experiment_id": ExperimentRow.experiment_id,
            "creation_time": ExperimentRow.creation_time,
            "last_update_time": ExperimentRow.last_update_time,
        }
        conditions: list[Condition] = [ExperimentRow.lifecycle_stage.in_([s.value for s in view.stages])]
        for clause in clauses:
            if clause.entity is Entity.TAG:
                conditions.append(
                    sa.exists().where(
                        ExperimentTagRow.experiment_id == ExperimentRow.experiment_id,
                        ExperimentTagRow.key == clause.key,
                        self._compare(ExperimentTagRow.value, clause),
                    )
                )
            else:
                conditions.append(self._compare(columns[clause.key], clause))
        ordering = [columns[o.key].asc() if o.ascending else columns[o.key].desc() for o in orders] or [
            ExperimentRow.creation_time.desc()
        ]
        statement = (
            sa.select(ExperimentRow)
            .where(*conditions)
            .order_by(*ordering, ExperimentRow.experiment_id.asc())
            .offset(page.offset)
            .limit(page.size + 1)
        )
        with self._sessions.begin() as session:
            rows = list(session.scalars(statement))
            has_more = len(rows) > page.size
            rows = rows[: page.size]
            tags = self._experiment_tags(session, [r.experiment_id for r in rows])
        items = tuple(_experiment(r, tags[r.experiment_id]) for r in rows)
        return Page(items, page.next_token(len(items), has_more))

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        rules.name(new_name, "new_name")
        try:
            with self._sessions.begin() as session:
                row = self._experiment_row(session, experiment_id)
                row.name = new_name
                row.last_update_time = rules.now_ms()
                session.flush()
                tags = self._experiment_tags(session, [row.experiment_id])[row.experiment_id]
        except sa.exc.IntegrityError:
            raise ExperimentAlreadyExists(new_name) from None
        return _experiment(row, tags)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        rules.tag(key, value)
        with self._sessions.begin() as session:
            row = self._experiment_row(session, experiment_id, lock=True)
            if row.lifecycle_stage == _DELETED:
                raise ExperimentDeleted(experiment_id)
            self._put_experiment_tags(session, row.experiment_id, {key: value})
            row.last_update_time = rules.now_ms()

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._sessions.begin() as session:
            row = self._experiment_row(session, experiment_id, lock=True)
            deleted: sa.CursorResult[Any] = session.execute(  # type: ignore[assignment]
                sa.delete(ExperimentTagRow).where(
                    ExperimentTagRow.experiment_id == row.experiment_id, ExperimentTagRow.key == key
                )
            )
            if deleted.rowcount == 0:
                raise TagNotFound(key)
            row.last_update_time = rules.now_ms()

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-deletes the experiment and, as MLflow does, its live runs (stamped with the same time)."""
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            raise DefaultExperimentProtected()
        with self._sessions.begin() as session:
            row = self._experiment_row(session, experiment_id, lock=True)
            if row.lifecycle_stage == _DELETED:
                return
            now = rules.now_ms()
            row.lifecycle_stage, row.last_update_time = _DELETED, now
            session.execute(
                sa.update(RunRow)
                .where(RunRow.experiment_id == row.experiment_id, RunRow.lifecycle_stage == _ACTIVE)
                .values(lifecycle_stage=_DELETED, deleted_time=now)
            )

    def restore_experiment(self, experiment_id: str) -> None:
        """Restores the experiment and the runs deleted together with it (not those deleted before)."""
        with self._sessions.begin() as session:
            row = self._experiment_row(session, experiment_id, lock=True)
            if row.lifecycle_stage == _ACTIVE:
                return
            session.execute(
                sa.update(RunRow)
                .where(
                    RunRow.experiment_id == row.experiment_id,
                    RunRow.lifecycle_stage == _DELETED,
                    RunRow.deleted_time == row.last_update_time,
                )
                .values(lifecycle_stage=_ACTIVE, deleted_time=None)
            )
            row.lifecycle_stage, row.last_update_time = _ACTIVE, rules.now_ms()

    def _experiment_row(self, session: Session, experiment_id: str, lock: bool = False) -> ExperimentRow:
        numeric_id = rules.experiment_id(experiment_id)
        row = session.get(ExperimentRow, numeric_id, with_for_update=lock)
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

    # ---------------------------------------------------------------- runs

    def create_run(
        self,
        experiment_id: str = "",
        run_name: str = "",
        start_time: int = 0,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str = "",
    ) -> Run:
        experiment_id = experiment_id or DEFAULT_EXPERIMENT_ID
        name = rules.name(run_name, "run_name") if run_name else rules.generate_run_name()
        checked_tags = rules.tags(tags or {})
        if parent_run_id:
            rules.run_id(parent_run_id, "parent_run_id")
        with self._sessions.begin() as session:
            experiment = self._experiment_row(session, experiment_id)
            if experiment.lifecycle_stage == _DELETED:
                raise ExperimentDeleted(experiment_id)
            if parent_run_id and session.get(RunRow, parent_run_id) is None:
                raise RunNotFound(parent_run_id, "PARENT_RUN_NOT_FOUND")
            run_id = uuid.uuid4().hex
            row = RunRow(
                run_id=run_id,
                experiment_id=experiment.experiment_id,
                run_name=name,
                status=RunStatus.RUNNING.value,
                start_time=start_time or rules.now_ms(),
                end_time=None,
                artifact_uri=f"{experiment.artifact_location}/{run_id}/artifacts",
                lifecycle_stage=_ACTIVE,
                deleted_time=None,
                parent_run_id=parent_run_id or None,
            )
            session.add(row)
            session.flush()
            self._put_run_tags(session, run_id, checked_tags)
        return Run(_run_info(row), RunData(tags=checked_tags))

    def get_run(self, run_id: str) -> Run:
        with self._sessions.begin() as session:
            return self._load_runs(session, [self._run_row(session, run_id)])[0]

    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        if run_name is not None:
            rules.name(run_name, "run_name")
        with self._sessions.begin() as session:
            row = self._run_row(session, run_id, lock=True, live=True)
            if status is not None:
                row.status = status.value
            if end_time is not None:
                row.end_time = end_time
            if run_name is not None:
                row.run_name = run_name
            return _run_info(row)

    def delete_run(self, run_id: str) -> None:
        with self._sessions.begin() as session:
            row = self._run_row(session, run_id, lock=True)
            if row.lifecycle_stage == _ACTIVE:
                row.lifecycle_stage, row.deleted_time = _DELETED, rules.now_ms()

    def restore_run(self, run_id: str) -> None:
        with self._sessions.begin() as session:
            row = self._run_row(session, run_id, lock=True)
            row.lifecycle_stage, row.deleted_time = _ACTIVE, None

    def search_runs(
        self,
        experiment_ids: Sequence[str] = (),
        filter_string: str = "",
        view: ViewType = ViewType.ACTIVE_ONLY,
        order_by: Sequence[str] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Run]:
        numeric_ids = [rules.experiment_id(e, "experiment_ids") for e in experiment_ids]
        clauses = parse_filter(filter_string, RUN_SEARCH)
        orders = parse_order_by(list(order_by), RUN_SEARCH, RUN_ORDERABLE)
        page = parse_page(
            page_size,
            page_token,
            default=SEARCH_PAGE_DEFAULT,
            maximum=SEARCH_PAGE_MAX,
            query=fingerprint("runs", sorted(numeric_ids), filter_string, tuple(order_by), view.value),
        )
        statement = sa.select(RunRow).where(RunRow.lifecycle_stage.in_([s.value for s in view.stages]))
        if numeric_ids:
            statement = statement.where(RunRow.experiment_id.in_(numeric_ids))
        statement = statement.where(*(self._run_condition(c) for c in clauses))
        statement, ordering = self._run_ordering(statement, orders)
        statement = (
            statement.order_by(*ordering, RunRow.run_id.asc()).offset(page.offset).limit(page.size + 1)
        )
        with self._sessions.begin() as session:
            rows = list(session.scalars(statement))
            has_more = len(rows) > page.size
            runs = tuple(self._load_runs(session, rows[: page.size]))
        return Page(runs, page.next_token(len(runs), has_more))

    def _run_condition(self, clause: Comparison) -> Condition:
        if clause.entity is Entity.ATTRIBUTE:
            return self._compare(getattr(RunRow, clause.key), clause)
        if clause.entity is Entity.METRIC:
            compared = self._compare(LatestMetricRow.value, clause)
            # NaN is unequal to everything and comparable to nothing (stored value 0 is a stand-in).
            value_test = (
                sa.or_(LatestMetricRow.is_nan, compared)
                if clause.op == "!="
                else sa.and_(sa.not_(LatestMetricRow.is_nan), compared)
            )
            # IN over an uncorrelated subquery, not a correlated EXISTS: the planner can then start
            # from the (key, value) index and fetch only matching runs instead of probing every run.
            return RunRow.run_id.in_(
                sa.select(LatestMetricRow.run_id).where(LatestMetricRow.key == clause.key, value_test)
            )
        table = ParamRow if clause.entity is Entity.PARAM else RunTagRow
        return RunRow.run_id.in_(
            sa.select(table.run_id).where(table.key == clause.key, self._compare(table.value, clause))
        )

    def _run_ordering(
        self, statement: sa.Select[RunRow], orders: list[OrderBy]
    ) -> tuple[sa.Select[RunRow], list[Column]]:
        """ORDER BY terms; runs lacking the key sort last, NaN metrics after numbers."""
        if not orders:
            return statement, [RunRow.start_time.desc()]
        ordering: list[Column] = []
        for order in orders:
            if order.entity is Entity.ATTRIBUTE:
                column: Column = getattr(RunRow, order.key)
                ordering.append(sa.case((column.is_(None), 1), else_=0))
            elif order.entity is Entity.METRIC:
                metric = aliased(LatestMetricRow)
                statement = statement.outerjoin(
                    metric, sa.and_(metric.run_id == RunRow.run_id, metric.key == order.key)
                )
                column = metric.value
                ordering.append(sa.case((metric.run_id.is_(None), 2), (metric.is_nan, 1), else_=0))
            else:
                data = aliased(ParamRow) if order.entity is Entity.PARAM else aliased(RunTagRow)
                statement = statement.outerjoin(
                    data, sa.and_(data.run_id == RunRow.run_id, data.key == order.key)
                )
                column = data.value
                ordering.append(sa.case((data.run_id.is_(None), 1), else_=0))
            ordering.append(column.asc() if order.ascending else column.desc())
        return statement, ordering

    def _compare(self, column: Column, clause: Comparison) -> Condition:
        value = clause.value
        if clause.op in _COMPARE:
            return _COMPARE[clause.op](column, value)  # type: ignore[no-any-return]
        if isinstance(value, tuple):
            return column.in_(value) if clause.op == "IN" else column.not_in(value)
        if clause.op == "ILIKE":
            return column.ilike(value)
        # LIKE is case-sensitive in MLflow; SQLite's LIKE is not, its GLOB is.
        return column.op("GLOB")(_like_to_glob(str(value))) if self._sqlite else column.like(value)

    def _run_row(self, session: Session, run_id: str, *, lock: bool = False, live: bool = False) -> RunRow:
        rules.run_id(run_id)
        row = session.get(RunRow, run_id, with_for_update=lock)
        if row is None:
            raise RunNotFound(run_id)
        if live and row.lifecycle_stage == _DELETED:
            raise RunDeleted(run_id)
        return row

    def _load_runs(self, session: Session, rows: Sequence[RunRow]) -> list[Run]:
        ids = [r.run_id for r in rows]
        params: dict[str, list[Param]] = {i: [] for i in ids}
        metrics: dict[str, list[Metric]] = {i: [] for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        for chunk in _chunks(ids):
            for run_id, key, value in session.execute(
                sa.select(ParamRow.run_id, ParamRow.key, ParamRow.value).where(ParamRow.run_id.in_(chunk))
            ):
                params[run_id].append(Param(key, value))
            for row in session.execute(
                sa.select(LatestMetricRow).where(LatestMetricRow.run_id.in_(chunk))
            ).scalars():
                metrics[row.run_id].append(_metric_from_row(row))
            for run_id, key, value in session.execute(
                sa.select(RunTagRow.run_id, RunTagRow.key, RunTagRow.value).where(RunTagRow.run_id.in_(chunk))
            ):
                tags[run_id][key] = value
        return [
            Run(
                _run_info(r),
                RunData(
                    metrics=tuple(sorted(metrics[r.run_id], key=lambda m: m.key)),
                    params=tuple(sorted(params[r.run_id], key=lambda p: p.key)),
                    tags=tags[r.run_id],
                ),
            )
            for r in rows
        ]

    # ---------------------------------------------------------------- run data

    def log_param(self, run_id: str, param: Param) -> None:
        self.log_batch(run_id, params=[param])

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=[metric])

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        rules.tag(key, value)
        with self._sessions.begin() as session:
            self._run_row(session, run_id, lock=True, live=True)
            self._put_run_tags(session, run_id, {key: value})

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._sessions.begin() as session:
            self._run_row(session, run_id, lock=True)
            deleted: sa.CursorResult[Any] = session.execute(  # type: ignore[assignment]
                sa.delete(RunTagRow).where(RunTagRow.run_id == run_id, RunTagRow.key == key)
            )
            if deleted.rowcount == 0:
                raise TagNotFound(key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Mapping[str, str] | None = None,
    ) -> None:
        checked_metrics = rules.metrics(metrics, rules.MAX_BATCH_METRICS)
        checked_params = rules.params(params)
        checked_tags = rules.tags(tags or {})
        with self._sessions.begin() as session:
            self._run_row(session, run_id, lock=True, live=True)
            self._insert_params(session, run_id, checked_params)
            self._insert_metrics(session, run_id, checked_metrics)
            self._put_run_tags(session, run_id, checked_tags)

    def log_metrics(self, run_id: str, metrics: Sequence[Metric]) -> int:
        checked = rules.metrics(metrics, rules.MAX_STREAM_BATCH_METRICS)
        with self._sessions.begin() as session:
            self._run_row(session, run_id, lock=True, live=True)
            self._insert_metrics(session, run_id, checked)
        return len(checked)

    def get_metric_history(
        self, run_id: str, key: str, page_size: int = 0, page_token: str = ""
    ) -> Page[Metric]:
        page = parse_page(
            page_size,
            page_token,
            default=HISTORY_PAGE_DEFAULT,
            maximum=HISTORY_PAGE_MAX,
            query=fingerprint("history", run_id, key),
        )
        with self._sessions.begin() as session:
            self._run_row(session, run_id)
            rows = session.execute(
                sa.select(
                    MetricRow.key,
                    MetricRow.value,
                    MetricRow.is_nan,
                    MetricRow.is_inf,
                    MetricRow.timestamp,
                    MetricRow.step,
                )
                .where(MetricRow.run_id == run_id, MetricRow.key == key)
                .order_by(MetricRow.step, MetricRow.timestamp, MetricRow.id)
                .offset(page.offset)
                .limit(page.size + 1)
            ).all()
        points = tuple(_metric_from_row(r) for r in rows[: page.size])
        return Page(points, page.next_token(len(points), len(rows) > page.size))

    def _insert_params(self, session: Session, run_id: str, params: Mapping[str, str]) -> None:
        if not params:
            return
        statement = sa.select(ParamRow.key, ParamRow.value).where(
            ParamRow.run_id == run_id, ParamRow.key.in_(list(params))
        )
        existing: dict[str, str] = {key: value for key, value in session.execute(statement)}
        for key, value in params.items():
            if key in existing and existing[key] != value:
                raise ParamValueConflict(key, existing[key], value)
        new = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items() if k not in existing]
        if new:
            session.execute(sa.insert(ParamRow), new)

    def _insert_metrics(self, session: Session, run_id: str, metrics: Sequence[Metric]) -> None:
        """Appends the history, then moves latest_metrics forward where a point is newer."""
        if not metrics:
            return
        session.execute(sa.insert(MetricRow), [_metric_row(run_id, m) for m in metrics])
        newest: dict[str, Metric] = {}
        for metric in metrics:
            current = newest.get(metric.key)
            if current is None or rules.is_newer(metric, current):
                newest[metric.key] = metric
        stored = {
            row.key: _metric_from_row(row)
            for row in session.execute(
                sa.select(LatestMetricRow).where(
                    LatestMetricRow.run_id == run_id, LatestMetricRow.key.in_(list(newest))
                )
            ).scalars()
        }
        inserts = [_metric_row(run_id, m) for k, m in newest.items() if k not in stored]
        updates = [
            _metric_row(run_id, m) for k, m in newest.items() if k in stored and rules.is_newer(m, stored[k])
        ]
        if inserts:
            session.execute(sa.insert(LatestMetricRow), inserts)
        if updates:
            session.execute(sa.update(LatestMetricRow), updates)  # bulk UPDATE by primary key

    def _put_run_tags(self, session: Session, run_id: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        session.execute(sa.delete(RunTagRow).where(RunTagRow.run_id == run_id, RunTagRow.key.in_(list(tags))))
        session.execute(
            sa.insert(RunTagRow), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
        )

    # ---------------------------------------------------------------- artifact manifest

    def artifact_root_for_upload(self, run_id: str, path: str) -> str:
        with self._sessions.begin() as session:
            row = self._run_row(session, run_id, live=True)
            self._check_no_collision(session, run_id, path)
            return row.artifact_uri

    def artifact_root(self, run_id: str) -> str:
        with self._sessions.begin() as session:
            return self._run_row(session, run_id).artifact_uri

    def record_artifact(self, run_id: str, path: str, size: int, sha256: str) -> ArtifactFile:
        digest = _path_digest(path)
        with self._sessions.begin() as session:
            self._run_row(session, run_id, lock=True, live=True)
            self._check_no_collision(session, run_id, path)
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
                    created_at=rules.now_ms(),
                )
            )
        return ArtifactFile(path, is_dir=False, size=size, sha256=sha256)

    def get_artifact(self, run_id: str, path: str) -> ArtifactFile | None:
        with self._sessions.begin() as session:
            self._run_row(session, run_id)
            row = session.get(ArtifactRow, (run_id, _path_digest(path)))
        return None if row is None else ArtifactFile(row.path, is_dir=False, size=row.size, sha256=row.sha256)

    def list_artifact_files(self, run_id: str, prefix: str) -> list[ArtifactFile]:
        statement = sa.select(ArtifactRow.path, ArtifactRow.size, ArtifactRow.sha256).where(
            ArtifactRow.run_id == run_id
        )
        if prefix:
            statement = statement.where(
                sa.or_(ArtifactRow.path == prefix, _is_prefix(ArtifactRow.path, f"{prefix}/"))
            )
        with self._sessions.begin() as session:
            self._run_row(session, run_id)
            rows = session.execute(statement).all()
        # Sorted in Python: SQL collations order '/' and other characters differently per backend.
        return sorted(
            (ArtifactFile(p, is_dir=False, size=s, sha256=h) for p, s, h in rows), key=lambda f: f.path
        )

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


def _like_to_glob(pattern: str) -> str:
    """Translates a LIKE pattern (% and _) to the equivalent, case-sensitive SQLite GLOB."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(char, char) for char in pattern)
