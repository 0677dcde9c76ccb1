"""A real registry (in-process, or a subprocess where killing it is the point) with webhooks to a
real HTTP receiver on loopback, which the operator allowances (http, private addresses) admit."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from modelreg.registry_client import RegistryClient
from modelreg.webhooks_client import WebhookDelivery
from modelreg_server.settings import AuthSettings
from registry_service import config as registry_config
from registry_service import lineage_codec
from registry_service import server as registry_server
from registry_service.domain.entities import EncodedLineage, LineageRecord, ModelFile
from registry_service.domain.webhooks import WebhookSettings
from tests.conftest import Backend

# Tiny retry waits, so that backoff and dead letters happen within a test.
TEST_WEBHOOKS = WebhookSettings(
    allow_http=True,
    allow_private=True,
    retry_seconds=(0.2, 0.4),
    timeout_seconds=2.0,
    poll_seconds=0.05,
)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """Records every request; ``answer`` decides each status code (default 200); ``hold``, when
    set, makes requests wait until it is cleared."""

    url: str
    requests: list[Received] = field(default_factory=list)
    answer: Callable[[Received], int] = lambda _: 200
    hold: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                seen = list(self.requests)
            if predicate(seen):
                return seen
            time.sleep(0.02)
        raise AssertionError(f"receiver did not get what was awaited; got {[r.id for r in seen]}")

    def bodies(self) -> list[dict[str, object]]:
        import json

        with self.lock:
            return [json.loads(r.body) for r in self.requests]


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            got = Received({k.lower(): v for k, v in self.headers.items()}, body)
            with receiver.lock:
                receiver.requests.append(got)
            if receiver.hold is not None:
                receiver.hold.wait(60)
            code = receiver.answer(got)
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    receiver = Receiver(f"http://127.0.0.1:{http.server_address[1]}/hook")
    threading.Thread(target=http.serve_forever, daemon=True).start()
    return receiver, http


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got, http = start_receiver()
    yield got
    if got.hold is not None:
        got.hold.set()
    http.shutdown()
    http.server_close()


def verify(secret: str, request: Received) -> dict[str, object]:
    """What a receiver does: Standard Webhooks' reference verifier, headers and body as received."""
    payload: dict[str, object] = Verifier(secret).verify(request.body, request.headers)
    return payload


class NoTracking:
    """No version here is registered from a run: the registry never asks tracking."""

    def fetch(self, ctx: object, run_id: str, source: str) -> EncodedLineage:
        raise AssertionError("not used")

    def open_file(self, ctx: object, lineage: EncodedLineage, path: str) -> ModelFile | None:
        raise AssertionError("not used")

    def decode(self, lineage: EncodedLineage) -> LineageRecord:
        return lineage_codec.decode(lineage)


@contextmanager
def running_registry(
    database_url: str, auth: AuthSettings | None = None, webhooks: WebhookSettings = TEST_WEBHOOKS
) -> Iterator[str]:
    server, port = registry_server.create_server(
        registry_config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=database_url,
            auth=auth or AuthSettings(),
            workers=8,
            webhooks=webhooks,
        ),
        NoTracking(),
    )
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


@pytest.fixture
def registry(backend: Backend) -> Iterator[RegistryClient]:
    """A registry on the backend under test, access control off, and its client."""
    with running_registry(backend.url) as target, RegistryClient(target) as client:
        yield client


def settled(
    client: RegistryClient, webhook_id: str, count: int, timeout: float = 30
) -> list[WebhookDelivery]:
    """The webhook's deliveries once ``count`` exist and none is pending (newest first)."""
    deadline = time.monotonic() + timeout
    while True:
        deliveries = list(client.list_webhook_deliveries(webhook_id))
        if len(deliveries) >= count and all(d.status != "pending" for d in deliveries):
            return deliveries
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries did not settle: {deliveries}")
        time.sleep(0.05)


def new_model(client: RegistryClient) -> str:
    name = f"wh-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    return name
