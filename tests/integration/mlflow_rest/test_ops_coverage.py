"""The endpoint coverage table of docs/mlflow-rest.md is what the endpoint answers.

Every endpoint of MLflow 3.17.2's REST API (``mlflow_endpoints.tsv``) is asked once, with no
fields, of the real endpoint whose services cannot be reached: an endpoint it routes answers with
its own validation, a service error or a result (``supported``); one outside its scope answers
``ENDPOINT_NOT_FOUND`` or ``NOT_IMPLEMENTED`` with 501; one it lacks answers 404 or 405. The table
in the document must be exactly the one these answers make, and every route the endpoint serves
must be an MLflow endpoint of the table, so neither can drift from the other.

``python -m tests.integration.mlflow_rest.test_ops_coverage`` rewrites the table in the document.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from mlflow_gateway.app import API_PREFIXES, OUT_OF_SCOPE, OUT_OF_SCOPE_ARTIFACTS, create_app
from mlflow_gateway.server import running_in_thread
from mlflow_gateway.settings import GatewaySettings
from modelreg_server.launcher import free_port

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "mlflow-rest.md"
ENDPOINTS = Path(__file__).with_name("mlflow_endpoints.tsv")
BEGIN, END = (
    "<!-- coverage table: generated, see tests/integration/mlflow_rest/test_ops_coverage.py -->",
    "<!-- end of coverage table -->",
)
_PARAMETER = re.compile(r"<(?:path:)?(\w+)>|\{([\w.]+)(?::path)?\}")
# What a path parameter is given: values of the shapes the endpoint checks before it calls anything.
SAMPLES = {
    "artifact_path": f"0/{'a' * 32}/artifacts/model/MLmodel",
    "model_id": f"m-{'a' * 40}",
}


@dataclass(frozen=True)
class MlflowEndpoint:
    service: str
    rpc: str
    method: str
    path: str  # as MLflow's definitions spell it, below the API prefix
    api: str  # "2.0", "3.0" (/api/...), "ajax-2.0", "ajax-3.0" (/ajax-api/...), "-" (no prefix)

    @property
    def prefix(self) -> str:
        if self.api == "-":
            return ""
        return (
            f"/ajax-api/{self.api.removeprefix('ajax-')}"
            if self.api.startswith("ajax-")
            else f"/api/{self.api}"
        )

    @property
    def url_path(self) -> str:
        return self.prefix + _PARAMETER.sub(lambda m: SAMPLES.get(m[1] or m[2], "x1"), self.path)

    @property
    def shown_path(self) -> str:
        return self.prefix + _PARAMETER.sub(lambda m: "{" + (m[1] or m[2]) + "}", self.path)


def mlflow_endpoints() -> list[MlflowEndpoint]:
    lines = [line for line in ENDPOINTS.read_text().splitlines() if line and not line.startswith("#")]
    return [MlflowEndpoint(*line.split("\t")) for line in lines[1:]]


def normalized(path: str) -> str:
    """A path with its parameters unnamed, so MLflow's spelling and Starlette's compare."""
    return _PARAMETER.sub("{}", path)


@dataclass(frozen=True)
class Answer:
    status: str  # supported, 501, 404 or 405
    note: str


def classify(endpoint: MlflowEndpoint, response: httpx.Response) -> Answer:
    body = response.json() if response.headers.get("content-type") == "application/json" else {}
    code = body.get("error_code") if isinstance(body, dict) else None
    if code == "ENDPOINT_NOT_FOUND" or (code == "NOT_IMPLEMENTED" and response.status_code == 501):
        if response.status_code == 501:
            if endpoint.path.startswith("/mlflow-artifacts/"):
                areas: tuple[str, ...] = OUT_OF_SCOPE_ARTIFACTS  # multipart uploads, presigned URLs
                rest = endpoint.path.removeprefix("/mlflow-artifacts/")
            else:
                areas, rest = OUT_OF_SCOPE, endpoint.path.removeprefix("/mlflow/")
            area = next((a for a in areas if rest == a or rest.startswith(a + "/")), None)
            return Answer("501", f"outside the scope: {area}" if area else body["message"])
        # The server's own routes that are not served are those of MLflow's web UI.
        return Answer(
            str(response.status_code), "web UI only" if endpoint.service == "MlflowServer" else "not routed"
        )
    return Answer("supported", "")


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[MlflowEndpoint, Answer]]:
    yield ask_every_endpoint()


def ask_every_endpoint() -> dict[MlflowEndpoint, Answer]:
    unreachable = f"127.0.0.1:{free_port()}"  # nothing listens: a routed handler fails fast, 503
    settings = GatewaySettings(port=0, tracking_uri=unreachable, registry_uri=unreachable, retry_seconds=0)
    found: dict[MlflowEndpoint, Answer] = {}
    with running_in_thread(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        for endpoint in mlflow_endpoints():
            response = http.request(endpoint.method, endpoint.url_path)
            assert response.status_code != 500, f"{endpoint.method} {endpoint.url_path}: {response.text}"
            found[endpoint] = classify(endpoint, response)
    return found


def table(answers: dict[MlflowEndpoint, Answer]) -> str:
    counts = {s: sum(a.status == s for a in answers.values()) for s in ("supported", "501", "404", "405")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    rows = [
        f"**{len(answers)} endpoints: {summary}.**",
        "",
        "| method | path | MLflow RPC | here | note |",
        "|---|---|---|---|---|",
    ]
    for endpoint, answer in answers.items():
        rows.append(
            f"| {endpoint.method} | `{endpoint.shown_path}` | {endpoint.service}.{endpoint.rpc} "
            f"| {answer.status} | {answer.note} |"
        )
    return "\n".join(rows)


def documented_table() -> str:
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC} has no coverage table markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_the_documented_table_is_what_the_endpoint_answers(answers: dict[MlflowEndpoint, Answer]) -> None:
    assert documented_table() == table(answers), (
        "docs/mlflow-rest.md is out of date: python -m tests.integration.mlflow_rest.test_ops_coverage"
    )


def test_every_route_the_endpoint_serves_is_an_mlflow_endpoint_of_the_table() -> None:
    """Nothing is served that MLflow's API does not have (or that the table would not show)."""
    unreachable = f"127.0.0.1:{free_port()}"
    app = create_app(GatewaySettings(tracking_uri=unreachable, registry_uri=unreachable))
    documented = {(e.method, normalized(e.path)) for e in mlflow_endpoints()}
    served = set()
    for route in app.routes:
        assert isinstance(route, Route)
        path = route.path
        for prefix in API_PREFIXES:
            path = path.removeprefix(prefix)
        served |= {(method, normalized(path)) for method in route.methods or () if method != "HEAD"}
    assert served - documented == set()


def test_every_area_outside_the_scope_answers_501_never_404(answers: dict[MlflowEndpoint, Answer]) -> None:
    """MLflow's GenAI and platform endpoints: the client learns they are not served, not that the
    server is broken."""
    genai = ("/mlflow/traces", "/mlflow/gateway/", "/mlflow/scorers/", "/mlflow/datasets", "/mlflow/webhooks")
    outside = {e: a for e, a in answers.items() if e.path.startswith(genai)}
    assert outside and {a.status for a in outside.values()} == {"501"}


def write() -> None:
    text = DOC.read_text()
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n\n{table(ask_every_endpoint())}\n\n{END}{after}")


if __name__ == "__main__":
    write()
    sys.exit(0)
