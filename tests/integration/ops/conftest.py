"""Both services in-process on 127.0.0.1 with SQLite and file:// artifacts, Prometheus endpoints on,
the registry's lineage going to the real tracking service over gRPC."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from registry_service import config as registry_config
from registry_service import server as registry_server
from tracking_service import config as tracking_config
from tracking_service import server as tracking_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample of a /metrics page, keyed by (sample name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@dataclass(frozen=True)
class OpsStack:
    tracking_target: str
    registry_target: str
    tracking_metrics_port: int
    registry_metrics_port: int
    registry_database_url: str


@pytest.fixture
def ops_stack(tmp_path: Path) -> Iterator[OpsStack]:
    tracking_metrics, registry_metrics = free_port(), free_port()
    registry_database_url = f"sqlite:///{tmp_path / 'registry.db'}"
    tracking, tracking_port = tracking_server.create_server(
        tracking_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=f"sqlite:///{tmp_path / 'tracking.db'}",
            artifact_root=(tmp_path / "artifacts").as_uri(),
            workers=4,
            metrics_port=tracking_metrics,
            metrics_host="127.0.0.1",
        )
    )
    tracking.start()
    registry, registry_port = registry_server.create_server(
        registry_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=registry_database_url,
            tracking_target=f"127.0.0.1:{tracking_port}",
            workers=4,
            metrics_port=registry_metrics,
            metrics_host="127.0.0.1",
        )
    )
    registry.start()
    try:
        yield OpsStack(
            f"127.0.0.1:{tracking_port}",
            f"127.0.0.1:{registry_port}",
            tracking_metrics,
            registry_metrics,
            registry_database_url,
        )
    finally:
        registry.stop(None).wait()
        tracking.stop(None).wait()
