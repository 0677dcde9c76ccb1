"""The two systems an MLflow user's script runs against, each started once per session:

- MLflow: the real ``mlflow`` package in the benchmark's venv (.venv-bench-mlflow, built by
  bench/run.py's ``ensure_mlflow_venv`` when missing or stale), its ``mlflow server`` on loopback
  with a SQLite backend store and proxied local artifacts (``--serve-artifacts``).
- modelreg: both real services in-process (tests/servers.py); the script runs in the project
  venv with ``shim/`` first on ``sys.path``, so ``import mlflow`` is ``import modelreg as mlflow``.

The MLflow side is the ``mlflow`` backend of MODELREG_REQUIRE_BACKENDS: it skips only when its venv
cannot be built because PyPI is unreachable, and a run that requires it fails then instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import skip_or_fail
from tests.servers import running_services

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
SHIM = HERE / "shim"
# Bounds on a hung server or script, not speed figures: on a loaded 2-core machine MLflow's server
# took over 240 s for the sweep script (about 20 s when idle).
SERVER_START_SECONDS = 300
SCRIPT_SECONDS = 900

Summary = dict[str, Any]
RunScript = Callable[[str], Summary]


def _bench_run() -> ModuleType:
    """bench/run.py, which imports its sibling modules by their bare names."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "bench"))


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/mlflow/", timeout=10):
            return True
    except (urllib.error.URLError, OSError):
        return False


def run_script(python: str, script: str, env: dict[str, str], cwd: Path) -> Summary:
    """Runs scripts/<script>.py and returns the JSON summary it prints last."""
    done = subprocess.run(
        [python, str(SCRIPTS / f"{script}.py")],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SCRIPT_SECONDS,
    )
    if done.returncode != 0:
        raise AssertionError(f"{script}.py failed ({done.returncode}):\n{done.stderr[-4000:]}")
    summary: Summary = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELREG_"))}
    env["HOME"] = str(home)
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.fixture(scope="session")
def on_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunScript]:
    """Runs a script with the real mlflow against a real MLflow server; each script once a session."""
    bench = _bench_run()
    try:
        bench.ensure_mlflow_venv()
    except subprocess.CalledProcessError as exc:
        if _pypi_reachable():
            raise
        skip_or_fail("mlflow", f"the MLflow venv cannot be built, PyPI is unreachable ({exc})")
    home = tmp_path_factory.mktemp("mlflow")
    port = bench.free_port()
    started: list[Any] = []
    try:
        server = bench.spawn(started, "mlflow-server", bench.mlflow_server_argv(home, port), home)
        bench.wait_until(
            server, lambda: bench.http_ok(f"http://127.0.0.1:{port}/health"), SERVER_START_SECONDS
        )
        env = _base_env(home) | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
        yield _cached(lambda script: run_script(str(bench.MLFLOW_PY), script, env, home))
    finally:
        for service in started:
            service.stop()


@pytest.fixture(scope="session")
def on_modelreg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunScript]:
    """Runs a script after the import swap (shim/ first on sys.path) against modelreg's services."""
    home = tmp_path_factory.mktemp("modelreg")
    with running_services(home / "services") as services:
        env = _base_env(home) | {
            "MODELREG_TRACKING_URI": services.tracking,
            "MODELREG_REGISTRY_URI": services.registry,
            "MODELREG_CACHE_DIR": str(home / "cache"),
            "PYTHONPATH": os.pathsep.join([str(SHIM), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
        yield _cached(lambda script: run_script(sys.executable, script, env, home))


def _cached(run: RunScript) -> RunScript:
    """Each script runs once per system and session: the scripts create fixed names."""
    results: dict[str, Summary | BaseException] = {}

    def cached(script: str) -> Summary:
        if script not in results:
            try:
                results[script] = run(script)
            except BaseException as exc:
                results[script] = exc
        outcome = results[script]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return cached
