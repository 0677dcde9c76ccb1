"""The scoring protocol over real HTTP: a registered scikit-learn model served by the app under uvicorn."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import modelreg
from modelreg.pyfunc import PyFuncModel
from modelreg.serving.app import ServeSettings
from modelreg.serving.metrics import ServingMetrics
from tests.integration.serving.conftest import MAX_BODY_BYTES, Served, SimpleSlot, loaded_version, serving
from tests.integration.walkthrough.test_walkthrough import house_data

NEW_HOUSES, _ = house_data(rows=5, seed=1)
COLUMNS = ["square_feet", "bedrooms", "age"]


def rows() -> list[list[Any]]:
    return [[float(r.square_feet), int(r.bedrooms), float(r.age)] for r in NEW_HOUSES.itertuples()]


def records() -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows()]


def post(served: Served, body: Any, content_type: str = "application/json", **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{served.url}/invocations", content=content, headers={"content-type": content_type}, **kwargs
    )


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": COLUMNS, "data": rows()}},
        {"dataframe_split": {"columns": COLUMNS, "data": rows(), "index": list(range(5))}},
        {"dataframe_records": records()},
        {"instances": records()},
        {"instances": rows()},
        {"inputs": records()},
        {"inputs": rows()},
        {"inputs": {c: [r[i] for r in rows()] for i, c in enumerate(COLUMNS)}},
        {"inputs": [{"unknown": "dropped", **r} for r in records()], "params": {"ignored": 1}},
    ],
)
def test_every_json_format_predicts_as_the_model(served: Served, body: dict[str, Any]) -> None:
    response = post(served, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    expected = served.model.predict(NEW_HOUSES)
    np.testing.assert_allclose(response.json()["predictions"], expected)


def test_csv(served: Served) -> None:
    response = post(served, NEW_HOUSES.to_csv(index=False).encode(), "text/csv")
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], served.model.predict(NEW_HOUSES))


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "says"),
    [
        (
            {"dataframe_records": [{"square_feet": 1.0, "age": 2.0}]},
            None,
            400,
            "INVALID_PARAMETER_VALUE",
            "['bedrooms']",
        ),
        (
            {"dataframe_records": [{"square_feet": 1.0, "bedrooms": 2.5, "age": 2.0}]},
            None,
            400,
            "INVALID_PARAMETER_VALUE",
            "column 'bedrooms': expected int64",
        ),
        (
            {"inputs": [["large", 2, 2.0]]},
            None,
            400,
            "INVALID_PARAMETER_VALUE",
            "column 'square_feet': expected float64",
        ),
        (b'{"inputs": [[1, 2, 3]', None, 400, "BAD_REQUEST", "not valid JSON"),
        (b"", None, 400, "BAD_REQUEST", "empty"),
        ({"inputs": rows(), "instances": rows()}, None, 400, "BAD_REQUEST", "exactly one"),
        ({"input": rows()}, None, 400, "BAD_REQUEST", "exactly one"),
        (b"square_feet\n1", "text/csv", 400, "INVALID_PARAMETER_VALUE", "['bedrooms', 'age']"),
        ({"inputs": rows()}, "text/plain", 415, "BAD_REQUEST", "content types"),
    ],
)
def test_bad_input_is_refused_with_mlflow_error_json(
    served: Served, body: Any, content_type: str | None, status: int, code: str, says: str
) -> None:
    response = post(served, body, content_type or "application/json")
    assert response.status_code == status
    assert response.json()["error_code"] == code
    assert says in response.json()["message"]
    assert response.headers["x-modelreg-model-version"] == "1"


def test_bodies_over_the_limit_are_refused_declared_or_streamed(served: Served) -> None:
    over = b" " * (MAX_BODY_BYTES + 1)
    declared = post(served, over)
    assert declared.status_code == 413
    assert declared.json()["error_code"] == "BAD_REQUEST"
    assert str(MAX_BODY_BYTES) in declared.json()["message"]

    def chunks() -> Iterator[bytes]:  # no content-length: chunked transfer encoding
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    streamed = httpx.post(
        f"{served.url}/invocations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    # Up to the limit is accepted.
    body = json.dumps({"inputs": rows()}).encode()
    assert post(served, body + b" " * (MAX_BODY_BYTES - len(body))).status_code == 200


def test_request_ids_and_version_headers(served: Served) -> None:
    sane = "req-1.2:3_x"
    for path in ("/ping", "/health", "/version", "/metadata", "/metrics", "/nowhere"):
        response = httpx.get(f"{served.url}{path}", headers={"x-request-id": sane})
        assert response.headers["x-request-id"] == sane, path
        assert response.headers["x-modelreg-model-version"] == "1", path
    for insane in ("has space", "x" * 129, "ünï"):
        response = httpx.get(f"{served.url}/ping", headers={"x-request-id": insane.encode()})
        assert response.headers["x-request-id"] != insane
        assert len(response.headers["x-request-id"]) == 32
    generated = {post(served, {"inputs": rows()}).headers["x-request-id"] for _ in range(2)}
    assert len(generated) == 2
    lines = [json.loads(line) for line in served.log.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == sane]
    assert {line["path"] for line in mine} >= {"/ping", "/metrics"}
    assert all(line["version"] == 1 and line["status"] in (200, 404) and line["ms"] >= 0 for line in mine)
    assert all({"ts", "level", "msg"} <= set(line) for line in lines)


def test_info_routes(served: Served) -> None:
    assert httpx.get(f"{served.url}/ping").status_code == 200
    health = httpx.get(f"{served.url}/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "version": 1, "following": True})
    assert httpx.get(f"{served.url}/version").text == modelreg.__version__
    assert httpx.get(f"{served.url}/metadata").json() == {
        "served_uri": "models:/HousePricePredictor/1",
        "version": 1,
    }


def test_metrics(served: Served) -> None:
    post(served, {"inputs": rows()})
    post(served, b"{")
    post(served, {"inputs": rows()}, "text/plain")

    @dataclass(frozen=True)
    class Event:
        kind: str
        version: int | None
        previous: int | None = None
        seconds: float | None = None
        detail: str = ""

    served.metrics.on_event(Event("loaded", 1, seconds=0.5))
    served.metrics.on_event(Event("swapped", 1, previous=1, seconds=0.25))
    served.metrics.on_event(Event("load_failed", 2, detail="no such version"))
    text = httpx.get(f"{served.url}/metrics").text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['modelreg_serving_requests_total{status="200",version="1"}'] >= 1
    assert samples['modelreg_serving_requests_total{status="415",version="1"}'] >= 1
    assert samples['modelreg_serving_errors_total{kind="bad_request",version="1"}'] >= 1
    assert samples['modelreg_serving_errors_total{kind="unsupported_media_type",version="1"}'] >= 1
    assert samples['modelreg_serving_request_seconds_count{version="1"}'] >= 3
    assert samples["modelreg_serving_swaps_total"] == 1
    assert samples["modelreg_serving_swap_seconds_sum"] == 0.25
    assert samples["modelreg_serving_load_failures_total"] == 1
    assert samples["modelreg_serving_served_version"] == 1


def test_before_a_model_is_loaded_everything_says_503_and_stop_ends_the_slot(model: PyFuncModel) -> None:
    slot = SimpleSlot(None, following=False)
    with serving(slot, ServingMetrics()) as url:
        assert httpx.get(f"{url}/ping").status_code == 503
        health = httpx.get(f"{url}/health")
        assert (health.status_code, health.json()) == (
            503,
            {"status": "loading", "version": None, "following": False},
        )
        refused = httpx.post(f"{url}/invocations", json={"inputs": rows()})
        assert refused.status_code == 503 and refused.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert refused.headers["x-modelreg-model-version"] == "none"
        assert httpx.get(f"{url}/metadata").status_code == 503
        slot.loaded = loaded_version(model)
        assert httpx.get(f"{url}/ping").status_code == 200
        assert httpx.post(f"{url}/invocations", json={"inputs": rows()}).status_code == 200
        assert slot.leases == 1
        assert not slot.stopped
    assert slot.stopped


def test_a_frame_prediction_with_nan_is_json(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(served.model, "predict", lambda data, params=None: pd.DataFrame({"p": [np.nan, 1.0]}))
    response = post(served, {"inputs": rows()})
    assert response.status_code == 200
    assert response.json() == {"predictions": [{"p": None}, {"p": 1.0}]}


def test_a_model_that_fails_is_a_400_like_mlflow(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(data: Any, params: Any = None) -> Any:
        raise ValueError("cannot take it")

    monkeypatch.setattr(served.model, "predict", fail)
    response = post(served, {"inputs": rows()})
    assert response.status_code == 400
    assert "ValueError: cannot take it" in response.json()["message"]


def test_a_stalled_body_is_cut_at_its_timeout_and_holds_no_place_after(model: PyFuncModel) -> None:
    """One scoring place: a sender that stops mid-body holds it until the body timeout answers it
    408; a request waiting meanwhile is then read and answered."""
    settings = ServeSettings(max_body_bytes=MAX_BODY_BYTES, max_concurrent=1, body_timeout_seconds=0.5)
    with serving(SimpleSlot(loaded_version(model)), ServingMetrics(), settings) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as stalled:
            stalled.sendall(
                b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b'content-length: 100\r\n\r\n{"inputs":'
            )
            waiting = httpx.post(f"{url}/invocations", json={"inputs": rows()}, timeout=60)
            stalled.settimeout(60)
            answer = stalled.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert waiting.status_code == 200, waiting.text
