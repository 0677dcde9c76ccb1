"""MLflow 3's LoggedModels: kept in the run that logged them, their files uploaded through the proxy."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlflow_gateway import ids
from tests.integration.mlflow_rest.conftest import Rest

Json = dict[str, Any]


def create(rest: Rest, **body: object) -> Json:
    model: Json = rest.ok("POST", "/logged-models", body)["model"]  # type: ignore[assignment]
    return model


def get(rest: Rest, model_id: str, *, allow_deleted: bool = False) -> Json:
    params = {"allow_deleted": "true"} if allow_deleted else {}
    response = rest.http.get(f"/api/2.0/mlflow/logged-models/{model_id}", params=params)
    assert response.status_code == 200, response.text
    model: Json = response.json()["model"]
    return model


def search(rest: Rest, **body: object) -> Json:
    return rest.ok("POST", "/logged-models/search", body)


def pairs(items: list[Json]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in items}


def proxy(artifact_uri: str, file: str) -> str:
    """The proxy URL of ``file`` below a LoggedModel's ``artifact_uri``, as MLflow's client makes it."""
    assert artifact_uri.startswith("mlflow-artifacts:/")
    return f"/api/2.0/mlflow-artifacts/artifacts/{artifact_uri.removeprefix('mlflow-artifacts:/')}/{file}"


def an_error(response: Any, status: int, code: str, named: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert named in response.json()["message"]


def test_lifecycle_in_the_source_run(rest: Rest) -> None:
    experiment_id = rest.tracking.create_experiment("lm").experiment_id
    run_id = rest.tracking.create_run(experiment_id).info.run_id
    model = create(
        rest,
        experiment_id=experiment_id,
        name="model",
        source_run_id=run_id,
        model_type="Classifier",
        params=[{"key": "alpha", "value": "0.5"}],
        tags=[{"key": "mlflow.user", "value": "ann"}],
    )
    info = model["info"]
    model_id = info["model_id"]
    assert re.fullmatch(rf"m-{run_id}[0-9a-f]{{8}}", model_id)
    assert (
        info["artifact_uri"]
        == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/logged-models/{model_id}"
    )
    assert (info["status"], info["name"], info["source_run_id"]) == ("LOGGED_MODEL_PENDING", "model", run_id)
    assert (info["experiment_id"], info["model_type"]) == (experiment_id, "Classifier")
    assert pairs(model["data"]["params"]) == {"alpha": "0.5"}
    assert pairs(info["tags"]) == {"mlflow.user": "ann"}

    # Files go through the proxy below artifact_uri, and land in the run, each with its digest.
    files = {"MLmodel": b"flavors:\n  sklearn: {}\n", "model.pkl": bytes(range(256)) * 40}
    for name, content in files.items():
        rest.http.put(proxy(info["artifact_uri"], name), content=content).raise_for_status()
    stored = rest.tracking.list_artifacts(run_id, f"logged-models/{model_id}", recursive=True)
    assert {(f.path, f.sha256) for f in stored} == {
        (f"logged-models/{model_id}/{name}", hashlib.sha256(content).hexdigest())
        for name, content in files.items()
    }
    listing = rest.ok("GET", f"/logged-models/{model_id}/artifacts/directories")
    assert listing == {
        "root_uri": info["artifact_uri"],
        "files": [
            {"path": "MLmodel", "is_dir": False, "file_size": len(files["MLmodel"])},
            {"path": "model.pkl", "is_dir": False, "file_size": len(files["model.pkl"])},
        ],
    }

    # MLflow's UI reads a LoggedModel's file by the model's id.
    ui_file = f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
    assert rest.http.get(ui_file, params={"artifact_file_path": "model.pkl"}).content == files["model.pkl"]
    an_error(rest.http.get(ui_file), 400, "INVALID_PARAMETER_VALUE", "artifact_file_path")
    an_error(
        rest.http.get(ui_file, params={"artifact_file_path": "../x"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "artifact_file_path",
    )
    an_error(
        rest.http.get(ui_file, params={"artifact_file_path": "absent"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "absent",
    )

    rest.ok("PATCH", f"/logged-models/{model_id}/tags", {"tags": [{"key": "stage", "value": "dev"}]})
    rest.ok("DELETE", f"/logged-models/{model_id}/tags/mlflow.user")
    rest.ok(
        "POST",
        f"/logged-models/{model_id}/params",
        {"model_id": model_id, "params": [{"key": "n", "value": "3"}]},
    )
    ready = rest.ok(
        "PATCH", f"/logged-models/{model_id}", {"model_id": model_id, "status": "LOGGED_MODEL_READY"}
    )
    assert ready["model"]["info"]["status"] == "LOGGED_MODEL_READY"  # type: ignore[index]

    again = get(rest, model_id)
    assert again["info"]["status"] == "LOGGED_MODEL_READY"
    assert pairs(again["info"]["tags"]) == {"stage": "dev"}
    assert pairs(again["data"]["params"]) == {"alpha": "0.5", "n": "3"}
    assert again["info"]["last_updated_timestamp_ms"] >= again["info"]["creation_timestamp_ms"]
    # The source run stays as its owner left it: a LoggedModel does not end it.
    assert rest.tracking.get_run(run_id).info.status == "RUNNING"

    found = search(
        rest, experiment_ids=[experiment_id], filter=f"name = 'model' AND source_run_id = '{run_id}'"
    )
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]

    rest.ok("DELETE", f"/logged-models/{model_id}", {"model_id": model_id})
    an_error(rest.call("GET", f"/logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST", model_id)
    assert get(rest, model_id, allow_deleted=True)["info"]["model_id"] == model_id
    assert search(rest, experiment_ids=[experiment_id]) == {"models": []}
    # Its files stay in the run.
    assert len(rest.tracking.list_artifacts(run_id, f"logged-models/{model_id}")) == 2


def test_a_model_goes_with_its_run(rest: Rest) -> None:
    run_id = rest.tracking.create_run("0").info.run_id
    model_id = create(rest, experiment_id="0", name="m", source_run_id=run_id)["info"]["model_id"]
    rest.tracking.delete_run(run_id)
    an_error(rest.call("GET", f"/logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST", model_id)
    assert search(rest, experiment_ids=["0"]) == {"models": []}
    assert get(rest, model_id, allow_deleted=True)["info"]["name"] == "m"
    rest.tracking.restore_run(run_id)
    assert get(rest, model_id)["info"]["name"] == "m"
    assert [m["info"]["model_id"] for m in search(rest, experiment_ids=["0"])["models"]] == [model_id]


def test_a_model_logged_outside_a_run_gets_a_run_of_its_own(rest: Rest) -> None:
    model = create(rest, experiment_id="0", name="standalone")
    info = model["info"]
    run_id = ids.run_of_model(info["model_id"])
    assert info["source_run_id"] == ""
    own = rest.tracking.get_run(run_id)
    assert (own.info.run_name, own.info.experiment_id, own.info.status) == ("standalone", "0", "RUNNING")
    rest.http.put(proxy(info["artifact_uri"], "MLmodel"), content=b"x").raise_for_status()
    rest.ok(
        "PATCH",
        f"/logged-models/{info['model_id']}",
        {"model_id": info["model_id"], "status": "LOGGED_MODEL_READY"},
    )
    assert rest.tracking.get_run(run_id).info.status == "FINISHED"

    unnamed = create(rest, experiment_id="0")["info"]
    assert unnamed["name"] == rest.tracking.get_run(ids.run_of_model(unnamed["model_id"])).info.run_name
    failed = unnamed["model_id"]
    rest.ok("PATCH", f"/logged-models/{failed}", {"model_id": failed, "status": 3})
    assert get(rest, failed)["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"
    assert rest.tracking.get_run(ids.run_of_model(failed)).info.status == "FAILED"


def test_state_longer_than_a_tag_value_is_split_and_joined(rest: Rest) -> None:
    run_id = rest.tracking.create_run("0").info.run_id
    params = [{"key": f"param_{i:03d}", "value": "v" * 100} for i in range(200)]  # ~25,000 characters
    model_id = create(rest, experiment_id="0", name="wide", source_run_id=run_id, params=params)["info"][
        "model_id"
    ]
    big_tags = [{"key": f"t{i}", "value": str(i) * 7000} for i in range(3)]
    rest.ok("PATCH", f"/logged-models/{model_id}/tags", {"tags": big_tags})
    model = get(rest, model_id)
    assert pairs(model["data"]["params"]) == {p["key"]: p["value"] for p in params}
    assert pairs(model["info"]["tags"]) == {t["key"]: t["value"] for t in big_tags}

    def parts() -> tuple[int, int]:
        """(continuation tags in use, continuation tags emptied)."""
        tags = rest.tracking.get_run(run_id).data.tags
        values = [value for key, value in tags.items() if key.startswith(ids.state_tag(model_id) + ".")]
        return sum(1 for v in values if v), sum(1 for v in values if not v)

    used, emptied = parts()
    assert (used, emptied) >= (6, 0)  # over 21,000 + 23,000 characters, in parts of 8,000

    for i in range(3):
        rest.ok("DELETE", f"/logged-models/{model_id}/tags/t{i}")
    assert get(rest, model_id)["info"]["tags"] == []
    used_now, emptied = parts()
    assert 3 <= used_now < used and emptied == used - used_now  # the parts no longer needed were emptied

    too_much = [{"key": f"x{i}", "value": "x" * 8000} for i in range(100)]
    response = rest.call("PATCH", f"/logged-models/{model_id}/tags", {"tags": too_much})
    an_error(response, 400, "INVALID_PARAMETER_VALUE", "tags")
    assert get(rest, model_id)["info"]["tags"] == []


def test_search_filters_orders_and_pages(rest: Rest) -> None:
    experiment_id = rest.tracking.create_experiment("search").experiment_id
    runs = [rest.tracking.create_run(experiment_id).info.run_id for _ in range(2)]
    made = {}
    for i, name in enumerate(["c", "a", "e", "b", "d"]):
        model = create(
            rest,
            experiment_id=experiment_id,
            name=name,
            source_run_id=runs[i % 2],
            model_type="LLM" if i % 2 else "Classifier",
            params=[{"key": "rank", "value": str(i)}],
            tags=[{"key": "team", "value": "Vision" if i < 3 else "nlp"}],
        )
        made[name] = model["info"]["model_id"]
    rest.ok("PATCH", f"/logged-models/{made['a']}", {"model_id": made["a"], "status": "LOGGED_MODEL_READY"})
    elsewhere = rest.tracking.create_experiment("other").experiment_id
    create(rest, experiment_id=elsewhere, name="a")

    def names(**body: object) -> list[str]:
        return [m["info"]["name"] for m in search(rest, experiment_ids=[experiment_id], **body)["models"]]

    by_name = [{"field_name": "name", "ascending": True}]
    assert names(order_by=by_name) == ["a", "b", "c", "d", "e"]
    assert names(order_by=[{"field_name": "name", "ascending": False}]) == ["e", "d", "c", "b", "a"]
    assert names(filter="name = 'a'") == ["a"]
    assert names(filter="status = 'READY'") == ["a"]
    assert names(filter="status != 'READY'", order_by=by_name) == ["b", "c", "d", "e"]
    assert names(filter="model_type = 'LLM'", order_by=by_name) == ["a", "b"]
    assert names(filter="tags.team ILIKE 'vis%'", order_by=by_name) == ["a", "c", "e"]
    assert names(filter="tags.team LIKE 'vis%'") == []
    assert names(filter="params.rank IN ('0', '4') AND tags.team = 'nlp'") == ["d"]
    assert names(filter=f"source_run_id = '{runs[1]}'", order_by=by_name) == ["a", "b"]
    assert names(filter="params.missing = 'x'") == []
    created = search(rest, experiment_ids=[experiment_id])["models"]
    first = min(m["info"]["creation_timestamp_ms"] for m in created)
    assert len(names(filter=f"creation_timestamp >= {first}")) == 5
    assert names(filter=f"creation_timestamp < {first}") == []
    # Default order: newest first, then by id.
    assert [(m["info"]["model_id"]) for m in created] == [
        m["info"]["model_id"]
        for m in sorted(created, key=lambda m: (-m["info"]["creation_timestamp_ms"], m["info"]["model_id"]))
    ]
    both = search(rest, experiment_ids=[experiment_id, elsewhere], filter="name = 'a'")["models"]
    assert len(both) == 2

    pages, token = [], None
    while True:
        page = search(
            rest,
            experiment_ids=[experiment_id],
            max_results=2,
            order_by=by_name,
            **({"page_token": token} if token else {}),
        )
        pages.append([m["info"]["name"] for m in page["models"]])
        token = page.get("next_page_token")
        if not token:
            break
    assert pages == [["a", "b"], ["c", "d"], ["e"]]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"filter": "metrics.accuracy > 0.5"}, "filter"),
        ({"filter": "name = 'a' OR name = 'b'"}, "filter"),
        ({"filter": "nonsense = 'x'"}, "filter"),
        ({"filter": "creation_timestamp > 'yesterday'"}, "filter"),
        ({"datasets": [{"dataset_name": "d"}]}, "datasets"),
        ({"order_by": [{"field_name": "metrics.accuracy"}]}, "order_by[0].field_name"),
        ({"order_by": [{"field_name": "name", "dataset_name": "d"}]}, "order_by[0].dataset_name"),
        ({"order_by": [{"field_name": "name", "bogus": 1}]}, "order_by[0].bogus"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"max_results": -1}, "max_results"),
        ({"max_results": 10_001}, "max_results"),
        ({"experiment_ids": []}, "experiment_ids"),
    ],
)
def test_searches_it_cannot_answer_are_refused(rest: Rest, body: Json, named: str) -> None:
    response = rest.call("POST", "/logged-models/search", {"experiment_ids": ["0"], **body})
    an_error(response, 400, "INVALID_PARAMETER_VALUE", named)


def test_bad_requests_name_their_field(rest: Rest) -> None:
    run_id = rest.tracking.create_run("0").info.run_id
    other = rest.tracking.create_experiment("other").experiment_id
    an_error(
        rest.call("POST", "/logged-models", {"name": "m"}), 400, "INVALID_PARAMETER_VALUE", "experiment_id"
    )
    an_error(
        rest.call("POST", "/logged-models", {"experiment_id": "0", "name": "a/b"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "name",
    )
    an_error(
        rest.call("POST", "/logged-models", {"experiment_id": other, "source_run_id": run_id}),
        400,
        "INVALID_PARAMETER_VALUE",
        "experiment_id",
    )
    an_error(
        rest.call(
            "POST", "/logged-models", {"experiment_id": "0", "tags": [{"key": "k", "value": "v" * 8001}]}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "tags[0].value",
    )
    model_id = create(rest, experiment_id="0", source_run_id=run_id, params=[{"key": "p", "value": "1"}])[
        "info"
    ]["model_id"]
    an_error(
        rest.call("POST", f"/logged-models/{model_id}/params", {"params": [{"key": "p", "value": "2"}]}),
        400,
        "INVALID_PARAMETER_VALUE",
        "params",
    )
    for status in ("DONE", "9" * 5000, "--1", "-1"):
        an_error(
            rest.call("PATCH", f"/logged-models/{model_id}", {"status": status}),
            400,
            "INVALID_PARAMETER_VALUE",
            "status",
        )
    an_error(
        rest.call("PATCH", f"/logged-models/{model_id}", {"model_id": "m-" + "0" * 40, "status": 2}),
        400,
        "INVALID_PARAMETER_VALUE",
        "model_id",
    )
    an_error(
        rest.call("DELETE", f"/logged-models/{model_id}/tags/absent"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "absent",
    )
    an_error(
        rest.call("POST", "/logged-models", {"experiment_id": "0", "source_run_id": "0" * 32}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "",
    )
    for unknown in ("m-" + "0" * 40, f"m-{run_id}00000000", "m-nothing", "42"):
        an_error(rest.call("GET", f"/logged-models/{unknown}"), 404, "RESOURCE_DOES_NOT_EXIST", unknown)
    # A run tag that looks like a LoggedModel's state but is not one is no LoggedModel.
    forged = f"m-{run_id}ffffffff"
    rest.tracking.set_tag(run_id, ids.state_tag(forged), "{not json")
    an_error(rest.call("GET", f"/logged-models/{forged}"), 404, "RESOURCE_DOES_NOT_EXIST", forged)
    assert [m["info"]["model_id"] for m in search(rest, experiment_ids=["0"])["models"]] == [model_id]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200), field=st.sampled_from(["filter", "page_token", "model_id", "tag"]))
def test_no_search_or_id_makes_it_fail(rest: Rest, text: str, field: str) -> None:
    # An empty path segment is a trailing slash, which the router redirects (no JSON).
    assume(text or field in ("filter", "page_token"))
    if field in ("filter", "page_token"):
        response = rest.call("POST", "/logged-models/search", {"experiment_ids": ["0"], field: text})
    elif field == "model_id":
        response = rest.http.get(f"/api/2.0/mlflow/logged-models/{quote(text, safe='')}")
    else:
        response = rest.http.delete(f"/api/2.0/mlflow/logged-models/m-{'0' * 40}/tags/{quote(text, safe='')}")
    assert response.status_code < 500, response.text
    assert response.status_code == 200 or "error_code" in response.json()


def test_models_created_at_once_in_one_run_are_all_kept(rest: Rest) -> None:
    run_id = rest.tracking.create_run("0").info.run_id
    with ThreadPoolExecutor(8) as pool:
        made = list(
            pool.map(
                lambda i: create(rest, experiment_id="0", name=f"m{i}", source_run_id=run_id)["info"][
                    "model_id"
                ],
                range(8),
            )
        )
    found = search(rest, experiment_ids=["0"], order_by=[{"field_name": "name"}])["models"]
    assert [m["info"]["model_id"] for m in found] == made


@pytest.mark.parametrize(
    "state",
    [
        '{"parts": Infinity}',
        '{"parts": 1e7}',
        '{"parts": 100000000}',
        '{"parts": -1}',
        '{"parts": 2}',  # its parts are missing
        '{"parts": true}',
        "[" * 3999 + "]" * 3999,
        "[1]",
        '{"name":"n","created":1,"updated":1,"tags":"abc"}',
        '{"name":"n","created":1,"updated":1,"params":{"k":1}}',
        '{"name":"n","created":"x","updated":1}',
        '{"name":"n","created":true,"updated":1}',
        '{"name":"n","created":1e3,"updated":1}',
        '{"name":"n","created":' + "9" * 30 + ',"updated":1}',
        '{"name":"n","created":1,"updated":1,"status":"DONE"}',
        '{"name":"n","created":1,"updated":1,"deleted":0}',
        '{"name":"n","created":1,"updated":1,"other":""}',
        '{"name":"n","updated":1}',
    ],
)
def test_a_state_tag_not_as_written_here_is_no_model(rest: Rest, state: str) -> None:
    """A run tag written by other means than this endpoint (a modelreg client writes any tag):
    no such model, and a search skips it, however the tag is made."""
    run_id = rest.tracking.create_run("0").info.run_id
    real = create(rest, experiment_id="0", name="real", source_run_id=run_id)["info"]["model_id"]
    forged = f"m-{run_id}deadbeef"
    rest.tracking.set_tag(run_id, ids.state_tag(forged), state)
    an_error(rest.call("GET", f"/logged-models/{forged}"), 404, "RESOURCE_DOES_NOT_EXIST", forged)
    for order in ([], [{"field_name": "creation_timestamp"}], [{"field_name": "name"}]):
        found = search(rest, experiment_ids=["0"], order_by=order)["models"]
        assert [m["info"]["model_id"] for m in found] == [real]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        # Over the state's 90 tags of 8,000 characters: refused before a run is made.
        ({"tags": [{"key": f"k{i}", "value": "v" * 8000} for i in range(100)]}, "tags"),
        ({"params": [{"key": f"k{i}", "value": "v" * 6000} for i in range(130)]}, "params"),
        # Within them, over the run's 1 MiB cap (3 bytes a character): refused by the service
        # after the run is made, which is then deleted.
        ({"tags": [{"key": f"k{i}", "value": "€" * 8000} for i in range(50)]}, "tags"),
    ],
)
def test_a_refused_logged_model_leaves_no_run(rest: Rest, body: Json, named: str) -> None:
    experiment_id = rest.tracking.create_experiment("e").experiment_id
    response = rest.call("POST", "/logged-models", {"experiment_id": experiment_id, "name": "big", **body})
    an_error(response, 400, "INVALID_PARAMETER_VALUE", named)
    assert response.json()["message"].startswith(f"{named}: ")
    assert list(rest.tracking.search_runs([experiment_id])) == []
    assert search(rest, experiment_ids=[experiment_id])["models"] == []
