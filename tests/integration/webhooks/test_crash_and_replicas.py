"""Deliveries survive a registry killed mid-request, and replicas never send one attempt twice at once."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from modelreg.registry_client import RegistryClient
from modelreg.wire import now_ms
from registry_service.domain.webhooks import SendResult
from registry_service.store.webhooks import SqlWebhookStore
from tests.conftest import Backend, _free_port
from tests.integration.webhooks.conftest import (
    TEST_WEBHOOKS,
    Received,
    Receiver,
    new_model,
    running_registry,
    settled,
    verify,
)


class RegistryProcess:
    """``python -m registry_service serve`` on a fixed port and database, killed at will."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.port = _free_port()
        self.target = f"127.0.0.1:{self.port}"
        base = {key: value for key, value in os.environ.items() if not key.startswith("MODELREG_")}
        self._env = {
            **base,
            "MODELREG_REGISTRY_PORT": str(self.port),
            "MODELREG_REGISTRY_DATABASE_URL": database_url,
            "MODELREG_TRACKING_TARGET": "127.0.0.1:1",  # never asked: no version comes from a run
            "MODELREG_WEBHOOK_ALLOW_HTTP": "true",
            "MODELREG_WEBHOOK_ALLOW_PRIVATE": "true",
            # A 3 s timeout leases an attempt for 11 s: how long a killed worker's attempt waits.
            "MODELREG_WEBHOOK_TIMEOUT_SECONDS": "3",
            "MODELREG_WEBHOOK_POLL_SECONDS": "0.05",
            "MODELREG_WEBHOOK_RETRY_SECONDS": "0.2,0.4",
            "MODELREG_LOG_LEVEL": "WARNING",
        }
        self._cwd = tmp_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "registry_service", "serve"], env=self._env, cwd=self._cwd
        )
        channel = grpc.insecure_channel(self.target)
        try:
            grpc.channel_ready_future(channel).result(timeout=60)
        finally:
            channel.close()

    def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()


@pytest.fixture
def registry_process(tmp_path: Path, backend: Backend) -> Iterator[RegistryProcess]:
    if backend.name == "mysql":
        pytest.skip("SQLite and PostgreSQL cover the restart; MySQL shares PostgreSQL's claims")
    process = RegistryProcess(tmp_path, backend.url)
    process.start()
    try:
        yield process
    finally:
        if process._process is not None and process._process.poll() is None:
            process.kill()


def test_kill_9_mid_delivery_loses_nothing(registry_process: RegistryProcess, receiver: Receiver) -> None:
    receiver.hold = threading.Event()
    with RegistryClient(registry_process.target) as client:
        model = new_model(client)
        created = client.create_webhook(receiver.url, model_name=model)
        for n in range(5):
            client.create_model_version(model, f"s3://bucket/m{n}")
    # The first request is held by the receiver: the registry dies before it is answered.
    [first] = receiver.wait_for(lambda seen: len(seen) >= 1)
    registry_process.kill()
    hold, receiver.hold = receiver.hold, None
    hold.set()

    registry_process.start()
    with RegistryClient(registry_process.target) as client:
        client.create_model_version(model, "s3://bucket/after")
        deliveries = settled(client, created.webhook.id, 6, timeout=90)
    assert {d.status for d in deliveries} == {"succeeded"}
    got = receiver.wait_for(lambda seen: len({r.id for r in seen}) >= 6)
    counts = Counter(r.id for r in got)
    assert set(counts) == {d.message_id for d in deliveries}
    assert counts[first.id] == 2  # sent again after the dead worker's lease expired
    # In event order: the held one first, then each of the others once.
    order = list(dict.fromkeys(r.id for r in got))
    assert order == [d.message_id for d in reversed(deliveries)]
    for request in got:
        verify(created.secret, request)


@pytest.mark.postgres
def test_two_replicas_never_send_one_webhooks_events_at_once(
    database_url_factory: Callable[[str], str], receiver: Receiver
) -> None:
    url = database_url_factory("postgres")
    in_flight: Counter[str] = Counter()
    overlaps: list[str] = []
    lock = threading.Lock()

    def answer(request: Received) -> int:
        hook = request.id.rsplit("_", 1)[0]
        with lock:
            in_flight[hook] += 1
            if in_flight[hook] > 1:
                overlaps.append(hook)
        time.sleep(0.01)  # widens the window in which a second sender would overlap
        with lock:
            in_flight[hook] -= 1
        return 200

    receiver.answer = answer
    with ExitStack() as stack:
        targets = [stack.enter_context(running_registry(url)) for _ in range(2)]
        clients = [stack.enter_context(RegistryClient(t)) for t in targets]
        models = [new_model(clients[0]) for _ in range(3)]
        hooks = [clients[0].create_webhook(receiver.url, model_name=m).webhook for m in models]
        for n in range(10):
            for index, model in enumerate(models):
                clients[(n + index) % 2].create_model_version(model, f"s3://bucket/{n}")
        for hook in hooks:
            assert {d.status for d in settled(clients[1], hook.id, 10, timeout=90)} == {"succeeded"}
    got = receiver.wait_for(lambda seen: len(seen) >= 30)
    assert overlaps == []
    assert len(got) == 30 and len({r.id for r in got}) == 30  # each event once: no attempt twice
    for hook in hooks:
        ids = [int(r.id.rsplit("_", 1)[1]) for r in got if r.id.startswith(f"msg_{hook.id}_")]
        assert ids == sorted(ids) and len(ids) == 10


def test_an_attempt_is_recorded_only_by_the_claim_that_made_it(tmp_path: Path) -> None:
    """A worker whose lease expired and which claimed the delivery again records only the later
    attempt: the first one's result (say, late) is not taken for it."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    idle = dataclasses.replace(TEST_WEBHOOKS, worker=False)
    with running_registry(url, webhooks=idle) as target, RegistryClient(target) as client:
        model = new_model(client)
        hook = client.create_webhook("http://127.0.0.1:9/hook", model_name=model).webhook
        client.create_model_version(model, "s3://bucket/m1")
        now = [now_ms()]
        store = SqlWebhookStore(sa.create_engine(url), clock=lambda: now[0])
        assert store.fan_out(10) == 1
        [first] = store.claim("worker-1", 1, 1_000)
        now[0] += 2_000  # its lease has passed
        [second] = store.claim("worker-1", 1, 1_000)
        assert first.delivery.id == second.delivery.id
        assert not store.finish(first, SendResult(200), None)
        assert store.finish(second, SendResult(500, "HTTP 500"), 5_000)
        [delivery] = client.list_webhook_deliveries(hook.id)
        assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("pending", 1, 500)
