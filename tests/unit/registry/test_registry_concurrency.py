"""The proof that version numbers cannot collide: concurrent registrations into one model.

- 16 threads on one store (one database) on every backend.
- Two registry server processes on one database, driven by 16 client threads through gRPC.

Each must produce exactly 1..N: no duplicates, no gaps, no errors. The figures are printed (they
go into the closing note of the registry issue).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from modelreg.registry.v1 import registry_pb2 as pb
from modelreg.registry.v1 import registry_pb2_grpc
from modelreg_server.context import CallContext
from modelreg_server.db import create_db_engine, upgrade
from registry_service.domain.service import RegistryService
from registry_service.store import MIGRATIONS_DIR
from tests.conftest import Backend
from tests.servers import RegistryProcess

THREADS = 16
PER_THREAD = 8


def hammer(
    register: Callable[[int], int], threads: int, per_thread: int
) -> tuple[list[int], list[BaseException]]:
    """Runs ``register(thread_index)`` per_thread times on each of ``threads`` threads, all
    released at once; returns the version numbers and the errors."""
    start = threading.Barrier(threads)
    versions: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        start.wait()
        for _ in range(per_thread):
            try:
                number = register(index)
            except Exception as exc:
                with lock:
                    failures.append(exc)
            else:
                with lock:
                    versions.append(number)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(worker, range(threads)))
    return versions, failures


def report(
    capsys: pytest.CaptureFixture[str],
    label: str,
    processes: int,
    versions: list[int],
    failures: list[BaseException],
) -> None:
    duplicates = len(versions) - len(set(versions))
    gaps = len(set(range(1, len(versions) + 1)) - set(versions))
    with capsys.disabled():
        print(
            f"\n[registry concurrency] {label}: threads={THREADS} processes={processes} "
            f"versions={len(versions)} duplicates={duplicates} gaps={gaps} errors={len(failures)}"
        )


def test_sixteen_threads_allocate_one_to_n(
    service: RegistryService, backend: Backend, capsys: pytest.CaptureFixture[str], ctx: CallContext
) -> None:
    service.create_registered_model(ctx, "Contended")
    versions, failures = hammer(
        lambda i: service.create_model_version(ctx, "Contended", f"s3://bucket/t{i}").version,
        THREADS,
        PER_THREAD,
    )
    report(capsys, f"{backend.name}, one store", 1, versions, failures)
    assert failures == []
    assert sorted(versions) == list(range(1, THREADS * PER_THREAD + 1))
    stored = service.search_model_versions(ctx, "name = 'Contended'", ["version ASC"], 0, "").items
    assert [v.version for v in stored] == list(range(1, THREADS * PER_THREAD + 1))


@pytest.fixture
def two_servers(backend: Backend, tmp_path: Path) -> Iterator[list[str]]:
    """Two `python -m registry_service serve` processes on one (already migrated) database."""
    engine = create_db_engine(backend.url)
    upgrade(engine, MIGRATIONS_DIR)
    engine.dispose()
    processes = [
        RegistryProcess(backend.url, tmp_path, {"MODELREG_REGISTRY_WORKERS": str(THREADS)}) for _ in range(2)
    ]
    try:
        for process in processes:
            process.start()
        yield [process.target for process in processes]
    finally:
        for process in processes:
            assert process.stop() == 0


def test_two_server_processes_allocate_one_to_n(
    two_servers: list[str], backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    channels = [grpc.insecure_channel(target) for target in two_servers]
    stubs = [registry_pb2_grpc.RegistryServiceStub(channel) for channel in channels]
    try:
        stubs[0].CreateRegisteredModel(pb.CreateRegisteredModelRequest(name="Shared"), timeout=10)

        def register(index: int) -> int:
            request = pb.CreateModelVersionRequest(name="Shared", source=f"s3://bucket/p{index}")
            return stubs[index % 2].CreateModelVersion(request, timeout=60).model_version.version

        versions, failures = hammer(register, THREADS, PER_THREAD)
        report(capsys, f"{backend.name}, two server processes", 2, versions, failures)
        assert failures == []
        assert sorted(versions) == list(range(1, THREADS * PER_THREAD + 1))
        served = stubs[1].SearchModelVersions(
            pb.SearchModelVersionsRequest(filter="name = 'Shared'", order_by=["version ASC"]), timeout=10
        )
        assert [v.version for v in served.model_versions] == list(range(1, THREADS * PER_THREAD + 1))
    finally:
        for channel in channels:
            channel.close()
