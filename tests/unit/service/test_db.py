"""SQLite engines: WAL checkpoints happen on a helper thread, off the commits of the calls; each
connection keeps a bounded number of prepared statements, and none that a large search ran."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelreg_server.db import (
    CACHED_SEARCH_CHARACTERS,
    CACHED_SEARCH_VALUES,
    SQLITE_CACHED_STATEMENTS,
    SQLITE_WAL_AUTOCHECKPOINT_PAGES,
    create_db_engine,
    discard_after_use,
    upgrade,
)
from registry_service.domain import filters as registry_filters
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.sql import SqlRegistryStore
from tracking_service.domain.entities import ViewType
from tracking_service.domain.filters import EXPERIMENT_SEARCH, RUN_SEARCH, parse_filter
from tracking_service.store import MIGRATIONS
from tracking_service.store.sql import SqlTrackingStore

PAGE = 4096


def _checkpointers(path: Path) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"sqlite-wal-checkpoint {path}"]


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _write_pages(engine: sa.Engine, pages: int) -> None:
    table = sa.Table("blobs", sa.MetaData(), sa.Column("data", sa.LargeBinary))
    with engine.begin() as connection:
        autocheckpoint = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert autocheckpoint == SQLITE_WAL_AUTOCHECKPOINT_PAGES
        table.create(connection)
        connection.execute(sa.insert(table), [{"data": bytes(PAGE)} for _ in range(pages)])


def test_wal_pages_reach_the_database_file_without_a_commit_checkpointing(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    engine = create_db_engine(f"sqlite:///{path}")
    # Far below the commits' own threshold: only the helper thread copies these into the file.
    _write_pages(engine, 200)
    assert _wait_for(lambda: path.stat().st_size > 200 * PAGE)

    assert len(_checkpointers(path)) == 1
    engine.dispose()
    del engine
    gc.collect()
    assert _wait_for(lambda: not _checkpointers(path))  # the thread ends with its engine


def test_in_memory_engines_have_no_checkpointer() -> None:
    before = {t.name for t in threading.enumerate()}
    engine = create_db_engine("sqlite://")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    assert {t.name for t in threading.enumerate()} - before == set()


def test_sqlite_connections_keep_a_bounded_number_of_prepared_statements(tmp_path: Path) -> None:
    """Each distinct SQL text (a search with IN lists of another length) is a prepared statement
    the sqlite3 module may keep per connection: no more than SQLITE_CACHED_STATEMENTS stay."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    with engine.connect() as connection:
        for size in range(1, SQLITE_CACHED_STATEMENTS + 50):
            values = ", ".join(["?"] * size)
            connection.exec_driver_sql(f"SELECT 1 WHERE 1 IN ({values})", tuple(range(size))).all()
        # sqlite_stmt lists the connection's prepared statements, the one reading it included.
        prepared = connection.exec_driver_sql("SELECT count(*) FROM sqlite_stmt").scalar()
    engine.dispose()
    assert prepared is not None and prepared <= SQLITE_CACHED_STATEMENTS + 1


def test_a_discarded_sqlite_connection_is_replaced_at_the_next_checkout(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'discard.db'}")
    with engine.connect() as connection:
        kept = connection.connection.dbapi_connection
    with engine.connect() as connection:
        assert connection.connection.dbapi_connection is kept  # the pool's one connection, reused
        discard_after_use(connection)
    with engine.connect() as connection:
        assert connection.connection.dbapi_connection is not kept
    engine.dispose()


def test_an_in_memory_database_keeps_its_connection() -> None:
    engine = create_db_engine("sqlite://")
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE kept (x INTEGER)")
        connection.commit()
        discard_after_use(connection)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM kept").scalar() == 0


def _stores(root: Path) -> tuple[list[sa.Engine], SqlTrackingStore, SqlRegistryStore]:
    engines = [create_db_engine(f"sqlite:///{root / name}") for name in ("tracking.db", "registry.db")]
    upgrade(engines[0], MIGRATIONS)
    upgrade(engines[1], MIGRATIONS_DIR)
    return engines, SqlTrackingStore(engines[0], root.as_uri()), SqlRegistryStore(engines[1])


def _in_list(large: bool) -> str:
    """An IN list of a few values, or of one more than a kept statement may bind."""
    return "(" + ",".join(f"'{i}'" for i in range(CACHED_SEARCH_VALUES + 1 if large else 2)) + ")"


def _pattern(large: bool) -> str:
    """A LIKE pattern, longer than a kept statement's values may be when ``large``."""
    return "'" + "a" * (CACHED_SEARCH_CHARACTERS + 1 if large else 2) + "%'"


Search = Callable[[SqlTrackingStore, SqlRegistryStore, bool], object]
SEARCHES: dict[str, tuple[int, Search]] = {
    "SearchRuns": (
        0,
        lambda tracking, _, large: tracking.search_runs(
            [0], parse_filter(f"params.p IN {_in_list(large)}", RUN_SEARCH), [], ViewType.ALL, 10, 0
        ),
    ),
    "SearchExperiments": (
        0,
        lambda tracking, _, large: tracking.search_experiments(
            parse_filter(f"name LIKE {_pattern(large)}", EXPERIMENT_SEARCH), [], ViewType.ALL, 10, 0
        ),
    ),
    "SearchModelVersions": (
        1,
        lambda _, registry, large: registry.search_versions(
            registry_filters.parse_filter(f"run_id IN {_in_list(large)}", registry_filters.VERSION_SEARCH),
            [],
            10,
            0,
        ),
    ),
    "SearchRegisteredModels": (
        1,
        lambda _, registry, large: registry.search_models(
            registry_filters.parse_filter(f"name LIKE {_pattern(large)}", registry_filters.MODEL_SEARCH),
            [],
            10,
            0,
        ),
    ),
}


@pytest.mark.parametrize(("engine_index", "search"), SEARCHES.values(), ids=SEARCHES.keys())
def test_a_large_search_leaves_no_statement_in_the_pool(
    tmp_path: Path, engine_index: int, search: Search
) -> None:
    """Every search of both services: a small one keeps its pooled connection (and the prepared
    statement), one binding more values than a kept statement may, or longer ones, runs on a
    connection that is then replaced, so no pooled connection keeps its large statement."""
    engines, tracking, registry = _stores(tmp_path)
    engine = engines[engine_index]

    def pooled() -> object:
        with engine.connect() as connection:
            return connection.connection.dbapi_connection

    kept = pooled()
    search(tracking, registry, False)
    assert pooled() is kept
    search(tracking, registry, True)
    assert pooled() is not kept
    for each in engines:
        each.dispose()
