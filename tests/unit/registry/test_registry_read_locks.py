"""On SQLite, reads of the registry store run beside an open write transaction instead of queueing
behind it (they begin DEFERRED), while writes still wait for the write lock (BEGIN IMMEDIATE)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelreg_server.context import CallContext
from modelreg_server.db import create_db_engine, upgrade
from registry_service.domain.entities import Stage
from registry_service.domain.rules import ModelUri
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.sql import SqlRegistryStore


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    upgrade(engine, MIGRATIONS_DIR)

    @sa.event.listens_for(engine, "connect")
    def _impatient(dbapi_connection: Any, _record: Any) -> None:
        # A statement that had to wait for the lock fails after 50 ms instead of waiting 30 s.
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    engine.dispose()  # the connections pooled by the upgrade predate the listener
    yield engine
    engine.dispose()


def test_reads_proceed_while_a_writer_holds_the_lock(engine: Engine) -> None:
    store = SqlRegistryStore(engine)
    store.create_model("M", "before", {}, CallContext("alice", "req-test"))
    store.create_version(
        "M",
        source="runs:/r/model",
        run_id="r",
        description="",
        tags={},
        lineage=None,
        ctx=CallContext("alice", "req-test"),
    )

    with engine.connect() as writer:
        writer.begin()  # BEGIN IMMEDIATE: the database's one write lock, held until rollback
        writer.execute(sa.text("UPDATE registered_models SET description = 'uncommitted'"))

        # Each read sees the last committed state, without waiting.
        assert store.get_model("M").description == "before"
        assert store.get_version("M", 1).version == 1
        assert [v.version for v in store.search_versions([], [], limit=10, offset=0)] == [1]
        assert [v.version for v in store.latest_versions("M", [Stage.NONE])] == [1]
        assert store.resolve(ModelUri("M", version=1)).version == 1

        # A write still queues for the lock (and here, impatient, gives up).
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            store.update_model("M", "after", CallContext("alice", "req-test"))
        writer.rollback()

    assert store.get_model("M").description == "before"
