"""A 1 GiB artifact round trip through a server in its own OS process, with flat memory."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from modelreg.tracking.v1 import tracking_pb2 as pb

from .conftest import serving_process

MiB = 1024 * 1024
SIZE = 1024 * MiB
# What a 1 GiB transfer may add to a process: a few chunks in flight and gRPC buffers, not the file.
GROWTH_LIMIT = 100 * MiB


class PeakRss:
    """Samples a process's resident set size in a background thread and keeps the peak."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self.baseline = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _content() -> Iterator[bytes]:
    """1 GiB in 1 MiB chunks, each different, generated on the fly."""
    block = os.urandom(MiB)
    for index in range(SIZE // MiB):
        yield index.to_bytes(8, "big") + block[8:]


@pytest.mark.slow
def test_one_gib_round_trip_keeps_memory_flat(tmp_path: Path) -> None:
    with serving_process(tmp_path) as (server, stub):
        run_id = stub.CreateRun(pb.CreateRunRequest()).run.info.run_id
        expected = hashlib.sha256()

        def requests() -> Iterator[pb.UploadArtifactRequest]:
            yield pb.UploadArtifactRequest(metadata=pb.UploadArtifactMetadata(run_id=run_id, path="big.bin"))
            for chunk in _content():
                expected.update(chunk)
                yield pb.UploadArtifactRequest(chunk=chunk)
            yield pb.UploadArtifactRequest(end=pb.UploadArtifactEnd(size=SIZE, sha256=expected.hexdigest()))

        with PeakRss(server.pid) as server_rss, PeakRss(os.getpid()) as client_rss:
            stored = stub.UploadArtifact(requests(), timeout=120).file
            downloaded = hashlib.sha256()
            target = tmp_path / "downloaded.bin"
            with target.open("wb") as out:
                responses = iter(
                    stub.DownloadArtifact(
                        pb.DownloadArtifactRequest(run_id=run_id, path="big.bin"), timeout=120
                    )
                )
                metadata = next(responses).metadata
                for response in responses:
                    out.write(response.chunk)
                    downloaded.update(response.chunk)
        server_growth = server_rss.peak - server_rss.baseline
        client_growth = client_rss.peak - client_rss.baseline
        print(
            f"\n1 GiB round trip: server peak RSS {server_rss.peak / MiB:.0f} MiB, {server_growth / MiB:.0f} MiB "
            f"above its baseline; client (pytest process) peak RSS {client_rss.peak / MiB:.0f} MiB, "
            f"{client_growth / MiB:.0f} MiB above its baseline"
        )
        assert stored.file_size == SIZE == metadata.file_size == target.stat().st_size
        assert stored.sha256 == expected.hexdigest() == metadata.sha256 == downloaded.hexdigest()
        # Each process's size at rest depends on what it imported (and, for pytest, on the tests that ran
        # before): what the transfer itself adds is bounded, not the whole process.
        assert server_growth < GROWTH_LIMIT
        assert client_growth < GROWTH_LIMIT
