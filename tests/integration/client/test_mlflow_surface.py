"""MLflow 3 code after ``import modelreg as mlflow``, against the real servers: the calls and the
system tags an MLflow user's scripts and dashboards rely on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import modelreg as mlflow
import modelreg.sklearn
from modelreg import MlflowClient
from modelreg.entities import RunStatus, RunTag, ViewType
from modelreg.exceptions import MlflowException
from tests.servers import Services

from .conftest import ACTOR


def _head_commit(directory: Path) -> str | None:
    """What git says is checked out where ``directory`` is (None outside a checkout)."""
    import subprocess

    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def test_nested_runs_are_found_by_mlflow_system_tags(fluent_targets: Services, unique: str) -> None:
    experiment_id = mlflow.create_experiment(f"nested-{unique}")
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run(run_name="parent", description="grid search") as parent:
        for alpha in (0.1, 0.2):
            with mlflow.start_run(run_name=f"alpha-{alpha}", nested=True):
                mlflow.log_param("alpha", alpha)
    # MLflow: after the block the last active run is the parent, not the last child.
    last = mlflow.last_active_run()
    assert last is not None and last.info.run_id == parent.info.run_id

    parent_id = parent.info.run_id
    children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(children["tags.mlflow.runName"]) == ["alpha-0.1", "alpha-0.2"]
    assert set(children["tags.mlflow.parentRunId"]) == {parent_id}
    by_attribute = mlflow.search_runs(
        filter_string=f"attributes.parent_run_id = '{parent_id}'", output_format="list"
    )
    assert sorted(r.info.run_name for r in by_attribute) == ["alpha-0.1", "alpha-0.2"]
    parent_of_child = mlflow.get_parent_run(by_attribute[0].info.run_id)
    assert parent_of_child is not None and parent_of_child.info.run_id == parent_id
    assert mlflow.get_parent_run(parent_id) is None
    mine = mlflow.search_runs(
        filter_string=f"attributes.user_id = '{ACTOR}' AND tags.mlflow.runName = 'parent'"
    )
    assert list(mine["run_id"]) == [parent_id]
    named = mlflow.search_runs(filter_string="tags.mlflow.runName = 'parent'", output_format="list")
    assert [r.info.run_id for r in named] == [parent_id]
    ordered = mlflow.search_runs(
        filter_string="tags.mlflow.runName LIKE 'alpha-%'", order_by=["tags.mlflow.runName DESC"]
    )
    assert list(ordered["tags.mlflow.runName"]) == ["alpha-0.2", "alpha-0.1"]

    run = mlflow.get_run(parent_id)
    tags = run.data.tags
    assert tags["mlflow.note.content"] == "grid search"
    assert tags["mlflow.runName"] == "parent" and "mlflow.parentRunId" not in tags
    assert tags["mlflow.user"] == ACTOR == run.info.user_id
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"] == sys.argv[0]
    # The commit of the checkout holding the script (here pytest's: this project's checkout, a git
    # worktree whose .git is a "gitdir:" file, when its virtualenv is inside it).
    assert tags.get("mlflow.source.git.commit") == _head_commit(Path(sys.argv[0]).resolve().parent)
    assert run.info.status == RunStatus.FINISHED and RunStatus.is_terminated(run.info.status)


def test_other_mlflow_tags_filter_as_in_mlflow(fluent_targets: Services, unique: str) -> None:
    """A run tagged by other tools (MLflow projects set mlflow.source.git.branch) is found by a
    filter on that tag, as MLflow finds it."""
    mlflow.set_experiment(f"other-tags-{unique}")
    with mlflow.start_run() as tagged:
        mlflow.set_tag("mlflow.source.git.branch", "main")
    with mlflow.start_run():
        pass
    found = mlflow.search_runs(filter_string="tags.mlflow.source.git.branch = 'main'", output_format="list")
    assert [run.info.run_id for run in found] == [tagged.info.run_id]


def test_renaming_through_the_run_name_tag(fluent_targets: Services) -> None:
    client = MlflowClient()
    with mlflow.start_run(run_name="before") as run:
        mlflow.set_tag("mlflow.runName", "after")
    assert client.get_run(run.info.run_id).info.run_name == "after"
    client.set_tag(run.info.run_id, "mlflow.runName", "again")
    assert client.get_run(run.info.run_id).data.tags["mlflow.runName"] == "again"
    client.log_batch(run.info.run_id, tags=[RunTag("mlflow.runName", "batched"), RunTag("k", "v")])
    assert client.get_run(run.info.run_id).info.run_name == "batched"
    with mlflow.start_run(run.info.run_id):
        mlflow.set_tags({"mlflow.runName": "fluent", "k": "w"})
    renamed = mlflow.get_run(run.info.run_id)
    assert (renamed.info.run_name, renamed.data.tags["mlflow.runName"], renamed.data.tags["k"]) == (
        "fluent",
    ) * 2 + ("w",)
    with pytest.raises(MlflowException) as error:  # a run's parent is set when it is created
        client.set_tag(run.info.run_id, "mlflow.parentRunId", run.info.run_id)
    assert error.value.reason == "RESERVED_TAG"
    # MlflowClient's way of making a nested run: the tag.
    child = client.create_run(run.info.experiment_id, tags={"mlflow.parentRunId": run.info.run_id})
    assert client.get_parent_run(child.info.run_id).info.run_id == run.info.run_id  # type: ignore[union-attr]
    assert child.data.tags["mlflow.parentRunId"] == run.info.run_id


def test_fluent_experiments_and_deleted_runs(fluent_targets: Services, unique: str) -> None:
    name = f"exp-{unique}"
    experiment_id = mlflow.create_experiment(name, tags={"team": "ml"})
    assert mlflow.get_experiment(experiment_id).name == name
    mlflow.set_experiment(name)
    mlflow.set_experiment_tag("owner", "me")
    found = mlflow.search_experiments(filter_string=f"name = '{name}'")
    assert [(x.experiment_id, dict(x.tags)) for x in found] == [
        (experiment_id, {"team": "ml", "owner": "me"})
    ]
    with mlflow.start_run() as run:
        pass
    mlflow.delete_run(run.info.run_id)
    assert mlflow.search_runs(output_format="list") == []
    deleted = mlflow.search_runs(run_view_type=ViewType.DELETED_ONLY, output_format="list")
    assert [r.info.run_id for r in deleted] == [run.info.run_id]
    doomed = mlflow.create_experiment(f"doomed-{unique}")
    mlflow.delete_experiment(doomed)
    assert mlflow.get_experiment(doomed).lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as error:
        mlflow.get_experiment("987654321")
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_logging_dicts_text_tables_and_inputs(fluent_targets: Services, tmp_path: Path) -> None:
    table = {"inputs": ["What is MLflow?", "What is modelreg?"], "toxicity": [0.0, 0.5]}
    with mlflow.start_run() as run:
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "config/params.json")
        mlflow.log_dict({"a": 1}, "config/params.yaml")
        mlflow.log_text("hello", "notes/readme.txt")
        mlflow.log_table(table, "eval/results.json")
        mlflow.log_table(pd.DataFrame(table), "eval/frame.json")
        mlflow.log_input(pd.DataFrame(table), context="training")
    run_id = run.info.run_id
    local = Path(MlflowClient().download_artifacts(run_id, "", str(tmp_path)))
    assert json.loads((local / "config/params.json").read_text()) == {"a": 1, "b": [1, 2]}
    assert (local / "config/params.yaml").read_text() == "a: 1\n"
    assert (local / "notes/readme.txt").read_text() == "hello"
    written = json.loads((local / "eval/results.json").read_text())
    assert written == {
        "columns": ["inputs", "toxicity"],
        "data": [["What is MLflow?", 0.0], ["What is modelreg?", 0.5]],
    }
    assert json.loads((local / "eval/frame.json").read_text()) == written
    tags = mlflow.get_run(run_id).data.tags
    assert json.loads(tags["mlflow.loggedArtifacts"]) == [
        {"path": "eval/results.json", "type": "table"},
        {"path": "eval/frame.json", "type": "table"},
    ]
    (dataset,) = json.loads(tags["modelreg.datasets"])
    assert dataset["name"] == "dataset" and dataset["context"] == "training" and len(dataset["digest"]) == 8


def test_log_image_from_an_array(fluent_targets: Services, tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0)
    with mlflow.start_run() as run:
        mlflow.log_image(pixels, "images/red.png")
    local = MlflowClient().download_artifacts(run.info.run_id, "images/red.png", str(tmp_path))
    assert np.array_equal(np.asarray(image_module.open(local)), pixels)


def test_log_figure_from_matplotlib(fluent_targets: Services) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    with mlflow.start_run() as run:
        mlflow.log_figure(figure, "plots/line.png")
    (info,) = MlflowClient().list_artifacts(run.info.run_id, "plots")
    assert info.path == "plots/line.png" and info.file_size > 0


def test_registry_in_mlflow_3_style(fluent_targets: Services, unique: str) -> None:
    name = f"Prices-{unique}"
    x = np.arange(20, dtype=float).reshape(-1, 2)
    model = LinearRegression().fit(x, x.sum(axis=1))
    with mlflow.start_run() as run:
        info = modelreg.sklearn.log_model(model, name="model", registered_model_name=name)
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    assert info.registered_model_version == 1
    (logged,) = json.loads(mlflow.get_run(run.info.run_id).data.tags["mlflow.log-model.history"])
    assert (logged["run_id"], logged["artifact_path"]) == (run.info.run_id, "model")
    assert "sklearn" in logged["flavors"] and logged["utc_time_created"]

    version = mlflow.register_model(info.model_uri, name, tags={"source": "fluent"})
    assert (
        version.version == "2" and isinstance(version.version, str) and version.tags == {"source": "fluent"}
    )
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", version.version)
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == "2" and champion.aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "2"}
    run_root = mlflow.get_run(run.info.run_id).info.artifact_uri
    assert client.get_model_version_download_uri(name, "2") == f"{run_root}/model"
    assert Path(run_root.removeprefix("file://"), "model", "modelreg-model.json").is_file()

    copied = client.copy_model_version(f"models:/{name}@champion", f"{name}-copy")
    assert (copied.name, copied.version, copied.run_id) == (f"{name}-copy", "1", run.info.run_id)

    model_info = mlflow.models.get_model_info(f"models:/{name}/2")
    assert (model_info.run_id, model_info.artifact_path) == (run.info.run_id, "model")
    assert model_info.registered_model_version == 2 and "python_function" in model_info.flavors
    loaded = mlflow.models.Model.load(f"runs:/{run.info.run_id}/model")
    assert loaded.run_id == run.info.run_id and "sklearn" in loaded.flavors

    with pytest.raises(MlflowException) as error:
        client.get_model_version(name, "9")
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_order_by_ties_are_broken_newest_first_then_by_run_id(fluent_targets: Services, unique: str) -> None:
    """MLflow orders runs that tie on every order_by key by start_time DESC, then run id: a sweep
    whose trials score the same lists them newest first on both."""
    client = MlflowClient()
    experiment_id = client.create_experiment(f"ties-{unique}")
    started: dict[str, int] = {}
    for start_time in (1_000, 6_000, 3_000, 5_000, 2_000, 4_000):
        run = client.create_run(experiment_id, start_time=start_time)
        client.log_metric(run.info.run_id, "score", 0.5)
        started[run.info.run_id] = start_time
    newest_first = sorted(started, key=lambda run_id: -started[run_id])
    for order in (["metrics.score DESC"], ["metrics.score ASC", "params.missing"]):
        found = client.search_runs([experiment_id], order_by=order)
        assert [run.info.run_id for run in found] == newest_first


def test_a_batch_with_a_refused_run_name_stores_nothing_and_a_resent_batch_logs_once(
    fluent_targets: Services, unique: str
) -> None:
    """log_batch's mlflow.runName renames in a call of its own, made first: a name the service
    refuses stores nothing of the batch, so sending the batch again cannot log its metrics twice."""
    client = MlflowClient()
    run = client.create_run(client.create_experiment(f"batch-{unique}"))
    run_id = run.info.run_id
    metric = mlflow.entities.Metric("loss", 0.5, 1, 0)
    for _ in range(2):
        with pytest.raises(MlflowException):
            client.log_batch(run_id, metrics=[metric], tags=[RunTag("mlflow.runName", "n" * 300)])
    assert client.get_metric_history(run_id, "loss") == []
    client.log_batch(run_id, metrics=[metric], tags=[RunTag("mlflow.runName", "renamed")])
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [0.5]
    assert client.get_run(run_id).info.run_name == "renamed"


@pytest.mark.parametrize("artifact_file", ["..", "a/.", "notes/..", "/"])
def test_an_artifact_file_that_names_no_file_is_refused(fluent_targets: Services, artifact_file: str) -> None:
    with mlflow.start_run(), pytest.raises(MlflowException) as error:
        mlflow.log_text("hi", artifact_file)
    assert "artifact_file" in error.value.message


def test_a_run_started_with_a_hundred_tags_keeps_them_and_its_system_tags(fluent_targets: Services) -> None:
    """The documented limit is 100 tags per call: the system tags the client adds do not eat
    into it."""
    tags = {f"t{i}": str(i) for i in range(100)}
    with mlflow.start_run(tags=tags, description="full") as run:
        pass
    stored = MlflowClient().get_run(run.info.run_id).data.tags
    assert {k: stored[k] for k in tags} == tags
    assert stored["mlflow.note.content"] == "full" and stored["mlflow.source.type"] == "LOCAL"
