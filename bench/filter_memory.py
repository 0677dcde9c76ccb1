"""Server memory under distinct large filters: `python bench/filter_memory.py [--filters N]`.

modelreg only. Starts a real tracking service (a child process on loopback, a fresh database,
local artifacts, the default 16 workers) on SQLite and, when MODELREG_BENCH_POSTGRES_URL or
MODELREG_TEST_POSTGRES_URL names a PostgreSQL server, on a fresh database there too. Logs 50
runs, then sends SearchRuns through the modelreg client with N (default 40) distinct large
filters of each kind, each as large as the filter limits allow:

- ``in``: five ``params.p IN (...)`` lists of 1,000 values (the 5,000-value limit), the number
  of values varied a little per filter, so each expands to SQL text of its own;
- ``like``: a 10,000-character LIKE pattern (the pattern limit), distinct per filter.

Prints the service's resident memory (VmRSS of the process) before and after each kind, and
writes bench/results/filter_memory.json. Every search runs on a worker thread of its own
connection, as in service, so caches kept per connection show.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import RESULTS, Service, free_port, grpc_serving, services, spawn, wait_until

import modelreg

RUNS = 50
PARALLEL = 16  # the service's default workers: every pooled connection serves searches
POSTGRES_ENVS = ("MODELREG_BENCH_POSTGRES_URL", "MODELREG_TEST_POSTGRES_URL")


def rss_mib(service: Service) -> float:
    for line in Path(f"/proc/{service.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def in_filter(i: int) -> str:
    lists = []
    for j in range(5):
        count = 1_000 - (i * 5 + j) % 40  # distinct lengths: distinct expanded SQL per filter
        values = ", ".join(f"'{i}.{k}'" for k in range(count))  # under the 65,536-character limit
        lists.append(f"params.p{j} IN ({values})")
    return " AND ".join(lists)


def like_filter(i: int) -> str:
    return f"params.p0 LIKE '%{uuid.uuid4().hex[:8]}{i}{'x' * 9_980}%'"


FILTERS = {"in": in_filter, "like": like_filter}


@contextmanager
def fresh_postgres(url: str) -> Iterator[str]:
    import sqlalchemy as sa

    server = sa.make_url(url)
    name = f"modelreg_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def measure(backend: str, database_url: str, home: Path, filters: int) -> dict[str, Any]:
    port = free_port()
    env = {
        "MODELREG_TRACKING_HOST": "127.0.0.1",
        "MODELREG_TRACKING_PORT": str(port),
        "MODELREG_TRACKING_DATABASE_URL": database_url,
        "MODELREG_ARTIFACT_ROOT": f"file://{home / 'artifacts'}",
        "MODELREG_LOG_LEVEL": "WARNING",
    }
    target = f"127.0.0.1:{port}"
    with services() as started:
        service = spawn(
            started, f"tracking-{backend}", [sys.executable, "-m", "tracking_service", "serve"], home, env
        )
        wait_until(service, lambda: grpc_serving(target))
        client = modelreg.TrackingClient(target)
        experiment = client.create_experiment(f"memory-{uuid.uuid4().hex[:6]}").experiment_id
        for i in range(RUNS):
            run_id = client.create_run(experiment).info.run_id
            client.log_batch(run_id, params=[modelreg.Param(f"p{j}", f"v{i}-{j}-{i}") for j in range(5)])
        with ThreadPoolExecutor(PARALLEL) as pool:  # warm every connection with a small search
            list(pool.map(lambda _: list(client.search_runs([experiment], "params.p0 = 'x'")), range(64)))
        result: dict[str, Any] = {"backend": backend, "filters": filters}
        for kind, make in FILTERS.items():
            before = rss_mib(service)
            started_at = time.perf_counter()
            with ThreadPoolExecutor(PARALLEL) as pool:
                texts = [make(i) for i in range(filters)]
                list(pool.map(lambda text: list(client.search_runs([experiment], text)), texts))
            after = rss_mib(service)
            result[kind] = {
                "rss_before_mib": round(before, 1),
                "rss_after_mib": round(after, 1),
                "growth_mib": round(after - before, 1),
                "seconds": round(time.perf_counter() - started_at, 2),
            }
            print(
                f"{backend:9} {kind:5} RSS {before:7.1f} -> {after:7.1f} MiB "
                f"({after - before:+.1f} MiB over {filters} distinct filters)",
                flush=True,
            )
        client.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=40, help="distinct filters of each kind (default 40)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="modelreg-filter-memory-") as tmp:
        home = Path(tmp)
        (home / "sqlite").mkdir()
        results.append(
            measure("sqlite", f"sqlite:///{home / 'sqlite' / 'tracking.db'}", home / "sqlite", args.filters)
        )
        postgres = next((os.environ[name] for name in POSTGRES_ENVS if os.environ.get(name)), None)
        if postgres is None:
            print(f"postgresql skipped: set {POSTGRES_ENVS[0]}")
        else:
            (home / "postgresql").mkdir()
            with fresh_postgres(postgres) as url:
                results.append(measure("postgresql", url, home / "postgresql", args.filters))
    RESULTS.mkdir(exist_ok=True)
    payload = {"when": datetime.now(UTC).isoformat(), "machine": platform.platform(), "results": results}
    with suppress(OSError):
        (RESULTS / "filter_memory.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
