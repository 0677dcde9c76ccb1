"""Registering versions from real runs: the registry asks the real tracking service over gRPC."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1 import registry_pb2_grpc as rpb_grpc
from modelreg.tracking.v1 import tracking_pb2 as tpb
from registry_service import config as registry_config
from registry_service import server as registry_server
from tests.integration.registry.conftest import ACTOR, TRACKING_TIMEOUT_SECONDS, Servers

MODEL_FILES = {"MLmodel": b"flavor: test\n", "sub/weights.bin": bytes(range(256)) * 40}


def failure(call: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and the one ErrorInfo reason of a failed call."""
    status = rpc_status.from_call(call)  # type: ignore[arg-type]
    assert status is not None and len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return call.code(), info.reason  # type: ignore[attr-defined]


def upload(servers: Servers, run_id: str, path: str, content: bytes) -> None:
    def messages() -> Iterator[tpb.UploadArtifactRequest]:
        yield tpb.UploadArtifactRequest(metadata=tpb.UploadArtifactMetadata(run_id=run_id, path=path))
        for start in range(0, len(content), 4096):
            yield tpb.UploadArtifactRequest(chunk=content[start : start + 4096])
        end = tpb.UploadArtifactEnd(size=len(content), sha256=hashlib.sha256(content).hexdigest())
        yield tpb.UploadArtifactRequest(end=end)

    servers.tracking_stub.UploadArtifact(messages(), timeout=10)


def trained_run(servers: Servers) -> tpb.Run:
    """A run with params, metrics, a tag and a two-file model under `model/`."""
    run = servers.tracking_stub.CreateRun(tpb.CreateRunRequest(run_name="train"), timeout=10).run
    run_id = run.info.run_id
    servers.tracking_stub.LogBatch(
        tpb.LogBatchRequest(
            run_id=run_id,
            params=[tpb.Param(key="alpha", value="0.5")],
            metrics=[
                tpb.Metric(key="rmse", value=0.9, timestamp=1, step=0),
                tpb.Metric(key="rmse", value=0.4, timestamp=2, step=1),
            ],
            tags={"git_commit": "abc123"},
        ),
        timeout=10,
    )
    for path, content in MODEL_FILES.items():
        upload(servers, run_id, f"model/{path}", content)
    return run


def create_version(servers: Servers, name: str, source: str, run_id: str) -> rpb.ModelVersion:
    request = rpb.CreateModelVersionRequest(name=name, source=source, run_id=run_id)
    return servers.registry_stub.CreateModelVersion(request, timeout=30, metadata=ACTOR).model_version


def version_count(servers: Servers, name: str) -> int:
    found = servers.registry_stub.SearchModelVersions(
        rpb.SearchModelVersionsRequest(filter=f"name = '{name}'"), timeout=10
    )
    return len(found.model_versions)


def test_health_is_serving(servers: Servers) -> None:
    health = health_pb2_grpc.HealthStub(servers.registry_channel)
    for service in ("", "modelreg.registry.v1.RegistryService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_version_from_a_real_run_carries_lineage_that_survives_the_run(servers: Servers, model: str) -> None:
    run = trained_run(servers)
    run_id = run.info.run_id
    version = create_version(servers, model, f"runs:/{run_id}/model", run_id)
    assert (version.version, version.run_id, version.user_id) == (1, run_id, "carol")
    assert version.status == rpb.MODEL_VERSION_STATUS_READY
    lineage = version.lineage
    assert (lineage.run_id, lineage.experiment_id, lineage.run_name, lineage.artifact_path) == (
        run_id,
        run.info.experiment_id,
        "train",
        "model",
    )
    assert dict(lineage.params) == {"alpha": "0.5"}
    assert dict(lineage.metrics) == {"rmse": 0.4}
    assert lineage.run_tags["git_commit"] == "abc123"
    assert {(f.path, f.size, f.sha256) for f in lineage.files} == {
        (path, len(content), hashlib.sha256(content).hexdigest()) for path, content in MODEL_FILES.items()
    }

    # A source under the run's artifact_uri works too; a single file is its own digest.
    single = create_version(servers, model, f"{run.info.artifact_uri}/model/MLmodel", run_id)
    assert [(f.path, f.sha256) for f in single.lineage.files] == [
        ("MLmodel", hashlib.sha256(MODEL_FILES["MLmodel"]).hexdigest())
    ]

    events = servers.registry_stub.ListModelEvents(rpb.ListModelEventsRequest(name=model), timeout=10).events
    assert [(e.action, e.actor) for e in events] == [
        (rpb.EVENT_ACTION_MODEL_CREATED, "carol"),
        (rpb.EVENT_ACTION_VERSION_CREATED, "carol"),
        (rpb.EVENT_ACTION_VERSION_CREATED, "carol"),
    ]

    servers.tracking_stub.DeleteRun(tpb.DeleteRunRequest(run_id=run_id), timeout=10)
    kept = servers.registry_stub.GetModelVersion(
        rpb.GetModelVersionRequest(name=model, version=1), timeout=10
    )
    assert kept.model_version.lineage == lineage
    with pytest.raises(grpc.RpcError) as deleted:
        create_version(servers, model, f"runs:/{run_id}/model", run_id)
    assert failure(deleted.value) == (grpc.StatusCode.FAILED_PRECONDITION, "RUN_DELETED")
    assert version_count(servers, model) == 2


def test_forged_runs_and_foreign_sources_are_refused(servers: Servers, model: str) -> None:
    run_id = trained_run(servers).info.run_id
    other = servers.tracking_stub.CreateRun(tpb.CreateRunRequest(), timeout=10).run
    forged = uuid.uuid4().hex
    cases = [
        (f"runs:/{forged}/model", forged, (grpc.StatusCode.FAILED_PRECONDITION, "RUN_NOT_FOUND")),
        (f"runs:/{other.info.run_id}/model", run_id, (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SOURCE")),
        (f"{other.info.artifact_uri}/model", run_id, (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SOURCE")),
        (
            f"runs:/{run_id}/../{other.info.run_id}/model",
            run_id,
            (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SOURCE"),
        ),
        (
            f"runs:/{run_id}/no-such-model",
            run_id,
            (grpc.StatusCode.FAILED_PRECONDITION, "ARTIFACT_NOT_FOUND"),
        ),
        ("s3://somewhere/else", run_id, (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SOURCE")),
    ]
    for source, claimed_run, expected in cases:
        with pytest.raises(grpc.RpcError) as refused:
            create_version(servers, model, source, claimed_run)
        assert failure(refused.value) == expected, source
    assert version_count(servers, model) == 0


def test_tracking_down_is_unavailable_and_writes_nothing(servers: Servers, model: str) -> None:
    run_id = trained_run(servers).info.run_id
    registered = create_version(servers, model, f"runs:/{run_id}/model", run_id)
    servers.tracking.stop(None).wait()
    # Reads answer from the registry's own copy of the lineage, without tracking.
    read = servers.registry_stub.GetModelVersion(
        rpb.GetModelVersionRequest(name=model, version=1), timeout=10
    )
    assert read.model_version.lineage == registered.lineage
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as unavailable:
        create_version(servers, model, f"runs:/{run_id}/model", run_id)
    elapsed = time.monotonic() - started
    assert failure(unavailable.value) == (grpc.StatusCode.UNAVAILABLE, "TRACKING_UNAVAILABLE")
    # A bound on the retries, not a speed check: far below anything a hang would take.
    assert elapsed < TRACKING_TIMEOUT_SECONDS + 10.0
    assert version_count(servers, model) == 1
    # Versions without a run need no tracking, and the failed attempt burnt no number.
    plain = create_version(servers, model, "s3://bucket/model", "")
    assert (plain.version, plain.HasField("lineage")) == (2, False)


def test_silent_tracking_hits_the_deadline(tmp_path: Path) -> None:
    """A tracking target that accepts connections but never answers: UNAVAILABLE within the timeout."""
    timeout = 1.5
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        registry, port = registry_server.create_server(
            registry_config.Settings(
                host="127.0.0.1",
                port=0,
                database_url=f"sqlite:///{tmp_path / 'registry.db'}",
                tracking_target=f"127.0.0.1:{silent.getsockname()[1]}",
                tracking_timeout_seconds=timeout,
                workers=2,
            )
        )
        registry.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = rpb_grpc.RegistryServiceStub(channel)
                stub.CreateRegisteredModel(rpb.CreateRegisteredModelRequest(name="M"), timeout=10)
                run_id = uuid.uuid4().hex
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as unavailable:
                    stub.CreateModelVersion(
                        rpb.CreateModelVersionRequest(name="M", source=f"runs:/{run_id}/m", run_id=run_id),
                        timeout=30,
                    )
                elapsed = time.monotonic() - started
                assert failure(unavailable.value) == (grpc.StatusCode.UNAVAILABLE, "TRACKING_UNAVAILABLE")
                # Bounded by the registry's deadline, well before the caller's own 30 s one.
                assert elapsed < timeout + 10.0
                versions = stub.SearchModelVersions(rpb.SearchModelVersionsRequest(), timeout=10)
                assert list(versions.model_versions) == []
        finally:
            registry.stop(None).wait()
