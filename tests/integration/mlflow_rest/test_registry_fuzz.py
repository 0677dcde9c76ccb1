"""Any request to a registry endpoint is answered: its result, or MLflow's error JSON with a 4xx
status; never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_gateway import registry
from mlflow_gateway.endpoint import Endpoint
from tests.integration.mlflow_rest.conftest import Rest
from tests.integration.mlflow_rest.test_registry import logged_run, model, version

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["m", "1", "0", "-1", str(2**63), "Production", "champion", "models:/m/1", "true"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[Endpoint, dict[str, Any]]:
    endpoint = draw(st.sampled_from(registry.ENDPOINTS))
    fields = draw(st.lists(st.sampled_from([*endpoint.fields, "unknown"]), unique=True, max_size=5))
    return endpoint, {name: draw(_JSON) for name in fields}


def test_no_request_to_a_registry_endpoint_is_a_500(rest: Rest, tmp_path: Path) -> None:
    _, run_id = logged_run(rest, tmp_path)
    model(rest, "m")
    version(rest, "m", f"runs:/{run_id}/model")

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=requests())
    def answered(request: tuple[Endpoint, dict[str, Any]]) -> None:
        endpoint, body = request
        url = f"/api/2.0{endpoint.path}"
        if endpoint.method == "GET":  # a query string: each value as text
            params = {k: v if isinstance(v, str) else repr(v) for k, v in body.items()}
            response = rest.http.get(url, params=params)
        else:
            response = rest.http.request(endpoint.method, url, json=body)
        assert response.status_code < 500, (endpoint.method, endpoint.path, body, response.text)
        if response.status_code != 200:
            assert set(response.json()) == {"error_code", "message"}, response.text

    answered()
