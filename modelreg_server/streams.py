"""Limits on client streams (UploadArtifact, LogMetrics): how many run at once, how long one may
wait for its next message, and how long one may last.

The sync gRPC server runs every call on a worker thread of a fixed pool, and a handler reading
a client stream blocks inside grpc until the next message arrives: a client that sends an
upload's metadata and then nothing would hold a worker forever, and a few dozen such clients
would leave no thread for anyone's unary calls. Two rules keep the pool available:

- At most ``StreamLimits.concurrent(workers)`` client streams run at once, fewer than the
  workers, so unary calls always find a thread. A stream beyond the bound is refused at once
  (RESOURCE_EXHAUSTED, ``TOO_MANY_STREAMS``) rather than queued: a waiting stream would wait on a
  worker of the reserve, the very thread a unary call needs. grpc's own
  ``maximum_concurrent_rpcs`` is not used: it refuses unary calls just the same.
- Each message is awaited at most ``idle_seconds`` and a stream lasts at most ``max_seconds``
  (DEADLINE_EXCEEDED, ``STREAM_IDLE`` / ``STREAM_TOO_LONG``). grpc's sync server has no timed
  read and nothing that wakes a blocked one except cancelling the call, which would answer
  a bare CANCELLED: so a reader thread per stream does the blocking read and hands each message
  over, and the handler waits for it with a timeout. When the handler gives up, the status it
  sends (with its ErrorInfo) ends the call, which ends the reader's read. The error is raised
  from the request iterator, as a broken stream's is, so an upload cut off publishes nothing.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from modelreg_server.errors import DeadlineExceededError, ResourceExhaustedError


@dataclass(frozen=True)
class StreamLimits:
    """MODELREG_STREAM_IDLE_SECONDS, MODELREG_STREAM_MAX_SECONDS and MODELREG_MAX_STREAMS."""

    idle_seconds: float = 30.0
    max_seconds: float = 3600.0
    # None: the workers less a reserve of a quarter of them (at least one), see concurrent().
    max_streams: int | None = None

    def concurrent(self, workers: int) -> int:
        """How many client streams may run at once on ``workers`` threads (at least one)."""
        if self.max_streams is not None:
            return self.max_streams
        return max(1, workers - max(1, workers // 4))


class ClientStreams:
    """Admits a service's client streams: at most ``limits.concurrent(workers)`` at once, each
    read through LimitedRequests."""

    def __init__(self, limits: StreamLimits, workers: int) -> None:
        self.limits = limits
        self.limit = limits.concurrent(workers)
        self._slots = threading.BoundedSemaphore(self.limit)

    @contextmanager
    def admitted(self, requests: Iterator[Any]) -> Iterator[LimitedRequests]:
        """The stream's requests under the limits while a slot is held; raises RESOURCE_EXHAUSTED
        (TOO_MANY_STREAMS) at once when every slot is taken."""
        if not self._slots.acquire(blocking=False):
            raise ResourceExhaustedError(
                "TOO_MANY_STREAMS",
                f"the service is running its limit of {self.limit} uploads and metric streams: "
                "try again shortly",
                {"limit": str(self.limit)},
            )
        limited = LimitedRequests(requests, self.limits, time.monotonic())
        try:
            yield limited
        finally:
            limited.close()
            self._slots.release()


_STOP = object()  # the handler wants no more messages
_END = object()  # the client half-closed its stream


class LimitedRequests:
    """A client stream's requests, read on a thread of its own, each awaited at most
    ``limits.idle_seconds`` and none later than ``limits.max_seconds`` after ``started``.

    Reads a message only when asked for one, so a slow handler never makes it buffer a stream.
    Call close() once the handler is done with it.
    """

    def __init__(self, requests: Iterator[Any], limits: StreamLimits, started: float) -> None:
        self._requests = requests
        self._limits = limits
        self._deadline = started + limits.max_seconds
        self._wanted: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._arrived: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._done = False
        threading.Thread(target=self._read, name="modelreg-stream-reader", daemon=True).start()

    def __iter__(self) -> LimitedRequests:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        self._wanted.put(None)
        remaining = self._deadline - time.monotonic()
        try:
            item = self._arrived.get(timeout=max(0.0, min(self._limits.idle_seconds, remaining)))
        except queue.Empty:
            self._done = True
            raise self._timeout(too_long=remaining <= self._limits.idle_seconds) from None
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if time.monotonic() >= self._deadline:
            self._done = True
            raise self._timeout(too_long=True)
        return item

    def close(self) -> None:
        """Lets the reader go: it returns now, or when grpc ends the call it is reading."""
        self._done = True
        self._wanted.put(_STOP)

    def _timeout(self, *, too_long: bool) -> DeadlineExceededError:
        if too_long:
            return DeadlineExceededError(
                "STREAM_TOO_LONG",
                f"the stream lasted longer than {self._limits.max_seconds:g}s",
                {"limit_seconds": f"{self._limits.max_seconds:g}"},
            )
        return DeadlineExceededError(
            "STREAM_IDLE",
            f"no message arrived for {self._limits.idle_seconds:g}s",
            {"limit_seconds": f"{self._limits.idle_seconds:g}"},
        )

    def _read(self) -> None:
        while self._wanted.get() is not _STOP:
            try:
                self._arrived.put(next(self._requests))
            except StopIteration:
                self._arrived.put(_END)
                return
            except Exception as exc:  # the call's own failure (cancelled, past its deadline)
                self._arrived.put(exc)
                return
