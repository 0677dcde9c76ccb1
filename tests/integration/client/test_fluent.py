"""The fluent API against the real tracking server, written as training code is written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import modelreg
from modelreg.exceptions import FailedPrecondition, InvalidArgument
from tests.servers import Services, running_tracking


def test_start_run_finishes_and_logs(fluent_targets: Services, unique: str, tmp_path: Path) -> None:
    experiment = modelreg.set_experiment(f"fluent-{unique}")
    assert modelreg.set_experiment(f"fluent-{unique}").experiment_id == experiment.experiment_id
    with modelreg.start_run(run_name="Linear_Regression_V1", tags={"team": "ml"}) as run:
        assert modelreg.active_run() is run
        assert modelreg.log_param("alpha", 0.5) == 0.5
        modelreg.log_params({"fit_intercept": False, "n": 3})
        modelreg.log_metric("rmse", 0.25)
        modelreg.log_metrics({"r2": 0.9, "mae": 0.1}, step=1)
        modelreg.set_tag("stage", "dev")
        modelreg.set_tags({"a": 1})
        notes = tmp_path / "notes.txt"
        notes.write_text("n")
        modelreg.log_artifact(str(notes), "docs")
        assert modelreg.get_artifact_uri("docs/notes.txt") == f"{run.info.artifact_uri}/docs/notes.txt"
        with pytest.raises(InvalidArgument) as conflict:
            modelreg.log_param("alpha", 0.7)  # direct call: fails at once
        assert conflict.value.reason == "PARAM_VALUE_CONFLICT"
    assert modelreg.active_run() is None

    finished = modelreg.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.info.experiment_id == experiment.experiment_id
    assert finished.info.run_name == "Linear_Regression_V1"
    assert finished.data.params == {"alpha": "0.5", "fit_intercept": "False", "n": "3"}
    assert finished.data.metrics == {"rmse": 0.25, "r2": 0.9, "mae": 0.1}
    assert {"team": "ml", "stage": "dev", "a": "1"}.items() <= finished.data.tags.items()
    last = modelreg.last_active_run()
    assert last is not None and last.info.run_id == run.info.run_id

    frame = modelreg.search_runs()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["run_id"]) == [run.info.run_id]
    assert frame.loc[0, "metrics.rmse"] == 0.25 and frame.loc[0, "params.alpha"] == "0.5"
    runs = modelreg.search_runs(output_format="list")
    assert [r.info.run_id for r in runs] == [run.info.run_id]


def test_exception_marks_failed_and_interrupt_killed(fluent_targets: Services) -> None:
    with pytest.raises(ZeroDivisionError), modelreg.start_run() as failed:
        modelreg.log_metric("x", 1.0)
        _ = 1 / 0
    assert modelreg.get_run(failed.info.run_id).info.status == "FAILED"
    assert modelreg.get_run(failed.info.run_id).data.metrics == {"x": 1.0}

    with pytest.raises(KeyboardInterrupt), modelreg.start_run() as killed:
        raise KeyboardInterrupt
    assert modelreg.get_run(killed.info.run_id).info.status == "KILLED"


def test_nested_runs_form_a_stack(fluent_targets: Services) -> None:
    with modelreg.start_run() as parent:
        with pytest.raises(FailedPrecondition) as active:
            modelreg.start_run()
        assert active.value.reason == "RUN_ALREADY_ACTIVE"
        with modelreg.start_run(nested=True) as child:
            assert modelreg.active_run() is child
            modelreg.log_metric("child_metric", 1.0)
        assert modelreg.active_run() is parent
    child_run = modelreg.get_run(child.info.run_id)
    assert child_run.info.parent_run_id == parent.info.run_id
    assert child_run.info.status == "FINISHED"
    assert modelreg.get_run(parent.info.run_id).data.metrics == {}


def test_resume_a_run(fluent_targets: Services) -> None:
    with modelreg.start_run() as first:
        modelreg.log_param("a", 1)
    with modelreg.start_run(run_id=first.info.run_id) as resumed:
        assert resumed.info.status == "RUNNING"
        modelreg.log_param("b", 2)
    again = modelreg.get_run(first.info.run_id)
    assert again.info.status == "FINISHED" and again.data.params == {"a": "1", "b": "2"}


def test_100k_buffered_metrics_arrive_complete_and_in_order(fluent_targets: Services) -> None:
    with modelreg.start_run() as run:
        started = time.perf_counter()
        for step in range(100_000):
            modelreg.log_metric("loss", 1.0 / (step + 1), step=step)
        logged = time.perf_counter() - started
    total = time.perf_counter() - started
    print(f"\n100,000 log_metric calls: {logged:.2f}s to log, {total:.2f}s until the run ended")
    history = modelreg.Client(fluent_targets.tracking).get_metric_history(run.info.run_id, "loss")
    assert len(history) == 100_000
    assert [m.step for m in history] == list(range(100_000))
    assert all(m.value == 1.0 / (m.step + 1) for m in history)


def test_flush_error_is_raised_at_end_run(fluent_targets: Services) -> None:
    client = modelreg.Client(fluent_targets.tracking)
    run = modelreg.start_run()
    client.delete_run(run.info.run_id)
    modelreg.log_metric("loss", 1.0)  # buffered: nothing fails yet
    with pytest.raises(FailedPrecondition) as deleted:
        modelreg.end_run()
    assert deleted.value.reason == "RUN_DELETED"
    assert modelreg.active_run() is None


def test_interpreter_exit_sends_buffered_metrics_and_ends_the_run(services: Services) -> None:
    script = (
        "import modelreg\n"
        "run = modelreg.start_run()\n"
        "print(run.info.run_id)\n"
        "for i in range(1000):\n"
        "    modelreg.log_metric('m', float(i), step=i)\n"
    )
    env = {**os.environ, "MODELREG_TRACKING_URI": services.tracking}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    client = modelreg.Client(services.tracking)
    assert [m.step for m in client.get_metric_history(run_id, "m")] == list(range(1000))
    assert client.get_run(run_id).info.status == "FINISHED"


def test_switching_servers_forgets_the_experiment_of_the_old_one(
    fluent_targets: Services, tmp_path: Path, unique: str
) -> None:
    """An experiment id belongs to the server that issued it: after set_tracking_uri points
    elsewhere, start_run must not send the old server's experiment id to the new one."""
    modelreg.set_experiment(f"exp-{unique}")  # an experiment that only the first server knows
    with running_tracking(tmp_path) as (other, _):
        modelreg.set_tracking_uri(other)
        try:
            with modelreg.start_run() as run:
                pass
        finally:
            modelreg.set_tracking_uri(fluent_targets.tracking)
    assert run.info.experiment_id == "0"  # the new server's Default experiment
