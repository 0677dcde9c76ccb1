"""Request ids across services, per-call log lines (text and JSON) and the Prometheus endpoints."""

from __future__ import annotations

import io
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from modelreg import RegistryClient, TrackingClient, exceptions
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1 import registry_pb2_grpc as rpb_grpc
from modelreg_server.observability import JsonFormatter
from tests.integration.ops.conftest import OpsStack, scrape

MODEL_FILES = {"model.bin": b"\x00weights" * 1000, "MLmodel": b"flavor: test\n"}


def _run_with_model(stack: OpsStack, tmp_path: Path) -> str:
    """A run holding a model directory (two files), so a registration stats and lists it."""
    local = tmp_path / "model"
    local.mkdir()
    for name, content in MODEL_FILES.items():
        (local / name).write_bytes(content)
    tracking = TrackingClient(stack.tracking_target)
    try:
        run_id = tracking.create_run().info.run_id
        tracking.log_artifacts(run_id, local, "model")
    finally:
        tracking.close()
    return run_id


def _register(stack: OpsStack, run_id: str, request_id: str) -> None:
    registry = RegistryClient(stack.registry_target)
    try:
        registry.create_registered_model("Ops")
    finally:
        registry.close()
    with grpc.insecure_channel(stack.registry_target) as channel:
        rpb_grpc.RegistryServiceStub(channel).CreateModelVersion(
            rpb.CreateModelVersionRequest(name="Ops", source=f"runs:/{run_id}/model", run_id=run_id),
            metadata=(("x-request-id", request_id),),
            timeout=10,
        )


def _calls(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    return [record.call for record in records if isinstance(getattr(record, "call", None), dict)]


def test_a_request_id_follows_a_registration_into_the_tracking_service(
    ops_stack: OpsStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = _run_with_model(ops_stack, tmp_path)
    request_id = f"ops-{uuid.uuid4().hex}"
    with caplog.at_level(logging.INFO, logger="modelreg.calls"):
        _register(ops_stack, run_id, request_id)

    traced = {
        (c["service"], c["method"], c["code"])
        for c in _calls(caplog.records)
        if c["request_id"] == request_id
    }
    assert traced == {
        ("registry", "CreateModelVersion", "OK"),
        ("tracking", "GetRun", "OK"),
        ("tracking", "SealArtifacts", "OK"),
    }
    # The audit history keeps the id, so an event leads to these log lines.
    with sa.create_engine(ops_stack.registry_database_url).connect() as connection:
        events = connection.execute(sa.text("SELECT action, request_id FROM model_events ORDER BY id")).all()
    assert [tuple(event) for event in events][-1] == ("VERSION_CREATED", request_id)
    # Calls made without an id get fresh ones, never the traced id.
    others = [c for c in _calls(caplog.records) if c["method"] == "CreateRegisteredModel"]
    assert others and all(c["request_id"] not in ("", request_id) for c in others)


def test_json_log_format_writes_one_object_per_call(
    ops_stack: OpsStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    calls = logging.getLogger("modelreg.calls")
    calls.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="modelreg.calls"):
            _register(ops_stack, _run_with_model(ops_stack, tmp_path), "json-logs")
    finally:
        calls.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    registration = [line for line in lines if line["request_id"] == "json-logs"]
    assert {line["method"] for line in registration} == {
        "CreateModelVersion",
        "GetRun",
        "SealArtifacts",
    }
    assert all(
        {"time", "level", "logger", "service", "code", "duration_ms", "actor"} <= set(line) for line in lines
    )


def test_metrics_endpoints_count_calls_latency_bytes_and_pool(ops_stack: OpsStack, tmp_path: Path) -> None:
    run_id = _run_with_model(ops_stack, tmp_path)
    _register(ops_stack, run_id, "metrics")
    tracking = TrackingClient(ops_stack.tracking_target)
    registry = RegistryClient(ops_stack.registry_target)
    try:
        tracking.download_artifacts(run_id, "model", tmp_path / "downloaded")
        with pytest.raises(exceptions.NotFound) as missing:
            registry.get_registered_model("Missing")
        assert missing.value.reason == "REGISTERED_MODEL_NOT_FOUND"
    finally:
        tracking.close()
        registry.close()

    registry_samples = scrape(ops_stack.registry_metrics_port)
    tracking_samples = scrape(ops_stack.tracking_metrics_port)

    def calls(samples: dict[Any, float], service: str, method: str, code: str) -> float:
        labels = frozenset({"service": service, "method": method, "code": code}.items())
        return samples.get(("modelreg_rpc_calls_total", labels), 0.0)

    assert calls(registry_samples, "registry", "CreateModelVersion", "OK") == 1
    assert calls(registry_samples, "registry", "GetRegisteredModel", "NOT_FOUND") == 1
    assert calls(tracking_samples, "tracking", "GetRun", "OK") == 1
    assert calls(tracking_samples, "tracking", "UploadArtifact", "OK") == len(MODEL_FILES)
    latency = frozenset({"service": "registry", "method": "CreateModelVersion", "code": "OK"}.items())
    assert registry_samples[("modelreg_rpc_duration_seconds_count", latency)] == 1
    assert registry_samples[("modelreg_rpc_duration_seconds_sum", latency)] > 0
    assert registry_samples[("modelreg_rpc_duration_seconds_bucket", latency | {("le", "+Inf")})] == 1

    total = sum(len(content) for content in MODEL_FILES.values())
    for direction in ("in", "out"):
        labels = frozenset({"service": "tracking", "direction": direction}.items())
        assert tracking_samples[("modelreg_artifact_bytes_total", labels)] == total

    for service, samples in (("tracking", tracking_samples), ("registry", registry_samples)):
        labels = frozenset({("service", service)})
        assert samples[("modelreg_db_pool_size", labels)] >= 1
        assert samples[("modelreg_db_pool_checked_out", labels)] == 0
