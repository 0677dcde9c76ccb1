"""Limits on streams, both directions: client streams (UploadArtifact, LogMetrics) and server
streams (DownloadArtifact, DownloadModelVersionFile): how many run at once, how long one may wait
for its next message, and how long one may last.

The sync gRPC server runs every call on a worker thread of a fixed pool. A handler reading a
client stream blocks inside grpc until the next message arrives, and a handler writing a server
stream blocks inside grpc's send until the client makes room for it (HTTP/2 flow control): a
client that sends an upload's metadata and then nothing, or starts a download and never reads,
would hold a worker forever, and a few dozen such clients would leave no thread for anyone's
unary calls. Three rules keep the pool available:

- At most ``StreamLimits.concurrent(workers)`` streams, of either direction, run at once: one
  pool of slots, fewer than the workers, so unary calls always find a thread. A stream beyond the
  bound is refused at once (RESOURCE_EXHAUSTED, ``TOO_MANY_STREAMS``) rather than queued: a
  waiting stream would wait on a worker of the reserve, the very thread a unary call needs.
  grpc's own ``maximum_concurrent_rpcs`` is not used: it refuses unary calls just the same.
- A client stream's message is awaited at most ``idle_seconds`` and the stream lasts at most
  ``max_seconds`` (DEADLINE_EXCEEDED, ``STREAM_IDLE`` / ``STREAM_TOO_LONG``). grpc's sync server
  has no timed read and nothing that wakes a blocked one except cancelling the call, which would
  answer a bare CANCELLED: so a reader thread per stream does the blocking read and hands each
  message over, and the handler waits for it with a timeout. When the handler gives up, the
  status it sends (with its ErrorInfo) ends the call, which ends the reader's read. The error is
  raised from the request iterator, as a broken stream's is, so an upload cut off publishes
  nothing.
- A server stream's message handed to grpc must be taken by the client (its send completes)
  within ``idle_seconds``, and the stream lasts at most ``max_seconds``. The handler is blocked
  in the send and cannot time itself, and a status cannot overtake a message stuck behind flow
  control: one watchdog thread per service tracks when each server stream handed over its
  pending message and cancels the call (``RpcContext.cancel()``, which wakes the blocked send)
  once it is over a limit. The client sees CANCELLED (it has stopped reading, so nothing else
  would reach it); the service's call log names the reason (``code=DEADLINE_EXCEEDED
  reason=STREAM_IDLE`` / ``STREAM_TOO_LONG``). Time the handler spends producing its next
  message is not idle time: only ``max_seconds`` bounds it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import grpc

from modelreg_server.errors import DeadlineExceededError, ResourceExhaustedError


@dataclass(frozen=True)
class StreamLimits:
    """MODELREG_STREAM_IDLE_SECONDS, MODELREG_STREAM_MAX_SECONDS and MODELREG_MAX_STREAMS."""

    idle_seconds: float = 30.0
    max_seconds: float = 3600.0
    # None: the workers less a reserve of a quarter of them (at least one), see concurrent().
    max_streams: int | None = None

    def concurrent(self, workers: int) -> int:
        """How many streams (both directions) may run at once on ``workers`` threads (at least one)."""
        if self.max_streams is not None:
            return self.max_streams
        return max(1, workers - max(1, workers // 4))


class Streams:
    """Admits a service's streams from one pool of ``limits.concurrent(workers)`` slots: client
    streams read through LimitedRequests, server streams sent through ServerStream and watched by
    the service's one watchdog thread."""

    def __init__(self, limits: StreamLimits, workers: int) -> None:
        self.limits = limits
        self.limit = limits.concurrent(workers)
        self._slots = threading.BoundedSemaphore(self.limit)
        self._watchdog = _Watchdog()

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """Holds a slot for the block; raises RESOURCE_EXHAUSTED (TOO_MANY_STREAMS) at once when
        every slot is taken."""
        if not self._slots.acquire(blocking=False):
            raise ResourceExhaustedError(
                "TOO_MANY_STREAMS",
                f"the service is running its limit of {self.limit} uploads, downloads and metric "
                "streams: try again shortly",
                {"limit": str(self.limit)},
            )
        try:
            yield
        finally:
            self._slots.release()

    @contextmanager
    def admitted(self, requests: Iterator[Any]) -> Iterator[LimitedRequests]:
        """A client stream's requests under the limits while a slot is held."""
        with self._slot():
            limited = LimitedRequests(requests, self.limits, time.monotonic())
            try:
                yield limited
            finally:
                limited.close()

    @contextmanager
    def sending(self, context: grpc.RpcContext, *, slot: bool = True) -> Iterator[ServerStream]:
        """A server stream under the limits while a slot is held: its responses go through
        ``ServerStream.responses``, and the watchdog cancels ``context`` once it is over one.
        Without ``slot``, the stream is bounded by its own limit elsewhere (the registry's
        watches), and only watched."""
        with self._slot() if slot else nullcontext():
            stream = ServerStream(context, self.limits, time.monotonic())
            self._watchdog.watch(stream)
            try:
                yield stream
            finally:
                self._watchdog.forget(stream)


def _timeout(limits: StreamLimits, *, too_long: bool, idle: str) -> DeadlineExceededError:
    """The error of a stream over ``limits``: too long, or idle (``idle`` says what did not happen)."""
    if too_long:
        return DeadlineExceededError(
            "STREAM_TOO_LONG",
            f"the stream lasted longer than {limits.max_seconds:g}s",
            {"limit_seconds": f"{limits.max_seconds:g}"},
        )
    return DeadlineExceededError(
        "STREAM_IDLE",
        f"{idle} for {limits.idle_seconds:g}s",
        {"limit_seconds": f"{limits.idle_seconds:g}"},
    )


class ServerStream:
    """A server stream's progress, as the watchdog sees it: when its pending message was handed
    to grpc (None while the handler produces the next one), and the error it was cut with."""

    def __init__(self, context: grpc.RpcContext, limits: StreamLimits, started: float) -> None:
        self._context = context
        self._limits = limits
        self._deadline = started + limits.max_seconds
        # Written by the handler's thread, read by the watchdog's: one attribute, set atomically.
        self._sending_since: float | None = None
        self.cut: DeadlineExceededError | None = None

    def responses(self, responses: Iterator[Any]) -> Iterator[Any]:
        """``responses``, each marked as pending from when grpc takes it until grpc asks for the
        next one (its send has completed); they end if grpc asks after a cut. Closes
        ``responses`` (a generator) when they end, however they end: what the handler holds open,
        such as the registry's own download from tracking, ends with the stream rather than
        whenever the garbage collector gets to it."""
        try:
            for response in responses:
                if self.cut is not None:
                    return
                self._sending_since = time.monotonic()
                yield response
                self._sending_since = None
        finally:
            if isinstance(responses, Generator):
                responses.close()

    def due(self, now: float) -> tuple[float, bool]:
        """When the stream is over a limit if it makes no progress from ``now``, and whether that
        limit is its total length."""
        sending = self._sending_since
        idle_at = (now if sending is None else sending) + self._limits.idle_seconds
        return (self._deadline, True) if self._deadline <= idle_at else (idle_at, False)

    def cut_off(self, *, too_long: bool) -> None:
        """Records why, then cancels the call: the handler's blocked send returns."""
        self.cut = _timeout(self._limits, too_long=too_long, idle="the client took no message")
        self._context.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs


class _Watchdog:
    """One thread, running while there are server streams to watch, that cuts those over a limit."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._streams: set[ServerStream] = set()
        self._running = False

    def watch(self, stream: ServerStream) -> None:
        with self._changed:
            self._streams.add(stream)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="modelreg-stream-watchdog", daemon=True).start()
            self._changed.notify()

    def forget(self, stream: ServerStream) -> None:
        with self._changed:
            self._streams.discard(stream)
            if not self._streams:
                self._changed.notify()  # nothing left to watch: the thread ends now

    def _run(self) -> None:
        while True:
            with self._changed:
                if not self._streams:
                    self._running = False
                    return
                now = time.monotonic()
                over: list[tuple[ServerStream, bool]] = []
                wake = float("inf")
                for stream in self._streams:
                    at, too_long = stream.due(now)
                    if at <= now:
                        over.append((stream, too_long))
                    else:
                        wake = min(wake, at)
                self._streams.difference_update(stream for stream, _ in over)
                if not over:
                    self._changed.wait(wake - now)
            for stream, too_long in over:  # outside the lock: cancel() calls into grpc
                stream.cut_off(too_long=too_long)


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
        return _timeout(self._limits, too_long=too_long, idle="no message arrived")

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
