"""WatchModelEvents: commit-to-watcher latency and fan-out cost: `python bench/events.py [--quick]`.

modelreg only, loopback only. Starts one registry process (as bench/run.py starts its services:
a child process, its database fresh, the default 16 workers, MODELREG_MAX_WATCHERS raised to
1,100), opens 1, 100 and 1,000 watches of one model from this process (on one asyncio loop, 50 per
channel), waits for each watch's first heartbeat, then sets a tag of the model WRITES times, one
every GAP_SECONDS. Latency is from the start of the write call (so it includes the write itself,
about 5 ms) to the arrival of its event at each watcher; p50/p99 over every (write, watcher).
Also the registry process's CPU seconds (user + system, /proc) while the watches sat idle for
IDLE_SECONDS and during the writes. SQLite always; PostgreSQL when MODELREG_TEST_POSTGRES_URL
names a server (a fresh database, dropped afterwards). Writes bench/results/events.md.
Target: p50 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import grpc
import sqlalchemy as sa
from run import RESULTS, free_port, grpc_serving, services, spawn, wait_until

from modelreg.registry.v1 import registry_pb2 as pb
from modelreg.registry.v1.registry_pb2_grpc import RegistryServiceStub

WATCHERS = (1, 100, 1_000)
WRITES, GAP_SECONDS, IDLE_SECONDS = 30, 0.1, 5.0
PER_CHANNEL = 50
GUARD_SECONDS = 120  # a run that has not delivered every event by then is reported as failed


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def _postgres_database(server_url: str) -> Iterator[str]:
    url = sa.make_url(server_url)
    name = f"modelreg_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


async def _watch_all(
    target: str, model: str, watchers: int, writes: int, ready: threading.Event, arrivals: list[list[float]]
) -> None:
    """The watches, on one asyncio loop (grpc.aio): a thread per watch would spend the client's
    CPU on grpc's 100 ms wake-ups of each blocked iterator, not on the watches."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(-(-watchers // PER_CHANNEL))]
    opened = 0

    async def watch(index: int) -> None:
        nonlocal opened
        stub = RegistryServiceStub(channels[index // PER_CHANNEL])
        call = stub.WatchModelEvents(pb.WatchModelEventsRequest(name=model), timeout=GUARD_SECONDS + 60)
        got = arrivals[index]
        async for response in call:
            if not response.HasField("event"):
                if not got and not ready.is_set():
                    opened += 1
                    if opened == watchers:
                        ready.set()
                continue
            got.append(time.perf_counter())
            if len(got) == writes:
                call.cancel()
                return

    try:
        await asyncio.wait_for(asyncio.gather(*(watch(i) for i in range(watchers))), GUARD_SECONDS + 60)
    finally:
        for channel in channels:
            await channel.close()


def _case(target: str, pid: int, watchers: int, writes: int) -> dict[str, float]:
    channel = grpc.insecure_channel(target)
    stub = RegistryServiceStub(channel)
    model = f"bench-watch-{uuid.uuid4().hex[:8]}"
    stub.CreateRegisteredModel(pb.CreateRegisteredModelRequest(name=model), timeout=10)
    ready = threading.Event()
    arrivals: list[list[float]] = [[] for _ in range(watchers)]
    loop = threading.Thread(
        target=lambda: asyncio.run(_watch_all(target, model, watchers, writes, ready, arrivals)), daemon=True
    )
    loop.start()
    ready.wait(GUARD_SECONDS)
    idle_start = _cpu_seconds(pid)
    time.sleep(IDLE_SECONDS)
    idle = _cpu_seconds(pid) - idle_start
    started: list[float] = []
    busy_start = _cpu_seconds(pid)
    for number in range(writes):
        started.append(time.perf_counter())
        request = pb.SetRegisteredModelTagRequest(name=model, key="n", value=str(number))
        stub.SetRegisteredModelTag(request, timeout=30)
        time.sleep(GAP_SECONDS)
    loop.join(GUARD_SECONDS)
    busy = _cpu_seconds(pid) - busy_start
    channel.close()
    complete = all(len(got) == writes for got in arrivals)
    latencies = [(got[i] - started[i]) * 1000 for got in arrivals for i in range(len(got))]
    return {
        "watchers": watchers,
        "p50_ms": _percentile(latencies, 0.5),
        "p99_ms": _percentile(latencies, 0.99),
        "idle_cpu_s": idle,
        "writes_cpu_s": busy,
        "complete": float(complete),
    }


def _backend(
    label: str, database_url: str, home: Path, writes: int, fanout: tuple[int, ...]
) -> list[dict[str, float]]:
    port = free_port()
    env = {
        "MODELREG_REGISTRY_HOST": "127.0.0.1",
        "MODELREG_REGISTRY_PORT": str(port),
        "MODELREG_REGISTRY_DATABASE_URL": database_url,
        "MODELREG_TRACKING_TARGET": "127.0.0.1:9",
        "MODELREG_MAX_WATCHERS": "1100",
        "MODELREG_LOG_LEVEL": "WARNING",
    }
    rows = []
    with services() as started:
        registry = spawn(
            started, f"registry-{label}", [sys.executable, "-m", "registry_service", "serve"], home, env
        )
        target = f"127.0.0.1:{port}"
        wait_until(registry, lambda: grpc_serving(target))
        for watchers in fanout:
            row = _case(target, registry.process.pid, watchers, writes)
            print(
                f"{label:10} watchers={watchers:5} p50={row['p50_ms']:.1f} ms p99={row['p99_ms']:.1f} ms "
                f"idle_cpu={row['idle_cpu_s']:.2f} s writes_cpu={row['writes_cpu_s']:.2f} s "
                f"complete={bool(row['complete'])}",
                flush=True,
            )
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 writes, 1 and 100 watchers")
    args = parser.parse_args()
    writes = 10 if args.quick else WRITES
    fanout = WATCHERS[:2] if args.quick else WATCHERS
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-events-") as tmp:
        home = Path(tmp)
        results["SQLite"] = _backend("sqlite", f"sqlite:///{home / 'registry.db'}", home, writes, fanout)
        postgres = os.environ.get("MODELREG_TEST_POSTGRES_URL")
        if postgres:
            with _postgres_database(postgres) as url:
                results["PostgreSQL"] = _backend("postgres", url, home, writes, fanout)
    lines = [
        "# WatchModelEvents: commit-to-watcher latency and fan-out",
        "",
        f"`python bench/events.py{' --quick' if args.quick else ''}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other work), Python {platform.python_version()}.",
        f"One registry process, {writes} tag writes {GAP_SECONDS * 1000:.0f} ms apart, every watch on the "
        f"written model; latency from the start of the write call to each watcher's receipt. CPU: the "
        f"registry process's user+system seconds while the watches sat idle {IDLE_SECONDS:.0f} s, and "
        f"during the writes.",
        "",
        "| backend | watchers | p50 ms | p99 ms | idle CPU s | CPU s during writes | all delivered |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for backend, rows in results.items():
        for row in rows:
            lines.append(
                f"| {backend} | {int(row['watchers']):,} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                f"{row['idle_cpu_s']:.2f} | {row['writes_cpu_s']:.2f} | {'yes' if row['complete'] else 'NO'} |"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "events.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'events.md'}")


if __name__ == "__main__":
    main()
