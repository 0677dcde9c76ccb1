"""An iterator over a registry's event log that survives disconnects (RegistryClient.watch_model_events).

The service sends each event with a cursor, and heartbeats with the cursor of the log read so
far (the first one as soon as the stream opens). The iterator keeps the last cursor it received
and, when the stream breaks (UNAVAILABLE: the server restarted or the connection dropped; past its
deadline; cancelled by the server after the client stopped reading; TOO_MANY_WATCHERS), or when
the server ends it (a watch lasts at most MODELREG_WATCH_MAX_SECONDS), opens a new one after that
cursor: nothing is missed and no event is yielded twice. Other errors (PERMISSION_DENIED,
INVALID_ARGUMENT, NOT_FOUND, ...) are raised at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator

from modelreg import _convert as conv
from modelreg import entities as e
from modelreg._grpc import RetryPolicy
from modelreg.exceptions import ModelregError
from modelreg.registry.v1 import registry_pb2 as pb

log = logging.getLogger("modelreg.client")

WATCH_RETRY = RetryPolicy(
    total_seconds=60.0,
    codes=frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"}),
    stream_reasons=frozenset({"TOO_MANY_WATCHERS"}),
)
"""When a watch reconnects, and its backoff: ``total_seconds`` is how long it keeps trying
without receiving anything (a message received starts the count and the backoff over)."""

OpenWatch = Callable[[str, bool], Iterator[pb.WatchModelEventsResponse]]
"""Opens a watch after a cursor (or from the beginning): the responses, errors as ModelregError."""

OnStatus = Callable[[bool], None]
"""Told, in the iterating thread, whether the watch is connected: True for each message received
(the first one of every stream included, heartbeats too), False for each stream that broke and
each attempt to open one that failed. What it raises ends the iteration (so a consumer can stop a
watch that is waiting for messages or retrying)."""


class EventWatch(Iterator[e.ModelEvent]):
    """The events of a watch, each with its ``cursor``. ``cursor`` is where the watch stands: after
    the last event yielded, or further after a heartbeat; persist it to resume in another process
    (``watch_model_events(cursor=...)``). The stream is open when the watch is made (so "from now"
    is from then, and bad input raises there); ``close()``, from the thread that iterates, ends it.
    ``on_status`` follows the connection (see :data:`OnStatus`).
    """

    def __init__(
        self,
        open_watch: OpenWatch,
        cursor: str,
        from_beginning: bool,
        retry: RetryPolicy = WATCH_RETRY,
        on_status: OnStatus | None = None,
    ) -> None:
        self.cursor = cursor
        self.reconnects = 0
        self._open = open_watch
        self._from_beginning = from_beginning and not cursor
        self._retry = retry
        self._pending: list[e.ModelEvent] = []
        self._on_status: OnStatus = on_status or (lambda connected: None)
        stream = self._connect(after_error=False)
        self._events: Generator[e.ModelEvent, None, None] = self._generate(stream)

    def __iter__(self) -> EventWatch:
        return self

    def __next__(self) -> e.ModelEvent:
        return next(self._events)

    def close(self) -> None:
        self._events.close()

    def _take(self, response: pb.WatchModelEventsResponse) -> e.ModelEvent | None:
        self.cursor, self._from_beginning = response.cursor, False
        self._on_status(True)
        return conv.model_event(response.event, response.cursor) if response.HasField("event") else None

    def _connect(self, *, after_error: bool) -> Iterator[pb.WatchModelEventsResponse]:
        """A stream after the cursor whose first message (the service's first heartbeat) has
        arrived, opened again per the retry policy; errors not worth retrying are raised."""
        pauses, give_up = self._retry.pauses(), time.monotonic() + self._retry.total_seconds
        while True:
            if after_error:
                time.sleep(next(pauses))
            stream = self._open(self.cursor, self._from_beginning)
            try:
                event = self._take(next(stream))
            except StopIteration:
                after_error = False
                continue
            except ModelregError as error:
                self._on_status(False)
                if not self._retry.retries(error, stream=True) or time.monotonic() > give_up:
                    raise
                log.debug("watch: %s (%s); trying again", error.code, error)
                after_error = True
                continue
            if event is not None:
                self._pending.append(event)
            return stream

    def _generate(self, stream: Iterator[pb.WatchModelEventsResponse]) -> Generator[e.ModelEvent, None, None]:
        while True:
            yield from self._pending
            self._pending.clear()
            failed = False
            try:
                for response in stream:
                    event = self._take(response)
                    if event is not None:
                        yield event
            except ModelregError as error:
                self._on_status(False)
                if not self._retry.retries(error, stream=True):
                    raise
                log.debug("watch: %s (%s); resuming", error.code, error)
                failed = True
            # The server ended the stream (OK: resume at once), or it broke (after a pause).
            self.reconnects += 1
            stream = self._connect(after_error=failed)
