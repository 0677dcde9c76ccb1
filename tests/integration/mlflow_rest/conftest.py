"""The MLflow REST endpoint in front of both real services (SQLite, in-process), on loopback.

``rest`` gives its base URL, an HTTP client on it (httpx) and the modelreg clients of the same
services, so a test writes through one side and reads through the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlflow_gateway.server import running_in_thread
from mlflow_gateway.settings import GatewaySettings
from modelreg import RegistryClient, TrackingClient
from tests.servers import Services, running_services


@dataclass(frozen=True)
class Rest:
    url: str
    http: httpx.Client
    services: Services
    tracking: TrackingClient
    registry: RegistryClient

    def call(
        self, method: str, path: str, body: dict[str, object] | None = None, **params: Any
    ) -> httpx.Response:
        """``path`` below ``/api/2.0/mlflow``; ``body`` as JSON, ``params`` as the query string."""
        return self.http.request(method, f"/api/2.0/mlflow{path}", json=body, params=params or None)

    def ok(
        self, method: str, path: str, body: dict[str, object] | None = None, **params: Any
    ) -> dict[str, object]:
        """The JSON of a call that must succeed."""
        response = self.call(method, path, body, **params)
        assert response.status_code == 200, response.text
        result: dict[str, object] = response.json()
        return result


@pytest.fixture
def rest(tmp_path: Path) -> Iterator[Rest]:
    with running_services(tmp_path) as services:
        settings = GatewaySettings(port=0, tracking_uri=services.tracking, registry_uri=services.registry)
        with (
            running_in_thread(settings) as url,
            httpx.Client(base_url=url, timeout=30) as http,
            TrackingClient(services.tracking) as tracking,
            RegistryClient(services.registry) as registry,
        ):
            yield Rest(url, http, services, tracking, registry)
