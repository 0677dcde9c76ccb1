"""The trace recorder of the real-client tests: path templates, what it records of each answer, and
the comparison with a recorded trace file (a difference fails, naming the endpoints)."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.integration.mlflow_rest.real_client import trace
from tests.integration.mlflow_rest.real_client.trace import Recorder, Request, check_trace, path_template

RUN = "0123456789abcdef0123456789abcdef"
MODEL = f"m-{RUN}89abcdef"


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/2.0/mlflow/runs/get", "/api/2.0/mlflow/runs/get"),
        (f"/api/2.0/mlflow/logged-models/{MODEL}/tags", "/api/2.0/mlflow/logged-models/{model_id}/tags"),
        (
            f"/api/2.0/mlflow-artifacts/artifacts/12/{RUN}/artifacts/logged-models/{MODEL}/MLmodel",
            "/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{path}",
        ),
        (
            f"/api/2.0/mlflow-artifacts/artifacts/3/{RUN}/artifacts",
            "/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts",
        ),
        ("/api/2.0/mlflow-artifacts/artifacts", "/api/2.0/mlflow-artifacts/artifacts"),
    ],
)
def test_path_template_hides_ids_and_file_paths(path: str, template: str) -> None:
    assert path_template(path) == template


def test_recorder_keeps_each_answer_with_its_status_and_error_body() -> None:
    async def found(_: HttpRequest) -> Response:
        return JSONResponse({"run": {}})

    async def refused(_: HttpRequest) -> Response:
        return JSONResponse({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"}, status_code=404)

    async def broken(_: HttpRequest) -> Response:
        raise RuntimeError("a bug")

    recorder = Recorder()
    app = Starlette(
        routes=[
            Route("/api/2.0/mlflow/runs/get", found),
            Route("/api/2.0/mlflow/logged-models/{model_id}", refused),
            Route("/broken", broken, methods=["POST"]),
        ]
    )
    transport = httpx.ASGITransport(app=recorder.wrap(app), raise_app_exceptions=False)

    async def calls() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://endpoint") as client:
            await client.get("/api/2.0/mlflow/runs/get", params={"run_id": RUN})
            await client.get(f"/api/2.0/mlflow/logged-models/{MODEL}")
            await client.post("/broken")

    anyio.run(calls)
    first, second, third = recorder.take()
    assert (first.endpoint, first.status, first.error) == ("GET /api/2.0/mlflow/runs/get", 200, "")
    assert second.endpoint == "GET /api/2.0/mlflow/logged-models/{model_id}"
    assert (second.status, second.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert (third.endpoint, third.status) == ("POST /broken", 500)
    assert recorder.take() == []


def test_a_trace_differing_from_the_recorded_one_fails_with_the_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "TRACES", tmp_path)
    recorded = [Request("GET", "/api/2.0/mlflow/runs/get", 200, ""), Request("POST", "/a", 200, "")]
    monkeypatch.setenv(trace.UPDATE_ENV, "1")
    check_trace("script-mlflow3", "3.0.0", recorded)
    assert (tmp_path / "script-mlflow3.txt").read_text().splitlines()[1:] == [
        "GET /api/2.0/mlflow/runs/get",
        "POST /a",
    ]

    monkeypatch.delenv(trace.UPDATE_ENV)
    check_trace("script-mlflow3", "3.0.1", [*recorded, recorded[0]])  # more calls, same endpoints
    refused = Request("POST", "/a", 404, '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"none"}')
    with pytest.raises(AssertionError) as failure:
        check_trace("script-mlflow3", "3.0.1", [*recorded, refused])  # an error answer is part of it
    assert "+POST /a -> 404 RESOURCE_DOES_NOT_EXIST" in str(failure.value)
    now = [recorded[0], Request("PATCH", "/b", 200, "")]
    with pytest.raises(AssertionError) as failure:
        check_trace("script-mlflow3", "3.1.0", now)
    assert "-POST /a" in str(failure.value) and "+PATCH /b" in str(failure.value)
    with pytest.raises(AssertionError, match="no recorded trace"):
        check_trace("other-mlflow3", "3.1.0", now)
