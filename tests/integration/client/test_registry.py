"""The registry through modelreg.Client, as the MLflow walkthrough uses it, and modelreg's additions."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import modelreg
from modelreg import Client
from modelreg.exceptions import FailedPrecondition, InvalidArgument, NotFound
from tests.servers import Services

from .conftest import ACTOR


def _run_with_model(client: Client, model_dir: Path, rmse: float) -> str:
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "rmse", rmse)
    client.log_param(run_id, "alpha", 0.5)
    client.log_artifacts(run_id, str(model_dir), "model")
    return run_id


def test_promotion_workflow(client: Client, model_dir: Path, unique: str) -> None:
    name = f"HousePricePredictor-{unique}"
    model = client.create_registered_model(name, tags={"domain": "housing"}, description="prices")
    assert (model.name, model.description, model.tags) == (name, "prices", {"domain": "housing"})
    run_ids = [_run_with_model(client, model_dir, rmse) for rmse in (0.3, 0.2)]
    for run_id in run_ids:
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, description="v")

    versions = client.search_model_versions(filter_string=f"name='{name}'")
    assert [v.version for v in versions] == [2, 1]  # newest first
    assert versions[0].run_id == run_ids[1] and versions[0].source == f"runs:/{run_ids[1]}/model"
    assert versions[0].current_stage == "None" and versions[0].status == "READY"
    assert versions[0].user_id == ACTOR
    assert [v.lineage for v in versions] == [None, None]  # a listing leaves the lineage out
    full = client.search_model_versions(filter_string=f"name='{name}'", include_lineage=True)
    lineage = full[1].lineage
    assert lineage is not None and lineage.metrics == {"rmse": 0.3} and lineage.params == {"alpha": "0.5"}
    assert sorted(f.path for f in lineage.files) == ["MLmodel", "sub/weights.bin"]
    assert client.get_model_version(name, 1).lineage == lineage

    for version in (1, "2"):  # MLflow users pass strings too
        client.transition_model_version_stage(name=name, version=version, stage="Staging")
        client.transition_model_version_stage(name=name, version=version, stage="Production")
    assert client.get_model_version(name, 1).current_stage == "Archived"  # archived by default
    production = client.get_latest_versions(name, stages=["Production"])
    assert [v.version for v in production] == [2]
    assert production[0].source == f"runs:/{run_ids[1]}/model"
    # MLflow answers the storage location of the version's files, not its runs:/ source.
    run_root = client.get_run(run_ids[1]).info.artifact_uri
    assert client.get_model_version_download_uri(name, 2) == f"{run_root}/model"
    assert client.resolve_model_uri(f"models:/{name}/Production").version == 2

    before_rollback = int(time.time() * 1000)
    time.sleep(0.01)
    rollback = client.rollback_stage(name, "Production", comment="bad release")
    assert rollback.restored.version == 1 and rollback.restored.current_stage == "Production"
    assert rollback.archived is not None and rollback.archived.version == 2
    assert client.get_stage_holder_at(name, "Production", before_rollback) == [2]
    assert client.get_stage_holder_at(name, "Production", int(time.time() * 1000)) == [1]

    history = client.get_model_history(name)
    transitions = [
        (ev.version, ev.from_value, ev.to_value) for ev in history if ev.action == "STAGE_TRANSITIONED"
    ]
    assert (2, "Staging", "Production") in transitions
    assert any(ev.action == "STAGE_ROLLED_BACK" and ev.comment == "bad release" for ev in history)
    assert all(ev.actor == ACTOR for ev in history)
    assert [ev.event_id for ev in history] == sorted(ev.event_id for ev in history)
    assert {ev.version for ev in client.get_model_history(name, version=2)} == {2}


def test_archive_existing_versions_false_shares_the_stage(
    client: Client, model_dir: Path, unique: str
) -> None:
    name = f"shared-{unique}"
    client.create_registered_model(name)
    for _ in range(2):
        run_id = _run_with_model(client, model_dir, 0.1)
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.transition_model_version_stage(name, 1, "Production")
    client.transition_model_version_stage(name, 2, "Production", archive_existing_versions=False)
    assert [client.get_model_version(name, v).current_stage for v in (1, 2)] == ["Production", "Production"]


def test_models_tags_aliases_and_paging(client: Client, model_dir: Path, unique: str) -> None:
    name = f"aliased-{unique}"
    client.create_registered_model(name)
    run_id = _run_with_model(client, model_dir, 0.1)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags={"k": "v"})
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == 1
    assert client.get_registered_model(name).aliases == {"champion": 1}
    assert client.get_model_version(name, 1).aliases == ["champion"]
    assert client.resolve_model_uri(f"models:/{name}@champion").version == 1
    assert client.resolve_model_uri(f"models:/{name}/latest").version == 2
    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(NotFound) as no_alias:
        client.get_model_version_by_alias(name, "champion")
    assert no_alias.value.reason == "ALIAS_NOT_FOUND"

    client.set_registered_model_tag(name, "owner", "ana")
    client.delete_registered_model_tag(name, "owner")
    client.set_model_version_tag(name, 2, "validated", True)
    client.delete_model_version_tag(name, 1, "k")
    assert client.get_model_version(name, 2).tags == {"validated": "True"}
    assert client.get_model_version(name, 1).tags == {}
    assert client.update_model_version(name, 2, description="better").description == "better"
    assert client.update_registered_model(name, description="d").description == "d"

    page = client.search_model_versions(f"name='{name}'", max_results=1)
    assert [v.version for v in page] == [2] and page.token is not None
    rest = client.search_model_versions(f"name='{name}'", max_results=5, page_token=page.token)
    assert [v.version for v in rest] == [1] and rest.token is None

    renamed = client.rename_registered_model(name, f"{name}-new")
    assert renamed.name == f"{name}-new"
    assert [m.name for m in client.search_registered_models(filter_string=f"name LIKE '{name}%'")] == [
        f"{name}-new"
    ]
    client.delete_model_version(f"{name}-new", 1)
    client.delete_registered_model(f"{name}-new")
    with pytest.raises(NotFound) as gone:
        client.get_registered_model(f"{name}-new")
    assert gone.value.reason == "REGISTERED_MODEL_NOT_FOUND"


def test_registry_errors(client: Client, model_dir: Path, unique: str) -> None:
    name = f"errors-{unique}"
    client.create_registered_model(name)
    with pytest.raises(NotFound) as missing:
        client.get_model_version(name, 7)
    assert missing.value.reason == "MODEL_VERSION_NOT_FOUND"
    run_id = _run_with_model(client, model_dir, 0.1)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    with pytest.raises(InvalidArgument) as stage:
        client.transition_model_version_stage(name, 1, "Prod")
    assert stage.value.reason == "INVALID_STAGE"
    with pytest.raises(FailedPrecondition) as no_target:
        client.rollback_stage(name, "Production")
    assert no_target.value.reason == "NO_ROLLBACK_TARGET"
    with pytest.raises(FailedPrecondition) as no_artifact:
        client.create_model_version(name, f"runs:/{run_id}/absent", run_id=run_id)
    assert no_artifact.value.reason == "ARTIFACT_NOT_FOUND"
    client.delete_run(run_id)
    with pytest.raises(FailedPrecondition) as deleted:
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    assert deleted.value.reason == "RUN_DELETED"


def test_lineage_sees_buffered_metrics(fluent_targets: Services, model_dir: Path, unique: str) -> None:
    name = f"lineage-{unique}"
    registry = modelreg.fluent.registry_client()
    registry.create_registered_model(name)
    with modelreg.start_run() as run:
        modelreg.log_metric("rmse", 0.42)  # still in the buffer when the version is registered
        modelreg.log_artifacts(str(model_dir), "model")
        version = registry.create_model_version(
            name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
    assert version.lineage is not None and version.lineage.metrics == {"rmse": 0.42}
