"""Memory stays flat: a 256 MiB object goes through each store with RSS growth well under its size.

The S3 case talks to a moto server in a child process, so that only the client side is measured.
"""

from __future__ import annotations

import gc
import hashlib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from minio import Minio

from tracking_service.artifacts import ArtifactStore, S3Options, open_artifact_store

MiB = 1024 * 1024
OBJECT_SIZE = 256 * MiB
RSS_BUDGET = 64 * MiB


def generated(size: int, digest: hashlib._Hash, chunk: int = MiB) -> Iterator[bytes]:
    """Distinct chunks made on the fly, so no copy of the whole object ever exists."""
    block = bytes(range(256)) * (chunk // 256)
    for index in range(size // chunk):
        data = index.to_bytes(8, "big") + block[8:]
        digest.update(data)
        yield data


def peak_rss_growth(work: Callable[[], None]) -> int:
    process = psutil.Process()
    gc.collect()
    baseline = peak = int(process.memory_info().rss)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, int(process.memory_info().rss))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return peak - baseline


@pytest.fixture(scope="module")
def moto_subprocess() -> Iterator[S3Options]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("moto server subprocess did not start")
                time.sleep(0.1)
        yield S3Options(f"127.0.0.1:{port}", "testing", "testing")
    finally:
        server.terminate()
        server.wait(timeout=10)


def round_trip(store: ArtifactStore, uri: str) -> None:
    written = hashlib.sha256()
    stored = store.write(uri, generated(OBJECT_SIZE, written))
    assert (stored.size, stored.sha256) == (OBJECT_SIZE, written.hexdigest())
    read = hashlib.sha256()
    size = 0
    for block in store.read(uri):
        read.update(block)
        size += len(block)
    assert (size, read.hexdigest()) == (OBJECT_SIZE, written.hexdigest())


@pytest.mark.slow
def test_file_store_memory_is_flat(tmp_path: Path) -> None:
    store = open_artifact_store(tmp_path.as_uri(), None)
    growth = peak_rss_growth(lambda: round_trip(store, (tmp_path / "big.bin").as_uri()))
    assert growth < RSS_BUDGET, f"RSS grew {growth / MiB:.0f} MiB"


@pytest.mark.slow
@pytest.mark.s3
def test_s3_store_memory_is_flat(moto_subprocess: S3Options) -> None:
    bucket = f"modelreg-{uuid.uuid4().hex[:12]}"
    Minio(moto_subprocess.endpoint, "testing", "testing", secure=False).make_bucket(bucket)
    store = open_artifact_store(f"s3://{bucket}", moto_subprocess)
    growth = peak_rss_growth(lambda: round_trip(store, f"s3://{bucket}/big.bin"))
    assert growth < RSS_BUDGET, f"RSS grew {growth / MiB:.0f} MiB"
