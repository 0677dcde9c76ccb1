"""Fixtures of the registry unit suite: a store on each backend, a fake lineage port, a clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelreg_server.context import CallContext
from modelreg_server.db import create_db_engine, upgrade
from registry_service.domain.service import RegistryService
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.sql import SqlRegistryStore
from tests.unit.registry.registry_fakes import Backend, Clock, FakeLineage


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(backend: Backend, clock: Clock) -> Iterator[SqlRegistryStore]:
    engine = create_db_engine(backend.url)
    upgrade(engine, MIGRATIONS_DIR)
    yield SqlRegistryStore(engine, clock=clock)
    engine.dispose()


@pytest.fixture
def lineage() -> FakeLineage:
    return FakeLineage()


@pytest.fixture
def service(store: SqlRegistryStore, lineage: FakeLineage) -> RegistryService:
    return RegistryService(store, lineage)


@pytest.fixture
def ctx() -> CallContext:
    """The call every service method of a test runs in: alice, with a fixed request id."""
    return CallContext(actor="alice", request_id="req-test")
