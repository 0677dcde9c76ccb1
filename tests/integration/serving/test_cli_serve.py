"""`modelreg serve` as a user runs it: a subprocess on a free loopback port over real services, one
process and two workers, stopped with SIGTERM; and a model that cannot be served."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from modelreg.pyfunc import PyFuncModel
from tests.conftest import _free_port
from tests.servers import Services

pytest.importorskip(
    "modelreg.serving.slot", reason="the model slot (modelreg.serving.slot) is not in this tree"
)

MODELREG = str(Path(sys.executable).parent / "modelreg")
# Loading and checking the model, then uvicorn's start: bounded so a hung start fails the test.
START_SECONDS = 120


def serve(services: Services, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    env = {
        **os.environ,
        "MODELREG_TRACKING_URI": services.tracking,
        "MODELREG_REGISTRY_URI": services.registry,
        "MODELREG_CACHE_DIR": str(tmp_path / "cache"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MODELREG, "serve", *args, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    return process, f"http://127.0.0.1:{port}", log


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/ping").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"modelreg serve did not answer /ping: {log.read_text()}")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_answers_then_stops_on_sigterm(
    services: Services, model: PyFuncModel, tmp_path: Path, workers: str
) -> None:
    process, url, log = serve(services, tmp_path, "models:/HousePricePredictor/1", "--workers", workers)
    try:
        wait_ready(process, url, log)
        body = {"inputs": [{"square_feet": 1500.0, "bedrooms": 3, "age": 10.0}]}
        response = httpx.post(f"{url}/invocations", json=body, headers={"x-request-id": "cli-test"})
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 1
        assert response.headers["x-modelreg-model-version"] == "1"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert code in (0, -signal.SIGTERM), log.read_text()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "cli-test" and line.get("status") == 200 for line in lines)
    assert any(line.get("event") == "loaded" for line in lines)


def test_a_model_that_cannot_be_served_fails_with_one_line(services: Services, tmp_path: Path) -> None:
    process, _, log = serve(services, tmp_path, "models:/NoSuchModel/1")
    assert process.wait(START_SECONDS) == 1
    assert "error: SERVING_LOAD_FAILED:" in log.read_text()
    assert "NoSuchModel" in log.read_text()
