"""On SQLite, reads of the tracking store run beside an open write transaction instead of queueing
behind it (they begin DEFERRED), while writes still wait for the write lock (BEGIN IMMEDIATE)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelreg_server.db import create_db_engine, upgrade
from tracking_service.domain.entities import Metric, Param, ViewType
from tracking_service.domain.filters import RUN_SEARCH, parse_filter
from tracking_service.store import MIGRATIONS
from tracking_service.store.sql import SqlTrackingStore


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'tracking.db'}")
    upgrade(engine, MIGRATIONS)

    @sa.event.listens_for(engine, "connect")
    def _impatient(dbapi_connection: Any, _record: Any) -> None:
        # A statement that had to wait for the lock fails after 50 ms instead of waiting 30 s.
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    engine.dispose()  # the connections pooled by the upgrade predate the listener
    yield engine
    engine.dispose()


def test_reads_proceed_while_a_writer_holds_the_lock(engine: Engine, tmp_path: Path) -> None:
    store = SqlTrackingStore(engine, (tmp_path / "artifacts").as_uri())
    store.ensure_default_experiment()
    run_id = store.create_run(0, "before", 0, {}, None).info.run_id
    store.log_batch(run_id, metrics=[Metric("loss", 0.5, 1, 0)], params={"alpha": "1"}, tags={})

    with engine.connect() as writer:
        writer.begin()  # BEGIN IMMEDIATE: the database's one write lock, held until rollback
        writer.execute(sa.text("UPDATE runs SET run_name = 'uncommitted' WHERE run_id = :id"), {"id": run_id})

        # Each read sees the last committed state, without waiting.
        assert store.get_run(run_id).info.run_name == "before"
        found = store.search_runs(
            [0], parse_filter("metrics.loss < 1", RUN_SEARCH), [], ViewType.ACTIVE_ONLY, 10, 0
        )
        assert [run.info.run_id for run in found] == [run_id]
        assert [m.value for m in store.get_metric_history(run_id, "loss", 10, 0)] == [0.5]
        assert store.get_experiment(0).name == "Default"
        assert [e.experiment_id for e in store.search_experiments([], [], ViewType.ACTIVE_ONLY, 10, 0)] == [
            "0"
        ]
        assert store.list_artifact_files(run_id, "") == []

        # A write still queues for the lock (and here, impatient, gives up).
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            store.log_batch(run_id, metrics=[], params={"beta": "2"}, tags={})
        writer.rollback()

    assert store.get_run(run_id).data.params == (Param("alpha", "1"),)
