"""MLflow users' scripts (scripts/*.py, written against MLflow's documented API), each run with
the real mlflow against an MLflow server and, after the import swap, against modelreg; the
observable results each prints (runs, params, metrics, tags, search orders, registered versions,
predictions) must be the same.

A script normalizes only what differs by design between any two servers (generated ids,
timestamps, random run names) and says so where it does."""

from __future__ import annotations

import pytest

from tests.integration.mlflow_compat.conftest import RunScript

# The first test builds the MLflow venv when it is missing (minutes on a fresh machine).
pytestmark = [pytest.mark.mlflow, pytest.mark.timeout(1800)]

SCRIPTS = ["sweep", "run_logging", "experiments", "registry_promotion", "autolog_gridsearch"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_on_mlflow(script: str, on_mlflow: RunScript) -> None:
    """The script is valid MLflow code: it runs to its summary with the real mlflow."""
    assert on_mlflow(script)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_same_on_modelreg(script: str, on_mlflow: RunScript, on_modelreg: RunScript) -> None:
    expected = on_mlflow(script)
    assert on_modelreg(script) == expected
