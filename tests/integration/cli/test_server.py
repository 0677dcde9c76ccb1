"""`modelreg server` as a real process: both services come up SERVING and stop on a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

import modelreg
from modelreg import RegistryClient, TlsConfig, TrackingClient
from modelreg_server.healthcheck import is_serving
from modelreg_server.launcher import REGISTRY_SERVICE, TRACKING_SERVICE, free_port
from modelreg_server.tls import write_local_certificates
from tests.servers import register_a_run


def launch(
    data_dir: Path, tracking_port: int, registry_port: int, log: Path, modelreg_env: Mapping[str, str] = {}
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")} | dict(modelreg_env)
    command = [sys.executable, "-m", "modelreg.cli", "server", "--data-dir", str(data_dir)]
    command += ["--tracking-port", str(tracking_port), "--registry-port", str(registry_port)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, start_new_session=True
    )


def wait_serving(
    target: str,
    service: str,
    process: subprocess.Popen[str],
    timeout: float = 60.0,
    tls: TlsConfig | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not is_serving(target, service, timeout=1.0, tls=tls):
        assert process.poll() is None, "modelreg server exited during startup"
        assert time.monotonic() < deadline, f"{service} not SERVING on {target}"
        time.sleep(0.2)


def test_server_starts_both_services_and_stops_them_on_ctrl_c(tmp_path: Path) -> None:
    tracking_port, registry_port = free_port(), free_port()
    tracking, registry = f"127.0.0.1:{tracking_port}", f"127.0.0.1:{registry_port}"
    process = launch(tmp_path / "data", tracking_port, registry_port, tmp_path / "server.log")
    try:
        wait_serving(registry, REGISTRY_SERVICE, process)
        assert is_serving(tracking, TRACKING_SERVICE)
        with modelreg.Client(tracking, registry) as client:
            assert [x.name for x in client.search_experiments()] == ["Default"]
            assert list(client.search_registered_models()) == []
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, (tmp_path / "server.log").read_text()
    assert f"tracking  listening on {tracking}" in out
    assert f"registry  listening on {registry}" in out
    assert not is_serving(tracking) and not is_serving(registry)
    assert {p.name for p in (tmp_path / "data").iterdir()} >= {"tracking.db", "registry.db", "artifacts"}


def test_server_with_a_certificate_serves_tls_and_the_registry_reaches_tracking_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certs = write_local_certificates(tmp_path / "certs")
    env = {
        "MODELREG_TLS_CERT_FILE": str(certs["server.pem"]),
        "MODELREG_TLS_KEY_FILE": str(certs["server-key.pem"]),
        "MODELREG_CA_FILE": str(certs["ca.pem"]),
    }
    tracking_port, registry_port = free_port(), free_port()
    tracking, registry = f"grpcs://127.0.0.1:{tracking_port}", f"grpcs://127.0.0.1:{registry_port}"
    process = launch(tmp_path / "data", tracking_port, registry_port, tmp_path / "server.log", env)
    try:
        wait_serving(registry, REGISTRY_SERVICE, process, tls=TlsConfig(ca_file=env["MODELREG_CA_FILE"]))
        assert not is_serving(f"127.0.0.1:{tracking_port}")  # plaintext is refused
        monkeypatch.setenv("MODELREG_CA_FILE", env["MODELREG_CA_FILE"])
        with (
            TrackingClient(tracking, timeout=5) as tracking_client,
            RegistryClient(registry, timeout=5) as registry_client,
        ):
            assert register_a_run(tracking_client, registry_client, tmp_path).version == 1
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, (tmp_path / "server.log").read_text()
    assert f"tracking  listening on {tracking}" in out
    assert f"registry  listening on {registry}" in out


def test_server_that_cannot_start_stops_what_it_started(tmp_path: Path) -> None:
    tracking_port = free_port()
    with socket.socket() as taken:  # the registry's port is busy: the registry cannot bind
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        registry_port = taken.getsockname()[1]
        process = launch(tmp_path / "data", tracking_port, registry_port, tmp_path / "server.log")
        try:
            process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 1
    assert "error: SERVER_START_FAILED: registry service" in (tmp_path / "server.log").read_text()
    assert not is_serving(f"127.0.0.1:{tracking_port}")
