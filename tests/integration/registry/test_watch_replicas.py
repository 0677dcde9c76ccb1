"""Watches across registry processes: resumed without gaps or duplicates across a restart (with
writes made while the watched server was down), and a watcher on one replica seeing, in order and
once, what another replica of the same database wrote."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelreg import RegistryClient
from modelreg.entities import ModelEvent
from modelreg_server.db import create_db_engine, upgrade
from registry_service.store import MIGRATIONS_DIR
from tests.conftest import Backend
from tests.integration.registry.test_watch_events import _collect, _key
from tests.servers import RegistryProcess

WRITERS, WRITES = 4, 10


@pytest.fixture
def replicas(backend: Backend, tmp_path: Path) -> Iterator[tuple[RegistryProcess, RegistryProcess]]:
    """Two registry processes on one database (SQLite file, PostgreSQL, MariaDB)."""
    engine = create_db_engine(backend.url)
    upgrade(engine, MIGRATIONS_DIR)
    engine.dispose()
    first, second = RegistryProcess(backend.url, tmp_path), RegistryProcess(backend.url, tmp_path)
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop(signal.SIGKILL)
        second.stop(signal.SIGKILL)


def _history(client: RegistryClient, *names: str) -> list[ModelEvent]:
    events = [event for name in names for event in client.list_model_events(name)]
    return sorted(events, key=lambda event: event.event_id)


def test_a_watch_resumes_across_a_restart_without_gaps_or_duplicates(
    replicas: tuple[RegistryProcess, RegistryProcess],
) -> None:
    watched, other = replicas
    name = f"r-{uuid.uuid4().hex[:8]}"
    with RegistryClient(watched.target) as client, RegistryClient(other.target) as writer:
        client.create_registered_model(name)
        watch = client.watch_model_events(name)
        got = _collect(watch, 9)
        for number in range(3):
            client.set_registered_model_tag(name, "before", str(number))
        watched.stop(signal.SIGKILL)
        for number in range(3):  # while the watched server is down, through the other one
            writer.set_registered_model_tag(name, "down", str(number))
        watched.start()
        for number in range(3):
            client.set_registered_model_tag(name, "after", str(number))
        events = got()
        assert [_key(event) for event in events] == [_key(event) for event in _history(client, name)[1:]]
        assert watch.reconnects >= 1


def test_a_watcher_on_one_replica_sees_what_the_other_writes(
    replicas: tuple[RegistryProcess, RegistryProcess],
) -> None:
    first, second = replicas
    names = [f"p-{uuid.uuid4().hex[:8]}" for _ in range(WRITERS)]
    with RegistryClient(first.target) as reader, RegistryClient(second.target) as writer:
        for name in names:
            writer.create_registered_model(name)
        watch = reader.watch_model_events()  # every model, from now
        got = _collect(watch, WRITERS * WRITES)

        def write(name: str) -> None:
            for number in range(WRITES):
                writer.set_registered_model_tag(name, "n", str(number))

        threads = [threading.Thread(target=write, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        events = got()
        expected = [event for event in _history(writer, *names) if event.action == "MODEL_TAG_SET"]
        assert [_key(event) for event in events] == [_key(event) for event in expected]
        ids = [event.event_id for event in events]
        assert ids == sorted(set(ids))
