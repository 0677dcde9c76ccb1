"""MetricBuffer against a fake sink: batching, order, background sending, error surfacing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

import pytest

from modelreg.entities import Metric
from modelreg.fluent import MetricBuffer


class FakeSink:
    """Records every batch it receives; can be told to fail on its next call."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[Metric]]] = []
        self.fail_with: Exception | None = None
        self.calls = 0

    def __call__(self, batches: Iterable[tuple[str, Sequence[Metric]]]) -> int:
        self.calls += 1
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        received = [(run_id, list(points)) for run_id, points in batches]
        self.batches.extend(received)
        return sum(len(points) for _, points in received)

    def points(self) -> list[tuple[str, Metric]]:
        return [(run_id, m) for run_id, points in self.batches for m in points]


def _point(i: int) -> Metric:
    return Metric("loss", float(i), 1_000 + i, i)


def test_batches_are_bounded_and_keep_log_order() -> None:
    sink = FakeSink()
    buffer = MetricBuffer(sink, batch_size=100, interval=60)
    logged = [("a" if (i // 250) % 2 == 0 else "b", _point(i)) for i in range(1_234)]
    for run_id, metric in logged:
        buffer.add(run_id, metric)
    buffer.flush()
    assert sink.points() == logged
    assert all(0 < len(points) <= 100 for _, points in sink.batches)
    assert all(all(m.key == "loss" for m in points) for _, points in sink.batches)
    buffer.close()


def test_background_thread_sends_without_flush() -> None:
    sink = FakeSink()
    buffer = MetricBuffer(sink, interval=0.01)
    buffer.add("a", _point(1))
    deadline = time.monotonic() + 5
    while not sink.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.points() == [("a", _point(1))]
    buffer.close()


def test_send_error_is_raised_once_by_flush() -> None:
    sink = FakeSink()
    buffer = MetricBuffer(sink, interval=60)
    sink.fail_with = RuntimeError("stream broke")
    buffer.add("a", _point(1))
    with pytest.raises(RuntimeError, match="stream broke"):
        buffer.flush()
    buffer.flush()  # reported once, not forever
    buffer.add("a", _point(2))
    buffer.flush()
    assert sink.points() == [("a", _point(2))]
    buffer.close()


def test_send_error_is_raised_by_the_next_add() -> None:
    sink = FakeSink()
    buffer = MetricBuffer(sink, interval=60)
    sink.fail_with = RuntimeError("run deleted")
    buffer.add("a", _point(1))
    buffer._send()  # what the background thread does
    with pytest.raises(RuntimeError, match="run deleted"):
        buffer.add("a", _point(2))
    buffer.close()


def test_too_many_pending_points_are_sent_by_the_caller() -> None:
    sink = FakeSink()
    buffer = MetricBuffer(sink, batch_size=10, interval=60, max_pending=50)
    for i in range(50):
        buffer.add("a", _point(i))
    assert len(sink.points()) == 50  # back-pressure: sent before add returned
    buffer.close()


def test_concurrent_producers_lose_nothing_and_keep_their_order() -> None:
    sink = FakeSink()
    buffer = MetricBuffer(sink, batch_size=64, interval=0.001)

    def produce(run_id: str) -> None:
        for i in range(2_000):
            buffer.add(run_id, _point(i))

    threads = [threading.Thread(target=produce, args=(f"run{t}",)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    buffer.close()
    for n in range(4):
        steps = [m.step for run_id, m in sink.points() if run_id == f"run{n}"]
        assert steps == list(range(2_000))
