"""One reader of the event log per registry process, shared by every watch.

A watch that polled the database itself would cost a query per watcher per poll: a thousand idle
watchers, 20,000 queries a second. Instead one poller thread, running while at least one watch is
attached, reads the events after the last position it holds every ``poll_seconds`` (and at once
when this process commits a write, see ``wake``), keeps the newest ``window`` events in memory
and wakes the waiting watches (a Condition). Positions follow commit order
(SqlRegistryStore._append), so reading ``id > head`` never skips an event, whichever replica
wrote it. A watch whose position is older than the window reads the store itself, page by page
(``RegistryStore.events_after``), until it reaches the window.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from registry_service.domain import errors
from registry_service.domain.entities import ModelEvent
from registry_service.store.base import RegistryStore

log = logging.getLogger("modelreg.registry.feed")
# Events read per query: the poller's, and a catching-up watch's.
PAGE = 1_000


class EventFeed:
    """The recent events of the log, for at most ``max_watchers`` watches at once."""

    def __init__(
        self, log_: RegistryStore, *, max_watchers: int, poll_seconds: float = 0.05, window: int = 10_000
    ) -> None:
        self._log = log_
        self.max_watchers = max_watchers
        self._poll_seconds = poll_seconds
        self._window = window
        self._changed = threading.Condition()
        self._wake = threading.Event()
        # The window: events of positions in (_base, _head], in order; _ids are their ids.
        self._events: list[ModelEvent] = []
        self._ids: list[int] = []
        self._base = self._head = 0
        self._watchers = 0
        self._running = False

    @property
    def head(self) -> int:
        """The last position the feed has read."""
        return self._head

    @contextmanager
    def attached(self) -> Iterator[None]:
        """Counts a watch for the block (TOO_MANY_WATCHERS beyond the limit); the first one
        starts the poller, from the log's head now."""
        with self._changed:
            if self._watchers >= self.max_watchers:
                raise errors.TooManyWatchers(self.max_watchers)
            if not self._running:
                self._base = self._head = self._log.event_head()
                self._events, self._ids = [], []
                self._running = True
                threading.Thread(target=self._run, name="modelreg-event-feed", daemon=True).start()
            self._watchers += 1
        try:
            yield
        finally:
            with self._changed:
                self._watchers -= 1

    def wake(self) -> None:
        """A write of this process committed: poll now rather than at the next tick."""
        self._wake.set()

    def read(self, after: int, timeout: float) -> tuple[list[ModelEvent], int] | None:
        """The events after position ``after`` and the position read up to, waiting at most
        ``timeout`` seconds for one (then none and ``after``); None when ``after`` is older than
        the window: the caller reads the log itself."""
        with self._changed:
            if after < self._base:
                return None
            if self._head <= after:
                self._changed.wait(timeout)
                if after < self._base:
                    return None
                if self._head <= after:
                    return [], after
            return self._events[bisect.bisect_right(self._ids, after) :], self._head

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._watchers == 0:
                    self._running = False
                    return
                head = self._head
            self._wake.wait(self._poll_seconds)
            self._wake.clear()
            try:
                events = self._log.events_after(head, PAGE)
            except Exception:  # the database is away: the watches wait (and send heartbeats)
                log.warning("reading the event log failed; retrying", exc_info=True)
                self._wake.wait(1.0)
                continue
            if not events:
                continue
            if len(events) == PAGE:
                self._wake.set()  # more to read
            with self._changed:
                self._events.extend(events)
                self._ids.extend(event.event_id for event in events)
                self._head = events[-1].event_id
                if len(self._events) > 2 * self._window:  # trimmed by halves: amortised O(1)
                    dropped = len(self._events) - self._window
                    self._base = self._ids[dropped - 1]
                    del self._events[:dropped], self._ids[:dropped]
                self._changed.notify_all()
