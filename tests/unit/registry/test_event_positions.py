"""Event ids are positions in commit order: a reader following ``id > cursor`` never skips one.

Before positions, ids came from the column's sequence: a writer that took its id first and
committed last made a later id visible first, and a reader that moved its cursor past it never
saw the earlier one. Here the first writer holds its transaction open at the commit while the
second writes, and a reader polls in between.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
import weakref
from typing import Any

import pytest
import sqlalchemy as sa

from modelreg_server.context import CallContext
from modelreg_server.db import create_db_engine, upgrade
from registry_service.domain import errors
from registry_service.domain.entities import EventAction, ModelEvent
from registry_service.domain.feed import EventFeed
from registry_service.domain.service import RegistryService
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.sql import EVENT_VALUE_LENGTH, SqlRegistryStore
from tests.conftest import Backend

CTX = CallContext("alice", "req-test")


@pytest.mark.postgres
def test_a_late_commit_is_never_skipped_by_a_cursor(database_url_factory: Any) -> None:
    url = database_url_factory("postgres")
    engine = create_db_engine(url)
    upgrade(engine, MIGRATIONS_DIR)
    application = f"writer-b-{uuid.uuid4().hex[:8]}"
    engine_b = sa.create_engine(url, connect_args={"application_name": application})
    try:
        store_a, store_b = SqlRegistryStore(engine), SqlRegistryStore(engine_b)
        store_a.create_model("A", "", {}, CTX)
        store_b.create_model("B", "", {}, CTX)
        cursor = store_a.event_head()
        held, release = threading.Event(), threading.Event()

        @sa.event.listens_for(engine, "commit")
        def _hold(_connection: Any) -> None:  # runs before the DBAPI commit
            if threading.current_thread().name == "writer-a":
                held.set()
                release.wait()

        def waits_for_a_lock() -> bool:
            with engine.connect() as connection:
                return bool(
                    connection.scalar(
                        sa.text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE application_name = :name AND wait_event_type = 'Lock'"
                        ),
                        {"name": application},
                    )
                )

        writer_a = threading.Thread(target=store_a.set_model_tag, args=("A", "k", "v", CTX), name="writer-a")
        writer_b = threading.Thread(target=store_b.set_model_tag, args=("B", "k", "v", CTX), name="writer-b")
        writer_a.start()
        held.wait()  # A has appended its event and sits at its commit
        writer_b.start()
        while writer_b.is_alive() and not waits_for_a_lock():
            time.sleep(0.01)
        seen: list[ModelEvent] = store_a.events_after(cursor, 100)  # a reader polling meanwhile
        if seen:
            cursor = seen[-1].event_id
        release.set()
        writer_a.join()
        writer_b.join()
        seen += store_a.events_after(cursor, 100)
        assert sorted(event.name for event in seen) == ["A", "B"]
        ids = [event.event_id for event in seen]
        assert ids == sorted(ids) and len(set(ids)) == 2
    finally:
        engine_b.dispose()
        engine.dispose()


def test_positions_continue_the_log_densely(store: SqlRegistryStore) -> None:
    assert store.event_head() == 0
    store.create_model("M", "", {}, CTX)
    store.create_version("M", source="s3://b/m", run_id="", description="", tags={}, lineage=None, ctx=CTX)
    store.set_alias("M", "champion", 1, CTX)
    store.delete_version("M", 1, CTX)  # two events in one append: ALIAS_DELETED, VERSION_DELETED
    events = store.events_after(0, 100)
    assert [event.event_id for event in events] == [1, 2, 3, 4, 5]
    assert store.event_head() == 5
    assert [e.action for e in store.events_after(2, 100, actions=[EventAction.VERSION_DELETED])] == [
        EventAction.VERSION_DELETED
    ]
    assert store.events_after(0, 100, until=2, model_id=events[0].model_id)[-1].event_id == 2


def test_every_change_writes_its_event(service: RegistryService, backend: Backend) -> None:
    """Tags and descriptions of models and versions are in the history, in the change's
    transaction; a value longer than the event's column is whole in the comment."""
    service.create_registered_model(CTX, "M")
    service.create_model_version(CTX, "M", "s3://b/m")
    long_value = "x" * (EVENT_VALUE_LENGTH + 10)
    service.set_registered_model_tag(CTX, "M", "team", long_value)
    service.delete_registered_model_tag(CTX, "M", "team")
    service.update_registered_model(CTX, "M", "what it does")
    service.set_model_version_tag(CTX, "M", 1, "k", "v")
    service.delete_model_version_tag(CTX, "M", 1, "k")
    service.update_model_version(CTX, "M", 1, "first")
    events = service.list_model_events(CTX, "M", 0, 100, "").items[2:]
    assert [(e.action, e.version, e.from_value, e.to_value, e.comment) for e in events] == [
        (EventAction.MODEL_TAG_SET, 0, "team", long_value[:EVENT_VALUE_LENGTH], long_value),
        (EventAction.MODEL_TAG_DELETED, 0, "team", "", ""),
        (EventAction.MODEL_DESCRIPTION_UPDATED, 0, "", "", "what it does"),
        (EventAction.VERSION_TAG_SET, 1, "k", "v", ""),
        (EventAction.VERSION_TAG_DELETED, 1, "k", "", ""),
        (EventAction.VERSION_DESCRIPTION_UPDATED, 1, "", "", "first"),
    ]
    assert {e.actor for e in events} == {"alice"}
    # A failed change writes nothing.
    with pytest.raises(Exception, match="does not exist"):
        service.delete_registered_model_tag(CTX, "M", "absent")
    assert len(service.list_model_events(CTX, "M", 0, 100, "").items) == 8


def test_the_feed_keeps_a_bounded_window_and_sends_older_readers_to_the_store(
    store: SqlRegistryStore,
) -> None:
    for number in range(5):
        store.create_model(f"M{number}", "", {}, CTX)
    feed = EventFeed(store, max_watchers=1, poll_seconds=0.01, window=2)
    with feed.attached():
        assert feed.read(5, 0) == ([], 5)  # started at the head
        with pytest.raises(errors.TooManyWatchers), feed.attached():
            pass
        for number in range(5, 10):
            store.create_model(f"M{number}", "", {}, CTX)
        while feed.head < 10:
            feed.read(feed.head, 1.0)
        # Five events read, more than twice the window: the oldest three were let go.
        assert feed.read(5, 0) is None
        found = feed.read(8, 0)
        assert found is not None and ([e.event_id for e in found[0]], found[1]) == ([9, 10], 10)


def test_a_store_no_longer_used_is_freed_with_its_connections(tmp_path: Any) -> None:
    """Its commit announcements hold no reference to it: a stopped registry's store, engine and
    pooled connections go (a MariaDB server ran out of connections when every stopped registry
    of a test run kept its own)."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    upgrade(engine, MIGRATIONS_DIR)
    announced: list[int] = []
    store = SqlRegistryStore(engine)
    store.on_append(lambda: announced.append(1))
    store.create_model("freed", "", {}, CallContext("alice", "req-freed"))
    assert announced == [1]
    gone = weakref.ref(store)
    del store
    gc.collect()
    assert gone() is None
    engine.dispose()
