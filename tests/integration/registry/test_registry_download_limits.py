"""The registry's file downloads are server streams under the same limits as tracking's: bounded in
number, and cancelled when their client stops reading, which also ends the download the registry
was streaming from the tracking service (modelreg_server.streams)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import grpc
import pytest

from modelreg import RegistryClient, TrackingClient
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1.registry_pb2_grpc import RegistryServiceStub
from modelreg_server.streams import StreamLimits
from registry_service import config as registry_config
from registry_service import server as registry_server
from tests.integration.registry.test_registry_lineage import failure
from tests.integration.tracking.test_tracking_download_limits import (
    CHUNKS,
    FIRST,
    SMALL_WINDOWS,
    stalled_downloads,
    with_big_file,
)
from tests.servers import running_registry, running_tracking

STALLED = 10  # the registry's 8 workers admit 6


def _calls(records: list[logging.LogRecord], service: str, method: str) -> list[dict[str, object]]:
    calls = [getattr(r, "call", {}) for r in records]
    return [c for c in calls if c.get("service") == service and c.get("method") == method]


def test_stalled_model_downloads_are_bounded_and_cancelled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelreg.calls")
    with running_tracking(tmp_path) as (tracking_target, _):
        registry, port = registry_server.create_server(
            registry_config.Settings(
                host="127.0.0.1",
                port=0,
                database_url=f"sqlite:///{tmp_path / 'registry.db'}",
                tracking_target=tracking_target,
                workers=8,
                streams=StreamLimits(idle_seconds=1),
            )
        )
        registry.start()
        target = f"127.0.0.1:{port}"
        try:
            tracking, models = TrackingClient(tracking_target), RegistryClient(target)
            run_id = tracking.create_run(tracking.create_experiment("big").experiment_id).info.run_id
            big = tmp_path / "big.bin"
            big.write_bytes(bytes(range(256)) * (CHUNKS * 4096))
            tracking.log_artifact(run_id, big, "model")
            models.create_registered_model("Big")
            models.create_model_version("Big", f"runs:/{run_id}/model", run_id=run_id)

            channel = grpc.insecure_channel(target, options=SMALL_WINDOWS)
            stub = RegistryServiceStub(channel)
            request = rpb.DownloadModelVersionFileRequest(name="Big", version=1, path="big.bin")
            calls = [stub.DownloadModelVersionFile(request, timeout=60) for _ in range(STALLED)]

            def first(call: Iterator[rpb.DownloadModelVersionFileResponse]) -> object:
                try:
                    return next(call).WhichOneof("payload")
                except grpc.RpcError as exc:
                    return exc.code()  # type: ignore[attr-defined]

            with ThreadPoolExecutor(STALLED) as pool:
                firsts = [pool.submit(first, call) for call in calls]
                wait(firsts, timeout=5)
                # The admitted ones stall; the registry still answers other calls at once.
                assert models.get_registered_model("Big").name == "Big"
                assert sorted(str(f.result(0)) for f in firsts) == sorted(
                    ["metadata"] * 6 + [str(grpc.StatusCode.RESOURCE_EXHAUSTED)] * (STALLED - 6)
                )
                time.sleep(2.5)
                cut = _calls(caplog.records, "registry", "DownloadModelVersionFile")
                assert [(c["code"], c.get("reason")) for c in cut if c["code"] != "RESOURCE_EXHAUSTED"] == [
                    ("DEADLINE_EXCEEDED", "STREAM_IDLE")
                ] * 6
                # The registry's own downloads from tracking ended with them, not at tracking's limit.
                upstream = _calls(caplog.records, "tracking", "DownloadArtifact")
                assert len(upstream) >= 6 and "reason" not in str(upstream)
                for call in calls:
                    call.cancel()
            channel.close()
            # The slots are free: a whole download goes through.
            models.download_model_version_file("Big", 1, "big.bin", tmp_path / "out.bin")
            assert (tmp_path / "out.bin").read_bytes() == big.read_bytes()
            tracking.close()
            models.close()
        finally:
            registry.stop(None).wait()


def test_a_download_refused_by_a_busy_tracking_service_is_refused_alike(tmp_path: Path) -> None:
    """Tracking runs its limit of streams (one, held by a stalled download): the registry's
    download, which needs one there, is refused as the registry refuses its own,
    RESOURCE_EXHAUSTED TOO_MANY_STREAMS, and goes through once the slot is free."""
    with (
        with_big_file(tmp_path, StreamLimits(max_streams=1, idle_seconds=60)) as (tracking, run_id),
        running_registry(tmp_path, tracking.target) as target,
    ):
        models = RegistryClient(target)
        models.create_registered_model("Big")
        models.create_model_version("Big", f"runs:/{run_id}/big", run_id=run_id)
        stub = RegistryServiceStub(grpc.insecure_channel(target))
        request = rpb.DownloadModelVersionFileRequest(name="Big", version=1, path="big.bin")
        with stalled_downloads(tracking.target, run_id, 1) as firsts:
            assert firsts == [FIRST]
            with pytest.raises(grpc.RpcError) as refused:
                list(stub.DownloadModelVersionFile(request, timeout=10))
            assert failure(refused.value) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS")
        models.download_model_version_file("Big", 1, "big.bin", tmp_path / "out.bin")
        assert (tmp_path / "out.bin").stat().st_size == CHUNKS << 20
        models.close()
