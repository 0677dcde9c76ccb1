"""The MLflow endpoint as a process: beside both services under `modelreg server --mlflow-port`, and
alone under `modelreg mlflow-server`; ports checked before anything starts, nothing outliving the
launcher, and "listening" said only of a socket that is the endpoint's own."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from mlflow_gateway.settings import GatewaySettings
from modelreg import TrackingClient, cli
from modelreg_server import launcher
from modelreg_server.bootstrap import port_unavailable
from modelreg_server.launcher import REGISTRY_SERVICE, free_port
from modelreg_server.tls import write_local_certificates
from tests.integration.cli.test_server import launch, wait_serving
from tests.servers import running_services


def wait_healthy(
    url: str, process: subprocess.Popen[str], timeout: float = 60.0, verify: ssl.SSLContext | bool = True
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "the process exited during startup"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1, verify=verify).text == "OK":
                return
        assert time.monotonic() < deadline, f"{url} not healthy"
        time.sleep(0.2)


def test_server_starts_the_endpoint_beside_both_services_and_stops_all_three(tmp_path: Path) -> None:
    tracking_port, registry_port, mlflow_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{mlflow_port}"
    process = launch(
        tmp_path / "data", tracking_port, registry_port, tmp_path / "server.log", {}, mlflow_port
    )
    try:
        wait_healthy(url, process)
        created = httpx.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "through-rest"})
        assert created.status_code == 200, created.text
        with TrackingClient(f"127.0.0.1:{tracking_port}") as tracking:
            experiment = tracking.get_experiment(created.json()["experiment_id"])
        assert experiment.name == "through-rest"
        children = psutil.Process(process.pid).children()
        assert len(children) == 3
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, (tmp_path / "server.log").read_text()
    assert f"mlflow    listening on {url} (MLFLOW_TRACKING_URI)" in out
    assert port_unavailable("127.0.0.1", mlflow_port) is None
    assert not any(child.is_running() for child in children)


def test_with_certificates_the_endpoint_serves_https_and_reaches_the_tls_services(tmp_path: Path) -> None:
    certs = write_local_certificates(tmp_path / "certs")
    env = {
        "MODELREG_TLS_CERT_FILE": str(certs["server.pem"]),
        "MODELREG_TLS_KEY_FILE": str(certs["server-key.pem"]),
        "MODELREG_CA_FILE": str(certs["ca.pem"]),
        "MODELREG_MLFLOW_TLS_CERT_FILE": str(certs["server.pem"]),
        "MODELREG_MLFLOW_TLS_KEY_FILE": str(certs["server-key.pem"]),
    }
    mlflow_port = free_port()
    url = f"https://127.0.0.1:{mlflow_port}"
    process = launch(tmp_path / "data", free_port(), free_port(), tmp_path / "server.log", env, mlflow_port)
    try:
        verify = ssl.create_default_context(cafile=str(certs["ca.pem"]))
        wait_healthy(url, process, verify=verify)
        # The endpoint's call to the tracking service went over TLS, trusting MODELREG_CA_FILE.
        answer = httpx.get(
            f"{url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}, verify=verify
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["experiment"]["name"] == "Default"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, (tmp_path / "server.log").read_text()
    assert f"mlflow    listening on {url} (MLFLOW_TRACKING_URI)" in out


def test_a_taken_mlflow_port_fails_at_once_naming_the_flag_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        process = launch(tmp_path / "data", free_port(), free_port(), tmp_path / "server.log", {}, taken)
        try:
            out, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 1
    assert "listening" not in out
    assert (tmp_path / "server.log").read_text() == (
        f"error: PORT_UNAVAILABLE: the mlflow service cannot listen on 127.0.0.1:{taken}: "
        "Address already in use: choose another with --mlflow-port\n"
    )
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("same", ["--tracking-port", "--registry-port"])
def test_the_endpoint_may_not_share_a_services_port(capsys: pytest.CaptureFixture[str], same: str) -> None:
    ports = {"--tracking-port": "50061", "--registry-port": "50062"}
    argv = [
        "server",
        *(x for flag, port in ports.items() for x in (flag, port)),
        "--mlflow-port",
        ports[same],
    ]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"error: SAME_PORT: {same} and --mlflow-port are both {ports[same]}\n"


@contextlib.contextmanager
def impostor_answering_health(port: int) -> Iterator[None]:
    """Another process's HTTP server on ``port`` that answers ``GET /health`` with OK."""

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_port_taken_after_the_check_is_not_mistaken_for_the_endpoints_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another server takes the endpoint's port between the check and the child's bind, and answers
    /health: start() fails rather than report it as the launcher's own."""
    monkeypatch.setattr(launcher, "port_unavailable", lambda host, port: None)
    mlflow_port = free_port()
    config = launcher.LaunchConfig(
        data_dir=tmp_path / "data",
        tracking_port=free_port(),
        registry_port=free_port(),
        mlflow_port=mlflow_port,
        log_dir=tmp_path / "logs",
        base_env={k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")},
    )
    services = launcher.Services(config)
    with impostor_answering_health(mlflow_port):
        try:
            with pytest.raises(launcher.LaunchError, match="mlflow service exited with code 3"):
                services.start()
        finally:
            services.stop()
    assert services.processes == {}
    assert "address already in use" in (tmp_path / "logs" / "mlflow.log").read_text()


def test_the_endpoint_dies_with_a_launcher_killed_by_sigkill(tmp_path: Path) -> None:
    tracking_port, registry_port, mlflow_port = free_port(), free_port(), free_port()
    process = launch(
        tmp_path / "data", tracking_port, registry_port, tmp_path / "server.log", {}, mlflow_port
    )
    children: list[psutil.Process] = []
    try:
        wait_serving(f"127.0.0.1:{registry_port}", REGISTRY_SERVICE, process)
        wait_healthy(f"http://127.0.0.1:{mlflow_port}", process)
        children = psutil.Process(process.pid).children()
        assert len(children) == 3
        process.kill()
        process.wait()
        _, alive = psutil.wait_procs(children, timeout=20)
        assert alive == [], f"{alive} outlived the launcher"
    finally:
        process.kill()
        for child in children:  # only should the test fail: they are gone otherwise
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def test_mlflow_server_serves_in_front_of_running_services_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    with running_services(tmp_path) as services:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
        env |= {"MODELREG_TRACKING_URI": services.tracking}  # the flag below names the registry
        command = [sys.executable, "-m", "modelreg.cli", "mlflow-server", "--port", str(port)]
        command += ["--registry-uri", services.registry]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, process)
            answer = httpx.get(f"{url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["experiment"]["name"] == "Default"
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err
    assert out.splitlines() == [
        f"mlflow    listening on {url} (MLFLOW_TRACKING_URI), calling",
        f"tracking  {services.tracking}",
        f"registry  {services.registry}",
        "Ctrl-C stops it.",
        "stopped",
    ]


def test_mlflow_server_on_a_taken_port_says_so_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        assert cli.main(["mlflow-server", "--port", str(taken)]) == 1
    assert capsys.readouterr().err == (
        f"error: PORT_UNAVAILABLE: cannot listen on 127.0.0.1:{taken}: Address already in use: "
        "choose another with --port\n"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODELREG_MLFLOW_TLS_CERT_FILE": "cert.pem"}, "MODELREG_MLFLOW_TLS_KEY_FILE is not set"),
        ({"MODELREG_MLFLOW_TLS_KEY_FILE": "key.pem"}, "MODELREG_MLFLOW_TLS_CERT_FILE is not set"),
        ({"MODELREG_MLFLOW_PORT": "0"}, "MODELREG_MLFLOW_PORT must be between 1 and 65535"),
        ({"MODELREG_MLFLOW_PORT": "http"}, "MODELREG_MLFLOW_PORT must be an integer"),
    ],
)
def test_settings_that_cannot_serve_are_refused_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        GatewaySettings.from_env(env)
