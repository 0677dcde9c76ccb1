"""The unmodified ``mlflow`` client, installed from PyPI, against modelreg's MLflow REST endpoint.

Each script (real_client/walkthrough.py, the seed walkthrough, and the MLflow users' scripts of
tests/integration/mlflow_compat/scripts) runs with ``MLFLOW_TRACKING_URI`` set, once per client
version (the newest MLflow 3.x in the benchmark's venv, the last 2.x in .venv-mlflow2):

- on the endpoint, in front of both real services, and on a real MLflow server: the JSON
  summaries the script prints (what the mlflow client read back) must be the same;
- through the modelreg clients, the services must hold the same runs, params, metrics, versions,
  stages, aliases and files (their sha256 recorded) and the registry's history the events;
- every request the endpoint answered is recorded: none may get a 5xx, only the expected ones a
  4xx, and the endpoints called must be the recorded trace (traces/<script>-mlflow<major>.txt).

The venvs are the ``mlflow`` backend of MODELREG_REQUIRE_BACKENDS: they skip only when they cannot
be built because PyPI is unreachable.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlflow_gateway.server import running_in_thread
from mlflow_gateway.settings import GatewaySettings
from modelreg import RegistryClient, TrackingClient
from modelreg.entities import ModelEvent
from tests.conftest import skip_or_fail
from tests.integration.mlflow_compat.conftest import (
    SCRIPT_SECONDS,
    SERVER_START_SECONDS,
    _base_env,
    _bench_run,
    _pypi_reachable,
)
from tests.integration.mlflow_compat.conftest import SCRIPTS as COMPAT_SCRIPTS
from tests.integration.mlflow_rest.real_client.trace import Recorder, Request, check_trace
from tests.servers import running_services

# The first test builds the venvs when they are missing (minutes on a fresh machine).
pytestmark = [pytest.mark.mlflow, pytest.mark.timeout(1800)]

HERE = Path(__file__).resolve().parent
COMPAT = ("run_logging", "sweep", "experiments", "registry_promotion", "autolog_gridsearch")
SCRIPTS = {
    "walkthrough": HERE / "real_client" / "walkthrough.py",
    **{s: COMPAT_SCRIPTS / f"{s}.py" for s in COMPAT},
}
# registry_promotion logs its model with MLflow 3's `name=` (2.x calls it `artifact_path`).
SCRIPTS_BY_MAJOR = {3: tuple(SCRIPTS), 2: tuple(s for s in SCRIPTS if s != "registry_promotion")}
# 4xx answers MLflow's client asks for and handles, by (endpoint, error_code), and why.
EXPECTED_CLIENT_ERRORS = {
    # set_experiment looks the name up before it creates the experiment.
    ("GET /api/2.0/mlflow/experiments/get-by-name", "RESOURCE_DOES_NOT_EXIST"),
    # log_model(registered_model_name=...) and register_model create the model, accepting that it exists.
    ("POST /api/2.0/mlflow/registered-models/create", "RESOURCE_ALREADY_EXISTS"),
    # MLflow 3 downloads runs:/<run>/<name> from the run's own files first, then from the
    # LoggedModel of that name: the first try asks for a file the run does not have.
    (
        "GET /api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{path}",
        "RESOURCE_DOES_NOT_EXIST",
    ),
}

Summary = dict[str, Any]


@dataclass(frozen=True)
class Client:
    major: int
    python: Path
    version: str  # mlflow.__version__ in its venv


@dataclass(frozen=True)
class EndpointRun:
    """One script run against the endpoint: its summary (None when it failed) and the requests."""

    summary: Summary | None
    stderr: str
    requests: list[Request]

    def succeeded(self) -> Summary:
        if self.summary is None:
            failed = "\n".join(str(r) for r in self.requests if r.status >= 400) or "(none)"
            raise AssertionError(
                f"the script failed on the endpoint:\n{self.stderr[-3000:]}\n"
                f"requests answered with an error:\n{failed}"
            )
        return self.summary


@dataclass(frozen=True)
class Modelreg:
    tracking: TrackingClient
    registry: RegistryClient


def run_script(python: Path, script: Path, env: dict[str, str], cwd: Path) -> tuple[Summary | None, str]:
    """The JSON summary ``script`` prints last (None when it fails) and its stderr."""
    try:
        done = subprocess.run(
            [str(python), str(script)],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=SCRIPT_SECONDS,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return None, f"{stderr}\n(stopped after {SCRIPT_SECONDS} s)"
    if done.returncode != 0:
        return None, done.stderr
    summary: Summary = json.loads(done.stdout.strip().splitlines()[-1])
    return summary, done.stderr


class RealClients:
    """Per client version, lazily: its venv, the endpoint in front of fresh services (scripts use
    fixed names) and a real MLflow server; every script result is cached for the session."""

    def __init__(self, bench: ModuleType, tmp: pytest.TempPathFactory, stack: ExitStack) -> None:
        self.bench, self.tmp, self.stack = bench, tmp, stack
        self._clients: dict[int, Client] = {}
        self._endpoints: dict[int, tuple[str, Recorder, Modelreg, Path]] = {}
        self._servers: dict[int, tuple[str, Path]] = {}
        self._on_endpoint: dict[tuple[int, str], EndpointRun] = {}
        self._on_mlflow: dict[tuple[int, str], Summary | AssertionError] = {}

    def client(self, major: int) -> Client:
        if major not in self._clients:
            ensure = self.bench.ensure_mlflow_venv if major == 3 else self.bench.ensure_mlflow2_venv
            try:
                python = Path(ensure())
            except subprocess.CalledProcessError as exc:
                if _pypi_reachable():
                    raise
                skip_or_fail(
                    "mlflow", f"the MLflow {major}.x venv cannot be built, PyPI is unreachable ({exc})"
                )
            version = subprocess.run(
                [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert version.startswith(f"{major}."), version
            self._clients[major] = Client(major, python, version)
        return self._clients[major]

    def endpoint(self, major: int) -> tuple[str, Recorder, Modelreg, Path]:
        if major not in self._endpoints:
            home = self.tmp.mktemp(f"endpoint-mlflow{major}")
            services = self.stack.enter_context(running_services(home / "services"))
            recorder = Recorder()
            settings = GatewaySettings(port=0, tracking_uri=services.tracking, registry_uri=services.registry)
            url = self.stack.enter_context(running_in_thread(settings, wrap=recorder.wrap))
            modelreg = Modelreg(
                self.stack.enter_context(TrackingClient(services.tracking)),
                self.stack.enter_context(RegistryClient(services.registry)),
            )
            self._endpoints[major] = (url, recorder, modelreg, home)
        return self._endpoints[major]

    def modelreg(self, major: int) -> Modelreg:
        return self.endpoint(major)[2]

    def on_endpoint(self, major: int, script: str) -> EndpointRun:
        key = (major, script)
        if key not in self._on_endpoint:
            client = self.client(major)
            url, recorder, _, home = self.endpoint(major)
            env = _base_env(home) | {
                "MLFLOW_TRACKING_URI": url,
                # An error answer fails at once instead of after minutes of the client's retries.
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            }
            recorder.take()
            summary, stderr = run_script(client.python, SCRIPTS[script], env, home)
            self._on_endpoint[key] = EndpointRun(summary, stderr, recorder.take())
        return self._on_endpoint[key]

    def on_mlflow(self, major: int, script: str) -> Summary:
        """The script's summary with the same client on a real MLflow server (the newest 3.x)."""
        key = (major, script)
        if key not in self._on_mlflow:
            client = self.client(major)
            self.client(3)  # the server's venv
            url, home = self.mlflow_server(major)
            summary, stderr = run_script(
                client.python, SCRIPTS[script], _base_env(home) | {"MLFLOW_TRACKING_URI": url}, home
            )
            self._on_mlflow[key] = (
                summary
                if summary is not None
                else AssertionError(f"{script} failed on MLflow:\n{stderr[-3000:]}")
            )
        outcome = self._on_mlflow[key]
        if isinstance(outcome, AssertionError):
            raise outcome
        return outcome

    def mlflow_server(self, major: int) -> tuple[str, Path]:
        if major not in self._servers:
            home = self.tmp.mktemp(f"mlflow-server-mlflow{major}")
            started: list[Any] = []
            self.stack.callback(lambda: [service.stop() for service in started])
            port = self.bench.free_port()
            server = self.bench.spawn(
                started, "mlflow-server", self.bench.mlflow_server_argv(home, port), home
            )
            self.bench.wait_until(
                server, lambda: self.bench.http_ok(f"http://127.0.0.1:{port}/health"), SERVER_START_SECONDS
            )
            self._servers[major] = (f"http://127.0.0.1:{port}", home)
        return self._servers[major]


@pytest.fixture(scope="session")
def real_clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealClients]:
    with ExitStack() as stack:
        yield RealClients(_bench_run(), tmp_path_factory, stack)


def _cases() -> list[Any]:
    return [
        pytest.param(major, script, id=f"{script}-mlflow{major}")
        for major, scripts in SCRIPTS_BY_MAJOR.items()
        for script in scripts
    ]


def _comparable(script: str, summary: Summary) -> Any:
    """What every server must answer the same: the walkthrough keeps its ids apart."""
    return summary["results"] if script == "walkthrough" else summary


@pytest.mark.parametrize(("major", "script"), _cases())
def test_same_results_as_mlflow(major: int, script: str, real_clients: RealClients) -> None:
    """What the mlflow client reads back from the endpoint is what it reads back from MLflow."""
    on_endpoint = real_clients.on_endpoint(major, script).succeeded()
    assert _comparable(script, on_endpoint) == _comparable(script, real_clients.on_mlflow(major, script))


@pytest.mark.parametrize(("major", "script"), _cases())
def test_no_unexpected_errors(major: int, script: str, real_clients: RealClients) -> None:
    """No request gets a 5xx; a 4xx only where MLflow's client expects one (and handles it)."""
    requests = real_clients.on_endpoint(major, script).requests
    server_errors = [str(r) for r in requests if r.status >= 500]
    unexpected = [
        str(r)
        for r in requests
        if 400 <= r.status < 500 and (r.endpoint, r.error_code) not in EXPECTED_CLIENT_ERRORS
    ]
    assert not server_errors, "5xx answers:\n" + "\n".join(server_errors)
    assert not unexpected, "unexpected 4xx answers:\n" + "\n".join(unexpected)


@pytest.mark.parametrize(("major", "script"), _cases())
def test_endpoints_called_are_the_recorded_trace(major: int, script: str, real_clients: RealClients) -> None:
    run = real_clients.on_endpoint(major, script)
    run.succeeded()  # a failed script's trace stops short
    version = real_clients.client(major).version
    check_trace(f"{script}-mlflow{major}", version, run.requests)


@pytest.mark.parametrize(("major", "script"), _cases())
def test_modelreg_holds_what_the_script_logged(major: int, script: str, real_clients: RealClients) -> None:
    """Through the modelreg clients: the same runs, versions, aliases, history and file digests."""
    summary = real_clients.on_endpoint(major, script).succeeded()
    MODELREG_CHECKS[script](summary, real_clients.modelreg(major))


# What the modelreg clients must find after each script.


def _experiment_runs(modelreg: Modelreg, experiment: str, view: str = "ACTIVE_ONLY") -> dict[str, Any]:
    """The experiment's runs by name."""
    experiment_id = modelreg.tracking.get_experiment_by_name(experiment).experiment_id
    runs = list(modelreg.tracking.search_runs([experiment_id], run_view_type=view))
    by_name = {run.info.run_name: run for run in runs}
    assert len(by_name) == len(runs), [run.info.run_name for run in runs]
    return by_name


def _files(modelreg: Modelreg, run_id: str, path: str = "") -> dict[str, str]:
    """The run's files below ``path`` (relative to it) with their recorded sha256, each checked
    against the bytes downloaded through the modelreg client."""
    files = {}
    for info in modelreg.tracking.list_artifacts(run_id, path, recursive=True):
        chunks = [
            bytes(c)
            for c in modelreg.tracking.artifact_stream(run_id, info.path)
            if isinstance(c, memoryview)
        ]
        assert hashlib.sha256(b"".join(chunks)).hexdigest() == info.sha256, info.path
        files[info.path.removeprefix(f"{path}/" if path else "")] = info.sha256
    return files


def _events(modelreg: Modelreg, name: str) -> list[tuple[str, int, str, str]]:
    events: list[ModelEvent] = list(modelreg.registry.list_model_events(name))
    assert {event.actor for event in events} == {"mlflow-client"}, events
    # Without the tags and descriptions MLflow's client sets along the way (their events vary
    # with its version): the models, versions, stages and aliases the script asked for.
    changes = [
        e for e in events if not e.action.endswith(("_TAG_SET", "_TAG_DELETED", "_DESCRIPTION_UPDATED"))
    ]
    return [(e.action, e.version, e.from_value, e.to_value) for e in changes]


def check_walkthrough(summary: Summary, modelreg: Modelreg) -> None:
    results, ids = summary["results"], summary["ids"]
    runs = _experiment_runs(modelreg, "walkthrough")
    assert {name: run.info.run_id for name, run in runs.items()} == ids["runs"]
    assert runs["linear-intercept-true"].info.experiment_id == ids["experiment_id"]
    for name, run in runs.items():
        assert dict(run.data.params) == {
            "fit_intercept": str(name.endswith("true")).title(),
            "rows": "5",
            "features": "size,promo",
        }
        assert {"rmse", "r2", "coef_0"} <= set(run.data.metrics)
        assert run.data.tags["stage"] == "walkthrough"
        assert run.info.status == "FINISHED"
        assert _files(modelreg, run.info.run_id, "reports") == {"report.txt": ids["report_sha256"][name]}
    history = modelreg.tracking.get_metric_history(ids["runs"]["linear-intercept-true"], "rmse")
    assert [[m.step, round(m.value, 4)] for m in history] == results["rmse_history"]

    name = "walkthrough-model"
    logged, registered = results["versions"]
    versions = {str(v.version): v for v in modelreg.registry.search_model_versions(f"name = '{name}'")}
    assert sorted(versions) == sorted(results["versions"])
    assert {v: versions[v].current_stage for v in versions} == {logged: "Staging", registered: "Production"}
    assert (versions[logged].aliases, versions[registered].aliases) == (["champion"], [])
    for version, run_name in ((logged, "linear-intercept-true"), (registered, "linear-intercept-false")):
        full = modelreg.registry.get_model_version(name, version)
        assert full.run_id == ids["runs"][run_name]
        assert full.lineage is not None and full.lineage.run_id == ids["runs"][run_name]
        assert dict(full.lineage.params) == dict(runs[run_name].data.params)
        # The files MLflow's client downloads for the version are the bytes the registry recorded
        # (registered_model_meta is the client's own note, written after the download).
        downloaded = dict(ids["version_files_sha256"][version])
        assert downloaded.pop("registered_model_meta", None) is not None
        assert {f.path: f.sha256 for f in full.lineage.files} == downloaded
    assert _events(modelreg, name) == [
        ("MODEL_CREATED", 0, "", ""),
        ("VERSION_CREATED", int(logged), "", "None"),
        ("VERSION_CREATED", int(registered), "", "None"),
        ("ALIAS_SET", int(logged), "", "champion"),
        ("STAGE_TRANSITIONED", int(registered), "None", "Production"),
        ("STAGE_TRANSITIONED", int(logged), "None", "Staging"),
    ]


def check_run_logging(summary: Summary, modelreg: Modelreg) -> None:
    run = _experiment_runs(modelreg, "run-logging")["train-mlp"]
    assert dict(run.data.params) == summary["params"]
    assert {k: round(v, 4) for k, v in run.data.metrics.items()} == summary["metrics"]
    assert {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")} == summary["tags"]
    assert run.data.tags["mlflow.note.content"] == summary["description"]
    loss = modelreg.tracking.get_metric_history(run.info.run_id, "loss")
    assert [[m.step, round(m.value, 4)] for m in loss] == summary["loss_history"]
    files = _files(modelreg, run.info.run_id)
    assert sorted(files) == ["config/model.json", "notes.txt", "reports/loss.csv"]
    assert files["notes.txt"] == hashlib.sha256(summary["notes"].encode()).hexdigest()
    assert files["reports/loss.csv"] == hashlib.sha256(b"epoch,loss\n0,1.0\n1,0.5\n").hexdigest()
    config = Path(modelreg.tracking.download_artifacts(run.info.run_id, "config/model.json")).read_text()
    assert json.loads(config) == summary["config"]


def check_sweep(summary: Summary, modelreg: Modelreg) -> None:
    runs = _experiment_runs(modelreg, "sweep-elasticnet")
    assert len(runs) == summary["all_runs"]
    parent = runs["sweep"]
    children = {name for name, run in runs.items() if run.info.parent_run_id == parent.info.run_id}
    assert children == set(summary["children_by_rmse"])
    assert dict(parent.data.metrics) == summary["parent_metrics"]
    assert dict(parent.data.params) == summary["parent_params"]
    best = runs[summary["best_run_name"]]
    assert parent.data.tags["best_run"] == best.info.run_id
    history = modelreg.tracking.get_metric_history(best.info.run_id, "train_loss")
    assert [[m.step, round(m.value, 4)] for m in history] == summary["best_loss_history"]


def check_experiments(summary: Summary, modelreg: Modelreg) -> None:
    tracking = modelreg.tracking
    every = {e.name: e for e in tracking.search_experiments("name LIKE 'team-%'", view_type="ALL")}
    assert sorted(every) == summary["all"]
    assert sorted(n for n, e in every.items() if e.lifecycle_stage == "deleted") == summary["deleted"]
    fetched = every["team-a-churn"]
    assert {k: v for k, v in fetched.tags.items() if not k.startswith("mlflow.")} == summary["fetched"][
        "tags"
    ]
    runs = _experiment_runs(modelreg, "team-a-churn", view="ALL")
    stages = {name: run.info.lifecycle_stage for name, run in runs.items()}
    assert stages == {
        **dict.fromkeys(summary["active_runs"], "active"),
        **dict.fromkeys(summary["deleted_runs"], "deleted"),
    }


def check_registry_promotion(summary: Summary, modelreg: Modelreg) -> None:
    name = "demand-forecaster"
    model = modelreg.registry.get_registered_model(name)
    assert model.description == summary["registered"]["description"]
    assert dict(model.tags) == summary["registered"]["tags"]
    versions = {str(v.version): v for v in modelreg.registry.search_model_versions(f"name = '{name}'")}
    assert {v: versions[v].current_stage for v in versions} == summary["stages_after"]
    assert {a: v for v in versions for a in versions[v].aliases} == summary["registered"]["aliases"]
    assert versions["1"].description == summary["v1"]["description"]
    assert dict(versions["2"].tags) == summary["champion"]["tags"]
    runs = _experiment_runs(modelreg, "demand")
    for version in summary["logged_versions"]:
        full = modelreg.registry.get_model_version(name, version)
        assert full.lineage is not None and full.run_id == full.lineage.run_id
        run_name = runs_by_id(runs)[full.run_id]
        assert dict(full.lineage.params) == {"fit_intercept": run_name.split("=")[1]}
        assert full.lineage.files, "no file digests recorded"
    assert _events(modelreg, name) == [
        ("MODEL_CREATED", 0, "", ""),
        ("VERSION_CREATED", 1, "", "None"),
        ("VERSION_CREATED", 2, "", "None"),
        ("ALIAS_SET", 1, "", "champion"),
        ("ALIAS_SET", 2, "", "challenger"),
        ("STAGE_TRANSITIONED", 1, "None", "Production"),
        ("STAGE_TRANSITIONED", 2, "None", "Staging"),
        ("STAGE_TRANSITIONED", 2, "Staging", "Production"),
        ("STAGE_TRANSITIONED", 1, "Production", "Archived"),
        ("ALIAS_MOVED", 2, "1", "2"),
        ("ALIAS_DELETED", 2, "challenger", ""),
    ]


def runs_by_id(runs: dict[str, Any]) -> dict[str, str]:
    return {run.info.run_id: name for name, run in runs.items()}


def check_autolog_gridsearch(summary: Summary, modelreg: Modelreg) -> None:
    runs = _experiment_runs(modelreg, "autolog-grid")
    parent = runs["grid"]
    params = {k: parent.data.params.get(k) for k in summary["parent_params"]}
    assert params == summary["parent_params"]
    assert sorted(parent.data.metrics) == summary["parent_metric_keys"]
    children = [run for run in runs.values() if run.info.parent_run_id == parent.info.run_id]
    assert len(children) == summary["child_count"]
    assert {run.data.tags["mlflow.autologging"] for run in children} == set(summary["child_autologging_tag"])
    assert _files(modelreg, parent.info.run_id), "the autologged model left no files with digests"


MODELREG_CHECKS: dict[str, Callable[[Summary, Modelreg], None]] = {
    "walkthrough": check_walkthrough,
    "run_logging": check_run_logging,
    "sweep": check_sweep,
    "experiments": check_experiments,
    "registry_promotion": check_registry_promotion,
    "autolog_gridsearch": check_autolog_gridsearch,
}
