"""What every endpoint shares: MLflow's error JSON and statuses, field checks, out-of-scope areas."""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_gateway.server import running_in_thread
from mlflow_gateway.settings import GatewaySettings
from tests.integration.mlflow_rest.conftest import Rest


@contextmanager
def gateway_with(rest: Rest, **settings: Any) -> Iterator[str]:
    """Another endpoint in front of ``rest``'s services, with these settings; yields its URL."""
    base = GatewaySettings(port=0, tracking_uri=rest.services.tracking, registry_uri=rest.services.registry)
    with running_in_thread(replace(base, **settings)) as url:
        yield url


@contextmanager
def raw_request(url: str, head: str, body: bytes) -> Iterator[socket.socket]:
    """A connection that sent ``head`` (the request line and headers) and ``body``; whatever more
    it sends is up to the caller."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        yield connection


def read_response(connection: socket.socket) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of the response on ``connection``, read until the server closes it or
    the body's Content-Length arrived."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    while len(body) < length:
        body += connection.recv(65536)
    return int(lines[0].split()[1]), json.loads(body)


def test_errors_are_mlflows_json_with_its_statuses(rest: Rest) -> None:
    missing = rest.call("GET", "/experiments/get", experiment_id="424242")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    rest.ok("POST", "/experiments/create", {"name": "e"})
    taken = rest.call("POST", "/experiments/create", {"name": "e"})
    assert (taken.status_code, taken.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"name": "e", "bogus": 1}, "bogus"),
        ({"name": 7}, "name"),
        ({"name": "e", "tags": [{"key": "k", "value": "v", "x": 1}]}, "tags[0].x"),
        ({"name": "e", "tags": "k=v"}, "tags"),
        ({}, "name"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(rest: Rest, body: dict[str, object], named: str) -> None:
    response = rest.call("POST", "/experiments/create", body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert named in response.json()["message"]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (rb'{"name": "a\ud800"}', "name"),
        (rb'{"name": "e", "tags": [{"key": "k", "value": "\udfff"}]}', "tags[0].value"),
    ],
)
def test_a_lone_surrogate_in_json_is_refused_naming_the_field(rest: Rest, content: bytes, named: str) -> None:
    response = rest.http.post("/api/2.0/mlflow/experiments/create", content=content)
    assert response.status_code == 400
    assert named in response.json()["message"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_a_400(rest: Rest, content: bytes) -> None:
    response = rest.http.post("/api/2.0/mlflow/experiments/create", content=content)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/3.0/mlflow/traces"),
        ("GET", "/api/2.0/mlflow/traces/tr-1/info"),
        ("POST", "/api/2.0/mlflow/gateway/endpoints/create"),
        ("POST", "/ajax-api/3.0/mlflow/datasets/create"),
        ("GET", "/api/2.0/mlflow/webhooks"),
        ("POST", "/api/2.0/mlflow-artifacts/mpu/create/a/b"),
    ],
)
def test_areas_outside_the_scope_answer_501(rest: Rest, method: str, path: str) -> None:
    response = rest.http.request(method, path)
    assert response.status_code == 501
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_unknown_paths_and_methods_are_mlflow_errors(rest: Rest) -> None:
    unknown = rest.http.get("/api/2.0/mlflow/nothing-here")
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    wrong_method = rest.http.get("/api/2.0/mlflow/experiments/create")
    assert (wrong_method.status_code, wrong_method.json()["error_code"]) == (405, "ENDPOINT_NOT_FOUND")


def test_health_version_and_server_info(rest: Rest) -> None:
    assert rest.http.get("/health").text == "OK"
    assert rest.http.get("/version").text.startswith("3.")
    info = rest.http.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False


def test_every_prefix_serves_the_same_endpoint(rest: Rest) -> None:
    rest.ok("POST", "/experiments/create", {"name": "e"})
    for prefix in ("/api/2.0", "/api/3.0", "/ajax-api/2.0", "/ajax-api/3.0"):
        response = rest.http.get(f"{prefix}/mlflow/experiments/get-by-name", params={"experiment_name": "e"})
        assert response.json()["experiment"]["name"] == "e"


def test_oversized_body_is_refused_before_it_is_read_whole(rest: Rest) -> None:
    response = rest.http.post("/api/2.0/mlflow/experiments/create", content=b" " * (17 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_EXHAUSTED"


def test_every_service_call_of_a_request_carries_its_request_id(rest: Rest) -> None:
    response = rest.http.post(
        "/api/2.0/mlflow/experiments/create", json={"name": "e"}, headers={"x-request-id": "req-42"}
    )
    assert response.headers["x-request-id"] == "req-42"
    fresh = rest.http.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "e"})
    assert len(fresh.headers["x-request-id"]) == 32
    odd = rest.http.get(
        "/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "e"},
        headers={"x-request-id": "has space"},
    )
    assert odd.headers["x-request-id"] != "has space", "only visible ASCII ids are relayed"


def test_a_trailing_slash_is_another_path_answered_in_json(rest: Rest) -> None:
    response = rest.http.get("/api/2.0/mlflow/experiments/get/", params={"experiment_id": "0"})
    assert (response.status_code, response.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


def test_a_cap_is_a_400_which_mlflows_client_does_not_retry(rest: Rest) -> None:
    """MLflow's client retries 429 for minutes; a run at its 1,000 metric keys stays there."""
    run_id = rest.ok("POST", "/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]  # type: ignore[index]
    metrics = [{"key": f"m{i}", "value": 1.0, "timestamp": 1, "step": 0} for i in range(1000)]
    rest.ok("POST", "/runs/log-batch", {"run_id": run_id, "metrics": metrics})
    over = rest.call(
        "POST", "/runs/log-metric", {"run_id": run_id, "key": "one-more", "value": 1, "timestamp": 1}
    )
    assert (over.status_code, over.json()["error_code"]) == (400, "RESOURCE_EXHAUSTED")
    assert "one-more" not in rest.tracking.get_run(run_id).data.metrics


@pytest.mark.parametrize(
    "authorization",
    [
        b"Basic " + base64.b64encode("u:p\u00e9".encode()),
        b"Basic " + base64.b64encode(b"u:p\nq"),
        b"Basic " + base64.b64encode(b"u\nx:t"),
        b"Basic " + base64.b64encode("\u00fc:t".encode()),
        b"Basic " + base64.b64encode(b"u" * 251 + b":t"),
        b"Basic \xe9\xe9",
        b"Bearer t\xe9",
        b"Bearer " + b"t" * 4097,
    ],
)
def test_credentials_a_service_call_cannot_carry_are_401(rest: Rest, authorization: bytes) -> None:
    response = rest.http.get(
        "/api/2.0/mlflow/experiments/get",
        params={"experiment_id": "0"},
        headers={b"authorization": authorization},
    )
    assert (response.status_code, response.json()["error_code"]) == (401, "UNAUTHENTICATED")


def test_printable_basic_user_names_are_the_actor(rest: Rest) -> None:
    header = {"authorization": "Basic " + base64.b64encode(b"Ada Lovelace:").decode()}
    response = rest.http.post("/api/2.0/mlflow/experiments/create", json={"name": "e"}, headers=header)
    assert response.status_code == 200, response.text


def test_a_stalled_request_body_is_answered_408(rest: Rest) -> None:
    """The body announces 100 bytes and sends 10: the endpoint gives up rather than wait forever."""
    with gateway_with(rest, body_timeout_seconds=0.2) as url:
        head = "POST /api/2.0/mlflow/experiments/create HTTP/1.1\nHost: x\nContent-Length: 100\n"
        with raw_request(url, head, b'{"name": "') as connection:
            status, body = read_response(connection)
    assert (status, body["error_code"]) == (408, "DEADLINE_EXCEEDED")


def test_upload_and_body_limits_come_from_the_environment() -> None:
    env = {"MODELREG_MLFLOW_MAX_CONCURRENT_UPLOADS": "3", "MODELREG_MLFLOW_BODY_TIMEOUT_SECONDS": "2.5"}
    settings = GatewaySettings.from_env(env)
    assert (settings.max_concurrent_uploads, settings.body_timeout_seconds) == (3, 2.5)
    defaults = GatewaySettings.from_env({})
    assert (defaults.max_concurrent_uploads, defaults.body_timeout_seconds) == (8, 60.0)
    for name, bad in [
        ("MODELREG_MLFLOW_MAX_CONCURRENT_UPLOADS", "0"),
        ("MODELREG_MLFLOW_BODY_TIMEOUT_SECONDS", "0"),
        ("MODELREG_MLFLOW_BODY_TIMEOUT_SECONDS", "inf"),
        ("MODELREG_MLFLOW_BODY_TIMEOUT_SECONDS", "nan"),
        ("MODELREG_MLFLOW_BODY_TIMEOUT_SECONDS", "soon"),
    ]:
        with pytest.raises(ValueError, match=name):
            GatewaySettings.from_env({name: bad})


def new_run(rest: Rest) -> str:
    run_id: str = rest.ok("POST", "/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]  # type: ignore[index]
    return run_id


def post_text(rest: Rest, path: str, text: str) -> httpx.Response:
    return rest.http.post(
        f"/api/2.0/mlflow{path}", content=text.encode(), headers={"content-type": "application/json"}
    )


@pytest.mark.parametrize(
    ("send", "named"),
    [
        # JSON that Python's parser gives up on: an integer past its digit limit, nesting past its
        # recursion limit.
        (
            lambda r, run: post_text(r, "/runs/log-metric", f'{{"run_id":"{run}","timestamp":{"9" * 5000}}}'),
            "body",
        ),
        (lambda r, run: post_text(r, "/runs/log-metric", "[" * 200_000), "body"),
        (lambda r, run: post_text(r, "/runs/log-metric", "[" * 5000 + "]" * 5000), "body"),
        # A decimal string that is no int64.
        (
            lambda r, run: r.call(
                "GET", "/metrics/get-history", run_id=run, metric_key="k", max_results="--5"
            ),
            "max_results",
        ),
        (lambda r, run: r.call("POST", "/experiments/search", {"max_results": "9" * 5000}), "max_results"),
        (lambda r, run: r.call("POST", "/experiments/search", {"max_results": " 5"}), "max_results"),
        (lambda r, run: r.call("POST", "/experiments/search", {"max_results": "1_0"}), "max_results"),
        (lambda r, run: r.call("POST", "/runs/update", {"run_id": run, "status": "9" * 5000}), "status"),
        (lambda r, run: r.call("POST", "/experiments/search", {"view_type": "9" * 5000}), "view_type"),
        # A JSON integer past the double range as a metric value.
        (
            lambda r, run: post_text(
                r, "/runs/log-metric", f'{{"run_id":"{run}","key":"k","value":{"9" * 400},"timestamp":1}}'
            ),
            "value",
        ),
        # JSON inside a field.
        (
            lambda r, run: r.call(
                "POST", "/runs/log-model", {"run_id": run, "model_json": '{"z":' + "9" * 5000 + "}"}
            ),
            "model_json",
        ),
        (
            lambda r, run: r.call("POST", "/runs/log-model", {"run_id": run, "model_json": "[" * 100_000}),
            "model_json",
        ),
        (
            lambda r, run: r.call(
                "POST", "/logged-models/search", {"experiment_ids": ["0"], "page_token": "9" * 5000}
            ),
            "page_token",
        ),
        (
            lambda r, run: r.call(
                "POST", "/logged-models/search", {"experiment_ids": ["0"], "page_token": "-1"}
            ),
            "page_token",
        ),
    ],
)
def test_input_pythons_parsers_choke_on_is_a_400_naming_the_field(
    rest: Rest, send: Callable[[Rest, str], httpx.Response], named: str
) -> None:
    response = send(rest, new_run(rest))
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert named in response.json()["message"]


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        st.text(max_size=30),
        st.from_regex(r"-?-?[0-9]{1,25}", fullmatch=True),
        st.integers(INT64_MIN - 10, INT64_MAX + 10).map(str),
    )
)
def test_an_int64_string_is_read_strictly(rest: Rest, text: str) -> None:
    """A decimal int64 (an optional '-', ASCII digits) is a number; any other text is a 400."""
    response = rest.call("GET", "/experiments/search", max_results=text)
    strict = re.fullmatch(r"-?[0-9]{1,19}", text) is not None and INT64_MIN <= int(text) <= INT64_MAX
    if text == "" or (strict and 1 <= int(text) <= 50_000):  # "" is the default
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 400, response.text
        assert "max_results" in response.json()["message"]
