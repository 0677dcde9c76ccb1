"""Experiments and runs through MLflow's REST API: MLflow's JSON shapes, checked against what the
tracking service holds (read back through the modelreg client), and MLflow's errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mlflow_gateway.server import running_in_thread
from mlflow_gateway.settings import GatewaySettings
from modelreg_server.access.policy import Level
from tests.integration.access.conftest import SecuredServices, auth_settings
from tests.integration.mlflow_rest.conftest import Rest
from tests.servers import running_services


def ok(rest: Rest, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
    """The JSON of a call that must succeed, typed for reading into."""
    return rest.ok(method, path, body, **params)


def error(
    rest: Rest, method: str, path: str, body: dict[str, Any] | None = None, **params: Any
) -> tuple[int, str, str]:
    response = rest.call(method, path, body, **params)
    payload = response.json()
    return response.status_code, payload["error_code"], payload["message"]


def new_experiment(rest: Rest, name: str = "exp", **body: Any) -> str:
    experiment_id = ok(rest, "POST", "/experiments/create", {"name": name, **body})["experiment_id"]
    assert isinstance(experiment_id, str)
    return experiment_id


def new_run(rest: Rest, experiment_id: str = "0", **body: Any) -> dict[str, Any]:
    run: dict[str, Any] = ok(rest, "POST", "/runs/create", {"experiment_id": experiment_id, **body})["run"]
    return run


def tags_of(payload: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in payload.get("tags", [])}


# Experiments


def test_search_experiments_get_and_post_filter_order_and_view(rest: Rest) -> None:
    ids = {
        name: new_experiment(rest, name, tags=[{"key": "team", "value": team}])
        for name, team in [("alpha", "a"), ("beta", "b"), ("gamma", "a")]
    }
    rest.tracking.delete_experiment(ids["gamma"])
    post = ok(rest, "POST", "/experiments/search", {"filter": "tags.team = 'a'", "order_by": ["name DESC"]})
    assert [x["name"] for x in post["experiments"]] == ["alpha"]
    got = ok(
        rest, "GET", "/experiments/search", filter="tags.team = 'a'", view_type="ALL", order_by="name DESC"
    )
    assert [x["name"] for x in got["experiments"]] == ["gamma", "alpha"]
    assert got["experiments"][0]["lifecycle_stage"] == "deleted"
    deleted = ok(rest, "POST", "/experiments/search", {"view_type": "DELETED_ONLY"})
    assert [x["experiment_id"] for x in deleted["experiments"]] == [ids["gamma"]]
    numeric = ok(rest, "POST", "/experiments/search", {"view_type": 2})
    assert numeric == deleted
    every = ok(rest, "POST", "/experiments/search", {})["experiments"]
    assert {x["name"] for x in every} == {"Default", "alpha", "beta"}
    experiment = next(x for x in every if x["name"] == "alpha")
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{ids['alpha']}"
    assert tags_of(experiment) == {"team": "a"}


def test_search_experiments_pages_with_tokens(rest: Rest) -> None:
    for n in range(5):
        new_experiment(rest, f"e{n}")
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        body: dict[str, Any] = {"max_results": 2, "order_by": ["name ASC"]}
        if token:
            body["page_token"] = token
        page = ok(rest, "POST", "/experiments/search", body)
        assert len(page["experiments"]) <= 2
        seen += [x["name"] for x in page["experiments"]]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == ["Default", "e0", "e1", "e2", "e3", "e4"]
    largest = ok(rest, "POST", "/experiments/search", {"max_results": 50000, "order_by": ["name ASC"]})
    assert [x["name"] for x in largest["experiments"]] == seen
    assert "next_page_token" not in largest
    assert pages >= 3
    via_client = [x.name for x in rest.tracking.search_experiments(order_by=["name ASC"])]
    assert via_client == seen


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"max_results": 0}, "max_results"),
        ({"max_results": 50001}, "max_results"),
        ({"max_results": "many"}, "max_results"),
        ({"view_type": "SOME"}, "view_type"),
        ({"view_type": 9}, "view_type"),
        ({"order_by": "name"}, "order_by"),
        ({"filter": 3}, "filter"),
        ({"page_token": "not-a-token"}, ""),
        ({"filter": "name === 'x'"}, ""),
        ({"filter": "bogus.key = 'x'"}, ""),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_search_experiments_refuses_bad_requests(rest: Rest, body: dict[str, Any], named: str) -> None:
    status, code, message = error(rest, "POST", "/experiments/search", body)
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert named in message


def test_experiment_lifecycle_rename_and_tags(rest: Rest) -> None:
    experiment_id = new_experiment(rest, "old")
    assert ok(rest, "POST", "/experiments/update", {"experiment_id": experiment_id, "new_name": "new"}) == {}
    assert rest.tracking.get_experiment(experiment_id).name == "new"
    ok(
        rest,
        "POST",
        "/experiments/set-experiment-tag",
        {"experiment_id": experiment_id, "key": "k", "value": "v"},
    )
    assert rest.tracking.get_experiment(experiment_id).tags == {"k": "v"}
    shown = ok(rest, "GET", "/experiments/get", experiment_id=experiment_id)["experiment"]
    assert (shown["name"], tags_of(shown)) == ("new", {"k": "v"})
    ok(rest, "POST", "/experiments/delete-experiment-tag", {"experiment_id": experiment_id, "key": "k"})
    assert rest.tracking.get_experiment(experiment_id).tags == {}
    ok(rest, "POST", "/experiments/delete", {"experiment_id": experiment_id})
    assert rest.tracking.get_experiment(experiment_id).lifecycle_stage == "deleted"
    ok(rest, "POST", "/experiments/restore", {"experiment_id": experiment_id})
    assert rest.tracking.get_experiment(experiment_id).lifecycle_stage == "active"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/experiments/delete", {"experiment_id": "987654"}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ("/experiments/restore", {"experiment_id": "987654"}, (404, "RESOURCE_DOES_NOT_EXIST")),
        (
            "/experiments/update",
            {"experiment_id": "987654", "new_name": "x"},
            (404, "RESOURCE_DOES_NOT_EXIST"),
        ),
        ("/experiments/update", {"experiment_id": "0"}, (400, "INVALID_PARAMETER_VALUE")),
        ("/experiments/delete", {}, (400, "INVALID_PARAMETER_VALUE")),
        ("/experiments/delete", {"experiment_id": 5}, (400, "INVALID_PARAMETER_VALUE")),
        ("/experiments/delete", {"experiment_id": "not-a-number"}, (400, "INVALID_PARAMETER_VALUE")),
        (
            "/experiments/set-experiment-tag",
            {"experiment_id": "0", "value": "v"},
            (400, "INVALID_PARAMETER_VALUE"),
        ),
        (
            "/experiments/set-experiment-tag",
            {"experiment_id": "987654", "key": "k"},
            (404, "RESOURCE_DOES_NOT_EXIST"),
        ),
        ("/experiments/delete-experiment-tag", {"experiment_id": "0"}, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_experiment_writes_refuse_bad_and_unknown(
    rest: Rest, path: str, body: dict[str, Any], expected: tuple[int, str]
) -> None:
    status, code, _ = error(rest, "POST", path, body)
    assert (status, code) == expected


def test_renaming_onto_a_taken_name_is_refused(rest: Rest) -> None:
    first, _ = new_experiment(rest, "one"), new_experiment(rest, "two")
    status, code, _ = error(rest, "POST", "/experiments/update", {"experiment_id": first, "new_name": "two"})
    assert (status, code) == (400, "RESOURCE_ALREADY_EXISTS")
    assert rest.tracking.get_experiment(first).name == "one"


# Runs


def test_create_run_has_mlflows_shape_and_system_tags(rest: Rest) -> None:
    experiment_id = new_experiment(rest)
    parent = new_run(rest, experiment_id, run_name="parent")
    run = new_run(
        rest,
        experiment_id,
        user_id="ana",
        start_time=1_700_000_000_123,
        tags=[
            {"key": "mlflow.runName", "value": "child"},
            {"key": "mlflow.parentRunId", "value": parent["info"]["run_id"]},
            {"key": "team", "value": "x"},
        ],
    )
    info = run["info"]
    run_id = info["run_id"]
    assert info == {
        "run_id": run_id,
        "run_uuid": run_id,
        "run_name": "child",
        "experiment_id": experiment_id,
        "user_id": "ana",
        "status": "RUNNING",
        "start_time": 1_700_000_000_123,
        "artifact_uri": f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
        "lifecycle_stage": "active",
    }
    assert tags_of(run["data"]) == {
        "mlflow.runName": "child",
        "mlflow.parentRunId": parent["info"]["run_id"],
        "mlflow.user": "ana",
        "team": "x",
    }
    assert run["inputs"] == {"dataset_inputs": [], "model_inputs": []}
    assert run["outputs"] == {"model_outputs": []}
    stored = rest.tracking.get_run(run_id)
    assert (stored.info.run_name, stored.info.parent_run_id) == ("child", parent["info"]["run_id"])
    assert stored.data.tags == {"mlflow.user": "ana", "team": "x"}
    assert ok(rest, "GET", "/runs/get", run_id=run_id)["run"] == run


def test_create_run_defaults_and_explicit_user_tag_wins(rest: Rest) -> None:
    run = new_run(rest, user_id="ana", tags=[{"key": "mlflow.user", "value": "bo"}])
    assert run["info"]["experiment_id"] == "0"
    assert run["info"]["user_id"] == "bo"
    assert run["info"]["run_name"]  # generated, as MLflow names unnamed runs
    assert rest.tracking.get_run(run["info"]["run_id"]).info.run_name == run["info"]["run_name"]
    unnamed = ok(rest, "POST", "/runs/create", {})["run"]
    assert unnamed["info"]["experiment_id"] == "0"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"experiment_id": "987654"}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"experiment_id": "x"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"experiment_id": 0}, (400, "INVALID_PARAMETER_VALUE")),
        ({"start_time": "noon"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"start_time": 2**64}, (400, "INVALID_PARAMETER_VALUE")),
        ({"tags": [{"value": "v"}]}, (400, "INVALID_PARAMETER_VALUE")),
        ({"tags": {"k": "v"}}, (400, "INVALID_PARAMETER_VALUE")),
        (
            {"run_name": "a", "tags": [{"key": "mlflow.runName", "value": "b"}]},
            (400, "INVALID_PARAMETER_VALUE"),
        ),
        ({"tags": [{"key": "mlflow.parentRunId", "value": "0" * 32}]}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"run_uuid": "x"}, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_create_run_refuses_bad_requests(rest: Rest, body: dict[str, Any], expected: tuple[int, str]) -> None:
    status, code, _ = error(rest, "POST", "/runs/create", body)
    assert (status, code) == expected
    assert list(rest.tracking.search_runs(run_view_type="ALL")) == []


def test_a_run_cannot_be_made_the_child_of_a_run_its_creator_cannot_read(tmp_path: Path) -> None:
    """Access control on, no default level: the parent named by tag must be readable."""
    with running_services(tmp_path, auth_settings(tmp_path, Level.NONE)) as services:
        secured = SecuredServices(services)
        alice, bob = secured.user_token("alice"), secured.user_token("bob")
        settings = GatewaySettings(port=0, tracking_uri=services.tracking, registry_uri=services.registry)
        with (
            running_in_thread(settings) as base,
            httpx.Client(base_url=base, timeout=30) as http,
            secured.client(alice) as alice_client,
        ):
            parent = alice_client.create_run(alice_client.create_experiment("alices")).info.run_id

            def create(token: str, body: dict[str, Any]) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"}
                return http.post("/api/2.0/mlflow/runs/create", json=body, headers=headers)

            experiment = http.post(
                "/api/2.0/mlflow/experiments/create",
                json={"name": "bobs"},
                headers={"Authorization": f"Bearer {bob}"},
            ).json()["experiment_id"]
            child = {"experiment_id": experiment, "tags": [{"key": "mlflow.parentRunId", "value": parent}]}
            refused = create(bob, child)
            assert (refused.status_code, refused.json()["error_code"]) == (403, "PERMISSION_DENIED")
            assert create(alice, child).status_code == 403, "alice may not write in bob's experiment"
            assert create(bob, {"experiment_id": experiment}).status_code == 200


def test_update_run_status_end_time_and_name(rest: Rest) -> None:
    run_id = new_run(rest)["info"]["run_id"]
    info = ok(
        rest,
        "POST",
        "/runs/update",
        {"run_id": run_id, "run_uuid": run_id, "status": "FINISHED", "end_time": 1_800_000_000_000},
    )["run_info"]
    assert (info["status"], info["end_time"]) == ("FINISHED", 1_800_000_000_000)
    stored = rest.tracking.get_run(run_id).info
    assert (stored.status, stored.end_time) == ("FINISHED", 1_800_000_000_000)
    renamed = ok(rest, "POST", "/runs/update", {"run_uuid": run_id, "run_name": "better"})["run_info"]
    assert (renamed["run_name"], renamed["status"]) == ("better", "FINISHED")
    assert rest.tracking.get_run(run_id).info.run_name == "better"
    killed = ok(rest, "POST", "/runs/update", {"run_id": run_id, "status": 5})["run_info"]
    assert killed["status"] == "KILLED"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "DONE"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"status": 0}, (400, "INVALID_PARAMETER_VALUE")),
        ({"end_time": "later"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_name": ["x"]}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_id": "0" * 32}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"run_id": "../etc"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_id": None}, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_update_run_refuses_bad_requests(rest: Rest, body: dict[str, Any], expected: tuple[int, str]) -> None:
    run_id = new_run(rest)["info"]["run_id"]
    status, code, _ = error(rest, "POST", "/runs/update", {"run_id": run_id, **body})
    assert (status, code) == expected
    assert rest.tracking.get_run(run_id).info.status == "RUNNING"


def test_delete_and_restore_run(rest: Rest) -> None:
    run_id = new_run(rest)["info"]["run_id"]
    assert ok(rest, "POST", "/runs/delete", {"run_id": run_id}) == {}
    assert rest.tracking.get_run(run_id).info.lifecycle_stage == "deleted"
    assert ok(rest, "GET", "/runs/get", run_uuid=run_id)["run"]["info"]["lifecycle_stage"] == "deleted"
    ok(rest, "POST", "/runs/restore", {"run_id": run_id})
    assert rest.tracking.get_run(run_id).info.lifecycle_stage == "active"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/runs/delete", {"run_id": "0" * 32}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ("POST", "/runs/restore", {"run_id": "f" * 32}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ("POST", "/runs/delete", {"run_id": "ABC"}, (400, "INVALID_PARAMETER_VALUE")),
        ("POST", "/runs/delete", {}, (400, "INVALID_PARAMETER_VALUE")),
        ("POST", "/runs/delete", {"run_uuid": "0" * 32}, (400, "INVALID_PARAMETER_VALUE")),
        ("GET", "/runs/get", None, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_run_lifecycle_refuses_bad_and_unknown(
    rest: Rest, method: str, path: str, body: dict[str, Any] | None, expected: tuple[int, str]
) -> None:
    status, code, _ = error(rest, method, path, body)
    assert (status, code) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"run_id": "0" * 32}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"run_uuid": "0" * 32}, (404, "RESOURCE_DOES_NOT_EXIST")),
        ({"run_id": "not-hex"}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_id": "a" * 33}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_id": ["a" * 32, "b" * 32]}, (400, "INVALID_PARAMETER_VALUE")),
        ({"run_id": "a" * 32, "extra": "1"}, (400, "INVALID_PARAMETER_VALUE")),
    ],
)
def test_get_run_refuses_unknown_and_malformed_ids(
    rest: Rest, params: dict[str, Any], expected: tuple[int, str]
) -> None:
    status, code, _ = error(rest, "GET", "/runs/get", **params)
    assert (status, code) == expected


def test_search_runs_filter_order_view_and_pages(rest: Rest) -> None:
    experiment_id = new_experiment(rest)
    other = new_experiment(rest, "other")
    runs = []
    for n in range(5):
        run = new_run(rest, experiment_id, run_name=f"r{n}", start_time=1000 + n)
        rest.tracking.log_metric(run["info"]["run_id"], "loss", 1.0 / (n + 1), timestamp=5, step=n)
        rest.tracking.log_param(run["info"]["run_id"], "parity", n % 2)
        runs.append(run["info"]["run_id"])
    new_run(rest, other, run_name="elsewhere")
    rest.tracking.delete_run(runs[4])

    found = ok(
        rest,
        "POST",
        "/runs/search",
        {
            "experiment_ids": [experiment_id],
            "filter": "params.parity = '0'",
            "order_by": ["metrics.loss ASC"],
        },
    )["runs"]
    assert [r["info"]["run_name"] for r in found] == ["r2", "r0"]
    assert found[0]["data"]["metrics"] == [{"key": "loss", "value": 1 / 3, "timestamp": 5, "step": 2}]
    assert found[0]["data"]["params"] == [{"key": "parity", "value": "0"}]

    every = ok(rest, "POST", "/runs/search", {"experiment_ids": [experiment_id], "run_view_type": "ALL"})[
        "runs"
    ]
    assert [r["info"]["run_name"] for r in every] == ["r4", "r3", "r2", "r1", "r0"]  # start_time DESC
    deleted = ok(
        rest, "POST", "/runs/search", {"experiment_ids": [experiment_id], "run_view_type": "DELETED_ONLY"}
    )
    assert [r["info"]["run_id"] for r in deleted["runs"]] == [runs[4]]
    by_name = ok(
        rest,
        "POST",
        "/runs/search",
        {"experiment_ids": [experiment_id, other], "filter": "tags.mlflow.runName = 'elsewhere'"},
    )["runs"]
    assert [r["info"]["experiment_id"] for r in by_name] == [other]

    names: list[str] = []
    token = None
    while True:
        body: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": 2}
        if token:
            body["page_token"] = token
        page = ok(rest, "POST", "/runs/search", body)
        assert len(page["runs"]) <= 2
        names += [r["info"]["run_name"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert names == ["r3", "r2", "r1", "r0"]
    assert names == [r.info.run_name for r in rest.tracking.search_runs([experiment_id])]


@pytest.mark.parametrize(
    "body",
    [
        {"filter": "metrics.loss >> 1"},
        {"filter": "nonsense"},
        {"order_by": ["metrics.loss SIDEWAYS"]},
        {"max_results": 0},
        {"max_results": 50001},
        {"max_results": -1},
        {"experiment_ids": "0"},
        {"experiment_ids": [0]},
        {"run_view_type": "SOME"},
        {"page_token": "%%%"},
        {"experiment_ids": ["0"], "bogus": True},
    ],
)
def test_search_runs_refuses_what_mlflow_refuses(rest: Rest, body: dict[str, Any]) -> None:
    status, code, _ = error(rest, "POST", "/runs/search", {"experiment_ids": ["0"], **body})
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")


def test_search_runs_accepts_mlflows_largest_page(rest: Rest) -> None:
    run_id = new_run(rest)["info"]["run_id"]
    page = ok(rest, "POST", "/runs/search", {"experiment_ids": ["0"], "max_results": 50000})
    assert [r["info"]["run_id"] for r in page["runs"]] == [run_id]
    assert "next_page_token" not in page


def test_search_runs_without_experiments_finds_none_as_in_mlflow(rest: Rest) -> None:
    new_run(rest)
    assert ok(rest, "POST", "/runs/search", {"max_results": 10}) == {"runs": []}
    assert error(rest, "POST", "/runs/search", {"max_results": 0})[:2] == (400, "INVALID_PARAMETER_VALUE")
