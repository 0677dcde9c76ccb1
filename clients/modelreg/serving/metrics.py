"""Prometheus metrics of ``modelreg serve``, on GET /metrics.

Each app has its own registry (one per worker process: with ``--workers N`` each worker answers
/metrics with its own counts, so scrape each or sum them). The slot's ``on_event`` callback feeds
:meth:`ServingMetrics.on_event`; the app records requests.

- ``modelreg_serving_requests_total{version,status}``: /invocations requests answered;
- ``modelreg_serving_request_seconds{version}``: their latency, body read to response;
- ``modelreg_serving_errors_total{version,kind}``: refused or failed ones by kind (``bad_request``,
  ``too_large``, ``unsupported_media_type``, ``predict``, ``unavailable``);
- ``modelreg_serving_swaps_total``, ``modelreg_serving_swap_seconds``: hot swaps and their
  load+check time; ``modelreg_serving_load_failures_total``: loads that failed;
- ``modelreg_serving_served_version``: the version being served (0 before any, and for runs:/ URIs).
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Scoring latency: from 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A swap downloads, verifies and loads a model: from 100 ms to 5 min.
SWAP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class SlotEventLike(Protocol):
    """What metrics and logs read of ``modelreg.serving.slot.SlotEvent``."""

    @property
    def kind(self) -> str: ...
    @property
    def version(self) -> int | None: ...
    @property
    def previous(self) -> int | None: ...
    @property
    def seconds(self) -> float | None: ...
    @property
    def detail(self) -> str: ...


def version_label(version: int | None) -> str:
    """The label and header value of a version: its number, or ``none`` (runs:/ URIs, nothing loaded)."""
    return "none" if version is None else str(version)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        prefix = "modelreg_serving"
        self.requests = Counter(
            f"{prefix}_requests",
            "/invocations requests answered",
            ["version", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{prefix}_request_seconds",
            "/invocations latency, body read to response",
            ["version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            f"{prefix}_errors",
            "/invocations requests refused or failed",
            ["version", "kind"],
            registry=self.registry,
        )
        self.swaps = Counter(f"{prefix}_swaps", "hot swaps to another version", registry=self.registry)
        self.swap_seconds = Histogram(
            f"{prefix}_swap_seconds",
            "load and check time of a swap",
            buckets=SWAP_BUCKETS,
            registry=self.registry,
        )
        self.load_failures = Counter(
            f"{prefix}_load_failures", "model loads that failed", registry=self.registry
        )
        self.served_version = Gauge(
            f"{prefix}_served_version",
            "the version being served (0: none or a runs:/ model)",
            registry=self.registry,
        )

    def on_event(self, event: SlotEventLike) -> None:
        """Feeds a slot event (``ModelSlot(on_event=...)``)."""
        if event.kind in ("loaded", "swapped", "offline_start"):
            self.served_version.set(event.version or 0)
        if event.kind == "swapped":
            self.swaps.inc()
            if event.seconds is not None:
                self.swap_seconds.observe(event.seconds)
        elif event.kind == "load_failed":
            self.load_failures.inc()

    def request(self, version: int | None, status: int, seconds: float, error_kind: str | None) -> None:
        label = version_label(version)
        self.requests.labels(label, str(status)).inc()
        self.latency.labels(label).observe(seconds)
        if error_kind is not None:
            self.errors.labels(label, error_kind).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
