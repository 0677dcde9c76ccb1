"""A migrated tracking store on each backend (SQLite, PostgreSQL, MySQL/MariaDB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelreg._service.db import create_db_engine, upgrade
from tests.conftest import Backend
from tracking_service.store import MIGRATIONS
from tracking_service.store.sql import SqlTrackingStore


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    engine = create_db_engine(backend.url, pool_size=2)
    upgrade(engine, MIGRATIONS)
    tracking_store = SqlTrackingStore(engine, (tmp_path / "artifacts").as_uri())
    tracking_store.ensure_default_experiment()
    yield tracking_store
    engine.dispose()
