"""`modelreg server` as a real process: both services come up SERVING and stop on a signal, a taken
port stops it before anything starts, and its services do not outlive it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import psutil
import pytest

import modelreg
from modelreg import RegistryClient, TlsConfig, TrackingClient
from modelreg_server import launcher
from modelreg_server.healthcheck import is_serving
from modelreg_server.launcher import REGISTRY_SERVICE, TRACKING_SERVICE, free_port
from modelreg_server.tls import write_local_certificates
from tests.servers import register_a_run, running_tracking


def launch(
    data_dir: Path,
    tracking_port: int,
    registry_port: int,
    log: Path,
    modelreg_env: Mapping[str, str] = {},
    mlflow_port: int = 0,
) -> subprocess.Popen[str]:
    """``modelreg server``; without the MLflow endpoint unless given its port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")} | dict(modelreg_env)
    command = [sys.executable, "-m", "modelreg.cli", "server", "--data-dir", str(data_dir)]
    command += ["--tracking-port", str(tracking_port), "--registry-port", str(registry_port)]
    command += ["--mlflow-port", str(mlflow_port)]
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


@pytest.mark.parametrize("taken", ["tracking", "registry"])
def test_a_taken_port_fails_at_once_naming_the_flag_and_starts_nothing(tmp_path: Path, taken: str) -> None:
    with socket.socket() as holder:  # another process's server, as far as the launcher can tell
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        ports = {"tracking": free_port(), "registry": free_port(), taken: holder.getsockname()[1]}
        started = time.monotonic()
        process = launch(tmp_path / "data", ports["tracking"], ports["registry"], tmp_path / "server.log")
        try:
            out, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        took = time.monotonic() - started
    assert process.returncode == 1
    assert "listening" not in out
    assert (tmp_path / "server.log").read_text() == (
        f"error: PORT_UNAVAILABLE: the {taken} service cannot listen on 127.0.0.1:{ports[taken]}: "
        f"Address already in use: choose another with --{taken}-port\n"
    )
    assert took < 10  # an interpreter start, not a service start-up and a health-check timeout
    assert not (tmp_path / "data").exists()


def test_a_port_taken_after_the_check_is_not_mistaken_for_the_services_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another tracking service takes the port between the check and the child's bind: it answers
    SERVING, but start() fails rather than report it as the launcher's own."""
    # The check saw the port free (raising=False: main, before the check existed, fails below instead).
    monkeypatch.setattr(launcher, "port_unavailable", lambda host, port: None, raising=False)
    with running_tracking(tmp_path / "other") as (other, _):
        config = launcher.LaunchConfig(
            data_dir=tmp_path / "data",
            tracking_port=int(other.rsplit(":", 1)[1]),
            registry_port=free_port(),
            log_dir=tmp_path / "logs",
            startup_timeout=30,
            base_env={k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")},
        )
        services = launcher.Services(config)
        try:
            with pytest.raises(launcher.LaunchError, match="tracking service exited with code 1"):
                services.start()
        finally:
            services.stop()
    assert "registry" not in services.processes
    assert "cannot listen on" in (tmp_path / "logs" / "tracking.log").read_text()


def test_services_die_with_a_launcher_killed_by_sigkill(tmp_path: Path) -> None:
    tracking_port, registry_port = free_port(), free_port()
    process = launch(tmp_path / "data", tracking_port, registry_port, tmp_path / "server.log")
    children: list[psutil.Process] = []
    try:
        wait_serving(f"127.0.0.1:{registry_port}", REGISTRY_SERVICE, process)
        children = psutil.Process(process.pid).children()
        assert len(children) == 2
        process.kill()
        process.wait()
        deadline = time.monotonic() + 5
        while launcher.port_unavailable("127.0.0.1", tracking_port) or launcher.port_unavailable(
            "127.0.0.1", registry_port
        ):
            assert time.monotonic() < deadline, "a service still holds its port 5 s after the launcher died"
            time.sleep(0.1)
    finally:
        process.kill()
        for child in children:  # only should the test fail: they are gone otherwise
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
