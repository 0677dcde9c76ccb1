"""Receivers that answer too slowly: each attempt ends at its deadline, whatever they do."""

from __future__ import annotations

import dataclasses
import pathlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from modelreg.exceptions import ResourceExhausted
from modelreg.registry_client import RegistryClient
from tests.conftest import Backend
from tests.integration.webhooks.conftest import TEST_WEBHOOKS, new_model, running_registry, settled

# A second of deadline per attempt: its lease (7 s) passes well before a drip of minutes would end.
SLOW = dataclasses.replace(TEST_WEBHOOKS, timeout_seconds=1.0, concurrency=2)


@dataclass
class Dripper:
    """Answers every request with a status line, then one header byte every 0.2 s until the
    client hangs up; counts the requests open at once."""

    url: str
    open_now: int = 0
    most_open: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def dripper() -> Iterator[Dripper]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    got = Dripper(f"http://127.0.0.1:{server.getsockname()[1]}/hook")

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            with got.lock:
                got.requests += 1
                got.open_now += 1
                got.most_open = max(got.most_open, got.open_now)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.2):
                    conn.sendall(b"a")
            except OSError:  # the sender hung up
                pass
            finally:
                with got.lock:
                    got.open_now -= 1

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield got
    stop.set()
    server.close()


def test_a_dripping_receiver_is_cut_at_the_deadline_one_attempt_at_a_time(
    backend: Backend, dripper: Dripper
) -> None:
    with running_registry(backend.url, webhooks=SLOW) as target, RegistryClient(target) as client:
        model = new_model(client)
        hook = client.create_webhook(dripper.url, model_name=model).webhook
        client.create_model_version(model, "s3://bucket/m1")
        # Every attempt (1 + 2 retries) ends at its deadline and is recorded as failed.
        [delivery] = settled(client, hook.id, 1, timeout=60)
        assert (delivery.status, delivery.attempts) == ("dead", 3)
        assert delivery.last_error == "no answer within 1 s"
        assert dripper.requests == 3 and dripper.most_open == 1


def test_test_sends_end_at_the_deadline_and_only_four_run_at_once(
    tmp_path: pathlib.Path, dripper: Dripper
) -> None:
    # Long enough a deadline that the four held sends are still open when the fifth comes.
    held = dataclasses.replace(SLOW, timeout_seconds=20.0, worker=False)
    with (
        running_registry(f"sqlite:///{tmp_path / 'registry.db'}", webhooks=held) as target,
        RegistryClient(target) as client,
    ):
        hook = client.create_webhook(dripper.url).webhook
        with ThreadPoolExecutor(4) as pool:
            sends = [pool.submit(client.test_webhook, hook.id) for _ in range(4)]
            while dripper.open_now < 4:
                time.sleep(0.02)
            with pytest.raises(ResourceExhausted) as refused:
                client.test_webhook(hook.id)
            assert refused.value.reason == "TOO_MANY_WEBHOOK_TESTS"
            # The registry still answers everything else meanwhile.
            assert client.get_webhook(hook.id).id == hook.id
            results = [send.result() for send in sends]
        assert {(r.success, r.response_code, r.error) for r in results} == {
            (False, 0, "no answer within 20 s")
        }
