"""The client's retry policy: which calls carry an idempotency key, which errors are retried, and
how long the pauses grow."""

from __future__ import annotations

import socket

import pytest

from modelreg._grpc import RetryPolicy, is_write
from modelreg.access.v1 import access_pb2
from modelreg.access_client import AccessClient
from modelreg.config import ClientSettings
from modelreg.exceptions import ModelregError, Unavailable
from modelreg.registry.v1 import registry_pb2
from modelreg.tracking.v1 import tracking_pb2

READS = {"GetRun", "SearchRuns", "GetMetricHistory", "DownloadArtifact", "SealArtifacts", "WhoAmI"}
WRITES = {"CreateRun", "LogMetric", "LogMetrics", "LogBatch", "UpdateRun", "DeleteRun", "CreateModelVersion"}


def test_writes_and_only_writes_carry_a_key() -> None:
    methods = {
        method.name
        for module in (tracking_pb2, registry_pb2, access_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods >= READS | WRITES
    assert not any(is_write(name) for name in READS)
    assert all(is_write(name) for name in WRITES)


def _error(code: str, reason: str = "") -> ModelregError:
    return ModelregError("x", code=code, reason=reason)


def test_retried_errors() -> None:
    policy = RetryPolicy()
    assert policy.retries(_error("UNAVAILABLE"), stream=False)
    assert policy.retries(_error("UNAVAILABLE", "WRITE_IN_PROGRESS"), stream=True)
    assert policy.retries(_error("RESOURCE_EXHAUSTED", "TOO_MANY_STREAMS"), stream=True)
    assert not policy.retries(_error("RESOURCE_EXHAUSTED", "TOO_MANY_STREAMS"), stream=False)
    for code in ("INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "INTERNAL", "NOT_FOUND", "CANCELLED"):
        assert not policy.retries(_error(code), stream=True)


def test_pauses_grow_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    pauses = policy.pauses()
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    for ceiling in ceilings:
        pause = next(pauses)
        assert ceiling / 2 <= pause <= ceiling


def test_retry_seconds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELREG_RETRY_SECONDS", "0")
    assert ClientSettings.from_env().retry_seconds == 0
    monkeypatch.delenv("MODELREG_RETRY_SECONDS")
    assert ClientSettings.from_env().retry_seconds == 60
    for bad in ("-1", "soon", "inf"):
        monkeypatch.setenv("MODELREG_RETRY_SECONDS", bad)
        with pytest.raises(ValueError, match="MODELREG_RETRY_SECONDS"):
            ClientSettings.from_env()


def test_the_access_client_retries_reads_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The access service keeps no idempotency keys: a lost CreateToken answer retried would
    create a second token."""
    monkeypatch.setenv("MODELREG_RETRY_SECONDS", "0.5")
    with socket.socket() as closed:  # a port nothing listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{closed.getsockname()[1]}"
    with AccessClient(target) as access:
        with pytest.raises(Unavailable):
            access.create_user("ana")
        assert access._rpc.retried == 0
        with pytest.raises(Unavailable):
            access.whoami()
        assert access._rpc.retried >= 2
