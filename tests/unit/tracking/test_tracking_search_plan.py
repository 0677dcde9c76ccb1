"""Searching 10,000 runs filters and orders in the database through its indexes.

The runs are bulk-inserted (this checks the query plan, not the write path), the statistics
refreshed, and the SQL that SqlTrackingStore.search_runs sends is captured and EXPLAINed on the
real backend: the metric filter must be answered from the latest_metrics (key, value) index, never
by scanning the table, the order by the filtered metric must come from the same index, and only one
page of runs may come back to Python.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracking_service.domain.entities import ViewType
from tracking_service.domain.filters import RUN_SEARCH, parse_filter, parse_order_by
from tracking_service.store.models import LatestMetricRow, RunRow
from tracking_service.store.sql import SqlTrackingStore

RUNS = 10_000


def _seed(engine: Engine) -> None:
    runs = [
        {
            "run_id": uuid.uuid4().hex,
            "experiment_id": 0,
            "run_name": f"run-{i}",
            "status": "FINISHED",
            "start_time": 1_700_000_000_000 + i,
            "end_time": None,
            "artifact_uri": f"file:///tmp/{i}",
            "lifecycle_stage": "active",
            "deleted_time": None,
            "parent_run_id": None,
        }
        for i in range(RUNS)
    ]
    metrics = [
        {
            "run_id": run["run_id"],
            "key": "rmse",
            "value": i / RUNS,
            "is_nan": False,
            "is_inf": False,
            "timestamp": 0,
            "step": 0,
        }
        for i, run in enumerate(runs)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(RunRow), runs)
        connection.execute(sa.insert(LatestMetricRow), metrics)
    # Planners choose indexes from fresh statistics.
    analyze = {"sqlite": "ANALYZE", "postgresql": "ANALYZE", "mysql": "ANALYZE TABLE runs, latest_metrics"}
    with engine.connect() as connection:
        connection.execute(sa.text(analyze[engine.dialect.name]))
        connection.commit()


@pytest.fixture
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM runs" in statement:
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    yield statements
    sa.event.remove(engine, "before_cursor_execute", capture)


def _plan(engine: Engine, statement: str, parameters: Any) -> str:
    dialect = engine.dialect.name
    prefix = {"sqlite": "EXPLAIN QUERY PLAN ", "postgresql": "EXPLAIN ", "mysql": "EXPLAIN "}[dialect]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(prefix + statement, parameters)
        rows = cursor.fetchall()
    finally:
        raw.close()
    if dialect == "mysql":  # one row per table: (id, select_type, table, partitions, type, key, ...)
        return "\n".join(f"{row[2]} type={row[4]} key={row[6]}" for row in rows)
    return "\n".join(str(row[-1]) for row in rows)


def test_metric_filter_and_order_use_indexes(
    engine: Engine, store: SqlTrackingStore, captured: list[tuple[str, Any]]
) -> None:
    _seed(engine)
    captured.clear()
    found = store.search_runs(
        experiment_ids=[0],
        filters=parse_filter("metrics.rmse < 0.001", RUN_SEARCH),
        order=parse_order_by(["metrics.rmse ASC"], RUN_SEARCH),
        view=ViewType.ACTIVE_ONLY,
        limit=5,
        offset=0,
    )
    assert len(found) == 5  # ten runs match; only the rows asked for come back
    assert [run.data.metrics[0].value for run in found] == [i / RUNS for i in range(5)]

    plan = _plan(engine, *captured[0])
    dialect = engine.dialect.name
    if dialect == "sqlite":
        assert "SCAN latest_metrics" not in plan, plan
        assert re.search(r"SEARCH latest_metrics\w* USING INDEX ix_latest_metrics_key_value", plan), plan
        assert "SCAN runs" not in plan, plan  # runs are fetched by primary key, never all visited
        # The index gives the order: no sort of every matching run (ties on value sort in blocks).
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    elif dialect == "postgresql":
        assert "Seq Scan on latest_metrics" not in plan, plan
    else:
        assert "latest_metrics type=ALL" not in plan, plan
