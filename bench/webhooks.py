"""Webhook delivery throughput and what a hung receiver costs writes: `python bench/webhooks.py [--quick]`.

modelreg only. Runs a registry in-process (fresh SQLite database, the default delivery settings
but a 0.05 s poll, http and loopback allowed) and an HTTP receiver on loopback answering 204 at
once. Measures:
- throughput: EVENTS versions registered with 1 webhook of their model, then with 10 registry-wide
  webhooks (10 x EVENTS deliveries, each webhook's in order): deliveries per second from the first
  write to the last delivery recorded;
- writes while receivers hang: p50/p99 of CreateModelVersion with no webhook, then with 10
  webhooks whose receiver holds every request until it times out (the delivery worker's 8 slots
  all busy): delivery is off the write path, so the two should match.
Prints a table and writes bench/results/webhooks-<backend>.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from modelreg.registry_client import RegistryClient
from registry_service import config, server
from registry_service.domain.webhooks import WebhookSettings

RESULTS = Path(__file__).resolve().parent / "results"


class Receiver:
    def __init__(self, hang: threading.Event | None = None) -> None:
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                if hang is not None:
                    hang.wait(60)
                with receiver.lock:
                    receiver.count += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> float:
        while True:
            with self.lock:
                if self.count >= count:
                    return time.perf_counter()
            time.sleep(0.005)


def registry(root: Path, settings: WebhookSettings, database_url: str) -> tuple[Callable[[], None], str]:
    grpc_server, port = server.create_server(
        config.Settings(
            host="127.0.0.1",
            port=0,
            database_url=database_url or f"sqlite:///{root / f'{uuid.uuid4().hex}.db'}",
            webhooks=settings,
        ),
        lineage=None,
    )
    grpc_server.start()
    return lambda: grpc_server.stop(None).wait(), f"127.0.0.1:{port}"


def throughput(client: RegistryClient, receiver: Receiver, events: int, hooks: int) -> float:
    model = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    for _ in range(hooks):
        client.create_webhook(receiver.url, model_name=model if hooks == 1 else "")
    base = receiver.count
    start = time.perf_counter()
    for n in range(events):
        client.create_model_version(model, f"s3://bench/{n}")
    end = receiver.wait_for(base + events * hooks)
    return events * hooks / (end - start)


def write_latencies(client: RegistryClient, events: int) -> tuple[float, float]:
    model = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    samples = []
    for n in range(events):
        start = time.perf_counter()
        client.create_model_version(model, f"s3://bench/{n}")
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer events")
    parser.add_argument(
        "--database-url",
        default="",
        help="an empty database of the registry's (default: a fresh SQLite file)",
    )
    args = parser.parse_args()
    events = 100 if args.quick else 500
    settings = WebhookSettings(allow_http=True, allow_private=True, poll_seconds=0.05)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        receiver = Receiver()
        stop, target = registry(root, settings, args.database_url)
        with RegistryClient(target) as client:
            rows.append(
                (f"1 webhook, {events} events", f"{throughput(client, receiver, events, 1):.0f} deliveries/s")
            )
            rows.append(
                (
                    f"10 webhooks, {events} events each",
                    f"{throughput(client, receiver, events, 10):.0f} deliveries/s",
                )
            )
        stop()

        stop, target = registry(root, settings, args.database_url)
        with RegistryClient(target) as client:
            p50, p99 = write_latencies(client, events)
            rows.append(("CreateModelVersion, no webhook", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
            hang = threading.Event()
            hung = Receiver(hang)
            for _ in range(10):
                client.create_webhook(hung.url)
            p50, p99 = write_latencies(client, events)
            rows.append(
                ("CreateModelVersion, 10 webhooks to a hung receiver", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")
            )
            hang.set()
        stop()

    backend = args.database_url.split(":", 1)[0] if args.database_url else "sqlite"
    width = max(len(name) for name, _ in rows)
    table = "\n".join(f"| {name.ljust(width)} | {value} |" for name, value in rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"webhooks-{backend.split('+')[0]}.md").write_text(
        f"# Webhooks ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, {backend})\n\n| setup | result |\n|---|---|\n{table}\n"
    )


if __name__ == "__main__":
    main()
