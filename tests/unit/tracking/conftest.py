"""A migrated tracking store on each backend (SQLite, PostgreSQL, MySQL/MariaDB), and the
TrackingService over it with file:// artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from modelreg_server.context import CallContext
from modelreg_server.db import create_db_engine, upgrade
from tests.conftest import Backend
from tracking_service.artifacts import FileArtifactStore
from tracking_service.domain.service import TrackingService
from tracking_service.store import MIGRATIONS
from tracking_service.store.sql import SqlTrackingStore


@pytest.fixture
def engine(backend: Backend) -> Iterator[Engine]:
    """A migrated tracking database on the backend."""
    engine = create_db_engine(backend.url, pool_size=2)
    upgrade(engine, MIGRATIONS)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> SqlTrackingStore:
    tracking_store = SqlTrackingStore(engine, (tmp_path / "artifacts").as_uri())
    tracking_store.ensure_default_experiment()
    return tracking_store


@pytest.fixture
def service(store: SqlTrackingStore, tmp_path: Path) -> TrackingService:
    root = tmp_path / "artifacts"
    return TrackingService(store, FileArtifactStore(root), artifact_roots=[root.as_uri()])


@pytest.fixture
def ctx() -> CallContext:
    """The call every service method of a test runs in."""
    return CallContext(actor="alice", request_id="req-test")
