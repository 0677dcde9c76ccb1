"""The MLflow names of the client, without servers: what MLflow code reads from them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import modelreg as mlflow
from modelreg import _convert as conv
from modelreg import entities as e
from modelreg import fluent
from modelreg.exceptions import AlreadyExists, FailedPrecondition, InvalidArgument, MlflowException, NotFound

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


def test_the_mlflow_names_exist() -> None:
    from modelreg.tracking import MlflowClient

    assert mlflow.MlflowClient is MlflowClient is mlflow.Client
    assert (e.ViewType.ACTIVE_ONLY, e.ViewType.DELETED_ONLY, e.ViewType.ALL) == (1, 2, 3)
    assert e.RunStatus.all_status() == ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
    assert not e.RunStatus.is_terminated(e.RunStatus.RUNNING)
    for name in ("register_model", "create_experiment", "search_experiments", "get_experiment", "delete_run"):
        assert callable(getattr(mlflow, name))
    for name in (
        "set_experiment_tag",
        "log_dict",
        "log_text",
        "log_figure",
        "log_image",
        "log_table",
        "log_input",
    ):
        assert callable(getattr(mlflow, name))
    assert callable(mlflow.models.get_model_info) and isinstance(mlflow.models.Model, type)


def test_mlflow_exception_catches_modelreg_errors_with_mlflow_codes() -> None:
    cases = [
        (NotFound("x", code="NOT_FOUND"), "RESOURCE_DOES_NOT_EXIST"),
        (AlreadyExists("x", code="ALREADY_EXISTS"), "RESOURCE_ALREADY_EXISTS"),
        (InvalidArgument("x", code="INVALID_ARGUMENT"), "INVALID_PARAMETER_VALUE"),
        (FailedPrecondition("x", code="FAILED_PRECONDITION"), "INVALID_STATE"),
    ]
    for error, code in cases:
        with pytest.raises(MlflowException) as caught:
            raise error
        assert caught.value.error_code == code
    assert MlflowException.invalid_parameter_value("bad").error_code == "INVALID_PARAMETER_VALUE"


def test_a_version_is_mlflow_s_string_and_equals_its_number() -> None:
    version = conv.model_version(conv.rpb.ModelVersion(name="M", version=3)).version
    assert isinstance(version, str) and version == "3" and version == 3 and 3 == version  # noqa: SIM300
    assert version != 4 and version != "4" and version != True  # noqa: E712
    assert {version: "x"}["3"] == "x" and int(version) == 3 and f"v{version}" == "v3"
    assert conv.registered_model(
        conv.rpb.RegisteredModel(name="M", aliases=[conv.rpb.Alias(alias="a", version=2)])
    ).aliases == {"a": "2"}


def test_a_run_as_mlflow_shows_it_carries_its_name_parent_and_user() -> None:
    info = e.RunInfo("r1", "0", "fit", "RUNNING", 1, None, "file:///a", "active", parent_run_id="p1")
    run = conv.mlflow_run(e.Run(info, e.RunData(tags={"mlflow.user": "ana", "k": "v"})))
    assert run.data.tags == {
        "mlflow.user": "ana",
        "k": "v",
        "mlflow.runName": "fit",
        "mlflow.parentRunId": "p1",
    }
    assert run.info.user_id == "ana"
    top = conv.mlflow_run(e.Run(e.RunInfo("r2", "0", "top", "RUNNING", 1, None, "", "active"), e.RunData()))
    assert top.data.tags == {"mlflow.runName": "top"} and top.info.user_id == ""


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_git_commit_is_read_from_the_checkout_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / "src" / "deep").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
    assert fluent.git_commit(repo / "src" / "deep") == SHA
    (repo / ".git" / "refs" / "heads" / "main").unlink()  # packed, as after git gc
    (repo / ".git" / "packed-refs").write_text(
        f"# pack-refs with: peeled\n{OTHER} refs/heads/other\n{SHA} refs/heads/main\n"
    )
    assert fluent.git_commit(repo) == SHA
    (repo / ".git" / "HEAD").write_text(OTHER + "\n")  # detached
    assert fluent.git_commit(repo) == OTHER
    # A worktree: .git is a file naming its git dir, whose commondir holds the shared refs.
    worktree = tmp_path / "wt"
    worktree.mkdir()
    git_dir = repo / ".git" / "worktrees" / "wt"
    git_dir.mkdir(parents=True)
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
    (git_dir / "commondir").write_text("../..\n")
    (worktree / ".git").write_text(f"gitdir: {git_dir}\n")
    assert fluent.git_commit(worktree) == SHA


def test_git_commit_of_a_real_checkout_and_of_no_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "real"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    (repo / "f").write_text("x")
    _git("add", "f", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m", cwd=repo)
    assert fluent.git_commit(repo) == _git("rev-parse", "HEAD", cwd=repo)
    outside = tmp_path / "plain"
    outside.mkdir()
    assert fluent.git_commit(outside) in (None, _git_or_none(outside))


def _git_or_none(path: Path) -> str | None:
    try:
        return _git("rev-parse", "HEAD", cwd=path)
    except subprocess.CalledProcessError:
        return None


def test_image_arrays_convert_as_mlflow_does() -> None:
    floats = np.array([[0.0, 0.5], [1.0, 0.25]])
    assert fluent._image_array(floats).tolist() == [[0, 128], [255, 64]]
    assert fluent._image_array(np.zeros((2, 2, 1), dtype=np.int64)).shape == (2, 2)
    for bad in (np.full((2, 2), 1.5), np.full((2, 2), 256), np.zeros((2, 2, 2))):
        with pytest.raises(ValueError):
            fluent._image_array(bad)


def test_flavors_and_creation_time_read_as_mlflow_s() -> None:
    from modelreg.models.info import flavors, utc_time_created
    from modelreg.models.model_dir import ModelMetadata

    common = {"python_version": "3.11.7", "modelreg_version": "0.1.0", "created_at": 1_767_225_600_123}
    sk = ModelMetadata(
        flavor="sklearn", serialization="skops", model_file="model.skops", sklearn_version="1.9", **common
    )
    assert flavors(sk) == {
        "sklearn": {"serialization_format": "skops", "model_file": "model.skops", "sklearn_version": "1.9"},
        "python_function": {"loader_module": "modelreg.pyfunc", "python_version": "3.11.7"},
    }
    code = ModelMetadata(
        flavor="python_function", serialization="code", model_file="m.py", sklearn_version="", **common
    )
    assert list(flavors(code)) == ["python_function"]
    assert flavors(code)["python_function"]["model_file"] == "m.py"
    assert utc_time_created(sk) == "2026-01-01 00:00:00.123000"
