"""The compose stack reproduced with local processes.

No Docker engine runs here, so this starts the two services as separate OS processes with exactly
the environment and commands docker-compose.yml gives them — only host names are pointed at this
machine: `postgres` at the local PostgreSQL server, `minio` at an S3-compatible server on loopback
(moto), `tracking` at the tracking process, the `certs` volume at a temporary directory, and the
listeners at 127.0.0.1. It makes the certificates and runs the migrations the way the one-shot
services do, creates a user with the bootstrap admin token, runs the walkthrough example as that
user over TLS, then restarts both processes and checks that nothing was lost.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from examples.house_prices import MODEL_NAME, make_houses
from modelreg.access_client import AccessClient
from modelreg.config import TlsConfig
from modelreg_server.healthcheck import is_serving
from tests.conftest import S3Server
from tests.deploy.compose import ROOT, load_compose, service_environment

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(compose: dict[str, Any], service: str) -> list[str]:
    # The image's ENTRYPOINT is ["python", "-m"]; compose gives the rest.
    return [sys.executable, "-m", *compose["services"][service]["command"]]


@dataclass
class ServiceProcess:
    name: str
    command: list[str]
    env: dict[str, str]
    target: str
    grpc_service: str
    log_path: Path
    tls: TlsConfig
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + 60
        while not is_serving(self.target, self.grpc_service, timeout=1.0, tls=self.tls):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} did not become healthy:\n{self.log_path.read_text()[-4000:]}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            assert self.process.wait(timeout=30) == 0, self.log_path.read_text()[-4000:]
        finally:
            if self.process.poll() is None:
                self.process.kill()


def _with_local_hosts(env: dict[str, str], replacements: dict[str, str], certs: Path) -> dict[str, str]:
    return {key: replacements.get(key, value).replace("/certs/", f"{certs}/") for key, value in env.items()}


@pytest.fixture
def stack(
    database_url_factory: Any, s3_server: S3Server, tmp_path: Path
) -> Iterator[dict[str, ServiceProcess]]:
    compose = load_compose()
    from minio import Minio

    tracking_env = service_environment(compose, "tracking")
    bucket = tracking_env["MODELREG_ARTIFACT_ROOT"].removeprefix("s3://").split("/", 1)[0]
    # The minio-create-bucket one-shot step.
    Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False).make_bucket(bucket)

    base = {key: value for key, value in os.environ.items() if not key.startswith("MODELREG_")}
    # The certs one-shot step, its volume a directory here.
    certs = tmp_path / "certs"
    certs_command = [arg.replace("/certs", str(certs)) for arg in _command(compose, "certs")]
    for _ in range(2):  # run again, as `docker compose up` does: the set is kept
        made = subprocess.run(certs_command, env=base, capture_output=True, cwd=ROOT)
        assert made.returncode == 0, made.stderr.decode()
    tls = TlsConfig(ca_file=str(certs / "ca.pem"))

    tracking_port, registry_port = _free_port(), _free_port()
    auth_database = database_url_factory("postgres")
    tracking = _with_local_hosts(
        tracking_env,
        {
            "MODELREG_TRACKING_HOST": "127.0.0.1",
            "MODELREG_AUTH_DATABASE_URL": auth_database,
            "MODELREG_TRACKING_DATABASE_URL": database_url_factory("postgres"),
            "MODELREG_S3_ENDPOINT": s3_server.endpoint,
            "MODELREG_S3_ACCESS_KEY": s3_server.access_key,
            "MODELREG_S3_SECRET_KEY": s3_server.secret_key,
            "MODELREG_TRACKING_PORT": str(tracking_port),
            "MODELREG_METRICS_PORT": str(_free_port()),
        },
        certs,
    )
    registry = _with_local_hosts(
        service_environment(compose, "registry"),
        {
            "MODELREG_REGISTRY_HOST": "127.0.0.1",
            "MODELREG_AUTH_DATABASE_URL": auth_database,
            "MODELREG_REGISTRY_DATABASE_URL": database_url_factory("postgres"),
            "MODELREG_TRACKING_TARGET": f"grpcs://127.0.0.1:{tracking_port}",
            "MODELREG_REGISTRY_PORT": str(registry_port),
            "MODELREG_METRICS_PORT": str(_free_port()),
        },
        certs,
    )
    for migrate, env in (("tracking-migrate", tracking), ("registry-migrate", registry)):
        result = subprocess.run(
            _command(compose, migrate), env={**base, **env}, capture_output=True, cwd=ROOT
        )
        assert result.returncode == 0, result.stderr.decode()

    processes = {
        "tracking": ServiceProcess(
            "tracking",
            _command(compose, "tracking"),
            {**base, **tracking},
            f"grpcs://127.0.0.1:{tracking_port}",
            "modelreg.tracking.v1.TrackingService",
            tmp_path / "tracking.log",
            tls,
        ),
        "registry": ServiceProcess(
            "registry",
            _command(compose, "registry"),
            {**base, **registry},
            f"grpcs://127.0.0.1:{registry_port}",
            "modelreg.registry.v1.RegistryService",
            tmp_path / "registry.log",
            tls,
        ),
    }
    try:
        processes["tracking"].start()
        processes["registry"].start()
        yield processes
    finally:
        for process in reversed(processes.values()):
            process.stop()


def _snapshot(client: Any) -> dict[str, Any]:
    versions = sorted(
        client.search_model_versions(filter_string=f"name='{MODEL_NAME}'", include_lineage=True),
        key=lambda v: v.version,
    )
    history = list(client.get_model_history(MODEL_NAME))
    return {
        "versions": [(v.version, v.current_stage, v.run_id, v.source) for v in versions],
        "digests": [tuple(sorted((f.path, f.sha256) for f in v.lineage.files)) for v in versions],
        "runs": {v.run_id: client.get_run(v.run_id).data.metrics for v in versions},
        "history": [(e.action, e.version, e.from_value, e.to_value) for e in history],
    }


def _json_calls(log_path: Path) -> list[dict[str, Any]]:
    """The call lines of a service log; compose sets MODELREG_LOG_FORMAT=json, so every line is JSON."""
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return [entry for entry in entries if entry["logger"] == "modelreg.calls"]


def _assert_registrations_traced_in_json_logs(stack: dict[str, ServiceProcess]) -> None:
    registrations = [
        call
        for call in _json_calls(stack["registry"].log_path)
        if call["method"] == "CreateModelVersion" and call["code"] == "OK"
    ]
    assert len(registrations) == 2
    tracking = _json_calls(stack["tracking"].log_path)
    for registration in registrations:
        followed = [c for c in tracking if c["request_id"] == registration["request_id"]]
        assert {"GetRun", "SealArtifacts"} <= {c["method"] for c in followed}
        # The registry asked as its own service identity, on behalf of the user who registered.
        assert {(c["actor"], c["via"]) for c in followed} == {(registration["actor"], "modelreg-registry")}


def test_walkthrough_through_the_stack_survives_a_restart(
    stack: dict[str, ServiceProcess], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import modelreg

    registry = stack["registry"]
    with AccessClient(
        registry.target, token=registry.env["MODELREG_BOOTSTRAP_ADMIN_TOKEN"], tls=registry.tls
    ) as admin:
        admin.create_user("data-scientist")
        token = admin.create_token("data-scientist").secret
    # The example logs to the Default experiment, which (like any other) needs EDIT to log to.
    with modelreg.Client(
        stack["tracking"].target,
        registry.target,
        token=registry.env["MODELREG_BOOTSTRAP_ADMIN_TOKEN"],
        tls=registry.tls,
    ) as admin_client:
        admin_client.set_experiment_permission("0", "EDIT", user="data-scientist")
    targets = {
        "MODELREG_TRACKING_URI": stack["tracking"].target,
        "MODELREG_REGISTRY_URI": registry.target,
        "MODELREG_CA_FILE": str(registry.tls.ca_file),
        "MODELREG_TOKEN": token,
    }
    for key, value in targets.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(modelreg.exceptions.Unauthenticated):
        modelreg.Client(token="").search_experiments()
    example = subprocess.run(
        [sys.executable, "examples/house_prices.py"],
        env={**os.environ, **targets, "MODELREG_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )
    assert example.returncode == 0, example.stderr.decode()

    client = modelreg.Client(
        tracking_uri=targets["MODELREG_TRACKING_URI"], registry_uri=targets["MODELREG_REGISTRY_URI"]
    )
    before = _snapshot(client)
    assert [(v[0], v[1]) for v in before["versions"]] == [(1, "Archived"), (2, "Production")]
    assert {event.actor for event in client.get_model_history(MODEL_NAME)} == {"data-scientist"}
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "cache-before"))
    features, _ = make_houses(rows=5, seed=7)  # the example's own columns, fresh rows
    predictions_before = modelreg.pyfunc.load_model(f"models:/{MODEL_NAME}/Production").predict(features)

    # Both services log calls and expose Prometheus metrics, as compose turns them on.
    metrics_port = stack["registry"].env["MODELREG_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        assert b'modelreg_rpc_calls_total{code="OK",method="CreateModelVersion"' in response.read()

    _assert_registrations_traced_in_json_logs(stack)

    for name in ("registry", "tracking"):
        stack[name].stop()
    for name in ("tracking", "registry"):
        stack[name].start()

    client = modelreg.Client(
        tracking_uri=targets["MODELREG_TRACKING_URI"], registry_uri=targets["MODELREG_REGISTRY_URI"]
    )
    assert _snapshot(client) == before
    monkeypatch.setenv(
        "MODELREG_CACHE_DIR", str(tmp_path / "cache-after")
    )  # a cold cache re-downloads from S3
    predictions_after = modelreg.pyfunc.load_model(f"models:/{MODEL_NAME}/Production").predict(features)
    assert list(predictions_after) == list(predictions_before)


def test_the_mlflow_endpoint_as_compose_runs_it_relays_callers_over_tls(
    stack: dict[str, ServiceProcess], tmp_path: Path
) -> None:
    """The `mlflow` service's command and environment, its service names pointed at the processes:
    HTTPS with the stack's certificate, both services reached over TLS, each caller's own token."""
    import httpx

    compose = load_compose()
    certs = Path(str(stack["registry"].tls.ca_file)).parent
    port = _free_port()
    env = _with_local_hosts(
        service_environment(compose, "mlflow"),
        {
            "MODELREG_MLFLOW_HOST": "127.0.0.1",
            "MODELREG_MLFLOW_PORT": str(port),
            "MODELREG_TRACKING_URI": stack["tracking"].target,
            "MODELREG_REGISTRY_URI": stack["registry"].target,
        },
        certs,
    )
    base = {key: value for key, value in os.environ.items() if not key.startswith("MODELREG_")}
    log = (tmp_path / "mlflow.log").open("wb")
    process = subprocess.Popen(
        _command(compose, "mlflow"), env={**base, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
    )
    bootstrap = stack["registry"].env["MODELREG_BOOTSTRAP_ADMIN_TOKEN"]
    try:
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=ssl.create_default_context(cafile=str(certs / "ca.pem")),
        ) as http:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (tmp_path / "mlflow.log").read_text()
                try:
                    if http.get("/health").text == "OK":
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, (tmp_path / "mlflow.log").read_text()
                    time.sleep(0.2)
            anonymous = http.post("/api/2.0/mlflow/experiments/create", json={"name": "anonymous"})
            assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, "UNAUTHENTICATED")
            created = http.post(
                "/api/2.0/mlflow/experiments/create",
                json={"name": "through-the-endpoint"},
                headers={"authorization": f"Bearer {bootstrap}"},
            )
            assert created.status_code == 200, created.text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0, (tmp_path / "mlflow.log").read_text()
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    import modelreg

    with modelreg.Client(
        stack["tracking"].target, stack["registry"].target, token=bootstrap, tls=stack["registry"].tls
    ) as client:
        assert client.get_experiment(created.json()["experiment_id"]).name == "through-the-endpoint"


def test_upgrade_is_idempotent_and_safe_from_two_processes(database_url_factory: Any) -> None:
    url = database_url_factory("postgres")
    env = {**os.environ, "MODELREG_TRACKING_DATABASE_URL": url}
    command = [sys.executable, "-m", "tracking_service", "db", "upgrade"]
    racing = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, cwd=ROOT) for _ in range(2)]
    for process in racing:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    again = subprocess.run(command, env=env, capture_output=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr.decode()
    with sa.create_engine(url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
