"""The model registry over MLflow's REST API: models, versions, tags, aliases, stages, download
URIs, asserted over HTTP and through modelreg's own client (numbering, lineage, history)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow_gateway import ids
from tests.integration.mlflow_rest.conftest import Rest

Json = Mapping[str, object]


def ok(rest: Rest, method: str, path: str, body: Json | None = None, **params: object) -> Any:
    """The JSON of a call that must succeed, to be indexed freely."""
    return rest.ok(method, path, dict(body) if body is not None else None, **params)


def logged_run(rest: Rest, tmp_path: Path, artifact_path: str = "model") -> tuple[str, str]:
    """(experiment id, run id) of a new run holding a model's files under ``artifact_path``."""
    experiment = rest.tracking.create_experiment(f"exp-{uuid.uuid4().hex}")
    run = rest.tracking.create_run(experiment.experiment_id)
    model_dir = tmp_path / run.info.run_id
    model_dir.mkdir()
    for name, content in (("MLmodel", "flavors: {}\n"), ("model.pkl", "weights")):
        (model_dir / name).write_text(content)
        rest.tracking.log_artifact(run.info.run_id, model_dir / name, artifact_path)
    return experiment.experiment_id, run.info.run_id


def model(rest: Rest, name: str) -> Any:
    return ok(rest, "POST", "/registered-models/create", {"name": name})


def version(rest: Rest, name: str, source: str, **fields: object) -> Any:
    return ok(rest, "POST", "/model-versions/create", {"name": name, "source": source, **fields})[
        "model_version"
    ]


def error(
    rest: Rest, method: str, path: str, body: Json | None = None, **params: object
) -> tuple[int, str, str]:
    response = rest.call(method, path, dict(body) if body is not None else None, **params)
    payload = response.json()
    return response.status_code, payload["error_code"], payload["message"]


def actions(rest: Rest, name: str) -> list[str]:
    return [event.action for event in rest.registry.list_model_events(name)]


# Registered models


def test_a_registered_models_life_over_http_is_modelregs(rest: Rest) -> None:
    created = ok(
        rest,
        "POST",
        "/registered-models/create",
        {"name": "churn", "description": "first", "tags": [{"key": "team", "value": "ml"}]},
    )["registered_model"]
    assert isinstance(created, dict)
    assert created["name"] == "churn"
    assert created["description"] == "first"
    assert created["tags"] == [{"key": "team", "value": "ml"}]
    assert isinstance(created["creation_timestamp"], int) and created["creation_timestamp"] > 0
    assert rest.registry.get_registered_model("churn").tags == {"team": "ml"}

    renamed = ok(rest, "POST", "/registered-models/rename", {"name": "churn", "new_name": "churn2"})
    assert renamed["registered_model"]["name"] == "churn2"
    updated = rest.http.patch(
        "/api/2.0/mlflow/registered-models/update", json={"name": "churn2", "description": "second"}
    )
    assert updated.json()["registered_model"]["description"] == "second"
    ok(rest, "POST", "/registered-models/set-tag", {"name": "churn2", "key": "stage", "value": "beta"})
    ok(rest, "DELETE", "/registered-models/delete-tag", {"name": "churn2", "key": "team"})

    got = ok(rest, "GET", "/registered-models/get", name="churn2")["registered_model"]
    assert got["description"] == "second"
    assert got["tags"] == [{"key": "stage", "value": "beta"}]
    seen = rest.registry.get_registered_model("churn2")
    assert (seen.description, dict(seen.tags)) == ("second", {"stage": "beta"})
    assert actions(rest, "churn2")[:2] == ["MODEL_CREATED", "MODEL_RENAMED"]

    ok(rest, "DELETE", "/registered-models/delete", {"name": "churn2"})
    assert error(rest, "GET", "/registered-models/get", name="churn2")[:2] == (404, "RESOURCE_DOES_NOT_EXIST")


def test_an_update_without_description_changes_nothing_and_an_empty_one_clears_it(rest: Rest) -> None:
    ok(rest, "POST", "/registered-models/create", {"name": "m", "description": "kept"})
    unchanged = rest.http.patch("/api/2.0/mlflow/registered-models/update", json={"name": "m"}).json()
    assert unchanged["registered_model"]["description"] == "kept"
    cleared = rest.http.patch(
        "/api/2.0/mlflow/registered-models/update", json={"name": "m", "description": ""}
    )
    assert "description" not in cleared.json()["registered_model"]
    assert rest.registry.get_registered_model("m").description == ""


def test_a_taken_name_and_a_missing_model_are_mlflows_errors(rest: Rest) -> None:
    model(rest, "m")
    assert error(rest, "POST", "/registered-models/create", {"name": "m"})[:2] == (
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    model(rest, "other")
    renamed_onto = error(rest, "POST", "/registered-models/rename", {"name": "other", "new_name": "m"})
    assert renamed_onto[:2] == (400, "RESOURCE_ALREADY_EXISTS")
    for method, path, body in [
        ("POST", "/registered-models/rename", {"name": "ghost", "new_name": "x"}),
        ("DELETE", "/registered-models/delete", {"name": "ghost"}),
        ("POST", "/registered-models/set-tag", {"name": "ghost", "key": "k", "value": "v"}),
        ("POST", "/model-versions/create", {"name": "ghost", "source": f"runs:/{'a' * 32}/model"}),
        ("GET", "/model-versions/get", None),
    ]:
        params = {"name": "ghost", "version": "1"} if method == "GET" else {}
        assert error(rest, method, path, body, **params)[:2] == (404, "RESOURCE_DOES_NOT_EXIST"), path


# Versions


def test_versions_from_a_run_are_numbered_checked_and_recorded(rest: Rest, tmp_path: Path) -> None:
    experiment_id, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    first = version(
        rest,
        "m",
        f"runs:/{run_id}/model",
        run_id=run_id,
        description="baseline",
        tags=[{"key": "k", "value": "v"}],
    )
    second = version(rest, "m", f"runs:/{run_id}/model")
    assert (first["version"], second["version"]) == ("1", "2")
    assert first["status"] == "READY"
    assert first["current_stage"] == "None"
    assert first["source"] == f"runs:/{run_id}/model"
    assert first["run_id"] == second["run_id"] == run_id
    assert first["description"] == "baseline"
    assert "description" not in second  # as MLflow's server: unset, so its client reads None
    assert first["tags"] == [{"key": "k", "value": "v"}]
    assert "model_id" not in first

    registered = rest.registry.get_model_version("m", 1)
    assert registered.lineage is not None
    assert registered.lineage.experiment_id == experiment_id
    assert {f.path for f in registered.lineage.files} == {"MLmodel", "model.pkl"}
    assert actions(rest, "m") == ["MODEL_CREATED", "VERSION_CREATED", "VERSION_CREATED"]

    got = ok(rest, "GET", "/model-versions/get", name="m", version="2")["model_version"]
    assert got == second
    uri = ok(rest, "GET", "/model-versions/get-download-uri", name="m", version="1")["artifact_uri"]
    assert uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model"
    latest = ok(rest, "GET", "/registered-models/get", name="m")["registered_model"]["latest_versions"]
    assert [v["version"] for v in latest] == ["2"]


def test_the_proxy_uri_mlflow_2_clients_send_registers_the_runs_files(rest: Rest, tmp_path: Path) -> None:
    experiment_id, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    created = version(rest, "m", f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model", run_id=run_id)
    assert created["source"] == f"runs:/{run_id}/model"
    assert rest.registry.get_model_version("m", 1).source == f"runs:/{run_id}/model"
    uri = ok(rest, "GET", "/model-versions/get-download-uri", name="m", version="1")["artifact_uri"]
    assert uri == ids.run_artifact_uri(experiment_id, run_id) + "/model"


def test_a_logged_model_source_registers_its_files_and_reads_back_as_mlflow_3s(
    rest: Rest, tmp_path: Path
) -> None:
    experiment_id, run_id = logged_run(rest, tmp_path, artifact_path="unused")
    logged = ok(rest, "POST", "/logged-models", {"experiment_id": experiment_id, "source_run_id": run_id})
    model_id = str(logged["model"]["info"]["model_id"])  # type: ignore[index]
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    rest.tracking.log_artifact(run_id, tmp_path / "MLmodel", ids.model_files(model_id))
    model(rest, "m")

    created = version(rest, "m", f"models:/{model_id}", run_id=run_id, model_id=model_id)
    assert (created["source"], created["model_id"], created["run_id"]) == (
        f"models:/{model_id}",
        model_id,
        run_id,
    )
    registered = rest.registry.get_model_version("m", 1)
    assert registered.source == ids.registry_source(model_id)
    assert registered.lineage is not None and [f.path for f in registered.lineage.files] == ["MLmodel"]
    # MLflow 3's register_model("models:/<id>") sends no run_id: the model's id names its run.
    assert version(rest, "m", f"models:/{model_id}")["run_id"] == run_id

    uri = ok(rest, "GET", "/model-versions/get-download-uri", name="m", version="1")["artifact_uri"]
    assert uri == ids.logged_model_artifact_uri(experiment_id, model_id)
    searched = ok(rest, "GET", "/model-versions/search", filter="name = 'm'")["model_versions"]
    assert [(v["source"], v["model_id"]) for v in searched] == [(f"models:/{model_id}", model_id)] * 2


def test_a_deleted_or_unknown_logged_model_is_not_registered(rest: Rest, tmp_path: Path) -> None:
    experiment_id, run_id = logged_run(rest, tmp_path, artifact_path="unused")
    logged = ok(rest, "POST", "/logged-models", {"experiment_id": experiment_id, "source_run_id": run_id})
    model_id = str(logged["model"]["info"]["model_id"])  # type: ignore[index]
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    rest.tracking.log_artifact(run_id, tmp_path / "MLmodel", ids.model_files(model_id))
    never_created = ids.new_model_id(run_id)
    rest.tracking.log_artifact(run_id, tmp_path / "MLmodel", ids.model_files(never_created))
    ok(rest, "DELETE", f"/logged-models/{model_id}")
    model(rest, "m")
    for gone in (model_id, never_created):
        response = rest.call("POST", "/model-versions/create", {"name": "m", "source": f"models:/{gone}"})
        assert (response.status_code, response.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert list(rest.registry.search_model_versions("name = 'm'")) == []


def test_a_version_copied_from_models_uri_keeps_the_source_and_run(rest: Rest, tmp_path: Path) -> None:
    """What MLflow's copy_model_version sends: the source version as models:/<name>/<version>."""
    _, run_id = logged_run(rest, tmp_path)
    model(rest, "src")
    version(rest, "src", f"runs:/{run_id}/model")
    ok(rest, "POST", "/registered-models/alias", {"name": "src", "alias": "champion", "version": "1"})
    model(rest, "dst")

    copied = version(rest, "dst", "models:/src/1", run_id=run_id, run_link="", description="copy")
    by_alias = version(rest, "dst", "models:/src@champion")
    assert (copied["version"], by_alias["version"]) == ("1", "2")
    for registered in (rest.registry.get_model_version("dst", 1), rest.registry.get_model_version("dst", 2)):
        assert (registered.source, registered.run_id) == (f"runs:/{run_id}/model", run_id)
        assert registered.lineage is not None and registered.lineage.run_id == run_id
    assert copied["description"] == "copy"

    _, other_run = logged_run(rest, tmp_path)
    status, code, message = error(
        rest,
        "POST",
        "/model-versions/create",
        {"name": "dst", "source": "models:/src/1", "run_id": other_run},
    )
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "run_id" in message
    assert error(rest, "POST", "/model-versions/create", {"name": "dst", "source": "models:/src/9"})[0] == 404


FOREIGN_SOURCES = [
    "file:///tmp/model",
    "s3://bucket/model",
    "https://example.com/model",
    "dbfs:/models/m",
    "/local/path/model",
    "models://profile/src/1",
    "mlflow-artifacts://elsewhere:5000/0/0123456789abcdef0123456789abcdef/artifacts/model",
    "mlflow-artifacts:/0/0123456789abcdef0123456789abcdef/artifacts",
    "mlflow-artifacts:/0/not-a-run/artifacts/model",
    "models:/m-0123",
    "runs:/not-a-run/model",
    "RUNS:/0123456789abcdef0123456789abcdef/model",
    "Models:/src/1",
    "runs://0123456789abcdef0123456789abcdef/model",
    "models:m-0123456789abcdef0123456789abcdef01234567",
]


def test_sources_outside_the_tracking_service_are_refused_naming_source(rest: Rest) -> None:
    model(rest, "m")
    for source in FOREIGN_SOURCES:
        status, code, message = error(rest, "POST", "/model-versions/create", {"name": "m", "source": source})
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), source
        assert message.startswith("source"), message
    assert list(rest.registry.search_model_versions()) == []


def test_registering_from_a_run_or_files_that_do_not_exist_is_a_client_error(
    rest: Rest, tmp_path: Path
) -> None:
    _, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    missing_run = "f" * 32
    for body in [
        {"source": f"runs:/{missing_run}/model", "run_id": missing_run},
        {"source": f"runs:/{run_id}/no-such-dir"},
        {"source": f"models:/{ids.new_model_id(missing_run)}"},
        {"source": f"runs:/{run_id}/model", "run_id": missing_run},
    ]:
        status, code, _ = error(rest, "POST", "/model-versions/create", {"name": "m", **body})
        assert 400 <= status < 500 and code != "INTERNAL_ERROR", body
    assert list(rest.registry.search_model_versions()) == []


def test_run_id_and_model_id_must_name_what_the_source_names(rest: Rest, tmp_path: Path) -> None:
    _, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    other_model = ids.new_model_id(run_id)
    for body, named in [
        ({"source": f"runs:/{run_id}/model", "run_id": "a" * 32}, "run_id"),
        ({"source": f"runs:/{run_id}/model", "model_id": other_model}, "model_id"),
        ({"source": f"models:/{other_model}", "model_id": ids.new_model_id(run_id)}, "model_id"),
        ({"source": f"runs:/{run_id}/model", "run_link": "http://elsewhere/run"}, "run_link"),
    ]:
        status, code, message = error(rest, "POST", "/model-versions/create", {"name": "m", **body})
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), body
        assert message.startswith(named), message


def test_a_versions_description_tags_and_deletion(rest: Rest, tmp_path: Path) -> None:
    _, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    version(rest, "m", f"runs:/{run_id}/model")
    version(rest, "m", f"runs:/{run_id}/model")
    updated = rest.http.patch(
        "/api/2.0/mlflow/model-versions/update", json={"name": "m", "version": "1", "description": "d"}
    )
    assert updated.json()["model_version"]["description"] == "d"
    ok(rest, "POST", "/model-versions/set-tag", {"name": "m", "version": "1", "key": "k", "value": "v"})
    ok(rest, "POST", "/model-versions/set-tag", {"name": "m", "version": "1", "key": "gone", "value": "x"})
    ok(rest, "DELETE", "/model-versions/delete-tag", {"name": "m", "version": "1", "key": "gone"})
    got = ok(rest, "GET", "/model-versions/get", name="m", version="1")["model_version"]
    assert got["tags"] == [{"key": "k", "value": "v"}]
    seen = rest.registry.get_model_version("m", 1)
    assert (seen.description, dict(seen.tags)) == ("d", {"k": "v"})

    ok(rest, "DELETE", "/model-versions/delete", {"name": "m", "version": "1"})
    assert error(rest, "GET", "/model-versions/get", name="m", version="1")[:2] == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert "VERSION_DELETED" in actions(rest, "m")
    # Numbers are never reused: the next version is 3.
    assert version(rest, "m", f"runs:/{run_id}/model")["version"] == "3"


def test_the_caller_named_by_basic_credentials_is_the_versions_user_and_actor(
    rest: Rest, tmp_path: Path
) -> None:
    _, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    alice = {"Authorization": "Basic " + base64.b64encode(b"alice:").decode()}
    response = rest.http.post(
        "/api/2.0/mlflow/model-versions/create",
        json={"name": "m", "source": f"runs:/{run_id}/model"},
        headers=alice,
    )
    assert response.json()["model_version"]["user_id"] == "alice"
    assert [e.actor for e in rest.registry.list_model_events("m") if e.action == "VERSION_CREATED"] == [
        "alice"
    ]


# Stages


def test_stage_transitions_follow_the_requests_archive_flag(rest: Rest, tmp_path: Path) -> None:
    _, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    for _ in range(3):
        version(rest, "m", f"runs:/{run_id}/model")

    def transition(number: str, stage: str, **extra: object) -> Any:
        body = {"name": "m", "version": number, "stage": stage, **extra}
        return ok(rest, "POST", "/model-versions/transition-stage", body)["model_version"]

    assert transition("1", "Production")["current_stage"] == "Production"
    # MLflow's default: the stage is shared, the holder is not archived (modelreg's client archives).
    assert transition("2", "production")["current_stage"] == "Production"
    assert rest.registry.get_model_version("m", 1).current_stage == "Production"
    assert transition("3", "Production", archive_existing_versions=True)["current_stage"] == "Production"
    assert [rest.registry.get_model_version("m", n).current_stage for n in (1, 2)] == ["Archived", "Archived"]
    transition("1", "Staging")
    assert actions(rest, "m").count("STAGE_TRANSITIONED") >= 4

    posted = ok(
        rest, "POST", "/registered-models/get-latest-versions", {"name": "m", "stages": ["Production"]}
    )
    assert [v["version"] for v in posted["model_versions"]] == ["3"]
    by_get = rest.http.get(
        "/api/2.0/mlflow/registered-models/get-latest-versions",
        params=[("name", "m"), ("stages", "Staging"), ("stages", "Archived")],
    ).json()
    assert sorted((v["current_stage"], v["version"]) for v in by_get["model_versions"]) == [
        ("Archived", "2"),
        ("Staging", "1"),
    ]
    every_stage = ok(rest, "GET", "/registered-models/get-latest-versions", name="m")["model_versions"]
    assert {v["current_stage"] for v in every_stage} == {"Production", "Staging", "Archived"}

    status, code, message = error(
        rest, "POST", "/model-versions/transition-stage", {"name": "m", "version": "1", "stage": "Shipped"}
    )
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "stage" in message


# Aliases


def test_aliases_set_read_and_delete(rest: Rest, tmp_path: Path) -> None:
    _, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    version(rest, "m", f"runs:/{run_id}/model")
    version(rest, "m", f"runs:/{run_id}/model")
    ok(rest, "POST", "/registered-models/alias", {"name": "m", "alias": "champion", "version": "1"})
    ok(rest, "POST", "/registered-models/alias", {"name": "m", "alias": "champion", "version": "2"})

    by_alias = ok(rest, "GET", "/registered-models/alias", name="m", alias="champion")["model_version"]
    assert (by_alias["version"], by_alias["aliases"]) == ("2", ["champion"])
    registered = ok(rest, "GET", "/registered-models/get", name="m")["registered_model"]
    assert registered["aliases"] == [{"alias": "champion", "version": "2"}]
    assert rest.registry.get_model_version_by_alias("m", "champion").version == 2
    assert actions(rest, "m")[-2:] == ["ALIAS_SET", "ALIAS_MOVED"]

    ok(rest, "DELETE", "/registered-models/alias", {"name": "m", "alias": "champion"})
    gone = error(rest, "GET", "/registered-models/alias", name="m", alias="champion")
    assert gone[:2] == (404, "RESOURCE_DOES_NOT_EXIST")
    assert (
        error(rest, "POST", "/registered-models/alias", {"name": "m", "alias": "a", "version": "9"})[0] == 404
    )


# Bad input


BAD_BODIES: list[tuple[str, str, Json, str]] = [
    ("POST", "/registered-models/create", {"name": "m", "bogus": 1}, "bogus"),
    ("POST", "/registered-models/create", {"name": "m", "deployment_job_id": "j"}, "deployment_job_id"),
    ("POST", "/registered-models/create", {}, "name"),
    ("POST", "/registered-models/create", {"name": 3}, "name"),
    ("POST", "/registered-models/create", {"name": "m", "tags": {"k": "v"}}, "tags"),
    ("POST", "/registered-models/create", {"name": "m", "tags": [{"value": "v"}]}, "tags[0].key"),
    ("POST", "/registered-models/rename", {"name": "m"}, "new_name"),
    ("POST", "/registered-models/set-tag", {"name": "m", "value": "v"}, "key"),
    ("POST", "/model-versions/create", {"name": "m"}, "source"),
    ("POST", "/model-versions/create", {"name": "m", "source": "runs:/x/y", "extra": True}, "extra"),
    ("POST", "/model-versions/create", {"name": "m", "source": ["runs:/x/y"]}, "source"),
    ("POST", "/model-versions/transition-stage", {"name": "m", "version": "1"}, "stage"),
    (
        "POST",
        "/model-versions/transition-stage",
        {"name": "m", "version": "1", "stage": "Staging", "archive_existing_versions": "yes"},
        "archive_existing_versions",
    ),
    ("POST", "/registered-models/alias", {"name": "m", "alias": "a", "version": "abc"}, "version"),
    ("POST", "/model-versions/set-tag", {"name": "m", "version": 1, "key": "k"}, "version"),
    ("DELETE", "/model-versions/delete", {"name": "m", "version": "-1"}, "version"),
    ("DELETE", "/model-versions/delete", {"name": "m", "version": "0"}, "version"),
    ("DELETE", "/model-versions/delete", {"name": "m", "version": str(2**63)}, "version"),
    ("DELETE", "/model-versions/delete", {"name": "m", "version": "9" * 5000}, "version"),
    ("DELETE", "/model-versions/delete", {"name": "m"}, "version"),
]
BAD_QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("/model-versions/get", {"name": "m", "version": "abc"}, "version"),
    ("/model-versions/get", {"name": "m", "version": "1.5"}, "version"),
    ("/model-versions/get", {"name": "m", "version": "99999999999999999999"}, "version"),
    ("/model-versions/get-download-uri", {"name": "m", "version": "x"}, "version"),
    ("/model-versions/get", {"version": "1"}, "name"),
    ("/registered-models/get", {}, "name"),
    ("/registered-models/get", {"name": "m", "unknown": "1"}, "unknown"),
    ("/registered-models/alias", {"name": "m"}, "alias"),
    ("/registered-models/search", {"max_results": "0"}, "max_results"),
    ("/registered-models/search", {"max_results": "1001"}, "max_results"),
    ("/registered-models/search", {"max_results": "ten"}, "max_results"),
    ("/model-versions/search", {"max_results": "200001"}, "max_results"),
    ("/model-versions/search", {"max_results": str(2**64)}, "max_results"),
]


def test_bad_fields_are_refused_naming_the_field(rest: Rest, tmp_path: Path) -> None:
    """Refused before any service call: against an existing model and version, so a check that
    let a bad field through would reach the registry and not answer this error."""
    run_id = logged_run(rest, tmp_path)[1]
    model(rest, "m")
    version(rest, "m", f"runs:/{run_id}/model")
    for method, path, body, named in BAD_BODIES:
        status, code, message = error(rest, method, path, body)
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), (path, body, message)
        assert named in message, (body, message)
    for path, params, named in BAD_QUERIES:
        status, code, message = error(rest, "GET", path, None, **params)
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), (path, params, message)
        assert named in message, (params, message)
