"""SQLite engines: WAL checkpoints happen on a helper thread, off the commits of the calls."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from modelreg_server.db import SQLITE_WAL_AUTOCHECKPOINT_PAGES, create_db_engine

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
